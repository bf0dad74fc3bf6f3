"""The base of a Python c10d backend: the group identity C++ and Python ask it for.

torch 2.6+ reads a group's name, description, rank and size through trampolined ``ProcessGroup`` methods (older torch
reads the name from the group's first C++ backend), so a Python backend that does not answer them breaks functional
collectives and DeviceMesh.  fakepg, the host-staged device backend and the test-only foreign backends share it.
"""

from __future__ import annotations

import torch.distributed as dist


class NamedProcessGroup(dist.ProcessGroup):
    _group_name = ""
    _group_desc = "undefined"

    def __init__(self, rank: int, size: int):
        super().__init__(rank, size)
        self._rank, self._ws = rank, size

    def getRank(self):
        return self._rank

    def getSize(self):
        return self._ws

    # Python callers (dist.gather, dist.scatter, get_world_size, ...) ask rank()/size(): answered here, the value C++
    # gets from getRank/getSize, without a trip through the trampoline (1.2 us a call where C++'s is 0.2 us)
    def rank(self):
        return self._rank

    def size(self):
        return self._ws

    def getGroupName(self):
        return self._group_name

    def setGroupName(self, name):
        self._group_name = name

    def getGroupDesc(self):
        return self._group_desc

    def setGroupDesc(self, desc):
        self._group_desc = desc

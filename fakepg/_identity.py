"""The base of a Python c10d backend: the group identity C++ asks it for.

torch 2.6+ reads a group's name and description through trampolined ``ProcessGroup`` methods (older torch reads
them from the group's first C++ backend), so a Python backend that does not answer them breaks functional
collectives and DeviceMesh.  fakepg, the host-staged device backend and the test-only foreign backends share it.
"""

from __future__ import annotations

import torch.distributed as dist


class NamedProcessGroup(dist.ProcessGroup):
    _group_name = ""
    _group_desc = "undefined"

    def getGroupName(self):
        return self._group_name

    def setGroupName(self, name):
        self._group_name = name

    def getGroupDesc(self):
        return self._group_desc

    def setGroupDesc(self, desc):
        self._group_desc = desc

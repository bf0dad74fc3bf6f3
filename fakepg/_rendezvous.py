"""Store-less ``init_process_group("fakepg", rank=r, world_size=n)``, as torch allows for its own "fake".

torch hands a store-less "fake" a FakeStore by name; every other backend without a store goes through the env://
rendezvous, which needs MASTER_ADDR. torch has no hook for a backend to supply its own store, so fakepg wraps the
handler torch registered for env:// in its rendezvous registry: when the init_process_group on the call stack is
for fakepg, the wrapper yields a FakeStore (rank and world size as given, or from RANK / WORLD_SIZE like env://);
for every other backend it is torch's handler, unchanged. ``uninstall()`` puts torch's handler back.
"""

from __future__ import annotations

import importlib
import os
import sys
from urllib.parse import urlparse

from ._store import FakeStore

_rdzv = importlib.import_module("torch.distributed.rendezvous")  # the module (the package exports a function so named)

_C10D = "torch.distributed.distributed_c10d"


def _initializing(backend: str) -> bool:
    """Is an init_process_group for ``backend`` on this thread's call stack?"""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "init_process_group" and frame.f_globals.get("__name__") == _C10D:
            return str(frame.f_locals.get("backend", "")).lower() == backend
        frame = frame.f_back
    return False


def _query(url: str) -> dict:
    return dict(pair.split("=", 1) for pair in urlparse(url).query.split("&") if "=" in pair)


class _EnvOrFake:
    """torch's env:// handler, or a FakeStore for fakepg."""

    def __init__(self, torch_handler, backend: str):
        self.torch_handler, self.backend = torch_handler, backend

    def __call__(self, url, **kwargs):
        if not _initializing(self.backend):
            return self.torch_handler(url, **kwargs)
        q = _query(url)
        rank = int(q.get("rank", os.environ.get("RANK", -1)))
        world_size = int(q.get("world_size", os.environ.get("WORLD_SIZE", -1)))
        if rank < 0 or world_size < 0:  # what env:// would have asked for
            raise ValueError("fakepg: init_process_group without a store needs rank= and world_size= "
                             "(or the RANK and WORLD_SIZE environment variables)")
        return iter([(FakeStore(), rank, world_size)])


def install(backend: str) -> None:
    handler = _rdzv._rendezvous_handlers.get("env")
    if handler is not None and not isinstance(handler, _EnvOrFake):
        _rdzv._rendezvous_handlers["env"] = _EnvOrFake(handler, backend)


def uninstall() -> None:
    handler = _rdzv._rendezvous_handlers.get("env")
    if isinstance(handler, _EnvOrFake):
        _rdzv._rendezvous_handlers["env"] = handler.torch_handler

"""fakepg: a complete reference *fake* process-group backend for torch.distributed.

One process stands in for one rank of a world of any size, with no communication::

    import fakepg, torch.distributed as dist
    dist.init_process_group("fakepg", rank=3, world_size=8, pg_options=fakepg.Options(semantics="uniform"))

Importing the package registers the backend name ``"fakepg"`` (see docs/fakepg.md).
"""

from ._checks import InvalidArgument
from ._group import FakeProcessGroup
from ._options import ENV_VAR, FAULT_KINDS, Fault, Options
from ._registration import devices, is_registered, register, unregister
from ._store import FakeStore
from ._work import FakeWork

BACKEND = "fakepg"

__all__ = [
    "BACKEND", "ENV_VAR", "FAULT_KINDS", "FakeProcessGroup", "FakeStore", "FakeWork", "Fault",
    "InvalidArgument", "Options", "devices", "is_registered", "register", "unregister",
]

register()

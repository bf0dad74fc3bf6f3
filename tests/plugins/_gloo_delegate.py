"""Shared by the test-only "foreign" backends of issue 11: a Python c10d backend that delegates to gloo.

Like torchft's ProcessGroupGloo, each backend is a ``dist.ProcessGroup`` subclass (registered with
``extended_api=True``) that creates its own ``ProcessGroupGloo`` on a prefix of the store it is given and forwards
every collective to it.  The plugin files subclass ``GlooDelegate`` and change only their quirk: one method, the
creator (``create``), or where the gloo group lives (``_connect`` / ``_call``).
"""

from __future__ import annotations

import torch.distributed as dist

from fakepg._identity import NamedProcessGroup

# ProcessGroup method (what dist.* and the C++ trampoline call, both torch <= 2.12 and 2.13+ names) -> the gloo
# Backend method doing it (gloo has only the old names in 2.13).  All take the same positional arguments.
FORWARDED = {
    "allreduce": "allreduce", "allreduce_coalesced": "allreduce_coalesced",
    "broadcast": "broadcast", "reduce": "reduce",
    "allgather": "allgather", "allgather_coalesced": "allgather_coalesced",
    "_allgather_base": "_allgather_base", "all_gather_single": "_allgather_base",
    "gather": "gather", "scatter": "scatter",
    "reduce_scatter": "reduce_scatter",
    "_reduce_scatter_base": "_reduce_scatter_base", "reduce_scatter_single": "_reduce_scatter_base",
    "alltoall": "alltoall", "alltoall_base": "alltoall_base", "all_to_all_single": "alltoall_base",
    "barrier": "barrier", "send": "send", "recv": "recv", "recv_anysource": "recv_anysource",
    "_start_coalescing": "_start_coalescing", "_end_coalescing": "_end_coalescing",
}


class GlooDelegate(NamedProcessGroup):
    backend_name = "glooproxy"      # set by register()

    def __init__(self, store, rank: int, size: int, timeout, group_name: str = ""):
        super().__init__(rank, size)
        self._group_name, self._group_desc = group_name, "undefined"
        self._gloo = self._connect(store, rank, size, timeout)

    @classmethod
    def create(cls, opts, pg_options=None):
        """The creator given to register_backend(extended_api=True); called once per group, on its members."""
        return cls(opts.store, opts.group_rank, opts.group_size, opts.timeout, opts.group_id)

    def _connect(self, store, rank, size, timeout):
        # Our keys under our own prefix: torch and other users of the store never see them.
        return dist.ProcessGroupGloo(dist.PrefixStore(f"{self.backend_name}/gloo/", store), rank, size, timeout)

    def _call(self, method: str, args, kwargs):
        """Run one gloo method; returns its Work."""
        return getattr(self._gloo, method)(*args, **kwargs)

    # --- identity (trampolined: C++ reaches these too) -----------------------------------------
    def getBackendName(self):
        return self.backend_name

    def abort(self):
        self._gloo.abort()

    def shutdown(self):
        self._gloo.shutdown()

    def __repr__(self):
        return f"{type(self).__name__}(rank={self.rank()}, size={self.size()})"


def _forwarder(name: str, target: str):
    def method(self, *args, **kwargs):
        return self._call(target, args, kwargs)
    method.__name__ = method.__qualname__ = name
    return method


for _name, _target in FORWARDED.items():
    setattr(GlooDelegate, _name, _forwarder(_name, _target))


def register(name: str, cls: type) -> type:
    """Register ``cls`` as backend ``name`` the way a vendor plugin does (cpu only)."""
    cls.backend_name = name
    dist.Backend.register_backend(name, cls.create, extended_api=True, devices=["cpu"])
    return cls

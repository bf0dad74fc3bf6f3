"""barrier: returns on every rank only once every rank has entered it.

Synchronisation is checked without clocks: each rank writes a key to the world's store just before entering, the
last rank enters late, and after the barrier every rank must already see every other rank's key.  A barrier that
returns early is caught on the ranks that did not wait.  A simulated world (one process per simulated rank, no
communication) has nobody to wait for, so there only the call and the Work contract are checked.
"""

from __future__ import annotations

import torch.distributed as dist

from .. import devices
from . import axes, common
from .spec import Case, Prepared, RankContext, Spec


def _device_ids_skip(env):
    """device_ids are indices of the machine's accelerator: on a host world beside one, torch would place the
    barrier on that accelerator, which is not this world's device (on a host-only machine it is a no-op hint)."""
    others = [d for d in devices.indexed_devices() if d != env.device]
    if env.device == "cpu" and others:
        return "device_ids name %s indices, not this %s world's" % (others[0], env.device)
    return None


class Barrier(Spec):
    name = "barrier"

    def cases(self, env):
        no_timeout = axes.lacks_kwarg(dist.barrier, "timeout", "dist.barrier")
        for variant, skip in (("default", None), ("device_ids", _device_ids_skip(env)), ("timeout", no_timeout)):
            for mode in axes.MODES:
                yield axes.bare("barrier", variant, mode=mode, skip=skip)

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        kwargs = {}
        if case.variant == "device_ids":
            kwargs["device_ids"] = [rt.device.index if rt.device.index is not None else 0]
        elif case.variant == "timeout":
            from datetime import timedelta
            kwargs["timeout"] = timedelta(seconds=60)
        enter, after = common.entry_check(rt, "barrier")

        def call(async_op):
            enter()
            return dist.barrier(async_op=async_op, **kwargs)

        return Prepared(call=call, after=after, check_future=False)


SPECS = [Barrier()]

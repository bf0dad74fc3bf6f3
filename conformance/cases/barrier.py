"""barrier: returns on every rank only once every rank has entered it.

Synchronisation is checked without clocks: each rank writes a key to the world's store just before entering, the
last rank enters late, and after the barrier every rank must already see every other rank's key.  A barrier that
returns early is caught on the ranks that did not wait.  A simulated world (one process per simulated rank, no
communication) has nobody to wait for, so there only the call and the Work contract are checked.
"""

from __future__ import annotations

import torch.distributed as dist

from . import common
from .spec import Case, Prepared, RankContext, Spec



class Barrier(Spec):
    name = "barrier"

    def cases(self, env):
        variants = ["default", "device_ids"]
        if common.has_kwarg(dist.barrier, "timeout"):
            variants.append("timeout")
        for variant in variants:
            for mode in common.MODES:
                yield Case("barrier", variant, mode=mode, family=self.name)

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

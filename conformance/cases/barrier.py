"""barrier: returns on every rank only once every rank has entered it.

Synchronisation is checked without clocks: each rank writes a key to the world's store just before entering, the
last rank enters late, and after the barrier every rank must already see every other rank's key.  A barrier that
returns early is caught on the ranks that did not wait.  A simulated world (one process per simulated rank, no
communication) has nobody to wait for, so there only the call and the Work contract are checked.
"""

from __future__ import annotations

import time

import torch.distributed as dist

from . import common
from .spec import Case, Prepared, RankContext, Spec

LATE_ENTRY_S = 0.05


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
        checks_sync = rt.store is not None and not rt.simulated and rt.world_size > 1
        keys = [f"conformance/barrier/{rt.seq}/{r}" for r in range(rt.world_size)]

        def call(async_op):
            if checks_sync:
                if rt.rank == rt.world_size - 1:
                    time.sleep(LATE_ENTRY_S)
                rt.store.set(keys[rt.rank], "1")
            return dist.barrier(async_op=async_op, **kwargs)

        def after():
            if checks_sync and not rt.store.check(keys):
                missing = [r for r, k in enumerate(keys) if not rt.store.check([k])]
                return f"barrier returned before ranks {missing} entered it"
            return None

        return Prepared(call=call, after=after if checks_sync else None, check_future=False)


SPECS = [Barrier()]

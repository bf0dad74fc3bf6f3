"""monitored_barrier: like barrier, returns on every rank only once every rank has entered it.

torch itself restricts it to gloo (``ValueError: monitored_barrier is only implemented for GLOO backend.``, raised
in Python before any backend is reached): other backends show ``unsupported``, which is the truth.

Synchronisation is checked as ``barrier`` does, without clocks: each rank writes a store key just before entering,
the last rank enters late, and afterwards every rank must see every key.  A simulated world has nobody to wait
for; there only the call is checked.  Sync only: the API has no async_op.
"""

from __future__ import annotations

import time
from datetime import timedelta

import torch.distributed as dist

from . import common
from .spec import Case, Prepared, RankContext, Spec

LATE_ENTRY_S = 0.05


class MonitoredBarrier(Spec):
    name = "monitored_barrier"

    def cases(self, env):
        yield Case("monitored_barrier", "default", mode="sync", family=self.name)
        for variant, kwarg in (("wait_all_ranks", "wait_all_ranks"), ("timeout", "timeout")):
            skip = None if common.has_kwarg(dist.monitored_barrier, kwarg) else f"monitored_barrier has no {kwarg}"
            yield Case("monitored_barrier", variant, mode="sync", family=self.name, skip=skip)

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        kwargs = {}
        if case.variant == "wait_all_ranks":
            kwargs["wait_all_ranks"] = True
        elif case.variant == "timeout":
            kwargs["timeout"] = timedelta(seconds=30)
        checks_sync = rt.store is not None and not rt.simulated and rt.world_size > 1
        keys = [f"conformance/monitored_barrier/{rt.seq}/{r}" for r in range(rt.world_size)]

        def call(async_op):
            if checks_sync:
                if rt.rank == rt.world_size - 1:
                    time.sleep(LATE_ENTRY_S)
                rt.store.set(keys[rt.rank], "1")
            return dist.monitored_barrier(**kwargs)

        def after():
            if checks_sync and not rt.store.check(keys):
                missing = [r for r, k in enumerate(keys) if not rt.store.check([k])]
                return f"monitored_barrier returned before ranks {missing} entered it"
            return None

        return Prepared(call, check_future=False, after=after)


SPECS = [MonitoredBarrier()]

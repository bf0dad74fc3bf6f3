"""monitored_barrier: like barrier, returns on every rank only once every rank has entered it.

torch itself restricts it to gloo (``ValueError: monitored_barrier is only implemented for GLOO backend.``, raised
in Python before any backend is reached): other backends show ``unsupported``, which is the truth.

Synchronisation is checked as ``barrier`` does, without clocks: each rank writes a store key just before entering,
the last rank enters late, and afterwards every rank must see every key.  A simulated world has nobody to wait
for; there only the call is checked.  Sync only: the API has no async_op.
"""

from __future__ import annotations

from datetime import timedelta

import torch.distributed as dist

from . import axes, common
from .spec import Case, Prepared, RankContext, Spec


class MonitoredBarrier(Spec):
    name = "monitored_barrier"

    def cases(self, env):
        yield axes.bare("monitored_barrier")
        for kwarg in ("wait_all_ranks", "timeout"):
            yield axes.bare("monitored_barrier", kwarg,
                            skip=axes.lacks_kwarg(dist.monitored_barrier, kwarg, "dist.monitored_barrier"))

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        kwargs = {}
        if case.variant == "wait_all_ranks":
            kwargs["wait_all_ranks"] = True
        elif case.variant == "timeout":
            kwargs["timeout"] = timedelta(seconds=30)
        enter, after = common.entry_check(rt, "monitored_barrier")

        def call(async_op):
            enter()
            return dist.monitored_barrier(**kwargs)

        return Prepared(call, check_future=False, after=after)


SPECS = [MonitoredBarrier()]

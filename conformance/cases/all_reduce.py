"""all_reduce: every rank ends with the reduction of every rank's tensor, in place."""

from __future__ import annotations

import torch.distributed as dist

from . import axes, common
from .spec import Case, Prepared, RankContext, Spec


class AllReduce(Spec):
    name = "all_reduce"

    def cases(self, env):
        yield from axes.reduction_table("all_reduce")
        yield from axes.edge("all_reduce")
        yield from axes.undefined("all_reduce")

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        x, _ = common.reduction_tensor(case, rt, rt.rank)
        op = common.reduce_op(case, rt)
        return Prepared(
            call=lambda async_op: dist.all_reduce(x, op=op, async_op=async_op),
            outputs=[x],
            expected=[common.expected_reduction(case, rt)],
            op=case.op,
        )


SPECS = [AllReduce()]

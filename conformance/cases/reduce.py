"""reduce: the destination rank ends with the reduction of every rank's tensor, in place; what the other ranks'
tensors hold afterwards is unspecified (backends use them as scratch), so it is not checked.

Every rank takes a turn as dst: the full op x dtype table runs with dst = ws-1, SUM with the other dsts and with
``group_dst`` (where this torch has it).  ``bad_dst``: a dst outside the group must be refused on every rank.
"""

from __future__ import annotations

import torch.distributed as dist

from . import axes, common
from .spec import Case, Prepared, RankContext, Spec


class Reduce(Spec):
    name = "reduce"

    def cases(self, env):
        ws, last = env.world_size, env.world_size - 1
        main = f"dst{last}"
        yield from axes.op_table("reduce", main, params=dict(dst=last))
        yield from axes.spread("reduce", main, op="SUM", params=dict(dst=last))
        for dst in range(last):
            yield from axes.variant("reduce", f"dst{dst}", op="SUM", params=dict(dst=dst))
        yield from axes.variant("reduce", "group_dst", op="SUM", params=dict(dst=last, group_dst=True),
                                skip=axes.lacks_kwarg(dist.reduce, "group_dst", "dist.reduce"))
        yield axes.error_case("reduce", "bad_dst", op="SUM", params=dict(dst=ws))
        yield from axes.edge("reduce", main, params=dict(dst=last))
        yield from axes.undefined("reduce", main, params=dict(dst=last))

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        dst = case.param("dst")
        x, _ = common.reduction_tensor(case, rt, rt.rank)
        op = common.reduce_op(case, rt)
        where = {"group_dst": dst} if case.param("group_dst") else {"dst": dst}
        return Prepared(
            call=lambda async_op: dist.reduce(x, op=op, async_op=async_op, **where),
            outputs=[x],
            expected=[common.expected_reduction(case, rt) if rt.rank == dst else None],
            op=case.op,
        )


SPECS = [Reduce()]

"""reduce: the destination rank ends with the reduction of every rank's tensor, in place; what the other ranks'
tensors hold afterwards is unspecified (backends use them as scratch), so it is not checked.

Every rank takes a turn as dst: the full op x dtype table runs with dst = ws-1, SUM with the other dsts and with
``group_dst`` (where this torch has it).  ``bad_dst``: a dst outside the group must be refused on every rank.
"""

from __future__ import annotations

import torch.distributed as dist

from . import common
from .spec import Case, Prepared, RankContext, Spec


class Reduce(Spec):
    name = "reduce"

    def cases(self, env):
        ws, last = env.world_size, env.world_size - 1
        main = f"dst{last}"
        yield from common.op_axes("reduce", self.name, main, params=(("dst", last),))
        yield from common.spread_axes("reduce", self.name, main, op="SUM", params=(("dst", last),))
        for dst in range(last):
            yield from common.variant_axes("reduce", self.name, f"dst{dst}", op="SUM", params=(("dst", dst),))
        no_group_dst = None if common.has_kwarg(dist.reduce, "group_dst") else "dist.reduce has no group_dst here"
        yield from common.variant_axes("reduce", self.name, "group_dst", op="SUM", skip=no_group_dst,
                                       params=(("dst", last), ("group_dst", True)))
        yield common.error_case("reduce", self.name, "bad_dst", op="SUM", params=(("dst", ws),))

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        dst = case.param("dst")
        x, _ = common.reduction_tensor(case, rt, rt.rank)
        op = common.reduce_op(case, rt)
        where = {"group_dst": dst} if case.param("group_dst") else {"dst": dst}
        bad = case.variant.startswith("bad_")
        return Prepared(
            call=lambda async_op: dist.reduce(x, op=op, async_op=async_op, **where),
            outputs=[x],
            expected=[common.expected_reduction(case, rt) if rt.rank == dst else None],
            op=case.op,
            expect_error=bad,
        )


SPECS = [Reduce()]

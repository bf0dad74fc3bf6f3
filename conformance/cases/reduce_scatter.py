"""reduce_scatter (list form): rank i ends with the reduction over ranks of their ``input_list[i]``.

Each rank's ``input_list`` is one reduction vector cut into ws pieces (so the pieces differ and a backend that
reduces the wrong piece is caught); rank i's expected output is piece i of the reduction of every rank's vector.
SUM only here (and the reduce ops a dtype does not define): the op table runs on reduce_scatter_single.
"""

from __future__ import annotations

import math

import torch.distributed as dist

from . import axes, common
from .spec import Case, Prepared, RankContext, Spec


class ReduceScatter(Spec):
    name = "reduce_scatter"

    def cases(self, env):
        yield from axes.spread("reduce_scatter", op="SUM")
        yield from axes.edge("reduce_scatter", all_ops=False)
        yield from axes.undefined("reduce_scatter")

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        ws, me = rt.world_size, rt.rank
        piece = common.chunk_shape(case)
        n = math.prod(piece)
        mine = common.pieces(common.reduction_flat(case, ws * n, me, ws), [piece] * ws)
        input_list = [common.shaped(v, piece, case, rt) for v in mine]
        reduced = common.reduced_piece(case, rt, ws * n, [piece] * ws, me)
        out = common.stale(case, rt, unlike=reduced)
        op = common.reduce_op(case, rt)
        return Prepared(
            call=lambda async_op: dist.reduce_scatter(out, input_list, op=op, async_op=async_op),
            outputs=[out],
            expected=[reduced],
            op=case.op,
        )


SPECS = [ReduceScatter()]

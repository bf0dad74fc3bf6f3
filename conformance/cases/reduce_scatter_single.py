"""reduce_scatter_single / reduce_scatter_tensor: one input tensor of ws equal chunks; rank i ends with the
reduction over ranks of their chunk i.

Both layouts the docstring documents are cases: ``cat`` (input is (ws*N, ...), chunks along dim 0) and ``stack``
(input is (ws, *output.shape)).  The full op x dtype table runs on ``reduce_scatter_single`` cat; the pre-2.13 name
``reduce_scatter_tensor`` (a deprecated alias in 2.13) runs both layouts on a few dtypes, plus ``bad_size``: an
input whose size is not ws times the output's, which every rank must refuse.  On torch before 2.13 (no
``reduce_scatter_single``) the roles swap: the table runs on ``reduce_scatter_tensor``.  Inputs as in reduce_scatter: one
reduction vector per rank, cut into the chunks.
"""

from __future__ import annotations

import math

import torch.distributed as dist

from . import axes, common
from .spec import Case, Prepared, RankContext, Spec

class ReduceScatterSingle(Spec):
    def __init__(self, name: str, main: bool):
        self.name, self.main = name, main

    def cases(self, env):
        skip = axes.absent(self.name)
        if self.main:
            yield from axes.op_table(self.name, "cat", skip=skip)
            yield from axes.spread(self.name, "cat", op="SUM", shapes=axes.NO_SCALAR, skip=skip)
        else:
            yield from axes.variant(self.name, "cat", op="SUM", skip=skip)
            yield axes.error_case(self.name, "bad_size", op="SUM", skip=skip)
        yield from axes.variant(self.name, "stack", op="SUM", skip=skip)
        yield from axes.edge(self.name, "cat", all_ops=self.main, skip=skip)
        if self.main:
            yield from axes.undefined(self.name, "cat", skip=skip)

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        ws, me = rt.world_size, rt.rank
        piece = common.chunk_shape(case)
        n = math.prod(piece)
        shape = (ws,) + piece if case.variant == "stack" else common.cat_shape(case, ws)
        flat = common.reduction_flat(case, ws * n, me, ws)
        if case.variant == "bad_size":
            shape = (shape[0] + 1,) + shape[1:]   # one row too many: not ws equal chunks
            flat = common.reduction_flat(case, math.prod(shape), me, ws)
        x = common.shaped(flat, shape, case, rt)
        reduced = common.reduced_piece(case, rt, ws * n, [piece] * ws, me)
        out = common.stale(case, rt, unlike=reduced)
        op = common.reduce_op(case, rt)
        fn = getattr(dist, self.name)
        return Prepared(
            call=lambda async_op: fn(out, x, op=op, async_op=async_op),
            outputs=[out],
            expected=[reduced],
            op=case.op,
        )


# TABLE: the name the op x dtype table runs under on this torch (selftest and tests select it by this name)
TABLE, ALIAS = axes.renamed("reduce_scatter_single", "reduce_scatter_tensor")
SPECS = [ReduceScatterSingle(TABLE, main=True), ReduceScatterSingle(ALIAS, main=False)]

"""all_gather_single / all_gather_into_tensor: one output tensor holding every rank's equal-size input in rank order.

Both layouts the docstring documents are cases: ``cat`` (output is (ws*N, ...), inputs concatenated along dim 0)
and ``stack`` (output is (ws, *input.shape)).  ``inplace``: the input is the output's own chunk ``rank`` (how FSDP
calls it).  ``all_gather_into_tensor`` is the pre-2.13 name (a deprecated alias in 2.13): its layouts run on a few
dtypes, plus ``bad_dtype``, an output whose dtype differs from the input's, which every rank must refuse.  On
torch before 2.13 (no ``all_gather_single``) the roles swap.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

from . import axes, common
from .spec import Case, Prepared, RankContext, Spec

class AllGatherSingle(Spec):
    def __init__(self, name: str, main: bool):
        self.name, self.main = name, main

    def cases(self, env):
        skip = axes.absent(self.name)
        if self.main:
            yield from axes.spread(self.name, "cat", shapes=axes.NO_SCALAR, skip=skip)
            yield from axes.variant(self.name, "inplace", skip=skip)
        else:
            yield from axes.variant(self.name, "cat", skip=skip)
            yield axes.error_case(self.name, "bad_dtype", skip=skip)
        yield from axes.variant(self.name, "stack", skip=skip)

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        ws, me = rt.world_size, rt.rank
        piece = common.chunk_shape(case)
        shape = (ws,) + piece if case.variant == "stack" else common.cat_shape(case, ws)
        flat = [common.movement_flat(case, math.prod(piece), rt.peer(j)) for j in range(ws)]
        expected = common.shaped(torch.cat(flat), shape, case, rt)
        out = common.stale(case, rt, shape, unlike=expected)
        if case.variant == "inplace":
            x = out.narrow(0, me * piece[0], piece[0])
            x.copy_(common.movement_piece(case, rt, piece, me))
        else:
            x = common.movement_piece(case, rt, piece, me)
        if case.variant == "bad_dtype":
            out = out.double()   # the case is float32
        fn = getattr(dist, self.name)
        return Prepared(
            call=lambda async_op: fn(out, x, async_op=async_op),
            outputs=[out],
            expected=[expected],
        )


TABLE, ALIAS = axes.renamed("all_gather_single", "all_gather_into_tensor")
SPECS = [AllGatherSingle(TABLE, main=True), AllGatherSingle(ALIAS, main=False)]

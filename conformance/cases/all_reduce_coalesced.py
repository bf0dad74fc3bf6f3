"""all_reduce_coalesced: several tensors of one dtype (different sizes) all-reduced in one call, each in place.
With ``async_op=True`` it returns a ``torch.futures.Future`` (not a Work), which must carry the tensors.

SUM runs on every dtype (also at the edge of each dtype's range); the other ops on one dtype of each kind (the op
table itself is all_reduce's).  The tensors (``PIECES``) are cut from one reduction vector per rank, so they
differ from each other; an edge case's pieces all have the ``odd`` shape.
"""

from __future__ import annotations

import math

import torch.distributed as dist

from . import axes, common, values
from .spec import Case, Prepared, RankContext, Spec

PIECES = ("small", "odd", "scalar")


class AllReduceCoalesced(Spec):
    name = "all_reduce_coalesced"

    def cases(self, env):
        skip = axes.absent(self.name)
        yield from axes.product(self.name, ops=("SUM",), shapes=(None,), skip=skip)
        yield axes.single(self.name, op="SUM", shape=None, mode="async", skip=skip)
        yield from axes.op_table(self.name, tier="kinds", shape=None, skip=skip)
        yield from axes.edge(self.name, all_ops=False, skip=skip)

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        dtype = values.dtype_of(case.dtype)
        shapes = [values.shape_for(s, dtype) for s in (PIECES if case.shape is None else [case.shape] * 3)]
        n = sum(math.prod(s) for s in shapes)
        mine = common.pieces(common.reduction_flat(case, n, rt.rank, rt.world_size), shapes)
        tensors = [common.shaped(v, s, case, rt) for v, s in zip(mine, shapes)]
        reduced = common.pieces(common.expected_reduction_flat(case, rt, n), shapes)
        op = common.reduce_op(case, rt)
        return Prepared(
            call=lambda async_op: dist.all_reduce_coalesced(tensors, op=op, async_op=async_op),
            outputs=tensors,
            expected=[common.shaped(v, s, case, rt) for v, s in zip(reduced, shapes)],
            op=case.op,
        )


SPECS = [AllReduceCoalesced()]

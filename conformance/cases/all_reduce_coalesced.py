"""all_reduce_coalesced: several tensors of one dtype (different sizes) all-reduced in one call, each in place.
With ``async_op=True`` it returns a ``torch.futures.Future`` (not a Work), which must carry the tensors.

SUM runs on every dtype; the other ops on one dtype of each kind (the op table itself is all_reduce's).  The
tensors (``PIECES``) are cut from one reduction vector per rank, so they differ from each other.
"""

from __future__ import annotations

import math

import torch.distributed as dist

from . import common, values
from .spec import Case, Prepared, RankContext, Spec

PIECES = ("small", "odd", "scalar")
OP_DTYPES = ("float32", "int32", "bool", "complex64")


class AllReduceCoalesced(Spec):
    name = "all_reduce_coalesced"

    def cases(self, env):
        skip = common.absent(self.name)
        for dtype in values.available_dtypes():
            yield Case(self.name, "default", dtype, "SUM", None, "sync", family=self.name, skip=skip)
        yield Case(self.name, "default", "float32", "SUM", None, "async", family=self.name, skip=skip)
        for dtype in OP_DTYPES:
            for op in common.reduce_ops_for(dtype):
                if op != "SUM":
                    yield Case(self.name, "default", dtype, op, None, "sync", family=self.name, skip=skip)

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        dtype = values.dtype_of(case.dtype)
        shapes = [values.shape_for(s, dtype) for s in PIECES]
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

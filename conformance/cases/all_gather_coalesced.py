"""all_gather_coalesced: several tensors gathered in one call; ``output_tensor_lists[r][i]`` ends with rank r's
tensor i.  With ``async_op=True`` it returns a ``torch.futures.Future`` (not a Work), which must carry the outputs.

The tensors have different shapes (``PIECES``) and one dtype; the case's shape axis is therefore ``-``.
"""

from __future__ import annotations

import torch.distributed as dist

from . import axes, common, values
from .spec import Case, Prepared, RankContext, Spec

PIECES = ("small", "odd", "scalar")


class AllGatherCoalesced(Spec):
    name = "all_gather_coalesced"

    def cases(self, env):
        skip = axes.absent(self.name)
        yield from axes.product(self.name, shapes=(None,), skip=skip)
        yield axes.single(self.name, shape=None, mode="async", skip=skip)

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        dtype = values.dtype_of(case.dtype)
        shapes = [values.shape_for(s, dtype) for s in PIECES]
        inputs = [common.movement_piece(case, rt, s, rt.rank, i) for i, s in enumerate(shapes)]
        expected = [[common.movement_piece(case, rt, s, rt.peer(r), i) for i, s in enumerate(shapes)]
                    for r in range(rt.world_size)]
        outputs = [[common.stale(case, rt, s, unlike=e) for s, e in zip(shapes, exp)] for exp in expected]
        return Prepared(
            call=lambda async_op: dist.all_gather_coalesced(outputs, inputs, async_op=async_op),
            outputs=[t for lst in outputs for t in lst],
            expected=[e for exp in expected for e in exp],
        )


SPECS = [AllGatherCoalesced()]

"""all_gather (list form): ``tensor_list[j]`` ends with rank j's tensor, on every rank.

Variants: ``default`` (fresh output list), ``inplace`` (``tensor_list[rank]`` is the input tensor itself),
``uneven`` (rank j sends j+1 rows: "Uneven sized tensors are supported", says the docstring; each output is
sized for what its rank sends).  Invalid calls, made identically on every rank so each can refuse alone:
``bad_list_len`` (ws-1 outputs) and ``bad_size`` (one output with a different trailing dim than its sender's).
"""

from __future__ import annotations

import torch.distributed as dist

from . import axes, common
from .spec import Case, Prepared, RankContext, Spec


def _rows(case: Case, j: int) -> int:
    """Dim 0 of rank j's input."""
    return j + 1 if case.variant == "uneven" else common.chunk_shape(case)[0]


class AllGather(Spec):
    name = "all_gather"

    def cases(self, env):
        yield from axes.spread("all_gather")
        yield from axes.variant("all_gather", "inplace")
        yield from axes.variant("all_gather", "uneven")
        yield axes.error_case("all_gather", "bad_list_len")
        yield axes.error_case("all_gather", "bad_size")

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        ws, me = rt.world_size, rt.rank
        if case.variant == "uneven":
            shapes = [common.rows_shape(case, _rows(case, j)) for j in range(ws)]
        else:
            shapes = [common.chunk_shape(case)] * ws
        x = common.movement_piece(case, rt, shapes[me], me)
        # A simulated rank holds only its own data: it cannot know a peer's rows when they differ from its own.
        expected = [None if rt.simulated and shapes[j] != shapes[me]
                    else common.movement_piece(case, rt, shapes[j], rt.peer(j)) for j in range(ws)]
        out = [common.stale(case, rt, s, unlike=e) for s, e in zip(shapes, expected)]
        if case.variant == "inplace":
            out[me] = x
        elif case.variant == "bad_list_len":
            out, expected = out[:-1], expected[:-1]
        elif case.variant == "bad_size":
            out[-1] = common.stale(case, rt, shapes[-1][:-1] + (shapes[-1][-1] + 1,))
        return Prepared(
            call=lambda async_op: dist.all_gather(out, x, async_op=async_op),
            outputs=out,
            expected=expected,
        )


SPECS = [AllGather()]

"""all_to_all / all_to_all_single: rank j's piece for rank i ends in rank i's slot j.

``sends(i, j)`` is how many dim-0 rows rank i sends rank j; rank i's piece for j is its movement data with salt j:
  * ``even``: every piece is the case shape (all_to_all_single: no split sizes, dim 0 = ws * rows);
  * ``uneven``: i + j + 1 rows (different per rank, consistent across ranks: rank i's input split j is rank j's
    output split i), given to all_to_all_single as explicit input/output split sizes;
  * ``zero``: as uneven, but a rank sends nothing to higher ranks (empty pieces and empty slots).
all_to_all_single's output is checked slot by slot (each slot is one of the outputs), so a wrong peer is named.

Invalid all_to_all_single calls, made identically on every rank: ``bad_splits`` (input split sizes that do not sum
to dim 0) and ``indivisible`` (dim 0 not divisible by ws and no split sizes: the documented equal split does not
exist, so there is no correct output and the call must be refused, not guessed).
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

from . import axes, common
from .spec import Case, Prepared, RankContext, Spec

def sends(case: Case, i: int, j: int) -> int:
    """Dim-0 rows rank i sends rank j."""
    if case.variant == "uneven":
        return i + j + 1
    if case.variant == "zero":
        return 0 if i < j else i + j + 1
    return common.chunk_shape(case)[0]


class AllToAll(Spec):
    def __init__(self, name: str, single: bool):
        self.name, self.single = name, single

    def cases(self, env):
        skip = axes.absent(self.name)
        yield from axes.spread(self.name, "even", shapes=axes.NO_SCALAR if self.single else axes.SHAPES, skip=skip)
        yield from axes.variant(self.name, "uneven", skip=skip)
        yield from axes.variant(self.name, "zero", skip=skip)
        if self.single:
            yield axes.error_case(self.name, "bad_splits", skip=skip)
            yield axes.error_case(self.name, "indivisible", skip=skip)

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        ws, me = rt.world_size, rt.rank
        even = case.variant in ("even", "bad_splits", "indivisible")
        piece = common.chunk_shape(case)

        if even:   # also the list form's 0-d pieces
            send_shapes = recv_shapes = [piece] * ws
        else:
            send_shapes = [common.rows_shape(case, sends(case, me, j)) for j in range(ws)]
            recv_shapes = [common.rows_shape(case, sends(case, j, me)) for j in range(ws)]
        flats = [common.movement_flat(case, math.prod(s), me, salt=j) for j, s in enumerate(send_shapes)]
        if rt.echoes:   # torch's fake: slot j gets back my own piece j (nothing derivable where sizes differ)
            expected = [common.movement_piece(case, rt, recv_shapes[j], me, salt=j)
                        if recv_shapes[j] == send_shapes[j] else None for j in range(ws)]
        else:   # a simulated rank holds only its own data: a peer's piece of another size is unknowable
            expected = [None if rt.simulated and recv_shapes[j] != send_shapes[me]
                        else common.movement_piece(case, rt, recv_shapes[j], rt.peer(j), salt=me)
                        for j in range(ws)]
        if not self.single:
            inputs = [common.shaped(f, s, case, rt) for f, s in zip(flats, send_shapes)]
            outputs = [common.stale(case, rt, s, unlike=e) for s, e in zip(recv_shapes, expected)]
            call = lambda async_op: dist.all_to_all(outputs, inputs, async_op=async_op)  # noqa: E731
            return Prepared(call=call, outputs=outputs, expected=expected)

        rows_in, rows_out = [s[0] for s in send_shapes], [s[0] for s in recv_shapes]
        in_splits, out_splits = (None, None) if even else (rows_in, rows_out)
        if case.variant == "bad_splits":
            in_splits, out_splits = rows_in[:-1] + [rows_in[-1] + 1], rows_out
        flat = torch.cat(flats)
        if case.variant == "indivisible":   # one row more than ws equal pieces
            rows_in = rows_out = rows_in[:-1] + [rows_in[-1] + 1]
            flat = common.movement_flat(case, sum(rows_in) * math.prod(piece[1:]), me)
        x = common.shaped(flat, (sum(rows_in),) + piece[1:], case, rt)
        if rt.echoes and not even:   # torch's fake fills every output split with the input's rows from the first
            expected = [common.rows_from_first(x, r) for r in rows_out]
        unlike = None if case.variant == "indivisible" else expected
        out = common.stale(case, rt, (sum(rows_out),) + piece[1:], unlike=unlike)
        slots, at = [], 0
        for s in recv_shapes:
            slots.append(out.narrow(0, at, s[0]))
            at += s[0]
        return Prepared(
            call=lambda async_op: dist.all_to_all_single(out, x, out_splits, in_splits, async_op=async_op),
            outputs=slots,
            expected=expected,
        )


SPECS = [AllToAll("all_to_all", single=False), AllToAll("all_to_all_single", single=True)]

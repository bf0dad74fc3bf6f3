"""Tensors and expected values shared by the families: ReduceOp construction, inputs of any shape built from
flat values, stale output buffers, and the clock-free entry check of barrier-like calls.  (Which cases exist is
``axes.py``'s.)"""

from __future__ import annotations

import math
from typing import Optional
import time

import torch
import torch.distributed as dist

from . import values
from .spec import Case, RankContext

PREMUL_FACTOR = 0.5   # an exact binary fraction


def reduce_op(case: Case, rt: RankContext):
    """The ReduceOp object for the case; PREMUL_SUM through _make_nccl_premul_sum (scalar or tensor factor)."""
    if case.op == "PREMUL_SUM":
        factor = PREMUL_FACTOR
        if case.variant == "tensor_factor":
            factor = torch.tensor([PREMUL_FACTOR], dtype=torch.float64, device=rt.device)
        return dist._make_nccl_premul_sum(factor)
    return getattr(dist.ReduceOp, case.op)


def value_pattern(case: Case) -> str:
    """Which reduction inputs the case uses: "small" values, or the "edge" of the dtype's range (``axes.edge``)."""
    return case.param("values", "small")


def reduction_tensor(case: Case, rt: RankContext, rank: int, salt: int = 0):
    """Rank ``rank``'s input for a reduction case, as a tensor of the case's shape on this device."""
    dtype = values.dtype_of(case.dtype)
    n = values.numel_of(case.shape, dtype)
    vals = values.reduction_values(dtype, case.op, n, rank + salt, rt.world_size, value_pattern(case))
    return values.materialize(vals, case.shape, dtype, rt.device), vals


def expected_reduction(case: Case, rt: RankContext, salt: int = 0):
    """The reduction over every peer's input, laid out like this rank's tensor (None on an error path)."""
    if case.error:
        return None
    dtype = values.dtype_of(case.dtype)
    n = values.numel_of(case.shape, dtype)
    per_rank = [values.reduction_values(dtype, case.op, n, p + salt, rt.world_size, value_pattern(case))
                for p in rt.peers()]
    return values.materialize(reduce_for(case, rt, per_rank), case.shape, dtype, rt.device)


def reduce_for(case: Case, rt: RankContext, per_rank: list) -> torch.Tensor:
    """The case's reduction of per-rank flat values as this rank's world computes it (None: the op is undefined
    for the dtype, the case is an error path and nothing is expected)."""
    if case.error:
        return None
    factor = PREMUL_FACTOR if case.op == "PREMUL_SUM" else 1.0
    return rt.reduce(case.op, per_rank, values.dtype_of(case.dtype), factor)


def movement_tensor(case: Case, rt: RankContext, rank: int, salt: int = 0) -> torch.Tensor:
    dtype = values.dtype_of(case.dtype)
    vals = values.movement_values(dtype, values.numel_of(case.shape, dtype), rank, salt)
    return values.materialize(vals, case.shape, dtype, rt.device)


def empty_like_case(case: Case, rt: RankContext, fill: float = 0) -> torch.Tensor:
    return values.alloc(case.shape, values.dtype_of(case.dtype), rt.device, fill)


# ---------------------------------------------------------------------------------------------------------------
# Tensors of any shape built from flat values, for the families whose outputs are not the case shape (cat, stack,
# uneven rows, several tensors at once).  "noncontig" cases get strided views (last two dims transposed) for every
# tensor of two or more dims, so the layout under test is the same one the case shape names.

def chunk_shape(case: Case) -> tuple[int, ...]:
    """The per-rank piece: the case shape."""
    return values.shape_for(case.shape, values.dtype_of(case.dtype))


def cat_shape(case: Case, k: int) -> tuple[int, ...]:
    """k pieces concatenated along dim 0."""
    s = chunk_shape(case)
    return (k * s[0],) + s[1:]


def rows_shape(case: Case, rows: int) -> tuple[int, ...]:
    """``rows`` rows of the case shape's width (uneven variants)."""
    return (rows,) + chunk_shape(case)[1:]


def shaped(flat: torch.Tensor, shape: tuple[int, ...], case: Case, rt: RankContext) -> torch.Tensor:
    """Flat values (compute dtype, row-major) as a tensor of ``shape`` in the case dtype on this device; a strided
    view when the case shape is "noncontig"."""
    dtype = values.dtype_of(case.dtype)
    if case.shape == "noncontig" and len(shape) >= 2:
        base = torch.zeros(shape[:-2] + (shape[-1], shape[-2]), dtype=torch.int64).to(dtype=dtype, device=rt.device)
        out = base.transpose(-1, -2)
    else:
        out = torch.zeros(shape, dtype=torch.int64).to(dtype=dtype, device=rt.device)
    if out.numel():
        out.copy_(flat.reshape(shape).to(dtype))
    return out


def movement_flat(case: Case, n: int, rank: int, salt: int = 0) -> torch.Tensor:
    """n movement values of ``rank``'s piece ``salt`` (element i's value does not depend on n)."""
    return values.movement_values(values.dtype_of(case.dtype), n, rank, salt)


def movement_piece(case: Case, rt: RankContext, shape: tuple[int, ...], rank: int, salt: int = 0) -> torch.Tensor:
    return shaped(movement_flat(case, math.prod(shape), rank, salt), shape, case, rt)


def stale(case: Case, rt: RankContext, shape: tuple[int, ...] | None = None, unlike=None) -> torch.Tensor:
    """An output buffer before the call, so a backend that writes nothing is caught.  Given ``unlike`` (the
    expected output: a tensor, or a list of tensors laid end to end) it differs from it in every element (1 where
    the expected is not 1, else 2; for bool the negation); otherwise it holds values of a rank that does not exist.
    """
    shape = chunk_shape(case) if shape is None else shape
    if unlike is None or any(e is None for e in (unlike if isinstance(unlike, list) else [unlike])):
        return movement_piece(case, rt, shape, rt.world_size + 1, 1)
    parts = unlike if isinstance(unlike, list) else [unlike]
    e = torch.cat([t.detach().cpu().reshape(-1).to(torch.complex128 if t.is_complex() else torch.float64)
                   for t in parts])
    if case.dtype == "bool":
        flat = (e == 0).to(torch.int64)
    else:
        flat = torch.where(e == 1, 2.0, 1.0).to(torch.float64)
    return shaped(flat, shape, case, rt)


def reduction_flat(case: Case, n: int, rank: int, ws: int) -> torch.Tensor:
    """Rank ``rank``'s reduction inputs as one flat vector of n values; collectives that reduce several pieces
    (reduce_scatter's chunks, coalesced tensors) cut their pieces out of it, so the pieces differ from each other
    (element i's value depends on i) and every reduction stays exact."""
    return values.reduction_values(values.dtype_of(case.dtype), case.op, n, rank, ws, value_pattern(case))


def expected_reduction_flat(case: Case, rt: RankContext, n: int) -> torch.Tensor:
    """The reduction of every peer's ``reduction_flat`` vector (flat, compute dtype)."""
    return reduce_for(case, rt, [reduction_flat(case, n, p, rt.world_size) for p in rt.peers()])


def pieces(flat: torch.Tensor, shapes: list[tuple[int, ...]]) -> list[torch.Tensor]:
    """Cut a flat vector into consecutive pieces of the given shapes' sizes (still flat)."""
    out, at = [], 0
    for s in shapes:
        n = math.prod(s)
        out.append(flat[at:at + n])
        at += n
    return out


LATE_ENTRY_S = 0.05


def entry_check(rt: RankContext, name: str):
    """Clock-free synchronisation check for barrier-like calls: ``enter()`` (just before the call) writes this
    rank's key to the world's store, the last rank entering late; ``after()`` (once the call returned) names the
    ranks whose key is still missing.  Returns (enter, after), or (no-op, None) where nobody can be waited for
    (a simulated world, world size 1, no store)."""
    if rt.store is None or rt.simulated or rt.world_size < 2:
        return (lambda: None), None
    keys = [f"conformance/{name}/{rt.seq}/{r}" for r in range(rt.world_size)]

    def enter():
        if rt.rank == rt.world_size - 1:
            time.sleep(LATE_ENTRY_S)
        rt.store.set(keys[rt.rank], "1")

    def after():
        if rt.store.check(keys):
            return None
        missing = [r for r, k in enumerate(keys) if not rt.store.check([k])]
        return f"{name} returned before ranks {missing} entered it"

    return enter, after


def reduced_piece(case: Case, rt: RankContext, n: int, shapes: list[tuple[int, ...]], k: int):
    """Piece ``k`` (shaped) of the reduction of every peer's ``n`` flat values cut into ``shapes``; None on an error
    path."""
    reduced = expected_reduction_flat(case, rt, n)
    return None if reduced is None else shaped(pieces(reduced, shapes)[k], shapes[k], case, rt)


def rows_from_first(x: torch.Tensor, rows: int) -> Optional[torch.Tensor]:
    """x's rows from the first, repeated to make ``rows``: what torch's fake writes into each all_to_all_single
    output split when split sizes are given (None when x has no rows to give)."""
    if x.shape[0] == 0:
        return None if rows else x[:0].clone()
    return x[torch.arange(rows, device=x.device) % x.shape[0]].clone()

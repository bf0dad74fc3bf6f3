"""Axes shared by the families: modes, shapes, which reduce ops apply to which dtype, ReduceOp construction."""

from __future__ import annotations

import math
import time
from typing import Iterator

import torch
import torch.distributed as dist

from . import values
from .spec import Case, RankContext

MODES = ("sync", "async")
SHAPES = ("scalar", "empty", "small", "odd", "noncontig")   # plus "large", added per family where it pays
PREMUL_FACTOR = 0.5   # an exact binary fraction


def reduce_ops_for(dtype_name: str) -> tuple[str, ...]:
    """The ReduceOps whose meaning is defined for the dtype (others are not generated; they have no oracle)."""
    k = values.kind(values.dtype_of(dtype_name))
    if k == "bool":
        return ("SUM", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR")
    if k in ("int", "uint"):
        return ("SUM", "AVG", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR")
    if k == "complex":   # torch.distributed itself refuses MIN/MAX/PRODUCT/bitwise on complex
        return ("SUM", "AVG", "PREMUL_SUM")
    return ("SUM", "AVG", "PRODUCT", "MIN", "MAX", "PREMUL_SUM")


def reduction_axes(collective: str, family: str, variants=("default",)) -> Iterator[Case]:
    """Every dtype x applicable op x shape x mode, plus one 1 MiB case (sync) per dtype for SUM."""
    for dtype in values.available_dtypes():
        for op in reduce_ops_for(dtype):
            for variant in variants:
                for shape in SHAPES:
                    for mode in MODES:
                        yield Case(collective, variant, dtype, op, shape, mode, family=family)
                if op == "SUM":
                    yield Case(collective, variant, dtype, op, "large", "sync", family=family)
        if "PREMUL_SUM" in reduce_ops_for(dtype):
            for mode in MODES:
                yield Case(collective, "tensor_factor", dtype, "PREMUL_SUM", "small", mode, family=family)


def movement_axes(collective: str, family: str, variants=("default",)) -> Iterator[Case]:
    """Every dtype x shape x mode for data-movement collectives, plus one 1 MiB case (sync) per dtype."""
    for dtype in values.available_dtypes():
        for variant in variants:
            for shape in SHAPES:
                for mode in MODES:
                    yield Case(collective, variant, dtype, None, shape, mode, family=family)
            yield Case(collective, variant, dtype, None, "large", "sync", family=family)


def reduce_op(case: Case, rt: RankContext):
    """The ReduceOp object for the case; PREMUL_SUM through _make_nccl_premul_sum (scalar or tensor factor)."""
    if case.op == "PREMUL_SUM":
        factor = PREMUL_FACTOR
        if case.variant == "tensor_factor":
            factor = torch.tensor([PREMUL_FACTOR], dtype=torch.float64, device=rt.device)
        return dist._make_nccl_premul_sum(factor)
    return getattr(dist.ReduceOp, case.op)


def reduction_tensor(case: Case, rt: RankContext, rank: int, salt: int = 0):
    """Rank ``rank``'s input for a reduction case, as a tensor of the case's shape on this device."""
    dtype = values.dtype_of(case.dtype)
    n = values.numel_of(case.shape, dtype)
    vals = values.reduction_values(dtype, case.op, n, rank + salt, rt.world_size)
    return values.materialize(vals, case.shape, dtype, rt.device), vals


def expected_reduction(case: Case, rt: RankContext, salt: int = 0) -> torch.Tensor:
    """The reduction over every peer's input, laid out like this rank's tensor."""
    dtype = values.dtype_of(case.dtype)
    n = values.numel_of(case.shape, dtype)
    per_rank = [values.reduction_values(dtype, case.op, n, p + salt, rt.world_size) for p in rt.peers()]
    reduced = rt.reduce(case.op, per_rank, dtype, PREMUL_FACTOR if case.op == "PREMUL_SUM" else 1.0)
    return values.materialize(reduced, case.shape, dtype, rt.device)


def movement_tensor(case: Case, rt: RankContext, rank: int, salt: int = 0) -> torch.Tensor:
    dtype = values.dtype_of(case.dtype)
    vals = values.movement_values(dtype, values.numel_of(case.shape, dtype), rank, salt)
    return values.materialize(vals, case.shape, dtype, rt.device)


def empty_like_case(case: Case, rt: RankContext, fill: float = 0) -> torch.Tensor:
    return values.alloc(case.shape, values.dtype_of(case.dtype), rt.device, fill)


def has_kwarg(fn, name: str) -> bool:
    """Feature detection by signature, never by version number."""
    import inspect
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------------------------
# Leaner axes for the families beyond all_reduce/broadcast.  They cover every value of every axis (each dtype, each
# shape, each mode, each op) without taking the full product, which only all_reduce pays for: a dtype gap shows on
# one shape as well as on five, and a root or a layout variant does not depend on the dtype.

SPREAD_DTYPES = ("float32", "bool", "complex64")   # plain, byte-backed (gloo maps Bool to uint8), view_as_real'd


def _case(collective, family, variant, dtype, op, shape, mode, params=(), skip=None, fresh_world=False) -> Case:
    return Case(collective, variant, dtype, op, shape, mode, family=family, params=tuple(params), skip=skip,
                fresh_world=fresh_world)


def spread_axes(collective: str, family: str, variant: str = "default", op=None, shapes=SHAPES, params=(),
                skip=None) -> Iterator[Case]:
    """A family's main form: every dtype (small, sync); every shape for SPREAD_DTYPES; float32 async on small and
    noncontig; one 1 MiB case (float32, sync).  ``shapes`` drops the shapes the form cannot take (e.g. scalar)."""
    for dtype in values.available_dtypes():
        yield _case(collective, family, variant, dtype, op, "small", "sync", params, skip)
    for dtype in SPREAD_DTYPES:
        for shape in shapes:
            if shape != "small":
                yield _case(collective, family, variant, dtype, op, shape, "sync", params, skip)
    for shape in ("small", "noncontig"):
        if shape in shapes:
            yield _case(collective, family, variant, "float32", op, shape, "async", params, skip)
    yield _case(collective, family, variant, "float32", op, "large", "sync", params, skip)


def variant_axes(collective: str, family: str, variant: str, op=None, params=(), skip=None,
                 shape: str = "small") -> Iterator[Case]:
    """A further form of a call already covered by ``spread_axes`` (another root, in-place, uneven, stack...):
    SPREAD_DTYPES in sync, float32 in async."""
    for dtype in SPREAD_DTYPES:
        yield _case(collective, family, variant, dtype, op, shape, "sync", params, skip)
    yield _case(collective, family, variant, "float32", op, shape, "async", params, skip)


def op_axes(collective: str, family: str, variant: str = "default", shape: str = "odd", params=(), skip=None,
            dtypes=None) -> Iterator[Case]:
    """The reduction table of a reducing collective: every dtype x applicable op other than SUM, sync, one shape
    (SUM comes from ``spread_axes``).  ``dtypes`` narrows it to a few for a secondary form."""
    for dtype in dtypes or values.available_dtypes():
        for op in reduce_ops_for(dtype):
            if op != "SUM":
                yield _case(collective, family, variant, dtype, op, shape, "sync", params, skip)


def error_case(collective: str, family: str, variant: str, params=(), skip=None, dtype="float32", op=None,
               shape="small") -> Case:
    """An invalid call (variant ``bad_*``): it must raise on every rank; the world is probed afterwards."""
    return _case(collective, family, variant, dtype, op, shape, "sync", params, skip, fresh_world=True)


def absent(name: str, module=dist):
    """The skip reason for an API this torch lacks, or None (feature detection, never version numbers)."""
    return None if hasattr(module, name) else f"dist.{name} absent in this torch"


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
    return values.reduction_values(values.dtype_of(case.dtype), case.op, n, rank, ws)


def expected_reduction_flat(case: Case, rt: RankContext, n: int) -> torch.Tensor:
    """The reduction of every peer's ``reduction_flat`` vector (flat, compute dtype)."""
    dtype = values.dtype_of(case.dtype)
    per_rank = [reduction_flat(case, n, p, rt.world_size) for p in rt.peers()]
    return rt.reduce(case.op, per_rank, dtype, PREMUL_FACTOR if case.op == "PREMUL_SUM" else 1.0)


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

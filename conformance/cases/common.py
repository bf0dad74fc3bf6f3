"""Axes shared by the families: modes, shapes, which reduce ops apply to which dtype, ReduceOp construction."""

from __future__ import annotations

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

"""What fakepg writes into outputs: the reduction table of the "uniform" world and the copy rules.

``reduce_uniform`` is the TRUE result of a world in which every rank holds this rank's data, computed in the
tensor's dtype the way a backend summing ``ws`` identical copies would: SUM = x*ws, AVG/MIN/MAX/BAND/BOR = x,
PRODUCT = x**ws, PREMUL_SUM(f) = (f*x)*ws, BXOR = x if ws is odd else 0; for bool SUM/AVG = OR = x and PRODUCT =
AND = x. Integer results wrap like the dtype (computed exactly in int64, which wraps mod 2**64, then cast back,
which wraps mod 2**bits); float8 dtypes are computed in float32 and cast back.

The copy helpers are the few ways a collective fills an output from this rank's data (docs/fakepg.md has the
table of which collective uses which).
"""

from __future__ import annotations

from operator import attrgetter

import torch
from torch.distributed import ReduceOp

R = ReduceOp.RedOpType
_shape = attrgetter("shape")
_INT64 = torch.int64
_FLOAT32 = torch.float32
_NATIVE_WRAP = (torch.int64, torch.uint64)


def _is_f8(dt: torch.dtype) -> bool:
    return dt.is_floating_point and dt.itemsize == 1


def _scale(t: torch.Tensor, k: int) -> None:
    """t *= k in t's dtype semantics (k >= 1 a Python int)."""
    dt = t.dtype
    if dt is torch.bool or k == 1:
        return  # OR of k copies of x is x
    if dt.is_floating_point and dt.itemsize == 1:
        t.copy_(t.to(_FLOAT32).mul_(k))
    elif dt.is_floating_point or dt.is_complex:
        t.mul_(k)
    elif dt in _NATIVE_WRAP:
        t.mul_(k)
    else:  # small integers: exact in int64, cast back wraps like the dtype would
        t.copy_(t.to(_INT64).mul_(k))


def _power(t: torch.Tensor, k: int) -> None:
    """t **= k in t's dtype semantics (k >= 1)."""
    dt = t.dtype
    if dt is torch.bool or k == 1:
        return  # AND of copies of x is x
    if _is_f8(dt):
        t.copy_(t.to(_FLOAT32).pow_(k))
    elif dt.is_floating_point:
        t.pow_(k)
    else:  # by squaring: exact for Gaussian integers (complex pow_ goes through polar
        # form and is inexact) and wrapping for integers (int64 wraps mod 2**64, the cast back mod 2**bits)
        base = t.clone() if dt.is_complex else t.to(_INT64)
        acc = torch.ones_like(base)
        while k:
            if k & 1:
                acc.mul_(base)
            k >>= 1
            if k:
                base = base * base
        t.copy_(acc)


def _identity(t, ws, factor):
    pass


def _sum(t, ws, factor):
    _scale(t, ws)


def _product(t, ws, factor):
    _power(t, ws)


def _bxor(t, ws, factor):
    if ws % 2 == 0:
        t.zero_()


def _premul_sum(t, ws, factor):
    dt = t.dtype
    if not (dt.is_floating_point or dt.is_complex):
        # what NCCL says: PreMulSum is defined for floating types only
        raise TypeError(f"fakepg: Cannot use ReduceOp.PREMUL_SUM with dtype {dt} (floating point only)")
    if isinstance(factor, torch.Tensor):
        factor = factor.to(t.device) if t.device.type != "meta" else factor.to("meta")
    if _is_f8(dt):
        t.copy_(t.to(_FLOAT32).mul_(factor).to(dt).to(_FLOAT32).mul_(ws))
    else:
        t.mul_(factor)
        _scale(t, ws)


# The reduction table of the "uniform" world (every rank holds x).
UNIFORM = {
    R.SUM: _sum,
    R.AVG: _identity,  # (x*ws)/ws
    R.PRODUCT: _product,
    R.MIN: _identity,
    R.MAX: _identity,
    R.BAND: _identity,
    R.BOR: _identity,
    R.BXOR: _bxor,
    R.PREMUL_SUM: _premul_sum,
}


def reduce_uniform(t: torch.Tensor, op, factor, ws: int) -> None:
    UNIFORM[op](t, ws, factor)


# --- copy rules ---------------------------------------------------------------------


def copy_all(dsts, srcs) -> None:
    """dsts[i] <- srcs[i], shapes equal, in one kernel call (what a C++ backend's loop costs)."""
    if dsts:
        torch._foreach_copy_(dsts, srcs)


def fit_each(dsts, srcs) -> None:
    """dsts[i] <- srcs[i], or copy_prefix where dim 0 differs."""
    if list(map(_shape, dsts)) == list(map(_shape, srcs)):
        copy_all(dsts, srcs)
    else:
        for d, s in zip(dsts, srcs):
            copy_prefix(d, s)


def copy_prefix(dst: torch.Tensor, src: torch.Tensor) -> None:
    """dst <- src; where dim-0 sizes differ copy the overlapping prefix and zero the rest.

    Used where "what this rank would receive" has a different size than the data this
    rank holds (uneven all_to_all splits, uneven all_gather slots): fakepg cannot derive
    the missing part, so it writes zeros (deterministic, never stale memory).
    """
    if dst.shape == src.shape:
        dst.copy_(src)
        return
    n = min(dst.shape[0], src.shape[0]) if dst.dim() and src.dim() else 0
    if n:
        dst[:n].copy_(src[:n])
    if n < dst.shape[0]:
        dst[n:].zero_()


def replicate(out: torch.Tensor, inp: torch.Tensor, ws: int) -> None:
    """out (ws equal chunks, flattened order) <- [inp] * ws, in one kernel when the layout allows."""
    try:
        if out.is_contiguous() and not out.is_meta:  # (meta's out= kernels are Python: they import torch._dynamo)
            if out.shape[0] == ws * inp.shape[0] and out.shape[1:] == inp.shape[1:]:  # concatenated
                torch.cat([inp] * ws, out=out)
                return
            if out.shape[0] == ws and out.shape[1:] == inp.shape:  # stacked
                torch.stack([inp] * ws, out=out)
                return
    except RuntimeError:  # inp is one of out's chunks (in-place all_gather, as FSDP2 does): out= refuses overlap
        pass
    n = inp.numel()
    try:
        view = out.view(ws, n)
    except RuntimeError:  # non-viewable output: chunk along dim 0
        for c in out.chunk(ws):
            c.copy_(inp.reshape(c.shape))
        return
    view.copy_(inp.reshape(1, n).expand(ws, n))


def take_chunk(out: torch.Tensor, inp: torch.Tensor, ws: int, i: int) -> None:
    """out <- chunk i of inp's ws equal chunks (flattened order), in one kernel when the layout allows."""
    rows = out.shape[0] if out.dim() else 1
    if out.is_contiguous() and not out.is_meta and inp.shape[0] == ws * rows and inp.shape[1:] == out.shape[1:]:
        try:
            torch.narrow_copy(inp, 0, i * rows, rows, out=out)
            return
        except RuntimeError:  # out is inside inp (in-place reduce_scatter): out= refuses overlap
            pass
    out.copy_(chunk_view(inp, ws, i).view(out.shape))


def chunk_view(t: torch.Tensor, ws: int, i: int) -> torch.Tensor:
    """Chunk i of ws equal chunks of t in flattened order (a view when t is contiguous)."""
    n = t.numel() // ws
    try:
        return t.view(ws, n)[i]
    except RuntimeError:
        return t.reshape(ws, n)[i]


def repeat_rows(dst: torch.Tensor, src: torch.Tensor) -> None:
    """dst <- the rows of src from the first, repeated (or cut short) to fill dst: what torch 2.13's fake writes
    into each all_to_all_single output split when split sizes are given."""
    rows = src.shape[0]
    for at in range(0, dst.shape[0] if rows else 0, rows or 1):
        n = min(rows, dst.shape[0] - at)
        dst.narrow(0, at, n).copy_(src.narrow(0, 0, n))

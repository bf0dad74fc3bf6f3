"""Deterministic inputs and exact comparison, the way nccl-tests does it.

Every rank builds its own inputs from (case, rank) and can therefore build every peer's inputs too, which is
how the oracle computes expected outputs without any data travelling.  Values are small integers or exact binary
fractions, so sums, products, minima and maxima are exact in any reduction order and the comparison is bitwise;
only AVG and PREMUL_SUM on low-precision floats get a tolerance (``tolerance``).

Arithmetic is always done in float64/int64 and cast to the case dtype at the end, because torch implements few
operators for uint16/32/64 and none for the float8 types.
"""

from __future__ import annotations

import math

import torch

from ..report.model import REDUCE_OPS   # every ReduceOp by name, in the report's order

# Every dtype a user could send through c10d, by torch attribute name.  Names missing from the installed torch are
# dropped by ``available_dtypes`` (uint16/32/64 arrived in 2.3, float8 in 2.1).
DTYPE_NAMES = (
    "float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2",
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "bool", "complex64", "complex128",
)


def available_dtypes() -> list[str]:
    return [name for name in DTYPE_NAMES if isinstance(getattr(torch, name, None), torch.dtype)]


def dtype_of(name: str) -> torch.dtype:
    return getattr(torch, name)


def kind(dtype: torch.dtype) -> str:
    """One of bool, int, uint, float, float8, complex: what arithmetic and which ops make sense."""
    if dtype == torch.bool:
        return "bool"
    if dtype.is_complex:
        return "complex"
    if dtype.is_floating_point:
        return "float8" if dtype.itemsize == 1 else "float"
    return "int" if dtype.is_signed else "uint"


def defined_ops(dtype_name: str) -> tuple[str, ...]:
    """The ReduceOps torch defines for the dtype: bitwise ops only for integral types (bool included), AVG and
    PREMUL_SUM only for arithmetic types (PREMUL_SUM not for integers: its factor is a float), and for complex only
    SUM, AVG and PREMUL_SUM (torch.distributed refuses an ordering or a product on complex tensors)."""
    k = kind(dtype_of(dtype_name))
    if k == "bool":
        return ("SUM", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR")
    if k in ("int", "uint"):
        return ("SUM", "AVG", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR")
    if k == "complex":
        return ("SUM", "AVG", "PREMUL_SUM")
    return ("SUM", "AVG", "PRODUCT", "MIN", "MAX", "PREMUL_SUM")


def undefined_ops(dtype_name: str) -> tuple[str, ...]:
    """The ReduceOps that mean nothing for the dtype: a backend must refuse them on every rank."""
    return tuple(op for op in REDUCE_OPS if op not in defined_ops(dtype_name))


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    k = kind(dtype)
    if k == "complex":
        return torch.complex128
    if k in ("float", "float8"):
        return torch.float64
    return torch.int64


def extremes(dtype: torch.dtype) -> list[float]:
    """Values at the edge of the dtype's range; data movement must carry them intact (e.g. bf16 above fp16 max)."""
    k = kind(dtype)
    if k == "bool":
        return [0, 1]
    if k in ("int", "uint"):
        info = torch.iinfo(dtype)
        # uint64's max does not fit int64; the largest power of two below it does and still uses the top bit.
        hi = info.max if dtype != torch.uint64 else 2**62
        return [info.min, hi, hi - 1] if k == "int" else [hi, hi - 1, 0]
    base = dtype if k != "complex" else (torch.float32 if dtype == torch.complex64 else torch.float64)
    info = torch.finfo(base)
    return [info.max, -info.max, info.tiny, -info.tiny, info.eps]


# ---------------------------------------------------------------------------------------------------------------
# Shapes.  Each is (name, shape, how the view is taken); "noncontig" hands the collective a strided view.
SHAPES = {
    "scalar": (),
    "empty": (0,),
    "small": (2, 3),
    "odd": (13,),
    "noncontig": (5, 4),   # built as (4, 5) then transposed: a non-contiguous view
    "large": None,          # at least 1 MiB, sized per dtype (see ``shape_for``)
}


def shape_for(shape_name: str, dtype: torch.dtype) -> tuple[int, ...]:
    if shape_name == "large":
        return ((1 << 20) // dtype.itemsize + 3,)   # just over 1 MiB, and odd
    return SHAPES[shape_name]


def alloc(shape_name: str, dtype: torch.dtype, device, fill: float = 0) -> torch.Tensor:
    """A tensor of the named shape, filled with ``fill``; "noncontig" returns a transposed view."""
    shape = shape_for(shape_name, dtype)
    if shape_name == "noncontig":
        base = torch.full((shape[1], shape[0]), fill, dtype=_compute_dtype(dtype)).to(dtype=dtype, device=device)
        return base.t()
    return torch.full(shape, fill, dtype=_compute_dtype(dtype)).to(dtype=dtype, device=device)


# ---------------------------------------------------------------------------------------------------------------
# Value patterns.  ``pattern(kind_of_values, dtype, n, rank, ws)`` returns n float64/int64 values for ``rank``.

def _palette(dtype: torch.dtype) -> list[float]:
    """Distinct values the dtype represents exactly, including its extremes (for data movement only)."""
    k = kind(dtype)
    if k == "bool":
        return [0, 1]
    small = [1, 2, 3, 4, 5, 6, 7, 8, 0.5, 1.5] if k in ("float", "float8", "complex") else list(range(1, 12))
    if k == "int":
        small += [-1, -2, -3, -7]
    # 0 last: a one-element tensor of a low rank never holds 0, so an output zeroed by mistake shows.
    return small + [e for e in extremes(dtype) if e != 0] + [0]


def movement_values(dtype: torch.dtype, n: int, rank: int, salt: int = 0) -> torch.Tensor:
    """Values that identify (rank, element) and use the dtype's range; exact under copies, not for arithmetic."""
    if kind(dtype) == "bool":
        # Two values only: a period that grows with the rank keeps every rank's pattern distinct.
        return ((torch.arange(n) + salt + rank + 1) // (rank + 1)) % 2   # starts at 1: a zeroed output shows
    pal = torch.tensor(_palette(dtype), dtype=_compute_dtype(dtype) if kind(dtype) != "complex" else torch.float64)
    idx = (torch.arange(n) * 5 + rank * 7 + salt * 3) % len(pal)
    vals = pal[idx]
    if kind(dtype) == "complex":
        imag = pal[(idx + 1) % len(pal)]
        vals = torch.complex(vals, -imag)
    return vals


def reduction_values(dtype: torch.dtype, op: str, n: int, rank: int, ws: int, pattern: str = "small") -> torch.Tensor:
    """Inputs for reduce-op ``op`` whose reduction over ``ws`` ranks is exact in ``dtype`` in any order.

    ``pattern`` "small" (small integers and binary fractions) or "edge" (values at the edge of the dtype's range,
    see ``edge_values``)."""
    if pattern == "edge":
        return edge_values(dtype, op, n, rank, ws)
    k = kind(dtype)
    # A Beatty sequence instead of 0..n-1: no period, so pieces cut from one vector (reduce_scatter chunks,
    # coalesced tensors) never repeat each other whatever their length; it only changes which small value lands
    # where, so exactness is unchanged.
    idx = torch.arange(n)
    i = idx + (idx.double() * 0.6180339887498949).floor().long()
    if k == "bool":
        # Elements true on several ranks at once, on one, and on none: an OR stored as a count shows up.
        vals = ((i + rank) % 3 != 0) if op in ("SUM", "MAX", "BOR", "BXOR", "AVG", "PREMUL_SUM") else ((i + rank) % 4 != 1)
        return vals.to(torch.int64)
    if op in ("SUM", "AVG", "PREMUL_SUM"):
        if k == "float8":
            # Two or three mantissa bits: exactly one rank holds a non-zero per element, so every partial sum is
            # exact at any world size (AVG is then compared with a tolerance).
            vals = torch.where(i % ws == rank, 1 + (i // ws) % 2, 0)
        else:
            # base(i) plus +1 on one rank and -1 on another: ranks differ, partial sums stay small at any world
            # size, and the total is ws * base(i), so AVG is exact too.
            base = 1 + i % 4
            vals = base + (i % ws == rank).to(torch.int64) - ((i + 1) % ws == rank).to(torch.int64)
    elif op == "PRODUCT":
        # Exactly one rank contributes 2 per element; signed kinds also flip signs.  Product magnitude is 2.
        vals = torch.where((i + rank) % ws == 0, 2, 1)
        if k in ("int", "float", "float8", "complex"):
            vals = vals * torch.where((i * (rank + 1)) % 5 == 1, -1, 1)
    elif op in ("MIN", "MAX"):
        vals = (i * 7 + rank * 5) % 11
        if k in ("int", "float", "complex"):
            vals = vals - 5
        if k == "float8":
            vals = vals % 7
    elif op in ("BAND", "BOR", "BXOR"):
        vals = (i * 37 + rank * 11 + 5) % 64
    else:
        raise ValueError(f"no value pattern for op {op}")
    vals = vals.to(_compute_dtype(dtype) if k != "complex" else torch.float64)
    if k == "complex":
        vals = torch.complex(vals, vals.flip(0) if op != "PRODUCT" else torch.zeros_like(vals))
    return vals


# ---------------------------------------------------------------------------------------------------------------
# Edge-of-range reductions.  Each element is one scenario, cycling through a list; a scenario gives every rank a
# value such that the exact reduction needs the dtype's own range: a backend that reduces through a narrower
# intermediate type overflows or flushes, one whose integers do not wrap as torch's do gets a different value.
# Every scenario stays exact in any reduction order: floats never overflow or round in a partial result
# (sums only of equal powers of two, and only where the world size fits the dtype's precision), integers wrap
# modulo 2**bits, which is order-independent.

def edge_ops(dtype_name: str) -> tuple[str, ...]:
    """The defined ops with edge-of-range inputs: all but bool's (no range) and integer AVG (a wrapped sum has no
    average any backend agrees on)."""
    k = kind(dtype_of(dtype_name))
    if k == "bool":
        return ()
    return tuple(op for op in defined_ops(dtype_name) if not (op == "AVG" and k in ("int", "uint")))


def _significant_bits(x: int) -> int:
    x = abs(x)
    while x and x % 2 == 0:
        x //= 2
    return x.bit_length()


def _float_scenarios(dtype: torch.dtype, op: str, ws: int) -> list:
    """Per scenario: a function (rank, owner) -> value, for a float dtype (or a complex dtype's parts)."""
    info = torch.finfo(dtype)
    top = math.ldexp(1.0, math.frexp(info.max)[1] - 1)     # the largest power of two the dtype holds
    tiny = info.tiny                                        # its smallest normal
    spread = 2 ** max(0, math.ceil(math.log2(ws)))          # ws equal values of x/spread sum to at most x
    exact_ws = _significant_bits(ws) <= -math.log2(info.eps) + 1
    one = lambda v: (lambda r, o: v if r == o else 0.0)     # noqa: E731  one rank holds v, the others 0
    every = lambda v: (lambda r, o: v)                      # noqa: E731  every rank holds v
    if op in ("SUM", "PREMUL_SUM"):
        small = tiny * (2 if op == "PREMUL_SUM" else 1)     # the factor 0.5 must not push it below normal
        out = [one(info.max), one(-info.max), one(small), one(-small)]
        if exact_ws:
            out += [every(top / spread), every(small)]
        return out
    if op == "AVG":
        return [every(top / spread), every(-top / spread), every(tiny * spread)]
    if op == "PRODUCT":
        half_top = lambda r, o: top / 2 if r == o else (2.0 if r == (o + 1) % ws else 1.0)   # noqa: E731
        tiny_pair = lambda r, o: 2 * tiny if r == o else (0.5 if r == (o + 1) % ws else 1.0)  # noqa: E731
        ones = lambda v: (lambda r, o: v if r == o else 1.0)                                   # noqa: E731
        return [ones(info.max), ones(-info.max), ones(tiny), half_top, tiny_pair]
    if op in ("MIN", "MAX"):
        pool = [info.max, -info.max, tiny, -tiny, top / 2]
        return [lambda r, o, s=s: pool[(s + r) % len(pool)] for s in range(len(pool))]
    raise ValueError(f"no edge pattern for {op} on {dtype}")


def _int_scenarios(dtype: torch.dtype, op: str, ws: int) -> list:
    """Per scenario: a function (rank, owner) -> value (an int64 bit pattern for uint64)."""
    info = torch.iinfo(dtype)
    signed = kind(dtype) == "int"
    bits = info.bits
    hi = info.max if dtype != torch.uint64 else -1          # uint64's all-ones, as the int64 bit pattern
    lo = info.min
    top_bit = lo if signed else (1 << (bits - 1) if bits < 64 else -(1 << 63))   # only the top bit set
    if op == "SUM":
        plus_one = lambda r, o: hi if r == o else (1 if r == (o + 1) % ws else 0)   # noqa: E731  hi + 1 wraps
        out = [lambda r, o: hi, plus_one, lambda r, o: top_bit]
        if signed:
            out.append(lambda r, o: lo + 1 if r == o else -2 if r == (o + 1) % ws else 0)
        return out
    if op == "PRODUCT":
        odd = (1 << (bits // 2)) + 1                         # its powers overflow and wrap to odd values
        out = [lambda r, o: odd, lambda r, o: hi if r == o else 3]
        if signed:
            out.append(lambda r, o: lo if r == o else -1)    # min * -1 wraps to min
        return out
    if op in ("MIN", "MAX"):
        ordered_hi = info.max if dtype != torch.uint64 else 2 ** 62   # int64 compute: stay below 2**63
        pool = [lo, ordered_hi, ordered_hi - 1, lo + 1, 0] + ([-1] if signed else [])
        return [lambda r, o, s=s: pool[(s + r) % len(pool)] for s in range(len(pool))]
    if op in ("BAND", "BOR", "BXOR"):
        ones = -1                                            # every bit set (truncated to the dtype's width)
        alternate = int("01" * 32, 2)                        # 0x5555...: truncated, still alternating
        pool = [ones, top_bit, alternate, ~alternate, hi, 0]
        return [lambda r, o, s=s: pool[(s + r) % len(pool)] for s in range(len(pool))]
    raise ValueError(f"no edge pattern for {op} on {dtype}")


def edge_values(dtype: torch.dtype, op: str, n: int, rank: int, ws: int) -> torch.Tensor:
    """Rank ``rank``'s edge-of-range inputs for ``op``: element i plays scenario i % len(scenarios), with rank
    (i // len) % ws as the scenario's owner (so every rank takes the distinguished role somewhere)."""
    k = kind(dtype)
    if k in ("int", "uint"):
        scenarios = _int_scenarios(dtype, op, ws)
        vals = [scenarios[i % len(scenarios)](rank, (i // len(scenarios)) % ws) for i in range(n)]
        return wrap(torch.tensor(vals, dtype=torch.int64), dtype)    # bit patterns as the dtype holds them
    base = dtype if k != "complex" else (torch.float32 if dtype == torch.complex64 else torch.float64)
    scenarios = _float_scenarios(base, op, ws)
    part = lambda shift: torch.tensor(                      # noqa: E731
        [scenarios[(i + shift) % len(scenarios)](rank, (i // len(scenarios)) % ws) for i in range(n)],
        dtype=torch.float64)
    if k == "complex":
        return torch.complex(part(0), part(1))
    return part(0)


def wrap(values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """int64 results as the integer dtype holds them: two's-complement wrap modulo 2**bits (torch's own integer
    arithmetic).  64-bit results already wrapped in int64; uint64 keeps its int64 bit pattern."""
    if kind(dtype) not in ("int", "uint") or dtype.itemsize == 8:
        return values
    bits = dtype.itemsize * 8
    if kind(dtype) == "uint":
        return torch.remainder(values, 1 << bits)
    half = 1 << (bits - 1)
    return torch.remainder(values + half, 1 << bits) - half


def materialize(values: torch.Tensor, shape_name: str, dtype: torch.dtype, device) -> torch.Tensor:
    """Lay ``values`` (flat, compute dtype) into a tensor of the named shape, dtype and device."""
    out = alloc(shape_name, dtype, device)
    if out.numel():
        out.copy_(values.reshape(out.shape).to(dtype))
    return out


def numel_of(shape_name: str, dtype: torch.dtype) -> int:
    return math.prod(shape_for(shape_name, dtype))


# ---------------------------------------------------------------------------------------------------------------
# Reductions (in compute dtype) and comparison.

def reduce_values(op: str, stack: list[torch.Tensor], dtype: torch.dtype, factor: float = 1.0) -> torch.Tensor:
    """The true reduction of per-rank value vectors, as the dtype would hold it."""
    k = kind(dtype)
    t = torch.stack(stack)
    if k in ("int", "uint"):
        return wrap(_reduce_arith(op, t, k, factor, len(stack)), dtype)
    if k == "bool":
        b = t != 0
        if op in ("SUM", "MAX", "BOR"):
            return b.any(0).to(torch.int64)
        if op in ("PRODUCT", "MIN", "BAND"):
            return b.all(0).to(torch.int64)
        if op == "BXOR":
            return (b.sum(0) % 2).to(torch.int64)
        raise ValueError(f"{op} has no boolean meaning")
    return _reduce_arith(op, t, k, factor, len(stack))


def _reduce_arith(op: str, t: torch.Tensor, k: str, factor: float, ws: int) -> torch.Tensor:
    if op == "SUM":
        return t.sum(0)
    if op == "AVG":
        s = t.sum(0)
        return s // ws if k in ("int", "uint") else s / ws
    if op == "PREMUL_SUM":
        return (t * factor).sum(0)
    if op == "PRODUCT":
        return t.prod(0)
    if op == "MIN":
        return t.min(0).values
    if op == "MAX":
        return t.max(0).values
    if op in ("BAND", "BOR", "BXOR"):
        acc = t[0].clone()
        for row in t[1:]:
            acc = acc & row if op == "BAND" else acc | row if op == "BOR" else acc ^ row
        return acc
    raise ValueError(f"unknown reduce op {op}")


def tolerance(dtype: torch.dtype, op: str | None) -> float:
    """Tolerance relative to the result's magnitude (absolute below 1); 0 means bitwise.  Only divisions are
    inexact."""
    if op not in ("AVG", "PREMUL_SUM") or kind(dtype) in ("int", "uint", "bool"):
        return 0.0
    return {torch.float16: 1e-2, torch.bfloat16: 1e-1}.get(dtype, 0.5 if kind(dtype) == "float8" else 1e-9)


def describe_mismatch(actual: torch.Tensor, expected: torch.Tensor, tol: float) -> str | None:
    """None when equal (bitwise, or within ``tol``); else a short reason naming the first wrong element."""
    if actual.dtype != expected.dtype:
        return f"dtype changed: expected {expected.dtype}, got {actual.dtype}"
    if tuple(actual.shape) != tuple(expected.shape):
        return f"shape changed: expected {tuple(expected.shape)}, got {tuple(actual.shape)}"
    if actual.device != expected.device:
        return f"device changed: expected {expected.device}, got {actual.device}"
    if actual.numel() == 0:
        return None
    a, e = actual.detach().cpu().contiguous(), expected.detach().cpu().contiguous()
    if tol == 0.0:
        # Bitwise: also catches a bool tensor holding byte 2, or -0.0 where 0.0 belongs.
        ab, eb = a.reshape(-1).view(torch.uint8), e.reshape(-1).view(torch.uint8)
        if torch.equal(ab, eb):
            return None
        width = a.element_size()
        bad = int((ab != eb).nonzero()[0]) // width
    else:
        far = _beyond(a, e, tol)
        if not bool(far.any()):
            return None
        bad = int(far.nonzero()[0])
    nbad = _count_bad(a, e, tol)
    return (f"{nbad} of {a.numel()} elements wrong; first at flat index {bad}: "
            f"expected {_show(e.reshape(-1)[bad])}, got {_show(a.reshape(-1)[bad])}")


def _as_compute(t: torch.Tensor) -> torch.Tensor:
    return t.to(_compute_dtype(t.dtype)) if kind(t.dtype) != "complex" else t.to(torch.complex128)


def _count_bad(a: torch.Tensor, e: torch.Tensor, tol: float) -> int:
    if tol == 0.0:
        w = a.element_size()
        return int((a.reshape(-1).view(torch.uint8).view(-1, w) != e.reshape(-1).view(torch.uint8).view(-1, w))
                   .any(1).sum())
    return int(_beyond(a, e, tol).sum())


def _beyond(a: torch.Tensor, e: torch.Tensor, tol: float) -> torch.Tensor:
    """Flat mask of the elements further than ``tol`` (relative, absolute below 1) from the expected value."""
    af, ef = _as_compute(a).reshape(-1), _as_compute(e).reshape(-1)
    near = (af == ef) | ((af - ef).abs() <= tol * ef.abs().clamp(min=1.0))
    return ~near


def _show(x: torch.Tensor) -> str:
    if x.dtype == torch.bool:
        raw = int(x.view(torch.uint8))
        return str(bool(raw)) if raw in (0, 1) else f"bool with raw byte {raw}"
    return repr(_as_compute(x).item())

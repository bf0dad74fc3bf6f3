"""The case axes and the coverage policy, in one place: which dtypes, reduce ops, shapes and modes each form of a
call gets.  Families describe their cases with these builders only.

Dtype tiers (``TIERS``): ``all`` is every dtype this torch has; the others are named subsets, each for one reason:

    representative  float32, bool, complex64      a plain float, a byte-backed type (gloo maps bool to uint8) and
                                                   a view_as_real'd complex: what a transport gets wrong differently
    transport       + bfloat16, int64              adds a 16-bit float and a 64-bit integer (p2p, funcol movement)
    sizes           float32 bfloat16 int64 bool complex128   one dtype per element size (1..16 bytes)
    common          float32 int64 bfloat16 float16 int32 uint8 bool complex64   every kind at its common widths
    kinds           float32 int32 bool complex64   one dtype per kind of reduce-op table
    arith           float32 bfloat16 int64         arithmetic types (subgroups, functional broadcast/scatter)
    pair            float32 int64                  one float and one integer
    one             float32

Coverage policy (the recipes below):
  * all_reduce and broadcast: the full product (``reduction_table``, ``movement_table``);
  * a family's main form: ``spread`` (every dtype on small/sync; every shape for ``representative``; float32 async
    on small and noncontig; one 1 MiB case);
  * further forms (roots, in-place, layouts, uneven): ``variant`` (``representative`` sync, float32 async);
  * forms whose interest is not the dtype (tags, any-source, subgroups in p2p): ``sampled`` (``SAMPLES``);
  * a reducing collective's op table: ``op_table`` (every dtype x every defined op but SUM, one shape, sync);
  * edge-of-range reductions: ``edge`` (every dtype x ``values.edge_ops``, odd, sync; SUM only on secondary forms);
  * reduce ops a dtype does not define: ``undefined`` (every dtype x ``values.undefined_ops``, small, sync): an
    error path, every rank must refuse;
  * invalid calls: ``error_case`` (float32, small, sync, the world proven usable afterwards).
"""

from __future__ import annotations

import inspect
from typing import Callable, Iterable, Iterator, Optional, Tuple, Union

import torch.distributed as dist

from . import values
from .spec import Case

MODES = ("sync", "async")
SHAPES = ("scalar", "empty", "small", "odd", "noncontig")   # plus "large", added per family where it pays
NO_SCALAR = tuple(s for s in SHAPES if s != "scalar")       # a 0-d tensor has no dim 0 to split or concatenate

TIERS = {
    "representative": ("float32", "bool", "complex64"),
    "transport": ("float32", "bfloat16", "int64", "bool", "complex64"),
    "sizes": ("float32", "bfloat16", "int64", "bool", "complex128"),
    "common": ("float32", "int64", "bfloat16", "float16", "int32", "uint8", "bool", "complex64"),
    "kinds": ("float32", "int32", "bool", "complex64"),
    "arith": ("float32", "bfloat16", "int64"),
    "pair": ("float32", "int64"),
    "one": ("float32",),
}

# A few (dtype, shape) pairs, each dtype on a different shape: for forms whose interest is not the dtype.
SAMPLES = (("float32", "small"), ("int64", "odd"), ("bfloat16", "large"))

ACCEPTED_INVALID = "accepted invalid arguments"
UNDEFINED_REDUCTION = "computed an undefined reduction"


def dtypes(tier: Union[str, Iterable[str]]) -> tuple[str, ...]:
    """The dtypes of a tier (or an explicit list), restricted to those this torch has."""
    have = values.available_dtypes()
    names = have if tier == "all" else TIERS[tier] if isinstance(tier, str) else tuple(tier)
    return tuple(d for d in names if d in have)


def product(collective: str, variant: str = "default", *, tier="all", ops=(None,), shapes=("small",),
            modes=("sync",), **fields) -> Iterator[Case]:
    """The one axis builder: tier x ops x shapes x modes, dtype outermost.  ``ops`` is a tuple or a function of the
    dtype name; ``fields`` are the other Case fields (skip, params, error, needs, group, ...)."""
    for dtype in dtypes(tier):
        for op in (ops(dtype) if callable(ops) else ops):
            for shape in shapes:
                for mode in modes:
                    yield Case(collective, variant, dtype, op, shape, mode, **fields)


def single(collective: str, variant: str = "default", *, dtype="float32", op=None, shape="small", mode="sync",
           **fields) -> Case:
    return Case(collective, variant, dtype, op, shape, mode, **fields)


def sampled(collective: str, variant: str = "default", *, count: int = len(SAMPLES), mode="sync",
            **fields) -> Iterator[Case]:
    """The first ``count`` of ``SAMPLES``."""
    for dtype, shape in SAMPLES[:count]:
        yield single(collective, variant, dtype=dtype, shape=shape, mode=mode, **fields)


def bare(collective: str, variant: str = "default", *, mode="sync", **fields) -> Case:
    """A case with no dtype, op or shape axis (barriers, group creation, object collectives)."""
    return Case(collective, variant, mode=mode, **fields)


# -- recipes ------------------------------------------------------------------------------------------------------

def _other_ops(dtype: str) -> tuple[str, ...]:
    return tuple(op for op in values.defined_ops(dtype) if op != "SUM")


def reduction_table(collective: str, variant: str = "default", **fields) -> Iterator[Case]:
    """Every dtype x defined op x shape x mode, a 1 MiB SUM per dtype, and PREMUL_SUM with a tensor factor."""
    for dtype in dtypes("all"):
        for op in values.defined_ops(dtype):
            yield from product(collective, variant, tier=[dtype], ops=(op,), shapes=SHAPES, modes=MODES, **fields)
            if op == "SUM":
                yield single(collective, variant, dtype=dtype, op=op, shape="large", **fields)
        if "PREMUL_SUM" in values.defined_ops(dtype):
            yield from product(collective, "tensor_factor", tier=[dtype], ops=("PREMUL_SUM",), modes=MODES, **fields)


def movement_table(collective: str, variant: str = "default", **fields) -> Iterator[Case]:
    """Every dtype x shape x mode for a data-movement collective, plus a 1 MiB case (sync) per dtype."""
    for dtype in dtypes("all"):
        yield from product(collective, variant, tier=[dtype], shapes=SHAPES, modes=MODES, **fields)
        yield single(collective, variant, dtype=dtype, shape="large", **fields)


def spread(collective: str, variant: str = "default", *, op=None, shapes=SHAPES, **fields) -> Iterator[Case]:
    """A family's main form: every dtype (small, sync); every shape for the representative tier; float32 async on
    small and noncontig; one 1 MiB case (float32, sync).  ``shapes`` drops the shapes the form cannot take."""
    yield from product(collective, variant, ops=(op,), **fields)
    for dtype in dtypes("representative"):
        yield from product(collective, variant, tier=[dtype], ops=(op,),
                           shapes=[s for s in shapes if s != "small"], **fields)
    yield from product(collective, variant, tier="one", ops=(op,),
                       shapes=[s for s in ("small", "noncontig") if s in shapes], modes=("async",), **fields)
    yield single(collective, variant, op=op, shape="large", **fields)


def variant(collective: str, name: str, *, op=None, shape: str = "small", **fields) -> Iterator[Case]:
    """A further form of a call already covered by ``spread`` (another root, in-place, uneven, stack...): the
    representative tier in sync, float32 in async."""
    yield from product(collective, name, tier="representative", ops=(op,), shapes=(shape,), **fields)
    yield single(collective, name, op=op, shape=shape, mode="async", **fields)


def op_table(collective: str, variant: str = "default", *, shape: str = "odd", tier="all",
             **fields) -> Iterator[Case]:
    """The reduction table of a reducing collective: every dtype x defined op other than SUM, sync, one shape
    (SUM comes from ``spread``)."""
    yield from product(collective, variant, tier=tier, ops=_other_ops, shapes=(shape,), **fields)


def edge(collective: str, variant: str = "default", *, all_ops: bool = True, **fields) -> Iterator[Case]:
    """Reductions whose exact result needs the dtype's own range (``values.edge_values``): every dtype with edge
    inputs x its edge ops (``all_ops``, the main forms) or SUM alone (secondary forms), odd shape, sync.  The
    variant is ``edge`` (or ``<variant>_edge``); the family reads ``values=edge`` from the params."""
    name = "edge" if variant == "default" else f"{variant}_edge"
    params = dict(fields.pop("params", ()), values="edge")
    ops = values.edge_ops if all_ops else (lambda d: tuple(op for op in values.edge_ops(d) if op == "SUM"))
    yield from product(collective, name, ops=ops, shapes=("odd",), params=params, **fields)


def undefined(collective: str, variant: str = "default", **fields) -> Iterator[Case]:
    """Every dtype x the reduce ops it does not define: an error path (every rank must refuse; the world is proven
    usable afterwards)."""
    yield from product(collective, variant, ops=values.undefined_ops, error=UNDEFINED_REDUCTION, fresh_world=True,
                       **fields)


def error_case(collective: str, variant: str, *, dtype="float32", op=None, shape="small", **fields) -> Case:
    """An invalid call (variant ``bad_*``): it must raise on every rank; the world is proven usable afterwards."""
    fields.setdefault("error", ACCEPTED_INVALID)
    return single(collective, variant, dtype=dtype, op=op, shape=shape, fresh_world=True, **fields)


# -- feature detection (never version numbers) ----------------------------------------------------------------------

def has_kwarg(fn: Callable, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def absent(name: str, module=dist) -> Optional[str]:
    """The skip reason for an API this torch lacks, or None."""
    return None if hasattr(module, name) else f"dist.{name} absent in this torch"


def renamed(new: str, old: str, module=dist) -> Tuple[str, str]:
    """(the name that carries the full table, the other one) for an API torch renamed (all_gather_into_tensor ->
    all_gather_single in 2.13, ...): the new name where this torch has it, else the old one, so that older torch
    loses only the few alias cases, never the table."""
    return (new, old) if hasattr(module, new) else (old, new)


def lacks_kwarg(fn: Callable, name: str, what: str) -> Optional[str]:
    """The skip reason for a keyword argument this torch's ``fn`` lacks, or None."""
    return None if has_kwarg(fn, name) else f"{what} has no {name} in this torch"

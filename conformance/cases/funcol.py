"""Functional collectives (``torch.distributed._functional_collectives``), recorded as ``funcol.<name>``.

They return new tensors (``AsyncCollectiveTensor`` in eager mode) and leave their inputs unmodified, so here the
*inputs* are the harness's outputs (expected: unchanged) and each result is compared in ``after`` against the
oracle, bitwise except for AVG.  Group argument: ``dist.group.WORLD``; reduce ops as lowercase strings.

Modes: ``sync`` uses each result directly, as returned (a computation on an AsyncCollectiveTensor waits for it
implicitly); ``async`` touches nothing until ``funcol.wait_tensor``.  funcol has no Work, so in ``async`` the call
hands the harness a small handle whose ``wait()`` is ``funcol.wait_tensor`` on every result and whose
``is_completed()`` says whether that ran; there is no future to check.

Shapes: ``small`` is the per-rank chunk (2, 3): all_gather gathers world-size chunks, reduce_scatter and
all_to_all_single take world-size chunks of it as input.  ``odd``/``noncontig`` as in ``values``.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.distributed as dist

from . import values
from .spec import Case, Prepared, RankContext, Spec

try:
    import torch.distributed._functional_collectives as funcol
except ImportError:   # pragma: no cover - every torch this suite supports has it
    funcol = None

CHUNK = (2, 3)
FULL_OPS_DTYPES = ("float32", "int64")          # every op in FUNCOL_OPS; the rest SUM only
SUM_DTYPES = ("bfloat16", "float16", "int32", "uint8", "bool", "complex64")
FUNCOL_OPS = ("SUM", "AVG", "PRODUCT", "MIN", "MAX")
MOVE_DTYPES = ("float32", "bfloat16", "int64", "bool", "complex64")
MODES = ("sync", "async")


def _ops_for(dtype: str) -> list[str]:
    from .common import reduce_ops_for
    ops = FUNCOL_OPS if dtype in FULL_OPS_DTYPES else ("SUM",)
    return [op for op in ops if op in reduce_ops_for(dtype)]


class _Handle:
    """What an async funcol call gives the harness to wait on: wait() is funcol.wait_tensor on every result."""

    def __init__(self, results, holder):
        self._results, self._holder, self._done = results, holder, False

    def wait(self, timeout=None):
        self._holder["got"] = [funcol.wait_tensor(r) for r in self._results]
        self._done = True
        return True

    def is_completed(self):
        return self._done


class Funcol(Spec):
    name = "funcol"

    # -- which cases exist ----------------------------------------------------------------------------------------
    def cases(self, env):
        ws = env.world_size

        def case(name, variant, dtype, op, shape, mode, **params):
            skip = None if funcol is not None and hasattr(funcol, name) else f"funcol.{name} absent in this torch"
            return Case(f"funcol.{name}", variant, dtype, op, shape, mode, family=self.name, skip=skip,
                        params=tuple(sorted(params.items())))

        for dtype in FULL_OPS_DTYPES + SUM_DTYPES:
            for op in _ops_for(dtype):
                for mode in MODES:
                    yield case("all_reduce", "default", dtype, op, "small", mode)
        for shape in ("odd", "noncontig", "scalar"):
            yield case("all_reduce", "default", "float32", "SUM", shape, "sync")

        for name, dtypes in (("all_gather_single", MOVE_DTYPES), ("all_gather_tensor", ("float32", "int64"))):
            for dtype in dtypes:
                for mode in MODES:
                    yield case(name, "default", dtype, None, "small", mode, dim=0)
            for mode in MODES:
                yield case(name, "dim1", "float32", None, "small", mode, dim=1)

        for name, dtypes in (("reduce_scatter_single", ("float32", "bfloat16", "int64")),
                             ("reduce_scatter_tensor", ("float32", "int64"))):
            for dtype in dtypes:
                for mode in MODES:
                    yield case(name, "default", dtype, "SUM", "small", mode, dim=0)
            if name == "reduce_scatter_single":
                for op in ("AVG", "MAX"):
                    for mode in MODES:
                        yield case(name, "default", "float32", op, "small", mode, dim=0)
            for mode in MODES:
                yield case(name, "dim1", "float32", "SUM", "small", mode, dim=1)

        for dtype in MOVE_DTYPES:
            for mode in MODES:
                yield case("all_to_all_single", "default", dtype, None, "small", mode)
        for mode in MODES:
            yield replace(case("all_to_all_single", "splits", "float32", None, "small", mode),
                          real_world_only="not meaningful in a simulated world: uneven splits depend on the sender")

        for root in sorted({0, ws - 1}):
            for dtype in ("float32", "bfloat16", "int64"):
                for mode in MODES:
                    yield case("broadcast", f"root{root}", dtype, None, "small", mode, root=root)

        for dtype in ("float32", "int64"):
            for op in ("SUM", "MAX"):
                for mode in MODES:
                    yield case("all_reduce_coalesced", "default", dtype, op, "small", mode)
            for mode in MODES:
                yield case("all_gather_single_coalesced", "default", dtype, None, "small", mode)
                yield case("reduce_scatter_single_coalesced", "default", dtype, "SUM", "small", mode)
        for mode in MODES:
            yield case("all_gather_into_tensor_coalesced", "default", "float32", None, "small", mode)
            yield case("reduce_scatter_tensor_coalesced", "default", "float32", "SUM", "small", mode)

        for variant in ("twice", "chain"):
            for dtype in ("float32", "int64"):
                yield case("wait_tensor", variant, dtype, "SUM", "small", "async")

    # -- how a rank calls it --------------------------------------------------------------------------------------
    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        name = case.collective.removeprefix("funcol.")
        inputs, run, expected = getattr(self, "_" + name)(case, rt)
        holder: dict = {}

        def call(async_op):
            results = run()
            if async_op:
                return _Handle(results, holder)
            # sync: the results are used directly, as returned: a computation on an AsyncCollectiveTensor waits
            # for it (so a backend error surfaces here, in the call).  The results themselves are compared, not a
            # copy: copying a bool tensor normalises its bytes and would hide a backend that stores an OR as a count.
            for r in results:
                r.sum()
            holder["got"] = list(results)
            return None

        def after():
            got = holder.get("got")
            if got is None:
                return "the results were never waited for"
            if len(got) != len(expected):
                return f"{len(got)} results, expected {len(expected)}"
            for i, (g, e) in enumerate(zip(got, expected)):
                if e is None:
                    continue
                bad = values.describe_mismatch(g, e, values.tolerance(e.dtype, case.op))
                if bad:
                    return (f"result {i}: " if len(expected) > 1 else "result: ") + bad
            return None

        return Prepared(call, outputs=list(inputs), expected=[t.clone() for t in inputs], op=case.op,
                        check_future=False, after=after)

    # Each builder returns (inputs, run() -> list of results, expected results).
    def _all_reduce(self, case, rt):
        x, exp = _reduction(case, rt, case.shape)
        return [x], lambda: [funcol.all_reduce(x, case.op.lower(), dist.group.WORLD)], [exp]

    def _all_gather_single(self, case, rt, name="all_gather_single"):
        dim = case.param("dim", 0)
        x = _movement(case, rt, rt.rank)
        exp = torch.cat([_movement(case, rt, rt.peer(j)) for j in range(rt.world_size)], dim=dim)
        fn = getattr(funcol, name)
        return [x], lambda: [fn(x, dim, dist.group.WORLD)], [exp]

    def _all_gather_tensor(self, case, rt):
        return self._all_gather_single(case, rt, "all_gather_tensor")

    def _reduce_scatter_single(self, case, rt, name="reduce_scatter_single"):
        dim = case.param("dim", 0)
        ws = rt.world_size
        full = _full_shape(ws, dim)
        x, per_rank = _reduction_input(case, rt, full)
        reduced = _reduce(case, rt, per_rank, full)
        exp = reduced.chunk(ws, dim=dim)[rt.rank].contiguous()
        fn = getattr(funcol, name)
        return [x], lambda: [fn(x, case.op.lower(), dim, dist.group.WORLD)], [exp]

    def _reduce_scatter_tensor(self, case, rt):
        return self._reduce_scatter_single(case, rt, "reduce_scatter_tensor")

    def _all_to_all_single(self, case, rt):
        ws, r = rt.world_size, rt.rank
        if case.variant == "splits":
            # rank i sends 1 + (i + j) % 2 rows of width 3 to rank j (symmetric, so every rank knows its receives)
            rows = lambda i, j: 1 + (i + j) % 2
            ins = [rows(r, j) for j in range(ws)]
            outs = [rows(j, r) for j in range(ws)]
        else:
            ins = outs = None
        dtype = values.dtype_of(case.dtype)

        def input_of(i):
            sizes = [rows(i, j) for j in range(ws)] if ins is not None else [CHUNK[0]] * ws
            n = sum(sizes) * CHUNK[1]
            flat = values.movement_values(dtype, n, i)
            return flat.to(dtype).reshape(sum(sizes), CHUNK[1]), sizes

        x, _ = input_of(r)
        x = x.to(rt.device)
        pieces = []
        for j in range(ws):
            their, sizes = input_of(rt.peer(j))
            start = sum(sizes[:r])
            pieces.append(their[start:start + sizes[r]])
        exp = torch.cat(pieces).to(rt.device)
        if ins is not None and rt.simulated:
            # Uneven splits depend on the sender's rank: no world where every rank holds this rank's data can
            # agree on them (rank j would send rows(r, r) where rows(j, r) are expected), so nothing is derivable.
            exp = None
        return [x], lambda: [funcol.all_to_all_single(x, outs, ins, dist.group.WORLD)], [exp]

    def _broadcast(self, case, rt):
        root = case.param("root")
        x = _movement(case, rt, rt.rank)
        exp = _movement(case, rt, rt.peer(root))
        return [x], lambda: [funcol.broadcast(x, root, dist.group.WORLD)], [exp]

    def _all_reduce_coalesced(self, case, rt):
        xs, exps = [], []
        for k, shape in enumerate(("small", "odd", "scalar")):
            x, e = _reduction(case, rt, shape, salt=k)
            xs.append(x)
            exps.append(e)
        return xs, lambda: list(funcol.all_reduce_coalesced(xs, case.op.lower(), dist.group.WORLD)), exps

    def _all_gather_single_coalesced(self, case, rt, name="all_gather_single_coalesced"):
        xs, exps = [], []
        for k, shape in enumerate(((2, 3), (5,))):
            xs.append(_movement(case, rt, rt.rank, salt=k, shape=shape))
            exps.append(torch.cat([_movement(case, rt, rt.peer(j), salt=k, shape=shape)
                                   for j in range(rt.world_size)]))
        fn = getattr(funcol, name)
        return xs, lambda: list(fn(xs, dist.group.WORLD)), exps

    def _all_gather_into_tensor_coalesced(self, case, rt):
        return self._all_gather_single_coalesced(case, rt, "all_gather_into_tensor_coalesced")

    def _reduce_scatter_single_coalesced(self, case, rt, name="reduce_scatter_single_coalesced"):
        ws = rt.world_size
        xs, exps = [], []
        for k, full in enumerate(((2 * ws, 3), (3 * ws,))):
            x, per_rank = _reduction_input(case, rt, full, salt=k)
            xs.append(x)
            exps.append(_reduce(case, rt, per_rank, full).chunk(ws)[rt.rank].contiguous())
        fn = getattr(funcol, name)
        # scatter_dim is rewritten in place by funcol for dims != 0; pass a fresh list each call
        return xs, lambda: list(fn(list(xs), case.op.lower(), [0] * len(xs), dist.group.WORLD)), exps

    def _reduce_scatter_tensor_coalesced(self, case, rt):
        return self._reduce_scatter_single_coalesced(case, rt, "reduce_scatter_tensor_coalesced")

    def _wait_tensor(self, case, rt):
        """``twice``: wait_tensor is idempotent (the second wait returns the same values).
        ``chain``: an unwaited result fed into a second all_reduce; waiting the second gives the reduction of
        the reduction."""
        x, exp = _reduction(replace(case, op="SUM"), rt, "small")
        if case.variant == "twice":
            def run():
                res = funcol.all_reduce(x, "sum", dist.group.WORLD)
                first = funcol.wait_tensor(res)
                return [first, funcol.wait_tensor(res)]
            return [x], run, [exp, exp]
        dtype = values.dtype_of(case.dtype)
        flat = exp.reshape(-1).to(values._compute_dtype(dtype))
        exp2 = rt.reduce("SUM", [flat] * rt.world_size, dtype).to(dtype).reshape(exp.shape)
        return [x], lambda: [funcol.all_reduce(funcol.all_reduce(x, "sum", dist.group.WORLD), "sum",
                                               dist.group.WORLD)], [exp2]


# -- inputs and oracle ----------------------------------------------------------------------------------------------
def _movement(case: Case, rt: RankContext, rank: int, salt: int = 0, shape=CHUNK) -> torch.Tensor:
    dtype = values.dtype_of(case.dtype)
    n = 1
    for d in shape:
        n *= d
    return values.movement_values(dtype, n, rank, salt).to(dtype).reshape(shape).to(rt.device)


def _reduction(case: Case, rt: RankContext, shape_name: str, salt: int = 0):
    """This rank's input of a named shape, and the reduction over every peer's input."""
    dtype = values.dtype_of(case.dtype)
    n = values.numel_of(shape_name, dtype)
    mine = values.reduction_values(dtype, case.op, n, rt.rank + salt, rt.world_size)
    per_rank = [values.reduction_values(dtype, case.op, n, p + salt, rt.world_size) for p in rt.peers()]
    exp = values.materialize(rt.reduce(case.op, per_rank, dtype), shape_name, dtype, rt.device)
    if shape_name == "noncontig":
        exp = exp.contiguous()   # the result is a fresh tensor: compare values, not strides
    return values.materialize(mine, shape_name, dtype, rt.device), exp


def _full_shape(ws: int, dim: int) -> tuple[int, ...]:
    return (CHUNK[0] * ws, CHUNK[1]) if dim == 0 else (CHUNK[0], CHUNK[1] * ws)


def _reduction_input(case: Case, rt: RankContext, full, salt: int = 0):
    dtype = values.dtype_of(case.dtype)
    n = 1
    for d in full:
        n *= d
    per_rank = [values.reduction_values(dtype, case.op, n, p + salt, rt.world_size) for p in rt.peers()]
    mine = values.reduction_values(dtype, case.op, n, rt.rank + salt, rt.world_size)
    return mine.to(dtype).reshape(full).to(rt.device), per_rank


def _reduce(case: Case, rt: RankContext, per_rank, full) -> torch.Tensor:
    dtype = values.dtype_of(case.dtype)
    return rt.reduce(case.op, per_rank, dtype).to(dtype).reshape(full).to(rt.device)


SPECS = [Funcol()]

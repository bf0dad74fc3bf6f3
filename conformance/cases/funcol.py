"""Functional collectives (``torch.distributed._functional_collectives``), recorded as ``funcol.<name>``: one spec
per functional collective, on the helpers below.

They return new tensors (``AsyncCollectiveTensor`` in eager mode) and leave their inputs unmodified, so the inputs
are the harness's outputs (expected: unchanged) and the returned tensors are compared as ``Prepared.returns``,
bitwise except for AVG.  Group argument: ``dist.group.WORLD``; reduce ops as lowercase strings.

Modes: ``sync`` uses each result directly, as returned (a computation on an AsyncCollectiveTensor waits for it
implicitly); ``async`` touches nothing until ``funcol.wait_tensor``.  funcol has no Work, so in ``async`` the call
hands the harness a small handle whose ``wait()`` is ``funcol.wait_tensor`` on every result and whose
``is_completed()`` says whether that ran; there is no future to check.

Shapes: ``small`` is the per-rank chunk (2, 3): all_gather gathers world-size chunks, reduce_scatter and
all_to_all_single take world-size chunks of it as input.  ``odd``/``noncontig`` as in ``values``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.distributed as dist

from . import axes, common, values
from .spec import Case, Prepared, RankContext, Spec

try:
    import torch.distributed._functional_collectives as funcol
except ImportError:   # pragma: no cover - every torch this suite supports has it
    funcol = None

CHUNK = (2, 3)
FUNCOL_OPS = ("SUM", "AVG", "PRODUCT", "MIN", "MAX")


def _absent(name: str):
    return None if funcol is not None and hasattr(funcol, name) else f"funcol.{name} absent in this torch"


class _Handle:
    """What an async funcol call gives the harness to wait on: wait() is funcol.wait_tensor on every result."""

    def __init__(self, results):
        self._pending, self.results = results, None

    def wait(self, timeout=None):
        self.results = [funcol.wait_tensor(r) for r in self._pending]
        return True

    def is_completed(self):
        return self.results is not None


def _returning(case: Case, inputs: list, run, expected: list) -> Prepared:
    """``run()`` makes the functional call and returns its results; the inputs must stay as they were."""

    def call(async_op):
        results = list(run())
        if async_op:
            return _Handle(results)
        # sync: the results are used directly, as returned: a computation on an AsyncCollectiveTensor waits for it
        # (so a backend error surfaces here, in the call; clone works for every dtype).  The results themselves are
        # compared, not the copy: copying a bool tensor normalises its bytes and would hide a backend that stores
        # an OR as a count.
        for r in results:
            r.clone()
        return results

    return Prepared(call, outputs=list(inputs), expected=[t.clone() for t in inputs], op=case.op,
                    check_future=False, returns=expected)


class FuncolSpec(Spec):
    """A spec for ``funcol.<fn>``: ``cases`` yields its cases, skipped where this torch lacks the function."""

    def __init__(self, fn: str):
        self.fn = fn
        self.name = f"funcol.{fn}"

    def axes(self, env):
        raise NotImplementedError

    def cases(self, env):
        skip = _absent(self.fn)
        for case in self.axes(env):
            yield replace(case, skip=case.skip or skip)


class AllReduce(FuncolSpec):
    def axes(self, env):
        full_ops = lambda d: [op for op in FUNCOL_OPS if op in values.defined_ops(d)]   # noqa: E731
        for dtype in axes.dtypes("common"):
            yield from axes.product(self.name, tier=[dtype], ops=full_ops if dtype in axes.TIERS["pair"] else ("SUM",),
                                    modes=axes.MODES)
        for shape in ("odd", "noncontig", "scalar"):
            yield axes.single(self.name, op="SUM", shape=shape)
        yield from axes.edge(self.name, all_ops=False)

    def prepare(self, case, rt):
        x, exp = _reduction(case, rt, case.shape)
        return _returning(case, [x], lambda: [funcol.all_reduce(x, case.op.lower(), dist.group.WORLD)], [exp])


class AllGather(FuncolSpec):
    """all_gather_single / all_gather_tensor: along dim 0 (``default``) or dim 1."""

    def __init__(self, fn: str, tier: str):
        super().__init__(fn)
        self.tier = tier

    def axes(self, env):
        yield from axes.product(self.name, tier=self.tier, modes=axes.MODES, params=dict(dim=0))
        yield from axes.product(self.name, "dim1", tier="one", modes=axes.MODES, params=dict(dim=1))

    def prepare(self, case, rt):
        dim = case.param("dim", 0)
        x = _movement(case, rt, rt.rank)
        exp = torch.cat([_movement(case, rt, rt.peer(j)) for j in range(rt.world_size)], dim=dim)
        fn = getattr(funcol, self.fn)
        return _returning(case, [x], lambda: [fn(x, dim, dist.group.WORLD)], [exp])


class ReduceScatter(FuncolSpec):
    """reduce_scatter_single / reduce_scatter_tensor: along dim 0 (``default``) or dim 1."""

    def __init__(self, fn: str, tier: str, more_ops=(), edge=False):
        super().__init__(fn)
        self.tier, self.more_ops, self.edge = tier, more_ops, edge

    def axes(self, env):
        yield from axes.product(self.name, tier=self.tier, ops=("SUM",), modes=axes.MODES, params=dict(dim=0))
        yield from axes.product(self.name, tier="one", ops=self.more_ops, modes=axes.MODES, params=dict(dim=0))
        yield from axes.product(self.name, "dim1", tier="one", ops=("SUM",), modes=axes.MODES, params=dict(dim=1))
        if self.edge:
            yield from axes.edge(self.name, all_ops=False, params=dict(dim=0))

    def prepare(self, case, rt):
        dim = case.param("dim", 0)
        ws = rt.world_size
        full = (CHUNK[0] * ws, CHUNK[1]) if dim == 0 else (CHUNK[0], CHUNK[1] * ws)
        x, per_rank = _reduction_input(case, rt, full)
        exp = _reduce(case, rt, per_rank, full).chunk(ws, dim=dim)[rt.rank].contiguous()
        fn = getattr(funcol, self.fn)
        return _returning(case, [x], lambda: [fn(x, case.op.lower(), dim, dist.group.WORLD)], [exp])


class AllToAllSingle(FuncolSpec):
    """Equal splits (``default``), or rank i sending 1 + (i + j) % 2 rows of width 3 to rank j (``splits``:
    symmetric, so every rank knows its receives)."""

    def axes(self, env):
        yield from axes.product(self.name, tier="transport", modes=axes.MODES)
        yield from axes.product(self.name, "splits", tier="one", modes=axes.MODES,
                                real_world_only="not meaningful in a simulated world: uneven splits depend on the "
                                                "sender")

    def prepare(self, case, rt):
        ws, r = rt.world_size, rt.rank
        rows = (lambda i, j: 1 + (i + j) % 2) if case.variant == "splits" else (lambda i, j: CHUNK[0])
        dtype = values.dtype_of(case.dtype)

        def input_of(i):
            sizes = [rows(i, j) for j in range(ws)]
            flat = values.movement_values(dtype, sum(sizes) * CHUNK[1], i)
            return flat.to(dtype).reshape(sum(sizes), CHUNK[1]), sizes

        x = input_of(r)[0].to(rt.device)
        pieces = []
        for j in range(ws):
            theirs, sizes = input_of(rt.peer(j))
            start = sum(sizes[:r])
            pieces.append(theirs[start:start + sizes[r]])
        if rt.echoes:   # funcol always passes split sizes, and torch's fake then repeats the input's first rows
            exp = torch.cat([common.rows_from_first(x, rows(j, r)) for j in range(ws)])
        else:
            exp = torch.cat(pieces).to(rt.device)
        ins = outs = None
        if case.variant == "splits":
            ins, outs = [rows(r, j) for j in range(ws)], [rows(j, r) for j in range(ws)]
            if rt.simulated:
                # Uneven splits depend on the sender's rank: no world where every rank holds this rank's data can
                # agree on them (rank j would send rows(r, r) where rows(j, r) are expected): nothing derivable.
                exp = None
        return _returning(case, [x], lambda: [funcol.all_to_all_single(x, outs, ins, dist.group.WORLD)], [exp])


class Broadcast(FuncolSpec):
    def axes(self, env):
        for root in sorted({0, env.world_size - 1}):
            yield from axes.product(self.name, f"root{root}", tier="arith", modes=axes.MODES, params=dict(root=root))

    def prepare(self, case, rt):
        root = case.param("root")
        x = _movement(case, rt, rt.rank)
        return _returning(case, [x], lambda: [funcol.broadcast(x, root, dist.group.WORLD)],
                          [_movement(case, rt, rt.peer(root))])


class AllReduceCoalesced(FuncolSpec):
    def axes(self, env):
        yield from axes.product(self.name, tier="pair", ops=("SUM", "MAX"), modes=axes.MODES)

    def prepare(self, case, rt):
        xs, exps = [], []
        for k, shape in enumerate(("small", "odd", "scalar")):
            x, e = _reduction(case, rt, shape, salt=k)
            xs.append(x)
            exps.append(e)
        return _returning(case, xs, lambda: funcol.all_reduce_coalesced(xs, case.op.lower(), dist.group.WORLD), exps)


class AllGatherCoalesced(FuncolSpec):
    """all_gather_single_coalesced / all_gather_into_tensor_coalesced: two tensors of different shapes."""

    def __init__(self, fn: str, tier: str):
        super().__init__(fn)
        self.tier = tier

    def axes(self, env):
        yield from axes.product(self.name, tier=self.tier, modes=axes.MODES)

    def prepare(self, case, rt):
        xs, exps = [], []
        for k, shape in enumerate(((2, 3), (5,))):
            xs.append(_movement(case, rt, rt.rank, salt=k, shape=shape))
            exps.append(torch.cat([_movement(case, rt, rt.peer(j), salt=k, shape=shape)
                                   for j in range(rt.world_size)]))
        fn = getattr(funcol, self.fn)
        return _returning(case, xs, lambda: fn(xs, dist.group.WORLD), exps)


class ReduceScatterCoalesced(FuncolSpec):
    """reduce_scatter_single_coalesced / reduce_scatter_tensor_coalesced: two tensors of different shapes."""

    def __init__(self, fn: str, tier: str):
        super().__init__(fn)
        self.tier = tier

    def axes(self, env):
        yield from axes.product(self.name, tier=self.tier, ops=("SUM",), modes=axes.MODES)

    def prepare(self, case, rt):
        ws = rt.world_size
        xs, exps = [], []
        for k, full in enumerate(((2 * ws, 3), (3 * ws,))):
            x, per_rank = _reduction_input(case, rt, full, salt=k)
            xs.append(x)
            exps.append(_reduce(case, rt, per_rank, full).chunk(ws)[rt.rank].contiguous())
        fn = getattr(funcol, self.fn)
        # scatter_dim is rewritten in place by funcol for dims != 0; pass a fresh list each call
        return _returning(case, xs, lambda: fn(list(xs), case.op.lower(), [0] * len(xs), dist.group.WORLD), exps)


class WaitTensor(FuncolSpec):
    """``twice``: wait_tensor is idempotent (the second wait returns the same values).  ``chain``: an unwaited
    result fed into a second all_reduce; waiting the second gives the reduction of the reduction."""

    def axes(self, env):
        for variant in ("twice", "chain"):
            yield from axes.product(self.name, variant, tier="pair", ops=("SUM",), modes=("async",))

    def prepare(self, case, rt):
        x, exp = _reduction(case, rt, "small")
        if case.variant == "twice":
            def run():
                res = funcol.all_reduce(x, "sum", dist.group.WORLD)
                first = funcol.wait_tensor(res)
                return [first, funcol.wait_tensor(res)]
            return _returning(case, [x], run, [exp, exp])
        dtype = values.dtype_of(case.dtype)
        flat = exp.reshape(-1).to(values._compute_dtype(dtype))
        exp2 = rt.reduce("SUM", [flat] * rt.world_size, dtype).to(dtype).reshape(exp.shape)
        return _returning(case, [x], lambda: [funcol.all_reduce(funcol.all_reduce(x, "sum", dist.group.WORLD), "sum",
                                                                 dist.group.WORLD)], [exp2])


# -- inputs and oracle ----------------------------------------------------------------------------------------------
def _movement(case: Case, rt: RankContext, rank: int, salt: int = 0, shape=CHUNK) -> torch.Tensor:
    dtype = values.dtype_of(case.dtype)
    return values.movement_values(dtype, math.prod(shape), rank, salt).to(dtype).reshape(shape).to(rt.device)


def _reduction(case: Case, rt: RankContext, shape_name: str, salt: int = 0):
    """This rank's input of a named shape, and the reduction over every peer's input."""
    x = common.reduction_tensor(replace(case, shape=shape_name), rt, rt.rank, salt)[0]
    exp = common.expected_reduction(replace(case, shape=shape_name), rt, salt)
    if shape_name == "noncontig":
        exp = exp.contiguous()   # the result is a fresh tensor: compare values, not strides
    return x, exp


def _reduction_input(case: Case, rt: RankContext, full, salt: int = 0):
    n = math.prod(full)
    per_rank = [common.reduction_flat(case, n, p + salt, rt.world_size) for p in rt.peers()]
    mine = common.reduction_flat(case, n, rt.rank + salt, rt.world_size)
    return mine.to(values.dtype_of(case.dtype)).reshape(full).to(rt.device), per_rank


def _reduce(case: Case, rt: RankContext, per_rank, full) -> torch.Tensor:
    return common.reduce_for(case, rt, per_rank).to(values.dtype_of(case.dtype)).reshape(full).to(rt.device)


# torch 2.13 renamed four functional collectives: the wider tiers go to the name this torch has.
_AG, _AG_OLD = axes.renamed("all_gather_single", "all_gather_tensor", funcol)
_RS, _RS_OLD = axes.renamed("reduce_scatter_single", "reduce_scatter_tensor", funcol)
_AGC, _AGC_OLD = axes.renamed("all_gather_single_coalesced", "all_gather_into_tensor_coalesced", funcol)
_RSC, _RSC_OLD = axes.renamed("reduce_scatter_single_coalesced", "reduce_scatter_tensor_coalesced", funcol)
SPECS = [
    AllReduce("all_reduce"),
    AllGather(_AG, "transport"), AllGather(_AG_OLD, "pair"),
    ReduceScatter(_RS, "arith", more_ops=("AVG", "MAX"), edge=True),
    ReduceScatter(_RS_OLD, "pair"),
    AllToAllSingle("all_to_all_single"),
    Broadcast("broadcast"),
    AllReduceCoalesced("all_reduce_coalesced"),
    AllGatherCoalesced(_AGC, "pair"),
    ReduceScatterCoalesced(_RSC, "pair"),
    AllGatherCoalesced(_AGC_OLD, "one"),
    ReduceScatterCoalesced(_RSC_OLD, "one"),
    WaitTensor("wait_tensor"),
]

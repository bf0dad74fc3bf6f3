"""_coalescing_manager: collectives of one kind issued inside ``dist._coalescing_manager(async_ops=...)`` are
recorded and run as one fused call on exit; afterwards every output must hold what the separate calls would give.

Collective ids are ``coalescing_manager.<call>`` for the three calls with a fast path: ``all_reduce`` (SUM, three
tensors of different shapes), ``all_gather_into_tensor`` and ``reduce_scatter_tensor`` (cat layout, two tensors).
The reducing calls also run at the edge of each dtype's range (every tensor of the ``odd`` shape).
``async`` mode is ``async_ops=True`` with ``async_op=True`` inside: the calls' own handles are placeholders, and
the block is waited through the manager (``cm.wait()``), whose fused Work must also carry the outputs.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

from . import axes, common, values
from .spec import Case, Prepared, RankContext, Spec

CALLS = {"all_reduce": ("small", "odd", "scalar"),
         "all_gather_into_tensor": ("small", "odd"),
         "reduce_scatter_tensor": ("small", "odd")}


class _Block:
    """The async handle of a coalesced block: what users wait on is the manager."""

    def __init__(self, cm):
        self.cm = cm

    def wait(self):
        self.cm.wait()
        return True

    def is_completed(self):
        return all(w.is_completed() for w in self.cm.works)

    def get_future(self):
        return self.cm.works[-1].get_future()


class CoalescingManager(Spec):
    name = "coalescing_manager"

    def cases(self, env):
        skip = axes.absent("_coalescing_manager")
        for call in CALLS:
            collective = f"coalescing_manager.{call}"
            op = None if call == "all_gather_into_tensor" else "SUM"
            yield from axes.product(collective, ops=(op,), shapes=(None,), skip=skip)
            yield axes.single(collective, op=op, shape=None, mode="async", skip=skip)
            if op:
                yield from axes.edge(collective, all_ops=False, skip=skip)

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        call_name = case.collective.split(".", 1)[1]
        dtype = values.dtype_of(case.dtype)
        names = CALLS[call_name] if case.shape is None else [case.shape] * len(CALLS[call_name])
        shapes = [values.shape_for(s, dtype) for s in names]
        issue, outs, exp = BUILD[call_name](case, rt, shapes)

        def call(async_op):
            with dist._coalescing_manager(async_ops=async_op) as cm:
                for fn in issue:
                    fn(async_op)
            if async_op:
                return _Block(cm) if cm.works else None
            return None

        return Prepared(
            call=call,
            outputs=outs,
            expected=[common.shaped(e, tuple(o.shape), case, rt) for e, o in zip(exp, outs)],
            op=case.op,
        )


# Each builder returns (the calls to issue inside the manager, their outputs, each output's expected flat values).

def _all_reduce(case, rt, shapes):
    n = sum(math.prod(s) for s in shapes)
    mine = common.pieces(common.reduction_flat(case, n, rt.rank, rt.world_size), shapes)
    ts = [common.shaped(v, s, case, rt) for v, s in zip(mine, shapes)]
    issue = [lambda a, t=t: dist.all_reduce(t, op=dist.ReduceOp.SUM, async_op=a) for t in ts]
    return issue, ts, common.pieces(common.expected_reduction_flat(case, rt, n), shapes)


def _all_gather_into_tensor(case, rt, shapes):
    ws = rt.world_size
    ins = [common.movement_piece(case, rt, s, rt.rank, salt=i) for i, s in enumerate(shapes)]
    exp = [torch.cat([common.movement_flat(case, math.prod(s), rt.peer(j), salt=i) for j in range(ws)])
           for i, s in enumerate(shapes)]
    outs = [common.stale(case, rt, (ws * s[0],) + s[1:], unlike=e) for s, e in zip(shapes, exp)]
    issue = [lambda a, o=o, t=t: dist.all_gather_into_tensor(o, t, async_op=a) for o, t in zip(outs, ins)]
    return issue, outs, exp


def _reduce_scatter_tensor(case, rt, shapes):
    ws = rt.world_size
    big = [(ws * s[0],) + s[1:] for s in shapes]
    total = sum(math.prod(b) for b in big)
    ins = [common.shaped(v, b, case, rt)
           for v, b in zip(common.pieces(common.reduction_flat(case, total, rt.rank, ws), big), big)]
    reduced = common.pieces(common.expected_reduction_flat(case, rt, total), big)
    exp = [common.pieces(r, [s] * ws)[rt.rank] for r, s in zip(reduced, shapes)]
    outs = [common.stale(case, rt, s, unlike=e) for s, e in zip(shapes, exp)]
    issue = [lambda a, o=o, t=t: dist.reduce_scatter_tensor(o, t, op=dist.ReduceOp.SUM, async_op=a)
             for o, t in zip(outs, ins)]
    return issue, outs, exp


BUILD = {"all_reduce": _all_reduce, "all_gather_into_tensor": _all_gather_into_tensor,
         "reduce_scatter_tensor": _reduce_scatter_tensor}


SPECS = [CoalescingManager()]

"""autograd: a collective on tensors that require grad writes beneath autograd (variant ``requires_grad``).

gloo and torch's fake write in C++ below the autograd layer: an output buffer comes back with no history the
backend added (no ``grad_fn``, ``requires_grad`` as it was), and an in-place collective on a leaf that requires
grad (``dist.all_reduce(nn.Parameter)``, as DDP and FSDP tests do) is accepted and leaves a leaf.  A Python
backend that writes with ordinary tensor ops under autograd breaks both: its outputs record the copy as a graph
node, or it raises "a leaf Variable that requires grad is being used in an in-place operation".  Values are
checked as in the plain cases; the inputs require grad, the output buffers do not.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

from . import axes, common
from .spec import Case, Prepared, RankContext, Spec

IN_PLACE = ("all_reduce", "broadcast")
OUT_OF_PLACE = ("all_gather", "all_gather_into_tensor", "gather", "scatter", "reduce_scatter_tensor")


def _no_added_history(leaves, outputs):
    """The after-check: in-place targets are still leaves that require grad; output buffers carry no history."""
    def check():
        for t in leaves:
            if not (t.is_leaf and t.requires_grad):
                return (f"the in-place target is no longer a leaf that requires grad (is_leaf={t.is_leaf}, "
                        f"requires_grad={t.requires_grad}, grad_fn={type(t.grad_fn).__name__})")
        for i, t in enumerate(outputs):
            if t.requires_grad or t.grad_fn is not None:
                return (f"output {i} carries autograd history the backend added (requires_grad={t.requires_grad}, "
                        f"grad_fn={type(t.grad_fn).__name__})")
        return None
    return check


def _grad(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_(True)   # a leaf, whatever layout the builder produced


class Autograd(Spec):
    name = "autograd"

    def cases(self, env):
        for coll in IN_PLACE + OUT_OF_PLACE:
            op = "SUM" if coll in ("all_reduce", "reduce_scatter_tensor") else None
            yield from axes.product(coll, "requires_grad", tier="one", ops=(op,), modes=axes.MODES,
                                    skip=axes.absent(coll))

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        ws, me, last = rt.world_size, rt.rank, rt.world_size - 1
        coll = case.collective
        if coll == "all_reduce":
            x = _grad(common.reduction_tensor(case, rt, me)[0])
            return self._done(lambda a: dist.all_reduce(x, async_op=a), [x], [common.expected_reduction(case, rt)],
                              leaves=[x], op=case.op)
        if coll == "broadcast":
            x = _grad(common.movement_tensor(case, rt, me))
            return self._done(lambda a: dist.broadcast(x, src=0, async_op=a), [x],
                              [common.movement_tensor(case, rt, rt.peer(0))], leaves=[x])
        x = _grad(common.movement_tensor(case, rt, me))
        gathered = [common.movement_tensor(case, rt, rt.peer(j)) for j in range(ws)]
        if coll == "all_gather":
            outs = [common.stale(case, rt, unlike=e) for e in gathered]
            return self._done(lambda a: dist.all_gather(outs, x, async_op=a), outs, gathered)
        if coll == "all_gather_into_tensor":
            expected = torch.cat([e.reshape(common.chunk_shape(case)) for e in gathered])
            out = common.stale(case, rt, tuple(expected.shape), unlike=expected)
            return self._done(lambda a: dist.all_gather_into_tensor(out, x, async_op=a), [out], [expected])
        if coll == "gather":
            outs = [common.stale(case, rt, unlike=e) for e in gathered] if me == last else None
            return self._done(lambda a: dist.gather(x, outs, dst=last, async_op=a), outs or [],
                              gathered if outs else [], check_future=bool(outs))
        if coll == "scatter":
            pieces = [_grad(common.movement_tensor(case, rt, me, salt=i)) for i in range(ws)] if me == 0 else None
            expected = None if rt.simulated and me != 0 else common.movement_tensor(case, rt, rt.peer(0), salt=me)
            out = common.stale(case, rt, unlike=expected)
            return self._done(lambda a: dist.scatter(out, pieces, src=0, async_op=a), [out], [expected])
        # reduce_scatter_tensor: ws chunks of this rank's reduction vector in, the reduced chunk ``me`` out
        piece = common.chunk_shape(case)
        n = math.prod(piece)
        big = _grad(common.shaped(common.reduction_flat(case, ws * n, me, ws), common.cat_shape(case, ws), case, rt))
        reduced = common.reduced_piece(case, rt, ws * n, [piece] * ws, me)
        out = common.stale(case, rt, unlike=reduced)
        return self._done(lambda a: dist.reduce_scatter_tensor(out, big, async_op=a), [out], [reduced], op=case.op)

    @staticmethod
    def _done(call, outputs, expected, leaves=(), op=None, check_future=True) -> Prepared:
        fresh = [t for t in outputs if not any(t is leaf for leaf in leaves)]
        return Prepared(call=call, outputs=outputs, expected=expected, op=op, check_future=check_future,
                        after=_no_added_history(list(leaves), fresh))


SPECS = [Autograd()]

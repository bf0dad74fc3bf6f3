"""Fault injection, applied the same way to every collective and never inside one.

A group compiles its ``Options.faults`` (already filtered to this rank) into one ``Plan`` per (collective, dtype)
on first use and caches it. The route (``_route.py``) asks a plan four things, in this order:

* ``plan.enter()``            before anything is written: raise, crash, hang (sync calls)
* ``bend(plan, method, ...)`` the call's arguments as the fault sees them: another root (off_by_one_root), another
                              reduce op (wrong_op), the chunks in mirrored order (chunk_order), a coalesced call
                              without its last tensor (drop_last_coalesced); the collective then runs on those
* ``damage(...)``             what happens to the outputs once written: wrong_value, broadcast's off_by_one_root
* ``issue(...)``              the Work: latency, early_complete, hang (async), lying_is_completed,
                              future_without_tensors, skip_barrier

With no faults every call gets the shared ``NO_PLAN`` and none of this runs.
"""

from __future__ import annotations

import os
import time

import torch
from torch.distributed import ReduceOp

from ._compat import reduce_op_parts
from ._work import FakeWork

R = ReduceOp.RedOpType

# Public dist names that select a given (canonical) collective. The canonical name is
# the torch>=2.13 public name of what the method implements.
ALIASES = {
    "all_gather_single": {"all_gather_single", "all_gather_into_tensor", "_all_gather_base"},
    "reduce_scatter_single": {"reduce_scatter_single", "reduce_scatter_tensor", "_reduce_scatter_base"},
    "all_gather_single_coalesced": {"all_gather_single_coalesced", "all_gather_into_tensor_coalesced"},
    "reduce_scatter_single_coalesced": {"reduce_scatter_single_coalesced", "reduce_scatter_tensor_coalesced"},
    "gather_single": {"gather_single", "gather_into_tensor"},
    "send": {"send", "isend"},
    "recv": {"recv", "irecv"},
    "recv_anysource": {"recv_anysource", "recv", "irecv"},
}

# wrong_op: a different op whose result differs from the right one in the uniform world
# (x*ws vs x) whenever x != 0 and ws > 1.
WRONG_OP = {
    R.SUM: ReduceOp.MAX,
    R.AVG: ReduceOp.SUM,
    R.PRODUCT: ReduceOp.SUM,
    R.MIN: ReduceOp.SUM,
    R.MAX: ReduceOp.SUM,
    R.BAND: ReduceOp.SUM,
    R.BOR: ReduceOp.SUM,
    R.BXOR: ReduceOp.BOR,
    R.PREMUL_SUM: ReduceOp.SUM,  # and the factor is dropped
}

EARLY_WRITE_DELAY_S = 0.075  # early_complete: how late the output really lands


class Plan:
    """What the faults selected for one (collective, dtype) do to a call."""

    raise_msg = None
    crash = hang = wrong_value = mirror = shift_root = wrong_op = False
    early = lying = no_tensors = skip_barrier = drop_last = False
    bends = False  # bend() changes the arguments

    def enter(self, async_op: bool) -> None:
        if self.raise_msg is not None:
            raise RuntimeError(self.raise_msg)
        if self.crash:
            os._exit(134)
        if self.hang and not async_op:
            _hang_forever()


NO_PLAN = Plan()

# Which Plan flag each fault kind sets ("raise" carries its message instead).
PLAN_FLAG = {
    "crash": "crash", "hang": "hang", "wrong_value": "wrong_value", "chunk_order": "mirror",
    "off_by_one_root": "shift_root", "wrong_op": "wrong_op", "early_complete": "early",
    "lying_is_completed": "lying", "future_without_tensors": "no_tensors", "skip_barrier": "skip_barrier",
    "drop_last_coalesced": "drop_last",
}


def build_plan(faults, name: str, dtype) -> Plan:
    names = ALIASES.get(name, (name,))
    dt = None if dtype is None else str(dtype).replace("torch.", "")
    picked = [f for f in faults if (f.collective is None or f.collective in names) and (f.dtype is None or f.dtype == dt)]
    if not picked:
        return NO_PLAN
    p = Plan()
    for f in picked:
        if f.kind == "raise":
            p.raise_msg = f"fakepg injected fault: {f.message or 'raise'} (collective {name}, dtype {dt})"
        else:
            setattr(p, PLAN_FLAG[f.kind], True)
    p.bends = p.mirror or p.shift_root or p.wrong_op or p.drop_last
    return p


# --- bending arguments ----------------------------------------------------------------------------------------

def _mirrored(t: torch.Tensor, ws: int) -> torch.Tensor:
    """t's ws equal chunks (flattened order) in reverse order: chunk ws-1-r lands where chunk r was."""
    return t.reshape(ws, -1).flip(0).reshape(t.shape)


def _mirrored_splits(t, splits, ws):
    splits = list(splits) if splits else [t.shape[0] // ws] * ws
    return torch.cat(t.split(splits)[::-1]), splits[::-1]


# chunk_order: the chunked argument (always the second) of each collective that takes a chunk by rank.
MIRROR = {
    "scatter": lambda lists, ws: [lst[::-1] for lst in lists],
    "reduce_scatter": lambda lists, ws: [lst[::-1] for lst in lists],
    "reduce_scatter_single": _mirrored,
    "reduce_scatter_single_coalesced": lambda ts, ws: [_mirrored(t, ws) for t in ts],
    "alltoall": lambda ts, ws: ts[::-1],
}


def _drop_last_pair(args):
    outs, ins = args[0], args[1]
    return (outs[:-1], ins[:-1]) + args[2:] if len(ins) > 1 else args  # a one-tensor call is no coalesced call


# drop_last_coalesced: the coalesced calls, without their last tensor.
DROP_LAST = {
    "allreduce_coalesced": lambda args: (args[0][:-1],) + args[1:],
    "allgather_coalesced": lambda args: ([lst[:-1] for lst in args[0]], args[1][:-1]) + args[2:],
    "all_gather_single_coalesced": _drop_last_pair,
    "reduce_scatter_single_coalesced": _drop_last_pair,
}

_OPTION_FIELDS = ("reduceOp", "rootRank", "rootTensor", "timeout", "asyncOp")


def _with(opts, **changes):
    """A copy of a torch options object with some fields changed (the caller's object stays as it was)."""
    new = type(opts)()
    for f in _OPTION_FIELDS:
        if hasattr(opts, f):
            setattr(new, f, changes.get(f, getattr(opts, f)))
    return new


def bend(plan: Plan, method: str, args: tuple, ws: int) -> tuple:
    """The arguments the collective runs on under this plan (the caller's arguments are never modified)."""
    args = tuple(args)
    opts = args[-1]
    if plan.wrong_op and hasattr(opts, "reduceOp"):
        args = args[:-1] + (_with(opts, reduceOp=WRONG_OP[reduce_op_parts(opts.reduceOp)[0]]),)
    if plan.shift_root and hasattr(opts, "rootRank"):
        args = args[:-1] + (_with(args[-1], rootRank=(opts.rootRank + 1) % ws),)
    if plan.mirror:
        if method in MIRROR:
            args = (args[0], MIRROR[method](args[1], ws)) + args[2:]
        elif method == "all_to_all_single":  # its input splits, reversed
            out, inp, osz, isz, o = args
            inp, isz = _mirrored_splits(inp, isz, ws)
            args = (out, inp, osz, isz, o)
    if plan.drop_last and method in DROP_LAST:
        args = DROP_LAST[method](args)
    return args


# --- the Work ----------------------------------------------------------------------------------------------------

def damage(plan: Plan, method: str, args: tuple, rank: int, outputs):
    """What the plan does to the outputs after the collective wrote them (None: nothing). ``args`` are bent."""
    stale_root = plan.shift_root and method == "broadcast" and args[-1].rootRank != rank
    if not (plan.wrong_value or stale_root):
        return None

    def harm():
        if stale_root:  # "received" from a root that never held the data
            for t in outputs:
                t.zero_()
        if plan.wrong_value:
            perturb_first(outputs)

    return harm


def issue(plan: Plan, method: str, outputs, write, latency_s: float) -> FakeWork:
    """The Work of a call whose plan or options need more than the fast path."""
    if method == "barrier" and plan.skip_barrier:
        latency_s = 0.0
    if plan.hang:  # async: the call returns, wait() never does (sync hung in enter())
        work = FakeWork.pending(outputs, write, 0.0, hang=True)
    elif plan.early:
        work = FakeWork.pending(outputs, write, latency_s + EARLY_WRITE_DELAY_S, report_done=True)
    elif latency_s > 0:
        work = FakeWork.pending(outputs, write, latency_s)
    else:
        write()
        work = FakeWork.done(outputs)
    if plan.lying:
        work._lying = True
    if plan.no_tensors:
        work._no_tensors = True
    return work


def perturb_first(outputs) -> None:
    """wrong_value: change exactly one element of the first non-empty output."""
    for t in outputs:
        if t.numel() == 0:
            continue
        idx = (0,) * t.dim()
        if t.device.type == "meta":
            return
        v = t[idx]
        if t.dtype is torch.bool:
            t[idx] = ~v
        elif t.dtype.is_floating_point and t.dtype.itemsize == 1:
            f = v.float()
            t[idx] = (f + 1 if (f + 1).to(t.dtype).float() != f else -f - 1).to(t.dtype)
        elif not t.dtype.is_floating_point and not t.dtype.is_complex:
            t[idx] = v ^ 1   # flips one bit: any integer width, never saturates (uint16+ have no add on cpu)
        else:
            new = v + 1
            if bool((new == v).all()):  # huge floats: +1 is absorbed
                new = -v - 1
            t[idx] = new
        return


def _hang_forever():
    while True:
        time.sleep(3600)

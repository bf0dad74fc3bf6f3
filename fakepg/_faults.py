"""Fault injection, applied the same way to every collective.

A group compiles its ``Options.faults`` (already filtered to this rank) into one
``Plan`` per (collective, dtype) on first use and caches it. A collective method asks
its plan three kinds of question and nothing else:

* before touching anything: ``plan.enter()``  -> raise / crash / hang (sync)
* while computing:          ``plan.root()``, ``plan.op()``, ``plan.mirror``,
                            ``plan.drop_last``  -> off_by_one_root, wrong_op,
                            chunk_order, drop_last_coalesced
* when returning:           ``issue(...)``  -> wrong_value, latency, early_complete,
                            hang (async), lying_is_completed, future_without_tensors,
                            skip_barrier

With no faults every method gets the shared ``NO_PLAN`` and ``issue`` is not even called.
"""

from __future__ import annotations

import os
import time

import torch
from torch.distributed import ReduceOp

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
    R.SUM: R.MAX,
    R.AVG: R.SUM,
    R.PRODUCT: R.SUM,
    R.MIN: R.SUM,
    R.MAX: R.SUM,
    R.BAND: R.SUM,
    R.BOR: R.SUM,
    R.BXOR: R.BOR,
    R.PREMUL_SUM: R.SUM,  # and the factor is dropped
}

EARLY_WRITE_DELAY_S = 0.075  # early_complete: how late the output really lands


class Plan:
    """What the faults selected for one (collective, dtype) do to a call."""

    raise_msg = None
    crash = hang = wrong_value = mirror = shift_root = wrong_op = False
    early = lying = no_tensors = skip_barrier = drop_last = False
    slow = False  # issue() must run (anything affecting the Work)

    def enter(self, name: str, async_op: bool) -> None:
        if self.raise_msg is not None:
            raise RuntimeError(self.raise_msg)
        if self.crash:
            os._exit(134)
        if self.hang and not async_op:
            _hang_forever()

    def root(self, root: int, ws: int) -> int:
        return (root + 1) % ws if self.shift_root else root

    def op(self, op, factor):
        if self.wrong_op:
            return WRONG_OP[op], None
        return op, factor


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
        k = f.kind
        if k == "raise":
            p.raise_msg = f"fakepg injected fault: {f.message or 'raise'} (collective {name}, dtype {dt})"
        else:
            setattr(p, PLAN_FLAG[k], True)
    p.slow = p.hang or p.wrong_value or p.early or p.lying or p.no_tensors or p.skip_barrier
    return p


def issue(plan: Plan, outputs, write, latency_s: float, async_op: bool, is_barrier: bool = False) -> FakeWork:
    """Build the Work for a call whose plan or options need more than the fast path."""
    if plan.wrong_value:
        inner = write

        def write():
            inner()
            perturb_first(outputs)

    if is_barrier and plan.skip_barrier:
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

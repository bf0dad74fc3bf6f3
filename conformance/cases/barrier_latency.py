"""barrier/orders_prior: a barrier completes only after the work its rank issued before it on the group.

The rule (backend-agnostic, no clock, no backend knob): a rank issues an async ``all_reduce`` (float32 SUM,
small) and then ``barrier()`` on the same group, without waiting on the all_reduce.  When the barrier has
returned (sync) or its Work's ``wait()`` has returned (async), that all_reduce must be complete:
``Work.is_completed()`` is True and its output already holds the reduced value.

Every c10d backend orders this way: gloo's barrier snapshots the work in progress and waits for it
(``ProcessGroupGloo::barrier``: "we need to ensure that all prior work has completed before completing
itself"); NCCL's barrier is an all_reduce on the same communicator stream, and waiting a barrier Work blocks
the CPU on that stream; MPI/UCC queue it behind the earlier work.  It is also what makes
``work = all_reduce(async_op=True); ...; barrier()`` a safe pattern in user code.

Why it is a family of its own: it is the part of barrier's contract a *simulated* world can show.  There the
"every rank has entered" half (``barrier.py``) has nobody to wait for, but a simulating backend that models
latency (fakepg's ``latency_s``) still must not let a barrier overtake the work issued before it; a barrier that
"completes at once" (fakepg's ``skip_barrier`` fault) is caught here on every rank.  Without latency, or on a
backend that completes every call inline, the rule holds trivially.

In a real world the last rank issues its all_reduce late, so on the other ranks the all_reduce is still in
flight when they enter the barrier.
"""

from __future__ import annotations

import time

import torch.distributed as dist

from . import axes, common, values
from .spec import Case, Prepared, RankContext, Spec


PRIOR = Case("all_reduce", "default", "float32", "SUM", "small", "async")   # the work issued before the barrier


class _Snapshotting:
    """The barrier's Work, seen by the harness: records the prior work's state the moment ``wait()`` returns."""

    def __init__(self, work, on_return):
        self.work = work
        self.on_return = on_return

    def wait(self, *args, **kwargs):
        out = self.work.wait(*args, **kwargs)
        self.on_return()
        return out

    def is_completed(self):
        return self.work.is_completed()

    def get_future(self):
        return self.work.get_future()


class BarrierOrdersPriorWork(Spec):
    name = "barrier_latency"

    def cases(self, env):
        for mode in axes.MODES:
            yield axes.bare("barrier", "orders_prior", mode=mode)

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        x, _ = common.reduction_tensor(PRIOR, rt, rt.rank)
        want = common.expected_reduction(PRIOR, rt)
        late = not rt.simulated and rt.world_size > 1 and rt.rank == rt.world_size - 1
        seen: dict = {}

        def snapshot():
            if "done" not in seen:
                seen["done"] = seen["work"].is_completed()
                seen["value"] = x.clone()

        def call(async_op):
            if late:
                time.sleep(common.LATE_ENTRY_S)
            seen["work"] = dist.all_reduce(x, op=dist.ReduceOp.SUM, async_op=True)
            handle = dist.barrier(async_op=async_op)
            if not async_op:
                snapshot()
                return handle
            if handle is None:
                return None
            return _Snapshotting(handle, snapshot)

        def after():
            work = seen.get("work")
            if work is None:
                return "the all_reduce before the barrier returned None instead of a Work"
            snapshot()                      # the harness never waited (e.g. it refused the handle)
            work.wait()
            final = values.describe_mismatch(x, want, 0.0)
            if final:
                return f"the all_reduce issued before the barrier is itself wrong after its wait(): {final}"
            if not seen["done"]:
                return ("barrier returned while an all_reduce issued before it was still in flight "
                        "(its Work.is_completed() was False)")
            early = values.describe_mismatch(seen["value"], want, 0.0)
            if early:
                return f"barrier returned before the all_reduce issued before it had written its output: {early}"
            return None

        return Prepared(call=call, after=after, check_future=False)


SPECS = [BarrierOrdersPriorWork()]

"""The Work API on a collective (all_reduce SUM, float32): ``wait(timeout)``, ``exception()``, ``result()``,
``is_completed()``, ``get_future()``; recorded as ``work.<method>`` with the situation as the variant.

The call makes the all_reduce with ``async_op=True``, exercises the method and hands the Work to the harness,
which waits it (again: a collective's ``wait`` is idempotent) and checks ``is_completed`` and the future.

``work.wait_timeout/expires``: the last rank joins ``DELAY_S`` late; every other rank must see
``wait(timeout=SHORT)`` raise, and a later plain ``wait()`` must still complete with the right value (the Work
survives its timeout).  A simulated world has nobody to wait for, so there the short wait may also succeed.
"""

from __future__ import annotations

import time
from datetime import timedelta

import torch
import torch.distributed as dist

from . import axes, common, values
from .spec import Case, Prepared, RankContext, Spec

DELAY_S = 1.0
SHORT = timedelta(milliseconds=100)
LONG = timedelta(seconds=60)

VARIANTS = (
    ("work.wait_timeout", "completes"),     # wait(timeout) on a Work that completes in time -> True
    ("work.wait_timeout", "after_wait"),    # wait(timeout) on a completed Work -> True
    ("work.wait_timeout", "expires"),       # raises, then a plain wait completes
    ("work.exception", "after_wait"),       # None after success
    ("work.result", "after_wait"),          # the output tensors
    ("work.is_completed", "after_wait"),    # True, and stays True
    ("work.get_future", "value"),           # the future completes with the output tensors
    ("work.get_future", "then"),            # a callback chained on it sees them too
)


def _tensors(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


class WorkApi(Spec):
    name = "work_api"

    def cases(self, env):
        for collective, variant in VARIANTS:
            skip = "needs a second rank to join late: world size 1" if variant == "expires" and env.world_size < 2 \
                else _unusable_from_python(collective)
            yield axes.single(collective, variant, op="SUM", mode="async", fresh_world=variant == "expires",
                              skip=skip)

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        x, _ = common.reduction_tensor(case, rt, rt.rank)
        want = common.expected_reduction(case, rt)
        method = case.collective.removeprefix("work.")
        late = rt.rank == rt.world_size - 1 and rt.world_size > 1
        seen: dict = {}

        def matches(tensors, what):
            if len(tensors) != 1:
                return f"{what}: {len(tensors)} tensors, expected 1"
            bad = values.describe_mismatch(tensors[0].reshape(want.shape), want, 0.0)
            return f"{what}: {bad}" if bad else None

        def call(async_op):
            if case.variant == "expires" and late:
                time.sleep(DELAY_S)
            work = dist.all_reduce(x, op=dist.ReduceOp.SUM, async_op=True)
            if method == "wait_timeout":
                if case.variant == "after_wait":
                    work.wait()
                if case.variant == "expires" and not late:
                    try:
                        seen["short"] = work.wait(timeout=SHORT)
                    except Exception as exc:   # the promised outcome: the wait times out, the Work lives on
                        seen["short_exc"] = f"{type(exc).__name__}: {str(exc).strip()[:120]}"
                    seen["wait"] = work.wait()
                else:
                    seen["wait"] = work.wait(timeout=LONG)
            elif method == "get_future":
                fut = work.get_future()
                if case.variant == "then":
                    fut = fut.then(lambda f: [t.clone() for t in _tensors(f.value())])
                seen["future"] = _tensors(fut.wait())
            else:
                work.wait()
                if method == "exception":
                    seen["exception"] = work.exception()
                elif method == "result":
                    seen["result"] = _tensors(work.result())
                elif method == "is_completed":
                    seen["completed"] = (work.is_completed(), work.is_completed())
            return work

        def after():
            if method == "wait_timeout":
                if seen.get("wait") is not True:
                    return f"wait() returned {seen.get('wait')!r}, expected True"
                if case.variant == "expires" and not late and not rt.simulated and "short_exc" not in seen:
                    return (f"wait(timeout={SHORT.total_seconds():g} s) returned {seen.get('short')!r} while a rank "
                            f"was still {DELAY_S:g} s from joining; expected it to raise (timed out)")
            elif method == "exception" and seen.get("exception") is not None:
                return f"exception() after a successful wait is {seen['exception']!r}, expected None"
            elif method == "result":
                return matches(seen.get("result", []), "result()")
            elif method == "is_completed" and seen.get("completed") != (True, True):
                return f"is_completed() after wait() returned {seen.get('completed')}, expected True (twice)"
            elif method == "get_future":
                return matches(seen.get("future", []), "get_future().wait()")
            return None

        return Prepared(call, outputs=[x], expected=[want], op=case.op, after=after)


def _unusable_from_python(collective: str):
    """Why a Work method cannot be called from Python in this torch, or None.  pybind states a return type it
    cannot convert in the signature it documents (older torch: ``-> std::__exception_ptr::exception_ptr``)."""
    method = getattr(dist._Work, collective.removeprefix("work."), None)
    doc = (getattr(method, "__doc__", None) or "").splitlines()
    if doc and "-> std::" in doc[0]:
        return f"Work.{method.__name__}() cannot be called from Python in this torch (its binding returns a C++ type)"
    return None


SPECS = [WorkApi()]

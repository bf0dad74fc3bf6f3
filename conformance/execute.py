"""Run one case on this rank: prepare, call, wait, check.  The same code serves worlds and torchrun (SPMD) mode."""

from __future__ import annotations

import time
import traceback

import torch

from . import environment
from .cases import values
from .cases.spec import Case, Prepared, RankContext, Spec
from .errors import describe_exception
from .outcomes import RAISED, RankOutcome
from .status import FAILED, HARNESS_ERROR, PASSED


def _harness_error(where: str, exc: BaseException) -> RankOutcome:
    missing = environment.diagnose(str(exc))
    if missing:
        return RankOutcome(HARNESS_ERROR, missing)
    frames = traceback.extract_tb(exc.__traceback__)[-1:]
    loc = f" at {frames[0].filename.rsplit('/', 1)[-1]}:{frames[0].lineno}" if frames else ""
    return RankOutcome(HARNESS_ERROR, f"suite {where} failed{loc}: {describe_exception(exc)}")


def _bits_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.numel() == 0:
        return True
    return torch.equal(a.detach().cpu().contiguous().reshape(-1).view(torch.uint8),
                       b.detach().cpu().contiguous().reshape(-1).view(torch.uint8))


def _flat_tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flat_tensors(v)]
    return []


def _wait(handle) -> str | None:
    """Wait on what an async call returned; returns a Work-contract violation, or None."""
    if handle is None:
        return "async_op=True returned None instead of a Work"
    if isinstance(handle, torch._C.Future):   # *_coalesced(async_op=True) returns a bare future, not a Work
        handle.wait()
        return None if handle.done() else "the returned future is not done after wait() returned"
    handle.wait()
    if not handle.is_completed():
        return "Work.is_completed() is False after wait() returned"
    return None


def _check_future(handle) -> str | None:
    """After wait(): the Work's future must be complete and carry the output tensors (DDP relies on it)."""
    fut = handle if isinstance(handle, torch._C.Future) else handle.get_future()
    if not fut.done():
        return "Work.get_future() is not done after wait() returned"
    if not _flat_tensors(fut.value()):
        return f"Work.get_future() completed without tensors (value: {type(fut.value()).__name__})"
    return None


def _mismatch(got: list, expected: list, op, label: str, lone: str = "") -> str | None:
    """The first of ``got`` that differs from its expected value (None entries are unspecified, not checked),
    named "<label> i: " (``lone`` when there is only one)."""
    for i, (g, e) in enumerate(zip(got, expected)):
        if e is None:
            continue
        bad = values.describe_mismatch(g, e, values.tolerance(e.dtype, op))
        if bad:
            return (f"{label} {i}: " if len(expected) > 1 else lone) + bad
    return None


def _returned(prep: Prepared, handle, async_op: bool) -> str | None:
    """Compare what the call returned (functional collectives) with ``prep.returns``."""
    got = getattr(handle, "results", None) if async_op else handle
    if got is None:
        return "the results were never waited for"
    got = list(got)
    if len(got) != len(prep.returns):
        return f"{len(got)} results, expected {len(prep.returns)}"
    return _mismatch(got, prep.returns, prep.op, "result", lone="result: ")


def run_case(case: Case, spec: Spec, rt: RankContext) -> RankOutcome:
    try:
        prep = spec.prepare(case, rt)
        before = [t.clone() for t in prep.outputs]
    except Exception as exc:  # the suite's own fault, never the backend's
        return _harness_error("input preparation", exc)

    async_op = case.mode == "async"
    error_path = case.error is not None
    t0 = time.perf_counter()
    try:
        handle = prep.call(async_op)
        problem = _wait(handle) if async_op else None
        call_s = time.perf_counter() - t0
        if async_op and problem is None and prep.check_future:
            problem = _check_future(handle)
    except Exception as exc:
        call_s = time.perf_counter() - t0
        missing = environment.diagnose(str(exc))
        if missing:   # this Python lacks something torch needs: the suite's problem, not the backend's
            return RankOutcome(HARNESS_ERROR, missing, call_s)
        modified = not all(_bits_equal(t, b) for t, b in zip(prep.outputs, before))
        return RankOutcome(RAISED, describe_exception(exc), call_s, type(exc).__name__, modified, error_path)

    if error_path:
        return RankOutcome(FAILED, f"{case.error} without raising", call_s, expected_error=True, accepted=case.error)
    if problem:
        return RankOutcome(FAILED, problem, call_s)
    try:
        bad = _mismatch(prep.outputs, prep.expected, prep.op, "output")
        if bad is None and prep.returns is not None:
            bad = _returned(prep, handle, async_op)
        if bad is None and prep.after is not None:
            bad = prep.after()
        if bad:
            return RankOutcome(FAILED, bad, call_s)
    except Exception as exc:
        return _harness_error("oracle", exc)
    return RankOutcome(PASSED, "", call_s)

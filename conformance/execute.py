"""Run one case on this rank: prepare, call, wait, check.  The same code serves worlds and torchrun (SPMD) mode."""

from __future__ import annotations

import re
import time
import traceback

import torch

from .cases import values
from .cases.spec import Case, Prepared, RankContext, Spec
from .outcomes import FAILED, HARNESS_ERROR, PASSED, RankOutcome


# "[/path/file.cc:123]" source locations, "[enforce fail at ...]" and "[rank0]:" prefixes from C++ errors: they
# differ between builds, runs and ranks, so they would keep per-rank reasons apart and make report diffs noisy.
_SOURCE_LOCATION = re.compile(r"\[(?:enforce fail at )?[^\]]*\.(?:cc|cpp|cu|h|hpp|c):\d+\]\s*|^\[rank\d+\]:\s*")


def describe_exception(exc: BaseException) -> str:
    """One stable line: the exception type and the first line of its message, without C++ noise."""
    text = str(exc).strip().splitlines()
    first = _SOURCE_LOCATION.sub("", text[0] if text else "")
    # C++ errors carry an "Exception raised from ..." trailer and frames; the first line says what happened.
    return f"{type(exc).__name__}: {first}"[:500]


def _harness_error(where: str, exc: BaseException) -> RankOutcome:
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


def _check_future(handle, prep: Prepared) -> str | None:
    """After wait(): the Work's future must be complete and carry the output tensors (DDP relies on it)."""
    if isinstance(handle, torch._C.Future):
        fut = handle
    else:
        fut = handle.get_future()
    if not fut.done():
        return "Work.get_future() is not done after wait() returned"
    got = _flat_tensors(fut.value())
    if not got:
        return f"Work.get_future() completed without tensors (value: {type(fut.value()).__name__})"
    return None


def run_case(case: Case, spec: Spec, rt: RankContext) -> RankOutcome:
    try:
        prep = spec.prepare(case, rt)
        before = [t.clone() for t in prep.outputs]
    except Exception as exc:  # the suite's own fault, never the backend's
        return _harness_error("input preparation", exc)

    async_op = case.mode == "async"
    t0 = time.perf_counter()
    try:
        handle = prep.call(async_op)
        problem = _wait(handle) if async_op else None
        call_s = time.perf_counter() - t0
        if async_op and problem is None and prep.check_future:
            problem = _check_future(handle, prep)
    except Exception as exc:
        call_s = time.perf_counter() - t0
        modified = not all(_bits_equal(t, b) for t, b in zip(prep.outputs, before))
        return RankOutcome("raised", describe_exception(exc), call_s, type(exc).__name__, modified, prep.expect_error)

    if prep.expect_error:
        return RankOutcome(FAILED, "accepted invalid arguments without raising", call_s, expected_error=True)
    if problem:
        return RankOutcome(FAILED, problem, call_s)
    try:
        for i, (out, exp) in enumerate(zip(prep.outputs, prep.expected)):
            if exp is None:
                continue
            bad = values.describe_mismatch(out, exp, values.tolerance(out.dtype, prep.op))
            if bad:
                where = f"output {i}: " if len(prep.outputs) > 1 else ""
                return RankOutcome(FAILED, where + bad, call_s)
        if prep.after is not None:
            bad = prep.after()
            if bad:
                return RankOutcome(FAILED, bad, call_s)
    except Exception as exc:
        return _harness_error("oracle", exc)
    return RankOutcome(PASSED, "", call_s)

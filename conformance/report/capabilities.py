"""What a run measured about the capability flags a backend advertises (``capabilities.observed``).

Each flag is one row: which results measure it, and how.  A flag no case measured is ``None`` ("not measured"),
never a guess.  The report marks every flag whose advertised and observed values differ (``disagree``).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional

from ..status import PASSING, SKIPPED, XFAILED

Record = Dict[str, Any]


def _outcome(records: List[Record]) -> Optional[Any]:
    """True when every case that ran passed, False when none did, "p of n" in between; None when none ran."""
    ran = [r for r in records if r["status"] != SKIPPED]
    if not ran:
        return None
    passed = sum(1 for r in ran if r["status"] in PASSING or (r["status"] == XFAILED and r.get("expected") == "passed"))
    if passed == len(ran):
        return True
    return False if passed == 0 else f"{passed} of {len(ran)} cases"


def _cases(pattern: str) -> Callable[[List[Record]], Optional[Any]]:
    rx = re.compile(pattern)
    return lambda records: _outcome([r for r in records if rx.search(r["id"])])


def _never(problem: str, among: str) -> Callable[[List[Record]], Optional[Any]]:
    """False when some case failed with ``problem``; True when cases of ``among`` ran without it; else None."""
    bad, rx = re.compile(problem), re.compile(among)

    def judge(records: List[Record]) -> Optional[Any]:
        relevant = [r for r in records if rx.search(r["id"]) and r["status"] != SKIPPED]
        if any(bad.search(r.get("reason") or "") for r in relevant):
            return False
        return True if any(r["status"] in PASSING for r in relevant) else None
    return judge


# flag -> how the run measures it
OBSERVERS: Dict[str, Callable[[List[Record]], Optional[Any]]] = {
    # _coalescing_manager's fused calls and the *_coalesced APIs give the same values as separate calls
    "supports_coalescing": _cases(r"^(coalescing_manager\.|all_reduce_coalesced/|all_gather_coalesced/)"),
    # an async Work's future completes with the output tensors (DDP relies on it)
    "future_carries_tensors": _never(r"get_future\(\) (completed without tensors|is not done)", r"/async$"),
    # Work.is_completed() is True once wait() returned
    "is_completed_after_wait": _never(r"is_completed\(\) (is|returned) False", r"/async$"),
    # Work.wait(timeout) raises when the timeout expires, and the Work survives
    "wait_timeout": _cases(r"^work\.wait_timeout/"),
}


def observed(records: List[Record]) -> Dict[str, Any]:
    return {flag: judge(records) for flag, judge in OBSERVERS.items()}

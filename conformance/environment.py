"""What the Python environment must provide for the suite, checked once before a run (the preflight) and
recognised when a case trips over it.

A case that fails because this Python lacks something torch or the suite needs is the suite's problem, never the
backend's: such cases end ``harness_error`` with the one-line fix, and the run says so once, at the start.  Each
need is one row of ``NEEDS``; a case names the needs it has (``Case.needs``).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional


@dataclass(frozen=True)
class Need:
    name: str
    why: str                      # which cases need it, and why
    fix: str                      # one line a user can run
    present: Callable[[], bool]
    symptom: re.Pattern           # how torch reports its absence when a case trips over it anyway

    @property
    def message(self) -> str:
        return f"{self.name} is missing from this Python environment ({self.why}); fix: {self.fix}"


def _numpy_usable() -> bool:
    if importlib.util.find_spec("numpy") is None:
        return False
    try:
        import torch
        torch.zeros(1).numpy()        # torch's own bridge: fails on an ABI mismatch too
        return True
    except Exception:
        return False


NEEDS = (
    Need("numpy", "torch's object collectives pickle objects through tensor.numpy()", "pip install numpy",
         _numpy_usable, re.compile(r"numpy is not available|no module named 'numpy'", re.IGNORECASE)),
)
_BY_NAME = {n.name: n for n in NEEDS}


@lru_cache(maxsize=None)
def missing() -> tuple[Need, ...]:
    """The needs this environment lacks (checked once per process)."""
    return tuple(n for n in NEEDS if not n.present())


def unmet(needs) -> Optional[str]:
    """The harness_error reason for a case with these needs here, or None when all are met."""
    gone = [n for n in missing() if n.name in needs]
    return "; ".join(n.message for n in gone) or None


def diagnose(message: str) -> Optional[str]:
    """The reason to give when an exception's message shows a missing need, or None."""
    for need in NEEDS:
        if need.symptom.search(message):
            return need.message
    return None


def need(name: str) -> Need:
    return _BY_NAME[name]

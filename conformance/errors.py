"""How an exception becomes one stable line of text: shared by the ranks (case errors), the controller (backend
init and ``--plugin`` import errors) and torchrun mode."""

from __future__ import annotations

import re

# "[/path/file.cc:123]" source locations, "[enforce fail at ...]" and "[rank0]:" prefixes from C++ errors: they
# differ between builds, runs and ranks, so they would keep per-rank reasons apart and make report diffs noisy.
_SOURCE_LOCATION = re.compile(r"\[(?:enforce fail at )?[^\]]*\.(?:cc|cpp|cu|h|hpp|c):\d+\]\s*|^\[rank\d+\]:\s*")


def describe_exception(exc: BaseException) -> str:
    """One stable line: the exception type and the first line of its message, without C++ noise."""
    text = str(exc).strip().splitlines()
    first = _SOURCE_LOCATION.sub("", text[0] if text else "")
    # C++ errors carry an "Exception raised from ..." trailer and frames; the first line says what happened.
    return f"{type(exc).__name__}: {first}"[:500]

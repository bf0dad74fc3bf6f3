"""The result classes (DESIGN.md section 2): one row per status, and the only place a status is described.

Everything that names, orders, colours or judges a status reads this table: the merge of rank outcomes
(``outcomes.py``), pytest's letters and exit code (``plugin.py``), the report's summary and verdict, the matrix, the
support table, the schema's enum and the page templates.  Adding a status is adding one row.  No imports: the
controller, the ranks and the report tools all load it.

``blame`` says whose problem a status is, which is what a verdict needs:
  * ``none``: the backend did right (or was excused by an expectations file); the run stays conformant;
  * ``backend``: the backend did wrong; the run is NOT CONFORMANT;
  * ``suite``: the suite or the Python environment failed (``harness_error``); the backend is not blamed, the
    run is INCONCLUSIVE until the suite's problem is fixed, and pytest still exits non-zero.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Status:
    name: str
    letter: str        # pytest's progress letter
    word: str          # pytest's verbose word (-v)
    abbr: str          # column head in the terminal summary table
    symbol: str        # glyph in HTML cells, so no cell is told apart by colour alone
    bg: str            # Okabe-Ito derived palette (colour-blind safe) ...
    fg: str            # ... with a text colour that keeps contrast
    blame: str         # none | backend | suite (see the module docstring)
    severity: int      # lower is worse: a matrix cell, or a merged group of cases, shows its worst
    meaning: str

    @property
    def conformant(self) -> bool:
        return self.blame == "none"

    @property
    def fails_run(self) -> bool:
        """pytest reports the case as failing and exits non-zero."""
        return self.blame != "none"


# Rows in display order (tables, summaries, filters).
TABLE = (
    Status("passed", ".", "PASSED", "pass", "\u2713", "#009E73", "#ffffff", "none", 9,
           "every rank returned and every output matched the oracle"),
    Status("failed", "F", "FAILED", "fail", "F", "#D55E00", "#ffffff", "backend", 3,
           "it returned, but some output is wrong (values, shape, dtype, device, Work state, future)"),
    Status("error", "E", "ERROR", "err", "E", "#CC79A7", "#000000", "backend", 2,
           "an unexpected exception, an asymmetric one, a refusal after writing into the output, or a refusal "
           "that left the world unusable"),
    Status("timeout", "T", "TIMEOUT", "tmo", "T", "#E69F00", "#000000", "backend", 1,
           "the per-case watchdog fired; the world was killed and replaced"),
    Status("crashed", "C", "CRASHED", "crash", "C", "#1a1a1a", "#ffffff", "backend", 0,
           "a rank process died; the world was replaced"),
    Status("blocked", "B", "BLOCKED", "blk", "B", "#8c8c8c", "#ffffff", "backend", 5,
           "could not run: its world could not start, or a case that hung first makes it certain to hang too"),
    Status("harness_error", "H", "HARNESS_ERROR", "harn", "H", "#F0E442", "#000000", "suite", 4,
           "the suite itself or this Python environment failed (the reason says how to fix it); never the backend's"),
    Status("unsupported", "u", "UNSUPPORTED", "unsup", "u", "#56B4E9", "#000000", "none", 8,
           "every rank refused cleanly, wrote nothing, and the world stayed usable"),
    Status("skipped", "s", "SKIPPED", "skip", "s", "#e6e6e6", "#333333", "none", 10,
           "not applicable here, with the reason (API absent in this torch, backend does not serve the device, ...)"),
    Status("xfailed", "x", "XFAIL", "xfail", "x", "#0072B2", "#ffffff", "none", 6,
           "went wrong the way the expectations file says it does"),
    Status("xpassed", "X", "XPASS", "xpass", "X", "#9fe0c9", "#000000", "none", 7,
           "the expectations file expected a failure, and it passed (a stale expectation)"),
)

BY_NAME = {s.name: s for s in TABLE}
STATUSES = tuple(s.name for s in TABLE)

PASSED, FAILED, ERROR, TIMEOUT, CRASHED, BLOCKED, HARNESS_ERROR, UNSUPPORTED, SKIPPED, XFAILED, XPASSED = STATUSES

CONFORMANT = frozenset(s.name for s in TABLE if s.blame == "none")
BACKEND_FAULTS = frozenset(s.name for s in TABLE if s.blame == "backend")
SUITE_FAULTS = frozenset(s.name for s in TABLE if s.blame == "suite")
NONCONFORMANT = BACKEND_FAULTS | SUITE_FAULTS     # anything that fails the pytest run
PASSING = frozenset((PASSED, XPASSED))              # the case did what the API promises
SEVERITY = tuple(sorted(STATUSES, key=lambda n: BY_NAME[n].severity))
SEVERITY_RANK = {n: BY_NAME[n].severity for n in STATUSES}


def worst(statuses) -> str | None:
    """The most severe of some statuses (None for none)."""
    return min(statuses, key=lambda n: SEVERITY_RANK.get(n, -1), default=None)

# What a case itself can end in; an expectations file relabels some of these as xfailed / xpassed.
BASE_STATUSES = tuple(n for n in STATUSES if n not in (XFAILED, XPASSED))

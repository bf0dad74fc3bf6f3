"""One rank's outcome, and how the controller merges every rank's into one status (``conformance.status``).

The rule that separates ``unsupported`` from ``error`` is written here and nowhere else (no per-backend lists):

    A case is ``unsupported`` when every rank raised, each with an exception whose message is a refusal
    (it matches REFUSAL below: "not supported", "unsupported", "does not support", "not implemented",
    "does not implement", "Invalid scalar type", "Cannot use ReduceOp", "only implemented for",
    "requires a group with a ... capable backend", "must be contiguous"), no rank wrote into its outputs before
    raising, and the world stayed usable.

Anything else that raised is ``error``: a non-refusal message, an asymmetric raise (some ranks raised, others
returned or kept waiting), a refusal that modified the output first (gloo's integer AVG writes the SUM, then
raises), or a refusal that left the world unusable.  "No backend type associated with device type" is not a
refusal: torch says it when a Python process group lacks a method this torch calls, which is a broken backend.

An error-path case (an invalid call, or a reduce op the dtype does not define) conforms when every rank raised;
a rank that returned normally is ``failed``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from .status import ERROR, FAILED, HARNESS_ERROR, PASSED, UNSUPPORTED

# A rank-level state only: the rank's call raised.  The merge turns it into unsupported, error or a passed
# error path; it never reaches a report.
RAISED = "raised"

REFUSAL = re.compile(
    r"not supported|unsupported|does not support|not implemented|does not implement|invalid scalar type"
    r"|cannot use reduceop|only implemented for|requires a group with a [\w-]+ backend"
    r"|must be contiguous|has to be contiguous",
    re.IGNORECASE,
)


def is_refusal(exc_type: str, message: str) -> bool:
    return bool(REFUSAL.search(message)) or exc_type == "NotImplementedError"


@dataclass
class RankOutcome:
    """What one rank reports for one case (a few hundred bytes over the pipe)."""
    status: str                       # passed | failed | raised | harness_error
    reason: str = ""
    call_s: float = 0.0               # time inside the API call and its wait
    exc_type: str = ""
    output_modified: bool = False     # raised after writing into an output
    expected_error: bool = False      # the case required an error
    accepted: str = ""                # an error-path case that returned: what that means ("accepted invalid ...")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CaseResult:
    status: str
    reason: str = ""
    duration_s: float = 0.0           # wall time seen by the controller
    call_s: float = 0.0               # slowest rank's time inside the call
    ranks: dict = field(default_factory=dict)   # rank -> reason, for non-passing ranks
    amends: list = field(default_factory=list)  # [(case id, CaseResult)]: earlier cases whose result changed


def join_reasons(by_rank: dict[int, str], world_size: int = 0) -> str:
    """One reason per rank, folded when they agree: "all ranks: ..." only when every rank of the world said it."""
    texts = set(by_rank.values())
    if len(texts) == 1 and len(by_rank) > 1:
        who = "all ranks" if len(by_rank) == world_size else f"ranks {sorted(by_rank)}"
        return f"{who}: {texts.pop()}"
    return "; ".join(f"rank {r}: {t}" for r, t in sorted(by_rank.items()))


def merge(outcomes: dict[int, RankOutcome], world_size: int) -> CaseResult:
    """Merge every rank's outcome into one status; the worst wins and the reasons stay per rank."""
    call_s = max((o.call_s for o in outcomes.values()), default=0.0)
    notes = {r: o.reason for r, o in outcomes.items() if o.status != PASSED}

    def result(status: str, reason: str) -> CaseResult:
        return CaseResult(status, reason, call_s=call_s, ranks={str(r): t for r, t in notes.items()})

    harness = {r: o.reason for r, o in outcomes.items() if o.status == HARNESS_ERROR}
    if harness:
        return result(HARNESS_ERROR, join_reasons(harness, world_size))
    raised = {r: o for r, o in outcomes.items() if o.status == RAISED}
    if outcomes and all(o.expected_error for o in outcomes.values()):
        return _merge_error_path(outcomes, raised, world_size, result)
    if raised and len(raised) < world_size:
        others = sorted(set(range(world_size)) - set(raised))
        return result(ERROR, f"asymmetric: ranks {sorted(raised)} raised, ranks {others} did not; "
                             + join_reasons({r: o.reason for r, o in raised.items()}, world_size))
    if raised:
        modified = sorted(r for r, o in raised.items() if o.output_modified)
        text = join_reasons({r: o.reason for r, o in raised.items()}, world_size)
        if modified:
            return result(ERROR, f"raised after writing into its output (ranks {modified}): {text}")
        if all(is_refusal(o.exc_type, o.reason) for o in raised.values()):
            return result(UNSUPPORTED, text)
        return result(ERROR, text)
    failed = {r: o.reason for r, o in outcomes.items() if o.status == FAILED}
    if failed:
        return result(FAILED, join_reasons(failed, world_size))
    return result(PASSED, "")


def _merge_error_path(outcomes, raised, world_size, result) -> CaseResult:
    """An invalid call: conformance means a clean error on every rank."""
    if len(raised) == world_size:
        return result(PASSED, "")
    if not raised:
        accepted = {o.accepted for o in outcomes.values()} - {""}
        return result(FAILED, (accepted.pop() if len(accepted) == 1 else "accepted invalid arguments")
                      + ": no rank raised")
    others = sorted(set(range(world_size)) - set(raised))
    return result(ERROR, f"asymmetric: ranks {sorted(raised)} rejected the invalid call, ranks {others} accepted it")

"""Shared vocabulary of the report: statuses, their order, the conformance rule, loading, naming.

Everything here is plain Python over plain dicts so that the writer, the HTML renderer, the CLI and the
tests agree on one definition of "conformant", "worst" and "regression".
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple

from .. import status as _status
from .schema import READABLE_SCHEMAS, SCHEMA_VERSION, validate

# Every fact about a status lives in conformance.status; these names keep the report modules' vocabulary.
STATUSES = _status.STATUSES
BASE_STATUSES = _status.BASE_STATUSES
CONFORMANT = _status.CONFORMANT
NONCONFORMANT = _status.NONCONFORMANT
BACKEND_FAULTS = _status.BACKEND_FAULTS
SUITE_FAULTS = _status.SUITE_FAULTS
SEVERITY = _status.SEVERITY
SEVERITY_RANK = _status.SEVERITY_RANK
DISPLAY_ORDER = _status.STATUSES
SYMBOLS = {s.name: s.symbol for s in _status.TABLE}
COLORS = {s.name: (s.bg, s.fg) for s in _status.TABLE}
worst = _status.worst

REDUCE_OPS = ("SUM", "AVG", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR", "PREMUL_SUM")

DTYPE_ORDER = (
    "bool",
    "uint8",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint16",
    "uint32",
    "uint64",
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e5m2",
    "float8_e5m2fnuz",
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex32",
    "complex64",
    "complex128",
)

#: Row families of the support table (the shape of the PyTorch docs' backend table), in display order, and
#: every public or functional name that belongs to each.  A collective not listed gets a row of its own.
FAMILIES: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("send", ("send", "isend")),
    ("recv", ("recv", "irecv")),
    ("batch_isend_irecv", ("batch_isend_irecv",)),
    ("broadcast", ("broadcast",)),
    ("all_reduce", ("all_reduce", "all_reduce_coalesced")),
    ("reduce", ("reduce",)),
    (
        "all_gather",
        (
            "all_gather",
            "all_gather_single",
            "all_gather_into_tensor",
            "_all_gather_base",
            "all_gather_coalesced",
            "all_gather_tensor",
            "all_gather_into_tensor_coalesced",
        ),
    ),
    ("gather", ("gather",)),
    ("scatter", ("scatter",)),
    (
        "reduce_scatter",
        (
            "reduce_scatter",
            "reduce_scatter_single",
            "reduce_scatter_tensor",
            "_reduce_scatter_base",
            "reduce_scatter_tensor_coalesced",
        ),
    ),
    ("all_to_all", ("all_to_all", "all_to_all_single")),
    ("barrier", ("barrier", "monitored_barrier")),
)
_FAMILY_OF = {name: fam for fam, names in FAMILIES for name in names}
FAMILY_ORDER = {fam: i for i, (fam, _) in enumerate(FAMILIES)}


def family(collective: str) -> str:
    """Support-table row of a collective name (``funcol.all_reduce`` -> ``all_reduce``)."""
    name = collective.split(".", 1)[1] if collective.startswith("funcol.") else collective
    return _FAMILY_OF.get(name, name)


def collective_sort_key(collective: str) -> Tuple[int, int, str]:
    fam = family(collective)
    return (FAMILY_ORDER.get(fam, len(FAMILY_ORDER)), 1 if collective.startswith("funcol.") else 0, collective)


_DTYPE_RANK = {d: i for i, d in enumerate(DTYPE_ORDER)}


def dtype_sort_key(dtype: Optional[str]) -> Tuple[int, str]:
    if dtype is None:
        return (len(DTYPE_ORDER) + 1, "")
    return (_DTYPE_RANK.get(dtype, len(DTYPE_ORDER)), dtype)


_OP_RANK = {o: i for i, o in enumerate(REDUCE_OPS)}


def op_sort_key(op: Optional[str]) -> Tuple[int, str]:
    if op is None:
        return (-1, "")
    return (_OP_RANK.get(op, len(REDUCE_OPS)), op)


def raw_status(record: Dict[str, Any]) -> str:
    """What the case did, before an expectations file relabelled it."""
    status = record["status"]
    if status == "xfailed":
        return record.get("expected") or "failed"
    if status == "xpassed":
        return "passed"
    return status


#: Show "ran N of M" next to a verdict when fewer than this share of a run's cases executed.
RAN_NOTE_BELOW = 0.9

VERDICTS = ("conformant", "not_conformant", "inconclusive", "not_run", "partial")


def summarize(counts: Dict[str, int], complete: bool, not_run_reason: str = "") -> Dict[str, Any]:
    """The ``summary`` object of a report from status counts.

    ``verdict`` (one of VERDICTS), decided in this order:
      * ``not_run``: the run is complete and no case executed (every case skipped): never conformant;
      * ``not_conformant``: some case ended in a status that blames the backend (``unexpected`` counts them;
        those an expectations file covered are ``xfailed`` and do not count);
      * ``inconclusive``: no backend fault, but the suite or the environment failed (``harness_errors``);
      * ``partial``: the run did not finish;
      * ``conformant``: otherwise.
    ``conformant`` is True / False for the first and last of those, None for the others.
    """
    total = sum(counts.values())
    skipped = counts.get(_status.SKIPPED, 0)
    unexpected = sum(n for s, n in counts.items() if s in BACKEND_FAULTS)
    harness = sum(n for s, n in counts.items() if s in SUITE_FAULTS)
    if complete and total == skipped:
        verdict = "not_run"
    elif unexpected:
        verdict = "not_conformant"
    elif harness:
        verdict = "inconclusive"
    elif not complete:
        verdict = "partial"
    else:
        verdict = "conformant"
    ordered = {s: counts[s] for s in STATUSES if counts.get(s)}
    out = {"total": total, "ran": total - skipped, "counts": ordered, "verdict": verdict,
           "conformant": True if verdict == "conformant" else False if verdict == "not_conformant" else None,
           "unexpected": unexpected, "harness_errors": harness}
    if verdict == "not_run":
        out["not_run_reason"] = not_run_reason or "every case was skipped"
    return out


def summarize_results(results: Iterable[Dict[str, Any]], complete: bool) -> Dict[str, Any]:
    counts: Dict[str, int] = {}
    skips: Dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
        if r["status"] == _status.SKIPPED:
            skips[r.get("reason") or ""] = skips.get(r.get("reason") or "", 0) + 1
    return summarize(counts, complete, max(skips, key=skips.get) if skips else "")


def verdict_text(doc: Dict[str, Any]) -> str:
    """A short human verdict, with the counts that matter: CONFORMANT / NOT CONFORMANT / INCONCLUSIVE / NOT RUN /
    PARTIAL."""
    s = _summary(doc)
    counts = s.get("counts", {})
    verdict = s["verdict"]
    if verdict == "not_run":
        return "NOT RUN (%s)" % s.get("not_run_reason", "every case was skipped")
    extra = []
    if counts.get("xfailed"):
        extra.append("%d expected failures" % counts["xfailed"])
    if counts.get("xpassed"):
        extra.append("%d unexpected passes" % counts["xpassed"])
    total, ran = s.get("total", 0), s.get("ran", s.get("total", 0))
    if total and ran < RAN_NOTE_BELOW * total:
        extra.append("ran %d of %d" % (ran, total))
    tail = (" (" + ", ".join(extra) + ")") if extra else ""
    partial = "" if doc.get("complete") else " [partial]"
    if verdict == "not_conformant":
        return "NOT CONFORMANT (%d unexpected)%s%s" % (s.get("unexpected", 0), partial, tail)
    if verdict == "inconclusive":
        return "INCONCLUSIVE (%d harness errors: the suite's problem, see their reasons)%s%s" % (
            s.get("harness_errors", 0), partial, tail)
    if verdict == "conformant":
        return "CONFORMANT" + tail
    return "PARTIAL (no verdict)" + tail


def verdict_class(doc: Dict[str, Any]) -> str:
    v = _summary(doc)["verdict"]
    return {"conformant": "pass", "not_conformant": "fail", "not_run": "notrun"}.get(v, "unknown")


def _summary(doc: Dict[str, Any]) -> Dict[str, Any]:
    s = doc.get("summary")
    if not s or "verdict" not in s:     # a schema-1 report, or a document built by hand
        s = summarize_results(doc.get("results", []), bool(doc.get("complete")))
    return s


_SAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def safe_name(text: str) -> str:
    return _SAFE.sub("_", str(text)).strip("_") or "x"


def run_stem(run: Dict[str, Any]) -> str:
    """``<device>-<backend>-ws<N>``: the file name (without suffix) of a run's JSON and HTML."""
    return "%s-%s-ws%s" % (safe_name(run["device"]), safe_name(run["backend"]), int(run["world_size"]))


def run_label(run: Dict[str, Any]) -> str:
    return "%s / %s / ws%s" % (run.get("device"), run.get("backend"), run.get("world_size"))


def run_sort_key(run: Dict[str, Any]) -> Tuple[str, str, int, str]:
    return (str(run.get("device")), str(run.get("backend")), int(run.get("world_size") or 0), str(run.get("host")))


class ReportError(ValueError):
    """A file that is not a readable report of a schema this code knows; the message is one line."""


class NotAReport(ReportError):
    """The file is JSON (or not even that) but no c10d-conformance report at all."""


def load_report(path: str, full_validation: bool = False) -> Dict[str, Any]:
    """Read one report JSON.  Raises :class:`ReportError` with a one-line message on any problem.

    By default only the envelope is checked (cheap at 20k results); ``full_validation`` runs the JSON Schema.
    """
    try:
        with open(path, "r", encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise ReportError("%s: no such file" % path) from None
    except IsADirectoryError:
        raise ReportError("%s: is a directory" % path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError("%s: cannot read: %s" % (path, e)) from None
    except json.JSONDecodeError as e:
        raise NotAReport("%s: not JSON (line %d column %d: %s)" % (path, e.lineno, e.colno, e.msg)) from None
    try:
        if full_validation:
            _check_is_report(doc)
            validate(doc)
        else:
            check_envelope(doc)
    except NotAReport as e:
        raise NotAReport("%s: %s" % (path, e)) from None
    except ValueError as e:
        raise ReportError("%s: %s" % (path, e)) from None
    return doc


def _check_is_report(doc: Any) -> None:
    if not isinstance(doc, dict) or "schema" not in doc or "results" not in doc or "run" not in doc:
        raise NotAReport("not a c10d-conformance report (no schema/run/results)")


def check_envelope(doc: Any) -> None:
    """Cheap structural check used when reading reports (the full schema is in :mod:`.schema`)."""
    _check_is_report(doc)
    if doc["schema"] not in READABLE_SCHEMAS:
        raise ValueError(
            "report schema version %r is not supported (this tool reads versions %s)"
            % (doc["schema"], ", ".join(map(str, READABLE_SCHEMAS)))
        )
    run = doc["run"]
    if not isinstance(run, dict) or not all(k in run for k in ("backend", "device", "world_size")):
        raise ValueError("run must name backend, device and world_size")
    if not isinstance(doc["results"], list):
        raise ValueError("results must be a list")
    for i, r in enumerate(doc["results"]):
        if not isinstance(r, dict) or r.get("status") not in STATUSES or not isinstance(r.get("id"), str):
            raise ValueError("results[%d] is not a result record (id/status)" % i)
    if not isinstance(doc.get("summary"), dict) or "verdict" not in doc["summary"]:
        doc["summary"] = summarize_results(doc["results"], bool(doc.get("complete")))


def find_reports(paths: Iterable[str]) -> List[str]:
    """Expand directories to their ``*.json`` files (sorted); files are kept as given."""
    out: List[str] = []
    for p in paths:
        if os.path.isdir(p):
            out.extend(
                os.path.join(p, n) for n in sorted(os.listdir(p)) if n.endswith(".json") and not n.startswith(".")
            )
        else:
            out.append(p)
    return out


def load_reports(paths: Iterable[str], skip_foreign_in_dirs: bool = True) -> List[Tuple[str, Dict[str, Any]]]:
    """Load every report named or found in directories.

    In a directory, JSON files that are not reports are skipped; a file named explicitly must be a report.
    """
    out = []
    for p in paths:
        if os.path.isdir(p):
            for f in find_reports([p]):
                try:
                    out.append((f, load_report(f)))
                except NotAReport:
                    if not skip_foreign_in_dirs:
                        raise
        else:
            out.append((p, load_report(p)))
    return out

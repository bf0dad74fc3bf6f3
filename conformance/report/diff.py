"""Compare two runs case by case: regressions, fixes, other changes, new and removed cases.

Statuses are compared as the cases behaved, before any expectations file relabelled them (``xfailed`` is read
as the status it stood for, ``xpassed`` as ``passed``), so changing an expectations file alone never shows as
a regression.  A regression is a case that was conformant (passed, unsupported, skipped) and is not any more
(failed, error, timeout, crashed, blocked, harness_error); a fix is the reverse.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from .model import CONFORMANT, run_label, raw_status

__all__ = ["diff_reports", "format_diff_text", "format_diff_markdown"]

Change = Tuple[str, str, str, str]  # id, old status, new status, new reason


def diff_reports(old: Dict[str, Any], new: Dict[str, Any]) -> Dict[str, Any]:
    o = {r["id"]: r for r in old.get("results", [])}
    n = {r["id"]: r for r in new.get("results", [])}
    regressions: List[Change] = []
    fixes: List[Change] = []
    changed: List[Change] = []
    for rid, rn in n.items():
        ro = o.get(rid)
        if ro is None:
            continue
        so, sn = raw_status(ro), raw_status(rn)
        if so == sn:
            continue
        item = (rid, so, sn, rn.get("reason") or "")
        ok_o, ok_n = so in CONFORMANT, sn in CONFORMANT
        if ok_o and not ok_n:
            regressions.append(item)
        elif ok_n and not ok_o:
            fixes.append(item)
        else:
            changed.append(item)
    added = [(rid, raw_status(r)) for rid, r in n.items() if rid not in o]
    removed = [(rid, raw_status(r)) for rid, r in o.items() if rid not in n]
    return {
        "old": old["run"],
        "new": new["run"],
        "old_complete": bool(old.get("complete")),
        "new_complete": bool(new.get("complete")),
        "regressions": sorted(regressions),
        "fixes": sorted(fixes),
        "changed": sorted(changed),
        "added": sorted(added),
        "removed": sorted(removed),
    }


def _head(d: Dict[str, Any]) -> str:
    def side(run: Dict[str, Any], complete: bool) -> str:
        return "%s (torch %s, %s%s)" % (run_label(run), run.get("torch"), run.get("started"), "" if complete else ", partial")

    return "%s -> %s" % (side(d["old"], d["old_complete"]), side(d["new"], d["new_complete"]))


def _counts_line(d: Dict[str, Any]) -> str:
    return "regressions: %d, fixes: %d, other changes: %d, new cases: %d, removed cases: %d" % (
        len(d["regressions"]),
        len(d["fixes"]),
        len(d["changed"]),
        len(d["added"]),
        len(d["removed"]),
    )


def _short(text: str, n: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def format_diff_text(d: Dict[str, Any], limit: int = 50) -> str:
    lines = ["diff " + _head(d), _counts_line(d)]
    for key, title in (("regressions", "REGRESSIONS"), ("fixes", "FIXES"), ("changed", "OTHER CHANGES")):
        items = d[key]
        if not items:
            continue
        lines.append("")
        lines.append("%s (%d)" % (title, len(items)))
        for rid, so, sn, reason in items[:limit]:
            lines.append("  %s: %s -> %s%s" % (rid, so, sn, ("  [" + _short(reason) + "]") if reason else ""))
        if len(items) > limit:
            lines.append("  ... and %d more" % (len(items) - limit))
    for key, title in (("added", "NEW CASES"), ("removed", "REMOVED CASES")):
        items = d[key]
        if not items:
            continue
        lines.append("")
        lines.append("%s (%d)" % (title, len(items)))
        for rid, s in items[:limit]:
            lines.append("  %s: %s" % (rid, s))
        if len(items) > limit:
            lines.append("  ... and %d more" % (len(items) - limit))
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def format_diff_markdown(d: Dict[str, Any], limit: int = 100) -> str:
    icon = ":x:" if d["regressions"] else ":white_check_mark:"
    lines = ["### %s c10d conformance diff" % icon, "", _md(_head(d)), "", _counts_line(d), ""]
    for key, title in (("regressions", "Regressions"), ("fixes", "Fixes"), ("changed", "Other changes")):
        items = d[key]
        if not items:
            continue
        lines += ["<details%s><summary>%s (%d)</summary>" % (" open" if key == "regressions" else "", title, len(items)), ""]
        lines += ["| case | old | new | reason |", "|---|---|---|---|"]
        for rid, so, sn, reason in items[:limit]:
            lines.append("| `%s` | %s | %s | %s |" % (rid, so, sn, _md(_short(reason))))
        if len(items) > limit:
            lines.append("| ... and %d more | | | |" % (len(items) - limit))
        lines += ["", "</details>", ""]
    for key, title in (("added", "New cases"), ("removed", "Removed cases")):
        items = d[key]
        if not items:
            continue
        lines += ["<details><summary>%s (%d)</summary>" % (title, len(items)), ""]
        lines += ["| case | status |", "|---|---|"]
        for rid, s in items[:limit]:
            lines.append("| `%s` | %s |" % (rid, s))
        if len(items) > limit:
            lines.append("| ... and %d more | |" % (len(items) - limit))
        lines += ["", "</details>", ""]
    return "\n".join(lines)

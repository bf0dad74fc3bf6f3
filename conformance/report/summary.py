"""Short summaries of runs: a terminal table for the end of a pytest run, Markdown for CI step summaries."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

from ..status import BY_NAME
from ..versions import release
from .model import DISPLAY_ORDER, run_label, run_sort_key, verdict_text

__all__ = ["terminal_table", "markdown_summary", "status_columns"]


def _sorted(docs: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return sorted(docs, key=lambda d: (run_sort_key(d["run"]), release(str(d["run"].get("torch", "")))))


def status_columns(docs: Sequence[Dict[str, Any]]) -> List[str]:
    """Statuses that occur in any of the runs, in display order (passed and failed always)."""
    seen = {s for d in docs for s, n in (d.get("summary") or {}).get("counts", {}).items() if n}
    return [s for s in DISPLAY_ORDER if s in seen or s in ("passed", "failed")]


def terminal_table(docs: Sequence[Dict[str, Any]]) -> str:
    """A one-screen plain-text table: one line per run with counts per status and the verdict."""
    docs = _sorted(docs)
    cols = status_columns(docs)
    # runs from several torch releases side by side (tox's torchNN envs): the release tells them apart
    releases = len({d["run"].get("torch") for d in docs}) > 1
    head = ["run"] + (["torch"] if releases else []) + ["total"] + [BY_NAME[s].abbr for s in cols] + ["verdict"]
    rows = []
    for d in docs:
        s = d.get("summary") or {}
        counts = s.get("counts", {})
        rows.append(
            [run_label(d["run"])] + ([str(d["run"].get("torch", "?"))] if releases else [])
            + [str(s.get("total", 0))]
            + [str(counts.get(c, 0)) if counts.get(c) else "." for c in cols]
            + [verdict_text(d)]
        )
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    left = 2 if releases else 1       # left-aligned text columns; the counts are right-aligned

    def fmt(r: List[str]) -> str:
        cells = ([r[i].ljust(widths[i]) for i in range(left)] + [r[i].rjust(widths[i]) for i in range(left, len(r) - 1)]
                 + [r[-1]])
        return "  ".join(cells).rstrip()

    lines = [fmt(head), "  ".join("-" * w for w in widths[:-1]) + "  " + "-" * max(7, widths[-1])]
    lines.extend(fmt(r) for r in rows)
    if not rows:
        lines.append("(no runs)")
    return "\n".join(lines)


def markdown_summary(docs: Sequence[Dict[str, Any]], title: str = "c10d conformance") -> str:
    """GitHub-flavoured Markdown: one table row per run with counts and the verdict."""
    docs = _sorted(docs)
    cols = status_columns(docs)
    out = ["### %s" % title, ""]
    if not docs:
        return "\n".join(out + ["No reports found.", ""])
    out.append("| run | torch | total | " + " | ".join(cols) + " | verdict |")
    out.append("|---|---|---:|" + "---:|" * len(cols) + "---|")
    for d in docs:
        s = d.get("summary") or {}
        counts = s.get("counts", {})
        v = verdict_text(d)
        icon = {"conformant": ":white_check_mark:", "not_conformant": ":x:", "not_run": ":no_entry_sign:"}.get(
            s.get("verdict"), ":hourglass:")
        out.append(
            "| %s | %s | %d | %s | %s %s |"
            % (
                run_label(d["run"]),
                d["run"].get("torch", "?"),
                s.get("total", 0),
                " | ".join(str(counts.get(c, 0)) for c in cols),
                icon,
                v,
            )
        )
    out.append("")
    return "\n".join(out)

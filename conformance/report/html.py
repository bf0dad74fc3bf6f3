"""Self-contained HTML pages: one per run, and ``index.html`` merged across runs.

The run page embeds the results once, as a compact columnar JSON blob (strings interned, rows as a flat integer
array), and builds the matrix in inline JavaScript, so 20,000 results make a page of well under a few MB that
renders in a fraction of a second.  The index is rendered server-side from per-row aggregates.  No page loads
anything from the network: it opens from disk (``file://``).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .model import (
    COLORS,
    DISPLAY_ORDER,
    NONCONFORMANT,
    SEVERITY,
    SEVERITY_RANK,
    STATUSES,
    SYMBOLS,
    collective_sort_key,
    dtype_sort_key,
    load_reports,
    op_sort_key,
    run_label,
    run_sort_key,
    verdict_class,
    verdict_text,
)
from ..status import PASSING
from .files import atomic_write

__all__ = [
    "compact_run",
    "render_run",
    "write_run_html",
    "render_index",
    "write_index",
    "render_index_dir",
    "index_entries_from_dir",
]

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
PROVENANCE_KEYS = (
    ("torch", "torch"),
    ("torch_git", "torch git"),
    ("backend", "backend"),
    ("backend_version", "backend version"),
    ("device", "device"),
    ("device_name", "device name"),
    ("driver", "driver"),
    ("world_size", "world size"),
    ("launcher", "launcher"),
    ("timeout_s", "case timeout (s)"),
    ("python", "python"),
    ("host", "host"),
    ("platform", "platform"),
    ("suite_version", "suite version"),
    ("started", "started (UTC)"),
    ("duration_s", "duration (s)"),
)

_env = None


def _environment() -> Any:
    global _env
    if _env is None:
        import jinja2

        _env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
            autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True, default=True),
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
        _env.filters["jsonblob"] = _json_blob
    return _env


def _json_blob(obj: Any) -> Any:
    """JSON safe to put inside ``<script type="application/json">``."""
    import markupsafe

    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("</", "<\\/").replace("<!--", "<\\!--")
    return markupsafe.Markup(text)


def _common_context() -> Dict[str, Any]:
    return {
        "statuses": list(DISPLAY_ORDER),
        "symbols": SYMBOLS,
        "colors": COLORS,
        "severity": list(SEVERITY),
        "nonconformant": sorted(NONCONFORMANT),
        "passing": sorted(PASSING),
    }


def _provenance(run: Dict[str, Any]) -> List[Tuple[str, str]]:
    out = []
    for key, label in PROVENANCE_KEYS:
        v = run.get(key)
        if key == "duration_s" and isinstance(v, (int, float)):
            v = "%.1f" % v
        out.append((label, "\u2014" if v is None or v == "" else str(v)))
    argv = run.get("argv")
    if argv:
        out.append(("command", " ".join(str(a) for a in argv)))
    return out


class _Interner:
    def __init__(self) -> None:
        self.items: List[Any] = []
        self.index: Dict[Any, int] = {}

    def __call__(self, value: Any) -> int:
        i = self.index.get(value)
        if i is None:
            i = self.index[value] = len(self.items)
            self.items.append(value)
        return i


ROW_STRIDE = 12  # c, v, d, o, shape, mode, status, reason, duration(ms*10), expected, ranks, id


def compact_run(doc: Dict[str, Any]) -> Dict[str, Any]:
    """The page's data blob: dictionaries of distinct values and one flat integer array of results.

    Each result is ``ROW_STRIDE`` integers: indices into ``colls``, ``variants``, ``dtypes``, ``ops``, ``shapes``,
    ``modes``, ``statuses``, then ``strs`` indices of reason / expected / ranks-JSON / literal id (``-1`` = none;
    for the id, ``-1`` = the canonical ``collective/variant/dtype/op/shape/mode`` with nulls left out), and the
    duration in tenths of a millisecond (``-1`` = null).
    """
    results = doc.get("results", [])
    colls = sorted({r["collective"] for r in results}, key=collective_sort_key)
    variants = sorted({r.get("variant") or "default" for r in results}, key=lambda v: (v != "default", v))
    dtypes = sorted({r.get("dtype") for r in results}, key=dtype_sort_key)
    ops = sorted({r.get("op") for r in results}, key=op_sort_key)
    shapes = sorted({r.get("shape") for r in results}, key=lambda s: (s is None, str(s)))
    modes = ["sync", "async"]
    ci = {c: i for i, c in enumerate(colls)}
    vi = {v: i for i, v in enumerate(variants)}
    di = {d: i for i, d in enumerate(dtypes)}
    oi = {o: i for i, o in enumerate(ops)}
    si = {s: i for i, s in enumerate(shapes)}
    mi = {m: i for i, m in enumerate(modes)}
    sti = {s: i for i, s in enumerate(STATUSES)}
    strs = _Interner()
    strs("")
    flat: List[int] = []
    ext = flat.extend
    for r in results:
        c, v, d, o, s, m = r["collective"], r.get("variant") or "default", r.get("dtype"), r.get("op"), r.get("shape"), r.get("mode", "sync")
        if m not in mi:
            mi[m] = len(modes)
            modes.append(m)
        canon = "/".join(x for x in (c, v, d, o, s, m) if x is not None)
        rid = r["id"]
        dur = r.get("duration_s")
        ranks = r.get("ranks")
        exp = r.get("expected")
        ext(
            (
                ci[c],
                vi[v],
                di[d],
                oi[o],
                si[s],
                mi[m],
                sti[r["status"]],
                strs(r.get("reason") or ""),
                -1 if dur is None else int(round(dur * 10000)),
                -1 if exp is None else strs(exp),
                -1 if not ranks else strs(json.dumps(ranks, sort_keys=True, ensure_ascii=False)),
                -1 if rid == canon else strs(rid),
            )
        )
    return {
        "stride": ROW_STRIDE,
        "colls": colls,
        "variants": variants,
        "dtypes": dtypes,
        "ops": ops,
        "shapes": shapes,
        "modes": modes,
        "statuses": list(STATUSES),
        "strs": strs.items,
        "rows": flat,
    }


def render_run(doc: Dict[str, Any], index_href: Optional[str] = "index.html") -> str:
    """HTML of one run's page."""
    run = doc["run"]
    summary = doc.get("summary") or {}
    counts = summary.get("counts", {})
    caps = doc.get("capabilities") or {}
    adv, obs = caps.get("advertised") or {}, caps.get("observed") or {}
    cap_rows = []
    for name in sorted(set(adv) | set(obs)):
        a, o = adv.get(name), obs.get(name)
        cap_rows.append((name, a, o, name in adv and name in obs and a != o))
    ctx = _common_context()
    ctx.update(
        title="c10d conformance: %s" % run_label(run),
        run=run,
        complete=bool(doc.get("complete")),
        provenance=_provenance(run),
        summary=summary,
        counts=counts,
        verdict=verdict_text(doc),
        verdict_class=verdict_class(doc),
        cap_rows=cap_rows,
        data=compact_run(doc),
        index_href=index_href,
    )
    return _environment().get_template("run.html.j2").render(**ctx)


def write_run_html(doc: Dict[str, Any], path: str, index_href: Optional[str] = "index.html") -> str:
    atomic_write(path, render_run(doc, index_href=index_href))
    return path


# -- index ----------------------------------------------------------------------------------------------------


def _row_aggregates(doc: Dict[str, Any]) -> Dict[Tuple[str, str], Dict[str, int]]:
    agg: Dict[Tuple[str, str], Dict[str, int]] = {}
    for r in doc.get("results", []):
        key = (r["collective"], r.get("variant") or "default")
        d = agg.get(key)
        if d is None:
            d = agg[key] = {}
        d[r["status"]] = d.get(r["status"], 0) + 1
    return agg


def _cell(counts: Optional[Dict[str, int]]) -> Optional[Dict[str, Any]]:
    if not counts:
        return None
    worst = min(counts, key=lambda s: SEVERITY_RANK.get(s, 0))
    total = sum(counts.values())
    passed = sum(counts.get(s, 0) for s in PASSING)
    tip = ", ".join("%s %d" % (s, counts[s]) for s in DISPLAY_ORDER if counts.get(s))
    return {"status": worst, "sym": SYMBOLS[worst], "passed": passed, "total": total, "tip": tip}


def render_index(entries: Sequence[Tuple[str, Dict[str, Any]]], title: str = "c10d conformance: all runs") -> str:
    """HTML of the merged index.  ``entries`` are ``(href of the run page, report doc)``."""
    from .support_table import support_matrix

    entries = sorted(entries, key=lambda e: run_sort_key(e[1]["run"]))
    columns = []
    aggs = []
    for href, doc in entries:
        run = doc["run"]
        columns.append(
            {
                "href": href,
                "label": run_label(run),
                "device": run.get("device"),
                "backend": run.get("backend"),
                "world_size": run.get("world_size"),
                "run": run,
                "complete": bool(doc.get("complete")),
                "summary": doc.get("summary") or {},
                "verdict": verdict_text(doc),
                "verdict_class": verdict_class(doc),
                "cells": [],
            }
        )
        aggs.append(_row_aggregates(doc))
    keys = sorted({k for a in aggs for k in a}, key=lambda k: (collective_sort_key(k[0]), k[1] != "default", k[1]))
    rows = []
    for key in keys:
        cells = [_cell(a.get(key)) for a in aggs]
        bad = any(c is not None and c["status"] in NONCONFORMANT for c in cells)
        rows.append({"collective": key[0], "variant": key[1], "cells": cells, "bad": bad})
    prov_keys = [
        ("torch", "torch"),
        ("backend_version", "backend version"),
        ("device_name", "device name"),
        ("driver", "driver"),
        ("python", "python"),
        ("host", "host"),
        ("suite_version", "suite"),
        ("started", "started (UTC)"),
        ("duration_s", "duration (s)"),
    ]
    ctx = _common_context()
    ctx.update(
        title=title,
        columns=columns,
        rows=rows,
        prov_keys=prov_keys,
        support=support_matrix([(href, doc) for href, doc in entries]),
    )
    return _environment().get_template("index.html.j2").render(**ctx)


def write_index(entries: Sequence[Tuple[str, Dict[str, Any]]], path: str) -> str:
    atomic_write(path, render_index(entries))
    return path


def index_entries_from_dir(report_dir: str) -> List[Tuple[str, Dict[str, Any]]]:
    out = []
    for path, doc in load_reports([report_dir]):
        out.append((os.path.splitext(os.path.basename(path))[0] + ".html", doc))
    return out


def render_index_dir(report_dir: str, ensure_run_pages: bool = False) -> str:
    """(Re)write ``index.html`` over every report JSON in ``report_dir``; return its path."""
    entries = index_entries_from_dir(report_dir)
    if ensure_run_pages:
        for href, doc in entries:
            page = os.path.join(report_dir, href)
            if not os.path.exists(page):
                write_run_html(doc, page)
    return write_index(entries, os.path.join(report_dir, "index.html"))


def iter_status_css() -> Iterable[Tuple[str, str, str]]:
    for s in STATUSES:
        bg, fg = COLORS[s]
        yield s, bg, fg

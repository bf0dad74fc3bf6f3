"""A measured backend-support table, in the shape of the table in PyTorch's torch.distributed docs.

Rows are functions (send, recv, broadcast, all_reduce, ... : every public or functional variant of a function
counts for its row, see :data:`~conformance.report.model.FAMILIES`), columns are backend x device (all world
sizes of that pair together).  A cell says what the runs found:

* ``✓``  every case that ran passed (no unsupported, no failure),
* ``✘``  no case passed (refused everywhere, or broken),
* ``◐ p/n`` partial: p of the n cases that ran passed,
* ``?``  not run (no result, or every result skipped).

A ``!`` is added when any case behind the cell is non-conformant (failed, error, timeout, ...), so a ✘ that means
"not supported" reads differently from a ✘ that means "broken".  Each cell links to the run page(s) filtered to
the collectives behind it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple
from urllib.parse import quote

from ..status import PASSING
from .model import DISPLAY_ORDER, FAMILIES, FAMILY_ORDER, NONCONFORMANT, family

__all__ = ["support_matrix", "support_markdown", "cell_symbol"]



def cell_symbol(counts: Dict[str, int]) -> Tuple[str, str]:
    """(symbol text, css class) of a support cell from status counts."""
    ran = sum(n for s, n in counts.items() if s != "skipped")
    passed = sum(counts.get(s, 0) for s in PASSING)
    bad = any(counts.get(s) for s in NONCONFORMANT)
    mark = "!" if bad else ""
    if ran == 0:
        return "?", "notrun"
    if passed == ran:
        return "\u2713", "yes"
    if passed == 0:
        return "\u2718" + mark, "no-bad" if bad else "no"
    return "\u25d0 %d/%d%s" % (passed, ran, mark), "partial-bad" if bad else "partial"


def support_matrix(entries: Sequence[Tuple[str, Dict[str, Any]]]) -> Dict[str, Any]:
    """Aggregate ``(href, doc)`` entries into ``{"columns", "rows"}`` for rendering.

    ``columns``: ``[{"backend", "device", "label"}]`` sorted; ``rows``: ``[{"function", "cells": [cell]}]`` where a
    cell is ``{"symbol", "cls", "tip", "links": [{"href", "label"}]}``.
    """
    cols: Dict[Tuple[str, str], Dict[str, Any]] = {}
    fams: Dict[str, Dict[Tuple[str, str], Dict[str, Any]]] = {}
    for href, doc in entries:
        run = doc["run"]
        col = (str(run["backend"]), str(run["device"]))
        cols.setdefault(col, {"backend": col[0], "device": col[1], "label": "%s %s" % col})
        per_fam: Dict[str, Dict[str, Any]] = {}
        for r in doc.get("results", []):
            f = family(r["collective"])
            d = per_fam.get(f)
            if d is None:
                d = per_fam[f] = {"counts": {}, "collectives": set()}
            d["counts"][r["status"]] = d["counts"].get(r["status"], 0) + 1
            d["collectives"].add(r["collective"])
        for f, d in per_fam.items():
            cell = fams.setdefault(f, {}).setdefault(col, {"counts": {}, "links": []})
            for s, n in d["counts"].items():
                cell["counts"][s] = cell["counts"].get(s, 0) + n
            frag = "collective=" + ",".join(quote(c, safe="._") for c in sorted(d["collectives"]))
            cell["links"].append({"href": "%s#%s" % (href, frag), "label": "ws%s" % run.get("world_size")})
    columns = [cols[k] for k in sorted(cols)]
    names = [f for f, _ in FAMILIES] + sorted(f for f in fams if f not in FAMILY_ORDER)
    rows: List[Dict[str, Any]] = []
    for f in names:
        cells = []
        for key in sorted(cols):
            cell = fams.get(f, {}).get(key)
            counts = cell["counts"] if cell else {}
            sym, cls = cell_symbol(counts)
            tip = ", ".join("%s %d" % (s, counts[s]) for s in DISPLAY_ORDER if counts.get(s)) or "not run"
            cells.append({"symbol": sym, "cls": cls, "tip": tip, "links": cell["links"] if cell else []})
        rows.append({"function": f, "cells": cells})
    return {"columns": columns, "rows": rows}


def support_markdown(entries: Sequence[Tuple[str, Dict[str, Any]]], link: bool = True) -> str:
    """The support table as GitHub Markdown; cells link to the (first) run page behind them when ``link``."""
    m = support_matrix(entries)
    head = "| function | " + " | ".join("%s (%s)" % (c["backend"], c["device"]) for c in m["columns"]) + " |"
    sep = "|---|" + "---|" * len(m["columns"])
    lines = [head, sep]
    for row in m["rows"]:
        out = []
        for c in row["cells"]:
            text = c["symbol"].replace("|", "\\|")
            if link and c["links"]:
                text = "[%s](%s)" % (text, c["links"][0]["href"])
            out.append(text)
        lines.append("| `%s` | %s |" % (row["function"], " | ".join(out)))
    lines.append("")
    lines.append(
        "\u2713 every case passed, \u2718 none passed, \u25d0 p/n partial, ? not run; ! = some case is "
        "non-conformant (failed, error, timeout, crashed, blocked, harness_error)."
    )
    return "\n".join(lines) + "\n"

"""What a person sees: the pages rendered by headless Chromium from disk (file://), after their JavaScript ran.

Chromium is found by conformance.report.browser.find_chromium (C10D_CHROMIUM, else chromium / chromium-browser /
google-chrome on PATH; Debian: apt-get install -y chromium).  Without one these tests skip, unless
C10D_REQUIRE_BROWSER=1 (set it in CI) turns the skip into a failure.
"""

import json
import os
import struct
import sys
from html.parser import HTMLParser

import pytest

try:
    import conformance.report  # noqa: F401
except ImportError:  # run as `pytest tests/` without the project installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conformance.report.browser import dump_dom, find_chromium, screenshot
from conformance.report.html import write_index, write_run_html
from conformance.report.model import SEVERITY_RANK, SYMBOLS
from conformance.report.synth import make_doc

if find_chromium() is None:
    if os.environ.get("C10D_REQUIRE_BROWSER") == "1":
        raise RuntimeError("C10D_REQUIRE_BROWSER=1 but no Chromium found (apt-get install -y chromium)")
    pytest.skip("no Chromium (apt-get install -y chromium, or set C10D_CHROMIUM)", allow_module_level=True)


class Dom(HTMLParser):
    """Elements with their attributes and their text content (enough to read what the page shows)."""

    VOID = {"br", "input", "meta", "img", "hr", "link", "col", "wbr"}

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.elements, self._open = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "text": ""}
        self.elements.append(el)
        if tag not in self.VOID:
            self._open.append(el)

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i]["tag"] == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        for el in self._open:
            el["text"] += data

    def find(self, tag=None, cls=None, **attrs):
        out = []
        for el in self.elements:
            if tag and el["tag"] != tag:
                continue
            if cls and cls not in (el["attrs"].get("class") or "").split():
                continue
            if all(el["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items()):
                out.append(el)
        return out

    def by_id(self, id_):
        found = self.find(id=id_)
        return found[0] if found else None


def expected_cells(doc, keep=lambda r: True):
    cells = {}
    for r in doc["results"]:
        if not keep(r):
            continue
        key = "%s|%s|%s" % (r["collective"], r["variant"], r["dtype"] if r["dtype"] is not None else "none")
        c = cells.setdefault(key, {"n": 0, "p": 0, "worst": r["status"]})
        c["n"] += 1
        c["p"] += r["status"] in ("passed", "xpassed")
        if SEVERITY_RANK[r["status"]] < SEVERITY_RANK[c["worst"]]:
            c["worst"] = r["status"]
    return cells


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    d = tmp_path_factory.mktemp("site")
    run = make_doc("gloo", "cpu", 2, scale=2, flaky=0.02, complete=False, interrupted=True)  # ~9k results, partial
    other = make_doc("fakepg", "cpu", 2, limit=3000, flaky=0.0, seed=5)
    write_run_html(run, str(d / "cpu-gloo-ws2.html"))
    write_run_html(other, str(d / "cpu-fakepg-ws2.html"))
    for name, doc in (("cpu-gloo-ws2", run), ("cpu-fakepg-ws2", other)):
        (d / (name + ".json")).write_text(json.dumps(doc))
    write_index([("cpu-gloo-ws2.html", run), ("cpu-fakepg-ws2.html", other)], str(d / "index.html"))
    return d, run, other


def test_run_page_matrix_summary_banner_and_detail(site):
    d, run, _ = site
    target = "all_reduce|default|bool"
    dom = Dom(dump_dom(str(d / "cpu-gloo-ws2.html") + "#cell=" + target))
    body = dom.find("body")[0]["attrs"]
    assert body.get("data-ready") == "1", "the page's script did not finish"
    assert int(body["data-render-ms"]) < 2000

    # banner and provenance
    banner = dom.by_id("partial-banner")
    assert banner is not None and "PARTIAL REPORT" in banner["text"] and "interrupted" in banner["text"]
    prov = dom.by_id("provenance")["text"]
    for text in ("2.13.0+cpu", "gloo 0.5", "Synthetic CPU", "synth-host", "3.11.7", "0.1.0"):
        assert text in prov

    # summary counts as a person reads them
    chips = {el["attrs"]["data-status"]: el for el in dom.find("span", cls="chip") if el["attrs"].get("data-status")}
    assert chips["total"]["text"].split()[-1] == str(len(run["results"]))
    for status, n in run["summary"]["counts"].items():
        assert chips[status]["text"].split()[-1] == str(n), status
        assert SYMBOLS[status] in chips[status]["text"]
    assert "NOT CONFORMANT" in dom.by_id("verdict")["text"]

    # the matrix: one cell per (collective, variant, dtype), worst status, letter and passed/total in the text
    want = expected_cells(run)
    cells = {el["attrs"]["data-cell"]: el for el in dom.find("td", cls="cell")}
    assert set(cells) == set(want)
    for key, w in want.items():
        el = cells[key]
        assert el["attrs"]["data-status"] == w["worst"], key
        assert "s-" + w["worst"] in el["attrs"]["class"]
        text = " ".join(el["text"].split())
        assert text.startswith("%s %d/%d" % (SYMBOLS[w["worst"]], w["p"], w["n"])), (key, text)
    # reduce ops as chips inside a cell
    ops = [e for e in dom.find("span", cls="op") if e["attrs"]["title"].startswith(("SUM:", "MAX:"))]
    assert ops
    # column headers are dtypes, row headers collectives
    assert [e["text"] for e in dom.find("th", cls="colh")][:3] == ["bool", "uint8", "int8"]
    assert dom.find("tr", id="row-all_reduce--default")

    # filters exist and list each status present
    assert dom.by_id("filters") is not None
    boxes = [e for e in dom.find("input") if e["attrs"].get("data-st") is not None]
    assert len(boxes) == len(run["summary"]["counts"])
    for sel in ("f-coll", "f-dtype", "f-op", "f-mode", "f-variant", "f-q"):
        assert dom.by_id(sel) is not None
    assert len(dom.find("option", value="-1")) == 5

    # the detail panel opened from the hash lists each case of the cell, with reasons and per-rank reasons
    detail = dom.by_id("detail")
    assert detail is not None and "hidden" not in detail["attrs"]
    rows = dom.find("tr", cls="case")
    in_cell = [r for r in run["results"] if (r["collective"], r["variant"], r["dtype"]) == ("all_reduce", "default", "bool")]
    detail_rows = [r for r in rows if r["attrs"]["data-id"] in {x["id"] for x in in_cell}]
    assert len(dom.find("table", id="detail-table")) == 1
    assert {r["attrs"]["data-id"] for r in detail_rows} == {x["id"] for x in in_cell}
    failed = next(x for x in in_cell if x["status"] == "failed")
    row = next(r for r in detail_rows if r["attrs"]["data-id"] == failed["id"])
    assert "raw byte 2 </script> & <b>" in row["text"] and "rank 1: got 2 at [0]" in row["text"]
    assert "selected" in cells[target]["attrs"]["class"]

    # the list of non-conformant cases
    assert "non-conformant case(s)" in dom.by_id("problems")["text"]


def test_run_page_filters_from_the_url(site):
    d, run, _ = site
    dom = Dom(dump_dom(str(d / "cpu-gloo-ws2.html") + "#status=failed,timeout&dtype=bool"))
    keep = lambda r: r["status"] in ("failed", "timeout") and r["dtype"] == "bool"  # noqa: E731
    want = expected_cells(run, keep)
    cells = {el["attrs"]["data-cell"]: el["attrs"]["data-status"] for el in dom.find("td", cls="cell")}
    assert cells == {k: v["worst"] for k, v in want.items()}
    shown = sum(v["n"] for v in want.values())
    assert dom.by_id("f-shown")["text"].startswith("%d of %d cases shown" % (shown, len(run["results"])))
    # the problem list follows the filters too
    assert dom.by_id("problems")["text"].startswith("%d non-conformant case(s)" % shown)


def test_index_page_runs_side_by_side(site):
    d, run, other = site
    dom = Dom(dump_dom(str(d / "index.html")))
    heads = [e["attrs"]["data-run"] for e in dom.find("th", cls="run-col")]
    assert heads == ["cpu-fakepg-ws2.html", "cpu-gloo-ws2.html"]
    assert "PARTIAL" in dom.by_id("partial-banner")["text"]
    rows = dom.find("tr", cls="mrow")
    colls = {r["attrs"]["data-collective"] for r in rows}
    assert colls == {r["collective"] for r in run["results"]} | {r["collective"] for r in other["results"]}
    links = [a["attrs"]["href"] for a in dom.find("a") if a["attrs"].get("href", "").startswith("cpu-gloo-ws2.html#row=")]
    assert links
    support = dom.by_id("support")
    assert support is not None
    sup_rows = {r["attrs"]["data-function"]: r["text"] for r in dom.find("tr") if r["attrs"].get("data-function")}
    assert "\u25d0" in sup_rows["all_reduce"] and "?" in sup_rows["recv"]
    assert "only rows with non-conformant cases" in dom.by_id("filters")["text"]
    assert dom.by_id("f-shown")["text"].endswith("rows shown")


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_screenshots(site, tmp_path):
    d, _, _ = site
    png = screenshot(str(d / "cpu-gloo-ws2.html") + "#cell=all_reduce|default|bool", str(tmp_path / "run.png"))
    assert os.path.getsize(png) > 20_000 and _png_size(png) == (1400, 1000)
    from conformance.report.__main__ import main

    png = str(tmp_path / "shots" / "index.png")
    assert main(["screenshot", str(d / "index.html"), png]) == 0  # the CLI path
    assert os.path.getsize(png) > 20_000 and _png_size(png) == (1400, 1000)

"""Run page and index as files: self-contained, small at 20k results, data blob safe; no browser needed."""

import json
import os
import re
import sys

try:
    import conformance.report  # noqa: F401
except ImportError:  # run as `pytest tests/` without the project installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conformance.report.html import compact_run, render_index, render_run
from conformance.report.synth import make_doc


def _blob(html):
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


def test_run_page_is_self_contained_and_small_at_20k():
    doc = make_doc(scale=6)
    doc["results"] = doc["results"][:20000]
    assert len(doc["results"]) == 20000
    html = render_run(doc)
    assert len(html.encode()) < 3_000_000
    # nothing fetched from anywhere: no external scripts, styles, fonts, images
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)=', html)
    assert "http://" not in html and "https://" not in html and "@import" not in html


def test_data_blob_roundtrips_every_result_and_escapes_script_end():
    doc = make_doc(limit=1500)
    doc["results"][0]["id"] = "odd/id </script><b>"
    html = render_run(doc)
    assert html.count("</script>") == 3  # data blob, meta blob, code: the reason text did not close a script
    data = _blob(html)
    assert data == json.loads(json.dumps(compact_run(doc)))
    S, rows, strs = data["stride"], data["rows"], data["strs"]
    assert len(rows) == S * len(doc["results"])
    for i, r in enumerate(doc["results"]):
        b = i * S
        assert data["colls"][rows[b]] == r["collective"] and data["dtypes"][rows[b + 2]] == r["dtype"]
        assert data["ops"][rows[b + 3]] == r["op"] and data["statuses"][rows[b + 6]] == r["status"]
        assert strs[rows[b + 7]] == r["reason"]
        if rows[b + 11] >= 0:
            assert strs[rows[b + 11]] == r["id"]
        else:
            assert "/".join(x for x in (r["collective"], r["variant"], r["dtype"], r["op"], r["shape"], r["mode"]) if x) == r["id"]


def test_provenance_and_partial_banner_rendered_server_side():
    doc = make_doc(limit=50, complete=False, interrupted=True, driver="555.42", device_name="Fancy GPU")
    html = render_run(doc)
    assert 'id="partial-banner"' in html and "was interrupted" in html
    for text in ("2.13.0+cpu", "555.42", "Fancy GPU", "synth-host", "0.1.0", "2025-01-01T00:00:00Z", "3.11.7"):
        assert text in html
    assert 'id="partial-banner"' not in render_run(make_doc(limit=50))


def test_index_columns_link_to_run_pages():
    entries = [("cuda-nccl-ws4.html", make_doc("nccl", "cuda", 4, limit=400)),
               ("cpu-gloo-ws2.html", make_doc("gloo", "cpu", 2, limit=400))]
    html = render_index(entries)
    # runs sorted device, backend, ws: cpu/gloo before cuda/nccl
    assert html.index('data-run="cpu-gloo-ws2.html"') < html.index('data-run="cuda-nccl-ws4.html"')
    assert 'href="cpu-gloo-ws2.html#row=all_reduce|default&amp;collective=all_reduce&amp;variant=default"' in html
    assert 'id="support"' in html

"""diff / merge / summary / html / schema / validate on generated runs, through the CLI's main()."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    import conformance.report  # noqa: F401
except ImportError:  # run as `pytest tests/` without the project installed
    sys.path.insert(0, ROOT)

from conformance.report import markdown_summary, terminal_table, validate
from conformance.report.__main__ import main
from conformance.report.diff import diff_reports
from conformance.report.model import run_stem
from conformance.report.support_table import cell_symbol, support_markdown
from conformance.report.synth import make_doc


def _write(dirpath, doc, name=None):
    os.makedirs(dirpath, exist_ok=True)
    path = os.path.join(str(dirpath), (name or run_stem(doc["run"])) + ".json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


@pytest.fixture(scope="module")
def two_runs():
    old = make_doc("gloo", "cpu", 2, limit=1500, flaky=0.0)
    new = make_doc("gloo", "cpu", 2, limit=1500, flaky=0.0, torch="2.14.0+cpu")
    by_id = {r["id"]: r for r in new["results"]}
    passed = [r for r in old["results"] if r["status"] == "passed"]
    failed = [r for r in old["results"] if r["status"] == "failed"]
    regress, fix, lost = passed[3], failed[0], passed[5]
    by_id[regress["id"]].update(status="error", reason="RuntimeError: new bug")
    by_id[fix["id"]].update(status="passed", reason="")
    by_id[lost["id"]].update(status="unsupported", reason="no longer supported")
    removed = new["results"].pop(10)
    new["results"].append(dict(new["results"][0], id="all_reduce/new/float32/SUM/small/sync", variant="new"))
    return old, new, {"regress": regress["id"], "fix": fix["id"], "lost": lost["id"], "removed": removed["id"]}


def test_diff_classifies_changes(two_runs):
    old, new, ids = two_runs
    d = diff_reports(old, new)
    assert [c[:3] for c in d["regressions"]] == [(ids["regress"], "passed", "error")]
    assert [c[:3] for c in d["fixes"]] == [(ids["fix"], "failed", "passed")]
    assert [c[:3] for c in d["changed"]] == [(ids["lost"], "passed", "unsupported")]
    assert [a[0] for a in d["added"]] == ["all_reduce/new/float32/SUM/small/sync"]
    assert [a[0] for a in d["removed"]] == [ids["removed"]]


def test_diff_reads_through_expectations(two_runs):
    old, new, ids = two_runs
    relabelled = json.loads(json.dumps(old))
    for r in relabelled["results"]:
        if r["status"] == "failed":
            r.update(status="xfailed", expected="failed")
    d = diff_reports(old, relabelled)  # only the labels changed, not the behaviour
    assert not (d["regressions"] or d["fixes"] or d["changed"])


def test_cli_diff_exit_codes_and_formats(tmp_path, two_runs, capsys):
    old, new, ids = two_runs
    po, pn = _write(tmp_path / "a", old), _write(tmp_path / "b", new)
    assert main(["diff", po, pn]) == 1
    out = capsys.readouterr().out
    assert "regressions: 1, fixes: 1, other changes: 1, new cases: 1, removed cases: 1" in out
    assert "%s: passed -> error" % ids["regress"] in out
    assert main(["diff", po, pn, "--markdown"]) == 1
    md = capsys.readouterr().out
    assert md.startswith("### :x:") and "| `%s` | passed | error |" % ids["regress"] in md
    assert main(["diff", po, po]) == 0
    assert "regressions: 0" in capsys.readouterr().out


def test_cli_merge_from_two_machines(tmp_path, two_runs, capsys):
    old, new, _ = two_runs
    a = _write(tmp_path / "machine-a", make_doc("gloo", "cpu", 2, limit=400, host="a"))
    _write(tmp_path / "machine-b", make_doc("gloo", "cpu", 2, limit=400, host="b"))  # same stem, other host
    _write(tmp_path / "machine-b", make_doc("nccl", "cuda", 4, limit=400, host="b", complete=False))
    (tmp_path / "machine-b" / "notes.json").write_text('{"not": "a report"}')  # skipped inside a directory
    out = tmp_path / "merged"
    assert main(["merge", str(tmp_path / "machine-a"), str(tmp_path / "machine-b"), "-o", str(out)]) == 0
    names = sorted(os.listdir(out))
    assert names == sorted(
        ["index.html", "cpu-gloo-ws2.json", "cpu-gloo-ws2.html", "cpu-gloo-ws2-b.json", "cpu-gloo-ws2-b.html",
         "cuda-nccl-ws4.json", "cuda-nccl-ws4.html"]
    )
    index = (out / "index.html").read_text()
    for href in ("cpu-gloo-ws2.html", "cpu-gloo-ws2-b.html", "cuda-nccl-ws4.html"):
        assert 'href="%s"' % href in index
    assert 'id="partial-banner"' in index  # the nccl run is partial
    # merging again the same files is idempotent (no -2 copies)
    assert main(["merge", a, str(tmp_path / "machine-b"), "-o", str(out)]) == 0
    assert sorted(os.listdir(out)) == names
    capsys.readouterr()


def test_cli_summary_and_terminal_table(tmp_path, capsys):
    docs = [make_doc("gloo", "cpu", 2, limit=800), make_doc("fakepg", "cpu", 2, limit=300, flaky=0.0, complete=False)]
    docs[1]["results"] = [r for r in docs[1]["results"] if r["status"] in ("passed", "unsupported")]
    docs[1]["summary"] = conformance.report.summarize_results(docs[1]["results"], False)
    for d in docs:
        _write(tmp_path, d)
    assert main(["summary", str(tmp_path)]) == 0
    md = capsys.readouterr().out
    rows = [l for l in md.splitlines() if l.startswith("| cpu")]
    assert len(rows) == 2
    assert "PARTIAL (no verdict)" in rows[0] and "NOT CONFORMANT" in rows[1]
    assert markdown_summary(docs).count("\n| cpu") == 2
    table = terminal_table(docs)
    lines = table.splitlines()
    assert len(lines) == 4 and lines[0].split()[:3] == ["run", "total", "pass"]
    assert "cpu / gloo / ws2" in table and all(len(l) < 160 for l in lines)
    assert main(["summary", "--text", "--support", str(tmp_path)]) == 0
    assert "cpu / fakepg / ws2" in capsys.readouterr().out


def test_terminal_table_tells_torch_releases_apart_in_numeric_order():
    docs = []
    for torch_version in ("2.13.0+cpu", "2.4.1+cu121", "2.9.1"):
        d = make_doc("gloo", "cpu", 2, limit=100)
        d["run"]["torch"] = torch_version
        docs.append(d)
    lines = terminal_table(docs).splitlines()
    assert lines[0].split()[:3] == ["run", "torch", "total"]
    assert [l.split()[5] for l in lines[2:]] == ["2.4.1+cu121", "2.9.1", "2.13.0+cpu"]


def test_support_table_symbols_and_markdown():
    assert cell_symbol({}) == ("?", "notrun")
    assert cell_symbol({"skipped": 3}) == ("?", "notrun")
    assert cell_symbol({"passed": 4, "skipped": 1}) == ("\u2713", "yes")
    assert cell_symbol({"unsupported": 4}) == ("\u2718", "no")
    assert cell_symbol({"failed": 4}) == ("\u2718!", "no-bad")
    assert cell_symbol({"passed": 3, "unsupported": 1}) == ("\u25d0 3/4", "partial")
    assert cell_symbol({"passed": 3, "timeout": 1}) == ("\u25d0 3/4!", "partial-bad")
    docs = [("cpu-gloo-ws2.html", make_doc("gloo", "cpu", 2)),
            ("cpu-gloo-ws4.html", make_doc("gloo", "cpu", 4)),
            ("cuda-nccl-ws2.html", make_doc("nccl", "cuda", 2, limit=500, flaky=0.0))]
    md = support_markdown(docs)
    lines = md.splitlines()
    assert lines[0] == "| function | gloo (cpu) | nccl (cuda) |"
    rows = {l.split("|")[1].strip(): l for l in lines[2:] if l.startswith("| `")}
    assert list(rows)[:4] == ["`send`", "`recv`", "`batch_isend_irecv`", "`broadcast`"]
    assert "(cpu-gloo-ws2.html#collective=all_reduce,funcol.all_reduce)" in rows["`all_reduce`"]
    assert rows["`recv`"].count("?") == 2


def test_cli_html_schema_validate(tmp_path, capsys):
    p = _write(tmp_path, make_doc("gloo", "cpu", 2, limit=300))
    assert main(["html", p, "--index"]) == 0
    assert (tmp_path / "cpu-gloo-ws2.html").is_file() and (tmp_path / "index.html").is_file()
    assert main(["schema"]) == 0
    path = capsys.readouterr().out.strip().splitlines()[-1]
    assert path.endswith("schema.json") and os.path.isfile(path)
    assert main(["validate", p]) == 0
    doc = json.load(open(p))
    validate(doc)


@pytest.mark.parametrize(
    "setup,args,message",
    [
        (None, ["diff", "{d}/nope.json", "{d}/nope2.json"], "nope.json: no such file"),
        ("notjson", ["html", "{d}/x.json"], "not JSON"),
        ("foreign", ["summary", "{d}/x.json"], "not a c10d-conformance report"),
        ("v9", ["diff", "{d}/x.json", "{d}/x.json"], "schema version 9 is not supported"),
        (None, ["summary", "{d}"], "no report JSON found"),
        ("foreign", ["validate", "{d}/x.json"], "not a c10d-conformance report"),
        (None, ["screenshot", "{d}/missing.html", "{d}/x.png"], "missing.html: no such file"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, setup, args, message):
    x = tmp_path / "x.json"
    if setup == "notjson":
        x.write_text("{oops")
    elif setup == "foreign":
        x.write_text('{"hello": 1}')
    elif setup == "v9":
        d = make_doc(limit=5)
        d["schema"] = 9
        x.write_text(json.dumps(d))
    rc = main([a.format(d=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err


def test_module_entry_point_has_no_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "conformance.report", "diff", str(tmp_path / "a.json"), str(tmp_path / "b.json")],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and p.stderr.strip().count("\n") == 0

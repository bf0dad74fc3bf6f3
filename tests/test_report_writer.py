"""RunReport: the file is valid JSON with complete:false at every moment before close, atomically rewritten."""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    import conformance.report  # noqa: F401
except ImportError:  # run as `pytest tests/` without the project installed
    sys.path.insert(0, ROOT)

from conformance.report import Expectations, RunReport, validate
from conformance.report.synth import make_records, make_run


def _read(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_file_exists_and_is_partial_from_the_start(tmp_path):
    rep = RunReport(str(tmp_path), make_run(backend="gloo", device="cpu", world_size=2))
    assert os.path.basename(rep.json_path) == "cpu-gloo-ws2.json"
    doc = _read(rep.json_path)
    assert doc["complete"] is False and doc["results"] == [] and doc["summary"]["total"] == 0
    assert doc["summary"]["conformant"] is None
    validate(doc)


def test_partial_file_between_flushes_and_final_close(tmp_path):
    rep = RunReport(str(tmp_path), make_run())
    recs = make_records(limit=500, flaky=0.0)
    for r in recs[:200]:
        rep.add(r)
    rep.flush(force=True)
    # a kill now leaves exactly this file: valid, partial, 200 results, summary recomputed
    doc = _read(rep.json_path)
    validate(doc)
    assert doc["complete"] is False
    assert len(doc["results"]) == 200 == doc["summary"]["total"]
    assert sum(doc["summary"]["counts"].values()) == 200
    for r in recs[200:]:
        rep.add(r)
    final = rep.close(complete=True)
    doc = _read(rep.json_path)
    assert doc == final
    assert doc["complete"] is True and doc["run"]["interrupted"] is False
    assert doc["summary"]["total"] == 500
    assert os.path.isfile(rep.html_path) and os.path.isfile(rep.index_path)
    assert not [n for n in os.listdir(tmp_path) if ".tmp." in n]  # no temporary files left behind
    with pytest.raises(RuntimeError):
        rep.add(recs[0])


def test_flush_writes_only_what_changed_and_add_never_writes(tmp_path):
    rep = RunReport(str(tmp_path), make_run())
    rep.add(make_records(limit=1)[0])      # the owner decides when to write (the suite: one flusher thread)
    assert _read(rep.json_path)["summary"]["total"] == 0
    assert rep.flush() is True
    assert _read(rep.json_path)["summary"]["total"] == 1
    assert rep.flush() is False            # nothing new
    assert rep.flush(force=True) is True


def test_rerun_of_an_id_replaces_the_record(tmp_path):
    rep = RunReport(str(tmp_path), make_run())
    rec = dict(make_records(limit=1)[0])
    rep.add(dict(rec, status="timeout", reason="watchdog"))
    rep.add(dict(rec, status="passed", reason=""))
    doc = rep.close(complete=True, render=False)
    assert len(doc["results"]) == 1 and doc["results"][0]["status"] == "passed"
    assert doc["summary"]["counts"] == {"passed": 1} and doc["summary"]["conformant"] is True


def test_minimal_records_are_completed_and_bad_ones_refused(tmp_path):
    rep = RunReport(str(tmp_path), make_run())
    r = rep.add({"id": "barrier/default/sync", "status": "passed"})
    assert r["collective"] == "barrier" and r["variant"] == "default" and r["mode"] == "sync"
    assert r["dtype"] is None and r["reason"] == "" and r["ranks"] is None and r["expected"] is None
    rep.add({"id": "send/default/int32/small/sync", "collective": "send", "status": "error", "ranks": {0: "x", 1: "y"}})
    with pytest.raises(ValueError, match="unknown status 'nope'"):
        rep.add({"id": "x", "status": "nope"})
    with pytest.raises(ValueError, match="id"):
        rep.add({"status": "passed"})
    doc = rep.close(complete=False, interrupted=True, render=False)
    validate(doc)
    assert doc["results"][1]["ranks"] == {"0": "x", "1": "y"}
    assert doc["run"]["interrupted"] is True and doc["complete"] is False
    assert doc["summary"]["conformant"] is False and doc["summary"]["unexpected"] == 1


def test_run_defaults_are_filled(tmp_path):
    rep = RunReport(str(tmp_path), {"backend": "fakepg", "device": "cpu", "world_size": "4", "torch": "2.13.0+cpu"})
    run = _read(rep.json_path)["run"]
    assert rep.stem == "cpu-fakepg-ws4" and run["world_size"] == 4
    assert run["python"] and run["host"] and run["platform"] and run["launcher"] == "pytest"
    assert run["started"].endswith("Z") and isinstance(run["argv"], list)
    with pytest.raises(ValueError, match="device"):
        RunReport(str(tmp_path), {"backend": "gloo", "world_size": 2})


def test_records_relabelled_by_expectations_count_as_expected(tmp_path):
    exp = Expectations.from_text(
        'backend = "gloo"\n[[expect]]\ndtype = "bool"\nop = "SUM"\nstatus = "failed"\nreason = "raw byte 2"\n'
    )
    rep = RunReport(str(tmp_path), make_run())
    for r in make_records(flaky=0.0):
        rep.add(exp.apply(dict(r, backend="gloo", device="cpu", world_size=2)))
    doc = rep.close(complete=True, render=False)
    counts = doc["summary"]["counts"]
    assert counts.get("xfailed", 0) > 0 and "failed" not in counts
    assert doc["summary"]["conformant"] is True and doc["summary"]["unexpected"] == 0
    # a file for another backend is ignored
    other = exp.apply(dict(make_records(flaky=0.0)[0], backend="nccl", device="cuda", world_size=2))
    assert other["status"] == "failed" and other["expected"] is None


def test_adding_20k_records_with_periodic_flushes_is_cheap(tmp_path):
    recs = make_records(scale=3)
    assert len(recs) >= 12000
    recs = (recs + [dict(r, id=r["id"] + "/b") for r in recs])[:20000]
    rep = RunReport(str(tmp_path), make_run())
    rep.MIN_INTERVAL_S = 0.05  # flush far more often than the default, to price flushing too
    t = time.perf_counter()
    for r in recs:
        rep.add(r)
    rep.flush(force=True)
    spent = time.perf_counter() - t
    assert _read(rep.json_path)["summary"]["total"] == 20000
    assert spent < 2.0, "adding 20k records cost %.2f s" % spent


WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, %(root)r)
    from conformance.report import RunReport
    from conformance.report.synth import make_records, make_run
    rep = RunReport(sys.argv[1], make_run())
    recs = make_records(scale=2)
    i = 0
    while True:  # never closes: killed from outside
        r = dict(recs[i %% len(recs)], id="%%s/%%d" %% (recs[i %% len(recs)]["id"], i))
        rep.add(r)
        i += 1
        if i %% 50 == 0:
            rep.flush()
        if i == 300:
            print("ready", flush=True)
    """
)


def test_killed_writer_leaves_a_valid_partial_report(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER % {"root": ROOT})
    out = tmp_path / "reports"
    proc = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        path = out / "cpu-gloo-ws2.json"
        totals = []
        deadline = time.time() + 1.5
        while time.time() < deadline:  # read while it rewrites: never a torn file
            doc = json.loads(path.read_text(encoding="utf-8"))
            assert doc["complete"] is False
            totals.append(doc["summary"]["total"])
    finally:
        proc.kill()
        proc.wait()
    assert totals and totals[-1] > totals[0], "the file was not rewritten while the run went on"
    doc = json.loads(path.read_text(encoding="utf-8"))
    validate(doc)
    assert doc["complete"] is False and len(doc["results"]) == doc["summary"]["total"] > 0


def test_plugin_style_records_drop_run_echo_keep_extras(tmp_path):
    rep = RunReport(str(tmp_path), {"backend": "gloo", "device": "cpu", "world_size": 2, "launcher": "pytest",
                                    "timeout_s": 30.0, "torch": "2.13.0+cpu"})
    rep.update_run(backend_version="gloo", device_name="cpu0")
    rep.add({"id": "all_reduce/default/float32/SUM/small/sync", "collective": "all_reduce", "variant": "default",
             "dtype": "float32", "op": "SUM", "shape": "small", "mode": "sync", "world": "cpu/gloo/ws2",
             "backend": "gloo", "device": "cpu", "world_size": 2, "status": "passed", "reason": "",
             "duration_s": 0.01, "call_s": 0.002, "ranks": None})
    doc = rep.close(complete=True, render=False)
    validate(doc)
    r = doc["results"][0]
    assert "world" not in r and "backend" not in r and r["call_s"] == 0.002
    assert doc["run"]["duration_s"] >= 0.01 and doc["run"]["device_name"] == "cpu0"   # the run's own time

"""Expectations files: matching, xfailed/xpassed relabelling, stale entries, clear errors on malformed files."""

import os
import sys

import pytest

try:
    import conformance.report  # noqa: F401
except ImportError:  # run as `pytest tests/` without the project installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conformance.report import Expectations, summarize_results
from conformance.report.synth import make_records, make_run

GOOD = '''\
# known gaps of gloo on cpu
backend = "gloo"
device = "cpu"
world_size = [2, 4]

[[expect]]
match = "all_reduce/*/bool/SUM/*"
status = "failed"
reason = "gloo bool SUM leaves raw byte 2"

[[expect]]
collective = ["reduce", "reduce_scatter*"]
dtype = "bool"
op = "SUM"
status = ["failed", "error"]
reason = "same bug, other collectives"

[[expect]]
collective = "broadcast"
dtype = "float32"
status = "crashed"
reason = "was crashing in 2.12 (fixed?)"

[[expect]]
match = "no_such_collective/*"
status = "timeout"
reason = "matches nothing"

[[expect]]
collective = "barrier"
op = "none"
status = "passed"
reason = "null op is written none"
'''


def rec(rid, status, **fields):
    parts = rid.split("/")
    r = {"id": rid, "collective": parts[0], "variant": parts[1], "dtype": None, "op": None, "shape": None,
         "mode": parts[-1], "status": status, "reason": "", "duration_s": 0.001, "expected": None, "ranks": None}
    r.update(fields)
    return r


@pytest.fixture
def exp(tmp_path):
    p = tmp_path / "gloo-cpu.toml"
    p.write_text(GOOD)
    return Expectations.load(str(p))


def test_load_and_applies_to(exp):
    assert len(exp) == 5
    assert exp.applies_to(make_run("gloo", "cpu", 2))
    assert exp.applies_to(make_run("gloo", "cpu", 4))
    assert not exp.applies_to(make_run("gloo", "cpu", 8))
    assert not exp.applies_to(make_run("nccl", "cuda", 2))


def test_lookup_by_id_pattern_and_by_fields(exp):
    r = rec("all_reduce/default/bool/SUM/small/sync", "failed", dtype="bool", op="SUM")
    assert exp.lookup(r) == ["failed"]
    r = rec("reduce_scatter_single/default/bool/SUM/small/sync", "failed", dtype="bool", op="SUM")
    assert exp.lookup(r) == ["failed", "error"]
    assert exp.lookup(rec("reduce/default/bool/MAX/small/sync", "failed", dtype="bool", op="MAX")) is None
    assert exp.lookup(rec("barrier/default/sync", "passed")) == ["passed"]  # op=none matches a null op


def test_apply_xfailed_xpassed_and_unexpected(exp):
    r = exp.apply(rec("all_reduce/default/bool/SUM/small/sync", "failed", dtype="bool", op="SUM"))
    assert (r["status"], r["expected"]) == ("xfailed", "failed")
    r = exp.apply(rec("reduce/default/bool/SUM/small/sync", "error", dtype="bool", op="SUM"))
    assert (r["status"], r["expected"]) == ("xfailed", "error")  # the listed status that happened
    r = exp.apply(rec("all_reduce/inplace/bool/SUM/small/sync", "passed", dtype="bool", op="SUM"))
    assert (r["status"], r["expected"]) == ("xpassed", "failed")
    r = exp.apply(rec("all_reduce/inplace/bool/SUM/large/sync", "timeout", dtype="bool", op="SUM"))
    assert (r["status"], r["expected"]) == ("timeout", "failed")  # not what the file said: still unexpected
    r = exp.apply(rec("barrier/default/sync", "passed"))
    assert (r["status"], r["expected"]) == ("passed", "passed")
    r = exp.apply(rec("send/default/int32/small/sync", "failed", dtype="int32"))
    assert (r["status"], r["expected"]) == ("failed", None)
    s = summarize_results(
        [
            rec("a/default/sync", "xfailed", expected="failed"),
            rec("b/default/sync", "xpassed", expected="failed"),
            rec("c/default/sync", "passed"),
        ],
        complete=True,
    )
    assert s["conformant"] is True and s["unexpected"] == 0


def test_stale_entries(exp):
    exp.apply(rec("all_reduce/default/bool/SUM/small/sync", "failed", dtype="bool", op="SUM"))
    exp.apply(rec("reduce/default/bool/SUM/small/sync", "failed", dtype="bool", op="SUM"))
    exp.apply(rec("broadcast/default/float32/small/sync", "passed", dtype="float32"))
    exp.apply(rec("barrier/default/sync", "passed"))
    stale = exp.stale()
    assert [e.index for e in stale] == [2, 3]  # all matches xpassed; matched nothing
    msgs = exp.stale_messages()
    assert "all 1 matching result(s) passed" in msgs[0] and "line 18" in msgs[0]
    assert "matched no result" in msgs[1]


def test_apply_over_a_generated_run(exp):
    recs = [exp.apply(r) for r in make_records(flaky=0.0)]
    statuses = {r["status"] for r in recs}
    assert "xfailed" in statuses
    # every bool SUM failure is covered except funcol.all_reduce's, which no entry names
    assert {r["collective"] for r in recs if r["status"] == "failed"} == {"funcol.all_reduce"}
    s = summarize_results(recs, True)
    assert s["conformant"] is False and s["unexpected"] == s["counts"]["failed"]


@pytest.mark.parametrize(
    "text,message",
    [
        ('backend = "gloo"\n[[expect]]\nmatch = "x\nstatus = "failed"\n', r"bad\.toml:3:\d+: invalid TOML"),
        ('[[expect]]\nmatch = "x/*"\nstatus = "failed"\nreason = "r"\n\n[[expect]]\nmatch = "y"\nstatus = "broken"\nreason = "r"\n',
         r"bad\.toml:6: expect\[1\]: unknown status 'broken'"),
        ('[[expect]]\nmatch = "x"\nstauts = "failed"\nreason = "r"\n', r"bad\.toml:1: expect\[0\]: unknown key 'stauts'"),
        ('[[expect]]\nmatch = "x"\nstatus = "failed"\n', r"expect\[0\]: missing 'reason'"),
        ('[[expect]]\nmatch = "x"\nreason = "r"\n', r"expect\[0\]: missing 'status'"),
        ('[[expect]]\nstatus = "failed"\nreason = "r"\n', r"expect\[0\]: no selector"),
        ('[[expect]]\nmatch = 3\nstatus = "failed"\nreason = "r"\n', r"expect\[0\]: match must be"),
        ('[[expect]]\nmatch = "x"\nstatus = "xfailed"\nreason = "r"\n', r"unknown status 'xfailed'"),
        ('backend = "gloo"\nbakend = "x"\n', r"unknown top-level key 'bakend'"),
        ('world_size = "two"\n', r"world_size must be"),
        ('expect = 3\n', r"'expect' must be an array of tables"),
    ],
)
def test_malformed_files_give_one_line_errors(tmp_path, text, message):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ValueError, match=message) as ei:
        Expectations.load(str(p))
    assert "\n" not in str(ei.value)
    assert str(p) in str(ei.value)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="cannot read expectations file"):
        Expectations.load(str(tmp_path / "nope.toml"))


def test_example_file_in_tests_data_is_valid_and_covers_the_synthetic_gaps():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "expect-gloo-cpu.example.toml")
    exp = Expectations.load(path)
    assert exp.applies_to(make_run("gloo", "cpu", 2)) and not exp.applies_to(make_run("gloo", "cuda", 2))
    recs = [exp.apply(r) for r in make_records(flaky=0.0)]
    s = summarize_results(recs, True)
    assert s["conformant"] is True and s["counts"]["xfailed"] > 0
    assert exp.stale() == []


def test_combine_routes_records_by_the_run_they_name(tmp_path):
    from conformance.report.expectations import combine

    gloo = tmp_path / "gloo.toml"
    gloo.write_text('backend = "gloo"\n[[expect]]\ndtype = "bool"\nop = "SUM"\nstatus = "failed"\nreason = "raw byte"\n')
    nccl = tmp_path / "nccl.toml"
    nccl.write_text('backend = "nccl"\n[[expect]]\nmatch = "*"\nstatus = "timeout"\nreason = "never used here"\n')
    both = combine([Expectations.load(str(gloo)), Expectations.load(str(nccl))])
    base = {"world": "cpu/gloo/ws2", "backend": "gloo", "device": "cpu", "world_size": 2}
    r = both.apply(dict(rec("all_reduce/default/bool/SUM/small/sync", "failed", dtype="bool", op="SUM"), **base))
    assert r["status"] == "xfailed"
    other = dict(base, backend="mpi")
    r = both.apply(dict(rec("all_reduce/default/bool/SUM/small/sync", "failed", dtype="bool", op="SUM"), **other))
    assert r["status"] == "failed" and r["expected"] is None
    assert both.stale() == []  # nccl.toml never applied to a record: not reported as stale
    r = both.apply(dict(rec("reduce/default/bool/SUM/small/sync", "passed", dtype="bool", op="SUM"), **base))
    assert r["status"] == "xpassed"
    stale = both.stale()
    assert len(stale) == 0  # one xfailed, one xpassed: the entry still matches something real
    single = Expectations.load(str(nccl))  # a single file also honours the run named by the record
    r = single.apply(dict(rec("barrier/default/sync", "timeout"), **base))
    assert r["status"] == "timeout" and r["expected"] is None
    assert str(single.entries[0]).endswith("matched no result") and "nccl.toml" in str(single.entries[0])

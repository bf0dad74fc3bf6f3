"""The harness survives what broken backends do: hangs, dead ranks, one-rank raises, worlds that cannot start.

Each test runs the real suite in a pytest subprocess against fakepg (with its fault options) or a test-only
backend from tests/plugins, and reads the report it wrote.
"""

from __future__ import annotations

from _suite import run_suite, statuses

SELECT_FAULTS = ("ws2-all_reduce-default-float32-SUM-small-sync or ws2-all_reduce-default-int32-SUM-small-sync"
                 " or ws2-all_reduce-default-int64-SUM-small-sync or ws2-broadcast-root0-float32-small")


def test_hang_crash_and_one_rank_raise_are_classified_and_the_run_goes_on(tmp_path):
    faults = {"faults": [
        {"kind": "hang", "collective": "all_reduce", "dtype": "float32"},
        {"kind": "raise", "collective": "all_reduce", "dtype": "int32", "ranks": [0]},
        {"kind": "crash", "collective": "all_reduce", "dtype": "int64", "ranks": [1]},
    ]}
    proc, reports = run_suite(tmp_path, "--backend", "fakepg", "--world-size", "2", "--timeout", "3",
                              "-k", SELECT_FAULTS, fakepg_options=faults)
    got = statuses(reports["cpu-fakepg-ws2"])
    assert got == {
        "all_reduce/default/float32/SUM/small/sync": "timeout",
        "all_reduce/default/int32/SUM/small/sync": "error",
        "all_reduce/default/int64/SUM/small/sync": "crashed",
        "broadcast/root0/float32/-/small/sync": "passed",
        "broadcast/root0/float32/-/small/async": "passed",
    }, proc.stdout[-3000:]
    results = {r["id"]: r for r in reports["cpu-fakepg-ws2"]["results"]}
    assert "asymmetric" in results["all_reduce/default/int32/SUM/small/sync"]["reason"]
    assert "fakepg injected fault" in results["all_reduce/default/int32/SUM/small/sync"]["reason"]
    assert "rank 1 died" in results["all_reduce/default/int64/SUM/small/sync"]["reason"]
    # The world was replaced after the hang, after the one-rank raise (nothing of all_reduce had passed in it, so
    # no proof of cleanliness was possible) and after the crash: four starts in all.
    summary = proc.stdout.split("c10d conformance", 1)[1]
    assert summary.count("world cpu-fakepg-ws2 ready") == 4, proc.stdout[-3000:]
    assert proc.returncode == 1
    assert reports["cpu-fakepg-ws2"]["complete"] is True


def test_world_that_cannot_start_blocks_its_cases_with_the_reason(tmp_path):
    proc, reports = run_suite(tmp_path, "--plugin", "init_fails", "--backend", "initfails", "--world-size", "2",
                              "-k", "ws2-all_reduce-default-float32-SUM-small")
    doc = reports["cpu-initfails-ws2"]
    assert set(statuses(doc).values()) == {"blocked"}
    assert all("initfails: cannot open the device" in r["reason"] for r in doc["results"])
    assert doc["complete"] is True and doc["summary"]["conformant"] is False
    assert proc.returncode == 1
    # the reason is said where a user looks: the terminal, the report's run record and a banner on the page
    assert "world cpu-initfails-ws2 could not start (error)" in proc.stdout and "cannot open the device" in proc.stdout
    assert "initfails: cannot open the device" in doc["run"]["start_error"]
    page = (tmp_path / "cpu-initfails-ws2.html").read_text()
    assert "start-error-banner" in page and "initfails: cannot open the device" in page


def test_world_whose_init_hangs_times_out_once_then_blocks(tmp_path):
    proc, reports = run_suite(tmp_path, "--plugin", "init_hangs", "--backend", "inithangs", "--world-size", "2",
                              "--timeout", "2", "-k", "all_reduce-default-float32-SUM", timeout=120)
    doc = reports["cpu-inithangs-ws2"]
    assert set(statuses(doc).values()) == {"blocked"}
    assert all("could not start (timeout)" in r["reason"] for r in doc["results"])
    assert proc.returncode == 1


def test_gloo_and_fakepg_first_slice_is_truthful(tmp_path):
    proc, reports = run_suite(tmp_path, "-k", "ws3-all_reduce-default-bool-SUM-small-sync"
                                              " or ws3-all_reduce-default-float32-SUM-small"
                                              " or ws3-all_reduce-default-float32-PREMUL_SUM-small-sync"
                                              " or ws2-all_reduce-default-float32-SUM-small"
                                              " or ws3-broadcast-root2-int64-odd or ws2-barrier-default or ws3-barrier-default")
    gloo = statuses(reports["cpu-gloo-ws3"])
    # gloo stores a boolean OR as a count: the byte is 2 where two ranks held True.
    assert gloo["all_reduce/default/bool/SUM/small/sync"] == "failed"
    assert "raw byte 2" in {r["id"]: r for r in reports["cpu-gloo-ws3"]["results"]}[
        "all_reduce/default/bool/SUM/small/sync"]["reason"]
    assert gloo["all_reduce/default/float32/PREMUL_SUM/small/sync"] == "unsupported"
    assert gloo["all_reduce/default/float32/SUM/small/async"] == "passed"
    assert gloo["broadcast/root2/int64/-/odd/sync"] == "passed"
    assert gloo["barrier/default/-/-/-/sync"] == "passed"
    for label in ("cpu-fakepg-ws2", "cpu-fakepg-ws3"):
        assert set(statuses(reports[label]).values()) == {"passed"}, label

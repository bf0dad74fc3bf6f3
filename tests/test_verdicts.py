"""Verdicts on first contact (issue 10): a run where nothing ran is not conformant, a backend that is not here is
a usage error (test_harness_processes), the Python environment is never the backend's fault, and the capability table is filled in.

Each test runs the suite as a user would (a pytest subprocess) and reads what it printed and wrote.
"""

from __future__ import annotations

import os

import pytest

from _suite import REPO, run_suite, statuses, suite_env

NO_NUMPY = os.path.join(REPO, "tests", "data", "no_numpy")


def test_an_absent_backend_the_user_opted_out_of_ends_cleanly_and_says_so(tmp_path):
    proc, reports = run_suite(tmp_path, "--backend", "mpi", "--world-size", "2", "--absent", "skip")
    assert proc.returncode == 0
    assert "backend mpi is not available in this torch build" in proc.stdout + proc.stderr
    assert "nothing to run" in proc.stdout + proc.stderr and "CONFORMANT" not in proc.stdout
    assert reports == {}


def test_a_run_in_which_nothing_ran_is_not_run_and_fails(tmp_path):
    # A backend that serves only cuda, asked for on cpu: every case is skipped with the reason.
    proc, reports = run_suite(tmp_path, "--plugin", "cuda_only", "--backend", "cudaonly", "--device", "cpu",
                              "--world-size", "2", "-k", "all_reduce-default-float32")
    doc = reports["cpu-cudaonly-ws2"]
    summary = doc["summary"]
    assert summary["verdict"] == "not_run" and summary["conformant"] is None and summary["ran"] == 0
    assert summary["total"] > 0 and set(statuses(doc).values()) == {"skipped"}
    assert "cuda" in summary["not_run_reason"], summary
    assert proc.returncode == 1
    row = [line for line in proc.stdout.splitlines() if line.startswith("cpu / cudaonly / ws2")]
    assert len(row) == 1 and "NOT RUN" in row[0] and "CONFORMANT" not in row[0], proc.stdout[-2000:]
    html = open(os.path.join(str(tmp_path), "cpu-cudaonly-ws2.html")).read()
    assert "NOT RUN" in html


def test_a_python_without_numpy_is_the_environment_not_the_backend(tmp_path):
    env = suite_env()
    env["PYTHONPATH"] = os.pathsep.join((NO_NUMPY, env["PYTHONPATH"]))
    proc, reports = run_suite(tmp_path, "--backend", "gloo,fakepg", "--world-size", "2",
                              "-k", "ws2-all_gather_object or ws2-all_reduce-default-float32-SUM-small-sync", env=env)
    assert "numpy is missing from this Python environment" in proc.stdout, proc.stdout[-3000:]
    for label in ("cpu-gloo-ws2", "cpu-fakepg-ws2"):
        doc = reports[label]
        got = statuses(doc)
        objects = [i for i in got if i.startswith("all_gather_object/")]
        assert objects and {got[i] for i in objects} == {"harness_error"}, got
        assert got["all_reduce/default/float32/SUM/small/sync"] == "passed"
        reason = {r["id"]: r for r in doc["results"]}[objects[0]]["reason"]
        assert "pip install numpy" in reason, reason
        # the backend is not blamed: the verdict cannot be given, rather than "not conformant"
        assert doc["summary"]["verdict"] == "inconclusive" and doc["summary"]["harness_errors"] == len(objects)
    assert proc.returncode == 1


def test_with_numpy_the_same_cases_pass_and_the_capability_table_is_observed(tmp_path):
    proc, reports = run_suite(tmp_path, "--backend", "gloo,fakepg", "--world-size", "2",
                              "-k", "ws2-all_gather_object or ws2-work")
    for label in ("cpu-gloo-ws2", "cpu-fakepg-ws2"):
        doc = reports[label]
        got = statuses(doc)
        assert {got[i] for i in got if i.startswith("all_gather_object/")} == {"passed"}, got
        observed = doc["capabilities"]["observed"]
        assert observed and any(v is not None for v in observed.values()), observed
        assert observed["is_completed_after_wait"] is True


def test_a_spec_from_outside_the_package_runs_beside_the_suites_own(tmp_path):
    proc, reports = run_suite(tmp_path, "--plugin", "vendor_spec", "--backend", "gloo,fakepg", "--world-size", "3",
                              "-k", "vendor or ws3-all_reduce-default-float32-SUM-small-sync")
    for label in ("cpu-gloo-ws3", "cpu-fakepg-ws3"):
        got = statuses(reports[label])
        vendor = sorted(i for i in got if i.startswith("vendor.all_reduce_twice/"))
        assert vendor == ["vendor.all_reduce_twice/default/float32/SUM/small/async",
                          "vendor.all_reduce_twice/default/float32/SUM/small/sync",
                          "vendor.all_reduce_twice/default/int64/SUM/small/async",
                          "vendor.all_reduce_twice/default/int64/SUM/small/sync"], got
        assert set(got.values()) == {"passed"}, got
    assert proc.returncode == 0


def _shipped_gloo_baseline_for_this_torch() -> bool:
    import torch

    from conformance.planning import BASELINES, expectation_files
    from conformance.report.expectations import Expectations

    run = {"backend": "gloo", "device": "cpu", "world_size": 3, "torch": torch.__version__}
    return any(Expectations.load(f).applies_to(run) for f in expectation_files([BASELINES]))


def test_the_shipped_baseline_turns_gloos_known_gaps_into_expected_results(tmp_path):
    if not _shipped_gloo_baseline_for_this_torch():
        pytest.skip("no gloo baseline is shipped for this torch release (measured releases only: README)")
    select = "ws3-all_reduce-default-bool-SUM-small-sync or ws3-all_reduce-default-float32-SUM-small-sync"
    plain, reports = run_suite(tmp_path / "plain", "--backend", "gloo", "--world-size", "3", "-k", select)
    assert statuses(reports["cpu-gloo-ws3"])["all_reduce/default/bool/SUM/small/sync"] == "failed"
    assert plain.returncode == 1
    based, reports = run_suite(tmp_path / "based", "--backend", "gloo", "--world-size", "3", "--baseline", "-k", select)
    doc = reports["cpu-gloo-ws3"]
    assert statuses(doc) == {"all_reduce/default/bool/SUM/small/sync": "xfailed",
                             "all_reduce/default/float32/SUM/small/sync": "passed"}, based.stdout[-2000:]
    assert doc["summary"]["verdict"] == "conformant" and based.returncode == 0

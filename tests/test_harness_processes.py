"""Nothing outlives a run, nothing finished is lost, and runs side by side do not collide."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from _suite import PLUGINS, REPO, alive, descendants, read_reports, run_suite, statuses, suite_cmd, suite_env, wait_for

# all_reduce passes, then the broadcast hangs: the run is interrupted while a world is busy in a collective.
SELECT = "ws2-all_reduce-default-float32-SUM-small or ws2-broadcast-root0-float32-small-sync"
HANG_BROADCAST = {"faults": [{"kind": "hang", "collective": "broadcast", "dtype": "float32"}]}


def _results_so_far(report_dir):
    path = os.path.join(report_dir, "cpu-fakepg-ws2.json")
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    return doc if len(doc["results"]) >= 2 else None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_partial_report_and_no_process(tmp_path, sig):
    cmd = suite_cmd(tmp_path, "--backend", "fakepg", "--world-size", "2", "--timeout", "120", "-k", SELECT)
    proc = subprocess.Popen(cmd, cwd=REPO, env=suite_env(HANG_BROADCAST), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: _results_so_far(tmp_path), timeout=90)
        time.sleep(0.5)                       # the broadcast is now hanging inside the world
        family = descendants(proc.pid)
        assert len(family) >= 3, "expected a fork server and two rank processes"
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    wait_for(lambda: not alive(family), timeout=10)
    doc = read_reports(tmp_path)["cpu-fakepg-ws2"]
    assert doc["complete"] is False and doc["run"]["interrupted"] is True
    assert statuses(doc) == {"all_reduce/default/float32/SUM/small/sync": "passed",
                             "all_reduce/default/float32/SUM/small/async": "passed"}
    assert "Traceback" not in out


def test_killed_controller_takes_its_ranks_with_it(tmp_path):
    cmd = suite_cmd(tmp_path, "--backend", "fakepg", "--world-size", "2", "--timeout", "120", "-k", SELECT)
    proc = subprocess.Popen(cmd, cwd=REPO, env=suite_env(HANG_BROADCAST), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _results_so_far(tmp_path), timeout=90)
        family = descendants(proc.pid)
        proc.kill()                           # SIGKILL: no handler runs in the controller
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    wait_for(lambda: not alive(family), timeout=15)
    # What finished before the kill is on disk, in a valid file marked partial.
    doc = read_reports(tmp_path)["cpu-fakepg-ws2"]
    assert doc["complete"] is False
    assert set(statuses(doc).values()) == {"passed"}


def test_two_concurrent_runs_with_xdist_do_not_collide(tmp_path):
    select = "ws2-all_reduce-default-int64-SUM-small or ws2-broadcast-root1-float32-odd"
    runs = []
    for name in ("a", "b"):
        report_dir = tmp_path / name
        cmd = suite_cmd(report_dir, "-n", "2", "--backend", "gloo,fakepg", "--world-size", "2", "-k", select)
        runs.append((report_dir, subprocess.Popen(cmd, cwd=REPO, env=suite_env(), stdout=subprocess.PIPE,
                                                  stderr=subprocess.STDOUT, text=True)))
    for report_dir, proc in runs:
        out, _ = proc.communicate(timeout=420)
        assert proc.returncode == 0, out[-3000:]
        reports = read_reports(report_dir)
        assert set(reports) == {"cpu-gloo-ws2", "cpu-fakepg-ws2"}
        for doc in reports.values():
            assert doc["complete"] is True
            assert set(statuses(doc).values()) == {"passed"} and len(doc["results"]) == 4


@pytest.mark.parametrize("args, message", [
    (["--backend", "nosuchbackend"], "unknown backend"),
    (["--backend", "mpi"], "backend mpi is not available in this torch build; --absent skip leaves it out"),
    (["--device", "nosuchdevice"], "not present here"),
    (["--world-size", "0"], "at least 1"),
    (["--world-size", "two"], "comma-separated integers"),
    (["--plugin", "raises_on_import"], "--plugin raises_on_import: import failed: ImportError"),
    (["--plugin", "no_such_module_xyz"], "--plugin no_such_module_xyz: import failed: ModuleNotFoundError"),
    (["--timeout", "-1"], "must be positive"),
    (["--expect", "tests"], "--expect tests: no .toml files in this directory"),
])
def test_bad_input_is_one_line_usage_error(pytester, monkeypatch, tmp_path, args, message):
    # In process: a usage error is raised while pytest configures, before any world, fork server or file.
    monkeypatch.syspath_prepend(PLUGINS)
    monkeypatch.chdir(REPO)
    out = tmp_path / "reports"
    result = pytester.runpytest_inprocess(os.path.join(REPO, "conformance"), "-p", "no:cacheprovider",
                                          "--report-dir", str(out), *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.outlines[-20:] + result.errlines[-20:]
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert len(errors) == 1 and message in errors[0], result.errlines
    assert "Traceback" not in "\n".join(result.errlines + result.outlines)
    assert not out.exists()                   # nothing started, nothing written


def test_absent_device_can_end_a_run_cleanly(tmp_path):
    proc, _ = run_suite(tmp_path, "--device", "nosuchdevice", "--absent-device", "skip")
    assert proc.returncode == 0
    assert "device nosuchdevice not present here" in proc.stdout + proc.stderr


def test_k_selects_by_collective_and_dtype_and_defaults_cover_present_devices(tmp_path):
    proc, _ = run_suite(tmp_path, "--collect-only", "-q", "-k", "all_reduce and bfloat16")
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    assert ids and all("all_reduce" in i and "bfloat16" in i for i in ids)
    worlds = {re.match(r"\w+-\w+-ws\d+", i.split("[", 1)[1]).group(0) for i in ids}
    assert worlds == {"cpu-gloo-ws2", "cpu-gloo-ws3", "cpu-fakepg-ws2", "cpu-fakepg-ws3"}
    assert not os.listdir(tmp_path)           # collection starts no world

"""What the harness tests do not cover yet: repeatability under pytest-xdist, a rank killed from outside, and
Ctrl-C of an xdist run — no orphan process, no lost result, a valid report every time."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time


from _suite import REPO, alive, descendants, read_reports, run_suite, statuses, suite_cmd, suite_env, wait_for
from conformance.report.schema import validate
from conformance.selftest import _AsCase
from conformance.planning import test_id as make_test_id

# A test line of `pytest -v`: "<node id> WORD" plainly, "[gwN] [ n%] WORD <node id>" under xdist.
_WORD = r"(PASSED|FAILED|UNSUPPORTED|ERROR|TIMEOUT|CRASHED|BLOCKED|HARNESS_ERROR|SKIPPED|XFAIL|XPASS)"
_NODE = r"conformance/test_c10d\.py::test_c10d\[([^\]]+)\]"
_LINE = re.compile(rf"{_WORD}\s+{_NODE}|{_NODE}\s+{_WORD}")


class _Finished:
    """finditer/search over -v output yielding (word, test id) whichever order the line uses."""

    @staticmethod
    def pairs(text: str):
        for m in _LINE.finditer(text):
            yield (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))


def _session_leaders(pids) -> set[int]:
    """Rank processes: each calls setsid, so it leads its own session (the fork server and workers do not; the
    reaper does too, and is told apart by its command line)."""
    out = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"conformance.worlds.reaper" in f.read():
                    continue
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == pid:
            out.add(pid)
    return out


def _id_of(doc, record) -> str:
    run = doc["run"]
    return make_test_id(f"{run['device']}-{run['backend']}-ws{run['world_size']}", _AsCase(record))


class _Reader:
    """Reads a child's merged output line by line, so the test can act on what pytest has said so far."""

    def __init__(self, proc):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self.thread.start()

    def _pump(self, proc):
        for line in proc.stdout:
            self.lines.append(line)

    def finished(self) -> dict[str, str]:
        return {i: w for line in list(self.lines) for w, i in _Finished.pairs(line)}

    @property
    def text(self) -> str:
        return "".join(self.lines)


def _recorded(report_dir, label) -> int:
    """How many results the (incrementally written) report of a world holds so far."""
    try:
        return len(read_reports(report_dir)[label]["results"])
    except (KeyError, ValueError, OSError):
        return 0


def _watch_family(proc, seen: set[int], stop: threading.Event):
    while not stop.is_set() and proc.poll() is None:
        seen |= descendants(proc.pid)
        time.sleep(0.1)


# --- repeatability under pytest-xdist ------------------------------------------------------------------------------

XDIST_SELECT = ("-all_reduce-default-float32-SUM-small or -all_reduce-default-bool-SUM-small-sync"
                " or -all_reduce-default-float32-PREMUL_SUM-small-sync or -broadcast-root1-int64-odd")
# fakepg gets a wrong value on broadcast int64, gloo brings its own failures (bool SUM at ws3) and refusals
# (PREMUL_SUM): the runs compared below hold more than one class.
XDIST_FAULTS = {"faults": [{"kind": "wrong_value", "collective": "broadcast", "dtype": "int64"}]}


def _xdist_run(report_dir, workers: int):
    proc, reports = run_suite(report_dir, "-n", str(workers), "-v", "--backend", "gloo,fakepg", "--world-size", "2,3",
                              "-k", XDIST_SELECT, fakepg_options=XDIST_FAULTS, timeout=240)
    return proc, reports


def test_xdist_runs_are_complete_and_identical(tmp_path):
    runs = {}
    for workers in (2, 4):
        proc, reports = _xdist_run(tmp_path / f"n{workers}", workers)
        assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
        assert set(reports) == {"cpu-gloo-ws2", "cpu-gloo-ws3", "cpu-fakepg-ws2", "cpu-fakepg-ws3"}
        reported = {i: w for w, i in _Finished.pairs(proc.stdout)}
        in_json = {}
        for label, doc in reports.items():
            validate(doc)
            assert doc["complete"] is True and doc["run"]["interrupted"] is False, label
            assert doc["summary"]["total"] == len(doc["results"]), label
            for r in doc["results"]:
                in_json[_id_of(doc, r)] = r["status"]
        # Complete: every test pytest ran is in a report, and nothing else is.
        assert set(in_json) == set(reported), (set(in_json) ^ set(reported))
        runs[workers] = {label: {r["id"]: (r["status"], r["reason"]) for r in doc["results"]}
                         for label, doc in reports.items()}
    # Identical: same cases, same classes and reasons (the order inside a world may differ between schedules).
    assert runs[2] == runs[4]
    got = {label: {i: s for i, (s, _) in rows.items()} for label, rows in runs[2].items()}
    assert got["cpu-fakepg-ws2"]["broadcast/root1/int64/-/odd/sync"] == "failed"
    assert got["cpu-gloo-ws3"]["all_reduce/default/bool/SUM/small/sync"] == "failed"
    assert got["cpu-gloo-ws2"]["all_reduce/default/float32/PREMUL_SUM/small/sync"] == "unsupported"
    assert len({len(rows) for rows in runs[2].values()}) == 1 and len(runs[2]["cpu-gloo-ws2"]) == 6


# --- a rank killed from outside ------------------------------------------------------------------------------------

KILL_SELECT = ("ws2-all_reduce-default-float32-SUM-small-sync or ws2-broadcast-root0-float32-small-sync"
               " or ws2-broadcast-root0-int64-small-sync or ws2-scatter-src1-float32-small-sync")
HANG_BROADCAST = {"faults": [{"kind": "hang", "collective": "broadcast", "dtype": "float32"}]}


def test_rank_killed_mid_case_is_crashed_then_a_fresh_world_runs_the_rest(tmp_path):
    cmd = suite_cmd(tmp_path, "--backend", "fakepg", "--world-size", "2", "--timeout", "120", "-v", "-k", KILL_SELECT)
    proc = subprocess.Popen(cmd, cwd=REPO, env=suite_env(HANG_BROADCAST, PYTHONUNBUFFERED="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reader = _Reader(proc)
    family: set[int] = set()
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_family, args=(proc, family, stop), daemon=True)
    watcher.start()
    try:
        # all_reduce has passed; the broadcast is now hanging in both ranks.
        wait_for(lambda: _recorded(tmp_path, "cpu-fakepg-ws2"), timeout=120)
        time.sleep(1.0)
        ranks = wait_for(lambda: _session_leaders(descendants(proc.pid)), timeout=10)
        assert len(ranks) == 2, ranks
        victim = min(ranks)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        proc.wait(timeout=100)
        elapsed = time.monotonic() - killed_at
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
        reader.thread.join(timeout=10)
    out = reader.text
    assert elapsed < 60, "the death was not noticed before the 120 s watchdog"
    doc = read_reports(tmp_path)["cpu-fakepg-ws2"]
    validate(doc)
    assert statuses(doc) == {
        "all_reduce/default/float32/SUM/small/sync": "passed",
        "broadcast/root0/float32/-/small/sync": "crashed",
        "broadcast/root0/int64/-/small/sync": "passed",
        "scatter/src1/float32/-/small/sync": "passed",
    }, out[-3000:]
    crashed = {r["id"]: r for r in doc["results"]}["broadcast/root0/float32/-/small/sync"]
    assert re.search(r"rank \d died", crashed["reason"]), crashed["reason"]
    assert doc["complete"] is True and proc.returncode == 1
    # A fresh world ran the later cases: two starts, and none of the first world's ranks is among the second's.
    assert out.split("c10d conformance", 1)[1].count("world cpu-fakepg-ws2 ready") == 2, out[-3000:]
    assert victim not in alive(family)
    wait_for(lambda: not alive(family), timeout=15)     # nothing outlives the run: first world, fresh world, server


# --- Ctrl-C of an xdist run ----------------------------------------------------------------------------------------

SIGINT_SELECT = ("ws2-all_reduce-default-float32-SUM-small or ws2-all_reduce-default-int64-SUM-small-sync"
                 " or ws2-broadcast-root0-int64-small-sync or ws2-broadcast-root0-float32-small-sync"
                 " or ws2-scatter-src1-float32-small-sync")


def test_sigint_under_xdist_loses_no_finished_result_and_leaves_no_process(tmp_path):
    cmd = suite_cmd(tmp_path, "-n", "2", "-v", "--backend", "gloo,fakepg", "--world-size", "2", "--timeout", "120",
                    "-k", SIGINT_SELECT)
    proc = subprocess.Popen(cmd, cwd=REPO, env=suite_env(HANG_BROADCAST, PYTHONUNBUFFERED="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reader = _Reader(proc)
    try:
        # gloo's world runs all six; fakepg's passes its three all_reduce cases, then hangs in the float32 broadcast.
        def ready():
            done = reader.finished()
            fake = [i for i in done if i.startswith("cpu-fakepg-ws2-")]
            gloo = [i for i in done if i.startswith("cpu-gloo-ws2-")]
            return len(fake) >= 3 and len(gloo) == 6
        wait_for(ready, timeout=150)
        time.sleep(1.0)
        family = descendants(proc.pid)
        assert len(_session_leaders(family)) >= 2, "expected fakepg's ranks to be alive (hanging)"
        before = reader.finished()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.thread.join(timeout=10)
    assert proc.returncode != 0
    wait_for(lambda: not alive(family), timeout=15)
    reports = read_reports(tmp_path)
    fake = reports["cpu-fakepg-ws2"]
    validate(fake)
    assert fake["complete"] is False and fake["run"]["interrupted"] is True
    # No lost result: every case pytest had reported as finished before the signal is in a report, same class.
    words = {"PASSED": "passed", "FAILED": "failed", "UNSUPPORTED": "unsupported", "ERROR": "error",
             "TIMEOUT": "timeout", "CRASHED": "crashed", "BLOCKED": "blocked", "SKIPPED": "skipped"}
    in_json = {}
    for doc in reports.values():
        validate(doc)
        for r in doc["results"]:
            in_json[_id_of(doc, r)] = r["status"]
    assert before and all(in_json.get(i) == words[w] for i, w in before.items()), (before, in_json)
    # ... and nothing that never finished was recorded as if it had.
    assert "broadcast/root0/float32/-/small/sync" not in statuses(fake)
    assert all(i in in_json for i in reader.finished())

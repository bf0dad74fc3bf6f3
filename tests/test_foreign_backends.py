"""Backends nobody here wrote, as they behave in the wild (issue 11): each is a small test-only backend in
tests/plugins that reproduces one quirk of a real third-party backend (torchft's process groups, a vendor stack
that starts helper processes, a backend that hangs or aborts in one collective).  Each test runs the real suite
on it and reads the report: the verdict must be the backend's, never the harness's.
"""

from __future__ import annotations

import os
import time
import uuid

from _suite import run_suite, statuses, suite_env, wait_for


def _by_id(doc) -> dict:
    return {r["id"]: r for r in doc["results"]}


def test_a_message_left_in_flight_by_a_refused_receive_is_blamed_on_it_not_on_the_next_cases(tmp_path):
    # irecv from any source is refused cleanly, but the peer's isend stays pending in gloo.  The next receive
    # from that peer would take the stale message: the world must be proven clean (or replaced) first.
    proc, reports = run_suite(tmp_path, "--plugin", "inflight_refusal", "--backend", "inflight", "--world-size", "2",
                              "--timeout", "10", "-k", "irecv-any_source or isend-recv_first", timeout=240)
    doc = reports["cpu-inflight-ws2"]
    got = statuses(doc)
    refused = {i for i in got if i.startswith("irecv/any_source/")}
    after = {i for i in got if i.startswith("isend/recv_first/")}
    assert len(refused) == 3 and len(after) == 3, got
    assert {got[i] for i in refused} == {"unsupported"}, proc.stdout[-3000:]
    assert {got[i] for i in after} == {"passed"}, proc.stdout[-3000:]
    assert "not supported by inflight" in _by_id(doc)[sorted(refused)[0]]["reason"]
    assert doc["complete"] is True


def test_a_group_whose_creation_hangs_costs_one_timeout_and_blocks_the_rest_with_where_it_hung(tmp_path):
    proc, reports = run_suite(tmp_path, "--plugin", "group_hangs", "--backend", "grouphang", "--world-size", "2",
                              "--timeout", "4", "-k", "ws2-all_reduce-subgroup_even or ws2-all_reduce-default-float32-SUM-small-sync",
                              timeout=240)
    doc = reports["cpu-grouphang-ws2"]
    got = statuses(doc)
    on_group = sorted(i for i in got if "/subgroup_even/" in i)
    assert len(on_group) == 7, got
    assert got["all_reduce/default/float32/SUM/small/sync"] == "passed"
    timeouts = [i for i in on_group if got[i] == "timeout"]
    assert len(timeouts) == 1, got
    hung = _by_id(doc)[timeouts[0]]["reason"]
    assert "group creation" in hung and "new_group" in hung, hung
    for i in on_group:
        if i != timeouts[0]:
            assert got[i] == "blocked", (i, got[i])
            assert f"hung in {timeouts[0]} first" in _by_id(doc)[i]["reason"]


def test_a_backend_that_hangs_in_one_collective_pays_the_full_timeout_once(tmp_path):
    proc, reports = run_suite(tmp_path, "--plugin", "int8_hang", "--backend", "int8hang", "--world-size", "2",
                              "--timeout", "8", "-k", "ws2-all_reduce-default-int8-SUM-small or "
                              "ws2-all_reduce-default-float32-SUM-small", timeout=240)
    doc = reports["cpu-int8hang-ws2"]
    rec = _by_id(doc)
    assert rec["all_reduce/default/float32/SUM/small/sync"]["status"] == "passed"
    first, second = rec["all_reduce/default/int8/SUM/small/sync"], rec["all_reduce/default/int8/SUM/small/async"]
    assert first["status"] == second["status"] == "timeout", proc.stdout[-3000:]
    assert "after the 8 s limit" in first["reason"] and "the collective" in first["reason"], first["reason"]
    assert "watchdog shortened: all_reduce/default/int8/SUM/small/sync hung first" in second["reason"]
    assert second["duration_s"] < first["duration_s"]


def test_a_crash_says_what_the_backend_printed(tmp_path):
    proc, reports = run_suite(tmp_path, "--plugin", "broadcast_crash", "--backend", "bcastcrash", "--world-size", "2",
                              "-k", "ws2-broadcast-root0-int64-small-sync or ws2-all_reduce-default-float32-SUM-small-sync",
                              timeout=240)
    doc = reports["cpu-bcastcrash-ws2"]
    rec = _by_id(doc)
    assert rec["all_reduce/default/float32/SUM/small/sync"]["status"] == "passed"
    crash = rec["broadcast/root0/int64/-/small/sync"]
    assert crash["status"] == "crashed"
    assert "SIGABRT" in crash["reason"] and "bcastcrash: fatal: broadcast of torch.int64" in crash["reason"], crash


def test_ranks_may_start_processes_of_their_own_and_none_outlives_the_run(tmp_path):
    # Like torchft's ProcessGroupBabyGloo: every rank runs its communicator in a child process.
    mark = "c10d-test-" + uuid.uuid4().hex
    env = suite_env(C10D_TEST_MARK=mark)
    proc, reports = run_suite(tmp_path, "--plugin", "child_ranks", "--backend", "childgloo", "--world-size", "2",
                              "-k", "ws2-all_reduce-default-float32-SUM-small or ws2-broadcast-root1-int64-small-sync",
                              env=env, timeout=240)
    got = statuses(reports["cpu-childgloo-ws2"])
    assert got and set(got.values()) == {"passed"}, (got, proc.stdout[-3000:])
    assert proc.returncode == 0
    wait_for(lambda: not _marked(mark), timeout=15)


def _marked(mark: str) -> list[int]:
    """Live processes whose environment carries ``mark`` (every descendant of the run inherits it)."""
    found = []
    needle = f"C10D_TEST_MARK={mark}".encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if needle in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def test_each_run_has_its_own_duration_and_completeness(tmp_path):
    started = time.monotonic()
    proc, reports = run_suite(tmp_path, "--backend", "gloo,fakepg", "--world-size", "2",
                              "-k", "ws2-all_reduce-default-float32-SUM-small", timeout=240)
    wall = time.monotonic() - started
    gloo, fake = reports["cpu-gloo-ws2"], reports["cpu-fakepg-ws2"]
    for doc in (gloo, fake):
        assert doc["complete"] is True and doc["run"]["interrupted"] is False
        assert doc["summary"]["ran"] == 2 and doc["run"]["duration_s"] > 0
    # The two runs went one after the other in one session: each timed on its own, together they fit in it
    # (a duration that was the session's would count the session twice).
    assert gloo["run"]["duration_s"] + fake["run"]["duration_s"] < wall

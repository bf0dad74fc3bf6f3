"""Prove the suite against deliberate faults: fakepg's fault injection, one fault per kind, as data.

Each ``FaultCase`` says which fakepg fault to inject, which cases to run (a ``-k`` expression), which of those
the fault must hit (``affected``) and the one result class every hit case must get (``expected``, optionally
with a ``reason`` pattern).  Every other selected case must pass: a fault is *caught* when every affected case
shows the expected non-pass class and nothing else broke.

Faults whose selectors are disjoint (different collective or dtype) share one suite run: a *group* (same
semantics, latency and watchdog).  ``run_matrix`` runs each group as a user does
(``python -m pytest conformance/ --backend fakepg --world-size 2 ...`` with ``FAKEPG_OPTIONS``), reads the JSON
report and scores every fault; with ``baseline=True`` it first runs each group's selection without any fault, so
a case that fails on its own is never counted as a catch.

    python -m conformance.selftest            # the table and "faults caught / faults injected"; exit 1 if any missed
    python -m conformance.selftest --group process --keep /tmp/selftest

The same ``MATRIX`` and ``run_matrix`` serve ``tests/test_fault_matrix.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from . import status
from .cases.reduce_scatter_single import TABLE as _RS
from .planning import KeywordFilter, test_id

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVICE, WORLD_SIZE = "cpu", 2
LABEL = f"{DEVICE}-fakepg-ws{WORLD_SIZE}"
DEFAULT_TIMEOUT_S = 20.0        # per-case watchdog of a group with no hang
HANG_TIMEOUT_S = 4.0            # ... and of a group that has one: the hang costs this much


@dataclass(frozen=True)
class FaultCase:
    name: str
    fault: dict                                   # fakepg Fault fields: kind, collective, dtype, ranks, message
    semantics: str                                # fakepg semantics the run uses: "copy" | "uniform"
    select: str                                   # -k expression (test-id words, e.g. "ws2-all_reduce-default-float32")
    expected: str                                 # the status every affected case must get
    affected: Union[str, Callable[[dict], bool]]  # regex on the report id, or predicate on the report record
    reason: Optional[str] = None                  # regex every affected case's reason must match (exact class)
    group: str = "values"                         # faults of one group share one suite run
    latency_s: float = 0.0                        # fakepg latency_s for the run (same within a group)
    timeout_s: Optional[float] = None             # per-case watchdog the fault needs (the group uses the least)
    note: str = ""

    def hits(self, record: dict) -> bool:
        if callable(self.affected):
            return bool(self.affected(record))
        return re.search(self.affected, record["id"]) is not None


VALUES = r"elements wrong"                          # the value check's reason (values.describe_mismatch)


def _async(record: dict) -> bool:
    return record["mode"] == "async"


# One fault per kind fakepg offers.  Selectors are narrow: the affected cases plus a few the fault must spare.
MATRIX: list[FaultCase] = [
    # -- values and Work contract: uniform semantics (wrong_op is only observable there), one run ------------------
    FaultCase("wrong_value", {"kind": "wrong_value", "collective": "all_reduce", "dtype": "float32"}, "uniform",
              "ws2-all_reduce-default-float32-SUM-small or ws2-all_reduce-default-float64-SUM-small-sync",
              status.FAILED, r"^all_reduce/default/float32/", reason=r"\b1 of \d+ elements wrong",
              note="one element of the output changed"),
    # fakepg's reduce_scatter_single serves both names; the cases run under the one this torch has (2.13 renamed it)
    FaultCase("chunk_order", {"kind": "chunk_order", "collective": "reduce_scatter_single", "dtype": "float32"},
              "uniform",
              f"ws2-{_RS}-cat-float32-SUM-small or ws2-{_RS}-cat-int64-SUM-small",
              status.FAILED, rf"^{_RS}/cat/float32/", reason=VALUES,
              note="rank r takes chunk ws-1-r"),
    FaultCase("off_by_one_root", {"kind": "off_by_one_root", "collective": "broadcast", "dtype": "int64"},
              "uniform",
              "ws2-broadcast-root0-int64-small or ws2-broadcast-root1-int64-small-sync"
              " or ws2-broadcast-root0-uint64-small-sync",
              status.FAILED, r"^broadcast/root\d/int64/", reason=VALUES,
              note="broadcast from (root+1) % ws"),
    FaultCase("wrong_op", {"kind": "wrong_op", "collective": "all_reduce", "dtype": "int32"}, "uniform",
              "ws2-all_reduce-default-int32-SUM-small or ws2-all_reduce-default-int32-MAX-small-sync"
              " or ws2-all_reduce-default-int32-BXOR-small-sync or ws2-all_reduce-default-uint32-SUM-small-sync",
              status.FAILED, r"^all_reduce/default/int32/", reason=VALUES,
              note="SUM->MAX, MAX->SUM, BXOR->BOR"),
    FaultCase("early_complete", {"kind": "early_complete", "collective": "all_gather_into_tensor",
                                 "dtype": "float32"}, "uniform",
              "ws2-all_gather_into_tensor-cat-float32-small or ws2-all_gather_into_tensor-cat-int64-small-sync",
              status.FAILED, r"^all_gather_into_tensor/cat/float32/", reason=VALUES,
              note="Work done, output lands ~75 ms later"),
    FaultCase("lying_is_completed", {"kind": "lying_is_completed", "collective": "all_reduce", "dtype": "int64"},
              "uniform", "ws2-all_reduce-default-int64-SUM-small",
              status.FAILED, _async, reason=r"is_completed\(\) is False after wait\(\)",
              note="async only: sync never asks"),
    FaultCase("future_without_tensors", {"kind": "future_without_tensors", "collective": "broadcast",
                                         "dtype": "float32"}, "uniform",
              "ws2-broadcast-root0-float32-small",
              status.FAILED, _async, reason=r"get_future\(\) completed without tensors",
              note="async only"),
    FaultCase("drop_last_coalesced", {"kind": "drop_last_coalesced", "collective": "all_gather_coalesced",
                                      "dtype": "float32"}, "uniform",
              "ws2-all_gather_coalesced-default-float32 or ws2-all_gather_coalesced-default-int64",
              status.FAILED, r"^all_gather_coalesced/default/float32/", reason=VALUES,
              note="last tensor's output unwritten"),
    # -- processes, errors and barrier: copy semantics, latency on (skip_barrier needs it), short watchdog --------
    FaultCase("raise", {"kind": "raise", "collective": "broadcast", "dtype": "float32"}, "copy",
              "ws2-broadcast-root0-float32-small or ws2-broadcast-root0-int64-small-sync",
              status.ERROR, r"^broadcast/root0/float32/", reason=r"all ranks: RuntimeError: fakepg injected fault",
              group="process", latency_s=0.1,
              note="every rank raises a non-refusal"),
    FaultCase("raise_asymmetric", {"kind": "raise", "collective": "all_reduce", "dtype": "int32", "ranks": [0]},
              "copy", "ws2-all_reduce-default-int32-SUM-small or ws2-all_reduce-default-uint32-SUM-small-sync",
              status.ERROR, r"^all_reduce/default/int32/", reason=r"asymmetric: ranks \[0\] raised",
              group="process", latency_s=0.1,
              note="rank 0 raises, rank 1 returns"),
    FaultCase("hang", {"kind": "hang", "collective": "all_reduce", "dtype": "int64"}, "copy",
              "ws2-all_reduce-default-int64-SUM-small or ws2-all_reduce-default-uint64-SUM-small-sync",
              status.TIMEOUT, r"^all_reduce/default/int64/", reason=r"still running after",
              group="process", latency_s=0.1, timeout_s=HANG_TIMEOUT_S,
              note="sync blocks in the call, async in wait()"),
    FaultCase("crash", {"kind": "crash", "collective": "scatter", "dtype": "float32", "ranks": [1]}, "copy",
              "ws2-scatter-src1-float32-small or ws2-scatter-src1-int64-small-sync",
              status.CRASHED, r"^scatter/src1/float32/", reason=r"rank 1 died",
              group="process", latency_s=0.1,
              note="rank 1 exits inside the call"),
    FaultCase("skip_barrier", {"kind": "skip_barrier", "collective": "barrier"}, "copy",
              "ws2-barrier",
              status.FAILED, r"^barrier/orders_prior/", reason=r"still in flight",
              group="process", latency_s=0.1,
              note="barrier overtakes earlier work"),
]


@dataclass
class Group:
    name: str
    faults: list[FaultCase]
    semantics: str
    latency_s: float
    timeout_s: float

    @property
    def select(self) -> str:
        return " or ".join(f"({f.select})" for f in self.faults)

    def options(self, with_faults: bool = True) -> dict:
        opts: dict = {"semantics": self.semantics}
        if self.latency_s:
            opts["latency_s"] = self.latency_s
        if with_faults:
            opts["faults"] = [f.fault for f in self.faults]
        return opts


def groups(matrix: list[FaultCase] = MATRIX) -> list[Group]:
    """The suite runs the matrix needs: faults grouped by ``FaultCase.group``, checked for consistent options."""
    order: list[str] = []
    members: dict[str, list[FaultCase]] = {}
    for f in matrix:
        if f.group not in members:
            order.append(f.group)
            members[f.group] = []
        members[f.group].append(f)
    out = []
    for name in order:
        fs = members[name]
        for attr in ("semantics", "latency_s"):
            if len({getattr(f, attr) for f in fs}) != 1:
                raise ValueError(f"fault group {name}: its faults disagree on {attr}")
        timeouts = [f.timeout_s for f in fs if f.timeout_s]
        out.append(Group(name, fs, fs[0].semantics, fs[0].latency_s, min(timeouts) if timeouts else DEFAULT_TIMEOUT_S))
    return out


# --- matching report records against -k expressions -------------------------------------------------------------

def k_matches(expression: str, record: dict, label: str = LABEL) -> bool:
    """pytest -k semantics for one report record, through the suite's own test id and -k pre-selection."""
    return KeywordFilter(expression).keeps(test_id(label, _AsCase(record)))


class _AsCase:
    """A report record seen through the Case fields a test id is built from."""

    def __init__(self, record: dict):
        for key in ("collective", "variant", "dtype", "op", "shape", "mode"):
            setattr(self, key, record.get(key) if record.get(key) != "-" else None)


# --- running -------------------------------------------------------------------------------------------------------

@dataclass
class Run:
    """One suite run: its command, exit code, the report it wrote (None if none) and its output tail."""
    group: str
    faults: bool
    returncode: Optional[int]
    report: Optional[dict]
    seconds: float
    output: str = ""

    @property
    def records(self) -> dict[str, dict]:
        return {r["id"]: r for r in (self.report or {}).get("results", [])}


def suite_env(fakepg_options: Optional[dict]) -> dict:
    env = dict(os.environ)
    for key in ("FAKEPG_OPTIONS", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK",
                "TORCHELASTIC_RUN_ID", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT",
                "PYTEST_XDIST_TESTRUNUID", "PYTEST_CURRENT_TEST"):
        env.pop(key, None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH", "")) if p)
    if fakepg_options is not None:
        env["FAKEPG_OPTIONS"] = json.dumps(fakepg_options)
    return env


def suite_command(report_dir: str, group: Group, python: str = sys.executable) -> list[str]:
    return [python, "-m", "pytest", os.path.join(REPO, "conformance"), "-p", "no:cacheprovider", "-p", "no:xdist",
            "-q", "--device", DEVICE, "--backend", "fakepg", "--world-size", str(WORLD_SIZE),
            "--timeout", f"{group.timeout_s:g}", "--report-dir", report_dir, "-k", group.select]


def _start(group: Group, report_dir: str, with_faults: bool, python: str):
    os.makedirs(report_dir, exist_ok=True)
    cmd = suite_command(report_dir, group, python)
    proc = subprocess.Popen(cmd, cwd=REPO, env=suite_env(group.options(with_faults)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    return proc, time.monotonic()


def _finish(group: Group, report_dir: str, with_faults: bool, proc, t0: float, limit_s: float) -> Run:
    try:
        out, _ = proc.communicate(timeout=max(1.0, limit_s - (time.monotonic() - t0)))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        out += f"\nselftest: suite run killed after {limit_s:g} s"
    report = None
    path = os.path.join(report_dir, f"{LABEL}.json")
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError):
        pass
    return Run(group.name, with_faults, proc.returncode, report, time.monotonic() - t0, out[-4000:])


def run_groups(todo: list[Group], workdir: str, baseline: bool, jobs: int, python: str,
               limit_s: float, log: Callable[[str], None]) -> dict[tuple[str, bool], Run]:
    """Run every (group, faults on/off) suite run, at most ``jobs`` at a time."""
    pending = [(g, True) for g in todo] + ([(g, False) for g in todo] if baseline else [])
    running, done = [], {}
    while pending or running:
        while pending and len(running) < max(1, jobs):
            g, on = pending.pop(0)
            report_dir = os.path.join(workdir, f"{g.name}-{'faults' if on else 'baseline'}")
            proc, t0 = _start(g, report_dir, on, python)
            running.append((g, on, report_dir, proc, t0))
        g, on, report_dir, proc, t0 = running.pop(0)
        run = _finish(g, report_dir, on, proc, t0, limit_s)
        done[(g.name, on)] = run
        log(f"selftest: group {g.name} ({'faults' if on else 'baseline'}): "
            f"{len(run.records)} cases in {run.seconds:.1f} s, exit {run.returncode}")
    return done


# --- scoring -------------------------------------------------------------------------------------------------------

@dataclass
class FaultResult:
    fault: FaultCase
    affected: list[str] = field(default_factory=list)        # ids the fault must hit
    caught: list[str] = field(default_factory=list)          # ... that got exactly the expected class
    misclassified: dict = field(default_factory=dict)        # id -> "status: reason" (wrong class or reason)
    collateral: dict = field(default_factory=dict)           # unaffected selected id -> "status: reason"
    baseline_bad: dict = field(default_factory=dict)         # selected id that does not pass without faults
    problems: list[str] = field(default_factory=list)        # the run itself went wrong

    @property
    def ok(self) -> bool:
        return (bool(self.affected) and len(self.caught) == len(self.affected) and not self.misclassified
                and not self.collateral and not self.baseline_bad and not self.problems)


def _describe(record: dict) -> str:
    return f"{record['status']}: {record.get('reason') or ''}".rstrip(": ")


# A case the fault does not touch must pass, or be skipped because this torch lacks what it needs (barrier's
# timeout before 2.13, ...): a skip says nothing about the fault.
UNHARMED = (status.PASSED, status.SKIPPED)


def score(group: Group, run: Run, base: Optional[Run] = None) -> list[FaultResult]:
    records = run.records
    run_problems = []
    if run.report is None:
        run_problems.append(f"no report (exit {run.returncode}): {run.output[-1500:]}")
    elif not run.report.get("complete"):
        run_problems.append("report not complete")
    if run.returncode not in (0, 1):
        run_problems.append(f"suite exit code {run.returncode}: {run.output[-1500:]}")
    unclaimed = [i for i, r in records.items() if not any(k_matches(f.select, r) for f in group.faults)]
    results = []
    for f in group.faults:
        res = FaultResult(f, problems=list(run_problems))
        selected = {i: r for i, r in records.items() if k_matches(f.select, r)}
        if not selected:
            res.problems.append(f"-k {f.select!r} selected no case (family missing or renamed?)")
        for i, r in selected.items():
            if f.hits(r):
                res.affected.append(i)
                good = r["status"] == f.expected and (f.reason is None
                                                       or re.search(f.reason, r.get("reason") or "") is not None)
                if good:
                    res.caught.append(i)
                else:
                    res.misclassified[i] = _describe(r)
            elif r["status"] not in UNHARMED:
                res.collateral[i] = _describe(r)
        if selected and not res.affected:
            res.problems.append("no selected case is affected: the selector and the fault do not meet")
        if unclaimed:                   # ran, but no selector matches it here: this -k emulation is not pytest's
            res.problems.append(f"cases matched by no selector (k_matches disagrees with pytest): {unclaimed[:5]}")
        if base is not None:
            base_records = base.records
            if base.report is None or not base.report.get("complete"):
                res.problems.append(f"baseline run left no complete report (exit {base.returncode})")
            for i in selected:
                b = base_records.get(i)
                if b is None:
                    res.baseline_bad[i] = "missing from the baseline run"
                elif b["status"] not in UNHARMED:
                    res.baseline_bad[i] = _describe(b)
        results.append(res)
    return results


@dataclass
class MatrixResult:
    results: list[FaultResult]
    runs: dict

    @property
    def caught(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def injected(self) -> int:
        return len(self.results)

    @property
    def sensitivity(self) -> str:
        return f"{self.caught}/{self.injected}"

    def by_name(self) -> dict[str, FaultResult]:
        return {r.fault.name: r for r in self.results}

    def table(self) -> str:
        head = ("fault", "group", "expected", "affected", "caught", "misclassified", "collateral", "verdict")
        rows = [head]
        for r in self.results:
            verdict = "CAUGHT" if r.ok else "MISSED"
            rows.append((r.fault.name, r.fault.group, r.fault.expected, str(len(r.affected)), str(len(r.caught)),
                         str(len(r.misclassified)), str(len(r.collateral)), verdict))
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append("")
        lines.append(f"sensitivity: faults caught / faults injected = {self.sensitivity}")
        details = self.details()
        if details:
            lines += ["", details]
        return "\n".join(lines)

    def details(self) -> str:
        out = []
        for r in self.results:
            if r.ok:
                continue
            out.append(f"{r.fault.name} ({r.fault.fault}, expected {r.fault.expected}):")
            for p in r.problems:
                out.append(f"  problem: {p}")
            for i, d in r.misclassified.items():
                out.append(f"  misclassified {i}: {d}")
            for i, d in r.collateral.items():
                out.append(f"  collateral {i}: {d}")
            for i, d in r.baseline_bad.items():
                out.append(f"  fails without the fault {i}: {d}")
        return "\n".join(out)


def run_matrix(matrix: list[FaultCase] = MATRIX, only: Optional[list[str]] = None, workdir: Optional[str] = None,
               baseline: bool = True, jobs: int = 1, python: str = sys.executable, limit_s: float = 300.0,
               log: Callable[[str], None] = lambda s: None) -> MatrixResult:
    """Run the fault groups (``only``: group names) and score every fault in them."""
    todo = [g for g in groups(matrix) if only is None or g.name in only]
    if only is not None and {g.name for g in todo} != set(only):
        raise ValueError(f"unknown fault group(s): {sorted(set(only) - {g.name for g in todo})}")
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="c10d-selftest-")
        workdir = tmp.name
    try:
        runs = run_groups(todo, workdir, baseline, jobs, python, limit_s, log)
        results = []
        for g in todo:
            results += score(g, runs[(g.name, True)], runs.get((g.name, False)))
        return MatrixResult(results, runs)
    finally:
        if tmp is not None:
            tmp.cleanup()


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.selftest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", action="append", help="run only this fault group (repeatable): "
                        + ", ".join(g.name for g in groups()))
    parser.add_argument("--no-baseline", action="store_true", help="skip the fault-free control runs")
    parser.add_argument("--jobs", type=int, default=1, help="suite runs at a time (default 1)")
    parser.add_argument("--keep", metavar="DIR", help="keep the reports under DIR")
    parser.add_argument("--json", action="store_true", help="print the per-fault results as JSON instead")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    result = run_matrix(only=args.group, workdir=args.keep, baseline=not args.no_baseline, jobs=args.jobs,
                        log=lambda s: print(s, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps([{"fault": r.fault.name, "kind": r.fault.fault["kind"], "expected": r.fault.expected,
                           "caught": r.ok, "affected": r.affected, "misclassified": r.misclassified,
                           "collateral": r.collateral, "baseline_bad": r.baseline_bad, "problems": r.problems}
                          for r in result.results], indent=2))
    else:
        print(result.table())
        print(f"({time.monotonic() - t0:.0f} s)")
    return 0 if result.caught == result.injected else 1


if __name__ == "__main__":
    sys.exit(main())

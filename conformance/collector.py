"""Turns pytest's reports into the run reports, in the one process every report reaches.

That is pytest itself, or the xdist master (workers send their reports there, with the case record in
``user_properties``), or rank 0 under torchrun.  Registered by the plugin only in that process, which is also the
only process that loads and applies expectations files: a known status becomes ``xfailed`` here, before pytest
counts the report, so the exit code reports regressions only.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Optional

import pytest

from .status import CONFORMANT, SKIPPED, XFAILED

FLUSH_INTERVAL_S = 0.5


def props(report) -> dict:
    return {k: v for k, v in getattr(report, "user_properties", ()) if k.startswith("c10d_")}


def _label_of(nodeid: str) -> Optional[str]:
    """The world label of a test id ("...test_c10d[cpu-gloo-ws2-all_reduce-...]" -> "cpu-gloo-ws2")."""
    inner = nodeid.partition("[")[2]
    parts = inner.split("-")
    for i, part in enumerate(parts):
        if part.startswith("ws") and part[2:].isdigit():
            return "-".join(parts[:i + 1])
    return None


class Collector:
    def __init__(self, config, state):
        self.config, self.state = config, state
        self.reports: dict = {}          # world label -> RunReport
        self.planned: Counter = Counter()   # world label -> cases collected for it
        self.done: Counter = Counter()      # world label -> cases with a record
        self.interrupted = False
        self.finished = False
        self.expectations = state.plan.load_expectations()

    # -- how many cases each run has --------------------------------------------------------------------------------
    def pytest_collection_modifyitems(self, session, config, items):
        self.planned.update(_label_of(item.nodeid) for item in items if "[" in item.nodeid)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        if not self.planned:              # every worker collects the same items: count one
            self.planned.update(_label_of(i) for i in ids if "[" in i)

    # -- records ------------------------------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report):
        p = props(report)
        base = p.get("c10d_case")
        if base is None:
            return
        if report.when == "call" and "c10d_result" in p:
            record = self._expected(report, p["c10d_result"])
        elif report.when == "setup" and report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            record = base | {"status": SKIPPED, "reason": reason.removeprefix("Skipped: ")}
        elif report.when in ("setup", "call") and report.failed:
            last = str(report.longrepr).strip().splitlines()[-1][:300]
            record = base | {"status": "harness_error", "reason": f"pytest {report.when} failed: {last}"}
        else:
            return
        self.add(base, record, p.get("c10d_world"))
        for key, value in getattr(report, "user_properties", ()):
            if key == "c10d_amend":
                self.add(value, self._expected(None, value))

    def _expected(self, report, record: dict) -> dict:
        """Apply the expectations (here only); a covered failure stops failing the pytest run."""
        if self.expectations is None:
            return record
        record = self.expectations.apply(dict(record, observed=record["status"]))
        if report is not None:
            report.user_properties = [(k, record if k == "c10d_result" else v) for k, v in report.user_properties]
            if record["status"] in CONFORMANT and report.failed:
                report.outcome = "passed"
                if record["status"] == XFAILED:
                    report.wasxfail = record.get("reason", "")
        return record

    def add(self, base: dict, record: dict, world_info: Optional[dict] = None) -> None:
        writer = self.writer(base, world_info)
        if record["id"] not in writer._index:
            self.done[base["world"]] += 1
        writer.add(record)

    def writer(self, base: dict, info: Optional[dict]):
        label = base["world"]
        writer = self.reports.get(label)
        if writer is None:
            from .report.writer import RunReport
            writer = RunReport(self.state.plan.report_dir, self.state.plan.run_info(base))
            self.reports[label] = writer
            if len(self.reports) == 1:
                self._start_flusher()
        if info:
            writer.update_run(**{k: v for k, v in info.items() if k != "capabilities"})
            if "capabilities" in info:
                writer.set_capabilities(info["capabilities"], {})
        return writer

    def _start_flusher(self) -> None:
        """Flush every report twice a second from one thread: a case that hangs, or a kill -9, must not keep the
        results before it off the disk."""

        def loop():
            while not self.finished:
                time.sleep(FLUSH_INTERVAL_S)
                for writer in list(self.reports.values()):
                    if not writer.closed:
                        writer.flush()

        threading.Thread(target=loop, daemon=True, name="c10d-report-flusher").start()

    # -- the end --------------------------------------------------------------------------------------------------
    def close(self, interrupted: bool) -> None:
        """Each run is complete when every case collected for it has a record, whatever happened after it."""
        from .report.capabilities import observed
        self.finished = True
        for label, writer in self.reports.items():
            if writer.closed:
                continue
            complete = self.done[label] >= self.planned.get(label, 0)
            writer.set_capabilities(writer.capabilities.get("advertised", {}), observed(writer.results))
            writer.close(complete=complete, interrupted=interrupted and not complete)

    def pytest_keyboard_interrupt(self, excinfo):
        self.interrupted = True

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        self.close(self.interrupted or exitstatus == pytest.ExitCode.INTERRUPTED)
        not_run = [w for w in self.reports.values() if w.summary()["verdict"] == "not_run"]
        if not_run and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED     # nothing ran: not a pass

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        if not self.reports:
            return
        from .report.summary import terminal_table
        tr = terminalreporter
        tr.section("c10d conformance")
        for line in self.state.world_lines:
            tr.write_line(line)
        tr.write_line(terminal_table([w.to_dict() for w in self.reports.values()]))
        for writer in self.reports.values():
            tr.write_line(f"report: {writer.json_path}  ({writer.html_path})")
            if writer.run.get("start_error"):
                tr.write_line(f"c10d: {writer.run['start_error']}", red=True)
        if self.state.plan.expect_files and self.expectations is not None:
            if config.getoption("keyword") or config.getoption("deselect"):
                tr.write_line("expectations: stale entries not checked (the run was narrowed with -k)")
            else:
                for message in self.expectations.stale_messages():
                    tr.write_line(message, yellow=True)


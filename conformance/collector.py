"""Turns pytest's reports into the run reports, in the one process every report reaches.

That is pytest itself, or the xdist master (workers send their reports there, with the case record in
``user_properties``), or rank 0 under torchrun.  Registered by the plugin only in that process.
"""

from __future__ import annotations

import threading
import time
from typing import Optional

import pytest


def props(report) -> dict:
    return {k: v for k, v in getattr(report, "user_properties", ()) if k.startswith("c10d_")}


class Collector:
    def __init__(self, config, state):
        self.config, self.state = config, state
        self.reports: dict = {}          # world label -> RunReport
        self.interrupted = False
        self.finished = False
        self.started = time.time()

    # -- records ------------------------------------------------------------------------------------------------
    def pytest_runtest_logreport(self, report):
        p = props(report)
        base = p.get("c10d_case")
        if base is None:
            return
        if report.when == "call" and "c10d_result" in p:
            record = p["c10d_result"]
        elif report.when == "setup" and report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            record = base | {"status": "skipped", "reason": reason.removeprefix("Skipped: ")}
        elif report.when in ("setup", "call") and report.failed:
            last = str(report.longrepr).strip().splitlines()[-1][:300]
            record = base | {"status": "harness_error", "reason": f"pytest {report.when} failed: {last}"}
        else:
            return
        self.add(base, record, p.get("c10d_world"))

    def add(self, base: dict, record: dict, world_info: Optional[dict] = None) -> None:
        self.writer(base, world_info).add(record)
        if "observed" in record:   # count expectation matches here: under xdist the workers' counts are lost
            self.state.expectation_hits.apply(dict(record, status=record["observed"]))

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
            writer.set_capabilities(info.get("capabilities", {}), {})
        return writer

    def _start_flusher(self) -> None:
        """Flush every report twice a second from a thread: a case that hangs, or a kill -9, must not keep the
        results before it off the disk (the writer itself only flushes on add, at most every 0.5 s)."""

        def loop():
            while not self.finished:
                time.sleep(0.5)
                for writer in list(self.reports.values()):
                    if not writer.closed:
                        writer.flush()

        threading.Thread(target=loop, daemon=True, name="c10d-report-flusher").start()

    # -- the end --------------------------------------------------------------------------------------------------
    def close(self, interrupted: bool) -> None:
        self.finished = True
        for writer in self.reports.values():
            if not writer.closed:
                writer.update_run(duration_s=round(time.time() - self.started, 3))
                writer.close(complete=not interrupted, interrupted=interrupted)

    def pytest_keyboard_interrupt(self, excinfo):
        self.interrupted = True

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        self.close(self.interrupted or exitstatus == pytest.ExitCode.INTERRUPTED)

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
        if self.state.plan.expect_files:
            if config.getoption("keyword") or config.getoption("deselect"):
                tr.write_line("expectations: stale entries not checked (the run was narrowed with -k)")
            else:
                for message in self.state.expectation_hits.stale_messages():
                    tr.write_line(message, yellow=True)

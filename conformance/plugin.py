"""The pytest plugin: options, one test per case, worlds behind them, and the report.

Loaded through the ``pytest11`` entry point, so it is present in every pytest run of the environment; it stays
inert (no torch import, no processes) unless the run asks for the conformance suite: a path inside this package
among the arguments, or one of its options given.
"""

from __future__ import annotations

import importlib.util
import os
import signal
from dataclasses import dataclass, field
from typing import Optional

import pytest

from .status import BY_NAME, NONCONFORMANT, SKIPPED

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
OPTION_DESTS = ("c10d_device", "c10d_backend", "c10d_world_size", "c10d_plugins", "c10d_timeout", "c10d_expect")


def pytest_addoption(parser):
    group = parser.getgroup("c10d-conformance", "c10d conformance suite (pytest conformance/)")
    group.addoption("--device", dest="c10d_device", default=None, metavar="LIST",
                    help="comma-separated devices to test (default: every device torch reports present)")
    group.addoption("--backend", dest="c10d_backend", default=None, metavar="LIST",
                    help="comma-separated backends (default per device: its default backend, plus fakepg)")
    group.addoption("--world-size", dest="c10d_world_size", default=None, metavar="LIST",
                    help="comma-separated world sizes (default: 2,3)")
    group.addoption("--plugin", dest="c10d_plugins", action="append", default=[], metavar="MODULE",
                    help="module imported in every rank before init, e.g. one that registers a backend (repeatable); "
                         "a module that defines SPECS adds case families")
    # pytest-timeout owns --timeout when it is installed; then its value is ours too, and --case-timeout exists.
    timeout_names = ["--case-timeout"] if importlib.util.find_spec("pytest_timeout") else ["--timeout", "--case-timeout"]
    group.addoption(*timeout_names, dest="c10d_timeout", default=None, type=float, metavar="SECONDS",
                    help="per-case watchdog: a case still running after this is a timeout (default: 30)")
    group.addoption("--report-dir", dest="c10d_report_dir", default="reports", metavar="DIR",
                    help="where the JSON and HTML reports go (default: reports/)")
    group.addoption("--expect", dest="c10d_expect", action="append", default=[], metavar="FILE",
                    help="expectations file (TOML), or a directory of them: known statuses become "
                         "xfailed/xpassed (repeatable)")
    group.addoption("--baseline", dest="c10d_baseline", action="store_true", default=False,
                    help="apply the measured baselines shipped with the suite (conformance/baselines: gloo on cpu "
                         "per torch release), so the exit code reports regressions only (what tox envs use)")
    group.addoption("--start-method", dest="c10d_start_method", default="forkserver",
                    choices=["forkserver", "spawn"],
                    help="how rank processes start: fork from a server that imported torch once (default), "
                         "or spawn a fresh interpreter (for stacks whose import is not fork-safe)")
    group.addoption("--absent", "--absent-device", dest="c10d_absent", default="error", choices=["error", "skip"],
                    help="a requested device or backend that is not here: usage error (default), or leave it out "
                         "and end cleanly when nothing is left (what tox envs use)")


# ---------------------------------------------------------------------------------------------------------------
def _requested(config) -> bool:
    if any(config.getoption(d) for d in OPTION_DESTS):
        return True
    for arg in config.args:
        path = os.path.abspath(arg.split("::", 1)[0])
        if path == PACKAGE_DIR or path.startswith(PACKAGE_DIR + os.sep) or arg.split(".")[0] == "conformance":
            return True
    return False


@dataclass
class State:
    plan: object                               # conformance.planning.Plan
    runner: object = None                      # Runner or SpmdRunner, created on the first case
    collector: object = None                   # conformance.collector.Collector, where reports are written
    world_lines: list = field(default_factory=list)
    sent_infos: set = field(default_factory=set)
    sent_errors: set = field(default_factory=set)
    selected: Optional[list] = None            # planned cases -k may keep (see _selected)


STATE_KEY = pytest.StashKey[State]() if hasattr(pytest, "StashKey") else None


def _state(config) -> Optional[State]:
    return config.stash.get(STATE_KEY, None)


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    config.addinivalue_line("markers", "c10d: a c10d conformance case (set by the plugin)")
    if not _requested(config):
        return
    from . import planning
    try:
        plan = planning.build(config)
    except planning.UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    except planning.NothingToRun as exc:
        pytest.exit(str(exc), returncode=0)
    state = State(plan)
    config.stash[STATE_KEY] = state
    if plan.writes_report and not hasattr(config, "workerinput"):
        from .collector import Collector
        state.collector = Collector(config, state)
        config.pluginmanager.register(state.collector, "c10d-collector")
    _start_fork_server_early(config, state)
    if getattr(config.option, "numprocesses", None) and getattr(config.option, "dist", "no") in ("load", "no"):
        config.option.dist = "loadgroup"       # a world's cases stay on one xdist worker
    if plan.spmd and plan.spmd_rank != 0:
        # SPMD: rank 0 speaks and writes the report; the others stay quiet (their exit code still tells).
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            config.pluginmanager.unregister(reporter)
    if threading_is_main() and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _raise_interrupt)


def threading_is_main() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_report_header(config):
    """Said once, at the start: what was left out, and what this Python environment lacks (the preflight)."""
    state = _state(config)
    if state is None or hasattr(config, "workerinput"):
        return None
    from . import environment
    lines = [f"c10d: {note}" for note in state.plan.notes]
    for need in environment.missing():
        hit = sum(1 for p in _selected(config, state) if p.skip is None and need.name in p.case.needs)
        if hit:
            lines.append(f"c10d: PREFLIGHT: {need.message}: {hit} cases will be harness_error (not the backend's "
                         f"fault) until it is fixed")
    return lines or None


def pytest_generate_tests(metafunc):
    if "c10d_planned" not in metafunc.fixturenames:
        return
    state = _state(metafunc.config)
    if state is None:
        raise pytest.UsageError("the conformance suite was collected without its plugin state; run pytest conformance/")
    planned = _selected(metafunc.config, state)
    metafunc.parametrize("c10d_planned", [pytest.param(p, id=p.test_id, marks=p.marks()) for p in planned])


def _selected(config, state) -> list:
    """The planned cases -k may keep, computed once (configure uses it to start the fork server early)."""
    if state.selected is None:
        from .planning import KeywordFilter
        keep = KeywordFilter(config.getoption("keyword", "")).keeps
        state.selected = [p for p in state.plan.planned_cases() if keep(p.test_id)]
    return state.selected


def pytest_collection_modifyitems(session, config, items):
    state = _state(config)
    if state is None:
        return
    # pytest-timeout, where installed, would apply its --timeout (which is also our case watchdog) to each whole
    # item, and stop our harness mid-wait; the suite bounds every case itself, so its items are exempt.
    exempt = pytest.mark.timeout(0) if config.pluginmanager.hasplugin("timeout") else None
    for item in items:
        planned = getattr(getattr(item, "callspec", None), "params", {}).get("c10d_planned")
        if planned is not None:
            item.user_properties.append(("c10d_case", planned.record_base()))
            if exempt is not None:
                item.add_marker(exempt)


def _start_fork_server_early(config, state) -> None:
    """Start the fork server while pytest collects, so torch is imported there in parallel (first result sooner).
    Only where worlds will run: not in an xdist master, under torchrun, or for --collect-only."""
    xdist_master = getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput")
    if state.plan.spmd or xdist_master or config.getoption("collectonly"):
        return
    to_run = [p for p in _selected(config, state) if p.skip is None and p.unmet is None]
    if not to_run:
        return
    from .worlds.world import warm_up
    if any(p.case.collective.startswith("funcol.") for p in to_run):
        # The first eager functional collective imports torch._dynamo (about 2 s): once, not per rank.
        state.plan.settings.preload = ("torch._dynamo",)
    warm_up(state.plan.settings)


@pytest.fixture(scope="session")
def c10d_runner(request):
    state = _state(request.config)
    if state.runner is None:
        config = request.config
        state.runner = state.plan.make_runner(announce=lambda key, s, info: _say(config, _ready_line(key, s)),
                                              fatal=lambda key, case, result: _fatal(config, key, case, result),
                                              cannot_start=lambda key, reason: _say(config, f"c10d: {reason}"))
    yield state.runner
    state.runner.close()


def _ready_line(key, seconds) -> str:
    return f"c10d: world {key.label} ready in {seconds:.2f} s"


def _say(config, line: str) -> None:
    """A progress line for the terminal (not the test's captured output); kept for the summary too."""
    state = _state(config)
    state.world_lines.append(line)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and not hasattr(config, "workerinput") and config.getoption("verbose") >= 0:
        capture = config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(line)


def _fatal(config, key, case, result):
    """torchrun mode, a case hung: record it and leave a valid partial report before the process ends."""
    from .planning import PlannedCase
    state = _state(config)
    if state.collector is None:
        return
    base = PlannedCase(key, case, None).record_base()
    state.collector.add(base, base | _result_fields(result), state.runner.infos.get(key))
    state.collector.close(interrupted=True)


def _result_fields(result) -> dict:
    return dict(status=result.status, reason=result.reason, duration_s=round(result.duration_s, 6),
                call_s=round(result.call_s, 6), ranks=result.ranks or None)


@pytest.fixture
def c10d_check(request, c10d_runner):
    """Run one planned case on its world and turn the result into a pytest outcome plus a report record."""
    state = _state(request.config)

    def check(planned):
        from .outcomes import CaseResult
        from .status import HARNESS_ERROR
        if planned.unmet:      # the environment lacks what the case needs: the suite's problem, said up front
            result = CaseResult(HARNESS_ERROR, planned.unmet)
        else:
            result = c10d_runner.run(planned.key, planned.case)
        record = planned.record_base() | _result_fields(result)
        props = request.node.user_properties
        props.append(("c10d_result", record))
        for case_id, blame in result.amends:   # an earlier case left this one's world dirty
            props.append(("c10d_amend", planned.record_base() | {"id": case_id} | _result_fields(blame)))
        info = c10d_runner.infos.get(planned.key)
        if info is not None and planned.key not in state.sent_infos:
            state.sent_infos.add(planned.key)
            props.append(("c10d_world", info))
        broken = c10d_runner.broken.get(planned.key)
        if broken and planned.key not in state.sent_errors:
            state.sent_errors.add(planned.key)
            props.append(("c10d_world", {"start_error": broken}))
        if record["status"] in NONCONFORMANT:
            pytest.fail(f"{record['status']}: {record['reason']}", pytrace=False)
        if record["status"] == SKIPPED:    # decided once the world said what it is (e.g. simulated)
            pytest.skip(record["reason"])

    return check


# ---------------------------------------------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report, config):
    from .collector import props
    result = props(report).get("c10d_result")
    if result and report.when == "call" and result["status"] in BY_NAME:
        s = BY_NAME[result["status"]]
        return s.name, s.letter, s.word
    return None


def pytest_sessionfinish(session, exitstatus):
    state = _state(session.config)
    if state is not None and state.runner is not None:
        state.runner.kill()       # nothing may outlive the run, whatever ended it

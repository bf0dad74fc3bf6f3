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

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
OPTION_DESTS = ("c10d_device", "c10d_backend", "c10d_world_size", "c10d_plugins", "c10d_timeout", "c10d_expect")

# status -> (pytest category, short letter, verbose word); how each result class shows in pytest's output.
CATEGORIES = {
    "unsupported": ("unsupported", "u", "UNSUPPORTED"),
    "failed": ("failed", "F", "FAILED"),
    "error": ("error", "E", "ERROR"),
    "timeout": ("timeout", "T", "TIMEOUT"),
    "crashed": ("crashed", "C", "CRASHED"),
    "blocked": ("blocked", "B", "BLOCKED"),
    "harness_error": ("harness_error", "H", "HARNESS_ERROR"),
    "xfailed": ("xfailed", "x", "XFAIL"),
    "xpassed": ("xpassed", "X", "XPASS"),
}
FAILING = {"failed", "error", "timeout", "crashed", "blocked", "harness_error"}


def pytest_addoption(parser):
    group = parser.getgroup("c10d-conformance", "c10d conformance suite (pytest conformance/)")
    group.addoption("--device", dest="c10d_device", default=None, metavar="LIST",
                    help="comma-separated devices to test (default: every device torch reports present)")
    group.addoption("--backend", dest="c10d_backend", default=None, metavar="LIST",
                    help="comma-separated backends (default per device: its default backend, plus fakepg)")
    group.addoption("--world-size", dest="c10d_world_size", default=None, metavar="LIST",
                    help="comma-separated world sizes (default: 2,3)")
    group.addoption("--plugin", dest="c10d_plugins", action="append", default=[], metavar="MODULE",
                    help="module imported in every rank before init, e.g. one that registers a backend (repeatable)")
    # pytest-timeout owns --timeout when it is installed; then its value is ours too, and --case-timeout exists.
    timeout_names = ["--case-timeout"] if importlib.util.find_spec("pytest_timeout") else ["--timeout", "--case-timeout"]
    group.addoption(*timeout_names, dest="c10d_timeout", default=None, type=float, metavar="SECONDS",
                    help="per-case watchdog: a case still running after this is a timeout (default: 30)")
    group.addoption("--report-dir", dest="c10d_report_dir", default="reports", metavar="DIR",
                    help="where the JSON and HTML reports go (default: reports/)")
    group.addoption("--expect", dest="c10d_expect", action="append", default=[], metavar="FILE",
                    help="expectations file (TOML): known statuses become xfailed/xpassed (repeatable)")
    group.addoption("--start-method", dest="c10d_start_method", default="forkserver",
                    choices=["forkserver", "spawn"],
                    help="how rank processes start: fork from a server that imported torch once (default), "
                         "or spawn a fresh interpreter (for stacks whose import is not fork-safe)")
    group.addoption("--absent-device", dest="c10d_absent_device", default="error", choices=["error", "skip"],
                    help="a requested device that is not present: usage error (default) or end the run cleanly")


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
    expectation_hits: object = None            # the controlling process's own count of expectation matches
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
    state = State(plan, expectation_hits=plan.load_expectations())
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
        state.selected = [p for p in state.plan.planned_cases() if _may_match_k(config, p.test_id)]
    return state.selected


def _may_match_k(config, test_id: str) -> bool:
    """Apply -k before the items exist, so a narrow selection does not pay for collecting 10,000 items.

    Conservative: an identifier matches when it occurs anywhere in the item's names or markers, so nothing
    pytest's own -k would keep is dropped here; pytest still applies the real -k afterwards.
    """
    expr = _k_expression(config)
    if expr is None:
        return True
    haystack = f"conformance test_c10d.py test_c10d[{test_id}] c10d xdist_group parametrize".lower()
    return expr.evaluate(lambda ident, **kwargs: ident.lower() in haystack)


def _k_expression(config):
    if not hasattr(config, "_c10d_k"):
        config._c10d_k = None
        keyword = config.getoption("keyword", "")
        if keyword:
            try:
                from _pytest.mark.expression import Expression   # private: without it, collect everything
                config._c10d_k = Expression.compile(keyword)
            except Exception:
                pass
    return config._c10d_k


def pytest_collection_modifyitems(session, config, items):
    state = _state(config)
    if state is None:
        return
    for item in items:
        planned = getattr(getattr(item, "callspec", None), "params", {}).get("c10d_planned")
        if planned is not None:
            item.user_properties.append(("c10d_case", planned.record_base()))


def _start_fork_server_early(config, state) -> None:
    """Start the fork server while pytest collects, so torch is imported there in parallel (first result sooner).
    Only where worlds will run: not in an xdist master, under torchrun, or for --collect-only."""
    xdist_master = getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput")
    if state.plan.spmd or xdist_master or config.getoption("collectonly"):
        return
    to_run = [p for p in _selected(config, state) if p.skip is None]
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
        state.runner = state.plan.make_runner(announce=lambda key, s, info: _announce(request.config, key, s),
                                              fatal=lambda key, case, result: _fatal(request.config, key, case, result))
    yield state.runner
    state.runner.close()


def _announce(config, key, seconds):
    state = _state(config)
    line = f"c10d: world {key.label} ready in {seconds:.2f} s"
    state.world_lines.append(line)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and not hasattr(config, "workerinput") and config.getoption("verbose") >= 0:
        capture = config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():   # progress for the terminal, not the test's captured output
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
        result = c10d_runner.run(planned.key, planned.case)
        record = planned.record_base() | _result_fields(result)
        record = state.plan.expectations.apply(dict(record, observed=record["status"]))
        request.node.user_properties.append(("c10d_result", record))
        info = c10d_runner.infos.get(planned.key)
        if info is not None and planned.key not in state.sent_infos:
            state.sent_infos.add(planned.key)
            request.node.user_properties.append(("c10d_world", info))
        if record["status"] in FAILING:
            pytest.fail(f"{record['status']}: {record['reason']}", pytrace=False)
        if record["status"] == "skipped":    # decided once the world said what it is (e.g. simulated)
            pytest.skip(record["reason"])

    return check


# ---------------------------------------------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report, config):
    from .collector import props
    result = props(report).get("c10d_result")
    if result and report.when == "call" and result["status"] in CATEGORIES:
        return CATEGORIES[result["status"]]
    return None


def pytest_sessionfinish(session, exitstatus):
    state = _state(session.config)
    if state is not None and state.runner is not None:
        state.runner.kill()       # nothing may outlive the run, whatever ended it

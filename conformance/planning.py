"""From command-line options to a plan: which worlds, which cases, what is skipped and why.

Every decision that can be made without starting a world is made here, in the controller: bad option values and
explicitly requested devices or backends that are not here are one-line usage errors (unless the user opted into
absence with ``--absent skip``), backends that do not serve a device become skips with a reason, and cases whose
environment needs are unmet (``conformance.environment``) are marked before anything runs.

Test ids and the ``-k`` pre-selection are defined here once (``test_id``, ``KeywordFilter``); the self-test uses
the same two.
"""

from __future__ import annotations

import glob
import importlib
import os
from dataclasses import dataclass, field
from typing import Optional

import pytest


class UsageError(Exception):
    """A bad option value: reported as one line before anything starts."""


class NothingToRun(Exception):
    """The run has nothing to do here and the user said that is fine (``--absent skip``)."""


def _split(value: Optional[str]) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def spmd_env() -> Optional[tuple[int, int]]:
    """(rank, world size) when this pytest runs as one rank under torchrun (or any env:// launcher)."""
    env = os.environ
    if all(k in env for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")):
        return int(env["RANK"]), int(env["WORLD_SIZE"])
    return None


def test_id(label: str, case) -> str:
    """The pytest id of a case in a world: ``<device>-<backend>-ws<N>-<collective>-<variant>-<dtype>-...``."""
    parts = [label, case.collective, case.variant, case.dtype, case.op, case.shape, case.mode]
    return "-".join(p for p in parts if p)


class KeywordFilter:
    """pytest's ``-k`` applied to test ids before the items exist, so a narrow selection does not pay for
    collecting 10,000 items.  Conservative: an identifier matches when it occurs anywhere in the item's names or
    markers, so nothing pytest's own -k would keep is dropped here; pytest still applies the real -k afterwards."""

    def __init__(self, keyword: str):
        self.expression = None
        if keyword:
            try:
                from _pytest.mark.expression import Expression   # private: without it, keep everything
                self.expression = Expression.compile(keyword)
            except Exception:
                self.expression = None

    def keeps(self, tid: str) -> bool:
        if self.expression is None:
            return True
        haystack = f"conformance test_c10d.py test_c10d[{tid}] c10d xdist_group parametrize".lower()
        return self.expression.evaluate(lambda ident, **kwargs: ident.lower() in haystack)


@dataclass
class PlannedCase:
    key: object            # WorldKey
    case: object           # Case
    skip: Optional[str]
    unmet: Optional[str] = None   # the environment lacks what the case needs: harness_error, with the fix

    @property
    def test_id(self) -> str:
        return test_id(self.key.label, self.case)

    def marks(self):
        marks = [pytest.mark.c10d, pytest.mark.xdist_group(self.key.label)]
        if self.skip:
            marks.append(pytest.mark.skip(reason=self.skip))
        return marks

    def record_base(self) -> dict:
        c = self.case
        return {"id": c.id, "collective": c.collective, "variant": c.variant, "dtype": c.dtype, "op": c.op,
                "shape": c.shape, "mode": c.mode, "world": self.key.label, "backend": self.key.backend,
                "device": self.key.device, "world_size": self.key.world_size}


@dataclass
class Plan:
    keys: list                       # [(WorldKey, skip reason or None)]
    settings: object                 # worlds.world.Settings
    report_dir: str
    expect_files: list = field(default_factory=list)
    notes: list = field(default_factory=list)       # one line each, shown once at the start of the run
    spmd: bool = False
    spmd_rank: int = 0

    @property
    def writes_report(self) -> bool:
        return not self.spmd or self.spmd_rank == 0

    def planned_cases(self) -> list[PlannedCase]:
        from . import environment
        from .cases import Env, catalog
        from .versions import torch_version
        out = []
        for key, skip in self.keys:
            for case in catalog(Env(key.device, key.world_size, torch_version()), self.settings.plugins).values():
                out.append(PlannedCase(key, case, skip or case.skip, environment.unmet(case.needs)))
        return out

    def make_runner(self, announce, fatal, cannot_start):
        if self.spmd:
            from .spmd import SpmdRunner
            return SpmdRunner(self.settings, announce, fatal, cannot_start)
        from .worlds.runner import Runner
        return Runner(self.settings, announce, cannot_start)

    def run_info(self, base: dict) -> dict:
        return {"backend": base["backend"], "device": base["device"], "world_size": base["world_size"],
                "launcher": "torchrun" if self.spmd else "pytest", "timeout_s": self.settings.timeout_s}

    def load_expectations(self):
        """The --expect files as one set (None without any); loaded only where records are collected."""
        if not self.expect_files:
            return None
        from .report.expectations import Expectations, combine
        try:
            return combine([Expectations.load(f) for f in expectation_files(self.expect_files)])
        except (OSError, ValueError) as exc:
            raise UsageError(f"--expect: {exc}") from None


BASELINES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "baselines")


def expectation_files(paths: list[str]) -> list[str]:
    """--expect paths with every directory replaced by the .toml files in it (each file's own filters say which
    runs it applies to, so a directory of baselines for several torch releases and backends can be given whole)."""
    out = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(glob.glob(os.path.join(path, "*.toml")))
            if not found:
                raise UsageError(f"--expect {path}: no .toml files in this directory")
            out.extend(found)
        else:
            out.append(path)
    return out


def _import_plugins(modules: list[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException as exc:   # a plugin that raises anything at import is the user's input error
            from .errors import describe_exception
            raise UsageError(f"--plugin {name}: import failed: {describe_exception(exc)}") from None


def _world_sizes(config, spmd) -> list[int]:
    raw = config.getoption("c10d_world_size")
    if spmd is not None:
        return [spmd[1]]
    try:
        sizes = [int(v) for v in _split(raw or "2,3")]
    except ValueError:
        raise UsageError(f"--world-size {raw!r}: expected comma-separated integers, e.g. 2,3") from None
    bad = [s for s in sizes if s < 1]
    if bad or not sizes:
        raise UsageError(f"--world-size {raw!r}: every world size must be at least 1")
    return sizes


def _present_only(requested: list[str], present, what: str, absent_ok: bool, notes: list) -> list[str]:
    """``requested`` minus what is not here: a usage error, or (opted into absence) a note."""
    missing = [x for x in requested if not present(x)]
    if missing and not absent_ok:
        raise UsageError(what.format(", ".join(missing)) + "; --absent skip leaves it out instead")
    notes.extend(what.format(m) + ": left out (--absent skip)" for m in missing)
    return [x for x in requested if present(x)]


def _default_backends(device: str, notes: list) -> list[str]:
    """Without --backend: the device's default backend as torch maps it, plus fakepg; an unavailable default is
    left out with a note (the user did not ask for it by name)."""
    from . import devices
    chosen = []
    for backend in (devices.default_backend(device), "fakepg"):
        if backend and devices.backend_available(backend):
            chosen.append(backend)
        elif backend:
            notes.append(f"{device}'s default backend {backend} is not available in this torch build: left out")
    return chosen


def build(config) -> Plan:
    from . import devices
    from .worlds.world import Settings, WorldKey

    plugins = list(config.getoption("c10d_plugins") or [])
    _import_plugins(plugins)
    spmd = spmd_env()
    sizes = _world_sizes(config, spmd)
    absent_ok = config.getoption("c10d_absent") == "skip"
    notes: list = []

    present = devices.present_devices()
    requested_devices = _split(config.getoption("c10d_device"))
    device_list = _present_only(requested_devices, lambda d: d in present,
                                f"device {{}} not present here (present: {', '.join(present)})", absent_ok, notes)
    if requested_devices and not device_list:
        raise NothingToRun("; ".join(notes) + ": nothing to run")
    device_list = device_list or present

    known = devices.known_backends()
    requested_backends = _split(config.getoption("c10d_backend"))
    unknown = [b for b in requested_backends if b not in known]
    if unknown:
        raise UsageError(f"--backend {', '.join(unknown)}: unknown backend (known: {', '.join(known)}); "
                         f"register yours with --plugin MODULE")
    backends = _present_only(requested_backends, devices.backend_available,
                             "backend {} is not available in this torch build", absent_ok, notes)
    if requested_backends and not backends:
        raise NothingToRun("; ".join(notes) + ": nothing to run")

    timeout = config.getoption("c10d_timeout")
    if timeout is None and importlib.util.find_spec("pytest_timeout"):
        timeout = config.getoption("timeout", None)
    timeout = float(timeout) if timeout else 30.0
    if timeout <= 0:
        raise UsageError(f"--timeout {timeout:g}: must be positive")

    keys = []
    for device in device_list:
        for backend in dict.fromkeys(backends or _default_backends(device, notes)):
            for size in sizes:
                keys.append((WorldKey(backend, device, size), devices.skip_reason(backend, device, size)))

    settings = Settings(timeout_s=timeout, start_method=config.getoption("c10d_start_method"),
                        probe_timeout_s=min(timeout, 10.0), start_timeout_s=max(2 * timeout, 20.0),
                        plugins=tuple(plugins))
    plan = Plan(keys, settings, config.getoption("c10d_report_dir"), notes=notes)
    plan.expect_files = list(config.getoption("c10d_expect") or [])
    if config.getoption("c10d_baseline"):
        plan.expect_files.append(BASELINES)
    plan.load_expectations()                 # a bad file is a usage error before anything starts
    if spmd is not None:
        plan.spmd, plan.spmd_rank = True, spmd[0]
    return plan

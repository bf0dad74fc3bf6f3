"""From command-line options to a plan: which worlds, which cases, what is skipped and why.

Every decision that can be made without starting a world is made here, in the controller: bad option values are
one-line usage errors, absent devices and unavailable backends become skips with a reason.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Optional

import pytest


class UsageError(Exception):
    """A bad option value: reported as one line before anything starts."""


class NothingToRun(Exception):
    """The run has nothing to do here (e.g. an absent device with --absent-device=skip)."""


def _split(value: Optional[str]) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def spmd_env() -> Optional[tuple[int, int]]:
    """(rank, world size) when this pytest runs as one rank under torchrun (or any env:// launcher)."""
    env = os.environ
    if all(k in env for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")):
        return int(env["RANK"]), int(env["WORLD_SIZE"])
    return None


@dataclass
class PlannedCase:
    key: object            # WorldKey
    case: object           # Case
    skip: Optional[str]

    @property
    def test_id(self) -> str:
        c = self.case
        parts = [self.key.label, c.collective, c.variant, c.dtype, c.op, c.shape, c.mode]
        return "-".join(p for p in parts if p)

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


class NoExpectations:
    def apply(self, record: dict) -> dict:
        return record

    def stale_messages(self):
        return []


@dataclass
class Plan:
    keys: list                       # [(WorldKey, skip reason or None)]
    settings: object                 # worlds.world.Settings
    report_dir: str
    expectations: object = field(default_factory=NoExpectations)
    expect_files: list = field(default_factory=list)
    spmd: bool = False
    spmd_rank: int = 0

    @property
    def writes_report(self) -> bool:
        return not self.spmd or self.spmd_rank == 0

    def planned_cases(self) -> list[PlannedCase]:
        import torch
        from .cases import Env, catalog
        version = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
        out = []
        for key, skip in self.keys:
            for case in catalog(Env(key.device, key.world_size, version)).values():
                out.append(PlannedCase(key, case, skip or case.skip))
        return out

    def make_runner(self, announce, fatal):
        if self.spmd:
            from .spmd import SpmdRunner
            return SpmdRunner(self.settings, announce, fatal)
        from .worlds.runner import Runner
        return Runner(self.settings, announce)

    def run_info(self, base: dict) -> dict:
        return {"backend": base["backend"], "device": base["device"], "world_size": base["world_size"],
                "launcher": "torchrun" if self.spmd else "pytest", "timeout_s": self.settings.timeout_s}

    def load_expectations(self):
        """A fresh set loaded from the --expect files (or the empty one): each user counts its own matches."""
        if not self.expect_files:
            return NoExpectations()
        from .report.expectations import Expectations, combine
        try:
            return combine([Expectations.load(f) for f in self.expect_files])
        except (OSError, ValueError) as exc:
            raise UsageError(f"--expect: {exc}") from None


def _import_plugins(modules: list[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException as exc:   # a plugin that raises anything at import is the user's input error
            from .execute import describe_exception
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


def build(config) -> Plan:
    from . import devices
    from .worlds.world import Settings, WorldKey

    plugins = list(config.getoption("c10d_plugins") or [])
    _import_plugins(plugins)
    spmd = spmd_env()
    sizes = _world_sizes(config, spmd)

    present = devices.present_devices()
    requested_devices = _split(config.getoption("c10d_device"))
    absent = [d for d in requested_devices if d not in present]
    if absent:
        message = f"device {', '.join(absent)} not present here (present: {', '.join(present)})"
        if config.getoption("c10d_absent_device") == "skip":
            raise NothingToRun(message + ": nothing to run")
        raise UsageError(message)
    device_list = requested_devices or present

    known = devices.known_backends()
    requested_backends = _split(config.getoption("c10d_backend"))
    unknown = [b for b in requested_backends if b not in known]
    if unknown:
        raise UsageError(f"--backend {', '.join(unknown)}: unknown backend (known: {', '.join(known)}); "
                         f"register yours with --plugin MODULE")

    timeout = config.getoption("c10d_timeout")
    if timeout is None and importlib.util.find_spec("pytest_timeout"):
        timeout = config.getoption("timeout", None)
    timeout = float(timeout) if timeout else 30.0
    if timeout <= 0:
        raise UsageError(f"--timeout {timeout:g}: must be positive")

    keys = []
    for device in device_list:
        backends = requested_backends or [b for b in (devices.default_backend(device), "fakepg") if b]
        for backend in dict.fromkeys(backends):
            for size in sizes:
                key = WorldKey(backend, device, size)
                keys.append((key, devices.skip_reason(backend, device, size)))

    settings = Settings(timeout_s=timeout, start_method=config.getoption("c10d_start_method"),
                        probe_timeout_s=min(timeout, 10.0), start_timeout_s=max(2 * timeout, 20.0),
                        plugins=tuple(plugins))
    plan = Plan(keys, settings, config.getoption("c10d_report_dir"))
    plan.expect_files = list(config.getoption("c10d_expect") or [])
    plan.expectations = plan.load_expectations()
    if spmd is not None:
        plan.spmd, plan.spmd_rank = True, spmd[0]
    return plan

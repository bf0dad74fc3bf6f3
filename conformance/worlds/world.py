"""The controller's side of one world: start its ranks, hand them cases, turn whatever happens into a result.

A world is one process per rank for one (backend, device, world size).  It is started once and reused for every
case until something makes it unusable: a case that outlives its watchdog, a rank that dies, an asymmetric raise,
or a failed proof of cleanliness (``conformance.policy``).  Then it is killed (the whole process group of every
rank, helpers the backend started included) and the ``Runner`` starts a fresh one for the next case.

Ranks are not daemonic, so a backend may start processes of its own; nothing outlives the run anyway: the world
kills rank groups, and the controller's reaper (``reaper.py``) kills them if the controller itself is killed.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field

from .. import devices, outcomes
from ..outcomes import RAISED, CaseResult, RankOutcome
from ..status import CRASHED, ERROR, TIMEOUT
from . import rank as rank_module
from . import stacks
from .reaper import REAPER

# Ranks fork from a server that imported torch once; spawn (a fresh interpreter per rank) is the fallback for
# stacks whose import is not fork-safe.
PRELOAD = ["torch", "torch.distributed", "conformance.worlds.rank"]


def mp_context(settings: "Settings"):
    ctx = multiprocessing.get_context(settings.start_method)
    if settings.start_method == "forkserver":
        ctx.set_forkserver_preload(PRELOAD + list(settings.preload))
    return ctx


def warm_up(settings: "Settings") -> None:
    """Start the fork server now, so torch imports there while pytest collects."""
    if settings.start_method == "forkserver":
        mp_context(settings)
        from multiprocessing import forkserver
        forkserver.ensure_running()


@dataclass(frozen=True)
class WorldKey:
    backend: str
    device: str
    world_size: int

    @property
    def label(self) -> str:
        return f"{self.device}-{self.backend}-ws{self.world_size}"


@dataclass
class Settings:
    timeout_s: float = 30.0           # per case
    start_timeout_s: float = 60.0     # per world start (fork, plugin imports, rendezvous, init)
    asym_grace_s: float = 2.0         # after one rank raised, how long the others get before it is "asymmetric"
    probe_timeout_s: float = 10.0
    plugins: tuple = ()
    start_method: str = "forkserver"
    preload: tuple = ()               # more modules for the fork server to import once (not every rank)
    env: dict = field(default_factory=dict)

    @property
    def pg_timeout_s(self) -> float:
        """The backend's own timeout: longer than the watchdog, so a hang is ours to report, not its error."""
        return max(self.timeout_s * 2, 60.0)


class WorldStartError(Exception):
    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class World:
    replaceable = True

    def __init__(self, key: WorldKey, settings: Settings):
        self.key, self.settings = key, settings
        self.procs: list = []
        self.conns: list = []
        self.info: dict = {}
        self.threads: list = []       # each rank's main thread id, to find it in a stack dump
        self.seq = 0
        self.cases_run = 0
        self.alive = False
        self._tmp = None

    @property
    def world_model(self) -> str:
        return self.info.get("capabilities", {}).get("world_model", "real")

    def _path(self, r: int, what: str) -> str:
        return os.path.join(self._tmp, f"rank{r}.{what}")

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> float:
        """Start every rank and wait until all joined the process group; returns the seconds it took."""
        t0 = time.monotonic()
        ctx = mp_context(self.settings)
        self._tmp = tempfile.mkdtemp(prefix=f"c10d-{self.key.label}-")
        store_path = os.path.join(self._tmp, "store")
        for r in range(self.key.world_size):
            cfg = rank_module.RankConfig(
                self.key.backend, self.key.device, r, self.key.world_size, store_path,
                plugins=devices.plugin_modules_for(self.key.backend, list(self.settings.plugins)),
                controller_pid=os.getpid(), pg_timeout_s=self.settings.pg_timeout_s, env=dict(self.settings.env),
                log_path=self._path(r, "log"), stack_path=self._path(r, "stack"))
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=rank_module.main, args=(child, cfg), daemon=False, name=f"rank{r}")
            proc.start()
            REAPER.watch(proc.pid)           # the rank leads a process group of its own pid
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)
        self.alive = True
        replies, problem = self._collect(lambda msg: msg[0] in ("ready", "init_failed"),
                                         self.settings.start_timeout_s, grace_on=None)
        if problem is None:
            failed = {r: m[1] for r, m in replies.items() if m[0] == "init_failed"}
            if failed:
                problem = (ERROR, "backend init failed: " + outcomes.join_reasons(failed, self.key.world_size))
        if problem is not None:
            if problem[0] == TIMEOUT:
                problem = (TIMEOUT, f"world start: {problem[1]}{self._stuck(sorted(set(range(len(self.procs))) - set(replies)))}")
            self.kill()
            raise WorldStartError(*problem)
        self.info = replies[0][1]
        self.threads = [replies[r][2] for r in range(len(self.procs))]
        return time.monotonic() - t0

    def kill(self) -> None:
        """Kill every rank and anything it started (each rank leads its own process group)."""
        self.alive = False
        for proc in self.procs:
            if proc.pid is None:
                continue
            for kill in (lambda: os.killpg(proc.pid, signal.SIGKILL), lambda: os.kill(proc.pid, signal.SIGKILL)):
                try:
                    kill()
                except (ProcessLookupError, PermissionError, OSError):
                    pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.pid is not None:
                REAPER.forget(proc.pid)
        for conn in self.conns:
            conn.close()
        self.procs, self.conns = [], []
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def close(self) -> None:
        """Ask the ranks to leave, then make sure they (and what they started) did."""
        for conn in self.conns:
            try:
                conn.send(("exit",))
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 2.0
        for proc in self.procs:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
        self.kill()

    # -- running ----------------------------------------------------------------------------------------------
    def run_once(self, case, timeout_s: float) -> CaseResult:
        """Run one case on every rank.  A timeout, a dead rank or an asymmetric raise kills the world."""
        t0 = time.monotonic()
        self.seq += 1
        self.cases_run += 1
        seq = self.seq
        self._send_all(("case", seq, case.id))
        replies, problem = self._collect(lambda msg: msg[0] == "outcome" and msg[1] == seq,
                                         timeout_s, grace_on=lambda msg: msg[2]["status"] == RAISED)
        elapsed = time.monotonic() - t0
        if problem is None:
            result = outcomes.merge({r: RankOutcome(**m[2]) for r, m in replies.items()}, self.key.world_size)
            result.duration_s = elapsed
            return result
        status, reason = problem
        done = {r: RankOutcome(**m[2]) for r, m in replies.items()}
        if status == TIMEOUT:
            reason += self._stuck(sorted(set(range(len(self.procs))) - set(done)))
        elif status == ERROR and done:   # asymmetric: some raised, the others kept waiting
            raised = {r: o.reason for r, o in done.items() if o.status == RAISED}
            reason = f"asymmetric: {reason}; " + outcomes.join_reasons(raised, self.key.world_size)
        self.kill()
        result = CaseResult(status, reason, duration_s=elapsed)
        result.ranks = {str(r): o.reason for r, o in done.items() if o.reason}
        return result

    def _stuck(self, ranks: list[int]) -> str:
        """"; rank r stuck in ..." for each still-running rank, from a stack sample."""
        live = [r for r in ranks if self.procs[r].is_alive()]
        dumps = stacks.request([self.procs[r].pid for r in live], [self._path(r, "stack") for r in live])
        said = {}
        for r, dump in zip(live, dumps):
            where = stacks.where(dump, self.threads[r] if r < len(self.threads) else None)
            if where:
                said[r] = f"stuck {where}"
        return ("; " + outcomes.join_reasons(said, self.key.world_size)) if said else ""

    def _send_all(self, msg) -> None:
        for conn in self.conns:
            try:
                conn.send(msg)
            except (OSError, ValueError):
                pass   # a dead rank shows up as a sentinel in _collect

    def _collect(self, wanted, budget_s: float, grace_on):
        """Gather one wanted message per rank within ``budget_s``.  Returns (replies, problem); problem is
        (status, reason) or None.  ``grace_on(msg)`` marks a reply after which the other ranks only get
        ``asym_grace_s`` more seconds: a rank that raised while its peers wait in the collective is asymmetric.
        """
        deadline = time.monotonic() + budget_s
        replies: dict[int, tuple] = {}
        grace_deadline = None
        pending = set(range(len(self.procs)))
        while pending:
            limit = deadline if grace_deadline is None else min(deadline, grace_deadline)
            waitables = {self.conns[r]: r for r in pending}
            waitables.update({self.procs[r].sentinel: r for r in pending})
            ready = multiprocessing.connection.wait(list(waitables), timeout=max(0.0, limit - time.monotonic()))
            if not ready:
                late = sorted(pending)
                if grace_deadline is not None and time.monotonic() < deadline:
                    return replies, (ERROR, f"ranks {late} did not return within "
                                            f"{self.settings.asym_grace_s:g} s of a raise elsewhere")
                return replies, (TIMEOUT, f"ranks {late} still running after the {budget_s:g} s limit")
            for obj in ready:
                r = waitables[obj]
                if r not in pending:
                    continue
                if obj is self.conns[r]:
                    try:
                        msg = obj.recv()
                    except (EOFError, OSError):
                        return replies, self._death(r)
                    if wanted(msg):
                        replies[r] = msg
                        pending.discard(r)
                        if grace_on is not None and grace_deadline is None and grace_on(msg):
                            grace_deadline = time.monotonic() + self.settings.asym_grace_s
                elif not self.procs[r].is_alive() or self.procs[r].exitcode is not None:
                    return replies, self._death(r)
        return replies, None

    def _death(self, r: int):
        proc = self.procs[r]
        proc.join(timeout=1.0)
        code = proc.exitcode
        if code is not None and code < 0:
            try:
                how = f"killed by signal {-code} ({signal.Signals(-code).name})"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        said = stacks.tail(self._path(r, "log"))
        return (CRASHED, f"rank {r} died ({how})" + (f"; its output ends: {said}" if said else ""))

"""The controller's side of one world: start its ranks, hand them cases, turn whatever happens into a result.

A world is one process per rank for one (backend, device, world size).  It is started once and reused for every
case until something makes it unusable: a case that outlives its timeout, a rank that dies, an asymmetric raise,
or a failed probe after a case that raised.  Then it is killed (the whole process group of every rank) and the
``Runner`` starts a fresh one for the next case.
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
from ..outcomes import CaseResult, RankOutcome
from . import rank as rank_module

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
    def __init__(self, key: WorldKey, settings: Settings):
        self.key, self.settings = key, settings
        self.procs: list = []
        self.conns: list = []
        self.info: dict = {}
        self.seq = 0
        self.alive = False
        self.probe_id = None      # a small case that passed here: re-run to check the world is still usable
        self._tmp = None

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
                controller_pid=os.getpid(),
                pg_timeout_s=self.settings.pg_timeout_s, env=dict(self.settings.env))
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=rank_module.main, args=(child, cfg), daemon=True, name=f"rank{r}")
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)
        self.alive = True
        replies, problem = self._collect(lambda msg: msg[0] in ("ready", "init_failed"),
                                         self.settings.start_timeout_s, grace_on=None)
        if problem is None:
            failed = {r: m[1] for r, m in replies.items() if m[0] == "init_failed"}
            if failed:
                problem = (outcomes.ERROR, "backend init failed: "
                           + outcomes.join_reasons(failed, self.key.world_size))
        if problem is not None:
            self.kill()
            status, reason = problem
            if status == outcomes.TIMEOUT:
                reason = f"world start: {reason}"
            raise WorldStartError(status, reason)
        self.info = replies[0][1]
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
        for conn in self.conns:
            conn.close()
        self.procs, self.conns = [], []
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def close(self) -> None:
        """Ask the ranks to leave, then make sure they did."""
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
    def run(self, case, timeout_s: float) -> CaseResult:
        """Run one case on every rank; a case that raised (or asked for it) is followed by a probe."""
        if case.real_world_only and self.info.get("capabilities", {}).get("world_model", "real") != "real":
            return CaseResult(outcomes.SKIPPED, case.real_world_only)
        result, ranked = self._run_once(case.id, min(timeout_s, case.timeout_s or timeout_s))
        if not self.alive:
            return result
        if result.status == outcomes.PASSED and case.shape != "large" and not case.fresh_world:
            self.probe_id = case.id
        elif case.fresh_world or any(o.status == "raised" for o in ranked.values()):
            self._probe_after(result)
        return result

    def _run_once(self, case_id: str, timeout_s: float):
        t0 = time.monotonic()
        self.seq += 1
        seq = self.seq
        self._send_all(("case", seq, case_id))
        replies, problem = self._collect(lambda msg: msg[0] == "outcome" and msg[1] == seq,
                                         timeout_s, grace_on=lambda msg: msg[2]["status"] == "raised")
        elapsed = time.monotonic() - t0
        if problem is not None:
            self.kill()
            status, reason = problem
            done = {r: RankOutcome(**m[2]) for r, m in replies.items()}
            if status == outcomes.ERROR and done:   # asymmetric: some raised, the others kept waiting
                raised = {r: o.reason for r, o in done.items() if o.status == "raised"}
                reason = f"asymmetric: {reason}; " + outcomes.join_reasons(raised, self.key.world_size)
            result = outcomes.world_failure(status, reason, elapsed)
            result.ranks = {str(r): o.reason for r, o in done.items() if o.reason}
            return result, done
        ranked = {r: RankOutcome(**m[2]) for r, m in replies.items()}
        result = outcomes.merge(ranked, self.key.world_size)
        result.duration_s = elapsed
        return result, ranked

    def _probe_after(self, result: CaseResult) -> None:
        """Is the world still usable?  Re-run the last small case that passed in it: an operation known to work
        here (a fixed probe op could be the very thing a backend lacks).  If it no longer passes, the case just
        run is to blame and the world is retired.  Before any case passed there is nothing to compare with."""
        if self.probe_id is None:
            return
        probe, _ = self._run_once(self.probe_id, self.settings.probe_timeout_s)
        if probe.status == outcomes.PASSED:
            return
        self.kill()
        if result.status in (outcomes.UNSUPPORTED, outcomes.PASSED):
            result.status = outcomes.ERROR
        result.reason = ((result.reason + "; " if result.reason else "")
                         + f"left the world unusable (re-running {self.probe_id}: {probe.status}: {probe.reason})")

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
                    return replies, (outcomes.ERROR, f"ranks {late} did not return within "
                                                     f"{self.settings.asym_grace_s:g} s of a raise elsewhere")
                return replies, (outcomes.TIMEOUT, f"ranks {late} still running after the {budget_s:g} s limit")
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
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        return (outcomes.CRASHED, f"rank {r} died ({how})")

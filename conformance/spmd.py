"""torchrun (SPMD) mode: this pytest process is one rank; every rank runs the same cases in lockstep.

``torchrun --nproc-per-node N -m pytest conformance/ ...`` starts N pytests.  Each joins the env:// rendezvous,
runs each case in-process with the same rank-side code as a world, and publishes its outcome in the store; every
rank merges all outcomes the same way, and rank 0 writes the report.  The same policy as pytest's worlds decides
what happens around a case (``conformance.policy``); what differs is the transport, and that a world here cannot
be rebuilt: a world that fails its proof blocks the rest of its cases, and a hung rank ends the job: a watchdog
thread hands the case to ``fatal`` (rank 0 records a ``timeout`` and closes the report as partial) and exits the
process, and torchrun tears the rest of the job down.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import warnings
from datetime import timedelta

import torch.distributed as dist

from . import devices, execute, outcomes
from .cases import specs
from .errors import describe_exception
from .outcomes import CaseResult, RankOutcome
from .policy import Policy
from .status import TIMEOUT
from .worlds import rank as rank_module


class SpmdRunner:
    replaceable = False

    def __init__(self, settings, announce, fatal=None, cannot_start=None):
        self.settings = settings
        self.announce = announce
        self.fatal = fatal or (lambda key, case, result: None)
        self.cannot_start = cannot_start or (lambda key, reason: None)
        self.policy = Policy(settings)
        self.rank = int(os.environ["RANK"])
        self.world_size = int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))
        self.infos: dict = {}
        self.broken: dict = {}
        self.key = None
        self.rt = None
        self.seq = 0
        self.cases_run = 0
        self.alive = False
        warnings.simplefilter("ignore")
        store, _, _ = next(dist.rendezvous("env://"))
        self.store = store

    @property
    def world_model(self) -> str:
        return self.rt.world_model if self.rt is not None else "real"

    def run(self, key, case) -> CaseResult:
        return self.policy.run(self, key, case)

    # -- the policy's view: this process is the only world -----------------------------------------------------------
    def blocked_reason(self, key) -> str:
        return self.broken[key]

    def world(self, key, fresh: bool = False):
        if key in self.broken or (fresh and key == self.key):
            return None
        if key != self.key:
            self._switch(key)
        return None if key in self.broken else self

    def run_once(self, case, limit_s: float) -> CaseResult:
        t0 = time.monotonic()
        watchdog = threading.Timer(limit_s, self._hung, args=(self.key, case, t0, limit_s))
        watchdog.daemon = True
        watchdog.start()
        try:
            self.seq += 1
            self.cases_run += 1
            self.rt.seq = self.seq
            mine = execute.run_case(case, specs(tuple(self.settings.plugins))[case.family], self.rt)
            result = outcomes.merge(self._exchange(f"case/{self.seq}", mine), self.world_size)
        finally:
            watchdog.cancel()
        result.duration_s = time.monotonic() - t0
        return result

    def kill(self) -> None:
        """A world that failed its proof cannot be rebuilt under torchrun: its remaining cases are blocked."""
        if self.key is not None:
            self.broken[self.key] = f"world {self.key.label} unusable after a failed proof: torchrun cannot rebuild it"
        self.alive = False

    def _exchange(self, tag: str, mine: RankOutcome) -> dict:
        """Publish this rank's outcome and read everyone's: the store is the only channel that cannot desync."""
        prefix = f"c10d/{self.key.label}/{tag}"
        self.store.set(f"{prefix}/{self.rank}", json.dumps(mine.to_dict()))
        keys = [f"{prefix}/{r}" for r in range(self.world_size)]
        self.store.wait(keys, timedelta(seconds=self.settings.timeout_s))
        return {r: RankOutcome(**json.loads(self.store.get(k))) for r, k in enumerate(keys)}

    def _switch(self, key) -> None:
        self.close()
        t0 = time.monotonic()
        try:
            prefixed = dist.PrefixStore(f"c10d/{key.label}/pg", self.store)
            self.rt, _, info = rank_module.join_world(
                key.backend, key.device, self.rank, self.world_size, prefixed, self.settings.pg_timeout_s,
                self.local_rank, devices.plugin_modules_for(key.backend, list(self.settings.plugins)))
            self.rt.store = dist.PrefixStore(f"c10d/{key.label}/rt", self.store)
        except Exception as exc:
            self.broken[key] = f"world {key.label} could not start (error): {describe_exception(exc)}"
            self.cannot_start(key, self.broken[key])
            return
        self.key, self.alive, self.cases_run = key, True, 0
        self.infos[key] = info
        self.announce(key, time.monotonic() - t0, info)

    def _hung(self, key, case, t0, limit) -> None:
        result = CaseResult(TIMEOUT, f"rank {self.rank} still running after the "
                                     f"{limit:g} s limit (torchrun mode: the job stops here)",
                            duration_s=time.monotonic() - t0)
        try:
            self.fatal(key, case, result)
        finally:
            sys.stderr.write(f"c10d: rank {self.rank}: {case.id} timed out; ending this rank\n")
            sys.stderr.flush()
            os._exit(1)

    def close(self) -> None:
        if self.key is not None and dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:
                pass
        self.key = None

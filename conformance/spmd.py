"""torchrun (SPMD) mode: this pytest process is one rank; every rank runs the same cases in lockstep.

``torchrun --nproc-per-node N -m pytest conformance/ ...`` starts N pytests.  Each joins the env:// rendezvous,
runs each case in-process with the same rank-side code as a world, and publishes its outcome in the store; every
rank merges all outcomes the same way, and rank 0 writes the report.  Nothing can kill a hung rank from outside
here, so a watchdog thread does it: it hands the case to ``fatal`` (rank 0 records a ``timeout`` and closes the
report as partial) and exits the process, and torchrun tears the rest of the job down.
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
from .outcomes import CaseResult, RankOutcome
from .worlds import rank as rank_module


class SpmdRunner:
    def __init__(self, settings, announce, fatal=None):
        self.settings = settings
        self.announce = announce
        self.fatal = fatal or (lambda key, case, result: None)
        self.rank = int(os.environ["RANK"])
        self.world_size = int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))
        self.infos: dict = {}
        self.broken: dict = {}
        self.key = None
        self.rt = None
        self.cases: dict = {}
        self.seq = 0
        self.probe_case = None
        self._last_kinds: set = set()
        warnings.simplefilter("ignore")
        store, _, _ = next(dist.rendezvous("env://"))
        self.store = store

    def run(self, key, case) -> CaseResult:
        if key in self.broken:
            return CaseResult(outcomes.BLOCKED, self.broken[key])
        if key != self.key:
            self._switch(key)
            if key in self.broken:
                return CaseResult(outcomes.BLOCKED, self.broken[key])
        if case.real_world_only and self.rt.simulated:
            return CaseResult(outcomes.SKIPPED, case.real_world_only)
        t0 = time.monotonic()
        limit = min(self.settings.timeout_s, case.timeout_s or self.settings.timeout_s)
        watchdog = threading.Timer(limit, self._hung, args=(key, case, t0, limit))
        watchdog.daemon = True
        watchdog.start()
        try:
            result = self._run_everywhere(case, "case")
            if result.status == outcomes.PASSED and case.shape != "large" and not case.fresh_world:
                self.probe_case = case
            elif (case.fresh_world or "raised" in self._last_kinds) and self.probe_case is not None:
                # Same rule as a world's probe: re-run the last small case that passed here.
                probe = self._run_everywhere(self.probe_case, "probe")
                if probe.status != outcomes.PASSED:
                    if result.status in (outcomes.PASSED, outcomes.UNSUPPORTED):
                        result.status = outcomes.ERROR
                    result.reason += (f"; left the world unusable (re-running {self.probe_case.id}: "
                                      f"{probe.status}: {probe.reason})")
                    self.broken[key] = f"world {key.label} unusable after {case.id}: torchrun cannot rebuild it"
        finally:
            watchdog.cancel()
        result.duration_s = time.monotonic() - t0
        return result

    def _run_everywhere(self, case, tag: str) -> CaseResult:
        self.seq += 1
        self.rt.seq = self.seq
        mine = execute.run_case(case, specs()[case.family], self.rt)
        ranked = self._exchange(f"{tag}/{self.seq}", mine)
        self._last_kinds = {o.status for o in ranked.values()}
        return outcomes.merge(ranked, self.world_size)

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
            self.rt, self.cases, info = rank_module.join_world(
                key.backend, key.device, self.rank, self.world_size, prefixed, self.settings.pg_timeout_s,
                self.local_rank, devices.plugin_modules_for(key.backend, list(self.settings.plugins)))
            self.rt.store = dist.PrefixStore(f"c10d/{key.label}/rt", self.store)
        except Exception as exc:
            self.broken[key] = f"world {key.label} could not start (error): {execute.describe_exception(exc)}"
            return
        self.key = key
        self.probe_case = None
        self.infos[key] = info
        self.announce(key, time.monotonic() - t0, info)

    def _hung(self, key, case, t0, limit) -> None:
        result = CaseResult(outcomes.TIMEOUT, f"rank {self.rank} still running after the "
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

    kill = close

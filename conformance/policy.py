"""How cases run in a world, written once for pytest's worlds and for torchrun mode (which differ only in how a
case reaches the ranks and what can be done with a broken world).

The rules:

* **Simulated worlds.**  A case marked ``real_world_only`` is skipped, with its reason, on a backend that declares
  a simulated world (``pg.fake_semantics``).
* **Isolation.**  After any case that did not pass (``unsupported`` included), and after every error-path case,
  the world must be proven clean before the next case runs in it.  The proof re-runs a known-good case on this
  backend: the last small case of the *same family* that passed (it exercises the same channel, so it would
  consume or trip over what the case left behind; one probe per non-pass keeps a backend that refuses a
  thousand cases affordable).  If nothing of the family has passed yet, no proof is possible: the world is
  retired and the next case starts in a fresh one.  A failed proof blames the case just run ("left the world
  unusable") and retires the world.
* **Victims.**  A case that times out or crashes right after a case that did not pass is run once more, in a
  fresh world.  If it passes there, it was a victim: it gets the fresh result, and the blame goes to the case
  that dirtied the world (amended in the report).
* **Hang budget.**  A timeout says where every rank was stuck (a stack sample).  If that was group creation,
  every later case that needs that group is ``blocked`` without running, naming the case that hung first.
  Otherwise the siblings of the hung case (same collective, dtype and group) run under a short watchdog:
  ``HANG_FACTOR`` times the slowest passing case of that collective here, at least ``HANG_FLOOR_S``, never more
  than the normal limit; each still ends ``timeout`` (or passes) on its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional, Protocol

from .outcomes import CaseResult
from .status import BLOCKED, CRASHED, ERROR, PASSED, SKIPPED, TIMEOUT, UNSUPPORTED

HANG_FLOOR_S = 2.0
HANG_FACTOR = 10.0
GROUP_CREATION = "group creation"


class WorldLike(Protocol):
    """What the policy needs of a world: pytest's process worlds and torchrun mode's in-process one."""
    alive: bool
    world_model: str
    cases_run: int
    replaceable: bool          # False under torchrun: a retired world cannot be rebuilt there

    def run_once(self, case, limit_s: float) -> CaseResult: ...   # kills itself on a timeout, crash or desync
    def kill(self) -> None: ...


class Worlds(Protocol):
    def world(self, key, fresh: bool = False) -> Optional[WorldLike]: ...   # None: it cannot start (blocked)
    def blocked_reason(self, key) -> str: ...


def _sibling(case) -> tuple:
    return (case.collective, case.dtype, case.group)


@dataclass
class _Memory:
    """What the runs of one world key have taught (kept across that key's worlds)."""
    good_by_family: dict = field(default_factory=dict)     # family -> id of a small case that passed
    slowest_pass: dict = field(default_factory=dict)       # collective -> seconds
    hung: dict = field(default_factory=dict)               # sibling key -> id of the case that hung first
    hung_groups: dict = field(default_factory=dict)        # group -> id of the case whose group creation hung
    suspect: Optional[str] = None                          # id of the last case that did not pass, in this world


class Policy:
    def __init__(self, settings):
        self.settings = settings
        self.memory: dict = {}

    def _mem(self, key) -> _Memory:
        return self.memory.setdefault(key, _Memory())

    # -- the limit of one case ------------------------------------------------------------------------------------
    def limit_s(self, key, case) -> tuple[float, str]:
        """The watchdog for this case, and why it is shorter than --timeout (or "")."""
        limit = min(self.settings.timeout_s, case.timeout_s or self.settings.timeout_s)
        first = self._mem(key).hung.get(_sibling(case))
        if first is None:
            return limit, ""
        slowest = self._mem(key).slowest_pass.get(case.collective, 0.0)
        short = min(limit, max(HANG_FLOOR_S, HANG_FACTOR * slowest))
        return short, f" (watchdog shortened: {first} hung first)" if short < limit else ""

    # -- one case -------------------------------------------------------------------------------------------------
    def run(self, worlds: Worlds, key, case) -> CaseResult:
        mem = self._mem(key)
        if case.group and case.group in mem.hung_groups:
            return CaseResult(BLOCKED, f"not run: creating its group ({case.group}) hung in "
                                       f"{mem.hung_groups[case.group]} first")
        world = worlds.world(key)
        if world is None:
            return CaseResult(BLOCKED, worlds.blocked_reason(key))
        if case.real_world_only and world.world_model != "real":
            return CaseResult(SKIPPED, case.real_world_only)
        if world.cases_run == 0:
            mem.suspect = None
        t0 = time.monotonic()
        result = self._attempt(world, key, case)
        if result.status in (TIMEOUT, CRASHED) and mem.suspect is not None:
            result = self._retry_victim(worlds, key, case, result, mem.suspect)
        self._learn(key, case, result)
        if world.alive:
            self._prove_clean(world, key, case, result)
        mem.suspect = None if result.status == PASSED and not case.error else case.id
        result.duration_s = time.monotonic() - t0
        return result

    def _attempt(self, world: WorldLike, key, case) -> CaseResult:
        limit, why = self.limit_s(key, case)
        result = world.run_once(case, limit)
        if result.status == TIMEOUT and why:
            result.reason += why
        return result

    def _retry_victim(self, worlds: Worlds, key, case, first: CaseResult, suspect: str) -> CaseResult:
        fresh = worlds.world(key, fresh=True)
        if fresh is None:
            return first
        retry = self._attempt(fresh, key, case)
        if retry.status not in (PASSED, UNSUPPORTED):
            return first
        retry.reason = (retry.reason + "; " if retry.reason else "") + (
            f"passed in a fresh world after {first.status} in a world {suspect} had left dirty")
        blame = CaseResult(ERROR, f"left the world dirty: {case.id} then ended {first.status} "
                                  f"({first.reason}) and passed in a fresh world")
        retry.amends.append((suspect, blame))
        return retry

    def _learn(self, key, case, result: CaseResult) -> None:
        mem = self._mem(key)
        if result.status == PASSED and not case.error:
            mem.slowest_pass[case.collective] = max(mem.slowest_pass.get(case.collective, 0.0), result.call_s)
            if case.shape != "large" and not case.fresh_world:
                mem.good_by_family[case.family] = case
        elif result.status == TIMEOUT:
            if GROUP_CREATION in result.reason and case.group:
                mem.hung_groups.setdefault(case.group, case.id)
            else:
                mem.hung.setdefault(_sibling(case), case.id)

    def _prove_clean(self, world: WorldLike, key, case, result: CaseResult) -> None:
        """After a non-pass (or an error path), re-run known-good cases; retire the world if none is known."""
        if result.status in (PASSED, SKIPPED) and not case.fresh_world:
            return
        mem = self._mem(key)
        family = mem.good_by_family.get(case.family)
        if family is None:
            if world.replaceable:
                world.kill()      # no proof possible: the next case starts in a fresh world
            return
        check = world.run_once(family, self.settings.probe_timeout_s)
        if check.status == PASSED:
            return
        world.kill()
        if result.status in (UNSUPPORTED, PASSED):
            result.status = ERROR
        result.reason = ((result.reason + "; " if result.reason else "")
                         + f"left the world unusable (re-running {family.id}: {check.status}: {check.reason})")

"""One pytest process's worlds: at most one alive at a time, replaced when a case leaves it unusable.

Cases arrive grouped by world (collection order, and ``xdist_group`` under pytest-xdist), so keeping one world
alive bounds memory to world_size processes while paying each world's start once.  What happens around each case
(proofs, retries, the hang budget) is ``conformance.policy``'s.
"""

from __future__ import annotations

from typing import Callable, Optional

from ..cases.spec import Case
from ..outcomes import CaseResult
from ..policy import Policy
from ..status import TIMEOUT
from .world import Settings, World, WorldKey, WorldStartError

START_ATTEMPTS = 2


class Runner:
    def __init__(self, settings: Settings, announce: Optional[Callable[[WorldKey, float, dict], None]] = None,
                 cannot_start: Optional[Callable[[WorldKey, str], None]] = None):
        self.settings = settings
        self.announce = announce or (lambda key, seconds, info: None)
        self.cannot_start = cannot_start or (lambda key, reason: None)
        self.policy = Policy(settings)
        self.current: Optional[World] = None
        self.broken: dict[WorldKey, str] = {}     # worlds that could not start: why
        self.infos: dict[WorldKey, dict] = {}     # provenance each world reported when it started
        self.starts = 0

    def run(self, key: WorldKey, case: Case) -> CaseResult:
        return self.policy.run(self, key, case)

    # -- the policy's view: worlds by key ----------------------------------------------------------------------------
    def blocked_reason(self, key: WorldKey) -> str:
        return self.broken[key]

    def world(self, key: WorldKey, fresh: bool = False) -> Optional[World]:
        if key in self.broken:
            return None
        if not fresh and self.current is not None and self.current.key == key and self.current.alive:
            return self.current
        self.close()
        last = None
        for _ in range(START_ATTEMPTS):
            world = World(key, self.settings)
            try:
                seconds = world.start()
            except WorldStartError as exc:
                last = exc
                if exc.status == TIMEOUT:
                    break         # a start that hung will hang again: do not pay for it twice
                continue
            self.starts += 1
            self.current = world
            self.infos[key] = world.info
            self.announce(key, seconds, world.info)
            return world
        self.broken[key] = f"world {key.label} could not start ({last.status}): {last.reason}"
        self.cannot_start(key, self.broken[key])
        return None

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None

    def kill(self) -> None:
        if self.current is not None:
            self.current.kill()
            self.current = None

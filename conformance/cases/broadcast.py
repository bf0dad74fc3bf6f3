"""broadcast: every rank ends with the root's tensor; every rank takes a turn as root."""

from __future__ import annotations

from dataclasses import replace

import torch.distributed as dist

from . import common
from .spec import Case, Prepared, RankContext, Spec


class Broadcast(Spec):
    name = "broadcast"

    def cases(self, env):
        roots = [(f"root{r}", (("root", r),)) for r in range(env.world_size)]
        if common.has_kwarg(dist.broadcast, "group_src"):
            roots.append(("group_src", (("root", env.world_size - 1), ("group_src", True))))
        for variant, params in roots:
            for case in common.movement_axes("broadcast", self.name, variants=(variant,)):
                yield replace(case, params=params)

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        root = case.param("root")
        # Non-roots start with their own data, so a backend that writes nothing is caught.
        x = common.movement_tensor(case, rt, rt.rank)
        where = {"group_src": root} if case.param("group_src") else {"src": root}
        return Prepared(
            call=lambda async_op: dist.broadcast(x, async_op=async_op, **where),
            outputs=[x],
            expected=[common.movement_tensor(case, rt, rt.peer(root))],
        )


SPECS = [Broadcast()]

"""broadcast: every rank ends with the root's tensor; every rank takes a turn as root."""

from __future__ import annotations

import torch.distributed as dist

from . import axes, common
from .spec import Case, Prepared, RankContext, Spec


class Broadcast(Spec):
    name = "broadcast"

    def cases(self, env):
        for root in range(env.world_size):
            yield from axes.movement_table("broadcast", f"root{root}", params=dict(root=root))
        yield from axes.movement_table("broadcast", "group_src", params=dict(root=env.world_size - 1, group_src=True),
                                       skip=axes.lacks_kwarg(dist.broadcast, "group_src", "dist.broadcast"))

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

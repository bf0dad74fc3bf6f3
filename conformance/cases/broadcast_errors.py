"""broadcast with a src outside the group: every rank must refuse it (``bad_src``).

Kept apart from broadcast.py (the valid calls) so that family stays a statement of what broadcast delivers.
"""

from __future__ import annotations

import torch.distributed as dist

from . import axes, common
from .spec import Case, Prepared, RankContext, Spec


class BroadcastErrors(Spec):
    name = "broadcast_errors"

    def cases(self, env):
        yield axes.error_case("broadcast", "bad_src", params=dict(src=env.world_size))

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        x = common.movement_tensor(case, rt, rt.rank)
        return Prepared(
            call=lambda async_op: dist.broadcast(x, src=case.param("src"), async_op=async_op),
            outputs=[x],
            expected=[None],
        )


SPECS = [BroadcastErrors()]

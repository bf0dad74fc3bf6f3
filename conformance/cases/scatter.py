"""scatter: rank i ends with the source's ``scatter_list[i]``; only src passes a ``scatter_list``.

Every rank takes a turn as src (every dtype and shape with src = ws-1, a few dtypes with the others and with
``group_src`` where this torch has it).  The src's ``scatter_list[i]`` is its movement data with salt i.
"""

from __future__ import annotations

import torch.distributed as dist

from . import axes, common
from .spec import Case, Prepared, RankContext, Spec


class Scatter(Spec):
    name = "scatter"

    def cases(self, env):
        last = env.world_size - 1
        yield from axes.spread("scatter", f"src{last}", params=dict(src=last))
        for src in range(last):
            yield from axes.variant("scatter", f"src{src}", params=dict(src=src))
        yield from axes.variant("scatter", "group_src", params=dict(src=last, group_src=True),
                                skip=axes.lacks_kwarg(dist.scatter, "group_src", "dist.scatter"))

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        src, me = case.param("src"), rt.rank
        scatter_list = None
        if me == src:
            scatter_list = [common.movement_tensor(case, rt, me, salt=i) for i in range(rt.world_size)]
        where = {"group_src": src} if case.param("group_src") else {"src": src}
        # A simulated non-src rank never sees the src's scatter_list, so it cannot know what it receives.
        expected = None if rt.simulated and me != src else common.movement_tensor(case, rt, rt.peer(src), salt=me)
        out = common.stale(case, rt, unlike=expected)
        return Prepared(
            call=lambda async_op: dist.scatter(out, scatter_list, async_op=async_op, **where),
            outputs=[out],
            expected=[expected],
        )


SPECS = [Scatter()]

"""gather: the destination's ``gather_list[j]`` ends with rank j's tensor; only dst passes a ``gather_list``.

Every rank takes a turn as dst (every dtype and shape with dst = ws-1, a few dtypes with the others and with
``group_dst`` where this torch has it).  ``bad_gather_list``: every rank passes a ``gather_list``, which the
non-dst ranks must not; torch's Python layer refuses it on those ranks only, so the dst is left waiting in a
collective its peers never entered (an asymmetric error no backend can avoid: the finding is torch's).
"""

from __future__ import annotations

import torch.distributed as dist

from . import axes, common
from .spec import Case, Prepared, RankContext, Spec


class Gather(Spec):
    name = "gather"

    def cases(self, env):
        last = env.world_size - 1
        yield from axes.spread("gather", f"dst{last}", params=dict(dst=last))
        for dst in range(last):
            yield from axes.variant("gather", f"dst{dst}", params=dict(dst=dst))
        yield from axes.variant("gather", "group_dst", params=dict(dst=last, group_dst=True),
                                skip=axes.lacks_kwarg(dist.gather, "group_dst", "dist.gather"))
        yield axes.error_case("gather", "bad_gather_list", params=dict(dst=0),
                              skip="torch itself refuses a gather_list on non-destination ranks only, leaving the "
                                   "destination waiting: no backend can pass; kept to document the hazard")

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        dst, ws = case.param("dst"), rt.world_size
        x = common.movement_tensor(case, rt, rt.rank)
        bad = case.error is not None
        expected = [common.movement_tensor(case, rt, rt.peer(j)) for j in range(ws)]
        gather_list = [common.stale(case, rt, unlike=e) for e in expected] if rt.rank == dst or bad else None
        where = {"group_dst": dst} if case.param("group_dst") else {"dst": dst}
        outputs = gather_list if rt.rank == dst else []
        return Prepared(
            call=lambda async_op: dist.gather(x, gather_list, async_op=async_op, **where),
            outputs=outputs,
            expected=expected if outputs else [],
            check_future=bool(outputs),   # a non-dst rank has no outputs for the future to carry
        )


SPECS = [Gather()]

"""Collectives on subgroups: all_reduce (SUM), broadcast and all_gather_into_tensor on groups made by
``dist.new_group(ranks)`` and ``dist.new_subgroups(group_size=...)``, recorded under the public collective name with
the group as the variant (``subgroup_even``, ``subgroup_head``, ``new_subgroups_of1``, ``new_subgroups_of2``).

Members must reduce / receive over the members' data only (expected values use ``rt.peer`` on global ranks).
Ranks outside the group make the same call: torch promises it returns ``None`` at once with a UserWarning and
touches nothing (see ``_groups.outside_call``).  Each group is created once per world (``_groups.get``).

Error paths: ``new_group`` with a duplicate rank or a rank outside the world raises ValueError on every rank.
"""

from __future__ import annotations

import inspect

import torch
import torch.distributed as dist

from . import _groups, axes, common, values
from .spec import Case, Prepared, RankContext, Spec

GROUPS = (("subgroup_even", "even"), ("subgroup_head", "head"),
          ("new_subgroups_of1", "subgroups_of1"), ("new_subgroups_of2", "subgroups_of2"))
COLLECTIVES = ("all_reduce", "broadcast", "all_gather_into_tensor")


class Subgroups(Spec):
    name = "subgroups"

    def cases(self, env):
        for variant, kind in GROUPS:
            on_group = dict(skip=_groups.skip_reason(kind, env.world_size), params=dict(group=kind),
                            group=_groups.KINDS[kind][0])
            for coll in COLLECTIVES:
                op = "SUM" if coll == "all_reduce" else None
                yield from axes.product(coll, variant, tier="arith", ops=(op,), modes=axes.MODES, **on_group)
                yield axes.single(coll, variant, op=op, shape="odd", **on_group)
        yield axes.error_case("new_group", "bad_duplicate", dtype=None, shape=None, skip=_no_duplicate_check())
        yield axes.error_case("new_group", "bad_out_of_range", dtype=None, shape=None)

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        if case.collective == "new_group":
            ranks = [0, 0] if case.variant == "bad_duplicate" else [0, rt.world_size]
            return Prepared(lambda async_op: dist.new_group(ranks), check_future=False)

        # The group is created inside the call (a backend that cannot make it fails the case, not the suite);
        # who is in it is known beforehand.
        kind = case.param("group")
        members = _groups.members(kind, rt.world_size, rt.rank)
        member = rt.rank in members
        handle = lambda: _groups.get(rt, kind).handle
        dtype = values.dtype_of(case.dtype)

        if case.collective == "all_reduce":
            x, _ = common.reduction_tensor(case, rt, rt.rank)
            fn = lambda a: dist.all_reduce(x, op=dist.ReduceOp.SUM, group=handle(), async_op=a)
            outputs = [x]
            if member:
                n = values.numel_of(case.shape, dtype)
                per_member = [values.reduction_values(dtype, "SUM", n, rt.peer(m), rt.world_size)
                              for m in members]
                reduced = _groups.group_view(rt, members).reduce("SUM", per_member, dtype)
                expected = [values.materialize(reduced, case.shape, dtype, rt.device)]
        elif case.collective == "broadcast":
            root = members[-1]                  # a global rank; the group's last member
            x = common.movement_tensor(case, rt, rt.rank)
            fn = lambda a: dist.broadcast(x, src=root, group=handle(), async_op=a)
            outputs = [x]
            if member:
                expected = [common.movement_tensor(case, rt, rt.peer(root))]
        else:
            x = common.movement_tensor(case, rt, rt.rank)
            shape = values.shape_for(case.shape, dtype)
            out = torch.zeros((shape[0] * len(members),) + tuple(shape[1:]), dtype=dtype, device=rt.device)
            fn = lambda a: dist.all_gather_into_tensor(out, x, group=handle(), async_op=a)
            outputs = [out, x]
            if member:
                gathered = torch.cat([common.movement_tensor(case, rt, rt.peer(m)) for m in members])
                expected = [gathered, x.clone()]

        if not member:
            call, after = _groups.outside_call(fn, outputs)
            return Prepared(call, outputs=outputs, expected=[t.clone() for t in outputs], check_future=False,
                            after=after)
        return Prepared(lambda a: fn(a), outputs=outputs, expected=expected, op=case.op)


def _no_duplicate_check():
    """torch's new_group only rejects duplicate ranks in later releases (a Python check, before any backend is
    asked); where it does not, a duplicate has no defined outcome to ask of a backend (gloo waits forever)."""
    c10d = dist.distributed_c10d
    for name in ("new_group", "_new_group_with_tag"):
        try:
            if "duplicate" in inspect.getsource(getattr(c10d, name)):
                return None
        except (AttributeError, OSError, TypeError):
            continue
    return "this torch's new_group does not check for duplicate ranks: nothing defined to ask of a backend"


SPECS = [Subgroups()]

"""Subgroups shared by the families that run on them (``subgroups``, ``p2p``): created once per world, by name.

Every rank runs the same cases in the same order, so creating a group lazily from ``prepare`` keeps the
collective ``new_group`` calls in lockstep; the group is kept in ``rt.cache`` for the rest of the world's life
(a fresh world starts with an empty cache, and every rank of it recreates the groups on first use).

Also here: the two things a rank outside a group must check (the call returns ``None`` / ``-1``, warns, writes
nothing, does not block) and a group-sized view of ``RankContext.reduce``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

import torch
import torch.distributed as dist

from .spec import RankContext

# name -> (description, minimum world size).  The member lists themselves come from ``members``.
KINDS = {
    "even": ("dist.new_group(even ranks)", 1),
    "head": ("dist.new_group(every rank but the last)", 2),
    "tail": ("dist.new_group(every rank but rank 0)", 2),
    "subgroups_of1": ("dist.new_subgroups(group_size=1)", 1),
    "subgroups_of2": ("dist.new_subgroups(group_size=2)", 2),
}


def skip_reason(kind: str, world_size: int) -> Optional[str]:
    """Why the group cannot exist at this world size (decided in the controller), or None."""
    need = KINDS[kind][1]
    if world_size < need:
        return f"{KINDS[kind][0]} needs world size >= {need}"
    if kind == "subgroups_of2" and world_size % 2:
        return "dist.new_subgroups(group_size=2) needs a world size divisible by 2"
    return None


def members(kind: str, world_size: int, rank: int) -> list[int]:
    """Global ranks of the group this rank's call runs on (for new_subgroups: the block holding ``rank``)."""
    if kind == "even":
        return list(range(0, world_size, 2))
    if kind == "head":
        return list(range(world_size - 1))
    if kind == "tail":
        return list(range(1, world_size))
    if kind.startswith("subgroups_of"):
        size = int(kind.removeprefix("subgroups_of"))
        start = rank - rank % size
        return list(range(start, start + size))
    raise ValueError(f"unknown group kind {kind}")


@dataclass
class Group:
    kind: str
    handle: Any                 # what new_group returned on this rank (GroupMember.NON_GROUP_MEMBER outside it)
    members: list[int]          # global ranks, in group-rank order
    member: bool                # is this rank in it

    def group_rank(self, global_rank: int) -> int:
        return self.members.index(global_rank)


def get(rt: RankContext, kind: str) -> Group:
    """The world's group of this kind, created on first use (collectively: every rank calls this in lockstep)."""
    key = f"_groups/{kind}"
    group = rt.cache.get(key)
    if group is None:
        mine = members(kind, rt.world_size, rt.rank)
        if kind.startswith("subgroups_of"):
            size = int(kind.removeprefix("subgroups_of"))
            handle, _all = dist.new_subgroups(group_size=size)
        else:
            handle = dist.new_group(mine)
        group = Group(kind, handle, mine, rt.rank in mine)
        rt.cache[key] = group
    return group


def group_view(rt: RankContext, group_members: list[int]) -> RankContext:
    """``rt`` resized to the group, for ``reduce`` over the members' data only.

    Only ``reduce`` may be used on the view (its ``copy`` model returns entry ``rank`` of the list, which must be the
    group rank); ``peer`` stays a question about *global* ranks and is asked of ``rt`` itself.
    """
    return replace(rt, rank=group_members.index(rt.rank), world_size=len(group_members), cache={})


def outside_call(fn: Callable[[], Any], untouched: list[torch.Tensor], none_value: Any = None):
    """Wrap a call made on a rank outside the group.

    torch promises such a call returns at once with ``None`` (``-1`` for ``recv``), warns (a UserWarning naming the
    rank) and touches no tensor.  Returns ``(call, after)``: ``call(async_op)`` makes the call and returns what the
    harness can wait on; ``after()`` reports a broken promise.

    The harness judges ``async_op=True`` returning ``None`` a violation, which is right for members and wrong here:
    outside the group ``None`` *is* the contract.  So ``call`` hands the harness an already completed Future (set
    ``check_future=False`` on the Prepared) and ``after`` checks the real return value.
    """
    seen: dict = {}
    before = [t.clone() for t in untouched]

    def call(async_op):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            seen["ret"] = fn(async_op)
        seen["warned"] = any(issubclass(w.category, UserWarning) and "does not belong" in str(w.message)
                             for w in caught)
        if async_op:
            done = torch.futures.Future()
            done.set_result(None)
            return done
        return None

    def after():
        if "ret" not in seen:
            return "the call was not made"
        ret = seen["ret"]
        if not (ret is none_value or (type(ret) is int and ret == none_value)):
            return f"outside the group: returned {ret!r}, expected {none_value!r}"
        for i, (t, b) in enumerate(zip(untouched, before)):
            if not same_bits(t, b):
                return f"outside the group: tensor {i} was written"
        if not seen["warned"]:
            return "outside the group: no UserWarning that the rank does not belong to the group"
        return None

    return call, after


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.numel() == 0:
        return a.shape == b.shape
    return torch.equal(a.detach().cpu().contiguous().reshape(-1).view(torch.uint8),
                       b.detach().cpu().contiguous().reshape(-1).view(torch.uint8))

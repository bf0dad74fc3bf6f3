"""Object collectives (pickle-based, blocking, no async_op): broadcast_object_list, all_gather_object,
gather_object, scatter_object_list, send_object_list/recv_object_list.

Outputs are Python objects, so the comparison is ``Prepared.after`` (``==``) and ``outputs``/``expected`` stay
empty.  Objects identify their rank (and, for scatter, the destination): dicts, lists, ints, strings, one of them
longer than 1 KiB.  Every rank takes a turn as root (at most 4 roots).

Expected objects come from ``rt.peer`` like tensors do.  In a simulated world (fakepg) a rank that only receives
cannot get bytes it was never sent: torch sizes its receive buffers from an uninitialised tensor the backend was
supposed to fill, so ``broadcast_object_list`` / ``scatter_object_list`` on non-sources and ``recv_object_list``
fail or unpickle garbage there.  fakepg documents that as a limitation, not as a defined result, so the oracle
keeps the value a world of this rank's data implies (for recv: nothing derivable, only the returned sender is
checked) and the mismatch stays visible.

That failure mode allocates whatever byte count the uninitialised sizes held (seen: 34 GB), so every call runs
under a cap on the rank's address space (``_bounded_memory``): a garbage size fails fast with an allocation error
instead of exhausting the machine.
"""

from __future__ import annotations

import contextlib
import functools

import torch.distributed as dist

from . import axes
from .spec import Case, Prepared, RankContext, Spec

MAX_ROOTS = 4
# torch sizes the receiving buffers from a tensor only the sender fills; a simulated world (one process per
# simulated rank, nothing received) can only hand back garbage sizes and bytes to unpickle.
UNPICKLES_PEER_BYTES = "not meaningful in a simulated world: receivers would unpickle bytes only another rank has"
HEADROOM = 4 << 30     # address space an object collective may add to the rank (bytes)


@contextlib.contextmanager
def _bounded_memory():
    """Cap the process's address space at its current size plus HEADROOM for the duration, then restore it."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm") as f:
            vm = int(f.read().split()[0]) * resource.getpagesize()
    except (ImportError, OSError, ValueError):
        yield
        return
    cap = vm + HEADROOM
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    if soft != resource.RLIM_INFINITY and soft <= cap:
        yield
        return
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _bounded(call):
    @functools.wraps(call)
    def run(async_op):
        with _bounded_memory():
            return call(async_op)
    return run


def obj(rank: int, k: int = 0):
    """An object that names its rank (and a slot k)."""
    return {"rank": rank, "name": f"rank{rank}", "items": [rank, -rank - 1, k, "x" * (rank + 1)],
            "nested": {"k": k, "pair": (rank, k), "none": None}}


def objects(rank: int) -> list:
    return [obj(rank), f"str-{rank}", rank * 1000 + 7, ["long", "y" * (1500 + rank)]]


def scattered(src: int, dst: int):
    return {"from": src, "to": dst, "payload": [src, dst, f"{src}->{dst}"]}


def _diff(what: str, got, want):
    if got == want:
        return None
    g, w = repr(got), repr(want)
    return f"{what}: got {g[:160]}{'...' if len(g) > 160 else ''}, expected {w[:160]}{'...' if len(w) > 160 else ''}"


class ObjectCollectives(Spec):
    name = "object_collectives"

    def cases(self, env):
        ws = env.world_size
        pickled = dict(needs=("numpy",))     # torch turns objects into bytes through tensor.numpy()
        for coll in ("broadcast_object_list", "gather_object", "scatter_object_list"):
            for r in range(min(ws, MAX_ROOTS)):
                yield axes.bare(coll, f"root{r}", params=dict(root=r), **pickled,
                                real_world_only=None if coll == "gather_object" else UNPICKLES_PEER_BYTES)
        yield axes.bare("all_gather_object", **pickled)
        no_peer = "point-to-point needs a peer: world size 1" if ws < 2 else None
        yield axes.bare("send_object_list", skip=no_peer, real_world_only=UNPICKLES_PEER_BYTES, **pickled)
        no_batch = (axes.lacks_kwarg(dist.send_object_list, "use_batch", "dist.send_object_list")
                    or axes.lacks_kwarg(dist.recv_object_list, "use_batch", "dist.recv_object_list"))
        yield axes.bare("send_object_list", "use_batch", skip=no_peer or no_batch,
                        real_world_only=UNPICKLES_PEER_BYTES, **pickled)

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        prep = getattr(self, "_" + case.collective)(case, rt)
        if rt.device.type == "cpu":
            # Only on cpu: accelerator runtimes reserve large virtual ranges, and an address-space cap there
            # could make the device's own allocations fail.
            prep.call = _bounded(prep.call)
        return prep

    def _broadcast_object_list(self, case, rt):
        root = case.param("root")
        mine = objects(rt.rank) if rt.rank == root else [None] * len(objects(root))
        want = objects(rt.peer(root))

        def call(async_op):
            return dist.broadcast_object_list(mine, src=root)

        return Prepared(call, check_future=False, after=lambda: _diff("object_list", mine, want))

    def _all_gather_object(self, case, rt):
        out = [None] * rt.world_size
        want = [obj(rt.peer(j), k=rt.peer(j)) for j in range(rt.world_size)]

        def call(async_op):
            return dist.all_gather_object(out, obj(rt.rank, k=rt.rank))

        return Prepared(call, check_future=False, after=lambda: _diff("object_list", out, want))

    def _gather_object(self, case, rt):
        root = case.param("root")
        out = [None] * rt.world_size if rt.rank == root else None
        want = [obj(rt.peer(j), k=rt.peer(j)) for j in range(rt.world_size)]

        def call(async_op):
            return dist.gather_object(obj(rt.rank, k=rt.rank), out, dst=root)

        def after():
            return _diff("object_gather_list", out, want) if rt.rank == root else None

        return Prepared(call, check_future=False, after=after)

    def _scatter_object_list(self, case, rt):
        root = case.param("root")
        inp = [scattered(rt.rank, j) for j in range(rt.world_size)] if rt.rank == root else None
        out = [None]
        want = [scattered(rt.peer(root), rt.rank)]

        def call(async_op):
            return dist.scatter_object_list(out, inp, src=root)

        return Prepared(call, check_future=False, after=lambda: _diff("scatter_object_output_list", out, want))

    def _send_object_list(self, case, rt):
        """A ring: rank r sends its objects to r+1 and receives r-1's; even ranks send first."""
        ws = rt.world_size
        nxt, prv = (rt.rank + 1) % ws, (rt.rank - 1) % ws
        kw = {"use_batch": True} if case.variant == "use_batch" else {}
        mine = objects(rt.rank)
        sent = objects(rt.rank)
        box = [None] * len(mine)
        got = {}

        def call(async_op):
            if rt.rank % 2 == 0:
                dist.send_object_list(sent, dst=nxt, **kw)
                got["src"] = dist.recv_object_list(box, src=prv, **kw)
            else:
                got["src"] = dist.recv_object_list(box, src=prv, **kw)
                dist.send_object_list(sent, dst=nxt, **kw)
            return None

        def after():
            if got.get("src") != prv:
                return f"recv_object_list returned {got.get('src')!r}, expected the sender's rank {prv}"
            if sent != mine:
                return _diff("send_object_list modified its object_list", sent, mine)
            if rt.simulated:
                return None   # nobody sent anything: what the receiver holds is not derivable
            return _diff("received object_list", box, objects(rt.peer(prv)))

        return Prepared(call, check_future=False, after=after)


SPECS = [ObjectCollectives()]

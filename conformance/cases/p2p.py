"""Point-to-point: send/recv, isend/irecv, recv from any source, batch_isend_irecv, tags, group ranks; one spec
per pattern, on the helpers below.

The pattern is a ring: rank r sends to r+1 and receives from r-1.  Blocking send/recv cannot deadlock because even
ranks send first and odd ranks receive first.  Each receive buffer starts with a pattern that differs from the
expected message in every element, so a backend that delivers nothing is caught; each send buffer is an output
too (a send must not write into it).

Async cases post every isend/irecv, wait all but the last one themselves and hand the last Work to the harness
(which waits it once and checks ``is_completed``).  Every Work is waited exactly once: gloo's p2p ``wait()`` is not
idempotent (a second wait re-waits and times out).  No future checks: torch documents ``get_future`` as
unsupported for p2p.

Simulated worlds (fakepg): nobody sends, so no receive buffer has a defined value; expected is ``None`` there.
The calls must still complete, leave the send buffers intact and report a valid sender.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from . import _groups, axes, common
from .spec import Case, Prepared, RankContext, Spec

TAGS = ((10, "next"), (11, "next"), (20, "prev"), (21, "prev"))   # (tag, direction of the send)
NO_PEER = "point-to-point needs a peer: world size 1"


def _no_peer(env):
    return NO_PEER if env.world_size < 2 else None


def _ring(rt: RankContext) -> tuple[int, int]:
    return (rt.rank + 1) % rt.world_size, (rt.rank - 1) % rt.world_size


def _payload(case: Case, rt: RankContext, sender: int, salt: int = 0) -> torch.Tensor:
    return common.movement_tensor(case, rt, sender, salt)


def _recv_buffer(case: Case, rt: RankContext, sender: int, salt: int = 0) -> torch.Tensor:
    # The sender's pattern one salt on: every element's palette index moves by 3, so every element differs from the
    # message (palettes have 2, 15, 16 or 19 distinct entries).
    return common.movement_tensor(case, rt, sender, salt + 1)


def _expected_recv(case: Case, rt: RankContext, sender: int, salt: int = 0):
    # A simulated world has no sender: what a receive buffer holds afterwards is not derivable (fakepg leaves it).
    return None if rt.simulated else common.movement_tensor(case, rt, rt.peer(sender), salt)


def _exchange(case: Case, rt: RankContext, ring: "_Ring", after=None, sender=None) -> Prepared:
    """A ring exchange's Prepared: the receive buffer gets the sender's payload, the send buffer stays intact."""
    sender = ring.prv if sender is None else sender
    return Prepared(ring, outputs=[ring.inb, ring.out], expected=[_expected_recv(case, rt, sender), ring.out.clone()],
                    check_future=False, after=after)


class _Ring:
    """This rank's send and receive buffers for a ring exchange; ``call(async_op)`` is set by the spec."""

    def __init__(self, case: Case, rt: RankContext, body):
        self.nxt, self.prv = _ring(rt)
        self.out = _payload(case, rt, rt.rank)
        self.inb = _recv_buffer(case, rt, self.prv)
        self.body = body

    def __call__(self, async_op):
        return self.body(self, async_op)


@dataclass
class _Waits:
    """Works the call waits itself (each once); the last posted one goes to the harness."""
    problems: list

    def wait_all(self, works) -> None:
        for i, work in enumerate(works):
            if work is None:
                self.problems.append(f"work {i} is None")
                continue
            work.wait()
            if not work.is_completed():
                self.problems.append(f"work {i}: is_completed() is False after wait()")

    def after(self):
        return "; ".join(self.problems) or None


def _check_sender(rt: RankContext, got, prv: int, what: str):
    if rt.simulated:
        # Nobody sent anything; the sender a simulated backend names must at least be a valid peer.
        if not isinstance(got, int) or not (0 <= got < rt.world_size) or got == rt.rank:
            return f"{what} {got!r}: not a valid peer rank of a {rt.world_size}-rank world"
        return None
    if got != prv:
        return f"{what} {got!r}, expected the sender's global rank {prv}"
    return None


def _every_dtype_and_shape(collective: str, mode: str, **fields):
    """Every dtype on one shape; the transport tier on the other shapes (bytes are bytes to a p2p transport)."""
    yield from axes.product(collective, modes=(mode,), **fields)
    yield from axes.product(collective, tier="transport", modes=(mode,),
                            shapes=[s for s in axes.SHAPES if s != "small"] + ["large"], **fields)


def _has_group_peer() -> bool:
    return axes.has_kwarg(dist.send, "group_dst") and axes.has_kwarg(dist.recv, "group_src")


# -- blocking send/recv ----------------------------------------------------------------------------------------------

class SendRecv(Spec):
    """send/recv with global ranks (``default``) or group ranks of the world group (``group_dst``)."""
    name = "p2p.send_recv"

    def cases(self, env):
        yield from _every_dtype_and_shape("send", "sync", skip=_no_peer(env))
        no_group_peer = None if _has_group_peer() else "dist.send/recv have no group_dst/group_src in this torch"
        yield from axes.sampled("send", "group_dst", count=2, skip=_no_peer(env) or no_group_peer)

    def prepare(self, case, rt):
        by_group = case.variant == "group_dst"    # the WORLD group: group ranks are global ranks
        got = {}

        def body(ring, async_op):
            send = (lambda: dist.send(ring.out, group_dst=ring.nxt)) if by_group else \
                (lambda: dist.send(ring.out, dst=ring.nxt))
            recv = (lambda: dist.recv(ring.inb, group_src=ring.prv)) if by_group else \
                (lambda: dist.recv(ring.inb, src=ring.prv))
            if rt.rank % 2 == 0:
                send()
                got["src"] = recv()
            else:
                got["src"] = recv()
                send()
            return None

        ring = _Ring(case, rt, body)
        return _exchange(case, rt, ring, after=lambda: None if got.get("src") == ring.prv else
                         f"recv returned {got.get('src')!r}, expected the sender's global rank {ring.prv}")


class RecvAnySource(Spec):
    """recv without src: from any source; returns the sender's rank.  Every rank posts its send first (isend) and
    then receives, so a backend that refuses any-source receives refuses on every rank alike (a clean
    ``unsupported``) instead of leaving a blocking sender waiting for a peer that refused."""
    name = "p2p.recv_any_source"

    def cases(self, env):
        yield from axes.sampled("recv", "any_source", skip=_no_peer(env))

    def prepare(self, case, rt):
        got = {}

        def body(ring, async_op):
            send = dist.isend(ring.out, dst=ring.nxt)
            got["src"] = dist.recv(ring.inb)
            send.wait()
            return None

        ring = _Ring(case, rt, body)
        return _exchange(case, rt, ring, after=lambda: _check_sender(rt, got.get("src"), ring.prv, "recv returned"))


# -- isend/irecv -----------------------------------------------------------------------------------------------------

class IrecvAnySource(Spec):
    """irecv without src (any source); the Work names the sender (``_source_rank``, what ``recv`` uses)."""
    name = "p2p.irecv_any_source"

    def cases(self, env):
        yield from axes.sampled("irecv", "any_source", mode="async", skip=_no_peer(env))

    def prepare(self, case, rt):
        waits, held = _Waits([]), {}

        def body(ring, async_op):
            send = dist.isend(ring.out, dst=ring.nxt)
            held["recv"] = dist.irecv(ring.inb)
            waits.wait_all([send])
            return held["recv"]

        def after():
            return waits.after() or _check_sender(rt, held["recv"]._source_rank(), ring.prv,
                                                  "Work._source_rank() returned")

        ring = _Ring(case, rt, body)
        return _exchange(case, rt, ring, after=after)


class IsendIrecv(Spec):
    """isend to the next rank, irecv from the previous; ``recv_first`` posts the receive first and hands the *send*
    Work to the harness."""
    name = "p2p.isend_irecv"

    def cases(self, env):
        yield from _every_dtype_and_shape("isend", "async", skip=_no_peer(env))
        yield from axes.sampled("isend", "recv_first", mode="async", skip=_no_peer(env))

    def prepare(self, case, rt):
        waits = _Waits([])

        def body(ring, async_op):
            if case.variant == "recv_first":
                recv = dist.irecv(ring.inb, src=ring.prv)
                send = dist.isend(ring.out, dst=ring.nxt)
                waits.wait_all([recv])
                return send
            send = dist.isend(ring.out, dst=ring.nxt)
            recv = dist.irecv(ring.inb, src=ring.prv)
            waits.wait_all([send])
            return recv

        return _exchange(case, rt, _Ring(case, rt, body), after=waits.after)


class Tags(Spec):
    """Two messages each way between ring neighbours, told apart only by their tags; receives are posted in the
    reverse order of the sends (at world size 2 all four messages travel between the same two ranks)."""
    name = "p2p.tags"

    def cases(self, env):
        yield from axes.sampled("isend", "tags", mode="async", skip=_no_peer(env))

    def prepare(self, case, rt):
        nxt, prv = _ring(rt)
        sends, recvs = [], []
        for k, (tag, direction) in enumerate(TAGS):
            dst, src = (nxt, prv) if direction == "next" else (prv, nxt)
            sends.append((_payload(case, rt, rt.rank, salt=2 * k), dst, tag))
            recvs.append((_recv_buffer(case, rt, src, salt=2 * k), src, tag,
                          _expected_recv(case, rt, src, salt=2 * k)))
        waits = _Waits([])

        def call(async_op):
            works = [dist.isend(t, dst=d, tag=tag) for t, d, tag in sends]
            works += [dist.irecv(t, src=s, tag=tag) for t, s, tag, _ in reversed(recvs)]
            waits.wait_all(works[:-1])
            return works[-1]

        outputs = [r[0] for r in recvs] + [s[0] for s in sends]
        expected = [r[3] for r in recvs] + [s[0].clone() for s in sends]
        return Prepared(call, outputs=outputs, expected=expected, check_future=False, after=waits.after)


# -- batch_isend_irecv -----------------------------------------------------------------------------------------------

class BatchRing(Spec):
    """batch_isend_irecv around the ring (``ring``), or both ways at once (``ring_both``): every send first, then
    the receives, in the same direction order."""
    name = "p2p.batch"

    def cases(self, env):
        yield from axes.product("batch_isend_irecv", "ring", tier="sizes", shapes=("small", "odd", "large"),
                                modes=("async",), skip=_no_peer(env))
        yield from axes.sampled("batch_isend_irecv", "ring_both", mode="async", skip=_no_peer(env))

    def prepare(self, case, rt):
        nxt, prv = _ring(rt)
        ops, outputs, expected = [], [], []
        directions = [("next", 0)] if case.variant == "ring" else [("next", 0), ("prev", 2)]
        for direction, salt in directions:
            t = _payload(case, rt, rt.rank, salt)
            ops.append(dist.P2POp(dist.isend, t, nxt if direction == "next" else prv))
            outputs.append(t)
            expected.append(t.clone())
        for direction, salt in directions:
            src = prv if direction == "next" else nxt
            t = _recv_buffer(case, rt, src, salt)
            ops.append(dist.P2POp(dist.irecv, t, src))
            outputs.append(t)
            expected.append(_expected_recv(case, rt, src, salt))
        waits = _Waits([])

        def call(async_op):
            works = dist.batch_isend_irecv(ops)
            if not works:
                raise AssertionError("batch_isend_irecv returned no Work")
            waits.wait_all(works[:-1])
            return works[-1]

        return Prepared(call, outputs=outputs, expected=expected, check_future=False, after=waits.after)


# -- on a subgroup: peers named by group rank --------------------------------------------------------------------------

class SubgroupP2P(Spec):
    """A ring over the group of every rank but rank 0 (group rank = global rank - 1), peers given as group ranks;
    rank 0 is outside: its recv returns -1, its isend/irecv None, and neither writes anything."""
    name = "p2p.subgroup"

    def cases(self, env):
        skip = (None if _has_group_peer() else "dist.send/recv have no group_dst/group_src in this torch") or (
            "needs a subgroup of >= 2 ranks that leaves a rank out: world size >= 3" if env.world_size < 3 else None)
        on_tail = dict(skip=skip, count=2, group=_groups.KINDS["tail"][0])
        yield from axes.sampled("send", "subgroup_group_dst", **on_tail)
        yield from axes.sampled("isend", "subgroup_group_dst", mode="async", **on_tail)
        yield from axes.sampled("batch_isend_irecv", "subgroup_group_peer", mode="async", **on_tail)

    def prepare(self, case, rt):
        members = _groups.members("tail", rt.world_size, rt.rank)
        handle = lambda: _groups.get(rt, "tail").handle     # noqa: E731  created in the call, in lockstep
        if rt.rank not in members:
            return self._outside(case, rt, handle)
        gs, gr = len(members), members.index(rt.rank)
        g_nxt, g_prv = (gr + 1) % gs, (gr - 1) % gs
        prv = members[g_prv]
        got, waits = {}, _Waits([])

        def body(ring, async_op):
            g = handle()
            if case.collective == "send":
                if gr % 2 == 0:
                    dist.send(ring.out, group=g, group_dst=g_nxt)
                    got["src"] = dist.recv(ring.inb, group=g, group_src=g_prv)
                else:
                    got["src"] = dist.recv(ring.inb, group=g, group_src=g_prv)
                    dist.send(ring.out, group=g, group_dst=g_nxt)
                return None
            if case.collective == "isend":
                send = dist.isend(ring.out, group=g, group_dst=g_nxt)
                recv = dist.irecv(ring.inb, group=g, group_src=g_prv)
                waits.wait_all([send])
                return recv
            works = dist.batch_isend_irecv([dist.P2POp(dist.isend, ring.out, group=g, group_peer=g_nxt),
                                            dist.P2POp(dist.irecv, ring.inb, group=g, group_peer=g_prv)])
            waits.wait_all(works[:-1])
            return works[-1]

        def after():
            if case.collective == "send" and got.get("src") != prv:
                return f"recv returned {got.get('src')!r}, expected the sender's global rank {prv}"
            return waits.after()

        ring = _Ring(case, rt, body)
        ring.inb = _recv_buffer(case, rt, prv)
        return _exchange(case, rt, ring, after=after, sender=prv)

    def _outside(self, case, rt, handle):
        buf = _payload(case, rt, rt.rank)
        if case.collective == "send":          # dist.send itself rejects a non-member group; recv returns -1
            call, after = _groups.outside_call(lambda a: dist.recv(buf, group=handle(), group_src=0),
                                               [buf], none_value=-1)
        elif case.collective == "isend":
            call, after = _groups.outside_call(
                lambda a: dist.isend(buf, group=handle(), group_dst=0) or
                dist.irecv(buf, group=handle(), group_src=0), [buf])
        else:                                  # batch_isend_irecv: only members take part
            def call(a):
                handle()
                return _done_future() if a else None
            after = None
        return Prepared(call, outputs=[buf], expected=[buf.clone()], check_future=False, after=after)


# -- error paths, on every rank ------------------------------------------------------------------------------------

class P2PErrors(Spec):
    """torch itself rejects a send to oneself and a P2POp whose op is not isend/irecv; a source rank outside the
    world is the backend's to reject (torch passes WORLD ranks through unchecked): gloo blocks on it until the
    process-group timeout ("Wait timeout"), so there it ends in ``timeout`` after the case limit."""
    name = "p2p.errors"

    def cases(self, env):
        yield axes.error_case("send", "bad_self")
        yield axes.error_case("recv", "bad_src_range", timeout_s=5.0)
        yield axes.error_case("batch_isend_irecv", "bad_op", mode="async")

    def prepare(self, case, rt):
        t = _payload(case, rt, rt.rank)
        ws = rt.world_size
        if case.variant == "bad_self":          # send to oneself: ValueError (isend allows it, send does not)
            call = lambda a: dist.send(t, dst=rt.rank)   # noqa: E731
        elif case.variant == "bad_src_range":   # a source rank outside the world
            call = lambda a: dist.recv(t, src=ws)        # noqa: E731
        else:                                   # P2POp only accepts dist.isend / dist.irecv
            call = lambda a: dist.batch_isend_irecv([dist.P2POp(dist.broadcast, t, (rt.rank + 1) % ws)])  # noqa
        return Prepared(call, outputs=[t], expected=[t.clone()], check_future=False)


def _done_future():
    fut = torch.futures.Future()
    fut.set_result(None)
    return fut


SPECS = [SendRecv(), RecvAnySource(), IrecvAnySource(), IsendIrecv(), Tags(), BatchRing(), SubgroupP2P(),
         P2PErrors()]

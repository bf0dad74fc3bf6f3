"""Point-to-point: send/recv, isend/irecv, recv from any source, batch_isend_irecv, tags, group ranks.

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

from . import _groups, common, values
from .spec import Case, Prepared, RankContext, Spec

# Every dtype on one shape; a representative set on the other shapes (bytes are bytes to a p2p transport).
REP_DTYPES = ("float32", "bfloat16", "int64", "bool", "complex64")
REP_SHAPES = ("scalar", "empty", "odd", "noncontig", "large")
FEW = (("float32", "small"), ("int64", "odd"), ("bfloat16", "large"))
BATCH_DTYPES = ("float32", "bfloat16", "int64", "bool", "complex128")
BATCH_SHAPES = ("small", "odd", "large")     # large: > 1024 elements (just over 1 MiB)
TAGS = ((10, "next"), (11, "next"), (20, "prev"), (21, "prev"))   # (tag, direction of the send)
NO_PEER = "point-to-point needs a peer: world size 1"


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


class P2P(Spec):
    name = "p2p"

    # -- which cases exist ----------------------------------------------------------------------------------------
    def cases(self, env):
        ws = env.world_size
        no_peer = NO_PEER if ws < 2 else None

        def case(coll, variant, dtype, shape, mode, skip=None, **params):
            return Case(coll, variant, dtype, None, shape, mode, family=self.name, skip=skip or no_peer,
                        params=tuple(sorted(params.items())))

        full = [(d, "small") for d in values.available_dtypes()]
        full += [(d, s) for d in REP_DTYPES for s in REP_SHAPES]
        for d, s in full:
            yield case("send", "default", d, s, "sync")
            yield case("isend", "default", d, s, "async")
        for d, s in FEW:
            yield case("recv", "any_source", d, s, "sync")
            yield case("irecv", "any_source", d, s, "async")
            yield case("isend", "recv_first", d, s, "async")
            yield case("isend", "tags", d, s, "async")
        for d in BATCH_DTYPES:
            for s in BATCH_SHAPES:
                yield case("batch_isend_irecv", "ring", d, s, "async")
        for d, s in FEW:
            yield case("batch_isend_irecv", "ring_both", d, s, "async")

        has_group_peer = common.has_kwarg(dist.send, "group_dst") and common.has_kwarg(dist.recv, "group_src")
        no_group_peer = None if has_group_peer else "dist.send/recv have no group_dst/group_src in this torch"
        sub_skip = no_group_peer or (
            "needs a subgroup of >= 2 ranks that leaves a rank out: world size >= 3" if ws < 3 else None)
        for d, s in FEW[:2]:
            yield case("send", "group_dst", d, s, "sync", skip=no_group_peer)
            yield case("send", "subgroup_group_dst", d, s, "sync", skip=sub_skip)
            yield case("isend", "subgroup_group_dst", d, s, "async", skip=sub_skip)
            yield case("batch_isend_irecv", "subgroup_group_peer", d, s, "async", skip=sub_skip)

        # Error paths, on every rank.  torch itself rejects a send to oneself and a P2POp whose op is not
        # isend/irecv; a source rank outside the world is the backend's to reject (torch passes WORLD ranks
        # through unchecked): gloo blocks on it until the process-group timeout ("Wait timeout"), so there it ends
        # in `timeout` after the case limit.
        yield Case("send", "bad_self", "float32", None, "small", "sync", family=self.name, fresh_world=True)
        yield Case("recv", "bad_src_range", "float32", None, "small", "sync", family=self.name, fresh_world=True,
                   timeout_s=5.0)
        yield Case("batch_isend_irecv", "bad_op", "float32", None, "small", "async", family=self.name,
                   fresh_world=True)

    # -- how a rank calls it --------------------------------------------------------------------------------------
    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        if case.variant.startswith("bad_"):
            return self._bad(case, rt)
        if "subgroup" in case.variant:
            return self._subgroup(case, rt)
        return getattr(self, "_" + case.collective)(case, rt)

    def _send(self, case, rt):
        nxt, prv = _ring(rt)
        out = _payload(case, rt, rt.rank)
        inb = _recv_buffer(case, rt, prv)
        got = {}
        if case.variant == "group_dst":    # the WORLD group: group ranks are global ranks
            send = lambda: dist.send(out, group_dst=nxt)
            recv = lambda: dist.recv(inb, group_src=prv)
        else:
            send = lambda: dist.send(out, dst=nxt)
            recv = lambda: dist.recv(inb, src=prv)

        def call(async_op):
            if rt.rank % 2 == 0:
                send()
                got["src"] = recv()
            else:
                got["src"] = recv()
                send()
            return None

        def after():
            if got.get("src") != prv:
                return f"recv returned {got.get('src')!r}, expected the sender's global rank {prv}"
            return None

        return Prepared(call, outputs=[inb, out], expected=[_expected_recv(case, rt, prv), out.clone()],
                        check_future=False, after=after)

    def _recv(self, case, rt):
        """recv without src: from any source; returns the sender's rank."""
        nxt, prv = _ring(rt)
        out = _payload(case, rt, rt.rank)
        inb = _recv_buffer(case, rt, prv)
        got = {}

        def call(async_op):
            if rt.rank % 2 == 0:
                dist.send(out, dst=nxt)
                got["src"] = dist.recv(inb)
            else:
                got["src"] = dist.recv(inb)
                dist.send(out, dst=nxt)
            return None

        def after():
            return _check_sender(rt, got.get("src"), prv, "recv returned")

        return Prepared(call, outputs=[inb, out], expected=[_expected_recv(case, rt, prv), out.clone()],
                        check_future=False, after=after)

    def _irecv(self, case, rt):
        """irecv without src (any source); the Work names the sender (``_source_rank``, what ``recv`` uses)."""
        nxt, prv = _ring(rt)
        out = _payload(case, rt, rt.rank)
        inb = _recv_buffer(case, rt, prv)
        waits = _Waits([])
        held = {}

        def call(async_op):
            send = dist.isend(out, dst=nxt)
            held["recv"] = dist.irecv(inb)
            waits.wait_all([send])
            return held["recv"]

        def after():
            bad = waits.after()
            if bad:
                return bad
            return _check_sender(rt, held["recv"]._source_rank(), prv, "Work._source_rank() returned")

        return Prepared(call, outputs=[inb, out], expected=[_expected_recv(case, rt, prv), out.clone()],
                        check_future=False, after=after)

    def _isend(self, case, rt):
        if case.variant == "tags":
            return self._tags(case, rt)
        nxt, prv = _ring(rt)
        out = _payload(case, rt, rt.rank)
        inb = _recv_buffer(case, rt, prv)
        waits = _Waits([])

        def call(async_op):
            if case.variant == "recv_first":   # post the receive first and hand the *send* Work to the harness
                recv = dist.irecv(inb, src=prv)
                send = dist.isend(out, dst=nxt)
                waits.wait_all([recv])
                return send
            send = dist.isend(out, dst=nxt)
            recv = dist.irecv(inb, src=prv)
            waits.wait_all([send])
            return recv

        return Prepared(call, outputs=[inb, out], expected=[_expected_recv(case, rt, prv), out.clone()],
                        check_future=False, after=waits.after)

    def _tags(self, case, rt):
        """Two messages each way between ring neighbours, told apart only by their tags; receives are posted in
        the reverse order of the sends (at world size 2 all four messages travel between the same two ranks)."""
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

    def _batch_isend_irecv(self, case, rt):
        nxt, prv = _ring(rt)
        ops, outputs, expected = [], [], []
        directions = [("next", 0)] if case.variant == "ring" else [("next", 0), ("prev", 2)]
        for direction, salt in directions:      # every send first, then the receives, in the same direction order
            dst = nxt if direction == "next" else prv
            t = _payload(case, rt, rt.rank, salt)
            ops.append(dist.P2POp(dist.isend, t, dst))
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

    # -- on a subgroup: peers named by group rank -----------------------------------------------------------------
    def _subgroup(self, case, rt):
        """A ring over the group of every rank but rank 0 (group rank = global rank - 1), peers given as group
        ranks; rank 0 is outside: its recv returns -1, its isend/irecv None, and neither writes anything."""
        members = _groups.members("tail", rt.world_size, rt.rank)
        handle = lambda: _groups.get(rt, "tail").handle     # created in the call, in lockstep on every rank
        if rt.rank not in members:
            buf = _payload(case, rt, rt.rank)
            if case.collective == "send":      # dist.send itself rejects a non-member group; recv returns -1
                call, after = _groups.outside_call(lambda a: dist.recv(buf, group=handle(), group_src=0),
                                                   [buf], none_value=-1)
            elif case.collective == "isend":
                call, after = _groups.outside_call(
                    lambda a: dist.isend(buf, group=handle(), group_dst=0) or
                    dist.irecv(buf, group=handle(), group_src=0), [buf])
            else:                              # batch_isend_irecv: only members take part
                def call(a):
                    handle()
                    return _done_future() if a else None
                after = None
            return Prepared(call, outputs=[buf], expected=[buf.clone()], check_future=False, after=after)

        gs, gr = len(members), members.index(rt.rank)
        g_nxt, g_prv = (gr + 1) % gs, (gr - 1) % gs
        prv = members[g_prv]
        out = _payload(case, rt, rt.rank)
        inb = _recv_buffer(case, rt, prv)
        got, waits = {}, _Waits([])

        def call(async_op):
            g = handle()
            if case.collective == "send":
                if gr % 2 == 0:
                    dist.send(out, group=g, group_dst=g_nxt)
                    got["src"] = dist.recv(inb, group=g, group_src=g_prv)
                else:
                    got["src"] = dist.recv(inb, group=g, group_src=g_prv)
                    dist.send(out, group=g, group_dst=g_nxt)
                return None
            if case.collective == "isend":
                send = dist.isend(out, group=g, group_dst=g_nxt)
                recv = dist.irecv(inb, group=g, group_src=g_prv)
                waits.wait_all([send])
                return recv
            ops = [dist.P2POp(dist.isend, out, group=g, group_peer=g_nxt),
                   dist.P2POp(dist.irecv, inb, group=g, group_peer=g_prv)]
            works = dist.batch_isend_irecv(ops)
            waits.wait_all(works[:-1])
            return works[-1]

        def after():
            if case.collective == "send" and got.get("src") != prv:
                return f"recv returned {got.get('src')!r}, expected the sender's global rank {prv}"
            return waits.after()

        return Prepared(call, outputs=[inb, out], expected=[_expected_recv(case, rt, prv), out.clone()],
                        check_future=False, after=after)

    # -- error paths --------------------------------------------------------------------------------------------
    def _bad(self, case, rt):
        t = _payload(case, rt, rt.rank)
        ws = rt.world_size
        if case.variant == "bad_self":          # send to oneself: ValueError (isend allows it, send does not)
            call = lambda a: dist.send(t, dst=rt.rank)
        elif case.variant == "bad_src_range":   # a source rank outside the world
            call = lambda a: dist.recv(t, src=ws)
        elif case.variant == "bad_op":          # P2POp only accepts dist.isend / dist.irecv
            call = lambda a: dist.batch_isend_irecv([dist.P2POp(dist.broadcast, t, (rt.rank + 1) % ws)])
        else:
            raise ValueError(case.variant)
        return Prepared(call, outputs=[t], expected=[t.clone()], expect_error=True, check_future=False)


def _check_sender(rt: RankContext, got, prv: int, what: str):
    if rt.simulated:
        # Nobody sent anything; the sender a simulated backend names must at least be a valid peer.
        if not isinstance(got, int) or not (0 <= got < rt.world_size) or got == rt.rank:
            return f"{what} {got!r}: not a valid peer rank of a {rt.world_size}-rank world"
        return None
    if got != prv:
        return f"{what} {got!r}, expected the sender's global rank {prv}"
    return None


def _done_future():
    fut = torch.futures.Future()
    fut.set_result(None)
    return fut


SPECS = [P2P()]

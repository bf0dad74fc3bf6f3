"""A test-only backend ("inflight") that is gloo everywhere but refuses receive-from-any-source, cleanly.

Like torchft 0.2.0's ProcessGroupGloo: ``dist.irecv(t)`` without ``src`` raises a refusal on every rank, but a
peer's ``isend`` posted just before stays pending in gloo, so the message is left in flight in the world.  The
next receive from that peer with the same tag takes the stale message (see issue 11).
"""
try:
    from ._gloo_delegate import GlooDelegate, register
except ImportError:             # imported as a top-level module (tests/plugins on sys.path)
    from _gloo_delegate import GlooDelegate, register


class InflightRefusal(GlooDelegate):
    def recv_anysource(self, tensors, tag=0):
        raise RuntimeError(f"recv_anysource is not supported by {self.backend_name}")


register("inflight", InflightRefusal)

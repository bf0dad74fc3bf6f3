"""A test-only backend ("bcastcrash"): gloo, except that every broadcast kills the rank.

The other half of the hang-cost benchmark (issue 11).  Like a backend's fatal check, it prints one line to stderr
and aborts (SIGABRT), so the only record of why is that line.
"""
import os
import sys

try:
    from ._gloo_delegate import GlooDelegate, register
except ImportError:             # imported as a top-level module (tests/plugins on sys.path)
    from _gloo_delegate import GlooDelegate, register


class BroadcastCrash(GlooDelegate):
    def broadcast(self, tensors, opts=None, *args, **kwargs):
        t = tensors[0] if tensors else None
        what = f"{t.dtype} {tuple(t.shape)}" if t is not None else "no tensor"
        root = getattr(opts, "rootRank", "?")
        sys.stderr.write(f"bcastcrash: fatal: broadcast of {what} from root {root} on rank {self.rank()}: "
                         f"transport state corrupted (abort)\n")
        sys.stderr.flush()
        os.abort()


register("bcastcrash", BroadcastCrash)

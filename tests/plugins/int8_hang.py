"""A test-only backend ("int8hang"): gloo, except that every all_reduce of int8 tensors blocks forever.

One half of the hang-cost benchmark (issue 11): a backend whose hang is specific to one collective and dtype.
"""
import threading

import torch

try:
    from ._gloo_delegate import GlooDelegate, register
except ImportError:             # imported as a top-level module (tests/plugins on sys.path)
    from _gloo_delegate import GlooDelegate, register


class Int8Hang(GlooDelegate):
    def allreduce(self, tensors, *args, **kwargs):
        if any(t.dtype == torch.int8 for t in tensors):
            while True:         # a collective that never completes (and costs no CPU)
                threading.Event().wait(3600)
        return super().allreduce(tensors, *args, **kwargs)


register("int8hang", Int8Hang)

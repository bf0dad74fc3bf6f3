"""What differs between torch 2.4 and the newest release, for a Python process group: detected, never
version-checked. Each helper names the release range it papers over (measured on 2.4.1, 2.6, 2.9.1, 2.13,
2.14.1 and 2.15)."""

from __future__ import annotations

import functools
from datetime import timedelta

import torch
import torch.distributed as dist
from torch._C._distributed_c10d import AllreduceOptions, FakeProcessGroup as CppFake

# Modes (TorchDispatchMode, LocalTensorMode, FakeTensorMode) active in this thread, infra modes included.
dispatch_modes = torch._C._len_torch_dispatch_stack

CppFakeOptions = getattr(CppFake, "Options", None)  # torch's own fake options (2.6+), accepted as pg_options

# torch 2.8 gave every *Options an asyncOp and let a backend return None for a synchronous call (dist.* then skips
# wait()). Before, some options already had asyncOp (broadcast, all_gather on 2.4) but dist.* waits on what returns.
SYNC_CALL_MAY_RETURN_NONE = hasattr(AllreduceOptions(), "asyncOp")


def cpp_fake(rank: int, size: int):
    """torch's C++ fake backend for (rank, size): 2.10+ builds it with _create_internal, older ones directly.
    Its constructor is where torch validates the rank on 2.10+, with the error fake users expect."""
    if hasattr(CppFake, "_create_internal"):
        return CppFake._create_internal(rank, size, CppFake.Options())
    return CppFake(rank, size)


def reduce_op_parts(reduce_op):
    """(RedOpType, factor or None). The PREMUL_SUM factor comes from the op's pickle state, readable on every
    release (``ReduceOp.factor`` exists from 2.13 only)."""
    if isinstance(reduce_op, dist.ReduceOp.RedOpType):
        return reduce_op, None
    op = reduce_op.op
    return op, (reduce_op.__getstate__()[1] if op == dist.ReduceOp.PREMUL_SUM else None)


def base_name(new: str, old: str) -> str:
    """The name torch's ProcessGroup binds for a collective renamed in 2.13 (all_gather_single was
    _allgather_base, ...). A subclass defines only that one: defining both would let C++'s fallback from the new
    name to the old call back into the subclass."""
    return new if hasattr(dist.ProcessGroup, new) else old


class _ProbeWork(dist._Work):
    def wait(self, timeout=None):
        return True


class _ProbeGroup(dist.ProcessGroup):
    def allreduce(self, tensors, opts):
        return _ProbeWork()  # dropped by Python at once: only C++ holds it


@functools.lru_cache(maxsize=None)
def cpp_keeps_python_work() -> bool:
    """Does a Work returned from Python to C++ keep its Python half alive? C++ holds it on 2.8.0 and later; on 2.4.1 and
    2.6.0 (measured) the Python object dies, C++'s wait() then lands in the base Work::wait and never returns (funcol
    wait_tensor, DDP). Probed with a bounded wait, so the probe itself cannot hang."""
    work = dist.ProcessGroup.allreduce(_ProbeGroup(0, 1), [torch.zeros(1)], AllreduceOptions())
    try:
        return bool(work.wait(timedelta(milliseconds=1)))
    except RuntimeError:  # "Operation timed out!": the Python wait() was not reached
        return False

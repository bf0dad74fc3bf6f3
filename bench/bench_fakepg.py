"""Per-call cost of fakepg vs PyTorch's built-in "fake" backend, every collective side by side.

The groups live in the same process (fake as the default group, fakepg and floor as groups created with
new_group) so every repetition can interleave them: timing drift on a shared machine hits all alike. World size 8,
1024 float32 per rank, this process is rank 0 (the root of rooted calls), copy semantics. Reports the median
microseconds per call over the repetitions and the ratios fakepg/fake and floor/fake.

The third group, ``floor``, is the least any Python process group can cost: a ``dist.ProcessGroup`` subclass whose
methods only write what torch's fake writes -- no argument checks, no autograd guard, no observers, no faults, a
bare Work -- reached through the same ``dist.*`` calls. fakepg minus floor is what fakepg's own work costs (the
checks of every tensor, dispatch-mode detection, writing below autograd); fake minus floor is what the C++ route
(pybind, the C++ Work and its wait) costs torch's fake.

Run: python bench/bench_fakepg.py [--calls N] [--reps R] [--only NAME]   (under a minute with the defaults)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.testing._internal.distributed.fake_pg  # noqa: E402,F401  (registers "fake" before torch 2.9)

import fakepg  # noqa: E402
from fakepg._compat import SYNC_CALL_MAY_RETURN_NONE, base_name  # noqa: E402
from fakepg._identity import NamedProcessGroup  # noqa: E402
from fakepg._work import FakeWork  # noqa: E402

WS, N = 8, 1024


def _done(opts, outputs=()):
    """No Work for a synchronous call where torch allows it (2.8+), else a completed one."""
    if SYNC_CALL_MAY_RETURN_NONE and not opts.asyncOp:
        return None
    return FakeWork.done(list(outputs))


_SENT = FakeWork.done([])  # one completed Work serves every send, as in fakepg


class FloorGroup(NamedProcessGroup):
    """Each method only writes what torch's fake writes (copy semantics), nothing else."""

    def getBackendName(self):
        return "floor"

    def allreduce(self, tensors, opts=None):
        return _done(opts, tensors)

    allreduce_coalesced = broadcast = reduce = allreduce

    def barrier(self, opts=None):
        return _done(opts)

    def allgather(self, output_lists, tensors, opts=None):
        torch._foreach_copy_(output_lists[0], tensors * len(output_lists[0]))
        return _done(opts)

    gather = allgather

    def allgather_coalesced(self, output_lists, tensors, opts=None):
        torch._foreach_copy_([o for slots in output_lists for o in slots], tensors * len(output_lists))
        return _done(opts)

    def all_gather_single(self, output, input, opts=None):
        torch.cat([input] * self._ws, out=output)
        return _done(opts)

    def scatter(self, tensors, input_lists, opts=None):
        tensors[0].copy_(input_lists[0][self._rank])
        return _done(opts)

    reduce_scatter = scatter

    def reduce_scatter_single(self, output, input, opts=None):
        rows = output.shape[0]
        torch.narrow_copy(input, 0, self._rank * rows, rows, out=output)
        return _done(opts)

    def alltoall(self, outputs, inputs, opts=None):
        torch._foreach_copy_(outputs, inputs)
        return _done(opts)

    def all_to_all_single(self, output, input, output_split_sizes=None, input_split_sizes=None, opts=None):
        output.copy_(input)
        return _done(opts)

    def send(self, tensors, dst, tag=0):
        return _SENT

    def recv(self, tensors, src, tag=0):
        return FakeWork.done(tensors)


for _new, _old in (("all_gather_single", "_allgather_base"), ("reduce_scatter_single", "_reduce_scatter_base"),
                   ("all_to_all_single", "alltoall_base")):  # under the name this torch binds
    setattr(FloorGroup, base_name(_new, _old), getattr(FloorGroup, _new))


def floor_group():
    """A FloorGroup registered as a backend of its own and created with new_group, as fakepg is."""
    def create(opts, pg_options=None):
        group = FloorGroup(opts.group_rank, opts.group_size)
        group._group_name = opts.group_id
        return group
    default_map = dict(dist.Backend.default_device_backend_map)
    dist.Backend.register_backend("floor", create, extended_api=True, devices=["cpu"])
    dist.Backend.default_device_backend_map.update(default_map)  # leave the device defaults alone
    return dist.new_group(backend="floor")


def _either(*names):
    return next(getattr(dist, n) for n in names if hasattr(dist, n))


def cases(group):
    """name -> a zero-argument call on ``group``; every collective dist.* offers on this torch."""
    t, big, out, out_big = torch.ones(N), torch.ones(N * WS), torch.empty(N), torch.empty(N * WS)
    slots, pieces = [torch.empty(N) for _ in range(WS)], [torch.ones(N) for _ in range(WS)]
    ag, rs = _either("all_gather_single", "all_gather_into_tensor"), _either("reduce_scatter_single",
                                                                                "reduce_scatter_tensor")
    g = {"group": group}
    calls = {
        "all_reduce": lambda: dist.all_reduce(t, **g),
        "all_reduce async+wait": lambda: dist.all_reduce(t, async_op=True, **g).wait(),
        "all_reduce_coalesced": lambda: dist.all_reduce_coalesced([t, out], **g),
        "broadcast": lambda: dist.broadcast(t, src=0, **g),
        "reduce": lambda: dist.reduce(t, dst=0, **g),
        "all_gather": lambda: dist.all_gather(slots, t, **g),
        "all_gather_into_tensor": lambda: ag(out_big, t, **g),
        "all_gather_coalesced": lambda: dist.all_gather_coalesced([[s] for s in slots], [t], **g),
        "gather": lambda: dist.gather(t, slots, dst=0, **g),
        "scatter": lambda: dist.scatter(out, pieces, src=0, **g),
        "reduce_scatter": lambda: dist.reduce_scatter(out, pieces, **g),
        "reduce_scatter_tensor": lambda: rs(out, big, **g),
        "all_to_all": lambda: dist.all_to_all(slots, pieces, **g),
        "all_to_all_single": lambda: dist.all_to_all_single(out_big, big, **g),
        "barrier": lambda: dist.barrier(**g),
        "send": lambda: dist.send(t, dst=1, **g),
        "recv": lambda: dist.recv(out, src=1, **g),
    }
    return calls


def time_calls(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def measure(groups, names, calls, reps):
    """{(group, call): median us per call}, each group's calls interleaved with the others', each going first in
    turn, so that drift on a shared machine hits all alike."""
    for c in names:  # warm up
        for g in groups:
            time_calls(groups[g][c], 50)
    samples = {(g, c): [] for g in groups for c in names}
    order = list(groups)
    for rep in range(reps):
        for c in names:
            for g in order[rep % len(order):] + order[:rep % len(order)]:
                samples[(g, c)].append(time_calls(groups[g][c], calls))
    return {key: statistics.median(times) for key, times in samples.items()}


def setup(argv, description):
    """Arguments, one thread, and the default group: torch's fake at world size WS."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--calls", type=int, default=300, help="calls per repetition")
    ap.add_argument("--reps", type=int, default=11, help="interleaved repetitions")
    ap.add_argument("--only", action="append", help="time only these calls (repeatable)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    dist.init_process_group("fake", store=fakepg.FakeStore(), rank=0, world_size=WS)
    return args


def fakepg_group():
    """A fakepg group with default options (copy semantics), created with new_group as a user would."""
    group = dist.new_group(backend="fakepg", pg_options=fakepg.Options())
    assert type(group).__name__ == "FakeProcessGroup", type(group)
    return group


def main(argv=None):
    args = setup(argv, __doc__.splitlines()[0])
    groups = {"fake": cases(dist.group.WORLD), "fakepg": cases(fakepg_group()), "floor": cases(floor_group())}
    names = [c for c in groups["fake"] if not args.only or c in args.only]
    median = measure(groups, names, args.calls, args.reps)

    print(f"torch {torch.__version__}, world size {WS}, {N} x float32, rank 0, "
          f"median of {args.reps} x {args.calls} calls (interleaved)")
    w = max(len(c) for c in names)
    print(f"{'call':<{w}}  {'fake us':>8}  {'fakepg us':>9}  {'floor us':>8}  {'fakepg/fake':>11}  {'floor/fake':>10}")
    worst = 0.0
    for c in names:
        a, b, f = (median[(g, c)] for g in ("fake", "fakepg", "floor"))
        worst = max(worst, b / a)
        print(f"{c:<{w}}  {a:8.2f}  {b:9.2f}  {f:8.2f}  {b / a:10.2f}x  {f / a:9.2f}x")
    print(f"worst ratio {worst:.2f}x (target <= 1.00x)")
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())

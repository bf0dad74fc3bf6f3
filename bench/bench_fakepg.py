"""Per-call cost of fakepg vs PyTorch's built-in "fake" backend, side by side.

Both process groups live in the same process (fake as the default group, fakepg as a
second group created with new_group(backend="fakepg")) so every repetition can
interleave them: timing drift on a shared machine hits both equally. Reports the median
microseconds per call over the repetitions and the ratio fakepg/fake.

Run: python bench/bench_fakepg.py [--calls N] [--reps R]   (< 60 s with the defaults)
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
import torch.testing._internal.distributed.fake_pg  # noqa: E402,F401  (registers "fake")

import fakepg  # noqa: E402

WS = 8


def cases(group):
    t = torch.ones(1024)
    out = torch.empty(1024 * WS)
    ag = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    return {
        "all_reduce (sync)": lambda: dist.all_reduce(t, group=group),
        "all_reduce(async_op=True).wait()": lambda: dist.all_reduce(t, group=group, async_op=True).wait(),
        "all_gather_into_tensor": lambda: ag(out, t, group=group),
        "broadcast": lambda: dist.broadcast(t, src=0, group=group),
    }


def time_calls(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000, help="calls per repetition")
    ap.add_argument("--reps", type=int, default=15, help="interleaved repetitions")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")

    dist.init_process_group("fake", store=fakepg.FakeStore(), rank=0, world_size=WS)
    fake_group = dist.group.WORLD
    fakepg_group = dist.new_group(backend="fakepg", pg_options=fakepg.Options())
    assert type(fakepg_group).__name__ == "FakeProcessGroup", type(fakepg_group)
    backends = {"fake": cases(fake_group), "fakepg": cases(fakepg_group)}

    samples = {(b, c): [] for b in backends for c in backends[b]}
    for fns in backends.values():  # warm up
        for fn in fns.values():
            time_calls(fn, 200)
    for _ in range(args.reps):
        for c in backends["fake"]:
            for b in ("fake", "fakepg") if _ % 2 == 0 else ("fakepg", "fake"):
                samples[(b, c)].append(time_calls(backends[b][c], args.calls))

    print(f"torch {torch.__version__}, world size {WS}, tensor 1024 x float32, "
          f"median of {args.reps} x {args.calls} calls (interleaved)")
    w = max(len(c) for c in backends["fake"])
    print(f"{'call':<{w}}  {'fake us':>8}  {'fakepg us':>9}  {'fakepg/fake':>11}")
    worst = 0.0
    for c in backends["fake"]:
        a = statistics.median(samples[("fake", c)])
        b = statistics.median(samples[("fakepg", c)])
        worst = max(worst, b / a)
        print(f"{c:<{w}}  {a:8.2f}  {b:9.2f}  {b / a:10.2f}x")
    print(f"worst ratio {worst:.2f}x (target <= 1.5x)")
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())

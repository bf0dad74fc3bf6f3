"""What the harness costs, beside PyTorch's own persistent-worker harness, in one run.

Measures, on the machine at hand:
  * world start: forking ranks from the warm fork server and joining the process group (gloo, fakepg);
  * harness overhead per case without pytest (Runner: wall minus time inside the collective);
  * per-case cost through pytest, for our suite and for PyTorch's ``MultiProcContinuousTest`` running the same
    all_reduce checks (both: marginal wall time per extra case between a smaller and a larger run);
  * time from pytest's start to the first result on disk.

    python bench/bench_harness.py [--cases N]

Numbers are ratios and per-case figures from one run on a shared machine: compare them side by side, not
against a fixed threshold.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _env() -> dict:
    env = dict(os.environ)
    env.pop("FAKEPG_OPTIONS", None)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _timed(cmd, cwd=REPO) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"bench: {' '.join(cmd[:6])}... failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return wall


def bench_runner(n_cases: int) -> list[tuple]:
    """World start and per-case overhead, driving the Runner directly (no pytest)."""
    from conformance.cases import Env, catalog
    from conformance.worlds.runner import Runner
    from conformance.worlds.world import Settings, World, WorldKey, warm_up

    warm_up(Settings())
    rows = []
    for backend in ("fakepg", "gloo"):
        for ws in (2, 3):
            key = WorldKey(backend, "cpu", ws)
            starts = []
            for _ in range(3):
                world = World(key, Settings())
                starts.append(world.start())
                world.close()
            cases = [c for c in catalog(Env("cpu", ws, (2, 13))).values()
                     if c.collective == "all_reduce" and c.shape == "small" and c.variant == "default"]
            cases = (cases * (n_cases // len(cases) + 1))[:n_cases]
            runner = Runner(Settings())
            runner.run(key, cases[0])
            t0, inside = time.perf_counter(), 0.0
            for case in cases:
                inside += runner.run(key, case).call_s
            wall = time.perf_counter() - t0
            runner.close()
            rows.append((f"{backend} ws{ws}", statistics.median(starts), wall / len(cases) * 1e3,
                         (wall - inside) / len(cases) * 1e3))
    return rows


def bench_first_result(tmp: str) -> float:
    """Seconds from starting pytest to the first result in the JSON report."""
    report_dir = os.path.join(tmp, "first")
    cmd = [sys.executable, "-m", "pytest", "conformance/", "-q", "-p", "no:cacheprovider", "--backend", "gloo",
           "--world-size", "2", "--report-dir", report_dir, "-k", "ws2-all_reduce-default-float32"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = None
    while proc.poll() is None and first is None:
        for path in glob.glob(os.path.join(report_dir, "*.json")):
            try:
                with open(path) as f:
                    if json.load(f)["results"]:
                        first = time.perf_counter() - t0
            except (OSError, ValueError):
                pass
        time.sleep(0.05)
    proc.wait()
    return first if first is not None else float("nan")


def bench_suite_pytest(tmp: str, backend: str) -> tuple[int, float, float]:
    """(extra cases, ms per case through pytest, ms inside the collective per case), all_reduce at ws 2.

    Marginal cost: the wall time of a run with more cases minus that of a run with fewer, over the difference,
    so interpreter start, imports, world start and report rendering cancel out.
    """
    walls, inside = [], []
    for n, select in enumerate(["ws2-all_reduce-default and small",
                                "ws2-all_reduce-default and (small or odd or noncontig)"]):
        report_dir = os.path.join(tmp, f"suite-{backend}-{n}")
        walls.append(_timed([sys.executable, "-m", "pytest", "conformance/", "-q", "-p", "no:cacheprovider",
                             "--backend", backend, "--world-size", "2", "-k", select, "--report-dir", report_dir]))
        with open(os.path.join(report_dir, f"cpu-{backend}-ws2.json")) as f:
            results = json.load(f)["results"]
        inside.append((len(results), sum(r.get("call_s") or 0.0 for r in results)))
    extra = inside[1][0] - inside[0][0]
    return extra, (walls[1] - walls[0]) / extra * 1e3, (inside[1][1] - inside[0][1]) / extra * 1e3


CONTINUOUS_TEST = '''
import torch
import torch.distributed as dist
from torch.testing._internal.common_distributed import MultiProcContinuousTest
from torch.testing._internal.common_utils import run_tests


class AllReduceTest(MultiProcContinuousTest):
    world_size = 2

    @classmethod
    def backend_str(cls):
        return "gloo"

    @classmethod
    def device_type(cls):
        return "cpu"

{methods}

if __name__ == "__main__":
    run_tests()
'''

METHOD = '''
    def test_all_reduce_{i}(self):
        t = torch.full((2, 3), float(self.rank + 1))
        dist.all_reduce(t)
        self.assertEqual(t, torch.full((2, 3), float(sum(range(1, self.world_size + 1)))))
'''


def bench_continuous(tmp: str, n: int) -> float:
    """ms per test for PyTorch's MultiProcContinuousTest (persistent workers), same check, through pytest;
    marginal cost between a file of n tests and one of 2n."""
    walls = []
    for count in (n, 2 * n):
        path = os.path.join(tmp, f"test_continuous_{count}.py")
        with open(path, "w") as f:
            f.write(CONTINUOUS_TEST.format(methods="".join(METHOD.format(i=i) for i in range(count))))
        walls.append(_timed([sys.executable, "-m", "pytest", path, "-q", "-p", "no:cacheprovider",
                             "-p", "no:c10d_conformance"], cwd=tmp))
    return (walls[1] - walls[0]) / n * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=300, help="cases per measurement (default 300)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        first = bench_first_result(tmp)
        rows = bench_runner(args.cases)
        suite = {b: bench_suite_pytest(tmp, b) for b in ("fakepg", "gloo")}
        try:
            continuous = bench_continuous(tmp, min(args.cases, 100))
        except SystemExit as exc:
            continuous = float("nan")
            print(exc, file=sys.stderr)

    print(f"\nfirst result on disk after pytest starts: {first:.2f} s")
    print("\nharness without pytest (Runner), cpu:")
    print(f"  {'world':12} {'start s':>8} {'ms/case':>8} {'overhead ms/case':>17}")
    for name, start, per_case, overhead in rows:
        print(f"  {name:12} {start:8.3f} {per_case:8.2f} {overhead:17.2f}")
    print("\nthrough pytest, all_reduce cases at ws2 (marginal wall time per extra case):")
    for backend, (n, per_case, inside) in suite.items():
        print(f"  c10d-conformance {backend:7} {n:4d} cases  {per_case:7.2f} ms/case  "
              f"(inside the collective {inside:.3f} ms, overhead {per_case - inside:.2f} ms)")
    print(f"  torch MultiProcContinuousTest gloo  {min(args.cases, 100):4d} tests  {continuous:7.2f} ms/test "
          f"(same all_reduce check, persistent workers)")
    gloo_per_case = suite["gloo"][1]
    if continuous == continuous:
        print(f"\nratio MultiProcContinuousTest / c10d-conformance (gloo): {continuous / gloo_per_case:.1f}x")


if __name__ == "__main__":
    main()

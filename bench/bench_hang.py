"""What a hanging backend costs beside a crashing one, in one run (issue 11).

Two test-only backends from tests/plugins, both gloo but for one fault: ``int8hang`` blocks forever in every int8
all_reduce, ``bcastcrash`` aborts the rank in every broadcast.  Each runs the same slice (the int8 and float32
all_reduce cases and the int8 and float32 broadcast cases, sync and async, every shape) at world size 2 with the
same --timeout.  A hang costs the full timeout once, then a watchdog shortened from the slowest pass of that
collective; a crash costs a world restart.  The ratio hang/crash is the figure to watch: before the hang budget
it was 12.7 (117.9 s against 9.3 s at --timeout 10).

    python bench/bench_hang.py [--timeout 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGINS = os.path.join(REPO, "tests", "plugins")
SLICE = ("ws2-all_reduce-default-int8-SUM or ws2-all_reduce-default-float32-SUM"
         " or ws2-broadcast-root0-int8 or ws2-broadcast-root0-float32")


def run(plugin: str, backend: str, timeout: float) -> tuple[float, dict]:
    env = dict(os.environ)
    env.pop("FAKEPG_OPTIONS", None)
    env["PYTHONPATH"] = os.pathsep.join((PLUGINS, REPO, env.get("PYTHONPATH", "")))
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "pytest", os.path.join(REPO, "conformance"), "-p", "no:cacheprovider", "-q",
               "--plugin", plugin, "--backend", backend, "--world-size", "2", "--timeout", str(timeout),
               "--report-dir", out, "-k", SLICE]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        path = os.path.join(out, f"cpu-{backend}-ws2.json")
        if not os.path.exists(path):
            raise SystemExit(f"bench: {backend} left no report (exit {proc.returncode}):\n{proc.stdout[-2000:]}")
        with open(path) as f:
            counts = json.load(f)["summary"]["counts"]
    return wall, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeout", type=float, default=10.0, help="the suite's --timeout for both runs (s)")
    args = ap.parse_args()
    hang_s, hang = run("int8_hang", "int8hang", args.timeout)
    crash_s, crash = run("broadcast_crash", "bcastcrash", args.timeout)
    print(f"--timeout {args.timeout:g}, world size 2, same slice")
    print(f"{'backend':<12} {'wall s':>8}  counts")
    print(f"{'int8hang':<12} {hang_s:8.1f}  {hang}")
    print(f"{'bcastcrash':<12} {crash_s:8.1f}  {crash}")
    print(f"hang / crash: {hang_s / crash_s:.2f}x")


if __name__ == "__main__":
    main()

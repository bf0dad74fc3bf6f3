"""torchrun mode: every rank runs pytest, in lockstep; rank 0 speaks and writes the report."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from _suite import REPO, read_reports, statuses, suite_env

SELECT = "ws2-all_reduce-default-float32-SUM-small or ws2-broadcast-root1-int64-odd or ws2-barrier-default"
EXPECTED = {
    "all_reduce/default/float32/SUM/small/sync": "passed",
    "all_reduce/default/float32/SUM/small/async": "passed",
    "broadcast/root1/int64/-/odd/sync": "passed",
    "broadcast/root1/int64/-/odd/async": "passed",
    "barrier/default/-/-/-/sync": "passed",
    "barrier/default/-/-/-/async": "passed",
}


def _torchrun(*args) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *args, "-m", "pytest",
            os.path.join(REPO, "conformance"), "-p", "no:cacheprovider", "--backend", "gloo,fakepg", "-k", SELECT]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check(report_dir, out):
    reports = read_reports(report_dir)
    assert set(reports) == {"cpu-gloo-ws2", "cpu-fakepg-ws2"}, out[-3000:]
    for doc in reports.values():
        assert doc["complete"] is True and doc["run"]["launcher"] == "torchrun"
        assert statuses(doc) == EXPECTED
    # Only rank 0 reports: one summary, one final line.
    assert out.count("c10d conformance") == 1, out[-3000:]


def test_torchrun_two_processes_one_node(tmp_path):
    proc = subprocess.run(_torchrun("--nproc-per-node", "2", "--master-port", str(_free_port()))
                          + ["--report-dir", str(tmp_path)], cwd=REPO, env=suite_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _check(tmp_path, proc.stdout)


def test_torchrun_two_agents_as_two_nodes_on_loopback(tmp_path):
    port = str(_free_port())
    agents = [subprocess.Popen(_torchrun("--nnodes", "2", "--node-rank", str(node), "--nproc-per-node", "1",
                                         "--master-addr", "127.0.0.1", "--master-port", port)
                               + ["--report-dir", str(tmp_path)],
                               cwd=REPO, env=suite_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for node in (0, 1)]
    outs = [a.communicate(timeout=300)[0] for a in agents]
    assert [a.returncode for a in agents] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    _check(tmp_path, outs[0] + outs[1])

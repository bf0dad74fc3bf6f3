"""Backends on the simulated accelerator: "hoststaged" (stage to host, gloo, copy back) gives the true values at
world size 2 with a Work that completes honestly, and the conformance suite runs value-checked cases on cpu and
fakedev side by side with fakepg and hoststaged on the device.

Importing fakepg.device changes torch's device registry for the whole process, so the ranks are child processes
(this file run as a script: ``rank_checks()``) and the suite runs as a pytest subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

from _suite import REPO, run_suite, statuses, suite_env

WS = 2


def rank_checks(rank: int, store_path: str) -> dict:
    import torch
    import torch.distributed as dist

    import fakepg.device
    import torch.distributed._functional_collectives as funcol

    B = dist.Backend
    facts = {"default_map": {d: B.default_device_backend_map.get(d) for d in ("cpu", "fakedev")},
             "fakepg_serves": "fakedev" in B.backend_capability["fakepg"]}
    torch.fakedev.set_device(rank)
    dev = torch.device("fakedev", rank)
    dist.init_process_group("hoststaged", store=dist.FileStore(store_path, WS), rank=rank, world_size=WS)
    facts["backend"] = dist.get_backend()

    t = torch.full((2, 3), rank + 1.0, device=dev)
    work = dist.all_reduce(t, async_op=True)
    work.wait()
    value = work.get_future().value()
    facts["all_reduce"] = [str(t.device), t.cpu().flatten().tolist(), work.is_completed(),
                           [str(v.device) for v in value], value[0] is t]

    out = torch.empty(2 * WS, device=dev)
    dist.all_gather_into_tensor(out, torch.full((2,), float(rank), device=dev))
    rs = torch.empty(2, device=dev)
    dist.reduce_scatter_tensor(rs, torch.arange(2.0 * WS, device=dev))
    a2a = torch.empty(WS * 2, device=dev)
    dist.all_to_all_single(a2a, torch.arange(2.0 * WS, device=dev) + 10 * rank)
    b = torch.arange(3, device=dev) * (rank + 1)
    dist.broadcast(b, 1)
    facts["movement"] = [out.cpu().tolist(), rs.cpu().tolist(), a2a.cpu().tolist(), b.cpu().tolist()]

    p2p = torch.zeros(3, device=dev)
    dist.send(p2p + 7, 1) if rank == 0 else dist.recv(p2p, 0)
    facts["p2p"] = p2p.cpu().tolist()

    # gloo refuses PREMUL_SUM: the call raises and the device output is untouched
    keep = torch.full((3,), 5.0, device=dev)
    try:
        dist.all_reduce(keep, op=dist._make_nccl_premul_sum(0.5))
        facts["refusal"] = "accepted"
    except Exception as exc:
        facts["refusal"] = str(exc).splitlines()[0]
    facts["untouched"] = keep.cpu().tolist()

    facts["funcol"] = funcol.all_reduce(torch.ones(2, device=dev), "sum", dist.group.WORLD).cpu().tolist()
    dist.barrier()
    dist.destroy_process_group()
    return facts


@pytest.fixture(scope="module")
def ranks():
    env = suite_env()
    store = os.path.join(tempfile.mkdtemp(prefix="hoststaged-"), "store")
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), str(r), store], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(WS)]
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=600)   # the first import on a machine compiles the extension
        finally:
            if p.poll() is None:
                p.kill()
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    return outs


def test_hoststaged_is_the_devices_default_and_fakepg_serves_it(ranks):
    for facts in ranks:
        assert facts["default_map"] == {"cpu": "gloo", "fakedev": "hoststaged"}
        assert facts["fakepg_serves"] is True
        assert facts["backend"] == "hoststaged"


def test_hoststaged_values_and_work(ranks):
    for rank, facts in enumerate(ranks):
        device = f"fakedev:{rank}"
        assert facts["all_reduce"] == [device, [3.0] * 6, True, [device], True]
        assert facts["movement"] == [[0.0, 0.0, 1.0, 1.0], [4.0 * rank, 4.0 * rank + 2],
                                     [0.0 + 2 * rank, 1.0 + 2 * rank, 10.0 + 2 * rank, 11.0 + 2 * rank],
                                     [0, 2, 4]]
        assert facts["funcol"] == [2.0, 2.0]
        assert "PREMUL_SUM" in facts["refusal"] and facts["untouched"] == [5.0] * 3
    assert ranks[1]["p2p"] == [7.0] * 3


# One small slice per family on both devices: cpu (gloo, fakepg) next to fakedev (hoststaged, fakepg).
SELECT = ("ws2-all_reduce-default-float32-SUM-small or ws2-all_reduce-default-bool-SUM-small-sync"
          " or ws2-broadcast-root1-float32-small or ws2-all_gather_into_tensor-cat-float32-small-sync"
          " or ws2-reduce_scatter_tensor-cat-float32-SUM-small-sync or ws2-all_to_all_single-even-float32-small-sync"
          " or ws2-send-default-float32-small-sync or ws2-funcol.all_reduce-default-float32-SUM-small"
          " or ws2-barrier-default or ws2-work.get_future-value")


def test_suite_runs_on_cpu_and_fakedev_side_by_side(tmp_path):
    proc, reports = run_suite(tmp_path, "--plugin", "fakepg.device", "--device", "cpu,fakedev", "--world-size", "2",
                              "-k", SELECT, timeout=600)
    assert sorted(reports) == ["cpu-fakepg-ws2", "cpu-gloo-ws2", "fakedev-fakepg-ws2", "fakedev-hoststaged-ws2"], \
        proc.stdout[-3000:]
    got = {label: statuses(doc) for label, doc in reports.items()}
    # The device changes no outcome: fakepg behaves on fakedev as on cpu, and hoststaged as gloo does on cpu --
    # including gloo's bool SUM stored as a count, which the copies through the device must carry unchanged.
    assert got["fakedev-fakepg-ws2"] == got["cpu-fakepg-ws2"]
    assert got["fakedev-hoststaged-ws2"] == got["cpu-gloo-ws2"]
    staged = got["fakedev-hoststaged-ws2"]
    assert staged.pop("all_reduce/default/bool/SUM/small/sync") == "failed"
    assert len(staged) >= 10 and set(staged.values()) == {"passed"}, staged
    run = reports["fakedev-hoststaged-ws2"]["run"]
    assert run["device_name"].startswith("fakedev 0") and run["backend_version"].startswith("fakepg")
    advertised = reports["fakedev-hoststaged-ws2"]["capabilities"]["advertised"]
    assert (advertised["device_streams"], advertised["device_events"]) == (False, False)


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    print(json.dumps(rank_checks(int(sys.argv[1]), sys.argv[2])))

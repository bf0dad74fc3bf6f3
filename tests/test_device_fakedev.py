"""The simulated accelerator (fakepg.device): torch reports it present, moves to and from it are explicit, mixing
devices raises as on real hardware, and every op the suite's inputs, oracle and comparisons use runs on it.

Importing fakepg.device renames torch's PrivateUse1 device for the rest of the process, so the checks run in one
child process (this file run as a script, ``probe()`` below) and the tests read what it found.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNT = 3   # not the default (4): the FAKEDEV_DEVICE_COUNT override is part of what is checked


def probe() -> dict:
    import torch

    import fakepg.device
    from conformance import devices
    from conformance.cases import values

    facts: dict = {"name": torch._C._get_privateuse1_backend_name()}
    mod = torch.fakedev
    facts["module"] = torch.get_device_module("fakedev") is mod
    facts["available"], facts["count"] = mod.is_available(), mod.device_count()
    acc = getattr(torch, "accelerator", None)                      # torch 2.6+
    if acc is not None:
        facts["accelerator"] = [str(acc.current_accelerator()), acc.is_available(), acc.device_count()]
    mod.set_device(2)
    facts["current"] = [mod.current_device(), str(torch.empty(1, device="fakedev").device)]
    with mod.device(1):
        facts["in_context"] = mod.current_device()
    facts["after_context"] = mod.current_device()
    mod.synchronize()
    facts["present"] = devices.present_devices()
    facts["features"] = sorted(devices.device_features("fakedev"))
    facts["bad_index"] = _raises(lambda: mod.set_device(COUNT))

    # explicit moves, and nothing implicit
    x = torch.arange(6, dtype=torch.float32)
    d = x.to("fakedev:1")
    facts["moved"] = [str(d.device), str(d.cpu().device), d.is_cpu, torch.equal(d.cpu(), x)]
    facts["mixed_cpu"] = _raises(lambda: d + x)
    facts["mixed_index"] = _raises(lambda: d + x.to("fakedev:0"))
    facts["cpu_scalar_ok"] = str((d * torch.tensor(2.0)).device)
    facts["index_to_index"] = torch.equal(d.to("fakedev:0").cpu(), x)
    raw = torch.tensor([0, 1, 2], dtype=torch.uint8).view(torch.bool)   # a bool byte 2 survives a device copy
    facts["bool_bytes"] = raw.to("fakedev").clone().cpu().view(torch.uint8).tolist()
    facts["streams_refused"] = _raises(lambda: torch.Stream(device="fakedev"))

    # the suite's inputs, oracle and comparisons on the device, against the same on cpu
    dev, bad = torch.device("fakedev", 1), []
    for name in values.available_dtypes():
        dt = values.dtype_of(name)
        for shape in ("scalar", "empty", "small", "odd", "noncontig", "large"):
            try:
                _check_values(values, dt, shape, dev)
            except Exception as exc:   # collected, not raised: one report lists every gap
                bad.append(f"{name}/{shape}: {type(exc).__name__}: {exc}"[:300])
    facts["value_gaps"] = bad
    a = torch.arange(4, device=dev)
    facts["ops"] = [torch.cat([a, a]).cpu().tolist(), list(torch.stack([a, a]).shape),
                    torch.where(a > 1, a, -a).cpu().tolist(), bool(torch.equal(a, a.clone())),
                    a.view(2, 2).t().contiguous().cpu().tolist(), a.as_strided((2,), (2,)).cpu().tolist(),
                    int((a == 3).nonzero()[0])]
    return facts


def _raises(fn) -> str:
    try:
        fn()
    except Exception as exc:
        return str(exc).splitlines()[0]
    return ""


def _check_values(values, dt, shape, dev) -> None:
    import torch

    n = values.numel_of(shape, dt)
    flat = values.movement_values(dt, n, 1)
    on_dev, on_cpu = values.materialize(flat, shape, dt, dev), values.materialize(flat, shape, dt, "cpu")
    assert on_dev.device == dev and on_dev.stride() == on_cpu.stride(), (on_dev.device, on_dev.stride())
    assert values.describe_mismatch(on_dev, on_cpu.to(dev), 0.0) is None
    assert torch.equal(on_dev.contiguous().reshape(-1).view(torch.uint8).cpu(),
                       on_cpu.contiguous().reshape(-1).view(torch.uint8))
    other = values.materialize(values.movement_values(dt, n, 2), shape, dt, dev)
    assert values.describe_mismatch(other, on_cpu.to(dev), 0.0) == values.describe_mismatch(other.cpu(), on_cpu, 0.0)
    reduced = values.reduce_values("MAX" if values.kind(dt) != "complex" else "SUM",
                                   [values.reduction_values(dt, "SUM", n, r, 2) for r in range(2)], dt)
    assert values.describe_mismatch(values.materialize(reduced, shape, dt, dev),
                                    values.materialize(reduced, shape, dt, "cpu").to(dev), 0.0) is None


@pytest.fixture(scope="module")
def facts():
    env = dict(os.environ, FAKEDEV_DEVICE_COUNT=str(COUNT))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)   # the first import on a machine compiles the extension
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_torch_reports_the_device_present(facts):
    assert facts["name"] == "fakedev" and facts["module"]
    assert facts["available"] is True and facts["count"] == COUNT
    if "accelerator" in facts:
        assert facts["accelerator"] == ["fakedev", True, COUNT]
    assert facts["present"] == ["cpu", "fakedev"]


def test_current_device_is_settable_and_used(facts):
    assert facts["current"] == [2, "fakedev:2"]
    assert (facts["in_context"], facts["after_context"]) == (1, 2)
    assert "invalid device index" in facts["bad_index"]


def test_moves_are_explicit_and_mixing_devices_raises(facts):
    assert facts["moved"] == ["fakedev:1", "cpu", False, True]
    assert "same device" in facts["mixed_cpu"] and "cpu" in facts["mixed_cpu"]
    assert "same device" in facts["mixed_index"] and "fakedev:0" in facts["mixed_index"]
    assert facts["cpu_scalar_ok"] == "fakedev:1"      # a 0-dim cpu tensor is a scalar, as on CUDA
    assert facts["index_to_index"] is True


def test_device_copies_move_bytes(facts):
    assert facts["bool_bytes"] == [0, 1, 2]


def test_streams_and_events_are_refused_not_faked(facts):
    assert facts["features"] == []
    assert "doesn't support" in facts["streams_refused"]


def test_the_suites_values_oracle_and_comparisons_run_on_it(facts):
    assert facts["value_gaps"] == []
    assert facts["ops"] == [[0, 1, 2, 3, 0, 1, 2, 3], [2, 4], [0, -1, 2, 3], True, [[0, 2], [1, 3]], [0, 2], 3]


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    print(json.dumps(probe()))

"""Options, the FAKEPG_OPTIONS env var, and every fault kind made observable."""

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist

import fakepg
from fakepg import Fault, Options

WS, RANK = 4, 1
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


AG = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
RS = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor


# --- options and env var -------------------------------------------------------------------


def test_env_var_options(monkeypatch):
    monkeypatch.setenv(fakepg.ENV_VAR, '{"semantics":"uniform","latency_s":0.01,'
                       '"faults":[{"kind":"wrong_value","collective":"all_reduce","dtype":"float32"}]}')
    dist.init_process_group("fakepg", store=fakepg.FakeStore(), rank=0, world_size=2)
    try:
        pg = dist.group.WORLD
        assert pg.fake_semantics == "uniform" and pg.fake_options.latency_s == 0.01
        t = torch.ones(2)
        dist.all_reduce(t)
        assert t.tolist() == [3.0, 2.0]  # SUM x2, then one element changed
        t = torch.ones(2, dtype=torch.float64)
        dist.all_reduce(t)
        assert t.tolist() == [2.0, 2.0]  # the fault selects float32 only
        sub = dist.new_group([0, 1])  # subgroups inherit the world's options
        assert sub.fake_semantics == "uniform"
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(
    "text,match",
    [
        ("{not json", "malformed options JSON"),
        ('{"semantic":"copy"}', "unknown Options field 'semantic'"),
        ('{"semantics":"exact"}', "semantics must be one of"),
        ('{"faults":[{"kind":"explode"}]}', "unknown fault kind 'explode'"),
        ('{"faults":[{"kind":"raise","colective":"x"}]}', "unknown Fault field 'colective'"),
        ('{"faults":[{"kind":"raise","collective":"allreduce"}]}', "unknown fault collective 'allreduce'"),
        ('{"latency_s":-1}', "latency_s"),
        ("[1]", "must be a JSON object"),
    ],
)
def test_malformed_env_var(monkeypatch, text, match):
    monkeypatch.setenv(fakepg.ENV_VAR, text)
    with pytest.raises(ValueError, match=match) as ei:
        Options.from_env()
    assert fakepg.ENV_VAR in str(ei.value) and "\n" not in str(ei.value)
    with pytest.raises(ValueError, match=match):
        dist.init_process_group("fakepg", store=fakepg.FakeStore(), rank=0, world_size=2)
    assert not dist.is_initialized()


def test_options_forms():
    assert Options.from_json('{"faults":[{"kind":"raise","ranks":[0]}]}').faults == [Fault("raise", ranks=[0])]
    assert Options.from_json(Options(semantics="uniform").to_json()) == Options(semantics="uniform")
    assert set(fakepg.FAULT_KINDS) == {
        "raise", "hang", "crash", "wrong_value", "chunk_order", "off_by_one_root", "wrong_op",
        "early_complete", "lying_is_completed", "future_without_tensors", "skip_barrier", "drop_last_coalesced"}


def test_error_on_collective(world):
    world("uniform", error_on_collective=True)
    with pytest.raises(RuntimeError, match=r"FakeProcessGroup collective operation error \(error_on_collective=true\)"):
        dist.all_reduce(torch.ones(1))
    with pytest.raises(RuntimeError, match="collective operation error .* barrier"):
        dist.barrier()
    dist.send(torch.ones(1), dst=2)  # point-to-point is no collective: spared, as by torch's fake


# --- fault kinds ----------------------------------------------------------------------------


def test_raise_before_touching_outputs_and_selectors(world):
    world("uniform", faults=[Fault("raise", collective="all_gather_into_tensor", dtype="float32", message="boom")])
    out = torch.full((8,), -1.0)
    with pytest.raises(RuntimeError, match="fakepg injected fault: boom"):
        AG(out, torch.ones(2))  # all_gather_single is the same collective
    assert out.tolist() == [-1.0] * 8
    AG(torch.zeros(8, dtype=torch.int64), torch.ones(2, dtype=torch.int64))  # other dtype
    dist.all_reduce(torch.ones(1))  # other collective


def test_raise_asymmetric_ranks(world):
    world("uniform", faults=[Fault("raise", ranks=[0])])  # this process is rank 1: unaffected
    dist.all_reduce(torch.ones(1))
    dist.destroy_process_group()
    world("uniform", faults=[Fault("raise", ranks=[0])], rank=0)
    with pytest.raises(RuntimeError, match="injected fault"):
        dist.all_reduce(torch.ones(1))


def test_hang_async_and_sync(world):
    world("uniform", faults=[Fault("hang", collective="all_reduce")])
    w = dist.all_reduce(torch.ones(1), async_op=True)  # async: the call returns
    assert not w.is_completed()
    with pytest.raises(RuntimeError, match="timed out"):
        w.wait(timeout=timedelta(milliseconds=50))
    done = threading.Event()

    def sync_call():
        dist.all_reduce(torch.ones(1))
        done.set()

    th = threading.Thread(target=sync_call, daemon=True)  # sleeps forever; daemon dies with the process
    th.start()
    th.join(0.3)
    assert th.is_alive() and not done.is_set()


def test_crash_kills_the_process():
    code = (
        "import torch, torch.distributed as dist, fakepg\n"
        "dist.init_process_group('fakepg', store=fakepg.FakeStore(), rank=0, world_size=2,"
        " pg_options=fakepg.Options(faults=[fakepg.Fault('crash', collective='barrier')]))\n"
        "dist.all_reduce(torch.ones(1)); print('alive', flush=True)\n"
        "dist.barrier(); print('survived', flush=True)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert p.returncode == 134, p.stderr
    assert "alive" in p.stdout and "survived" not in p.stdout


@pytest.mark.parametrize("sem", ["copy", "uniform"])
def test_wrong_value(world, sem):
    world(sem, faults=[Fault("wrong_value")])
    t = torch.tensor([1.0, 1.0, 1.0])
    dist.all_reduce(t)
    k = WS if sem == "uniform" else 1
    assert t.tolist() == [k + 1.0, k, k]
    b = torch.tensor([True, False])
    dist.all_reduce(b)
    assert b.tolist() == [False, False]
    outs = [torch.zeros(2) for _ in range(WS)]
    dist.all_gather(outs, torch.ones(2))
    assert outs[0].tolist() == [2.0, 1.0] and outs[1].tolist() == [1.0, 1.0]


def test_chunk_order(world):
    world("uniform", faults=[Fault("chunk_order")])  # rank 1 of 4 takes chunk 2 instead of 1
    out = torch.zeros(2)
    RS(out, torch.arange(8.0))
    assert out.tolist() == [16.0, 20.0]  # chunk 2 = [4, 5], x4 (uniform)
    out = torch.zeros(2)
    dist.scatter(out, [torch.full((2,), float(i)) for i in range(WS)], src=RANK)
    assert out.tolist() == [2.0, 2.0]
    out = torch.zeros(8)
    dist.all_to_all_single(out, torch.arange(8.0))
    assert out.tolist() == [4.0, 5.0] * WS
    outs = [torch.zeros(1) for _ in range(WS)]
    dist.all_to_all(outs, [torch.full((1,), float(i)) for i in range(WS)])
    assert all(o.item() == 2.0 for o in outs)


def test_off_by_one_root(world):
    world("uniform", faults=[Fault("off_by_one_root")])  # rank 1
    t = torch.ones(2)
    dist.reduce(t, dst=RANK)
    assert t.tolist() == [1.0, 1.0]  # real dst acts as non-dst: not reduced
    t = torch.ones(2)
    dist.reduce(t, dst=0)
    assert t.tolist() == [4.0, 4.0]  # rank (0+1)%4 acts as dst
    t = torch.ones(2)
    dist.broadcast(t, src=RANK)
    assert t.tolist() == [0.0, 0.0]  # received from a root that does not hold the data
    t = torch.ones(2)
    dist.broadcast(t, src=0)
    assert t.tolist() == [1.0, 1.0]  # this rank wrongly acts as root: keeps its data
    out = torch.full((2,), -1.0)
    dist.scatter(out, [torch.full((2,), float(i)) for i in range(WS)], src=RANK)
    assert out.tolist() == [-1.0, -1.0]
    gl = [torch.zeros(2) for _ in range(WS)]
    dist.gather(torch.ones(2), gl, dst=RANK)
    assert all(g.tolist() == [0.0, 0.0] for g in gl)


@pytest.mark.parametrize("op,expected", [(dist.ReduceOp.SUM, 3.0), (dist.ReduceOp.MAX, 12.0),
                                         (dist.ReduceOp.PRODUCT, 12.0), (dist.ReduceOp.AVG, 12.0)])
def test_wrong_op(world, op, expected):
    world("uniform", faults=[Fault("wrong_op")])
    t = torch.tensor([3.0])
    dist.all_reduce(t, op=op)
    assert t.item() == expected  # right answers: SUM 12, MAX 3, PRODUCT 81, AVG 3
    t = torch.tensor([3.0])
    dist.all_reduce(t, op=dist._make_nccl_premul_sum(2.0))
    assert t.item() == 12.0  # SUM without the factor (right: 24)


def test_early_complete(world):
    world("uniform", faults=[Fault("early_complete")])
    t = torch.ones(2)
    w = dist.all_reduce(t, async_op=True)
    assert w.is_completed() and w.wait()
    assert t.tolist() == [1.0, 1.0]  # stale right after wait()
    assert w.get_future().done()
    time.sleep(0.3)
    assert t.tolist() == [4.0, 4.0]  # written later by a timer thread
    t = torch.ones(2)
    dist.all_reduce(t)  # sync callers see stale data too
    assert t.tolist() == [1.0, 1.0]


def test_lying_is_completed(world):
    world("uniform", faults=[Fault("lying_is_completed")])
    t = torch.ones(1)
    w = dist.all_reduce(t, async_op=True)
    assert w.wait() and t.item() == 4.0
    assert w.is_completed() is False


def test_future_without_tensors(world):
    world("uniform", faults=[Fault("future_without_tensors")])
    w = dist.all_reduce(torch.ones(1), async_op=True)
    assert w.get_future().wait() is None


def test_skip_barrier(world):
    world("uniform", faults=[Fault("skip_barrier")], latency_s=0.3)
    t0 = time.monotonic()
    w = dist.barrier(async_op=True)
    assert w.is_completed()
    dist.barrier()
    assert time.monotonic() - t0 < 0.2
    w = dist.all_reduce(torch.ones(1), async_op=True)
    assert not w.is_completed()  # other collectives keep the latency
    w.wait()


def test_drop_last_coalesced(world):
    world("uniform", faults=[Fault("drop_last_coalesced")])
    a, b = torch.ones(1), torch.ones(1)
    dist.all_reduce_coalesced([a, b])
    assert a.item() == 4.0 and b.item() == 1.0
    outs = [torch.zeros(WS), torch.zeros(WS)]
    with dist._coalescing_manager():
        AG(outs[0], torch.ones(1))
        AG(outs[1], torch.ones(1))
    assert outs[0].tolist() == [1.0] * WS and outs[1].tolist() == [0.0] * WS
    lists = [[torch.zeros(1), torch.zeros(1)] for _ in range(WS)]
    dist.all_gather_coalesced(lists, [torch.ones(1), torch.ones(1)])
    assert all(lst[0].item() == 1.0 and lst[1].item() == 0.0 for lst in lists)
    rs = [torch.zeros(1), torch.zeros(1)]
    with dist._coalescing_manager():
        RS(rs[0], torch.ones(WS))
        RS(rs[1], torch.ones(WS))
    assert rs[0].item() == 4.0 and rs[1].item() == 0.0

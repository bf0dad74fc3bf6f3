"""FakeWork: completion, futures, latency and timeouts (sync and async)."""

import time
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist

import fakepg


def test_completed_work_api(world):
    world("uniform", rank=2)
    t = torch.ones(2)
    w = dist.all_reduce(t, async_op=True)
    assert isinstance(w, fakepg.FakeWork) and isinstance(w, dist._Work)
    assert w.is_completed() and w.wait() and w.wait(timeout=timedelta(seconds=1))
    assert w.is_success() and w.exception() is None
    assert w.result()[0] is t
    assert w.synchronize() is None
    fut = w.get_future()
    assert fut.done() and fut.value()[0] is t and w.get_future() is fut
    with pytest.raises(RuntimeError, match="sourceRank"):
        w._source_rank()


def test_latency_async(world):
    world("uniform", rank=2, latency_s=0.3)
    t = torch.ones(2)
    t0 = time.monotonic()
    w = dist.all_reduce(t, async_op=True)
    assert time.monotonic() - t0 < 0.2  # async returns at once
    assert not w.is_completed()
    assert t.tolist() == [1.0, 1.0]  # output not written before completion
    fut = w.get_future()
    assert not fut.done()
    with pytest.raises(RuntimeError, match="fakepg: Operation timed out!"):
        w.wait(timeout=timedelta(milliseconds=50))
    assert w.wait() is True
    assert time.monotonic() - t0 >= 0.3
    assert w.is_completed() and t.tolist() == [4.0, 4.0]
    assert fut.wait()[0] is t


def test_latency_completes_without_wait(world):
    world(rank=2, latency_s=0.1)
    w = dist.all_reduce(torch.ones(1), async_op=True)
    fut = w.get_future()
    time.sleep(0.25)
    assert fut.done()  # a timer thread completes it for real
    assert w.is_completed()


def test_latency_sync_waits(world):
    world(rank=2, latency_s=0.15)
    t0 = time.monotonic()
    dist.all_reduce(torch.ones(1))
    dist.barrier()
    assert time.monotonic() - t0 >= 0.3


def test_all_reduce_coalesced_async_returns_future(world):
    world(rank=2, latency_s=0.05)
    fut = dist.all_reduce_coalesced([torch.ones(1), torch.ones(2)], async_op=True)
    assert isinstance(fut, torch.futures.Future)
    assert len(fut.wait()) == 2


def test_functional_wait_tensor_with_latency(world):
    import torch.distributed._functional_collectives as fc

    pg = world("uniform", rank=2, latency_s=0.1)
    t0 = time.monotonic()
    y = fc.wait_tensor(fc.all_reduce(torch.ones(2), "sum", pg))  # C++ waits on the Python Work
    assert time.monotonic() - t0 >= 0.1
    assert y.tolist() == [4.0, 4.0]


def test_futures_complete_under_timer_races(world):
    world(rank=2, latency_s=0.002)
    works = [dist.all_reduce(torch.ones(1), async_op=True) for _ in range(100)]
    futs = []
    for i, w in enumerate(works):
        if i % 3 == 0:
            time.sleep(0.0005)
        futs.append(w.get_future())
    for i, w in enumerate(works):
        if i % 2:
            w.wait()
    deadline = time.monotonic() + 5
    while not all(f.done() for f in futs) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(f.done() for f in futs) and all(w.is_completed() for w in works)

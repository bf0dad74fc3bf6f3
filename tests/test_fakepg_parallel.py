"""Real users: functional collectives (eager, make_fx, FakeTensorMode), DTensor, TP, FSDP2, DDP."""

import copy
import inspect

import pytest
import torch
import torch.distributed._functional_collectives as fc
import torch.nn as nn
from torch.distributed.device_mesh import init_device_mesh


WS = 4
# functional collectives and DTensor/FSDP2 names that changed over torch 2.4 .. 2.15
FC_AG = getattr(fc, "all_gather_single", None) or fc.all_gather_tensor
FC_RS = getattr(fc, "reduce_scatter_single", None) or fc.reduce_scatter_tensor


def _dtensor():
    """torch.distributed.tensor (public from 2.5; torch.distributed._tensor before)."""
    try:
        import torch.distributed.tensor as dt

        dt.Replicate
    except (ImportError, AttributeError):
        import torch.distributed._tensor as dt
    return dt


def _fully_shard():
    try:
        from torch.distributed.fsdp import fully_shard
    except ImportError:  # before 2.6
        from torch.distributed._composable.fsdp import fully_shard
    if not hasattr(torch.cpu.current_stream(), "record_event"):
        pytest.skip("FSDP2 on cpu needs torch.cpu.Stream.record_event (torch 2.7+)")
    return fully_shard


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 16)
        self.b = nn.Linear(16, 8)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def test_functional_collectives_eager(world):
    pg = world("uniform")
    assert fc.all_reduce(torch.ones(2), "sum", pg).tolist() == [4.0, 4.0]
    assert fc.all_reduce(torch.ones(2), "avg", pg).tolist() == [1.0, 1.0]
    assert FC_AG(torch.tensor([1.0, 2.0]), 0, pg).tolist() == [1.0, 2.0] * WS
    assert FC_RS(torch.arange(8.0), "sum", 0, pg).tolist() == [8.0, 12.0]
    assert fc.all_to_all_single(torch.arange(8.0), None, None, pg).tolist() == [2.0, 3.0] * WS
    assert fc.broadcast(torch.ones(2), 0, pg).tolist() == [1.0, 1.0]
    outs = fc.all_reduce_coalesced([torch.ones(1), torch.ones(2)], "sum", pg)
    assert [o.tolist() for o in outs] == [[4.0], [4.0, 4.0]]
    outs = fc.all_gather_single_coalesced([torch.ones(1), torch.ones(2)], pg) if hasattr(
        fc, "all_gather_single_coalesced") else fc.all_gather_into_tensor_coalesced([torch.ones(1), torch.ones(2)], pg)
    assert [fc.wait_tensor(o).tolist() for o in outs] == [[1.0] * WS, [1.0] * (2 * WS)]
    y = torch.ops._c10d_functional.all_reduce(torch.ones(2), "sum", pg.group_name)
    assert torch.ops._c10d_functional.wait_tensor(y).tolist() == [4.0, 4.0]


def test_functional_batch_p2p_reaches_the_backend_beneath(world):
    pg = world("uniform")
    if not hasattr(torch.ops._c10d_functional, "batch_p2p_ops"):
        pytest.skip("torch.ops._c10d_functional.batch_p2p_ops is new in torch 2.12")
    # not trampolined for Python process groups: C++ runs it on the group's backend, torch's C++ fake
    buf = torch.full((1,), 7.0)
    outs = torch.ops._c10d_functional.batch_p2p_ops(["isend", "irecv"], [2, 0], [0, 0], [torch.ones(1), buf],
                                                    pg.group_name)
    assert [torch.ops._c10d_functional.wait_tensor(o) for o in outs] and buf.item() == 7.0


def test_functional_collectives_make_fx(world):
    from torch.fx.experimental.proxy_tensor import make_fx

    pg = world("uniform")

    def f(x):
        y = fc.all_reduce(x, "sum", pg)
        return fc.wait_tensor(FC_AG(y, 0, pg)) * 2

    g = make_fx(f)(torch.ones(2))
    assert "_c10d_functional.all_reduce" in g.code and "wait_tensor" in g.code
    assert g(torch.ones(2)).tolist() == [8.0] * (2 * WS)


def test_functional_collectives_fake_tensor_mode(world):
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

    pg = world("uniform")
    with FakeTensorMode():
        x = torch.ones(3)
        y = FC_AG(fc.all_reduce(x, "sum", pg), 0, pg)
        z = FC_RS(torch.ones(8), "sum", 0, pg)
    y = getattr(y, "elem", y)  # torch 2.4 wraps it in an AsyncCollectiveTensor
    assert isinstance(y, FakeTensor) and y.shape == (3 * WS,) and z.shape == (2,)


def test_dtensor_distribute_and_redistribute(world):
    Replicate, Shard, distribute_tensor = _dtensor().Replicate, _dtensor().Shard, _dtensor().distribute_tensor
    world("uniform", rank=0)
    mesh = init_device_mesh("cpu", (WS,))
    x = torch.arange(16.0).reshape(8, 2)
    d = distribute_tensor(x, mesh, [Shard(0)])  # scatter from rank 0 = this rank
    assert d.to_local().tolist() == x[0:2].tolist()
    r = d.redistribute(mesh, [Replicate()])  # all_gather of "my" shard
    assert r.to_local().tolist() == x[0:2].repeat(WS, 1).tolist()
    assert r.shape == (8, 2) and r.placements == (Replicate(),)


def test_dtensor_non_root_rank(world):
    Replicate, Shard, distribute_tensor = _dtensor().Replicate, _dtensor().Shard, _dtensor().distribute_tensor
    world("uniform", rank=1)
    mesh = init_device_mesh("cpu", (WS,))
    x = torch.arange(16.0).reshape(8, 2)
    rep = distribute_tensor(x, mesh, [Replicate()])  # broadcast: my data stays
    s = rep.redistribute(mesh, [Shard(0)])  # local slice, no communication
    assert s.to_local().tolist() == x[2:4].tolist()
    back = s.redistribute(mesh, [Replicate()])
    assert back.to_local().tolist() == x[2:4].repeat(WS, 1).tolist()
    if "src_data_rank" in inspect.signature(distribute_tensor).parameters:  # torch 2.7+
        d = distribute_tensor(x, mesh, [Shard(0)], src_data_rank=None)  # no scatter: local chunk
        assert d.to_local().tolist() == x[2:4].tolist()
    # With the default src_data_rank=0 a non-root's shard comes from scatter and is left
    # unchanged (documented: nothing derivable), so only its shape is defined.
    assert distribute_tensor(x, mesh, [Shard(0)]).to_local().shape == (2, 2)


def test_tensor_parallel_step(world):
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    world("copy", rank=0)
    torch.manual_seed(0)
    mesh = init_device_mesh("cpu", (WS,))
    m = parallelize_module(MLP(), mesh, {"a": ColwiseParallel(), "b": RowwiseParallel()})
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    out = m(torch.randn(3, 8))
    out.sum().backward()
    opt.step()
    assert out.shape == (3, 8) and torch.isfinite(out).all()
    assert m.a.weight.to_local().shape == (16 // WS, 8) and m.a.weight.grad is not None
    assert m.b.weight.to_local().shape == (8, 16 // WS)


def _as_seen_by(ref, rank):
    """The model FSDP2 runs on `rank` of the fake world: every all-gathered parameter is
    this rank's shard replicated (copy of "my data")."""
    eff = copy.deepcopy(ref)
    with torch.no_grad():
        for p in eff.parameters():
            p.copy_(p.chunk(WS)[rank].repeat(WS, *[1] * (p.dim() - 1)))
    return eff


@pytest.mark.parametrize("rank", [0, 1])
def test_fsdp2_training_step(world, rank):
    fully_shard = _fully_shard()
    world("uniform", rank=rank)
    torch.manual_seed(0)
    ref = MLP()
    m = copy.deepcopy(ref)
    mesh = init_device_mesh("cpu", (WS,))
    fully_shard(m.a, mesh=mesh)
    fully_shard(m, mesh=mesh)
    eff = _as_seen_by(ref, rank)
    torch.testing.assert_close(m.a.weight.full_tensor(), eff.a.weight)
    x = torch.randn(3, 8)
    loss = m(x).sum()
    torch.testing.assert_close(loss, eff(x).sum())
    loss.backward()
    eff(x).sum().backward()
    # uniform world: every rank computed the same gradient, so the reduce-scattered
    # (averaged) gradient of this rank's shard is chunk `rank` of the local gradient
    for p, q in zip(m.parameters(), eff.parameters()):
        torch.testing.assert_close(p.grad.to_local(), q.grad.chunk(WS)[rank])
    before = m.a.weight.to_local().clone()
    torch.optim.SGD(m.parameters(), lr=0.1).step()
    assert not torch.equal(before, m.a.weight.to_local())


def test_ddp_step_uses_work_future(world):
    from torch.nn.parallel import DistributedDataParallel as DDP

    world("uniform", rank=2)
    torch.manual_seed(0)
    ref = MLP()
    ddp = DDP(copy.deepcopy(ref))
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    x = torch.randn(5, 8)
    ddp(x).sum().backward()
    ref(x).sum().backward()
    # DDP pre-divides by world size, allreduces via Work.get_future(): in the uniform
    # world the result is exactly the local gradient
    torch.testing.assert_close(ddp.module.a.weight.grad, ref.a.weight.grad)
    opt.step()


def test_ddp_copy_semantics_gradient_is_divided(world):
    from torch.nn.parallel import DistributedDataParallel as DDP

    world("copy", rank=2)
    torch.manual_seed(0)
    ref = MLP()
    ddp = DDP(copy.deepcopy(ref))
    x = torch.randn(5, 8)
    ddp(x).sum().backward()
    ref(x).sum().backward()
    torch.testing.assert_close(ddp.module.a.weight.grad, ref.a.weight.grad / WS)

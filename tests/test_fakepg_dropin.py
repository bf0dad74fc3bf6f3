"""fakepg as a drop-in for torch's own "fake" backend: autograd, dispatch-level observers, LocalTensorMode,
store-less init, torch's FakeProcessGroup.Options, fake's error wording, and the structure that gets there."""

import importlib
import inspect

import pytest
import torch
import torch.distributed as dist
from torch.utils._python_dispatch import TorchDispatchMode

import fakepg
from fakepg import Fault
from fakepg._group import FakeProcessGroup

WS = 4
AG = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
RS = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
CppFake = torch._C._distributed_c10d.FakeProcessGroup


def _use_torch_fake():
    """torch's "fake" backend, registered (before torch 2.9 only this import registers it)."""
    importlib.import_module("torch.testing._internal.distributed.fake_pg")


class Recorder(TorchDispatchMode):
    """A passive observer: records the c10d ops it sees, runs everything."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(f"{func.namespace}.{func.__name__}")
        return func(*args, **(kwargs or {}))

    def c10d(self):
        return [op for op in self.ops if op.startswith("c10d.")]


def calls(ws=WS):
    """One call of every dist.* collective at rank 0, on fresh tensors (name -> zero-argument function)."""
    t, big = torch.ones(4), torch.arange(4.0 * ws)
    slots = lambda: [torch.zeros(4) for _ in range(ws)]  # noqa: E731
    return {
        "all_reduce": lambda: dist.all_reduce(t),
        "all_reduce_coalesced": lambda: dist.all_reduce_coalesced([t, t.clone()]),
        "broadcast": lambda: dist.broadcast(t, 0),
        "reduce": lambda: dist.reduce(t, 0),
        "all_gather": lambda: dist.all_gather(slots(), t),
        "all_gather_single": lambda: AG(torch.zeros(4 * ws), t),
        "all_gather_coalesced": lambda: dist.all_gather_coalesced([[torch.zeros(4)] for _ in range(ws)], [t]),
        "gather": lambda: dist.gather(t, slots(), dst=0),
        "scatter": lambda: dist.scatter(torch.zeros(4), slots(), src=0),
        "reduce_scatter": lambda: dist.reduce_scatter(torch.zeros(4), slots()),
        "reduce_scatter_single": lambda: RS(torch.zeros(4), big),
        "all_to_all": lambda: dist.all_to_all(slots(), slots()),
        "all_to_all_single": lambda: dist.all_to_all_single(torch.zeros(4 * ws), big),
        "barrier": lambda: dist.barrier(),
        "send": lambda: dist.send(t, 1),
        "recv": lambda: dist.recv(t, 1),
    }


# --- 1. every write below autograd -----------------------------------------------------------------------------

@pytest.mark.parametrize("sem", ["copy", "uniform"])
def test_outputs_carry_no_autograd_history(world, sem):
    world(sem, rank=0)
    x = torch.ones(2, requires_grad=True)
    pieces = [torch.full((2,), float(i), requires_grad=True) for i in range(WS)]
    outs = {
        "all_gather": [torch.empty(2) for _ in range(WS)], "all_gather_single": torch.empty(2 * WS),
        "gather": [torch.empty(2) for _ in range(WS)], "scatter": torch.empty(2), "reduce_scatter": torch.empty(2),
        "reduce_scatter_single": torch.empty(2), "all_to_all": [torch.empty(2) for _ in range(WS)],
        "all_to_all_single": torch.empty(2 * WS), "all_gather_coalesced": [[torch.empty(2)] for _ in range(WS)],
    }
    dist.all_gather(outs["all_gather"], x)
    AG(outs["all_gather_single"], x)
    dist.gather(x, outs["gather"], dst=0)
    dist.scatter(outs["scatter"], pieces, src=0)
    dist.reduce_scatter(outs["reduce_scatter"], pieces)
    RS(outs["reduce_scatter_single"], torch.arange(2.0 * WS, requires_grad=True))
    dist.all_to_all(outs["all_to_all"], pieces)
    dist.all_to_all_single(outs["all_to_all_single"], torch.arange(2.0 * WS, requires_grad=True))
    dist.all_gather_coalesced(outs["all_gather_coalesced"], [x])
    flat = [t for v in outs.values() for t in (v if isinstance(v, list) else [v])]
    flat = [t for x in flat for t in (x if isinstance(x, list) else [x])]
    assert not any(t.requires_grad or t.grad_fn is not None for t in flat)


@pytest.mark.parametrize("async_op", [False, True])
def test_uniform_reduction_of_a_parameter_stays_a_leaf(world, async_op):
    world("uniform")
    p = torch.nn.Parameter(torch.ones(3))
    w = dist.all_reduce(p, async_op=async_op)
    if w is not None:
        w.wait()
    assert p.tolist() == [4.0] * 3 and p.is_leaf and p.grad_fn is None and p.requires_grad


# --- 2. dispatch-level observers, LocalTensorMode ---------------------------------------------------------------

def test_observers_see_the_c10d_ops_torch_fake_dispatches(world):
    _use_torch_fake()
    seen = {}
    for backend in ("fake", "fakepg"):
        dist.init_process_group(backend, store=fakepg.FakeStore(), rank=0, world_size=WS)
        for name, call in calls().items():
            with Recorder() as rec:
                call()
            seen.setdefault(name, {})[backend] = rec.c10d()
        dist.destroy_process_group()
    for name, by in seen.items():
        assert by["fakepg"] == by["fake"] and len(by["fake"]) == 1, (name, by)


def test_observed_calls_keep_fakepg_semantics_and_faults(world):
    world("uniform", faults=[Fault("wrong_value", collective="all_gather")])
    t = torch.ones(2)
    with Recorder() as rec:
        dist.all_reduce(t)
        outs = [torch.zeros(2) for _ in range(WS)]
        dist.all_gather(outs, torch.ones(2))
    assert t.tolist() == [4.0, 4.0]  # uniform, though a mode watched
    assert outs[0].tolist() == [2.0, 1.0]  # the fault still applies
    assert rec.c10d() == ["c10d.allreduce_.default", "c10d.allgather_.default"]
    assert not any(op.startswith("aten.mul") or op.startswith("aten.copy") for op in rec.ops)  # fakepg's own writes


def _local_tensor():
    return pytest.importorskip("torch.distributed._local_tensor",
                               reason="torch.distributed._local_tensor (LocalTensorMode) is absent from this torch")


def _dtensor_results(backend):
    lt = _local_tensor()
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor, init_device_mesh

    dist.init_process_group(backend, store=fakepg.FakeStore(), rank=0, world_size=3)
    try:
        summed = lt.LocalTensor({r: torch.full((2,), float(r + 1)) for r in range(3)})
        dist.all_reduce(summed)  # a LocalTensor outside the mode: the subclass runs the collective
        out = {"sum": summed._local_tensors[2].tolist()}
        with lt.LocalTensorMode(3):
            mesh = init_device_mesh("cpu", (3,))
            x = torch.arange(12.0).reshape(6, 2)
            d = distribute_tensor(x, mesh, [Shard(0)])
            out["mean"] = d.mean().full_tensor().item()
            out["gathered"] = d.redistribute(mesh, [Replicate()]).to_local()._local_tensors[1].tolist()
            out["uneven_prod"] = distribute_tensor(torch.arange(1.0, 9.0).reshape(4, 2), mesh,
                                                   [Shard(0)]).prod().full_tensor().item()
    finally:
        dist.destroy_process_group()
    return out


def test_local_tensor_mode_and_dtensor_give_torch_fakes_values(world):
    _local_tensor()
    _use_torch_fake()
    got = _dtensor_results("fakepg")
    assert got == _dtensor_results("fake")
    assert got["sum"] == [6.0, 6.0] and got["mean"] == 5.5 and got["uneven_prod"] == 40320.0


# --- 3. copy semantics: torch's fake ---------------------------------------------------------------------------

def _a2a_single(out_rows, in_rows, osz, isz):
    out = torch.full((out_rows, 1), -1.0)
    dist.all_to_all_single(out, torch.arange(float(in_rows)).reshape(in_rows, 1), osz, isz)
    return out.flatten().tolist()


def _copy_results(backend, rank, ws):
    dist.init_process_group(backend, store=fakepg.FakeStore(), rank=rank, world_size=ws)
    try:
        got = {}
        outs = [torch.zeros(2) for _ in range(ws)]
        dist.all_to_all(outs, [torch.full((2,), 10.0 * i) for i in range(ws)])
        got["all_to_all"] = [o.tolist() for o in outs]
        got["a2a_even"] = _a2a_single(2 * ws, 2 * ws, None, None)
        got["a2a_repeat"] = _a2a_single(4 * ws, 2 * ws, [1] * (ws - 1) + [4 * ws - ws + 1], [2] * ws)
        got["a2a_truncate"] = _a2a_single(ws, 4 * ws, [1] * ws, [4] * ws)
        rs = torch.zeros(2, 2)
        RS(rs, torch.arange(4.0 * ws).reshape(2 * ws, 2))
        got["reduce_scatter_single"] = rs.tolist()
        rl = torch.zeros(2)
        dist.reduce_scatter(rl, [torch.full((2,), float(i)) for i in range(ws)])
        got["reduce_scatter"] = rl.tolist()
        sc = torch.full((2,), -1.0)
        dist.scatter(sc, [torch.full((2,), float(i)) for i in range(ws)] if rank == 0 else None, src=0)
        got["scatter"] = sc.tolist()
        ag = torch.zeros(ws, 2)
        AG(ag, torch.tensor([1.0, 2.0]) * (rank + 1))
        got["all_gather_single"] = ag.tolist()
        ar = torch.tensor([1.0, 2.0]) * (rank + 1)
        dist.all_reduce(ar, op=dist.ReduceOp.PRODUCT)
        got["all_reduce"] = ar.tolist()
        return got
    finally:
        dist.destroy_process_group()


def _fake_is_213s():
    """torch's fake implements the copy rules of torch 2.13 (2.15 changed its all_to_all_single split rule; before
    2.12 it left many outputs unwritten)."""
    _use_torch_fake()
    dist.init_process_group("fake", store=fakepg.FakeStore(), rank=0, world_size=2)
    try:
        return _a2a_single(8, 4, [2, 6], [1, 3]) == [0.0, 1.0, 0.0, 1.0, 2.0, 3.0, 0.0, 1.0]
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("rank,ws", [(0, 2), (1, 2), (2, 3)])
def test_copy_semantics_are_torch_213_fakes(world, rank, ws):
    got = _copy_results("fakepg", rank, ws)
    assert got["all_to_all"] == [[10.0 * i] * 2 for i in range(ws)]  # slot i <- piece i
    assert got["a2a_even"] == list(range(2 * ws))  # the input itself
    # with split sizes every output split repeats the input's first rows (cut short where the split is shorter)
    assert got["a2a_repeat"] == [0.0] * (ws - 1) + [float(i % (2 * ws)) for i in range(3 * ws + 1)]
    assert got["a2a_truncate"] == [0.0] * ws
    assert got["reduce_scatter_single"] == torch.arange(4.0 * ws).reshape(2 * ws, 2)[2 * rank:2 * rank + 2].tolist()
    assert got["reduce_scatter"] == [float(rank)] * 2
    assert got["scatter"] == ([0.0, 0.0] if rank == 0 else [-1.0, -1.0])  # non-root: left unchanged
    assert got["all_gather_single"] == [[1.0 * (rank + 1), 2.0 * (rank + 1)]] * ws
    assert got["all_reduce"] == [1.0 * (rank + 1), 2.0 * (rank + 1)]  # reductions not applied
    if _fake_is_213s():
        assert got == _copy_results("fake", rank, ws)


# --- 4. init, options, errors as torch's fake has them ----------------------------------------------------------

def test_store_less_init_needs_no_rendezvous_and_spares_other_backends(world, monkeypatch):
    for var in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    pg = world(rank=3, ws=8)
    assert (pg.rank(), pg.size(), dist.get_backend()) == (3, 8, "fakepg")
    dist.destroy_process_group()
    with pytest.raises(ValueError, match="MASTER_ADDR"):  # gloo still rendezvouses through torch's env://
        dist.init_process_group("gloo", rank=0, world_size=1)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "5")
    dist.init_process_group("fakepg")
    assert (dist.get_rank(), dist.get_world_size()) == (2, 5)


def test_unregister_gives_torch_its_env_handler_back():
    rdzv = importlib.import_module("torch.distributed.rendezvous")._rendezvous_handlers
    wrapped = rdzv["env"]
    fakepg.unregister()
    try:
        assert rdzv["env"] is wrapped.torch_handler
    finally:
        fakepg.register()
    assert type(rdzv["env"]) is type(wrapped)


@pytest.mark.skipif(not hasattr(CppFake, "_create_internal"),
                    reason="torch's FakeProcessGroup.Options has error_on_collective from torch 2.10")
def test_torch_fake_options_are_accepted(world):
    opts = CppFake.Options()
    opts.error_on_collective = True
    dist.init_process_group("fakepg", rank=0, world_size=2, pg_options=opts)
    for collective in (lambda: dist.all_reduce(torch.ones(1)), lambda: dist.barrier(),
                       lambda: dist.broadcast(torch.ones(1), 0)):
        with pytest.raises(RuntimeError, match="FakeProcessGroup collective operation error"):
            collective()
    dist.send(torch.ones(1), 1)  # point-to-point is spared, as by torch's fake
    dist.destroy_process_group()
    if hasattr(opts, "simulate_uniform_ranks"):  # torch 2.15
        opts = CppFake.Options()
        opts.simulate_uniform_ranks = True
        dist.init_process_group("fakepg", rank=0, world_size=2, pg_options=opts)
        assert dist.group.WORLD.fake_semantics == "uniform"


def test_invalid_rank_is_torch_fakes_runtime_error(world):
    with pytest.raises(RuntimeError, match=r"Cannot init process group where rank \(3\) >= world_size \(2\)"):
        world(rank=3, ws=2)


# torch's fake's wording for calls it refuses; fakepg's message carries it.
FAKE_WORDING = [
    ("reduce_scatter input list", lambda pg: dist.reduce_scatter(torch.empty(3), [torch.ones(3)]),
     "invalid input tensor list size, must be world size"),
    ("reduce_scatter output list", lambda pg: pg.reduce_scatter([torch.empty(3)] * 2, [[torch.ones(3)] * 2],
                                                                 dist.ReduceScatterOptions()),
     "requires input/output tensor lists to have the same length"),
    ("scatter input list", lambda pg: dist.scatter(torch.empty(3), [torch.ones(3)], src=0),
     "Incorrect input list size"),
    ("gather root", lambda pg: pg.gather([[torch.empty(3)] * 2], [torch.ones(3)], _opts(dist.GatherOptions, 3)),
     "invalid root rank"),
    ("all_gather_coalesced", lambda pg: dist.all_gather_coalesced([[torch.empty(3)], []], [torch.ones(3)]),
     "invalid output size"),
    ("reduce_scatter_single", lambda pg: RS(torch.empty(3, 2), torch.ones(3, 2)),
     "input tensor must be the same size as output size times world size"),
    ("all_to_all_single divisible", lambda pg: dist.all_to_all_single(torch.empty(3, 2), torch.ones(3, 2)),
     "does not divide equally across group size"),
    ("all_to_all_single split count", lambda pg: dist.all_to_all_single(torch.empty(4), torch.ones(4), [4], [4]),
     "Number of tensor splits not equal to group size"),
    ("all_to_all_single split sum", lambda pg: dist.all_to_all_single(torch.empty(4), torch.ones(4), [1, 1], [2, 2]),
     "Split sizes doesn't match total dim 0 size"),
    ("all_to_all_single empty input", lambda pg: dist.all_to_all_single(torch.empty(2), torch.empty(0), [1, 1],
                                                                        [0, 0]),
     "inputBuffer is empty"),
    ("all_to_all list", lambda pg: dist.all_to_all([torch.empty(3)], [torch.ones(3)] * 2),
     "does not match world size"),
]


def _opts(cls, root):
    o = cls()
    o.rootRank = root
    return o


@pytest.mark.parametrize("call,wording", [(c, w) for _, c, w in FAKE_WORDING], ids=[n for n, _, _ in FAKE_WORDING])
def test_refusals_carry_torch_fakes_wording(world, call, wording):
    pg = world(rank=0, ws=2)
    with pytest.raises(RuntimeError, match=wording):
        call(pg)


@pytest.mark.parametrize("rank,call,wording", [
    (1, lambda pg: pg.scatter([torch.empty(3)], [[torch.ones(3)] * 2], _opts(dist.ScatterOptions, 0)),
     "requires empty input on non-root"),
    (1, lambda pg: pg.gather([[torch.empty(3)] * 2], [torch.ones(3)], _opts(dist.GatherOptions, 0)),
     "requires empty output on non-root"),
])
def test_non_root_refusals_carry_torch_fakes_wording(world, rank, call, wording):
    pg = world(rank=rank, ws=2)
    with pytest.raises(RuntimeError, match=wording):
        call(pg)


# --- 5. structure: the methods say what a call writes, nothing else ----------------------------------------------

def test_collective_methods_hold_only_their_semantics():
    methods = {name: fn for name, fn in vars(FakeProcessGroup).items() if hasattr(fn, "__wrapped__")}
    assert len(methods) >= 20
    for name, entry in methods.items():
        source = inspect.getsource(entry.__wrapped__)
        for word in ("plan", "fault", "_check", "InvalidArgument", "FakeWork", "no_grad", "autograd"):
            assert word not in source, (name, word)


# --- torch releases -------------------------------------------------------------------------------------------

def test_group_name_and_functional_wait_work_on_every_release(world):
    import torch.distributed._functional_collectives as fc

    pg = world("uniform")
    assert pg.group_name == "0"  # torch 2.4 asks the C++ backend beneath the group
    y = torch.ops._c10d_functional.all_reduce(torch.ones(2), "sum", pg.group_name)
    assert torch.ops._c10d_functional.wait_tensor(y).tolist() == [4.0, 4.0]  # C++ waits on a fakepg Work
    assert fc.all_reduce(torch.ones(1), "sum", pg).tolist() == [4.0]


def test_batch_isend_irecv_finds_a_backend_for_the_device(world):
    pg = world()
    assert pg._get_backend(torch.device("cpu")) is not None  # torch 2.14+ asks before batching
    buf = torch.full((1,), 7.0)
    works = dist.batch_isend_irecv([dist.P2POp(dist.isend, torch.ones(1), 2), dist.P2POp(dist.irecv, buf, 0)])
    assert all(w.wait() for w in works) and buf.item() == 7.0

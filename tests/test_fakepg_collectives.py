"""Every collective through dist.*, in both semantics, as rank 1 of a world of 4.

Oracle: "uniform", a world in which every rank holds this rank's data, reductions applied;
"copy", torch's fake (reductions not applied, all_to_all keeps piece order). Rank 1 (not 0) so
that "chunk index = rank" is checked.
"""

import pytest
import torch
import torch.distributed as dist


WS, RANK = 4, 1
R = dist.ReduceOp


# dist.* names that changed over torch 2.4 .. 2.15
AG = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
RS = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
AG_NAMES = [n for n in ("all_gather_single", "all_gather_into_tensor", "_all_gather_base") if hasattr(dist, n)]
RS_NAMES = [n for n in ("reduce_scatter_single", "reduce_scatter_tensor", "_reduce_scatter_base") if hasattr(dist, n)]


def same(a, b):
    """Exact equality for every dtype (torch.equal lacks float8 on torch 2.4)."""
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(torch.uint8), b.view(torch.uint8)) \
        if a.dtype.itemsize == 1 else torch.equal(a, b)


def uniform_sum(x, ws=WS):
    return x * ws


SEMS = ["copy", "uniform"]


@pytest.mark.parametrize("sem", SEMS)
@pytest.mark.parametrize("async_op", [False, True])
def test_all_reduce_sum(world, sem, async_op):
    pg = world(sem)
    assert pg.fake_semantics == sem
    t = torch.tensor([1.0, 2.0, 3.0])
    w = dist.all_reduce(t, async_op=async_op)
    if async_op:
        assert w.is_completed()
        assert w.wait() is True
        assert w.get_future().value()[0] is t
    else:
        assert w is None
    expected = torch.tensor([1.0, 2.0, 3.0]) * (WS if sem == "uniform" else 1)
    assert torch.equal(t, expected)


@pytest.mark.parametrize(
    "op,dtype,x,expected",
    [
        (R.AVG, torch.float32, [1.0, 2.0], [1.0, 2.0]),
        (R.PRODUCT, torch.float32, [1.0, 2.0], [1.0, 16.0]),
        (R.PRODUCT, torch.int32, [3, -2], [81, 16]),
        (R.MIN, torch.int64, [3, -2], [3, -2]),
        (R.MAX, torch.float16, [3, -2], [3, -2]),
        (R.BAND, torch.int32, [6, 5], [6, 5]),
        (R.BOR, torch.uint8, [6, 5], [6, 5]),
        (R.BXOR, torch.int32, [6, 5], [0, 0]),  # ws even
        (R.SUM, torch.int8, [100, -3], [-112, -12]),  # 400 wraps to -112 like int8
        (R.SUM, torch.uint8, [100, 3], [144, 12]),
        (R.SUM, torch.bool, [True, False], [True, False]),  # logical OR
        (R.PRODUCT, torch.bool, [True, False], [True, False]),  # logical AND
        (R.SUM, torch.bfloat16, [1.5, -2], [6, -8]),
        (R.SUM, torch.float8_e4m3fn, [1.5, -2], [6, -8]),
        (R.PRODUCT, torch.int8, [3, 2], [81, 16]),
        (R.PRODUCT, torch.int8, [5, 2], [113, 16]),  # 625 mod 256 = 113
    ],
)
def test_all_reduce_uniform_ops(world, op, dtype, x, expected):
    world("uniform")
    t = torch.tensor(x).to(dtype)
    dist.all_reduce(t, op=op)
    assert t.dtype == dtype
    assert same(t, torch.tensor(expected).to(dtype)), t


def test_all_reduce_bxor_odd_world(world):
    world("uniform", rank=2, ws=3)
    t = torch.tensor([6, 5])
    dist.all_reduce(t, op=R.BXOR)
    assert t.tolist() == [6, 5]


def test_all_reduce_product_large_world_int_wraps(world):
    world("uniform", rank=0, ws=1024)
    t = torch.tensor([3], dtype=torch.int64)
    dist.all_reduce(t, op=R.PRODUCT)
    expected = pow(3, 1024, 2**64)
    assert t.item() == (expected - 2**64 if expected >= 2**63 else expected)


@pytest.mark.parametrize("factor", [2.5, torch.tensor([2.5])])
def test_all_reduce_premul_sum(world, factor):
    world("uniform")
    t = torch.tensor([1.0, 2.0])
    dist.all_reduce(t, op=dist._make_nccl_premul_sum(factor))
    assert t.tolist() == [10.0, 20.0]  # 2.5 * x * 4


def test_all_reduce_premul_sum_int_is_rejected(world):
    world("uniform")
    with pytest.raises(TypeError, match="PREMUL_SUM"):
        dist.all_reduce(torch.tensor([1, 2]), op=dist._make_nccl_premul_sum(2.0))


@pytest.mark.parametrize("sem", SEMS)
def test_all_reduce_op_copy_does_not_apply_it_and_both_refuse_undefined_ones(world, sem):
    world(sem)
    t = torch.tensor([2.0, 3.0])
    dist.all_reduce(t, op=R.PRODUCT)
    assert t.tolist() == ([2.0, 3.0] if sem == "copy" else [16.0, 81.0])
    # An op the dtype does not define is refused in both semantics (as gloo does), before anything is written.
    for t, op in ((torch.ones(2), R.BAND), (torch.ones(2, dtype=torch.int32), R.BXOR)):
        if t.is_floating_point():
            before = t.clone()
            with pytest.raises(TypeError, match="Cannot use ReduceOp.BAND with dtype torch.float32"):
                dist.all_reduce(t, op=op)
            assert torch.equal(t, before)
        else:
            dist.all_reduce(t, op=op)   # bitwise ops on integers are defined
    with pytest.raises(TypeError, match="Cannot use ReduceOp.PREMUL_SUM with dtype torch.int64"):
        dist.all_reduce(torch.ones(2, dtype=torch.int64), op=dist._make_nccl_premul_sum(2.0))
    with pytest.raises(TypeError, match="Cannot use ReduceOp.AVG with dtype torch.bool"):
        dist.all_reduce(torch.ones(2, dtype=torch.bool), op=R.AVG)


@pytest.mark.parametrize("sem", SEMS)
def test_all_reduce_complex(world, sem):
    world(sem)
    t = torch.tensor([1 + 2j, 3 - 1j])
    dist.all_reduce(t)  # dist.* views complex as real before calling the backend
    assert torch.equal(t, torch.tensor([1 + 2j, 3 - 1j]) * (WS if sem == "uniform" else 1))


@pytest.mark.parametrize("sem", SEMS)
def test_all_reduce_coalesced(world, sem):
    world(sem)
    a, b = torch.ones(2), torch.full((3,), 2.0)
    fut = dist.all_reduce_coalesced([a, b], async_op=True)
    assert isinstance(fut, torch.futures.Future)
    vals = fut.wait()
    assert vals[0] is a and vals[1] is b
    k = WS if sem == "uniform" else 1
    assert a.tolist() == [k] * 2 and b.tolist() == [2.0 * k] * 3


@pytest.mark.parametrize("sem", SEMS)
@pytest.mark.parametrize("dst", [RANK, 3])
def test_reduce(world, sem, dst):
    world(sem)
    t = torch.tensor([1.0, 2.0])
    dist.reduce(t, dst=dst)
    k = WS if (sem == "uniform" and dst == RANK) else 1  # non-dst: left unchanged
    assert t.tolist() == [1.0 * k, 2.0 * k]


@pytest.mark.parametrize("sem", SEMS)
@pytest.mark.parametrize("src", [0, RANK])
def test_broadcast_keeps_my_data(world, sem, src):
    world(sem)
    t = torch.tensor([5, 6])
    w = dist.broadcast(t, src=src, async_op=True)
    w.wait()
    assert t.tolist() == [5, 6]


@pytest.mark.parametrize("sem", SEMS)
def test_all_gather_list(world, sem):
    world(sem)
    x = torch.tensor([1.0, 2.0])
    out = [torch.zeros(2) for _ in range(WS)]
    dist.all_gather(out, x)
    assert all(o.tolist() == [1.0, 2.0] for o in out)


def test_all_gather_uneven_list(world):
    world()
    x = torch.tensor([1.0, 2.0])
    out = [torch.full((n,), -1.0) for n in (1, 2, 3, 0)]
    dist.all_gather(out, x)
    assert [o.tolist() for o in out] == [[1.0], [1.0, 2.0], [1.0, 2.0, 0.0], []]


@pytest.mark.parametrize("sem", SEMS)
@pytest.mark.parametrize("fn", AG_NAMES)
def test_all_gather_single(world, sem, fn):
    world(sem)
    x = torch.tensor([1, 2, 3])
    out = torch.zeros(WS * 3, dtype=torch.int64)
    getattr(dist, fn)(out, x)
    assert out.tolist() == [1, 2, 3] * WS
    stacked = torch.zeros(WS, 3, dtype=torch.int64)  # the documented "stack" layout
    getattr(dist, fn)(stacked, x)
    assert stacked.tolist() == [[1, 2, 3]] * WS


def test_all_gather_coalesced(world):
    world()
    a, b = torch.tensor([1.0]), torch.tensor([2.0, 3.0])
    outs = [[torch.zeros(1), torch.zeros(2)] for _ in range(WS)]
    dist.all_gather_coalesced(outs, [a, b])
    assert all(o[0].tolist() == [1.0] and o[1].tolist() == [2.0, 3.0] for o in outs)


@pytest.mark.parametrize("sem", SEMS)
def test_coalescing_manager_fast_paths(world, sem):
    world(sem)
    k = WS if sem == "uniform" else 1
    a, b = torch.ones(2), torch.ones(3)
    with dist._coalescing_manager():
        dist.all_reduce(a)
        dist.all_reduce(b)
    assert a.tolist() == [k] * 2 and b.tolist() == [k] * 3
    outs = [torch.zeros(2 * WS), torch.zeros(WS)]
    with dist._coalescing_manager(async_ops=True) as cm:
        AG(outs[0], torch.tensor([1.0, 2.0]))
        AG(outs[1], torch.tensor([7.0]))
    cm.wait()
    assert outs[0].tolist() == [1.0, 2.0] * WS and outs[1].tolist() == [7.0] * WS
    rs = [torch.zeros(1), torch.zeros(2)]
    with dist._coalescing_manager():
        RS(rs[0], torch.arange(4.0))
        RS(rs[1], torch.arange(8.0))
    assert rs[0].tolist() == [1.0 * k] and rs[1].tolist() == [2.0 * k, 3.0 * k]


@pytest.mark.parametrize("dst", [RANK, 0])
def test_gather(world, dst):
    world()
    x = torch.tensor([4, 5])
    gl = [torch.zeros(2, dtype=torch.int64) for _ in range(WS)] if dst == RANK else None
    dist.gather(x, gather_list=gl, dst=dst)
    if gl is not None:
        assert all(g.tolist() == [4, 5] for g in gl)


@pytest.mark.parametrize("sem", SEMS)
def test_scatter_root_and_non_root(world, sem):
    world(sem)
    out = torch.full((2,), -1.0)
    dist.scatter(out, scatter_list=[torch.full((2,), float(i)) for i in range(WS)], src=RANK)
    assert out.tolist() == [1.0, 1.0]  # scatter_list[rank]
    out = torch.full((2,), -1.0)
    dist.scatter(out, src=0)
    assert out.tolist() == [-1.0, -1.0]  # non-root: nothing derivable, left unchanged


@pytest.mark.parametrize("sem", SEMS)
def test_reduce_scatter_list(world, sem):
    world(sem)
    out = torch.zeros(2)
    dist.reduce_scatter(out, [torch.full((2,), float(i)) for i in range(WS)])
    assert out.tolist() == [1.0 * (WS if sem == "uniform" else 1)] * 2


@pytest.mark.parametrize("sem", SEMS)
@pytest.mark.parametrize("fn", RS_NAMES)
def test_reduce_scatter_single(world, sem, fn):
    world(sem)
    out = torch.zeros(2, dtype=torch.int32)
    getattr(dist, fn)(out, torch.arange(2 * WS, dtype=torch.int32))
    k = WS if sem == "uniform" else 1
    assert out.tolist() == [2 * k, 3 * k]  # chunk `rank` = [2, 3]


def test_reduce_scatter_single_max_uniform(world):
    world("uniform")
    out = torch.zeros(2)
    RS(out, torch.arange(8.0), op=R.MAX)
    assert out.tolist() == [2.0, 3.0]


def test_all_to_all_list_copy_keeps_piece_order(world):
    world("copy")
    ins = [torch.full((2,), float(i)) for i in range(WS)]
    outs = [torch.zeros(2) for _ in range(WS)]
    dist.all_to_all(outs, ins)
    assert [o.tolist() for o in outs] == [[float(i)] * 2 for i in range(WS)]  # slot i <- piece i (torch's fake)


def test_all_to_all_list_uniform_every_slot_gets_my_piece_rank(world):
    world("uniform")
    outs = [torch.zeros(2) for _ in range(WS)]
    dist.all_to_all(outs, [torch.full((2,), float(i)) for i in range(WS)])
    assert all(o.tolist() == [1.0, 1.0] for o in outs)  # rank j sends me its piece `rank` = my piece `rank`


def test_all_to_all_single_even(world):
    world("copy")
    out = torch.zeros(8)
    dist.all_to_all_single(out, torch.arange(8.0))
    assert out.tolist() == list(range(8))  # copy: the input itself
    dist.destroy_process_group()
    world("uniform")
    dist.all_to_all_single(out, torch.arange(8.0))
    assert out.tolist() == [2.0, 3.0] * WS  # uniform: my split `rank`, from every rank


def test_all_to_all_single_splits_copy_repeats_the_first_rows(world):
    world("copy")
    out = torch.full((5,), -1.0)
    dist.all_to_all_single(out, torch.arange(6.0), output_split_sizes=[2, 1, 2, 0], input_split_sizes=[1, 2, 0, 3])
    assert out.tolist() == [0.0, 1.0, 0.0, 0.0, 1.0]  # every output split: the input's first rows
    out = torch.full((5,), -1.0)
    dist.all_to_all_single(out, torch.arange(2.0), output_split_sizes=[0, 5, 0, 0], input_split_sizes=[1, 0, 1, 0])
    assert out.tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]  # longer than the input: repeated


def test_all_to_all_single_splits_uniform_prefix_then_zeros(world):
    world("uniform")
    out = torch.full((5,), -1.0)
    dist.all_to_all_single(out, torch.arange(6.0), output_split_sizes=[2, 1, 2, 0], input_split_sizes=[1, 2, 0, 3])
    assert out.tolist() == [1.0, 2.0, 1.0, 1.0, 2.0]  # my split #1 = [1, 2] into every slot, cut to fit
    out = torch.full((3,), -1.0)
    dist.all_to_all_single(out, torch.arange(2.0), output_split_sizes=[0, 3, 0, 0], input_split_sizes=[1, 0, 1, 0])
    assert out.tolist() == [0.0, 0.0, 0.0]  # my split #1 is empty: nothing derivable -> zeros


@pytest.mark.parametrize("sem", SEMS)
def test_all_to_all_single_empty(world, sem):
    world(sem)
    out = torch.empty(0)
    dist.all_to_all_single(out, torch.empty(0))
    dist.all_to_all_single(out, torch.empty(0), [0] * WS, [0] * WS)
    assert out.numel() == 0
    with pytest.raises(RuntimeError, match="inputBuffer is empty"):  # nothing to send, rows expected
        dist.all_to_all_single(torch.empty(4), torch.empty(0), [1] * WS, [0] * WS)


def test_barrier_send_recv(world):
    world()
    dist.barrier()
    assert dist.barrier(async_op=True).wait()
    dist.send(torch.ones(2), dst=2)
    buf = torch.full((2,), 7.0)
    assert dist.recv(buf, src=3) == 3
    assert buf.tolist() == [7.0, 7.0]  # nothing derivable: left unchanged
    assert dist.recv(buf) == (RANK - 1) % WS  # recv_anysource: documented sender
    w = dist.irecv(buf)
    assert w.wait() and w._source_rank() == 0
    works = dist.batch_isend_irecv([dist.P2POp(dist.isend, torch.ones(1), 2), dist.P2POp(dist.irecv, buf, 0)])
    assert all(w.wait() for w in works)


def test_object_collective_all_gather_object(world):
    world()
    out = [None] * WS
    dist.all_gather_object(out, {"r": RANK})
    assert out == [{"r": RANK}] * WS


def test_meta_tensors(world):
    world("uniform")
    t = torch.ones(3, device="meta")
    dist.all_reduce(t)
    out = torch.empty(3 * WS, device="meta")
    AG(out, t)
    rs = torch.empty(1, device="meta")
    RS(rs, torch.empty(4, device="meta"))
    a2a = torch.empty(8, device="meta")
    dist.all_to_all_single(a2a, torch.empty(8, device="meta"))
    assert t.device.type == "meta" and out.shape == (12,)


# --- argument validation --------------------------------------------------------------------


def test_validation_errors(world):
    pg = world()
    with pytest.raises(ValueError, match=r"fakepg::allgather: invalid output tensor list at index 0 \(expected length 4, got 1\)"):
        dist.all_gather([torch.zeros(2)], torch.zeros(2))
    with pytest.raises(RuntimeError, match="invalid tensor type at index 0"):  # dist.* checks too; call the group
        pg.allgather([[torch.zeros(2, dtype=torch.int64) for _ in range(WS)]], [torch.zeros(2)])
    with pytest.raises(RuntimeError, match="invalid root rank: 7"):
        dist.broadcast(torch.zeros(2), src=7)
    with pytest.raises(ValueError, match="numel"):
        AG(torch.zeros(5), torch.zeros(2))
    with pytest.raises(ValueError, match="input tensor must be the same size as output size times world size"):
        RS(torch.zeros(2), torch.zeros(5))
    with pytest.raises(ValueError, match="Split sizes doesn't match"):
        dist.all_to_all_single(torch.zeros(4), torch.zeros(4), [1, 1, 1, 1], [1, 1, 1, 2])
    with pytest.raises(ValueError, match="does not divide equally across group size"):
        dist.all_to_all_single(torch.zeros(5), torch.zeros(5))
    with pytest.raises(ValueError, match="Incorrect output list size 1"):
        dist.gather(torch.zeros(2), gather_list=[torch.zeros(2)], dst=RANK)
    with pytest.raises(ValueError, match="Incorrect input list size 1"):
        dist.scatter(torch.zeros(2), scatter_list=[torch.zeros(2)], src=RANK)
    with pytest.raises(ValueError, match="must be world size"):
        dist.reduce_scatter(torch.zeros(2), [torch.zeros(2)])
    with pytest.raises(ValueError, match="does not match world size"):
        dist.all_to_all([torch.zeros(1)] * WS, [torch.zeros(1)])
    with pytest.raises(ValueError, match="output lists should be equal to world size"):
        dist.all_gather_coalesced([[torch.zeros(1)]], [torch.zeros(1)])
    with pytest.raises(ValueError, match="invalid tensor size"):
        dist.reduce_scatter(torch.zeros(2), [torch.zeros(3) for _ in range(WS)])
    with pytest.raises(ValueError, match="invalid destination rank"):
        pg.send([torch.zeros(1)], 9, 0)
    # the group still works after rejected calls
    t = torch.ones(1)
    dist.all_reduce(t)
    assert t.item() == 1.0


def test_coalescing_manager_with_device_and_monitored_barrier_limit(world):
    pg = world("uniform")
    t = torch.ones(2)
    with dist._coalescing_manager(device=torch.device("cpu")):  # _start/_end_coalescing
        dist.all_reduce(t)
    assert t.tolist() == [4.0, 4.0]
    try:  # torch 2.14+ only asks for a backend on cpu (the C++ fake beneath answers): then it is a barrier
        dist.monitored_barrier()
    except ValueError as e:  # before, torch refuses any non-gloo group before calling the backend
        assert "monitored_barrier is only implemented for GLOO backend" in str(e)
    pg.monitored_barrier()  # direct callers get a barrier


def test_reduce_complex_uniform(world):
    world("uniform")
    t = torch.tensor([1 + 1j])
    dist.reduce(t, dst=RANK)  # reduce does not view_as_real: the backend sees complex
    assert t.tolist() == [4 + 4j]
    t = torch.tensor([1 + 1j])
    with pytest.raises(TypeError, match="Cannot use ReduceOp.PRODUCT with dtype torch.complex64"):
        dist.reduce(t, dst=RANK, op=R.PRODUCT)   # torch refuses it for all_reduce; gloo refuses complex products

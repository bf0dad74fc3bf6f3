"""Subgroups, split, DeviceMesh (2-D, flatten/unflatten), and large worlds."""

import time
import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh

import fakepg


def test_new_group_members_and_non_members(world):
    world("uniform", rank=5, ws=8)
    g = dist.new_group([1, 5, 7])
    assert isinstance(g, fakepg.FakeProcessGroup)
    assert (g.rank(), g.size(), dist.get_rank(g)) == (1, 3, 1)
    assert g.fake_semantics == "uniform"  # inherited from the world
    assert dist.get_process_group_ranks(g) == [1, 5, 7]
    t = torch.ones(2)
    dist.all_reduce(t, group=g)
    assert t.tolist() == [3.0, 3.0]  # uniform over the group's 3 ranks
    out = torch.zeros(3)
    dist.all_gather_into_tensor(out, torch.tensor([2.0]), group=g)
    assert out.tolist() == [2.0] * 3
    assert dist.new_group([0, 1]) == dist.GroupMember.NON_GROUP_MEMBER
    assert dist.new_group([0, 1], use_local_synchronization=True) in (None, dist.GroupMember.NON_GROUP_MEMBER)
    g2 = dist.new_group([5, 6], use_local_synchronization=True)
    assert (g2.rank(), g2.size()) == (0, 2)
    g3 = dist.new_group([5, 6], pg_options=fakepg.Options(semantics="copy"))
    assert g3.fake_semantics == "copy"


def test_new_subgroups(world):
    world(rank=5, ws=8)
    cur, allg = dist.new_subgroups(group_size=2)
    assert len(allg) == 4 and (cur.rank(), cur.size()) == (1, 2)
    assert dist.get_process_group_ranks(cur) == [4, 5]
    dist.barrier(group=cur)
    cur2, _ = dist.new_subgroups_by_enumeration([[0, 5], [1, 2, 3, 4, 6, 7]])
    assert (cur2.rank(), cur2.size()) == (1, 2)


def test_split_group_limitation_and_direct_split(world):
    pg = world(rank=1, ws=4)
    if hasattr(dist, "split_group"):  # torch 2.5+
        try:
            g = dist.split_group(split_ranks=[[0, 1], [2, 3]])
        except RuntimeError as e:  # up to 2.14 it needs a default PG bound to an accelerator device
            assert "No device associated with the default pg, not safe to split" in str(e)
        else:  # 2.15 splits through the group's splitGroup
            assert isinstance(g, fakepg.FakeProcessGroup) and (g.rank(), g.size()) == (1, 2)
    child = pg.split_group([0, 1])  # the trampolined splitGroup (C++-reachable) works
    assert isinstance(child, fakepg.FakeProcessGroup) and (child.rank(), child.size()) == (1, 2)
    assert pg.split_group([2, 3]) is None


def test_device_mesh_2d(world):
    world(rank=5, ws=8)
    mesh = init_device_mesh("cpu", (2, 4), mesh_dim_names=("dp", "tp"))
    assert mesh.get_coordinate() == [1, 1] or tuple(mesh.get_coordinate()) == (1, 1)
    dp, tp = mesh["dp"], mesh["tp"]
    assert (dp.size(), tp.size()) == (2, 4)
    assert dist.get_process_group_ranks(dp.get_group()) == [1, 5]
    assert dist.get_process_group_ranks(tp.get_group()) == [4, 5, 6, 7]
    assert (mesh.get_local_rank("dp"), mesh.get_local_rank("tp")) == (1, 1)
    t = torch.ones(1)
    dist.all_reduce(t, group=tp.get_group())
    assert t.item() == 1.0
    if hasattr(mesh, "_flatten"):  # torch 2.5+
        flat = mesh._flatten("dp_tp")
        assert flat.size() == 8 and flat.get_group().size() == 8
    if hasattr(tp, "_unflatten"):
        u = tp._unflatten(0, (2, 2), ("a", "b"))
        assert (u["a"].size(), u["b"].size()) == (2, 2)
        assert dist.get_process_group_ranks(u["b"].get_group()) == [4, 5]


def test_device_mesh_3d(world):
    world(rank=13, ws=16)
    mesh = init_device_mesh("cpu", (2, 2, 4), mesh_dim_names=("pp", "dp", "tp"))
    assert tuple(mesh.get_coordinate()) == (1, 1, 1)
    assert mesh["dp", "tp"].size() == 8


def test_world_1024_is_cheap(world):
    t0 = time.perf_counter()
    world(rank=1000, ws=1024)
    groups = [dist.new_group(list(range(i, 1024, 8))) for i in range(8)]
    sub = groups[1000 % 8]
    assert (sub.rank(), sub.size()) == (125, 128)
    x = torch.tensor([1.0, 2.0])
    out = [torch.zeros(2) for _ in range(1024)]
    dist.all_gather(out, x)
    big = torch.zeros(2048)
    dist.all_gather_into_tensor(big, x)
    assert out[1023].tolist() == [1.0, 2.0] and big[-2:].tolist() == [1.0, 2.0]
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0, elapsed  # measured ~0.02 s: no per-peer work or store traffic

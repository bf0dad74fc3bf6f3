"""Registration side effects, unregister/register, construction rules, FakeStore."""

import importlib

import pytest
import torch
import torch.distributed as dist

import fakepg


def _state():
    B = dist.Backend
    return (dict(B.default_device_backend_map), list(B.backend_list), dict(B.backend_capability),
            dict(B.backend_type_map), set(B._plugins), hasattr(B, "FAKEPG"))


@pytest.fixture
def restore():
    yield
    if dist.is_initialized():
        dist.destroy_process_group()
    fakepg.register()


def test_registered_on_import():
    B = dist.Backend
    assert fakepg.BACKEND == "fakepg" and fakepg.is_registered()
    assert "fakepg" in B.backend_list and B.FAKEPG == "fakepg"
    assert B.backend_capability["fakepg"][:4] == ["cpu", "cuda", "hpu", "xpu"]
    assert B.backend_type_map["fakepg"] == dist.ProcessGroup.BackendType.CUSTOM
    assert "fakepg" not in B.default_device_backend_map.values()  # no device's default changed
    assert dist.is_backend_available("fakepg")


def test_register_leaves_default_map_and_unregister_restores(restore):
    fakepg.unregister()
    before = _state()
    assert "fakepg" not in before[1] and not before[5]
    fakepg.register()
    assert _state()[0] == before[0]  # default_device_backend_map untouched (hpu stays unmapped)
    fakepg.register()  # idempotent
    assert dist.Backend.backend_list.count("fakepg") == 1
    fakepg.unregister()
    assert _state() == before
    fakepg.unregister()  # idempotent
    assert _state() == before


def test_unregistered_backend_cannot_init(restore):
    fakepg.unregister()
    with pytest.raises((ValueError, AssertionError, RuntimeError)):
        dist.init_process_group("fakepg", store=fakepg.FakeStore(), rank=0, world_size=2)
    if dist.is_initialized():
        dist.destroy_process_group()
    fakepg.register()
    dist.init_process_group("fakepg", store=fakepg.FakeStore(), rank=0, world_size=2)
    assert dist.get_backend() == "fakepg"


def test_reimport_is_harmless():
    before = _state()
    importlib.reload(fakepg)
    assert _state() == before


def test_direct_construction_is_refused():
    for args, kwargs in (((0, 2, fakepg.Options()), {}), ((), {"rank": 0, "world_size": 3})):
        with pytest.raises(TypeError, match="No constructor defined.*init_process_group"):  # torch's fake's words
            fakepg.FakeProcessGroup(*args, **kwargs)


def test_init_identity_and_any_rank(restore):
    dist.init_process_group("fakepg", store=fakepg.FakeStore(), rank=5, world_size=8)
    pg = dist.group.WORLD
    assert isinstance(pg, fakepg.FakeProcessGroup)
    assert (dist.get_rank(), dist.get_world_size(), pg.rank(), pg.size()) == (5, 8, 5, 8)
    assert pg.name() == pg.getBackendName() == "fakepg" and dist.get_backend() == "fakepg"
    assert pg.group_name == "0"
    assert pg.fake_semantics == "copy"
    with pytest.raises(AttributeError):
        pg.fake_semantics = "uniform"
    assert "cpu:fakepg" in dist.get_backend_config()
    pg._set_sequence_number_for_group()
    assert pg._get_sequence_number_for_group() == 0


@pytest.mark.parametrize("store", [None, fakepg.FakeStore()])
def test_rank_out_of_range(restore, store):
    with pytest.raises(RuntimeError, match=r"Cannot init process group where rank \(8\) >= world_size \(8\)"):
        dist.init_process_group("fakepg", store=store, rank=8, world_size=8)
    assert not dist.is_initialized()


def test_bad_pg_options_type(restore):
    with pytest.raises(TypeError, match="pg_options"):
        dist.init_process_group("fakepg", store=fakepg.FakeStore(), rank=0, world_size=2, pg_options=42)


def test_pg_options_as_dict_and_json(restore):
    dist.init_process_group("fakepg", store=fakepg.FakeStore(), rank=0, world_size=2,
                            pg_options={"semantics": "uniform"})
    assert dist.group.WORLD.fake_semantics == "uniform"
    sub = dist.new_group([0, 1], pg_options='{"semantics": "copy"}')
    assert sub.fake_semantics == "copy"


def test_abort_and_shutdown(restore):
    dist.init_process_group("fakepg", store=fakepg.FakeStore(), rank=0, world_size=2)
    pg = dist.group.WORLD
    pg.abort()
    with pytest.raises(RuntimeError, match="aborted"):
        dist.all_reduce(torch.ones(1))


def test_fake_store():
    s = fakepg.FakeStore()
    s.set("a", "1")
    assert s.get("a") == b"1"
    assert s.add("n", 2) == 2 and s.add("n", 3) == 5
    assert s.check(["a", "n"]) and not s.check(["zz"])
    s.wait(["a"])
    assert s.compare_set("c", "", "x") == b"x"
    assert s.compare_set("c", "nope", "y") == b"x"
    assert s.num_keys() == 3
    assert s.delete_key("a") and not s.delete_key("a")
    s.set_timeout(__import__("datetime").timedelta(milliseconds=50))
    with pytest.raises(RuntimeError, match="never set"):
        s.get("missing")
    p = dist.PrefixStore("g/", s)
    p.set("k", b"v")
    assert p.get("k") == b"v"
    assert isinstance(s, dist.Store)

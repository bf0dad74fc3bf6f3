"""Fixtures shared by the project's tests: one fakepg world per test."""

from __future__ import annotations

import warnings

import pytest
import torch.distributed as dist

import fakepg

pytest_plugins = ["pytester"]     # in-process runs of the suite (usage errors)


def _fakepg_registry():
    """What registering fakepg touches in torch's backend registry (torch may register its own "fake" lazily)."""
    B = dist.Backend
    return ({d: b for d, b in B.default_device_backend_map.items() if b == fakepg.BACKEND},
            B.backend_list.count(fakepg.BACKEND), B.backend_capability.get(fakepg.BACKEND), "FAKEPG" in B._plugins)


@pytest.fixture
def world(monkeypatch):
    """make(semantics="copy", *, rank=1, ws=4, faults=(), **options) -> the WORLD group of a fakepg world.

    Store-less, like a user's ``init_process_group("fakepg", rank=r, world_size=n)``; FAKEPG_OPTIONS is cleared so
    only the options given apply. Afterwards the world is destroyed and fakepg's part of torch's backend registry
    must be as it was (a side effect there would leak into every later test).
    """
    monkeypatch.delenv(fakepg.ENV_VAR, raising=False)
    before = _fakepg_registry()

    def make(semantics="copy", *, rank=1, ws=4, faults=(), **options):
        dist.init_process_group("fakepg", rank=rank, world_size=ws,
                                pg_options=fakepg.Options(semantics=semantics, faults=list(faults), **options))
        return dist.group.WORLD

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.13-2.14 deprecate some dist.* names
        yield make
    if dist.is_initialized():
        dist.destroy_process_group()
    assert _fakepg_registry() == before

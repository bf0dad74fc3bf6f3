"""Registering the "fakepg" backend with torch.distributed, and undoing it.

``Backend.register_backend`` mutates five pieces of class state; a test process (or a
conformance run next to real backends) must be able to put every one of them back.
Registration must also never take a device away from its real default backend: torch
2.4-2.7 remaps every non-cpu/cuda device, 2.8+ remaps unmapped ones (hpu, often), so
the default map is snapshotted before and restored after. Registration also installs
store-less init (``_rendezvous``), and ``create`` is the creator torch calls per group.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from . import _rendezvous
from ._group import BACKEND_NAME, create_group
from ._options import resolve

_DEVICES = ["cpu", "cuda", "hpu", "xpu"]


def devices() -> list[str]:
    """cpu, cuda, hpu, xpu, plus the PrivateUse1 device when torch reports it renamed."""
    devs = list(_DEVICES)
    try:
        pu1 = torch._C._get_privateuse1_backend_name()
    except Exception:  # very old torch
        pu1 = "privateuseone"
    if pu1 and pu1 != "privateuseone" and pu1 not in devs:
        devs.append(pu1)
    return devs


def serve_device(name: str) -> None:
    """Serve a device that appeared after fakepg registered (e.g. a PrivateUse1 device a plugin
    renamed later): it joins devices() and fakepg's declared capability. The default map is untouched."""
    if name not in _DEVICES:
        _DEVICES.append(name)
    caps = dist.Backend.backend_capability.get(BACKEND_NAME)
    if caps is not None and name not in caps:
        caps.append(name)


def create(dist_backend_opts, pg_options):
    """The creator registered with Backend.register_backend(extended_api=True)."""
    rank = dist_backend_opts.group_rank
    ranks = dist_backend_opts.global_ranks_in_group  # [] for the default group
    return create_group(rank, dist_backend_opts.group_size, resolve(pg_options), devices(),
                        ranks[rank] if ranks else rank, dist_backend_opts.group_id)


def is_registered() -> bool:
    return BACKEND_NAME.upper() in dist.Backend._plugins


def register() -> None:
    """Register "fakepg" (idempotent). Leaves Backend.default_device_backend_map as it was."""
    B = dist.Backend
    if is_registered():  # torch < 2.7 asserts on re-registration; newer replaces: skip both
        return
    default_map = dict(B.default_device_backend_map)
    try:
        # devices must be a list: a str is iterated per character in torch 2.13
        B.register_backend(BACKEND_NAME, create, extended_api=True, devices=devices())
    finally:
        B.default_device_backend_map.clear()
        B.default_device_backend_map.update(default_map)
    _rendezvous.install(BACKEND_NAME)


def unregister() -> None:
    """Undo everything register() changed (no-op when not registered)."""
    B = dist.Backend
    name, upper = BACKEND_NAME, BACKEND_NAME.upper()
    _rendezvous.uninstall()
    B._plugins.pop(upper, None)
    while name in B.backend_list:
        B.backend_list.remove(name)
    B.backend_capability.pop(name, None)
    B.backend_type_map.pop(name, None)
    if getattr(B, upper, None) == name:
        delattr(B, upper)
    for dev, be in list(B.default_device_backend_map.items()):
        if be == name:  # only if someone else mapped it after us
            del B.default_device_backend_map[dev]

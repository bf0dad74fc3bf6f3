"""Which devices are present and which backends serve them, as torch itself reports it (no hand-kept lists)."""

from __future__ import annotations

import importlib

import torch
import torch.distributed as dist

BUNDLED_BACKENDS = {"fakepg": "fakepg"}   # backend name -> module that registers it; ships with this suite


def _module_available(name: str) -> bool:
    module = getattr(torch, name, None)
    try:
        return bool(module is not None and module.is_available())
    except Exception:
        return False


def present_devices() -> list[str]:
    """cpu, plus every accelerator torch reports usable (after plugins had their chance to register one)."""
    found = ["cpu"]
    accelerator = getattr(torch, "accelerator", None)   # 2.6+
    if accelerator is not None:
        try:
            acc = accelerator.current_accelerator()
            if acc is not None and accelerator.is_available():
                found.append(acc.type)
        except Exception:
            pass
    # Older torch, or several accelerator kinds: the device modules torch knows about, and PrivateUse1's name.
    candidates = {"cuda", "xpu", "hpu", "mps", torch._C._get_privateuse1_backend_name()}
    for name in sorted(candidates - set(found)):
        if _module_available(name):
            found.append(name)
    return found


def indexed_devices() -> list[str]:
    """The present devices whose tensors live on a numbered device (what ``barrier(device_ids=...)`` and
    ``init_process_group(device_id=...)`` name): every present device but the host."""
    return [d for d in present_devices() if d != "cpu"]


FEATURES = ("streams", "events")


def device_features(device: str) -> frozenset:
    """What a device offers beyond running ops, probed through torch's device-generic API: "streams" (a new
    torch.Stream can be made) and "events" (a torch.Event can be recorded). Call it where the device is (a rank):
    on CUDA the probe creates a context. A simulated device without them says so here, and cases that need them
    are skipped rather than faked."""
    if device == "cpu":
        return frozenset()
    found = set()
    try:
        torch.Stream(device=device)
        found.add("streams")
    except Exception:
        pass
    try:
        torch.Event(device=device).record()
        found.add("events")
    except Exception:
        pass
    return frozenset(found)


def device_count(device: str) -> int:
    if device == "cpu":
        return 1
    module = getattr(torch, device, None)
    try:
        return int(module.device_count())
    except Exception:
        return 1


def default_backend(device: str) -> str | None:
    return dist.Backend.default_device_backend_map.get(device)


def known_backends() -> list[str]:
    names = [b for b in dist.Backend.backend_list if b != "undefined"]
    return names + [b for b in BUNDLED_BACKENDS if b not in names]


def backend_available(name: str) -> bool:
    if name in BUNDLED_BACKENDS:
        return True
    check = getattr(dist, "is_backend_available", None)
    if check is not None:
        try:
            return bool(check(name))
        except Exception:
            return False
    probe = getattr(dist, f"is_{name}_available", None)
    return bool(probe()) if probe else name in dist.Backend.backend_list


def backend_devices(name: str) -> list[str] | None:
    """Devices a backend declares; None when it does not say."""
    if name in BUNDLED_BACKENDS:
        importlib.import_module(BUNDLED_BACKENDS[name])
    caps = getattr(dist.Backend, "backend_capability", {})
    return list(caps[name]) if name in caps else None


def skip_reason(backend: str, device: str, world_size: int) -> str | None:
    """Why a (backend, device, world size) cannot run here, decided before any world starts."""
    if not backend_available(backend):
        return f"backend {backend} is not available in this torch build"
    devices = backend_devices(backend)
    if devices is not None and device not in devices:
        return f"backend {backend} does not serve {device} (it declares {', '.join(devices)})"
    # A device's native communicator gets one device per rank; other backends may share a device.
    if device != "cpu" and backend == default_backend(device) and world_size > device_count(device):
        return f"{backend} needs one {device} device per rank: {device_count(device)} present, world size {world_size}"
    return None


def plugin_modules_for(backend: str, plugins: list[str]) -> list[str]:
    """Modules a rank imports before init: the user's --plugin list, plus the bundled backend's own module."""
    extra = [BUNDLED_BACKENDS[backend]] if backend in BUNDLED_BACKENDS else []
    return list(plugins) + [m for m in extra if m not in plugins]

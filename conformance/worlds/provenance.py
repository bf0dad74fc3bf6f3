"""What a rank can say about the stack it runs on: versions, device name, the backend's advertised flags and, on
an accelerator, the device features cases may need (streams, events)."""

from __future__ import annotations

import json
import platform
import socket
import sys

import torch
import torch.distributed as dist

from .. import devices


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _device_name(device: torch.device) -> str:
    if device.type == "cpu":
        return _cpu_name()
    module = getattr(torch, device.type, None)
    try:
        return module.get_device_name(device.index or 0)
    except Exception:
        return device.type


def _driver(device: torch.device) -> str | None:
    if device.type == "cuda":
        try:
            with open("/proc/driver/nvidia/version") as f:
                first = f.readline()
            for word in first.split():
                if word[:1].isdigit() and "." in word:
                    return f"NVIDIA driver {word}, CUDA runtime {torch.version.cuda}"
        except OSError:
            pass
        return f"CUDA runtime {torch.version.cuda}" if torch.version.cuda else None
    hip = getattr(torch.version, "hip", None)
    if hip:
        return f"HIP {hip}"
    # Other accelerators' torch builds say their runtime as torch.version.<device type> (xpu does).
    runtime = getattr(torch.version, device.type, None)
    return f"{device.type} runtime {runtime}" if isinstance(runtime, str) and device.type != "cpu" else None


def _backend_version(backend: str) -> str | None:
    if backend == "nccl":
        try:
            v = torch.cuda.nccl.version()
            return "NCCL " + ".".join(map(str, v)) if isinstance(v, tuple) else f"NCCL {v}"
        except Exception:
            return None
    if backend == "gloo":
        return f"gloo (bundled with torch {torch.__version__})"
    package = _registering_package(backend)
    return f"{package} {_package_version(package)}".strip() if package else None


def _registering_package(backend: str) -> str | None:
    """The top-level package of a plugin backend's creator (Backend.register_backend keeps it), e.g.
    habana_frameworks for hccl; else a module named like the backend."""
    plugin = getattr(dist.Backend, "_plugins", {}).get(backend.upper())
    module = getattr(plugin[0], "__module__", None) if plugin else None
    if module:
        return module.split(".")[0]
    return backend if backend in sys.modules else None


def _package_version(package: str) -> str:
    version = getattr(sys.modules.get(package), "__version__", None)
    if version:
        return str(version)
    try:   # the distribution that installs the package (its name may differ from the package's)
        from importlib import metadata
        dists = getattr(metadata, "packages_distributions", lambda: {})().get(package) or [package]
        return metadata.version(dists[0])
    except Exception:
        return ""


_FLAGS = ("supports_splitting", "supports_coalescing", "supports_shrinking", "supports_time_estimate")


def _advertised(group, device: torch.device) -> dict:
    flags: dict = {"process_group_type": type(group).__name__}
    try:
        backend = group._get_backend(device)
    except Exception:
        backend = group   # a Python ProcessGroup is its own backend
    for name in _FLAGS:
        value = getattr(backend, name, None)
        if value is not None and not callable(value):
            flags[name] = bool(value)
    if device.type != "cpu":   # what the device can do beyond running ops (cases that need more skip)
        features = devices.device_features(device.type)
        for name in devices.FEATURES:
            flags[f"device_{name}"] = name in features
    return flags


def collect(backend: str, device: torch.device, group, world_model: str) -> dict:
    """Plain JSON types only: this travels over pipes and pytest-xdist's channel (TorchVersion does not)."""
    return json.loads(json.dumps(_collect(backend, device, group, world_model), default=str))


def _collect(backend: str, device: torch.device, group, world_model: str) -> dict:
    return {
        "torch": torch.__version__,
        "torch_git": getattr(torch.version, "git_version", None),
        "backend_version": _backend_version(backend),
        "driver": _driver(device),
        "device_name": _device_name(device),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "capabilities": {"world_model": world_model, **_advertised(group, device)},
    }

"""What a rank can say about the stack it runs on: versions, device name, the backend's advertised flags."""

from __future__ import annotations

import json
import platform
import socket

import torch


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
    return f"HIP {hip}" if hip else None


def _backend_version(backend: str) -> str | None:
    if backend == "nccl":
        try:
            v = torch.cuda.nccl.version()
            return "NCCL " + ".".join(map(str, v)) if isinstance(v, tuple) else f"NCCL {v}"
        except Exception:
            return None
    if backend == "gloo":
        return f"gloo (bundled with torch {torch.__version__})"
    module = __import__("sys").modules.get(backend)
    return f"{backend} {getattr(module, '__version__', '')}".strip() if module else None


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

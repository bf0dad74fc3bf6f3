"""``torch.fakedev``: the device module torch and users ask (the ``torch.cuda`` of this device).

torch looks these names up by device name: ``torch.get_device_module``, ``torch.accelerator``
(2.9+ delegates ``is_available``/``device_count`` here), ``torch.manual_seed``, the
``Tensor.fakedev()`` methods. The current index lives in C++ (the device guard), per
thread as on CUDA, so tensors created with a bare ``"fakedev"`` land on it.
"""

from __future__ import annotations

import torch

NAME = "fakedev"


def _ops():
    return torch.ops.fakedev


def is_available() -> bool:
    return device_count() > 0


def is_initialized() -> bool:
    return True


def _lazy_init() -> None:
    pass


def _is_in_bad_fork() -> bool:
    return False   # host memory: a forked child may use the device


def device_count() -> int:
    return int(_ops().device_count())


def current_device() -> int:
    return int(_ops().current_device())


def _index(device) -> int:
    """An index from None (the current one), an int, "fakedev:1" or a torch.device."""
    if device is None:
        return current_device()
    if isinstance(device, int):
        return device
    device = torch.device(device)
    if device.type != NAME:
        raise ValueError(f"expected a {NAME} device, got {device}")
    return current_device() if device.index is None else device.index


def set_device(device) -> None:
    _ops().set_device(_index(device))


def synchronize(device=None) -> None:
    """Nothing to wait for: every operation has finished when it returns."""
    _index(device)


def get_device_name(device=None) -> str:
    return f"fakedev {_index(device)} (simulated, host memory)"


def manual_seed(seed: int) -> None:
    pass   # random ops run on the host with the host's generator, which torch.manual_seed seeds


manual_seed_all = manual_seed


class device:
    """Context manager that makes ``idx`` the current device, like ``torch.cuda.device``."""

    def __init__(self, idx):
        self.idx = _index(idx)
        self.prev = None

    def __enter__(self):
        self.prev = current_device()
        set_device(self.idx)

    def __exit__(self, *exc):
        set_device(self.prev)
        return False

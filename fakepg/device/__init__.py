"""fakedev: a simulated accelerator, and the backends that serve it.

Importing this module (``--plugin fakepg.device``, or ``import fakepg.device`` in any program)
makes torch report an accelerator named "fakedev" with ``FAKEDEV_DEVICE_COUNT`` (default 4)
devices::

    import torch, fakepg.device
    torch.accelerator.current_accelerator()       # device(type='fakedev')   (torch 2.6+)
    torch.fakedev.device_count()                  # 4
    x = torch.arange(6).to("fakedev:1")           # an explicit copy, as on real hardware
    x + torch.ones(6)                             # RuntimeError: Expected all tensors to be on the same device

It is torch's PrivateUse1 device type, renamed, with a small C++ extension (csrc/fakedev.cpp,
built at first import and cached per torch build; see _build.py): tensors hold host memory
but are a distinct device type; every aten op runs through a fallback that refuses mixed
devices and computes on the host. Streams and events are not simulated: asking for one
raises ("doesn't support").

Backends on it: fakepg serves it, and "hoststaged" (_staged.py), a real communicator that
copies to host, runs gloo and copies back, is registered as its default backend in
``Backend.default_device_backend_map``, the way a vendor's plugin registers its own
(docs/vendor-plugin.md).
"""

from __future__ import annotations

import torch

from . import _build, _module, _staged

NAME = _module.NAME
BACKEND = _staged.BACKEND
build_seconds = 0.0   # what the first import in this process spent compiling (0.0: cached)


def _install() -> None:
    global build_seconds
    current = torch._C._get_privateuse1_backend_name()
    if current == NAME:
        return
    if current != "privateuseone":
        raise RuntimeError(f"fakepg.device: torch's PrivateUse1 device is already taken by {current!r}; "
                           f"a process can host one PrivateUse1 backend")
    build_seconds = _build.load()              # kernels first: a failed build leaves torch untouched
    torch.utils.rename_privateuse1_backend(NAME)
    torch._register_device_module(NAME, _module)
    torch.utils.generate_methods_for_privateuse1_backend()


_install()

import fakepg._registration as _fakepg   # noqa: E402  (fakepg registered itself before the rename)

_fakepg.serve_device(NAME)
_staged.register(NAME)

__all__ = ["BACKEND", "NAME", "build_seconds"]

"""The installed torch's version as a comparable tuple, parsed in one place (cases depend on it through ``Env``)."""

from __future__ import annotations


def torch_version() -> tuple[int, int]:
    import torch
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int(minor)

"""torch versions as comparable tuples, parsed in one place (cases depend on the installed one through ``Env``; the
report orders runs of several releases)."""

from __future__ import annotations

import re


def release(version: str) -> tuple[int, ...]:
    """"2.4.1+cu121" -> (2, 4, 1): numeric order (2.4 before 2.13); a local part (+cu121) or suffix (a0) is dropped."""
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0])[:3])


def torch_version() -> tuple[int, int]:
    import torch
    major, minor = release(torch.__version__)[:2]
    return major, minor

"""Build the fakedev C++ extension once per torch build, cache it, and load it.

The build goes through ``torch.utils.cpp_extension.load`` (it knows the compiler flags,
C++ standard and ABI each torch release wants; it needs g++ and ninja). The result is
cached under ``$FAKEDEV_BUILD_DIR`` (default ``~/.cache/fakepg-device``), in a directory
named after the torch build, the Python version and the source's hash, so a venv per
torch release each gets its own, and a changed source rebuilds.

Many processes may import the device at once (every rank of a world): an exclusive
``flock`` makes one of them build while the others wait; the kernel drops the lock if
the builder dies, so a killed build never wedges later ones.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sys
import time

import torch

NAME = "fakepg_fakedev"
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc", "fakedev.cpp")


def cache_dir() -> str:
    root = os.environ.get("FAKEDEV_BUILD_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fakepg-device")
    with open(SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    git = (getattr(torch.version, "git_version", None) or "")[:8]
    tag = f"torch{torch.__version__}-{git}-py{sys.version_info[0]}{sys.version_info[1]}-{digest}"
    return os.path.join(root, tag.replace("+", "_"))


def library_path() -> str:
    return os.path.join(cache_dir(), NAME + ".so")


def load() -> float:
    """Load the extension, building it first if needed; returns the build time (0.0 when cached)."""
    where = cache_dir()
    done = os.path.join(where, "built")
    seconds = 0.0
    if not os.path.exists(done):
        os.makedirs(where, exist_ok=True)
        with open(os.path.join(where, "build.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not os.path.exists(done):     # nobody built it while we waited
                seconds = _build(where)
                with open(done, "w") as f:
                    f.write(f"{seconds:.1f}\n")
    torch.ops.load_library(library_path())   # a second load of the same path is a no-op
    return seconds


def _build(where: str) -> float:
    from torch.utils import cpp_extension

    # torch's own build lock: a stale one (its builder was killed) would block forever, and
    # holding our flock we are the only builder of this directory.
    stale = os.path.join(where, "lock")
    if os.path.exists(stale):
        os.remove(stale)
    t0 = time.monotonic()
    cpp_extension.load(name=NAME, sources=[SOURCE], build_directory=where, extra_cflags=["-O2"],
                       is_python_module=False, verbose=bool(os.environ.get("FAKEDEV_BUILD_VERBOSE")))
    return time.monotonic() - t0

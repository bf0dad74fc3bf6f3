"""Writing report files so that a reader (or a run killed mid-write) never sees half a file."""

from __future__ import annotations

import os
import threading


def atomic_write(path: str, text: str) -> None:
    tmp = "%s.tmp.%d.%d" % (path, os.getpid(), threading.get_ident())
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)

"""Where a hung rank is stuck, from a stack sample, and what a dead rank said last.

Each rank registers ``faulthandler`` on SIGUSR1 with a file in its world's directory; the controller sends the
signal to a rank that outlived its case's watchdog and reads the dump (faulthandler writes from the signal
handler itself, so it works while the rank is blocked inside C++).  The answer names the torch.distributed call
the rank was in, from the outside (what the case called), and the innermost Python frame (where it waits).
"""

from __future__ import annotations

import os
import re
import signal
import time

# torch.distributed calls that create process groups: a hang inside one is a hang in group creation.
GROUP_CREATORS = {"init_process_group", "new_group", "new_subgroups", "new_subgroups_by_enumeration",
                  "split_group", "_new_group_with_tag", "_new_process_group_helper", "init_device_mesh"}
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<fn>\S+)')
# torch.distributed modules whose functions are the public entry points a case calls (not their logging wrappers)
_API_FILES = ("distributed_c10d.py", "_functional_collectives.py", "device_mesh.py")


def request(pids: list[int], dumps: list[str], wait_s: float = 1.0) -> list[str]:
    """Ask each rank for a stack dump and return what each wrote ("" for none)."""
    for path in dumps:
        _truncate(path)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGUSR1)
        except (ProcessLookupError, PermissionError, OSError):
            pass
    deadline = time.monotonic() + wait_s
    texts = [""] * len(dumps)
    while time.monotonic() < deadline:
        texts = [_read(p) for p in dumps]
        if all("most recent call first" in t for t in texts):
            time.sleep(0.05)            # let the dump finish
            return [_read(p) for p in dumps]
        time.sleep(0.05)
    return texts


def where(dump: str, main_thread: int | None = None) -> str:
    """"in dist.<call> (group creation) at file:line in fn" from one rank's dump, or "" when it says nothing."""
    frames = _main_frames(dump, main_thread)
    if not frames:
        return ""
    inner = frames[0]
    api = next((f for f in reversed(frames) if f["file"].endswith(_API_FILES)), None)
    at = f"{os.path.basename(inner['file'])}:{inner['line']} in {inner['fn']}"
    if api is None:
        return f"at {at}"
    kind = f" ({'group creation' if api['fn'] in GROUP_CREATORS else 'the collective'})"
    prefix = "funcol" if api["file"].endswith("_functional_collectives.py") else "dist"
    return f"in {prefix}.{api['fn']}{kind} at {at}"


def _main_frames(dump: str, main_thread: int | None) -> list[dict]:
    """The main thread's frames, innermost first."""
    blocks = re.split(r"\n(?=(?:Current thread|Thread) 0x)", dump.strip())
    chosen = None
    for block in blocks:
        head = block.splitlines()[0] if block else ""
        ident = re.search(r"0x([0-9a-fA-F]+)", head)
        if main_thread is not None and ident and int(ident.group(1), 16) == main_thread:
            chosen = block
            break
    if chosen is None:
        chosen = blocks[-1] if blocks else ""
    return [m.groupdict() for m in _FRAME.finditer(chosen)]


def tail(path: str, lines: int = 4, width: int = 400) -> str:
    """The last few non-empty lines of a rank's output, joined, for a crash reason."""
    text = [ln.strip() for ln in _read(path).splitlines() if ln.strip()]
    out = " | ".join(text[-lines:])
    return out if len(out) <= width else "..." + out[-width:]


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _truncate(path: str) -> None:
    # ranks open their dump file in append mode, so the next dump starts at the new end
    try:
        with open(path, "r+") as f:
            f.truncate(0)
    except OSError:
        pass

"""The reaper: a tiny process that outlives a killed controller long enough to kill every rank and everything the
ranks started.

Ranks are ordinary (non-daemonic) processes, each leading its own process group, so a backend may start helper
processes of its own (they join the rank's group).  The controller kills a world by group.  But if the controller
itself dies (``kill -9`` of pytest), nothing in it runs: so each controller starts one reaper, tells it every
rank's group as the world starts, and the reaper kills those groups the moment its stdin closes, which happens
when the controller exits for any reason.  It needs no torch and ignores Ctrl-C (the controller handles that).

    python -m conformance.worlds.reaper      # reads "add PGID" / "del PGID" lines until EOF
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading


def _kill_group(pgid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin:
        verb, _, arg = line.strip().partition(" ")
        if verb == "add":
            groups.add(int(arg))
        elif verb == "del":
            groups.discard(int(arg))
    for pgid in groups:
        _kill_group(pgid)


class Reaper:
    """The controller's handle on its reaper (started on first use, one per controller process)."""

    def __init__(self):
        self._proc = None
        self._lock = threading.Lock()

    def _send(self, line: str) -> None:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = subprocess.Popen([sys.executable, "-m", "conformance.worlds.reaper"],
                                              stdin=subprocess.PIPE, start_new_session=True, text=True,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                self._proc.stdin.write(line + "\n")
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self._proc = None

    def watch(self, pgid: int) -> None:
        self._send(f"add {pgid}")

    def forget(self, pgid: int) -> None:
        self._send(f"del {pgid}")


REAPER = Reaper()

if __name__ == "__main__":
    main()

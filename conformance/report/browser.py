"""Headless Chromium, used for screenshots of report pages and by the browser tests.

Chromium is found, in this order: the ``C10D_CHROMIUM`` environment variable (a path or a command name), then
``chromium``, ``chromium-browser``, ``google-chrome``, ``google-chrome-stable``, ``chrome`` and ``headless_shell``
on ``PATH`` (Debian: ``apt-get install -y chromium``).  No Python dependency is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import List, Optional, Sequence

__all__ = ["find_chromium", "BrowserError", "dump_dom", "screenshot", "file_url"]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell")
BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
)


class BrowserError(RuntimeError):
    """Chromium is missing or failed; the message is one line."""


def find_chromium() -> Optional[str]:
    env = os.environ.get("C10D_CHROMIUM")
    if env:
        return shutil.which(env) or (env if os.path.isfile(env) and os.access(env, os.X_OK) else None)
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def file_url(path: str) -> str:
    """``file://`` URL of a local path; a ``#fragment`` on the path is kept as the URL's fragment."""
    from pathlib import Path

    path, sep, frag = path.partition("#")
    return Path(os.path.abspath(path)).as_uri() + sep + frag


def _run(args: Sequence[str], timeout: float) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None:
        raise BrowserError(
            "no Chromium found (set C10D_CHROMIUM or install it: apt-get install -y chromium)"
        )
    with tempfile.TemporaryDirectory(prefix="c10d-chromium-") as profile:
        cmd: List[str] = [exe, *BASE_FLAGS, "--user-data-dir=%s" % profile, *args]
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise BrowserError("chromium did not finish within %.0f s" % timeout) from None
        except OSError as e:
            raise BrowserError("cannot start %s: %s" % (exe, e)) from None
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise BrowserError("chromium exited with %d: %s" % (proc.returncode, tail[0][:200]))
    return proc


def dump_dom(url_or_path: str, budget_ms: int = 2000, window: str = "1400,1000", timeout: float = 60.0) -> str:
    """The DOM after the page's scripts ran (``--dump-dom`` with a virtual time budget)."""
    url = url_or_path if "://" in url_or_path else file_url(url_or_path)
    proc = _run(["--window-size=%s" % window, "--virtual-time-budget=%d" % budget_ms, "--dump-dom", url], timeout)
    return proc.stdout.decode("utf-8", "replace")


def screenshot(url_or_path: str, png_path: str, window: str = "1400,1000", budget_ms: int = 2000,
               timeout: float = 60.0) -> str:
    """Write a PNG of the page as a person would see it in a 1400x1000 window; returns the PNG path."""
    url = url_or_path if "://" in url_or_path else file_url(url_or_path)
    png_path = os.path.abspath(png_path)
    parent = os.path.dirname(png_path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    _run(
        ["--window-size=%s" % window, "--virtual-time-budget=%d" % budget_ms, "--screenshot=%s" % png_path, url],
        timeout,
    )
    if not os.path.exists(png_path) or os.path.getsize(png_path) == 0:
        raise BrowserError("chromium wrote no screenshot to %s" % png_path)
    return png_path

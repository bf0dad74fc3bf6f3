"""Run the conformance suite the way a user does (a pytest subprocess) and read what it left behind."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGINS = os.path.join(REPO, "tests", "plugins")


def suite_env(fakepg_options: dict | None = None, **extra) -> dict:
    env = dict(os.environ)
    env.pop("FAKEPG_OPTIONS", None)
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        env.pop(key, None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PLUGINS, REPO, env.get("PYTHONPATH", "")) if p)
    if fakepg_options is not None:
        env["FAKEPG_OPTIONS"] = json.dumps(fakepg_options)
    env.update(extra)
    return env


def suite_cmd(report_dir, *args) -> list[str]:
    return [sys.executable, "-m", "pytest", os.path.join(REPO, "conformance"), "-p", "no:cacheprovider",
            "--report-dir", str(report_dir), *args]


def run_suite(report_dir, *args, fakepg_options=None, timeout=300, env=None):
    """Run the suite to the end; returns (CompletedProcess, {world label: report document})."""
    proc = subprocess.run(suite_cmd(report_dir, *args), cwd=REPO, env=env or suite_env(fakepg_options),
                          capture_output=True, text=True, timeout=timeout)
    return proc, read_reports(report_dir)


def read_reports(report_dir) -> dict:
    out = {}
    for path in glob.glob(os.path.join(str(report_dir), "*.json")):
        with open(path) as f:
            doc = json.load(f)
        run = doc["run"]
        out[f"{run['device']}-{run['backend']}-ws{run['world_size']}"] = doc
    return out


def statuses(doc) -> dict:
    return {r["id"]: r["status"] for r in doc["results"]}


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (rank processes call setsid, but their parent chain stays)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids) -> set[int]:
    out = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    out.add(pid)
        except OSError:
            pass
    return out


def wait_for(predicate, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")

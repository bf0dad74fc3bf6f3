"""Incremental, crash-safe writer of one run's report.

The JSON file is rewritten atomically (temporary file + ``os.replace``) so a reader, or a run killed between
two flushes, always finds a complete JSON document; it says ``"complete": false`` until :meth:`RunReport.close`.

Cost model: each record is serialised once, when it is added; a flush joins the cached fragments and writes
them (a few milliseconds for 20,000 results), so periodic flushes stay cheap however long the run is.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import socket
import sys
import threading
import time
from typing import Any, Dict, List, Optional

from .model import SCHEMA_VERSION, STATUSES, run_stem, summarize

__all__ = ["RunReport", "default_run_info", "normalize_record", "suite_version", "atomic_write"]

_RUN_KEYS = (
    "backend",
    "device",
    "world_size",
    "torch",
    "torch_git",
    "backend_version",
    "driver",
    "device_name",
    "python",
    "host",
    "platform",
    "suite_version",
    "started",
    "duration_s",
    "launcher",
    "timeout_s",
    "argv",
    "interrupted",
)
_RECORD_DEFAULTS = (
    ("variant", "default"),
    ("dtype", None),
    ("op", None),
    ("shape", None),
    ("mode", "sync"),
    ("reason", ""),
    ("duration_s", None),
    ("expected", None),
    ("ranks", None),
)
_STATUS_SET = frozenset(STATUSES)
#: Keys a caller may put in a record that only repeat the run's identity: dropped, ``run`` holds them.
_RUN_ECHO = ("world", "backend", "device", "world_size")
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def suite_version() -> str:
    try:
        import conformance  # type: ignore

        v = getattr(conformance, "__version__", None)
        if v:
            return str(v)
    except Exception:
        pass
    try:
        from importlib.metadata import version

        return version("c10d-conformance")
    except Exception:
        return "0.1.0"


def _utc_now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_run_info(**given: Any) -> Dict[str, Any]:
    """Provenance with every key of the contract; ``given`` wins over the defaults found here.

    Only ``backend``, ``device`` and ``world_size`` have no default.  torch's version is read from the imported
    module when the caller already imported it, else from the installed distribution (no ``import torch`` here).
    """
    missing = [k for k in ("backend", "device", "world_size") if given.get(k) in (None, "")]
    if missing:
        raise ValueError("run info lacks %s" % ", ".join(missing))
    torch = sys.modules.get("torch")
    torch_version, torch_git = "unknown", None
    if torch is not None:
        torch_version = str(getattr(torch, "__version__", "unknown"))
        torch_git = getattr(getattr(torch, "version", None), "git_version", None)
    elif "torch" not in given:
        try:  # the installed version, without paying for `import torch`
            from importlib.metadata import version

            torch_version = version("torch")
        except Exception:
            pass
    run: Dict[str, Any] = {
        "torch": torch_version,
        "torch_git": torch_git,
        "backend_version": None,
        "driver": None,
        "device_name": None,
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "suite_version": suite_version(),
        "started": _utc_now_iso(),
        "duration_s": 0.0,
        "launcher": "pytest",
        "timeout_s": 0.0,
        "argv": list(sys.argv),
        "interrupted": False,
    }
    run.update(given)
    run["world_size"] = int(run["world_size"])
    run["argv"] = [str(a) for a in run["argv"]]
    return run


def normalize_record(record: Dict[str, Any]) -> Dict[str, Any]:
    """Fill the optional fields of a result record and check the two that matter (id, status).

    Keys that repeat the run (``world``, ``backend``, ``device``, ``world_size``) are dropped; other extra keys
    (e.g. ``call_s``) are kept: the schema allows them.
    """
    rid = record.get("id")
    if not isinstance(rid, str) or not rid:
        raise ValueError("result record needs a non-empty string id: %r" % (record,))
    status = record.get("status")
    if status not in _STATUS_SET:
        raise ValueError("result %s: unknown status %r (one of %s)" % (rid, status, ", ".join(STATUSES)))
    for key in _RUN_ECHO:
        record.pop(key, None)
    if "collective" not in record:
        record["collective"] = rid.split("/", 1)[0]
    for key, default in _RECORD_DEFAULTS:
        if key not in record:
            record[key] = default
    if record["reason"] is None:
        record["reason"] = ""
    ranks = record["ranks"]
    if ranks is not None:
        record["ranks"] = {str(k): str(v) for k, v in ranks.items()}
    return record


def atomic_write(path: str, text: str) -> None:
    tmp = "%s.tmp.%d.%d" % (path, os.getpid(), threading.get_ident())
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


class RunReport:
    """The report of one run (device x backend x world size), kept on disk while the run goes on.

    ``run`` is the provenance (see :func:`default_run_info`; missing keys are filled).  ``expectations`` is an
    optional :class:`~conformance.report.expectations.Expectations`; when given and it applies to this run,
    :meth:`add` relabels records through it.
    """

    MIN_INTERVAL_S = 0.5

    def __init__(self, report_dir: str, run: Dict[str, Any], expectations: Any = None) -> None:
        self.report_dir = str(report_dir)
        os.makedirs(self.report_dir, exist_ok=True)
        self.run = default_run_info(**run)
        self.stem = run_stem(self.run)
        self.json_path = os.path.join(self.report_dir, self.stem + ".json")
        self.html_path = os.path.join(self.report_dir, self.stem + ".html")
        self.index_path = os.path.join(self.report_dir, "index.html")
        self.capabilities: Dict[str, Dict[str, Any]] = {"advertised": {}, "observed": {}}
        self.expectations = expectations if expectations is not None and expectations.applies_to(self.run) else None
        self._records: List[Dict[str, Any]] = []
        self._encoded: List[str] = []
        self._index: Dict[str, int] = {}
        self._counts: Dict[str, int] = {}
        self._lock = threading.RLock()
        self._t0 = time.monotonic()
        self._last_flush = 0.0
        self._flush_cost = 0.0
        self._dirty = True
        self.complete = False
        self.closed = False
        self.flush(force=True)

    # -- building ---------------------------------------------------------------------------------------------
    def add(self, record: Dict[str, Any]) -> Dict[str, Any]:
        """Add one result (a re-run of an id replaces the earlier record) and flush if one is due."""
        record = normalize_record(dict(record))
        if self.expectations is not None:
            record = self.expectations.apply(record)
        enc = _encode(record)
        with self._lock:
            if self.closed:
                raise RuntimeError("report %s is closed" % self.json_path)
            i = self._index.get(record["id"])
            if i is None:
                self._index[record["id"]] = len(self._records)
                self._records.append(record)
                self._encoded.append(enc)
            else:
                old = self._records[i]["status"]
                self._counts[old] -= 1
                self._records[i] = record
                self._encoded[i] = enc
            self._counts[record["status"]] = self._counts.get(record["status"], 0) + 1
            self._dirty = True
        self.flush()
        return record

    def set_capabilities(self, advertised: Dict[str, Any], observed: Dict[str, Any]) -> None:
        with self._lock:
            self.capabilities = {"advertised": dict(advertised or {}), "observed": dict(observed or {})}
            self._dirty = True
        self.flush()

    def update_run(self, **fields: Any) -> None:
        """Add provenance found later (backend_version, driver, device_name, ...)."""
        with self._lock:
            self.run.update(fields)
            self._dirty = True

    @property
    def results(self) -> List[Dict[str, Any]]:
        return self._records

    def summary(self) -> Dict[str, Any]:
        return summarize(self._counts, self.complete)

    def to_dict(self) -> Dict[str, Any]:
        with self._lock:
            return {
                "schema": SCHEMA_VERSION,
                "complete": self.complete,
                "run": dict(self.run),
                "capabilities": {k: dict(v) for k, v in self.capabilities.items()},
                "summary": self.summary(),
                "results": list(self._records),
            }

    # -- writing ----------------------------------------------------------------------------------------------
    def _serialize(self) -> str:
        head = {
            "schema": SCHEMA_VERSION,
            "complete": self.complete,
            "run": self.run,
            "capabilities": self.capabilities,
            "summary": self.summary(),
        }
        text = json.dumps(head, ensure_ascii=False, indent=1, default=str)
        return text[:-2] + ',\n "results": [\n' + ",\n".join(self._encoded) + "\n ]\n}\n"

    def flush(self, force: bool = False) -> bool:
        """Rewrite the JSON file atomically; unless ``force``, at most every 0.5 s (longer if a write is slow).

        Returns True when the file was written.
        """
        now = time.monotonic()
        if not force:
            if not self._dirty:
                return False
            if now - self._last_flush < max(self.MIN_INTERVAL_S, 20.0 * self._flush_cost):
                return False
        with self._lock:
            # the caller may have set a longer duration (e.g. since the session started): keep the larger
            self.run["duration_s"] = max(float(self.run.get("duration_s") or 0.0), round(now - self._t0, 3))
            text = self._serialize()
            atomic_write(self.json_path, text)
            self._dirty = False
            done = time.monotonic()
            self._flush_cost = done - now
            self._last_flush = done
        return True

    def close(self, complete: bool, interrupted: bool = False, render: bool = True) -> Dict[str, Any]:
        """Write the final JSON, this run's HTML page and ``index.html`` over every report in the directory.

        Returns the final document.  Rendering problems never lose the JSON: it is written first.
        """
        with self._lock:
            self.complete = bool(complete)
            self.run["interrupted"] = bool(interrupted) or bool(self.run.get("interrupted"))
            self.flush(force=True)
            self.closed = True
            doc = self.to_dict()
        if render:
            from .html import render_index_dir, write_run_html

            write_run_html(doc, self.html_path)
            render_index_dir(self.report_dir)
        return doc

    def __enter__(self) -> "RunReport":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self.closed:
            self.close(complete=exc_type is None, interrupted=exc_type is not None)

"""Incremental, crash-safe writer of one run's report.

The JSON file is rewritten atomically (temporary file + ``os.replace``) so a reader, or a run killed between
two flushes, always finds a complete JSON document; it says ``"complete": false`` until :meth:`RunReport.close`.

Cost model: each record is serialised once, when it is added; a flush joins the cached fragments and writes
them (a few milliseconds for 20,000 results), so periodic flushes stay cheap however long the run is.  Flushing
is the owner's call (``flush``): the suite's collector flushes every report from one thread twice a second.
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

from .files import atomic_write
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
    "start_error",
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
        "start_error": None,
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


class RunReport:
    """The report of one run (device x backend x world size), kept on disk while the run goes on.

    ``run`` is the provenance (see :func:`default_run_info`; missing keys are filled).  Records arrive final
    (expectations, if any, were applied by the one process that applies them).  ``duration_s`` is this run's own:
    from its first case's start to its last case's end.
    """

    def __init__(self, report_dir: str, run: Dict[str, Any]) -> None:
        self.report_dir = str(report_dir)
        os.makedirs(self.report_dir, exist_ok=True)
        self.run = default_run_info(**run)
        self.stem = run_stem(self.run)
        self.json_path = os.path.join(self.report_dir, self.stem + ".json")
        self.html_path = os.path.join(self.report_dir, self.stem + ".html")
        self.index_path = os.path.join(self.report_dir, "index.html")
        self.capabilities: Dict[str, Any] = {"advertised": {}, "observed": {}, "disagree": []}
        self._records: List[Dict[str, Any]] = []
        self._encoded: List[str] = []
        self._index: Dict[str, int] = {}
        self._counts: Dict[str, int] = {}
        self._skip_reasons: Dict[str, int] = {}
        self._lock = threading.RLock()
        self._first: Optional[float] = None    # monotonic start of the first case
        self._dirty = True
        self.complete = False
        self.closed = False
        self.flush(force=True)

    # -- building ---------------------------------------------------------------------------------------------
    def add(self, record: Dict[str, Any]) -> Dict[str, Any]:
        """Add one result (a re-run of an id replaces the earlier record)."""
        record = normalize_record(dict(record))
        enc = _encode(record)
        now = time.monotonic()
        with self._lock:
            if self.closed:
                raise RuntimeError("report %s is closed" % self.json_path)
            i = self._index.get(record["id"])
            if i is None:
                self._index[record["id"]] = len(self._records)
                self._records.append(record)
                self._encoded.append(enc)
            else:
                self._count(self._records[i], -1)
                self._records[i] = record
                self._encoded[i] = enc
            self._count(record, 1)
            if self._first is None:
                self._first = now - float(record.get("duration_s") or 0.0)
            self.run["duration_s"] = round(now - self._first, 3)
            self._dirty = True
        return record

    def _count(self, record: Dict[str, Any], n: int) -> None:
        status = record["status"]
        self._counts[status] = self._counts.get(status, 0) + n
        if status == "skipped":
            reason = record.get("reason") or ""
            self._skip_reasons[reason] = self._skip_reasons.get(reason, 0) + n

    def set_capabilities(self, advertised: Dict[str, Any], observed: Dict[str, Any]) -> None:
        """What the backend claims and what the run measured; ``disagree`` lists flags where both are known and
        differ."""
        adv, obs = dict(advertised or {}), dict(observed or {})
        disagree = sorted(k for k in adv if obs.get(k) is not None and adv[k] is not None and adv[k] != obs[k])
        with self._lock:
            self.capabilities = {"advertised": adv, "observed": obs, "disagree": disagree}
            self._dirty = True

    def update_run(self, **fields: Any) -> None:
        """Add provenance found later (backend_version, driver, device_name, ...)."""
        with self._lock:
            self.run.update(fields)
            self._dirty = True

    @property
    def results(self) -> List[Dict[str, Any]]:
        return self._records

    def summary(self) -> Dict[str, Any]:
        why = max(self._skip_reasons, key=self._skip_reasons.get) if any(self._skip_reasons.values()) else ""
        return summarize(self._counts, self.complete, why)

    def to_dict(self) -> Dict[str, Any]:
        with self._lock:
            return {
                "schema": SCHEMA_VERSION,
                "complete": self.complete,
                "run": dict(self.run),
                "capabilities": {k: (dict(v) if isinstance(v, dict) else list(v)) for k, v in self.capabilities.items()},
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
        """Rewrite the JSON file atomically if anything changed since the last write (always with ``force``).

        Returns True when the file was written.
        """
        with self._lock:
            if not (force or self._dirty):
                return False
            atomic_write(self.json_path, self._serialize())
            self._dirty = False
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

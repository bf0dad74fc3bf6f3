"""Expectations files: a vendor's known statuses per case pattern, turning known gaps into ``xfailed``.

Format (TOML; one file per backend and device, passed as ``--expect FILE``)::

    # optional run filters: the file applies only to runs that match all of them (fnmatch patterns or lists)
    backend = "gloo"
    device = "cpu"
    world_size = [2, 4]          # optional: int or list of ints
    torch = "2.13.*"             # optional: fnmatch over run.torch

    [[expect]]
    match = "all_reduce/*/bool/SUM/*"     # fnmatch over the result id (case-sensitive; * also spans '/')
    status = "failed"                     # one status or a list: ["failed", "error"]
    reason = "gloo bool SUM leaves raw byte 2"   # required: why (a bug link is ideal)

    [[expect]]
    collective = ["reduce_scatter", "reduce_scatter_single"]   # field filters, each a pattern or a list of them:
    dtype = "complex*"                    # collective, variant, dtype, op, shape, mode
    op = "none"                           # a null field matches "none"
    status = "unsupported"
    reason = "..."

An entry needs ``status``, ``reason`` and at least one selector (``match`` or a field filter); all selectors of
an entry must match.  The first matching entry wins.  Statuses are the report's base statuses.

Applying an entry to a result (:meth:`Expectations.apply`):

* status in the entry's list and non-conformant -> ``xfailed`` (``expected`` = that status),
* status in the list and conformant (passed, unsupported, skipped) -> unchanged (``expected`` = that status),
* ``passed`` while the list names no ``passed`` -> ``xpassed`` (``expected`` = the first listed status),
* anything else -> unchanged, ``expected`` = the first listed status (still counted as unexpected).

:meth:`Expectations.stale` lists entries that matched no result or whose every match passed (``xpassed``):
candidates for deletion, to be warned about.
"""

from __future__ import annotations

import fnmatch
import re
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .model import BASE_STATUSES, CONFORMANT

if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # pragma: no cover - exercised on 3.9/3.10
    try:
        import tomli as _toml  # type: ignore
    except ImportError:  # pragma: no cover
        _toml = None  # type: ignore

__all__ = ["Expectations", "ExpectationSet", "Entry", "combine"]

FIELDS = ("collective", "variant", "dtype", "op", "shape", "mode")
_ENTRY_KEYS = frozenset(("match", "status", "reason") + FIELDS)
_TOP_KEYS = frozenset(("backend", "device", "world_size", "torch", "expect"))
_HEADER = re.compile(r"^\s*\[\[\s*expect\s*\]\]")
_RUN_FIELDS = frozenset(("backend", "device", "world_size"))
_torch_version: List[Optional[str]] = []


def _installed_torch() -> Optional[str]:
    if not _torch_version:
        torch = sys.modules.get("torch")
        v = getattr(torch, "__version__", None) if torch is not None else None
        if v is None:
            try:
                from importlib.metadata import version

                v = version("torch")
            except Exception:
                v = None
        _torch_version.append(None if v is None else str(v))
    return _torch_version[0]


def _run_of(record: Dict[str, Any]) -> Dict[str, Any]:
    """Run filters' view of a record that carries its run's backend/device/world_size (the plugin's do)."""
    return {
        "backend": record.get("backend"),
        "device": record.get("device"),
        "world_size": record.get("world_size"),
        "torch": record.get("torch") or _installed_torch(),
    }


def _patterns(value: Any, where: str) -> Tuple[str, ...]:
    vals = value if isinstance(value, list) else [value]
    if not vals or not all(isinstance(v, str) and v for v in vals):
        raise ValueError("%s must be a non-empty string or a list of them" % where)
    return tuple(vals)


def _any_match(value: Optional[str], patterns: Sequence[str]) -> bool:
    text = "none" if value is None else str(value)
    return any(fnmatch.fnmatchcase(text, p) for p in patterns)


class Entry:
    """One ``[[expect]]`` entry."""

    __slots__ = ("index", "line", "match", "fields", "status", "reason", "matched", "xpassed", "ids", "path")

    def __init__(self, index: int, line: Optional[int], match: Tuple[str, ...], fields: Dict[str, Tuple[str, ...]],
                 status: Tuple[str, ...], reason: str, path: str = "<expectations>") -> None:
        self.path = path
        self.index = index
        self.line = line
        self.match = match
        self.fields = fields
        self.status = status
        self.reason = reason
        self.matched = 0
        self.xpassed = 0
        self.ids: List[str] = []

    def selects(self, record: Dict[str, Any]) -> bool:
        if self.match and not any(fnmatch.fnmatchcase(record["id"], p) for p in self.match):
            return False
        for key, pats in self.fields.items():
            if not _any_match(record.get(key), pats):
                return False
        return True

    def describe(self) -> str:
        sel = []
        if self.match:
            sel.append("match=%s" % "|".join(self.match))
        sel.extend("%s=%s" % (k, "|".join(v)) for k, v in self.fields.items())
        return "expect[%d]%s %s -> %s" % (
            self.index,
            " (line %d)" % self.line if self.line else "",
            " ".join(sel),
            "|".join(self.status),
        )

    def why_stale(self) -> str:
        return "matched no result" if self.matched == 0 else "all %d matching result(s) passed" % self.matched

    def __str__(self) -> str:
        text = "%s: %s" % (self.path, self.describe())
        if self.matched == 0 or self.xpassed == self.matched:
            text += ": " + self.why_stale()
        return text

    def __repr__(self) -> str:
        return "<Entry %s>" % self.describe()


class Expectations:
    """A loaded expectations file.  Build with :meth:`load` (a path) or :meth:`from_text`."""

    def __init__(self, entries: List[Entry], filters: Dict[str, Any], path: str = "<expectations>") -> None:
        self.entries = entries
        self.filters = filters
        self.path = path

    # -- loading ----------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str) -> "Expectations":
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise ValueError("%s: cannot read expectations file: %s" % (path, e.strerror or e)) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("%s: expectations file is not UTF-8" % path) from None
        return cls.from_text(text, path)

    @classmethod
    def from_text(cls, text: str, path: str = "<expectations>") -> "Expectations":
        if _toml is None:  # pragma: no cover
            raise ValueError("%s: reading TOML on Python < 3.11 needs the 'tomli' package" % path)
        try:
            data = _toml.loads(text)
        except Exception as e:  # tomllib.TOMLDecodeError carries "(at line N, column M)"
            msg = " ".join(str(e).split())
            m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
            loc = ":%s:%s" % m.groups() if m else ""
            raise ValueError("%s%s: invalid TOML: %s" % (path, loc, msg)) from None
        lines = [i + 1 for i, line in enumerate(text.splitlines()) if _HEADER.match(line)]

        def fail(msg: str, index: Optional[int] = None) -> ValueError:
            if index is None:
                return ValueError("%s: %s" % (path, msg))
            line = lines[index] if index < len(lines) else None
            loc = ":%d" % line if line else ""
            return ValueError("%s%s: expect[%d]: %s" % (path, loc, index, msg))

        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise fail("unknown top-level key %r (allowed: %s)" % (unknown[0], ", ".join(sorted(_TOP_KEYS))))
        filters: Dict[str, Any] = {}
        for key in ("backend", "device", "torch"):
            if key in data:
                try:
                    filters[key] = _patterns(data[key], key)
                except ValueError as e:
                    raise fail(str(e)) from None
        if "world_size" in data:
            ws = data["world_size"] if isinstance(data["world_size"], list) else [data["world_size"]]
            if not ws or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in ws):
                raise fail("world_size must be a positive integer or a list of them")
            filters["world_size"] = tuple(ws)
        raw_entries = data.get("expect", [])
        if not isinstance(raw_entries, list) or not all(isinstance(e, dict) for e in raw_entries):
            raise fail("'expect' must be an array of tables: write each entry under [[expect]]")
        entries = []
        for i, e in enumerate(raw_entries):
            bad = sorted(set(e) - _ENTRY_KEYS)
            if bad:
                raise fail("unknown key %r (allowed: %s)" % (bad[0], ", ".join(sorted(_ENTRY_KEYS))), i)
            if "status" not in e:
                raise fail("missing 'status'", i)
            try:
                statuses = _patterns(e["status"], "status")
            except ValueError as err:
                raise fail(str(err), i) from None
            for s in statuses:
                if s not in BASE_STATUSES:
                    raise fail("unknown status %r (one of: %s)" % (s, ", ".join(BASE_STATUSES)), i)
            reason = e.get("reason")
            if not isinstance(reason, str) or not reason.strip():
                raise fail("missing 'reason' (say why, ideally with a bug link)", i)
            try:
                match = _patterns(e["match"], "match") if "match" in e else ()
                fields = {k: _patterns(e[k], k) for k in FIELDS if k in e}
            except ValueError as err:
                raise fail(str(err), i) from None
            if not match and not fields:
                raise fail("no selector: give 'match' or one of %s" % ", ".join(FIELDS), i)
            entries.append(Entry(i, lines[i] if i < len(lines) else None, match, fields, statuses, reason.strip(), path))
        return cls(entries, filters, path)

    # -- using ------------------------------------------------------------------------------------------------
    def applies_to(self, run: Dict[str, Any]) -> bool:
        """True when the file's run filters (backend, device, world_size, torch) all match ``run``."""
        for key in ("backend", "device", "torch"):
            pats = self.filters.get(key)
            if pats and not _any_match(run.get(key), pats):
                return False
        ws = self.filters.get("world_size")
        if ws and run.get("world_size") not in ws:
            return False
        return True

    def entry_for(self, record: Dict[str, Any]) -> Optional[Entry]:
        for e in self.entries:
            if e.selects(record):
                return e
        return None

    def lookup(self, record: Dict[str, Any]) -> Optional[List[str]]:
        """The expected statuses for this record (first matching entry), or None."""
        e = self.entry_for(record)
        return list(e.status) if e is not None else None

    def apply(self, record: Dict[str, Any]) -> Dict[str, Any]:
        """Set ``expected`` and relabel ``status`` (see the module doc); returns the same (mutated) record."""
        status = record["status"]
        if status in ("xfailed", "xpassed"):
            return record
        if _RUN_FIELDS.intersection(record) and not self.applies_to(_run_of(record)):
            return record  # the record says which run it belongs to, and this file is for another
        e = self.entry_for(record)
        if e is None:
            return record
        e.matched += 1
        if len(e.ids) < 20:
            e.ids.append(record["id"])
        if status in e.status:
            record["expected"] = status
            if status not in CONFORMANT:
                record["status"] = "xfailed"
        else:
            record["expected"] = e.status[0]
            if status == "passed":
                record["status"] = "xpassed"
                e.xpassed += 1
        return record

    def stale(self) -> List[Entry]:
        """Entries that matched no result, or whose every match passed, in the results seen by :meth:`apply`."""
        return [e for e in self.entries if e.matched == 0 or e.xpassed == e.matched]

    def stale_messages(self) -> List[str]:
        return ["%s: stale expectation %s: %s" % (self.path, e.describe(), e.why_stale()) for e in self.stale()]

    def reset_counts(self) -> None:
        for e in self.entries:
            e.matched = e.xpassed = 0
            e.ids = []

    def __len__(self) -> int:
        return len(self.entries)


class ExpectationSet:
    """Several expectations files (``--expect`` is repeatable) used as one.

    Each record goes to the files whose run filters match the run the record names (its ``backend``, ``device``
    and ``world_size`` keys; ``torch`` is the installed one); within a file the first matching entry wins, and the
    first file that has a matching entry wins.  :meth:`stale` only reports files that applied to some record.
    """

    def __init__(self, files: Sequence[Expectations]) -> None:
        self.files = list(files)
        self._used = [False] * len(self.files)

    def applies_to(self, run: Dict[str, Any]) -> bool:
        return any(f.applies_to(run) for f in self.files)

    def _files_for(self, record: Dict[str, Any]) -> List[int]:
        if not _RUN_FIELDS.intersection(record):
            return list(range(len(self.files)))
        run = _run_of(record)
        return [i for i, f in enumerate(self.files) if f.applies_to(run)]

    def lookup(self, record: Dict[str, Any]) -> Optional[List[str]]:
        for i in self._files_for(record):
            found = self.files[i].lookup(record)
            if found is not None:
                return found
        return None

    def apply(self, record: Dict[str, Any]) -> Dict[str, Any]:
        if record["status"] in ("xfailed", "xpassed"):
            return record
        idx = self._files_for(record)
        for i in idx:
            self._used[i] = True
        for i in idx:
            if self.files[i].entry_for(record) is not None:
                return self.files[i].apply(record)
        return record

    def stale(self) -> List[Entry]:
        return [e for i, f in enumerate(self.files) if self._used[i] for e in f.stale()]

    def stale_messages(self) -> List[str]:
        return [m for i, f in enumerate(self.files) if self._used[i] for m in f.stale_messages()]

    def __len__(self) -> int:
        return sum(len(f) for f in self.files)


def combine(files: Sequence[Expectations]) -> ExpectationSet:
    """One object with ``apply``/``lookup``/``stale`` over several loaded files."""
    return ExpectationSet(files)


# -- writing a file from runs (a baseline, deqp-runner style) ----------------------------------------------------

def _toml_str(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def baseline_text(docs: Sequence[Dict[str, Any]], torch_pattern: Optional[str] = None) -> str:
    """An expectations file that expects exactly what these runs did wrong (their non-conformant results, by id).

    All runs must be of one backend on one device.  The file applies to that backend and device, and to the
    torch release the runs used (``torch_pattern``, default ``"<major>.<minor>.*"`` of the first run): a later run
    on the same stack then reports regressions only.  Entries list every status the id had across the runs.
    """
    if not docs:
        raise ValueError("no report given")
    backends = {d["run"]["backend"] for d in docs}
    devices = {d["run"]["device"] for d in docs}
    if len(backends) != 1 or len(devices) != 1:
        raise ValueError("a baseline is for one backend on one device; got %s on %s"
                         % (", ".join(sorted(backends)), ", ".join(sorted(devices))))
    torch = str(docs[0]["run"].get("torch") or "")
    if torch_pattern is None:
        torch_pattern = ".".join(torch.split("+")[0].split(".")[:2]) + ".*" if torch else "*"
    seen: Dict[str, Dict[str, Any]] = {}
    for doc in docs:
        for r in doc["results"]:
            status = r.get("expected") if r["status"] in ("xfailed", "xpassed") else r["status"]
            if status in CONFORMANT or status is None:
                continue
            entry = seen.setdefault(r["id"], {"status": [], "reason": r.get("reason") or status})
            if status not in entry["status"]:
                entry["status"].append(status)
    sizes = sorted({int(d["run"]["world_size"]) for d in docs})
    lines = [
        "# Baseline: what %s on %s did wrong with torch %s (world sizes %s), written by" % (
            next(iter(backends)), next(iter(devices)), torch, ", ".join(map(str, sizes))),
        "# python -m conformance.report expect.  With --expect this file, these cases are xfailed and the",
        "# exit code reports regressions only; entries that stop matching are reported as stale.",
        "backend = %s" % _toml_str(next(iter(backends))),
        "device = %s" % _toml_str(next(iter(devices))),
        "torch = %s" % _toml_str(torch_pattern),
    ]
    for rid in sorted(seen):
        e = seen[rid]
        status = _toml_str(e["status"][0]) if len(e["status"]) == 1 else "[%s]" % ", ".join(map(_toml_str, e["status"]))
        lines += ["", "[[expect]]", "match = %s" % _toml_str(rid.replace("[", "[[]")), "status = %s" % status,
                  "reason = %s" % _toml_str(e["reason"][:300])]
    return "\n".join(lines) + "\n"

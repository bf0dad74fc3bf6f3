"""JSON Schema of the report (``schema.json`` beside this file) and a validator with one-line errors."""

from __future__ import annotations

import json
import os
import re
from typing import Any, Optional

from ..status import STATUSES

SCHEMA_VERSION = 2
#: Report schemas this code still reads (a v1 report has no verdict; it is derived when loaded).
READABLE_SCHEMAS = (1, 2)

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema.json")

__all__ = ["SCHEMA_VERSION", "SCHEMA_PATH", "load_schema", "validate"]

_validator: Optional[Any] = None
_item_validator: Optional[Any] = None


def load_schema() -> dict:
    """The schema, with the status enum taken from ``conformance.status`` (the file's copy is for readers)."""
    with open(SCHEMA_PATH, "r", encoding="utf-8") as f:
        schema = json.load(f)
    schema["$defs"]["status"]["enum"] = list(STATUSES)
    return schema


def _get_validators() -> Any:
    global _validator, _item_validator
    if _validator is None:
        import jsonschema

        schema = load_schema()
        item = dict(schema["properties"]["results"]["items"])
        item["$defs"] = schema["$defs"]
        _validator = jsonschema.Draft202012Validator(schema)
        _item_validator = jsonschema.Draft202012Validator(item)
    return _validator, _item_validator


_ENUM_KEYS = frozenset(("status", "op", "mode", "expected"))
_RANK_KEY = re.compile("^[0-9]+$")


def _signature(r: Any) -> Any:
    """Every feature of a result record that the item schema can tell apart.

    Two records with the same signature are valid or invalid together, so one jsonschema call per distinct
    signature validates 20,000 records in milliseconds instead of seconds.
    """
    if not isinstance(r, dict):
        return (type(r).__name__,)
    parts = []
    for k, v in r.items():
        t = type(v)
        if v is None or t is bool:
            parts.append((k, t, v))
        elif k in _ENUM_KEYS:
            parts.append((k, t, v if t is str else repr(v)))
        elif t is str:
            parts.append((k, t, v == ""))
        elif t is int or t is float:
            parts.append((k, t, v < 0))
        elif t is dict:
            feats = frozenset(
                (isinstance(kk, str) and _RANK_KEY.search(kk) is not None, type(vv)) for kk, vv in v.items()
            )
            parts.append((k, t, feats))
        else:
            parts.append((k, t, repr(v)))  # unusual values: validated one by one
    parts.sort(key=lambda p: p[0])
    return tuple(parts)


def _path(parts: Any) -> str:
    out = "$"
    for p in parts:
        out += "[%d]" % p if isinstance(p, int) else ".%s" % p
    return out


def validate(doc: Any) -> None:
    """Raise ``ValueError`` with a one-line message naming the first bad path if ``doc`` breaks the schema."""
    if isinstance(doc, dict) and "schema" in doc and doc["schema"] != SCHEMA_VERSION:
        raise ValueError(
            "$.schema: report schema version %r is not supported (this tool validates version %d)"
            % (doc["schema"], SCHEMA_VERSION)
        )
    full, item = _get_validators()
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, list):
        _raise_first(full.iter_errors(doc), ())
        return
    envelope = dict(doc)
    envelope["results"] = []
    _raise_first(full.iter_errors(envelope), ())
    seen = set()
    for i, r in enumerate(results):
        sig = _signature(r)
        if sig in seen:
            continue
        _raise_first(item.iter_errors(r), ("results", i))
        seen.add(sig)


def _raise_first(errors: Any, prefix: Any) -> None:
    err = next(iter(errors), None)
    if err is None:
        return
    from jsonschema.exceptions import best_match

    err = best_match([err])  # descend into anyOf/oneOf to the most specific cause
    msg = " ".join(str(err.message).split())
    if len(msg) > 200:
        msg = msg[:197] + "..."
    raise ValueError("%s: %s" % (_path(tuple(prefix) + tuple(err.absolute_path)), msg))

"""The case catalogue: every family's cases for one environment, addressable by id on both sides of the pipe.

A family is any module in this package that defines ``SPECS`` (a list of ``Spec`` instances); adding a module is
all it takes to add cases.  Families from outside the package come in two ways, without forking:

* an installed distribution's entry point in the group ``c10d_conformance.specs`` naming a module (or a list)
  that defines ``SPECS``;
* a ``--plugin`` module (imported in every rank anyway, e.g. the one that registers a vendor's backend) that
  defines ``SPECS``.

The controller and every rank build the same catalogue from the same ``Env`` (device, world size, torch version)
and plugin list, so a case crosses the pipe as its id alone.  A case's ``family`` is set here and nowhere else.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import replace
from functools import lru_cache

from .spec import Case, Env, Prepared, RankContext, Spec

ENTRY_POINT_GROUP = "c10d_conformance.specs"


def _entry_point_specs() -> list:
    try:
        from importlib.metadata import entry_points
        eps = entry_points()
        found = eps.select(group=ENTRY_POINT_GROUP) if hasattr(eps, "select") else eps.get(ENTRY_POINT_GROUP, [])
    except Exception:   # no metadata: nothing installed from outside
        return []
    out = []
    for ep in found:
        obj = ep.load()
        out.extend((f"entry point {ep.name}", s) for s in getattr(obj, "SPECS", obj))
    return out


@lru_cache(maxsize=None)
def specs(plugins: tuple = ()) -> dict[str, Spec]:
    """Every family by name: this package's modules, then entry points, then ``--plugin`` modules' SPECS."""
    sources = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            sources.extend((module.__name__, s) for s in getattr(module, "SPECS", ()))
    sources.extend(_entry_point_specs())
    for name in plugins:
        sources.extend((name, s) for s in getattr(importlib.import_module(name), "SPECS", ()))
    found: dict[str, Spec] = {}
    for origin, spec in sources:
        if not isinstance(spec, Spec) or not spec.name:
            raise RuntimeError(f"{origin}: SPECS must hold named conformance.cases.Spec instances, got {spec!r}")
        if spec.name in found:
            raise RuntimeError(f"{origin}: two families named {spec.name}")
        found[spec.name] = spec
    return found


def catalog(env: Env, plugins: tuple = ()) -> dict[str, Case]:
    """Ordered mapping id -> case."""
    out: dict[str, Case] = {}
    for name, spec in specs(tuple(plugins)).items():
        for case in spec.cases(env):
            case = replace(case, family=name)
            if case.id in out:
                raise RuntimeError(f"duplicate case id {case.id} (family {name})")
            out[case.id] = case
    return out


__all__ = ["Case", "Env", "Prepared", "RankContext", "Spec", "catalog", "specs"]

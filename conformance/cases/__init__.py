"""The case catalogue: every family's cases for one environment, addressable by id on both sides of the pipe.

A family is any module in this package that defines ``SPECS`` (a list of ``Spec`` instances); adding a module is
all it takes to add cases.  The controller and every rank build the same catalogue from the same ``Env`` (device,
world size, torch version), so a case crosses the pipe as its id alone.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import replace
from functools import lru_cache

from .spec import Case, Env, Prepared, RankContext, Spec


@lru_cache(maxsize=None)
def specs() -> dict[str, Spec]:
    found: dict[str, Spec] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for spec in getattr(module, "SPECS", ()):
            if spec.name in found:
                raise RuntimeError(f"two families named {spec.name}")
            found[spec.name] = spec
    return found


def catalog(env: Env) -> dict[str, Case]:
    """Ordered mapping id -> case."""
    out: dict[str, Case] = {}
    for name, spec in specs().items():
        for case in spec.cases(env):
            case = replace(case, family=name)
            if case.id in out:
                raise RuntimeError(f"duplicate case id {case.id}")
            out[case.id] = case
    return out


__all__ = ["Case", "Env", "Prepared", "RankContext", "Spec", "catalog", "specs"]

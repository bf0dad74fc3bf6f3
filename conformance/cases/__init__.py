"""The case catalogue: every family's cases for one environment, addressable by id on both sides of the pipe.

The controller and every rank build the same catalogue from the same ``Env`` (device, world size, torch version),
so a case crosses the pipe as its id alone.
"""

from __future__ import annotations

from dataclasses import replace

from . import all_reduce, barrier, broadcast
from .spec import Case, Env, Prepared, RankContext, Spec

FAMILY_MODULES = (all_reduce, broadcast, barrier)


def specs() -> dict[str, Spec]:
    return {spec.name: spec for module in FAMILY_MODULES for spec in module.SPECS}


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

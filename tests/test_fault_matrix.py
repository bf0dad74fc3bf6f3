"""The suite tells a broken backend apart: every fakepg fault kind is caught, and classified exactly.

The matrix is data (``conformance.selftest.MATRIX``); each group of faults with disjoint selectors is one real
suite run (``python -m pytest conformance/ --backend fakepg ...`` with ``FAKEPG_OPTIONS``) plus a fault-free
control run of the same selection.  A fault is caught when every case it affects gets exactly the expected
class (and reason), every other selected case passes, and the control run passes everything.
"""

from __future__ import annotations

import pytest

import fakepg
from conformance import selftest, status

GROUPS = [g.name for g in selftest.groups()]


def test_matrix_injects_every_fault_kind_fakepg_offers():
    kinds = {f.fault["kind"] for f in selftest.MATRIX}
    assert kinds == set(fakepg.FAULT_KINDS)
    # ... and the two shapes of a raise the result classes distinguish: every rank, and one rank only.
    raises = [f for f in selftest.MATRIX if f.fault["kind"] == "raise"]
    assert {bool(f.fault.get("ranks")) for f in raises} == {False, True}
    names = [f.name for f in selftest.MATRIX]
    assert len(names) == len(set(names))
    for f in selftest.MATRIX:
        fakepg.Options.from_dict({"semantics": f.semantics, "faults": [f.fault]})   # valid fakepg options
        assert f.expected in status.STATUSES and f.expected not in status.CONFORMANT


def test_k_emulation_agrees_with_pytest_ids():
    record = {"collective": "barrier", "variant": "default", "dtype": None, "op": None, "shape": None,
              "mode": "sync", "id": "barrier/default/-/-/-/sync"}
    assert selftest.k_matches("ws2-barrier-default-sync", record)
    assert not selftest.k_matches("ws2-barrier-default--", record)
    rec = {"collective": "all_reduce", "variant": "default", "dtype": "float32", "op": "SUM", "shape": "small",
           "mode": "async", "id": "all_reduce/default/float32/SUM/small/async"}
    assert selftest.k_matches("ws2-all_reduce-default-float32-SUM-small", rec)
    assert selftest.k_matches("all_reduce and async and not ws3", rec)
    assert not selftest.k_matches("all_reduce and not sync", rec)     # -k is substring: "sync" is in "async"
    assert not selftest.k_matches("ws2-all_reduce-default-float32-SUM-small-sync", rec)
    assert not selftest.k_matches("ws2-reduce-", rec)
    funcol = dict(rec, collective="funcol.all_reduce", id="funcol.all_reduce/default/float32/SUM/small/async")
    assert not selftest.k_matches("ws2-all_reduce-default-float32", funcol)


@pytest.mark.parametrize("group", GROUPS)
def test_fault_group_is_caught_and_classified_exactly(group, tmp_path):
    result = selftest.run_matrix(only=[group], workdir=str(tmp_path), baseline=True)
    missed = [r for r in result.results if not r.ok]
    assert not missed, "\n" + result.table()
    for r in result.results:
        assert r.affected, r.fault.name
        assert set(r.caught) == set(r.affected), r.fault.name
    # Each group's run left a complete report, and its control run passed every selected case.
    for (name, faults_on), run in result.runs.items():
        assert run.report is not None and run.report["complete"] is True, (name, faults_on, run.output)
        if not faults_on:
            assert run.returncode == 0, run.output
            seen = set(s["status"] for s in run.records.values())
            assert "passed" in seen and seen <= set(selftest.UNHARMED), seen   # skipped: what this torch lacks

"""The report's JSON Schema: generated documents validate, broken ones are rejected with a one-line path."""

import copy
import json
import os
import sys

import pytest

try:
    import conformance.report  # noqa: F401
except ImportError:  # run as `pytest tests/` without the project installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conformance.report import SCHEMA_VERSION, RunReport, validate
from conformance.report.model import STATUSES, check_envelope
from conformance.report.schema import SCHEMA_PATH, load_schema
from conformance.report.synth import make_doc, make_records, make_run


@pytest.fixture(scope="module")
def doc():
    return make_doc(scale=1, flaky=0.05, limit=None)


def test_schema_file_is_a_valid_2020_12_schema():
    import jsonschema

    schema = load_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"]["const"] == SCHEMA_VERSION == 2
    assert set(schema["$defs"]["status"]["enum"]) == set(STATUSES)
    assert os.path.isfile(SCHEMA_PATH)


def test_generated_doc_validates_and_covers_every_base_status(doc):
    validate(doc)
    seen = {r["status"] for r in doc["results"]}
    assert {"passed", "failed", "unsupported", "error", "timeout", "crashed", "blocked", "harness_error", "skipped"} <= seen


def test_writer_output_validates(tmp_path):
    rep = RunReport(str(tmp_path), make_run())
    validate(json.loads(open(rep.json_path).read()))  # empty, partial
    for r in make_records(limit=300):
        rep.add(r)
    rep.set_capabilities({"supports_coalescing": True, "name": "x"}, {"supports_coalescing": None})
    rep.flush(force=True)
    validate(json.load(open(rep.json_path)))
    final = rep.close(complete=True, render=False)
    validate(final)
    validate(json.load(open(rep.json_path)))


def _mutated(doc, path, value, delete=False):
    d = copy.deepcopy(doc)
    obj = d
    for p in path[:-1]:
        obj = obj[p]
    if delete:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value
    return d


@pytest.mark.parametrize(
    "path,value,delete,where",
    [
        (("complete",), None, True, "$"),
        (("complete",), "yes", False, "$.complete"),
        (("run", "world_size"), "2", False, "$.run.world_size"),
        (("run", "host"), None, True, "$.run"),
        (("run", "launcher"), "mpirun", False, "$.run.launcher"),
        (("run", "started"), "yesterday", False, "$.run.started"),
        (("summary", "counts", "bogus"), 1, False, "$.summary.counts"),
        (("capabilities", "advertised", "x"), [1], False, "$.capabilities.advertised.x"),
        (("results", 7, "status"), "bogus", False, "$.results[7].status"),
        (("results", 9, "op"), "MEAN", False, "$.results[9].op"),
        (("results", 11, "mode"), "eager", False, "$.results[11].mode"),
        (("results", 12, "duration_s"), -1.0, False, "$.results[12].duration_s"),
        (("results", 13, "ranks"), {"zero": "x"}, False, "$.results[13].ranks"),
        (("results", 14, "id"), "", False, "$.results[14].id"),
        (("results", 15, "reason"), None, True, "$.results[15]"),
        (("results", 16, "expected"), "passd", False, "$.results[16].expected"),
    ],
)
def test_broken_docs_are_rejected_with_one_line_path(doc, path, value, delete, where):
    bad = _mutated(doc, path, value, delete)
    with pytest.raises(ValueError) as ei:
        validate(bad)
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith(where + ":"), msg


def test_wrong_schema_version_is_named(doc):
    with pytest.raises(ValueError, match=r"schema version 9 is not supported"):
        validate(_mutated(doc, ("schema",), 9))
    with pytest.raises(ValueError, match="not supported"):
        check_envelope(_mutated(doc, ("schema",), 9))
    check_envelope(_mutated(doc, ("schema",), 1))     # version 1 reports are still read (diff before/after)


def test_results_not_a_list(doc):
    with pytest.raises(ValueError, match=r"^\$\.results: "):
        validate(_mutated(doc, ("results",), {"a": 1}))


def test_validation_of_20k_results_is_fast():
    import time

    big = make_doc(scale=3)
    assert len(big["results"]) > 12000
    validate(big)  # warm (schema compile)
    t = time.perf_counter()
    validate(big)
    assert time.perf_counter() - t < 1.0
    # a bad record deep in a large document is still found
    big["results"][-1]["status"] = "nope"
    with pytest.raises(ValueError, match=r"\$\.results\[%d\]\.status" % (len(big["results"]) - 1)):
        validate(big)

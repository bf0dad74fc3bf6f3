"""The oracle's building blocks: exact inputs, the reduction table, comparison, and the merge of ranks."""

from __future__ import annotations

import pytest
import torch

from conformance.cases import Env, catalog, values
from conformance.cases.reduce_scatter_single import TABLE as REDUCE_SCATTER_TABLE
from conformance.cases.spec import RankContext
from conformance.outcomes import RankOutcome, merge

WORLD_SIZES = (2, 3, 8)


@pytest.mark.parametrize("dtype_name", values.available_dtypes())
@pytest.mark.parametrize("ws", WORLD_SIZES)
def test_reduction_inputs_are_exact_in_the_dtype(dtype_name, ws):
    """Every rank's input, and the reduction over ranks, survive a round trip through the dtype unchanged:
    the comparison can then be bitwise whatever order a backend reduces in."""
    dtype = values.dtype_of(dtype_name)
    for op in values.defined_ops(dtype_name):
        per_rank = [values.reduction_values(dtype, op, 64, r, ws) for r in range(ws)]
        for v in per_rank + [values.reduce_values(op, per_rank, dtype, 0.5)]:
            if op == "AVG" and values.kind(dtype) in ("float", "float8", "complex"):
                continue   # AVG is compared with a tolerance
            back = v.to(dtype).to(v.dtype)
            assert torch.equal(back, v), (dtype_name, op, ws)


@pytest.mark.parametrize("ws", WORLD_SIZES)
def test_every_rank_contributes_to_every_reduction(ws):
    """A backend that returns its own input instead of the reduction must be caught on some element."""
    for name in values.available_dtypes():
        dtype = values.dtype_of(name)
        for op in values.defined_ops(name):
            per_rank = [values.reduction_values(dtype, op, 64, r, ws) for r in range(ws)]
            total = values.reduce_values(op, per_rank, dtype, 0.5)
            own = per_rank[0] * (0.5 if op == "PREMUL_SUM" else 1)
            # compared after a round trip through the dtype, in the wide type (float8 has no equal before 2.5)
            assert not torch.equal(total.to(dtype).to(total.dtype), own.to(dtype).to(total.dtype)), (name, op, ws)


def test_movement_values_identify_the_rank_and_reach_the_dtype_range():
    for name in values.available_dtypes():
        dtype = values.dtype_of(name)
        a, b = (values.movement_values(dtype, 40, r) for r in (0, 1))
        assert not torch.equal(a, b), name
        seen = [v.real if isinstance(v, complex) else v for v in a.tolist() + b.tolist()]
        assert max(values.extremes(dtype)) in seen, name


def test_bfloat16_above_float16_max_comes_back_intact():
    v = values.movement_values(torch.bfloat16, 40, 0)
    assert float(v.abs().max()) > torch.finfo(torch.float16).max
    assert torch.equal(v.to(torch.bfloat16).to(v.dtype), v)


def test_mismatch_is_bitwise_and_names_the_element():
    good = torch.tensor([True, False, True])
    bad = good.clone()
    bad.view(torch.uint8)[2] = 2          # gloo's bool SUM: a count stored in a bool
    reason = values.describe_mismatch(bad, good, 0.0)
    assert "raw byte 2" in reason and "flat index 2" in reason
    assert values.describe_mismatch(good, good, 0.0) is None
    assert "shape changed" in values.describe_mismatch(good[:2], good, 0.0)
    assert "dtype changed" in values.describe_mismatch(good.int(), good, 0.0)


def test_rank_context_models_real_and_simulated_worlds():
    x = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])]
    real = RankContext(1, 2, torch.device("cpu"), "gloo")
    uniform = RankContext(1, 2, torch.device("cpu"), "fakepg", world_model="uniform")
    copy = RankContext(1, 2, torch.device("cpu"), "fakepg", world_model="copy")
    assert real.peers() == [0, 1] and uniform.peers() == [1, 1] == copy.peers()
    assert torch.equal(real.reduce("SUM", x, torch.float32), torch.tensor([4.0, 6.0]))
    assert torch.equal(uniform.reduce("SUM", [x[1], x[1]], torch.float32), torch.tensor([6.0, 8.0]))
    assert torch.equal(copy.reduce("SUM", [x[1], x[1]], torch.float32), x[1])


def _o(status, reason="", exc="RuntimeError", modified=False, expected_error=False):
    return RankOutcome(status, reason, 0.001, exc if status == "raised" else "", modified, expected_error)


@pytest.mark.parametrize("ranks, status, fragment", [
    ([_o("passed"), _o("passed")], "passed", ""),
    ([_o("failed", "x wrong"), _o("passed")], "failed", "rank 0: x wrong"),
    ([_o("raised", "RuntimeError: Invalid scalar type")] * 2, "unsupported", "all ranks: RuntimeError: Invalid"),
    ([_o("raised", "ValueError: Cannot use ReduceOp.BAND with NCCL", "ValueError")] * 2, "unsupported", "BAND"),
    ([_o("raised", "RuntimeError: boom")] * 2, "error", "boom"),
    ([_o("raised", "RuntimeError: Invalid scalar type"), _o("passed")], "error", "asymmetric"),
    ([_o("raised", "RuntimeError: result type Float can't be cast", modified=True)] * 2, "error",
     "raised after writing into its output"),
    ([_o("raised", "RuntimeError: not supported", modified=True)] * 2, "error", "writing into its output"),
    ([_o("harness_error", "suite oracle failed"), _o("passed")], "harness_error", "suite oracle failed"),
    ([_o("raised", "ValueError: bad", "ValueError", expected_error=True)] * 2, "passed", ""),
    ([_o("failed", "accepted", expected_error=True)] * 2, "failed", "accepted invalid arguments"),
    ([_o("raised", "ValueError: bad", "ValueError", expected_error=True), _o("failed", "ok", expected_error=True)],
     "error", "asymmetric"),
])
def test_merge_rules(ranks, status, fragment):
    result = merge(dict(enumerate(ranks)), len(ranks))
    assert result.status == status
    assert fragment in result.reason


def test_catalog_ids_are_unique_and_stable_across_calls():
    env = Env("cpu", 3, (2, 13))
    first, second = catalog(env), catalog(env)
    assert list(first) == list(second)
    assert all(case.id.count("/") == 5 for case in first.values())


# -- edge-of-range reductions ----------------------------------------------------------------------------------

def _all_orders(per_rank, dtype, op):
    """The reduction computed in the dtype itself, in every order of the ranks (what a backend may do)."""
    import itertools
    out = []
    for order in itertools.permutations(range(len(per_rank))):
        acc = per_rank[order[0]].to(dtype)
        for r in order[1:]:
            x = per_rank[r].to(dtype)
            if values.kind(dtype) in ("int", "uint"):   # integer arithmetic wraps: do it wide, then wrap
                wide = {"SUM": acc.long() + x.long(), "PRODUCT": acc.long() * x.long(), "MIN": torch.minimum(
                    acc.long(), x.long()), "MAX": torch.maximum(acc.long(), x.long()), "BAND": acc.long() & x.long(),
                    "BOR": acc.long() | x.long(), "BXOR": acc.long() ^ x.long()}[op]
                acc = values.wrap(wide, dtype).to(dtype)
            elif op in ("SUM", "PREMUL_SUM"):
                acc = (acc.double() + x.double()).to(dtype)     # one rounding per partial sum, like the dtype
            elif op == "PRODUCT":
                acc = (acc.double() * x.double()).to(dtype)
            elif op == "MIN":
                acc = torch.minimum(acc.double(), x.double()).to(dtype)
            elif op == "MAX":
                acc = torch.maximum(acc.double(), x.double()).to(dtype)
        out.append(acc)
    return out


@pytest.mark.parametrize("ws", (2, 3, 4))
@pytest.mark.parametrize("dtype_name", [d for d in values.available_dtypes() if values.edge_ops(d)])
def test_edge_reductions_are_exact_in_any_order_and_need_the_dtype_range(dtype_name, ws):
    """Edge inputs and their reductions survive the dtype unchanged, every order of reduction in the dtype gives
    the oracle's bits, and the inputs really use the edge of the range (a narrower type could not hold them)."""
    dtype = values.dtype_of(dtype_name)
    kind = values.kind(dtype)
    for op in values.edge_ops(dtype_name):
        per_rank = [values.reduction_values(dtype, op, 30, r, ws, "edge") for r in range(ws)]
        for v in per_rank:
            assert torch.equal(v.to(dtype).to(v.dtype), v), (dtype_name, op)
        if op in ("AVG",) or kind == "complex":
            continue   # AVG is compared with a tolerance; complex parts are the float case twice
        if op == "PREMUL_SUM":
            continue   # SUM of pre-scaled inputs: the SUM check covers its exactness
        want = values.reduce_values(op, per_rank, dtype, 1.0).to(dtype)
        for got in _all_orders(per_rank, dtype, op):
            assert values.describe_mismatch(got, want, 0.0) is None, (dtype_name, op, ws)
    if kind in ("float", "float8"):
        top = max(float(v.abs().max()) for v in per_rank)
        assert top >= torch.finfo(dtype).max / 2


@pytest.mark.parametrize("dtype_name", ["int8", "uint8", "int16", "int32", "int64"])   # torch adds these natively
def test_integer_sums_and_products_wrap_like_torch(dtype_name):
    dtype = values.dtype_of(dtype_name)
    per_rank = [values.reduction_values(dtype, "SUM", 12, r, 3, "edge") for r in range(3)]
    want = values.reduce_values("SUM", per_rank, dtype).to(dtype)
    torch_sum = per_rank[0].to(dtype)
    for v in per_rank[1:]:
        torch_sum = torch_sum + v.to(dtype)      # torch's own integer addition in the dtype (it wraps)
    assert torch.equal(torch_sum, want), dtype_name
    if dtype.itemsize < 8:   # int64 arithmetic itself wraps; for narrower types the wide sum must differ somewhere
        assert not torch.equal(torch.stack(per_rank).sum(0), want.long()), f"{dtype_name}: no element wraps"


def test_narrower_intermediate_is_caught():
    """bfloat16 reduced through float16 (a plausible backend shortcut) overflows on the edge inputs."""
    per_rank = [values.reduction_values(torch.bfloat16, "SUM", 13, r, 2, "edge") for r in range(2)]
    want = values.materialize(values.reduce_values("SUM", per_rank, torch.bfloat16), "odd", torch.bfloat16, "cpu")
    via_half = sum(v.to(torch.float16).float() for v in per_rank).to(torch.bfloat16)
    assert values.describe_mismatch(via_half, want, 0.0) is not None


def test_undefined_ops_are_the_complement_of_defined_ones():
    for name in values.available_dtypes():
        assert set(values.defined_ops(name)) | set(values.undefined_ops(name)) == set(values.REDUCE_OPS)
        assert not set(values.defined_ops(name)) & set(values.undefined_ops(name))
    assert set(values.undefined_ops("float32")) == {"BAND", "BOR", "BXOR"}
    assert set(values.undefined_ops("int32")) == {"PREMUL_SUM"}
    assert set(values.undefined_ops("bool")) == {"AVG", "PREMUL_SUM"}


def test_undefined_combinations_are_error_path_cases():
    cases = catalog(Env("cpu", 2, (2, 13)))
    undefined = [c for c in cases.values() if c.op and c.dtype and c.op in values.undefined_ops(c.dtype)]
    assert undefined and all(c.error and c.fresh_world for c in undefined)
    # the reduce_scatter table runs under the name this torch has (reduce_scatter_tensor before 2.13)
    assert {c.collective for c in undefined} >= {"all_reduce", "reduce", REDUCE_SCATTER_TABLE}


@pytest.mark.parametrize("message, refusal", [
    ("RuntimeError: No backend type associated with device type cpu", False),   # a Python PG lacking a method
    ("ValueError: monitored_barrier requires a group with a CPU-capable backend (e.g. GLOO).", True),
    ("ValueError: monitored_barrier is only implemented for GLOO backend.", True),
])
def test_refusal_rule(message, refusal):
    from conformance.outcomes import is_refusal
    assert is_refusal(message.split(":")[0], message) is refusal

"""Synthetic but realistic reports, for tests, demos and timing the report layer without a backend.

``python -m conformance.report demo OUT_DIR`` writes a few of them with their pages.
"""

from __future__ import annotations

import random
from typing import Any, Dict, Iterator, List, Optional

from .model import SCHEMA_VERSION, summarize_results

REDUCING = ("all_reduce", "reduce", "reduce_scatter", "reduce_scatter_single", "funcol.all_reduce")
NON_REDUCING = ("broadcast", "all_gather", "all_gather_into_tensor", "gather", "scatter", "all_to_all_single", "send")
DTYPES = ("bool", "uint8", "int8", "int32", "int64", "float16", "bfloat16", "float32", "float64", "complex64")
OPS = ("SUM", "AVG", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR", "PREMUL_SUM")
SHAPES = ("small", "large", "empty")


def case_ids(scale: int = 1) -> Iterator[Dict[str, Any]]:
    """Case descriptors over collectives x variants x dtypes x ops x shapes x modes (about 2,100 per scale)."""
    variants = ["default", "inplace"] + ["v%d" % i for i in range(max(0, scale - 1))]
    for coll in REDUCING + NON_REDUCING + ("barrier",):
        if coll == "barrier":
            for mode in ("sync", "async"):
                yield {"collective": "barrier", "variant": "default", "dtype": None, "op": None, "shape": None, "mode": mode}
            continue
        for variant in variants:
            for dtype in DTYPES:
                for op in OPS if coll in REDUCING else (None,):
                    for shape in SHAPES:
                        for mode in ("sync", "async"):
                            yield {"collective": coll, "variant": variant, "dtype": dtype, "op": op, "shape": shape, "mode": mode}


def _outcome(c: Dict[str, Any], rng: random.Random, flaky: float) -> Dict[str, Any]:
    coll, dtype, op = c["collective"], c["dtype"], c["op"]
    if op == "PREMUL_SUM":
        return {"status": "unsupported", "reason": "RuntimeError: Cannot use ReduceOp.PREMUL_SUM with Gloo"}
    if op in ("BAND", "BOR", "BXOR") and dtype and dtype.startswith(("float", "bfloat", "complex")):
        return {"status": "unsupported", "reason": "RuntimeError: Cannot use ReduceOp.%s with non-integral dtype" % op}
    if dtype == "complex64" and op in ("MIN", "MAX", "PRODUCT"):
        return {"status": "unsupported", "reason": "ValueError: %s does not support RedOpType.%s on complex tensors" % (coll, op)}
    if coll == "send" and dtype == "bool":
        return {"status": "unsupported", "reason": "RuntimeError: Invalid scalar type"}
    if dtype == "bool" and op == "SUM":
        return {
            "status": "failed",
            "reason": "output mismatch at [0]: got 2, expected True (raw byte 2 </script> & <b>)",
            "ranks": {"0": "got 2 at [0]", "1": "got 2 at [0]"},
        }
    if coll == "gather" and c["shape"] == "empty":
        return {"status": "skipped", "reason": "empty tensors not meaningful for gather"}
    r = rng.random()
    if r < flaky * 0.4:
        return {"status": "error", "reason": "RuntimeError: asymmetric: rank 1 raised", "ranks": {"0": "ok", "1": "RuntimeError: boom"}}
    if r < flaky * 0.6:
        return {"status": "timeout", "reason": "watchdog fired after 30.0 s"}
    if r < flaky * 0.7:
        return {"status": "crashed", "reason": "rank 1 died with SIGSEGV"}
    if r < flaky * 0.85:
        return {"status": "blocked", "reason": "world poisoned by an earlier timeout"}
    if r < flaky:
        return {"status": "harness_error", "reason": "oracle raised KeyError"}
    return {"status": "passed", "reason": ""}


def make_records(scale: int = 1, seed: int = 0, flaky: float = 0.01, limit: Optional[int] = None) -> List[Dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for c in case_ids(scale):
        rec = dict(c)
        rec["id"] = "/".join(x for x in (c["collective"], c["variant"], c["dtype"], c["op"], c["shape"], c["mode"]) if x is not None)
        o = _outcome(c, rng, flaky)
        rec["status"] = o["status"]
        rec["reason"] = o["reason"]
        rec["ranks"] = o.get("ranks")
        rec["duration_s"] = None if o["status"] == "skipped" else round(rng.uniform(0.0002, 0.02), 5)
        rec["expected"] = None
        out.append(rec)
        if limit is not None and len(out) >= limit:
            break
    return out


def make_run(backend: str = "gloo", device: str = "cpu", world_size: int = 2, **extra: Any) -> Dict[str, Any]:
    run = {
        "backend": backend,
        "device": device,
        "world_size": world_size,
        "torch": "2.13.0+cpu",
        "torch_git": None,
        "backend_version": "gloo 0.5" if backend == "gloo" else None,
        "driver": None,
        "device_name": "Synthetic CPU" if device == "cpu" else "Synthetic %s" % device,
        "python": "3.11.7",
        "host": "synth-host",
        "platform": "Linux-synthetic",
        "suite_version": "0.1.0",
        "started": "2025-01-01T00:00:00Z",
        "duration_s": 12.5,
        "launcher": "pytest",
        "timeout_s": 30.0,
        "argv": ["pytest", "conformance/", "--backend", backend],
        "interrupted": False,
    }
    run.update(extra)
    return run


def make_doc(
    backend: str = "gloo",
    device: str = "cpu",
    world_size: int = 2,
    scale: int = 1,
    seed: int = 0,
    flaky: float = 0.01,
    complete: bool = True,
    limit: Optional[int] = None,
    **run_extra: Any,
) -> Dict[str, Any]:
    """A whole report document (schema 1)."""
    results = make_records(scale=scale, seed=seed, flaky=flaky, limit=limit)
    return {
        "schema": SCHEMA_VERSION,
        "complete": complete,
        "run": make_run(backend, device, world_size, **run_extra),
        "capabilities": {
            "advertised": {"supports_coalescing": True, "supports_splitting": False, "bool_reduce": True},
            "observed": {"supports_coalescing": True, "supports_splitting": False, "bool_reduce": False},
        },
        "summary": summarize_results(results, complete),
        "results": results,
    }

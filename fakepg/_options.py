"""Options and Fault: the knobs of fakepg, and their JSON/env-var form.

`Options` is what a user passes as ``pg_options=`` to ``init_process_group`` /
``new_group``. When no options are passed, they come from the ``FAKEPG_OPTIONS``
environment variable (JSON with the same field names), so a whole test run can be
switched to another semantics or fault without touching code.

Everything is validated eagerly: a typo in a field, a fault kind or a collective name
is a one-line ``ValueError`` that names it, never a fault that silently never fires.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

ENV_VAR = "FAKEPG_OPTIONS"

SEMANTICS = ("copy", "uniform")

# Every fault kind and, in one line, what it does to the call (details: _faults.py).
FAULT_KINDS = {
    "raise": "raise RuntimeError('fakepg injected fault: ...') before touching outputs",
    "hang": "block forever inside the call (sync) or inside wait() (async)",
    "crash": "os._exit(134) inside the call",
    "wrong_value": "after the correct output is written, change one element of the first non-empty output",
    "chunk_order": "mirror this rank's chunk index (rank -> ws-1-rank) / reverse gathered slots",
    "off_by_one_root": "rooted collectives act as if root were (root+1) % ws",
    "wrong_op": "reductions use a different ReduceOp (SUM<->MAX, MIN<->MAX, PRODUCT/AVG/PREMUL_SUM->SUM, BAND<->BOR, BXOR->BOR)",
    "early_complete": "Work reports completion before the output is written (written ~75 ms later)",
    "lying_is_completed": "Work.is_completed() always returns False",
    "future_without_tensors": "Work.get_future() completes with None instead of the output tensors",
    "skip_barrier": "barrier() completes at once, ignoring latency_s",
    "drop_last_coalesced": "coalesced calls leave the last tensor's output unwritten",
}

# Public torch.distributed names a Fault may select (None selects every call).
COLLECTIVES = frozenset(
    {
        "all_reduce", "all_reduce_coalesced", "broadcast", "reduce",
        "all_gather", "all_gather_single", "all_gather_into_tensor", "_all_gather_base",
        "all_gather_coalesced", "all_gather_single_coalesced", "all_gather_into_tensor_coalesced",
        "gather", "gather_single", "gather_into_tensor", "scatter",
        "reduce_scatter", "reduce_scatter_single", "reduce_scatter_tensor", "_reduce_scatter_base",
        "reduce_scatter_single_coalesced", "reduce_scatter_tensor_coalesced",
        "all_to_all", "all_to_all_single", "barrier", "monitored_barrier",
        "send", "recv", "isend", "irecv", "recv_anysource",
    }
)


@dataclass
class Fault:
    """One injected fault. ``None`` in a selector field means "any"."""

    kind: str
    collective: str | None = None  # public dist name, e.g. "all_reduce"
    dtype: str | None = None  # e.g. "float32" (the dtype the backend sees)
    ranks: list[int] | None = None  # global ranks that apply it
    message: str | None = None

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fakepg: unknown fault kind {self.kind!r} (known: {', '.join(FAULT_KINDS)})")
        if self.collective is not None and self.collective not in COLLECTIVES:
            raise ValueError(f"fakepg: unknown fault collective {self.collective!r}")
        if self.dtype is not None:
            import torch

            if not isinstance(getattr(torch, str(self.dtype), None), torch.dtype):
                raise ValueError(f"fakepg: unknown fault dtype {self.dtype!r}")
        if self.ranks is not None:
            if not isinstance(self.ranks, (list, tuple)) or not all(isinstance(r, int) for r in self.ranks):
                raise ValueError(f"fakepg: fault ranks must be a list of ints, got {self.ranks!r}")
            self.ranks = list(self.ranks)


@dataclass
class Options:
    """fakepg process-group options (``pg_options=`` or the FAKEPG_OPTIONS env var)."""

    semantics: str = "copy"  # "copy" (torch's fake) or "uniform"
    error_on_collective: bool = False  # every collective raises RuntimeError, as torch's fake option does
    latency_s: float = 0.0  # Work completes for real only after this many seconds
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self):
        if self.semantics not in SEMANTICS:
            raise ValueError(f"fakepg: Options.semantics must be one of {SEMANTICS}, got {self.semantics!r}")
        if not isinstance(self.error_on_collective, bool):
            raise ValueError(f"fakepg: Options.error_on_collective must be a bool, got {self.error_on_collective!r}")
        if isinstance(self.latency_s, bool) or not isinstance(self.latency_s, (int, float)) or self.latency_s < 0:
            raise ValueError(f"fakepg: Options.latency_s must be a number >= 0, got {self.latency_s!r}")
        self.latency_s = float(self.latency_s)
        if not isinstance(self.faults, (list, tuple)):
            raise ValueError(f"fakepg: Options.faults must be a list, got {self.faults!r}")
        self.faults = [f if isinstance(f, Fault) else _fault_from_dict(f) for f in self.faults]

    # -- JSON / env ---------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict) -> Options:
        if not isinstance(d, dict):
            raise ValueError(f"fakepg: options must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        for k in d:
            if k not in known:
                raise ValueError(f"fakepg: unknown Options field {k!r} (known: {', '.join(sorted(known))})")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> Options:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"fakepg: malformed options JSON ({e.msg} at char {e.pos}): {text!r}") from None
        return cls.from_dict(d)

    @classmethod
    def from_env(cls) -> Options:
        """Options from $FAKEPG_OPTIONS, or defaults when it is unset/empty."""
        text = os.environ.get(ENV_VAR, "").strip()
        if not text:
            return cls()
        try:
            return cls.from_json(text)
        except ValueError as e:
            raise ValueError(f"{ENV_VAR}: {e}") from None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))


def _fault_from_dict(d) -> Fault:
    if not isinstance(d, dict):
        raise ValueError(f"fakepg: a fault must be an object, got {d!r}")
    known = {f.name for f in dataclasses.fields(Fault)}
    for k in d:
        if k not in known:
            raise ValueError(f"fakepg: unknown Fault field {k!r} (known: {', '.join(sorted(known))})")
    if "kind" not in d:
        raise ValueError("fakepg: a fault needs a 'kind' field")
    return Fault(**d)


def resolve(pg_options) -> Options:
    """Options for a new group.

    ``pg_options`` may be an Options, a dict, a JSON string or torch's own
    ``FakeProcessGroup.Options`` (its ``error_on_collective``, and 2.15's
    ``simulate_uniform_ranks`` as uniform semantics). When it is None, a subgroup
    inherits the options of a fakepg default group (so ``new_group``/DeviceMesh subgroups
    keep the world's semantics and faults), and the default group reads $FAKEPG_OPTIONS.
    """
    if pg_options is None:
        import torch.distributed.distributed_c10d as c10d

        default = getattr(c10d._world, "default_pg", None) if c10d.is_initialized() else None
        inherited = getattr(default, "fake_options", None)
        return inherited if isinstance(inherited, Options) else Options.from_env()
    if isinstance(pg_options, Options):
        return pg_options
    if isinstance(pg_options, dict):
        return Options.from_dict(pg_options)
    if isinstance(pg_options, str):
        return Options.from_json(pg_options)
    from ._compat import CppFakeOptions

    if CppFakeOptions is not None and isinstance(pg_options, CppFakeOptions):
        uniform = getattr(pg_options, "simulate_uniform_ranks", False)
        return Options(semantics="uniform" if uniform else "copy",
                       error_on_collective=getattr(pg_options, "error_on_collective", False))  # (2.10+)
    raise TypeError("fakepg: pg_options must be fakepg.Options, torch's FakeProcessGroup.Options, a dict or a JSON "
                    f"string, got {type(pg_options).__name__}")

"""What a case is, and the contract a collective family implements.

A family (one module per collective family, nccl-tests style) says three things and nothing else:
  * which cases exist for an environment (``Spec.cases``, built with ``conformance.cases.axes``),
  * how a rank builds its inputs and calls the API (``Spec.prepare`` -> ``Prepared.call``),
  * what each output (and each returned tensor) must hold afterwards (``Prepared.expected``/``returns``), computed
    on the rank from its knowledge of every peer's inputs (``RankContext.peer``), so no tensor ever travels to the
    controller.
The harness (``conformance.execute``) does the rest: sync/async, waiting, Work checks, error paths, comparison,
timing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

import torch

from . import values


@dataclass(frozen=True)
class Env:
    """What the controller knows before any world starts; cases depend on nothing else (never on the backend)."""
    device: str
    world_size: int
    torch_version: tuple[int, int]


@dataclass(frozen=True)
class Case:
    collective: str                 # public torch.distributed name; functional ones as "funcol.<name>"
    variant: str = "default"        # which form of the API / arguments ("inplace", "root1", "uneven", ...)
    dtype: Optional[str] = None
    op: Optional[str] = None        # ReduceOp name
    shape: Optional[str] = None     # a key of values.SHAPES
    mode: str = "sync"              # "sync" or "async"
    family: str = ""                # the Spec that runs it (set by the catalogue, nowhere else)
    skip: Optional[str] = None      # decided by the controller: not applicable here, and why
    fresh_world: bool = False       # may desynchronise ranks: the world is proven usable afterwards, even if it passed
    timeout_s: Optional[float] = None  # a shorter watchdog for a case expected to hang on some backends
    real_world_only: Optional[str] = None  # why it means nothing in a simulated world (skipped there)
    error: Optional[str] = None     # an error path: every rank must raise; the text says what returning would mean
    needs: tuple = ()               # what the Python environment must provide (conformance.environment.NEEDS)
    group: Optional[str] = None     # the process group it runs on, when not the world's (hang budget, blame)
    params: Any = ()                # keywords for the family, e.g. {"root": 1}; kept as sorted (key, value) pairs

    def __post_init__(self):
        if isinstance(self.params, Mapping):
            object.__setattr__(self, "params", tuple(sorted(self.params.items())))

    @property
    def id(self) -> str:
        return "/".join([self.collective, self.variant, self.dtype or "-", self.op or "-", self.shape or "-", self.mode])

    def param(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)


@dataclass
class Prepared:
    """One rank's view of one case, ready to run."""
    call: Callable[[bool], Any]                 # call(async_op) -> Work | Future | None (or results, see returns)
    outputs: list = field(default_factory=list)   # tensors the call writes
    expected: list = field(default_factory=list)  # per output: expected tensor, or None (unspecified, not checked)
    op: Optional[str] = None                    # for the comparison tolerance
    check_future: bool = True                   # async: the Work's future must carry the outputs
    after: Optional[Callable[[], Optional[str]]] = None  # extra check run after the call; returns a mismatch reason
    # An API that returns new tensors (functional collectives): the expected value of each returned tensor.  The
    # call returns the tensors (sync), or a handle with wait()/is_completed() whose ``results`` holds them (async).
    returns: Optional[list] = None


@dataclass
class RankContext:
    """Everything a rank-side spec may use.

    ``world_model`` is how this backend's world behaves: "real" (ranks communicate), or, for a simulating backend
    that declares ``pg.fake_semantics``, "uniform" (every rank holds this rank's data; reductions applied) or
    "copy" (the same, but reductions return this rank's own value and exchanges echo).  ``peer``, ``reduce`` and
    ``echoes`` are the only places that know: specs written against them are correct for all three.
    """
    rank: int
    world_size: int
    device: torch.device
    backend: str
    world_model: str = "real"
    store: Any = None                # the world's rendezvous store: lets a check see other ranks' progress
    seq: int = 0                     # this case's sequence number in the world, for unique store keys
    cache: dict = field(default_factory=dict)   # per-world state a family builds once (e.g. subgroups), by key

    def peer(self, j: int) -> int:
        """Whose data rank ``j`` holds, as far as this rank can tell."""
        return j if self.world_model == "real" else self.rank

    def peers(self) -> list[int]:
        return [self.peer(j) for j in range(self.world_size)]

    def reduce(self, op: str, per_rank: list[torch.Tensor], dtype: torch.dtype, factor: float = 1.0) -> torch.Tensor:
        if self.world_model == "copy":
            return per_rank[self.rank].clone()
        return values.reduce_values(op, per_rank, dtype, factor)

    @property
    def echoes(self) -> bool:
        """In the "copy" model (torch's fake) an exchange hands back what this rank sent: all_to_all's output
        slot j is this rank's own piece j, all_to_all_single's output its input."""
        return self.world_model == "copy"

    @property
    def simulated(self) -> bool:
        return self.world_model != "real"


class Spec:
    """Base of a collective family.  Subclasses set ``name`` and implement ``cases`` and ``prepare``."""
    name: str = ""

    def cases(self, env: Env) -> Iterable[Case]:
        raise NotImplementedError

    def prepare(self, case: Case, rt: RankContext) -> Prepared:
        raise NotImplementedError

"""FakeProcessGroup: one rank of a world of any size, with no communication.

How a Python backend plugs into torch.distributed (read this if you use fakepg as the
template of your own Python backend)
====================================================================================

A C++ ``Backend`` cannot be subclassed from Python, so a Python backend is a subclass of
``dist.ProcessGroup`` that ``Backend.register_backend(..., extended_api=True)``'s creator
returns; ``_new_process_group_helper`` then uses it AS the process group. From there on
there are two kinds of caller, and they see different method names:

1. Python callers -- every ``dist.*`` function. They look the method up on the object,
   so ANY method defined here is reached. The names differ by torch version, so a
   backend for torch 2.4..2.15 defines both sets (the old ones are aliases below):

       dist.* call                    torch 2.4..2.12 name                2.13+ name
       all_gather_into_tensor/_single _allgather_base                     all_gather_single
       reduce_scatter_tensor/_single  _reduce_scatter_base                reduce_scatter_single
       all_to_all_single              alltoall_base                       all_to_all_single
       _coalescing_manager(all_gather) allgather_into_tensor_coalesced    all_gather_single_coalesced
       _coalescing_manager(red_scat)  reduce_scatter_tensor_coalesced     reduce_scatter_single_coalesced
       gather (single tensor, 2.14+)  --                                  gather_single
       everything else: allreduce, allreduce_coalesced, broadcast, reduce, allgather,
       allgather_coalesced, gather, scatter, reduce_scatter, alltoall, barrier, send, recv,
       recv_anysource, monitored_barrier, _start_coalescing, _end_coalescing

2. C++ callers -- functional collectives (``torch.ops._c10d_functional.*`` and thus
   DTensor/FSDP2/TP under compile or eagerly), DDP's reducer, ``_coalescing_manager``'s
   fast path. They reach a Python PG only through the pybind trampoline
   (``PyProcessGroup.hpp``), i.e. only these Python names:

       torch 2.4 : allgather, allgather_into_tensor_coalesced, allreduce,
                   allreduce_coalesced, alltoall_base, barrier, broadcast,
                   reduce_scatter, reduce_scatter_tensor_coalesced, send, recv,
                   getBackendName; Work: wait, get_future
       2.6 +     : getRank, getSize, getGroupName, setGroupName, getGroupDesc, setGroupDesc
       2.7 +     : abort            2.9 + : splitGroup, mergeRemoteGroup
       2.13 +    : all_gather_single_coalesced, reduce_scatter_single_coalesced,
                   all_to_all_single (each falls back to its old name)
       2.14 +    : all_gather_single, reduce, alltoall, gather, scatter,
                   reduce_scatter_single, recvAnysource, start/end_coalescing

   Anything else called from C++ on a 2.13 Python PG ends in the C++ base class and
   fails with ``No backend type associated with device type cpu``. Every trampolined
   method MUST return a Work (never None): C++ casts the result to ``Work``.
   Without getGroupName/setGroupName, ``pg.group_name`` raises and functional
   collectives / DeviceMesh break.

Each collective method below has the same shape:
    plan = self._plan(name, tensor, opts)       # faults (NO_PLAN when there are none)
    validate arguments                           # errors in gloo's style
    def write(): ...                             # what this rank's outputs receive
    return self._issue(plan, outputs, write, opts)
``_semantics`` says what ``write`` computes, ``_faults`` how faults bend it.
"""

from __future__ import annotations


import torch
import torch.distributed as dist
from torch._C._distributed_c10d import (
    AllgatherOptions,
    AllreduceCoalescedOptions,
    AllreduceOptions,
    AllToAllOptions,
    BarrierOptions,
    BroadcastOptions,
    GatherOptions,
    ReduceOptions,
    ReduceScatterOptions,
    ScatterOptions,
)

from . import _faults
from ._faults import NO_PLAN
from ._options import Options
from ._semantics import check_op, chunk_view, copy_prefix, reduce_uniform, replicate, split_op
from ._work import FakeWork

BACKEND_NAME = "fakepg"
_CONSTRUCT_KEY = object()  # only the registered creator / splitGroup may construct


class InvalidArgument(ValueError, RuntimeError):
    """A call a real backend would reject. Both a ValueError and a RuntimeError, so code
    written against either convention (gloo raises RuntimeError) catches it."""


# --- argument validation (messages in ProcessGroupGloo's style) -------------------------


def _bad(fn, msg):
    raise InvalidArgument(f"fakepg::{fn}: {msg}")


def _check_len(fn, what, lst, n, index=0):
    if len(lst) != n:
        _bad(fn, f"invalid {what} tensor list at index {index} (expected length {n}, got {len(lst)})")


def _check_type(fn, t, ref, i=0):
    if t.dtype != ref.dtype:
        _bad(fn, f"invalid tensor type at index {i} (expected {ref.dtype}, got {t.dtype})")


def _check_size(fn, t, shape, i=0):
    if t.shape != shape:
        _bad(fn, f"invalid tensor size at index {i} (expected {tuple(shape)}, got {tuple(t.shape)})")


def _check_trailing(fn, t, ref, i=0):
    """Same dtype and same shape except (possibly) dim 0: uneven chunks are allowed."""
    _check_type(fn, t, ref, i)
    if t.dim() != ref.dim() or t.shape[1:] != ref.shape[1:]:
        _bad(fn, f"invalid tensor size at index {i} (expected (*, {', '.join(map(str, ref.shape[1:]))}), got {tuple(t.shape)})")


def _check_root(fn, root, ws):
    if root < 0 or root >= ws:
        _bad(fn, f"invalid root rank: {root}")


def _check_one(fn, what, lst):
    if len(lst) != 1:
        _bad(fn, f"requires a single-element {what} tensor list (got {len(lst)})")


def _check_splits(fn, what, splits, t, ws):
    if splits:
        if len(splits) != ws:
            _bad(fn, f"{what} split sizes length {len(splits)} does not match world size {ws}")
        if sum(splits) != (t.shape[0] if t.dim() else 1):
            _bad(fn, f"Split sizes doesn't match total dim 0 size ({what}: sum {sum(splits)} vs {t.shape[0] if t.dim() else 1})")
        return list(splits)
    d0 = t.shape[0] if t.dim() else 1
    if d0 % ws:
        _bad(fn, f"{what} tensor dim 0 ({d0}) is not divisible by world size ({ws}) and no split sizes were given")
    return [d0 // ws] * ws


def _dtype_of(tensors):
    return tensors[0].dtype if tensors else None


class FakeProcessGroup(dist.ProcessGroup):
    """One simulated rank. Create it with ``dist.init_process_group("fakepg", ...)`` or
    ``dist.new_group(...)``; direct construction is refused (torch must register the
    group, name it and map its ranks, or dist.* cannot find it)."""

    def __init__(self, rank: int, size: int, options: Options, *, global_rank=None, group_name="", _key=None):
        if _key is not _CONSTRUCT_KEY:
            raise TypeError(
                "FakeProcessGroup is created by torch.distributed: use "
                "dist.init_process_group('fakepg', store=fakepg.FakeStore(), rank=r, world_size=n) "
                "or dist.new_group(...), passing fakepg.Options as pg_options="
            )
        if not 0 <= rank < size:
            raise ValueError(f"fakepg: rank {rank} is out of range for world size {size}")
        super().__init__(rank, size)
        self._rank = rank
        self._ws = size
        self._options = options
        self._global_rank = rank if global_rank is None else global_rank
        self._uniform = options.semantics == "uniform"
        self._latency = options.latency_s
        # faults that apply to this rank; plans are compiled lazily per (name, dtype)
        self._faults = [f for f in options.faults if f.ranks is None or self._global_rank in f.ranks]
        self._plans = {}
        self._quiet = not self._faults and not options.error_on_collective
        self._fast_copy = self._quiet and not self._latency and not self._uniform
        self._aborted = False
        self._group_name = group_name
        self._group_desc = "undefined"
        self._coalescing = False

    # --- identity (trampolined: C++ sees these) ------------------------------------------
    @property
    def fake_semantics(self) -> str:
        """"copy" or "uniform": what a simulating backend tells an oracle (read-only)."""
        return self._options.semantics

    @property
    def fake_options(self) -> Options:
        return self._options

    def getBackendName(self):
        return BACKEND_NAME

    def getRank(self):
        return self._rank

    def getSize(self):
        return self._ws

    def getGroupName(self):
        return self._group_name

    def setGroupName(self, name):
        self._group_name = name

    def getGroupDesc(self):
        return self._group_desc

    def setGroupDesc(self, desc):
        self._group_desc = desc

    def abort(self):
        self._aborted = True
        self._quiet = self._fast_copy = False

    def shutdown(self):
        self.abort()

    # sequence numbers: harmless no-ops (DeviceMesh._unflatten calls them)
    def _set_sequence_number_for_group(self):
        return None

    def _get_sequence_number_for_group(self):
        return 0

    def __repr__(self):
        return f"FakeProcessGroup(rank={self._rank}, world_size={self._ws}, semantics={self.fake_semantics!r})"

    # --- the two hooks every collective goes through ---------------------------------------
    def _plan(self, name, dtype, opts):
        if self._aborted:
            raise RuntimeError(f"fakepg: collective {name} called on an aborted process group")
        if self._options.error_on_collective:
            raise RuntimeError(f"fakepg: collective {name} called with error_on_collective=True")
        key = (name, dtype)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = _faults.build_plan(self._faults, name, dtype)
        plan.enter(name, getattr(opts, "asyncOp", True))
        return plan

    def _issue(self, plan, outputs, write, opts, is_barrier=False):
        if plan is NO_PLAN and not self._latency:
            write()
            return _done(outputs)
        return _faults.issue(plan, outputs, write, self._latency, getattr(opts, "asyncOp", True), is_barrier)

    def _reduce(self, t, op, factor):
        if self._uniform:
            reduce_uniform(t, op, factor, self._ws)

    def _op(self, fn, plan, opts, t):
        ro = opts.reduceOp
        if ro == _SUM:  # the common case, valid for every dtype: skip the slow enum work
            op, factor = _SUM, None
        else:
            op, factor = split_op(ro)
            check_op(fn, op, t)
        return plan.op(op, factor) if plan.wrong_op else (op, factor)

    # --- reductions -------------------------------------------------------------------------
    def allreduce(self, tensors, opts=None):
        if opts is None:
            opts = AllreduceOptions()
        if not tensors:
            _bad("allreduce", "requires non-empty tensor list")
        if self._fast_copy:  # hot path: copy semantics, no faults, no latency
            if not opts.reduceOp == _SUM:
                check_op("allreduce", split_op(opts.reduceOp)[0], tensors[0])
            return _done(tensors)
        plan = NO_PLAN if self._quiet else self._plan("all_reduce", _dtype_of(tensors), opts)
        op, factor = self._op("allreduce", plan, opts, tensors[0])
        if self._uniform:

            def write():
                for t in tensors:
                    reduce_uniform(t, op, factor, self._ws)

        else:
            write = _noop
        return self._issue(plan, tensors, write, opts)

    def allreduce_coalesced(self, tensors, opts=None):
        opts = opts or AllreduceCoalescedOptions()
        plan = NO_PLAN if self._quiet else self._plan("all_reduce_coalesced", _dtype_of(tensors), opts)
        for i, t in enumerate(tensors):
            _check_type("allreduce_coalesced", t, tensors[0], i)
        op, factor = self._op("allreduce_coalesced", plan, opts, tensors[0]) if tensors else (None, None)
        live = tensors[:-1] if plan.drop_last else tensors

        def write():
            for t in live:
                self._reduce(t, op, factor)

        return self._issue(plan, tensors, write, opts)

    def reduce(self, tensors, opts=None):
        opts = opts or ReduceOptions()
        plan = NO_PLAN if self._quiet else self._plan("reduce", _dtype_of(tensors), opts)
        _check_one("reduce", "input", tensors)
        _check_root("reduce", opts.rootRank, self._ws)
        op, factor = self._op("reduce", plan, opts, tensors[0])
        is_root = plan.root(opts.rootRank, self._ws) == self._rank

        def write():
            if is_root:  # non-dst output is unspecified: left unchanged
                self._reduce(tensors[0], op, factor)

        return self._issue(plan, tensors, write, opts)

    # --- broadcast / gather / scatter (rooted) ---------------------------------------------
    def broadcast(self, tensors, opts=None):
        opts = opts or BroadcastOptions()
        plan = NO_PLAN if self._quiet else self._plan("broadcast", _dtype_of(tensors), opts)
        if not tensors:
            _bad("broadcast", "requires non-empty tensor list")
        _check_root("broadcast", opts.rootRank, self._ws)
        # Every rank holds "my data", so the root's tensor is this tensor: unchanged.
        # off_by_one_root: every rank except the one wrongly taken as root receives from
        # a root that does not hold the data -> zero-filled (observable, documented).
        wrong = plan.shift_root and plan.root(opts.rootRank, self._ws) != self._rank

        def write():
            if wrong:
                for t in tensors:
                    t.zero_()

        return self._issue(plan, tensors, write, opts)

    def gather(self, output_lists, tensors, opts=None):
        opts = opts or GatherOptions()
        plan = NO_PLAN if self._quiet else self._plan("gather", _dtype_of(tensors), opts)
        fn = "gather"
        _check_one(fn, "input", tensors)
        root = opts.rootRank
        _check_root(fn, root, self._ws)
        inp = tensors[0]
        if root == self._rank:
            if len(output_lists) != 1:
                _bad(fn, "requires a single-element output list containing a list with <size> tensors.")
            if len(output_lists[0]) != self._ws:
                _bad(fn, f"Incorrect output list size {len(output_lists[0])}. Output list size should be {self._ws}, same as size of the process group.")
            for i, o in enumerate(output_lists[0]):
                _check_type(fn, o, inp, i)
                _check_size(fn, o, inp.shape, i)
        elif output_lists and any(len(lst) for lst in output_lists):
            _bad(fn, "requires empty output on non-root")
        acts_root = plan.root(root, self._ws) == self._rank
        slots = list(output_lists[0]) if (acts_root and output_lists) else []
        if plan.mirror:
            slots.reverse()

        def write():
            for o in slots:
                o.copy_(inp)

        return self._issue(plan, slots, write, opts)

    def gather_single(self, output, input, opts=None):
        """torch 2.14+: gather into one tensor on dst (chunks in rank order)."""
        opts = opts or GatherOptions()
        plan = NO_PLAN if self._quiet else self._plan("gather_single", input.dtype, opts)
        fn = "gather_single"
        _check_root(fn, opts.rootRank, self._ws)
        acts_root = plan.root(opts.rootRank, self._ws) == self._rank
        if opts.rootRank == self._rank:
            _check_type(fn, output, input)
            if output.numel() != input.numel() * self._ws:
                _bad(fn, f"output numel {output.numel()} != world size {self._ws} * input numel {input.numel()}")
        outs = [output] if acts_root and output is not None and output.numel() else []

        def write():
            if outs:
                replicate(output, input, self._ws)

        return self._issue(plan, outs, write, opts)

    def scatter(self, tensors, input_lists, opts=None):
        opts = opts or ScatterOptions()
        plan = NO_PLAN if self._quiet else self._plan("scatter", _dtype_of(tensors), opts)
        fn = "scatter"
        _check_one(fn, "output", tensors)
        root = opts.rootRank
        _check_root(fn, root, self._ws)
        out = tensors[0]
        if root == self._rank:
            if len(input_lists) != 1:
                _bad(fn, "requires a single-element input list containing a list with <size> tensors")
            _check_len(fn, "input", input_lists[0], self._ws)
            for i, t in enumerate(input_lists[0]):
                _check_type(fn, t, out, i)
                _check_size(fn, t, out.shape, i)
        elif input_lists and any(len(lst) for lst in input_lists):
            _bad(fn, "requires empty input on non-root")
        # Non-root: the root's scatter_list is not derivable -> output left unchanged.
        acts_root = plan.root(root, self._ws) == self._rank
        src = None
        if acts_root and input_lists and input_lists[0]:
            src = input_lists[0][self._ws - 1 - self._rank if plan.mirror else self._rank]

        def write():
            if src is not None:
                out.copy_(src)

        return self._issue(plan, tensors, write, opts)

    # --- all_gather family -------------------------------------------------------------------
    def allgather(self, output_lists, tensors, opts=None):
        opts = opts or AllgatherOptions()
        plan = NO_PLAN if self._quiet else self._plan("all_gather", _dtype_of(tensors), opts)
        fn = "allgather"
        _check_one(fn, "input", tensors)
        if len(output_lists) != 1:
            _bad(fn, f"requires a single-element output list (got {len(output_lists)})")
        inp = tensors[0]
        slots = list(output_lists[0])
        _check_len(fn, "output", slots, self._ws)
        for i, o in enumerate(slots):
            _check_trailing(fn, o, inp, i)  # uneven dim 0 allowed (copied as a prefix)
        if plan.mirror:
            slots.reverse()

        def write():
            for o in slots:
                copy_prefix(o, inp)

        return self._issue(plan, slots, write, opts)

    def all_gather_single(self, output, input, opts=None):
        opts = opts or AllgatherOptions()
        plan = NO_PLAN if self._quiet else self._plan("all_gather_single", input.dtype, opts)
        fn = "all_gather_single"
        _check_type(fn, output, input)
        ws = self._ws
        if output.numel() != input.numel() * ws:
            _bad(fn, f"output tensor numel {output.numel()} must equal world size {ws} * input numel {input.numel()} "
                 f"(output {tuple(output.shape)}, input {tuple(input.shape)})")
        # every chunk is "my data"; chunk_order reverses identical chunks (unobservable)
        outputs = [output]

        def write():
            replicate(output, input, ws)

        return self._issue(plan, outputs, write, opts)

    _allgather_base = all_gather_single  # torch <= 2.12 name

    def allgather_coalesced(self, output_lists, tensors, opts=None):
        opts = opts or AllgatherOptions()
        plan = NO_PLAN if self._quiet else self._plan("all_gather_coalesced", _dtype_of(tensors), opts)
        fn = "allgather_coalesced"
        if len(output_lists) != self._ws:
            _bad(fn, "output lists should be equal to world size")
        for r, lst in enumerate(output_lists):
            _check_len(fn, "output", lst, len(tensors), r)
            for i, (o, t) in enumerate(zip(lst, tensors)):
                _check_type(fn, o, t, i)
                _check_size(fn, o, t.shape, i)
        n = len(tensors) - (1 if plan.drop_last else 0)
        lists = list(reversed(output_lists)) if plan.mirror else output_lists
        outputs = [o for lst in output_lists for o in lst]

        def write():
            for lst in lists:
                for i in range(n):
                    lst[i].copy_(tensors[i])

        return self._issue(plan, outputs, write, opts)

    def all_gather_single_coalesced(self, outputs, inputs, opts=None):
        opts = opts or AllgatherOptions()
        # torch 2.13 sends the plain functional all_gather_single here as a one-tensor coalesced call: plan (and
        # select faults) under its own name, and only a real coalesced call can drop its last tensor.
        name = "all_gather_single_coalesced" if len(inputs) > 1 else "all_gather_single"
        plan = NO_PLAN if self._quiet else self._plan(name, _dtype_of(inputs), opts)
        fn = "all_gather_single_coalesced"
        _check_len(fn, "output", outputs, len(inputs))
        for i, (o, t) in enumerate(zip(outputs, inputs)):
            _check_type(fn, o, t, i)
            if o.numel() != t.numel() * self._ws:
                _bad(fn, f"invalid tensor size at index {i} (output numel {o.numel()} != {self._ws} * {t.numel()})")
        n = len(inputs) - (1 if plan.drop_last and len(inputs) > 1 else 0)

        def write():
            for i in range(n):
                replicate(outputs[i], inputs[i], self._ws)

        return self._issue(plan, list(outputs), write, opts)

    allgather_into_tensor_coalesced = all_gather_single_coalesced  # torch <= 2.12 name

    # --- reduce_scatter family -------------------------------------------------------------
    def reduce_scatter(self, tensors, input_lists, opts=None):
        opts = opts or ReduceScatterOptions()
        plan = NO_PLAN if self._quiet else self._plan("reduce_scatter", _dtype_of(tensors), opts)
        fn = "reduce_scatter"
        _check_one(fn, "output", tensors)
        if len(input_lists) != 1:
            _bad(fn, "invalid input tensor list size, must be world size")
        out = tensors[0]
        ins = input_lists[0]
        if len(ins) != self._ws:
            _bad(fn, "invalid input tensor list size, must be world size")
        for i, t in enumerate(ins):
            _check_type(fn, t, out, i)
            _check_size(fn, t, out.shape, i)
        op, factor = self._op(fn, plan, opts, out)
        src = ins[self._ws - 1 - self._rank if plan.mirror else self._rank]

        def write():
            out.copy_(src)
            self._reduce(out, op, factor)

        return self._issue(plan, tensors, write, opts)

    def reduce_scatter_single(self, output, input, opts=None):
        opts = opts or ReduceScatterOptions()
        plan = NO_PLAN if self._quiet else self._plan("reduce_scatter_single", input.dtype, opts)
        fn = "reduce_scatter_single"
        _check_type(fn, output, input)
        ws = self._ws
        if output.numel() * ws != input.numel():
            _bad(fn, f"Check failed: output numel * world size == input numel ({output.numel()} * {ws} vs. {input.numel()})")
        op, factor = self._op(fn, plan, opts, output)
        idx = ws - 1 - self._rank if plan.mirror else self._rank

        def write():
            output.copy_(chunk_view(input, ws, idx).view(output.shape) if output.is_contiguous() else chunk_view(input, ws, idx).reshape(output.shape))
            self._reduce(output, op, factor)

        return self._issue(plan, [output], write, opts)

    _reduce_scatter_base = reduce_scatter_single  # torch <= 2.12 name

    def reduce_scatter_single_coalesced(self, outputs, inputs, opts=None):
        opts = opts or ReduceScatterOptions()
        # torch 2.13 sends the plain functional reduce_scatter_single here as a one-tensor coalesced call: plan (and
        # select faults) under its own name, and only a real coalesced call can drop its last tensor.
        name = "reduce_scatter_single_coalesced" if len(inputs) > 1 else "reduce_scatter_single"
        plan = NO_PLAN if self._quiet else self._plan(name, _dtype_of(inputs), opts)
        fn = "reduce_scatter_single_coalesced"
        ws = self._ws
        _check_len(fn, "output", outputs, len(inputs))
        for i, (o, t) in enumerate(zip(outputs, inputs)):
            _check_type(fn, o, t, i)
            if o.numel() * ws != t.numel():
                _bad(fn, f"invalid tensor size at index {i} (output numel {o.numel()} * {ws} != {t.numel()})")
        op, factor = self._op(fn, plan, opts, inputs[0]) if inputs else (None, None)
        idx = ws - 1 - self._rank if plan.mirror else self._rank
        n = len(inputs) - (1 if plan.drop_last and len(inputs) > 1 else 0)

        def write():
            for i in range(n):
                o = outputs[i]
                o.copy_(chunk_view(inputs[i], ws, idx).reshape(o.shape))
                self._reduce(o, op, factor)

        return self._issue(plan, list(outputs), write, opts)

    reduce_scatter_tensor_coalesced = reduce_scatter_single_coalesced  # torch <= 2.12 name

    # --- all_to_all ----------------------------------------------------------------------------
    def alltoall(self, outputs, inputs, opts=None):
        opts = opts or AllToAllOptions()
        plan = NO_PLAN if self._quiet else self._plan("all_to_all", _dtype_of(inputs), opts)
        fn = "alltoall"
        ws = self._ws
        if len(inputs) != ws:
            _bad(fn, f"input tensor list size {len(inputs)} does not match world size {ws}")
        if len(outputs) != ws:
            _bad(fn, f"output tensor list size {len(outputs)} does not match world size {ws}")
        for i, (o, t) in enumerate(zip(outputs, inputs)):
            _check_type(fn, o, inputs[0], i)
            _check_type(fn, t, inputs[0], i)
        # rank j sends me its chunk `rank`, which (every rank holds my data) is MY chunk `rank`
        src = inputs[ws - 1 - self._rank if plan.mirror else self._rank]
        for i, o in enumerate(outputs):
            if o.shape != src.shape:
                _check_trailing(fn, o, src, i)

        def write():
            for o in outputs:
                copy_prefix(o, src)

        return self._issue(plan, list(outputs), write, opts)

    def all_to_all_single(self, output, input, output_split_sizes=None, input_split_sizes=None, opts=None):
        opts = opts or AllToAllOptions()
        plan = NO_PLAN if self._quiet else self._plan("all_to_all_single", input.dtype, opts)
        fn = "alltoall_base"
        ws = self._ws
        _check_type(fn, output, input)
        if output.dim() != input.dim() or output.shape[1:] != input.shape[1:]:
            _bad(fn, f"output {tuple(output.shape)} and input {tuple(input.shape)} differ beyond dim 0")
        osz = _check_splits(fn, "output", output_split_sizes, output, ws)
        isz = _check_splits(fn, "input", input_split_sizes, input, ws)
        idx = ws - 1 - self._rank if plan.mirror else self._rank
        start = sum(isz[:idx])
        mine = input.narrow(0, start, isz[idx]) if input.dim() else input

        def write():
            if output.dim() == 0:
                output.copy_(mine)
            elif len(set(osz)) == 1 and osz[0] == isz[idx] and osz[0]:  # common case: one kernel
                output.view(ws, *mine.shape).copy_(mine.unsqueeze(0).expand(ws, *mine.shape))
            else:
                off = 0
                for n in osz:
                    copy_prefix(output.narrow(0, off, n), mine)
                    off += n

        return self._issue(plan, [output], write, opts)

    alltoall_base = all_to_all_single  # torch <= 2.12 name

    # --- barrier / p2p -----------------------------------------------------------------------
    def barrier(self, opts=None):
        opts = opts or BarrierOptions()
        plan = NO_PLAN if self._quiet else self._plan("barrier", None, opts)
        return self._issue(plan, [], _noop, opts, is_barrier=True)

    def monitored_barrier(self, timeout=None, wait_all_ranks=False):
        # dist.monitored_barrier refuses non-gloo groups before calling this; direct callers get a barrier.
        self.barrier().wait()

    def send(self, tensors, dst, tag=0):
        plan = NO_PLAN if self._quiet else self._plan("send", _dtype_of(tensors), None)
        _check_one("send", "input", tensors)
        if not 0 <= dst < self._ws:
            _bad("send", f"invalid destination rank: {dst}")
        return self._issue(plan, [], _noop, None)

    def recv(self, tensors, src, tag=0):
        plan = NO_PLAN if self._quiet else self._plan("recv", _dtype_of(tensors), None)
        _check_one("recv", "output", tensors)
        if not 0 <= src < self._ws:
            _bad("recv", f"invalid source rank: {src}")
        # what a peer sends is not derivable: the buffer is left unchanged
        work = self._issue(plan, tensors, _noop, None)
        work._source = src
        return work

    def recv_anysource(self, tensors, tag=0):
        plan = NO_PLAN if self._quiet else self._plan("recv_anysource", _dtype_of(tensors), None)
        _check_one("recv_anysource", "output", tensors)
        work = self._issue(plan, tensors, _noop, None)
        work._source = (self._rank - 1) % self._ws  # documented choice: the previous rank
        return work

    def _start_coalescing(self, device=None):
        if self._coalescing:
            raise RuntimeError("fakepg: _start_coalescing called twice without _end_coalescing")
        self._coalescing = True

    def _end_coalescing(self, device=None):
        if not self._coalescing:
            raise RuntimeError("fakepg: _end_coalescing called without _start_coalescing")
        self._coalescing = False
        return _done([])  # every call inside already ran

    # --- groups --------------------------------------------------------------------------
    def splitGroup(self, ranks, timeout=None, opts=None, group_name=None, group_desc=None, devices=None):
        """Trampolined (2.9+). ``ranks`` are ranks of this group; the child's rank is this
        rank's position in sorted(ranks) (NCCL's rule); non-members get None."""
        ranks = sorted(ranks)
        if self._rank not in ranks:
            return None
        options = opts if isinstance(opts, Options) else self._options
        child = FakeProcessGroup(ranks.index(self._rank), len(ranks), options,
                                 global_rank=self._global_rank, group_name=group_name or "", _key=_CONSTRUCT_KEY)
        if group_desc:
            child.setGroupDesc(group_desc)
        return child

    split_group = splitGroup


def _noop():
    pass


_done = FakeWork.done
_SUM = dist.ReduceOp.SUM


def create(dist_backend_opts, pg_options) -> FakeProcessGroup:
    """The creator registered with Backend.register_backend(extended_api=True)."""
    from ._options import resolve

    options = resolve(pg_options)
    rank = dist_backend_opts.group_rank
    ranks = dist_backend_opts.global_ranks_in_group  # [] for the default group
    global_rank = ranks[rank] if ranks else rank
    return FakeProcessGroup(rank, dist_backend_opts.group_size, options, global_rank=global_rank,
                            group_name=dist_backend_opts.group_id, _key=_CONSTRUCT_KEY)

"""FakeProcessGroup: one rank of a world of any size, with no communication.

Read this class as the template of a Python backend: each collective method says only what the call writes, in a
world in which every rank holds this rank's data (reductions applied in ``uniform`` semantics, not in ``copy``).
Everything every collective shares -- argument checks, fault injection, dispatch-level observers, writing below
autograd, the Work -- is applied by the ``@collective`` decorator (``_route.py``); a real backend would replace the
method bodies with communication and keep the rest.

How a Python backend plugs into torch.distributed
=================================================

A C++ ``Backend`` cannot be subclassed from Python, so a Python backend is a ``dist.ProcessGroup`` subclass that
``Backend.register_backend(..., extended_api=True)``'s creator returns; torch then uses it AS the process group.
It has two kinds of caller, and they see different method names:

1. Python callers -- every ``dist.*`` function -- look the method up on the object, so any method defined here is
   reached. torch 2.13 renamed some (``_allgather_base`` -> ``all_gather_single``, ``_reduce_scatter_base`` ->
   ``reduce_scatter_single``, ``alltoall_base`` -> ``all_to_all_single``, ``allgather_into_tensor_coalesced`` ->
   ``all_gather_single_coalesced``, ``reduce_scatter_tensor_coalesced`` -> ``reduce_scatter_single_coalesced``);
   2.14 added ``gather_single``. The class defines the name this torch binds (``_compat.base_name``), never both:
   C++ falls back from a new name to the old one, which would call the override again.

2. C++ callers -- functional collectives (and so DTensor, FSDP2, TP), DDP's reducer, ``_coalescing_manager`` --
   reach a Python group only through the pybind trampoline (``PyProcessGroup.hpp``), i.e. only these names:

       torch 2.4 : allgather, allgather_into_tensor_coalesced, allreduce, allreduce_coalesced, alltoall_base,
                   barrier, broadcast, reduce_scatter, reduce_scatter_tensor_coalesced, send, recv,
                   getBackendName; Work: wait, get_future
       2.6 +     : getRank, getSize, getGroupName, setGroupName, getGroupDesc, setGroupDesc
       2.7 +     : abort            2.9 + : splitGroup, mergeRemoteGroup
       2.13 +    : all_gather_single_coalesced, reduce_scatter_single_coalesced, all_to_all_single
       2.14 +    : all_gather_single, reduce, alltoall, gather, scatter, reduce_scatter_single, recvAnysource,
                   start/end_coalescing

   Every trampolined method must return a Work (C++ casts the result). Anything else C++ asks of the group
   (``getBackend(device)``: batch_isend_irecv on 2.14+, the group name on 2.4, ``batch_p2p_ops``) goes to the C++
   backend registered beneath it per device: here torch's own C++ fake, which also serves the dispatcher path.
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

from . import _compat
from ._checks import valid_rank
from ._compat import reduce_op_parts
from ._faults import build_plan
from ._identity import NamedProcessGroup
from ._options import Options
from ._route import NEVER, UNIFORM, collective
from ._semantics import (
    copy_all,
    copy_prefix,
    fit_each,
    reduce_uniform,
    repeat_rows,
    replicate,
    take_chunk,
)
from ._work import FakeWork

BACKEND_NAME = "fakepg"
_CONSTRUCT_KEY = object()  # only the registered creator / splitGroup may construct
_P2P = ("send", "recv", "recv_anysource")  # not collectives: error_on_collective spares them, as torch's fake does


def _single_or_coalesced(name):
    """The name faults select a coalesced call by: torch 2.13+ sends a plain functional all_gather_single /
    reduce_scatter_single here as a one-tensor coalesced call."""
    return lambda outputs, inputs, opts=None: f"{name}_coalesced" if len(inputs) > 1 else name


class FakeProcessGroup(NamedProcessGroup):
    """One simulated rank. Created by ``dist.init_process_group("fakepg", ...)`` or ``dist.new_group(...)``;
    direct construction is refused (torch must register the group, name it and map its ranks, or dist.* cannot
    find it)."""

    Options = Options  # as torch's FakeProcessGroup.Options

    def __init__(self, rank=None, size=None, options=None, *, devices=(), global_rank=None, group_name="",
                 _key=None, **unknown):
        if _key is not _CONSTRUCT_KEY:
            raise TypeError(
                "No constructor defined: FakeProcessGroup is created by torch.distributed: use "
                "dist.init_process_group('fakepg', rank=r, world_size=n) or dist.new_group(...), passing "
                "fakepg.Options as pg_options="
            )
        valid_rank(rank, size)
        super().__init__(rank, size)
        self._options = options
        self._global_rank = rank if global_rank is None else global_rank
        self._uniform = options.semantics == "uniform"
        self._latency = options.latency_s
        # faults that apply to this rank; plans are compiled lazily per (collective, dtype)
        self._faults = [f for f in options.faults if f.ranks is None or self._global_rank in f.ranks]
        self._plans = {}
        self._quiet = not self._faults
        self._aborted = False
        self._refusing = options.error_on_collective  # or aborted: the route asks _refuse()
        self._pin_works = not _compat.cpp_keeps_python_work()
        self._simple = self._quiet and not self._latency  # the route's short lane
        self._group_name, self._group_desc = group_name, "undefined"
        self._coalescing = False
        self._devices = tuple(devices)
        # torch's C++ fake, as this group's backend on every device: what C++ reaches below the group (the
        # dispatcher's c10d ops for observers, getBackend(device), the group name on 2.4, 2.15's recorder hooks)
        self._beneath = _compat.cpp_fake(rank, size)
        custom = dist.ProcessGroup.BackendType.CUSTOM
        for dev in self._devices:
            try:
                self._register_backend(torch.device(dev), custom, self._beneath)
            except RuntimeError:  # a device this torch cannot name: nothing of it can reach the dispatcher either
                pass
        if hasattr(self, "_set_default_backend"):  # absent before 2.5
            self._set_default_backend(custom)
        if group_name:
            self._set_group_name(group_name)

    # --- identity (trampolined: C++ sees these) -------------------------------------------------------------
    @property
    def fake_semantics(self) -> str:
        """"copy" or "uniform": what a simulating backend tells an oracle (read-only)."""
        return self._options.semantics

    @property
    def fake_options(self) -> Options:
        return self._options

    def getBackendName(self):
        return BACKEND_NAME

    def abort(self):
        self._aborted = self._refusing = True
        self._simple = False

    def shutdown(self):
        self.abort()

    # sequence numbers: harmless no-ops (DeviceMesh._unflatten calls them)
    def _set_sequence_number_for_group(self):
        return None

    def _get_sequence_number_for_group(self):
        return 0

    def __repr__(self):
        return f"FakeProcessGroup(rank={self._rank}, world_size={self._ws}, semantics={self.fake_semantics!r})"

    # --- what the route asks of the group --------------------------------------------------------------------
    def _refuse(self, name):
        if self._aborted:
            raise RuntimeError(f"fakepg: collective {name} called on an aborted process group")
        if name not in _P2P:
            raise RuntimeError(f"FakeProcessGroup collective operation error (error_on_collective=true): "
                               f"fakepg {name}")

    def _plan(self, public, first):
        key = (public, None if first is None else first.dtype)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = build_plan(self._faults, *key)
        return plan

    def _reduce(self, t, opts):
        """t becomes its reduction (``opts.reduceOp``) over a world that holds t everywhere; copy semantics leave
        it as it is."""
        if self._uniform:
            reduce_uniform(t, *reduce_op_parts(opts.reduceOp), self._ws)

    # --- reductions --------------------------------------------------------------------------------------------
    @collective("all_reduce", AllreduceOptions, writes=UNIFORM)
    def allreduce(self, tensors, opts=None):
        for t in tensors:
            self._reduce(t, opts)

    @collective("all_reduce_coalesced", AllreduceCoalescedOptions, writes=UNIFORM)
    def allreduce_coalesced(self, tensors, opts=None):
        for t in tensors:
            self._reduce(t, opts)

    @collective("reduce", ReduceOptions, writes=UNIFORM)
    def reduce(self, tensors, opts=None):
        """Only the root's tensor is written: elsewhere it is unspecified, and left unchanged."""
        if opts.rootRank == self._rank:
            self._reduce(tensors[0], opts)

    # --- rooted data movement --------------------------------------------------------------------------------
    @collective("broadcast", BroadcastOptions, writes=NEVER)
    def broadcast(self, tensors, opts=None):
        """The root holds this rank's data too: nothing changes."""

    @collective("gather", GatherOptions, outputs=lambda output_lists, *_: output_lists[0] if output_lists else [])
    def gather(self, output_lists, tensors, opts=None):
        """The root receives this rank's tensor from every rank; the others pass no output."""
        if opts.rootRank == self._rank:
            for slots in output_lists:
                copy_all(slots, tensors * len(slots))

    @collective("gather_single", GatherOptions, outputs=lambda output, *_: [] if output is None else [output])
    def gather_single(self, output, input, opts=None):
        """torch 2.14+: gather into one tensor on the root, the pieces in rank order."""
        if opts.rootRank == self._rank and output is not None and output.numel():
            replicate(output, input, self._ws)

    @collective("scatter", ScatterOptions)
    def scatter(self, tensors, input_lists, opts=None):
        """The root keeps its own piece. Elsewhere the output is left unchanged: the root's list is not
        derivable from this rank's data."""
        if opts.rootRank == self._rank:
            for pieces in input_lists:
                tensors[0].copy_(pieces[self._rank])

    # --- all_gather ----------------------------------------------------------------------------------------------
    @collective("all_gather", AllgatherOptions, outputs=lambda output_lists, *_: output_lists[0])
    def allgather(self, output_lists, tensors, opts=None, *, even=False):
        """Every slot receives this rank's tensor (an uneven slot: the rows that fit, then zeros). even: every slot
        is shaped like it."""
        slots = output_lists[0]
        (copy_all if even else fit_each)(slots, tensors * len(slots))

    @collective("all_gather_single", AllgatherOptions, outputs=lambda output, *_: [output],
                legacy="_allgather_base")
    def all_gather_single(self, output, input, opts=None):
        replicate(output, input, self._ws)

    @collective("all_gather_coalesced", AllgatherOptions,
                outputs=lambda output_lists, *_: [o for slots in output_lists for o in slots])
    def allgather_coalesced(self, output_lists, tensors, opts=None):
        copy_all([slot for slots in output_lists for slot in slots], tensors * len(output_lists))

    @collective(_single_or_coalesced("all_gather_single"), AllgatherOptions,
                legacy="allgather_into_tensor_coalesced")
    def all_gather_single_coalesced(self, outputs, inputs, opts=None):
        for output, input in zip(outputs, inputs):
            replicate(output, input, self._ws)

    # --- reduce_scatter ----------------------------------------------------------------------------------------
    @collective("reduce_scatter", ReduceScatterOptions)
    def reduce_scatter(self, tensors, input_lists, opts=None):
        """This rank's piece of the reduction: piece ``rank`` of the inputs, reduced over the world."""
        for output, pieces in zip(tensors, input_lists):
            output.copy_(pieces[self._rank])
            self._reduce(output, opts)

    @collective("reduce_scatter_single", ReduceScatterOptions, outputs=lambda output, *_: [output],
                legacy="_reduce_scatter_base")
    def reduce_scatter_single(self, output, input, opts=None):
        take_chunk(output, input, self._ws, self._rank)
        self._reduce(output, opts)

    @collective(_single_or_coalesced("reduce_scatter_single"), ReduceScatterOptions,
                legacy="reduce_scatter_tensor_coalesced")
    def reduce_scatter_single_coalesced(self, outputs, inputs, opts=None):
        for output, input in zip(outputs, inputs):
            take_chunk(output, input, self._ws, self._rank)
            self._reduce(output, opts)

    # --- all_to_all ----------------------------------------------------------------------------------------------
    @collective("all_to_all", AllToAllOptions)
    def alltoall(self, outputs, inputs, opts=None, *, even=False):
        """uniform: rank j sends me its piece ``rank``, i.e. my piece ``rank``. copy (torch's fake): slot i
        receives piece i. A slot of another size gets the rows that fit, then zeros. even: all of one shape."""
        (copy_all if even else fit_each)(outputs, [inputs[self._rank]] * len(outputs) if self._uniform else inputs)

    @collective("all_to_all_single", AllToAllOptions, outputs=lambda output, *_: [output], legacy="alltoall_base")
    def all_to_all_single(self, output, input, output_split_sizes=None, input_split_sizes=None, opts=None, *,
                          even=False):
        """uniform: every output split receives my input split ``rank`` (the rows that fit, then zeros).
        copy (torch 2.13's fake): without split sizes the output is the input; with them every output split
        repeats the input's first rows. even: no split sizes, the output shaped like the input."""
        ws, even = self._ws, even or not (output_split_sizes or input_split_sizes) and output.shape == input.shape
        if (even and not self._uniform) or output.dim() == 0:
            output.copy_(input)
            return
        slots = output.split(output_split_sizes or [output.shape[0] // ws] * ws)
        if self._uniform:
            mine = input.split(input_split_sizes or [input.shape[0] // ws] * ws)[self._rank]
            if even:
                replicate(output, mine, ws)
            else:
                for slot in slots:
                    copy_prefix(slot, mine)
        else:
            for slot in slots:
                repeat_rows(slot, input)

    # --- barrier and point-to-point ------------------------------------------------------------------------------
    @collective("barrier", BarrierOptions, outputs=lambda *_: [], writes=NEVER)
    def barrier(self, opts=None):
        """Completes (after latency_s): there is nobody to wait for."""

    def monitored_barrier(self, timeout=None, wait_all_ranks=False):
        # dist.monitored_barrier refuses non-gloo groups before calling this; direct callers get a barrier.
        self.barrier().wait()

    @collective("send", outputs=lambda *_: [], writes=NEVER)
    def send(self, tensors, dst, tag=0):
        """Nobody receives."""

    @collective("recv", source=lambda self, tensors, src, tag=0: src, writes=NEVER)
    def recv(self, tensors, src, tag=0):
        """What a peer sends is not derivable: the buffer is left unchanged."""

    @collective("recv_anysource", source=lambda self, *_: (self._rank - 1) % self._ws, writes=NEVER)
    def recv_anysource(self, tensors, tag=0):
        """As recv, from the previous rank (a documented choice)."""

    def _start_coalescing(self, device=None):
        if self._coalescing:
            raise RuntimeError("fakepg: _start_coalescing called twice without _end_coalescing")
        self._coalescing = True

    def _end_coalescing(self, device=None):
        if not self._coalescing:
            raise RuntimeError("fakepg: _end_coalescing called without _start_coalescing")
        self._coalescing = False
        return FakeWork.done([])  # every call inside already ran

    # --- groups --------------------------------------------------------------------------------------------------
    def splitGroup(self, ranks, timeout=None, opts=None, group_name=None, group_desc=None, *_, **__):
        """Trampolined (2.9+; later releases pass more, e.g. 2.15's device_types). ``ranks`` are ranks of this group;
        the child's rank is this rank's position in sorted(ranks) (NCCL's rule); non-members get None."""
        ranks = sorted(ranks)
        if self._rank not in ranks:
            return None
        child = FakeProcessGroup(ranks.index(self._rank), len(ranks), opts if isinstance(opts, Options) else
                                 self._options, devices=self._devices, global_rank=self._global_rank,
                                 group_name=group_name or "", _key=_CONSTRUCT_KEY)
        if group_desc:
            child.setGroupDesc(group_desc)
        return child

    split_group = splitGroup


# Bind each renamed collective under the name this torch calls (the old one on torch <= 2.12, see the docstring).
for _method in (FakeProcessGroup.all_gather_single, FakeProcessGroup.reduce_scatter_single,
                FakeProcessGroup.all_to_all_single, FakeProcessGroup.all_gather_single_coalesced,
                FakeProcessGroup.reduce_scatter_single_coalesced):
    setattr(FakeProcessGroup, _method.__name__, _method)


def create_group(rank: int, size: int, options: Options, devices, global_rank: int, group_name: str):
    """A group as torch's creator asks for one (the constructor refuses anyone else)."""
    return FakeProcessGroup(rank, size, options, devices=devices, global_rank=global_rank, group_name=group_name,
                            _key=_CONSTRUCT_KEY)

"""hoststaged: a real communicator for a device gloo cannot touch: stage to host, run gloo, copy back.

Every collective copies the device tensors it is given to host tensors of the same dtype,
shape and strides (so gloo sees exactly what a cpu caller would hand it, and refuses or
accepts the same things), issues the same gloo call on them, and returns a ``StagedWork``
that completes honestly: only once gloo has finished AND the outputs are back on the
device. Host (cpu) tensors pass through unstaged: torch routes a Python process group's
object collectives through cpu tensors.

It is a ``dist.ProcessGroup`` subclass (a C++ ``Backend`` cannot be subclassed from
Python), so it defines both method-name sets torch 2.4..2.15 call (see fakepg/_group.py's
docstring); each one maps to whichever name this torch's gloo binding has.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import timedelta

import torch
import torch.distributed as dist
from torch._C._distributed_c10d import (  # torch.distributed re-exports only some of them before 2.5
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
from torch.futures import Future, collect_all

from .._identity import NamedProcessGroup

BACKEND = "hoststaged"


def _flat(x) -> list:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for e in x for t in _flat(e)]
    return []


# Works C++ may still hold. Before torch 2.9 a Python Work handed to C++ (functional
# collectives, DDP) loses its Python half when Python drops it, and C++ then waits on the
# empty base class forever. So each work stays in _LIVE until it is complete and someone
# has waited for it or taken its future, then among the _RECENT ones for a while (a
# coalesced functional collective waits once per output tensor).
_LIVE: set = set()
_RECENT: deque = deque(maxlen=256)


class StagedWork(dist._Work):
    """Complete when every gloo work is complete and the outputs are copied back.

    The copy-back runs once: from gloo's future callback (gloo's worker thread), or from
    ``wait()``/``is_completed()`` for works without a future (gloo's send/recv).
    """

    def __init__(self, works, copies, result):
        super().__init__()
        self._works, self._copies, self._result = works, copies, result
        self._fut = Future()
        self._error = None
        self._consumed = False
        self._lock = threading.Lock()
        _LIVE.add(self)
        futures = []
        for w in works:
            try:
                futures.append(w.get_future())
            except RuntimeError:   # "getFuture not implemented": finished by wait()/is_completed()
                futures = None
                break
        if futures:
            collect_all(futures).add_done_callback(self._finish)

    def _finish(self, gloo_done=None):
        with self._lock:
            if self._fut.done():
                return
            try:
                for f in gloo_done.value() if gloo_done is not None else ():
                    f.value()                     # re-raises gloo's error: then nothing is copied back
                for dev, host in self._copies:
                    dev.detach().copy_(host)      # beneath autograd, as a C++ backend writes
            except Exception as exc:
                self._error = exc
                self._fut.set_exception(exc)
            else:
                self._fut.set_result(self._result)
        self._release()

    def _release(self):
        if self._consumed and self._fut.done() and self in _LIVE:
            _LIVE.discard(self)
            _RECENT.append(self)
            self._copies = []                    # the host buffers are no longer needed

    def wait(self, timeout=None):
        for w in self._works:
            try:
                w.wait(timeout) if timeout else w.wait()
            except Exception as exc:
                if w.is_completed():             # failed, not merely still running past `timeout`
                    self._fail(exc)
                raise
        self._finish()
        self._consumed = True
        self._release()
        self._fut.wait()                         # the callback may still be copying; re-raises its error
        return True

    def _fail(self, exc):
        with self._lock:
            if not self._fut.done():
                self._error = exc
                self._fut.set_exception(exc)
        self._release()

    def is_completed(self):
        if not self._fut.done() and all(w.is_completed() for w in self._works):
            try:
                for w in self._works:
                    w.wait()                     # complete: returns at once, or re-raises its error
            except Exception as exc:
                self._fail(exc)
            else:
                self._finish()
        return self._fut.done()

    def is_success(self):
        return self.is_completed() and self._error is None

    def exception(self):
        return self._error

    def result(self):
        return self._result

    def get_future(self):
        self._consumed = True
        self._release()
        return self._fut

    def _source_rank(self):
        return self._works[0]._source_rank()

    source_rank = _source_rank


class HostStagedProcessGroup(NamedProcessGroup):
    def __init__(self, gloo, rank: int, size: int, group_name: str = ""):
        super().__init__(rank, size)
        self._gloo = gloo
        self._group_name, self._group_desc = group_name, "undefined"
        self._coalesced = None          # works issued between _start_coalescing and _end_coalescing
        try:
            _ = self.group_name                  # torch 2.6+ asks getGroupName below
        except RuntimeError:                     # older ones read it from the group's first C++ backend
            self._register_backend(torch.device("cpu"), dist.ProcessGroup.BackendType.GLOO, gloo)

    # --- identity (trampolined: C++ callers see these) ---------------------------------------
    def getBackendName(self):
        return BACKEND

    def __repr__(self):
        return f"HostStagedProcessGroup(rank={self._rank}, size={self._ws}, over {type(self._gloo).__name__})"

    # --- staging -----------------------------------------------------------------------------
    def _gloo_fn(self, *names):
        """This torch's name for a gloo call (the binding was renamed in 2.13/2.14)."""
        for name in names:
            fn = getattr(self._gloo, name, None)
            if fn is not None:
                return fn
        raise RuntimeError(f"{BACKEND}: this torch's gloo binding has none of {', '.join(names)}")

    def _run(self, names, args, outputs):
        """Stage every tensor in ``args`` to host, call gloo, copy ``outputs`` back on completion."""
        return self._track(self._issue(names, args, outputs))

    def _issue(self, names, args, outputs):
        host = {}

        def stage(x):
            if isinstance(x, torch.Tensor):
                if id(x) not in host:   # one host copy per device tensor, however often it appears
                    # bytes, not autograd history: gloo must not record its writes into a graph
                    host[id(x)] = x.detach() if x.device.type == "cpu" else x.detach().cpu()
                return host[id(x)]
            if isinstance(x, (list, tuple)):
                return [stage(e) for e in x]
            return x

        staged = [stage(a) for a in args]
        work = self._gloo_fn(*names)(*staged)
        copies = [(t, host[id(t)]) for t in _flat(outputs) if t.device.type != "cpu"]   # cpu ones: written in place
        return StagedWork([work], copies, outputs)

    def _track(self, work):
        if self._coalesced is not None:
            self._coalesced.append(work)
        return work

    def _coalesced_pairs(self, name, single_names, outputs, inputs, opts):
        """gloo's coalesced call where this torch binds it (2.14+), else one gloo call per (output, input) pair
        and one Work for all."""
        if hasattr(self._gloo, name):
            return self._run([name], [outputs, inputs, opts], outputs)
        parts = [self._issue(single_names, [o, i, opts], [o]) for o, i in zip(outputs, inputs)]
        return self._track(_several(parts, outputs))

    # --- collectives -------------------------------------------------------------------------
    def allreduce(self, tensors, opts=None):
        return self._run(["allreduce"], [tensors, opts or AllreduceOptions()], tensors)

    def allreduce_coalesced(self, tensors, opts=None):
        return self._run(["allreduce_coalesced"], [tensors, opts or AllreduceCoalescedOptions()], tensors)

    def reduce(self, tensors, opts=None):
        return self._run(["reduce"], [tensors, opts or ReduceOptions()], tensors)

    def broadcast(self, tensors, opts=None):
        return self._run(["broadcast"], [tensors, opts or BroadcastOptions()], tensors)

    def allgather(self, output_lists, tensors, opts=None):
        return self._run(["allgather"], [output_lists, tensors, opts or AllgatherOptions()], output_lists)

    def all_gather_single(self, output, input, opts=None):
        return self._run(["all_gather_single", "_allgather_base"], [output, input, opts or AllgatherOptions()],
                         [output])

    _allgather_base = all_gather_single          # torch <= 2.12 name

    def allgather_coalesced(self, output_lists, tensors, opts=None):
        return self._run(["allgather_coalesced"], [output_lists, tensors, opts or AllgatherOptions()],
                         output_lists)

    def all_gather_single_coalesced(self, outputs, inputs, opts=None):
        return self._coalesced_pairs("all_gather_single_coalesced", ["all_gather_single", "_allgather_base"],
                                     outputs, inputs, opts or AllgatherOptions())

    allgather_into_tensor_coalesced = all_gather_single_coalesced   # torch <= 2.12 name

    def gather(self, output_lists, tensors, opts=None):
        return self._run(["gather"], [output_lists, tensors, opts or GatherOptions()], output_lists)

    def gather_single(self, output, input, opts=None):          # torch 2.14+
        return self._run(["gather_single"], [output, input, opts or GatherOptions()], [output])

    def scatter(self, tensors, input_lists, opts=None):
        return self._run(["scatter"], [tensors, input_lists, opts or ScatterOptions()], tensors)

    def reduce_scatter(self, tensors, input_lists, opts=None):
        return self._run(["reduce_scatter"], [tensors, input_lists, opts or ReduceScatterOptions()], tensors)

    def reduce_scatter_single(self, output, input, opts=None):
        return self._run(["reduce_scatter_single", "_reduce_scatter_base"],
                         [output, input, opts or ReduceScatterOptions()], [output])

    _reduce_scatter_base = reduce_scatter_single  # torch <= 2.12 name

    def reduce_scatter_single_coalesced(self, outputs, inputs, opts=None):
        return self._coalesced_pairs("reduce_scatter_single_coalesced",
                                     ["reduce_scatter_single", "_reduce_scatter_base"],
                                     outputs, inputs, opts or ReduceScatterOptions())

    reduce_scatter_tensor_coalesced = reduce_scatter_single_coalesced   # torch <= 2.12 name

    def alltoall(self, outputs, inputs, opts=None):
        return self._run(["alltoall"], [outputs, inputs, opts or AllToAllOptions()], outputs)

    def all_to_all_single(self, output, input, output_split_sizes=None, input_split_sizes=None, opts=None):
        args = [output, input, list(output_split_sizes or []), list(input_split_sizes or []),
                opts or AllToAllOptions()]
        return self._run(["all_to_all_single", "alltoall_base"], args, [output])

    alltoall_base = all_to_all_single            # torch <= 2.12 name

    def barrier(self, opts=None):
        return self._run(["barrier"], [opts or BarrierOptions()], [])

    def monitored_barrier(self, timeout=None, wait_all_ranks=False):
        self._gloo.monitored_barrier(timeout or timedelta(seconds=1800), wait_all_ranks)

    def send(self, tensors, dst, tag=0):
        return self._run(["send"], [tensors, dst, tag], [])

    def recv(self, tensors, src, tag=0):
        return self._run(["recv"], [tensors, src, tag], tensors)

    def recv_anysource(self, tensors, tag=0):
        return self._run(["recv_anysource"], [tensors, tag], tensors)

    def _start_coalescing(self, device=None):
        if self._coalesced is not None:
            raise RuntimeError(f"{BACKEND}: _start_coalescing called twice without _end_coalescing")
        self._coalesced = []

    def _end_coalescing(self, device=None):
        if self._coalesced is None:
            raise RuntimeError(f"{BACKEND}: _end_coalescing called without _start_coalescing")
        works, self._coalesced = self._coalesced, None
        return _several(works, [w.result() for w in works])


def _several(works: list, result) -> StagedWork:
    """One Work over several: complete when all are (their own copy-backs included)."""
    return StagedWork(works, [], result)


def create(dist_backend_opts, backend_options=None) -> HostStagedProcessGroup:
    """The creator registered with ``Backend.register_backend(..., extended_api=True)``."""
    o = dist_backend_opts
    gloo = dist.ProcessGroupGloo(o.store, o.group_rank, o.group_size, o.timeout)
    return HostStagedProcessGroup(gloo, o.group_rank, o.group_size, o.group_id)


def register(device: str) -> None:
    """Register "hoststaged" for ``device`` and make it the device's default backend, as vendors do."""
    B = dist.Backend
    if BACKEND.upper() not in B._plugins:        # torch < 2.7 asserts on re-registration
        B.register_backend(BACKEND, create, extended_api=True, devices=[device])
    caps = B.backend_capability.setdefault(BACKEND, [])
    if device not in caps:
        caps.append(device)
    B.default_device_backend_map[device] = BACKEND

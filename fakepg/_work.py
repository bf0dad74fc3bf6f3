"""FakeWork: the ``dist._Work`` every fakepg call returns.

C++ reaches a Python Work only through ``wait(timeout)`` and ``get_future()`` (the
``PyWork`` trampoline); functional collectives' ``wait_tensor`` and DDP's reducer use
exactly those two. Python callers see every method below. On torch 2.4 to 2.7 C++ does not
keep the Python half of a Work alive (``_compat.cpp_keeps_python_work``): ``keep_alive``
ties it to the output tensors C++ holds instead (a tensor's Python object lives as long as
C++ holds the tensor), and tensorless Works to a short ring of recent ones.

Fast path: a call without latency or faults writes its outputs inline and returns a
Work that is already complete, with the Future created only if someone asks for it.
Slow path (latency_s > 0, early_complete, hang): the output is written by ``_complete``,
run once, from whichever comes first: a timer thread at the deadline, ``wait()``, or
``is_completed()`` after the deadline.
"""

from __future__ import annotations

import collections
import threading
import time
from datetime import timedelta

import torch.distributed as dist
from torch.futures import Future

_monotonic = time.monotonic
_TENSORLESS = collections.deque(maxlen=4096)  # keep_alive for Works without outputs (barrier, send)


def _seconds(timeout) -> float:
    """0/None mean "no timeout" (C++ passes kNoTimeout = 0 ms)."""
    if timeout is None:
        return 0.0
    if isinstance(timeout, timedelta):
        return timeout.total_seconds()
    return float(timeout)


class FakeWork(dist._Work):
    # Class-level defaults keep the fast path to one attribute store.
    _pending = None  # None = complete; else a _Pending describing what is left to do
    _fut = None
    _lying = False  # lying_is_completed fault
    _no_tensors = False  # future_without_tensors fault
    _source = None  # recv_anysource: the simulated sender
    _error = None
    # A slot for the one attribute every Work sets; __dict__ for the rare ones.
    __slots__ = ("_outputs", "__dict__")

    @classmethod
    def done(cls, outputs):
        """A completed Work (the fast path: no Python __init__, one slot store)."""
        w = cls()
        w._outputs = outputs
        return w

    # -- slow-path construction ------------------------------------------------------
    @classmethod
    def pending(cls, outputs, write, delay_s: float, *, hang: bool = False, report_done: bool = False):
        """A Work whose ``write`` runs after ``delay_s`` (timer thread), or never (hang).

        report_done=True (early_complete fault): the Work says it is complete at once
        while the output is still written later.
        """
        w = cls.done(outputs)
        p = _Pending(write, _monotonic() + delay_s, hang)
        if report_done:
            w._stale = p
            w._start_timer(p, delay_s)
            return w
        w._pending = p
        if not hang:
            w._start_timer(p, delay_s)
        return w

    def _start_timer(self, p, delay_s):
        t = threading.Timer(delay_s, self._complete, args=(p,))
        t.daemon = True
        t.start()

    def _complete(self, p=None):
        p = p or self._pending
        if p is None:
            return
        with p.lock:  # the timer thread and wait()/is_completed() may race here
            if p.done:
                return
            p.done = True
            try:
                p.write()
            except BaseException as e:  # surfaced by wait()/exception()/the Future
                self._error = e
            if self._pending is p:
                self._pending = None
                if self._fut is not None:
                    self._set_future(self._fut)

    def _set_future(self, fut):
        if self._error is not None:
            fut.set_exception(self._error)
        else:
            fut.set_result(None if self._no_tensors else self._outputs)

    def keep_alive(self):
        for t in self._outputs:
            t._fakepg_work = self
        if not self._outputs:
            _TENSORLESS.append(self)

    # -- the Work API ------------------------------------------------------------------
    def wait(self, timeout=None):
        p = self._pending
        if p is not None:
            self._wait_slow(p, _seconds(timeout))
        if self._error is not None:
            raise self._error
        return True

    def _wait_slow(self, p, limit):
        if p.hang:
            if limit > 0:
                time.sleep(limit)
                raise RuntimeError("fakepg: Operation timed out!")
            while True:  # the hang fault: only a watchdog ends this
                time.sleep(3600)
        left = p.deadline - _monotonic()
        if limit > 0 and limit < left:
            time.sleep(limit)
            raise RuntimeError("fakepg: Operation timed out!")
        if left > 0:
            time.sleep(left)
        self._complete(p)

    def is_completed(self):
        if self._lying:
            return False
        p = self._pending
        if p is None:
            return True
        if not p.hang and _monotonic() >= p.deadline:
            self._complete(p)
            return True
        return False

    def is_success(self):
        return self.is_completed() and self._error is None

    def exception(self):
        return self._error

    def result(self):
        return self._outputs

    def synchronize(self):
        return None  # CPU semantics: nothing to order on a stream

    def get_future(self):
        fut = self._fut
        if fut is not None:
            return fut
        p = self._pending
        if p is None:
            fut = self._fut = Future()
            self._set_future(fut)
            return fut
        with p.lock:  # _complete sets the result under the same lock
            if self._fut is None:
                self._fut = Future()
                if p.done:
                    self._set_future(self._fut)
            return self._fut

    def _source_rank(self):
        if self._source is None:
            raise RuntimeError(
                "sourceRank() may only be called on work objects that correspond to a recv or recv-from-any call."
            )
        return self._source

    source_rank = _source_rank

    def __repr__(self):
        state = "pending" if self._pending is not None else "completed"
        return f"FakeWork({state})"


class _Pending:
    __slots__ = ("write", "deadline", "hang", "done", "lock")

    def __init__(self, write, deadline, hang):
        self.write = write
        self.deadline = deadline
        self.hang = hang
        self.done = False
        self.lock = threading.Lock()

"""A test-only backend ("childgloo") whose communicator runs in a child process of each rank.

Like torchft's ProcessGroupBabyGloo: every group starts a ``multiprocessing`` child (spawn context) that holds the
gloo group; the rank forwards each call over a pipe, and a reader thread copies what the child sends back into the
caller's tensors and completes the Work.  Children reach each other through a TCPStore that group rank 0 hosts
(the store torch gives the creator lives in the rank process; only the address goes through it).  A rank that is a
daemonic multiprocessing process cannot start the child: "daemonic processes are not allowed to have children".

Messages are ``torch.save`` bytes, so tensors travel by value (views of one storage stay views of one storage).
parent -> child: ("call", id, method, args, kwargs) | ("exit",)
child -> parent: ("ready", error) | ("issued", id, error) | ("done", id, error, outputs, source_rank)
"""

from __future__ import annotations

import builtins
import io
import multiprocessing
import os
import threading

import torch
import torch.distributed as dist

try:
    from ._gloo_delegate import GlooDelegate, register
except ImportError:             # imported as a top-level module (tests/plugins on sys.path)
    from _gloo_delegate import GlooDelegate, register

NO_OUTPUT = ("barrier", "send", "_start_coalescing", "_end_coalescing")   # every other call writes its args[0]


def _dump(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _load(data: bytes):
    return torch.load(io.BytesIO(data), weights_only=False)


def _plain(x):
    """Options objects cannot be pickled: send their fields."""
    if type(x).__name__.endswith("Options") and type(x).__module__.startswith("torch"):
        return ("__opts__", type(x).__name__, {a: getattr(x, a) for a in dir(x)
                                               if not a.startswith("_") and not callable(getattr(x, a))})
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x)
    return x


def _rebuild(x):
    if isinstance(x, tuple) and len(x) == 3 and x[0] == "__opts__":
        opts = getattr(torch._C._distributed_c10d, x[1])()
        for name, value in x[2].items():
            setattr(opts, name, value)
        return opts
    if isinstance(x, dict):
        return {k: _rebuild(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_rebuild(v) for v in x)
    return x


def _error(exc: BaseException):
    return (type(exc).__name__, str(exc))


def _raise(err):
    name, text = err        # the child's exception, as the same builtin type where there is one
    cls = getattr(builtins, name, None)
    raise (cls if isinstance(cls, type) and issubclass(cls, Exception) else RuntimeError)(text)


def _copy_into(dst, src):
    if isinstance(dst, torch.Tensor):
        dst.copy_(src)
    elif isinstance(dst, (list, tuple)):
        for d, s in zip(dst, src):
            _copy_into(d, s)


# --- the child ---------------------------------------------------------------------------------------------------

def _child_main(conn, port: int, rank: int, size: int, timeout) -> None:
    lock = threading.Lock()

    def reply(msg):
        with lock:
            conn.send_bytes(_dump(msg))

    try:
        store = dist.TCPStore("127.0.0.1", port, is_master=False, timeout=timeout)
        gloo = dist.ProcessGroupGloo(dist.PrefixStore("gloo/", store), rank, size, timeout)
    except Exception as exc:
        reply(("ready", _error(exc)))
        return
    reply(("ready", None))

    def finish(op_id, method, args, work):
        try:
            work.wait()
            source = work._source_rank() if method == "recv_anysource" else -1
            reply(("done", op_id, None, None if method in NO_OUTPUT else args[0], source))
        except Exception as exc:
            reply(("done", op_id, _error(exc), None, -1))

    while True:
        try:
            msg = _load(conn.recv_bytes())
        except (EOFError, OSError):
            os._exit(0)         # the rank is gone: so is its communicator
        if msg[0] == "exit":
            os._exit(0)
        _, op_id, method, args, kwargs = msg
        args, kwargs = _rebuild(args), _rebuild(kwargs)
        try:
            work = getattr(gloo, method)(*args, **kwargs)
        except Exception as exc:    # argument errors: raised by the call itself, as gloo does
            reply(("issued", op_id, _error(exc)))
            continue
        reply(("issued", op_id, None))
        # Wait in a thread: the next call (the irecv after an isend) must be issued before this one completes.
        threading.Thread(target=finish, args=(op_id, method, args, work), daemon=True).start()


# --- the rank's side -----------------------------------------------------------------------------------------------

class _ChildWork(dist._Work):
    def __init__(self, outputs):
        super().__init__()
        self._outputs = outputs
        self._done = threading.Event()
        self._error = None
        self._source = -1
        self._futures = []
        self._lock = threading.Lock()   # get_future() vs. the reader thread completing us

    def _complete(self, error, values, source):    # from the reader thread
        if error is None and values is not None:
            _copy_into(self._outputs, values)
        with self._lock:
            self._error, self._source = error, source
            self._done.set()
            futures, self._futures = self._futures, []
        for fut in futures:
            self._settle(fut)

    def _settle(self, fut):
        if self._error is not None:
            fut.set_exception(RuntimeError(self._error[1]))
        else:
            fut.set_result(self._outputs if self._outputs is not None else [])

    def wait(self, timeout=None):
        seconds = timeout.total_seconds() if timeout else None    # 0 / None: no timeout
        if not self._done.wait(seconds or None):
            raise RuntimeError("childgloo: wait timed out")
        if self._error is not None:
            _raise(self._error)
        return True

    def is_completed(self):
        return self._done.is_set()

    def is_success(self):
        return self._done.is_set() and self._error is None

    def _source_rank(self):
        return self._source

    def get_future(self):
        fut = torch.futures.Future()
        with self._lock:
            if not self._done.is_set():
                self._futures.append(fut)   # settled by _complete
                return fut
        self._settle(fut)
        return fut


class ChildGloo(GlooDelegate):
    def _connect(self, store, rank, size, timeout):
        if rank == 0:           # the children's rendezvous; lives as long as this group
            self._server = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False, timeout=timeout)
            store.set(f"{self.backend_name}/port", str(self._server.port))
        port = int(store.get(f"{self.backend_name}/port"))
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._child = ctx.Process(target=_child_main, args=(child_conn, port, rank, size, timeout),
                                  name=f"{self.backend_name}-rank{rank}", daemon=True)
        self._child.start()     # in a daemonic rank: AssertionError "daemonic processes are not allowed to have children"
        child_conn.close()
        self._next_id = 0
        self._works: dict[int, _ChildWork] = {}
        self._acks: dict[int, object] = {}
        self._dead = None
        self._cond = threading.Condition()
        first = _load(self._conn.recv_bytes())
        if first[1] is not None:
            _raise(first[1])
        threading.Thread(target=self._reader, daemon=True, name=f"{self.backend_name}-reader").start()
        return None             # no gloo group in this process

    def _reader(self):
        while True:
            try:
                msg = _load(self._conn.recv_bytes())
            except (EOFError, OSError) as exc:
                with self._cond:
                    self._dead = f"{self.backend_name}: communicator process died ({exc or 'EOF'})"
                    for work in self._works.values():
                        work._complete(("RuntimeError", self._dead), None, -1)
                    self._works.clear()
                    self._cond.notify_all()
                return
            with self._cond:
                if msg[0] == "issued":
                    self._acks[msg[1]] = msg[2]
                    self._cond.notify_all()
                elif msg[0] == "done":
                    work = self._works.pop(msg[1], None)
                    if work is not None:
                        work._complete(*msg[2:])

    def _call(self, method, args, kwargs):
        with self._cond:
            if self._dead:
                raise RuntimeError(self._dead)
            op_id, self._next_id = self._next_id, self._next_id + 1
            work = self._works[op_id] = _ChildWork(None if method in NO_OUTPUT else args[0])
            self._conn.send_bytes(_dump(("call", op_id, method, _plain(args), _plain(kwargs))))
            self._cond.wait_for(lambda: op_id in self._acks or self._dead)
            error = self._acks.pop(op_id, None) if op_id in self._acks else ("RuntimeError", self._dead)
            if error is not None:
                self._works.pop(op_id, None)
                _raise(error)
        return work

    def abort(self):
        self.shutdown()

    def shutdown(self):
        try:
            self._conn.send_bytes(_dump(("exit",)))
        except (OSError, ValueError):
            pass
        self._child.join(timeout=5)
        if self._child.is_alive():
            self._child.kill()


register("childgloo", ChildGloo)

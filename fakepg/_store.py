"""FakeStore: an in-memory ``dist.Store`` good enough to initialise fakepg.

``init_process_group`` insists on a store; fakepg never talks to peers, so the store only
has to answer the few calls torch itself makes (and any a user makes) from one process.
Unlike PyTorch's ``FakeStore`` (an empty subclass) every method works, as a dict.
A key that is never set makes ``get``/``wait`` raise after the store timeout instead of
hanging forever: in a one-process world nobody else will ever set it.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import torch.distributed as dist


def _b(v) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode()
    return bytes(v)


class FakeStore(dist.Store):
    """In-memory key/value store (thread-safe); same purpose as PyTorch's FakeStore."""

    def __init__(self, timeout: timedelta = timedelta(seconds=30)):
        super().__init__()
        self._data: dict[str, bytes] = {}
        self._cv = threading.Condition()
        self._timeout_s = timeout.total_seconds()

    # -- helpers ----------------------------------------------------------------
    def _wait_for(self, keys, timeout=None) -> None:
        t = self._timeout_s if timeout is None else _seconds(timeout)
        deadline = time.monotonic() + (t if t > 0 else self._timeout_s)
        with self._cv:
            while not all(k in self._data for k in keys):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = [k for k in keys if k not in self._data]
                    raise RuntimeError(f"fakepg FakeStore: wait timed out, keys never set: {missing}")
                self._cv.wait(left)

    # -- dist.Store API ------------------------------------------------------------
    def set(self, key, value):
        with self._cv:
            self._data[key] = _b(value)
            self._cv.notify_all()

    def get(self, key):
        self._wait_for([key])
        return self._data[key]

    def add(self, key, value):
        with self._cv:
            n = int(self._data.get(key, b"0")) + int(value)
            self._data[key] = str(n).encode()
            self._cv.notify_all()
            return n

    def append(self, key, value):
        with self._cv:
            self._data[key] = self._data.get(key, b"") + _b(value)
            self._cv.notify_all()

    def compare_set(self, key, expected_value, desired_value):
        with self._cv:
            cur = self._data.get(key)
            exp = _b(expected_value)
            if (cur is None and exp == b"") or cur == exp:
                self._data[key] = _b(desired_value)
                self._cv.notify_all()
                return self._data[key]
            return exp if cur is None else cur

    def wait(self, keys, timeout=None):
        self._wait_for(list(keys), timeout)

    def check(self, keys):
        with self._cv:
            return all(k in self._data for k in keys)

    def delete_key(self, key):
        with self._cv:
            return self._data.pop(key, None) is not None

    def num_keys(self):
        with self._cv:
            return len(self._data)

    def list_keys(self):
        with self._cv:
            return list(self._data)

    def multi_get(self, keys):
        self._wait_for(list(keys))
        return [self._data[k] for k in keys]

    def multi_set(self, keys, values):
        with self._cv:
            for k, v in zip(keys, values):
                self._data[k] = _b(v)
            self._cv.notify_all()

    def has_extended_api(self):
        return True

    def set_timeout(self, timeout):
        self._timeout_s = _seconds(timeout)


def _seconds(t) -> float:
    if isinstance(t, timedelta):
        return t.total_seconds()
    return float(t)

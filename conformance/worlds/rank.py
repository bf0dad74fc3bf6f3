"""The rank process: joins its world once, then runs case after case as the controller names them.

It is started from a fork server that has already imported torch (see ``world.PRELOAD``), so a world costs a fork and
an ``init_process_group``, not an interpreter start.  It must never outlive its controller: it dies with its parent
(PR_SET_PDEATHSIG on Linux) and a watchdog thread exits when the controller's pid goes away.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist

from .. import execute
from ..cases import catalog, specs
from ..cases.spec import Env, RankContext
from ..outcomes import RankOutcome
from . import provenance


@dataclass
class RankConfig:
    backend: str
    device: str
    rank: int
    world_size: int
    store_path: str
    plugins: list = field(default_factory=list)
    controller_pid: int = 0
    pg_timeout_s: float = 300.0
    env: dict = field(default_factory=dict)


def _die_with_controller(controller_pid: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
        except OSError:
            pass

    def watch():
        while True:
            time.sleep(0.5)
            try:
                os.kill(controller_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass

    threading.Thread(target=watch, daemon=True, name="controller-watch").start()


def select_device(device: str, index_hint: int) -> torch.device:
    """This rank's device: ``index_hint`` modulo the devices visible (CUDA_VISIBLE_DEVICES and kin are honoured
    by torch itself), made current."""
    if device in ("cpu", "meta"):
        return torch.device(device)
    module = getattr(torch, device, None)
    count = module.device_count() if module is not None and hasattr(module, "device_count") else 1
    index = index_hint % max(count, 1)
    if module is not None and hasattr(module, "set_device"):
        module.set_device(index)
    return torch.device(device, index)


def _world_model(group) -> str:
    """A simulating backend declares its semantics (``pg.fake_semantics``); anything else is a real world."""
    semantics = getattr(group, "fake_semantics", None)
    return semantics if semantics in ("uniform", "copy") else "real"


def join_world(backend: str, device_name: str, rank: int, world_size: int, store, timeout_s: float,
               device_index: int, plugins=()):
    """Import the plugins, init_process_group, and everything a rank needs to run cases; shared by worlds and
    torchrun mode."""
    for module in plugins:
        importlib.import_module(module)
    device = select_device(device_name, device_index)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=timeout_s))
    group = dist.group.WORLD
    rt = RankContext(rank, world_size, device, backend, _world_model(group), store=store)
    env = Env(device_name, world_size, tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]))
    info = provenance.collect(backend, device, group, rt.world_model)
    return rt, catalog(env), info


def main(conn, cfg: RankConfig) -> None:
    os.setsid()                                   # our own process group: the controller can kill all we start
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the controller's to handle; it kills us
    _die_with_controller(cfg.controller_pid)
    os.environ.update(cfg.env)
    warnings.simplefilter("ignore")               # deprecation chatter belongs to torch, not to a result
    torch.set_num_threads(1)                      # world_size ranks share the cores; intra-op threads only contend
    try:
        store = dist.FileStore(cfg.store_path, cfg.world_size)
        rt, cases, info = join_world(cfg.backend, cfg.device, cfg.rank, cfg.world_size, store, cfg.pg_timeout_s,
                                     cfg.rank, cfg.plugins)
        families = specs()
    except BaseException as exc:
        conn.send(("init_failed", execute.describe_exception(exc)))
        os._exit(3)
    conn.send(("ready", info))

    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        kind = msg[0]
        if kind == "case":
            _, seq, case_id = msg
            case = cases.get(case_id)
            if case is None:
                outcome = RankOutcome("harness_error", f"rank {cfg.rank} does not know case {case_id}")
            else:
                rt.seq = seq
                outcome = execute.run_case(case, families[case.family], rt)
            conn.send(("outcome", seq, outcome.to_dict()))
        elif kind == "exit":
            break
    conn.close()
    # No destroy_process_group: a backend left mid-failure can hang in teardown, and the process is done anyway.
    os._exit(0)

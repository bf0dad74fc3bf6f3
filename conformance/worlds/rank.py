"""The rank process: joins its world once, then runs case after case as the controller names them.

It is started from a fork server that has already imported torch (see ``world.PRELOAD``), so a world costs a fork and
an ``init_process_group``, not an interpreter start.  It must never outlive its controller: it dies with its parent
(PR_SET_PDEATHSIG on Linux) and a watchdog thread exits when the controller's pid goes away.
"""

from __future__ import annotations

import ctypes
import faulthandler
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
from ..errors import describe_exception
from ..outcomes import RankOutcome
from ..versions import torch_version
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
    log_path: str = ""          # this rank's stdout and stderr go here: a crash reason quotes its tail
    stack_path: str = ""        # where a stack sample goes when the controller asks (SIGUSR1)


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
                _kill_own_group()
            except PermissionError:
                pass

    threading.Thread(target=watch, daemon=True, name="controller-watch").start()


def _kill_own_group() -> None:
    """The controller is gone: take down this rank and every helper process a backend started in its group."""
    try:
        os.killpg(0, signal.SIGKILL)
    finally:
        os._exit(1)


def _capture_output(cfg: "RankConfig") -> None:
    """Send this rank's stdout/stderr to its log and arm the stack sampler."""
    if cfg.log_path:
        fd = os.open(cfg.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    if cfg.stack_path:
        faulthandler.register(signal.SIGUSR1, file=open(cfg.stack_path, "a"), all_threads=True)


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
    info = provenance.collect(backend, device, group, rt.world_model)
    return rt, catalog(Env(device_name, world_size, torch_version()), tuple(plugins)), info


def main(conn, cfg: RankConfig) -> None:
    os.setsid()                                   # our own process group: the controller can kill all we start
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the controller's to handle; it kills us
    _die_with_controller(cfg.controller_pid)
    _capture_output(cfg)
    os.environ.update(cfg.env)
    warnings.simplefilter("ignore")               # deprecation chatter belongs to torch, not to a result
    torch.set_num_threads(1)                      # world_size ranks share the cores; intra-op threads only contend
    try:
        store = dist.FileStore(cfg.store_path, cfg.world_size)
        rt, cases, info = join_world(cfg.backend, cfg.device, cfg.rank, cfg.world_size, store, cfg.pg_timeout_s,
                                     cfg.rank, cfg.plugins)
        families = specs(tuple(cfg.plugins))
    except BaseException as exc:
        conn.send(("init_failed", describe_exception(exc)))
        os._exit(3)
    conn.send(("ready", info, threading.get_ident()))

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

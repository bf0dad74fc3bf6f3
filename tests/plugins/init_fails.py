"""A test-only backend whose creation raises: a vendor backend that cannot initialise."""
import torch.distributed as dist


def _create(store, rank, size, timeout):
    raise RuntimeError("initfails: cannot open the device")


dist.Backend.register_backend("initfails", _create, devices=["cpu"])

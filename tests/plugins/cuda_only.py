"""A test-only backend that serves only cuda (as NCCL does): on a cpu run it has nothing to run."""
import torch.distributed as dist


def _create(store, rank, size, timeout):
    raise RuntimeError("cudaonly: created on a device it does not serve")


dist.Backend.register_backend("cudaonly", _create, devices=["cuda"])

"""A test-only backend whose creation never returns: a vendor backend stuck in its rendezvous."""
import time

import torch.distributed as dist


def _create(store, rank, size, timeout):
    while True:
        time.sleep(1)


dist.Backend.register_backend("inithangs", _create, devices=["cpu"])

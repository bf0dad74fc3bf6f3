"""A spec from outside the suite, as a vendor would add one with ``--plugin vendor_spec`` (no fork).

``vendor.all_reduce_twice``: two SUM all_reduces in a row on the same tensor; every rank ends with world_size
times the sum of the ranks' values.  Written only against the public helpers, so it runs in every world model.
"""
import torch.distributed as dist

from conformance.cases import Prepared, Spec, axes, common


class AllReduceTwice(Spec):
    name = "vendor.all_reduce_twice"

    def cases(self, env):
        yield from axes.product(self.name, tier="pair", ops=("SUM",), modes=axes.MODES)

    def prepare(self, case, rt):
        x, _ = common.reduction_tensor(case, rt, rt.rank)
        once = common.expected_reduction(case, rt)
        twice = rt.reduce("SUM", [once] * rt.world_size, once.dtype)

        def call(async_op):
            dist.all_reduce(x)
            return dist.all_reduce(x, async_op=async_op)

        return Prepared(call=call, outputs=[x], expected=[twice])


SPECS = [AllReduceTwice()]

"""What the ways out of fakepg's list-form cost would give: fakepg beside torch's fake, with and without its checks.

A diagnostic for the policy question in docs/fakepg.md "Cost" (it is not how fakepg runs). Same calls, world size and
interleaving as bench_fakepg.py, on four groups:

  fake         PyTorch's C++ fake (the default group)
  fakepg       fakepg as shipped
  unchecked    fakepg with every argument check replaced by "fine": what fake's weaker validation would cost at most
  cpp-fake     fakepg whose collective methods are torch's C++ ones, so dist.* takes fake's own path down to the C++
               fake registered beneath the group: what handing the calls to torch's fake would cost (no fakepg
               validation, no uniform values, no faults)

The two variants are built by reaching into fakepg's route (the ``check`` each collective entry closes over): if that
changes, this script says so and stops.

Run: python bench/bench_fakepg_ways_out.py [--calls N] [--reps R] [--only NAME]   (under a minute)
"""

from __future__ import annotations

import sys
import types

import torch
import torch.distributed as dist

from bench_fakepg import cases, fakepg_group, measure, setup  # first: it puts the repository on sys.path

from fakepg._group import FakeProcessGroup


def _collective_entries():
    """name -> the entry the @collective decorator made, for every collective method of this torch's class."""
    return {name: entry for name, entry in vars(FakeProcessGroup).items() if hasattr(entry, "__wrapped__")}


def _unchecked_entry(entry):
    """The same entry with its argument check answering "fine, and even" (the bench's calls are all even)."""
    names = entry.__code__.co_freevars
    if "check" not in names:
        sys.exit("bench_fakepg_ways_out: fakepg's route no longer closes over `check`: update _unchecked_entry")
    cells = tuple(types.CellType(lambda *args: True) if name == "check" else cell
                  for name, cell in zip(names, entry.__closure__))
    return types.FunctionType(entry.__code__, entry.__globals__, entry.__name__, entry.__defaults__, cells)


def _as(group, cls):
    group.__class__ = cls  # same layout (a subclass adding methods only): the instance keeps its state
    return group


def main(argv=None):
    args = setup(argv, __doc__.splitlines()[0])
    entries = _collective_entries()
    unchecked = type("Unchecked", (FakeProcessGroup,), {n: _unchecked_entry(e) for n, e in entries.items()})
    torch_methods = type("CppFake", (FakeProcessGroup,),
                         {n: vars(dist.ProcessGroup)[n] for n in entries if n in vars(dist.ProcessGroup)})
    groups = {
        "fake": cases(dist.group.WORLD),
        "fakepg": cases(fakepg_group()),
        "unchecked": cases(_as(fakepg_group(), unchecked)),
        "cpp-fake": cases(_as(fakepg_group(), torch_methods)),
    }
    names = [c for c in groups["fake"] if not args.only or c in args.only]
    median = measure(groups, names, args.calls, args.reps)

    print(f"torch {torch.__version__}, median of {args.reps} x {args.calls} calls (interleaved); ratios to fake")
    w = max(len(c) for c in names)
    print(f"{'call':<{w}}  {'fake us':>8}" + "".join(f"  {g:>10}" for g in list(groups)[1:]))
    for c in names:
        base = median[("fake", c)]
        print(f"{c:<{w}}  {base:8.2f}" + "".join(f"  {median[(g, c)] / base:9.2f}x" for g in list(groups)[1:]))
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Argument checks, one function per collective method, run before anything is written.

Where torch's fake validates, the message is fake's own wording (so code matching fake's errors matches ours),
prefixed with ``fakepg::<method>:`` and sometimes followed by detail. Where fake does not, the checks follow gloo:
a call a real backend would reject is rejected, never guessed.
"""

from __future__ import annotations

import torch
from torch.distributed import ReduceOp

from ._compat import reduce_op_parts

_BITWISE = (ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR)
_NOT_FOR_BOOL = (ReduceOp.AVG, ReduceOp.PREMUL_SUM)
_FOR_COMPLEX = (ReduceOp.SUM, ReduceOp.AVG, ReduceOp.PREMUL_SUM)
_SUM = ReduceOp.SUM


class InvalidArgument(ValueError, RuntimeError):
    """A call a real backend would reject. Both a ValueError and a RuntimeError, so code written against either
    convention (torch's fake and gloo raise RuntimeError) catches it."""


def _bad(fn, msg):
    raise InvalidArgument(f"fakepg::{fn}: {msg}")


def _type(fn, t, ref, i=0):
    if t.dtype != ref.dtype:
        _bad(fn, f"invalid tensor type at index {i} (expected {ref.dtype}, got {t.dtype})")


def _size(fn, t, ref, i=0):
    if t.shape != ref.shape:
        _bad(fn, f"invalid tensor size at index {i} (expected {tuple(ref.shape)}, got {tuple(t.shape)})")


def _like(fn, tensors, ref, rows_may_differ=False) -> bool:
    """Every tensor has ref's dtype and shape (or, rows_may_differ, its shape but for dim 0: uneven pieces).
    True when every one has exactly ref's dtype and shape: the common case, found in one pass."""
    dtype, shape = ref.dtype, ref.shape
    for t in tensors:
        if t.dtype is not dtype or t.shape != shape:
            break
    else:
        return True
    for i, t in enumerate(tensors):
        if t.dtype != dtype:
            _type(fn, t, ref, i)
        if t.shape != shape:
            if not rows_may_differ:
                _size(fn, t, ref, i)
            if t.dim() != ref.dim() or t.shape[1:] != shape[1:]:
                _bad(fn, f"invalid tensor size at index {i} (expected (*, {', '.join(map(str, shape[1:]))}), "
                         f"got {tuple(t.shape)})")
    return False


def _op(fn, opts, t):
    """A reduction the dtype does not define is refused on every rank, in both semantics, as gloo refuses it (a
    TypeError): bitwise ops on floating and complex types, PREMUL_SUM (a float factor) on integers and bool, AVG on
    bool, and orderings or products on complex types. torch's fake never looks at the op; a simulated rank that
    computed garbage where every real backend refuses would hide the caller's bug."""
    op = opts.reduceOp
    if op == _SUM:  # the common case, cheaply
        return
    op = reduce_op_parts(op)[0]
    if not _defined(op, t.dtype):
        raise TypeError(f"fakepg::{fn}: Cannot use ReduceOp.{op.name} with dtype {t.dtype}")


def _defined(op, dtype) -> bool:
    if dtype == torch.bool:
        return op not in _NOT_FOR_BOOL
    if dtype.is_complex:
        return op in _FOR_COMPLEX
    if dtype.is_floating_point:
        return op not in _BITWISE
    return op != ReduceOp.PREMUL_SUM


def _root(fn, root, ws):
    if not 0 <= root < ws:
        _bad(fn, f"invalid root rank: {root}")


def _single(fn, what, tensors):
    if len(tensors) != 1:
        _bad(fn, f"requires a single-element {what} tensor list")


def _nonempty(fn, tensors):
    if not tensors:
        _bad(fn, "requires non-empty tensor list")


def _same_length(fn, outputs, inputs):
    if len(outputs) != len(inputs):
        _bad(fn, "requires input/output tensor lists to have the same length")


def _chunks_of(fn, output, input, ws):
    if output.numel() * ws != input.numel():
        _bad(fn, "input tensor must be the same size as output size times world size "
                 f"(output {tuple(output.shape)}, input {tuple(input.shape)}, world size {ws})")


def _rooted(fn, pg, root, tensors, tensors_are, lists, what):
    """gather/scatter: a valid root, one tensor of this rank's own, and on the root one list of ws tensors like it
    (gather's outputs, scatter's inputs); the others pass none."""
    ws = pg._ws
    if not 0 <= root < ws:
        _root(fn, root, ws)
    if len(tensors) != 1:
        _single(fn, tensors_are, tensors)
    ref = tensors[0]
    if root != pg._rank:
        if lists:
            _bad(fn, f"requires empty {what} on non-root")
        return
    if len(lists) != 1:
        _bad(fn, f"requires a single-element {what} list containing a list with {ws} tensors.")
    if len(lists[0]) != ws:
        _bad(fn, f"Incorrect {what} list size {len(lists[0])}. {what.capitalize()} list size should be {ws}, same as "
                 "size of the process group.")
    return _like(fn, lists[0], ref)


def _splits(fn, splits, shape, ws):
    rows = shape[0] if shape else 1
    if not splits:
        if rows % ws:
            _bad(fn, f"Tensor's dim 0 does not divide equally across group size ({rows} rows, {ws} ranks)")
    elif len(splits) != ws:
        _bad(fn, f"Number of tensor splits not equal to group size ({len(splits)} vs {ws})")
    elif sum(splits) != rows:
        _bad(fn, f"Split sizes doesn't match total dim 0 size ({sum(splits)} vs {rows})")


# --- one check per collective method (pg is the calling FakeProcessGroup) ----------------------------------
# A check returns True where it found the call "even" (the method's simplest case: every tensor of one shape and
# dtype, no split sizes); the route hands that to a method that declares ``even``. The common case is tested first,
# in as few steps as possible: these run on every call.

def allreduce(pg, tensors, opts):
    if not tensors:
        _bad("allreduce", "requires non-empty tensor list")
    _op("allreduce", opts, tensors[0])


def allreduce_coalesced(pg, tensors, opts):
    if tensors:
        dtype = tensors[0].dtype
        for i, t in enumerate(tensors):
            if t.dtype is not dtype:
                _type("allreduce_coalesced", t, tensors[0], i)
        _op("allreduce_coalesced", opts, tensors[0])


def reduce(pg, tensors, opts):
    if len(tensors) != 1:
        _single("reduce", "input", tensors)
    root = opts.rootRank
    if not 0 <= root < pg._ws:
        _root("reduce", root, pg._ws)
    _op("reduce", opts, tensors[0])


def broadcast(pg, tensors, opts):
    if not tensors:
        _nonempty("broadcast", tensors)
    root = opts.rootRank
    if not 0 <= root < pg._ws:
        _root("broadcast", root, pg._ws)


def allgather(pg, output_lists, tensors, opts):
    fn, ws = "allgather", pg._ws
    if len(tensors) != 1:
        _single(fn, "input", tensors)
    if len(output_lists) != 1:
        _bad(fn, "requires a single-element output list")
    if len(output_lists[0]) != ws:
        _bad(fn, f"invalid output tensor list at index 0 (expected length {ws}, got {len(output_lists[0])})")
    return _like(fn, output_lists[0], tensors[0], rows_may_differ=True)


def all_gather_single(pg, output, input, opts):
    if output.dtype is not input.dtype:
        _type("all_gather_single", output, input)
    if output.numel() != input.numel() * pg._ws:
        _bad("all_gather_single", f"output tensor numel {output.numel()} must equal world size {pg._ws} * input "
                                  f"numel {input.numel()} (output {tuple(output.shape)}, input {tuple(input.shape)})")


def allgather_coalesced(pg, output_lists, tensors, opts):
    fn = "allgather_coalesced"
    if not tensors:
        _bad(fn, "requires non-empty input tensor list")
    if len(output_lists) != pg._ws:
        _bad(fn, "output lists should be equal to world size")
    n = len(tensors)
    for slots in output_lists:
        if len(slots) != n:
            _bad(fn, f"invalid output size: (expected length {n}, got {len(slots)})")
    for i, t in enumerate(tensors):
        _like(fn, [slots[i] for slots in output_lists], t)


def all_gather_single_coalesced(pg, outputs, inputs, opts):
    fn = "all_gather_single_coalesced"
    _same_length(fn, outputs, inputs)
    for i, (o, t) in enumerate(zip(outputs, inputs)):
        _type(fn, o, t, i)
        if o.numel() != t.numel() * pg._ws:
            _bad(fn, f"invalid tensor size at index {i} (output numel {o.numel()} != {pg._ws} * {t.numel()})")


def gather(pg, output_lists, tensors, opts):
    return _rooted("gather", pg, opts.rootRank, tensors, "input", output_lists, "output")


def gather_single(pg, output, input, opts):
    _root("gather_single", opts.rootRank, pg._ws)
    if opts.rootRank == pg._rank:
        _type("gather_single", output, input)
        if output.numel() != input.numel() * pg._ws:
            _bad("gather_single", f"output numel {output.numel()} != world size {pg._ws} * input numel "
                                  f"{input.numel()}")


def scatter(pg, tensors, input_lists, opts):
    return _rooted("scatter", pg, opts.rootRank, tensors, "output", input_lists, "input")


def reduce_scatter(pg, tensors, input_lists, opts):
    fn, ws = "reduce_scatter", pg._ws
    if len(tensors) != len(input_lists):
        _same_length(fn, tensors, input_lists)
    for out, ins in zip(tensors, input_lists):
        if len(ins) != ws:
            _bad(fn, "invalid input tensor list size, must be world size")
        _like(fn, ins, out)
        _op(fn, opts, out)


def reduce_scatter_single(pg, output, input, opts):
    if output.dtype is not input.dtype:
        _type("reduce_scatter_single", output, input)
    _chunks_of("reduce_scatter_single", output, input, pg._ws)
    _op("reduce_scatter_single", opts, output)


def reduce_scatter_single_coalesced(pg, outputs, inputs, opts):
    fn = "reduce_scatter_single_coalesced"
    _same_length(fn, outputs, inputs)
    for i, (o, t) in enumerate(zip(outputs, inputs)):
        _type(fn, o, t, i)
        _chunks_of(fn, o, t, pg._ws)
        _op(fn, opts, o)


def alltoall(pg, outputs, inputs, opts):
    fn, ws = "alltoall", pg._ws
    if len(inputs) != ws:
        _bad(fn, f"input tensor list size {len(inputs)} does not match world size {ws}")
    if len(outputs) != ws:
        _bad(fn, f"output tensor list size {len(outputs)} does not match world size {ws}")
    inputs_even = _like(fn, inputs, inputs[0], rows_may_differ=True)
    return _like(fn, outputs, inputs[0], rows_may_differ=True) and inputs_even


def all_to_all_single(pg, output, input, output_split_sizes, input_split_sizes, opts):
    """even: no split sizes, and the output shaped like the input."""
    fn, ws, oshape, ishape = "alltoall_base", pg._ws, output.shape, input.shape
    if output.dtype is not input.dtype:
        _type(fn, output, input)
    if not (output_split_sizes or input_split_sizes) and oshape == ishape:  # the common case
        if (ishape[0] if ishape else 1) % ws:
            _splits(fn, input_split_sizes, ishape, ws)
        return True
    if oshape[1:] != ishape[1:] or len(oshape) != len(ishape):
        _bad(fn, f"output {tuple(oshape)} and input {tuple(ishape)} differ beyond dim 0")
    _splits(fn, input_split_sizes, ishape, ws)
    _splits(fn, output_split_sizes, oshape, ws)
    if ishape and not ishape[0] and output.numel():
        _bad(fn, "alltoall_base: inputBuffer is empty but outputSplitSizes[j] > 0 (this rank sends nothing, yet "
                 "expects rows from its peers)")
    return False


def barrier(pg, opts):
    pass


def send(pg, tensors, dst, tag):
    if len(tensors) != 1:
        _single("send", "input", tensors)
    if not 0 <= dst < pg._ws:
        _bad("send", f"invalid destination rank: {dst}")


def recv(pg, tensors, src, tag):
    if len(tensors) != 1:
        _single("recv", "output", tensors)
    if not 0 <= src < pg._ws:
        _bad("recv", f"invalid source rank: {src}")


def recv_anysource(pg, tensors, tag):
    _single("recv_anysource", "output", tensors)


def valid_rank(rank: int, size: int) -> None:
    """torch's fake wording and type for a rank outside the world."""
    if not 0 <= rank < size:
        raise InvalidArgument(f"Cannot init process group where rank ({rank}) >= world_size ({size})")

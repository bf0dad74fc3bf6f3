"""How every collective call runs, in one place.

A ``FakeProcessGroup`` collective method only says what the call writes, in the simulated world. The ``collective``
decorator turns it into the method torch calls, which, for every collective alike:

1. refuses a call on an aborted group, and under ``error_on_collective`` (in torch's fake's words);
2. checks the arguments (``_checks``, one function per method);
3. looks up the call's fault plan (``_faults``), which may raise, crash or hang before anything is written;
4. shows the call to dispatch-level observers the way torch's C++ fake does: under a TorchDispatchMode
   (LocalTensorMode, FakeTensorMode, a tracer) or with tensor-subclass arguments it first calls torch's C++
   ``ProcessGroup`` method, i.e. the dispatcher's ``c10d`` op, with torch's C++ fake registered beneath this group
   as its backend. A tensor subclass (LocalTensor) then owns the values and its Work is returned; plain tensors
   go on below, hidden from the modes, so fakepg's semantics and faults still hold;
5. bends the arguments as the fault plan says (root, reduce op, chunk order, coalesced length);
6. runs the method below autograd (``_below_autograd``), now or when the Work completes (latency);
7. returns the Work.

The dispatcher call in step 4 must be made from a frame that bears the method's own name: that is how pybind11
knows a Python override is calling its C++ base (rather than C++ calling the override), so the entry's code
object is renamed per method.

Cost. A call is a few microseconds of Python where torch's fake spends about as much on pybind and the dispatcher,
so the common case -- no faults, no latency, no observer, plain tensors: the group's ``_simple`` -- takes a short
lane with the same steps in the same order: refusal, check, the write below autograd, and no Work for a synchronous
call (torch 2.8+ lets a backend return None: the call is done; before, a completed Work, tied to its outputs where C++
would drop its Python half, as on the long way). On that lane a method that writes nothing in the
group's semantics is not run at all (``writes``: broadcast, barrier and point-to-point never write; the reductions
write only in ``uniform``), and a check that found every tensor of the call of one shape and dtype returns True,
which a method declaring a keyword-only ``even`` receives, so that it need not look at the shapes again.
"""

from __future__ import annotations

import types

import torch
import torch.distributed as dist

from . import _checks
from ._compat import SYNC_CALL_MAY_RETURN_NONE, base_name, dispatch_modes
from ._faults import NO_PLAN, bend, damage, issue
from ._work import FakeWork

_Tensor = torch.Tensor
_PLAIN = {torch.Tensor, torch.nn.Parameter, type(None)}  # types that need no look at __torch_dispatch__
_PLAIN_DISPATCH = torch.Tensor.__torch_dispatch__
_hidden_from_modes = torch._C._DisableTorchDispatch
_grad_enabled, _set_grad_enabled = torch.is_grad_enabled, torch._C._set_grad_enabled
_DONE = FakeWork.done([])

ALWAYS, UNIFORM, NEVER = "always", "uniform", "never"  # ``writes``: when a method writes anything


def _first_tensor(args):
    """The call's first tensor (its dtype selects faults; its type tells a tensor subclass)."""
    a = args[0]
    if type(a) is list and a:  # the common case, [t, ...] or [[t, ...]], without the loop
        a = a[0]
        if type(a) is list and a:
            a = a[0]
        if isinstance(a, _Tensor):
            return a
    elif isinstance(a, _Tensor):
        return a
    for a in args:
        if type(a) is list:
            if not a:
                continue
            a = a[0]
            if type(a) is list:
                if not a:
                    continue
                a = a[0]
        if isinstance(a, _Tensor):
            return a
    return None


def _subclass(t) -> bool:
    """A tensor subclass with its own __torch_dispatch__ (LocalTensor, FakeTensor, DTensor)."""
    return type(t) not in _PLAIN and type(t).__torch_dispatch__ is not _PLAIN_DISPATCH


def _below_autograd(semantics, group, args, harm=None):
    """Every write of every collective runs here (the short lane inlines the same four lines), with autograd off:
    what a C++ backend's kernels get below autograd (outputs carry no history; in-place writes into leaves that
    require grad are allowed). Grad mode rather than torch's below-autograd guard because it costs less per call
    (0.5 against 0.7 us, and the kernels beneath run no faster under the guard)."""
    enabled = _grad_enabled()
    if enabled:
        _set_grad_enabled(False)
    try:
        semantics(group, *args)
        if harm is not None:
            harm()
    finally:
        if enabled:
            _set_grad_enabled(True)


def collective(public, options=None, outputs=None, source=None, legacy=None, writes=ALWAYS):
    """Make a semantics method the method torch calls (see the module docstring).

    public   the torch.distributed name faults select it by (or a function of the arguments giving it)
    options  the torch options class to use when a caller passes none
    outputs  the tensors the Work's future and result() carry (default: the first argument)
    source   recv: the rank the message came from, as a function of (group, *arguments)
    legacy   the method's name before torch 2.13: the entry bears it where torch still binds that one
    writes   ALWAYS; UNIFORM (a pure reduction: copy semantics apply none, so it writes nothing there); NEVER
    """
    def wrap(semantics):
        bound = base_name(semantics.__name__, legacy) if legacy else semantics.__name__
        return _entry(semantics, bound, public, options, outputs or _first_argument, source, writes)
    return wrap


def _first_argument(first, *rest):
    return first


def _filler(semantics, nargs):
    """args, kwargs -> every argument positionally, defaults filled in (callers that name or leave some out)."""
    params = semantics.__code__.co_varnames[1:nargs + 1]
    defaults = dict(zip(params[nargs - len(semantics.__defaults__ or ()):], semantics.__defaults__ or ()))

    def complete(args, kwargs):
        try:
            rest = tuple([kwargs.pop(p) if p in kwargs else defaults[p] for p in params[len(args):]])
        except KeyError as missing:
            raise TypeError(f"{semantics.__name__}() missing argument {missing}") from None
        if kwargs:
            raise TypeError(f"{semantics.__name__}() got unexpected arguments {sorted(kwargs)}")
        return args + rest

    return complete


def _with_even(semantics):
    """The same method with ``even=True`` as its default: the short lane calls it like the method itself (a
    keyword argument would cost a dict per call)."""
    evenly = types.FunctionType(semantics.__code__, semantics.__globals__, semantics.__name__,
                                semantics.__defaults__, semantics.__closure__)
    evenly.__kwdefaults__ = {**semantics.__kwdefaults__, "even": True}
    return evenly


def _entry(semantics, bound, public, options, outputs, source, writes):
    name = semantics.__name__
    nargs = semantics.__code__.co_argcount - 1
    complete = _filler(semantics, nargs)
    check = getattr(_checks, name)
    base = getattr(dist.ProcessGroup, bound, None)  # torch's C++ method: the dispatcher's c10d op
    name_of = public if callable(public) else (lambda *args: public)
    takes_even = "even" in (semantics.__kwdefaults__ or ())
    evenly = _with_even(semantics) if takes_even else semantics
    always, uniform_only, has_options = writes == ALWAYS, writes == UNIFORM, options is not None
    may_skip_work = has_options and SYNC_CALL_MAY_RETURN_NONE
    modes, first_tensor, plain = dispatch_modes, _first_tensor, _PLAIN
    grad_enabled, set_grad_enabled, completed, done = _grad_enabled, _set_grad_enabled, FakeWork.done, _DONE

    def entry(self, *args, **kwargs):
        if kwargs or len(args) < nargs:
            args = complete(args, kwargs)
        if has_options and args[-1] is None:
            args = args[:-1] + (options(),)
        if self._refusing:
            self._refuse(name)
        even = check(self, *args)
        first = first_tensor(args)
        if self._simple and type(first) in plain and not modes():  # the short lane (see the module docstring)
            if first is not None and (always or uniform_only and self._uniform):
                write = evenly if even else semantics
                if grad_enabled():
                    set_grad_enabled(False)
                    try:
                        write(self, *args)
                    finally:
                        set_grad_enabled(True)
                else:
                    write(self, *args)
            if may_skip_work and not args[-1].asyncOp:
                return None  # the call is done
            outs = outputs(*args)
            if not outs and source is None:
                return done  # nothing to carry: one completed Work serves every such call
            work = completed(outs)
            if source is not None:
                work._source = source(self, *args)
            if self._pin_works:
                work.keep_alive()
            return work
        plan = NO_PLAN if self._quiet else self._plan(name_of(*args), first)
        plan.enter(getattr(args[-1], "asyncOp", True))
        if base is not None and (modes() or _subclass(first)):
            work = base(self, *args)  # this frame bears the method's name: pybind runs the C++ base
            if _subclass(first):
                return work  # a tensor subclass (LocalTensor) computed the values
            with _hidden_from_modes():
                return _run(self, name, semantics, args, plan, outputs, source)
        return _run(self, name, semantics, args, plan, outputs, source)

    entry.__code__ = entry.__code__.replace(co_name=bound)
    entry.__name__ = entry.__qualname__ = bound
    entry.__doc__, entry.__wrapped__ = semantics.__doc__, semantics  # (inspect shows the real signature)
    return entry


def _run(self, name, semantics, args, plan, outputs, source):
    """Steps 5-7: bend, write below autograd, the Work."""
    outs = outputs(*args)
    bent = bend(plan, name, args, self._ws) if plan.bends else args
    harm = damage(plan, name, bent, self._rank, outs)
    work = issue(plan, name, outs, lambda: _below_autograd(semantics, self, bent, harm), self._latency)
    if source is not None:
        work._source = source(self, *args)
    if self._pin_works:
        work.keep_alive()
    return work

"""Reverse-mode automatic differentiation: ``Function``, the backward pass, ``no_grad``.

Chapter 2 ("Autograd") builds this module. Every differentiable operation is a subclass of
``Function`` with two methods:

* ``forward(self, *inputs)`` computes the result from plain arrays (or Python numbers) and may keep
  what backward needs on ``self``;
* ``backward(self, grad_out)`` receives the gradient of the final scalar with respect to the
  output (a ``Tensor``) and returns one gradient per input (``None`` for inputs that need none).

A Function may have several outputs: ``forward`` returns a tuple of arrays, ``apply`` a tuple of
Tensors, and ``backward(self, grad_h, grad_c)`` receives one gradient per output. An output that
does not lead to the final scalar gets a gradient of zeros, so a backward rule never tests for
``None`` (it is written once, for the case where every output is used).

Every gradient a backward returns is checked against its input: a wrong shape (a forgotten
``unbroadcast``), a non-float dtype or another device is an error that names the op, the input
and both shapes; a float gradient of another float dtype is cast to the input's dtype.

``backward`` is written with Tensor operations, so with ``create_graph=True`` the gradient itself
is recorded in a graph and can be differentiated again (second derivatives). Without it, backward
runs under ``no_grad()`` and those operations take the cheap path that records nothing.

The backward pass visits the graph in reverse topological order: it counts how many ops consume
each tensor, and runs a tensor's backward once all of them have passed their gradient back
(Kahn's algorithm). Both walks are iterative: a recursive one overflows Python's stack on a
1,500-op chain such as an unrolled RNN.

Read next: ``ops.py``.
"""

from __future__ import annotations

import contextlib
import threading

from . import backend

# autograd and tensor need each other: tensor.py sets these two names once its class exists.
Tensor = None
_check_same_device = None

# The registry of every Function subclass, by name. tests/test_ops.py fails when a registered
# Function has no gradient check, so a new op cannot slip in untested.
REGISTRY: dict[str, type] = {}


class _GradMode(threading.local):
    enabled = True
    anomaly = False


_mode = _GradMode()


def is_grad_enabled() -> bool:
    return _mode.enabled


@contextlib.contextmanager
def no_grad():
    """Record no graph inside the block (inference, optimizer updates, evaluation).

    >>> import tinygrad_edu as tg
    >>> x = tg.ones(3, requires_grad=True)
    >>> with tg.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """
    prev = _mode.enabled
    _mode.enabled = False
    try:
        yield
    finally:
        _mode.enabled = prev


@contextlib.contextmanager
def enable_grad():
    prev = _mode.enabled
    _mode.enabled = True
    try:
        yield
    finally:
        _mode.enabled = prev


@contextlib.contextmanager
def detect_anomaly():
    """Check every forward and backward result for NaN/Inf and name the first op that made one.

    Slow (every op's result is scanned), so for debugging only.

    >>> import tinygrad_edu as tg
    >>> x = tg.tensor([0.0, 1.0], requires_grad=True)
    >>> with tg.detect_anomaly():
    ...     x.sqrt().sum().backward()
    Traceback (most recent call last):
    ...
    tinygrad_edu.autograd.AnomalyError: Sqrt backward produced non-finite values (...)
    """
    prev = _mode.anomaly
    _mode.anomaly = True
    try:
        yield
    finally:
        _mode.anomaly = prev


class AnomalyError(FloatingPointError):
    """Raised inside ``detect_anomaly()`` by the first op whose result is not finite."""


def _check_finite(op: str, phase: str, array) -> None:
    xp = backend.xp_of(array)
    if backend.is_floating(array.dtype) and not bool(xp.all(xp.isfinite(array))):
        n_nan = int(xp.sum(xp.astype(xp.isnan(array), xp.int64)))
        n_inf = int(xp.sum(xp.astype(xp.isinf(array), xp.int64)))
        raise AnomalyError(
            f"{op} {phase} produced {n_nan} NaN and {n_inf} Inf values "
            f"(shape {tuple(array.shape)}, dtype {backend.dtype_name(array.dtype)})"
        )


class Function:
    """One differentiable operation: ``forward`` on arrays, ``backward`` on Tensors.

    Subclasses are applied with ``MyOp.apply(*inputs, **options)``; inputs may be Tensors or
    constants (Python numbers), and only Tensors receive gradients.
    """

    __slots__ = ("inputs", "needs_input_grad", "freed", "__dict__")

    # Set to False for Functions whose backward is written on raw arrays for speed; a second
    # derivative through them is then a clear error instead of a silent zero.
    differentiable_backward = True

    # For a Function with several outputs, ``apply`` sets the ids of its output Tensors here.
    output_ids = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            REGISTRY[cls.__name__] = cls

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad_out):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **kwargs):
        # This runs for every operation, so it is written for speed: one pass over the inputs
        # collects their arrays and whether each needs a gradient.
        fn = cls()
        arrays = []
        needs = []
        first = None
        for t in inputs:
            if isinstance(t, Tensor):
                data = t.data
                if first is None:
                    first = t
                elif type(data) is not type(first.data):
                    _check_same_device(cls.__name__, first, t)
                arrays.append(data)
                needs.append(t.requires_grad)
            else:
                arrays.append(t)
                needs.append(False)
        out_data = fn.forward(*arrays, **kwargs)
        if type(out_data) is tuple:
            return fn._several_outputs(out_data, inputs, needs)
        if _mode.anomaly:
            _check_finite(cls.__name__, "forward", out_data)
        if _mode.enabled and True in needs:
            fn.inputs = inputs
            fn.needs_input_grad = needs
            fn.freed = False
            return Tensor._make(out_data, True, fn)
        return Tensor._make(out_data, False, None)

    def _several_outputs(self, out_data, inputs, needs):
        """``apply`` for a forward that returned a tuple: one Tensor per array, all made by this op.

        The backward pass finds an output's place by its ``id`` in ``output_ids``, and makes zeros
        for an unused output from ``output_like`` (shape, dtype and namespace, not the array)."""
        if _mode.anomaly:
            for data in out_data:
                _check_finite(type(self).__name__, "forward", data)
        if not (_mode.enabled and True in needs):
            return tuple(Tensor._make(data, False, None) for data in out_data)
        self.inputs = inputs
        self.needs_input_grad = needs
        self.freed = False
        outs = tuple(Tensor._make(data, True, self) for data in out_data)
        self.output_ids = tuple(id(t) for t in outs)
        self.output_like = tuple((d.shape, d.dtype, backend.xp_of(d)) for d in out_data)
        return outs


def backward(root, gradient=None, retain_graph=None, create_graph=False) -> None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

    ``gradient`` is the upstream gradient (required when ``root`` is not a scalar).
    ``create_graph=True`` records the backward pass itself, for higher derivatives.
    The graph is freed afterwards unless ``retain_graph`` (default: ``create_graph``).
    """
    if not root.requires_grad:
        raise RuntimeError(
            "backward(): this tensor does not require grad and has no graph; "
            "create the inputs with requires_grad=True (and not under no_grad())"
        )
    if gradient is None:
        if root.size != 1:
            raise RuntimeError(
                f"backward(): the output has shape {root.shape}; grad can be implicitly created "
                "only for scalar outputs. Pass gradient= (a tensor of the output's shape) or "
                "reduce the output first, e.g. loss = out.sum()"
            )
        xp = backend.xp_of(root.data)
        gradient = Tensor._make(xp.ones_like(root.data), False, None)
    elif not isinstance(gradient, Tensor):
        gradient = Tensor(gradient, dtype=root.dtype, device=root.device)
    if tuple(gradient.shape) != tuple(root.shape):
        raise ValueError(
            f"backward(): gradient has shape {gradient.shape} but the output has shape {root.shape}"
        )
    if retain_graph is None:
        retain_graph = create_graph

    # A tensor's gradient is complete only when every op that consumed it has passed its share
    # back. So: count the consumers of each tensor, then run backward from the root, and let a
    # tensor's own backward run when its count reaches zero. (This visits the graph in a
    # topological order without sorting it first, and without recursion.)
    consumers, waiting = _count_consumers(root)
    grads = {id(root): gradient}
    ready = [root]
    with enable_grad() if create_graph else no_grad():
        while ready:
            node = ready.pop()
            grad = grads.pop(id(node), None)
            fn = node._ctx
            if fn is None:  # a leaf: accumulate into .grad
                if grad is None:
                    continue
                if not create_graph:
                    grad = grad.detach()
                if grad.data.dtype != node.data.dtype:  # float32 leaf used with float64 values
                    grad = grad.astype(node.dtype)
                node.grad = grad if node.grad is None else node.grad + grad
                continue
            if waiting and id(fn) in waiting:  # one output of a several-output op
                grad = _gather_output_grads(fn, node, grad, waiting, grads)
                if grad is _NOT_YET:
                    continue
            if fn.freed:
                raise RuntimeError(
                    f"backward(): trying to backward through the graph a second time "
                    f"(at {type(fn).__name__}); its saved values were freed after the first "
                    "backward. Use backward(retain_graph=True) the first time if you need this."
                )
            if grad is None:  # no gradient reached this op: its inputs get none from it
                input_grads = (None,) * len(fn.inputs)
            elif create_graph and not fn.differentiable_backward:
                raise RuntimeError(
                    f"{type(fn).__name__} has a backward written for speed that cannot be "
                    "differentiated again; create_graph=True is not supported through it"
                )
            elif type(grad) is tuple:  # several outputs: one gradient each
                input_grads = _anomaly_backward(fn, *grad) if _mode.anomaly else fn.backward(*grad)
            else:
                input_grads = _anomaly_backward(fn, grad) if _mode.anomaly else fn.backward(grad)
            if type(input_grads) is not tuple:
                input_grads = (input_grads,)
            if len(input_grads) != len(fn.inputs):
                raise _wrong_count(fn, input_grads)
            for t, g, need in zip(fn.inputs, input_grads, fn.needs_input_grad, strict=False):
                if not need:
                    continue
                key = id(t)
                if g is not None:
                    # the cheap check of every gradient: a Tensor of its input's shape and dtype
                    # (dtypes of one library are shared objects, so ``is`` is the fast test)
                    try:
                        ok = g.data.shape == t.data.shape and g.data.dtype is t.data.dtype
                    except AttributeError:  # not a Tensor
                        ok = False
                    if not ok:
                        g = _checked_grad(fn, input_grads, t, g)
                    if _mode.anomaly:
                        _check_finite(type(fn).__name__, "backward", g.data)
                    prev = grads.get(key)
                    grads[key] = g if prev is None else prev + g
                consumers[key] -= 1
                if consumers[key] == 0:
                    ready.append(t)
            if not retain_graph:
                fn.freed = True
                fn.inputs = ()
                fn.__dict__.clear()


def _wrong_count(fn, input_grads) -> RuntimeError:
    name = type(fn).__name__
    return RuntimeError(
        f"{name}.backward returned {len(input_grads)} gradient(s) for {len(fn.inputs)} inputs; "
        "a backward returns one gradient per input of forward (None for an input that needs none)"
    )


def _checked_grad(fn, input_grads, t, g):
    """``g``, the gradient ``fn.backward`` returned for its input ``t``, after the full check.

    A float gradient of another float dtype (a float32 input used with float64 values) is cast
    to the input's dtype, as PyTorch does; anything else that does not match is an error that
    names the op, the input and both shapes, dtypes or devices."""
    name = type(fn).__name__
    i = next(
        i for i, (x, y) in enumerate(zip(fn.inputs, input_grads, strict=False)) if x is t and y is g
    )
    where = f"{name}.backward returned"
    if not isinstance(g, Tensor):
        raise TypeError(
            f"{where} an object of type {type(g).__name__} for input {i} (shape {t.shape}); "
            "a backward returns Tensors (wrap an array with Tensor._make(array, False, None))"
        )
    if g.shape != t.shape:
        raise ValueError(
            f"{where} a gradient of shape {g.shape} for input {i} of shape {t.shape}; "
            "a gradient has its input's shape (sum a broadcast input's gradient back with "
            "unbroadcast)"
        )
    if g.device != t.device:
        raise backend.DeviceError(
            f"{where} a gradient on device {g.device!r} for input {i} on device {t.device!r} "
            f"(shape {t.shape}); a gradient lives on its input's device"
        )
    if g.data.dtype != t.data.dtype:
        if not (backend.is_floating(g.dtype) and backend.is_floating(t.dtype)):
            raise TypeError(
                f"{where} a gradient of dtype {g.dtype} for input {i} of dtype {t.dtype} "
                f"(shape {t.shape}); a gradient is a float of its input's dtype"
            )
        g = g.astype(t.dtype)
    return g


_NOT_YET = object()  # what _gather_output_grads returns while an op still waits for outputs


def _gather_output_grads(fn, node, grad, waiting, grads):
    """Collect the gradient of ``node``, one output of the several-output op ``fn``.

    Returns ``_NOT_YET`` until every output that leads to the root has its gradient, then the
    tuple of all of them (zeros for outputs that do not lead to the root, or got no gradient),
    or ``None`` when none got a gradient at all."""
    key = id(fn)
    collected = grads.get(key)
    if collected is None:
        collected = grads[key] = [None] * len(fn.output_ids)
    collected[fn.output_ids.index(id(node))] = grad
    waiting[key] -= 1
    if waiting[key]:
        return _NOT_YET
    del grads[key]
    if all(g is None for g in collected):
        return None
    return tuple(
        Tensor._make(xp.zeros(shape, dtype=dtype), False, None) if g is None else g
        for g, (shape, dtype, xp) in zip(collected, fn.output_like, strict=True)
    )


def _anomaly_backward(fn, *grad):
    """``fn.backward(*grad)``, with a NaN/Inf inside it blamed on ``fn`` (not on the Mul or Div
    that its backward happens to be written with)."""
    try:
        return fn.backward(*grad)
    except AnomalyError as e:
        raise AnomalyError(
            f"{type(fn).__name__} backward produced non-finite values ({e})"
        ) from None


def _count_consumers(root) -> tuple[dict, dict]:
    """For every tensor that leads to ``root`` and needs a gradient: how many ops consume it.

    An iterative walk (a stack, not recursion, so a 10,000-op chain is fine) that visits each
    tensor once; a tensor used twice, like ``a`` in ``a * a``, is counted twice.
    Also returns, for each op with several outputs, how many of its outputs lead to ``root``:
    its backward runs once all of those have their gradient, and its inputs are counted once.
    """
    consumers = {id(root): 0}
    waiting = {}
    stack = [root]
    while stack:
        fn = stack.pop()._ctx
        if fn is None:
            continue
        if fn.output_ids is not None:  # several outputs: walk the op's inputs only once
            key = id(fn)
            if key in waiting:
                waiting[key] += 1
                continue
            waiting[key] = 1
        for t, need in zip(fn.inputs, fn.needs_input_grad, strict=False):
            if need:
                key = id(t)
                if key in consumers:
                    consumers[key] += 1
                else:
                    consumers[key] = 1
                    stack.append(t)
    return consumers, waiting

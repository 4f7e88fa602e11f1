"""Numerical gradients and gradient checks: how every backward rule in this project is verified.

Chapter 2 ("Autograd") builds this module; the exercises use it to check a learner's work.

``gradcheck(fn, inputs)`` compares the analytic gradient of ``fn`` (from ``backward``) with float64
central differences, ``(f(x + eps) - f(x - eps)) / (2 eps)``, element by element. The output is
not summed: a random upstream gradient ``v`` is drawn and the check is on ``d(v . f(x))/dx``.
Seeding with ``out.sum()`` hides real bugs: the sum of a softmax is always 1, so its gradient is 0
whatever the backward rule does.

>>> import tinygrad_edu as tg
>>> x = tg.randn(3, 4, dtype="float64", requires_grad=True)
>>> gradcheck(lambda x: x.tanh() * x, [x])
True

``gradcheck_module(module, *inputs)`` does the same for a layer: its output with respect to its
inputs *and every parameter*, with failures named by the parameter's name.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .autograd import no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """The analytic and numerical gradients differ; the message says where and by how much."""


def _as_tuple(out):
    return out if isinstance(out, (tuple, list)) else (out,)


def _input_labels(inputs):
    return [f"input {i}" for i in range(len(inputs))]


def _require_float64(inputs, labels, caller="gradcheck", hint=""):
    for label, t in zip(labels, inputs, strict=True):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != "float64":
            raise TypeError(
                f"{caller}: {label} has dtype {t.dtype}; gradient checks need float64 "
                f"(float32 round-off is larger than the errors being looked for){hint}"
            )


def _clear_grads(inputs):
    for t in inputs:
        if isinstance(t, Tensor):
            t.grad = None


def _weighted_sum(tensors, weights):
    """``sum_k (tensors[k] * weights[k]).sum()`` as one Tensor, skipping ``None`` entries
    (``None`` when nothing is left)."""
    total = None
    for t, w in zip(tensors, weights, strict=False):
        if t is None or w is None:
            continue
        term = (t * Tensor(w, dtype=t.dtype, device=t.device)).sum()
        total = term if total is None else total + term
    return total


def numerical_grad(fn, inputs, upstream, eps=1e-6):
    """Central differences of ``sum_k upstream[k] * fn(inputs)[k]`` for every input requiring grad.

    Returns a list of NumPy arrays (``None`` for inputs that do not require grad).
    """
    grads = []
    for t in inputs:
        if not (isinstance(t, Tensor) and t.requires_grad):
            grads.append(None)
            continue
        host = np.array(t.numpy(), dtype=np.float64, order="C")  # a C-ordered copy: flat is a view
        g = np.zeros_like(host)
        flat = host.reshape(-1)
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            t.data = backend.asarray(host.copy(), device=t.device)
            f_plus = _dot(fn(*inputs), upstream)
            flat[i] = orig - eps
            t.data = backend.asarray(host.copy(), device=t.device)
            f_minus = _dot(fn(*inputs), upstream)
            flat[i] = orig
            g.reshape(-1)[i] = (f_plus - f_minus) / (2 * eps)
        t.data = backend.asarray(host, device=t.device)
        grads.append(g)
    return grads


def _dot(outputs, upstream) -> float:
    total = 0.0
    for o, v in zip(_as_tuple(outputs), upstream, strict=False):
        total += float(np.sum(o.numpy().astype(np.float64) * v))
    return total


def _upstream(outputs, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(o.shape) for o in _as_tuple(outputs)]


def graph_functions(outputs):
    """Each Function in the graph behind ``outputs`` (a Tensor or a tuple of them), once,
    walking back from the outputs to the leaves."""
    seen = set()
    stack = [o for o in _as_tuple(outputs) if isinstance(o, Tensor)]
    while stack:
        t = stack.pop()
        if id(t) in seen or t._ctx is None:
            continue
        seen.add(id(t))
        yield t._ctx
        stack.extend(x for x in t._ctx.inputs if isinstance(x, Tensor))


def _consumers(outputs, leaf) -> list[str]:
    """Names of the Functions in the graph behind ``outputs`` that take ``leaf`` as an input."""
    names = []
    for fn in graph_functions(outputs):
        if any(x is leaf for x in fn.inputs) and type(fn).__name__ not in names:
            names.append(type(fn).__name__)
    return names


def _check_grad_shapes(name, inputs, consumers):
    """A backward that returns a gradient of the wrong shape is named, not reshaped."""
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or t.grad is None or tuple(t.grad.shape) == tuple(t.shape):
            continue
        ops = " or ".join(consumers.get(i) or ["an op"])
        raise GradcheckError(
            f"{name}: the gradient of input {i} has shape {tuple(t.grad.shape)}, but input {i} "
            f"has shape {tuple(t.shape)}: the backward of {ops} returned a gradient of the wrong "
            "shape (an input that was broadcast needs its gradient summed back to its own shape: "
            "unbroadcast)"
        )


def analytic_grad(fn, inputs, upstream, create_graph=False, name="gradcheck"):
    """Gradients from backward, with ``upstream`` as the output gradient."""
    _clear_grads(inputs)
    outputs = _as_tuple(fn(*inputs))
    consumers = {
        i: _consumers(outputs, t)
        for i, t in enumerate(inputs)
        if isinstance(t, Tensor) and t.requires_grad
    }
    total = _weighted_sum([o if o.requires_grad else None for o in outputs], upstream)
    if total is None:
        raise GradcheckError("gradcheck: no output requires grad; nothing to check")
    total.backward(create_graph=create_graph)
    _check_grad_shapes(name, inputs, consumers)
    grads = []
    for t in inputs:
        if not (isinstance(t, Tensor) and t.requires_grad):
            grads.append(None)
        elif t.grad is None:
            grads.append(np.zeros(t.shape))
        else:
            grads.append(t.grad.numpy().astype(np.float64))
    return grads


def gradcheck(fn, inputs, eps=1e-6, rtol=1e-5, atol=1e-6, seed=0, name=None) -> bool:
    """Check ``backward`` of ``fn`` at ``inputs`` against float64 central differences.

    ``fn`` takes the inputs and returns a Tensor (or a tuple of Tensors). Every input with
    ``requires_grad=True`` is checked; it must be float64. Returns True or raises
    ``GradcheckError`` naming the op, the input, the element index and both values.
    """
    inputs = list(inputs)
    labels = _input_labels(inputs)
    _require_float64(inputs, labels)
    return _check(fn, inputs, labels, name or getattr(fn, "__name__", "fn"), eps, rtol, atol, seed)


def _check(fn, inputs, labels, name, eps, rtol, atol, seed) -> bool:
    """The first-derivative check shared by ``gradcheck`` and ``gradcheck_module``."""
    with no_grad():
        outputs = fn(*inputs)
    upstream = _upstream(outputs, seed)
    analytic = analytic_grad(fn, inputs, upstream, name=name)
    with no_grad():
        numeric = numerical_grad(fn, inputs, upstream, eps)
    _compare(name, "gradient", labels, inputs, analytic, numeric, rtol, atol)
    return True


def gradcheck_module(
    module, *inputs, kwargs=None, eps=1e-6, rtol=1e-5, atol=1e-6, seed=0, name=None
) -> bool:
    """Check ``backward`` of ``module(*inputs, **kwargs)`` with respect to every input that
    requires grad *and every parameter*, against float64 central differences.

    The check is ``gradcheck``'s (a random upstream gradient, element by element). The module's
    parameters and the inputs that require grad must be float64: ``module.astype("float64")``.
    An input may be a Tensor, a tuple of Tensors (an LSTM's ``(h_0, c_0)``) or anything else
    (a mask, integer ids: passed as it is); the output may be a Tensor or (nested) tuples of
    Tensors, ``None`` entries skipped. A module that draws random numbers (Dropout in training
    mode) draws the same ones at every evaluation: the library's random generator is put back to
    its state at the call before each forward, and left in that state at the end.

    Returns True or raises ``GradcheckError`` naming the module, the parameter (its name in
    ``named_parameters()``) or the input, the element index and both values.

    >>> import tinygrad_edu as tg
    >>> from tinygrad_edu import nn
    >>> layer = nn.Linear(3, 2).astype("float64")
    >>> x = tg.randn(4, 3, dtype="float64", requires_grad=True)
    >>> gradcheck_module(layer, x)
    True
    """
    kwargs = {} if kwargs is None else dict(kwargs)
    checked, labels, seen = [], [], set()
    named = [pair for i, x in enumerate(inputs) for pair in _tensors_in(x, f"input {i}")]
    named += [(f"parameter '{n}'", p) for n, p in module.named_parameters()]
    for label, t in named:
        if id(t) not in seen:  # the same tensor twice (self-attention's query = key) once
            seen.add(id(t))
            checked.append(t)
            labels.append(label)
    _require_float64(
        checked, labels, "gradcheck_module", hint='; call module.astype("float64") first'
    )
    state = backend.get_rng_state()

    def fn(*_):  # checked tensors are perturbed in place: the module reads them where they are
        backend.set_rng_state(state)
        return _flat_outputs(module(*inputs, **kwargs))

    try:
        return _check(fn, checked, labels, name or type(module).__name__, eps, rtol, atol, seed)
    finally:
        backend.set_rng_state(state)


def _tensors_in(x, label):
    """The Tensors in an input (a Tensor, or nested tuples/lists of them), as (label, Tensor)."""
    if isinstance(x, Tensor):
        return [(label, x)]
    if isinstance(x, (tuple, list)):
        return [pair for j, item in enumerate(x) for pair in _tensors_in(item, f"{label}[{j}]")]
    return []


def _flat_outputs(out):
    """A module's output (a Tensor or nested tuples of Tensors and None) as a flat tuple."""
    if isinstance(out, (tuple, list)):
        return tuple(t for item in out for t in _flat_outputs(item))
    return () if out is None else (out,)


def gradgradcheck(fn, inputs, eps=1e-6, rtol=1e-4, atol=1e-5, seed=0, name=None) -> bool:
    """Check second derivatives: the gradient of ``w . grad(v . fn)`` (a Hessian-vector product)
    from ``backward(create_graph=True)`` against central differences of the first gradient.
    """
    inputs = list(inputs)
    labels = _input_labels(inputs)
    _require_float64(inputs, labels)
    name = name or getattr(fn, "__name__", "fn")
    with no_grad():
        outputs = fn(*inputs)
    upstream = _upstream(outputs, seed)
    rng = np.random.default_rng(seed + 1)
    weights = [
        None if not (isinstance(t, Tensor) and t.requires_grad) else rng.standard_normal(t.shape)
        for t in inputs
    ]

    def first_grad_dot(*xs):
        _clear_grads(xs)
        _weighted_sum(_as_tuple(fn(*xs)), upstream).backward(create_graph=True)
        acc = _weighted_sum([getattr(t, "grad", None) for t in xs], weights)
        if acc is None:
            raise GradcheckError(f"gradgradcheck: {name} has no differentiable first gradient")
        return acc

    # analytic second derivative: differentiate the recorded first gradient once more
    _clear_grads(inputs)
    s = first_grad_dot(*inputs)
    _clear_grads(inputs)
    if not s.requires_grad:
        analytic = [
            None if w is None else np.zeros(t.shape) for t, w in zip(inputs, weights, strict=False)
        ]
    else:
        s.backward()
        analytic = [
            None if w is None else (np.zeros(t.shape) if t.grad is None else t.grad.numpy())
            for t, w in zip(inputs, weights, strict=False)
        ]
    numeric = numerical_grad(lambda *xs: first_grad_dot(*xs).detach(), inputs, [np.ones(())], eps)
    _clear_grads(inputs)
    _compare(name, "second derivative", labels, inputs, analytic, numeric, rtol, atol)
    return True


def _compare(name, what, labels, inputs, analytic, numeric, rtol, atol):
    for label, t, a, n in zip(labels, inputs, analytic, numeric, strict=False):
        if n is None:
            continue
        a = np.asarray(a, dtype=np.float64)
        if a.shape != n.shape:
            raise GradcheckError(
                f"{name}: the {what} of {label} has shape {a.shape}, but {label} has shape "
                f"{n.shape}: a backward returned a gradient of the wrong shape"
            )
        bad = ~(np.abs(a - n) <= atol + rtol * np.abs(n))
        if bad.any():
            idx = tuple(int(j) for j in np.argwhere(bad)[0])
            raise GradcheckError(
                f"{name}: {what} of {label} (shape {t.shape}) is wrong at index {idx}: "
                f"backward gives {a[idx]:.8g}, central differences give {n[idx]:.8g} "
                f"({int(bad.sum())} of {bad.size} elements differ; rtol={rtol}, atol={atol})"
            )

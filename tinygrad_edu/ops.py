"""Primitive operations: each ``Function``'s backward sits right under its forward.

Chapter 2 ("Autograd") builds this module. Every op follows NumPy's broadcasting in forward; in
backward, the gradient of a broadcast input is summed back to the input's shape by the one
function that does it, ``unbroadcast``.

``forward`` works on raw arrays through the array namespace ``xp`` of its inputs (so the same code
runs on NumPy, CuPy and array-api-strict). ``backward`` works on Tensors, so that with
``create_graph=True`` the gradient is itself differentiable. Where backward needs the forward's
result (``exp``, ``tanh``, ``sigmoid``, ``sqrt``), it uses the saved array normally and recomputes
it from the input Tensor when a graph of the backward pass is being recorded (``create_graph``),
so that it can be differentiated again. One path that always recomputes would be simpler, but it
made forward + backward 1.4-1.7x slower (``benchmarks/backward_paths.py``), so each of these four
backward methods names its measured times.

Each public function (``add``, ``matmul``, ``sum`` ...) sits right under its Function. It checks
its inputs, so a mistake is reported with the op's name and the shapes involved; the checks,
conversions and type promotion that many ops share live in ``_ops_checks.py``, out of the way of
the math.

Read next: ``functional/`` (its ``__init__.py`` lists the files in reading order).
"""

from __future__ import annotations

import builtins
import math

from . import backend
from ._ops_checks import (
    _axes,
    _binary,
    _broadcast_shape,
    _floating,
    _normalize_key,
    _operand,
    _promote,
    _reshape_target,
    _tensor,
)
from .tensor import Function, Tensor, is_grad_enabled, no_grad


def _shape(x) -> tuple:
    return tuple(getattr(x, "shape", ()))


def _const(array) -> Tensor:
    """An array as a Tensor that takes no part in the graph."""
    return Tensor._make(array, False, None)


def unbroadcast(grad: Tensor, shape: tuple) -> Tensor:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``.

    Forward ``a + b`` with ``a: (3, 1)``, ``b: (4,)`` gives ``(3, 4)``: every element of ``a`` was
    used 4 times and every element of ``b`` 3 times, so their gradients are sums over those uses.

    >>> import tinygrad_edu as tg
    >>> unbroadcast(tg.ones(3, 4), (3, 1)).shape
    (3, 1)
    """
    if grad.shape == shape:
        return grad
    # --- exercise 2.3: unbroadcast ---
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and grad.shape[lead + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)
    # --- end exercise ---


# =================================================================================================
# Elementwise arithmetic
# =================================================================================================


class Add(Function):
    """``a + b``; d/da = 1, d/db = 1."""

    reads_inputs = False  # backward needs only the shapes

    def forward(self, a, b):
        # (backward reads the shapes from self.inputs: keeping them on the op gave every Add a
        # dict of its own, and an Add with a graph went from 2.12 to 1.82 us without it,
        # benchmarks/overhead.py)
        return a + b

    def backward(self, grad_out):
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        return (
            unbroadcast(grad_out, _shape(a)) if need_a else None,
            unbroadcast(grad_out, _shape(b)) if need_b else None,
        )


def add(a, b) -> Tensor:
    return _binary(Add, "add", a, b)


class Sub(Function):
    """``a - b``; d/da = 1, d/db = -1."""

    reads_inputs = False  # backward needs only the shapes

    def forward(self, a, b):
        return a - b

    def backward(self, grad_out):
        a, b = self.inputs
        grad_b = unbroadcast(-grad_out, _shape(b)) if self.needs_input_grad[1] else None
        return unbroadcast(grad_out, _shape(a)), grad_b


def sub(a, b) -> Tensor:
    return _binary(Sub, "sub", a, b)


class Mul(Function):
    """``a * b``; d/da = b, d/db = a."""

    def forward(self, a, b):
        return a * b

    def backward(self, grad_out):
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        # --- exercise 2.4: multiplication backward ---
        grad_a = unbroadcast(grad_out * b, _shape(a)) if need_a else None
        grad_b = unbroadcast(grad_out * a, _shape(b)) if need_b else None
        # --- end exercise ---
        return grad_a, grad_b


def mul(a, b) -> Tensor:
    return _binary(Mul, "mul", a, b)


class Div(Function):
    """``a / b``; d/da = 1/b, d/db = -a/b^2."""

    def forward(self, a, b):
        return a / b

    def backward(self, grad_out):
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        grad_a = unbroadcast(grad_out / b, _shape(a)) if need_a else None
        grad_b = unbroadcast(-grad_out * a / (b * b), _shape(b)) if need_b else None
        return grad_a, grad_b


def div(a, b) -> Tensor:
    """True division: integer operands become float32 first."""
    return _binary(Div, "div", a, b, true_div=True)


class Remainder(Function):
    """``a % b``, the remainder with the sign of ``b`` (Python's, NumPy's and PyTorch's ``%``):
    ``a - floor(a / b) b``. d/da = 1, d/db = -floor(a / b) (the floor is constant between its
    jumps, where no derivative exists; PyTorch uses the same rule)."""

    def forward(self, a, b):
        return a % b

    def backward(self, grad_out):
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        grad_a = unbroadcast(grad_out, _shape(a)) if need_a else None
        grad_b = None
        if need_b:
            quotient = _data(a) // _data(b)
            grad_b = unbroadcast(grad_out * _const(-quotient), _shape(b))
        return grad_a, grad_b


def remainder(a, b) -> Tensor:
    """``a % b`` elementwise, with the sign of ``b`` (NumPy's ``remainder``, PyTorch's ``%``).
    Integer division by zero is an error, as in PyTorch; a float ``x % 0`` is NaN.

    >>> import tinygrad_edu as tg
    >>> tg.remainder(tg.tensor([5.0, -5.0]), 3).tolist()
    [2.0, 1.0]
    """
    _check_int_divisor("remainder", a, b)
    return _binary(Remainder, "remainder", a, b)


class _FloorDivide(Function):
    """``a // b``, applied only under ``no_grad`` (``floor_divide``): a step function has no
    gradient to pass back (0 wherever it exists), so it never records a graph node."""

    def forward(self, a, b):
        return a // b


def floor_divide(a, b) -> Tensor:
    """``a // b`` elementwise: ``floor(a / b)`` (NumPy's ``floor_divide``, PyTorch's ``//``).

    A step function: the result does not require grad (its derivative is 0 wherever it exists;
    PyTorch's backward through it is an error instead). Integer division by zero is an error,
    as in PyTorch; a float ``x // 0`` is +-inf or NaN.

    >>> import tinygrad_edu as tg
    >>> tg.floor_divide(tg.tensor([7, -7]), 2).tolist()
    [3, -4]
    """
    _check_int_divisor("floor_divide", a, b)
    with no_grad():
        return _binary(_FloorDivide, "floor_divide", a, b)


def _check_int_divisor(op, a, b) -> None:
    """Integer ``//`` and ``%`` by zero: one clear error, as PyTorch's (NumPy warns, gives 0)."""
    if isinstance(a, float) or isinstance(b, float):
        return  # the integers become floats: x // 0.0 is inf or NaN
    for t in (a, b):
        if isinstance(t, Tensor) and backend.is_floating(t.dtype):
            return
    if isinstance(b, Tensor):
        if b.size and bool(backend.xp_of(b.data).any(b.data == 0)):
            raise ZeroDivisionError(
                f"{op}: integer division by zero (the divisor of shape {b.shape} holds a 0)"
            )
    elif b == 0:
        raise ZeroDivisionError(f"{op}: integer division by zero (divisor {b!r})")


class Pow(Function):
    """``a ** b``; d/da = b a^(b-1), d/db = a^b log(a) (needs a > 0).

    As PyTorch, d/da is 0 where b = 0 (the output is 1 whatever a is, though b a^(b-1) is
    0 * inf at a = 0), and d/db is 0 where a = 0 and b >= 0 (a^b log(a) -> 0 there).
    """

    def forward(self, a, b):
        return a**b

    def backward(self, grad_out):
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        xp = backend.xp_of(grad_out.data)
        a_, b_ = _data(a), _data(b)  # arrays, or a Python number (2.0 ** x, x ** 2)
        grad_a = grad_b = None
        if need_a:
            grad_a = grad_out * b * a ** (b - 1)
            if isinstance(b, Tensor) or b == 0:  # the mask only where b can be 0 (not x ** 2)
                grad_a = where(_const(xp.asarray(b_ == 0)), 0.0, grad_a)
            grad_a = unbroadcast(grad_a, _shape(a))
        if need_b:
            if isinstance(a, Tensor):
                log_a = log(a)
            else:
                log_a = math.log(a) if a > 0 else -math.inf if a == 0 else math.nan
            grad_b = grad_out * a**b * log_a
            if isinstance(a, Tensor) or a == 0:  # the mask only where a can be 0 (not 2.0 ** x)
                grad_b = where(_const(xp.asarray((a_ == 0) & (b_ >= 0))), 0.0, grad_b)
            grad_b = unbroadcast(grad_b, _shape(b))
        return grad_a, grad_b


def pow(a, b) -> Tensor:  # noqa: A001 - NumPy's name
    return _binary(Pow, "pow", a, b)


class Neg(Function):
    """``-a``; d/da = -1."""

    def forward(self, a):
        return -a

    def backward(self, grad_out):
        return -grad_out


def neg(a: Tensor) -> Tensor:
    return Neg.apply(a)


# =================================================================================================
# Elementwise functions
# =================================================================================================


class Exp(Function):
    """``exp(a)``; d/da = exp(a), the output itself."""

    def forward(self, a):
        self.out = backend.xp_of(a).exp(a)
        return self.out

    def backward(self, grad_out):
        # two paths, because the saved output pays: forward + backward on (256, 1024) float32
        # took 0.91 ms with it and 1.55 ms recomputing exp (benchmarks/backward_paths.py)
        out = exp(self.inputs[0]) if is_grad_enabled() else _const(self.out)
        return grad_out * out


def exp(a: Tensor) -> Tensor:
    return Exp.apply(_floating(a))


class Log(Function):
    """``log(a)``; d/da = 1/a."""

    def forward(self, a):
        return backend.xp_of(a).log(a)

    def backward(self, grad_out):
        return grad_out / self.inputs[0]


def log(a: Tensor) -> Tensor:
    return Log.apply(_floating(a))


class Sqrt(Function):
    """``sqrt(a)``; d/da = 1 / (2 sqrt(a))."""

    def forward(self, a):
        self.out = backend.xp_of(a).sqrt(a)
        return self.out

    def backward(self, grad_out):
        # saved output: 1.24 ms against 1.87 ms recomputed (benchmarks/backward_paths.py)
        out = sqrt(self.inputs[0]) if is_grad_enabled() else _const(self.out)
        return grad_out * 0.5 / out


def sqrt(a: Tensor) -> Tensor:
    return Sqrt.apply(_floating(a))


class TanhFunction(Function):
    """``tanh(a)``; d/da = 1 - tanh(a)^2."""

    def forward(self, a):
        self.out = backend.xp_of(a).tanh(a)
        return self.out

    def backward(self, grad_out):
        # saved output: 1.83 ms against 2.64 ms recomputed (benchmarks/backward_paths.py)
        out = tanh(self.inputs[0]) if is_grad_enabled() else _const(self.out)
        return grad_out * (1.0 - out * out)


def tanh(a: Tensor) -> Tensor:
    return TanhFunction.apply(_floating(a))


class SigmoidFunction(Function):
    """``1 / (1 + exp(-a))``; d/da = s (1 - s).

    Computed as ``exp(min(a, 0)) / (1 + exp(-|a|))`` so neither branch overflows at a = +-1e3.
    The numerator is 1 for a >= 0 and ``exp(a)`` below: one formula for both signs, no ``where``
    on the data (12.5 ms per 1M float32 elements with ``where``, 4.5 ms without, same values).
    """

    def forward(self, a):
        xp = backend.xp_of(a)
        e = xp.exp(-xp.abs(a))  # in (0, 1]: never overflows
        e += 1.0
        out = xp.exp(xp.minimum(a, xp.zeros((), dtype=a.dtype)))  # 1 for a >= 0, else exp(a)
        out /= e
        self.out = out
        return self.out

    def backward(self, grad_out):
        # saved output: 4.44 ms against 7.40 ms recomputed (benchmarks/backward_paths.py)
        out = sigmoid(self.inputs[0]) if is_grad_enabled() else _const(self.out)
        return grad_out * out * (1.0 - out)


def sigmoid(a: Tensor) -> Tensor:
    return SigmoidFunction.apply(_floating(a))


class ReLUFunction(Function):
    """``max(a, 0)``; d/da = 1 where a > 0, else 0.

    Both directions are branch-free: forward is ``maximum``, backward multiplies by the 0/1 mask
    ``out > 0``. A ``where`` whose condition depends on the data makes the CPU guess a branch per
    element and miss half the time on random signs: on 1M float32 elements (B4's conv output,
    one thread) ``where(a > 0, a, 0)`` took 5.8 ms, ``maximum(a, 0)`` 0.35 ms, and the backward
    ``where(out > 0, grad, 0)`` 7.0 ms against 0.81 ms for ``grad * (out > 0)`` (chapter 13).
    """

    def forward(self, a):
        # --- exercise 3.3: ReLU forward ---
        xp = backend.xp_of(a)
        self.out = xp.maximum(a, xp.zeros((), dtype=a.dtype))  # a 0-d zero broadcasts
        return self.out
        # --- end exercise ---

    def backward(self, grad_out):
        # --- exercise 3.3: ReLU backward ---
        xp = backend.xp_of(self.out)
        mask = xp.astype(self.out > 0, self.out.dtype)  # 1.0 where a > 0, else 0.0
        return grad_out * _const(mask)
        # --- end exercise ---


def relu(a: Tensor) -> Tensor:
    return ReLUFunction.apply(a)


class Abs(Function):
    """``|a|``; d/da = sign(a) (0 at 0)."""

    def forward(self, a):
        return backend.xp_of(a).abs(a)

    def backward(self, grad_out):
        # --- exercise 2.7: absolute value backward ---
        a = self.inputs[0].data
        return grad_out * _const(backend.xp_of(a).sign(a))
        # --- end exercise ---


def abs(a: Tensor) -> Tensor:  # noqa: A001 - NumPy's name
    return Abs.apply(a)


class Maximum(Function):
    """Elementwise ``maximum(a, b)``; the gradient goes to the larger input (half each on a tie)."""

    def forward(self, a, b):
        return _xp(a, b).maximum(a, b)

    def backward(self, grad_out):
        return _select_grad(self, grad_out, larger=True)


def maximum(a, b) -> Tensor:
    a = _operand(a, b, "maximum") if not isinstance(a, Tensor) else a
    return _binary(Maximum, "maximum", a, _operand(b, a, "maximum"))


class Minimum(Function):
    """Elementwise ``minimum(a, b)``; the gradient goes to the smaller input (half each on ties)."""

    def forward(self, a, b):
        return _xp(a, b).minimum(a, b)

    def backward(self, grad_out):
        return _select_grad(self, grad_out, larger=False)


def minimum(a, b) -> Tensor:
    a = _operand(a, b, "minimum") if not isinstance(a, Tensor) else a
    return _binary(Minimum, "minimum", a, _operand(b, a, "minimum"))


def _xp(a, b):
    """The array namespace of a binary op whose one operand may be a Python number."""
    return backend.xp_of(a if backend.is_array(a) else b)


def _select_grad(fn, grad_out, larger):
    # --- exercise 2.6: maximum and minimum backward ---
    a, b = (t.data if isinstance(t, Tensor) else t for t in fn.inputs)
    xp = backend.xp_of(grad_out.data)
    dt = grad_out.data.dtype
    wins = (a > b) if larger else (a < b)
    w_a = xp.astype(wins, dt) + 0.5 * xp.astype(a == b, dt)
    grad_a = unbroadcast(grad_out * _const(w_a), _shape(a)) if fn.needs_input_grad[0] else None
    grad_b = (
        unbroadcast(grad_out * _const(1.0 - w_a), _shape(b)) if fn.needs_input_grad[1] else None
    )
    return grad_a, grad_b
    # --- end exercise ---


class Clip(Function):
    """``clip(a, min, max)``; d/da = 1 inside [min, max], 0 outside."""

    def forward(self, a, lo, hi):
        xp = backend.xp_of(a)
        out = a
        inside = xp.ones_like(a, dtype=xp.bool)
        if lo is not None:
            out = xp.maximum(out, xp.asarray(lo, dtype=a.dtype))
            inside = inside & (a >= lo)
        if hi is not None:
            out = xp.minimum(out, xp.asarray(hi, dtype=a.dtype))
            inside = inside & (a <= hi)
        self.inside = inside
        return out

    def backward(self, grad_out):
        xp = backend.xp_of(self.inside)
        return grad_out * _const(xp.astype(self.inside, grad_out.data.dtype)), None, None


def clip(a: Tensor, min=None, max=None) -> Tensor:  # noqa: A002 - NumPy's names
    min, max = backend.python_scalar(min), backend.python_scalar(max)  # noqa: A001
    for name, bound in (("min", min), ("max", max)):
        if bound is not None and not isinstance(bound, (int, float)):
            raise TypeError(
                f"clip: {name} must be a Python number or None, got {type(bound).__name__}"
            )
    if min is not None and max is not None and min > max:
        raise ValueError(f"clip: min ({min}) is larger than max ({max})")
    if float in (type(min), type(max)):  # ints clipped to 1.5 become floats (PyTorch's rule)
        a = _floating(a)
    return Clip.apply(a, min, max)


class Cast(Function):
    """``a.astype(dtype)`` between float dtypes; the gradient is cast back."""

    def forward(self, a, dtype):
        self.in_dtype = backend.dtype_name(a.dtype)
        xp = backend.xp_of(a)
        return xp.astype(a, backend.resolve_dtype(dtype, backend.device_of(a)))

    def backward(self, grad_out):
        return grad_out.astype(self.in_dtype), None


def astype(a: Tensor, dtype) -> Tensor:
    name = backend.dtype_name(dtype)
    if name == a.dtype:
        return a
    if backend.is_floating(name) and backend.is_floating(a.dtype):
        return Cast.apply(a, name)
    # to or from integers/booleans: not differentiable
    xp = backend.xp_of(a.data)
    return _const(xp.astype(a.data, backend.resolve_dtype(name, a.device)))


# =================================================================================================
# Matrix multiplication
# =================================================================================================


class MatMul(Function):
    """``a @ b`` for ``a: (..., n, k)``, ``b: (..., k, m)`` with broadcast batch dimensions.

    Backward: ``grad_a = grad_out @ b^T``, ``grad_b = a^T @ grad_out`` (transposes of the last two
    axes are views, never copies), then summed over broadcast batch dimensions.
    """

    def forward(self, a, b):
        return backend.xp_of(a).matmul(a, b)

    def backward(self, grad_out):
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        # --- exercise 2.4: matrix multiplication backward ---
        grad_a = unbroadcast(grad_out @ b.mT, a.shape) if need_a else None
        grad_b = unbroadcast(a.mT @ grad_out, b.shape) if need_b else None
        # --- end exercise ---
        return grad_a, grad_b


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy's rules: batch dimensions broadcast; 1-D operands are vectors."""
    a = _tensor(a, b if isinstance(b, Tensor) else None, "matmul")
    b = _tensor(b, a, "matmul")
    a, b = _promote(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: operands must have at least 1 dimension, got {a.shape} and {b.shape}"
        )
    if a.ndim == 1 and b.ndim == 1:  # a dot product: (n,) @ (n,) -> ()
        return matmul(a.reshape((1, a.shape[0])), b).reshape(())
    if a.ndim == 1:
        return matmul(a.reshape((1, a.shape[0])), b).squeeze(-2)
    if b.ndim == 1:
        return matmul(a, b.reshape((b.shape[0], 1))).squeeze(-1)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned: the last dimension of the "
            f"first ({a.shape[-1]}) must equal the second-to-last of the second ({b.shape[-2]})"
        )
    if _broadcast_shape(a.shape[:-2], b.shape[:-2]) is None:
        raise ValueError(
            f"matmul: batch dimensions of {a.shape} and {b.shape} cannot be broadcast together"
        )
    return MatMul.apply(a, b)


# =================================================================================================
# Reductions
# =================================================================================================


def _keepdims_shape(shape, axes) -> tuple:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


class Sum(Function):
    """``sum(a, axis, keepdims)``; every summed element receives the output's gradient."""

    def forward(self, a, axes, keepdims):
        self.in_shape = _shape(a)
        self.axes = axes
        return backend.xp_of(a).sum(a, axis=axes, keepdims=keepdims)

    def backward(self, grad_out):
        # --- exercise 2.5: sum backward ---
        g = grad_out.reshape(_keepdims_shape(self.in_shape, self.axes))
        return g.broadcast_to(self.in_shape), None, None
        # --- end exercise ---


def sum(a: Tensor, axis=None, keepdims=False) -> Tensor:  # noqa: A001 - NumPy's name
    return Sum.apply(a, _axes(axis, a.shape, "sum"), keepdims)


def mean(a: Tensor, axis=None, keepdims=False) -> Tensor:
    axes = _axes(axis, a.shape, "mean")
    n = math.prod(a.shape[i] for i in axes)
    return sum(a, axes, keepdims) * (1.0 / n if n else math.nan)


def var(a: Tensor, axis=None, keepdims=False, ddof=0) -> Tensor:
    """Variance, NumPy's ``ddof`` convention (0: divide by N)."""
    axes = _axes(axis, a.shape, "var")
    n = math.prod(a.shape[i] for i in axes)
    d = a - mean(a, axes, keepdims=True)
    return sum(d * d, axes, keepdims) * (1.0 / (n - ddof) if n > ddof else math.nan)


def std(a: Tensor, axis=None, keepdims=False, ddof=0) -> Tensor:
    """Standard deviation, ``sqrt(var)``, NumPy's ``ddof`` convention (0: divide by N; PyTorch's
    ``std`` defaults to ``correction=1``, which is ``ddof=1`` here)."""
    return sqrt(var(a, axis, keepdims, ddof))


class Max(Function):
    """``max(a, axis, keepdims)``; the gradient goes to the maximal elements (split among ties)."""

    largest = True

    def forward(self, a, axes, keepdims):
        xp = backend.xp_of(a)
        self.in_shape = _shape(a)
        self.axes = axes
        if builtins.any(self.in_shape[i] == 0 for i in axes):
            raise ValueError(
                f"{type(self).__name__.lower()}: zero-size axis in a tensor of shape "
                f"{self.in_shape} has no {type(self).__name__.lower()}imum"
            )
        reduce = xp.max if self.largest else xp.min
        out = reduce(a, axis=axes, keepdims=True)
        self.mask = a == out
        return (
            out
            if keepdims
            else xp.reshape(out, tuple(s for i, s in enumerate(self.in_shape) if i not in axes))
        )

    def backward(self, grad_out):
        xp = backend.xp_of(self.mask)
        mask = xp.astype(self.mask, grad_out.data.dtype)
        share = mask / xp.sum(mask, axis=self.axes, keepdims=True)
        g = grad_out.reshape(_keepdims_shape(self.in_shape, self.axes))
        return g * _const(share), None, None


def max(a: Tensor, axis=None, keepdims=False) -> Tensor:  # noqa: A001 - NumPy's name
    return Max.apply(a, _axes(axis, a.shape, "max"), keepdims)


class Min(Max):
    """``min(a, axis, keepdims)``; the gradient goes to the minimal elements (split among ties)."""

    largest = False


def min(a: Tensor, axis=None, keepdims=False) -> Tensor:  # noqa: A001 - NumPy's name
    return Min.apply(a, _axes(axis, a.shape, "min"), keepdims)


# =================================================================================================
# Shape operations
# =================================================================================================


class Reshape(Function):
    """View the same elements in another shape; the gradient is reshaped back."""

    def forward(self, a, shape):
        self.in_shape = _shape(a)
        return backend.xp_of(a).reshape(a, shape)

    def backward(self, grad_out):
        # --- exercise 2.5: reshape backward ---
        return grad_out.reshape(self.in_shape), None
        # --- end exercise ---


def reshape(a: Tensor, *shape) -> Tensor:
    """``reshape(a, (2, 3))`` or ``a.reshape(2, 3)``; one dimension may be -1."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = _reshape_target(a.shape, shape)
    if shape == a.shape:
        return a
    return Reshape.apply(a, shape)


def squeeze(a: Tensor, axis=None) -> Tensor:
    if axis is None:
        return reshape(a, tuple(s for s in a.shape if s != 1))
    axes = _axes(axis, a.shape, "squeeze")
    for ax in axes:
        if a.shape[ax] != 1:
            raise ValueError(f"squeeze: axis {ax} of shape {a.shape} has size {a.shape[ax]}, not 1")
    return reshape(a, tuple(s for i, s in enumerate(a.shape) if i not in axes))


def unsqueeze(a: Tensor, axis: int) -> Tensor:
    """Insert a size-1 axis at ``axis`` (NumPy: ``expand_dims``)."""
    nd = a.ndim + 1
    if isinstance(axis, bool) or not hasattr(axis, "__index__"):
        raise TypeError(f"unsqueeze: axis must be an int, got {axis!r}")
    if not -nd <= axis < nd:
        raise ValueError(
            f"unsqueeze: axis {axis} is out of range for a result with {nd} dimensions"
        )
    axis %= nd
    return reshape(a, a.shape[:axis] + (1,) + a.shape[axis:])


expand_dims = unsqueeze


def flatten(a: Tensor, start_axis: int = 0, end_axis: int = -1) -> Tensor:
    if a.ndim == 0:
        return reshape(a, (1,))
    (s,), (e,) = _axes(start_axis, a.shape, "flatten"), _axes(end_axis, a.shape, "flatten")
    if s > e:
        raise ValueError(
            f"flatten: start_axis {start_axis} comes after end_axis {end_axis} "
            f"for a tensor of shape {a.shape}"
        )
    return reshape(a, a.shape[:s] + (math.prod(a.shape[s : e + 1]),) + a.shape[e + 1 :])


class Transpose(Function):
    """Permute axes; the gradient is permuted back with the inverse permutation."""

    def forward(self, a, axes):
        self.axes = axes
        return backend.xp_of(a).permute_dims(a, axes)

    def backward(self, grad_out):
        # --- exercise 2.5: transpose backward ---
        inverse = tuple(sorted(range(len(self.axes)), key=self.axes.__getitem__))
        return grad_out.transpose(inverse), None
        # --- end exercise ---


def transpose(a: Tensor, axes=None) -> Tensor:
    """Permute axes (reverse them when ``axes`` is None), as ``np.transpose``."""
    if axes is None:
        axes = tuple(range(a.ndim - 1, -1, -1))
    if len(axes) != a.ndim:
        raise ValueError(
            f"transpose: axes {tuple(axes)} are not a permutation of the {a.ndim} axes of {a.shape}"
        )
    axes = tuple(_axes(ax, a.shape, "transpose")[0] for ax in axes)
    if sorted(axes) != list(range(a.ndim)):
        raise ValueError(
            f"transpose: axes {axes} are not a permutation of the {a.ndim} axes of {a.shape}"
        )
    return Transpose.apply(a, axes)


def swapaxes(a: Tensor, axis1: int, axis2: int) -> Tensor:
    """Exchange two axes (``a.mT`` is ``swapaxes(a, -1, -2)``)."""
    (axis1,), (axis2,) = _axes(axis1, a.shape, "swapaxes"), _axes(axis2, a.shape, "swapaxes")
    axes = list(range(a.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(a, axes)


class BroadcastTo(Function):
    """Stretch size-1 axes (and add leading ones); the gradient is summed back by unbroadcast."""

    def forward(self, a, shape):
        self.in_shape = _shape(a)
        return backend.xp_of(a).broadcast_to(a, shape)

    def backward(self, grad_out):
        return unbroadcast(grad_out, self.in_shape), None


def broadcast_to(a: Tensor, shape) -> Tensor:
    shape = tuple(shape)
    if _broadcast_shape(a.shape, shape) != shape or builtins.any(s < 0 for s in shape):
        raise ValueError(f"broadcast_to: cannot broadcast a tensor of shape {a.shape} to {shape}")
    if shape == a.shape:
        return a
    return BroadcastTo.apply(a, shape)


# =================================================================================================
# Indexing and joining
# =================================================================================================


class Getitem(Function):
    """``a[key]`` (ints, slices, None, Ellipsis, integer arrays, boolean masks).

    Backward scatters the gradient into zeros shaped like ``a``; with integer arrays an index may
    repeat (``a[[0, 0]]``), and its gradients must *add up*, which is why this is a scatter-add.
    """

    def forward(self, a, key):
        self.in_shape = _shape(a)
        self.key = key
        return backend.getitem(a, key)

    def backward(self, grad_out):
        return IndexAdd.apply(grad_out, self.in_shape, self.key), None


def getitem(a: Tensor, key) -> Tensor:
    key = _normalize_key(key, a.shape, a.device)
    try:
        return Getitem.apply(a, key)
    except IndexError as e:
        raise IndexError(f"index: indexing a tensor of shape {a.shape}: {e}") from e


def split(a: Tensor, indices_or_sections, axis: int = 0) -> list:
    """NumPy's ``split``: a number of equal sections, or the indices where to cut."""
    (ax,) = _axes(axis, a.shape, "split")
    n = a.shape[ax]
    if isinstance(indices_or_sections, bool) or not isinstance(
        indices_or_sections, (int, list, tuple)
    ):
        raise TypeError(
            f"split: indices_or_sections must be an int or a list of ints, "
            f"got {indices_or_sections!r}"
        )
    if isinstance(indices_or_sections, int):
        if indices_or_sections < 1:
            raise ValueError(
                f"split: the number of sections must be >= 1, got {indices_or_sections}"
            )
        if n % indices_or_sections:
            raise ValueError(
                f"split: axis {axis} of size {n} (shape {a.shape}) does not divide into "
                f"{indices_or_sections} equal sections"
            )
        step = n // indices_or_sections
        cuts = list(range(step, n, step))
    else:
        cuts = list(indices_or_sections)
    bounds = [0] + cuts + [n]
    pre = (slice(None),) * ax
    return [
        getitem(a, pre + (slice(lo, hi),)) for lo, hi in zip(bounds[:-1], bounds[1:], strict=False)
    ]


def setitem(a: Tensor, key, value) -> None:
    """``a[key] = value``: an in-place write into the data, for tensors outside any graph."""
    if a.requires_grad and is_grad_enabled():
        raise RuntimeError(
            "__setitem__: in-place writes into a tensor that requires grad would corrupt "
            "its gradient; write under tg.no_grad() or build a new tensor (e.g. with where)"
        )
    value = value.data if isinstance(value, Tensor) else value
    try:
        a.data[_normalize_key(key, a.shape, a.device)] = value
    except (IndexError, ValueError, TypeError) as e:
        raise type(e)(f"__setitem__: writing into a tensor of shape {a.shape}: {e}") from e
    a._written()


class IndexAdd(Function):
    """The backward of ``Getitem``: ``zeros(shape)[key] += g``. Its own backward is ``g[key]``."""

    def forward(self, g, shape, key):
        xp = backend.xp_of(g)
        self.key = key
        out = xp.zeros(shape, dtype=g.dtype)
        return backend.index_add(out, key, g)

    def backward(self, grad_out):
        return Getitem.apply(grad_out, self.key), None, None


class Concat(Function):
    """Join tensors along an existing axis; the gradient is sliced back into the pieces."""

    def forward(self, *arrays, axis):
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        return backend.xp_of(arrays[0]).concat(list(arrays), axis=axis)

    def backward(self, grad_out):
        grads = []
        start = 0
        ax = self.axis % grad_out.ndim
        for size in self.sizes:
            index = (slice(None),) * ax + (slice(start, start + size),)
            grads.append(grad_out[index])
            start += size
        return tuple(grads)


def concat(tensors, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (NumPy 2: ``np.concat``)."""
    tensors = [_tensor(t, op="concat") for t in tensors]
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    floats = [t for t in tensors if backend.is_floating(t.dtype)]
    if floats:  # integers joined with floats become that float (PyTorch's rule, as _promote)
        tensors = [_promote(t, floats[0])[0] for t in tensors]
    ref = tensors[0]
    if ref.ndim == 0:
        raise ValueError("concat: zero-dimensional tensors cannot be concatenated; use stack")
    (ax,) = _axes(axis, ref.shape, "concat")
    for t in tensors[1:]:
        if t.ndim != ref.ndim or builtins.any(
            t.shape[i] != ref.shape[i] for i in range(ref.ndim) if i != ax
        ):
            raise ValueError(
                f"concat: shapes {ref.shape} and {t.shape} differ outside axis {axis}; "
                "all other dimensions must match"
            )
    return Concat.apply(*tensors, axis=ax)


concatenate = concat


def stack(tensors, axis: int = 0) -> Tensor:
    """Join tensors of the same shape along a new axis."""
    tensors = [_tensor(t, op="stack") for t in tensors]
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    nd = tensors[0].ndim + 1
    if isinstance(axis, bool) or not hasattr(axis, "__index__") or not -nd <= axis < nd:
        raise ValueError(
            f"stack: axis {axis!r} is out of range for stacking tensors of shape "
            f"{tensors[0].shape} (axes {-nd}..{nd - 1})"
        )
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise ValueError(
                f"stack: all tensors must have the same shape, got {tensors[0].shape} and {t.shape}"
            )
    return concat([unsqueeze(t, axis) for t in tensors], axis=axis)


# =================================================================================================
# Selection
# =================================================================================================


class Where(Function):
    """``where(cond, a, b)``: a where cond else b; the gradient follows the same choice."""

    def forward(self, cond, a, b):
        self.cond = cond
        return backend.xp_of(cond).where(cond, a, b)

    def backward(self, grad_out):
        _, a, b = self.inputs
        c = _const(self.cond)
        zero = zeros_like(grad_out)
        grad_a = (
            unbroadcast(where(c, grad_out, zero), _shape(a)) if self.needs_input_grad[1] else None
        )
        grad_b = (
            unbroadcast(where(c, zero, grad_out), _shape(b)) if self.needs_input_grad[2] else None
        )
        return None, grad_a, grad_b


def where(cond, a, b) -> Tensor:
    """``a`` where ``cond`` is true, else ``b``; ``a`` and ``b`` may be Tensors or numbers."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError("where: at least one of a and b must be a Tensor")
    a, b = backend.python_scalar(a), backend.python_scalar(b)
    if float in (type(a), type(b)):  # where(cond, ints, 0.5) is a float tensor (PyTorch's rule)
        a, b = _floating(a), _floating(b)
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        a, b = _promote(a, b)
    ref = a if isinstance(a, Tensor) else b
    cond = cond if isinstance(cond, Tensor) else Tensor(cond, device=ref.device)
    if cond.dtype != "bool":
        raise TypeError(f"where: the condition must be a boolean tensor, got dtype {cond.dtype}")
    xp = backend.xp_of(ref.data)
    if not isinstance(a, Tensor):
        a = _const(xp.asarray(a, dtype=ref.data.dtype))
    if not isinstance(b, Tensor):
        b = _const(xp.asarray(b, dtype=ref.data.dtype))
    shape = _broadcast_shape(cond.shape, _broadcast_shape(a.shape, b.shape) or ())
    if _broadcast_shape(a.shape, b.shape) is None or shape is None:
        raise ValueError(
            f"where: shapes {cond.shape}, {a.shape} and {b.shape} cannot be broadcast together"
        )
    return Where.apply(cond, a, b)


def masked_fill(a: Tensor, mask, value) -> Tensor:
    """``a`` with ``value`` wherever ``mask`` is true (PyTorch's name)."""
    mask = mask if isinstance(mask, Tensor) else Tensor(mask, device=a.device)
    if _broadcast_shape(mask.shape, a.shape) != a.shape:
        raise ValueError(
            f"masked_fill: mask of shape {mask.shape} does not broadcast to the tensor's "
            f"shape {a.shape}"
        )
    if not isinstance(value, Tensor):  # the result keeps a's dtype, as PyTorch's masked_fill
        value = _const(backend.xp_of(a.data).asarray(value, dtype=a.data.dtype))
    return where(mask, value, a)


def _tri_mask(a: Tensor, k: int, lower: bool) -> Tensor:
    xp = backend.xp_of(a.data)
    n, m = a.shape[-2], a.shape[-1]
    rows = xp.arange(n)[:, None]
    cols = xp.arange(m)[None, :]
    return _const((cols - rows <= k) if lower else (cols - rows >= k))


def tril(a: Tensor, k: int = 0) -> Tensor:
    """Keep the lower triangle (``j - i <= k``) of the last two axes; zero elsewhere."""
    if a.ndim < 2:
        raise ValueError(f"tril: needs at least 2 dimensions, got shape {a.shape}")
    return where(_tri_mask(a, k, True), a, 0.0 if backend.is_floating(a.dtype) else 0)


def triu(a: Tensor, k: int = 0) -> Tensor:
    """Keep the upper triangle (``j - i >= k``) of the last two axes; zero elsewhere."""
    if a.ndim < 2:
        raise ValueError(f"triu: needs at least 2 dimensions, got shape {a.shape}")
    return where(_tri_mask(a, k, False), a, 0.0 if backend.is_floating(a.dtype) else 0)


def zeros_like(a: Tensor) -> Tensor:
    return _const(backend.xp_of(a.data).zeros_like(a.data))


# =================================================================================================
# Comparisons and other results without a gradient
# =================================================================================================


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def compare(a: Tensor, b, op: str) -> Tensor:
    b = _data(_operand(b, a, op))
    try:
        if op == "eq":
            out = a.data == b
        elif op == "ne":
            out = a.data != b
        elif op == "lt":
            out = a.data < b
        elif op == "le":
            out = a.data <= b
        elif op == "gt":
            out = a.data > b
        else:
            out = a.data >= b
    except (ValueError, TypeError) as e:
        raise ValueError(f"{op}: shapes {a.shape} and {_shape(b)} cannot be compared: {e}") from e
    return _const(out)


def _arg_reduce(a: Tensor, axis, keepdims, op: str) -> Tensor:
    """argmax/argmin: the index of the largest/smallest element (along ``axis``, or of the
    flattened tensor when ``axis`` is None, as NumPy)."""
    xp = backend.xp_of(a.data)
    if a.size == 0:
        raise ValueError(f"{op}: a tensor of shape {a.shape} has no elements")
    if isinstance(axis, (tuple, list)):
        raise TypeError(f"{op}: axis must be None or an int, got {axis!r}")
    reduce = xp.argmax if op == "argmax" else xp.argmin
    if axis is None:
        out = reduce(xp.reshape(a.data, (-1,)), axis=0)
        return _const(xp.reshape(out, (1,) * a.ndim) if keepdims else out)
    (axis,) = _axes(axis, a.shape, op)
    return _const(reduce(a.data, axis=axis, keepdims=keepdims))


def argmax(a: Tensor, axis=None, keepdims=False) -> Tensor:
    return _arg_reduce(a, axis, keepdims, "argmax")


def argmin(a: Tensor, axis=None, keepdims=False) -> Tensor:
    return _arg_reduce(a, axis, keepdims, "argmin")


def any(a: Tensor, axis=None, keepdims=False) -> Tensor:  # noqa: A001
    axes = _axes(axis, a.shape, "any")
    return _const(backend.xp_of(a.data).any(a.data, axis=axes, keepdims=keepdims))


def all(a: Tensor, axis=None, keepdims=False) -> Tensor:  # noqa: A001
    axes = _axes(axis, a.shape, "all")
    return _const(backend.xp_of(a.data).all(a.data, axis=axes, keepdims=keepdims))

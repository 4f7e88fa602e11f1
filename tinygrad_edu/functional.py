"""Composite and fused operations with PyTorch's names: activations, losses, normalisation,
dropout, embedding, convolution and attention (``import tinygrad_edu.functional as F``).

Several chapters build this module: losses in chapter 4, ``embedding`` in chapter 5, ``conv1d``
in chapter 6, ``scaled_dot_product_attention`` in chapter 9, ``layer_norm``, ``gelu`` and
``dropout`` in chapter 10; chapter 13 explains the fused backward rules.

Two ways to get a gradient live side by side here:

* *composed* functions (``linear``, ``mse_loss``, ``nll_loss`` ...) are built from the primitives of
  ``ops.py``; autograd differentiates them for free;
* *fused* functions (``softmax``, ``log_softmax``, ``cross_entropy``, ``layer_norm``, ``gelu``,
  ``scaled_dot_product_attention``) are ``Function`` subclasses with a hand-written backward rule.
  A fused rule does in a few array operations what the composed graph does in many, and it can be
  numerically careful (``softmax - onehot`` instead of differentiating ``log(exp(x) / sum))``).
  Each is gradient-checked and tested equal to its composed version.

Fused backward rules are written with Tensor operations, so ``backward(create_graph=True)`` can
differentiate them again; when no graph is being recorded they reuse arrays saved by ``forward``.

Read next: ``nn/``.
"""

from __future__ import annotations

import math

from . import backend, ops
from .autograd import Function, is_grad_enabled
from .ops import _const, unbroadcast
from .tensor import Tensor

__all__ = [
    "binary_cross_entropy_with_logits",
    "conv1d",
    "cross_entropy",
    "dropout",
    "embedding",
    "gelu",
    "layer_norm",
    "linear",
    "log_softmax",
    "mse_loss",
    "nll_loss",
    "one_hot",
    "relu",
    "scaled_dot_product_attention",
    "sigmoid",
    "softmax",
    "softplus",
    "tanh",
]


# =================================================================================================
# Helpers
# =================================================================================================


def _check_tensor(op: str, name: str, x) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__}")
    return x


def _check_float(op: str, name: str, x) -> Tensor:
    _check_tensor(op, name, x)
    if not backend.is_floating(x.dtype):
        raise TypeError(f"{op}: {name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def _check_int(op: str, name: str, x) -> Tensor:
    _check_tensor(op, name, x)
    if not backend.is_integer(x.dtype):
        raise TypeError(
            f"{op}: {name} must hold integer indices, got dtype {x.dtype} (shape {x.shape}); "
            "convert with .astype('int64')"
        )
    return x


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _axis(op: str, axis: int, ndim: int) -> int:
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dimensions")
    return axis % ndim if ndim else 0


# =================================================================================================
# Activations
# =================================================================================================


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y = x W^T + b``, the dense layer, with PyTorch's weight layout.

    Shapes: ``x`` (..., in), ``weight`` (out, in), ``bias`` (out,) -> ``y`` (..., out).
    Backward (from ``MatMul`` and ``Add``): ``grad_x = grad_out W``, ``grad_W = grad_out^T x``
    summed over the leading axes, ``grad_b = grad_out`` summed likewise.

    >>> import tinygrad_edu as tg
    >>> x = tg.ones(2, 3)
    >>> linear(x, tg.ones(4, 3), tg.zeros(4)).shape
    (2, 4)
    """
    _check_float("linear", "input", x)
    _check_float("linear", "weight", weight)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out, in), got shape {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} has {x.shape[-1] if x.ndim else 0} features but "
            f"weight of shape {weight.shape} expects {weight.shape[1]} (weight is (out, in))"
        )
    y = x @ weight.mT  # (..., in) @ (in, out) -> (..., out)
    if bias is not None:
        if bias.shape != (weight.shape[0],):
            raise ValueError(
                f"linear: bias of shape {bias.shape} does not match weight {weight.shape}; "
                f"expected ({weight.shape[0]},)"
            )
        y = y + bias
    return y


def relu(x: Tensor) -> Tensor:
    """``max(x, 0)``; see ``ops.ReLU``."""
    return ops.relu(x)


def sigmoid(x: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))``, overflow-safe; see ``ops.Sigmoid``."""
    return ops.sigmoid(x)


def tanh(x: Tensor) -> Tensor:
    """``tanh(x)``; see ``ops.Tanh``."""
    return ops.tanh(x)


class Softplus(Function):
    """``softplus(x) = log(1 + exp(x))``; d/dx = sigmoid(x).

    Computed as ``max(x, 0) + log(1 + exp(-|x|))``: ``exp`` never sees a positive argument, so
    ``x = 1e4`` gives ``1e4`` instead of ``inf``. The max and abs have kinks at 0 but their sum
    does not, which is why this is one Function with the smooth derivative, not a composition.
    """

    def forward(self, x):
        xp = backend.xp_of(x)
        return xp.maximum(x, 0.0) + xp.log(1.0 + xp.exp(-xp.abs(x)))

    def backward(self, grad_out):
        return grad_out * ops.sigmoid(self.inputs[0])


def softplus(x: Tensor) -> Tensor:
    """``log(1 + exp(x))``, stable for large ``|x|``.

    >>> import tinygrad_edu as tg
    >>> [round(v, 4) for v in softplus(tg.tensor([0.0, 1e4])).tolist()]
    [0.6931, 10000.0]
    """
    return Softplus.apply(_check_float("softplus", "input", x))


# ---- GELU and the normal CDF --------------------------------------------------------------------
#
# The array API has no erf, so the normal CDF is computed here. In float64 it uses W. J. Cody's
# rational Chebyshev approximations of erf/erfc ("Rational Chebyshev approximations for the error
# function", Math. Comp. 23, 1969; the coefficients of Netlib's CALERF): the relative error of
# Phi(x) stays below 1e-15 (1 + x^2), which is Phi's own conditioning (measured against math.erfc
# in tests/test_functional.py), so the central differences of a float64 gradient check see the
# true function. A 5-term formula such as Abramowitz-Stegun 7.1.26 (error 1.5e-7) would not do:
# its error wiggles, and the wiggle's slope is larger than the tolerance of a gradient check.
# float32 uses a cheaper single rational function (below), accurate to a few float32 ulps.

# fmt: off
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
          2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
          2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
          1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
          3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
          1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)
# fmt: on
_INV_SQRT_PI = 0.56418958354775628695
_INV_SQRT_2 = 0.70710678118654752440
_INV_SQRT_2PI = 0.39894228040143267794


def _erfc_nonneg(y):
    """``erfc(y)`` for a float64 array ``y >= 0`` (Cody's three intervals, each evaluated on a
    clipped copy of ``y`` so that no interval overflows where it is not used)."""
    xp = backend.xp_of(y)
    # [0, 0.46875]: erf(y) = y P(y^2) / Q(y^2), erfc = 1 - erf
    y1 = xp.minimum(y, 0.5)
    z = y1 * y1
    small = _poly(z, (_ERF_A[4],) + _ERF_A[:4])
    small *= y1
    small /= _poly(z, (1.0,) + _ERF_B)
    small = 1.0 - small
    # (0.46875, 4]: erfc(y) = exp(-y^2) P(y) / Q(y)
    y2 = xp.minimum(y, 4.0)
    ratio = _poly(y2, (_ERF_C[8],) + _ERF_C[:8])
    ratio /= _poly(y2, (1.0,) + _ERF_D)
    # (4, inf): erfc(y) = exp(-y^2) / y (1/sqrt(pi) - R(1/y^2)); skipped when no element is there
    if bool(xp.any(y > 4.0)):
        y3 = xp.maximum(y, 4.0)
        z = 1.0 / (y3 * y3)
        r = _poly(z, (_ERF_P[5],) + _ERF_P[:5])
        r *= z
        r /= _poly(z, (1.0,) + _ERF_Q)
        tail = (_INV_SQRT_PI - r) / y3
        ratio = xp.where(y > 4.0, tail, ratio)
    ratio *= xp.exp(-y * y)
    return xp.where(y <= 0.46875, small, ratio)


def _poly(z, coeffs):
    """Horner's rule ``((c0 z + c1) z + c2) z + ...``, updating one array in place."""
    p = z * coeffs[0]
    p += coeffs[1]
    for c in coeffs[2:]:
        p *= z
        p += c
    return p


# float32 (and lower): a single rational function on [-4, 4], the one Eigen and XLA use for float32
# erf; its absolute error is below 4.2e-7 (a few float32 ulps), erf(+-4) rounds to +-1 exactly.
# It costs a third of Cody's three intervals, and float32 could not show Cody's extra digits.
# fmt: off
_ERF32_ALPHA = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                -1.60960333262415e-02)
_ERF32_BETA = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
               -7.37332916720468e-03, -1.42647390514189e-02)
# fmt: on


def _erf_float32(z):
    xp = backend.xp_of(z)
    z = xp.clip(z, -4.0, 4.0)
    z2 = z * z
    p = _poly(z2, _ERF32_ALPHA)
    p *= z
    p /= _poly(z2, _ERF32_BETA)
    return p


def _normal_cdf_array(x):
    """``Phi(x) = (1 + erf(x / sqrt 2)) / 2``.

    float64: via Cody's erfc of ``|x| / sqrt 2``, so the far left tail keeps its relative accuracy
    (``Phi(-10) = 7.6e-24``, not 0 from ``1 - 1``). float32: the fast rational erf above.
    """
    xp = backend.xp_of(x)
    if backend.dtype_name(x.dtype) != "float64":
        cdf = _erf_float32(x * _INV_SQRT_2)
        cdf *= 0.5
        cdf += 0.5
        return cdf
    half_tail = _erfc_nonneg(xp.abs(x) * _INV_SQRT_2)
    half_tail *= 0.5
    return xp.where(x < 0, half_tail, 1.0 - half_tail)


def _normal_pdf(x: Tensor) -> Tensor:
    """``phi(x) = exp(-x^2 / 2) / sqrt(2 pi)`` with Tensor ops (differentiable)."""
    return ops.exp(x * x * -0.5) * _INV_SQRT_2PI


class NormalCDF(Function):
    """The standard normal CDF ``Phi(x)``; d/dx = ``phi(x)``, the normal density.

    Forward: Cody's erfc in float64 (relative error below 1e-15 (1 + x^2)), a single rational
    erf in float32 (absolute error below 2.2e-7). Backward is the exact density written with
    Tensor ops, so it can be differentiated again.
    """

    def forward(self, x):
        return _normal_cdf_array(x)

    def backward(self, grad_out):
        return grad_out * _normal_pdf(self.inputs[0])


class GELU(Function):
    """Exact GELU ``x Phi(x)``; d/dx = ``Phi(x) + x phi(x)``.

    One fused op instead of ``x * NormalCDF(x)``: forward keeps ``Phi(x)`` for backward, and
    backward is one expression. With ``create_graph`` the rule is rebuilt from ``NormalCDF`` and
    Tensor ops.
    """

    def forward(self, x):
        self.cdf = _normal_cdf_array(x)
        return x * self.cdf

    def backward(self, grad_out):
        x = self.inputs[0]
        if is_grad_enabled():  # recording a graph of the backward pass: differentiable pieces
            return grad_out * (NormalCDF.apply(x) + x * _normal_pdf(x))
        xd = x.data
        xp = backend.xp_of(xd)
        d = xd * xd
        d *= -0.5
        d = xp.exp(d)
        d *= xd
        d *= _INV_SQRT_2PI  # x phi(x)
        d += self.cdf
        d *= grad_out.data  # Phi(x) + x phi(x), times the upstream gradient, in place
        return _const(d)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian Error Linear Unit: ``x Phi(x)``, with ``Phi`` the standard normal CDF.

    ``approximate="none"`` (PyTorch's default) is exact up to round-off: in float64 ``Phi`` comes
    from Cody's erfc (relative error below 1e-15 (1 + x^2)), in float32 from a cheaper rational
    erf (absolute error of ``Phi`` below 2.2e-7, a few float32 ulps).
    ``approximate="tanh"`` is GPT-2's ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
    Backward of the exact form: ``Phi(x) + x phi(x)``; of the tanh form: autograd.

    >>> import tinygrad_edu as tg
    >>> [round(v, 4) for v in gelu(tg.tensor([-1.0, 0.0, 1.0])).tolist()]
    [-0.1587, 0.0, 0.8413]
    """
    _check_float("gelu", "input", x)
    if approximate == "none":
        return GELU.apply(x)
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)
        return x * 0.5 * (ops.tanh(inner) + 1.0)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


# =================================================================================================
# Softmax and log-softmax (fused)
# =================================================================================================


def _softmax_array(x, axis):
    """``exp(x - max) / sum(exp(x - max))`` on arrays.

    Subtracting the row maximum keeps ``exp`` at or below 1 (no overflow at x = 1e4). A row that is
    entirely ``-inf`` (every position masked out) gives zeros instead of ``0/0 = NaN``.
    """
    xp = backend.xp_of(x)
    if x.shape[axis] == 0:  # nothing to normalise (no keys to attend to): an empty result
        return xp.zeros_like(x)
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(m == -math.inf, 0.0, m)
    e = xp.exp(x - m)
    s = xp.sum(e, axis=axis, keepdims=True)
    s = xp.where(s == 0.0, 1.0, s)
    e /= s
    return e


class Softmax(Function):
    """``s = exp(x) / sum(exp(x))`` along ``axis``.

    Backward (the Jacobian ``diag(s) - s s^T`` applied to ``g`` without building it):
    ``grad_x = s * (g - sum(g * s))``.
    """

    def forward(self, x, axis):
        self.axis = axis
        self.out = _softmax_array(x, axis)
        return self.out

    def backward(self, grad_out):
        s = softmax(self.inputs[0], self.axis) if is_grad_enabled() else _const(self.out)
        gs = grad_out * s
        return gs - s * gs.sum(axis=self.axis, keepdims=True), None


class LogSoftmax(Function):
    """``log_softmax(x) = (x - max) - log(sum(exp(x - max)))`` along ``axis``.

    Backward: ``grad_x = g - softmax(x) * sum(g)``; softmax is ``exp`` of the saved output.
    """

    def forward(self, x, axis):
        xp = backend.xp_of(x)
        self.axis = axis
        if x.shape[axis] == 0:  # an empty axis: an empty result (max has no identity)
            self.out = xp.zeros_like(x)
            return self.out
        shifted = x - xp.max(x, axis=axis, keepdims=True)
        lse = xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))
        shifted -= lse
        self.out = shifted
        return self.out

    def backward(self, grad_out):
        if is_grad_enabled():
            s = softmax(self.inputs[0], self.axis)
        else:
            s = _const(backend.xp_of(self.out).exp(self.out))
        return grad_out - s * grad_out.sum(axis=self.axis, keepdims=True), None


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """Softmax along ``axis``: ``exp(x_i - max) / sum_j exp(x_j - max)``.

    Finite for logits of +-1e4. A row that is entirely ``-inf`` gives zeros (PyTorch gives NaN);
    attention relies on this for fully masked rows.

    >>> import tinygrad_edu as tg
    >>> softmax(tg.tensor([0.0, 0.0, 1e4])).numpy().tolist()
    [0.0, 0.0, 1.0]
    """
    _check_float("softmax", "input", x)
    if x.ndim == 0:  # a single logit: probability 1, as PyTorch
        return softmax(x.reshape(1), axis).reshape(())
    return Softmax.apply(x, _axis("softmax", axis, x.ndim))


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``log(softmax(x))`` computed without ever taking the log of a tiny number.

    >>> import tinygrad_edu as tg
    >>> log_softmax(tg.tensor([0.0, 1e4])).numpy().tolist()
    [-10000.0, 0.0]
    """
    _check_float("log_softmax", "input", x)
    if x.ndim == 0:
        return log_softmax(x.reshape(1), axis).reshape(())
    return LogSoftmax.apply(x, _axis("log_softmax", axis, x.ndim))


# =================================================================================================
# Losses
# =================================================================================================


def one_hot(ids: Tensor, num_classes: int = -1) -> Tensor:
    """``out[..., c] = 1`` where ``c = ids[...]``: shape ``ids.shape + (num_classes,)``, int64 as
    PyTorch. ``num_classes=-1`` means ``max(ids) + 1``.

    >>> import tinygrad_edu as tg
    >>> one_hot(tg.tensor([0, 2]), 3).numpy().tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    _check_int("one_hot", "ids", ids)
    xp = backend.xp_of(ids.data)
    if num_classes == -1:
        num_classes = int(xp.max(ids.data)) + 1 if ids.size else 0
    _check_range("one_hot", ids, num_classes, "num_classes")
    # --- exercise 5.1: one-hot encoding ---
    classes = xp.arange(num_classes, dtype=ids.data.dtype)
    return _const(xp.astype(ids.data[..., None] == classes, xp.int64))
    # --- end exercise ---


def _check_range(op: str, ids: Tensor, n: int, what: str, ignore_index=None) -> None:
    """Raise a clear error naming the first id outside ``[0, n)`` (``ignore_index`` allowed)."""
    if ids.size == 0:
        return
    xp = backend.xp_of(ids.data)
    bad = (ids.data < 0) | (ids.data >= n)
    if ignore_index is not None:
        bad = bad & (ids.data != ignore_index)
    if bool(xp.any(bad)):
        too_big = bad & (ids.data >= n)
        if bool(xp.any(too_big)):  # report the largest offender, else the most negative one
            value = int(xp.max(xp.where(too_big, ids.data, 0)))
        else:
            value = int(xp.min(xp.where(bad, ids.data, 0)))
        extra = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
        raise IndexError(
            f"{op}: index {value} is out of range for {what}={n} (valid: 0..{n - 1}{extra})"
        )


def _class_last(op: str, logits: Tensor, target: Tensor):
    """(N, C, d1, ...) logits -> (M, C) and their target (N, d1, ...) -> (M,).

    Returns the 2-D logits, the flat target and the shape of the per-element loss.
    """
    if logits.ndim == 0:
        raise ValueError(f"{op}: input must have a class axis, got shape {logits.shape}")
    if logits.ndim == 1:  # unbatched: (C,) with a scalar target
        if target.ndim != 0:
            raise ValueError(
                f"{op}: unbatched input of shape {logits.shape} needs a scalar target, "
                f"got shape {target.shape}"
            )
        return logits.reshape(1, -1), target.reshape(1), ()
    expected = (logits.shape[0],) + logits.shape[2:]
    if target.shape != expected:
        raise ValueError(
            f"{op}: input of shape {logits.shape} (N, C, ...) needs a target of shape {expected}, "
            f"got {target.shape}"
        )
    C = logits.shape[1]
    if logits.ndim > 2:  # (N, C, d1, ...) -> (N, d1, ..., C): classes last
        logits = logits.transpose((0,) + tuple(range(2, logits.ndim)) + (1,))
    return logits.reshape(-1, C), target.reshape(-1), expected


def nll_loss(
    input: Tensor, target: Tensor, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    """Negative log-likelihood of integer class targets, given log-probabilities.

    ``loss_i = -input[i, target_i]`` (0 where ``target_i == ignore_index``); ``mean`` divides by
    the number of targets that are not ignored. Shapes: ``input`` (N, C) or (N, C, d1, ...),
    ``target`` (N,) or (N, d1, ...).

    >>> import tinygrad_edu as tg
    >>> nll_loss(tg.tensor([[-1.0, -2.0], [-3.0, -4.0]]), tg.tensor([1, 0])).item()
    2.5
    """
    _check_float("nll_loss", "input", input)
    _check_int("nll_loss", "target", target)
    _check_reduction("nll_loss", reduction)
    logp, t, out_shape = _class_last("nll_loss", input, target)
    C = logp.shape[1]
    _check_range("nll_loss", t, C, "classes", ignore_index)
    xp = backend.xp_of(t.data)
    valid = t.data != ignore_index
    # a one-hot mask in the input's dtype (never int64, which would upcast float32 to float64)
    pick = (t.data[:, None] == xp.arange(C, dtype=t.data.dtype)[None, :]) & valid[:, None]
    loss = -(logp * _const(xp.astype(pick, logp.data.dtype))).sum(axis=1)
    if reduction == "none":
        return loss.reshape(out_shape)
    if reduction == "sum":
        return loss.sum()
    count = int(xp.sum(xp.astype(valid, xp.int64)))
    return loss.sum() * (1.0 / count if count else math.nan)


class CrossEntropy(Function):
    """Fused log-softmax + negative log-likelihood for logits (M, C) and integer targets (M,).

    Forward, per row, with ``z = x - max(x)`` (so ``exp`` never overflows), ``lse = log sum exp z``:
    ``nll = lse - z[t]``, smoothed ``(1 - eps) nll + eps (lse - mean(z))``, 0 for ignored rows.

    Backward: ``grad_x = (softmax(x) - q) * w`` with ``q = (1 - eps) onehot(t) + eps / C`` and
    ``w`` = the upstream gradient (divided by the number of counted rows for ``mean``; 0 for ignored
    rows). ``softmax - onehot`` lies in [-1, 1]: no ``1/p`` appears, so logits of +-1e4 are fine.
    """

    def forward(self, x, t, ignore_index, reduction, label_smoothing):
        xp = backend.xp_of(x)
        M, C = x.shape
        self.reduction, self.eps = reduction, label_smoothing
        valid = t != ignore_index
        self.t = xp.where(valid, t, xp.zeros_like(t))  # ignored rows point at class 0, weight 0
        self.valid = xp.astype(valid, x.dtype)
        z = x - xp.max(x, axis=1, keepdims=True)  # (M, C)
        self.e = xp.exp(z)
        self.s = xp.sum(self.e, axis=1, keepdims=True)  # (M, 1)
        lse = xp.log(self.s[:, 0])  # (M,)
        flat = xp.arange(M, dtype=self.t.dtype) * C + self.t
        loss = lse - xp.take(xp.reshape(z, (-1,)), flat)  # z[i, t_i] without a one-hot
        if label_smoothing > 0.0:
            smooth = lse - xp.mean(z, axis=1)
            loss = loss * (1.0 - label_smoothing) + smooth * label_smoothing
        loss *= self.valid
        if reduction == "none":
            return loss
        total = xp.sum(loss)
        if reduction == "sum":
            return total
        self.count = int(xp.sum(xp.astype(valid, xp.int64)))
        return total / self.count if self.count else total * math.nan  # PyTorch: 0/0 = nan

    def backward(self, grad_out):
        x = self.inputs[0]
        xp = backend.xp_of(self.valid)
        C = x.shape[1]
        p = softmax(x, 1) if is_grad_enabled() else _const(self.e / self.s)
        # q: the target distribution, in the logits' dtype (an int64 one-hot would upcast float32)
        onehot = self.t[:, None] == xp.arange(C, dtype=self.t.dtype)[None, :]
        q = xp.astype(onehot, self.valid.dtype)
        if self.eps > 0.0:
            q = q * (1.0 - self.eps) + self.eps / C
        if self.reduction == "none":
            w = grad_out.reshape(-1, 1) * _const(self.valid[:, None])
        else:
            scale = 1.0 if self.reduction == "sum" else (1.0 / self.count if self.count else 0.0)
            w = grad_out * _const(self.valid[:, None] * scale)  # () * (M, 1) -> (M, 1)
        return (p - _const(q)) * w, None, None, None, None


def cross_entropy(
    input: Tensor,
    target: Tensor,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy of logits against integer class targets (PyTorch's formula).

    With ``p = log_softmax(input)`` over the class axis and ``eps = label_smoothing``:
    ``loss_i = (1 - eps) * (-p[i, t_i]) + eps / C * sum_c (-p[i, c])``,
    and 0 where ``t_i == ignore_index``.
    ``mean`` divides by the number of targets not ignored (NaN if all are, as in PyTorch).

    Shapes: ``input`` (N, C), (N, C, d1, ...) or (C,); ``target`` (N,), (N, d1, ...) or ().

    >>> import tinygrad_edu as tg
    >>> round(cross_entropy(tg.tensor([[0.0, 0.0]]), tg.tensor([1])).item(), 4)
    0.6931
    """
    _check_float("cross_entropy", "input", input)
    _check_tensor("cross_entropy", "target", target)
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if backend.is_floating(target.dtype):
        raise TypeError(
            f"cross_entropy: target must hold integer class indices, got dtype {target.dtype} "
            f"(shape {target.shape}); convert with .astype('int64')"
        )
    _check_int("cross_entropy", "target", target)
    logits, t, out_shape = _class_last("cross_entropy", input, target)
    C = logits.shape[1]
    _check_range("cross_entropy", t, C, "classes", ignore_index)
    loss = CrossEntropy.apply(logits, t.data, ignore_index, reduction, label_smoothing)
    return loss.reshape(out_shape) if reduction == "none" else loss


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)^2``, reduced.

    >>> import tinygrad_edu as tg
    >>> mse_loss(tg.tensor([1.0, 2.0]), tg.tensor([0.0, 0.0])).item()
    2.5
    """
    _check_float("mse_loss", "input", input)
    _check_reduction("mse_loss", reduction)
    if input.shape != target.shape:
        raise ValueError(
            f"mse_loss: input shape {input.shape} and target shape {target.shape} differ"
        )
    d = input - target
    return _reduce(d * d, reduction)


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Binary cross-entropy of logits ``x`` against targets ``t`` in [0, 1], stable for large
    ``|x|``: ``loss = (1 - t) x + softplus(-x)`` (= ``-t log s(x) - (1 - t) log(1 - s(x))``).

    With ``pos_weight`` w: ``(1 - t) x + (1 + (w - 1) t) softplus(-x)`` (PyTorch's formula).
    d/dx (no weights) = ``sigmoid(x) - t``.

    >>> import tinygrad_edu as tg
    >>> round(binary_cross_entropy_with_logits(tg.tensor([0.0]), tg.tensor([1.0])).item(), 4)
    0.6931
    """
    _check_float("binary_cross_entropy_with_logits", "input", input)
    _check_float("binary_cross_entropy_with_logits", "target", target)
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    if input.shape != target.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: input shape {input.shape} and target shape "
            f"{target.shape} differ"
        )
    sp = softplus(-input)
    if pos_weight is not None:
        sp = sp * ((pos_weight - 1.0) * target + 1.0)
    loss = (1.0 - target) * input + sp
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


# =================================================================================================
# Normalisation and regularisation
# =================================================================================================


class LayerNorm(Function):
    """Fused layer normalisation over the last ``k`` axes (n elements each).

    Forward: ``xhat = (x - mean) * rstd`` with ``rstd = 1 / sqrt(var + eps)``, ``y = xhat w + b``.
    Backward, with ``gh = grad_out * w`` and means over the normalised axes:
    ``grad_x = rstd * (gh - mean(gh) - xhat * mean(gh * xhat))``,
    ``grad_w = sum(grad_out * xhat)``, ``grad_b = sum(grad_out)`` over the leading axes.
    Three terms instead of the composed graph's dozen nodes; only ``xhat`` and ``rstd`` are kept.
    """

    def forward(self, x, weight, bias, k, eps):
        xp = backend.xp_of(x)
        self.axes = tuple(range(x.ndim - k, x.ndim))
        self.eps = eps
        xc = x - xp.mean(x, axis=self.axes, keepdims=True)
        var = xp.mean(xc * xc, axis=self.axes, keepdims=True)
        self.rstd = 1.0 / xp.sqrt(var + eps)
        xc *= self.rstd
        self.xhat = xc
        y = xc * weight if weight is not None else xc
        return y + bias if bias is not None else y

    def backward(self, grad_out):
        x, weight = self.inputs[:2]
        need_x, need_w, need_b = self.needs_input_grad[:3]
        axes = self.axes
        if is_grad_enabled():  # rebuild xhat and rstd from x so the rule can be differentiated
            xc = x - x.mean(axis=axes, keepdims=True)
            rstd = 1.0 / ((xc * xc).mean(axis=axes, keepdims=True) + self.eps).sqrt()
            xhat = xc * rstd
        else:
            xhat, rstd = _const(self.xhat), _const(self.rstd)
        lead = tuple(range(x.ndim - len(axes)))
        grad_x = grad_w = grad_b = None
        if need_x:
            # --- exercise 10.1: LayerNorm backward ---
            gh = grad_out * weight if weight is not None else grad_out
            mean_gh = gh.mean(axis=axes, keepdims=True)
            mean_ghx = (gh * xhat).mean(axis=axes, keepdims=True)
            grad_x = rstd * (gh - mean_gh - xhat * mean_ghx)
            # --- end exercise ---
        if need_w:
            grad_w = (grad_out * xhat).sum(axis=lead)
        if need_b:
            grad_b = grad_out.sum(axis=lead)
        return grad_x, grad_w, grad_b, None, None


def layer_norm(
    x: Tensor,
    normalized_shape,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` axes, then scale and shift.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` (biased variance, as PyTorch).

    >>> import tinygrad_edu as tg
    >>> layer_norm(tg.tensor([[1.0, 3.0]]), (2,)).numpy().round(3).tolist()
    [[-1.0, 1.0]]
    """
    _check_float("layer_norm", "input", x)
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if k == 0 or x.shape[x.ndim - k :] != normalized_shape or x.ndim < k:
        raise ValueError(
            f"layer_norm: input of shape {x.shape} does not end with normalized_shape "
            f"{normalized_shape}"
        )
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != normalized_shape:
            raise ValueError(
                f"layer_norm: {name} has shape {p.shape}, expected normalized_shape "
                f"{normalized_shape}"
            )
    return LayerNorm.apply(x, weight, bias, k, eps)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by ``1/(1-p)``
    so the expected value is unchanged and evaluation needs no rescaling.

    The mask comes from the framework's generator (``tg.manual_seed``). Backward multiplies the
    gradient by the same mask. ``training=False`` or ``p=0`` returns ``x`` itself.

    >>> import tinygrad_edu as tg
    >>> dropout(tg.ones(4), p=0.5, training=False).numpy().tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    _check_float("dropout", "input", x)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    xp = backend.xp_of(x.data)
    if p == 1.0:
        return x * _const(xp.zeros_like(x.data))
    keep = backend.rand(x.shape, x.dtype, x.device) >= p
    return x * _const(xp.astype(keep, x.data.dtype) * (1.0 / (1.0 - p)))


# =================================================================================================
# Embedding
# =================================================================================================


class Embedding(Function):
    """Row lookup ``out[m] = weight[ids[m]]`` for flat ids (M,) and a table (V, D) -> (M, D).

    Backward: ``grad_weight[v] = sum of grad_out[m] over every m with ids[m] = v`` (a scatter-add:
    a repeated id accumulates). Written as ``onehot(ids)^T @ grad_out`` when the (V, M) one-hot
    matrix is small (one BLAS call, much faster than NumPy's ``add.at`` for a character vocabulary),
    else with the engine's scatter-add ``ops.IndexAdd``. Both are Tensor ops (create_graph works).
    With ``padding_idx`` the positions that looked up that row send it no gradient: its
    ``grad_weight`` row is 0 (PyTorch's ``padding_idx``).
    """

    ONEHOT_LIMIT = 1 << 22  # V * M elements (16 MiB of float32) at most for the one-hot route

    def forward(self, weight, ids, padding_idx=None):
        self.ids = ids
        self.padding_idx = padding_idx
        self.onehot = weight.shape[0] * ids.shape[0] <= self.ONEHOT_LIMIT
        return backend.xp_of(weight).take(weight, ids, axis=0)

    def backward(self, grad_out):
        xp = backend.xp_of(self.ids)
        V, D = self.inputs[0].shape
        if self.padding_idx is not None:
            # the padding row gets no gradient: zero the rows of grad_out that looked it up
            keep = xp.reshape(self.ids != self.padding_idx, (-1, 1))  # (M, 1)
            grad_out = grad_out * _const(xp.astype(keep, grad_out.data.dtype))
        if self.onehot:
            onehot_t = xp.arange(V, dtype=self.ids.dtype)[:, None] == self.ids[None, :]  # (V, M)
            return _const(xp.astype(onehot_t, grad_out.data.dtype)) @ grad_out, None
        return ops.IndexAdd.apply(grad_out, (V, D), (self.ids, Ellipsis)), None


def embedding(ids: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Look up rows of ``weight``: ``out[..., :] = weight[ids[...], :]``.

    Shapes: ``ids`` integers of any shape, ``weight`` (num_embeddings, embedding_dim) ->
    ``ids.shape + (embedding_dim,)``. Backward is a scatter-add of ``grad_out`` into the rows of
    ``grad_weight``: an id that appears twice receives both gradients (see ``Embedding``).
    ``padding_idx`` (an id, negative counts from the end): that row is looked up as any other
    but gets no gradient, as in PyTorch (chapter 15: the padding token stays put).

    >>> import tinygrad_edu as tg
    >>> embedding(tg.tensor([[2, 0]]), tg.arange(6).astype("float32").reshape(3, 2)).shape
    (1, 2, 2)
    """
    _check_tensor("embedding", "ids", ids)
    _check_float("embedding", "weight", weight)
    if not backend.is_integer(ids.dtype):
        raise TypeError(
            f"embedding: ids must be integers, got dtype {ids.dtype} (shape {ids.shape}); "
            "convert with .astype('int64')"
        )
    if weight.ndim != 2:
        raise ValueError(
            f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got {weight.shape}"
        )
    n = weight.shape[0]
    if ids.size:
        xp = backend.xp_of(ids.data)
        lo, hi = int(xp.min(ids.data)), int(xp.max(ids.data))
        if lo < 0:
            raise IndexError(
                f"embedding: id {lo} is negative; ids must be in 0..{n - 1} for a table of "
                f"{n} embeddings"
            )
        if hi >= n:
            raise IndexError(
                f"embedding: id {hi} is out of range for a table of {n} embeddings "
                f"(valid ids: 0..{n - 1})"
            )
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise IndexError(
                f"embedding: padding_idx {padding_idx} is out of range for a table of {n} "
                f"embeddings (valid: -{n}..{n - 1})"
            )
        padding_idx = padding_idx % n
    flat = ids.data if ids.ndim == 1 else backend.xp_of(ids.data).reshape(ids.data, (-1,))
    out = Embedding.apply(weight, flat, padding_idx=padding_idx)  # (M, D)
    return out.reshape(ids.shape + (weight.shape[1],))  # -> ids.shape + (D,)


# =================================================================================================
# Conv1d: unfold (im2col) + one matmul
# =================================================================================================


def _conv_out_len(L, K, stride, padding, dilation):
    return (L + 2 * padding - dilation * (K - 1) - 1) // stride + 1


class Unfold1d(Function):
    """Gather every receptive field into a row ("im2col"):
    ``(N, C, L) -> (N, L_out, C*K)``, ``cols[n, i, c*K + k] = xpad[n, c, i*stride + k*dilation]``.

    It is linear, so its backward is its adjoint ``Fold1d`` (scatter the rows back, adding where
    windows overlap), and ``Fold1d``'s backward is ``Unfold1d`` again: second derivatives work.
    """

    def forward(self, x, K, stride, padding, dilation):
        xp = backend.xp_of(x)
        self.args = (x.shape[1], x.shape[2], K, stride, padding, dilation)
        N, C, _ = x.shape
        if padding:
            z = xp.zeros((N, C, padding), dtype=x.dtype)
            x = xp.concat([z, x, z], axis=-1)  # portable zero padding
        w = backend.sliding_windows(x, K, stride, dilation)  # (N, C, L_out, K)
        w = xp.permute_dims(w, (0, 2, 1, 3))  # -> (N, L_out, C, K)
        return xp.reshape(w, (N, w.shape[1], C * K))  # -> (N, L_out, C*K), one copy

    def backward(self, grad_out):
        return (Fold1d.apply(grad_out, *self.args),) + (None,) * 4


class Fold1d(Function):
    """The adjoint of ``Unfold1d``: ``(N, L_out, C*K) -> (N, C, L)``, summing overlapping windows.

    A loop over the K kernel taps (not over positions): tap k of every window lands on the strided
    slice ``k*dilation :: stride`` of the padded input.
    """

    def forward(self, cols, C, L, K, stride, padding, dilation):
        xp = backend.xp_of(cols)
        self.args = (K, stride, padding, dilation)
        # --- exercise 6.1: fold, the backward of unfold ---
        N, L_out, _ = cols.shape
        cols = xp.reshape(cols, (N, L_out, C, K))
        out = xp.zeros((N, C, L + 2 * padding), dtype=cols.dtype)
        span = stride * (L_out - 1) + 1
        for k in range(K):
            sl = slice(k * dilation, k * dilation + span, stride)
            out[:, :, sl] += xp.permute_dims(cols[:, :, :, k], (0, 2, 1))  # (N, C, L_out)
        return out[:, :, padding : padding + L] if padding else out
        # --- end exercise ---

    def backward(self, grad_out):
        return (Unfold1d.apply(grad_out, *self.args),) + (None,) * 6


def conv1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
) -> Tensor:
    """1-D convolution (cross-correlation, as every framework): input (N, C_in, L), weight
    (C_out, C_in, K), bias (C_out,) -> (N, C_out, L_out),
    ``L_out = (L + 2 padding - dilation (K - 1) - 1) // stride + 1``.

    ``y[n, o, i] = b[o] + sum_{c,k} W[o, c, k] * xpad[n, c, i*stride + k*dilation]``, computed as
    ``unfold(x) @ W.reshape(C_out, C_in*K)^T``: one matmul, no loop over positions.
    ``padding`` may also be ``"valid"`` (0) or ``"same"`` (stride 1 only).

    >>> import tinygrad_edu as tg
    >>> conv1d(tg.ones(2, 3, 10), tg.ones(4, 3, 5), padding=2).shape
    (2, 4, 10)
    """
    _check_float("conv1d", "input", x)
    _check_float("conv1d", "weight", weight)
    if weight.ndim != 3:
        raise ValueError(f"conv1d: weight must be 3-D (C_out, C_in, K), got shape {weight.shape}")
    if x.ndim != 3:
        raise ValueError(f"conv1d: input must be 3-D (N, C_in, L), got shape {x.shape}")
    C_out, C_in, K = weight.shape
    if x.shape[1] != C_in:
        raise ValueError(
            f"conv1d: input of shape {x.shape} has {x.shape[1]} channels but weight of shape "
            f"{weight.shape} expects {C_in} (weight is (C_out, C_in, K))"
        )
    if padding == "valid":
        padding = 0
    elif padding == "same":
        if stride != 1:
            raise ValueError("conv1d: padding='same' needs stride=1")
        if dilation * (K - 1) % 2:
            raise ValueError(
                f"conv1d: padding='same' needs an even total padding, got dilation*(K-1) = "
                f"{dilation * (K - 1)}"
            )
        padding = dilation * (K - 1) // 2
    for name, v, lo in (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
        if not isinstance(v, int) or v < lo:
            raise ValueError(f"conv1d: {name} must be an integer >= {lo}, got {v!r}")
    N, _, L = x.shape
    L_out = _conv_out_len(L, K, stride, padding, dilation)
    if L_out < 1:
        raise ValueError(
            f"conv1d: input length {L} (padding {padding}) is shorter than the kernel's span "
            f"{dilation * (K - 1) + 1}"
        )
    if bias is not None and bias.shape != (C_out,):
        raise ValueError(f"conv1d: bias has shape {bias.shape}, expected ({C_out},)")
    cols = Unfold1d.apply(x, K, stride, padding, dilation)  # (N, L_out, C_in*K)
    cols = cols.reshape(N * L_out, C_in * K)
    y = cols @ weight.reshape(C_out, C_in * K).mT  # (N*L_out, C_in*K) @ (C_in*K, C_out)
    if bias is not None:
        y = y + bias
    return y.reshape(N, L_out, C_out).transpose(0, 2, 1)  # -> (N, C_out, L_out)


# =================================================================================================
# Attention
# =================================================================================================


def _attention_scores(q, k, additive, keep, scale, xp):
    """``q k^T * scale (+ additive)``, masked positions set to -inf; on arrays."""
    scores = xp.matmul(q, k.mT)  # (..., L, E) @ (..., E, S) -> (..., L, S)
    scores *= scale
    if additive is not None:
        scores = scores + additive
    if keep is not None:
        scores = xp.where(keep, scores, -math.inf)
    return scores


class ScaledDotProductAttention(Function):
    """Fused attention ``out = dropout(softmax(q k^T * scale + mask)) v``.

    Forward keeps only the attention weights ``P`` (..., L, S) (and the dropout mask).
    Backward, with ``D`` the scaled dropout mask (1 without dropout) and ``g = grad_out``:
    ``grad_v = (P D)^T g``; ``dP = (g v^T) D``; scores ``dS = P * (dP - sum_j dP * P)`` (the
    softmax rule); ``grad_q = dS k * scale``, ``grad_k = dS^T q * scale``, ``grad_mask = dS``.
    Masked positions have ``P = 0``, so they receive no gradient; a fully masked row has ``P = 0``
    everywhere, giving a zero output and zero gradients.
    """

    def forward(self, q, k, v, additive, keep, scale, dropout_p):
        xp = backend.xp_of(q)
        self.keep, self.scale = keep, scale
        self.P = _softmax_array(_attention_scores(q, k, additive, keep, scale, xp), -1)
        self.drop = None
        P = self.P
        if dropout_p > 0.0:
            kept = backend.rand(P.shape, backend.dtype_name(P.dtype), backend.device_of(P))
            self.drop = xp.astype(kept >= dropout_p, P.dtype) * (1.0 / (1.0 - dropout_p))
            P = P * self.drop
        return xp.matmul(P, v)  # (..., L, S) @ (..., S, Ev) -> (..., L, Ev)

    def backward(self, grad_out):
        q, k, v, additive = self.inputs
        need_q, need_k, need_v, need_mask = self.needs_input_grad
        if is_grad_enabled():  # rebuild P with Tensor ops so the rule can be differentiated
            scores = (q @ k.mT) * self.scale
            if additive is not None:
                scores = scores + additive
            if self.keep is not None:
                scores = ops.where(_const(self.keep), scores, -math.inf)
            P = softmax(scores, -1)
        else:
            P = _const(self.P)
        drop = _const(self.drop) if self.drop is not None else None
        grad_q = grad_k = grad_v = grad_mask = None
        if need_v:
            Pd = P * drop if drop is not None else P
            grad_v = unbroadcast(Pd.mT @ grad_out, v.shape)  # (..., S, L) @ (..., L, Ev)
        if need_q or need_k or need_mask:
            # --- exercise 9.1: attention backward ---
            dP = grad_out @ v.mT  # (..., L, Ev) @ (..., Ev, S) -> (..., L, S)
            if drop is not None:
                dP = dP * drop
            dS = P * (dP - (dP * P).sum(axis=-1, keepdims=True))
            if need_mask:
                grad_mask = unbroadcast(dS, additive.shape)
            dS = dS * self.scale
            if need_q:
                grad_q = unbroadcast(dS @ k, q.shape)  # (..., L, S) @ (..., S, E)
            if need_k:
                grad_k = unbroadcast(dS.mT @ q, k.shape)  # (..., S, L) @ (..., L, E)
            # --- end exercise ---
        return grad_q, grad_k, grad_v, grad_mask


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> Tensor:
    """``softmax(q k^T * scale + mask) v`` with PyTorch's semantics.

    Shapes: ``query`` (..., L, E), ``key`` (..., S, E), ``value`` (..., S, Ev) -> (..., L, Ev);
    leading axes broadcast. ``scale`` defaults to ``1/sqrt(E)``. ``attn_mask`` broadcasts to
    (..., L, S): a boolean mask (True = may attend) or a float mask added to the scores.
    ``is_causal=True`` lets query i attend to keys ``0..i`` (and cannot be combined with a mask).
    ``dropout_p`` drops attention weights (the caller sets it to 0 in evaluation).

    A query row whose keys are *all* masked out gets an output of zeros and a zero gradient, not
    NaN (PyTorch returns NaN there).

    >>> import tinygrad_edu as tg
    >>> q = tg.ones(2, 4, 8)
    >>> scaled_dot_product_attention(q, q, tg.ones(2, 4, 3), is_causal=True).shape
    (2, 4, 3)
    """
    op = "scaled_dot_product_attention"
    for name, t in (("query", query), ("key", key), ("value", value)):
        _check_float(op, name, t)
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} must have at least 2 dimensions, got {t.shape}")
    L, E = query.shape[-2:]
    S = key.shape[-2]
    if key.shape[-1] != E:
        raise ValueError(
            f"{op}: query of shape {query.shape} and key of shape {key.shape} must have the same "
            f"last dimension (E)"
        )
    if value.shape[-2] != S:
        raise ValueError(
            f"{op}: key of shape {key.shape} and value of shape {value.shape} must have the same "
            "number of positions (S, second-to-last axis)"
        )
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1), got {dropout_p}")
    if is_causal and attn_mask is not None:
        raise ValueError(f"{op}: pass either attn_mask or is_causal=True, not both")
    if scale is None:
        scale = 1.0 / math.sqrt(E)
    if (
        ops._broadcast_shape(query.shape[:-2], key.shape[:-2]) is None
        or ops._broadcast_shape(key.shape[:-2], value.shape[:-2]) is None
    ):
        raise ValueError(
            f"{op}: the leading (batch) axes of query {query.shape}, key {key.shape} and value "
            f"{value.shape} cannot be broadcast together"
        )
    xp = backend.xp_of(query.data)
    keep = additive = None
    if is_causal:
        keep = xp.arange(L)[:, None] >= xp.arange(S)[None, :]  # (L, S), query i sees keys <= i
    elif attn_mask is not None:
        _check_tensor(op, "attn_mask", attn_mask)
        batch = ops._broadcast_shape(query.shape[:-2], key.shape[:-2])
        scores_shape = ops._broadcast_shape(batch, value.shape[:-2]) + (L, S)
        if ops._broadcast_shape(attn_mask.shape, scores_shape) != scores_shape:
            raise ValueError(
                f"{op}: attn_mask of shape {attn_mask.shape} does not broadcast to the scores' "
                f"shape {scores_shape} (..., L, S)"
            )
        if attn_mask.dtype == "bool":
            keep = attn_mask.data
        elif backend.is_floating(attn_mask.dtype):
            # in the scores' dtype: a float64 mask must not turn float32 attention into float64
            additive = attn_mask.astype(query.dtype)
        else:
            raise TypeError(f"{op}: attn_mask must be bool or float, got dtype {attn_mask.dtype}")
    return ScaledDotProductAttention.apply(
        query, key, value, additive, keep=keep, scale=scale, dropout_p=dropout_p
    )

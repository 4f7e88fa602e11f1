"""Elementwise activations (chapter 3; ``gelu`` in chapter 10): ``relu``, ``sigmoid``, ``tanh``
(the primitives of ``ops.py`` under their PyTorch names), and two fused Functions: ``softplus``,
stable for large ``|x|``, and the exact ``gelu`` with the normal CDF it needs.

``softplus_composed`` is ``softplus`` from primitive ops, ``gelu_composed`` is ``gelu`` built from
``NormalCDFFunction`` and a multiplication; the tests check that each pair agrees in value and
gradient.
"""

from __future__ import annotations

import math

from .. import backend, ops
from ..autograd import Function, is_grad_enabled
from ..ops import _const
from ..tensor import Tensor
from ._checks import check_float


def relu(x: Tensor) -> Tensor:
    """``max(x, 0)``; see ``ops.ReLUFunction``."""
    return ops.relu(x)


def sigmoid(x: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))``, overflow-safe; see ``ops.SigmoidFunction``."""
    return ops.sigmoid(x)


def tanh(x: Tensor) -> Tensor:
    """``tanh(x)``; see ``ops.TanhFunction``."""
    return ops.tanh(x)


class SoftplusFunction(Function):
    """``softplus(x) = log(1 + exp(x))`` as one graph node (``softplus_composed`` records seven).

    Computed as ``max(x, 0) + log(1 + exp(-|x|))``: ``exp`` never sees a positive argument, so
    ``x = 1e4`` gives ``1e4`` instead of ``inf``. The max and abs have kinks at 0 but their sum
    does not: the derivative is smooth, and the backward writes it in one step (exercise 13.1),
    stable for any ``x``.
    """

    def forward(self, x):
        xp = backend.xp_of(x)
        return xp.maximum(x, 0.0) + xp.log(1.0 + xp.exp(-xp.abs(x)))

    def backward(self, grad_out):
        # --- exercise 13.1: the fused softplus backward ---
        grad_x = grad_out * ops.sigmoid(self.inputs[0])
        # --- end exercise ---
        return grad_x


def softplus(x: Tensor) -> Tensor:
    """``log(1 + exp(x))``, stable for large ``|x|``.

    >>> import tinygrad_edu as tg
    >>> [round(v, 4) for v in softplus(tg.tensor([0.0, 1e4])).tolist()]
    [0.6931, 10000.0]
    """
    return SoftplusFunction.apply(check_float("softplus", "input", x))


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


# Phi needs erf / 2: halving the numerator's coefficients gives it directly, bit for bit the same
# (a power of two changes no rounding), one pass fewer than multiplying erf by 0.5: the GELU
# forward of (768, 512) float32 took 1.67 ms against 1.71 ms (minima of 60, one thread).
_HALF_ERF32_ALPHA = tuple(0.5 * a for a in _ERF32_ALPHA)


def _half_erf_float32(z):
    """``erf(z) / 2`` for a float32 array (the rational function above)."""
    xp = backend.xp_of(z)
    z = xp.clip(z, -4.0, 4.0)
    z2 = z * z
    p = _poly(z2, _HALF_ERF32_ALPHA)
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
        cdf = _half_erf_float32(x * _INV_SQRT_2)
        cdf += 0.5
        return cdf
    half_tail = _erfc_nonneg(xp.abs(x) * _INV_SQRT_2)
    half_tail *= 0.5
    return xp.where(x < 0, half_tail, 1.0 - half_tail)


def _normal_pdf(x: Tensor) -> Tensor:
    """``phi(x) = exp(-x^2 / 2) / sqrt(2 pi)`` with Tensor ops (differentiable)."""
    return ops.exp(x * x * -0.5) * _INV_SQRT_2PI


class NormalCDFFunction(Function):
    """The standard normal CDF ``Phi(x)``; d/dx = ``phi(x)``, the normal density.

    Forward: Cody's erfc in float64 (relative error below 1e-15 (1 + x^2)), a single rational
    erf in float32 (absolute error below 2.2e-7). Backward is the exact density written with
    Tensor ops, so it can be differentiated again.
    """

    def forward(self, x):
        return _normal_cdf_array(x)

    def backward(self, grad_out):
        return grad_out * _normal_pdf(self.inputs[0])


# Elementwise work in pieces that stay in the CPU's cache. The exact GELU makes ~30 passes over its
# input (the rational erf); over B3's (768, 512) activations each pass streams 1.5 MB from memory,
# in 64K-element pieces (256 KiB) the passes after the first hit the cache. Measured on one thread:
# forward 4.7 -> 1.9 ms, backward 1.07 -> 0.75 ms per call (chapter 13).
_CHUNK = 1 << 16


def _chunks(n: int):
    """``slice`` objects cutting ``range(n)`` into pieces of ``_CHUNK`` elements."""
    return [slice(i, min(i + _CHUNK, n)) for i in range(0, n, _CHUNK)]


class GELUFunction(Function):
    """Exact GELU ``x Phi(x)``, with ``Phi`` the standard normal CDF.

    Its derivative, by the product rule, is ``Phi(x) + x phi(x)``, ``phi`` the normal density.

    One fused op instead of ``x * Phi(x)`` (``gelu_composed``): forward keeps ``Phi(x)`` for
    backward, and backward is one expression. With ``create_graph`` the rule is rebuilt from
    ``NormalCDFFunction`` and Tensor ops. Both directions run over the flattened array in
    cache-sized pieces (``_chunks``), each piece computed in place.
    """

    def forward(self, x):
        xp = backend.xp_of(x)
        flat = xp.reshape(x, (-1,))
        # Phi(x) is kept for backward only when a graph is recorded (not in evaluation)
        keep = is_grad_enabled()
        y = xp.empty_like(flat)
        self.cdf = xp.empty_like(flat) if keep else None
        for piece in _chunks(flat.shape[0]):
            cdf = _normal_cdf_array(flat[piece])
            if keep:
                self.cdf[piece] = cdf
            cdf *= flat[piece]
            y[piece] = cdf  # x Phi(x)
        if keep:
            self.cdf = xp.reshape(self.cdf, x.shape)
        return xp.reshape(y, x.shape)

    def backward(self, grad_out):
        # --- exercise 10.2: GELU backward ---
        x = self.inputs[0]
        if is_grad_enabled():  # recording a graph of the backward pass: differentiable pieces
            grad_x = grad_out * (NormalCDFFunction.apply(x) + x * _normal_pdf(x))
        else:  # on the raw arrays, in cache-sized pieces, each computed in place
            xp = backend.xp_of(x.data)
            flat, cdf = xp.reshape(x.data, (-1,)), xp.reshape(self.cdf, (-1,))
            g = xp.reshape(grad_out.data, (-1,))
            grad = xp.empty_like(flat)
            for piece in _chunks(flat.shape[0]):
                xs = flat[piece]
                d = xs * xs
                d *= -0.5
                d = xp.exp(d)
                d *= xs
                d *= _INV_SQRT_2PI  # x phi(x)
                d += cdf[piece]
                d *= g[piece]  # Phi(x) + x phi(x), times the upstream gradient
                grad[piece] = d
            grad_x = _const(xp.reshape(grad, x.shape))
        # --- end exercise ---
        return grad_x


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
    check_float("gelu", "input", x)
    if approximate == "none":
        return GELUFunction.apply(x)
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)
        return x * 0.5 * (ops.tanh(inner) + 1.0)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def softplus_composed(x: Tensor) -> Tensor:
    """``softplus`` from primitive ops, ``maximum(x, 0) + log(1 + exp(-|x|))``: seven graph
    nodes, differentiated by autograd (the reference the fused rule is tested against).

    >>> import tinygrad_edu as tg
    >>> [round(v, 4) for v in softplus_composed(tg.tensor([0.0, 1e4])).tolist()]
    [0.6931, 10000.0]
    """
    check_float("softplus_composed", "input", x)
    return ops.maximum(x, 0.0) + ((-x.abs()).exp() + 1.0).log()


def gelu_composed(x: Tensor) -> Tensor:
    """The exact ``gelu`` as two graph nodes, ``x * Phi(x)``: ``NormalCDFFunction`` and a multiply.

    The array API has no ``erf``, so ``Phi`` itself must be a Function; the product rule of the
    multiply then gives ``Phi(x) + x phi(x)``, what ``GELUFunction`` writes out in one step.

    >>> import tinygrad_edu as tg
    >>> x = tg.tensor([-1.0, 0.0, 1.0])
    >>> bool(((gelu(x) - gelu_composed(x)).abs() < 1e-6).all())
    True
    """
    check_float("gelu_composed", "input", x)
    return x * NormalCDFFunction.apply(x)

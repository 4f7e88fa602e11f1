"""``softmax`` and ``log_softmax`` (chapter 4), fused, beside their composed versions.

The fused Functions compute on arrays and write the backward out (``s * (g - sum(g s))``); the
``*_composed`` versions are the same formulas from ``ops.py`` primitives, differentiated by
autograd. The tests check that both agree in value and gradient.
"""

from __future__ import annotations

import math

from .. import backend, ops
from ..autograd import Function, is_grad_enabled
from ..ops import _const
from ..tensor import Tensor
from ._checks import check_axis, check_float


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


class SoftmaxFunction(Function):
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


class LogSoftmaxFunction(Function):
    """``log_softmax(x) = (x - max) - log(sum(exp(x - max)))`` along ``axis``.

    Backward: ``grad_x = g - softmax(x) * sum(g)``; softmax is ``exp`` of the saved output.
    """

    def forward(self, x, axis):
        xp = backend.xp_of(x)
        self.axis = axis
        if x.shape[axis] == 0:  # an empty axis: an empty result (max has no identity)
            self.out = xp.zeros_like(x)
            return self.out
        # --- exercise 4.1: stable log-softmax ---
        shifted = x - xp.max(x, axis=axis, keepdims=True)
        lse = xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))
        shifted -= lse
        self.out = shifted
        return self.out
        # --- end exercise ---

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
    check_float("softmax", "input", x)
    if x.ndim == 0:  # a single logit: probability 1, as PyTorch
        return softmax(x.reshape(1), axis).reshape(())
    return SoftmaxFunction.apply(x, check_axis("softmax", axis, x.ndim))


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``log(softmax(x))`` computed without ever taking the log of a tiny number.

    >>> import tinygrad_edu as tg
    >>> log_softmax(tg.tensor([0.0, 1e4])).numpy().tolist()
    [-10000.0, 0.0]
    """
    check_float("log_softmax", "input", x)
    if x.ndim == 0:
        return log_softmax(x.reshape(1), axis).reshape(())
    return LogSoftmaxFunction.apply(x, check_axis("log_softmax", axis, x.ndim))


def softmax_composed(x: Tensor, axis: int = -1) -> Tensor:
    """``softmax`` from primitive ops (the reference: several graph nodes instead of one).

    The shift by the row maximum changes nothing mathematically, so it is a constant (detached);
    a row that is entirely ``-inf`` gives zeros, as in ``softmax``.

    >>> import tinygrad_edu as tg
    >>> softmax_composed(tg.tensor([0.0, 0.0, 1e4])).numpy().tolist()
    [0.0, 0.0, 1.0]
    """
    check_float("softmax_composed", "input", x)
    if x.ndim == 0:
        return softmax_composed(x.reshape(1), axis).reshape(())
    axis = check_axis("softmax_composed", axis, x.ndim)
    m = x.max(axis=axis, keepdims=True).detach()
    e = (x - ops.where(m == -math.inf, 0.0, m)).exp()
    s = e.sum(axis=axis, keepdims=True)
    return e / ops.where(s == 0.0, 1.0, s)


def log_softmax_composed(x: Tensor, axis: int = -1) -> Tensor:
    """``log_softmax`` from primitive ops: ``z - log(sum(exp(z)))`` with ``z = x - max(x)``.

    >>> import tinygrad_edu as tg
    >>> log_softmax_composed(tg.tensor([0.0, 1e4])).numpy().tolist()
    [-10000.0, 0.0]
    """
    check_float("log_softmax_composed", "input", x)
    if x.ndim == 0:
        return log_softmax_composed(x.reshape(1), axis).reshape(())
    axis = check_axis("log_softmax_composed", axis, x.ndim)
    z = x - x.max(axis=axis, keepdims=True).detach()
    return z - z.exp().sum(axis=axis, keepdims=True).log()

"""Losses (chapter 4): ``nll_loss``, ``cross_entropy`` (fused), ``mse_loss``,
``binary_cross_entropy_with_logits``, with PyTorch's names, shapes and reductions.

``cross_entropy`` is one fused Function, ``CrossEntropyFunction``: its backward is
``softmax - onehot``, which stays in [-1, 1] at logits of +-1e4. ``cross_entropy_composed`` is the
same loss from ``log_softmax_composed`` and ``nll_loss``; the tests check that both agree.
"""

from __future__ import annotations

import math

from .. import backend, ops
from ..autograd import Function, is_grad_enabled
from ..ops import _const
from ..tensor import Tensor
from ._checks import (
    check_float,
    check_int,
    check_int_arg,
    check_range,
    check_reduction,
    check_same_dtype,
    check_tensor,
    is_number,
)
from .activations import softplus
from .softmax import log_softmax, log_softmax_composed, softmax


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _mean_over_targets(loss: Tensor, valid) -> Tensor:
    """``sum(loss) / count`` with ``count`` the targets not ignored."""
    xp = backend.xp_of(valid)
    return _mean_over(loss, int(xp.sum(xp.astype(valid, xp.int64))))


def _mean_over(loss: Tensor, total) -> Tensor:
    """``sum(loss) / total``, ``total`` a constant (the count of targets, or their summed class
    weights). With a total of 0 the loss is NaN (0 / 0) and the gradient zero, as PyTorch: the NaN
    is added as a constant, where ``sum * nan`` would send NaN back into every logit."""
    if total == 0:
        return loss.sum() * 0.0 + math.nan
    return loss.sum() * (1.0 / total)


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
    input: Tensor,
    target: Tensor,
    ignore_index: int = -100,
    reduction: str = "mean",
    *,
    weight: Tensor | None = None,
) -> Tensor:
    """Negative log-likelihood of integer class targets, given log-probabilities.

    ``loss_i = -input[i, target_i]`` (0 where ``target_i == ignore_index``); ``mean`` divides by
    the number of targets that are not ignored. Shapes: ``input`` (N, C) or (N, C, d1, ...),
    ``target`` (N,) or (N, d1, ...). ``weight`` (C,), a rescaling of each class as in PyTorch:
    ``loss_i = -weight[t_i] input[i, t_i]``, and ``mean`` divides by the sum of ``weight[t_i]``.

    >>> import tinygrad_edu as tg
    >>> nll_loss(tg.tensor([[-1.0, -2.0], [-3.0, -4.0]]), tg.tensor([1, 0])).item()
    2.5
    """
    check_float("nll_loss", "input", input)
    check_int("nll_loss", "target", target)
    check_reduction("nll_loss", reduction)
    check_int_arg("nll_loss", "ignore_index", ignore_index)
    logp, t, out_shape = _class_last("nll_loss", input, target)
    C = logp.shape[1]
    check_range("nll_loss", t, C, "classes", ignore_index)
    weight = _check_class_weight("nll_loss", weight, logp)
    loss, total, _ = _nll_rows(logp, t, ignore_index, weight)
    if reduction == "none":
        return loss.reshape(out_shape)
    if reduction == "sum":
        return loss.sum()
    return _mean_over(loss, total)


def _nll_rows(logp: Tensor, t: Tensor, ignore_index: int, weight: Tensor | None):
    """``nll_loss`` per row of (M, C) log-probabilities: ``-weight[t_i] logp[i, t_i]`` (weight 1
    without class weights, 0 for ignored rows). Returns those (M,) losses, the ``mean``'s
    denominator (the rows counted, or their summed weights: PyTorch's weighted mean) and the
    0/1 mask of the rows counted, as a float array."""
    xp = backend.xp_of(t.data)
    valid = xp.astype(t.data != ignore_index, logp.data.dtype)
    # a one-hot mask in the input's dtype (never int64, which would upcast float32 to float64)
    onehot = t.data[:, None] == xp.arange(logp.shape[1], dtype=t.data.dtype)[None, :]
    pick = _const(xp.astype(onehot, logp.data.dtype) * valid[:, None])
    if weight is not None:
        pick = pick * weight.reshape(1, -1)  # each row's weight[t_i] (0 for ignored rows)
    total = float(xp.sum(pick.data)) if weight is not None else int(xp.sum(valid))
    return -(logp * pick).sum(axis=1), total, valid


def _check_class_weight(op: str, weight, logits: Tensor):
    """``weight``: None, or a float Tensor of the logits' dtype and shape (C,); returned detached
    (a constant of the loss: PyTorch refuses a weight that requires grad)."""
    if weight is None:
        return None
    check_same_dtype(op, logits, weight=weight)
    if weight.shape != (logits.shape[1],):
        raise ValueError(
            f"{op}: weight must have one entry per class, shape ({logits.shape[1]},), got "
            f"{weight.shape}"
        )
    return weight.detach()


class CrossEntropyFunction(Function):
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
        # w: the weight of each row, (M, 1): the upstream gradient, 1/count for a mean, 0 if ignored
        if self.reduction == "none":
            w = grad_out.reshape(-1, 1) * _const(self.valid[:, None])
        else:
            scale = 1.0 if self.reduction == "sum" else (1.0 / self.count if self.count else 0.0)
            w = grad_out * _const(self.valid[:, None] * scale)  # () * (M, 1) -> (M, 1)
        # --- exercise 4.2: cross-entropy backward ---
        p = softmax(x, 1) if is_grad_enabled() else _const(self.e / self.s)
        # q: the target distribution, in the logits' dtype (an int64 one-hot would upcast float32)
        onehot = self.t[:, None] == xp.arange(C, dtype=self.t.dtype)[None, :]
        q = xp.astype(onehot, self.valid.dtype)
        if self.eps > 0.0:
            q = q * (1.0 - self.eps) + self.eps / C
        return (p - _const(q)) * w, None, None, None, None
        # --- end exercise ---


def cross_entropy(
    input: Tensor,
    target: Tensor,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    *,
    weight: Tensor | None = None,
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
    logits, t, out_shape = _cross_entropy_args(
        "cross_entropy", input, target, ignore_index, reduction, label_smoothing
    )
    if weight is not None:  # class weights: log_softmax, then the weighted sums below
        weight = _check_class_weight("cross_entropy", weight, logits)
        return _weighted_cross_entropy(
            logits, t, weight, ignore_index, reduction, label_smoothing, out_shape
        )
    loss = CrossEntropyFunction.apply(logits, t.data, ignore_index, reduction, label_smoothing)
    return loss.reshape(out_shape) if reduction == "none" else loss


def _weighted_cross_entropy(logits, t, weight, ignore_index, reduction, eps, out_shape):
    """``cross_entropy`` with class weights ``w`` (PyTorch's formula): with ``p = log_softmax``,
    ``loss_i = (1 - eps) (-w[t_i] p[i, t_i]) + eps / C sum_c (-w_c p[i, c])`` (0 for ignored
    rows), and ``mean`` divides by the sum of ``w[t_i]`` over the rows not ignored."""
    logp = log_softmax(logits, axis=1)  # (M, C)
    loss, total, valid = _nll_rows(logp, t, ignore_index, weight)  # (M,)
    if eps > 0.0:
        smooth = -(logp * weight.reshape(1, -1)).sum(axis=1) * (1.0 / logp.shape[1])
        loss = loss * (1.0 - eps) + smooth * _const(valid) * eps
    if reduction == "none":
        return loss.reshape(out_shape)
    if reduction == "sum":
        return loss.sum()
    return _mean_over(loss, total)


def _cross_entropy_args(op, input, target, ignore_index, reduction, label_smoothing):
    """Check ``cross_entropy``'s arguments; return the (M, C) logits, the (M,) targets and the
    shape of the per-element loss."""
    check_float(op, "input", input)
    check_tensor(op, "target", target)
    check_reduction(op, reduction)
    check_int_arg(op, "ignore_index", ignore_index)
    if not is_number(label_smoothing):
        raise TypeError(
            f"{op}: label_smoothing must be a number in [0, 1], got {label_smoothing!r}"
        )
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    if backend.is_floating(target.dtype):
        raise TypeError(
            f"{op}: target must hold integer class indices, got dtype {target.dtype} "
            f"(shape {target.shape}); convert with .astype('int64')"
        )
    check_int(op, "target", target)
    logits, t, out_shape = _class_last(op, input, target)
    check_range(op, t, logits.shape[1], "classes", ignore_index)
    return logits, t, out_shape


def cross_entropy_composed(
    input: Tensor,
    target: Tensor,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """``cross_entropy`` from primitive ops: ``log_softmax_composed``, then ``nll_loss`` (a one-hot
    pick) and, with label smoothing, the mean of ``-log p`` over the classes (the reference).

    >>> import tinygrad_edu as tg
    >>> round(cross_entropy_composed(tg.tensor([[0.0, 0.0]]), tg.tensor([1])).item(), 4)
    0.6931
    """
    logits, t, out_shape = _cross_entropy_args(
        "cross_entropy_composed", input, target, ignore_index, reduction, label_smoothing
    )
    logp = log_softmax_composed(logits, axis=1)  # (M, C)
    loss = nll_loss(logp, t, ignore_index, reduction="none")  # (M,), 0 for ignored targets
    valid = t.data != ignore_index
    if label_smoothing > 0.0:
        xp = backend.xp_of(valid)
        smooth = -logp.mean(axis=1) * _const(xp.astype(valid, logp.data.dtype))
        loss = loss * (1.0 - label_smoothing) + smooth * label_smoothing
    if reduction == "none":
        return loss.reshape(out_shape)
    if reduction == "sum":
        return loss.sum()
    return _mean_over_targets(loss, valid)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)^2``, reduced.

    >>> import tinygrad_edu as tg
    >>> mse_loss(tg.tensor([1.0, 2.0]), tg.tensor([0.0, 0.0])).item()
    2.5
    """
    check_float("mse_loss", "input", input)
    check_tensor("mse_loss", "target", target)
    check_reduction("mse_loss", reduction)
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
    check_float("binary_cross_entropy_with_logits", "input", input)
    check_float("binary_cross_entropy_with_logits", "target", target)
    check_reduction("binary_cross_entropy_with_logits", reduction)
    if input.shape != target.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: input shape {input.shape} and target shape "
            f"{target.shape} differ"
        )
    check_same_dtype(
        "binary_cross_entropy_with_logits", input, weight=weight, pos_weight=pos_weight
    )
    for name, w in (("weight", weight), ("pos_weight", pos_weight)):
        if w is not None and ops._broadcast_shape(w.shape, input.shape) != input.shape:
            raise ValueError(
                f"binary_cross_entropy_with_logits: {name} of shape {w.shape} does not broadcast "
                f"to the input's shape {input.shape}"
            )
    sp = softplus(-input)
    if pos_weight is not None:
        sp = sp * ((pos_weight - 1.0) * target + 1.0)
    loss = (1.0 - target) * input + sp
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)

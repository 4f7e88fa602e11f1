"""``layer_norm`` (chapter 10), fused, beside ``layer_norm_composed``.

The fused backward is three terms, ``rstd * (gh - mean(gh) - xhat * mean(gh * xhat))``, instead of
the composed graph's dozen nodes; the tests check that both agree in value and gradient.
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function, is_grad_enabled
from ..ops import _const
from ..tensor import Tensor
from ._checks import check_float


class LayerNormFunction(Function):
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
    k = _normalized_axes("layer_norm", x, normalized_shape, weight, bias)
    return LayerNormFunction.apply(x, weight, bias, k, eps)


def _normalized_axes(op, x, normalized_shape, weight, bias) -> int:
    """Check ``layer_norm``'s arguments; return how many trailing axes are normalised."""
    check_float(op, "input", x)
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if k == 0 or x.shape[x.ndim - k :] != normalized_shape or x.ndim < k:
        raise ValueError(
            f"{op}: input of shape {x.shape} does not end with normalized_shape {normalized_shape}"
        )
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != normalized_shape:
            raise ValueError(
                f"{op}: {name} has shape {p.shape}, expected normalized_shape {normalized_shape}"
            )
    return k


def layer_norm_composed(
    x: Tensor,
    normalized_shape,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """``layer_norm`` from primitive ops (the reference): mean, centre, variance, divide, scale.

    >>> import tinygrad_edu as tg
    >>> layer_norm_composed(tg.tensor([[1.0, 3.0]]), (2,)).numpy().round(3).tolist()
    [[-1.0, 1.0]]
    """
    k = _normalized_axes("layer_norm_composed", x, normalized_shape, weight, bias)
    axes = tuple(range(x.ndim - k, x.ndim))
    xc = x - x.mean(axis=axes, keepdims=True)
    y = xc / ((xc * xc).mean(axis=axes, keepdims=True) + eps).sqrt()
    if weight is not None:
        y = y * weight
    return y + bias if bias is not None else y

"""``scaled_dot_product_attention`` (chapter 9), fused, beside its composed version.

``ScaledDotProductAttentionFunction`` keeps only the attention weights ``P`` and writes the
backward out (the softmax rule applied to ``dP = g v^T``); ``scaled_dot_product_attention_composed``
is the same computation from ``ops.py`` primitives. The tests check that both agree in value and
gradient.
"""

from __future__ import annotations

import math

from .. import backend, ops
from ..autograd import Function, is_grad_enabled
from ..ops import _const, unbroadcast
from ..tensor import Tensor
from ._checks import check_float, check_same_dtype, check_tensor, is_number
from .dropout import dropout
from .softmax import _softmax_array, softmax, softmax_composed


def _attention_scores(q, k, additive, keep, scale, xp):
    """The attention scores (..., L, S) of queries ``q`` (..., L, E) and keys ``k`` (..., S, E),
    on arrays, ready for the softmax over the keys.

    ``additive`` (or None) is a float mask added to the scores; ``keep`` (or None) a boolean mask,
    False where a query may not attend: the softmax must give those positions exactly zero weight.
    """
    # --- exercise 9.1: attention scores with masks ---
    scores = xp.matmul(q, k.mT)  # (..., L, E) @ (..., E, S) -> (..., L, S)
    scores *= scale
    if additive is not None:
        scores = scores + additive
    if keep is not None:
        # adding 0 or -inf: one branch-free pass over the scores, where a ``where`` over them
        # took 0.19 ms against 0.08 ms (B3's (12, 4, 64, 64) scores, causal, one thread)
        blocked = xp.full(keep.shape, -math.inf, dtype=scores.dtype)  # the mask's own size
        blocked = xp.where(keep, xp.zeros_like(blocked), blocked)
        if ops._broadcast_shape(scores.shape, blocked.shape) == scores.shape:
            scores += blocked
        else:  # a mask with more batch axes than q and k (they broadcast with v's)
            scores = scores + blocked
    # --- end exercise ---
    return scores


def _attention_scores_tensor(q: Tensor, k: Tensor, additive, keep, scale: float) -> Tensor:
    """``q k^T * scale (+ additive)``, masked positions set to -inf; with Tensor ops."""
    scores = (q @ k.mT) * scale
    if additive is not None:
        scores = scores + additive
    if keep is not None:
        scores = ops.where(_const(keep), scores, -math.inf)
    return scores


class ScaledDotProductAttentionFunction(Function):
    """Fused attention ``out = dropout(softmax(q k^T * scale + mask)) v``.

    Forward keeps only the attention weights ``P`` (..., L, S) (and the dropout mask).
    Backward, with ``D`` the scaled dropout mask (1 without dropout) and ``g = grad_out``:
    ``grad_v = (P D)^T g``; ``dP = (g v^T) D``; the scores ``Z``: ``dZ = P * (dP - sum_j dP * P)``
    (the softmax rule); ``grad_q = dZ k * scale``, ``grad_k = dZ^T q * scale``, ``grad_mask = dZ``.
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
        if is_grad_enabled():  # Tensor operations, P rebuilt from q and k: differentiable
            P = softmax(_attention_scores_tensor(q, k, additive, self.keep, self.scale), -1)
            drop = _const(self.drop) if self.drop is not None else None
            g, q_, k_, v_ = grad_out, q, k, v

            def row_sum(a):
                return a.sum(axis=-1, keepdims=True)

            as_tensor = _identity
        else:
            # the same rule on the arrays saved by forward: fwd+bwd of B3's (12, 4, 64, 32)
            # causal heads took 3.7 ms against 5.4 ms in Tensor operations (one thread)
            xp = backend.xp_of(self.P)
            P, drop, g = self.P, self.drop, grad_out.data
            q_, k_, v_ = q.data, k.data, v.data

            def row_sum(a):
                return xp.sum(a, axis=-1, keepdims=True)

            as_tensor = _const
        grad_q = grad_k = grad_v = grad_mask = None
        if need_v:
            Pd = P * drop if drop is not None else P
            grad_v = unbroadcast(as_tensor(Pd.mT @ g), v.shape)  # (..., S, L) @ (..., L, Ev)
        if need_q or need_k or need_mask:
            # --- exercise 9.2: attention backward ---
            dP = g @ v_.mT  # (..., L, Ev) @ (..., Ev, S) -> (..., L, S)
            if drop is not None:
                dP = dP * drop
            dZ = P * (dP - row_sum(dP * P))
            if need_mask:
                grad_mask = unbroadcast(as_tensor(dZ), additive.shape)
            dZ = dZ * self.scale
            if need_q:
                grad_q = unbroadcast(as_tensor(dZ @ k_), q.shape)  # (..., L, S) @ (..., S, E)
            if need_k:
                grad_k = unbroadcast(as_tensor(dZ.mT @ q_), k.shape)  # (..., S, L) @ (..., L, E)
            # --- end exercise ---
        return grad_q, grad_k, grad_v, grad_mask


def _identity(a):
    return a


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
    additive, keep, scale = _attention_args(
        "scaled_dot_product_attention", query, key, value, attn_mask, dropout_p, is_causal, scale
    )
    return ScaledDotProductAttentionFunction.apply(
        query, key, value, additive, keep=keep, scale=scale, dropout_p=dropout_p
    )


def _attention_args(op, query, key, value, attn_mask, dropout_p, is_causal, scale):
    """Check the arguments of attention; return the float mask to add to the scores (or None),
    the boolean mask of allowed positions (an array, or None) and the scale."""
    check_float(op, "query", query)
    check_same_dtype(op, query, key=key, value=value)
    for name, t in (("query", query), ("key", key), ("value", value)):
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
    elif not is_number(scale):
        raise TypeError(f"{op}: scale must be a number or None, got {scale!r}")
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
        check_tensor(op, "attn_mask", attn_mask)
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
    return additive, keep, scale


def scaled_dot_product_attention_composed(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> Tensor:
    """``scaled_dot_product_attention`` from primitive ops (the reference): scores, masking,
    ``softmax_composed``, ``dropout``, a matmul. It draws the same dropout mask as the fused
    version from the same seed.

    >>> import tinygrad_edu as tg
    >>> q = tg.randn(2, 4, 8)
    >>> a = scaled_dot_product_attention(q, q, q, is_causal=True)
    >>> b = scaled_dot_product_attention_composed(q, q, q, is_causal=True)
    >>> bool(((a - b).abs() < 1e-5).all())
    True
    """
    op = "scaled_dot_product_attention_composed"
    additive, keep, scale = _attention_args(
        op, query, key, value, attn_mask, dropout_p, is_causal, scale
    )
    scores = _attention_scores_tensor(query, key, additive, keep, scale)  # (..., L, S)
    P = softmax_composed(scores, -1)
    if dropout_p > 0.0:
        P = dropout(P, dropout_p)
    return P @ value  # (..., L, S) @ (..., S, Ev) -> (..., L, Ev)

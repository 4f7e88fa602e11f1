"""Gradient-check cases for the Functions of ``tinygrad_edu/functional/`` (those of
``recurrent.py`` are in ``rnn.py``).

Every fused rule is written with Tensor operations, so every one is also checked with
``gradgradcheck``. Cases cover other axes, class axes in the middle ((N, C, d) logits), ignored
targets, label smoothing, each reduction, layer norm over two axes with and without affine
parameters, convolutions with stride, padding and dilation, and attention with causal, boolean,
additive (differentiable) masks, a fully masked row and broadcast batch axes.
"""

from __future__ import annotations

import numpy as np
from helpers import ints, leaf, leaves, mask

import tinygrad_edu.functional as F

_T = [0, 2, -100, 1, 2]  # one ignored target (ignore_index=-100)


def _ce(**kw):
    return lambda x: F.cross_entropy(x, ints(_T), **kw)


def _sdpa(**kw):
    return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kw)


def _embedding_scatter(ids, w):
    """``F.embedding`` forced onto its scatter-add backward (the route is chosen in forward)."""
    limit = F.EmbeddingFunction.ONEHOT_LIMIT
    F.EmbeddingFunction.ONEHOT_LIMIT = 0
    try:
        return F.embedding(ids, w)
    finally:
        F.EmbeddingFunction.ONEHOT_LIMIT = limit


_ROW_MASKED = np.ones((3, 4), dtype=bool)
_ROW_MASKED[1] = False  # query 1 may attend to nothing
_ROW_MASKED[0, 2] = False

CASES = {
    "LinearFunction": [
        lambda: (F.linear, leaves((5, 3), (4, 3), (4,))),
        lambda: (F.linear, leaves((2, 5, 3), (4, 3), seed=1)),  # leading axes, no bias
        lambda: (lambda x, w: F.linear(x.mT, w), leaves((3, 5), (4, 3), seed=2)),  # x.T
    ],
    "SoftplusFunction": [
        lambda: (F.softplus, [leaf(3, 4, low=-4.0, high=4.0)]),
        lambda: (lambda x: F.softplus(x.T), [leaf(4, 3, low=-30.0, high=30.0, seed=1)]),
    ],
    "NormalCDFFunction": [
        lambda: (F.NormalCDFFunction.apply, [leaf(3, 4, low=-3.0, high=3.0)]),
        # every interval of the erfc approximation: |x|/sqrt(2) < 0.47, < 4 and > 4
        lambda: (F.NormalCDFFunction.apply, [leaf(6, low=-7.0, high=7.0, seed=1)]),
    ],
    "GELUFunction": [
        lambda: (F.gelu, [leaf(3, 4, low=-3.0, high=3.0)]),
        lambda: (lambda x: F.gelu(x.T), [leaf(4, 3, low=-7.0, high=7.0, seed=1)]),
        lambda: (F.gelu, [leaf(low=-1.0, high=1.0, seed=2)]),  # 0-d
    ],
    "SoftmaxFunction": [
        lambda: (F.softmax, [leaf(3, 4, low=-2.0, high=2.0)]),
        lambda: (lambda x: F.softmax(x, axis=0), [leaf(3, 4, seed=1)]),
        lambda: (lambda x: F.softmax(x.transpose(2, 0, 1), 1), [leaf(2, 3, 4, seed=2)]),
        lambda: (F.softmax, [leaf(5, low=-20.0, high=20.0, seed=3)]),  # peaked
    ],
    "LogSoftmaxFunction": [
        lambda: (F.log_softmax, [leaf(3, 4, low=-2.0, high=2.0)]),
        lambda: (lambda x: F.log_softmax(x, axis=1), [leaf(2, 3, 4, seed=1)]),
        lambda: (lambda x: F.log_softmax(x.T), [leaf(4, 3, seed=2)]),
        lambda: (F.log_softmax, [leaf(5, low=-20.0, high=20.0, seed=3)]),
    ],
    "CrossEntropyFunction": [
        lambda: (_ce(), [leaf(5, 3, low=-2.0, high=2.0)]),
        lambda: (_ce(reduction="sum", label_smoothing=0.1), [leaf(5, 3, seed=1)]),
        lambda: (_ce(reduction="none", label_smoothing=0.3), [leaf(5, 3, seed=2)]),
        lambda: (  # (N, C, d) logits: the class axis in the middle
            lambda x: F.cross_entropy(x, ints([[0, 3, 1], [2, 2, -100]]), label_smoothing=0.2),
            [leaf(2, 4, 3, seed=3)],
        ),
        lambda: (lambda x: F.cross_entropy(x, ints(1)), [leaf(4, seed=4)]),  # unbatched
        lambda: (_ce(), [leaf(5, 3, low=-30.0, high=30.0, seed=5)]),  # confident
    ],
    "LayerNormFunction": [
        lambda: (lambda x, w, b: F.layer_norm(x, (4,), w, b), leaves((3, 4), (4,), (4,))),
        lambda: (lambda x: F.layer_norm(x, 4), [leaf(2, 3, 4, seed=1)]),  # no affine
        lambda: (  # two normalised axes, weight only
            lambda x, w: F.layer_norm(x, (3, 4), w),
            leaves((2, 3, 4), (3, 4), seed=2),
        ),
        lambda: (  # non-contiguous input, unbatched, eps that matters
            lambda x, w, b: F.layer_norm(x.T, (3,), w, b, eps=0.1),
            leaves((3, 2), (3,), (3,), seed=3),
        ),
    ],
    "EmbeddingFunction": [
        lambda: (lambda w: F.embedding(ints([[1, 4, 1], [0, 1, 3]]), w), [leaf(5, 3)]),
        lambda: (  # the scatter-add route (one-hot limit 0): repeated ids accumulate too
            lambda w: _embedding_scatter(ints([2, 2, 0, 2]), w),
            [leaf(4, 2, seed=1)],
        ),
    ],
    "Unfold1dFunction": [
        lambda: (lambda x: F.Unfold1dFunction.apply(x, 3, 1, 0, 1), [leaf(2, 3, 7)]),
        lambda: (lambda x: F.Unfold1dFunction.apply(x, 2, 2, 1, 3), [leaf(1, 2, 9, seed=1)]),
    ],
    "Fold1dFunction": [
        lambda: (lambda c: F.Fold1dFunction.apply(c, 2, 7, 3, 1, 0, 1), [leaf(2, 6, 5)]),
        # length 9, K=2, stride 2, padding 1, dilation 3 -> L_out = (9 + 2 - 3 - 1) // 2 + 1 = 4
        lambda: (lambda c: F.Fold1dFunction.apply(c, 2, 9, 2, 2, 1, 3), [leaf(1, 4, 4, seed=1)]),
    ],
    "ScaledDotProductAttentionFunction": [
        lambda: (_sdpa(), leaves((2, 3, 4), (2, 5, 4), (2, 5, 2))),
        lambda: (_sdpa(is_causal=True, scale=0.7), leaves((2, 4, 3), (2, 4, 3), (2, 4, 2), seed=1)),
        lambda: (_sdpa(attn_mask=mask(_ROW_MASKED)), leaves((3, 2), (4, 2), (4, 3), seed=2)),
        lambda: (  # a differentiable additive mask; broadcast batch axes (multi-query style)
            lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
            leaves((2, 2, 3, 4), (2, 1, 5, 4), (5, 2), (3, 5), seed=3),
        ),
        lambda: (  # non-contiguous q
            lambda q, k, v: F.scaled_dot_product_attention(q.mT, k, v),
            leaves((2, 4, 3), (2, 5, 4), (2, 5, 3), seed=4),
        ),
    ],
}

GRADGRAD = {
    "LinearFunction",
    "SoftplusFunction",
    "NormalCDFFunction",
    "GELUFunction",
    "SoftmaxFunction",
    "LogSoftmaxFunction",
    "CrossEntropyFunction",
    "LayerNormFunction",
    "EmbeddingFunction",
    "Unfold1dFunction",
    "Fold1dFunction",
    "ScaledDotProductAttentionFunction",
}

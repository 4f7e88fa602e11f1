"""Gradient-check cases for the Functions of ``tinygrad_edu/functional/recurrent.py``.

``LSTMCellFunction`` is checked batched and unbatched, with large pre-activations (saturated gates)
and with a non-contiguous input; its backward is written with Tensor ops, so it is also checked
with ``gradgradcheck``. The whole-sequence Functions are checked with respect to every input
(projections, initial state, recurrent weights); their raw-array backward is first order only.
"""

from __future__ import annotations

from helpers import leaves

from tinygrad_edu.functional import (
    LSTMCellFunction,
    LSTMSequenceFunction,
    RNNSequenceFunction,
)

from . import away_from_zero


def _cell(a, c):
    return LSTMCellFunction.apply(a, c)


def _lstm_seq(x_proj, h0, c0, w_hh):
    return LSTMSequenceFunction.apply(x_proj, h0, c0, w_hh)


CASES = {
    "LSTMCellFunction": [
        lambda: (_cell, leaves((2, 12), (2, 3), low=-2.0, high=2.0)),
        lambda: (_cell, leaves((8,), (2,), seed=1)),  # unbatched
        lambda: (_cell, leaves((3, 8), (3, 2), low=-6.0, high=6.0, seed=2)),  # nearly saturated
        lambda: (lambda a, c: _cell(a.T, c), leaves((8, 3), (3, 2), seed=3)),  # non-contiguous
    ],
    "LSTMSequenceFunction": [
        lambda: (_lstm_seq, leaves((4, 2, 12), (2, 3), (2, 3), (12, 3), seed=4)),
        lambda: (_lstm_seq, leaves((1, 3, 8), (3, 2), (3, 2), (8, 2), low=-2.0, high=2.0, seed=5)),
    ],
    "RNNSequenceFunction": [
        lambda: (
            lambda x, h, w: RNNSequenceFunction.apply(x, h, w),
            leaves((4, 2, 3), (2, 3), (3, 3), seed=6),
        ),
        # relu: only positive values and weights, so no pre-activation sits near the kink at 0
        lambda: (
            lambda x, h, w: RNNSequenceFunction.apply(x, h, w, nonlinearity="relu"),
            leaves((3, 2, 3), (2, 3), (3, 3), low=0.2, high=1.0, seed=7),
        ),
        lambda: (
            lambda x, h, w: RNNSequenceFunction.apply(x, h, w, nonlinearity="relu"),
            [away_from_zero(3, 1, 2, margin=0.3, seed=8)]
            + leaves((1, 2), (2, 2), low=0.0, high=0.05, seed=9),
        ),
    ],
}

GRADGRAD = {"LSTMCellFunction"}

"""Gradient-check cases, one module per area, collected by ``tests/test_registry.py``.

Each module exports ``CASES``: a dict from a ``Function`` name (as in ``autograd.REGISTRY``) to a
list of zero-argument callables, each returning ``(fn, inputs)`` for ``testing.gradcheck``; and
optionally ``GRADGRAD``: the names whose cases are also checked with ``testing.gradgradcheck``.
A case must actually use its Function (the registry test looks for it in the output's graph).

Inputs are float64 leaves from a seeded NumPy generator (``leaf``/``leaves`` in
``tests/helpers.py``, and the two below for kinks and ties), so every case is deterministic and
runs the same on every device (host arrays follow the default device).
"""

from __future__ import annotations

import numpy as np

import tinygrad_edu as tg


def away_from_zero(*shape, margin=0.1, seed=0):
    """A float64 leaf whose entries are at least ``margin`` away from 0 (for relu, abs: kinks)."""
    rng = np.random.default_rng(seed)
    mag = rng.uniform(margin, 1.0, size=shape)
    sign = np.where(rng.random(size=shape) < 0.5, -1.0, 1.0)
    return tg.tensor(mag * sign, dtype="float64", requires_grad=True)


def distinct(*shape, gap=0.1, seed=0):
    """A float64 leaf with all entries different by at least ``gap`` (for max/min: no ties)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    values = rng.permutation(n) * gap + rng.uniform(0, gap / 4, size=n) - n * gap / 2
    return tg.tensor(values.reshape(shape), dtype="float64", requires_grad=True)

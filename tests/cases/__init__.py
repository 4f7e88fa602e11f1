"""Gradient-check cases, one module per area, collected by ``tests/test_registry.py``.

Each module exports ``CASES``: a dict from a ``Function`` name (as in ``autograd.REGISTRY``) to a
list of zero-argument callables, each returning ``(fn, inputs)`` for ``testing.gradcheck``; and
optionally ``GRADGRAD``: the names whose cases are also checked with ``testing.gradgradcheck``.
A case must actually use its Function (the registry test looks for it in the output's graph).

The helpers below build float64 leaves from a seeded NumPy generator, so every case is
deterministic and runs the same on every device (host arrays follow the default device).
"""

from __future__ import annotations

import numpy as np

import tinygrad_edu as tg


def _per_input(value, n):
    return value if isinstance(value, (tuple, list)) else (value,) * n


def leaves(*shapes, low=-1.0, high=1.0, seed=0, requires_grad=True):
    """float64 leaves of the given shapes, uniform in [low, high) (low/high may be per input).

    >>> a, b = leaves((2, 3), (3,), low=(0.5, -1.0), high=(2.0, 1.0))
    >>> a.shape, b.shape, a.dtype, bool((a.numpy() >= 0.5).all())
    ((2, 3), (3,), 'float64', True)
    """
    rng = np.random.default_rng(seed)
    lows, highs = _per_input(low, len(shapes)), _per_input(high, len(shapes))
    return [
        tg.tensor(rng.uniform(lo, hi, size=s), dtype="float64", requires_grad=requires_grad)
        for s, lo, hi in zip(shapes, lows, highs, strict=True)
    ]


def leaf(*shape, low=-1.0, high=1.0, seed=0, requires_grad=True):
    """One float64 leaf: ``leaf(3, 4)``."""
    return leaves(shape, low=low, high=high, seed=seed, requires_grad=requires_grad)[0]


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


def ints(values):
    """An int64 index tensor from a (nested) list."""
    return tg.tensor(np.asarray(values, dtype=np.int64))


def mask(values):
    """A boolean tensor from a (nested) list."""
    return tg.tensor(np.asarray(values, dtype=bool))

"""Gradient-check cases for every primitive of ``tinygrad_edu/ops.py``.

Inputs cover broadcasting, 0-d scalars, Python-number operands, batch matmul with broadcast batch
dimensions, non-contiguous (transposed) inputs, integer-array indexing with repeated indices,
boolean masks, ``keepdims`` and negative axes. log/sqrt/pow get inputs shifted into their domain;
relu/abs/max/min/maximum/minimum/clip get inputs kept away from their kinks.
"""

from __future__ import annotations

import numpy as np
from helpers import ints, leaf, leaves, mask

import tinygrad_edu as tg
from tinygrad_edu import ops

from . import away_from_zero, distinct


def grid(*shape, offset=0.0, seed=0):
    """float64 leaf with values on the grid 0.2 k + offset, so two grids with offsets 0 and 0.1
    are never closer than 0.1 (no ties for maximum/minimum, no value on a clip bound)."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-5, 6, size=shape) * 0.2 + offset
    return tg.tensor(values, dtype="float64", requires_grad=True)


def _binary_cases(op):
    """Shared cases for + - * (any real inputs)."""
    return [
        lambda: (op, leaves((3, 4), (3, 4))),
        lambda: (op, leaves((3, 1), (4,))),  # both broadcast
        lambda: (op, leaves((), (2, 3))),  # a 0-d scalar tensor
        lambda: (lambda a: op(a, 2.5), leaves((2, 3))),  # a Python number on the right
        lambda: (lambda a: op(-1.5, a), leaves((2, 3))),  # ... and on the left
        lambda: (lambda a, b: op(a.T, b), leaves((4, 3), (3, 4))),  # non-contiguous
        lambda: (op, leaves((2, 1, 3), (4, 1))),  # broadcast to (2, 4, 3)
    ]


def _unary_cases(op, low=-2.0, high=2.0):
    return [
        lambda: (op, [leaf(3, 4, low=low, high=high)]),
        lambda: (op, [leaf(low=low, high=high)]),  # 0-d
        lambda: (lambda a: op(a.T), [leaf(4, 3, low=low, high=high)]),  # non-contiguous
    ]


CASES = {
    "Add": _binary_cases(ops.add),
    "Sub": _binary_cases(ops.sub),
    "Mul": _binary_cases(ops.mul),
    "Div": [
        lambda: (ops.div, leaves((3, 4), (3, 4), low=(-1.0, 0.5), high=(1.0, 2.0))),
        lambda: (ops.div, leaves((3, 1), (4,), low=(-1.0, -2.0), high=(1.0, -0.5))),
        lambda: (ops.div, leaves((), (2, 3), low=(-1.0, 0.5), high=(1.0, 2.0))),
        lambda: (lambda a: a / 3.0, leaves((2, 3))),
        lambda: (lambda a: 2.0 / a, leaves((2, 3), low=0.5, high=2.0)),
        lambda: (lambda a, b: a.T / b, leaves((4, 3), (3, 4), low=(-1, 0.5), high=(1, 2))),
    ],
    "Remainder": [  # away from the jumps of floor(a / b), where the derivative exists
        lambda: (ops.remainder, leaves((3, 4), (3, 4), low=(2.1, 0.8), high=(2.4, 1.0))),
        lambda: (ops.remainder, leaves((3, 1), (4,), low=(2.2, 1.3), high=(2.5, 1.6))),
        lambda: (lambda a: a % 1.0, leaves((2, 3), low=0.1, high=0.9)),
        lambda: (lambda a: 2.0 % a, leaves((2, 3), low=0.7, high=0.95)),
    ],
    "Pow": [
        lambda: (ops.pow, leaves((3, 4), (3, 4), low=(0.5, -1.5), high=(2.0, 1.5))),
        lambda: (ops.pow, leaves((3, 1), (4,), low=(0.5, -1.5), high=(2.0, 1.5))),
        lambda: (lambda a: a**3, leaves((2, 3))),  # integer power: negative bases are fine
        lambda: (lambda a: a**0.5, leaves((2, 3), low=0.5, high=2.0)),
        lambda: (lambda b: 2.0**b, leaves((2, 3))),
        lambda: (ops.pow, leaves((), (2,), low=(0.5, -1.0), high=(2.0, 1.0))),
    ],
    "Neg": _unary_cases(ops.neg),
    "Exp": _unary_cases(ops.exp),
    "Log": _unary_cases(ops.log, low=0.3, high=3.0),
    "Sqrt": _unary_cases(ops.sqrt, low=0.3, high=3.0),
    "TanhFunction": _unary_cases(ops.tanh),
    "SigmoidFunction": _unary_cases(ops.sigmoid, low=-4.0, high=4.0),
    "ReLUFunction": [
        lambda: (ops.relu, [away_from_zero(3, 4)]),
        lambda: (lambda a: ops.relu(a.T), [away_from_zero(4, 3, seed=1)]),
        lambda: (ops.relu, [away_from_zero()]),
    ],
    "Abs": [
        lambda: (ops.abs, [away_from_zero(3, 4)]),
        lambda: (lambda a: ops.abs(a.T), [away_from_zero(4, 3, seed=2)]),
        lambda: (ops.abs, [away_from_zero()]),
    ],
    "Maximum": [
        lambda: (ops.maximum, [grid(3, 4), grid(3, 4, offset=0.1, seed=1)]),
        lambda: (ops.maximum, [grid(3, 1), grid(4, offset=0.1, seed=1)]),
        lambda: (lambda a: ops.maximum(a, 0.1), [grid(2, 3)]),
        lambda: (lambda a, b: ops.maximum(a.T, b), [grid(4, 3), grid(3, 4, offset=0.1)]),
    ],
    "Minimum": [
        lambda: (ops.minimum, [grid(3, 4), grid(3, 4, offset=0.1, seed=1)]),
        lambda: (ops.minimum, [grid(3, 1), grid(4, offset=0.1, seed=1)]),
        lambda: (lambda a: ops.minimum(a, 0.1), [grid(2, 3)]),
    ],
    "Clip": [
        lambda: (lambda a: ops.clip(a, -0.45, 0.55), [grid(3, 4, offset=0.1)]),
        lambda: (lambda a: ops.clip(a, min=0.0), [grid(3, 4, offset=0.1)]),
        lambda: (lambda a: ops.clip(a, max=0.0), [grid(3, 4, offset=0.1)]),
    ],
    # float64 -> float64: a float32 round trip would drown central differences in round-off;
    # tests/test_ops.py checks that the float32 gradient comes back as float32.
    "Cast": [lambda: (lambda a: ops.Cast.apply(a, "float64"), [leaf(3, 4)])],
    "MatMul": [
        lambda: (ops.matmul, leaves((3, 4), (4, 5))),
        lambda: (ops.matmul, leaves((2, 3, 4), (4, 5))),  # batch x matrix
        lambda: (ops.matmul, leaves((2, 1, 3, 4), (3, 4, 2))),  # batch dims broadcast
        lambda: (ops.matmul, leaves((4,), (4, 3))),  # vector @ matrix
        lambda: (ops.matmul, leaves((2, 3, 4), (4,))),  # batch @ vector
        lambda: (ops.matmul, leaves((4,), (4,))),  # dot product: a 0-d result
        lambda: (lambda a, b: a.T @ b.T, leaves((4, 3), (5, 4))),  # non-contiguous
    ],
    "Sum": [
        lambda: (ops.sum, [leaf(3, 4)]),
        lambda: (lambda a: a.sum(axis=1), [leaf(3, 4)]),
        lambda: (lambda a: a.sum(axis=(0, 2), keepdims=True), [leaf(2, 3, 4)]),
        lambda: (lambda a: a.sum(axis=-1), [leaf(2, 3, 4)]),
        lambda: (lambda a: a.sum(), [leaf()]),
        lambda: (lambda a: a.T.sum(axis=0), [leaf(3, 4)]),
    ],
    "Max": [
        lambda: (ops.max, [distinct(3, 4)]),
        lambda: (lambda a: a.max(axis=-1, keepdims=True), [distinct(3, 4)]),
        lambda: (lambda a: a.max(axis=(0, 2)), [distinct(2, 3, 4)]),
        lambda: (lambda a: a.T.max(axis=0), [distinct(3, 4)]),
        lambda: (ops.max, [distinct()]),
    ],
    "Min": [
        lambda: (ops.min, [distinct(3, 4)]),
        lambda: (lambda a: a.min(axis=-2, keepdims=True), [distinct(3, 4)]),
        lambda: (lambda a: a.min(axis=1), [distinct(2, 3, 4)]),
    ],
    "Reshape": [
        lambda: (lambda a: a.reshape(2, 6), [leaf(3, 4)]),
        lambda: (lambda a: a.reshape(-1), [leaf(3, 4)]),
        lambda: (lambda a: a.reshape(()), [leaf(1, 1)]),
        lambda: (lambda a: a.T.reshape(2, 6), [leaf(3, 4)]),  # non-contiguous: a copy
    ],
    "Transpose": [
        lambda: (lambda a: a.T, [leaf(3, 4)]),
        lambda: (lambda a: a.transpose(1, 2, 0), [leaf(2, 3, 4)]),
        lambda: (lambda a: a.transpose((-1, 0, 1)), [leaf(2, 3, 4)]),
    ],
    "BroadcastTo": [
        lambda: (lambda a: a.broadcast_to((2, 3, 4)), [leaf(3, 1)]),
        lambda: (lambda a: a.broadcast_to((2, 2)), [leaf()]),
        lambda: (lambda a: a.broadcast_to((5,)), [leaf(1)]),
    ],
    "Getitem": [
        lambda: (lambda a: a[1:, ::2], [leaf(3, 4)]),
        lambda: (lambda a: a[1], [leaf(3, 4)]),
        lambda: (lambda a: a[-1, 2], [leaf(3, 4)]),
        lambda: (lambda a: a[None, :, 1], [leaf(3, 4)]),
        lambda: (lambda a: a[..., 0], [leaf(2, 3, 4)]),
        lambda: (lambda a: a[::-1], [leaf(3, 4)]),
        lambda: (lambda a: a[ints([0, 2, 0, 0])], [leaf(3, 4)]),  # repeats accumulate
        lambda: (lambda a: a[ints([[0, 1], [1, 1]])], [leaf(3, 4)]),
        lambda: (lambda a: a[:, ints([3, 0, 3])], [leaf(3, 4)]),
        lambda: (lambda a: a[ints([0, 1, 2, 0]), ints([1, 1, 3, 1])], [leaf(3, 4)]),
        lambda: (lambda a: a[ints([-1, 0])], [leaf(3, 4)]),
        lambda: (
            lambda a: a[mask([[True, False, True, True], [False] * 4, [True] * 4])],
            [leaf(3, 4)],
        ),
        lambda: (lambda a: a[mask([True, False, True])], [leaf(3, 4)]),
        lambda: (lambda a: a.T[ints([1, 1])], [leaf(3, 4)]),
    ],
    "IndexAdd": [
        lambda: (
            lambda g: ops.IndexAdd.apply(
                g, (3, 4), ops._normalize_key(ints([0, 2, 0]), (3, 4), g.device)
            ),
            [leaf(3, 4)],
        ),
        lambda: (
            lambda g: ops.IndexAdd.apply(
                g, (3, 4), ops._normalize_key(slice(1, 3), (3, 4), g.device)
            ),
            [leaf(2, 4)],
        ),
    ],
    "Concat": [
        lambda: (lambda a, b: ops.concat([a, b]), leaves((2, 3), (4, 3))),
        lambda: (lambda a, b, c: ops.concat([a, b, c], axis=-1), leaves((2, 1), (2, 3), (2, 2))),
        lambda: (lambda a, b: ops.concat([a.T, b], axis=1), leaves((4, 3), (3, 2))),
        lambda: (lambda a, b: ops.stack([a, b], axis=1), leaves((2, 3), (2, 3))),
    ],
    "Where": [
        lambda: (
            lambda a, b: ops.where(mask([[True], [False], [True]]), a, b),
            leaves((3, 4), (4,)),
        ),
        lambda: (lambda a: ops.where(mask([True, False, True]), a, 0.0), leaves((2, 3))),
        lambda: (lambda b: ops.where(mask([True, False]), 1.0, b), leaves((2,))),
    ],
}

GRADGRAD = {
    "Add", "Sub", "Mul", "Div", "Pow", "Neg", "Exp", "Log", "Sqrt", "TanhFunction",
    "SigmoidFunction", "MatMul", "Sum", "Reshape", "Transpose", "BroadcastTo", "Getitem",
    "IndexAdd", "Concat",
    "Where", "Cast", "ReLUFunction", "Abs", "Maximum", "Max",
}  # fmt: skip

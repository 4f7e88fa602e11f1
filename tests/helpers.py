"""Small helpers shared by the test files: tensors from NumPy values, comparisons, a training loop.

Every test file imports what it needs from here (``from helpers import t64, close``; ``tests/``
is on the path, see ``conftest.py``). Tensors built here follow the default device, so the same
test runs on NumPy, on array-api-strict and on CuPy. The plain-NumPy reference implementations
live in ``references.py``; a layer's gradient check is ``tinygrad_edu.testing.gradcheck_module``.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg

# ---- tensors -------------------------------------------------------------------------------------


def t64(a, requires_grad=False):
    """A float64 tensor from an array-like."""
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def t32(a, requires_grad=False):
    """A float32 tensor from an array-like."""
    return tg.tensor(np.asarray(a, dtype=np.float32), requires_grad=requires_grad)


def leaf64(a):
    """A float64 tensor that requires grad, from an array-like: ``leaf64([1.0, 2.0])``."""
    return t64(a, requires_grad=True)


def _per_input(value, n):
    return value if isinstance(value, (tuple, list)) else (value,) * n


def leaves(*shapes, low=-1.0, high=1.0, seed=0, requires_grad=True):
    """float64 leaves of the given shapes, uniform in [low, high) (low/high may be per input),
    drawn from a seeded NumPy generator: the same values on every device.

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
    """One float64 leaf of the given shape, uniform in [low, high): ``leaf(3, 4)``."""
    return leaves(shape, low=low, high=high, seed=seed, requires_grad=requires_grad)[0]


def ints(values):
    """An int64 index tensor from a (nested) list."""
    return tg.tensor(np.asarray(values, dtype=np.int64))


def mask(values):
    """A boolean tensor from a (nested) list."""
    return tg.tensor(np.asarray(values, dtype=bool))


def npy(t) -> np.ndarray:
    """A tensor (or a layer's parameter) as a float64 NumPy array."""
    return t.numpy().astype(np.float64)


def other_device(device: str) -> str:
    """A device that is not ``device`` (for the wrong-device errors)."""
    return "strict" if device == "cpu" else "cpu"


# ---- comparisons ---------------------------------------------------------------------------------


def close(actual, expected, rtol=1e-10, atol=1e-12):
    """``actual`` (an array) equals ``expected`` to ``rtol``/``atol``."""
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


def matches_numpy(t: tg.Tensor, expected, rtol=1e-12, atol=1e-12):
    """``t`` has NumPy's shape, dtype and values (NaN where NumPy gives NaN)."""
    expected = np.asarray(expected)
    got = t.numpy()
    assert got.shape == expected.shape, f"shape {got.shape}, NumPy gives {expected.shape}"
    assert got.dtype == expected.dtype, f"dtype {got.dtype}, NumPy gives {expected.dtype}"
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)


def raises_each(*cases) -> None:
    """Every ``(call, exception, pattern)``: ``call()`` raises ``exception`` with a message that
    matches the regular expression ``pattern`` (``re.search``) and is one line."""
    for call, exception, pattern in cases:
        with pytest.raises(exception, match=pattern) as info:
            call()
        assert "\n" not in str(info.value), f"not one line: {info.value}"


def train_losses(model, opt, steps: int, *inputs, **kwargs) -> list[float]:
    """Take ``steps`` steps of ``opt`` on the loss of a ``(logits, loss)`` model called as
    ``model(*inputs, **kwargs)``; returns the loss before each step."""
    losses = []
    for _ in range(steps):
        _, loss = model(*inputs, **kwargs)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses

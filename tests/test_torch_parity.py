"""Where PyTorch and this library should agree, checked against PyTorch itself (float64).

Each test here was written for a difference found by comparing the two: a NumPy scalar that
turned float32 into float64, a float bound truncated on an integer tensor, a gradient that was
NaN where PyTorch's is 0, arguments of the wrong type that failed deep inside NumPy. Tests that
need PyTorch skip when it is not installed; the rest run everywhere.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_edu as tg

pytestmark = pytest.mark.ch16


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is needed to compare against it")


# ---- NumPy scalars are Python numbers -------------------------------------------------------------


@pytest.mark.parametrize("scalar", [np.float64(2.0), np.int64(2), np.float32(2.0)])
def test_numpy_scalar_operand_keeps_float32(scalar):
    x = tg.ones(2, 3)
    assert (x * scalar).dtype == "float32"
    assert (scalar * x).dtype == "float32"
    assert (x + scalar).dtype == "float32"
    assert (x**scalar).dtype == "float32"
    assert tg.maximum(x, scalar).dtype == "float32"
    np.testing.assert_allclose((x * scalar).numpy(), np.full((2, 3), 2.0))


def test_numpy_scalar_operand_matches_torch():
    torch = _torch()
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    ours = tg.tensor(x) / np.sqrt(np.float64(8.0))
    theirs = torch.tensor(x) / np.sqrt(np.float64(8.0))
    assert ours.dtype == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)

"""Bad input to the engine gets a clear error: the op, the shapes as Python tuples, the dtypes or
devices involved, and what was expected. One test per mistake a learner is likely to make."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg

pytestmark = pytest.mark.ch02


def idx(values):
    return tg.tensor(np.asarray(values))


CASES = [
    # (what, callable, exception, message regex)
    ("matmul: inner sizes", lambda: tg.ones(3, 4) @ tg.ones(3, 4), ValueError,
     r"matmul: shapes \(3, 4\) and \(3, 4\) are not aligned.*\(4\).*\(3\)"),
    ("matmul: batch dims", lambda: tg.ones(2, 3, 4) @ tg.ones(3, 4, 5), ValueError,
     r"matmul: batch dimensions of \(2, 3, 4\) and \(3, 4, 5\) cannot be broadcast"),
    ("matmul: 0-d", lambda: tg.ones(3) @ tg.tensor(2.0), ValueError,
     r"matmul: operands must have at least 1 dimension, got \(3,\) and \(\)"),
    ("matmul: not a tensor", lambda: tg.ones(2, 2) @ "x", TypeError,
     r"matmul: expected a Tensor, an array or a list, got str"),
    ("add: broadcasting", lambda: tg.ones(2, 3) + tg.ones(4), ValueError,
     r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast together"),
    ("mul: broadcasting", lambda: tg.ones(2, 3) * tg.ones(3, 2), ValueError,
     r"mul: shapes \(2, 3\) and \(3, 2\) cannot be broadcast"),
    ("where: broadcasting", lambda: tg.where(tg.ones(2) > 0, tg.ones(3), 0.0), ValueError,
     r"where: shapes \(2,\), \(3,\) and \(\) cannot be broadcast"),
    ("where: condition dtype", lambda: tg.where(tg.ones(2), tg.ones(2), 0.0), TypeError,
     r"where: the condition must be a boolean tensor, got dtype float32"),
    ("masked_fill: mask shape", lambda: tg.ones(2, 3).masked_fill(tg.ones(3, 3) > 0, 0.0),
     ValueError, r"masked_fill: mask of shape \(3, 3\) does not broadcast to .* \(2, 3\)"),
    ("broadcast_to", lambda: tg.ones(2, 3).broadcast_to((4, 3)), ValueError,
     r"broadcast_to: cannot broadcast a tensor of shape \(2, 3\) to \(4, 3\)"),
    ("compare", lambda: tg.ones(2) < tg.ones(3), ValueError,
     r"lt: shapes \(2,\) and \(3,\) cannot be compared"),
    ("reshape: size", lambda: tg.ones(2, 3).reshape(4, 2), ValueError,
     r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(4, 2\) \(8"),
    ("reshape: -1 twice", lambda: tg.ones(2, 3).reshape(-1, -1), ValueError,
     r"reshape: only one dimension can be -1, got \(-1, -1\)"),
    ("reshape: -1 does not divide", lambda: tg.ones(2, 3).reshape(-1, 4), ValueError,
     r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(-1, 4\)"),
    ("reshape: float size", lambda: tg.ones(2, 3).reshape(1.5, 4), TypeError,
     r"reshape: the new shape must hold integers, got \(1.5, 4\)"),
    ("transpose: not a permutation", lambda: tg.ones(2, 3).transpose(0, 0), ValueError,
     r"transpose: axes \(0, 0\) are not a permutation of the 2 axes of \(2, 3\)"),
    ("transpose: axis range", lambda: tg.ones(2, 3).transpose(0, 5), ValueError,
     r"transpose: axis 5 is out of range for a tensor of shape \(2, 3\)"),
    ("squeeze: not size 1", lambda: tg.ones(2, 3).squeeze(0), ValueError,
     r"squeeze: axis 0 of shape \(2, 3\) has size 2, not 1"),
    ("unsqueeze: axis range", lambda: tg.ones(2).unsqueeze(3), ValueError,
     r"unsqueeze: axis 3 is out of range for a result with 2 dimensions"),
    ("sum: axis range", lambda: tg.ones(2, 3).sum(axis=2), ValueError,
     r"sum: axis 2 is out of range for a tensor of shape \(2, 3\)"),
    ("max: repeated axis", lambda: tg.ones(2, 3).max(axis=(0, -2)), ValueError,
     r"max: axis \(0, -2\) repeats an axis of a tensor of shape \(2, 3\)"),
    ("mean: float axis", lambda: tg.ones(2, 3).mean(axis=0.5), TypeError,
     r"mean: axis must be None, an int or a tuple of ints, got 0.5"),
    ("max: zero-size", lambda: tg.zeros(0, 3).max(), ValueError,
     r"max: zero-size axis in a tensor of shape \(0, 3\)"),
    ("argmax: empty", lambda: tg.zeros(0).argmax(), ValueError,
     r"argmax: a tensor of shape \(0,\) has no elements"),
    ("clip: min > max", lambda: tg.ones(2).clip(1.0, 0.0), ValueError,
     r"clip: min \(1.0\) is larger than max \(0.0\)"),
    ("concat: other dims", lambda: tg.concat([tg.ones(2, 3), tg.ones(2, 4)]), ValueError,
     r"concat: shapes \(2, 3\) and \(2, 4\) differ outside axis 0"),
    ("concat: axis range", lambda: tg.concat([tg.ones(2, 3), tg.ones(2, 3)], axis=2), ValueError,
     r"concat: axis 2 is out of range for a tensor of shape \(2, 3\)"),
    ("concat: nothing", lambda: tg.concat([]), ValueError, r"concat: needs at least one tensor"),
    ("concat: 0-d", lambda: tg.concat([tg.tensor(1.0)]), ValueError,
     r"concat: zero-dimensional tensors cannot be concatenated; use stack"),
    ("stack: shapes", lambda: tg.stack([tg.ones(2, 3), tg.ones(2, 4)]), ValueError,
     r"stack: all tensors must have the same shape, got \(2, 3\) and \(2, 4\)"),
    ("split: uneven", lambda: tg.split(tg.ones(5), 2), ValueError,
     r"split: axis 0 of size 5 \(shape \(5,\)\) does not divide into 2 equal sections"),
    ("tril: 1-d", lambda: tg.ones(3).tril(), ValueError,
     r"tril: needs at least 2 dimensions, got shape \(3,\)"),
    ("index: float", lambda: tg.ones(3)[1.5], TypeError,
     r"index: indices must be integers, slices, None, ... or integer/boolean arrays, got float"),
    ("index: float slice", lambda: tg.ones(3)[0.5:2], TypeError,
     r"index: slice bounds must be integers or None"),
    ("index: float array", lambda: tg.ones(3)[tg.tensor([0.0, 1.0])], TypeError,
     r"index: index arrays must hold integers or booleans, got dtype float32"),
    ("index: int out of range", lambda: tg.ones(3, 4)[3], IndexError,
     r"index: indexing a tensor of shape \(3, 4\): index 3 is out of bounds for axis 0 with"),
    ("index: array out of range", lambda: tg.ones(3, 4)[idx([0, 7])], IndexError,
     r"index: indexing a tensor of shape \(3, 4\): index 7 is out of bounds for axis 0"),
    ("index: negative out of range", lambda: tg.ones(3, 4)[:, idx([-5])], IndexError,
     r"shape \(3, 4\): index -5 is out of bounds for axis 1 with size 4"),
    ("index: too many", lambda: tg.ones(3)[idx([0]), idx([0])], IndexError,
     r"index: indexing a tensor of shape \(3,\): too many indices"),
    ("index: mask shape", lambda: tg.ones(3, 4)[tg.ones(4) > 0], IndexError,
     r"index: indexing a tensor of shape \(3, 4\): boolean (index|mask)"),
    ("index: arrays do not broadcast", lambda: tg.ones(3, 4)[idx([0, 1]), idx([0, 1, 2])],
     IndexError, r"shape \(3, 4\): shape mismatch: .* \(2,\) \(3,\)"),
    ("tensor: requires_grad on ints", lambda: tg.tensor([1, 2], requires_grad=True), TypeError,
     r"requires_grad=True needs a floating-point tensor, got dtype int64 \(shape \(2,\)\)"),
    ("tensor: None", lambda: tg.tensor(None), TypeError, r"tensor: cannot make a tensor from"),
    ("item: many elements", lambda: tg.ones(2).item(), ValueError,
     r"item\(\): only one-element tensors convert, this one has \(2,\)"),
    ("add: unsupported operand", lambda: tg.ones(2) + "a", TypeError,
     r"add: unsupported operand type str; expected a Tensor"),
    ("pow: integer to a negative power", lambda: tg.tensor([2]) ** -1, ValueError,
     r"pow: .*\(shapes \(1,\) and \(\)\)"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "fn", "exc", "pattern"), CASES, ids=[c[0] for c in CASES])
def test_clear_error(what, fn, exc, pattern, device):
    with pytest.raises(exc, match=pattern):
        fn()


def test_backward_on_non_scalar(device):
    y = tg.ones(2, 3, requires_grad=True) * 2.0
    with pytest.raises(
        RuntimeError, match=r"backward\(\): the output has shape \(2, 3\); .*scalar"
    ):
        y.backward()


def test_backward_twice(device):
    x = tg.ones(2, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"second time \(at \w+\).*retain_graph=True"):
        y.backward()


def test_in_place_write_into_a_graph_leaf(device):
    w = tg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"__setitem__: in-place writes .* tg.no_grad\(\)"):
        w[0] = 3.0
    with tg.no_grad():
        w[0] = 3.0  # the optimizer's way: allowed
    assert w.numpy()[0] == 3.0


@pytest.mark.ch01
@pytest.mark.ch12
def test_devices_mixed(device):
    a = tg.ones(2, 3, device="cpu")
    b = tg.ones(3, 2, device="strict")
    with pytest.raises(
        tg.DeviceError, match=r"MatMul: .*'cpu' and 'strict' \(shapes \(2, 3\) and \(3, 2\)\)"
    ):
        a @ b

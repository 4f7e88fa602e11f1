"""Primitive ops against NumPy over Hypothesis-drawn shapes, and gradient checks over them.

Shapes include 0-d scalars, broadcasting pairs, zero-size dimensions and non-contiguous inputs.
Every op either gives NumPy's result (values, shape and dtype) or a clear error of ours that
names the op and the shapes, never a crash from deep inside the array library.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import matches_numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import (
    any_pairs,
    arrays,
    as_tensor,
    axes_for,
    broadcast_pairs,
    layouts,
    matmul_shapes,
    shapes,
)

import tinygrad_edu as tg
from tinygrad_edu import ops
from tinygrad_edu.testing import gradcheck

pytestmark = pytest.mark.ch02

GRAD = settings(max_examples=12)  # gradchecks cost one forward per input element


# ---- elementwise binary ops: broadcasting, scalars, zero-size dims, layouts ---------------------

BINARY = {
    "add": (ops.add, np.add, (-2.0, 2.0), (-2.0, 2.0)),
    "sub": (ops.sub, np.subtract, (-2.0, 2.0), (-2.0, 2.0)),
    "mul": (ops.mul, np.multiply, (-2.0, 2.0), (-2.0, 2.0)),
    "div": (ops.div, np.divide, (-2.0, 2.0), (0.5, 2.0)),
    "pow": (ops.pow, np.power, (0.5, 2.0), (-2.0, 2.0)),
    "maximum": (ops.maximum, np.maximum, (-2.0, 2.0), (-2.0, 2.0)),
    "minimum": (ops.minimum, np.minimum, (-2.0, 2.0), (-2.0, 2.0)),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data(), pair=broadcast_pairs(min_side=0), la=layouts(), lb=layouts())
def test_binary_matches_numpy(name, data, pair, la, lb):
    op, ref, dom_a, dom_b = BINARY[name]
    a = data.draw(arrays(pair[0], *dom_a))
    b = data.draw(arrays(pair[1], *dom_b))
    matches_numpy(op(as_tensor(a, la), as_tensor(b, lb)), ref(a, b), rtol=1e-10)


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data(), shape=shapes(), number=st.floats(0.5, 2.0), left=st.booleans())
def test_binary_with_python_number_keeps_dtype(name, data, shape, number, left):
    """A Python number is a weak scalar: float32 stays float32 (NumPy 2's rule)."""
    op, ref, dom_a, _ = BINARY[name]
    low = 0.5 if (name == "pow" and not left) or (name == "div" and left) else dom_a[0]
    a = data.draw(arrays(shape, low, 2.0, dtype=np.float32))
    t = as_tensor(a)
    out = op(number, t) if left else op(t, number)
    expected = ref(np.float32(number), a) if left else ref(a, np.float32(number))
    matches_numpy(out, np.asarray(expected, dtype=np.float32), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(BINARY))
@given(pair=any_pairs())
def test_binary_shapes_broadcast_or_clear_error(name, pair):
    op, ref, _, _ = BINARY[name]
    a, b = np.ones(pair[0]), np.full(pair[1], 2.0)
    try:
        expected = ref(a, b)
    except ValueError:
        with pytest.raises(
            ValueError, match=rf"{name}: shapes \(.*\) and \(.*\) cannot be broadcast"
        ):
            op(as_tensor(a), as_tensor(b))
        return
    matches_numpy(op(as_tensor(a), as_tensor(b)), expected)


@given(data=st.data(), pair=broadcast_pairs(min_side=0))
def test_comparisons_match_numpy(data, pair):
    a = as_tensor(data.draw(arrays(pair[0])))
    b = as_tensor(data.draw(arrays(pair[1])))
    an, bn = a.numpy(), b.numpy()
    matches_numpy(a < b, an < bn)
    matches_numpy(a <= b, an <= bn)
    matches_numpy(a > b, an > bn)
    matches_numpy(a >= b, an >= bn)
    matches_numpy(a == b, an == bn)
    matches_numpy(a != b, an != bn)


@given(data=st.data(), shapes3=broadcast_pairs(min_side=0), cond_shape=shapes(0, 2, 1, 4))
def test_where_matches_numpy(data, shapes3, cond_shape):
    a = data.draw(arrays(shapes3[0]))
    b = data.draw(arrays(shapes3[1]))
    cond = data.draw(hnp_bool(cond_shape))
    try:
        expected = np.where(cond, a, b)
    except ValueError:
        with pytest.raises(ValueError, match=r"where: shapes"):
            ops.where(as_tensor(cond), as_tensor(a), as_tensor(b))
        return
    matches_numpy(ops.where(as_tensor(cond), as_tensor(a), as_tensor(b)), expected)


def hnp_bool(shape):
    from hypothesis.extra import numpy as hnp

    return hnp.arrays(np.bool_, shape)


# ---- elementwise unary ops ----------------------------------------------------------------------

UNARY = {
    "neg": (ops.neg, np.negative, -3.0, 3.0),
    "exp": (ops.exp, np.exp, -3.0, 3.0),
    "log": (ops.log, np.log, 0.125, 3.0),
    "sqrt": (ops.sqrt, np.sqrt, 0.0, 3.0),
    "tanh": (ops.tanh, np.tanh, -3.0, 3.0),
    "sigmoid": (ops.sigmoid, lambda x: 1 / (1 + np.exp(-x)), -30.0, 30.0),
    "relu": (ops.relu, lambda x: np.maximum(x, 0), -3.0, 3.0),
    "abs": (ops.abs, np.abs, -3.0, 3.0),
    "clip": (lambda t: ops.clip(t, -0.5, 1.0), lambda x: np.clip(x, -0.5, 1.0), -3.0, 3.0),
}


def _chapter_of(name):
    """relu is exercise 3.3: its cases need chapter 3 (tests/test_learner_path.py)."""
    return [pytest.mark.ch03] if name == "relu" else []


@pytest.mark.parametrize("name", [pytest.param(n, marks=_chapter_of(n)) for n in sorted(UNARY)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data(), shape=shapes(min_side=0), layout=layouts())
def test_unary_matches_numpy(name, dtype, data, shape, layout):
    op, ref, low, high = UNARY[name]
    a = data.draw(arrays(shape, low, high, dtype=dtype))
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    matches_numpy(op(as_tensor(a, layout)), np.asarray(ref(a), dtype=dtype), rtol=rtol, atol=rtol)


def test_sigmoid_and_tanh_are_finite_at_extremes(device):
    x = tg.tensor([-1e3, -30.0, 0.0, 30.0, 1e3], requires_grad=True)
    s = x.sigmoid()
    (s.sum() + x.tanh().sum()).backward()
    assert np.isfinite(s.numpy()).all() and np.isfinite(x.grad.numpy()).all()
    np.testing.assert_allclose(s.numpy()[[0, 2, 4]], [0.0, 0.5, 1.0])


# ---- matmul -------------------------------------------------------------------------------------


@given(data=st.data(), pair=matmul_shapes(), la=layouts(), lb=layouts())
def test_matmul_matches_numpy(data, pair, la, lb):
    a = data.draw(arrays(pair[0]))
    b = data.draw(arrays(pair[1]))
    matches_numpy(as_tensor(a, la) @ as_tensor(b, lb), a @ b, rtol=1e-10, atol=1e-12)


@given(a_shape=shapes(1, 3, 1, 4), b_shape=shapes(1, 3, 1, 4))
def test_matmul_matches_numpy_or_clear_error(a_shape, b_shape):
    a, b = np.ones(a_shape), np.ones(b_shape)
    try:
        expected = a @ b
    except ValueError:
        with pytest.raises(ValueError, match=r"matmul: .*\(.*\) and \(.*\)"):
            as_tensor(a) @ as_tensor(b)
        return
    matches_numpy(as_tensor(a) @ as_tensor(b), expected)


# ---- reductions ---------------------------------------------------------------------------------

REDUCTIONS = {
    "sum": (ops.sum, np.sum),
    "mean": (ops.mean, np.mean),
    "var": (ops.var, np.var),
    "max": (ops.max, np.max),
    "min": (ops.min, np.min),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(data=st.data(), shape=shapes(min_side=1), layout=layouts(), keepdims=st.booleans())
def test_reductions_match_numpy(name, data, shape, layout, keepdims):
    op, ref = REDUCTIONS[name]
    a = data.draw(arrays(shape))
    axis = data.draw(axes_for(len(shape)))
    matches_numpy(op(as_tensor(a, layout), axis, keepdims), ref(a, axis=axis, keepdims=keepdims),
          rtol=1e-10, atol=1e-12)  # fmt: skip


@given(shape=shapes(1, 3, 0, 3).filter(lambda s: 0 in s), keepdims=st.booleans())
def test_reductions_over_zero_size(shape, keepdims):
    a = np.ones(shape)
    matches_numpy(ops.sum(as_tensor(a), None, keepdims), np.sum(a, keepdims=keepdims))
    with pytest.raises(ValueError, match=r"max: zero-size axis .* shape \(.*\)"):
        ops.max(as_tensor(a), None, keepdims)
    for axis, size in enumerate(shape):
        if size:  # reducing over a non-empty axis is fine, even with an empty one elsewhere
            matches_numpy(
                ops.max(as_tensor(a), axis, keepdims), np.max(a, axis=axis, keepdims=keepdims)
            )


@pytest.mark.parametrize("op", [ops.sum, ops.max, ops.mean])
def test_reduction_axis_out_of_range_is_clear(op, device):
    with pytest.raises(
        ValueError, match=r"(sum|max|mean): axis 2 is out of range .* shape \(3, 4\)"
    ):
        op(tg.ones(3, 4), 2)


@given(data=st.data(), shape=shapes(1, 3, 1, 4))
def test_argmax_argmin_match_numpy(data, shape):
    a = data.draw(arrays(shape))
    axis = data.draw(st.sampled_from([None, *range(-len(shape), len(shape))]))
    matches_numpy(ops.argmax(as_tensor(a), axis), np.argmax(a, axis=axis))
    matches_numpy(ops.argmin(as_tensor(a), axis), np.argmin(a, axis=axis))


# ---- shape ops ----------------------------------------------------------------------------------


@given(data=st.data(), shape=shapes(min_side=0), layout=layouts())
def test_reshape_matches_numpy(data, shape, layout):
    a = data.draw(arrays(shape))
    target = data.draw(st.sampled_from([(-1,), (a.size,), (1, a.size), (a.size, 1, 1)]))
    matches_numpy(as_tensor(a, layout).reshape(target), a.reshape(target))
    matches_numpy(as_tensor(a, layout).flatten(), a.reshape(-1))


@given(in_shape=shapes(0, 3, 1, 4), out_shape=shapes(0, 3, 1, 4))
def test_reshape_matches_numpy_or_clear_error(in_shape, out_shape):
    a = np.ones(in_shape)
    if a.size != int(np.prod(out_shape)):
        with pytest.raises(ValueError, match=r"reshape: cannot reshape .* shape \(.*\) .* into \("):
            as_tensor(a).reshape(out_shape)
    else:
        matches_numpy(as_tensor(a).reshape(out_shape), a.reshape(out_shape))


@given(data=st.data(), shape=shapes(min_side=0), layout=layouts())
def test_transpose_matches_numpy(data, shape, layout):
    a = data.draw(arrays(shape))
    axes = tuple(data.draw(st.permutations(range(a.ndim))))
    matches_numpy(as_tensor(a, layout).transpose(axes), np.transpose(a, axes))
    matches_numpy(as_tensor(a, layout).T, a.T)
    if a.ndim >= 2:
        matches_numpy(as_tensor(a, layout).mT, np.swapaxes(a, -1, -2))


@given(pair=broadcast_pairs(min_side=0))
def test_broadcast_to_matches_numpy(pair):
    a = np.arange(float(np.prod(pair[0]))).reshape(pair[0])
    target = np.broadcast_shapes(*pair)
    matches_numpy(as_tensor(a).broadcast_to(target), np.broadcast_to(a, target))


@given(data=st.data(), shape=shapes(1, 3, 1, 4))
def test_squeeze_unsqueeze_match_numpy(data, shape):
    a = data.draw(arrays(shape))
    axis = data.draw(st.integers(-a.ndim - 1, a.ndim))
    matches_numpy(as_tensor(a).unsqueeze(axis), np.expand_dims(a, axis))
    matches_numpy(as_tensor(a).squeeze(), np.squeeze(a))


@given(data=st.data(), shape=shapes(1, 3, 0, 4), n=st.integers(1, 3), layout=layouts())
def test_concat_stack_split_match_numpy(data, shape, n, layout):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    pieces = []
    for _ in range(n):
        s = list(shape)
        s[axis] = data.draw(st.integers(0, 3))
        pieces.append(data.draw(arrays(tuple(s))))
    tensors = [as_tensor(p, layout) for p in pieces]
    matches_numpy(ops.concat(tensors, axis=axis), np.concatenate(pieces, axis=axis))
    same = [as_tensor(pieces[0], layout)] * n
    matches_numpy(ops.stack(same, axis=axis), np.stack([pieces[0]] * n, axis=axis))
    joined = np.concatenate(pieces, axis=axis)
    cuts = list(np.cumsum([p.shape[axis] for p in pieces])[:-1])
    for got, want in zip(ops.split(as_tensor(joined), cuts, axis), np.split(joined, cuts, axis),
                         strict=True):  # fmt: skip
        matches_numpy(got, want)


@given(data=st.data(), shape=shapes(2, 3, 1, 5), k=st.integers(-2, 2))
def test_tril_triu_match_numpy(data, shape, k):
    a = data.draw(arrays(shape))
    matches_numpy(ops.tril(as_tensor(a), k), np.tril(a, k))
    matches_numpy(ops.triu(as_tensor(a), k), np.triu(a, k))


# ---- indexing -----------------------------------------------------------------------------------


@st.composite
def index_keys(draw, shape):
    """A NumPy index for ``shape``: ints, slices (any step), None, Ellipsis, integer arrays
    (repeats and negatives allowed) or a boolean mask."""
    kind = draw(st.sampled_from(["basic", "int_array", "two_arrays", "mask", "int_and_array"]))
    nd = len(shape)
    if kind == "mask" and nd:
        k = draw(st.integers(1, nd))
        return (draw(hnp_bool(shape[:k])),)
    if kind in ("int_array", "two_arrays", "int_and_array") and nd:
        axis = draw(st.integers(0, nd - 1))
        n = shape[axis]
        idx = np.asarray(
            draw(st.lists(st.integers(-n, n - 1), min_size=0, max_size=5)), dtype=np.int64
        )
        key = [slice(None)] * axis + [idx]
        if kind == "two_arrays" and axis + 1 < nd:
            m = shape[axis + 1]
            key.append(np.asarray(draw(st.lists(st.integers(-m, m - 1), min_size=len(idx),
                                                 max_size=len(idx))), dtype=np.int64))  # fmt: skip
        if kind == "int_and_array" and axis + 1 < nd:
            key.append(slice(None))
            key.append(draw(st.integers(-shape[-1], shape[-1] - 1)))
            key = key[:nd]
        return tuple(key)
    key = []
    for s in shape:
        choice = draw(st.sampled_from(["int", "slice", "full"]))
        if choice == "int":
            key.append(draw(st.integers(-s, s - 1)))
        elif choice == "slice":
            start = draw(st.none() | st.integers(-s - 1, s + 1))
            stop = draw(st.none() | st.integers(-s - 1, s + 1))
            step = draw(st.none() | st.sampled_from([1, 2, -1, -2]))
            key.append(slice(start, stop, step))
        else:
            key.append(slice(None))
    if draw(st.booleans()):
        key.insert(draw(st.integers(0, len(key))), None)
    if draw(st.booleans()) and key:
        key = key[: draw(st.integers(0, len(key)))] + [Ellipsis]
    return tuple(key)


def _to_tensor_key(key):
    return tuple(as_tensor(k) if isinstance(k, np.ndarray) else k for k in key)


@given(data=st.data(), shape=shapes(0, 3, 1, 4), layout=layouts())
def test_getitem_matches_numpy(data, shape, layout):
    a = data.draw(arrays(shape))
    key = data.draw(index_keys(shape))
    matches_numpy(as_tensor(a, layout)[_to_tensor_key(key)], a[key])


@given(data=st.data(), shape=shapes(1, 3, 1, 4), n_keys=st.integers(1, 4), use_array=st.booleans())
def test_getitem_matches_numpy_or_clear_error(data, shape, n_keys, use_array):
    """Indices that may be out of range, or too many: NumPy's result, or our IndexError."""
    a = np.arange(float(np.prod(shape))).reshape(shape)
    key = []
    for i in range(n_keys):
        n = shape[i] if i < len(shape) else 1
        if use_array and i == 0:
            key.append(
                np.asarray(data.draw(st.lists(st.integers(-2 * n, 2 * n), max_size=3)), np.int64)
            )
        else:
            key.append(data.draw(st.integers(-2 * n, 2 * n)))
    key = tuple(key)
    try:
        expected = a[key]
    except IndexError:
        with pytest.raises(IndexError, match=r"index: indexing a tensor of shape \("):
            as_tensor(a)[_to_tensor_key(key)]
        return
    matches_numpy(as_tensor(a)[_to_tensor_key(key)], expected)


@settings(max_examples=15)
@given(data=st.data(), shape=shapes(1, 3, 1, 4))
def test_getitem_gradcheck(data, shape):
    a = data.draw(arrays(shape))
    key = _to_tensor_key(data.draw(index_keys(shape)))
    x = as_tensor(a, requires_grad=True)
    if x[key].size == 0:
        return
    assert gradcheck(lambda x: x[key], [x], name="getitem")


def test_repeated_indices_accumulate(device):
    x = tg.zeros(3, 2, requires_grad=True)
    x[tg.tensor(np.array([0, 2, 0, 0]))].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[3, 3], [0, 0], [1, 1]])


def test_setitem_writes_data_outside_the_graph(device):
    x = tg.zeros(2, 3)
    x[0, 1] = 5.0
    x[1] = tg.ones(3)
    np.testing.assert_array_equal(x.numpy(), [[0, 5, 0], [1, 1, 1]])
    w = tg.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="__setitem__: in-place"):
        w[0] = 1.0


# ---- dtypes -------------------------------------------------------------------------------------


@pytest.mark.ch03  # every op, relu (exercise 3.3) among them
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_dtype_is_kept_through_every_op(dtype, device):
    a = tg.rand(2, 3, dtype=dtype, requires_grad=True)
    b = tg.rand(3, 2, dtype=dtype, requires_grad=True)
    results = [
        a + 1, 1 + a, a - 1.5, 2 - a, a * 2, 2 * a, a / 3, 3 / (a + 1), a**2, 2.0**a, -a,
        a.exp(), (a + 1).log(), (a + 1).sqrt(), a.tanh(), a.sigmoid(), a.relu(), a.abs(),
        a.maximum(0.5), a.minimum(0.5), a.clip(0.1, 0.9), a @ b, a.sum(), a.mean(axis=0),
        a.var(), a.max(axis=1), a.min(), a.reshape(6), a.T, a.broadcast_to((4, 2, 3)), a[0],
        a[tg.tensor(np.array([1, 1]))], ops.concat([a, a]), ops.stack([a, a]),
        ops.where(a > 0.5, a, 0.0), a.masked_fill(a > 0.5, 0.0), ops.tril(a),
    ]  # fmt: skip
    for i, r in enumerate(results):
        assert r.dtype == dtype, f"result {i} has dtype {r.dtype}"
    total = results[0].sum()
    for r in results[1:]:
        total = total + r.sum()
    total.backward()
    assert a.grad.dtype == dtype and b.grad.dtype == dtype


@pytest.mark.parametrize(
    ("make", "dtype"),
    [
        (lambda: tg.arange(4) * 0.5, "float32"),  # integers meet a Python float: float32
        (lambda: 0.5 + tg.arange(4), "float32"),
        (lambda: tg.arange(4) / 2, "float32"),  # true division of integers
        (lambda: tg.arange(4) / tg.arange(1, 5), "float32"),
        (lambda: tg.arange(4).mean(), "float32"),
        (lambda: tg.exp(tg.arange(3)), "float32"),
        (lambda: (tg.ones(2) > 0) * 1.0, "float32"),  # booleans too
        (lambda: tg.ones(2) + tg.arange(2), "float32"),  # a float tensor meets an int tensor
        (lambda: tg.arange(2) @ tg.ones(2, 3), "float32"),
        (lambda: tg.ones(2, dtype="float64") * tg.arange(2), "float64"),
        (lambda: tg.ones(2, dtype="float64") + tg.ones(2), "float64"),  # NumPy's float rule
        (lambda: tg.arange(4) + 1, "int64"),  # integers stay integers
        (lambda: tg.arange(4) * 2, "int64"),
    ],
)
def test_mixed_dtype_rules_are_the_same_on_every_device(make, dtype, device):
    assert make().dtype == dtype


def test_cast_backward_returns_the_input_dtype(device):
    x = tg.ones(3, dtype="float32", requires_grad=True)
    y = x.astype("float64")
    assert y.dtype == "float64"
    (y * 2.0).sum().backward()
    assert x.grad.dtype == "float32"
    np.testing.assert_array_equal(x.grad.numpy(), [2, 2, 2])


def test_astype_to_int_is_not_differentiable(device):
    x = tg.tensor([1.7, -2.2], requires_grad=True)
    i = x.astype("int64")
    assert i.dtype == "int64" and not i.requires_grad
    np.testing.assert_array_equal(i.numpy(), [1, -2])


# ---- gradient checks over drawn shapes ----------------------------------------------------------


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "maximum"])
@GRAD
@given(data=st.data(), pair=broadcast_pairs(max_dims=3, max_side=3), la=layouts())
def test_binary_gradcheck(name, data, pair, la):
    op, _, dom_a, dom_b = BINARY[name]
    if name == "maximum":  # values on two interleaved grids: never a tie
        a = data.draw(hnp_grid(pair[0], 0.0))
        b = data.draw(hnp_grid(pair[1], 0.1))
    else:
        a = data.draw(arrays(pair[0], *dom_a))
        b = data.draw(arrays(pair[1], *dom_b))
    x, y = as_tensor(a, la, requires_grad=True), as_tensor(b, requires_grad=True)
    assert gradcheck(op, [x, y], name=name)


def hnp_grid(shape, offset):
    from hypothesis.extra import numpy as hnp

    return hnp.arrays(
        np.float64, shape, elements=st.integers(-5, 5).map(lambda k: 0.2 * k + offset)
    )


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sigmoid"])
@GRAD
@given(data=st.data(), shape=shapes(max_side=3), layout=layouts())
def test_unary_gradcheck(name, data, shape, layout):
    op, _, low, high = UNARY[name]
    a = data.draw(arrays(shape, builtins_max(low, 0.2) if name in ("log", "sqrt") else low, high))
    assert gradcheck(op, [as_tensor(a, layout, requires_grad=True)], name=name)


def builtins_max(a, b):
    return a if a > b else b


@GRAD
@given(data=st.data(), pair=matmul_shapes(max_side=3), la=layouts(), lb=layouts())
def test_matmul_gradcheck(data, pair, la, lb):
    a = as_tensor(data.draw(arrays(pair[0])), la, requires_grad=True)
    b = as_tensor(data.draw(arrays(pair[1])), lb, requires_grad=True)
    assert gradcheck(ops.matmul, [a, b], name="matmul")


@pytest.mark.parametrize("name", ["sum", "mean", "var", "max"])
@GRAD
@given(data=st.data(), shape=shapes(max_side=3), keepdims=st.booleans(), layout=layouts())
def test_reduction_gradcheck(name, data, shape, keepdims, layout):
    op, _ = REDUCTIONS[name]
    n = int(np.prod(shape))
    values = data.draw(st.permutations(range(n)))  # distinct values: no ties for max
    a = np.asarray(values, dtype=np.float64).reshape(shape) * 0.1
    axis = data.draw(axes_for(len(shape)))
    x = as_tensor(a, layout, requires_grad=True)
    assert gradcheck(lambda x: op(x, axis, keepdims), [x], name=name)


@GRAD
@given(data=st.data(), shape=shapes(1, 3, 1, 3), n=st.integers(1, 3))
def test_concat_gradcheck(data, shape, n):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    tensors = []
    for _ in range(n):
        s = list(shape)
        s[axis] = data.draw(st.integers(1, 2))
        tensors.append(as_tensor(data.draw(arrays(tuple(s))), requires_grad=True))
    assert gradcheck(lambda *ts: ops.concat(ts, axis=axis), tensors, name="concat")


@GRAD
@given(data=st.data(), shape=shapes(0, 3, 1, 3), layout=layouts())
def test_shape_ops_gradcheck(data, shape, layout):
    x = as_tensor(data.draw(arrays(shape)), layout, requires_grad=True)
    axes = tuple(data.draw(st.permutations(range(x.ndim))))

    def fn(x):
        y = x.transpose(axes).reshape(-1)
        return y.reshape((1,) + y.shape).broadcast_to((2,) + (1,) + y.shape)

    assert gradcheck(fn, [x], name="transpose-reshape-broadcast")


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=_chapter_of(n)) for n in ["relu", "abs", "clip"]]
)
@GRAD
@given(data=st.data(), shape=shapes(max_side=3), layout=layouts())
def test_kinked_unary_gradcheck(name, data, shape, layout):
    """Values on the grid 0.2 k + 0.05 never sit on a kink (0 for relu/abs, -0.5/1.0 for clip)."""
    op = UNARY[name][0]
    a = data.draw(hnp_grid(shape, 0.05))
    assert gradcheck(op, [as_tensor(a, layout, requires_grad=True)], name=name)


@GRAD
@given(data=st.data(), pair=broadcast_pairs(max_dims=3, max_side=3), cond_shape=shapes(0, 2, 1, 3))
def test_where_gradcheck(data, pair, cond_shape):
    try:
        np.broadcast_shapes(pair[0], pair[1], cond_shape)
    except ValueError:
        return
    cond = as_tensor(data.draw(hnp_bool(cond_shape)))
    a = as_tensor(data.draw(arrays(pair[0])), requires_grad=True)
    b = as_tensor(data.draw(arrays(pair[1])), requires_grad=True)
    assert gradcheck(lambda a, b: ops.where(cond, a, b), [a, b], name="where")

"""Tests for ``tinygrad_edu/functional/`` (the recurrent kernels: ``test_rnn.py``).

Every forward is compared with a plain-NumPy reference (a loop over positions for conv1d, a loop
over queries for attention, PyTorch's documented formulas for the losses); every differentiable
input is gradient-checked in float64; each fused rule equals its composed version from the
library (``F.*_composed``, built from the primitives of ``ops.py``) in forward and gradients and
stays finite at logits of +-1e4; float32 stays float32; bad input gets a clear error. The
per-Function gradcheck/gradgradcheck cases live in ``tests/cases/functional.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import references
from helpers import close, ints, leaf64, t32, t64
from hypothesis import given
from hypothesis import strategies as st
from strategies import arrays, as_tensor, conv1d_sizes, layouts, shapes

import tinygrad_edu as tg
import tinygrad_edu.functional as F
from tinygrad_edu import nn
from tinygrad_edu.testing import gradcheck

ch03, ch04, ch05, ch06 = pytest.mark.ch03, pytest.mark.ch04, pytest.mark.ch05, pytest.mark.ch06
ch09, ch10 = pytest.mark.ch09, pytest.mark.ch10
# softplus's backward is exercise 13.1 (a fused rule), and binary_cross_entropy_with_logits uses it
ch13 = pytest.mark.ch13


# =================================================================================================
# Helpers: gradients (tensors: helpers.py, NumPy: references.py, composed ops: F.*_composed)
# =================================================================================================


def grads_of(fn, inputs, upstream):
    """Gradients of ``sum(upstream * fn(*inputs))`` with respect to every input."""
    for x in inputs:
        x.grad = None
    out = fn(*inputs)
    out.backward(tg.tensor(np.asarray(upstream, dtype=out.numpy().dtype)))
    return [x.grad.numpy() for x in inputs]


# =================================================================================================
# linear, relu, sigmoid, tanh, softplus (chapter 3)
# =================================================================================================


@ch03
def test_linear_matches_numpy_and_gradchecks():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    close(F.linear(leaf64(x), leaf64(w), leaf64(b)).numpy(), x @ w.T + b)
    close(F.linear(leaf64(x), leaf64(w)).numpy(), x @ w.T)
    assert gradcheck(F.linear, [leaf64(x), leaf64(w), leaf64(b)])
    assert gradcheck(lambda a, c: F.linear(a, c), [leaf64(x[0]), leaf64(w)])


@ch03
def test_linear_is_one_graph_node_for_any_leading_axes():
    # the leading axes are flattened inside LinearFunction: no reshape nodes around it
    x, w = leaf64(np.ones((2, 3, 4))), leaf64(np.ones((5, 4)))
    y = nn.Linear(4, 5).astype("float64")(x)
    assert type(y._ctx).__name__ == "LinearFunction" and y._ctx.inputs[0] is x
    y = F.linear(x, w)
    assert y.shape == (2, 3, 5) and y._ctx.inputs[0] is x
    y.sum().backward()
    assert x.grad.shape == (2, 3, 4) and w.grad.shape == (5, 4)
    close(x.grad.numpy(), np.full((2, 3, 4), 5.0))
    close(w.grad.numpy(), np.full((5, 4), 6.0))


@ch03
def test_linear_errors():
    with pytest.raises(
        ValueError, match=r"linear: input of shape \(2, 3\) has 3 features.*\(5, 4\)"
    ):
        F.linear(tg.ones(2, 3), tg.ones(5, 4))
    with pytest.raises(ValueError, match=r"linear: weight must be 2-D"):
        F.linear(tg.ones(2, 3), tg.ones(3))
    with pytest.raises(ValueError, match=r"linear: bias of shape \(4,\).*expected \(5,\)"):
        F.linear(tg.ones(2, 4), tg.ones(5, 4), tg.ones(4))
    with pytest.raises(TypeError, match="linear: input must be a floating-point tensor"):
        F.linear(tg.tensor([[1, 2]]), tg.ones(3, 2))


@ch03
@given(shape=shapes(0, 3), layout=layouts(), data=st.data())
def test_elementwise_activations_match_numpy(shape, layout, data):
    a = data.draw(arrays(shape, -5.0, 5.0))
    x = as_tensor(a, layout)
    close(F.relu(x).numpy(), np.maximum(a, 0.0))
    close(F.sigmoid(x).numpy(), 1.0 / (1.0 + np.exp(-a)))
    close(F.tanh(x).numpy(), np.tanh(a))
    close(F.softplus(x).numpy(), np.logaddexp(0.0, a))
    close(F.gelu(x).numpy(), references.gelu(a), rtol=1e-13, atol=1e-15)
    inner = math.sqrt(2 / math.pi) * (a + 0.044715 * a**3)
    close(F.gelu(x, approximate="tanh").numpy(), 0.5 * a * (1 + np.tanh(inner)))


@ch13
def test_softplus_extremes_and_gradient():
    x = t32([-1e4, -50.0, 0.0, 50.0, 1e4], requires_grad=True)
    y = F.softplus(x)
    close(y.numpy(), [0.0, np.logaddexp(0, -50.0), math.log(2), 50.0, 1e4], rtol=1e-6)
    y.sum().backward()
    assert y.dtype == "float32" and x.grad.dtype == "float32"
    close(x.grad.numpy(), [0.0, 1 / (1 + math.exp(50)), 0.5, 1.0, 1.0], rtol=1e-6, atol=1e-30)
    assert gradcheck(F.softplus, [leaf64([-3.0, -0.5, 0.0, 0.7, 4.0])])


# =================================================================================================
# GELU (chapter 10)
# =================================================================================================


@ch10
def test_normal_cdf_is_accurate_to_float64_roundoff():
    # every interval of Cody's approximation, and the far left tail (relative accuracy)
    # Phi's condition number at x is about 1 + x^2 (rounding x by 1e-16 moves Phi(-37) by 1e-13),
    # so the bound is 1e-15 (1 + x^2): 1e-15 near 0, 6.5e-14 at |x| = 8, 1.4e-12 at x = -37.
    x = np.concatenate([np.linspace(-37.0, 8.0, 4001), [0.0, 1e-300, -1e-300]])
    got = F.NormalCDFFunction.apply(t64(x)).numpy()
    ref = references.normal_cdf(x)
    rel = np.abs(got - ref) / ref / (1.0 + x * x)
    assert rel.max() < 1e-15, f"relative error {rel.max():.2e} (1 + x^2) at x = {x[rel.argmax()]}"
    assert np.all(np.diff(got[:4001]) >= 0)  # monotone


@ch10
def test_gelu_exact_matches_erf_and_gradchecks():
    x = np.linspace(-9.0, 9.0, 37) + 0.013
    close(F.gelu(leaf64(x)).numpy(), references.gelu(x), rtol=1e-12, atol=1e-300)
    assert gradcheck(F.gelu, [leaf64(x)])
    assert gradcheck(lambda a: F.gelu(a, approximate="tanh"), [leaf64(x)])
    # backward = Phi(x) + x phi(x)
    xt = leaf64(x)
    F.gelu(xt).sum().backward()
    phi = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    close(xt.grad.numpy(), references.normal_cdf(x) + x * phi, rtol=1e-12, atol=1e-300)


@ch10
def test_float32_normal_cdf_and_gelu_are_accurate_to_a_few_ulps():
    x = np.linspace(-12.0, 12.0, 24001)
    ref_cdf = references.normal_cdf(x)
    cdf = F.NormalCDFFunction.apply(t32(x)).numpy()
    assert cdf.dtype == np.float32
    assert np.abs(cdf - ref_cdf).max() < 2.5e-7
    y = F.gelu(t32(x)).numpy()
    xf = x.astype(np.float32).astype(np.float64)  # the float32 input, exactly
    assert np.all(np.abs(y - references.gelu(xf)) <= 2.5e-7 * np.abs(xf) + 1e-7)
    close(F.gelu(t32([-1e4, -50.0, 50.0, 1e4])).numpy(), [0.0, 0.0, 50.0, 1e4], rtol=1e-7)


@ch10
def test_gelu_float32_and_errors():
    x = t32([-2.0, 0.5, 3.0], requires_grad=True)
    for approximate in ("none", "tanh"):
        x.grad = None
        y = F.gelu(x, approximate=approximate)
        y.sum().backward()
        assert y.dtype == "float32" and x.grad.dtype == "float32"
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh', got 'erf'"):
        F.gelu(x, approximate="erf")


@ch10
def test_gelu_without_a_graph_is_the_same_and_keeps_nothing():
    x = t32(np.random.default_rng(3).standard_normal((300, 500)) * 3)  # several 64K pieces
    recorded = F.GELUFunction()
    y = recorded.forward(x.data)
    with tg.no_grad():
        evaluation = F.GELUFunction()
        y_eval = evaluation.forward(x.data)
    assert np.array_equal(y, y_eval) and recorded.cdf.shape == x.shape
    assert evaluation.cdf is None  # Phi(x) is kept only for a backward pass


@ch10
def test_fused_gelu_equals_composed():
    rng = np.random.default_rng(7)
    a, g = rng.standard_normal((4, 5)) * 3, rng.standard_normal((4, 5))
    x = leaf64(a)
    close(F.gelu(x).numpy(), F.gelu_composed(x).numpy(), rtol=1e-14, atol=1e-15)
    close(grads_of(F.gelu, [x], g)[0], grads_of(F.gelu_composed, [x], g)[0])


# =================================================================================================
# softmax and log_softmax (chapter 4)
# =================================================================================================


@ch04
@given(shape=shapes(1, 3), layout=layouts(), data=st.data())
def test_softmax_and_log_softmax_match_numpy(shape, layout, data):
    a = data.draw(arrays(shape, -10.0, 10.0))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = as_tensor(a, layout)
    close(F.softmax(x, axis).numpy(), references.softmax(a, axis))
    close(F.log_softmax(x, axis).numpy(), references.log_softmax(a, axis))


@ch04
@given(shape=shapes(1, 3, max_side=3), data=st.data())
def test_softmax_and_log_softmax_gradcheck_any_shape(shape, data):
    a = data.draw(arrays(shape, -3.0, 3.0))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    assert gradcheck(lambda x: F.softmax(x, axis), [leaf64(a)])
    assert gradcheck(lambda x: F.log_softmax(x, axis), [leaf64(a)])


@ch04
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_fused_softmax_equals_composed(axis):
    rng = np.random.default_rng(1)
    a, g = rng.standard_normal((3, 4, 5)) * 3, rng.standard_normal((3, 4, 5))
    for fused, composed in (
        (F.softmax, F.softmax_composed),
        (F.log_softmax, F.log_softmax_composed),
    ):
        x = leaf64(a)
        close(fused(x, axis).numpy(), composed(x, axis).numpy())
        close(grads_of(lambda x, f=fused: f(x, axis), [x], g)[0],
              grads_of(lambda x, f=composed: f(x, axis), [x], g)[0])  # fmt: skip


@ch04
def test_softmax_extremes_stay_finite():
    a = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype=np.float32)
    g = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0], [0.3, -0.2, 1.0]], dtype=np.float32)
    for fn in (F.softmax, F.log_softmax):
        x = t32(a, requires_grad=True)
        y = fn(x)
        y.backward(t32(g))
        assert np.isfinite(y.numpy()).all() and np.isfinite(x.grad.numpy()).all()
        assert y.dtype == "float32" and x.grad.dtype == "float32"
    close(F.softmax(t32(a)).numpy(), [[1, 0, 0], [1 / 3] * 3, [0.5, 0.5, 0]], rtol=1e-6)
    close(F.log_softmax(t32(a)).numpy()[0], [0.0, -2e4, -1e4], rtol=1e-6)


@ch04
def test_softmax_of_a_fully_masked_row_is_zero():
    x = leaf64([[-math.inf, -math.inf], [0.0, -math.inf]])
    y = F.softmax(x)
    close(y.numpy(), [[0.0, 0.0], [1.0, 0.0]])
    y.backward(t64([[1.0, 2.0], [3.0, 4.0]]))
    close(x.grad.numpy(), np.zeros((2, 2)))


@ch04
def test_softmax_of_a_scalar():
    x = leaf64(2.5)
    close(F.softmax(x).numpy(), 1.0)
    close(F.log_softmax(x, axis=0).numpy(), 0.0)
    assert F.softmax(x).shape == ()
    assert gradcheck(F.softmax, [leaf64(0.3)]) and gradcheck(F.log_softmax, [leaf64(0.3)])


@ch04
def test_softmax_errors():
    with pytest.raises(ValueError, match="softmax: axis 2 is out of range for a tensor with 2"):
        F.softmax(tg.ones(2, 3), axis=2)
    with pytest.raises(TypeError, match="log_softmax: input must be a floating-point tensor"):
        F.log_softmax(tg.tensor([1, 2]))


# =================================================================================================
# Losses (chapter 4)
# =================================================================================================

CE_SETTINGS = [
    (reduction, smoothing) for reduction in ("mean", "sum", "none") for smoothing in (0.0, 0.25)
]


@ch04
@pytest.mark.parametrize(("reduction", "label_smoothing"), CE_SETTINGS)
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5), (2, 3, 2, 2)])
def test_cross_entropy_matches_pytorch_formula(shape, reduction, label_smoothing):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape) * 2
    target = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    target.reshape(-1)[1] = -100  # one ignored target
    got = F.cross_entropy(
        leaf64(x), ints(target), reduction=reduction, label_smoothing=label_smoothing
    )
    ref = references.cross_entropy(x, target, -100, reduction, label_smoothing)
    assert got.shape == np.shape(ref)
    close(got.numpy(), ref)
    # gradient: PyTorch's (softmax - q) * upstream / count, checked numerically
    assert gradcheck(
        lambda a: F.cross_entropy(
            a, ints(target), reduction=reduction, label_smoothing=label_smoothing
        ),  # fmt: skip
        [leaf64(x)],
    )


@ch04
@given(
    n=st.integers(1, 4),
    c=st.integers(1, 5),
    extra=st.lists(st.integers(1, 3), max_size=2),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    label_smoothing=st.sampled_from([0.0, 0.1, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_cross_entropy_any_shape(n, c, extra, reduction, label_smoothing, seed):
    rng = np.random.default_rng(seed)
    shape = (n, c) + tuple(extra)
    x = rng.standard_normal(shape) * 3
    target = rng.integers(0, c, (n,) + tuple(extra))
    target.reshape(-1)[rng.random(target.size) < 0.2] = -100
    if reduction == "mean" and (target == -100).all():
        target.reshape(-1)[0] = 0
    kw = dict(reduction=reduction, label_smoothing=label_smoothing)
    got = F.cross_entropy(leaf64(x), ints(target), **kw)
    close(got.numpy(), references.cross_entropy(x, target, -100, reduction, label_smoothing))


@ch04
def test_cross_entropy_unbatched_and_custom_ignore_index():
    x = np.array([0.5, -1.0, 2.0])
    close(F.cross_entropy(leaf64(x), ints(2)).numpy(), -references.log_softmax(x)[2])
    xs = np.random.default_rng(3).standard_normal((5, 3))
    target = np.array([0, 1, 2, 0, 1])
    got = F.cross_entropy(leaf64(xs), ints(target), ignore_index=0, label_smoothing=0.1)
    close(got.numpy(), references.cross_entropy(xs, target, 0, "mean", 0.1))


@ch04
@pytest.mark.parametrize(("reduction", "label_smoothing"), CE_SETTINGS)
def test_fused_cross_entropy_equals_composed(reduction, label_smoothing):
    rng = np.random.default_rng(4)
    x, target = rng.standard_normal((7, 5)) * 3, rng.integers(0, 5, 7)
    target[[2, 5]] = -100
    g = rng.standard_normal(7) if reduction == "none" else rng.standard_normal(())
    kw = dict(reduction=reduction, label_smoothing=label_smoothing)
    xt = leaf64(x)
    close(F.cross_entropy(xt, ints(target), **kw).numpy(),
          F.cross_entropy_composed(xt, ints(target), **kw).numpy())  # fmt: skip
    fused = grads_of(lambda a: F.cross_entropy(a, ints(target), **kw), [xt], g)[0]
    close(fused, grads_of(lambda a: F.cross_entropy_composed(a, ints(target), **kw), [xt], g)[0])


@ch04
def test_cross_entropy_at_logits_of_1e4_is_finite_and_right():
    x = t32([[1e4, -1e4, 0.0], [-1e4, 1e4, -1e4], [0.0, 0.0, 0.0]], requires_grad=True)
    target = ints([1, 1, 2])
    loss = F.cross_entropy(x, target, label_smoothing=0.1)
    loss.backward()
    assert loss.dtype == "float32" and x.grad.dtype == "float32"
    assert np.isfinite(loss.numpy()) and np.isfinite(x.grad.numpy()).all()
    ref = references.cross_entropy(
        x.numpy().astype(np.float64), target.numpy(), label_smoothing=0.1
    )
    close(loss.numpy(), ref, rtol=1e-6)
    p = references.softmax(x.numpy().astype(np.float64), 1)
    q = 0.9 * np.eye(3)[[1, 1, 2]] + 0.1 / 3
    close(x.grad.numpy(), (p - q) / 3, rtol=1e-5, atol=1e-7)


@ch04
def test_cross_entropy_all_ignored_gives_nan_loss_and_zero_gradient():
    x = leaf64(np.ones((2, 3)))
    loss = F.cross_entropy(x, ints([-100, -100]))
    assert math.isnan(loss.item())  # 0 / 0, as PyTorch
    loss.backward()
    close(x.grad.numpy(), np.zeros((2, 3)))
    close(F.cross_entropy(x, ints([-100, -100]), reduction="sum").numpy(), 0.0)


@ch04
@pytest.mark.parametrize(
    "loss_fn",
    [F.cross_entropy_composed, lambda x, t: F.nll_loss(F.log_softmax(x, axis=1), t)],
    ids=["cross_entropy_composed", "nll_loss"],
)
def test_composed_losses_all_ignored_give_nan_loss_and_zero_gradient(loss_fn):
    # the composed losses divide by the count of targets too: 0 / 0 must not send NaN back
    x = leaf64(np.ones((2, 3)))
    loss = loss_fn(x, ints([-100, -100]))
    assert math.isnan(loss.item())  # as PyTorch
    loss.backward()
    close(x.grad.numpy(), np.zeros((2, 3)))


@ch04
def test_cross_entropy_errors():
    x = tg.ones(3, 4)
    with pytest.raises(IndexError, match=r"cross_entropy: index 7 is out of range for classes=4"):
        F.cross_entropy(x, ints([0, 7, 1]))
    with pytest.raises(IndexError, match=r"cross_entropy: index -3 .*ignore_index=-100"):
        F.cross_entropy(x, ints([0, -3, 1]))
    with pytest.raises(TypeError, match=r"cross_entropy: target must hold integer class indices"):
        F.cross_entropy(x, tg.ones(3))
    with pytest.raises(ValueError, match=r"needs a target of shape \(3,\), got \(2,\)"):
        F.cross_entropy(x, ints([0, 1]))
    with pytest.raises(
        ValueError, match="cross_entropy: reduction must be 'mean', 'sum' or 'none'"
    ):
        F.cross_entropy(x, ints([0, 1, 2]), reduction="max")
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        F.cross_entropy(x, ints([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"unbatched input of shape \(4,\) needs a scalar target"):
        F.cross_entropy(tg.ones(4), ints([1]))


@ch04
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_numpy(reduction):
    rng = np.random.default_rng(5)
    logp = references.log_softmax(rng.standard_normal((2, 4, 3)), axis=1)  # (N, C, d)
    target = np.array([[0, 3, -100], [2, 1, 1]])
    got = F.nll_loss(leaf64(logp), ints(target), reduction=reduction)
    valid = target != -100
    picked = -np.take_along_axis(logp, np.where(valid, target, 0)[:, None], 1)[:, 0] * valid
    ref = {"none": picked, "sum": picked.sum(), "mean": picked.sum() / valid.sum()}[reduction]
    close(got.numpy(), ref)
    assert gradcheck(lambda a: F.nll_loss(a, ints(target), reduction=reduction), [leaf64(logp)])
    with pytest.raises(IndexError, match="nll_loss: index 4 is out of range for classes=4"):
        F.nll_loss(leaf64(logp), ints([[0, 4, 1], [0, 0, 0]]))


@ch04
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction):
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    sq = (a - b) ** 2
    ref = {"none": sq, "sum": sq.sum(), "mean": sq.mean()}[reduction]
    close(F.mse_loss(leaf64(a), leaf64(b), reduction).numpy(), ref)
    assert gradcheck(lambda x, y: F.mse_loss(x, y, reduction), [leaf64(a), leaf64(b)])
    with pytest.raises(ValueError, match=r"mse_loss: input shape \(3, 4\) and target shape \(4,\)"):
        F.mse_loss(leaf64(a), leaf64(b[0]))


@ch13
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_with_logits(reduction):
    rng = np.random.default_rng(7)
    x, t = rng.standard_normal((4, 3)) * 3, rng.random((4, 3))
    w, pw = rng.random((4, 3)) + 0.5, rng.random(3) + 0.5
    for kw in ({}, {"weight": w}, {"pos_weight": pw}, {"weight": w, "pos_weight": pw}):
        ref = references.bce_with_logits(x, t, **kw)
        ref = {"none": ref, "sum": ref.sum(), "mean": ref.mean()}[reduction]
        tkw = {k: t64(v) for k, v in kw.items()}
        got = F.binary_cross_entropy_with_logits(leaf64(x), leaf64(t), reduction=reduction, **tkw)
        close(got.numpy(), ref)
    assert gradcheck(
        lambda a, b, c, d: F.binary_cross_entropy_with_logits(
            a, b, weight=c, pos_weight=d, reduction=reduction
        ),
        [leaf64(x), leaf64(t), leaf64(w), leaf64(pw)],
    )


@ch13
def test_binary_cross_entropy_with_logits_extremes_and_errors():
    x = t32([1e4, -1e4, 1e4, -1e4], requires_grad=True)
    t = t32([1.0, 0.0, 0.0, 1.0])
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    close(loss.numpy(), [0.0, 0.0, 1e4, 1e4], rtol=1e-6)
    loss.sum().backward()
    close(x.grad.numpy(), [0.0, 0.0, 1.0, -1.0])  # sigmoid(x) - t
    assert loss.dtype == "float32" and x.grad.dtype == "float32"
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: input shape \(4,\)"):
        F.binary_cross_entropy_with_logits(x, t32([1.0]))


@ch05  # one_hot is exercise 5.1
def test_one_hot():
    ids = np.array([[0, 3], [2, 2]])
    got = F.one_hot(ints(ids), 5)
    assert got.dtype == "int64" and got.shape == (2, 2, 5)
    close(got.numpy(), np.eye(5, dtype=np.int64)[ids])
    close(F.one_hot(ints(ids)).numpy(), np.eye(4, dtype=np.int64)[ids])  # num_classes = max + 1
    with pytest.raises(IndexError, match="one_hot: index 3 is out of range for num_classes=3"):
        F.one_hot(ints(ids), 3)
    with pytest.raises(
        TypeError, match="one_hot: ids must hold integer indices, got dtype float32"
    ):
        F.one_hot(tg.ones(2), 3)


# =================================================================================================
# Embedding (chapter 5)
# =================================================================================================


@ch05
def test_embedding_lookup_and_scatter_add_backward():
    rng = np.random.default_rng(8)
    table = rng.standard_normal((6, 3))
    ids = np.array([[1, 4, 1], [0, 1, 5]])  # id 1 three times: its gradients must add up
    w = leaf64(table)
    out = F.embedding(ints(ids), w)
    close(out.numpy(), table[ids])
    g = rng.standard_normal((2, 3, 3))
    out.backward(t64(g))
    ref = np.zeros_like(table)
    np.add.at(ref, ids, g)
    close(w.grad.numpy(), ref)
    assert gradcheck(lambda a: F.embedding(ints(ids), a), [leaf64(table)])
    # ids of any shape, 0-d included
    close(F.embedding(ints(3), w).numpy(), table[3])
    assert F.embedding(ints(np.zeros((2, 1, 4), dtype=np.int64)), w).shape == (2, 1, 4, 3)


@ch05
def test_embedding_float32_and_errors():
    w = tg.randn(5, 2, requires_grad=True)
    out = F.embedding(ints([0, 4]), w)
    out.sum().backward()
    assert out.dtype == "float32" and w.grad.dtype == "float32"
    with pytest.raises(TypeError, match=r"embedding: ids must be integers, got dtype float32"):
        F.embedding(tg.ones(2), w)
    with pytest.raises(IndexError, match=r"embedding: id -1 is negative.*table of 5 embeddings"):
        F.embedding(ints([0, -1]), w)
    with pytest.raises(IndexError, match=r"embedding: id 5 is out of range for a table of 5"):
        F.embedding(ints([[0, 5]]), w)
    with pytest.raises(ValueError, match=r"embedding: weight must be 2-D"):
        F.embedding(ints([0]), tg.ones(5))


# =================================================================================================
# Conv1d (chapter 6)
# =================================================================================================

CONV_SETTINGS = [(1, 0, 1), (2, 0, 1), (1, 2, 1), (1, 1, 2), (3, 2, 2), (2, 3, 3)]


@ch06
@pytest.mark.parametrize(("stride", "padding", "dilation"), CONV_SETTINGS)
def test_conv1d_matches_loop(stride, padding, dilation):
    rng = np.random.default_rng(9)
    x, w, b = (
        rng.standard_normal((2, 3, 11)),
        rng.standard_normal((4, 3, 3)),
        rng.standard_normal(4),
    )
    got = F.conv1d(leaf64(x), leaf64(w), leaf64(b), stride, padding, dilation)
    close(got.numpy(), references.conv1d(x, w, b, stride, padding, dilation))
    close(F.conv1d(leaf64(x), leaf64(w), None, stride, padding, dilation).numpy(),
          references.conv1d(x, w, None, stride, padding, dilation))  # fmt: skip


@ch06
@given(
    **conv1d_sizes(max_padding=3, max_dilation=3),
    length=st.integers(1, 9),
    seed=st.integers(0, 2**16),
)
def test_conv1d_any_configuration(
    n, c_in, c_out, kernel_size, length, stride, padding, dilation, seed
):
    span = dilation * (kernel_size - 1) + 1
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, length))
    w = rng.standard_normal((c_out, c_in, kernel_size))
    b = rng.standard_normal(c_out)
    if length + 2 * padding < span:
        with pytest.raises(ValueError, match="conv1d: input length"):
            F.conv1d(leaf64(x), leaf64(w), leaf64(b), stride, padding, dilation)
        return
    got = F.conv1d(leaf64(x), leaf64(w), leaf64(b), stride, padding, dilation)
    close(got.numpy(), references.conv1d(x, w, b, stride, padding, dilation))


@ch06
@pytest.mark.parametrize(("stride", "padding", "dilation"), [(1, 1, 1), (2, 2, 2)])
def test_conv1d_gradcheck(stride, padding, dilation):
    rng = np.random.default_rng(10)
    x, w, b = rng.standard_normal((2, 2, 8)), rng.standard_normal((3, 2, 3)), rng.standard_normal(3)
    assert gradcheck(
        lambda a, c, d: F.conv1d(a, c, d, stride, padding, dilation),
        [leaf64(x), leaf64(w), leaf64(b)],
    )


@ch06
def test_conv1d_same_valid_kernel_one_and_float32():
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal((1, 2, 7)), rng.standard_normal((3, 2, 5))
    close(
        F.conv1d(leaf64(x), leaf64(w), padding="same").numpy(), references.conv1d(x, w, padding=2)
    )
    close(F.conv1d(leaf64(x), leaf64(w), padding="valid").numpy(), references.conv1d(x, w))
    w1 = rng.standard_normal((3, 2, 1))
    close(F.conv1d(leaf64(x), leaf64(w1)).numpy(), references.conv1d(x, w1))
    xs, ws = t32(x, True), t32(w, True)
    y = F.conv1d(xs, ws, padding=2)
    y.sum().backward()
    assert y.dtype == xs.grad.dtype == ws.grad.dtype == "float32"


@ch06
def test_conv1d_unbatched_and_same_with_an_odd_number_of_zeros():
    """(C_in, L) is one example, as PyTorch; 'same' with an even kernel span pads the extra zero
    on the right (PyTorch's rule): one zero on the left and two on the right for K = 4."""
    rng = np.random.default_rng(12)
    x, w = rng.standard_normal((2, 7)), rng.standard_normal((3, 2, 4))
    y = F.conv1d(leaf64(x), leaf64(w), padding="same")
    assert y.shape == (3, 7)
    xpad = np.concatenate([np.zeros((1, 2, 1)), x[None], np.zeros((1, 2, 2))], axis=-1)
    close(y.numpy(), references.conv1d(xpad, w)[0])
    close(F.conv1d(leaf64(x), leaf64(w)).numpy(), references.conv1d(x[None], w)[0])


@ch06
def test_conv1d_errors():
    x, w = tg.ones(2, 3, 10), tg.ones(4, 3, 5)
    with pytest.raises(ValueError, match=r"conv1d: input of shape \(2, 2, 10\) has 2 channels.*3"):
        F.conv1d(tg.ones(2, 2, 10), w)
    with pytest.raises(ValueError, match=r"conv1d: input must be 3-D \(N, C_in, L\) or 2-D"):
        F.conv1d(tg.ones(1, 2, 3, 10), w)
    with pytest.raises(ValueError, match=r"conv1d: input length 3 .*span 5"):
        F.conv1d(tg.ones(2, 3, 3), w)
    with pytest.raises(ValueError, match=r"conv1d: stride must be an integer >= 1, got 0"):
        F.conv1d(x, w, stride=0)
    with pytest.raises(ValueError, match=r"conv1d: bias has shape \(3,\), expected \(4,\)"):
        F.conv1d(x, w, tg.ones(3))
    with pytest.raises(ValueError, match=r"padding='same' needs stride=1"):
        F.conv1d(x, w, stride=2, padding="same")


# =================================================================================================
# Attention (chapter 9)
# =================================================================================================


def _qkv(rng, q_shape, k_shape, v_shape):
    return [rng.standard_normal(s) for s in (q_shape, k_shape, v_shape)]


@ch09
@pytest.mark.parametrize(
    ("q_shape", "k_shape", "v_shape"),
    [
        ((3, 4), (5, 4), (5, 2)),
        ((2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5)),
        ((2, 2, 3, 4), (2, 1, 5, 4), (5, 3)),
    ],  # fmt: skip
)
def test_attention_matches_query_loop(q_shape, k_shape, v_shape):
    rng = np.random.default_rng(12)
    q, k, v = _qkv(rng, q_shape, k_shape, v_shape)
    L, S = q_shape[-2], k_shape[-2]
    got = F.scaled_dot_product_attention(leaf64(q), leaf64(k), leaf64(v))
    close(got.numpy(), references.attention(q, k, v))
    got = F.scaled_dot_product_attention(leaf64(q), leaf64(k), leaf64(v), scale=0.3)
    close(got.numpy(), references.attention(q, k, v, scale=0.3))
    keep = rng.random((L, S)) > 0.4
    keep[:, 0] = True
    got = F.scaled_dot_product_attention(leaf64(q), leaf64(k), leaf64(v), attn_mask=tg.tensor(keep))
    close(got.numpy(), references.attention(q, k, v, keep=keep))
    additive = rng.standard_normal((L, S))
    got = F.scaled_dot_product_attention(leaf64(q), leaf64(k), leaf64(v), t64(additive))
    close(got.numpy(), references.attention(q, k, v, additive=additive))
    # a float64 mask does not turn float32 attention into float64
    got = F.scaled_dot_product_attention(t32(q), t32(k), t32(v), t64(additive))
    assert got.dtype == "float32"
    close(got.numpy(), references.attention(q, k, v, additive=additive), rtol=1e-4, atol=1e-5)


@ch09
@given(
    batch=st.sampled_from([(), (2,), (2, 1), (1, 3)]),
    kv_batch=st.sampled_from([(), (1,), (2, 3)]),
    sizes=st.tuples(*(st.integers(1, 4) for _ in range(4))),
    mask_kind=st.sampled_from(["none", "causal", "bool", "float"]),
    seed=st.integers(0, 2**16),
)
def test_attention_any_shape_matches_query_loop(batch, kv_batch, sizes, mask_kind, seed):
    L, S, E, Ev = sizes
    rng = np.random.default_rng(seed)
    q, k, v = _qkv(rng, batch + (L, E), kv_batch + (S, E), kv_batch + (S, Ev))
    kw, keep, additive = {}, None, None
    if mask_kind == "causal":
        kw["is_causal"] = True
        keep = np.tril(np.ones((L, S), dtype=bool))
    elif mask_kind == "bool":
        keep = rng.random((L, S)) > 0.5  # fully masked rows included
        kw["attn_mask"] = tg.tensor(keep)
    elif mask_kind == "float":
        additive = rng.standard_normal((L, S))
        kw["attn_mask"] = t64(additive)
    try:
        np.broadcast_shapes(batch, kv_batch)
    except ValueError:
        with pytest.raises(ValueError, match=r"leading \(batch\) axes .* cannot be broadcast"):
            F.scaled_dot_product_attention(leaf64(q), leaf64(k), leaf64(v), **kw)
        return
    got = F.scaled_dot_product_attention(leaf64(q), leaf64(k), leaf64(v), **kw)
    close(got.numpy(), references.attention(q, k, v, keep=keep, additive=additive))


@ch09
def test_attention_causal_matches_query_loop():
    rng = np.random.default_rng(13)
    q, k, v = _qkv(rng, (2, 4, 3), (2, 6, 3), (2, 6, 2))
    # PyTorch's is_causal: the top-left triangle, query i sees keys 0..i (also when L != S)
    keep = np.tril(np.ones((4, 6), dtype=bool))
    got = F.scaled_dot_product_attention(leaf64(q), leaf64(k), leaf64(v), is_causal=True)
    close(got.numpy(), references.attention(q, k, v, keep=keep))


@ch09
def test_attention_gradchecks_every_input():
    rng = np.random.default_rng(14)
    q, k, v = _qkv(rng, (2, 3, 4), (2, 5, 4), (2, 5, 3))
    keep = tg.tensor(np.array([[1, 0, 1, 1, 0], [1, 1, 1, 1, 1], [0, 0, 1, 0, 0]], dtype=bool))
    additive = rng.standard_normal((3, 5))
    for fn in (
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c),
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=keep, scale=0.5),
    ):
        assert gradcheck(fn, [leaf64(q), leaf64(k), leaf64(v)])
    assert gradcheck(
        lambda a, b, c, m: F.scaled_dot_product_attention(a, b, c, attn_mask=m),
        [leaf64(q), leaf64(k), leaf64(v), leaf64(additive)],
    )


@ch09
def test_fused_attention_equals_composed():
    rng = np.random.default_rng(15)
    q, k, v = _qkv(rng, (2, 2, 4, 3), (2, 2, 6, 3), (2, 2, 6, 5))
    keep = rng.random((4, 6)) > 0.5
    keep[:, 1] = True
    keep[2] = False  # query 2 may attend to nothing: zeros and zero gradients on both sides
    additive = rng.standard_normal((2, 1, 4, 6))
    g = rng.standard_normal((2, 2, 4, 5))
    for kw in (
        {},
        {"attn_mask": tg.tensor(keep)},
        {"attn_mask": t64(additive), "scale": 0.2},
        {"is_causal": True},
        {"is_causal": True, "dropout_p": 0.3},  # the same seed draws the same dropout mask
    ):
        results = []
        for attention in (F.scaled_dot_product_attention, F.scaled_dot_product_attention_composed):

            def fn(a, b, c, attention=attention, kw=kw):
                tg.manual_seed(3)
                return attention(a, b, c, **kw)

            ins = [leaf64(q), leaf64(k), leaf64(v)]
            results.append([fn(*ins).numpy()] + grads_of(fn, ins, g))
        for fused, composed in zip(*results, strict=True):
            close(fused, composed)
    # an additive mask is an input too: its gradient agrees
    m = [leaf64(additive), leaf64(additive)]
    for mask, attention in zip(
        m, (F.scaled_dot_product_attention, F.scaled_dot_product_attention_composed), strict=True
    ):
        attention(leaf64(q), leaf64(k), leaf64(v), attn_mask=mask).backward(t64(g))
    close(m[0].grad.numpy(), m[1].grad.numpy())


@ch09
def test_attention_fully_masked_row_gives_zeros_not_nan():
    rng = np.random.default_rng(16)
    q, k, v = _qkv(rng, (3, 4), (5, 4), (5, 2))
    keep = np.ones((3, 5), dtype=bool)
    keep[1] = False  # query 1 may attend to nothing
    ins = [leaf64(q), leaf64(k), leaf64(v)]
    out = F.scaled_dot_product_attention(*ins, attn_mask=tg.tensor(keep))
    close(out.numpy(), references.attention(q, k, v, keep=keep))
    close(out.numpy()[1], np.zeros(2))
    out.backward(t64(rng.standard_normal((3, 2))))
    for t in ins:
        assert np.isfinite(t.grad.numpy()).all()
    close(ins[0].grad.numpy()[1], np.zeros(4))  # the masked query gets no gradient
    # ... and q[1] plays no part in anyone's output: changing it changes nothing
    q2 = q.copy()
    q2[1] += 5.0
    close(
        F.scaled_dot_product_attention(leaf64(q2), ins[1], ins[2], tg.tensor(keep)).numpy(),
        out.numpy(),
    )
    # an additive -inf mask behaves the same
    additive = np.where(keep, 0.0, -np.inf)
    out2 = F.scaled_dot_product_attention(leaf64(q), leaf64(k), leaf64(v), t64(additive))
    close(out2.numpy(), out.numpy())


@ch09
def test_attention_dropout_drops_weights_and_gradchecks():
    rng = np.random.default_rng(17)
    S = 6
    q, k = rng.standard_normal((200, 4, 3)), rng.standard_normal((200, S, 3))
    eye = np.eye(S)  # with v = I the output is the (dropped-out, rescaled) weight matrix itself
    out = F.scaled_dot_product_attention(leaf64(q), leaf64(k), leaf64(eye), dropout_p=0.25).numpy()
    p = references.attention(q, k, eye)
    dropped = out == 0.0
    assert 0.2 < dropped.mean() < 0.3
    close(out[~dropped], p[~dropped] / 0.75)

    def fn(a, b, c):
        tg.manual_seed(5)  # the same dropout mask at every evaluation
        return F.scaled_dot_product_attention(a, b, c, dropout_p=0.3, is_causal=True)

    q, k, v = _qkv(rng, (2, 4, 3), (2, 4, 3), (2, 4, 2))
    assert gradcheck(fn, [leaf64(q), leaf64(k), leaf64(v)])


@ch09
def test_attention_extremes_and_float32():
    rng = np.random.default_rng(18)
    q, k, v = (t32(a, True) for a in _qkv(rng, (2, 4, 8), (2, 4, 8), (2, 4, 3)))
    big = q * 1e4  # scores of order 1e8: one-hot weights, still finite
    out = F.scaled_dot_product_attention(big, k, v, is_causal=True)
    out.sum().backward()
    assert out.dtype == "float32"
    for t in (out, q.grad, k.grad, v.grad):
        assert t.dtype == "float32" and np.isfinite(t.numpy()).all()


@ch09
def test_attention_errors():
    q, k, v = tg.ones(2, 3, 4), tg.ones(2, 5, 4), tg.ones(2, 5, 6)
    sdpa = F.scaled_dot_product_attention
    with pytest.raises(
        ValueError, match=r"query of shape \(2, 3, 4\) and key of shape \(2, 5, 3\)"
    ):
        sdpa(q, tg.ones(2, 5, 3), v)
    with pytest.raises(
        ValueError, match=r"key of shape \(2, 5, 4\) and value of shape \(2, 4, 6\)"
    ):
        sdpa(q, k, tg.ones(2, 4, 6))
    with pytest.raises(ValueError, match="either attn_mask or is_causal=True, not both"):
        sdpa(q, k, v, attn_mask=tg.ones(3, 5), is_causal=True)
    with pytest.raises(
        ValueError, match=r"attn_mask of shape \(3, 4\) does not broadcast.*\(2, 3, 5\)"
    ):
        sdpa(q, k, v, attn_mask=tg.ones(3, 4))
    with pytest.raises(TypeError, match="attn_mask must be bool or float, got dtype int64"):
        sdpa(q, k, v, attn_mask=ints(np.ones((3, 5), dtype=np.int64)))
    with pytest.raises(ValueError, match=r"dropout_p must be in \[0, 1\), got 1.0"):
        sdpa(q, k, v, dropout_p=1.0)
    with pytest.raises(ValueError, match=r"leading \(batch\) axes .* cannot be broadcast"):
        sdpa(q, tg.ones(3, 5, 4), tg.ones(3, 5, 6))


# =================================================================================================
# layer_norm and dropout (chapter 10)
# =================================================================================================


@ch10
@pytest.mark.parametrize("normalized_shape", [(5,), (4, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_numpy_and_composed(normalized_shape, affine):
    rng = np.random.default_rng(19)
    x = rng.standard_normal((2, 3, 4, 5)) * 3 + 1
    w = rng.standard_normal(normalized_shape) if affine else None
    b = rng.standard_normal(normalized_shape) if affine else None
    k = len(normalized_shape)
    ins = [leaf64(x)] + ([leaf64(w), leaf64(b)] if affine else [])
    fused = lambda *a: F.layer_norm(a[0], normalized_shape, *a[1:])  # noqa: E731
    composed = lambda *a: F.layer_norm_composed(a[0], normalized_shape, *a[1:])  # noqa: E731
    close(fused(*ins).numpy(), references.layer_norm(x, k, w, b))
    g = rng.standard_normal(x.shape)
    for a, c in zip(grads_of(fused, ins, g), grads_of(composed, ins, g), strict=True):
        close(a, c)
    small = [leaf64(x[0, :2])] + ([leaf64(w), leaf64(b)] if affine else [])
    assert gradcheck(fused, small)


@ch10
def test_layer_norm_is_stable_far_from_zero_and_keeps_float32():
    rng = np.random.default_rng(20)
    x = rng.standard_normal((4, 8)) + 1e4  # mean 1e4: the variance is computed after centring
    xs = t32(x, True)
    w, b = t32(np.ones(8), True), t32(np.zeros(8), True)
    y = F.layer_norm(xs, 8, w, b)
    ref = references.layer_norm(x.astype(np.float32).astype(np.float64), 1)
    close(y.numpy(), ref, rtol=1e-2, atol=1e-2)
    y.backward(t32(rng.standard_normal((4, 8))))
    assert y.dtype == xs.grad.dtype == w.grad.dtype == b.grad.dtype == "float32"


@ch10
def test_layer_norm_errors():
    with pytest.raises(ValueError, match=r"layer_norm: input of shape \(2, 3\) does not end with"):
        F.layer_norm(tg.ones(2, 3), (4,))
    with pytest.raises(ValueError, match=r"layer_norm: weight has shape \(4,\), expected .*\(3,\)"):
        F.layer_norm(tg.ones(2, 3), 3, tg.ones(4))


@ch10
def test_dropout():
    x = tg.ones(200, 500)
    assert F.dropout(x, 0.3, training=False) is x
    assert F.dropout(x, 0.0) is x
    close(F.dropout(x, 1.0).numpy(), np.zeros((200, 500)))
    y = F.dropout(x, 0.3).numpy()
    kept = y != 0
    assert 0.29 < 1 - kept.mean() < 0.31  # about p dropped
    close(y[kept], np.full(kept.sum(), 1 / 0.7), rtol=1e-6)  # inverted: survivors scaled
    tg.manual_seed(3)
    a = F.dropout(x, 0.5).numpy()
    tg.manual_seed(3)
    close(F.dropout(x, 0.5).numpy(), a)  # the seed fixes the mask


@ch10
def test_dropout_gradient_uses_the_same_mask():
    x = t32(np.random.default_rng(21).standard_normal((50, 40)) + 3.0, requires_grad=True)
    y = F.dropout(x, 0.4)
    y.backward(t32(np.ones((50, 40))))
    assert y.dtype == x.grad.dtype == "float32"
    close(x.grad.numpy(), (y.numpy() != 0) / 0.6, rtol=1e-6)

    def fn(a):
        tg.manual_seed(7)
        return F.dropout(a, 0.5)

    assert gradcheck(fn, [leaf64(np.random.default_rng(22).standard_normal((3, 4)))])
    with pytest.raises(ValueError, match=r"dropout: probability p must be in \[0, 1\], got 1.2"):
        F.dropout(x, 1.2)


# =================================================================================================
# float32 end to end
# =================================================================================================


@pytest.mark.ch13
def test_float32_in_float32_out_everywhere():
    rng = np.random.default_rng(23)
    x = t32(rng.standard_normal((2, 3, 4)), True)
    w = t32(rng.standard_normal((5, 4)), True)
    results = [
        F.linear(x, w),
        F.gelu(x),
        F.softmax(x),
        F.log_softmax(x, 1),
        F.layer_norm(x, 4),
        F.dropout(x, 0.2),
        F.cross_entropy(x, ints([[0, 1, 2, 0], [2, 2, 1, 0]])),
        F.cross_entropy(x.reshape(6, 4), ints([0, 1, 2, 3, 0, 1]), label_smoothing=0.1),
        F.nll_loss(x, ints([[0, 1, 2, 0], [2, 2, 1, 0]])),
        F.mse_loss(x, x * 0.5),
        F.binary_cross_entropy_with_logits(x, x.sigmoid().detach()),
        F.conv1d(x, t32(rng.standard_normal((2, 3, 3)), True), padding=1),
        F.scaled_dot_product_attention(x, x, x, is_causal=True, dropout_p=0.1),
        F.embedding(ints([1, 0]), w),
    ]
    for i, r in enumerate(results):
        assert r.dtype == "float32", f"result {i} has dtype {r.dtype}"
        x.grad = w.grad = None
        r.sum().backward()
        for t in (x, w):
            assert t.grad is None or t.grad.dtype == "float32", f"gradient of result {i}"

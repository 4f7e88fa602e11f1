"""The gradient checkers themselves: they pass right rules and catch wrong ones (chapter 2)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import leaf

import tinygrad_edu as tg
from tinygrad_edu import nn
from tinygrad_edu.autograd import Function
from tinygrad_edu.ops import _const
from tinygrad_edu.testing import (
    GradcheckError,
    gradcheck,
    gradcheck_module,
    gradgradcheck,
    numerical_grad,
)

pytestmark = pytest.mark.ch02


class _Reverse(Function):
    """Reverses a vector; its backward forgets to reverse the gradient back."""

    def forward(self, a):
        return a[::-1]

    def backward(self, grad_out):
        return grad_out  # wrong, yet right whenever grad_out is constant (as with out.sum())


class _SquareConstBackward(Function):
    """x^2 with a first derivative that is right but recorded as a constant."""

    def forward(self, a):
        return a * a

    def backward(self, grad_out):
        return grad_out * 2.0 * _const(self.inputs[0].data)  # d/dx of this is lost


class _WrongTanh(Function):
    def forward(self, a):
        self.out = tg.backend.xp_of(a).tanh(a)
        return self.out

    def backward(self, grad_out):
        return grad_out * _const(1.0 - self.out)  # should be 1 - out**2


class _ScaleForgetsTheInput(Function):
    """``x * w`` (w broadcast over the rows) whose weight gradient forgets the factor x."""

    def forward(self, x, w):
        return x * w

    def backward(self, grad_out):
        x, w = self.inputs
        return grad_out * w, grad_out.sum(axis=0)  # the weight's should be (grad_out * x).sum(0)


class _Scale(nn.Module):
    """A layer with one parameter, ``weight``, whose backward is wrong."""

    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(tg.randn(n, dtype="float64"))

    def forward(self, x):
        return _ScaleForgetsTheInput.apply(x, self.weight)


class _PairInput(nn.Module):
    """Takes ``(x, (a, b))`` like an LSTM takes its state; the gradient of ``b`` is wrong."""

    def forward(self, x, state):
        a, b = state
        return x * a, _Reverse.apply(b)  # a tuple output: both parts are checked


def test_gradcheck_passes_a_right_rule(device):
    assert gradcheck(lambda x: (x * x).tanh(), [leaf(3, 2)])


def test_gradcheck_reports_op_input_index_and_values(device):
    with pytest.raises(
        GradcheckError,
        match=r"tanh: gradient of input 0 \(shape \(4,\)\) is wrong at index \(\d+,\): "
        r"backward gives .*, central differences give .*elements differ",
    ):
        gradcheck(_WrongTanh.apply, [leaf(4)], name="tanh")


def test_random_upstream_catches_what_sum_hides(device):
    x = leaf(5)
    _Reverse.apply(x).sum().backward()  # the out.sum() check: looks right
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(5))
    with pytest.raises(GradcheckError, match="reverse: gradient of input 0"):
        gradcheck(_Reverse.apply, [x], name="reverse")


def test_gradgradcheck_passes_a_right_rule(device):
    assert gradgradcheck(lambda x, y: (x * y).exp() @ y.T, [leaf(2, 3), leaf(2, 3, seed=1)])


def test_gradgradcheck_catches_a_constant_backward(device):
    x = leaf(3)
    assert gradcheck(_SquareConstBackward.apply, [x])  # the first derivative is right
    with pytest.raises(GradcheckError, match="second derivative of input 0"):
        gradgradcheck(_SquareConstBackward.apply, [x], name="square")


def test_gradcheck_refuses_float32(device):
    x = tg.randn(3, requires_grad=True)
    with pytest.raises(TypeError, match="gradcheck: input 0 has dtype float32; .*float64"):
        gradcheck(lambda x: x * 2, [x])


def test_gradcheck_skips_inputs_without_grad_and_handles_tuples(device):
    x, c = leaf(2, 3), tg.randn(2, 3, dtype="float64")
    assert gradcheck(lambda x, c: (x * c, x.exp()), [x, c])


def test_gradcheck_needs_an_output_that_requires_grad(device):
    c = tg.randn(2, dtype="float64")
    with pytest.raises(GradcheckError, match="no output requires grad"):
        gradcheck(lambda c: c * 2, [c])


def test_numerical_grad_of_a_square(device):
    x = tg.tensor(np.array([1.0, -2.0, 0.5]), requires_grad=True)
    v = np.array([0.3, -1.0, 2.0])
    (g,) = numerical_grad(lambda x: x * x, [x], [v])
    np.testing.assert_allclose(g, 2 * np.array([1.0, -2.0, 0.5]) * v, rtol=1e-8)
    np.testing.assert_array_equal(x.numpy(), [1.0, -2.0, 0.5])  # the input is restored


def test_gradcheck_leaves_inputs_and_grads_clean(device):
    x = leaf(3)
    before = x.numpy().copy()
    gradcheck(lambda x: x.sigmoid(), [x])
    np.testing.assert_array_equal(x.numpy(), before)
    assert x.device == device


# ---- gradcheck_module ----------------------------------------------------------------------------


def test_gradcheck_module_passes_a_layer_and_its_parameters(device):
    tg.manual_seed(0)
    layer = nn.Linear(3, 2).astype("float64")
    assert gradcheck_module(layer, leaf(4, 3))


def test_gradcheck_module_catches_a_wrong_parameter_gradient(device):
    layer = _Scale(3)
    x = leaf(2, 3)
    assert gradcheck(lambda x: _ScaleForgetsTheInput.apply(x, layer.weight.detach()), [x])
    with pytest.raises(
        GradcheckError,
        match=r"^Scale: gradient of parameter 'weight' \(shape \(3,\)\) is wrong at index "
        r"\(\d\,\): backward gives -?\d.*, central differences give -?\d.*elements differ",
    ):
        gradcheck_module(layer, x, name="Scale")


def test_gradcheck_module_names_an_input_inside_a_tuple(device):
    x, a, b = leaf(3), leaf(3, seed=1), leaf(3, seed=2)
    with pytest.raises(GradcheckError, match=r"^_PairInput: gradient of input 1\[1\] \(shape"):
        gradcheck_module(_PairInput(), x, (a, b))
    assert gradcheck_module(_PairInput(), x, (a, b.detach()))  # x and a are right


@pytest.mark.ch08  # the LSTM's forward and backward (exercises 8.1, 8.2)
def test_gradcheck_module_checks_an_lstm_with_its_state(device):
    tg.manual_seed(0)
    lstm = nn.LSTM(2, 3).astype("float64")
    x, h0, c0 = leaf(2, 1, 2), leaf(1, 1, 3, seed=1), leaf(1, 1, 3, seed=2)
    assert gradcheck_module(lstm, x, (h0, c0))  # output (output, (h_n, c_n)): nested


@pytest.mark.ch09  # MultiHeadAttention splits its heads (exercise 9.3)
def test_gradcheck_module_passes_module_kwargs(device):
    tg.manual_seed(0)
    attn = nn.MultiHeadAttention(4, 2).astype("float64")
    x = leaf(1, 3, 4)
    kwargs = {"need_weights": True, "is_causal": True}
    assert gradcheck_module(attn, x, kwargs=kwargs)  # output (out, weights): both checked


def test_gradcheck_module_gives_a_random_layer_the_same_draws(device):
    drop = nn.Dropout(p=0.5)  # training mode: a new mask at every call, but not inside the check
    tg.manual_seed(1)
    state = tg.backend.get_rng_state()
    assert gradcheck_module(drop, leaf(4, 5))
    assert tg.backend.get_rng_state() == state  # the generator is left as it was found


def test_gradcheck_module_refuses_a_float32_layer(device):
    with pytest.raises(
        TypeError,
        match=r"gradcheck_module: parameter 'weight' has dtype float32; .*float64.*astype",
    ):
        gradcheck_module(nn.Linear(3, 2), leaf(4, 3))


@pytest.mark.ch06  # Conv1d's unfold and fold (exercises 6.1, 6.2)
def test_gradcheck_module_leaves_inputs_and_parameters_as_they_were(device):
    layer = nn.Conv1d(2, 3, 3).astype("float64")
    x = leaf(1, 2, 5)
    before = [t.numpy().copy() for t in [x] + layer.parameters()]
    assert gradcheck_module(layer, x)
    for t, b in zip([x] + layer.parameters(), before, strict=True):
        np.testing.assert_array_equal(t.numpy(), b)
        assert t.device == device


class _BroadcastMulForgetsUnbroadcast(Function):
    """a * b with b broadcast; the backward returns b's gradient at the output's shape."""

    def forward(self, a, b):
        return a * b

    def backward(self, grad_out):
        a, b = (t.data for t in self.inputs)
        return grad_out * _const(b), grad_out * _const(a)  # no unbroadcast: (3, 4), not (3, 1)


def test_a_gradient_of_the_wrong_shape_names_the_op_the_input_and_both_shapes(device):
    a = tg.randn(3, 4, dtype="float64", requires_grad=True)
    b = tg.randn(3, 1, dtype="float64", requires_grad=True)
    # the engine refuses the gradient (autograd), or gradcheck names it: the same facts either way
    with pytest.raises((GradcheckError, ValueError, RuntimeError)) as info:
        gradcheck(_BroadcastMulForgetsUnbroadcast.apply, [a, b], name="mul")
    msg = str(info.value)
    assert "_BroadcastMulForgetsUnbroadcast" in msg and "input 1" in msg, msg
    assert "(3, 4)" in msg and "(3, 1)" in msg and "reshape" not in msg, msg

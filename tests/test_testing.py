"""The gradient checker itself: it passes right rules and catches wrong ones (chapter 2)."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu.autograd import Function
from tinygrad_edu.ops import _const
from tinygrad_edu.testing import GradcheckError, gradcheck, gradgradcheck, numerical_grad

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


def x64(*shape, seed=0):
    tg.manual_seed(seed)
    return tg.randn(*shape, dtype="float64", requires_grad=True)


def test_gradcheck_passes_a_right_rule(device):
    assert gradcheck(lambda x: (x * x).tanh(), [x64(3, 2)])


def test_gradcheck_reports_op_input_index_and_values(device):
    with pytest.raises(
        GradcheckError,
        match=r"tanh: gradient of input 0 \(shape \(4,\)\) is wrong at index \(\d+,\): "
        r"backward gives .*, central differences give .*elements differ",
    ):
        gradcheck(_WrongTanh.apply, [x64(4)], name="tanh")


def test_random_upstream_catches_what_sum_hides(device):
    x = x64(5)
    _Reverse.apply(x).sum().backward()  # the out.sum() check: looks right
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(5))
    with pytest.raises(GradcheckError, match="reverse: gradient of input 0"):
        gradcheck(_Reverse.apply, [x], name="reverse")


def test_gradgradcheck_passes_a_right_rule(device):
    assert gradgradcheck(lambda x, y: (x * y).exp() @ y.T, [x64(2, 3), x64(2, 3, seed=1)])


def test_gradgradcheck_catches_a_constant_backward(device):
    x = x64(3)
    assert gradcheck(_SquareConstBackward.apply, [x])  # the first derivative is right
    with pytest.raises(GradcheckError, match="second derivative of input 0"):
        gradgradcheck(_SquareConstBackward.apply, [x], name="square")


def test_gradcheck_refuses_float32(device):
    x = tg.randn(3, requires_grad=True)
    with pytest.raises(TypeError, match="gradcheck: input 0 has dtype float32; .*float64"):
        gradcheck(lambda x: x * 2, [x])


def test_gradcheck_skips_inputs_without_grad_and_handles_tuples(device):
    x, c = x64(2, 3), tg.randn(2, 3, dtype="float64")
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
    x = x64(3)
    before = x.numpy().copy()
    gradcheck(lambda x: x.sigmoid(), [x])
    np.testing.assert_array_equal(x.numpy(), before)
    assert x.device == device


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
    with pytest.raises(GradcheckError) as info:
        gradcheck(_BroadcastMulForgetsUnbroadcast.apply, [a, b], name="mul")
    msg = str(info.value)
    assert "mul: the gradient of input 1 has shape (3, 4), but input 1 has shape (3, 1)" in msg
    assert (
        "the backward of _BroadcastMulForgetsUnbroadcast returned" in msg and "unbroadcast" in msg
    )

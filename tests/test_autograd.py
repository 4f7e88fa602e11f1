"""The backward pass: accumulation, long chains, second derivatives, freeing the graph,
no_grad, anomaly detection (chapter 2)."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu.testing import gradgradcheck

pytestmark = pytest.mark.ch02


def test_reused_value_gets_the_full_total(device):
    x = tg.tensor([2.0, -3.0], requires_grad=True)
    y = x * x + x * 3.0 + x  # dy/dx = 2x + 4
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [8.0, -2.0])


def test_diamond_graph_accumulates_both_paths(device):
    x = tg.tensor(1.5, requires_grad=True)
    a = x.exp()
    b = a * 2.0
    c = a * a
    (b + c).backward()  # d/dx (2 e^x + e^{2x}) = 2 e^x + 2 e^{2x}
    np.testing.assert_allclose(x.grad.item(), 2 * np.exp(1.5) + 2 * np.exp(3.0), rtol=1e-6)


def test_grads_accumulate_across_backward_calls(device):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])
    x.zero_grad()
    assert x.grad is None


def test_grad_is_a_tensor_of_the_leaf_shape_dtype_device(device):
    w = tg.randn(3, 4, dtype="float64", requires_grad=True)
    b = tg.randn(4, requires_grad=True)
    (w.sum(axis=0) + b).sum().backward()
    assert isinstance(w.grad, tg.Tensor) and w.grad.shape == (3, 4) and w.grad.dtype == "float64"
    assert b.grad.shape == (4,) and b.grad.dtype == "float32" and b.grad.device == device
    assert not w.grad.requires_grad


def test_only_leaves_that_require_grad_get_grad(device):
    x = tg.ones(2, requires_grad=True)
    c = tg.ones(2)
    y = x * 2.0
    (y * c).sum().backward()
    assert c.grad is None and y.grad is None and x.grad is not None


def test_ten_thousand_op_chain_backpropagates(device):
    x = tg.tensor(1.0, dtype="float64", requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001 + 0.0001
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 1.0001**10_000, rtol=1e-9)


def test_second_derivative_of_cube(device):
    x = tg.tensor([1.5, -2.0], dtype="float64", requires_grad=True)
    y = (x**3).sum()
    y.backward(create_graph=True)
    dx = x.grad
    assert dx.requires_grad
    np.testing.assert_allclose(dx.numpy(), 3 * x.numpy() ** 2)
    x.grad = None
    dx.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.array([1.5, -2.0]))


def test_third_derivative_of_tanh(device):
    x = tg.tensor(0.3, dtype="float64", requires_grad=True)
    x.tanh().backward(create_graph=True)
    g1 = x.grad
    x.grad = None
    g1.backward(create_graph=True)
    g2 = x.grad
    x.grad = None
    g2.backward()
    t = np.tanh(0.3)
    np.testing.assert_allclose(g1.item(), 1 - t**2)
    np.testing.assert_allclose(g2.item(), -2 * t * (1 - t**2))
    np.testing.assert_allclose(x.grad.item(), -2 * (1 - t**2) ** 2 + 4 * t**2 * (1 - t**2))


def test_gradgradcheck_through_a_small_network(device):
    x, w = tg.randn(3, 4, dtype="float64", requires_grad=True), tg.randn(4, 2, dtype="float64")
    w.requires_grad_()
    assert gradgradcheck(lambda x, w: (x @ w).tanh().sigmoid() * x.sum(), [x, w])


def test_backward_without_create_graph_records_nothing(device):
    x = tg.tensor(2.0, requires_grad=True)
    (x * x).backward()
    assert not x.grad.requires_grad and x.grad.is_leaf


def test_backward_on_non_scalar_needs_a_gradient(device):
    x = tg.ones(2, 3, requires_grad=True)
    y = x * 2.0
    with pytest.raises(
        RuntimeError, match=r"backward\(\): the output has shape \(2, 3\).*gradient="
    ):
        y.backward()
    y.backward(gradient=tg.full((2, 3), 0.5))
    np.testing.assert_allclose(x.grad.numpy(), np.ones((2, 3)))


def test_backward_gradient_shape_must_match(device):
    y = tg.ones(2, 3, requires_grad=True) * 2.0
    with pytest.raises(
        ValueError, match=r"gradient has shape \(3,\) but the output has shape \(2, 3\)"
    ):
        y.backward(gradient=tg.ones(3))


def test_backward_accepts_a_numpy_gradient(device):
    x = tg.ones(2, requires_grad=True)
    (x * 3.0).backward(gradient=np.array([1.0, 2.0], dtype=np.float32))
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 6.0])


def test_backward_on_a_tensor_without_graph_is_clear(device):
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.ones(2).sum().backward()
    x = tg.ones(2, requires_grad=True)
    with tg.no_grad():
        y = (x * 2.0).sum()
    with pytest.raises(RuntimeError, match="no_grad"):
        y.backward()


def test_backward_twice_is_an_error_unless_retained(device):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(
        RuntimeError, match=r"backward through the graph a second time .*retain_graph"
    ):
        y.backward()
    x.grad = None
    z = (x.exp() * x).sum()
    z.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def _loss_and_weak_intermediate(n):
    """``loss = sum(tanh(x)^2)`` and a weak reference to ``tanh(x)``, held only by the graph."""
    h = tg.randn(n, requires_grad=True).tanh()
    return (h * h).sum(), weakref.ref(h)


def test_graph_is_freed_after_backward(device):
    loss, ref = _loss_and_weak_intermediate(50)
    gc.collect()
    assert ref() is not None  # the graph holds the intermediate until backward
    loss.backward()
    gc.collect()
    assert ref() is None, "the intermediate is still referenced after backward"
    assert loss._ctx.inputs == ()


def test_retained_graph_keeps_intermediates(device):
    loss, ref = _loss_and_weak_intermediate(5)
    loss.backward(retain_graph=True)
    gc.collect()
    assert ref() is not None


def test_no_grad_records_nothing_and_restores(device):
    x = tg.ones(2, requires_grad=True)
    assert tg.is_grad_enabled()
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = x * 2.0
        with tg.enable_grad():
            z = x * 2.0
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad


def test_no_grad_restores_after_an_exception(device):
    with pytest.raises(KeyError), tg.no_grad():
        raise KeyError("inside no_grad")
    assert tg.is_grad_enabled()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_detect_anomaly_names_the_forward_op(device):
    x = tg.tensor([1.0, 0.0, -1.0], requires_grad=True)
    with tg.detect_anomaly():
        y = x + 1.0  # fine
        with pytest.raises(
            tg.AnomalyError, match=r"^Log forward produced 1 NaN and 1 Inf .*\(3,\)"
        ):
            x.log()
    assert np.isfinite(y.numpy()).all()
    x.log()  # outside the block nothing is checked


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_detect_anomaly_names_the_backward_op(device):
    x = tg.tensor([0.0, 4.0], requires_grad=True)
    with tg.detect_anomaly():
        y = x.sqrt().sum()  # forward is finite: sqrt(0) = 0
        with pytest.raises(tg.AnomalyError, match=r"^Sqrt backward produced non-finite values"):
            y.backward()


def test_detect_anomaly_off_lets_inf_through(device):
    x = tg.tensor([0.0], requires_grad=True)
    with np.errstate(divide="ignore"):
        x.sqrt().sum().backward()
    assert np.isinf(x.grad.numpy()).all()


def test_function_registry_holds_the_primitives():
    from tinygrad_edu.autograd import REGISTRY

    for name in ["Add", "Mul", "MatMul", "Getitem", "IndexAdd", "Where", "Sum", "Max"]:
        assert name in REGISTRY


def test_custom_function(device):
    """A learner's own Function: forward on arrays, backward on Tensors."""
    from tinygrad_edu.autograd import Function

    class _Cube(Function):  # leading underscore: not registered
        def forward(self, a):
            return a * a * a

        def backward(self, grad_out):
            (a,) = self.inputs
            return grad_out * 3.0 * a * a

    x = tg.tensor([2.0], requires_grad=True)
    _Cube.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [12.0])
    from tinygrad_edu.autograd import REGISTRY

    assert "_Cube" not in REGISTRY

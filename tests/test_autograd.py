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


# ---- Functions with several outputs -------------------------------------------------------------


class _ProductAndRatio(tg.autograd.Function):
    """Two outputs from two inputs: ``(a * b, a / b)``. Leading underscore: not registered."""

    calls = 0

    def forward(self, a, b):
        return a * b, a / b

    def backward(self, grad_p, grad_r):
        type(self).calls += 1
        a, b = self.inputs
        return grad_p * b + grad_r / b, grad_p * a - grad_r * a / (b * b)


def _two_inputs():
    a = tg.tensor([[0.5, -1.5, 2.0], [1.0, 0.3, -0.7]], dtype="float64", requires_grad=True)
    b = tg.tensor([[1.2, 0.8, -2.0], [1.5, -0.9, 2.5]], dtype="float64", requires_grad=True)
    return a, b


def test_function_with_two_outputs_returns_a_tuple_and_passes_gradcheck(device):
    from tinygrad_edu.testing import gradcheck

    a, b = _two_inputs()
    p, r = _ProductAndRatio.apply(a, b)
    np.testing.assert_allclose(p.numpy(), a.numpy() * b.numpy())
    np.testing.assert_allclose(r.numpy(), a.numpy() / b.numpy())
    assert p.requires_grad and r.requires_grad and p._ctx is r._ctx
    gradcheck(lambda a, b: _ProductAndRatio.apply(a, b), [a, b])  # a random gradient for each


def test_unused_output_gets_a_zero_gradient(device):
    a, b = _two_inputs()
    _ProductAndRatio.calls = 0
    p, _r = _ProductAndRatio.apply(a, b)  # r never reaches the loss
    p.sum().backward()
    assert _ProductAndRatio.calls == 1
    np.testing.assert_allclose(a.grad.numpy(), b.numpy())
    np.testing.assert_allclose(b.grad.numpy(), a.numpy())
    a.grad = b.grad = None
    _p, r = _ProductAndRatio.apply(a, b)  # and the other way round
    r.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 1 / b.numpy())
    np.testing.assert_allclose(b.grad.numpy(), -a.numpy() / b.numpy() ** 2)


def test_both_outputs_feeding_one_loss_run_backward_once(device):
    """p and r reach the loss through paths of different lengths; the op's backward waits for
    both gradients and runs once, and a and b get the gradient of the composed expression."""
    a, b = _two_inputs()
    _ProductAndRatio.calls = 0
    p, r = _ProductAndRatio.apply(a, b)
    loss = (p * r).sum() + (r.exp() * 2.0).sum() + p.sum()
    loss.backward()
    assert _ProductAndRatio.calls == 1
    ga, gb = a.grad.numpy(), b.grad.numpy()
    a2 = tg.tensor(a.numpy(), requires_grad=True)
    b2 = tg.tensor(b.numpy(), requires_grad=True)
    p2, r2 = a2 * b2, a2 / b2
    ((p2 * r2).sum() + (r2.exp() * 2.0).sum() + p2.sum()).backward()
    np.testing.assert_allclose(ga, a2.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gb, b2.grad.numpy(), rtol=1e-12)


def test_two_output_function_second_derivatives(device):
    a, b = _two_inputs()
    gradgradcheck(lambda a, b: _ProductAndRatio.apply(a, b), [a, b])
    p, r = _ProductAndRatio.apply(a, b)
    (p * r).sum().backward(create_graph=True)  # p * r = a^2: d/da = 2a, d2/da2 = 2
    np.testing.assert_allclose(a.grad.numpy(), 2 * a.numpy(), rtol=1e-12)
    ga = a.grad
    assert ga.requires_grad
    a.grad = b.grad = None
    ga.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.full((2, 3), 2.0), rtol=1e-12)


def test_two_output_function_graph_rules(device):
    a, b = _two_inputs()
    with tg.no_grad():
        p, r = _ProductAndRatio.apply(a, b)
    assert not p.requires_grad and not r.requires_grad and p._ctx is None
    p, r = _ProductAndRatio.apply(a, b)
    p.sum().backward()
    with pytest.raises(RuntimeError, match="second time.*_ProductAndRatio"):
        r.sum().backward()
    p, r = _ProductAndRatio.apply(a, b)
    p.sum().backward(retain_graph=True)
    a.grad = None
    r.sum().backward()  # retained: the other output can still go back
    np.testing.assert_allclose(a.grad.numpy(), 1 / b.numpy())


def test_two_output_function_under_detect_anomaly(device):
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([0.0, 1.0], requires_grad=True)
    with tg.detect_anomaly(), np.errstate(divide="ignore", invalid="ignore"):
        with pytest.raises(tg.AnomalyError, match="_ProductAndRatio forward"):
            _ProductAndRatio.apply(a, b)


def test_two_output_chain_of_ten_thousand_ops(device):
    """Several-output ops in a long chain: the walk stays iterative."""
    x = tg.tensor(1.0, dtype="float64", requires_grad=True)
    one = tg.tensor(1.0, dtype="float64")
    y = x
    for _ in range(5_000):
        p, _ = _ProductAndRatio.apply(y, one)
        y = p * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 1.0001**5_000, rtol=1e-9)


# ---- every gradient a backward returns is checked -----------------------------------------------


class _AddForgetsUnbroadcast(tg.autograd.Function):
    """``a + b`` whose backward forgets to sum the broadcast input's gradient back."""

    def forward(self, a, b):
        return a + b

    def backward(self, grad_out):
        return grad_out, grad_out


class _ReturnsWhatItIsTold(tg.autograd.Function):
    """Identity whose backward returns ``make(grad_out)``: a way to return anything."""

    def forward(self, a, make):
        self.make = make
        return a

    def backward(self, grad_out):
        return self.make(grad_out), None


def test_gradient_of_the_wrong_shape_names_op_input_and_shapes(device):
    a = tg.zeros(3, 4, requires_grad=True)
    b = tg.zeros(3, 1, requires_grad=True)
    out = _AddForgetsUnbroadcast.apply(a, b)
    with pytest.raises(ValueError) as e:
        out.sum().backward()
    assert str(e.value).startswith(
        "_AddForgetsUnbroadcast.backward returned a gradient of shape (3, 4) for input 1 of "
        "shape (3, 1); "
    )
    assert "unbroadcast" in str(e.value)


def test_gradient_of_an_integer_dtype_is_an_error(device):
    x = tg.ones(2, 3, requires_grad=True)
    y = _ReturnsWhatItIsTold.apply(x, lambda g: g.astype("int64"))
    with pytest.raises(
        TypeError,
        match=r"returned a gradient of dtype int64 for input 0 of "
        r"dtype float32 \(shape \(2, 3\)\)",
    ):
        y.sum().backward()


def test_gradient_of_another_float_dtype_is_cast_to_the_input_dtype(device):
    x = tg.ones(2, 3, requires_grad=True)
    y = _ReturnsWhatItIsTold.apply(x, lambda g: g.astype("float64") * 2.0)
    (y * 1.5).sum().backward()
    assert x.grad.dtype == "float32"
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3), 3.0))


def test_gradient_that_is_not_a_tensor_is_an_error(device):
    x = tg.ones(2, requires_grad=True)
    y = _ReturnsWhatItIsTold.apply(x, lambda g: g.numpy())
    with pytest.raises(
        TypeError,
        match=r"_ReturnsWhatItIsTold.backward returned an object of type ndarray for "
        r"input 0 \(shape \(2,\)\); a backward returns Tensors",
    ):
        y.sum().backward()


def test_gradient_on_another_device_is_an_error():
    pytest.importorskip("array_api_strict", reason="needs a second device (array-api-strict)")
    x = tg.ones(2, 2, requires_grad=True, device="cpu")
    y = _ReturnsWhatItIsTold.apply(x, lambda g: g.to("strict"))
    with pytest.raises(
        tg.DeviceError,
        match=r"gradient on device 'strict' for input 0 on "
        r"device 'cpu' \(shape \(2, 2\)\)",
    ):
        y.sum().backward()


def test_backward_returning_too_few_gradients_is_an_error(device):
    class _ForgetsOne(tg.autograd.Function):
        def forward(self, a, b):
            return a * b

        def backward(self, grad_out):
            return grad_out * self.inputs[1]  # one gradient for two inputs

    a, b = tg.ones(2, requires_grad=True), tg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="_ForgetsOne.backward returned 1 gradient\\(s\\) for 2"):
        _ForgetsOne.apply(a, b).sum().backward()

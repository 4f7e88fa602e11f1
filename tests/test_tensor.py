"""Tensor construction rules, creation helpers, conversion and printing (chapter 1)."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg

pytestmark = pytest.mark.ch01


# ---- construction rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "dtype", "shape"),
    [
        (1.5, "float32", ()),
        (3, "int64", ()),
        (True, "bool", ()),
        ([1.0, 2.0], "float32", (2,)),
        ([[1, 2], [3, 4]], "int64", (2, 2)),
        ([1, 2.5], "float32", (2,)),  # a mix of ints and floats is float
        ([[True, False]], "bool", (1, 2)),
        ([], "float32", (0,)),
    ],
)
def test_python_data_gets_default_dtypes(data, dtype, shape, device):
    t = tg.tensor(data)
    assert (t.dtype, t.shape, t.device) == (dtype, shape, device)
    np.testing.assert_array_equal(t.numpy(), np.asarray(data, dtype=dtype))


@pytest.mark.parametrize("dtype", ["float64", "float32", "int32", "int64", "bool", "uint8"])
def test_arrays_keep_their_dtype(dtype, device):
    a = np.arange(6).reshape(2, 3).astype(dtype)
    t = tg.tensor(a)
    assert t.dtype == dtype and t.shape == (2, 3) and t.device == device
    np.testing.assert_array_equal(t.numpy(), a)


def test_numpy_scalar_keeps_dtype(device):
    assert tg.tensor(np.float64(2.0)).dtype == "float64"


def test_dtype_argument_converts(device):
    assert tg.tensor([1, 2], dtype="float64").dtype == "float64"
    assert tg.tensor(np.ones(2), dtype="float32").dtype == "float32"
    assert tg.Tensor(tg.ones(2), dtype="float64").dtype == "float64"


def test_tensor_from_tensor_shares_data_not_graph(device):
    x = tg.ones(2, requires_grad=True)
    y = tg.Tensor(x * 2)
    assert y.is_leaf and not y.requires_grad
    np.testing.assert_array_equal(y.numpy(), [2, 2])


def test_tensor_from_tensor_keeps_its_device(device):
    other = "strict" if device == "cpu" else "cpu"
    assert tg.Tensor(tg.ones(2, device=other)).device == other
    assert tg.Tensor(tg.ones(2, device=other), device=device).device == device


def test_requires_grad_only_on_floats(device):
    assert tg.tensor([1.0], requires_grad=True).requires_grad
    with pytest.raises(TypeError, match=r"requires_grad=True needs a floating-point .* int64"):
        tg.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match=r"floating-point .* dtype bool"):
        tg.tensor([True]).requires_grad_()
    with pytest.raises(TypeError, match="floating-point"):
        tg.zeros(3, dtype="int64", requires_grad=True)


@pytest.mark.parametrize("bad", [None, "abc", {"a": 1}])
def test_unusable_data_is_a_clear_error(bad, device):
    with pytest.raises(TypeError, match=r"tensor: cannot make a tensor from (NoneType|str|dict)"):
        tg.tensor(bad)


def test_ragged_lists_are_a_clear_error(device):
    with pytest.raises(ValueError, match="tensor: .*nested lists must be rectangular"):
        tg.tensor([[1.0], [1.0, 2.0]])


# ---- creation helpers -----------------------------------------------------------------------


def test_zeros_ones_full(device):
    assert tg.zeros(2, 3).shape == (2, 3) and tg.zeros((2, 3)).shape == (2, 3)
    assert tg.zeros(2).dtype == "float32" and tg.ones(2, dtype="int64").dtype == "int64"
    np.testing.assert_array_equal(tg.ones(2, 2).numpy(), np.ones((2, 2)))
    f = tg.full((2,), 7.0)
    np.testing.assert_array_equal(f.numpy(), [7.0, 7.0])
    assert f.dtype == "float32" and f.device == device
    assert tg.full(3, 2.0).shape == (3,)
    assert tg.zeros(0, 4).shape == (0, 4)
    assert tg.zeros(()).shape == ()


def test_like_helpers_follow_the_tensor(device):
    x = tg.randn(2, 3, dtype="float64")
    for t, value in [(tg.zeros_like(x), 0), (tg.ones_like(x), 1), (tg.full_like(x, 4.0), 4)]:
        assert (t.shape, t.dtype, t.device) == ((2, 3), "float64", device)
        np.testing.assert_array_equal(t.numpy(), np.full((2, 3), value))
    assert tg.zeros_like(x, dtype="int64").dtype == "int64"
    r = tg.randn_like(x)
    assert (r.shape, r.dtype) == ((2, 3), "float64")
    u = tg.rand_like(x)
    assert ((u.numpy() >= 0) & (u.numpy() < 1)).all()


def test_arange(device):
    np.testing.assert_array_equal(tg.arange(5).numpy(), np.arange(5))
    assert tg.arange(5).dtype == "int64"
    np.testing.assert_allclose(tg.arange(0, 1, 0.25).numpy(), [0, 0.25, 0.5, 0.75])
    assert tg.arange(0, 1, 0.25).dtype == "float32"
    np.testing.assert_array_equal(tg.arange(2, 8, 3).numpy(), [2, 5])


def test_random_helpers(device):
    x = tg.randn(1000)
    assert x.dtype == "float32" and x.device == device
    assert abs(float(x.numpy().mean())) < 0.2 and 0.8 < float(x.numpy().std()) < 1.2
    u = tg.rand(1000, dtype="float64").numpy()
    assert u.dtype == np.float64 and u.min() >= 0 and u.max() < 1
    i = tg.randint(0, 5, (100,))
    assert i.dtype == "int64" and set(i.numpy().tolist()) <= set(range(5))
    assert tg.randn(2, 3, requires_grad=True).requires_grad


def test_manual_seed_reproduces_every_draw(device):
    tg.manual_seed(123)
    first = [tg.randn(3).numpy(), tg.rand(2).numpy(), tg.randint(0, 100, 4).numpy()]
    tg.manual_seed(123)
    second = [tg.randn(3).numpy(), tg.rand(2).numpy(), tg.randint(0, 100, 4).numpy()]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    tg.manual_seed(124)
    assert not np.array_equal(tg.randn(3).numpy(), first[0])


def test_rng_state_round_trip(device):
    state = tg.backend.get_rng_state()
    a = tg.randn(4).numpy()
    tg.backend.set_rng_state(state)
    np.testing.assert_array_equal(tg.randn(4).numpy(), a)


# ---- properties and conversion ----------------------------------------------------------------


def test_properties(device):
    x = tg.zeros(2, 3, 4)
    assert (x.shape, x.ndim, x.size, x.dtype, x.device, len(x)) == (
        (2, 3, 4), 3, 24, "float32", device, 2,
    )  # fmt: skip
    assert x.is_leaf and x.grad is None
    with pytest.raises(TypeError, match="len.. of a 0-d tensor"):
        len(tg.tensor(1.0))


def test_numpy_item_tolist(device):
    x = tg.tensor([[1.5, 2.0]])
    assert isinstance(x.numpy(), np.ndarray)
    assert x.tolist() == [[1.5, 2.0]]
    assert tg.tensor([[2.5]]).item() == 2.5 and isinstance(tg.tensor(3).item(), int)
    assert float(tg.tensor(1.25)) == 1.25 and int(tg.tensor(7)) == 7
    with pytest.raises(ValueError, match=r"item\(\): only one-element tensors .* \(1, 2\)"):
        x.item()


def test_truth_value(device):
    assert bool(tg.tensor(1.0)) and not bool(tg.tensor([0.0]))
    with pytest.raises(ValueError, match=r"truth value of a tensor of shape \(2,\) is ambiguous"):
        bool(tg.ones(2))


def test_detach_cuts_the_graph(device):
    x = tg.ones(2, requires_grad=True)
    y = (x * 2).detach()
    assert not y.requires_grad and y.is_leaf
    np.testing.assert_array_equal(y.numpy(), [2, 2])


def test_astype_and_shortcuts(device):
    x = tg.tensor([1.7, -2.2])
    assert x.astype("float64").dtype == "float64"
    assert x.astype(np.float64).dtype == "float64"
    assert x.double().dtype == "float64" and x.double().float().dtype == "float32"
    assert x.long().dtype == "int64"
    np.testing.assert_array_equal(x.long().numpy(), [1, -2])
    assert x.astype("float32") is x  # nothing to do


def test_to_same_device_is_identity(device):
    x = tg.ones(2)
    assert x.to(device) is x
    assert x.to(None if device == "cpu" else device).device == device


def test_to_other_device_copies_a_leaf():
    x = tg.ones(2, device="cpu", requires_grad=True)
    y = x.to("strict")
    assert y.device == "strict" and y.is_leaf and y.requires_grad
    z = y.to("cpu")
    assert z.device == "cpu"
    np.testing.assert_array_equal(z.numpy(), [1, 1])


def test_repr_reads_like_numpy():
    x = tg.tensor([[1.0, 2.0], [3.0, 4.5]], device="cpu")
    assert repr(x) == "tensor([[1. , 2. ],\n        [3. , 4.5]])"
    assert repr(tg.tensor([1, 2], device="cpu")) == "tensor([1, 2])"
    assert "dtype=float64" in repr(tg.tensor(np.ones(1), device="cpu"))
    assert "requires_grad=True" in repr(tg.ones(1, device="cpu", requires_grad=True))
    assert "device='strict'" in repr(tg.ones(1, device="strict"))


@pytest.mark.ch02
def test_repr_names_the_op_that_made_it():
    x = tg.ones(1, device="cpu", requires_grad=True)
    y = x * 2
    y.backward()  # needs the recorded graph (exercise 2.1) and the backward pass (2.2)
    assert "grad_fn=Mul" in repr(y) and x.grad.numpy().tolist() == [2.0]


def test_numpy_array_on_the_left_uses_tensor_ops(device):
    out = np.ones(2, dtype=np.float32) * tg.ones(2, requires_grad=True)
    assert isinstance(out, tg.Tensor) and out.requires_grad


def test_host_arrays_follow_the_default_device(device):
    assert tg.tensor(np.ones(3)).device == device
    assert tg.tensor(np.ones(3), device="cpu").device == "cpu"

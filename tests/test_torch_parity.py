"""Where PyTorch and this library should agree, checked against PyTorch itself (float64).

Each test here was written for a difference found by comparing the two: a NumPy scalar that
turned float32 into float64, a float bound truncated on an integer tensor, a gradient that was
NaN where PyTorch's is 0, arguments of the wrong type that failed deep inside NumPy. Tests that
need PyTorch skip when it is not installed; the rest run everywhere.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from helpers import raises_each

import tinygrad_edu as tg
import tinygrad_edu.functional as F
from tinygrad_edu import nn, optim

pytestmark = pytest.mark.ch16


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is needed to compare against it")


# ---- NumPy scalars are Python numbers ---------------------------------------------------------


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


# ---- where, clip, masked_fill: a float scalar with an integer tensor ----------------------------


def test_where_int_tensor_float_scalar_is_float_like_torch():
    torch = _torch()
    cond = np.array([True, False, True])
    ints = np.array([1, 2, 3])
    ours = tg.where(tg.tensor(cond), tg.tensor(ints), 0.5)
    theirs = torch.where(torch.tensor(cond), torch.tensor(ints), 0.5)
    assert ours.dtype == "float32" and theirs.is_floating_point()
    np.testing.assert_allclose(ours.numpy(), theirs.numpy())
    ours = tg.where(tg.tensor(cond), tg.tensor(ints), tg.tensor([0.5, 0.5, 0.5]))
    assert ours.dtype == "float32"  # not NumPy's float64 for int64 with float32
    np.testing.assert_allclose(ours.numpy(), [1.0, 0.5, 3.0])


def test_clip_int_tensor_float_bounds_like_torch():
    torch = _torch()
    ints = np.array([0, 1, 2, 3])
    ours = tg.tensor(ints).clip(0, 1.5)
    theirs = torch.tensor(ints).clamp(0, 1.5)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy())  # was [0, 1, 1, 1]
    assert tg.tensor(ints).clip(0, 2).dtype == "int64"


def test_clip_tensor_bound_is_a_clear_error():
    with pytest.raises(TypeError, match=r"clip: min must be a Python number or None, got Tensor"):
        tg.ones(3).clip(tg.zeros(3), 1.0)


def test_masked_fill_keeps_dtype_like_torch():
    torch = _torch()
    ours = tg.tensor([1, 2]).masked_fill(tg.tensor([True, False]), 0.5)
    theirs = torch.tensor([1, 2]).masked_fill(torch.tensor([True, False]), 0.5)
    assert ours.dtype == "int64"
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


# ---- pow: gradients at a zero base -------------------------------------------------------------


@pytest.mark.parametrize(
    "base, exponent",
    [
        ([0.0, 1.0, -2.0, 0.5], [0.0, 0.0, 0.0, 0.0]),  # x ** 0 at x = 0: 0, not NaN
        ([0.0, 0.5, 2.0, 0.0], [2.0, 3.0, 2.0, 1.5]),  # d/db at a = 0: 0, not NaN
        ([-2.0, -1.0, 0.5, 3.0], [3.0, 2.0, 3.0, 3.0]),  # negative bases, integral exponents
    ],
)
def test_pow_gradients_match_torch(base, exponent):
    torch = _torch()
    a, b = (
        tg.tensor(np.array(base), requires_grad=True),
        tg.tensor(np.array(exponent), requires_grad=True),
    )
    ta = torch.tensor(base, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(exponent, dtype=torch.float64, requires_grad=True)
    g = np.random.default_rng(0).normal(size=len(base))
    with np.errstate(all="ignore"):  # the forward's own 0 ** -x = inf may warn, as NumPy does
        out = a**b
    with warnings.catch_warnings():  # the backward's masked 0 * inf and log(0) must not
        warnings.simplefilter("error")
        out.backward(tg.tensor(g))
    (ta**tb).backward(torch.tensor(g))
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), equal_nan=True)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), equal_nan=True)


def test_pow_python_base_and_exponent_at_zero():
    x = tg.tensor(np.array([0.0, 1.0, 2.0]), requires_grad=True)
    with warnings.catch_warnings():  # 0 * inf is computed, then replaced by 0: no warning
        warnings.simplefilter("error")
        (0.0**x).sum().backward()  # d/dx 0^x = 0^x log 0 -> 0 for x >= 0, as PyTorch
        np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])
        y = tg.tensor(np.array([0.0, 3.0]), requires_grad=True)
        (y**0).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 0.0])
    assert not math.isnan(float(y.grad.sum()))


@pytest.mark.parametrize("op", ["sqrt", "log"])
def test_backward_pass_is_quiet_where_the_gradient_is_inf(op):
    """d sqrt(x)/dx and d log(x)/dx are inf at 0: the backward pass gives that value, as PyTorch,
    without a NumPy warning pointing inside the library (the forward's own warning is NumPy's)."""
    torch = _torch()
    x = tg.tensor(np.array([0.0, 1.0, 4.0]), requires_grad=True)
    tx = torch.tensor([0.0, 1.0, 4.0], dtype=torch.float64, requires_grad=True)
    with np.errstate(divide="ignore"):  # log(0) = -inf in the forward: NumPy's warning
        out = getattr(x, op)()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out.sum().backward()
    getattr(tx, op)().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


# ---- // and %: Python's floor rule on ints and floats, as PyTorch --------------------------------


@pytest.mark.parametrize(
    "a, b",
    [
        ([7, -7, 6], [2, 2, -4]),  # ints: floor, not truncation; the sign of the divisor
        ([7.5, -7.5, 0.25], [2.0, 2.0, -0.5]),
        ([7, -7], 2.5),  # an int tensor with a float: float32, as PyTorch
        (9, [2, -4]),  # a Python number on the left (__rfloordiv__, __rmod__)
        ([3.0, -3.0], 0.0),  # float division by zero: inf / nan, no error
    ],
)
def test_floor_divide_and_remainder_match_torch(a, b):
    torch = _torch()

    def make(lib, v):
        return v if not isinstance(v, list) else lib.tensor(v)

    for op in (lambda x, y: x // y, lambda x, y: x % y):
        with np.errstate(divide="ignore", invalid="ignore"):
            ours = op(make(tg, a), make(tg, b))
        theirs = op(make(torch, a), make(torch, b))
        assert ours.dtype == str(theirs.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_remainder_gradients_match_torch_and_floor_divide_has_none():
    torch = _torch()
    a, b = (
        tg.tensor([3.5, -4.0, 7.25], requires_grad=True),
        tg.tensor([2.0, 3.0, -2.0], requires_grad=True),
    )
    ta = torch.tensor([3.5, -4.0, 7.25], requires_grad=True)
    tb = torch.tensor([2.0, 3.0, -2.0], requires_grad=True)
    (a % b).sum().backward()
    (ta % tb).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_array_equal(b.grad.numpy(), tb.grad.numpy())
    q = a // 2
    assert not q.requires_grad  # a step function: no gradient (PyTorch errors in backward)
    (a * q).sum().backward()  # the floor acts as a constant, its derivative where it exists
    np.testing.assert_array_equal(a.grad.numpy(), [1.0 + 1.0, 1.0 - 2.0, 1.0 + 3.0])


@pytest.mark.parametrize("op", ["//", "%"])
def test_integer_division_by_zero_is_one_clear_error(op):
    name = {"//": "floor_divide", "%": "remainder"}[op]
    f = {"//": lambda x, y: x // y, "%": lambda x, y: x % y}[op]
    with pytest.raises(
        ZeroDivisionError, match=rf"^{name}: integer division by zero \(divisor 0\)$"
    ):
        f(tg.tensor([3, 4]), 0)
    with pytest.raises(ZeroDivisionError, match=rf"^{name}: .*divisor of shape \(2,\) holds a 0"):
        f(tg.tensor([3, 4]), tg.tensor([1, 0]))


def test_std_is_sqrt_of_var_with_numpy_ddof():
    torch = _torch()
    x = np.random.default_rng(0).normal(size=(4, 5))
    np.testing.assert_allclose(tg.tensor(x).std().numpy(), x.std())
    np.testing.assert_allclose(
        tg.tensor(x).std(axis=1, ddof=1, keepdims=True).numpy(),
        torch.tensor(x).std(1, keepdim=True).numpy(),  # PyTorch's default correction=1
    )
    t = tg.tensor(x, requires_grad=True)
    tt = torch.tensor(x, requires_grad=True)
    t.std(axis=0).sum().backward()
    tt.std(0, unbiased=False).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-12)


# ---- sizes, axes and counts of the wrong type: one clear line naming the op --------------------

BAD_ARGUMENTS = [
    ("zeros float size", lambda: tg.zeros(2.0, 3), TypeError, r"zeros: sizes must be integers"),
    ("zeros bool size", lambda: tg.zeros(True, 3), TypeError, r"zeros: sizes must be integers"),
    ("ones negative", lambda: tg.ones(-1, 3), ValueError, r"ones: sizes must be >= 0.*\(-1, 3\)"),
    ("randn float", lambda: tg.randn(2.5), TypeError, r"randn: sizes must be integers.*2\.5"),
    ("rand negative", lambda: tg.rand((2, -2)), ValueError, r"rand: sizes must be >= 0"),
    ("full float", lambda: tg.full((2.0,), 1.0), TypeError, r"full: sizes must be integers"),
    ("randint empty range", lambda: tg.randint(5, 5, (3,)), ValueError,
     r"randint: needs low < high, got low=5, high=5"),
    ("arange step 0", lambda: tg.arange(0, 1, 0), ValueError, r"arange: step must not be 0"),
    ("sum axis bool", lambda: tg.ones(2, 3).sum(axis=True), TypeError,
     r"sum: axis must be None, an int or a tuple of ints, got True"),
    ("reshape bool", lambda: tg.ones(2, 3).reshape(True, 6), TypeError,
     r"reshape: the new shape must hold integers"),
    ("unsqueeze float", lambda: tg.ones(2, 3).unsqueeze(1.0), TypeError,
     r"unsqueeze: axis must be an int, got 1\.0"),
    ("unsqueeze bool", lambda: tg.ones(2, 3).unsqueeze(True), TypeError, r"unsqueeze: axis"),
    ("flatten order", lambda: tg.ones(2, 3).flatten(1, 0), ValueError,
     r"flatten: start_axis 1 comes after end_axis 0 for a tensor of shape \(2, 3\)"),
    ("argmax tuple", lambda: tg.ones(2, 3).argmax(axis=(0, 1)), TypeError,
     r"argmax: axis must be None or an int"),
    ("split zero", lambda: tg.ones(2, 3).split(0, axis=1), ValueError,
     r"split: the number of sections must be >= 1, got 0"),
    ("split float", lambda: tg.ones(2, 3).split(1.5), TypeError,
     r"split: indices_or_sections must be an int or a list of ints, got 1\.5"),
    ("split bool", lambda: tg.ones(2, 3).split(True), TypeError, r"split: indices_or_sections"),
    ("stack axis", lambda: tg.stack([tg.ones(2, 3)] * 2, axis=3), ValueError,
     r"stack: axis 3 is out of range for stacking tensors of shape \(2, 3\) \(axes -3\.\.2\)"),
    ("astype unknown", lambda: tg.ones(2).astype("foo"), TypeError, r"dtype: unknown dtype 'foo'"),
    ("astype not a dtype", lambda: tg.ones(2).astype("sum"), TypeError, r"unknown dtype 'sum'"),
    ("ragged list", lambda: tg.tensor([[1, 2], [3]]), ValueError,
     r"tensor: cannot make a tensor from this data \(nested lists must be rectangular"),
]  # fmt: skip


@pytest.mark.parametrize("what, fn, exc, pattern", BAD_ARGUMENTS, ids=[c[0] for c in BAD_ARGUMENTS])
def test_bad_argument_is_a_clear_error(what, fn, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        fn()
    assert "\n" not in str(info.value)


def test_zeros_still_takes_numpy_integers_and_tuples():
    assert tg.zeros(np.int64(2), 3).shape == (2, 3)
    assert tg.ones((2, 0)).shape == (2, 0)
    assert tg.full(3, 1.0).shape == (3,)
    assert tg.randint(0, 5, 4).shape == (4,)


# ---- expand with -1, concat of integers and floats ---------------------------------------------


def test_expand_minus_one_keeps_the_size_like_torch():
    torch = _torch()
    x = np.arange(3.0).reshape(3, 1)
    for shape in [(-1, 4), (2, -1, 4), (2, 3, -1)]:
        ours = tg.tensor(x).expand(*shape)
        theirs = torch.tensor(x).expand(*shape)
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    with pytest.raises(ValueError, match=r"broadcast_to: cannot broadcast .* \(-1, 3, 1\)"):
        tg.tensor(x).expand(-1, 3, 1)  # a new leading axis needs a size


def test_concat_and_stack_of_ints_and_floats_give_the_float_like_torch():
    torch = _torch()
    f, i = np.ones((2, 3), dtype=np.float32), np.arange(6).reshape(2, 3)
    ours = tg.concat([tg.tensor(f), tg.tensor(i)])
    theirs = torch.cat([torch.tensor(f), torch.tensor(i)])
    assert ours.dtype == "float32" and theirs.dtype == torch.float32  # not NumPy's float64
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert tg.stack([tg.tensor(i), tg.tensor(f)]).dtype == "float32"
    assert tg.concat([tg.tensor(f), tg.tensor(f.astype(np.float64))]).dtype == "float64"
    assert tg.concat([tg.tensor(i), tg.tensor(i)]).dtype == "int64"


# ---- layers: sizes of the wrong type, and containers of things that are not modules ------------

LAYER_ARGUMENTS = [
    ("Linear float", lambda: nn.Linear(3.0, 2), ValueError,
     r"Linear: in_features must be an integer >= 0, got 3\.0"),
    ("Linear bool", lambda: nn.Linear(3, True), ValueError,
     r"Linear: out_features must be an integer >= 0, got True"),
    ("Linear negative", lambda: nn.Linear(-3, 2), ValueError, r"Linear: in_features"),
    ("Conv1d kernel float", lambda: nn.Conv1d(3, 2, 3.0), TypeError,
     r"Conv1d: sizes must be integers or 1-tuples, got 3\.0"),
    ("Conv1d kernel 0", lambda: nn.Conv1d(3, 2, 0), ValueError,
     r"Conv1d: kernel_size must be a positive integer, got 0"),
    ("Conv1d stride bool", lambda: nn.Conv1d(3, 2, 3, stride=True), TypeError,
     r"Conv1d: sizes must be integers"),
    ("Embedding float", lambda: nn.Embedding(5.0, 2), ValueError,
     r"Embedding: num_embeddings must be a positive integer, got 5\.0"),
    ("Embedding padding_idx float", lambda: nn.Embedding(5, 2, padding_idx=1.0), TypeError,
     r"Embedding: padding_idx must be an int or None, got 1\.0"),
    ("Sequential of a function", lambda: nn.Sequential(nn.ReLU(), lambda x: x), TypeError,
     r"Sequential: element 1 is a function, not a Module"),
]  # fmt: skip


@pytest.mark.parametrize(
    "what, fn, exc, pattern", LAYER_ARGUMENTS, ids=[c[0] for c in LAYER_ARGUMENTS]
)
def test_bad_layer_argument_is_a_clear_error(what, fn, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        fn()
    assert "\n" not in str(info.value)


def test_conv1d_still_takes_one_tuples():
    conv = nn.Conv1d(3, 2, (3,), stride=(2,))
    assert conv.kernel_size == (3,) and conv.stride == (2,)
    assert conv(tg.ones(1, 3, 9)).shape == (1, 2, 4)


# ---- options given as strings, axes as floats --------------------------------------------------

OPTION_ARGUMENTS = [
    ("SGD lr str", lambda p: optim.SGD(p, lr="0.1"), TypeError,
     r"SGD: learning rate lr must be a number, got str '0\.1'"),
    ("Adam eps str", lambda p: optim.Adam(p, eps="1e-8"), TypeError,
     r"Adam: epsilon value eps must be a number, got str"),
    ("Adam beta str", lambda p: optim.Adam(p, betas=("0.9", 0.99)), TypeError,
     r"Adam: beta parameter at index 0 must be a number, got str"),
    ("Dropout p str", lambda p: nn.Dropout("0.1"), ValueError,
     r"Dropout: probability p must be between 0 and 1, got '0\.1'"),
    ("dropout p str", lambda p: F.dropout(tg.ones(2), "0.1"), ValueError,
     r"dropout: probability p must be in \[0, 1\], got '0\.1'"),
    ("softmax axis float", lambda p: F.softmax(tg.ones(2, 3), axis=1.0), TypeError,
     r"softmax: axis must be an int, got 1\.0"),
    ("log_softmax axis bool", lambda p: F.log_softmax(tg.ones(2, 3), axis=True),
     TypeError, r"log_softmax: axis must be an int, got True"),
]  # fmt: skip


@pytest.mark.parametrize(
    "what, fn, exc, pattern", OPTION_ARGUMENTS, ids=[c[0] for c in OPTION_ARGUMENTS]
)
def test_bad_option_is_a_clear_error(what, fn, exc, pattern):
    params = [tg.zeros(3, requires_grad=True)]
    with pytest.raises(exc, match=pattern) as info:
        fn(params)
    assert "\n" not in str(info.value)


def test_learning_rate_may_still_be_a_numpy_number():
    p = tg.ones(3, requires_grad=True)
    opt = optim.SGD([p], lr=np.float64(0.5))
    p.grad = tg.ones(3)
    opt.step()
    np.testing.assert_allclose(p.numpy(), [0.5, 0.5, 0.5])


# ---- in-place operators: x -= y under no_grad updates x itself ----------------------------------


def test_manual_sgd_step_updates_the_parameter_in_place_like_torch():
    torch = _torch()
    x = np.array([[1.0, -2.0]])
    ours = nn.Linear(2, 2).astype("float64")
    theirs = torch.nn.Linear(2, 2).double()
    theirs.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in ours.state_dict().items()})
    weight = ours.weight
    ours(tg.tensor(x)).sum().backward()
    theirs(torch.tensor(x)).sum().backward()
    with tg.no_grad():
        ours.weight -= 0.1 * ours.weight.grad
        ours.bias -= 0.1 * ours.bias.grad
    with torch.no_grad():
        theirs.weight -= 0.1 * theirs.weight.grad
        theirs.bias -= 0.1 * theirs.bias.grad
    assert ours.weight is weight and ours.weight.requires_grad  # was a plain new Tensor
    assert [n for n, _ in ours.named_parameters()] == ["weight", "bias"]  # none lost, same order
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.numpy(), getattr(theirs, name).detach().numpy())


def test_inplace_operators_write_into_the_data():
    a = tg.ones(3)
    alias = a
    a += 1
    a *= tg.tensor([1.0, 2.0, 3.0])
    a /= 2
    a -= 0.5
    assert a is alias
    np.testing.assert_allclose(alias.numpy(), [0.5, 1.5, 2.5])
    with pytest.raises(TypeError, match=r"\+=: the result has dtype float32, .* dtype int64"):
        i = tg.tensor([1, 2])
        i += 0.5
    with pytest.raises(ValueError, match=r"\+=: the result has shape \(2, 2\) .* shape \(2,\)"):
        b = tg.ones(2)
        b += tg.ones(2, 2)


def test_inplace_operator_on_a_read_only_view_is_a_one_line_error():
    a = tg.ones(3).expand(2, 3)  # a read-only view in NumPy (PyTorch refuses to write it too)
    with pytest.raises(
        ValueError, match=r"\+=: cannot write into this tensor of shape \(2, 3\)"
    ) as e:
        a += 1
    assert "use x = x + y instead" in str(e.value) and "\n" not in str(e.value)
    b = a + 1  # the out-of-place form works
    np.testing.assert_allclose(b.numpy(), 2.0)


def test_inplace_operator_on_a_recorded_tensor_makes_a_new_one():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    before = y
    y += 1  # the graph keeps the old y; y is now y + 1
    assert y is not before
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


# A write into a tensor that a recorded op will read in backward: PyTorch's version counter
# raises "modified by an inplace operation"; so does ours, naming the op, the input and its shape.


def _write_plus_one(x):
    with tg.no_grad():
        x += 1


def _write_item(x):
    x[0] = 5.0


@pytest.mark.parametrize("write", [_write_plus_one, _write_item], ids=["+=", "setitem"])
def test_a_write_after_use_makes_backward_refuse_like_torch(write):
    torch = _torch()
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    x = tg.tensor([3.0, 4.0])
    y = (x * w).sum()  # Mul keeps x for w's gradient
    write(x)
    with pytest.raises(
        RuntimeError,
        match=r"^backward\(\): input 0 of Mul \(shape \(2,\), float32\) was written in place",
    ):
        y.backward()
    tw, tx = torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([3.0, 4.0])
    ty = (tx * tw).sum()
    with torch.no_grad():
        tx += 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ty.backward()


def test_an_optimizer_step_before_a_second_backward_is_refused():
    layer = nn.Linear(3, 2)
    opt = optim.SGD(layer.parameters(), lr=0.1)
    loss = layer(tg.ones(4, 3)).sum()
    loss.backward(retain_graph=True)
    opt.step()  # the weight LinearFunction read has changed
    with pytest.raises(RuntimeError, match=r"input 1 of LinearFunction \(shape \(2, 3\)"):
        loss.backward()


def test_writes_that_cannot_change_a_gradient_are_allowed():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    x = tg.tensor([3.0, 4.0])
    _write_plus_one(x)  # before the op: the op reads the new values
    y = (x * w).sum() + (x + w).sum()
    _write_plus_one(x)  # after: Mul reads x in its backward (Add would not)
    with pytest.raises(RuntimeError, match="input 0 of Mul"):
        y.backward()
    w2, x2 = tg.tensor([1.0, 2.0], requires_grad=True), tg.tensor([3.0, 4.0])
    z = (x2 + w2).sum()
    _write_plus_one(x2)  # Add keeps no values: as PyTorch, its gradient stands
    z.backward()
    np.testing.assert_array_equal(w2.grad.numpy(), [1.0, 1.0])
    layer = nn.Linear(3, 2)  # an ordinary training loop writes after every backward: no error
    opt = optim.SGD(layer.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        layer(tg.ones(4, 3)).sum().backward()
        opt.step()


def test_linear_with_zero_features_is_allowed_like_torch():
    assert nn.Linear(3, 0)(tg.ones(2, 3)).shape == (2, 0)


# ---- functional: arguments PyTorch refuses were silently used ------------------------------------


def _f32(*shape):
    return tg.ones(*shape)


FUNCTIONAL_ARGUMENTS = [
    ("linear weight float64", lambda: F.linear(_f32(2, 4), _f32(3, 4).astype("float64")),
     TypeError, r"linear: weight has dtype float64 \(shape \(3, 4\)\) but input has float32"),
    ("linear bias int", lambda: F.linear(_f32(2, 4), _f32(3, 4), tg.tensor([0, 0, 0])),
     TypeError, r"linear: bias must be a floating-point tensor, got dtype int64"),
    ("linear bias array", lambda: F.linear(_f32(2, 4), _f32(3, 4), np.zeros(3)), TypeError,
     r"linear: bias must be a Tensor, got ndarray"),
    ("conv1d weight float64", lambda: F.conv1d(_f32(2, 3, 9), _f32(4, 3, 3).astype("float64")),
     TypeError, r"conv1d: weight has dtype float64 .* but input has float32"),
    ("conv1d bias array", lambda: F.conv1d(_f32(2, 3, 9), _f32(4, 3, 3), np.zeros(4)), TypeError,
     r"conv1d: bias must be a Tensor, got ndarray"),
    ("conv1d stride bool", lambda: F.conv1d(_f32(2, 3, 9), _f32(4, 3, 3), stride=True),
     ValueError, r"conv1d: stride must be an integer >= 1, got True"),
    ("attention key float64", lambda: F.scaled_dot_product_attention(
        _f32(2, 3, 4), _f32(2, 3, 4).astype("float64"), _f32(2, 3, 4)), TypeError,
     r"scaled_dot_product_attention: key has dtype float64 .* but input has float32"),
    ("attention scale str", lambda: F.scaled_dot_product_attention(
        _f32(2, 3, 4), _f32(2, 3, 4), _f32(2, 3, 4), scale="0.5"), TypeError,
     r"scaled_dot_product_attention: scale must be a number or None, got '0\.5'"),
    ("one_hot num_classes float", lambda: F.one_hot(tg.tensor([1]), 3.0), TypeError,
     r"one_hot: num_classes must be an int, got 3\.0"),
    ("one_hot num_classes -2", lambda: F.one_hot(tg.tensor([1]), -2), ValueError,
     r"one_hot: num_classes must be -1 \(max id \+ 1\) or >= 0, got -2"),
    ("embedding padding_idx float", lambda: F.embedding(tg.tensor([1]), _f32(5, 3),
     padding_idx=1.5), TypeError, r"embedding: padding_idx must be an int, got 1\.5"),
    ("cross_entropy ignore_index float", lambda: F.cross_entropy(_f32(3, 4), tg.tensor([0, 1, 2]),
     ignore_index=1.5), TypeError, r"cross_entropy: ignore_index must be an int, got 1\.5"),
    ("cross_entropy label_smoothing str", lambda: F.cross_entropy(_f32(3, 4), tg.tensor([0, 1, 2]),
     label_smoothing="0.1"), TypeError, r"cross_entropy: label_smoothing must be a number"),
    ("nll_loss ignore_index float", lambda: F.nll_loss(_f32(3, 4), tg.tensor([0, 1, 2]),
     ignore_index=1.0), TypeError, r"nll_loss: ignore_index must be an int, got 1\.0"),
    ("dropout p None", lambda: F.dropout(_f32(3), None), ValueError,
     r"dropout: probability p must be in \[0, 1\], got None"),
    ("layer_norm normalized_shape float", lambda: F.layer_norm(_f32(2, 4), 4.0), TypeError,
     r"layer_norm: normalized_shape must be an int or a tuple of ints, got 4\.0"),
    ("layer_norm weight float64", lambda: F.layer_norm(_f32(2, 4), 4, _f32(4).astype("float64")),
     TypeError, r"layer_norm: weight has dtype float64 .* but input has float32"),
    ("layer_norm bias array", lambda: F.layer_norm(_f32(2, 4), 4, _f32(4), np.zeros(4)),
     TypeError, r"layer_norm: bias must be a Tensor, got ndarray"),
    ("mse_loss target array", lambda: F.mse_loss(_f32(3), np.zeros(3)), TypeError,
     r"mse_loss: target must be a Tensor, got ndarray"),
    ("bce weight shape", lambda: F.binary_cross_entropy_with_logits(_f32(3, 2), _f32(3, 2),
     weight=_f32(3)), ValueError, r"binary_cross_entropy_with_logits: weight of shape \(3,\) "
     r"does not broadcast to the input's shape \(3, 2\)"),
    ("bce pos_weight array", lambda: F.binary_cross_entropy_with_logits(_f32(3), _f32(3),
     pos_weight=np.ones(3)), TypeError,
     r"binary_cross_entropy_with_logits: pos_weight must be a Tensor, got ndarray"),
]  # fmt: skip


@pytest.mark.parametrize(
    "what, fn, exc, pattern", FUNCTIONAL_ARGUMENTS, ids=[c[0] for c in FUNCTIONAL_ARGUMENTS]
)
def test_bad_functional_argument_is_a_clear_error(what, fn, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        fn()
    assert "\n" not in str(info.value)


# ---- Module: PyTorch's methods for walking and initialising a model ----------------------------


def _tiny_model(lib):
    return lib.nn.Sequential(
        lib.nn.Linear(2, 3), lib.nn.Tanh(), lib.nn.Sequential(lib.nn.Linear(3, 1))
    )


def test_module_apply_visits_children_first_like_torch():
    torch = _torch()
    ours, theirs = [], []
    _tiny_model(tg).apply(lambda m: ours.append(type(m).__name__))
    _tiny_model(torch).apply(lambda m: theirs.append(type(m).__name__))
    assert ours == theirs == ["Linear", "Tanh", "Linear", "Sequential", "Sequential"]

    def init_weights(m):
        if isinstance(m, nn.Linear):
            m.weight.data[...] = 0.5

    model = _tiny_model(tg)
    assert model.apply(init_weights) is model
    assert all((p.numpy() == 0.5).all() for n, p in model.named_parameters() if "weight" in n)


def test_module_tree_methods_match_torch():
    torch = _torch()
    ours, theirs = _tiny_model(tg), _tiny_model(torch)
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert type(ours.get_submodule("2.0")).__name__ == type(theirs.get_submodule("2.0")).__name__
    assert ours.get_submodule("") is ours
    with pytest.raises(AttributeError, match=r"get_submodule: Sequential has no submodule '5'"):
        ours.get_submodule("2.5")
    ours.add_module("head", nn.Linear(1, 1))
    theirs.add_module("head", torch.nn.Linear(1, 1))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    with pytest.raises(TypeError, match=r"add_module: 'f' must be a Module or None, got function"):
        ours.add_module("f", lambda x: x)
    assert ours.buffers() == []
    assert len(ours[1:]) == len(theirs[1:]) == 3 and isinstance(ours[:2], nn.Sequential)
    with pytest.raises(IndexError, match=r"Sequential: index 7 is out of range for 4 modules"):
        ours[7]


def test_zero_grad_set_to_none_false_keeps_zero_gradients_like_torch():
    model = nn.Linear(2, 1)
    model(tg.ones(1, 2)).sum().backward()
    model.zero_grad(set_to_none=False)
    assert model.weight.grad.shape == (1, 2) and (model.weight.grad.numpy() == 0).all()
    model.zero_grad()
    assert model.weight.grad is None


def test_bad_module_call_is_a_clear_error():
    model = nn.Linear(2, 1)
    with pytest.raises(ValueError, match=r"Linear\.train: mode must be True or False, got 'no'"):
        model.train("no")
    with pytest.raises(
        TypeError, match=r"load_state_dict into Linear: expected a dict .* got list"
    ):
        model.load_state_dict([model.weight.numpy()])


# ---- MultiHeadAttention: float masks, as torch.nn.MultiheadAttention ----------------------------


@pytest.mark.parametrize("need_weights", [False, True])
@pytest.mark.parametrize("with_padding", [False, True])
def test_attention_float_mask_matches_torch(need_weights, with_padding):
    torch = _torch()
    from tinygrad_edu import interop

    E, H, B, L = 8, 2, 2, 4
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(E, H, batch_first=True).double()
    ours = nn.MultiHeadAttention(E, H).double()
    ours.load_state_dict(interop.from_torch_mha(theirs.state_dict()))
    r = np.random.default_rng(0)
    x = r.normal(size=(B, L, E))
    bias = r.normal(size=(L, L))
    bias[0, 1:] = -np.inf  # a float mask blocks with -inf
    pad = np.zeros((B, L), bool)
    pad[1, -1] = with_padding
    x_t, x_o = torch.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
    out_t, w_t = theirs(
        x_t, x_t, x_t, key_padding_mask=torch.tensor(np.where(pad, -np.inf, 0.0)),
        attn_mask=torch.tensor(bias),
        average_attn_weights=False,
    )  # fmt: skip
    got = ours(x_o, key_padding_mask=tg.tensor(pad), attn_mask=tg.tensor(bias),
               need_weights=need_weights)  # fmt: skip
    out_o, w_o = got if need_weights else (got, None)
    np.testing.assert_allclose(out_o.numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    if need_weights:
        np.testing.assert_allclose(w_o.numpy(), w_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = r.normal(size=(B, L, E))
    (out_t * torch.tensor(g)).sum().backward()
    (out_o * tg.tensor(g)).sum().backward()
    np.testing.assert_allclose(x_o.grad.numpy(), x_t.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(embed_dim=0, num_heads=1), r"embed_dim must be a positive integer, got 0"),
        (dict(embed_dim=8, num_heads=2.0), r"num_heads must be a positive integer, got 2\.0"),
        (dict(embed_dim=8, num_heads=2, kdim=-1), r"kdim must be a positive integer, got -1"),
    ],
)
def test_attention_bad_size_is_a_clear_error(kwargs, pattern):
    with pytest.raises(ValueError, match="MultiHeadAttention: " + pattern):
        nn.MultiHeadAttention(**kwargs)


# ---- Conv1d: PyTorch's signature, and padding="same" with an even span ---------------------------


@pytest.mark.parametrize("kernel_size, dilation", [(4, 1), (2, 3), (3, 2)])
def test_conv1d_same_padding_matches_torch_for_even_and_odd_spans(kernel_size, dilation):
    torch = _torch()
    import warnings

    theirs = torch.nn.Conv1d(3, 4, kernel_size, padding="same", dilation=dilation).double()
    ours = nn.Conv1d(3, 4, kernel_size, padding="same", dilation=dilation).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).normal(size=(2, 3, 9))
    x_t, x_o = torch.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
    with warnings.catch_warnings():  # PyTorch warns that it copies the input to pad it
        warnings.simplefilter("ignore", UserWarning)
        y_t = theirs(x_t)
    y_o = ours(x_o)
    assert y_o.shape == (2, 4, 9)
    np.testing.assert_allclose(y_o.numpy(), y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(1).normal(size=y_o.shape)
    (y_t * torch.tensor(g)).sum().backward()
    (y_o * tg.tensor(g)).sum().backward()
    np.testing.assert_allclose(x_o.grad.numpy(), x_t.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-10)


def test_conv1d_takes_torch_arguments_in_torch_order():
    torch = _torch()
    import inspect

    ours = list(inspect.signature(nn.Conv1d.__init__).parameters)
    theirs = list(inspect.signature(torch.nn.Conv1d.__init__).parameters)
    assert ours == theirs  # bias is the 8th argument in both, after groups
    with pytest.raises(ValueError, match=r"Conv1d: only groups=1 and padding_mode='zeros' are"):
        nn.Conv1d(3, 4, 3, 1, 0, 1, False)  # bias passed where PyTorch reads groups
    with pytest.raises(ValueError, match=r"got groups=1, padding_mode='circular'"):
        nn.Conv1d(3, 4, 3, padding_mode="circular")


# ---- RNN and LSTM: bidirectional, dropout between layers, PyTorch's names ------------------------


def _run_recurrent(lib, layer, x, state, g):
    """Output, last states and input gradient of ``layer`` on ``x`` with upstream gradients ``g``
    for the output and every state (``lib`` is tinygrad_edu or torch)."""
    as_t = lib.tensor
    xt = as_t(x).requires_grad_()
    out, states = layer(xt, state)
    states = list(states) if isinstance(states, tuple) else [states]
    loss = (out * as_t(g[0])).sum()
    for s, gs in zip(states, g[1:], strict=True):
        loss = loss + (s * as_t(gs)).sum()
    loss.backward()
    arrays = [out.detach().numpy()] + [s.detach().numpy() for s in states]
    return arrays, xt.grad.numpy(), {n: p.grad.numpy() for n, p in layer.named_parameters()}


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("given_state", [False, True])
def test_bidirectional_multilayer_recurrent_layers_match_torch(
    kind, batch_first, fused, given_state
):
    torch = _torch()
    kw = dict(num_layers=2, bidirectional=True, batch_first=batch_first)
    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(3, 4, **kw).double()
    ours = getattr(nn, kind)(3, 4, fused=fused, **kw).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())  # weight_ih_l0_reverse, ...
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert repr(ours) == repr(theirs)
    r = np.random.default_rng(0)
    T, B = 5, 2
    x = r.normal(size=(B, T, 3) if batch_first else (T, B, 3))
    n_states = 2 if kind == "LSTM" else 1
    s0 = [r.normal(size=(4, B, 4)) for _ in range(n_states)]  # (num_layers * 2, B, H)
    g = [r.normal(size=x.shape[:2] + (8,))] + [r.normal(size=(4, B, 4))] * n_states

    def state(lib):
        if not given_state:
            return None
        s = [lib.tensor(a) for a in s0]
        return tuple(s) if kind == "LSTM" else s[0]

    got, got_gx, got_gp = _run_recurrent(tg, ours, x, state(tg), g)
    want, want_gx, want_gp = _run_recurrent(torch, theirs, x, state(torch), g)
    for a, b in zip(got + [got_gx], want + [want_gx], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    for name in want_gp:
        np.testing.assert_allclose(got_gp[name], want_gp[name], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
def test_recurrent_dropout_is_between_layers_in_training_only(kind):
    torch = _torch()
    theirs = getattr(torch.nn, kind)(3, 4, num_layers=2, dropout=1.0).double()
    ours = getattr(nn, kind)(3, 4, num_layers=2, dropout=1.0).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert repr(ours) == repr(theirs) == f"{kind}(3, 4, num_layers=2, dropout=1.0)"
    x = np.random.default_rng(0).normal(size=(5, 2, 3))
    for training in (True, False):  # p=1 zeroes layer 1's input: deterministic in both modes
        theirs.train(training)
        ours.train(training)
        want = theirs(torch.tensor(x))[0].detach().numpy()
        np.testing.assert_allclose(ours(tg.tensor(x))[0].numpy(), want, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=rf"{kind}: dropout must be in \[0, 1\], got 1\.5"):
        getattr(nn, kind)(3, 4, dropout=1.5)


def test_recurrent_layers_take_torch_arguments_in_torch_order():
    torch = _torch()
    import inspect

    for name in ("RNNCell", "LSTMCell"):
        ours = list(inspect.signature(getattr(nn, name).__init__).parameters)
        theirs = list(inspect.signature(getattr(torch.nn, name).__init__).parameters)
        assert ours[: len(theirs)] == theirs  # then our keyword-only ``fused``
    rnn = nn.RNN(3, 4, 1, "tanh", True, False, 0.0, True, None, "float64")
    assert rnn.bidirectional and rnn.weight_hh_l0_reverse.dtype == "float64"
    lstm = nn.LSTM(3, 4, 1, True, True, 0.0, False, None, "float64")
    assert lstm.batch_first and lstm.weight_ih_l0.dtype == "float64"
    with pytest.raises(ValueError, match=r"expected h_0 of shape \(2, 1, 4\) \(num_layers \* 2"):
        rnn(tg.ones(5, 1, 3, dtype="float64"), tg.ones(1, 1, 4, dtype="float64"))


# ---- Embedding: max_norm -------------------------------------------------------------------------


@pytest.mark.parametrize("max_norm, norm_type, padding_idx", [(1.0, 2.0, None), (0.5, 1.0, 2)])
def test_embedding_max_norm_matches_torch(max_norm, norm_type, padding_idx):
    torch = _torch()
    kw = dict(max_norm=max_norm, norm_type=norm_type, padding_idx=padding_idx)
    theirs = torch.nn.Embedding(6, 3, **kw).double()
    ours = nn.Embedding(6, 3, **kw).double()
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})
    assert repr(ours) == repr(theirs)
    ids = np.array([[1, 2, 2], [4, 1, 0]])
    y_t, y_o = theirs(torch.tensor(ids)), ours(tg.tensor(ids))
    g = np.random.default_rng(0).normal(size=y_t.shape)
    (y_t * torch.tensor(g)).sum().backward()
    (y_o * tg.tensor(g)).sum().backward()
    np.testing.assert_allclose(y_o.numpy(), y_t.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.weight.numpy(), theirs.weight.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-12)
    norms = np.linalg.norm(ours.weight.numpy(), ord=norm_type, axis=1)
    assert (norms[[0, 1, 2, 4]] <= max_norm + 1e-6).all()  # the rows looked up
    with pytest.raises(IndexError, match=r"Embedding\(6, 3, .*max_norm.*\): index 6 is out"):
        ours(tg.tensor([6]))


def test_embedding_takes_torch_arguments_in_torch_order():
    torch = _torch()
    import inspect

    ours = list(inspect.signature(nn.Embedding.__init__).parameters)
    theirs = list(inspect.signature(torch.nn.Embedding.__init__).parameters)
    assert ours == [p for p in theirs if p not in ("_weight", "_freeze")]
    with pytest.raises(ValueError, match=r"Embedding: max_norm must be a positive number"):
        nn.Embedding(5, 3, max_norm=0.0)
    with pytest.raises(ValueError, match=r"Embedding: scale_grad_by_freq=True and sparse=True"):
        nn.Embedding(5, 3, sparse=True)


def test_integer_input_to_a_layer_is_not_told_to_cast_the_layer_to_integers():
    with pytest.raises(
        TypeError, match=r"got int64 .*convert the input with \.astype\('float32'\)$"
    ):
        nn.Linear(4, 3)(tg.tensor([[1, 2, 3, 4]]))  # Module.to refuses integer dtypes


# ---- PyTorch's small modules: losses, Softmax, Flatten, Identity -------------------------------


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("CrossEntropyLoss", {}),
        ("CrossEntropyLoss", {"reduction": "sum", "ignore_index": 3, "label_smoothing": 0.1}),
        ("NLLLoss", {"reduction": "none"}),
        ("CrossEntropyLoss", {"weight": [0.5, 2.0, 1.0, 0.25, 3.0], "label_smoothing": 0.2}),
        ("NLLLoss", {"weight": [0.5, 2.0, 1.0, 0.25, 3.0], "ignore_index": 1}),
        ("MSELoss", {}),
        ("BCEWithLogitsLoss", {"pos_weight": [2.0, 0.5, 1.0, 1.0, 3.0]}),
    ],
)
def test_loss_modules_match_torch(name, kwargs):
    torch = _torch()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5))
    if name in ("CrossEntropyLoss", "NLLLoss"):
        target = np.array([0, 3, 1, 4])
    else:
        target = rng.uniform(size=(4, 5))
    if name == "NLLLoss":
        x = x - np.log(np.exp(x).sum(axis=1, keepdims=True))  # log-probabilities

    def build(lib):
        f64 = "float64" if lib is tg else torch.float64
        args = {
            k: lib.tensor(v, dtype=f64) if isinstance(v, list) else v for k, v in kwargs.items()
        }
        return getattr(lib.nn, name)(**args)

    ours, theirs = build(tg), build(torch)
    xo, xt = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    lo, lt = ours(xo, tg.tensor(target)), theirs(xt, torch.tensor(target))
    np.testing.assert_allclose(lo.numpy(), lt.detach().numpy(), rtol=1e-12)
    lo.sum().backward()
    lt.sum().backward()
    np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # pos_weight is a buffer


def test_softmax_flatten_and_identity_modules_match_torch():
    torch = _torch()
    x = np.random.default_rng(1).normal(size=(2, 3, 4))
    for name in ("Softmax", "LogSoftmax"):
        for dim in (0, -1):
            ours = getattr(nn, name)(dim=dim)(tg.tensor(x)).numpy()
            np.testing.assert_allclose(ours, getattr(torch.nn, name)(dim=dim)(torch.tensor(x)))
    assert repr(nn.Softmax(dim=1)) == repr(torch.nn.Softmax(dim=1))
    for args in ((), (0,), (1, 2)):
        ours = nn.Flatten(*args)(tg.tensor(x)).shape
        assert ours == tuple(torch.nn.Flatten(*args)(torch.tensor(x)).shape)
    t = tg.tensor(x)
    assert nn.Identity(7, any_keyword=1)(t) is t


def test_small_modules_refuse_what_they_do_not_support():
    raises_each(
        (lambda: nn.Softmax(), TypeError, r"^Softmax: dim must be an integer .* got None$"),
        (lambda: nn.LogSoftmax(dim=1.0), TypeError, r"^LogSoftmax: dim must be an integer"),
        (lambda: nn.ReLU(inplace=True), ValueError, r"^ReLU: inplace=True is not supported"),
        (lambda: nn.MSELoss(reduction="avg"), ValueError, r"^MSELoss: reduction must be"),
    )


# ---- class weights in cross_entropy and nll_loss (PyTorch's formula and weighted mean) ---------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("ignore_index", [-100, 3])
@pytest.mark.parametrize("shape", [(6, 5), (2, 5, 3)])
def test_cross_entropy_with_class_weights_matches_torch(
    reduction, label_smoothing, ignore_index, shape
):
    torch = _torch()
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape)
    t = rng.integers(0, 5, size=(shape[0],) + shape[2:])
    w = rng.uniform(0.2, 2.0, size=5)
    xo, xt = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    args = (ignore_index, reduction, label_smoothing)
    ours = F.cross_entropy(xo, tg.tensor(t), *args, weight=tg.tensor(w))
    theirs = torch.nn.functional.cross_entropy(
        xt, torch.tensor(t), weight=torch.tensor(w), ignore_index=ignore_index,
        reduction=reduction, label_smoothing=label_smoothing,
    )  # fmt: skip
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12)
    g = rng.normal(size=tuple(theirs.shape))
    ours.backward(tg.tensor(g))
    theirs.backward(torch.tensor(g))
    np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_class_weights_all_ignored_and_bad_weights():
    x, w = tg.tensor(np.zeros((3, 4)), requires_grad=True), tg.tensor(np.ones(4))
    loss = F.cross_entropy(x, tg.tensor([2, 2, 2]), ignore_index=2, weight=w)
    loss.backward()  # 0 / 0 as PyTorch: a NaN loss, and no NaN sent back into the logits
    assert math.isnan(loss.item()) and not np.isnan(x.grad.numpy()).any()
    raises_each(
        (
            lambda: F.cross_entropy(x, tg.tensor([0, 1, 2]), weight=tg.tensor(np.ones(3))),
            ValueError,
            r"^cross_entropy: weight must have one entry per class, shape \(4,\), got \(3,\)$",
        ),
        (
            lambda: F.nll_loss(x, tg.tensor([0, 1, 2]), weight=tg.ones(4)),
            TypeError,
            r"^nll_loss: weight has dtype float32 .* but input has float64",
        ),
    )

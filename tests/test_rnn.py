"""Tests for ``tinygrad_edu/nn/rnn.py`` and its kernels in ``tinygrad_edu/functional/recurrent.py``:
RNN (chapter 7) and LSTM (chapter 8).

Every layer is compared with a plain-NumPy step-by-step loop written from PyTorch's documented
equations (``references.rnn_layers``), gradient-checked in float64 (``gradcheck_module``) with
respect to its input, initial state and every parameter, and fed bad input that must raise errors
naming the layer and the sizes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import references
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import functional as F
from tinygrad_edu import nn, optim
from tinygrad_edu.functional import (
    LSTMCellFunction,
    LSTMSequenceFunction,
    lstm_cell,
    lstm_cell_composed,
)
from tinygrad_edu.testing import gradcheck_module, gradgradcheck

ch07 = pytest.mark.ch07
ch08 = pytest.mark.ch08

KINDS = [
    pytest.param("rnn_tanh", marks=ch07),
    pytest.param("rnn_relu", marks=ch07),
    pytest.param("lstm", marks=ch08),
]


# =================================================================================================
# Helpers (the NumPy reference, one step at a time in float64: references.rnn_layers)
# =================================================================================================


def _params(module):
    return {k: tg.Tensor(v).numpy().astype(np.float64) for k, v in module.state_dict().items()}


def make_layer(kind, *args, **kwargs):
    if kind == "lstm":
        return nn.LSTM(*args, **kwargs)
    return nn.RNN(*args, nonlinearity=kind.split("_")[1], **kwargs)


def run_layer(kind, layer, x, h0=None, c0=None):
    """Call an RNN or LSTM the same way; returns (output, h_n, c_n or None)."""
    if kind == "lstm":
        output, (h_n, c_n) = layer(x, None if h0 is None else (h0, c0))
        return output, h_n, c_n
    output, h_n = layer(x, h0)
    return output, h_n, None


# =================================================================================================
# Forward against the reference
# =================================================================================================


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("initial_state", [False, True])
@pytest.mark.parametrize("fused", [True, False])
def test_forward_matches_numpy_loop(kind, num_layers, batch_first, bias, initial_state, fused):
    tg.manual_seed(1)
    T, B, n_in, H = 5, 3, 4, 6
    layer = make_layer(kind, n_in, H, num_layers, bias=bias, batch_first=batch_first, fused=fused)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, n_in) if batch_first else (T, B, n_in)).astype(np.float32)
    h0 = c0 = None
    if initial_state:
        h0 = rng.standard_normal((num_layers, B, H)).astype(np.float32)
        c0 = rng.standard_normal((num_layers, B, H)).astype(np.float32)
    output, h_n, c_n = run_layer(
        kind,
        layer,
        tg.tensor(x),
        None if h0 is None else tg.tensor(h0),
        None if c0 is None else tg.tensor(c0),
    )
    zeros = np.zeros((num_layers, B, H))
    ref_out, ref_h, ref_c = references.rnn_layers(
        kind,
        _params(layer),
        x,
        zeros if h0 is None else h0.astype(np.float64),
        (zeros if c0 is None else c0.astype(np.float64)) if kind == "lstm" else None,
        num_layers,
        batch_first,
    )
    assert output.dtype == "float32" and h_n.dtype == "float32"
    assert output.shape == ((B, T, H) if batch_first else (T, B, H))
    assert h_n.shape == (num_layers, B, H)
    np.testing.assert_allclose(output.numpy(), ref_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_n.numpy(), ref_h, rtol=1e-5, atol=1e-6)
    if kind == "lstm":
        assert c_n.shape == (num_layers, B, H)
        np.testing.assert_allclose(c_n.numpy(), ref_c, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fused", [True, False])
def test_unbatched_input_like_pytorch(kind, fused):
    """(T, in) with h_0 (num_layers, H) gives output (T, H) and h_n (num_layers, H)."""
    tg.manual_seed(2)
    T, n_in, H = 4, 3, 5
    layer = make_layer(kind, n_in, H, 2, fused=fused)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, n_in)).astype(np.float32)
    h0 = rng.standard_normal((2, H)).astype(np.float32)
    output, h_n, c_n = run_layer(kind, layer, tg.tensor(x), tg.tensor(h0), tg.tensor(h0))
    assert output.shape == (T, H) and h_n.shape == (2, H)
    ref_out, ref_h, _ = references.rnn_layers(
        kind, _params(layer), x[:, None], h0[:, None], h0[:, None], 2, False
    )
    np.testing.assert_allclose(output.numpy(), ref_out[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_n.numpy(), ref_h[:, 0], rtol=1e-5, atol=1e-6)
    if kind == "lstm":
        assert c_n.shape == (2, H)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [True, False])
def test_cells_match_numpy_step(kind, bias):
    tg.manual_seed(3)
    n_in, H, B = 4, 3, 2
    if kind == "lstm":
        cell = nn.LSTMCell(n_in, H, bias=bias)
    else:
        cell = nn.RNNCell(n_in, H, bias=bias, nonlinearity=kind.split("_")[1])
    rng = np.random.default_rng(2)
    x = rng.standard_normal((B, n_in)).astype(np.float32)
    h = rng.standard_normal((B, H)).astype(np.float32)
    c = rng.standard_normal((B, H)).astype(np.float32)
    params = _params(cell)
    if kind == "lstm":
        h1, c1 = cell(tg.tensor(x), (tg.tensor(h), tg.tensor(c)))
        ref_h, ref_c = references.rnn_cell(kind, params, x, h, c)
        np.testing.assert_allclose(c1.numpy(), ref_c, rtol=1e-5, atol=1e-6)
        h_zero, _ = cell(tg.tensor(x))  # hx=None means zeros
        ref_zero, _ = references.rnn_cell(kind, params, x, 0 * h, 0 * c)
    else:
        h1 = cell(tg.tensor(x), tg.tensor(h))
        ref_h, _ = references.rnn_cell(kind, params, x, h)
        h_zero = cell(tg.tensor(x))
        ref_zero, _ = references.rnn_cell(kind, params, x, 0 * h)
    np.testing.assert_allclose(h1.numpy(), ref_h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_zero.numpy(), ref_zero, rtol=1e-5, atol=1e-6)
    # unbatched: (in,) -> (H,)
    single = cell(tg.tensor(x[0]))
    single = single[0] if kind == "lstm" else single
    assert single.shape == (H,)
    np.testing.assert_allclose(single.numpy(), ref_zero[0], rtol=1e-5, atol=1e-6)


# =================================================================================================
# Parameters: PyTorch's names, shapes and initialisation
# =================================================================================================


@ch08
def test_parameter_names_and_shapes_are_pytorchs():
    lstm = nn.LSTM(10, 20, num_layers=2)
    shapes = {k: tuple(v.shape) for k, v in lstm.state_dict().items()}
    assert list(shapes) == [
        "weight_ih_l0",
        "weight_hh_l0",
        "bias_ih_l0",
        "bias_hh_l0",
        "weight_ih_l1",
        "weight_hh_l1",
        "bias_ih_l1",
        "bias_hh_l1",
    ]
    assert shapes["weight_ih_l0"] == (80, 10) and shapes["weight_ih_l1"] == (80, 20)
    assert shapes["weight_hh_l0"] == (80, 20) and shapes["bias_hh_l1"] == (80,)
    rnn = nn.RNN(10, 20, bias=False)
    assert {k: tuple(v.shape) for k, v in rnn.state_dict().items()} == {
        "weight_ih_l0": (20, 10),
        "weight_hh_l0": (20, 20),
    }
    cell = nn.LSTMCell(10, 20)
    assert [k for k, _ in cell.named_parameters()] == [
        "weight_ih",
        "weight_hh",
        "bias_ih",
        "bias_hh",
    ]
    assert nn.RNNCell(10, 20, bias=False).bias_ih is None


@pytest.mark.parametrize("kind", KINDS)
def test_init_is_uniform_within_one_over_sqrt_hidden(kind):
    tg.manual_seed(4)
    H = 64
    layer = make_layer(kind, 32, H, 2)
    bound = 1.0 / math.sqrt(H)
    values = np.concatenate([p.numpy().ravel() for p in layer.parameters()])
    assert all(p.dtype == "float32" for p in layer.parameters())
    assert values.min() >= -bound and values.max() <= bound
    # U(-b, b) has standard deviation b / sqrt(3) and fills the whole range
    assert abs(values.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert values.min() < -0.98 * bound and values.max() > 0.98 * bound


# =================================================================================================
# Gradients: float64 checks with respect to the input, the initial state and every parameter
# =================================================================================================


def _gradcheck_layer(kind, num_layers, batch_first, bias, fused, seed):
    tg.manual_seed(seed)
    T, B, n_in, H = 3, 2, 3, 2
    layer = make_layer(kind, n_in, H, num_layers, bias=bias, batch_first=batch_first, fused=fused)
    layer.astype("float64")
    rng = np.random.default_rng(seed)
    shape = (B, T, n_in) if batch_first else (T, B, n_in)
    x = tg.tensor(rng.standard_normal(shape), dtype="float64", requires_grad=True)
    h0 = tg.tensor(rng.standard_normal((num_layers, B, H)), dtype="float64", requires_grad=True)
    c0 = tg.tensor(rng.standard_normal((num_layers, B, H)), dtype="float64", requires_grad=True)
    assert len(layer.parameters()) == num_layers * (4 if bias else 2)
    state = (h0, c0) if kind == "lstm" else h0
    assert gradcheck_module(layer, x, state, name=f"{kind} fused={fused}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fused", [True, False])
def test_gradcheck_two_layers_every_parameter(kind, fused):
    _gradcheck_layer(kind, num_layers=2, batch_first=False, bias=True, fused=fused, seed=5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fused", [True, False])
def test_gradcheck_batch_first_without_bias(kind, fused):
    _gradcheck_layer(kind, num_layers=1, batch_first=True, bias=False, fused=fused, seed=6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fused", [True, False])
def test_gradcheck_unbatched(kind, fused):
    tg.manual_seed(16)
    layer = make_layer(kind, 2, 3, 2, fused=fused).astype("float64")
    rng = np.random.default_rng(16)
    x, h0, c0 = (
        tg.tensor(rng.standard_normal(s), dtype="float64", requires_grad=True)
        for s in [(4, 2), (2, 3), (2, 3)]
    )
    assert gradcheck_module(layer, x, (h0, c0) if kind == "lstm" else h0)


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_cells(kind):
    tg.manual_seed(7)
    rng = np.random.default_rng(7)
    if kind == "lstm":
        cells = [nn.LSTMCell(3, 2, fused=True), nn.LSTMCell(3, 2, fused=False)]
    else:
        cells = [nn.RNNCell(3, 2, nonlinearity=kind.split("_")[1])]
    for cell in cells:
        cell.astype("float64")
        x, h, c = (
            tg.tensor(rng.standard_normal(s), dtype="float64", requires_grad=True)
            for s in [(2, 3), (2, 2), (2, 2)]
        )
        assert gradcheck_module(cell, x, (h, c) if kind == "lstm" else h)


# =================================================================================================
# The fused LSTM cell against the composed one
# =================================================================================================


@ch08
@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_fused_and_composed_lstm_cell_agree_in_values_and_gradients(scale):
    rng = np.random.default_rng(8)
    a_np = scale * rng.standard_normal((3, 4 * 5))
    c_np = rng.standard_normal((3, 5))
    grad_h, grad_c = rng.standard_normal((2, 3, 5))
    results = []
    for step in (lstm_cell, lstm_cell_composed):
        a = tg.tensor(a_np, dtype="float64", requires_grad=True)
        c = tg.tensor(c_np, dtype="float64", requires_grad=True)
        h1, c1 = step(a, c)
        ((h1 * tg.tensor(grad_h)).sum() + (c1 * tg.tensor(grad_c)).sum()).backward()
        results.append([h1.numpy(), c1.numpy(), a.grad.numpy(), c.grad.numpy()])
    for fused_value, composed_value in zip(*results, strict=True):
        np.testing.assert_allclose(fused_value, composed_value, rtol=1e-12, atol=1e-14)


@ch08
def test_fused_and_composed_lstm_layers_agree_in_gradients():
    tg.manual_seed(9)
    fused = nn.LSTM(3, 4, num_layers=2, batch_first=True)
    composed = nn.LSTM(3, 4, num_layers=2, batch_first=True, fused=False)
    composed.load_state_dict(fused.state_dict())
    x_np = np.random.default_rng(9).standard_normal((2, 6, 3)).astype(np.float32)
    grads = []
    for layer in (fused, composed):
        x = tg.tensor(x_np, requires_grad=True)
        output, (h_n, c_n) = layer(x)
        ((output * output).sum() + (c_n * 0.5).sum()).backward()
        grads.append([x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()])
    for g_fused, g_composed in zip(*grads, strict=True):
        np.testing.assert_allclose(g_fused, g_composed, rtol=1e-4, atol=1e-6)


@ch08
def test_fused_cell_gradgradcheck():
    rng = np.random.default_rng(10)
    a = tg.tensor(rng.standard_normal((2, 8)), dtype="float64", requires_grad=True)
    c = tg.tensor(rng.standard_normal((2, 2)), dtype="float64", requires_grad=True)
    assert gradgradcheck(lambda a, c: LSTMCellFunction.apply(a, c), [a, c])


@ch08
def test_sequence_function_refuses_second_derivatives():
    x_proj = tg.randn(2, 1, 8, dtype="float64", requires_grad=True)
    h0, c0, w = tg.zeros(1, 2, dtype="float64"), tg.zeros(1, 2, dtype="float64"), tg.randn(8, 2)
    hs, c_T = LSTMSequenceFunction.apply(x_proj, h0, c0, w.astype("float64"))
    with pytest.raises(RuntimeError, match="LSTMSequenceFunction.*create_graph"):
        (hs.sum() + c_T.sum()).backward(create_graph=True)


# =================================================================================================
# Long sequences and extreme values
# =================================================================================================


@ch08
def test_thousand_step_lstm_backpropagates_fused_and_composed():
    tg.manual_seed(11)
    T = 1000
    x_np = np.random.default_rng(11).standard_normal((T, 1, 2)).astype(np.float32)
    fused = nn.LSTM(2, 3)
    composed = nn.LSTM(2, 3, fused=False)
    composed.load_state_dict(fused.state_dict())
    grads = []
    for layer in (fused, composed):
        x = tg.tensor(x_np, requires_grad=True)
        output, _ = layer(x)
        output[T - 1].sum().backward()  # the last step's output depends on all 1,000 inputs
        assert np.isfinite(x.grad.numpy()).all()
        assert np.abs(x.grad.numpy()[T - 1]).sum() > 0
        grads.append([x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()])
    for g_fused, g_composed in zip(*grads, strict=True):
        np.testing.assert_allclose(g_fused, g_composed, rtol=1e-4, atol=1e-6)


@ch07
@pytest.mark.parametrize("fused", [True, False])
def test_thousand_step_rnn_backpropagates(fused):
    tg.manual_seed(12)
    rnn = nn.RNN(2, 3, fused=fused)
    x = tg.randn(1000, 1, 2, requires_grad=True)
    output, h_n = rnn(x)
    h_n.sum().backward()
    assert np.isfinite(x.grad.numpy()).all() and np.abs(x.grad.numpy()[-1]).sum() > 0


@ch08
@pytest.mark.parametrize("step", [lstm_cell, lstm_cell_composed])
def test_lstm_cell_preactivations_of_1e3_stay_finite(step):
    signs = np.where(np.random.default_rng(13).random((4, 4 * 3)) < 0.5, -1.0, 1.0)
    for dtype in ("float32", "float64"):
        a = tg.tensor(1e3 * signs, dtype=dtype, requires_grad=True)
        c = tg.tensor(np.ones((4, 3)), dtype=dtype, requires_grad=True)
        h1, c1 = step(a, c)
        (h1.sum() + c1.sum()).backward()
        for t in (h1, c1, a.grad, c.grad):
            assert np.isfinite(t.numpy()).all()
        # saturated gates are exactly 0 or 1, so c' = f * c + i * g has |c'| <= 2
        assert np.abs(c1.numpy()).max() <= 2.0 and np.abs(h1.numpy()).max() <= 1.0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fused", [True, False])
def test_layer_preactivations_of_1e3_stay_finite(kind, fused):
    tg.manual_seed(14)
    layer = make_layer(kind, 2, 3, 2, fused=fused)
    with tg.no_grad():
        for p in layer.parameters():
            p.data = (p * 0 + 1.0).data  # all weights 1: |pre-activation| ~ 1e3 for |x| = 1e3
    x = tg.tensor(1e3 * np.array([[[1.0, 1.0]], [[-1.0, -1.0]], [[1.0, -1.0]]]), dtype="float32")
    x.requires_grad_(True)
    output, h_n, c_n = run_layer(kind, layer, x)
    loss = output.sum() + h_n.sum() + (c_n.sum() if c_n is not None else 0.0)
    loss.backward()
    assert np.isfinite(output.numpy()).all() and np.isfinite(x.grad.numpy()).all()
    for p in layer.parameters():
        assert np.isfinite(p.grad.numpy()).all()


# =================================================================================================
# Bad input: errors that name the layer and both sizes
# =================================================================================================


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_input_size_names_layer_and_both_sizes(kind):
    layer = make_layer(kind, 4, 3)
    name = "LSTM" if kind == "lstm" else "RNN"
    msg = rf"{name}\(4, 3\): expected input with last dimension 4 \(input_size\), "
    msg += r"got shape \(5, 2, 6\)"
    with pytest.raises(ValueError, match=msg):
        layer(tg.randn(5, 2, 6))


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_rank_is_an_error(kind):
    name = "LSTM" if kind == "lstm" else "RNN"
    layer = make_layer(kind, 4, 3, batch_first=True)
    msg = rf"{name}\(4, 3, batch_first=True\): expected 3-D \(batch, seq_len, input_size\) or "
    msg += r"2-D \(seq_len, input_size\) input, got shape \(1, 5, 2, 4\)"
    with pytest.raises(ValueError, match=msg):
        layer(tg.randn(1, 5, 2, 4))
    with pytest.raises(ValueError, match=r"got shape \(4,\)"):
        layer(tg.randn(4))


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_initial_state_shape_names_both_shapes(kind):
    name = "LSTM" if kind == "lstm" else "RNN"
    layer = make_layer(kind, 4, 3, num_layers=2)
    x = tg.randn(5, 2, 4)
    msg = rf"{name}\(4, 3, num_layers=2\): expected h_0 of shape \(2, 2, 3\) "
    msg += r"\(num_layers, batch, hidden_size\), got shape \(1, 2, 3\)"
    with pytest.raises(ValueError, match=msg):
        run_layer(kind, layer, x, tg.zeros(1, 2, 3), tg.zeros(2, 2, 3))
    if kind == "lstm":
        with pytest.raises(
            ValueError, match=r"LSTM\(.*\): expected c_0 of shape \(2, 2, 3\).*\(2, 3\)"
        ):
            layer(x, (tg.zeros(2, 2, 3), tg.zeros(2, 3)))
        with pytest.raises(TypeError, match=r"LSTM\(.*\): expected hx to be a tuple \(h_0, c_0\)"):
            layer(x, tg.zeros(2, 2, 3))


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_dtypes_are_errors(kind):
    name = "LSTM" if kind == "lstm" else "RNN"
    layer = make_layer(kind, 4, 3)
    msg = rf"{name}\(4, 3\): expected a floating-point input, got dtype int64"
    with pytest.raises(TypeError, match=msg):
        layer(tg.zeros(5, 2, 4, dtype="int64"))
    msg = (
        rf"{name}\(4, 3\): expected input of dtype float32 \(the layer's parameters\), got float64"
    )
    with pytest.raises(TypeError, match=msg):
        layer(tg.zeros(5, 2, 4, dtype="float64"))
    with pytest.raises(
        ValueError, match=rf"{name}\(4, 3\): expected a sequence of at least one step"
    ):
        layer(tg.zeros(0, 2, 4))


@pytest.mark.parametrize("kind", KINDS)
def test_cell_bad_input(kind):
    if kind == "lstm":
        cell, name = nn.LSTMCell(4, 3), "LSTMCell"
    else:
        cell, name = nn.RNNCell(4, 3, nonlinearity=kind.split("_")[1]), "RNNCell"
    msg = (
        rf"{name}\(4, 3\): expected input with last dimension 4 \(input_size\), got shape \(2, 5\)"
    )
    with pytest.raises(ValueError, match=msg):
        cell(tg.randn(2, 5))
    msg = rf"{name}\(4, 3\): expected 2-D \(batch, input_size\) or 1-D \(input_size,\) input, "
    msg += r"got shape \(1, 2, 4\)"
    with pytest.raises(ValueError, match=msg):
        cell(tg.randn(1, 2, 4))
    state = tg.zeros(3, 3)
    what = "h" if kind == "lstm" else "hx"
    msg = rf"{name}\(4, 3\): expected {what} of shape \(2, 3\) \(batch, hidden_size\), "
    msg += r"got shape \(3, 3\)"
    with pytest.raises(ValueError, match=msg):
        cell(tg.randn(2, 4), (state, state) if kind == "lstm" else state)


@ch07
def test_unknown_nonlinearity_and_layer_count():
    with pytest.raises(ValueError, match="RNN: unknown nonlinearity 'sigmoid'"):
        nn.RNN(2, 3, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="RNNCell: unknown nonlinearity 'gelu'"):
        nn.RNNCell(2, 3, nonlinearity="gelu")
    with pytest.raises(ValueError, match="LSTM: num_layers must be a positive integer, got 0"):
        nn.LSTM(2, 3, num_layers=0)


# =================================================================================================
# A tiny LSTM language model learns a repeated sequence
# =================================================================================================


class _CharLSTM(nn.Module):
    """Embedding -> LSTM -> linear head: the smallest LSTM language model."""

    def __init__(self, V, E, H):
        super().__init__()
        self.emb = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, batch_first=True)
        self.head = nn.Linear(H, V)

    def forward(self, idx):  # (B, T) int64
        h, _ = self.lstm(self.emb(idx))  # (B, T) -> (B, T, E) -> (B, T, H)
        return self.head(h)  # (B, T, V)


@ch08
def test_tiny_lstm_language_model_learns_a_repeated_sequence():
    tg.manual_seed(15)
    text = "hello world! " * 20  # after "l" comes "l", "o" or "d": the model needs memory
    chars = sorted(set(text))
    ids = np.array([chars.index(ch) for ch in text], dtype=np.int64)
    V, T, B = len(chars), 16, 8
    model = _CharLSTM(V, 16, 32)
    opt = optim.Adam(model.parameters(), lr=0.03)
    rng = np.random.default_rng(15)
    losses = []
    for _ in range(50):
        starts = rng.integers(0, len(ids) - T - 1, size=B)
        x = tg.tensor(np.stack([ids[s : s + T] for s in starts]))  # (B, T)
        y = tg.tensor(np.stack([ids[s + 1 : s + T + 1] for s in starts]))  # next characters
        loss = F.cross_entropy(model(x).reshape(B * T, V), y.reshape(B * T))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 2.0  # chance level is log(V) = log(9) = 2.2
    assert np.mean(losses[-5:]) < 0.2, f"loss went from {losses[0]:.3f} to {losses[-1]:.3f}"


# =================================================================================================
# Random shapes (zero-size batches included): the reference's result, or a clear error
# =================================================================================================


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=15)
@given(
    T=st.integers(1, 4),
    B=st.integers(0, 3),
    n_in=st.integers(1, 4),
    H=st.integers(1, 4),
    num_layers=st.integers(1, 2),
    batch_first=st.booleans(),
    fused=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_shapes_match_numpy_loop(kind, T, B, n_in, H, num_layers, batch_first, fused, seed):
    tg.manual_seed(seed)
    layer = make_layer(kind, n_in, H, num_layers, batch_first=batch_first, fused=fused)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, n_in) if batch_first else (T, B, n_in)).astype(np.float32)
    h0 = rng.standard_normal((num_layers, B, H)).astype(np.float32)
    output, h_n, c_n = run_layer(kind, layer, tg.tensor(x), tg.tensor(h0), tg.tensor(h0))
    ref_out, ref_h, ref_c = references.rnn_layers(
        kind, _params(layer), x, h0, h0 if kind == "lstm" else None, num_layers, batch_first
    )
    assert output.shape == ref_out.shape and h_n.shape == ref_h.shape
    np.testing.assert_allclose(output.numpy(), ref_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_n.numpy(), ref_h, rtol=1e-5, atol=1e-6)
    if kind == "lstm":
        np.testing.assert_allclose(c_n.numpy(), ref_c, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "cls",
    [
        pytest.param(nn.RNN, marks=ch07),
        pytest.param(nn.RNNCell, marks=ch07),
        pytest.param(nn.LSTM, marks=ch08),
        pytest.param(nn.LSTMCell, marks=ch08),
    ],
)
def test_sizes_must_be_positive(cls):
    name = cls.__name__
    with pytest.raises(ValueError, match=f"{name}: hidden_size must be a positive integer, got 0"):
        cls(3, 0)
    with pytest.raises(ValueError, match=f"{name}: input_size must be a positive integer, got 2.5"):
        cls(2.5, 4)


@pytest.mark.parametrize("layer", ["LSTM", "RNN"])
def test_sequence_backward_on_raw_arrays_refuses_create_graph_clearly(layer):
    """The whole-sequence Functions write their backward on raw arrays for speed
    (``differentiable_backward = False``): a second derivative through them is a clear error,
    never a silently wrong (zero) gradient."""
    tg.manual_seed(0)
    rnn = getattr(nn, layer)(3, 4, batch_first=True)
    x = tg.randn(2, 5, 3, requires_grad=True)
    out, _ = rnn(x)
    name = f"{layer}SequenceFunction"
    with pytest.raises(RuntimeError, match=f"{name} has a backward written for speed"):
        out.sum().backward(create_graph=True)

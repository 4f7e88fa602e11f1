"""Reliability gaps not covered elsewhere: layers fuzzed with zero-size and wrong shapes, and the
anomaly mode naming the *first* bad op of a longer computation, and Ctrl-C sent to the example as
a real signal, then ``--resume``.

Where the rest lives: clear errors one by one (``test_errors.py`` and each layer's tests), a
10,000-op chain and the graph freed after backward (``test_autograd.py``), 1,000-step RNN/LSTM
backpropagation and pre-activations of 1e3 (``test_rnn.py``), logits of 1e4, fully masked
attention rows (``test_functional.py``), sigmoid/tanh at 1e3 and ops fuzzed with zero-size
dimensions (``test_ops.py``), atomic checkpoints under SIGKILL and refused pickles
(``test_io.py``), Ctrl-C and exact resume (``test_train.py``), flat memory (``test_memory.py``).

Fuzzing here: hypothesis draws input shapes for each layer, zero-size dimensions and wrong ranks
or sizes included. Each draw gives either the NumPy reference's result (and finite gradients of
the parameters' shapes) or an error that starts with the layer (``Linear(in_features=3, ...):``)
and names the input's shape; never an error from deep inside NumPy, never a wrong shape.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import references
from helpers import npy
from hypothesis import given
from hypothesis import strategies as st
from strategies import shapes

import tinygrad_edu as tg
from tinygrad_edu import data, nn
from tinygrad_edu.testing import gradcheck_module

pytestmark = pytest.mark.ch03

LAYER_ERRORS = (ValueError, TypeError, IndexError)


def random_params(layer, seed=0):
    """Random values for every parameter (ones/zeros at init would hide a swapped weight/bias)."""
    rng = np.random.default_rng(seed)
    with tg.no_grad():
        for p in layer.parameters():
            p.data = tg.tensor(rng.standard_normal(p.shape), dtype=p.dtype, device=p.device).data


def check_layer(layer, x: np.ndarray, reference, valid: bool, *, dtype="float64"):
    """Run ``layer`` on ``x``: the reference's result and right gradients (``gradcheck_module``:
    the input and every parameter), or a clear error."""
    name = type(layer).__name__
    xt = tg.tensor(x, dtype=dtype) if dtype else tg.tensor(x)
    if not valid:
        with pytest.raises(LAYER_ERRORS, match=rf"^{name}\(.*{re.escape(str(x.shape))}"):
            layer(xt)
        return
    for p in layer.parameters():
        p.grad = None
    y = layer(xt)
    expected = reference(x)
    assert y.shape == expected.shape, (name, x.shape, y.shape, expected.shape)
    np.testing.assert_allclose(npy(y), expected, rtol=1e-9, atol=1e-12)
    # a random upstream gradient, so that the backward of every output element counts
    g = np.random.default_rng(1).standard_normal(y.shape)
    (y * tg.tensor(g, dtype=y.dtype)).sum().backward()
    for p in layer.parameters():
        assert p.grad is not None and p.grad.shape == p.shape, (name, x.shape)
        assert np.isfinite(p.grad.numpy()).all()
        if y.size == 0:  # an empty batch contributes nothing
            assert not p.grad.numpy().any()
    xt.requires_grad_(xt.dtype == "float64")  # integer ids (Embedding) get no gradient
    assert gradcheck_module(layer, xt, name=f"{name} on input shape {x.shape}")


# ---- Linear -------------------------------------------------------------------------------------


@given(n_in=st.integers(1, 4), n_out=st.integers(0, 3), shape=shapes(0, 3, 0, 4))
def test_linear_fuzzed(n_in, n_out, shape):
    layer = nn.Linear(n_in, n_out).astype("float64")
    random_params(layer)
    W, b = npy(layer.weight), npy(layer.bias)
    x = np.random.default_rng(2).standard_normal(shape)
    valid = len(shape) >= 1 and shape[-1] == n_in
    check_layer(layer, x, lambda a: a @ W.T + b, valid)


# ---- LayerNorm ----------------------------------------------------------------------------------


@pytest.mark.ch10  # LayerNorm's backward (exercise 10.1)
@given(n=st.integers(1, 4), shape=shapes(0, 3, 0, 4))
def test_layer_norm_fuzzed(n, shape):
    layer = nn.LayerNorm(n).astype("float64")
    random_params(layer)
    w, b = npy(layer.weight), npy(layer.bias)

    def reference(a):
        mu = a.mean(-1, keepdims=True) if a.size else np.zeros(a.shape[:-1] + (1,))
        var = ((a - mu) ** 2).mean(-1, keepdims=True) if a.size else mu
        return (a - mu) / np.sqrt(var + 1e-5) * w + b

    x = np.random.default_rng(3).standard_normal(shape)
    check_layer(layer, x, reference, valid=len(shape) >= 1 and shape[-1] == n)


# ---- Embedding ----------------------------------------------------------------------------------


@given(
    num=st.integers(1, 5),
    dim=st.integers(1, 3),
    shape=shapes(0, 3, 0, 4),
    offset=st.sampled_from([0, 0, 0, 1, -1]),
)
def test_embedding_fuzzed(num, dim, shape, offset):
    """Ids of any shape (0-d and empty included); out-of-range ids are a clear error."""
    layer = nn.Embedding(num, dim).astype("float64")
    W = npy(layer.weight)
    ids = np.random.default_rng(4).integers(0, num, size=shape)
    if offset and ids.size:
        flat = ids.reshape(-1)
        flat[0] = num if offset > 0 else -1  # one id just outside 0..num-1
        ids = flat.reshape(shape)
        with pytest.raises(IndexError, match=r"^Embedding\(.*(out of range|negative)"):
            layer(tg.tensor(ids))
        return
    check_layer(layer, ids, lambda a: W[a], valid=True, dtype=None)


def test_embedding_float_ids_name_the_layer():
    with pytest.raises(TypeError, match=r"^Embedding\(4, 2\).*ids must be integers.*float32"):
        nn.Embedding(4, 2)(tg.tensor([1.0, 2.0]))


# ---- Conv1d -------------------------------------------------------------------------------------


@pytest.mark.ch06  # Conv1d's unfold and fold (exercises 6.1, 6.2)
@given(
    c_in=st.integers(1, 3),
    c_out=st.integers(1, 3),
    k=st.integers(1, 3),
    shape=shapes(1, 4, 0, 5),
)
def test_conv1d_fuzzed(c_in, c_out, k, shape):
    layer = nn.Conv1d(c_in, c_out, k).astype("float64")
    random_params(layer)
    W, b = npy(layer.weight), npy(layer.bias)
    x = np.random.default_rng(5).standard_normal(shape)
    valid = len(shape) in (2, 3) and shape[-2] == c_in and shape[-1] >= k
    if len(shape) == 2:
        reference = lambda a: references.conv1d(a[None], W, b)[0]  # noqa: E731
    else:
        reference = lambda a: references.conv1d(a, W, b)  # noqa: E731
    check_layer(layer, x, reference, valid)


# ---- elementwise modules ------------------------------------------------------------------------

ELEMENTWISE = {
    "ReLU": (nn.ReLU, lambda a: np.maximum(a, 0.0)),
    "GELU": (nn.GELU, references.gelu),
    "Tanh": (nn.Tanh, np.tanh),
    "Sigmoid": (nn.Sigmoid, references.sigmoid),
    "Dropout (eval)": (lambda: nn.Dropout(0.5).eval(), lambda a: a),
}


@pytest.mark.parametrize(
    "name",
    [  # the exact GELU's backward is exercise 10.2
        pytest.param(n, marks=pytest.mark.ch10) if n == "GELU" else n for n in sorted(ELEMENTWISE)
    ],
)
@given(shape=shapes(0, 3, 0, 4))
def test_elementwise_modules_fuzzed(name, shape):
    make, reference = ELEMENTWISE[name]
    x = np.random.default_rng(6).standard_normal(shape)
    xt = tg.tensor(x, dtype="float64", requires_grad=True)
    layer = make()
    y = layer(xt)
    assert y.shape == shape
    np.testing.assert_allclose(npy(y), reference(x), rtol=1e-9, atol=1e-12)
    y.sum().backward()
    assert xt.grad.shape == shape and np.isfinite(xt.grad.numpy()).all()
    assert gradcheck_module(layer, xt, name=f"{name} on input shape {shape}")


# ---- attention and the Transformer block --------------------------------------------------------


@pytest.mark.ch10  # the attention backward (9.2) and, with block=True, LayerNorm's (10.1)
@given(
    heads=st.sampled_from([1, 2]),
    B=st.integers(0, 2),
    T=st.integers(0, 3),
    width=st.sampled_from(["right", "wrong"]),
    rank=st.sampled_from([3, 3, 3, 2]),
    block=st.booleans(),
)
def test_attention_and_block_fuzzed(heads, B, T, width, rank, block):
    """Empty batches and sequences give empty results of the right shape with zero gradients;
    a wrong width or rank is an error naming the layer. (Values: ``test_nn_layers.py``.)"""
    E = 4
    layer = nn.TransformerBlock(E, heads) if block else nn.MultiHeadAttention(E, heads)
    layer = layer.astype("float64")
    C = E if width == "right" else E + 1
    shape = (B, T, C) if rank == 3 else (T, C)
    x = np.random.default_rng(7).standard_normal(shape)
    if width == "wrong" or rank != 3:
        name = type(layer).__name__
        with pytest.raises(LAYER_ERRORS, match=rf"^{name}\(.*{re.escape(str(shape))}"):
            layer(tg.tensor(x))
        return
    xt = tg.tensor(x, requires_grad=True)
    y = layer(xt)
    y = y[0] if isinstance(y, tuple) else y
    assert y.shape == (B, T, E)
    assert np.isfinite(y.numpy()).all()
    y.sum().backward()
    assert xt.grad.shape == shape
    for p in layer.parameters():
        assert p.grad is not None and p.grad.shape == p.shape
        assert np.isfinite(p.grad.numpy()).all()
        if B * T == 0:
            assert not p.grad.numpy().any()


# ---- anomaly mode: the first bad op of a longer computation -------------------------------------


@pytest.mark.ch02
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_detect_anomaly_names_the_first_forward_op_not_the_ones_after():
    """log(-1) = NaN then flows through exp, mul, sum: every later op also outputs NaN, and the
    error must name Log, where it began (with its shape)."""
    lin = nn.Linear(3, 2)
    x = tg.tensor([[1.0, 2.0, 3.0]])
    with tg.detect_anomaly():
        h = lin(x)  # finite
        with pytest.raises(
            tg.AnomalyError, match=r"^Log forward produced 1 NaN and 0 Inf .*\(2,\)"
        ):
            (tg.tensor([-1.0, 2.0]) * 1.0).log().exp().sum() * h.sum()
    # without the anomaly mode the NaN just propagates to the end
    assert math.isnan(((tg.tensor([-1.0, 2.0]) * 1.0).log().exp().sum() * h.sum()).item())


@pytest.mark.ch02
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_detect_anomaly_names_the_first_backward_op_in_a_chain():
    """Forward is finite everywhere; backward first meets Inf in sqrt's gradient at 0 (later
    ops in backward order, mul and the leaf's accumulation, would see Inf/NaN too)."""
    x = tg.tensor([0.0, 1.0, 4.0], requires_grad=True)
    w = tg.tensor([2.0, 3.0, 4.0], requires_grad=True)
    with tg.detect_anomaly():
        y = ((x * w).sqrt() * 3.0).tanh().sum()
        assert np.isfinite(y.item())
        with pytest.raises(
            tg.AnomalyError, match=r"^Sqrt backward produced non-finite values.*\(3,\)"
        ):
            y.backward()


# ---- Ctrl-C on the real example: saved, resumed, the same run ------------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "char_transformer.py"
RUN = [
    "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
    "--batch-size", "4", "--eval-iters", "2", "--warmup-steps", "2", "--steps", "120",
    "--eval-interval", "10", "--no-progress", "--no-plot", "--max-new-tokens", "5",
]  # fmt: skip
EVAL_LINE = re.compile(r"^step (\d+): train loss \d+\.\d{3}, val loss \d+\.\d{3}$")


def example(out_dir, corpus, *extra):
    cmd = [sys.executable, str(EXAMPLE), "--data", str(corpus), "--out-dir", str(out_dir)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}
    return cmd + RUN + list(extra), env


@pytest.mark.ch11
@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="POSIX signals")
def test_ctrl_c_on_the_example_saves_and_resume_reproduces_the_run(tmp_path):
    """SIGINT (what Ctrl-C sends) to a training process: it saves and exits with status 130;
    ``--resume`` finishes the run, whose evaluation lines and final weights equal an uninterrupted
    run's."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(data.BUNDLED_CORPUS.read_text(encoding="utf-8")[:40_000], encoding="utf-8")

    cmd, env = example(tmp_path / "full", corpus)
    full = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert full.returncode == 0, full.stderr
    full_evals = [ln for ln in full.stdout.splitlines() if EVAL_LINE.match(ln)]
    assert len(full_evals) == 12

    cmd, env = example(tmp_path / "cut", corpus)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first_part = []
    for line in proc.stdout:
        first_part.append(line.rstrip("\n"))
        if EVAL_LINE.match(first_part[-1]):  # training is under way: press Ctrl-C
            proc.send_signal(signal.SIGINT)
            break
    rest, err = proc.communicate(timeout=300)
    first_part += rest.splitlines()
    assert proc.returncode == 130, err  # 128 + SIGINT, as a shell reports Ctrl-C
    stopped = [ln for ln in first_part if ln.startswith("interrupted at step")]
    assert len(stopped) == 1 and "--resume" in stopped[0], first_part
    cut_step = int(re.match(r"interrupted at step (\d+)", stopped[0]).group(1))
    assert 10 <= cut_step < 120  # stopped mid-run, after a completed step

    cmd, env = example(tmp_path / "cut", corpus, "--resume")
    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"at step {cut_step}" in resumed.stdout
    evals = [ln for ln in first_part + resumed.stdout.splitlines() if EVAL_LINE.match(ln)]
    assert evals == full_evals

    a, b = tg.load(tmp_path / "full" / "last.npz"), tg.load(tmp_path / "cut" / "last.npz")
    assert a["step"] == b["step"] == 120
    for name, w in a["model"].items():
        np.testing.assert_array_equal(b["model"][name], w, err_msg=name)

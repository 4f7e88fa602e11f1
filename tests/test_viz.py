"""Figures: each function writes a valid PNG atomically and draws what it was given."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import viz

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    """A real PNG: the signature, decodable, and not a blank canvas."""
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_MAGIC
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50
    assert image.std() > 0.01, "the image is blank"


# =================================================================================================
# Loss curves (chapter 11)
# =================================================================================================


@pytest.mark.ch11
def test_loss_curves_of_the_training_loop(tmp_path):
    history = {
        "step": [0, 1, 2, 3, 4, 5],
        "loss": [4.0, 3.5, 3.1, 2.9, 2.6, 2.5],
        "eval_step": [0, 5],
        "train_loss": [4.1, 2.6],
        "val_loss": [4.2, 2.8],
    }
    fig = viz.plot_loss_curves(history, tmp_path / "loss.png", title="run")
    assert_png(tmp_path / "loss.png")
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert set(lines) == {"train (per batch)", "train (evaluated)", "validation"}
    # each curve is drawn at its own steps
    assert list(lines["validation"].get_xdata()) == [0, 5]
    assert list(lines["validation"].get_ydata()) == [4.2, 2.8]
    assert list(lines["train (per batch)"].get_xdata()) == [0, 1, 2, 3, 4, 5]


@pytest.mark.ch11
def test_loss_curves_from_a_list_or_tensors(tmp_path):
    fig = viz.plot_loss_curves(tg.tensor([3.0, 2.0, 1.5]), tmp_path / "a.png", logy=True)
    assert_png(tmp_path / "a.png")
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_xdata()) == [0, 1, 2] and fig.axes[0].get_yscale() == "log"
    assert viz.plot_loss_curves({"loss": [1.0, 0.5]}) is not None  # no path: nothing written
    assert list(tmp_path.iterdir()) == [tmp_path / "a.png"]


@pytest.mark.ch11
def test_loss_curves_replace_the_png_atomically(tmp_path, monkeypatch):
    path = tmp_path / "loss.png"
    viz.plot_loss_curves([3.0, 2.0], path)
    before = path.read_bytes()
    from matplotlib.figure import Figure

    def crash(self, f, **kw):
        f.write(b"\x89PNG half an image")
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", crash)
    with pytest.raises(KeyboardInterrupt):
        viz.plot_loss_curves([3.0, 2.0, 1.0], path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png"]  # no temp file left


@pytest.mark.ch11
def test_loss_curves_errors(tmp_path):
    with pytest.raises(ValueError, match=r"plot_loss_curves: nothing to plot; history has keys"):
        viz.plot_loss_curves({"step": [], "loss": []}, tmp_path / "x.png")
    with pytest.raises(FileNotFoundError, match=r"plot_loss_curves: cannot write"):
        viz.plot_loss_curves([1.0], tmp_path / "missing_dir" / "x.png")


# =================================================================================================
# Attention maps (chapter 9)
# =================================================================================================


def _attention(H, T_q, T_k):
    scores = tg.randn(H, T_q, T_k)
    e = scores.exp()
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.ch09
def test_attention_heads(tmp_path):
    w = _attention(3, 5, 5)
    fig = viz.plot_attention(w, list("to be"), tmp_path / "attn.png")
    assert_png(tmp_path / "attn.png")
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 3
    np.testing.assert_allclose(panels[1].images[0].get_array(), w.numpy()[1], rtol=1e-6)
    labels = [t.get_text() for t in panels[0].get_xticklabels()]
    assert labels == ["t", "o", "\u2423", "b", "e"]  # the space is made visible


@pytest.mark.ch09
def test_attention_single_head_batch_of_one_and_cross(tmp_path):
    fig = viz.plot_attention(_attention(1, 4, 4).reshape(1, 1, 4, 4), "ab\nc", tmp_path / "a.png")
    assert_png(tmp_path / "a.png")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b", "\\n", "c"]
    fig = viz.plot_attention(
        _attention(1, 2, 3)[0], (["q0", "q1"], list("xyz")), tmp_path / "c.png"
    )
    assert_png(tmp_path / "c.png")
    assert fig.axes[0].images[0].get_array().shape == (2, 3)


@pytest.mark.ch09
def test_attention_errors():
    with pytest.raises(ValueError, match=r"need 4 query tokens and 4 key tokens, got 3 and 3"):
        viz.plot_attention(_attention(2, 4, 4), "abc")
    with pytest.raises(
        ValueError, match=r"weights must be \(T_q, T_k\) or \(H, T_q, T_k\), got shape \(4,\)"
    ):
        viz.plot_attention(tg.ones(4), "abcd")


# =================================================================================================
# Gradient norms (chapter 7)
# =================================================================================================


@pytest.mark.ch07
def test_grad_norms_per_parameter(tmp_path):
    a = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    b = tg.tensor(np.ones(3), requires_grad=True)
    unused = tg.tensor(np.ones(2), requires_grad=True)
    ((a * a).sum() + (b * 3.0).sum()).backward()
    norms = viz.grad_norms([("a", a), ("b", b), ("unused", unused)])
    assert list(norms) == ["a", "b"]
    assert norms["a"] == pytest.approx(np.linalg.norm(2 * np.arange(6.0)))
    assert norms["b"] == pytest.approx(np.linalg.norm(np.full(3, 3.0)))
    fig = viz.plot_grad_norms(norms, tmp_path / "bars.png")
    assert_png(tmp_path / "bars.png")
    bars = fig.axes[0].patches
    assert [bar.get_width() for bar in bars] == pytest.approx([norms["a"], norms["b"]])


@pytest.mark.ch07
def test_grad_norms_over_time(tmp_path):
    fig = viz.plot_grad_norms(
        {"rnn": [1.0, 0.1, 0.01], "lstm": [1.0, 0.8, 0.7]}, tmp_path / "t.png"
    )
    assert_png(tmp_path / "t.png")
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["rnn", "lstm"]
    assert fig.axes[0].get_yscale() == "log"
    viz.plot_grad_norms([2.0, 1.5, 1.2], tmp_path / "total.png")
    assert_png(tmp_path / "total.png")
    with pytest.raises(ValueError, match=r"no gradient norms given"):
        viz.plot_grad_norms({})


# =================================================================================================
# The autograd graph (chapter 2)
# =================================================================================================


def _labels(layers):
    return [sorted(label.split("\n")[0] for _, label in layer) for layer in layers]


@pytest.mark.ch02
def test_graph_layers_follow_the_computation():
    a = tg.ones(3, requires_grad=True)
    b = tg.ones(3, requires_grad=True)
    c = tg.ones(3)
    y = (a * b + c).sum()
    layers = viz.graph_layers(y, params={"a": a, "b": b})
    assert _labels(layers) == [["a", "b", "const"], ["Mul"], ["Add"], ["Sum"]]
    # a tensor used twice appears once; an op sits right of its *deepest* input
    z = (a * 2.0 + a).exp()
    assert _labels(viz.graph_layers(z)) == [["leaf"], ["Mul"], ["Add"], ["Exp"]]


@pytest.mark.ch02
@pytest.mark.ch03  # draws a graph with a ReLU (exercise 3.3)
def test_draw_graph_writes_a_png(tmp_path):
    W = tg.randn(3, 4, requires_grad=True)
    b = tg.zeros(4, requires_grad=True)
    x = tg.randn(2, 3)
    loss = ((x @ W + b).relu()).mean()
    fig = viz.draw_graph(loss, tmp_path / "graph.png", params={"W": W, "b": b})
    assert_png(tmp_path / "graph.png")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "W\n(3, 4)" in texts and "b\n(4,)" in texts and "MatMul\n(2, 4)" in texts
    loss.backward()  # the graph drawn is the one backward walks


@pytest.mark.ch02
def test_graph_of_a_long_chain_without_recursion():
    x = tg.ones(1, requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0001
    layers = viz.graph_layers(y)
    assert len(layers) == 3001 and all(len(layer) == 1 for layer in layers)
    with pytest.raises(ValueError, match=r"the graph has 3001 tensors, more than max_nodes=200"):
        viz.draw_graph(y)
    with pytest.raises(TypeError, match=r"draw_graph: expected a Tensor, got ndarray"):
        viz.draw_graph(np.ones(2))

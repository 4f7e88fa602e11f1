"""Figures: loss curves, attention maps, gradient norms, and the autograd graph itself.

Chapter 2 draws the graph that ``backward`` walks (``draw_graph``); chapter 7 watches gradient
norms (``plot_grad_norms``); chapter 9 looks at attention weights (``plot_attention``); chapter 11
follows training (``plot_loss_curves``).

Every function builds a ``matplotlib.figure.Figure`` directly rather than through ``pyplot``: no
window is ever opened and no global state is touched, so the figures work on a headless server,
in tests and inside a training loop. matplotlib is imported inside the functions, so importing
tinygrad_edu stays fast. Each function returns the Figure (to show it in a notebook) and, given a
``path``, writes a PNG atomically (a half-written image never replaces a good one).

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "loss.png")
>>> fig = plot_loss_curves({"loss": [4.2, 3.1, 2.5, 2.2]}, path)
>>> open(path, "rb").read(4)
b'\\x89PNG'
"""

from __future__ import annotations

import math

import numpy as np  # figures are drawn on the host: NumPy is matplotlib's input format

from . import backend
from .io import atomic_write
from .tensor import Tensor

__all__ = ["plot_loss_curves", "plot_attention", "plot_grad_norms", "grad_norms", "draw_graph"]


def _host(x) -> np.ndarray:
    """A Tensor or an array of any device as a NumPy array."""
    if isinstance(x, Tensor):
        return x.numpy()
    if backend.is_array(x):
        return backend.to_numpy(x)
    return np.asarray(x)


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, path, who: str) -> None:
    if path is not None:
        with atomic_write(path, who) as f:
            fig.savefig(f, format="png", dpi=100)


# =================================================================================================
# Loss curves
# =================================================================================================

_LABELS = {"loss": "train (per batch)", "train_loss": "train (evaluated)", "val_loss": "validation"}


def plot_loss_curves(history, path=None, title=None, logy=False):
    """Plot loss curves; ``history`` maps a name to a list of values.

    Keys named ``step`` or ending in ``_step`` are x-axes: a curve uses the first of them with
    as many entries as it has (so the training loop's ``{"step", "loss", "eval_step",
    "train_loss", "val_loss"}`` plots each curve at its steps); otherwise the x-axis is the index.
    A plain list is one curve named ``loss``. The per-batch loss is drawn thin (it is noisy),
    evaluated losses with markers.
    """
    if not isinstance(history, dict):
        history = {"loss": history}
    series = {k: [float(v) for v in _host(vals).ravel()] for k, vals in history.items()}
    x_keys = [k for k in series if k == "step" or k.endswith("_step")]
    curves = [k for k in series if k not in x_keys and len(series[k]) > 0]
    if not curves:
        raise ValueError(
            f"plot_loss_curves: nothing to plot; history has keys {sorted(series)} "
            "and no non-empty curve"
        )
    fig = _figure(7, 4)
    ax = fig.add_subplot()
    for k in curves:
        y = series[k]
        x = next((series[s] for s in x_keys if len(series[s]) == len(y)), range(len(y)))
        if k == "loss":
            ax.plot(x, y, lw=0.8, alpha=0.6, label=_LABELS[k])
        else:
            ax.plot(x, y, "o-" if len(y) <= 50 else "-", ms=3, label=_LABELS.get(k, k))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    _save(fig, path, "plot_loss_curves")
    return fig


# =================================================================================================
# Attention maps
# =================================================================================================


def _show_token(t) -> str:
    """Make whitespace visible: a newline or a space would be an invisible tick label."""
    return {"\n": "\\n", " ": "\u2423", "\t": "\\t"}.get(str(t), str(t))


def plot_attention(weights, tokens, path=None, title=None):
    """Heat maps of attention weights: row = query position, column = key position.

    ``weights`` is ``(T_q, T_k)`` or ``(H, T_q, T_k)`` (one panel per head; a leading batch of 1
    is dropped). ``tokens`` labels both axes (self-attention), or is a pair
    ``(query_tokens, key_tokens)`` (cross-attention). Each row of a softmax sums to 1, so the
    colour scale is fixed to [0, 1] to compare panels.
    """
    w = _host(weights).astype(np.float64)
    if w.ndim == 4 and w.shape[0] == 1:
        w = w[0]
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3:
        raise ValueError(
            f"plot_attention: weights must be (T_q, T_k) or (H, T_q, T_k), got shape {w.shape}"
        )
    if isinstance(tokens, tuple) and len(tokens) == 2 and not isinstance(tokens[0], str):
        q_tokens, k_tokens = list(tokens[0]), list(tokens[1])
    else:
        q_tokens = k_tokens = list(tokens)
    H, T_q, T_k = w.shape
    if len(q_tokens) != T_q or len(k_tokens) != T_k:
        raise ValueError(
            f"plot_attention: weights of shape {tuple(w.shape)} need {T_q} query tokens and "
            f"{T_k} key tokens, got {len(q_tokens)} and {len(k_tokens)}"
        )
    cols = min(H, 4)
    rows = math.ceil(H / cols)
    side = max(2.5, 0.25 * max(T_q, T_k))
    fig = _figure(side * cols + 1, side * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for h in range(rows * cols):
        ax = axes[h // cols][h % cols]
        if h >= H:
            ax.axis("off")
            continue
        image = ax.imshow(w[h], cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(T_k), [_show_token(t) for t in k_tokens], fontsize=7)
        ax.set_yticks(range(T_q), [_show_token(t) for t in q_tokens], fontsize=7)
        ax.set_xlabel("key")
        ax.set_ylabel("query")
        if H > 1:
            ax.set_title(f"head {h}")
    fig.colorbar(image, ax=axes, shrink=0.8)
    if title:
        fig.suptitle(title)
    _save(fig, path, "plot_attention")
    return fig


# =================================================================================================
# Gradient norms
# =================================================================================================


def grad_norms(named_parameters) -> dict:
    """``{name: L2 norm of its gradient}`` for ``model.named_parameters()`` (skips None grads).

    >>> import tinygrad_edu as tg
    >>> w = tg.tensor([3.0, 4.0], requires_grad=True)
    >>> (w * w).sum().backward()
    >>> grad_norms([("w", w)])
    {'w': 10.0}
    """
    out = {}
    for name, p in named_parameters:
        if p.grad is not None:
            g = p.grad.data
            xp = backend.xp_of(g)
            out[name] = math.sqrt(float(xp.sum(g * g)))
    return out


def plot_grad_norms(norms, path=None, title=None):
    """Gradient norms, in the form that fits what you pass:

    * ``{name: number}`` (e.g. ``grad_norms(model.named_parameters())``): one bar per
      parameter, on a log scale: vanishing or exploding layers stand out;
    * ``{name: [numbers over steps or time]}``: one line each, log scale;
    * ``[numbers]``: one line (e.g. the total norm returned by ``clip_grad_norm`` each step).
    """
    if not isinstance(norms, dict):
        norms = {"gradient norm": norms}
    if not norms:
        raise ValueError("plot_grad_norms: no gradient norms given (did backward() run?)")
    scalar = all(np.ndim(_host(v)) == 0 for v in norms.values())
    if scalar:
        names = list(norms)
        values = [float(_host(v)) for v in norms.values()]
        fig = _figure(7, max(2.5, 0.3 * len(names) + 1))
        ax = fig.add_subplot()
        ax.barh(range(len(names)), values)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.invert_yaxis()  # the first layer on top, as in the model's definition
        ax.set_xlabel("gradient L2 norm")
        if all(v > 0 for v in values):
            ax.set_xscale("log")
    else:
        fig = _figure(7, 4)
        ax = fig.add_subplot()
        for name, vals in norms.items():
            ax.plot(_host(vals).ravel(), label=name)
        ax.set_xlabel("step")
        ax.set_ylabel("gradient norm")
        if all((_host(v) > 0).all() for v in norms.values()):
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    _save(fig, path, "plot_grad_norms")
    return fig


# =================================================================================================
# The autograd graph
# =================================================================================================


def graph_layers(tensor: Tensor, params=None) -> list:
    """The graph behind ``tensor`` in layers: layer 0 holds the leaves, and every op sits one
    layer right of its deepest input, so all arrows point right. Returns a list of layers,
    each a list of ``(node, label)``; ``params`` (``dict(model.named_parameters())``) names
    leaves.

    >>> import tinygrad_edu as tg
    >>> a = tg.ones(3, requires_grad=True)
    >>> [[label for _, label in layer] for layer in graph_layers((a * 2.0).sum(), {"a": a})]
    [['a\\n(3,)'], ['Mul\\n(3,)'], ['Sum\\n()']]
    """
    names = {id(t): name for name, t in (params or {}).items()}

    def inputs(t):
        return [x for x in t._ctx.inputs if isinstance(x, Tensor)] if t._ctx is not None else []

    # Inputs before outputs: an iterative depth-first search that emits a tensor after all of
    # its inputs (as autograd does, without recursion: graphs can be thousands of ops deep).
    order, seen, stack = [], set(), [(tensor, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        stack.extend((x, False) for x in inputs(t) if id(x) not in seen)
    layer = {}
    for t in order:  # every input already has its layer
        layer[id(t)] = 1 + max((layer[id(x)] for x in inputs(t)), default=-1)
    layers = [[] for _ in range(max(layer.values()) + 1)]
    for t in order:
        if t._ctx is not None:
            label = type(t._ctx).__name__
        else:
            label = names.get(id(t), "leaf" if t.requires_grad else "const")
        layers[layer[id(t)]].append((t, f"{label}\n{t.shape}"))
    return layers


def draw_graph(tensor: Tensor, path=None, params=None, max_nodes: int = 200):
    """Draw the autograd graph that ``tensor.backward()`` would walk, leaves on the left.

    Blue boxes are leaves that require grad (parameters, named through ``params``), grey boxes
    constants, orange boxes the ``Function`` that made each tensor, green the output. Draw the
    graph *before* calling ``backward()``: backward frees it.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"draw_graph: expected a Tensor, got {type(tensor).__name__}")
    layers = graph_layers(tensor, params)
    n = sum(len(layer) for layer in layers)
    if n > max_nodes:
        raise ValueError(
            f"draw_graph: the graph has {n} tensors, more than max_nodes={max_nodes}; draw a "
            "smaller model (or pass a larger max_nodes)"
        )
    width = max(len(layer) for layer in layers)
    fig = _figure(max(3.0, 1.6 * len(layers)), max(2.0, 0.9 * width))
    ax = fig.add_subplot()
    pos = {}
    for x, layer in enumerate(layers):
        for i, (t, _) in enumerate(layer):
            pos[id(t)] = (x, (len(layer) - 1) / 2 - i)  # each layer centred on y = 0
    for layer in layers:  # arrows first, boxes on top
        for t, _ in layer:
            if t._ctx is None:
                continue
            for x in t._ctx.inputs:
                if isinstance(x, Tensor):
                    ax.annotate(
                        "", xy=pos[id(t)], xytext=pos[id(x)],
                        arrowprops=dict(arrowstyle="->", color="0.4", shrinkA=18, shrinkB=18),
                    )  # fmt: skip
    for layer in layers:
        for t, label in layer:
            if t is tensor:
                colour = "#b7e4b0"
            elif t._ctx is not None:
                colour = "#f9d9a6"
            else:
                colour = "#bcd7f5" if t.requires_grad else "#e0e0e0"
            ax.text(*pos[id(t)], label, ha="center", va="center", fontsize=8,
                    bbox=dict(boxstyle="round", fc=colour, ec="0.3"))  # fmt: skip
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(-0.6, len(layers) - 0.4)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.axis("off")
    _save(fig, path, "draw_graph")
    return fig

"""Plain-NumPy reference implementations shared by the tests: loops and textbook formulas, written
independently of the library, in float64. All of the tests' references live here
(``import references``; ``references.softmax(x)``).

The layer references (``linear``, ``multi_head_attention``, ``transformer_block``) read a module's
parameters as NumPy arrays and compute everything else themselves.
"""

import math

import numpy as np
from helpers import npy

_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def normal_cdf(x):
    """Phi(x) from erfc: ``1 + erf(x / sqrt 2)`` would cancel to 0 in the left tail."""
    return 0.5 * _erfc(-x / math.sqrt(2.0))


def gelu(x):
    """Exact GELU, ``x Phi(x)``."""
    return x * normal_cdf(x)


def layer_norm(x, n_axes, weight=None, bias=None, eps=1e-5):
    """Explicit mean and (biased) variance of every row of the last ``n_axes`` axes."""
    lead = x.shape[: x.ndim - n_axes]
    rows = x.reshape(int(np.prod(lead)), -1)
    out = np.zeros_like(rows, dtype=np.float64)
    for r in range(rows.shape[0]):
        row = rows[r]
        mean = sum(row) / len(row)
        var = sum((v - mean) ** 2 for v in row) / len(row)
        out[r] = (row - mean) / math.sqrt(var + eps)
    out = out.reshape(x.shape)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1):
    """A loop over batch, output channel and output position: (N, C, L) -> (N, C_out, L_out)."""
    N, C, L = x.shape
    C_out, _, K = w.shape
    xpad = np.zeros((N, C, L + 2 * padding))
    xpad[:, :, padding : padding + L] = x
    L_out = max((L + 2 * padding - dilation * (K - 1) - 1) // stride + 1, 0)
    y = np.zeros((N, C_out, L_out))
    for n in range(N):
        for o in range(C_out):
            for i in range(L_out):
                acc = 0.0 if b is None else b[o]
                for c in range(C):
                    for k in range(K):
                        acc += w[o, c, k] * xpad[n, c, i * stride + k * dilation]
                y[n, o, i] = acc
    return y


# ---- Activations and losses (test_functional.py, test_rnn.py) --------------------------------


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def cross_entropy(x, target, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """PyTorch's documented formula: the target distribution ``q = (1 - eps) onehot + eps / C``,
    ``l_n = -sum_c q_c log p_c`` for targets not ignored (0 otherwise); mean over those targets.
    ``x`` is (N, C, d...) (classes on axis 1)."""
    C = x.shape[1]
    logp = log_softmax(x, axis=1)
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    onehot = np.moveaxis(np.eye(C)[safe], -1, 1)  # (N, d..., C) -> (N, C, d...)
    q = (1 - label_smoothing) * onehot + label_smoothing / C
    loss = -(q * logp).sum(axis=1) * valid
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / valid.sum()


def bce_with_logits(x, t, weight=None, pos_weight=None):
    """PyTorch's documented formula, ``-w [p t log s(x) + (1 - t) log(1 - s(x))]``, in a stable
    form: ``log s(x) = -logaddexp(0, -x)``, ``log(1 - s(x)) = -logaddexp(0, x)``."""
    p = 1.0 if pos_weight is None else pos_weight
    loss = p * t * np.logaddexp(0, -x) + (1 - t) * np.logaddexp(0, x)
    return loss if weight is None else loss * weight


# ---- Attention (test_functional.py) ----------------------------------------------------------


def attention(q, k, v, keep=None, additive=None, scale=None):
    """A loop over the query positions of every batch element; (..., L, E) inputs, broadcast."""
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    L, E = q.shape[-2:]
    S = k.shape[-2]
    q = np.broadcast_to(q, batch + (L, E)).reshape(-1, L, E)
    k = np.broadcast_to(k, batch + (S, E)).reshape(-1, S, E)
    v = np.broadcast_to(v, batch + v.shape[-2:]).reshape(-1, S, v.shape[-1])
    keep = None if keep is None else np.broadcast_to(keep, batch + (L, S)).reshape(-1, L, S)
    add = None if additive is None else np.broadcast_to(additive, batch + (L, S)).reshape(-1, L, S)
    scale = 1.0 / math.sqrt(E) if scale is None else scale
    out = np.zeros((q.shape[0], L, v.shape[-1]))
    for bi in range(q.shape[0]):
        for i in range(L):
            s = k[bi] @ q[bi, i] * scale  # (S,)
            if add is not None:
                s = s + add[bi, i]
            allowed = np.ones(S, dtype=bool) if keep is None else keep[bi, i]
            if not allowed.any():
                continue  # a fully masked row: zeros
            w = np.exp(s[allowed] - s[allowed].max())
            out[bi, i] = (w / w.sum()) @ v[bi][allowed]
    return out.reshape(batch + (L, v.shape[-1]))


# ---- Layers, read from a module's parameters (test_nn_layers.py) -----------------------------


def linear(x, W, b=None):
    """``y[..., o] = sum_k x[..., k] W[o, k] + b[o]``, as explicit sums over k."""
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    out = np.zeros((x2.shape[0], W.shape[0]))
    for i in range(x2.shape[0]):
        for o in range(W.shape[0]):
            s = 0.0
            for k in range(W.shape[1]):
                s += x2[i, k] * W[o, k]
            out[i, o] = s + (0.0 if b is None else b[o])
    return out.reshape(lead + (W.shape[0],))


def multi_head_attention(m, query, key, value, keep=None):
    """Attention of module ``m`` with a loop over batch, head and query.

    ``keep(b, i, j)`` says whether query i may attend key j. Returns the output (B, L, E) and the
    weights (B, H, L, S). A query with no allowed key gets zero weights (the library's choice).
    """

    def proj(x, lin):
        return linear(x, npy(lin.weight), None if lin.bias is None else npy(lin.bias))

    q, k, v = proj(query, m.q_proj), proj(key, m.k_proj), proj(value, m.v_proj)
    B, L, E = q.shape
    S = k.shape[1]
    H, D = m.num_heads, E // m.num_heads
    heads = np.zeros((B, L, E))
    weights = np.zeros((B, H, L, S))
    for b in range(B):
        for h in range(H):
            cols = slice(h * D, (h + 1) * D)
            for i in range(L):
                allowed = [j for j in range(S) if keep is None or keep(b, i, j)]
                if not allowed:
                    continue
                scores = {j: float(q[b, i, cols] @ k[b, j, cols]) / math.sqrt(D) for j in allowed}
                top = max(scores.values())
                z = sum(math.exp(s - top) for s in scores.values())
                for j in allowed:
                    w = math.exp(scores[j] - top) / z
                    weights[b, h, i, j] = w
                    heads[b, i, cols] += w * v[b, j, cols]
    return proj(heads, m.out_proj), weights


def transformer_block(blk, x):
    """The pre-norm block from the references above (causal, no dropout)."""
    ln = blk.ln1
    bias1 = None if ln.bias is None else npy(ln.bias)
    h = layer_norm(x, 1, npy(ln.weight), bias1)
    attn, _ = multi_head_attention(blk.attn, h, h, h, keep=lambda b, i, j: j <= i)
    x = x + attn
    bias2 = None if blk.ln2.bias is None else npy(blk.ln2.bias)
    h = layer_norm(x, 1, npy(blk.ln2.weight), bias2)
    fc1, fc2 = blk.mlp[0], blk.mlp[2]
    h = linear(h, npy(fc1.weight), None if fc1.bias is None else npy(fc1.bias))
    h = linear(gelu(h), npy(fc2.weight), None if fc2.bias is None else npy(fc2.bias))
    return x + h


# ---- Recurrent layers: PyTorch's documented equations, one step at a time (test_rnn.py) ------


def rnn_cell(kind, params, x, h, c=None, suffix=""):
    """One step of ``kind`` with parameters ``params[name + suffix]`` (missing biases are 0)."""
    w_ih, w_hh = params["weight_ih" + suffix], params["weight_hh" + suffix]
    b_ih = params.get("bias_ih" + suffix, 0.0)
    b_hh = params.get("bias_hh" + suffix, 0.0)
    a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    if kind == "rnn_tanh":
        return np.tanh(a), None
    if kind == "rnn_relu":
        return np.maximum(a, 0.0), None
    H = h.shape[-1]
    i = sigmoid(a[..., 0:H])
    f = sigmoid(a[..., H : 2 * H])
    g = np.tanh(a[..., 2 * H : 3 * H])
    o = sigmoid(a[..., 3 * H : 4 * H])
    c = f * c + i * g
    return o * np.tanh(c), c


def rnn_layers(kind, params, x, h0, c0, num_layers, batch_first):
    """The multi-layer loop: returns (output, h_n, c_n) as NumPy float64 arrays."""
    x = np.asarray(x, dtype=np.float64)
    if batch_first:
        x = x.transpose(1, 0, 2)  # (B, T, in) -> (T, B, in)
    T = x.shape[0]
    h_n, c_n = [], []
    layer_in = x
    for layer in range(num_layers):
        h, c = h0[layer], (c0[layer] if c0 is not None else None)
        outs = []
        for t in range(T):
            h, c = rnn_cell(kind, params, layer_in[t], h, c, suffix=f"_l{layer}")
            outs.append(h)
        layer_in = np.stack(outs)
        h_n.append(h)
        c_n.append(c)
    output = layer_in.transpose(1, 0, 2) if batch_first else layer_in
    return output, np.stack(h_n), (np.stack(c_n) if c0 is not None else None)


# ---- Optimizers: PyTorch's documented algorithms, parameter after each step (test_optim.py) ---


def sgd(w, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """Parameter after each step of SGD, from ``torch.optim.SGD``'s documented algorithm."""
    w = w.copy()
    b = None
    out = []
    for t, g in enumerate(grads, start=1):
        if weight_decay != 0:
            g = g + weight_decay * w
        if momentum != 0:
            b = g.copy() if t == 1 else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        w = w - lr * g
        out.append(w.copy())
    return out


def adam(
    w, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False
):
    """Parameter after each step of Adam (``decoupled=True``: AdamW), from PyTorch's docs."""
    b1, b2 = betas
    w = w.copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    v_max = np.zeros_like(w)
    out = []
    for t, g in enumerate(grads, start=1):
        if decoupled:
            w = w - lr * weight_decay * w
        elif weight_decay != 0:
            g = g + weight_decay * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        if amsgrad:
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - b2**t)
        else:
            v_hat = v / (1 - b2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(w.copy())
    return out

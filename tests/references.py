"""Plain-NumPy reference implementations shared by the tests: loops and textbook formulas, written
independently of the library, in float64."""

import math

import numpy as np

_erfc = np.vectorize(math.erfc)


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

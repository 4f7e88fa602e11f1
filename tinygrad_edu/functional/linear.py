"""``linear``, the dense layer as a function (chapter 3).

``LinearFunction`` is one node whose backward is the three matrix rules of chapter 3, written
with Tensor operations (so it can be differentiated again). It exists for the memory layout of
the weight's gradient: composed as ``x @ W.T``, autograd hands ``W`` the transpose of the
gradient of ``W.T``, a Fortran-ordered view, and every later pass over it (clipping, the
optimizer) walks memory with a stride.
"""

from __future__ import annotations

import math

from .. import backend
from ..autograd import Function, is_grad_enabled
from ..ops import _const
from ..tensor import Tensor
from ._checks import check_float, check_same_dtype


class LinearFunction(Function):
    """``y = x W^T + b`` for x (..., in), W (out, in), b (out,) or None -> (..., out).

    The leading axes of ``x`` are flattened into one, N rows, inside the node (a view of the
    array, no graph node of its own), so the whole layer is one matrix product each way.
    Backward: ``grad_x = grad_out W`` (N, in), ``grad_W = grad_out^T x`` (out, in), ``grad_b``
    = ``grad_out`` summed over N. ``grad_W`` is computed as the product ``grad_out^T x``, so it
    comes out C-ordered like ``W`` itself; composed (``x @ W.T``), it arrived as the transpose of
    an (in, out) array, and the SGD update of B1's first weight (512, 784) took 0.91 ms with
    that gradient against 0.25 ms with a C-ordered one (one thread; chapter 13 measures it).
    """

    def forward(self, x, weight, bias):
        xp = backend.xp_of(x)
        lead = x.shape[:-1]
        x = xp.reshape(x, (math.prod(lead), x.shape[-1]))  # (..., in) -> (N, in)
        # --- exercise 3.2: the dense layer's forward ---
        y = xp.matmul(x, weight.mT)  # (N, in) @ (in, out) -> (N, out)
        if bias is not None:
            y = y + bias
        # --- end exercise ---
        return xp.reshape(y, lead + (weight.shape[0],))  # (N, out) -> (..., out)

    def backward(self, grad_out):
        x, weight, bias = self.inputs
        need_x, need_w, need_b = self.needs_input_grad
        n_out, n_in = weight.shape
        n = math.prod(x.shape[:-1])  # N rows (not -1: a layer may have 0 rows or 0 outputs)
        if is_grad_enabled():  # Tensor operations: the backward can be differentiated again
            g, x, w = grad_out.reshape(n, n_out), x.reshape(n, n_in), weight

            def total(a):
                return a.sum(axis=0)

            def as_tensor(a, shape):
                return a.reshape(shape)
        else:
            # the same products on the raw arrays, with no graph node (and its checks) for each
            # product and reshape: forward + backward of Linear(128, 512) on (12, 64, 128) took
            # 3.52 ms against 3.76 ms with Tensor products and reshape nodes (medians of 300,
            # one thread, the two versions interleaved); `python benchmarks/run.py --profile
            # --cases B3` counts 2,940 Function.apply calls in 20 steps, 6,440 before
            xp = backend.xp_of(weight.data)
            g, x, w = (
                xp.reshape(grad_out.data, (n, n_out)),
                xp.reshape(x.data, (n, n_in)),
                weight.data,
            )

            def total(a):
                return xp.sum(a, axis=0)

            def as_tensor(a, shape):
                return _const(xp.reshape(a, shape))

        grad_x = grad_w = grad_b = None
        # --- exercise 3.2: the dense layer's backward ---
        if need_x:
            grad_x = g @ w  # (N, out) @ (out, in) -> (N, in)
        if need_w:
            grad_w = g.mT @ x  # (out, N) @ (N, in) -> (out, in)
        if need_b:
            grad_b = total(g)  # (N, out) -> (out,)
        # --- end exercise ---
        grad_x = as_tensor(grad_x, self.inputs[0].shape) if need_x else None
        grad_w = as_tensor(grad_w, weight.shape) if need_w else None
        grad_b = as_tensor(grad_b, (n_out,)) if need_b else None
        return grad_x, grad_w, grad_b


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y = x W^T + b``, the dense layer, with PyTorch's weight layout.

    Shapes: ``x`` (..., in), ``weight`` (out, in), ``bias`` (out,) -> ``y`` (..., out). The
    leading axes are flattened into one, so the whole layer is one matrix product each way
    (``LinearFunction``).

    >>> import tinygrad_edu as tg
    >>> x = tg.ones(2, 3)
    >>> linear(x, tg.ones(4, 3), tg.zeros(4)).shape
    (2, 4)
    """
    check_float("linear", "input", x)
    check_same_dtype("linear", x, weight=weight, bias=bias)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out, in), got shape {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} has {x.shape[-1] if x.ndim else 0} features but "
            f"weight of shape {weight.shape} expects {weight.shape[1]} (weight is (out, in))"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(
            f"linear: bias of shape {bias.shape} does not match weight {weight.shape}; "
            f"expected ({weight.shape[0]},)"
        )
    return LinearFunction.apply(x, weight, bias)

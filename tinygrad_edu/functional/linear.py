"""``linear``, the dense layer as a function (chapter 3).

``LinearFunction`` is one node whose backward is the three matrix rules of chapter 3, written
with Tensor operations (so it can be differentiated again). It exists for the memory layout of
the weight's gradient: composed as ``x @ W.T``, autograd hands ``W`` the transpose of the
gradient of ``W.T``, a Fortran-ordered view, and every later pass over it (clipping, the
optimizer) walks memory with a stride.
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from ._checks import check_float


class LinearFunction(Function):
    """``y = x W^T + b`` for x (N, in), W (out, in), b (out,) or None -> (N, out).

    Backward: ``grad_x = grad_out W`` (N, in), ``grad_W = grad_out^T x`` (out, in), ``grad_b``
    = ``grad_out`` summed over N. ``grad_W`` is computed as the product ``grad_out^T x``, so it
    comes out C-ordered like ``W`` itself; composed (``x @ W.T``), it arrived as the transpose of
    an (in, out) array, and the SGD update of B1's first weight (512, 784) took 0.91 ms with
    that gradient against 0.25 ms with a C-ordered one (one thread; chapter 13 measures it).
    """

    def forward(self, x, weight, bias):
        # --- exercise 3.2: the dense layer's forward ---
        y = backend.xp_of(x).matmul(x, weight.mT)  # (N, in) @ (in, out) -> (N, out)
        return y if bias is None else y + bias
        # --- end exercise ---

    def backward(self, grad_out):
        x, weight, bias = self.inputs
        need_x, need_w, need_b = self.needs_input_grad
        # --- exercise 3.2: the dense layer's backward ---
        grad_x = grad_out @ weight if need_x else None  # (N, out) @ (out, in) -> (N, in)
        grad_w = grad_out.mT @ x if need_w else None  # (out, N) @ (N, in) -> (out, in)
        grad_b = grad_out.sum(axis=0) if need_b else None  # (N, out) -> (out,)
        # --- end exercise ---
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
    check_float("linear", "weight", weight)
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
    if x.ndim == 2:
        return LinearFunction.apply(x, weight, bias)
    lead = x.shape[:-1]  # (..., in) -> (N, in) -> (N, out) -> (..., out)
    y = LinearFunction.apply(x.reshape(-1, weight.shape[1]), weight, bias)
    return y.reshape(*lead, weight.shape[0])

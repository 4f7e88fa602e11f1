"""``linear``, the dense layer as a function (chapter 3).

It is *composed*: a matmul and an add from ``ops.py``, so autograd differentiates it for free.
"""

from __future__ import annotations

from ..tensor import Tensor
from ._checks import check_float


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y = x W^T + b``, the dense layer, with PyTorch's weight layout.

    Shapes: ``x`` (..., in), ``weight`` (out, in), ``bias`` (out,) -> ``y`` (..., out).
    Backward (from ``MatMul`` and ``Add``): ``grad_x = grad_out W``, ``grad_W = grad_out^T x``
    summed over the leading axes, ``grad_b = grad_out`` summed likewise.

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
    # --- exercise 3.2: the dense layer's forward ---
    y = x @ weight.mT  # (..., in) @ (in, out) -> (..., out)
    if bias is not None:
        y = y + bias
    return y
    # --- end exercise ---

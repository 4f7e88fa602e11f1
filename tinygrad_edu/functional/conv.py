"""``conv1d`` (chapter 6): unfold every receptive field into a column ("im2col"), then a matmul.

``Unfold1dFunction`` and its adjoint ``Fold1dFunction`` are linear maps, each the other's
backward, so second derivatives work; the matmul and the bias add are ordinary ops.
"""

from __future__ import annotations

from .. import backend, ops
from ..autograd import Function
from ..tensor import Tensor, zeros
from ._checks import check_float, check_same_dtype


def _conv_out_len(L, K, stride, padding, dilation):
    return (L + 2 * padding - dilation * (K - 1) - 1) // stride + 1


class Unfold1dFunction(Function):
    """Gather every receptive field into a column ("im2col"):
    ``(N, C, L) -> (N, C*K, L_out)``, ``cols[n, c*K + k, i] = xpad[n, c, i*stride + k*dilation]``.

    Built one kernel tap at a time: tap k of every window is the strided slice
    ``k*dilation :: stride`` of the padded input, copied as one contiguous run of ``L_out``
    values per channel. (The layout ``(N, L_out, C*K)`` copies runs of only K values: 3.8 ms
    instead of 1.5 ms for B4's input, one thread.)

    It is linear, so its backward is its adjoint ``Fold1dFunction`` (scatter the columns back,
    adding where windows overlap), and ``Fold1dFunction``'s backward is ``Unfold1dFunction``
    again: second derivatives work.
    """

    def forward(self, x, K, stride, padding, dilation):
        xp = backend.xp_of(x)
        N, C, L = x.shape
        self.args = (C, L, K, stride, padding, dilation)
        if padding:
            z = xp.zeros((N, C, padding), dtype=x.dtype)
            x = xp.concat([z, x, z], axis=-1)  # portable zero padding
        # --- exercise 6.1: unfold, the windows as columns ---
        L_out = _conv_out_len(L, K, stride, padding, dilation)
        span = stride * (L_out - 1) + 1
        cols = xp.empty((N, C, K, L_out), dtype=x.dtype)
        for k in range(K):
            cols[:, :, k, :] = x[:, :, k * dilation : k * dilation + span : stride]
        return xp.reshape(cols, (N, C * K, L_out))  # a view: (c, k) pairs are rows
        # --- end exercise ---

    def backward(self, grad_out):
        return (Fold1dFunction.apply(grad_out, *self.args),) + (None,) * 4


class Fold1dFunction(Function):
    """The adjoint of ``Unfold1dFunction``: ``(N, C*K, L_out) -> (N, C, L)``, summing overlapping
    windows.

    A loop over the K kernel taps (not over positions): tap k of every window lands on the strided
    slice ``k*dilation :: stride`` of the padded input.
    """

    def forward(self, cols, C, L, K, stride, padding, dilation):
        xp = backend.xp_of(cols)
        self.args = (K, stride, padding, dilation)
        # --- exercise 6.2: fold, the backward of unfold ---
        N, _, L_out = cols.shape
        cols = xp.reshape(cols, (N, C, K, L_out))
        out = xp.zeros((N, C, L + 2 * padding), dtype=cols.dtype)
        span = stride * (L_out - 1) + 1
        for k in range(K):
            sl = slice(k * dilation, k * dilation + span, stride)
            out[:, :, sl] += cols[:, :, k, :]  # (N, C, L_out)
        return out[:, :, padding : padding + L] if padding else out
        # --- end exercise ---

    def backward(self, grad_out):
        return (Unfold1dFunction.apply(grad_out, *self.args),) + (None,) * 6


def conv1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
) -> Tensor:
    """1-D convolution (cross-correlation, as every framework): input (N, C_in, L) (or (C_in, L),
    unbatched), weight (C_out, C_in, K), bias (C_out,) -> (N, C_out, L_out),
    ``L_out = (L + 2 padding - dilation (K - 1) - 1) // stride + 1``.

    ``y[n, o, i] = b[o] + sum_{c,k} W[o, c, k] * xpad[n, c, i*stride + k*dilation]``, computed as
    ``W.reshape(C_out, C_in*K) @ unfold(x)``: one matmul per example, no loop over positions.
    ``padding`` may also be ``"valid"`` (0) or ``"same"`` (stride 1 only; an odd number of zeros
    in all puts the extra one on the right, as PyTorch).

    >>> import tinygrad_edu as tg
    >>> conv1d(tg.ones(2, 3, 10), tg.ones(4, 3, 5), padding=2).shape
    (2, 4, 10)
    """
    check_float("conv1d", "input", x)
    check_same_dtype("conv1d", x, weight=weight, bias=bias)
    if weight.ndim != 3:
        raise ValueError(f"conv1d: weight must be 3-D (C_out, C_in, K), got shape {weight.shape}")
    if x.ndim not in (2, 3):
        raise ValueError(
            f"conv1d: input must be 3-D (N, C_in, L) or 2-D (C_in, L), got shape {x.shape}"
        )
    if x.ndim == 2:  # one unbatched example, as PyTorch: a batch of one
        return conv1d(x.unsqueeze(0), weight, bias, stride, padding, dilation).squeeze(0)
    C_out, C_in, K = weight.shape
    if x.shape[1] != C_in:
        raise ValueError(
            f"conv1d: input of shape {x.shape} has {x.shape[1]} channels but weight of shape "
            f"{weight.shape} expects {C_in} (weight is (C_out, C_in, K))"
        )
    if padding == "valid":
        padding = 0
    elif padding == "same":
        if stride != 1:
            raise ValueError("conv1d: padding='same' needs stride=1")
        total = dilation * (K - 1)  # the zeros to add, at both ends together
        if total % 2:  # an odd total: the extra zero goes on the right, as in PyTorch
            right = zeros(*x.shape[:-1], 1, dtype=x.dtype, device=x.device)
            x = ops.concat([x, right], axis=-1)
        padding = total // 2
    for name, v, lo in (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ValueError(f"conv1d: {name} must be an integer >= {lo}, got {v!r}")
    N, _, L = x.shape
    L_out = _conv_out_len(L, K, stride, padding, dilation)
    if L_out < 1:
        raise ValueError(
            f"conv1d: input length {L} (padding {padding}) is shorter than the kernel's span "
            f"{dilation * (K - 1) + 1}"
        )
    if bias is not None and bias.shape != (C_out,):
        raise ValueError(f"conv1d: bias has shape {bias.shape}, expected ({C_out},)")
    cols = Unfold1dFunction.apply(x, K, stride, padding, dilation)  # (N, C_in*K, L_out)
    # (C_out, C_in*K) @ (N, C_in*K, L_out) -> (N, C_out, L_out): the output comes out C-ordered
    # in PyTorch's layout, so what follows (ReLU, pooling) walks it without strides
    y = weight.reshape(C_out, C_in * K) @ cols
    if bias is not None:
        y = y + bias.reshape(C_out, 1)
    return y

"""``Linear`` (the book's ``Dense``): the affine map ``y = x W^T + b``.

Chapter 3 ("Dense layers and MLPs") builds this layer. The weight is stored as (out, in), PyTorch's
layout, so a state dict loads into ``torch.nn.Linear`` unchanged; ``nn.Dense`` is the same class
under the name the book uses first.

Read next: ``init.py``.
"""

from __future__ import annotations

from .. import functional as F
from .._config import check_positive_sizes
from ..tensor import Tensor, zeros
from . import init
from ._checks import check_device, check_dtype, check_size, check_tensor
from .module import Module, Parameter


class Linear(Module):
    """Fully connected layer: ``y = x W^T + b``.

    Shapes: input (..., in_features) -> output (..., out_features); ``weight`` (out_features,
    in_features), ``bias`` (out_features,). Any number of leading axes is allowed.

    Backward (written out in ``functional.linear``'s ``LinearFunction``, the three matrix rules
    of chapter 3): ``grad_x = grad_out W``, ``grad_W = grad_out^T x`` and ``grad_b = grad_out``
    summed over the leading axes.

    Initialisation, as PyTorch: ``W`` and ``b`` uniform in (-1/sqrt(in_features),
    1/sqrt(in_features)) (``kaiming_uniform_(W, a=sqrt(5))`` is that bound).

    >>> import tinygrad_edu as tg
    >>> from tinygrad_edu import nn
    >>> layer = nn.Linear(4, 2)
    >>> layer
    Linear(in_features=4, out_features=2, bias=True)
    >>> layer(tg.ones(3, 4)).shape
    (3, 2)
    >>> nn.Dense is nn.Linear
    True
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None
    ):
        check_positive_sizes("Linear", 0, in_features=in_features, out_features=out_features)
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(zeros(out_features, in_features, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(zeros(out_features, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: both uniform in (-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        init.layer_default_(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        check_tensor(self, x)
        check_size(self, x, -1, self.in_features, "last dimension {}")
        check_device(self, x, self.weight.device)
        check_dtype(self, x, self.weight.dtype)
        # (..., in) -> (..., out); F.linear flattens (B, T, in) into (B*T, in) rows inside its
        # one graph node: one 2-D matmul. Batched, the backward would form one weight gradient
        # per batch element, (B, out, in), and then sum them: several times slower.
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


Dense = Linear  # the name chapter 3 starts with; the same class


class Identity(Module):
    """Returns its input as it is (PyTorch's ``nn.Identity``): a placeholder where a model's
    configuration leaves a layer out. Takes and ignores any arguments, as PyTorch's does."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x


class Flatten(Module):
    """Flattens the axes ``start_dim`` to ``end_dim`` into one (PyTorch's ``nn.Flatten``; the
    default keeps the batch axis): (N, C, L) -> (N, C * L)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return check_tensor(self, x).flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

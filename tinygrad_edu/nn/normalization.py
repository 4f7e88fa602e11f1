"""``LayerNorm``: rescale every vector to mean 0 and variance 1, then learn a scale and shift.

Chapter 10 ("The Transformer block") builds this layer. Normalising each position's features keeps
the signal in a residual stack at a steady size however deep the stack is, which is what lets a
Transformer train with a plain learning rate. Unlike batch normalisation, nothing depends on the
other examples of the batch, so training and evaluation compute the same thing.

Read next: ``dropout.py``.
"""

from __future__ import annotations

from .. import functional as F
from .._config import check_positive_sizes
from ..tensor import Tensor, zeros
from . import init
from ._checks import check_device, check_dtype, check_tensor, layer_name
from .module import Module, Parameter


class LayerNorm(Module):
    """Layer normalisation over the last ``len(normalized_shape)`` axes (Ba et al., 2016).

    Forward, with ``mu`` and ``var`` the mean and (biased) variance over those axes::

        y = (x - mu) / sqrt(var + eps) * weight + bias

    Backward: autograd through ``F.layer_norm``. With ``xhat = (x - mu) / sigma`` and
    ``g = grad_out * weight``, it works out to
    ``grad_x = (g - mean(g) - xhat * mean(g * xhat)) / sigma``, ``grad_weight = sum(grad_out *
    xhat)``, ``grad_bias = sum(grad_out)`` (sums over the leading axes).

    Shapes: input (..., *normalized_shape) -> the same shape; ``weight`` and ``bias``
    ``normalized_shape``, initialised to ones and zeros. ``elementwise_affine=False`` drops both,
    ``bias=False`` only the bias (as GPT-style models without biases use).

    >>> import tinygrad_edu as tg
    >>> from tinygrad_edu import nn
    >>> ln = nn.LayerNorm(4)
    >>> ln
    LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)
    >>> y = ln(tg.tensor([[1.0, 2.0, 3.0, 4.0]]))
    >>> round(y.mean().item(), 6), round(y.var().item(), 3)
    (0.0, 1.0)
    """

    def __init__(
        self,
        normalized_shape,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        if not isinstance(normalized_shape, (tuple, list)):
            raise TypeError(
                f"LayerNorm: normalized_shape must be an int or a tuple of ints, "
                f"got {normalized_shape!r}"
            )
        sizes = {f"normalized_shape[{i}]": n for i, n in enumerate(normalized_shape)}
        check_positive_sizes("LayerNorm", minimum=0, **sizes)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(zeros(self.normalized_shape, dtype=dtype, device=device))
            if bias:
                self.bias = Parameter(zeros(self.normalized_shape, dtype=dtype, device=device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        check_tensor(self, x)
        k = len(self.normalized_shape)
        if x.ndim < k or x.shape[x.ndim - k :] != self.normalized_shape:
            raise ValueError(
                f"{layer_name(self)}: expected input whose last dimensions are "
                f"{self.normalized_shape}, got shape {x.shape}"
            )
        if self.weight is not None:
            check_device(self, x, self.weight.device)
            check_dtype(self, x, self.weight.dtype)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )

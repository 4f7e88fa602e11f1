"""Activation functions as modules, for ``Sequential``: ``ReLU``, ``GELU``, ``Tanh``, ``Sigmoid``,
``Softmax`` and ``LogSoftmax``.

Chapter 3 introduces ``ReLU``, ``Tanh`` and ``Sigmoid`` (without a non-linearity between them, a
stack of ``Linear`` layers collapses into one); chapter 10 uses ``GELU`` in the Transformer's MLP.
Each module only calls its function in ``functional/``, where the forward and backward rules are.

Read next: ``embedding.py``.

>>> import tinygrad_edu as tg
>>> from tinygrad_edu import nn
>>> nn.Sequential(nn.Linear(2, 3), nn.GELU(approximate="tanh"), nn.Linear(3, 1))
Sequential(
  (0): Linear(in_features=2, out_features=3, bias=True)
  (1): GELU(approximate='tanh')
  (2): Linear(in_features=3, out_features=1, bias=True)
)
"""

from __future__ import annotations

from .. import functional as F
from ..tensor import Tensor
from ._checks import check_tensor
from .module import Module


class ReLU(Module):
    """``max(x, 0)``; gradient 1 where ``x > 0``, else 0. Any shape.

    ``inplace`` is PyTorch's argument with the one value supported here, False (as ``Dropout``):
    the result is always a new tensor.

    >>> import tinygrad_edu as tg
    >>> ReLU()(tg.tensor([-1.0, 2.0])).numpy().tolist()
    [0.0, 2.0]
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        if inplace:
            raise ValueError("ReLU: inplace=True is not supported; relu returns a new tensor")
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(check_tensor(self, x))


class GELU(Module):
    """``x Phi(x)``, ``Phi`` the standard normal CDF; ``approximate="tanh"`` for GPT-2's formula.

    Gradient ``Phi(x) + x phi(x)``. Any shape. See ``F.gelu``.
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(check_tensor(self, x), approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Tanh(Module):
    """``tanh(x)``; gradient ``1 - tanh(x)^2``. Any shape."""

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(check_tensor(self, x))


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``; gradient ``s (1 - s)``. Any shape."""

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(check_tensor(self, x))


class _SoftmaxBase(Module):
    """``Softmax`` and ``LogSoftmax``: ``dim`` is the axis that sums to one (PyTorch's name for
    a layer; the functions in ``F`` say ``axis``). There is no default: PyTorch's guess of the
    axis when ``dim`` is left out is deprecated there, and refused here."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        if dim is None or isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(
                f"{type(self).__name__}: dim must be an integer (the axis to normalise over), "
                f"got {dim!r}"
            )
        self.dim = dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """``exp(x) / sum(exp(x))`` along ``dim``; see ``F.softmax``.

    >>> import tinygrad_edu as tg
    >>> Softmax(dim=-1)(tg.tensor([[0.0, 0.0]])).tolist()
    [[0.5, 0.5]]
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(check_tensor(self, x), axis=self.dim)


class LogSoftmax(_SoftmaxBase):
    """``x - log(sum(exp(x)))`` along ``dim``; see ``F.log_softmax``."""

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(check_tensor(self, x), axis=self.dim)

"""Activation functions as modules, for ``Sequential``: ``ReLU``, ``GELU``, ``Tanh``, ``Sigmoid``.

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

    >>> import tinygrad_edu as tg
    >>> ReLU()(tg.tensor([-1.0, 2.0])).numpy().tolist()
    [0.0, 2.0]
    """

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

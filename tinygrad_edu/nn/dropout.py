"""``Dropout``: during training, zero random activations so no unit can rely on another.

Chapter 10 uses it in the Transformer block. It is *inverted* dropout: the kept values are scaled
by ``1 / (1 - p)`` during training, so their expected value is unchanged and evaluation (where the
layer does nothing) needs no correction. ``model.train()`` and ``model.eval()`` switch the mode.

Read next: ``transformer.py``.
"""

from __future__ import annotations

from .. import functional as F
from ..tensor import Tensor
from ._checks import check_tensor
from .module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` in training mode; scale the rest by 1/(1-p).

    Forward (training): ``y = x * m / (1 - p)`` with ``m ~ Bernoulli(1 - p)`` drawn from the
    framework's generator (``tg.manual_seed``); backward: ``grad_x = grad_out * m / (1 - p)``.
    In evaluation mode (``.eval()``) the layer returns its input unchanged. Any shape.

    >>> import tinygrad_edu as tg
    >>> from tinygrad_edu import nn
    >>> drop = nn.Dropout(p=0.5)
    >>> drop
    Dropout(p=0.5, inplace=False)
    >>> sorted(set(drop(tg.ones(100)).numpy().tolist()))   # training: dropped or doubled
    [0.0, 2.0]
    >>> drop.eval()(tg.ones(3)).numpy().tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if isinstance(p, (str, bytes)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability p must be between 0 and 1, got {p!r}")
        if inplace:
            # writing into a tensor that the graph saved for backward would corrupt its gradient
            raise ValueError("Dropout: inplace=True is not supported; dropout returns a new tensor")
        self.p = p
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        check_tensor(self, x)
        return F.dropout(x, self.p, training=self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

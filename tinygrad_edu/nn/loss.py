"""Loss functions as modules, PyTorch's ``nn.CrossEntropyLoss`` and friends: each keeps its
options and calls its function in ``functional/losses.py``, where the formulas and the checks are.

>>> import tinygrad_edu as tg
>>> from tinygrad_edu import nn
>>> criterion = nn.CrossEntropyLoss()
>>> round(criterion(tg.tensor([[0.0, 0.0]]), tg.tensor([1])).item(), 4)
0.6931
"""

from __future__ import annotations

from .. import functional as F
from ..functional._checks import check_reduction
from ..tensor import Tensor
from .module import Module


class _Loss(Module):
    """A loss module: ``reduction`` is ``'mean'`` (the default), ``'sum'`` or ``'none'``.

    Options after the first are keyword-only: PyTorch's constructors keep two deprecated
    arguments (``size_average``, ``reduce``) in their positions, so a positional call written
    for PyTorch could not mean the same here. ``weight`` (C,) rescales each class, as PyTorch;
    it is a buffer (in ``state_dict``, moved by ``.to``)."""

    def __init__(self, weight: Tensor | None = None, reduction: str = "mean"):
        super().__init__()
        check_reduction(type(self).__name__, reduction)
        self.reduction = reduction
        self.register_buffer("weight", weight)

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits against integer class targets: ``F.cross_entropy``.

    ``CrossEntropyLoss(weight=None, *, ignore_index=-100, reduction='mean', label_smoothing=0.0)``;
    called as ``criterion(input, target)`` with input (N, C) or (N, C, d1, ...) and target (N,)
    or (N, d1, ...).
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        *,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ):
        super().__init__(weight, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(
            input,
            target,
            self.ignore_index,
            self.reduction,
            self.label_smoothing,
            weight=self.weight,
        )


class NLLLoss(_Loss):
    """Negative log-likelihood of integer class targets, given log-probabilities:
    ``F.nll_loss``. ``NLLLoss(weight=None, *, ignore_index=-100, reduction='mean')``."""

    def __init__(
        self, weight: Tensor | None = None, *, ignore_index: int = -100, reduction: str = "mean"
    ):
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(input, target, self.ignore_index, self.reduction, weight=self.weight)


class MSELoss(_Loss):
    """Mean squared error ``(input - target)^2``: ``F.mse_loss``.
    ``MSELoss(*, reduction='mean')``."""

    def __init__(self, *, reduction: str = "mean"):
        super().__init__(None, reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits: ``F.binary_cross_entropy_with_logits``.
    ``BCEWithLogitsLoss(weight=None, *, reduction='mean', pos_weight=None)``; ``weight`` here
    rescales each element (broadcast against the input), as PyTorch's."""

    def __init__(self, weight: Tensor | None = None, *, reduction: str = "mean", pos_weight=None):
        super().__init__(weight, reduction)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, self.reduction, self.pos_weight
        )

"""The public name of the autograd machinery: ``tg.autograd.Function``, ``tg.autograd.no_grad``,
as PyTorch's ``torch.autograd.Function`` and ``torch.autograd.no_grad``.

Use this name in your code. The implementation is ``tensor.py``: ``Tensor``, ``Function`` and the
backward pass need each other, so they live together there (chapter 2 reads them). This module
imports them from ``tensor.py`` (the same objects, not copies) and adds nothing.
"""

from .tensor import (
    REGISTRY,
    AnomalyError,
    Function,
    backward,
    detect_anomaly,
    enable_grad,
    is_grad_enabled,
    no_grad,
)

__all__ = [
    "REGISTRY",
    "AnomalyError",
    "Function",
    "backward",
    "detect_anomaly",
    "enable_grad",
    "is_grad_enabled",
    "no_grad",
]

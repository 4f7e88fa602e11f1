"""The autograd names: ``from tinygrad_edu.autograd import Function, no_grad``.

The engine is one module, ``tensor.py``: ``Tensor``, ``Function`` and the backward pass need each
other, so they live together there (chapter 2 reads them). This module only gives their autograd
half the name that the book and PyTorch use; it imports from ``tensor.py`` and adds nothing.
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

"""tinygrad_edu: an educational, NumPy-first deep-learning framework.

Read the package in this order (it is also the order of the book's chapters, and the order in
which the modules import each other):
``backend -> tensor -> ops -> functional -> nn -> optim -> data -> models``. ``tensor`` is the
engine (``Tensor``, ``Function``, the backward pass); ``autograd`` only names its autograd half.

>>> import tinygrad_edu as tg
>>> tg.manual_seed(0)
>>> x = tg.randn(2, 3, requires_grad=True)
>>> (x * x).sum().backward()
>>> bool(((x.grad - 2 * x).abs() < 1e-6).all())
True
"""

# ruff: noqa: F401  (this module re-exports the public API)

from . import backend, functional, optim  # functional: import tinygrad_edu.functional as F
from .backend import DeviceError, manual_seed
from .io import CheckpointError, load, save
from .ops import (
    abs,
    all,
    any,
    argmax,
    argmin,
    clip,
    concat,
    concatenate,
    exp,
    expand_dims,
    flatten,
    floor_divide,
    log,
    masked_fill,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    relu,
    remainder,
    reshape,
    sigmoid,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    sum,
    swapaxes,
    tanh,
    transpose,
    tril,
    triu,
    unsqueeze,
    var,
    where,
)
from .tensor import (
    AnomalyError,
    Tensor,
    arange,
    detect_anomaly,
    enable_grad,
    full,
    full_like,
    is_grad_enabled,
    no_grad,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)

__version__ = "0.1.0"

"""``dropout`` (chapter 10): inverted dropout, composed from a random mask and a multiply."""

from __future__ import annotations

from .. import backend
from ..ops import _const
from ..tensor import Tensor
from ._checks import check_float, is_number


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by ``1/(1-p)``
    so the expected value is unchanged and evaluation needs no rescaling.

    The mask comes from the framework's generator (``tg.manual_seed``). Backward multiplies the
    gradient by the same mask. ``training=False`` or ``p=0`` returns ``x`` itself.

    >>> import tinygrad_edu as tg
    >>> dropout(tg.ones(4), p=0.5, training=False).numpy().tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    check_float("dropout", "input", x)
    if not is_number(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return x
    xp = backend.xp_of(x.data)
    if p == 1.0:
        return x * _const(xp.zeros_like(x.data))
    keep = backend.rand(x.shape, x.dtype, x.device) >= p
    return x * _const(xp.astype(keep, x.data.dtype) * (1.0 / (1.0 - p)))

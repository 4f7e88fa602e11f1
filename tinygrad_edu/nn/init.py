"""Initialisation helpers with PyTorch's names: each fills a tensor in place and returns it.

Chapter 3 ("Dense layers and MLPs") explains why the starting values matter: if every layer
multiplies the size of its signal by a factor ``g``, a deep stack multiplies it by ``g ** depth``,
so activations (and gradients) vanish or explode. The helpers below pick the spread of the
random weights from the layer's *fan-in* (inputs per output) and *fan-out* so that ``g`` is close
to 1:

=====================  ===========================================================================
helper                 draws from
=====================  ===========================================================================
``uniform_(t, a, b)``  U(a, b)
``normal_(t, m, s)``   N(m, s^2)
``zeros_``, ``ones_``  constants (``constant_(t, v)`` for any value)
``kaiming_uniform_``   U(-bound, bound), ``bound = gain * sqrt(3 / fan)`` (He et al., 2015)
``kaiming_normal_``    N(0, std^2), ``std = gain / sqrt(fan)``
``xavier_uniform_``    U(-bound, bound), ``bound = gain * sqrt(6 / (fan_in + fan_out))`` (Glorot
                       and Bengio, 2010)
``xavier_normal_``     N(0, std^2), ``std = gain * sqrt(2 / (fan_in + fan_out))``
=====================  ===========================================================================

For a weight of shape (out, in, *kernel): ``fan_in = in * prod(kernel)`` and
``fan_out = out * prod(kernel)``. PyTorch's ``nn.Linear`` and ``nn.Conv1d`` call
``kaiming_uniform_(w, a=sqrt(5))``, whose bound simplifies to ``1 / sqrt(fan_in)``; the layers of
this package do the same, so a freshly built model starts from the same distribution as PyTorch's.

Every number comes from the framework's generator (``tg.manual_seed``): it is drawn on the host in
float64, then cast and moved to the tensor's dtype and device, so a seed gives the same model on
every device.

Read next: ``activation.py``.

>>> import math
>>> import tinygrad_edu as tg
>>> from tinygrad_edu.nn import init
>>> tg.manual_seed(0)
>>> w = init.kaiming_uniform_(tg.zeros(64, 100), a=math.sqrt(5))
>>> bool(w.abs().max().item() <= 1 / math.sqrt(100))
True
"""

from __future__ import annotations

import math

from .. import backend
from ..tensor import Tensor

__all__ = [
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def _fill(tensor: Tensor, host_values) -> Tensor:
    """Replace ``tensor.data`` with host values cast to its dtype on its device (no graph)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init: expected a Tensor to fill, got {type(tensor).__name__}")
    tensor.data = backend.asarray(host_values, dtype=tensor.dtype, device=tensor.device)
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill ``tensor`` with samples of U(a, b)."""
    return _fill(tensor, backend.rng().uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill ``tensor`` with samples of N(mean, std^2)."""
    return _fill(tensor, backend.rng().normal(mean, std, size=tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill ``tensor`` with the value ``val``."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init: expected a Tensor to fill, got {type(tensor).__name__}")
    xp = backend.xp_of(tensor.data)
    tensor.data = xp.full(tensor.shape, val, dtype=tensor.data.dtype)
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with zeros."""
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with ones."""
    return constant_(tensor, 1.0)


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape (out, in, *kernel)."""
    if tensor.ndim < 2:
        raise ValueError(
            f"init: fan in and fan out need a tensor with at least 2 dimensions, got shape "
            f"{tensor.shape}"
        )
    receptive_field = 1
    for s in tensor.shape[2:]:
        receptive_field *= s
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def layer_default_(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's default for Linear and Conv layers: ``kaiming_uniform_(weight, a=sqrt(5))``, which
    is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the bias uniform in the same range."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _calculate_fan_in_and_fan_out(weight)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor by which ``nonlinearity`` shrinks the spread of its input, inverted.

    ``linear``, ``conv1d`` and ``sigmoid``: 1; ``tanh``: 5/3; ``relu``: sqrt(2) (half the inputs are
    zeroed, halving the variance); ``leaky_relu`` with slope ``a``: sqrt(2 / (1 + a^2)).
    """
    if nonlinearity in ("linear", "conv1d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    raise ValueError(
        f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected 'linear', 'conv1d', "
        "'sigmoid', 'tanh', 'relu' or 'leaky_relu'"
    )


def _kaiming_std(tensor, a, mode, nonlinearity) -> float:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Tensor:
    """He initialisation, uniform: U(-bound, bound) with ``bound = sqrt(3) * gain / sqrt(fan)``.

    ``a`` is the negative slope of the leaky ReLU that follows (``gain = sqrt(2 / (1 + a^2))``).
    With ``a = sqrt(5)``, as ``nn.Linear`` uses, ``bound = 1 / sqrt(fan_in)``.
    """
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Tensor:
    """He initialisation, normal: N(0, std^2) with ``std = gain / sqrt(fan)``."""
    # --- exercise 3.4: He initialisation, normal ---
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity))
    # --- end exercise ---


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot initialisation, uniform: U(-bound, bound), ``bound = gain sqrt(6 / (fan_in +
    fan_out))``.

    It keeps the variance of both the forward signal and the backward gradient about constant.
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot initialisation, normal: N(0, std^2), ``std = gain sqrt(2 / (fan_in + fan_out))``."""
    # --- exercise 3.5: Glorot initialisation, normal ---
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))
    # --- end exercise ---

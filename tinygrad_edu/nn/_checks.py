"""Input checks shared by the layers, so that every error names the layer and both sizes.

A shape error deep inside a matmul says ``(3, 5) @ (4, 2)``; the same mistake caught at the layer
says ``Linear(in_features=4, out_features=2, bias=True): expected input with last dimension 4, got
shape (3, 5)``, which points at the line of the model to fix.
"""

from __future__ import annotations

from ..backend import DeviceError, is_floating
from ..tensor import Tensor


def layer_name(module) -> str:
    """The layer as PyTorch prints it, without children: ``Linear(in_features=4, ...)``."""
    return f"{type(module).__name__}({module.extra_repr()})"


def check_tensor(module, x, name: str = "input") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{layer_name(module)}: expected a Tensor as {name}, got {type(x).__name__}; "
            "wrap arrays with tg.tensor(...)"
        )
    return x


def check_ndim(module, x: Tensor, allowed: dict, name: str = "input") -> None:
    """``allowed`` maps a rank to its layout, e.g. ``{2: "(C, L)", 3: "(N, C, L)"}``."""
    if x.ndim not in allowed:
        options = " or ".join(f"{n}-D {layout}" for n, layout in allowed.items())
        raise ValueError(f"{layer_name(module)}: expected {options} {name}, got shape {x.shape}")


def check_size(module, x: Tensor, axis: int, expected: int, what: str, name: str = "input"):
    """``x.shape[axis]`` must be ``expected``; ``what`` says it with a ``{}`` for the number:
    ``"last dimension {}"``, ``"{} channels (axis -2)"``."""
    if x.ndim == 0 or x.shape[axis] != expected:
        raise ValueError(
            f"{layer_name(module)}: expected {name} with {what.format(expected)}, "
            f"got shape {x.shape}"
        )


def check_shape(module, x: Tensor, expected: tuple, layout: str, name: str = "input") -> None:
    """The whole shape must be ``expected``; ``layout`` names its axes: ``"(batch, hidden)"``."""
    if x.shape != expected:
        raise ValueError(
            f"{layer_name(module)}: expected {name} of shape {expected} {layout}, "
            f"got shape {x.shape}"
        )


def check_floating(module, x: Tensor, name: str = "input") -> None:
    """Layers that compute on vectors need floating-point input (integer ids go through an
    ``Embedding`` first)."""
    if not is_floating(x.dtype):
        raise TypeError(
            f"{layer_name(module)}: expected a floating-point {name}, got dtype {x.dtype} "
            f"(shape {x.shape}); token ids go through an Embedding first"
        )


def check_dtype(module, x: Tensor, dtype: str, name: str = "input") -> None:
    """The input's dtype must be the parameters' (mixing would silently promote, or fail inside an
    op with no word of which layer was fed what)."""
    if x.dtype != dtype:
        # a layer can be cast to another float dtype only: for integer input, convert the input
        other = f" or the layer with .astype({x.dtype!r})" if is_floating(x.dtype) else ""
        raise TypeError(
            f"{layer_name(module)}: expected {name} of dtype {dtype} (the layer's parameters), got "
            f"{x.dtype} (shape {x.shape}); convert the input with .astype({dtype!r}){other}"
        )


def check_device(module, x: Tensor, device: str, name: str = "input") -> None:
    """The input must live where the layer's parameters live."""
    if x.device != device:
        raise DeviceError(
            f"{layer_name(module)}: {name} is on device {x.device!r} but the layer's parameters "
            f"are on {device!r}; move the input with .to({device!r}) or the model with "
            f".to({x.device!r})"
        )

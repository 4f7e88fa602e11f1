"""Argument checks shared by the functions of ``functional``: each error names the function, the
argument, its dtype or shape, and what was expected.
"""

from __future__ import annotations

import numbers

from .. import backend
from ..tensor import Tensor


def check_tensor(op: str, name: str, x) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__}")
    return x


def check_float(op: str, name: str, x) -> Tensor:
    check_tensor(op, name, x)
    if not backend.is_floating(x.dtype):
        raise TypeError(f"{op}: {name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def check_same_dtype(op: str, x: Tensor, **others) -> None:
    """Each tensor of ``others`` (None skipped) is a floating-point Tensor of ``x``'s dtype: mixing
    float32 and float64 would silently promote the result (PyTorch refuses)."""
    for name, t in others.items():
        if t is not None and check_float(op, name, t).dtype != x.dtype:
            raise TypeError(
                f"{op}: {name} has dtype {t.dtype} (shape {t.shape}) but input has {x.dtype} "
                f"(shape {x.shape}); convert one with .astype({x.dtype!r})"
            )


def check_int(op: str, name: str, x) -> Tensor:
    check_tensor(op, name, x)
    if not backend.is_integer(x.dtype):
        raise TypeError(
            f"{op}: {name} must hold integer indices, got dtype {x.dtype} (shape {x.shape}); "
            "convert with .astype('int64')"
        )
    return x


def is_number(value) -> bool:
    """A real Python or NumPy number; a bool, a string or None is not."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int_arg(op: str, name: str, value) -> int:
    """An integer option (an index, a count); a bool or a float is refused, as PyTorch does."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    return int(value)


def check_reduction(op: str, reduction: str) -> None:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def check_axis(op: str, axis: int, ndim: int) -> int:
    """``axis`` as a non-negative index into ``ndim`` axes (a 0-d tensor counts as one axis)."""
    if isinstance(axis, bool) or not hasattr(axis, "__index__"):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dimensions")
    return axis % ndim if ndim else 0


def check_range(op: str, ids: Tensor, n: int, what: str, ignore_index=None) -> None:
    """Raise a clear error naming the first id outside ``[0, n)`` (``ignore_index`` allowed)."""
    if ids.size == 0:
        return
    xp = backend.xp_of(ids.data)
    bad = (ids.data < 0) | (ids.data >= n)
    if ignore_index is not None:
        bad = bad & (ids.data != ignore_index)
    if bool(xp.any(bad)):
        too_big = bad & (ids.data >= n)
        if bool(xp.any(too_big)):  # report the largest offender, else the most negative one
            value = int(xp.max(xp.where(too_big, ids.data, 0)))
        else:
            value = int(xp.min(xp.where(bad, ids.data, 0)))
        extra = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
        raise IndexError(
            f"{op}: index {value} is out of range for {what}={n} (valid: 0..{n - 1}{extra})"
        )

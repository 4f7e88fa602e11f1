"""What the public functions of ``ops.py`` check and convert before they apply a Function.

Kept out of ``ops.py`` so that the math reads in one sitting: operands converted to Tensors
(``_tensor``, ``_operand``), PyTorch's type promotion (``_floating``, ``_promote``), broadcast
shapes, axes and reshape targets normalised and checked, and indices turned into a form every
array library accepts (``_normalize_key``). Every error names the op and the shapes involved.
"""

from __future__ import annotations

import math
import operator

from . import backend
from .tensor import Tensor


def _tensor(x, like: Tensor | None = None, op: str = "") -> Tensor:
    """``x`` as a Tensor: arrays and (nested) lists are converted, on ``like``'s device."""
    if isinstance(x, Tensor):
        return x
    if backend.is_array(x) or isinstance(x, list):
        return Tensor(x, device=like.device if like is not None else None)
    raise TypeError(f"{op or 'op'}: expected a Tensor, an array or a list, got {type(x).__name__}")


def _operand(x, like: Tensor, op: str = "op"):
    """Python numbers (and NumPy scalars, as Python numbers) stay constants keeping the tensor's
    dtype; arrays, lists become Tensors."""
    if isinstance(x, Tensor):
        return x
    x = backend.python_scalar(x)
    if isinstance(x, (int, float, bool)):
        return x
    if backend.is_array(x) or isinstance(x, (list, tuple)):
        return Tensor(x, device=like.device)
    raise TypeError(
        f"{op}: unsupported operand type {type(x).__name__}; expected a Tensor, an array, "
        "a list or a Python number"
    )


def _binary(cls, name, a, b, true_div=False):
    """Apply a two-input op after converting and promoting its operands, with clear errors."""
    # The common case first, because it runs for every operator: a float tensor with a Python
    # number, or with a tensor of the same array type and dtype, needs no conversion and no
    # promotion. (The dtype test and the try are written here rather than in two helpers of
    # their own: a scalar ``x * 2.0`` without a graph went from 1.68 to 1.55 us with this and the
    # order of the tests in Function.apply, benchmarks/overhead.py.)
    if isinstance(a, Tensor):
        dtype = a.data.dtype
        # keyed by (type, dtype): dtypes of different libraries must not be compared
        is_float = _float_dtypes.get((type(dtype), dtype))
        if is_float is None:
            is_float = _float_dtypes[(type(dtype), dtype)] = backend.is_floating(dtype)
        tb = type(b)
        ready = is_float and (
            tb is float
            or tb is int
            or (isinstance(b, Tensor) and type(b.data) is type(a.data) and b.data.dtype == dtype)
        )
    else:
        ready = False
    if not ready:
        a, b = _converted(name, a, b, true_div)
    try:
        return cls.apply(a, b)
    except (ValueError, TypeError) as e:
        raise _binary_error(name, a, b, e) from e


_float_dtypes: dict = {}  # (type(dtype), dtype) -> is it a float dtype (the check above, cached)


def _converted(name, a, b, true_div):
    """``_binary``'s operands as Tensors or Python numbers, promoted to a common dtype."""
    a = a if isinstance(a, Tensor) else _operand(a, b, name)
    b = _operand(b, a, name)
    if true_div:
        a, b = _floating(a), _floating(b)
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            a, b = _promote(a, b)
        elif type(b) is float:
            a = _floating(a)
    elif type(a) is float:
        b = _floating(b)
    return a, b


def _binary_error(name, a, b, e):
    """The error of a two-input op that failed inside its forward, with the shapes involved."""
    sa, sb = (
        tuple(getattr(a.data if isinstance(a, Tensor) else a, "shape", ())),
        tuple(getattr(b.data if isinstance(b, Tensor) else b, "shape", ())),
    )
    if _broadcast_shape(sa, sb) is None:
        return ValueError(
            f"{name}: shapes {sa} and {sb} cannot be broadcast together "
            "(trailing dimensions must be equal or 1)"
        )
    return type(e)(f"{name}: {e} (shapes {sa} and {sb})")


def _floating(a):
    """Integer and boolean tensors become float32 where the result is a float: ``ints * 0.5``,
    ``ints / 2``, ``exp(ints)`` (PyTorch's rule; NumPy would give float64, and the array API
    standard leaves it undefined)."""
    if isinstance(a, Tensor) and not backend.is_floating(a.data.dtype):
        return a.astype("float32")
    return a


def _promote(a: Tensor, b: Tensor):
    """A float tensor meets an integer or boolean one: the integers become that float.

    This is PyTorch's rule, and it keeps float32 float32 (NumPy would give float64 for
    float32 + int64, and the array API standard leaves mixed kinds undefined).
    """
    if type(a.data) is not type(b.data) or a.data.dtype == b.data.dtype:
        return a, b  # nothing to do (or two devices: the op itself reports that)
    fa, fb = backend.is_floating(a.dtype), backend.is_floating(b.dtype)
    if fa and not fb:
        b = b.astype(a.dtype)
    elif fb and not fa:
        a = a.astype(b.dtype)
    return a, b


def _broadcast_shape(sa: tuple, sb: tuple):
    out = []
    for x, y in zip(
        reversed((1,) * (len(sb) - len(sa)) + sa),
        reversed((1,) * (len(sa) - len(sb)) + sb),
        strict=False,
    ):
        if x != y and x != 1 and y != 1:
            return None
        out.append(y if x == 1 else x)  # 1 stretches to the other size, even to 0
    return tuple(reversed(out))


def _axes(axis, shape: tuple, op: str) -> tuple:
    """``axis`` (None, an int or a tuple, negatives allowed) as sorted non-negative axes."""
    ndim = len(shape)
    if axis is None:
        return tuple(range(ndim))
    given = axis
    if not isinstance(axis, (tuple, list)):
        axis = (axis,)
    out = []
    for ax in axis:
        try:
            if isinstance(ax, bool):  # True is not axis 1
                raise TypeError
            ax = operator.index(ax)
        except TypeError:
            raise TypeError(
                f"{op}: axis must be None, an int or a tuple of ints, got {given!r}"
            ) from None
        if not -ndim <= ax < ndim:
            raise ValueError(
                f"{op}: axis {ax} is out of range for a tensor of shape {shape} "
                f"({ndim} dimensions: axes {-ndim}..{ndim - 1})"
            )
        out.append(ax % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: axis {axis} repeats an axis of a tensor of shape {shape}")
    return tuple(sorted(out))


def _reshape_target(shape_in: tuple, shape) -> tuple:
    try:
        if any(isinstance(s, bool) for s in shape):  # True is not a size of 1
            raise TypeError
        shape = tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError(f"reshape: the new shape must hold integers, got {shape}") from None
    size = math.prod(shape_in)
    if shape.count(-1) > 1:
        raise ValueError(f"reshape: only one dimension can be -1, got {shape}")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or size % known:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {shape_in} ({size} elements) "
                f"into {shape}"
            )
        shape = tuple(size // known if s == -1 else s for s in shape)
    if math.prod(shape) != size or min(shape, default=0) < 0:
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {shape_in} ({size} elements) into "
            f"{shape} ({math.prod(shape)} elements)"
        )
    return shape


def _slice_parts(k: slice) -> tuple:
    return k.start, k.stop, k.step


def _clamp_slice(k: slice, n: int) -> slice:
    """The same selection as ``k`` on an axis of size ``n``, with bounds inside the axis.

    Python and NumPy clamp ``x[:10]`` on a shorter axis; the array API leaves out-of-bounds
    slice bounds unspecified (array-api-strict rejects them), so they are clamped here.
    """
    if k.start is None and k.stop is None:
        return k
    start, stop, step = k.indices(n)  # clamped, but -1 means "before the first" for step < 0
    if step < 0:
        if start < 0:
            return slice(0, 0, 1)  # empty
        return slice(start, None if stop < 0 else stop, step)
    return slice(start, stop, step)


def _normalize_key(key, shape: tuple, device: str | None = None) -> tuple:
    """Turn an index into a tuple the array API accepts everywhere: Tensors -> arrays,
    lists -> int64/bool arrays, slice bounds clamped to the axis, and a trailing ``...`` so that
    ``x[idx]`` means ``x[idx, ...]``."""
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    for k in key:
        if isinstance(k, Tensor):
            k = k.data
        elif isinstance(k, list):  # an empty list selects nothing: int64, not NumPy's float64
            k = backend.asarray(k, dtype=None if k else "int64", device=device)
        if backend.is_array(k):
            if device is not None:
                k = backend.to_device(k, device)
            name = backend.dtype_name(k.dtype)
            if not (backend.is_integer(name) or name == "bool"):
                raise TypeError(
                    f"index: index arrays must hold integers or booleans, got dtype {name}; "
                    "convert with .astype('int64')"
                )
        elif isinstance(k, slice):
            if not all(v is None or hasattr(v, "__index__") for v in _slice_parts(k)):
                raise TypeError(f"index: slice bounds must be integers or None, got {k}")
        elif isinstance(k, bool) or not (k is None or k is Ellipsis or hasattr(k, "__index__")):
            raise TypeError(
                "index: indices must be integers, slices, None, ... or integer/boolean arrays, "
                f"got {type(k).__name__} {k!r}"
            )
        out.append(k)
    # the axis of each slice: None takes no axis, a boolean mask k.ndim, "..." the rest
    used = sum(
        (k.ndim if backend.dtype_name(k.dtype) == "bool" else 1)
        if backend.is_array(k)
        else (0 if k is None or k is Ellipsis else 1)
        for k in out
    )
    axis = 0
    for i, k in enumerate(out):
        if backend.is_array(k):
            axis += k.ndim if backend.dtype_name(k.dtype) == "bool" else 1
        elif k is Ellipsis:
            axis += max(len(shape) - used, 0)
        elif k is not None:
            if isinstance(k, slice) and axis < len(shape):
                out[i] = _clamp_slice(k, shape[axis])
            axis += 1
    if not any(k is Ellipsis for k in out):
        out.append(Ellipsis)
    return tuple(out)

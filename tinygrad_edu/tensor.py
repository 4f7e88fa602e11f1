"""``Tensor``: an array, the gradient it will receive, and the operation that made it.

Chapter 1 introduces the array side (dtype, device), chapter 2 the gradient side. Operators and
methods here are thin: each forwards to a function of ``ops.py`` (primitives with their backward)
or ``functional.py`` (composites), so this file reads as the public surface of the engine.

Conventions: array-level names are NumPy's (``axis``, ``keepdims``, ``reshape``, ``transpose``);
Python numbers and lists become float32 (integers int64, booleans bool); an array keeps its dtype.

Read next: ``autograd.py``.

>>> import tinygrad_edu as tg
>>> x = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
>>> y = (x * x).sum()
>>> y.backward()
>>> x.grad
tensor([[2., 4.],
        [6., 8.]])
"""

from __future__ import annotations

import numpy as _np  # only for converting Python data at the boundary and for printing

from . import backend
from .autograd import backward as _backward


def _check_same_device(op: str, a: Tensor, b: Tensor) -> None:
    da, db = a.device, b.device
    if da != db:
        raise backend.DeviceError(
            f"{op}: tensors are on different devices, {da!r} and {db!r} "
            f"(shapes {a.shape} and {b.shape}); move one with .to({da!r}) or .to({db!r})"
        )


def _default_dtype_for(data) -> str | None:
    """Python numbers and lists: float -> float32, int -> int64, bool -> bool."""
    probe = data
    while isinstance(probe, (list, tuple)) and len(probe) > 0:
        probe = probe[0]
    if isinstance(probe, bool):
        return "bool"
    if isinstance(probe, int):
        # a list may mix ints and floats: let NumPy decide, then map float64 -> float32
        kind = _np.asarray(data).dtype.kind
        return "int64" if kind in "iu" else "float32"
    return "float32"


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    ``Tensor(data, requires_grad=False, dtype=None, device=None)``: ``data`` is a Python number,
    a (nested) list, an array of any device, or another Tensor (its data is shared, not its graph).
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "__weakref__")
    __array_priority__ = 1000  # so that ndarray * Tensor calls Tensor.__rmul__

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        if isinstance(data, Tensor):
            # a Tensor keeps its device (only raw host arrays follow the default device below)
            device = data.device if device is None else device
            data = data.data
        if backend.is_array(data):
            if device is not None:
                data = backend.to_device(data, device)
            elif (
                backend.device_of(data) != backend.default_device()
                and backend.device_of(data) == "cpu"
            ):
                # host data (NumPy) follows the default device, so tests and users can write
                # Tensor(np_array) and get a tensor where the rest of their model lives
                data = backend.to_device(data, backend.default_device())
            if dtype is not None:
                data = backend.asarray(data, dtype, backend.device_of(data))
        else:
            if data is None or isinstance(data, (str, bytes, dict, set)):
                raise TypeError(
                    f"tensor: cannot make a tensor from {type(data).__name__}; expected a "
                    "number, a (nested) list of numbers or an array"
                )
            if dtype is None:
                dtype = _default_dtype_for(data)
            try:
                host = _np.asarray(data, dtype=backend.dtype_name(dtype))
            except (ValueError, TypeError) as e:  # ragged lists, strings inside lists ...
                raise ValueError(
                    f"tensor: cannot make a {backend.dtype_name(dtype)} tensor from this data "
                    f"(nested lists must be rectangular and hold numbers): {e}"
                ) from e
            data = backend.asarray(host, None, device)
        self.data = data
        self.grad = None
        self._ctx = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, requires_grad, ctx):
        """Fast constructor used by ops: no checks, no conversion."""
        t = object.__new__(cls)
        t.data = data
        t.grad = None
        t.requires_grad = requires_grad
        t._ctx = ctx
        return t

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not backend.is_floating(self.data.dtype):
            raise TypeError(
                f"requires_grad=True needs a floating-point tensor, got dtype {self.dtype} "
                f"(shape {self.shape}); only floats have gradients. Convert first, "
                "e.g. x.astype('float32')"
            )
        self.requires_grad = requires_grad
        return self

    # ---- properties -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        n = 1
        for s in self.data.shape:
            n *= s
        return n

    @property
    def dtype(self) -> str:
        """The dtype's name, the same on every device: ``"float32"``, ``"int64"``, ``"bool"``."""
        return backend.dtype_name(self.data.dtype)

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    # ---- conversion -------------------------------------------------------------------------
    def numpy(self) -> _np.ndarray:
        """The data as a NumPy array on the host (a copy when the tensor is not on the CPU)."""
        return backend.to_numpy(self.data)

    def item(self):
        """The single value of a one-element tensor, as a Python number."""
        if self.size != 1:
            raise ValueError(f"item(): only one-element tensors convert, this one has {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor._make(self.data, False, None)

    def to(self, device=None, dtype=None) -> Tensor:
        """This tensor on ``device`` and/or cast to ``dtype`` (itself if nothing changes), as
        PyTorch's ``t.to(device, dtype)``; ``t.to("float64")`` (a dtype alone) casts. A move
        makes a leaf; a cast between float dtypes is differentiable (``astype``)."""
        if dtype is None and device is not None:
            name = device if isinstance(device, str) else backend.dtype_name(device)
            if backend.is_floating(name) or backend.is_integer(name) or name == "bool":
                device, dtype = None, device  # t.to("float64"), t.to(np.float64): a dtype alone
        out = self
        if device is not None:
            device = backend.get_device(device)
            if device != self.device:
                out = Tensor._make(backend.to_device(self.data, device), self.requires_grad, None)
        return out if dtype is None else out.astype(dtype)

    def astype(self, dtype) -> Tensor:
        from . import ops

        return ops.astype(self, dtype)

    def float(self) -> Tensor:
        return self.astype("float32")

    def double(self) -> Tensor:
        return self.astype("float64")

    def half(self) -> Tensor:
        return self.astype("float16")

    def long(self) -> Tensor:
        return self.astype("int64")

    def backward(self, gradient=None, retain_graph=None, create_graph=False) -> None:
        """Compute gradients of this tensor with respect to every leaf that requires grad."""
        _backward(self, gradient, retain_graph, create_graph)

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        body = _np.array2string(
            self.numpy(), separator=", ", prefix="tensor(", precision=4, suppress_small=True
        )
        extras = []
        if self.dtype not in ("float32", "int64", "bool"):
            extras.append(f"dtype={self.dtype}")
        if self.device != "cpu":
            extras.append(f"device={self.device!r}")
        if self._ctx is not None:
            extras.append(f"grad_fn={type(self._ctx).__name__}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __hash__(self) -> int:
        return id(self)

    def __setitem__(self, key, value) -> None:
        """In-place write into the data; only for tensors that are not part of a graph."""
        if self.requires_grad and _grad_enabled():
            raise RuntimeError(
                "__setitem__: in-place writes into a tensor that requires grad would corrupt "
                "its gradient; write under tg.no_grad() or build a new tensor (e.g. with where)"
            )
        from .ops import _normalize_key

        value = value.data if isinstance(value, Tensor) else value
        try:
            self.data[_normalize_key(key, self.shape, self.device)] = value
        except (IndexError, ValueError, TypeError) as e:
            raise type(e)(f"__setitem__: writing into a tensor of shape {self.shape}: {e}") from e

    # ---- operators: each forwards to ops.py (primitives) or functional.py ------------------------
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __pow__(self, other):
        return ops.pow(self, other)

    def __rpow__(self, other):
        return ops.pow(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(ops._tensor(other, self), self)

    def __getitem__(self, key):
        return ops.getitem(self, key)

    def __eq__(self, other):  # elementwise, like NumPy and PyTorch
        return ops.compare(self, other, "eq")

    def __ne__(self, other):
        return ops.compare(self, other, "ne")

    def __lt__(self, other):
        return ops.compare(self, other, "lt")

    def __le__(self, other):
        return ops.compare(self, other, "le")

    def __gt__(self, other):
        return ops.compare(self, other, "gt")

    def __ge__(self, other):
        return ops.compare(self, other, "ge")

    # ---- elementwise functions ----------------------------------------------------------------
    def exp(self):
        return ops.exp(self)

    def log(self):
        return ops.log(self)

    def sqrt(self):
        return ops.sqrt(self)

    def tanh(self):
        return ops.tanh(self)

    def sigmoid(self):
        return ops.sigmoid(self)

    def relu(self):
        return ops.relu(self)

    def abs(self):
        return ops.abs(self)

    def clip(self, min=None, max=None):  # noqa: A002 - NumPy's names
        return ops.clip(self, min, max)

    def maximum(self, other):
        return ops.maximum(self, other)

    def minimum(self, other):
        return ops.minimum(self, other)

    # ---- reductions -----------------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        return ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return ops.mean(self, axis, keepdims)

    def var(self, axis=None, keepdims=False, ddof=0):
        return ops.var(self, axis, keepdims, ddof)

    def max(self, axis=None, keepdims=False):
        return ops.max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return ops.min(self, axis, keepdims)

    def argmax(self, axis=None, keepdims=False):
        return ops.argmax(self, axis, keepdims)

    def argmin(self, axis=None, keepdims=False):
        return ops.argmin(self, axis, keepdims)

    def any(self, axis=None, keepdims=False):
        return ops.any(self, axis, keepdims)

    def all(self, axis=None, keepdims=False):
        return ops.all(self, axis, keepdims)

    # ---- shape ----------------------------------------------------------------------------------
    def reshape(self, *shape):
        return ops.reshape(self, *shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return ops.transpose(self, axes or None)

    def swapaxes(self, axis1, axis2):
        return ops.swapaxes(self, axis1, axis2)

    @property
    def T(self):
        """All axes reversed, as NumPy's ``.T``."""
        return ops.transpose(self)

    @property
    def mT(self):
        """The last two axes swapped (a batch of matrices transposed)."""
        return ops.swapaxes(self, -1, -2)

    def broadcast_to(self, shape):
        return ops.broadcast_to(self, shape)

    def expand(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.broadcast_to(self, shape)

    def squeeze(self, axis=None):
        return ops.squeeze(self, axis)

    def unsqueeze(self, axis):
        return ops.unsqueeze(self, axis)

    def flatten(self, start_axis=0, end_axis=-1):
        return ops.flatten(self, start_axis, end_axis)

    def split(self, indices_or_sections, axis=0):
        return ops.split(self, indices_or_sections, axis)

    def masked_fill(self, mask, value):
        return ops.masked_fill(self, mask, value)

    def tril(self, k=0):
        return ops.tril(self, k)

    def triu(self, k=0):
        return ops.triu(self, k)


def _grad_enabled() -> bool:
    from .autograd import is_grad_enabled

    return is_grad_enabled()


# ---- creation helpers ---------------------------------------------------------------------------


def tensor(data, requires_grad=False, dtype=None, device=None) -> Tensor:
    """Make a Tensor (same as the constructor)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def _shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _full(shape, value, dtype, device, requires_grad) -> Tensor:
    device = backend.get_device(device)
    xp = backend.namespace(device)
    data = xp.full(shape, value, dtype=backend.resolve_dtype(dtype or "float32", device))
    return Tensor._make(data, False, None).requires_grad_(requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _full(_shape(shape), 0, dtype, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _full(_shape(shape), 1, dtype, device, requires_grad)


def full(shape, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return _full(shape, fill_value, dtype, device, requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return _full(t.shape, 0, dtype or t.dtype, t.device, requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return _full(t.shape, 1, dtype or t.dtype, t.device, requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, requires_grad=False) -> Tensor:
    return _full(t.shape, fill_value, dtype or t.dtype, t.device, requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None) -> Tensor:
    """Like ``np.arange``; integers give int64, floats float32."""
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        dtype = "int64" if all(isinstance(v, int) for v in (start, stop, step)) else "float32"
    device = backend.get_device(device)
    xp = backend.namespace(device)
    data = xp.arange(start, stop, step, dtype=backend.resolve_dtype(dtype, device))
    return Tensor._make(data, False, None)


def randn(*shape, dtype="float32", device=None, requires_grad=False) -> Tensor:
    """Standard normal samples from the framework's seeded generator (``tg.manual_seed``)."""
    data = backend.randn(_shape(shape), dtype, device)
    return Tensor._make(data, False, None).requires_grad_(requires_grad)


def rand(*shape, dtype="float32", device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1) from the framework's seeded generator."""
    data = backend.rand(_shape(shape), dtype, device)
    return Tensor._make(data, False, None).requires_grad_(requires_grad)


def randint(low, high, shape, device=None) -> Tensor:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return Tensor._make(backend.randint(low, high, shape, device), False, None)


def randn_like(t: Tensor, requires_grad=False) -> Tensor:
    return randn(t.shape, dtype=t.dtype, device=t.device, requires_grad=requires_grad)


def rand_like(t: Tensor, requires_grad=False) -> Tensor:
    return rand(t.shape, dtype=t.dtype, device=t.device, requires_grad=requires_grad)


from . import autograd as _autograd  # noqa: E402
from . import ops  # noqa: E402  (ops imports Tensor, so it comes after the class)

_autograd.Tensor = Tensor
_autograd._check_same_device = _check_same_device

"""The engine: ``Tensor``, ``Function`` and the backward pass, in one module.

A ``Tensor`` is an array, the gradient it will receive, and the ``Function`` that made it; a
``Function`` records the graph when it is applied; the backward pass walks that graph. The three
need each other, so they live together here (as in DeZero's ``core.py``), and every other module
of the package is built on this one. ``tinygrad_edu.autograd`` gives the autograd half its usual
names (``from tinygrad_edu.autograd import Function, no_grad``).

Chapter 1 ("Arrays and devices") reads the array side of ``Tensor`` (dtype, device, the creation
helpers), chapter 2 ("Autograd") the rest. Tensor's operators and methods are thin: each forwards
to a function of ``ops.py`` (every primitive op with its backward), which is imported at the end
of this file, once the classes it builds on exist.

Conventions: array-level names are NumPy's (``axis``, ``keepdims``, ``reshape``, ``transpose``);
Python numbers and lists become float32 (integers int64, booleans bool); an array keeps its dtype.

Every differentiable operation is a subclass of ``Function`` with two methods:

* ``forward(self, *inputs)`` computes the result from plain arrays (or Python numbers) and may keep
  what backward needs on ``self``;
* ``backward(self, grad_out)`` receives the gradient of the final scalar with respect to the
  output (a ``Tensor``) and returns one gradient per input (``None`` for inputs that need none).

A Function may have several outputs: ``forward`` returns a tuple of arrays, ``apply`` a tuple of
Tensors, and ``backward(self, grad_h, grad_c)`` receives one gradient per output. An output that
does not lead to the final scalar gets a gradient of zeros, so a backward rule never tests for
``None`` (it is written once, for the case where every output is used).

Every gradient a backward returns is checked against its input: a wrong shape (a forgotten
``unbroadcast``), a non-float dtype or another device is an error that names the op, the input
and both shapes; a float gradient of another float dtype is cast to the input's dtype.

``backward`` is written with Tensor operations, so with ``create_graph=True`` the gradient itself
is recorded in a graph and can be differentiated again (second derivatives). Without it, backward
runs under ``no_grad()`` and those operations take the cheap path that records nothing.

The backward pass visits the graph in reverse topological order: it counts how many ops consume
each tensor, and runs a tensor's backward once all of them have passed their gradient back
(Kahn's algorithm). Both walks are iterative: a recursive one overflows Python's stack on a
1,500-op chain such as an unrolled RNN.

Read next: ``ops.py``.

>>> import tinygrad_edu as tg
>>> x = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
>>> y = (x * x).sum()
>>> y.backward()
>>> x.grad
tensor([[2., 4.],
        [6., 8.]])
"""

from __future__ import annotations

import contextlib
import threading

import numpy as _np  # only for converting Python data at the boundary and for printing

from . import backend

# =================================================================================================
# Tensor
# =================================================================================================


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

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_written_at", "__weakref__")
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
            try:
                if dtype is None:
                    dtype = _default_dtype_for(data)
                host = _np.asarray(data, dtype=backend.dtype_name(dtype))
            except (ValueError, TypeError) as e:  # ragged lists, strings inside lists ...
                kind = "" if dtype is None else f"{backend.dtype_name(dtype)} "
                raise ValueError(
                    f"tensor: cannot make a {kind}tensor from this data "
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
        return self.data.shape  # a tuple in every array library (the array API standard's rule)

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
        backward(self, gradient, retain_graph, create_graph)  # the backward pass, below

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
        ops.setitem(self, key, value)

    # ---- operators: each forwards to ops.py -----------------------------------------------------
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

    def __floordiv__(self, other):
        return ops.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return ops.floor_divide(other, self)

    def __mod__(self, other):
        return ops.remainder(self, other)

    def __rmod__(self, other):
        return ops.remainder(other, self)

    def __pow__(self, other):
        return ops.pow(self, other)

    def __rpow__(self, other):
        return ops.pow(other, self)

    def __neg__(self):
        return ops.neg(self)

    # ``x += y`` and friends, as PyTorch: where no gradient is recorded (under no_grad, or when
    # neither side requires grad) the result is written into x's own data, so a Parameter stays
    # the same object (``layer.weight -= lr * layer.weight.grad`` updates the layer). Where a
    # gradient is recorded, x becomes a new tensor, as ``x = x + y``: the graph keeps the old one.
    # A recorded op whose backward reads this tensor's values notices such a write when its
    # backward runs, and says so (``_written``; PyTorch keeps a version counter for the same check).
    def __iadd__(self, other):
        return self._inplace(ops.add(self, other), "+=")

    def __isub__(self, other):
        return self._inplace(ops.sub(self, other), "-=")

    def __imul__(self, other):
        return self._inplace(ops.mul(self, other), "*=")

    def __itruediv__(self, other):
        return self._inplace(ops.div(self, other), "/=")

    def _inplace(self, out: Tensor, op: str) -> Tensor:
        if is_grad_enabled() and (self.requires_grad or out.requires_grad):
            return out
        if out.shape != self.shape:
            raise ValueError(
                f"{op}: the result has shape {out.shape} but it is written into a tensor of "
                f"shape {self.shape}; broadcasting may not grow the tensor written into"
            )
        if out.dtype != self.dtype and not (
            backend.is_floating(out.dtype) and backend.is_floating(self.dtype)
        ):
            raise TypeError(
                f"{op}: the result has dtype {out.dtype}, which cannot be written into a tensor "
                f"of dtype {self.dtype} (shape {self.shape}); use x = x {op[0]} y instead"
            )
        xp = backend.xp_of(self.data)
        try:
            self.data[...] = xp.astype(out.data, self.data.dtype)
        except ValueError as e:  # NumPy's read-only views: expand, broadcast_to
            raise ValueError(
                f"{op}: cannot write into this tensor of shape {self.shape} ({e}; expand and "
                f"broadcast_to give read-only views); use x = x {op[0]} y instead"
            ) from e
        self._written()
        return self

    def _written(self) -> None:
        """Note an in-place write into this tensor's data (``x += y`` under ``no_grad``,
        ``x[i] = v``, an optimizer step): it ticks the write clock and stamps the tensor, so that
        the backward pass can refuse an op recorded before the write (``_check_unwritten``)."""
        global _writes
        _writes += 1
        self._written_at = _writes

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

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

    def std(self, axis=None, keepdims=False, ddof=0):
        return ops.std(self, axis, keepdims, ddof)

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
        """PyTorch's ``expand``: ``broadcast_to``, where -1 keeps the size of that axis."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        lead = len(shape) - self.ndim  # new leading axes, which need a size
        shape = tuple(
            self.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape)
        )
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


# ---- creation helpers ---------------------------------------------------------------------------


def tensor(data, requires_grad=False, dtype=None, device=None) -> Tensor:
    """Make a Tensor (same as the constructor)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def _shape(shape, op: str) -> tuple:
    """``op(2, 3)`` or ``op((2, 3))`` as a tuple of sizes, each an integer >= 0 (not a bool)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    shape = tuple(shape)
    for s in shape:
        if isinstance(s, bool) or not hasattr(s, "__index__"):
            raise TypeError(f"{op}: sizes must be integers, got shape {shape}")
        if s < 0:
            raise ValueError(f"{op}: sizes must be >= 0, got shape {shape}")
    return tuple(int(s) for s in shape)


def _full(shape, value, dtype, device, requires_grad, op="full") -> Tensor:
    shape = _shape((shape,) if hasattr(shape, "__index__") else shape, op)
    device = backend.get_device(device)
    xp = backend.namespace(device)
    data = xp.full(shape, value, dtype=backend.resolve_dtype(dtype or "float32", device))
    return Tensor._make(data, False, None).requires_grad_(requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _full(shape, 0, dtype, device, requires_grad, "zeros")


def ones(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _full(shape, 1, dtype, device, requires_grad, "ones")


def full(shape, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
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
    if step == 0:
        raise ValueError(f"arange: step must not be 0 (start={start}, stop={stop})")
    if dtype is None:
        dtype = "int64" if all(isinstance(v, int) for v in (start, stop, step)) else "float32"
    device = backend.get_device(device)
    xp = backend.namespace(device)
    data = xp.arange(start, stop, step, dtype=backend.resolve_dtype(dtype, device))
    return Tensor._make(data, False, None)


def randn(*shape, dtype="float32", device=None, requires_grad=False) -> Tensor:
    """Standard normal samples from the framework's seeded generator (``tg.manual_seed``)."""
    data = backend.randn(_shape(shape, "randn"), dtype, device)
    return Tensor._make(data, False, None).requires_grad_(requires_grad)


def rand(*shape, dtype="float32", device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1) from the framework's seeded generator."""
    data = backend.rand(_shape(shape, "rand"), dtype, device)
    return Tensor._make(data, False, None).requires_grad_(requires_grad)


def randint(low, high, shape, device=None) -> Tensor:
    shape = _shape((shape,) if hasattr(shape, "__index__") else shape, "randint")
    if not low < high:
        raise ValueError(f"randint: needs low < high, got low={low}, high={high}")
    return Tensor._make(backend.randint(low, high, shape, device), False, None)


def randn_like(t: Tensor, requires_grad=False) -> Tensor:
    return randn(t.shape, dtype=t.dtype, device=t.device, requires_grad=requires_grad)


def rand_like(t: Tensor, requires_grad=False) -> Tensor:
    return rand(t.shape, dtype=t.dtype, device=t.device, requires_grad=requires_grad)


# =================================================================================================
# Gradient modes: no_grad, enable_grad, detect_anomaly
# =================================================================================================


class _GradMode(threading.local):
    enabled = True
    anomaly = False


_mode = _GradMode()


def is_grad_enabled() -> bool:
    return _mode.enabled


@contextlib.contextmanager
def no_grad():
    """Record no graph inside the block (inference, optimizer updates, evaluation).

    >>> import tinygrad_edu as tg
    >>> x = tg.ones(3, requires_grad=True)
    >>> with tg.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """
    prev = _mode.enabled
    _mode.enabled = False
    try:
        yield
    finally:
        _mode.enabled = prev


@contextlib.contextmanager
def enable_grad():
    prev = _mode.enabled
    _mode.enabled = True
    try:
        yield
    finally:
        _mode.enabled = prev


@contextlib.contextmanager
def detect_anomaly():
    """Check every forward and backward result for NaN/Inf and name the first op that made one.

    Slow (every op's result is scanned), so for debugging only.

    >>> import tinygrad_edu as tg
    >>> x = tg.tensor([0.0, 1.0], requires_grad=True)
    >>> with tg.detect_anomaly():
    ...     x.sqrt().sum().backward()
    Traceback (most recent call last):
    ...
    tinygrad_edu.tensor.AnomalyError: Sqrt backward produced non-finite values (...)
    """
    prev = _mode.anomaly
    _mode.anomaly = True
    try:
        yield
    finally:
        _mode.anomaly = prev


class AnomalyError(FloatingPointError):
    """Raised inside ``detect_anomaly()`` by the first op whose result is not finite."""


def _check_finite(op: str, phase: str, array) -> None:
    xp = backend.xp_of(array)
    if backend.is_floating(array.dtype) and not bool(xp.all(xp.isfinite(array))):
        n_nan = int(xp.sum(xp.astype(xp.isnan(array), xp.int64)))
        n_inf = int(xp.sum(xp.astype(xp.isinf(array), xp.int64)))
        raise AnomalyError(
            f"{op} {phase} produced {n_nan} NaN and {n_inf} Inf values "
            f"(shape {tuple(array.shape)}, dtype {backend.dtype_name(array.dtype)})"
        )


# =================================================================================================
# Function: one differentiable operation; apply records it in the graph
# =================================================================================================


# The registry of every Function subclass, by name. tests/test_registry.py fails when a registered
# Function has no gradient check, so a new op cannot slip in untested.
REGISTRY: dict[str, type] = {}


class Function:
    """One differentiable operation: ``forward`` on arrays, ``backward`` on Tensors.

    Subclasses are applied with ``MyOp.apply(*inputs, **options)``; inputs may be Tensors or
    constants (Python numbers), and only Tensors receive gradients.
    """

    __slots__ = ("inputs", "needs_input_grad", "freed", "stamp", "__dict__")

    # Set to False for Functions whose backward is written on raw arrays for speed; a second
    # derivative through them is then a clear error instead of a silent zero.
    differentiable_backward = True

    # For a Function with several outputs, ``apply`` sets the ids of its output Tensors here.
    output_ids = None

    # False for Functions whose backward reads only its inputs' shapes, never their values (Add):
    # an in-place write into an input after the op was recorded cannot change its gradient.
    reads_inputs = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            REGISTRY[cls.__name__] = cls

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad_out):  # pragma: no cover - abstract (one grad_out per output)
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **kwargs):
        # This runs for every operation, so it is written for speed: one pass over the inputs
        # collects their arrays and whether each needs a gradient.
        fn = cls()
        arrays = []
        needs = []
        first = None
        for t in inputs:
            if isinstance(t, Tensor):
                data = t.data
                if first is None:
                    first = t
                elif type(data) is not type(first.data):
                    _check_same_device(cls.__name__, first, t)
                arrays.append(data)
                needs.append(t.requires_grad)
            else:
                arrays.append(t)
                needs.append(False)
        out_data = fn.forward(*arrays, **kwargs)
        if type(out_data) is tuple:
            return fn._several_outputs(out_data, inputs, needs)
        if _mode.anomaly:
            _check_finite(cls.__name__, "forward", out_data)
        if True in needs and _mode.enabled:  # (the cheap test first: _mode is thread-local)
            return fn._output(out_data, inputs, needs)
        return Tensor._make(out_data, False, None)

    def _record(self, out_data, inputs, needs) -> Tensor:
        """The output Tensor of this op, linked into the graph: the op remembers its inputs (and
        which of them need a gradient), the output remembers the op that made it."""
        # --- exercise 2.1: recording the graph ---
        self.inputs = inputs
        self.needs_input_grad = needs
        self.freed = False
        return Tensor._make(out_data, True, self)
        # --- end exercise ---

    def _output(self, out_data, inputs, needs) -> Tensor:
        """``_record``, or, in a learner's copy where exercise 2.1 is still a stub, an output
        marked unrecorded: forward passes still run, and the backward pass raises the stub's
        error when it reaches the output (``loss.backward()`` says what to write first).
        It also notes the write clock's time (``_check_unwritten``)."""
        self.stamp = _writes
        try:
            return self._record(out_data, inputs, needs)
        except NotImplementedError as stub:
            return Tensor._make(out_data, True, _Unrecorded(stub))

    def _several_outputs(self, out_data, inputs, needs):
        """``apply`` for a forward that returned a tuple: one Tensor per array, all made by this op
        (the first recorded like a single output, the others sharing its op).

        The backward pass finds an output's place by its ``id`` in ``output_ids``, and makes zeros
        for an unused output from ``output_like`` (shape, dtype and namespace, not the array)."""
        if _mode.anomaly:
            for data in out_data:
                _check_finite(type(self).__name__, "forward", data)
        if not (_mode.enabled and True in needs):
            return tuple(Tensor._make(data, False, None) for data in out_data)
        first = self._output(out_data[0], inputs, needs)
        outs = (first,) + tuple(Tensor._make(data, True, first._ctx) for data in out_data[1:])
        self.output_ids = tuple(id(t) for t in outs)
        self.output_like = tuple((d.shape, d.dtype, backend.xp_of(d)) for d in out_data)
        return outs


class _Unrecorded(Function):
    """The op of an output that ``Function._record`` (exercise 2.1, a stub) did not link: whatever
    reads the graph here (the backward pass, a gradient check, a drawing) gets the stub's error."""

    def __init__(self, stub: NotImplementedError):
        self.stub = stub
        self.stamp = _writes

    @property
    def inputs(self):
        raise NotImplementedError(*self.stub.args)

    @property
    def needs_input_grad(self):
        raise NotImplementedError(*self.stub.args)

    def backward(self, *grad_out):
        raise NotImplementedError(*self.stub.args)


# =================================================================================================
# The backward pass
# =================================================================================================


def backward(root, gradient=None, retain_graph=None, create_graph=False) -> None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

    ``gradient`` is the upstream gradient (required when ``root`` is not a scalar).
    ``create_graph=True`` records the backward pass itself, for higher derivatives.
    The graph is freed afterwards unless ``retain_graph`` (default: ``create_graph``).
    """
    if not root.requires_grad:
        raise RuntimeError(
            "backward(): this tensor does not require grad and has no graph; "
            "create the inputs with requires_grad=True (and not under no_grad())"
        )
    if gradient is None:
        if root.size != 1:
            raise RuntimeError(
                f"backward(): the output has shape {root.shape}; grad can be implicitly created "
                "only for scalar outputs. Pass gradient= (a tensor of the output's shape) or "
                "reduce the output first, e.g. loss = out.sum()"
            )
        xp = backend.xp_of(root.data)
        gradient = Tensor._make(xp.ones_like(root.data), False, None)
    elif not isinstance(gradient, Tensor):
        gradient = Tensor(gradient, dtype=root.dtype, device=root.device)
    if tuple(gradient.shape) != tuple(root.shape):
        raise ValueError(
            f"backward(): gradient has shape {gradient.shape} but the output has shape {root.shape}"
        )
    if retain_graph is None:
        retain_graph = create_graph

    # A tensor's gradient is complete only when every op that consumed it has passed its share
    # back. So: count the consumers of each tensor, then run backward from the root, and let a
    # tensor's own backward run when its count reaches zero. (This visits the graph in a
    # topological order without sorting it first, and without recursion.)
    consumers, waiting = _count_consumers(root)
    grads = {id(root): gradient}
    ready = [root]
    anomaly = _mode.anomaly  # read once, not per gradient (_mode is thread-local: slower)
    # NumPy warns about x / 0, 0 * inf and log(0). In a backward pass these are masked afterwards
    # (Pow's gradient at 0) or are the true gradient (inf for sqrt at 0), and the warning would
    # point inside the library, so the pass is quiet, as PyTorch's is; detect_anomaly() names the
    # op that made a NaN or an Inf.
    with enable_grad() if create_graph else no_grad(), backend.quiet_float_warnings():
        while ready:
            node = ready.pop()
            grad = grads.pop(id(node), None)
            fn = node._ctx
            if fn is None:  # a leaf: accumulate into .grad
                if grad is None:
                    continue
                if not create_graph:
                    grad = grad.detach()
                if grad.data.dtype != node.data.dtype:  # a root gradient= of another dtype
                    grad = grad.astype(node.dtype)
                node.grad = grad if node.grad is None else node.grad + grad
                continue
            if waiting and id(fn) in waiting:  # one output of a several-output op
                grad = _gather_output_grads(fn, node, grad, waiting, grads)
                if grad is _NOT_YET:
                    continue
            if fn.freed:
                raise RuntimeError(
                    f"backward(): trying to backward through the graph a second time "
                    f"(at {type(fn).__name__}); its saved values were freed after the first "
                    "backward. Use backward(retain_graph=True) the first time if you need this."
                )
            if fn.stamp < _writes and fn.reads_inputs:  # something was written in place since
                _check_unwritten(fn)
            if grad is None:  # no gradient reached this op: its inputs get none from it
                input_grads = (None,) * len(fn.inputs)
            elif create_graph and not fn.differentiable_backward:
                raise RuntimeError(
                    f"{type(fn).__name__} has a backward written for speed that cannot be "
                    "differentiated again; create_graph=True is not supported through it"
                )
            elif type(grad) is tuple:  # several outputs: one gradient each
                input_grads = _anomaly_backward(fn, *grad) if anomaly else fn.backward(*grad)
            else:
                input_grads = _anomaly_backward(fn, grad) if anomaly else fn.backward(grad)
            if type(input_grads) is not tuple:
                input_grads = (input_grads,)
            if len(input_grads) != len(fn.inputs):
                raise _wrong_count(fn, input_grads)
            # (zip without strict=: the lengths were just compared, and the keyword makes a zip
            # twice as slow, 393 against 215 ns here: python -m timeit -s "a = (1, 2.0); b = a"
            # "zip(a, b, strict=False)", then without it)
            for t, g, need in zip(fn.inputs, input_grads, fn.needs_input_grad):  # noqa: B905
                if not need:
                    continue
                if g is not None:
                    # the cheap check of every gradient: a Tensor with its input's array type
                    # (device), shape and dtype (dtypes of one library are shared objects, so
                    # ``is`` is the fast test); anything else gets the full check and its message
                    try:
                        gd, td = g.data, t.data
                        ok = type(gd) is type(td) and gd.shape == td.shape and gd.dtype is td.dtype
                    except AttributeError:  # not a Tensor
                        ok = False
                    if not ok:
                        g = _checked_grad(fn, input_grads, t, g)
                    if anomaly:
                        _check_finite(type(fn).__name__, "backward", g.data)
                # --- exercise 2.2: the backward order and gradient accumulation ---
                key = id(t)
                if g is not None:
                    prev = grads.get(key)
                    grads[key] = g if prev is None else prev + g
                consumers[key] -= 1
                if consumers[key] == 0:
                    ready.append(t)
                # --- end exercise ---
            if not retain_graph:
                fn.freed = True
                fn.inputs = ()
                fn.__dict__.clear()


# In-place writes and recorded graphs: a recorded op keeps its input Tensors and its backward reads
# their data. A write into one of them afterwards would make that backward read the new values and
# return a wrong gradient, silently. So each write ticks a clock and stamps its tensor
# (``Tensor._written``), each recorded op notes the clock's time (``Function._output``), and the
# backward pass compares the two: one integer per op, and a look at the inputs only when some
# write happened after the op was recorded.
_writes = 0


def _check_unwritten(fn) -> None:
    """Refuse to run ``fn``'s backward if one of its input Tensors was written in place after
    ``fn`` was recorded (PyTorch's error for a tensor "modified by an inplace operation")."""
    name = type(fn).__name__
    for i, t in enumerate(fn.inputs):
        if isinstance(t, Tensor) and getattr(t, "_written_at", 0) > fn.stamp:
            raise RuntimeError(
                f"backward(): input {i} of {name} (shape {t.shape}, {t.dtype}) was written in "
                f"place after {name} used it (x += y under no_grad, x[...] = v, or an optimizer "
                "step), so its backward would read the new values; call backward before the "
                "write, or write x = x + y (a new tensor) instead"
            )


def _wrong_count(fn, input_grads) -> RuntimeError:
    name = type(fn).__name__
    return RuntimeError(
        f"{name}.backward returned {len(input_grads)} gradient(s) for {len(fn.inputs)} inputs; "
        "a backward returns one gradient per input of forward (None for an input that needs none)"
    )


def _checked_grad(fn, input_grads, t, g):
    """``g``, the gradient ``fn.backward`` returned for its input ``t``, after the full check.

    A float gradient of another float dtype (a float32 input used with float64 values) is cast
    to the input's dtype, as PyTorch does; anything else that does not match is an error that
    names the op, the input and both shapes, dtypes or devices."""
    name = type(fn).__name__
    i = next(
        i for i, (x, y) in enumerate(zip(fn.inputs, input_grads, strict=False)) if x is t and y is g
    )
    where = f"{name}.backward returned"
    if not isinstance(g, Tensor):
        raise TypeError(
            f"{where} an object of type {type(g).__name__} for input {i} (shape {t.shape}); "
            "a backward returns Tensors (wrap an array with Tensor._make(array, False, None))"
        )
    if g.shape != t.shape:
        raise ValueError(
            f"{where} a gradient of shape {g.shape} for input {i} of shape {t.shape}; "
            "a gradient has its input's shape (sum a broadcast input's gradient back with "
            "unbroadcast)"
        )
    if g.device != t.device:
        raise backend.DeviceError(
            f"{where} a gradient on device {g.device!r} for input {i} on device {t.device!r} "
            f"(shape {t.shape}); a gradient lives on its input's device"
        )
    if g.data.dtype != t.data.dtype:
        if not (backend.is_floating(g.dtype) and backend.is_floating(t.dtype)):
            raise TypeError(
                f"{where} a gradient of dtype {g.dtype} for input {i} of dtype {t.dtype} "
                f"(shape {t.shape}); a gradient is a float of its input's dtype"
            )
        g = g.astype(t.dtype)
    return g


_NOT_YET = object()  # what _gather_output_grads returns while an op still waits for outputs


def _gather_output_grads(fn, node, grad, waiting, grads):
    """Collect the gradient of ``node``, one output of the several-output op ``fn``.

    Returns ``_NOT_YET`` until every output that leads to the root has its gradient, then the
    tuple of all of them (zeros for outputs that do not lead to the root, or got no gradient),
    or ``None`` when none got a gradient at all."""
    key = id(fn)
    collected = grads.get(key)
    if collected is None:
        collected = grads[key] = [None] * len(fn.output_ids)
    collected[fn.output_ids.index(id(node))] = grad
    waiting[key] -= 1
    if waiting[key]:
        return _NOT_YET
    del grads[key]
    if all(g is None for g in collected):
        return None
    return tuple(
        Tensor._make(xp.zeros(shape, dtype=dtype), False, None) if g is None else g
        for g, (shape, dtype, xp) in zip(collected, fn.output_like, strict=True)
    )


def _anomaly_backward(fn, *grad):
    """``fn.backward(*grad)``, with a NaN/Inf inside it blamed on ``fn`` (not on the Mul or Div
    that its backward happens to be written with)."""
    try:
        return fn.backward(*grad)
    except AnomalyError as e:
        raise AnomalyError(
            f"{type(fn).__name__} backward produced non-finite values ({e})"
        ) from None


def _count_consumers(root) -> tuple[dict, dict]:
    """For every tensor that leads to ``root`` and needs a gradient: how many ops consume it.

    An iterative walk (a stack, not recursion, so a 10,000-op chain is fine) that visits each
    tensor once; a tensor used twice, like ``a`` in ``a * a``, is counted twice.
    Also returns, for each op with several outputs, how many of its outputs lead to ``root``:
    its backward runs once all of those have their gradient, and its inputs are counted once.
    """
    consumers = {id(root): 0}
    waiting = {}
    stack = [root]
    while stack:
        fn = stack.pop()._ctx
        if fn is None:
            continue
        if fn.output_ids is not None:  # several outputs: walk the op's inputs only once
            key = id(fn)
            if key in waiting:
                waiting[key] += 1
                continue
            waiting[key] = 1
        for t, need in zip(fn.inputs, fn.needs_input_grad):  # noqa: B905 (as in backward)
            if need:
                key = id(t)
                if key in consumers:
                    consumers[key] += 1
                else:
                    consumers[key] = 1
                    stack.append(t)
    return consumers, waiting


# ops.py builds its Functions on the classes above, so it is imported last; Tensor's operators and
# methods call it at run time.
from . import ops  # noqa: E402

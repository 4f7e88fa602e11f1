"""Every CPU/GPU difference lives here.

Chapter 1 ("Arrays and devices") builds this module. A *device* is a name for where arrays live and
which library computes on them:

=============  ==================  ===============================================================
device         array library       used for
=============  ==================  ===============================================================
``"cpu"``      NumPy               everything, by default
``"cuda"``     CuPy                NVIDIA GPUs (``pip install "tinygrad_edu[cuda12]"``)
``"strict"``   array-api-strict    tests only: a second array library that is *not* NumPy, so an op
                                   that reaches for NumPy behind the backend's back fails
=============  ==================  ===============================================================

Ops never import NumPy or CuPy. They ask this module for the array namespace of their inputs
(``xp = backend.xp_of(array)``) and call only functions of the Python array API standard
(``xp.exp``, ``xp.matmul``, ``xp.permute_dims``, ``xp.concat`` ...), which NumPy 2, CuPy and
array-api-strict all provide. The few things the standard lacks are behind one function each
below: NumPy-style indexing with integer arrays and masks (``getitem``), its scatter-add
(``index_add``) and strided windows (``sliding_windows``).

Read next: ``tensor.py``.

>>> import tinygrad_edu as tg
>>> x = tg.zeros(2, device="cpu")
>>> tg.backend.xp_of(x.data).__name__, tg.backend.device_of(x.data)
('numpy', 'cpu')
"""

from __future__ import annotations

import os
import sys

import numpy as np

DEVICES = ("cpu", "cuda", "strict")

_modules: dict[str, object] = {"cpu": np}
_type_to_device: dict[type, str] = {np.ndarray: "cpu"}


class DeviceError(RuntimeError):
    """A device was asked for that cannot be used here, or two devices were mixed."""


def _load(device: str):
    """Import the array library behind ``device`` once, with an error that says what to install."""
    if device in _modules:
        return _modules[device]
    if device == "cuda":
        try:
            import cupy
        except ImportError as e:
            raise DeviceError(
                "device 'cuda' needs CuPy, which is not installed: "
                'pip install "tinygrad_edu[cuda12]" (or [cuda13] for CUDA 13)'
            ) from e
        try:
            n = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # CUDA driver missing or broken
            raise DeviceError(f"device 'cuda': CuPy is installed but no GPU is usable ({e})") from e
        if n == 0:
            raise DeviceError("device 'cuda': CuPy is installed but this machine has no GPU")
        _modules["cuda"] = cupy
        _type_to_device[cupy.ndarray] = "cuda"
        return cupy
    if device == "strict":
        try:
            import array_api_strict
        except ImportError as e:
            raise DeviceError(
                "device 'strict' (the test stand-in for a non-NumPy library) needs "
                'array-api-strict: pip install "tinygrad_edu[test]"'
            ) from e
        _modules["strict"] = array_api_strict
        _type_to_device[type(array_api_strict.asarray(0))] = "strict"
        return array_api_strict
    raise DeviceError(f"unknown device {device!r}; expected one of {DEVICES}")


def get_device(device: str | None = None) -> str:
    """Normalise a device name; ``None`` means the default device.

    ``"cuda:0"`` is accepted as ``"cuda"`` (one GPU is all this framework uses).
    """
    if device is None:
        return default_device()
    if not isinstance(device, str):
        raise DeviceError(f"device must be a string such as 'cpu' or 'cuda', got {device!r}")
    name = device.split(":")[0]
    if name not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; expected one of {DEVICES}")
    _load(name)
    return name


_default_device: str | None = None


def default_device() -> str:
    """The device new tensors go to: ``$TINYGRAD_EDU_DEVICE`` or ``"cpu"``."""
    global _default_device
    if _default_device is None:
        _default_device = get_device(os.environ.get("TINYGRAD_EDU_DEVICE", "cpu") or "cpu")
    return _default_device


def set_default_device(device: str | None) -> None:
    """Set the device new tensors go to (``None`` goes back to ``$TINYGRAD_EDU_DEVICE``)."""
    global _default_device
    _default_device = None if device is None else get_device(device)


def namespace(device: str):
    """The array library (module) of a device: ``namespace("cpu") is numpy``."""
    return _load(device)


def device_of(array) -> str:
    """The device an array lives on."""
    d = _type_to_device.get(type(array))
    if d is not None:
        return d
    if isinstance(array, np.generic):  # NumPy scalars such as np.float32(1.0) live on the CPU
        return "cpu"
    raise TypeError(f"expected an array of NumPy, CuPy or array-api-strict, got {type(array)}")


def xp_of(array):
    """The array namespace (module) that computes on ``array``."""
    return _modules[device_of(array)]


def is_array(obj) -> bool:
    """True for an array of any supported library."""
    return type(obj) in _type_to_device or isinstance(obj, np.generic)


def python_scalar(x):
    """A NumPy scalar (``np.float64(0.5)``, ``np.int64(3)``, ``np.bool_(True)``) as the Python
    number it holds; anything else unchanged. Ops treat it as a Python number, as PyTorch does,
    so ``x * np.sqrt(d)`` keeps a float32 ``x`` float32."""
    return x.item() if isinstance(x, np.generic) else x


def to_numpy(array) -> np.ndarray:
    """Copy (if needed) any array to a NumPy array on the host."""
    d = device_of(array)
    if d == "cpu":
        return np.asarray(array)
    if d == "cuda":
        return array.get()
    return np.from_dlpack(array)


def to_device(array, device: str):
    """Move an array to ``device``; a no-op when it is already there."""
    device = get_device(device)
    src = device_of(array)
    if src == device:
        return array
    host = to_numpy(array)
    if device == "cpu":
        return host
    return _modules[device].asarray(host)


def asarray(data, dtype=None, device: str | None = None):
    """Make an array on ``device`` from Python numbers, lists or arrays of any device.

    ``dtype`` is a name (``"float32"``) or a dtype of any library, resolved on the target device.
    """
    device = get_device(device)
    xp = _modules[device]
    if is_array(data):
        data = to_device(data, device)
        if dtype is not None:
            data = xp.astype(data, resolve_dtype(dtype, device))
        return data
    if dtype is not None:
        return xp.asarray(data, dtype=resolve_dtype(dtype, device))
    return xp.asarray(data)


def resolve_dtype(dtype, device: str):
    """The dtype object of ``device``'s library named like ``dtype`` (``"float32"``, np.float32)."""
    name = dtype_name(dtype)
    if not (is_floating(name) or is_integer(name) or name == "bool"):
        raise TypeError(
            f"dtype: unknown dtype {name!r}; expected a name such as 'float32', 'float64', "
            "'int64' or 'bool'"
        )
    return getattr(_modules[device], name)


# (dtype type, dtype) -> name: NumPy computes dtype.name anew on every call. The type is part of
# the key so that a NumPy dtype is never compared with an array-api-strict one (equal hashes).
_dtype_names: dict = {}


def dtype_name(dtype) -> str:
    """A dtype's plain name: ``"float32"``, ``"int64"``, ``"bool"``."""
    if isinstance(dtype, str):
        return dtype
    key = (type(dtype), dtype)
    name = _dtype_names.get(key)
    if name is None:
        if isinstance(dtype, type) and issubclass(dtype, np.generic):
            name = np.dtype(dtype).name
        else:
            name = (getattr(dtype, "name", None) or str(dtype)).replace("array_api_strict.", "")
        _dtype_names[key] = name
    return name


def quiet_float_warnings():
    """A ``with`` block in which NumPy does not warn about ``x / 0``, ``0 * inf`` or ``log(0)``
    (the results, inf or nan, stand). The backward pass runs in one: its rules compute such
    values on the way and then mask them (Pow's gradient at a base or exponent of 0), or they
    are the true gradient (inf for sqrt at 0), and PyTorch prints nothing. CuPy never warns."""
    return np.errstate(divide="ignore", invalid="ignore")


def is_floating(dtype) -> bool:
    return dtype_name(dtype) in ("float16", "float32", "float64", "bfloat16")


def is_integer(dtype) -> bool:
    return dtype_name(dtype) in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32")


# ---------------------------------------------------------------------------------------------
# Memory. A training step makes many large temporary arrays. By default glibc hands every freed
# block above 128 KiB straight back to the operating system, so the next step's arrays arrive as
# fresh pages, each one a page fault: measured, that made a float32 GELU 4x slower and a B3 step
# 25% slower (benchmarks/README.md). keep_freed_memory() raises glibc's thresholds so that freed
# blocks are kept for reuse (what PyTorch's caching allocator does on its own). It changes the
# allocator of the whole process, so importing the library never calls it: the training loop
# (train.train) and the benchmarks do.
# ---------------------------------------------------------------------------------------------

_freed_memory_kept: bool | None = None  # None: not asked yet


def keep_freed_memory() -> bool:
    """Let glibc's ``malloc`` keep freed blocks for reuse instead of returning them to the OS.

    A process-wide setting (glibc's ``mallopt``: mmap threshold 64 MiB, trim threshold 128 MiB),
    so it is made only when called, by a training loop or a benchmark, never at import. Calling
    it again does nothing more. Returns True when the allocator was tuned; False where there is no
    glibc (macOS, Windows, musl), when ``TINYGRAD_EDU_MALLOPT=0`` is set, or when glibc's own
    ``MALLOC_MMAP_THRESHOLD_`` is set (then the user's setting stands).
    """
    global _freed_memory_kept
    if _freed_memory_kept is None:
        _freed_memory_kept = _mallopt_keep_freed()
    return _freed_memory_kept


def _mallopt_keep_freed() -> bool:
    import ctypes  # only here: most processes never need it

    if not sys.platform.startswith("linux") or os.environ.get("TINYGRAD_EDU_MALLOPT") == "0":
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        ok = libc.mallopt(m_mmap_threshold, 64 << 20) and libc.mallopt(m_trim_threshold, 128 << 20)
        return bool(ok)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False


# ---------------------------------------------------------------------------------------------
# Random numbers. One NumPy generator, seeded by tg.manual_seed, draws every random number on the
# host; the numbers are then moved to the device. The same seed therefore gives the same model and
# the same batches on every device (slower on a GPU for big draws, but reproducible and simple).
# ---------------------------------------------------------------------------------------------

_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed every random draw of the framework (init, dropout, batches, sampling)."""
    global _rng
    _rng = np.random.default_rng(seed)


def rng() -> np.random.Generator:
    """The framework's random generator (host side)."""
    return _rng


def get_rng_state() -> dict:
    """The generator's state as a JSON-friendly dict (for checkpoints)."""
    return _rng.bit_generator.state


def set_rng_state(state: dict) -> None:
    _rng.bit_generator.state = state


def randn(shape, dtype="float32", device=None):
    return asarray(
        _rng.standard_normal(shape, dtype=np.float64).astype(dtype_name(dtype)), None, device
    )


def rand(shape, dtype="float32", device=None):
    return asarray(_rng.random(shape, dtype=np.float64).astype(dtype_name(dtype)), None, device)


def randint(low, high, shape, device=None):
    return asarray(_rng.integers(low, high, size=shape, dtype=np.int64), None, device)


# ---------------------------------------------------------------------------------------------
# The non-portable kernels.
# ---------------------------------------------------------------------------------------------


def _has_array_index(key: tuple) -> bool:
    return any(is_array(k) for k in key)


def getitem(x, key: tuple):
    """``x[key]`` with NumPy's indexing rules on every device.

    NumPy and CuPy index natively. The array API standard (and so array-api-strict) allows an
    integer array only when every other index is an integer too, and a boolean mask only alone,
    so there ``x[idx]``, ``x[:, idx]`` and ``x[mask]`` go through ``xp.take`` (see ``_plan``).
    """
    if device_of(x) != "strict" or not _has_array_index(key):
        return x[key]
    xp = xp_of(x)
    plan = _plan(x.shape, key, xp)
    y = x[plan["basic"]]
    if plan["perm"] is not None:
        y = xp.permute_dims(y, plan["perm"])
    p, n_adv = plan["p"], plan["n_adv"]
    pre, post = y.shape[:p], y.shape[p + n_adv :]
    y = xp.reshape(y, pre + (plan["K"],) + post)  # the indexed axes as one axis of size K
    out = xp.take(y, plan["lin"], axis=p)
    return xp.reshape(out, pre + plan["S"] + post)


def _plan(shape: tuple, key: tuple, xp) -> dict:
    """Turn a NumPy-style key with integer/boolean arrays into steps the array API has.

    1. boolean masks become the integer arrays of their ``nonzero()`` positions (NumPy's rule);
    2. ``basic``: the slices of the other axes, applied first (the indexed axes are kept whole);
    3. the indexed axes (integers count as indexed once an array is present) are moved to the
       front when they are not adjacent (NumPy puts their result axes first in that case);
    4. ``lin``: the flat position inside the indexed axes, ``sum_j idx_j * stride_j``, so one
       ``take`` along one axis of size ``K`` picks every element.
    """
    parts = []
    for k in key:
        if is_array(k) and dtype_name(k.dtype) == "bool":
            parts.extend(xp.nonzero(k))
            parts.append(("mask", k.shape, len(parts) - k.ndim))
        else:
            parts.append(k)
    masks = [q for q in parts if isinstance(q, tuple)]
    parts = [q for q in parts if not isinstance(q, tuple)]
    if any(k is None for k in parts):
        raise IndexError("None (a new axis) together with index arrays is not supported here")
    n_fixed = sum(1 for k in parts if k is not Ellipsis)
    if n_fixed > len(shape):
        raise IndexError(f"too many indices ({n_fixed}) for a shape with {len(shape)} dimensions")
    full = []
    for k in parts:
        if k is Ellipsis:
            full.extend([slice(None)] * (len(shape) - n_fixed))
            n_fixed = len(shape)  # a second Ellipsis expands to nothing
        else:
            full.append(k)
    full.extend([slice(None)] * (len(shape) - len(full)))
    for _, mshape, start in masks:
        if tuple(mshape) != tuple(shape[start : start + len(mshape)]):
            raise IndexError(
                f"boolean mask of shape {tuple(mshape)} does not match the indexed dimensions "
                f"{tuple(shape[start : start + len(mshape)])}"
            )
    adv = [i for i, k in enumerate(full) if not isinstance(k, slice)]
    basic = tuple(slice(None) if i in adv else k for i, k in enumerate(full))
    sliced = [
        len(range(*k.indices(shape[i]))) if isinstance(k, slice) else shape[i]
        for i, k in enumerate(full)
    ]
    perm = None
    if adv != list(range(adv[0], adv[0] + len(adv))):  # not adjacent: indexed axes go first
        perm = tuple(adv) + tuple(i for i in range(len(shape)) if i not in adv)
        p = 0
    else:
        p = adv[0]
    idx = [xp.asarray(full[i], dtype=xp.int64) for i in adv]
    dims = [sliced[i] for i in adv]
    for axis, i, d in zip(adv, idx, dims, strict=True):
        if i.size:  # the same check and message as NumPy's (before broadcasting, as NumPy)
            hi, lo = int(xp.max(i)), int(xp.min(i))
            if hi >= d or lo < -d:
                bad = hi if hi >= d else lo
                raise IndexError(f"index {bad} is out of bounds for axis {axis} with size {d}")
    try:
        idx = xp.broadcast_arrays(*idx) if len(idx) > 1 else idx
    except ValueError:
        shapes = " ".join(str(tuple(i.shape)) for i in idx)
        raise IndexError(
            f"shape mismatch: indexing arrays could not be broadcast together with shapes {shapes}"
        ) from None
    lin = None
    for i, d in zip(idx, dims, strict=True):
        i = xp.where(i < 0, i + d, i)  # negative indices count from the end
        lin = i if lin is None else lin * d + i
    K = 1
    for d in dims:
        K *= d
    S = tuple(lin.shape)
    return {
        "basic": basic,
        "perm": perm,
        "p": p,
        "n_adv": len(adv),
        "K": K,
        "S": S,
        "lin": xp.reshape(lin, (-1,)),
        "sliced": tuple(sliced),
    }


def index_add(out, key: tuple, values):
    """Scatter-add: ``out[key] += values``, where repeated indices in ``key`` *accumulate*.

    This is the backward of indexing (and of an embedding lookup). Plain ``out[key] += values``
    is wrong with repeated indices: NumPy writes each position once, so ``x[[0, 0]]`` would
    receive one gradient instead of two. Returns ``out`` (modified in place).
    """
    if not _has_array_index(key):
        # basic indexing never repeats a position; None (a new axis) only added size-1 axes
        plain = tuple(k for k in key if k is not None)
        target = out[plain]
        out[plain] = target + xp_of(out).reshape(values, target.shape)
        return out
    d = device_of(out)
    if d == "cpu":
        np.add.at(out, key, values)
        return out
    if d == "cuda":
        import cupyx

        cupyx.scatter_add(out, key, values)
        return out
    return _index_add_portable(out, key, values)


def _index_add_portable(out, key: tuple, values):
    """Scatter-add with only array-API functions, following ``getitem``'s plan backwards.

    After the plan, indexing is ``take(y, lin, axis=p)`` on ``y`` of shape ``(pre, K, post)``.
    Its scatter-add is a matrix product with a one-hot matrix: ``onehot[m, k] = (lin[m] == k)``
    and ``grad_y[..., k] = sum_m values[..., m] * onehot[m, k]``, which adds repeated positions.
    """
    xp = xp_of(out)
    plan = _plan(out.shape, key, xp)
    p, n_adv = plan["p"], plan["n_adv"]
    y_shape = plan["sliced"]
    if plan["perm"] is not None:
        y_shape = tuple(y_shape[i] for i in plan["perm"])
    pre, post = y_shape[:p], y_shape[p + n_adv :]
    M = plan["lin"].shape[0]
    v = xp.reshape(xp.astype(values, out.dtype), pre + (M,) + post)
    v = xp.moveaxis(v, p, -1)  # (pre, post, M)
    onehot = xp.astype(
        plan["lin"][:, None] == xp.arange(plan["K"], dtype=xp.int64)[None, :], out.dtype
    )  # (M, K)
    g = xp.moveaxis(xp.matmul(v, onehot), -1, p)  # (pre, K, post)
    g = xp.reshape(g, y_shape)
    if plan["perm"] is not None:
        inverse = tuple(sorted(range(len(plan["perm"])), key=plan["perm"].__getitem__))
        g = xp.permute_dims(g, inverse)
    out[plan["basic"]] = out[plan["basic"]] + g
    return out


def _size(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def sliding_windows(x, size: int, step: int = 1, dilation: int = 1):
    """Windows along the last axis: ``(..., L) -> (..., L_out, size)`` with
    ``windows[..., i, k] = x[..., i * step + k * dilation]``.

    NumPy gives a zero-copy view (``sliding_window_view``); elsewhere the windows are stacked
    from ``size`` strided slices, which is still vectorised over positions.
    """
    L = x.shape[-1]
    span = dilation * (size - 1) + 1
    L_out = (L - span) // step + 1
    if L_out <= 0:
        raise ValueError(f"sliding_windows: window span {span} is longer than the length {L}")
    if device_of(x) == "cpu":
        w = np.lib.stride_tricks.sliding_window_view(x, span, axis=-1)  # (..., L - span + 1, span)
        return w[..., ::step, ::dilation][..., :L_out, :]
    xp = xp_of(x)
    stop = step * (L_out - 1) + 1
    cols = [x[..., k * dilation : k * dilation + stop : step] for k in range(size)]
    return xp.stack(cols, axis=-1)


def cumulative_sum(x, axis: int = -1):
    """The running sum along ``axis``: the array API's ``cumulative_sum`` (NumPy 2.1+, CuPy 14,
    array-api-strict); NumPy 2.0 and CuPy 13 have it only as ``cumsum``."""
    xp = xp_of(x)
    if hasattr(xp, "cumulative_sum"):
        return xp.cumulative_sum(x, axis=axis)
    if device_of(x) == "cpu":
        return np.cumsum(x, axis=axis)
    import cupy

    return cupy.cumsum(x, axis=axis)

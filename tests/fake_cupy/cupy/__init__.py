"""A stand-in for CuPy that runs on the CPU, so the CUDA code paths can be tested without a GPU.

It is NumPy under another name, with the three things the framework relies on CuPy for:

* a distinct array type, ``cupy.ndarray`` (a NumPy subclass), so ``backend.device_of`` says
  ``"cuda"``; indexing, ufuncs and reductions keep returning it (0-d arrays, never NumPy
  scalars, as CuPy does);
* ``.get()``, CuPy's copy to the host, which returns a plain ``numpy.ndarray``;
* ``cupy.cuda.runtime.getDeviceCount()``, which reports one GPU.

Every NumPy function is re-exported with its results wrapped, and ``asarray`` calls are logged
in ``ASARRAY_CALLS`` (what a host-to-device copy would be). ``cupyx.scatter_add`` is beside it.

Used by ``tests/test_gpu_path.py`` (in-process), and to run the whole suite on the CUDA path:
``PYTHONPATH=$PWD/tests/fake_cupy TINYGRAD_EDU_DEVICE=cuda python -m pytest tests`` (an absolute
path: some tests run pytest again from another directory).
Its numbers are NumPy's, so it proves routing (which code runs on ``cuda``), not CuPy's numerics;
and unlike CuPy it lets NumPy mix its arrays with host arrays, so the device checks that matter
are the framework's own (``Tensor`` ops refuse mixed devices, naming both).
"""

import functools
import types

import numpy as _np


class ndarray(_np.ndarray):  # noqa: N801 - CuPy's name
    """A NumPy array that says it lives on the GPU."""

    def get(self):
        """Copy to the host: a plain NumPy array."""
        return _np.array(self, copy=True).view(_np.ndarray)

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        return _np.asarray(arr).view(ndarray)  # 0-d results stay arrays, as in CuPy

    def __getitem__(self, key):
        out = super().__getitem__(key)
        return _np.asarray(out).view(ndarray) if isinstance(out, _np.generic) else out


def _wrap(x):
    if isinstance(x, _np.ndarray) and type(x) is not ndarray:
        return x.view(ndarray)
    if isinstance(x, _np.generic):
        return _np.asarray(x).view(ndarray)
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


def _wrapped(f):
    @functools.wraps(f)
    def call(*args, **kwargs):
        return _wrap(f(*args, **kwargs))

    return call


for _name in dir(_np):
    if _name.startswith("_") or _name in ("ndarray", "asarray"):
        continue
    _obj = getattr(_np, _name)
    if callable(_obj) and not isinstance(_obj, type) and not isinstance(_obj, _np.ufunc):
        globals()[_name] = _wrapped(_obj)
    else:
        globals()[_name] = _obj  # dtypes (float32 ...), ufuncs (results wrapped by ndarray), ...

ASARRAY_CALLS: list = []  # (type of the input, its shape) for every asarray call


def asarray(a, dtype=None, **kwargs):
    """A host-to-device copy (or a no-op on a device array)."""
    ASARRAY_CALLS.append((type(a), getattr(a, "shape", None)))
    if isinstance(a, ndarray):
        return a if dtype is None else a.astype(dtype)
    return _np.array(a, dtype=dtype, copy=True).view(ndarray)


cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))

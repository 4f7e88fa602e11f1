"""Devices, array namespaces, moving data and the non-portable kernels (chapter 1; device
errors also chapter 12)."""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import backend

pytestmark = pytest.mark.ch01


def test_default_device_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TINYGRAD_EDU_DEVICE", "strict")
    backend.set_default_device(None)
    assert backend.default_device() == "strict" and tg.zeros(2).device == "strict"
    monkeypatch.setenv("TINYGRAD_EDU_DEVICE", "cpu")
    backend.set_default_device(None)
    assert backend.default_device() == "cpu" and tg.zeros(2).device == "cpu"


def test_set_default_device():
    backend.set_default_device("strict")
    assert tg.ones(1).device == "strict"
    backend.set_default_device("cpu")
    assert tg.ones(1).device == "cpu"


def test_namespace_and_device_of():
    assert backend.namespace("cpu") is np
    x = tg.zeros(2, device="strict").data
    assert backend.device_of(x) == "strict" and backend.xp_of(x).__name__ == "array_api_strict"
    assert backend.device_of(np.float32(1.0)) == "cpu"
    assert backend.get_device("cuda:0".replace("cuda", "cpu")) == "cpu"
    with pytest.raises(TypeError, match="expected an array of NumPy, CuPy or array-api-strict"):
        backend.device_of([1, 2])


def test_to_device_round_trip():
    host = np.arange(6.0).reshape(2, 3)
    strict = backend.to_device(host, "strict")
    assert backend.device_of(strict) == "strict"
    back = backend.to_numpy(strict)
    np.testing.assert_array_equal(back, host)
    assert backend.to_device(host, "cpu") is host


def test_asarray_resolves_dtype_names_on_the_device():
    a = backend.asarray([1, 2], dtype="float64", device="strict")
    assert backend.dtype_name(a.dtype) == "float64" and backend.device_of(a) == "strict"
    b = backend.asarray(np.ones(2, dtype=np.float32), dtype=np.float64, device="cpu")
    assert b.dtype == np.float64


def test_dtype_helpers():
    assert backend.dtype_name(np.float32) == "float32"
    assert backend.dtype_name(np.dtype("int64")) == "int64"
    assert backend.dtype_name("bool") == "bool"
    assert backend.is_floating("float16") and not backend.is_floating("int32")
    assert backend.is_integer("uint8") and not backend.is_integer("bool")


@pytest.mark.parametrize("dev", ["cpu", "strict"])
def test_index_add_accumulates_repeated_indices(dev):
    out = backend.asarray(np.zeros((3, 2)), device=dev)
    idx = backend.asarray(np.array([0, 2, 0]), device=dev)
    vals = backend.asarray(np.ones((3, 2)), device=dev)
    res = backend.to_numpy(backend.index_add(out, (idx, Ellipsis), vals))
    np.testing.assert_array_equal(res, [[2, 2], [0, 0], [1, 1]])


@pytest.mark.parametrize("dev", ["cpu", "strict"])
@pytest.mark.parametrize(
    "key",
    [
        (np.array([1, 1, 0]), slice(None)),
        (slice(None), np.array([2, 0, 2])),
        (np.array([0, 1, 1]), np.array([2, 2, 0])),
        (1, slice(None), np.array([0, 0])),  # int and array apart: NumPy puts array axes first
        (np.array([[True, False, True], [False, True, True]]),),
    ],
)
def test_portable_indexing_matches_numpy(dev, key):
    host = (
        np.arange(2 * 3 * 4.0).reshape(2, 3, 4) if len(key) == 3 else np.arange(6.0).reshape(2, 3)
    )
    x = backend.asarray(host, device=dev)
    dev_key = tuple(backend.asarray(k, device=dev) if isinstance(k, np.ndarray) else k for k in key)
    np.testing.assert_array_equal(backend.to_numpy(backend.getitem(x, dev_key)), host[key])
    # scatter-add is the adjoint: <x[key], v> == <x, index_add(0, key, v)>
    v = np.random.default_rng(0).standard_normal(host[key].shape)
    acc = backend.index_add(
        backend.asarray(np.zeros(host.shape), device=dev), dev_key, backend.asarray(v, device=dev)
    )
    np.testing.assert_allclose(np.sum(host[key] * v), np.sum(host * backend.to_numpy(acc)))


@pytest.mark.parametrize("dev", ["cpu", "strict"])
@pytest.mark.parametrize(("size", "step", "dilation"), [(3, 1, 1), (2, 2, 1), (2, 1, 3), (5, 1, 1)])
def test_sliding_windows(dev, size, step, dilation):
    host = np.arange(2 * 7.0).reshape(2, 7)
    w = backend.to_numpy(backend.sliding_windows(backend.asarray(host, device=dev), size, step,
                                                 dilation))  # fmt: skip
    n_out = (7 - dilation * (size - 1) - 1) // step + 1
    expected = np.stack(
        [[host[:, i * step + k * dilation] for k in range(size)] for i in range(n_out)]
    )  # (L_out, size, 2)
    np.testing.assert_array_equal(w, np.transpose(expected, (2, 0, 1)))


def test_sliding_windows_too_long_is_clear():
    with pytest.raises(
        ValueError, match="sliding_windows: window span 9 is longer than the length 7"
    ):
        backend.sliding_windows(np.zeros(7), 3, dilation=4)


# ---- devices: errors that say what to do --------------------------------------------------------


@pytest.mark.ch12
def test_unknown_device_lists_the_known_ones():
    with pytest.raises(tg.DeviceError, match=r"unknown device 'tpu'; expected one of \('cpu'"):
        tg.zeros(2, device="tpu")
    with pytest.raises(tg.DeviceError, match="device must be a string"):
        backend.get_device(0)


@pytest.mark.ch12
@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: a + b,
        lambda a, b: a * b,
        lambda a, b: a @ b,
        lambda a, b: tg.concat([a, b]),
        lambda a, b: tg.where(a > 0, a, b),
        lambda a, b: tg.maximum(a, b),
    ],
)
def test_mixing_devices_names_both(op):
    a = tg.ones(2, 2, device="cpu", requires_grad=True)
    b = tg.ones(2, 2, device="strict")
    with pytest.raises(
        tg.DeviceError, match=r"different devices, '(cpu|strict)' and '(strict|cpu)'"
    ):
        op(a, b)


@pytest.mark.ch12
def test_mixing_devices_message_says_how_to_fix():
    with pytest.raises(tg.DeviceError, match=r"Add: .*\(2,\) and \(3, 2\).*\.to\('cpu'\)"):
        tg.ones(2, device="cpu") + tg.ones(3, 2, device="strict")


@pytest.mark.ch12
def test_cuda_without_cupy_says_what_to_install(monkeypatch):
    if "cuda" in backend._modules:
        pytest.skip("CuPy and a GPU are present here")
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError
    with pytest.raises(tg.DeviceError, match=r'needs CuPy.*pip install "tinygrad_edu\[cuda12\]"'):
        tg.zeros(2, device="cuda")
    with pytest.raises(tg.DeviceError, match="pip install"):
        tg.ones(2).to("cuda")


def _fake_cupy(get_device_count):
    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=get_device_count)
    )
    return cupy


@pytest.mark.ch12
def test_cupy_without_a_gpu_is_clear(monkeypatch):
    if "cuda" in backend._modules:
        pytest.skip("CuPy and a GPU are present here")

    def broken():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(broken))
    with pytest.raises(tg.DeviceError, match=r"CuPy is installed but no GPU is usable .*no CUDA"):
        tg.zeros(2, device="cuda")
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(lambda: 0))
    with pytest.raises(tg.DeviceError, match="CuPy is installed but this machine has no GPU"):
        tg.zeros(2, device="cuda:0")
    assert "cuda" not in backend._modules  # nothing half-registered


# ---- keeping freed memory: an explicit call, never an import side effect ------------------------


def test_importing_the_library_calls_no_mallopt():
    """Importing tinygrad_edu changes no process-wide allocator setting: no libc is even loaded."""
    code = (
        "import ctypes\n"
        "calls = []\n"
        "real = ctypes.CDLL\n"
        "ctypes.CDLL = lambda *a, **k: calls.append(a) or real(*a, **k)\n"
        "import tinygrad_edu, tinygrad_edu.train, tinygrad_edu.models\n"
        "assert calls == [], calls\n"
        "assert tinygrad_edu.backend._freed_memory_kept is None\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_keep_freed_memory_is_explicit_and_idempotent(monkeypatch):
    monkeypatch.setattr(backend, "_freed_memory_kept", None)
    calls = []
    monkeypatch.setattr(backend, "_mallopt_keep_freed", lambda: calls.append(1) or True)
    assert backend.keep_freed_memory() is True
    assert backend.keep_freed_memory() is True
    assert calls == [1]  # the allocator is tuned once, whatever the number of calls


def test_keep_freed_memory_is_a_no_op_without_glibc_or_when_opted_out(monkeypatch):
    monkeypatch.setattr(backend.sys, "platform", "darwin")
    assert backend._mallopt_keep_freed() is False
    monkeypatch.setattr(backend.sys, "platform", "linux")
    monkeypatch.setenv("TINYGRAD_EDU_MALLOPT", "0")
    assert backend._mallopt_keep_freed() is False
    monkeypatch.delenv("TINYGRAD_EDU_MALLOPT")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")  # the user's own glibc setting stands
    assert backend._mallopt_keep_freed() is False


def test_cumulative_sum_on_every_namespace_and_with_numpy_2_0(monkeypatch):
    """``backend.cumulative_sum`` is the array API's name; NumPy 2.0 has only ``cumsum``."""
    x = tg.tensor([[0.5, 0.25, 0.25], [1.0, 2.0, 3.0]]).data
    expected = [[0.5, 0.75, 1.0], [1.0, 3.0, 6.0]]
    np.testing.assert_allclose(backend.to_numpy(backend.cumulative_sum(x, axis=-1)), expected)
    if backend.device_of(x) == "cpu":
        monkeypatch.delattr(np, "cumulative_sum", raising=False)
        np.testing.assert_allclose(backend.cumulative_sum(x, axis=-1), expected)
        np.testing.assert_allclose(
            backend.cumulative_sum(x, axis=0), [[0.5, 0.25, 0.25], [1.5, 2.25, 3.25]]
        )

"""The GPU path, proved without a GPU (chapter 12).

No machine that runs these tests needs a GPU. ``tests/fake_cupy`` holds a stand-in for CuPy: NumPy
under another name, whose arrays are a distinct type (so ``backend.device_of`` says ``"cuda"``),
with ``.get()`` for the copy to the host, ``cuda.runtime.getDeviceCount()`` reporting one GPU and
a ``cupyx.scatter_add`` that logs its calls. Installed in ``sys.modules`` by a fixture (and
removed after), it lets ``backend._load("cuda")`` succeed, and the tests check which code runs:

* creation helpers, ``.to("cuda")`` / ``.to("cpu")``, ops and their gradients stay on ``cuda``;
* the scatter-add of indexing and embeddings goes to ``cupyx.scatter_add``;
* a small model trains on ``cuda`` exactly as on the CPU, its checkpoint moves both ways, the
  optimizer state follows the model, batches are made on the host and moved once;
* mixing devices is an error that names both.

The stand-in's numbers are NumPy's, so this proves the routing, not CuPy's numerics. The errors
of a real machine without CuPy or without a GPU are tested by monkeypatching, and the example's
``--device cuda`` as a subprocess. Finally, the suite's own skip rule (``conftest.py``) is run
over a small test file: skipped with the reason where CuPy is missing, run where it is present.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

import tinygrad_edu as tg
import tinygrad_edu.functional as F
from tinygrad_edu import backend, data, nn
from tinygrad_edu.models import GPT, GPTConfig

pytestmark = pytest.mark.ch12

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FAKE = TESTS / "fake_cupy"


def _load_module(name: str):
    spec = importlib.util.spec_from_file_location(name, FAKE / name / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cuda(monkeypatch):
    """A fresh stand-in CuPy registered as device ``"cuda"``; everything is restored after.

    The backend caches the imported library (``_modules``), its array type (``_type_to_device``)
    and the default device; a real ``cupy`` (on a GPU machine) is put back as it was.
    """
    saved_modules = dict(backend._modules)
    saved_types = dict(backend._type_to_device)
    saved_default = backend._default_device
    backend._modules.pop("cuda", None)
    for t, d in list(backend._type_to_device.items()):
        if d == "cuda":
            del backend._type_to_device[t]
    cupy, cupyx = _load_module("cupy"), _load_module("cupyx")
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    assert backend._load("cuda") is cupy
    yield types.SimpleNamespace(cupy=cupy, cupyx=cupyx)
    backend._modules.clear()
    backend._modules.update(saved_modules)
    backend._type_to_device.clear()
    backend._type_to_device.update(saved_types)
    backend._default_device = saved_default


def on_cuda(t, cuda) -> bool:
    return t.device == "cuda" and type(t.data) is cuda.cupy.ndarray


# ---- devices, creation, moves -------------------------------------------------------------------


def test_cuda_loads_and_is_named(cuda):
    assert backend.get_device("cuda") == "cuda"
    assert backend.get_device("cuda:0") == "cuda"
    assert backend.namespace("cuda") is cuda.cupy
    assert backend.device_of(cuda.cupy.zeros(2)) == "cuda"
    assert backend.device_of(np.zeros(2)) == "cpu"  # a NumPy array is still the host's


def test_creation_helpers_make_cuda_tensors(cuda):
    x = tg.randn(2, 3, device="cuda")
    made = [
        tg.zeros(2, 3, device="cuda"),
        tg.ones(2, device="cuda", dtype="float64"),
        tg.full((2,), 7.0, device="cuda"),
        tg.arange(5, device="cuda"),
        x,
        tg.rand(4, device="cuda"),
        tg.randint(0, 9, (3,), device="cuda"),
        tg.tensor([[1.0, 2.0]], device="cuda"),
        tg.tensor(np.arange(3), device="cuda"),
        tg.zeros_like(x),
        tg.ones_like(x),
        tg.randn_like(x),
    ]
    for t in made:
        assert on_cuda(t, cuda), (t.shape, t.device, type(t.data))
    assert tg.ones(2, device="cuda", dtype="float64").dtype == "float64"
    assert tg.arange(5, device="cuda").dtype == "int64"
    # the same seed gives the same numbers on every device (drawn on the host, then moved)
    tg.manual_seed(3)
    a = tg.randn(4, 5, device="cuda").numpy()
    tg.manual_seed(3)
    np.testing.assert_array_equal(a, tg.randn(4, 5, device="cpu").numpy())


def test_set_default_device_cuda(cuda):
    backend.set_default_device("cuda")
    assert on_cuda(tg.zeros(2), cuda)
    assert on_cuda(tg.tensor(np.ones(2)), cuda)  # host arrays follow the default device
    assert "device='cuda'" in repr(tg.zeros(2))


def test_to_moves_data_both_ways(cuda):
    host = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = tg.tensor(host, device="cpu")
    y = x.to("cuda")
    assert on_cuda(y, cuda) and y.is_leaf
    assert y.to("cuda") is y  # already there: no copy
    back = y.to("cpu")
    assert back.device == "cpu" and type(back.data) is np.ndarray
    np.testing.assert_array_equal(back.numpy(), host)
    # .numpy() of a cuda tensor is a host copy, through CuPy's .get()
    h = y.numpy()
    assert type(h) is np.ndarray
    h[0, 0] = -1.0
    assert y.numpy()[0, 0] == 0.0
    # the run's own default device (cpu or strict) to cuda and back
    z = tg.tensor(host)
    np.testing.assert_array_equal(z.to("cuda").to(z.device).numpy(), host)


def test_ops_and_gradients_stay_on_cuda(cuda):
    """A graph with matmul, indexing, reductions, softmax: same values and gradients as the CPU."""
    tg.manual_seed(1)
    a_host, b_host = np.random.default_rng(0).standard_normal((2, 4, 3, 5))
    results = {}
    for dev in ("cpu", "cuda"):
        a = tg.tensor(a_host.reshape(4, 15)[:, :5], device=dev, requires_grad=True)  # (4, 5)
        b = tg.tensor(b_host.reshape(4, 15)[:, 5:10], device=dev, requires_grad=True)  # (4, 5)
        h = (a @ b.T).tanh()  # (4, 4)
        rows = h[tg.tensor([0, 2, 2], device=dev)]  # (3, 4), row 2 twice
        out = F.softmax(rows, axis=-1).max(axis=-1).sum() + a.mean() * b.var()
        out.backward()
        if dev == "cuda":
            for t in (h, rows, out, a.grad, b.grad):
                assert on_cuda(t, cuda)
        results[dev] = (out.numpy(), a.grad.numpy(), b.grad.numpy())
    for got, want in zip(results["cuda"], results["cpu"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_index_add_routes_to_cupyx_scatter_add(cuda, monkeypatch):
    x = tg.tensor([1.0, 2.0, 3.0, 4.0, 5.0], device="cuda", requires_grad=True)
    x[tg.tensor([0, 0, 3], device="cuda")].sum().backward()
    assert len(cuda.cupyx.CALLS) == 1
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 0.0, 1.0, 0.0])  # repeats add
    assert on_cuda(x.grad, cuda)

    # an embedding's backward: a one-hot matmul for small tables, scatter-add for big ones
    emb = nn.Embedding(6, 3).to("cuda")
    ids = tg.tensor([[1, 1, 4]], device="cuda")
    for limit, scatter_calls in [(F.EmbeddingFunction.ONEHOT_LIMIT, 0), (0, 1)]:
        monkeypatch.setattr(F.EmbeddingFunction, "ONEHOT_LIMIT", limit)
        cuda.cupyx.CALLS.clear()
        emb.zero_grad()
        emb(ids).sum().backward()
        assert len(cuda.cupyx.CALLS) == scatter_calls
        np.testing.assert_array_equal(emb.weight.grad.numpy()[:, 0], [0, 2, 0, 0, 1, 0])
        assert on_cuda(emb.weight.grad, cuda)

    cuda.cupyx.CALLS.clear()
    y = tg.tensor([1.0, 2.0], device="cpu", requires_grad=True)
    y[tg.tensor([1, 1], device="cpu")].sum().backward()
    assert cuda.cupyx.CALLS == []  # the CPU keeps NumPy's kernel


def test_conv1d_windows_on_cuda(cuda):
    """Strided windows: the CPU's zero-copy view is NumPy-only; cuda takes the portable path."""
    w_host = np.random.default_rng(1).standard_normal((4, 2, 3))
    x_host = np.random.default_rng(2).standard_normal((2, 2, 9))
    out = {}
    for dev in ("cpu", "cuda"):
        x = tg.tensor(x_host, device=dev, requires_grad=True)
        w = tg.tensor(w_host, device=dev, requires_grad=True)
        y = F.conv1d(x, w, stride=2, dilation=2)
        y.sum().backward()
        if dev == "cuda":
            assert on_cuda(y, cuda) and on_cuda(x.grad, cuda)
        out[dev] = (y.numpy(), x.grad.numpy(), w.grad.numpy())
    for got, want in zip(out["cuda"], out["cpu"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_mixing_devices_names_both(cuda):
    a = tg.ones(2, 3, device="cpu")
    b = tg.ones(2, 3, device="cuda")
    both = r"(?=.*'cpu')(?=.*'cuda')"
    for f in (lambda: a + b, lambda: b * a, lambda: a @ b.T, lambda: tg.concat([a, b])):
        with pytest.raises(tg.DeviceError, match=both):
            f()
    lin = nn.Linear(3, 2).to("cpu")
    with pytest.raises(tg.DeviceError, match=both):
        lin(b)


# ---- training, checkpoints, optimizer state, batches --------------------------------------------


def make_model(device, seed=0):
    tg.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 4)).to(device)


def train_steps(model, opt, x, y, steps):
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def batch(device):
    rng = np.random.default_rng(5)
    x = tg.tensor(rng.standard_normal((32, 6)).astype(np.float32), device=device)
    y = tg.tensor(rng.integers(0, 4, 32), device=device)
    return x, y


def test_small_model_trains_on_cuda_as_on_cpu(cuda):
    runs = {}
    for dev in ("cpu", "cuda"):
        model = make_model(dev)
        opt = tg.optim.AdamW(model.parameters(), lr=1e-2)
        runs[dev] = train_steps(model, opt, *batch(dev), steps=20)
        if dev == "cuda":
            for p in model.parameters():
                assert on_cuda(p, cuda) and on_cuda(p.grad, cuda)
            states = [v for s in opt.state.values() for v in s.values() if backend.is_array(v)]
            assert states and all(type(v) is cuda.cupy.ndarray for v in states)
    assert runs["cuda"][-1] < 0.8 * runs["cuda"][0]  # it learns
    np.testing.assert_allclose(runs["cuda"], runs["cpu"], rtol=1e-6)


@pytest.mark.parametrize(("src", "dst"), [("cuda", "cpu"), ("cpu", "cuda")])
def test_checkpoint_moves_between_devices(cuda, tmp_path, src, dst):
    """Save from one device, load on the other: the next steps equal the uninterrupted run's."""
    model = make_model(src)
    opt = tg.optim.AdamW(model.parameters(), lr=1e-2)
    train_steps(model, opt, *batch(src), steps=5)
    path = tmp_path / "ckpt.npz"
    tg.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
    expected = train_steps(model, opt, *batch(src), steps=3)

    ckpt = tg.load(path)
    assert all(type(v) is np.ndarray for v in ckpt["model"].values())  # files hold host arrays
    model2 = make_model(dst, seed=99)  # other weights, which the checkpoint replaces
    opt2 = tg.optim.AdamW(model2.parameters(), lr=1e-2)
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    for p in model2.parameters():
        assert p.device == dst
    got = train_steps(model2, opt2, *batch(dst), steps=3)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    states = [v for s in opt2.state.values() for v in s.values() if backend.is_array(v)]
    assert states and all(backend.device_of(v) == dst for v in states)


def test_optimizer_state_follows_the_model(cuda):
    model = make_model("cpu")
    opt = tg.optim.Adam(model.parameters(), lr=1e-2)
    train_steps(model, opt, *batch("cpu"), steps=2)
    model.to("cuda")  # after the optimizer was built and has state
    assert all(on_cuda(p, cuda) for p in model.parameters())
    train_steps(model, opt, *batch("cuda"), steps=1)
    states = [v for s in opt.state.values() for v in s.values() if backend.is_array(v)]
    assert states and all(type(v) is cuda.cupy.ndarray for v in states)


def test_batches_are_made_on_the_host_and_moved_once(cuda):
    ids = np.arange(500) % 7
    cuda.cupy.ASARRAY_CALLS.clear()
    x, y = data.get_batch(ids, batch_size=4, block_size=8, device="cuda")
    assert on_cuda(x, cuda) and on_cuda(y, cuda) and x.dtype == "int64"
    # exactly two host-to-device copies, each a whole (B, T) host array
    assert cuda.cupy.ASARRAY_CALLS == [(np.ndarray, (4, 8)), (np.ndarray, (4, 8))]
    np.testing.assert_array_equal(x.numpy()[:, 1:], y.numpy()[:, :-1])


def test_gpt_trains_generates_and_checkpoints_on_cuda(cuda, tmp_path):
    """The char Transformer through ``train.train`` with ``device="cuda"``, then sampling."""
    from tinygrad_edu import train as train_mod

    text = "to be or not to be, that is the question. " * 20
    tok = data.CharTokenizer(text)
    train_ids, val_ids = data.train_val_split(tok.encode(text))
    tg.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=2, n_embd=16))
    config = train_mod.TrainConfig(
        steps=3, batch_size=4, eval_interval=3, eval_iters=1, warmup_steps=1, device="cuda",
        out_dir=str(tmp_path / "out"), progress=False, plot=False,
    )  # fmt: skip
    result = train_mod.train(model, train_ids, val_ids, config, tok, log=None)
    assert result.step == 3
    assert all(on_cuda(p, cuda) for p in model.parameters())
    out = model.generate(tg.tensor([[0, 1]], device="cuda"), max_new_tokens=5)
    assert on_cuda(out, cuda) and out.shape == (1, 7)

    ckpt = train_mod.load_checkpoint(tmp_path / "out" / "last.npz")  # saved from cuda
    cpu_model = GPT(GPTConfig(**ckpt["model_config"]))
    cpu_model.to("cpu").load_state_dict(ckpt["model"])
    assert all(p.device == "cpu" for p in cpu_model.parameters())
    x = tg.tensor([[1, 2, 3]], device="cuda")
    cpu_logits, _ = cpu_model(x.to("cpu"))
    cuda_logits, _ = model(x)
    np.testing.assert_allclose(cpu_logits.numpy(), cuda_logits.numpy(), rtol=1e-5, atol=1e-6)


# ---- the errors of a real machine ---------------------------------------------------------------


@pytest.fixture
def no_cuda(monkeypatch):
    """Forget a loaded ``cuda`` (a real or stand-in CuPy) for one test."""
    monkeypatch.setattr(
        backend, "_modules", {k: v for k, v in backend._modules.items() if k != "cuda"}
    )
    monkeypatch.setattr(
        backend,
        "_type_to_device",
        {t: d for t, d in backend._type_to_device.items() if d != "cuda"},
    )


def test_cuda_without_cupy_says_which_extra_to_install(no_cuda, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    with pytest.raises(tg.DeviceError, match=r'needs CuPy.*pip install "tinygrad_edu\[cuda12\]"'):
        tg.zeros(2, device="cuda")
    with pytest.raises(tg.DeviceError, match=r"needs CuPy"):
        tg.ones(2).to("cuda")
    with pytest.raises(tg.DeviceError, match=r"needs CuPy"):
        nn.Linear(2, 2).to("cuda")


@pytest.mark.parametrize(
    ("count", "message"),
    [(lambda: 0, r"CuPy is installed but this machine has no GPU"),
     (lambda: (_ for _ in ()).throw(RuntimeError("cudaErrorNoDevice")),
      r"CuPy is installed but no GPU is usable \(cudaErrorNoDevice\)")],
)  # fmt: skip
def test_cupy_without_a_gpu_says_so(no_cuda, monkeypatch, count, message):
    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=count))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    with pytest.raises(tg.DeviceError, match=message):
        tg.zeros(2, device="cuda")
    assert "cuda" not in backend._modules


def _cupy_importable() -> bool:
    return importlib.util.find_spec("cupy") is not None


@pytest.mark.ch11
@pytest.mark.skipif(_cupy_importable(), reason="CuPy is installed here: --device cuda would work")
def test_example_device_cuda_without_cupy_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TINYGRAD_EDU_DEVICE")}
    env["PYTHONPATH"] = str(ROOT)  # this tree's package (the repository's or a learner's copy)
    cmd = [sys.executable, str(ROOT / "examples" / "char_transformer.py"), "--device", "cuda",
           "--out-dir", str(tmp_path / "out"), "--no-progress"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""  # nothing loaded or built before the device is checked
    assert proc.stderr.splitlines() == [
        "error: device 'cuda' needs CuPy, which is not installed: "
        'pip install "tinygrad_edu[cuda12]" (or [cuda13] for CUDA 13)'
    ]
    assert not (tmp_path / "out").exists()


# ---- the suite's skip rule (conftest.py) --------------------------------------------------------

SMALL_TEST = """
    import tinygrad_edu as tg

    def test_default_device(device):
        assert tg.zeros(2).device == device

    def test_add():
        assert (tg.ones(2) + tg.ones(2)).numpy().tolist() == [2.0, 2.0]
"""


def run_small_suite(tmp_path, device: str, with_fake_cupy: bool):
    """``pytest`` over one small file with this suite's conftest, in a separate process."""
    (tmp_path / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    (tmp_path / "test_small.py").write_text(textwrap.dedent(SMALL_TEST))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CI")}
    env["TINYGRAD_EDU_DEVICE"] = device
    env["PYTHONPATH"] = str(ROOT)  # this tree's package (the repository's or a learner's copy)
    if with_fake_cupy:
        env["PYTHONPATH"] = os.pathsep.join([str(FAKE), str(ROOT)])
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)


@pytest.mark.skipif(_cupy_importable(), reason="CuPy is installed here: nothing would be skipped")
def test_suite_on_cuda_without_cupy_is_skipped_with_the_reason(tmp_path):
    proc = run_small_suite(tmp_path, "cuda", with_fake_cupy=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 skipped" in proc.stdout and "passed" not in proc.stdout
    assert 'needs CuPy, which is not installed: pip install "tinygrad_edu[cuda12]"' in proc.stdout
    assert "error" not in proc.stdout.lower().replace("deviceerror", "")


def test_suite_on_cuda_with_cupy_runs_everything(tmp_path):
    proc = run_small_suite(tmp_path, "cuda", with_fake_cupy=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout and "skipped" not in proc.stdout


def test_suite_on_an_unknown_device_is_skipped_with_the_reason(tmp_path):
    proc = run_small_suite(tmp_path, "tpu", with_fake_cupy=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 skipped" in proc.stdout and "unknown device 'tpu'" in proc.stdout

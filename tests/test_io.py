"""Checkpoints: exact round trips, no pickle anywhere, atomic writes, and errors that explain.

The atomicity tests crash a writer on purpose, in three ways: an exception between writing and
renaming (in process), a process killed with SIGKILL while it waits before the rename, and a
process killed with SIGKILL at a random moment while it keeps writing large checkpoints.
"""

from __future__ import annotations

import glob
import math
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import backend, io, optim
from tinygrad_edu.io import CheckpointError
from tinygrad_edu.nn import Module, Parameter

pytestmark = pytest.mark.ch11


def _nested():
    rng = np.random.default_rng(0)
    return {
        "model": {
            "embed.weight": rng.standard_normal((5, 3)).astype(np.float32),  # a key with a dot
            "blocks": {"0": {"w": rng.standard_normal((2, 2))}},
            "ids": np.arange(6, dtype=np.int64).reshape(2, 3),
            "mask": np.array([[True, False], [False, True]]),
            "small": np.arange(4, dtype=np.int32),
            "bytes": np.arange(3, dtype=np.uint8),
            "half": np.ones(2, np.float16),
            "scalar_array": np.array(2.5),
            "empty": np.zeros((0, 3), np.float32),
            "strided": rng.standard_normal((4, 4))[::2, ::-1],  # not contiguous
        },
        "optimizer": {
            "state": {0: {"step": 3, "exp_avg": np.ones(2, np.float32)}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.99), "params": [0, 1]}],
        },
        "step": 1200,
        "loss": 1.25,
        "best": math.inf,
        "name": "tiny Shakespeare \u2013 \u00e9t\u00e9",
        "nothing": None,
        "flags": [True, False],
        "nested_list": [[1, 2], [3, [4, "five"]]],
        "arrays_in_a_list": [np.ones(2), {"x": np.zeros(1)}],
        "np_scalars": {"f": np.float32(0.5), "i": np.int64(-7)},
        "tokens": {"vocab": ["\n", " ", "a"], "stoi": {"a": 2}},
        "a.b": np.array([1.0]),  # its dotted path collides with that of a -> b below
        "a": {"b": np.array([2.0]), "b.c": 3},
        "int_keys": {3: "three", -1: "minus one"},
        "empty_dict": {},
        "big_int": 2**100,
    }


def _assert_same(got, want, where="obj"):
    assert type(got) is type(want) or (isinstance(want, np.ndarray) and type(got) is np.ndarray), (
        f"{where}: type {type(got)} != {type(want)}"
    )
    if isinstance(want, dict):
        assert list(got) == list(want), where  # keys, their types and their order
        for k in want:
            _assert_same(got[k], want[k], f"{where}[{k!r}]")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, (np.ndarray, np.generic)):
        assert got.dtype == want.dtype and got.shape == want.shape, where
        np.testing.assert_array_equal(got, want, err_msg=where)
    else:
        assert got == want, where


def test_round_trip_nested_dicts_of_arrays_and_plain_values(tmp_path):
    obj = _nested()
    path = tmp_path / "ckpt.npz"
    assert tg.save(obj, path) is None
    _assert_same(tg.load(path), obj)
    _assert_same(tg.load(str(path)), obj)  # str or pathlib paths


def test_tensors_and_device_arrays_are_saved_from_the_host(tmp_path, device):
    w = tg.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    assert w.device == device
    tg.save({"w": w, "raw": w.data}, tmp_path / "t.npz")
    out = tg.load(tmp_path / "t.npz")
    for key in ("w", "raw"):
        assert type(out[key]) is np.ndarray and out[key].dtype == np.float32
        np.testing.assert_array_equal(out[key], np.arange(6).reshape(2, 3))
    others = {
        "mask": np.array([True, False]),
        "ids": np.arange(5, dtype=np.int64),
        "bytes": np.arange(3, dtype=np.uint8),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 3), np.float32),
    }
    tg.save({k: tg.tensor(v).data for k, v in others.items()}, tmp_path / "o.npz")
    _assert_same(tg.load(tmp_path / "o.npz"), others)


def test_the_file_is_a_plain_npz_without_pickle(tmp_path):
    """np.load with pickle disabled reads every entry; arrays sit under their dotted paths."""
    path = tmp_path / "ckpt.npz"
    tg.save({"model": {"fc": {"weight": np.ones((2, 2))}}, "step": 3}, path)
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["__tinygrad_edu__", "model.fc.weight"]
        entries = {name: npz[name] for name in npz.files}
    assert not any(a.dtype.hasobject for a in entries.values())
    np.testing.assert_array_equal(entries["model.fc.weight"], np.ones((2, 2)))
    meta = entries["__tinygrad_edu__"].tobytes().decode()
    assert '"version": 1' in meta and '"format": "tinygrad_edu.checkpoint"' in meta


def test_rng_state_round_trip(tmp_path):
    tg.manual_seed(123)
    tg.randn(3)
    tg.save({"rng": backend.get_rng_state()}, tmp_path / "rng.npz")
    expected = tg.randn(4).numpy()
    backend.set_rng_state(tg.load(tmp_path / "rng.npz")["rng"])
    np.testing.assert_array_equal(tg.randn(4).numpy(), expected)


class _Tiny(Module):
    def __init__(self):
        super().__init__()
        self.w = Parameter(tg.randn(3, 2))
        self.b = Parameter(tg.zeros(2))

    def forward(self, x):
        return x @ self.w + self.b


def _train(model, opt, steps, seed):
    """``steps`` steps on random batches from ``np.random.default_rng(seed)`` (a seed, or a
    Generator that goes on where it is); returns the losses and the generator's state."""
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(steps):
        x = tg.tensor(rng.standard_normal((4, 3)).astype(np.float32))
        y = tg.tensor(rng.standard_normal((4, 2)).astype(np.float32))
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, rng.bit_generator.state


def test_model_and_optimizer_checkpoint_resumes_exactly(tmp_path):
    """A resumed run reproduces the uninterrupted run's losses and weights bit for bit."""
    tg.manual_seed(0)
    model = _Tiny()
    opt = optim.AdamW(model.parameters(), lr=0.05)
    full_losses, _ = _train(model, opt, 6, seed=1)

    tg.manual_seed(0)
    m1 = _Tiny()
    o1 = optim.AdamW(m1.parameters(), lr=0.05)
    losses, data_rng = _train(m1, o1, 3, seed=1)
    ckpt = {"model": m1.state_dict(), "optimizer": o1.state_dict(), "data_rng": data_rng}
    tg.save(ckpt, tmp_path / "resume.npz")

    tg.manual_seed(99)  # a different init: everything must come from the checkpoint
    m2 = _Tiny()
    o2 = optim.AdamW(m2.parameters(), lr=0.05)
    loaded = tg.load(tmp_path / "resume.npz")
    m2.load_state_dict(loaded["model"])
    o2.load_state_dict(loaded["optimizer"])
    rng2 = np.random.default_rng()
    rng2.bit_generator.state = loaded["data_rng"]
    losses += _train(m2, o2, 3, seed=rng2)[0]
    assert losses == full_losses
    for (name, p), (_, q) in zip(model.named_parameters(), m2.named_parameters(), strict=True):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
        assert q.device == p.device and q.dtype == "float32"


# =================================================================================================
# Atomic writes: a crash at any moment leaves the previous checkpoint intact
# =================================================================================================


def _temp_files(directory) -> list:
    return glob.glob(os.path.join(directory, ".*.tmp"))


def _old_checkpoint(path):
    tg.save({"step": 1, "w": np.full(1000, 1.0, np.float32)}, path)
    return path.read_bytes()


def test_crash_between_write_and_rename_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    before = _old_checkpoint(path)

    def crash(src, dst):
        raise KeyboardInterrupt  # Ctrl-C right before the rename

    monkeypatch.setattr(io.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        tg.save({"step": 2, "w": np.full(1000, 2.0, np.float32)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert tg.load(path)["step"] == 1
    assert _temp_files(tmp_path) == []  # the half-done temp file was cleaned up


def test_crash_in_the_middle_of_writing_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    before = _old_checkpoint(path)
    real_write = np.lib.format.write_array
    calls = []

    def write_then_fail(fp, array, **kw):
        calls.append(1)
        if len(calls) == 2:  # the first array is written, the second one fails
            raise OSError(28, "No space left on device")
        return real_write(fp, array, **kw)

    monkeypatch.setattr(np.lib.format, "write_array", write_then_fail)
    with pytest.raises(OSError, match="No space left"):
        tg.save({"a": np.ones(10), "b": np.ones(10)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _temp_files(tmp_path) == []


CHILD = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import tinygrad_edu as tg

    path, mode = sys.argv[1], sys.argv[2]
    if mode == "hang":
        # everything is written; the process then hangs right before fsync and the rename
        os.fsync = lambda fd: time.sleep(600)
        tg.save({"step": 2, "w": np.full(1_000_000, 2.0, np.float32)}, path)
    else:
        # keep writing large checkpoints until killed
        w = np.empty(8_000_000, np.float32)
        for step in range(2, 10_000):
            w[...] = step
            tg.save({"step": step, "w": w}, path)
    """
)


def _start_child(tmp_path, path, mode):
    script = tmp_path / "writer.py"
    script.write_text(CHILD)
    env = dict(os.environ, TINYGRAD_EDU_DEVICE="cpu")
    return subprocess.Popen([sys.executable, str(script), str(path), mode], env=env)


def _wait_for_temp_file(directory, proc, min_size=0, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name in _temp_files(directory):
            try:
                if os.path.getsize(name) >= min_size:
                    return name
            except FileNotFoundError:  # renamed between glob and getsize
                pass
        if proc.poll() is not None:
            pytest.fail(f"the writer exited early with code {proc.returncode}")
        time.sleep(0.001)
    proc.kill()
    pytest.fail("the writer never created its temporary file")


def _kill(proc):
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_killed_writer_before_rename_leaves_the_old_checkpoint(tmp_path):
    """SIGKILL (no cleanup code runs) after the new data is written, before it replaces the old."""
    path = tmp_path / "ckpt.npz"
    before = _old_checkpoint(path)
    proc = _start_child(tmp_path, path, "hang")
    _wait_for_temp_file(tmp_path, proc, min_size=4_000_000)  # the new checkpoint is in the temp
    _kill(proc)
    assert path.read_bytes() == before
    out = tg.load(path)
    assert out["step"] == 1 and np.all(out["w"] == 1.0)
    assert len(_temp_files(tmp_path)) == 1  # a killed process leaves its temp file behind


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_writer_killed_at_a_random_moment_never_leaves_a_torn_checkpoint(tmp_path):
    """A process writing 32 MB checkpoints in a loop is killed while a temp file is being
    written: the checkpoint on disk is always a complete one (the old one or a newer one), and
    its step and its array agree."""
    path = tmp_path / "ckpt.npz"
    _old_checkpoint(path)
    killed_mid_write = 0
    for attempt in range(3):
        proc = _start_child(tmp_path, path, "loop")
        _wait_for_temp_file(tmp_path, proc)
        time.sleep(0.003 * attempt)  # a little later into the write on each attempt
        _kill(proc)
        killed_mid_write += len(_temp_files(tmp_path)) > 0
        out = tg.load(path)
        assert out["w"].dtype == np.float32
        assert np.all(out["w"] == out["step"]), "step and weights come from different writes"
        for name in _temp_files(tmp_path):
            os.unlink(name)
    assert killed_mid_write >= 1, "no kill landed during a write; the test proved nothing"


# =================================================================================================
# Loading refuses pickles and explains bad files
# =================================================================================================


class _Sneaky:
    """Unpickling this creates a file: proof of whether pickle ran."""

    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.sentinel),))


def test_refuses_a_pickle_bearing_npz(tmp_path):
    sentinel = tmp_path / "pickle_ran"
    path = tmp_path / "evil.npz"
    np.savez(path, weights=np.ones(3), payload=np.array([_Sneaky(sentinel)], dtype=object))
    with pytest.raises(CheckpointError, match=r"evil.npz.*contains a pickled Python object"):
        tg.load(path)
    assert not sentinel.exists()


def test_refuses_a_checkpoint_with_a_pickled_entry_added(tmp_path):
    sentinel = tmp_path / "pickle_ran"
    path = tmp_path / "ckpt.npz"
    tg.save({"w": np.ones(3)}, path)
    with zipfile.ZipFile(path, "a") as zf, zf.open("extra.npy", "w") as f:
        payload = np.array([_Sneaky(sentinel)], dtype=object)
        np.lib.format.write_array(f, payload, allow_pickle=True)
    with pytest.raises(CheckpointError, match=r"pickled Python object, which is refused"):
        tg.load(path)
    assert not sentinel.exists()


def test_truncated_and_corrupt_files(tmp_path):
    path = tmp_path / "ckpt.npz"
    tg.save({"w": np.arange(10_000, dtype=np.float32), "step": 5}, path)
    data = path.read_bytes()
    for n in (len(data) // 2, len(data) - 10, 100):
        cut = tmp_path / f"cut{n}.npz"
        cut.write_bytes(data[:n])
        with pytest.raises(CheckpointError, match=rf"cut{n}.npz' is truncated or corrupt"):
            tg.load(cut)
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF  # one byte inside the array data: the zip CRC catches it
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match=r"truncated or corrupt .*Use an earlier checkpoint"):
        tg.load(bad)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.npz' is empty \(0 bytes\)"):
        tg.load(empty)


def test_files_that_are_not_checkpoints(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match=r"notes.txt' is not a checkpoint: tg.save writes"):
        tg.load(text)
    npy = tmp_path / "w.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(CheckpointError, match=r"is a single .npy array, not a checkpoint"):
        tg.load(npy)
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.ones(3))
    with pytest.raises(CheckpointError, match=r"was not written by tg.save.*np.load"):
        tg.load(plain)
    torch_file = tmp_path / "ckpt.pt"  # torch.save's layout: a zip around a pickle
    with zipfile.ZipFile(torch_file, "w") as zf:
        for name, payload in [("data.pkl", b"\x80\x02}q\x00."), ("version", b"3\n")]:
            zf.writestr(f"ckpt/{name}", payload)
    with pytest.raises(CheckpointError, match=r"ckpt.pt' was written by torch.save, whose pickle"):
        tg.load(torch_file)
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at .*missing.npz"):
        tg.load(tmp_path / "missing.npz")
    assert issubclass(CheckpointError, ValueError)


def test_future_format_version_is_refused(tmp_path):
    path = tmp_path / "future.npz"
    with open(path, "wb") as f:
        io._write_npz(f, {}, '{"format": "tinygrad_edu.checkpoint", "version": 99, "tree": {}}')
    with pytest.raises(CheckpointError, match=r"format version 99.*reads version 1"):
        tg.load(path)


def test_save_errors_name_the_key(tmp_path):
    path = tmp_path / "x.npz"
    with pytest.raises(TypeError, match=r"cannot store a function at 'config.act'"):
        tg.save({"config": {"act": lambda x: x}}, path)
    with pytest.raises(TypeError, match=r"array at 'model.w' has dtype object"):
        tg.save({"model": {"w": np.array([None, 1], dtype=object)}}, path)
    with pytest.raises(
        TypeError, match=r"dict keys must be strings or ints, got tuple key \(1, 2\)"
    ):
        tg.save({"a": {(1, 2): 3}}, path)
    with pytest.raises(FileNotFoundError, match=r"the directory .*nowhere' does not exist"):
        tg.save({"a": 1}, tmp_path / "nowhere" / "x.npz")
    assert not path.exists() and _temp_files(tmp_path) == []


def test_overwrite_keeps_permissions_and_replaces_content(tmp_path):
    path = tmp_path / "ckpt.npz"
    tg.save({"step": 1}, path)
    assert os.stat(path).st_mode & 0o777 == 0o644  # not the 0o600 of a temp file
    os.chmod(path, 0o640)
    tg.save({"step": 2}, path)
    assert tg.load(path)["step"] == 2
    assert os.stat(path).st_mode & 0o777 == 0o640


def _tampered(path, meta) -> pathlib.Path:
    """A checkpoint whose JSON document was edited by hand (no arrays)."""
    with open(path, "wb") as f:
        io._write_npz(f, {}, meta)
    return path


@pytest.mark.parametrize(
    "tree",
    [
        '{"dict": [[1]]}',  # a key without a value
        '{"array": "nowhere"}',  # an array that is not in the file
        '{"dict": [[[1], {"value": 1}]]}',  # a list as a key
        '{"list": ' * 5000 + "[]" + "}" * 5000,  # nested too deeply for Python
    ],
)
def test_tampered_metadata_is_a_checkpoint_error(tmp_path, tree):
    meta = '{"format": "tinygrad_edu.checkpoint", "version": 1, "tree": ' + tree + "}"
    path = _tampered(tmp_path / "edited.npz", meta)
    with pytest.raises(CheckpointError, match=r"edited.npz' is truncated or corrupt"):
        tg.load(path)


def test_load_model_refuses_entries_of_the_wrong_type(tmp_path):
    meta = (
        '{"format": "tinygrad_edu.checkpoint", "version": 1, "tree": {"dict": ['
        '["model", {"value": 1}], ["model_config", {"value": {}}], '
        '["tokenizer", {"value": {"chars": "ab"}}]]}}'
    )
    path = _tampered(tmp_path / "edited.npz", meta)
    with pytest.raises(CheckpointError, match=r"entry 'model' is a int, expected a dict"):
        io.load_model(path)
    meta = meta.replace('["model", {"value": 1}]', '["model", {"dict": []}]').replace(
        '["tokenizer"', '["model_type", {"value": ["GPT"]}], ["tokenizer"'
    )
    path = _tampered(tmp_path / "edited.npz", meta)
    with pytest.raises(CheckpointError, match=r"entry 'model_type' is a list, expected a str"):
        io.load_model(path)


def test_directories_and_misnamed_files(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"save: cannot write .* it is a directory"):
        tg.save({"a": 1}, tmp_path)
    with pytest.raises(IsADirectoryError, match=r"load: .* is a directory"):
        tg.load(tmp_path)
    assert _temp_files(tmp_path) == []
    npz = tmp_path / "w.safetensors"
    tg.save({"a": np.ones(2)}, tmp_path / "w.npz")
    os.replace(tmp_path / "w.npz", npz)  # an .npz given the other suffix
    with pytest.raises(CheckpointError, match=r"named .safetensors but is an .npz \(zip\)"):
        tg.load(npz)

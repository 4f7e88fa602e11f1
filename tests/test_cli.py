"""The training command line under faults and bad input (``examples/char_transformer.py``).

One test per class of fault, most of them running the example as a user does, in a separate
process with a tiny model and a small corpus: every user mistake ends with one line on stderr that
names the flag, file or value and what is expected (exit status 2, before any step is trained); a
run that fails on its way (full disk, NaN loss) stops with one line and exit status 1 and keeps its
last finite checkpoint; SIGINT and SIGTERM save and exit with 130 and 143, and a second signal
during the save neither damages the file nor prints a traceback.
"""

import contextlib
import errno
import gc
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import data, io
from tinygrad_edu import train as train_mod
from tinygrad_edu.models import GPT, GPTConfig
from tinygrad_edu.train import TrainConfig, load_checkpoint

pytestmark = pytest.mark.ch11

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "char_transformer.py"
ENV = {
    **os.environ,
    "MPLBACKEND": "Agg",
    "PYTHONUNBUFFERED": "1",
    "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
}
TINY = [
    "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
    "--batch-size", "4", "--eval-iters", "2", "--warmup-steps", "1", "--no-progress",
    "--no-plot", "--max-new-tokens", "5",
]  # fmt: skip
POSIX = pytest.mark.skipif(os.name != "posix", reason="POSIX signals and file permissions")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    path.write_text(data.BUNDLED_CORPUS.read_text(encoding="utf-8")[:20_000], encoding="utf-8")
    return path


def cli(*args, timeout=120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(EXAMPLE), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)


def start(*args) -> subprocess.Popen:
    cmd = [sys.executable, str(EXAMPLE), *map(str, args)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def one_line_error(proc, status=2) -> str:
    """The process failed with ``status`` and exactly one line on stderr: ``error: ...``."""
    assert proc.returncode == status, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def train_tiny(corpus, out, *extra):
    proc = cli(
        "--data", corpus, "--out-dir", out, "--steps", 2, "--eval-interval", 2, *TINY, *extra
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def encoded_corpus(corpus):
    """The test corpus as ``train`` takes it: (tokenizer, train ids, validation ids)."""
    text = corpus.read_text(encoding="utf-8")
    tok = data.CharTokenizer(text)
    train_ids, val_ids = data.train_val_split(tok.encode(text))
    return tok, train_ids, val_ids


def load_example():
    spec = importlib.util.spec_from_file_location("char_transformer_cli", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def tmpfs(path: Path, size: str, readonly=False):
    """A tiny file system of its own at ``path`` (needs root and mount(8); skips otherwise)."""
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a real full or read-only file system needs root to mount a tmpfs")
    path.mkdir(parents=True)
    options = f"size={size}" + (",ro" if readonly else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


# ---- usage errors: refused at the command line, exit 2 ------------------------------------------

NUMBER = "expected a finite number"
USAGE = [
    (["--lr", "500"], "unknown flag --lr; did you mean --learning-rate"),  # no prefix matching
    (["--lr", "1e-3"], "unknown flag --lr; did you mean --learning-rate"),
    (["--iters", "10"], "unknown flag --iters; did you mean --eval-iters"),
    (["--learning-rate", "nan"], f"argument --learning-rate: {NUMBER} > 0, got 'nan'"),
    (["--learning-rate", "inf"], f"argument --learning-rate: {NUMBER} > 0, got 'inf'"),
    (["--learning-rate", "-inf"], f"argument --learning-rate: {NUMBER} > 0, got '-inf'"),
    (["--learning-rate", "-1"], f"argument --learning-rate: {NUMBER} > 0, got '-1'"),
    (["--learning-rate=0"], f"argument --learning-rate: {NUMBER} > 0, got '0'"),
    (["--beta1", "1"], "argument --beta1: expected a number in [0, 1), got '1'"),
    (["--beta2", "-0.1"], "argument --beta2: expected a number in [0, 1), got '-0.1'"),
    (["--weight-decay", "nan"], f"argument --weight-decay: {NUMBER} >= 0, got 'nan'"),
    (["--grad-clip", "-1"], "argument --grad-clip: expected a finite number >= 0, got '-1'"),
    (["--dropout", "1"], "argument --dropout: expected a number in [0, 1), got '1'"),
    (["--n-layer", "1.5"], "argument --n-layer: expected an integer >= 1, got '1.5'"),
    (["--steps", "0"], "argument --steps: expected an integer >= 1, got '0'"),
    (["--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
    (["sample", "--temperature", "nan"], "--temperature: expected a number in [1e-06, 1e+06] (--"),
    (["sample", "--temperature", "1e-40"], "expected a number in [1e-06, 1e+06]"),  # overflows
    (["sample", "--temperature", "1e300"], "expected a number in [1e-06, 1e+06]"),  # overflows
    (["--out-dir", ""], "argument --out-dir: expected a path, got ''"),  # '' is the current dir
    (["--data", ""], "error: argument --data: expected a path, got ''"),
    (["sample", "--checkpoint", " "], "argument --checkpoint: expected a path, got ' '"),
    (["export", "--to", ""], "error: argument --to: expected a path, got ''"),
    (["--bias", "1"], "error: --bias takes no value, got '1'; write --bias or --no-bias"),
    (["--resume", "yes"], "error: --resume takes no value, got 'yes' (see --help)"),
    (["sample", "--max-new-tokens", "-5"], "argument --max-new-tokens: expected an integer >= 0"),
    (["sample", "--top-k", "0"], "argument --top-k: expected an integer >= 1, got '0'"),
    (["--resume", "--overwrite"], "argument --overwrite: not allowed with argument --resume"),
    (["predict"], "argument mode: invalid choice: 'predict'"),
    (["export", "--to", "w.txt"], "error: --to 'w.txt' must end in .safetensors or .npz"),
    (["export", "--out-dir", "nowhere"], "checkpoint 'nowhere/best.npz' does not exist; train"),
    (["export", "--to", "nowhere/w.npz"], "'nowhere/w.npz': pass a file path in an existing"),
]  # fmt: skip


@pytest.mark.parametrize("argv, expected", USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_bad_flags_are_one_line_usage_errors(argv, expected, capsys):
    assert load_example().main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert expected in lines[0]
    assert captured.out == ""


def test_export_never_replaces_a_file_of_the_run(corpus, tmp_path):
    out = tmp_path / "out"
    train_tiny(corpus, out)
    before = (out / "last.npz").read_bytes()
    err = one_line_error(cli("export", "--out-dir", out, "--to", out / "last.npz"))
    assert err.endswith("last.npz' would replace a file of the run; pass another name")
    assert (out / "last.npz").read_bytes() == before
    proc = cli("--no-progress", "export", "--out-dir", out, "--to", tmp_path / "w.npz")
    assert proc.returncode == 0, proc.stderr  # a mode after a flag without value is a mode
    assert io.load_model(tmp_path / "w.npz")[0].config.n_embd == 16


def test_a_missing_optional_package_is_one_line(corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "safetensors", None)  # as if it were not installed
    assert load_example().main(["sample", "--checkpoint", str(tmp_path / "w.safetensors")]) == 2
    (tmp_path / "w.safetensors").write_bytes(b"x" * 16)
    assert load_example().main(["sample", "--checkpoint", str(tmp_path / "w.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "error: load: .safetensors files need the safetensors package: "
        'pip install "tinygrad_edu[safetensors]"'
    )


def test_out_of_memory_is_one_line(corpus, tmp_path, monkeypatch, capsys):
    def too_big(*args, **kwargs):
        raise MemoryError("Unable to allocate 3.64 TiB for an array with shape (1000000, 1000000)")

    example = load_example()
    monkeypatch.setattr(example, "GPT", too_big)
    argv = ["--data", str(corpus), "--out-dir", str(tmp_path / "out"), *TINY, "--n-embd", "16"]
    assert example.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "error: out of memory (Unable to allocate 3.64 TiB for an array with shape (1000000, "
        "1000000)); pass a smaller --n-embd, --n-layer, --batch-size or --block-size"
    )


def test_values_that_start_with_a_dash_are_values():
    parser = load_example().make_parser()
    args = parser.parse_args(["sample", "--prompt", "-- ROMEO", "--temperature", "0.5"])
    assert (args.prompt, args.temperature) == ("-- ROMEO", 0.5)
    assert parser.parse_args(["--min-lr", "0", "--seed", "0"]).min_lr == 0.0


def test_bad_flags_from_the_shell_and_a_warmup_longer_than_the_run(corpus, tmp_path):
    err = one_line_error(cli("--lr", "500"))
    assert err == (
        "error: unknown flag --lr; did you mean --learning-rate or --lr-decay-steps? (see --help)"
    )
    out = tmp_path / "out"
    err = one_line_error(cli("--data", corpus, "--out-dir", out, "--steps", "3"))
    assert err == (
        "error: --warmup-steps (100) must be smaller than --steps (3), or the learning rate never "
        "leaves its warm-up; pass e.g. --warmup-steps 0"
    )
    assert not out.exists()  # refused before anything was created


def test_output_into_a_closed_pipe_stops_without_a_traceback(corpus, tmp_path):
    """``python examples/char_transformer.py sample | head -2``: the reader leaves early."""
    proc = start("--data", corpus, "--out-dir", tmp_path / "out", *TINY)
    proc.stdout.close()  # nobody reads: the first line written gets EPIPE
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and err == "", err


def test_help_is_complete_and_shows_each_default_once():
    proc = cli("--help")
    assert proc.returncode == 0 and proc.stderr == ""
    text = proc.stdout
    assert "(default: None)" not in text
    entries = re.split(r"\n(?=  -)", text.split("options:", 1)[1])  # one entry per option
    for action in load_example().make_parser()._actions:
        assert action.help, f"{action.option_strings or action.dest} has no help text"
        if action.option_strings:
            entry = next(e for e in entries if e.lstrip().startswith(action.option_strings[0]))
            assert entry.count("(default:") <= 1, entry
    for cls in (GPTConfig, TrainConfig):
        for f in fields(cls):
            flag = "--" + f.name.replace("_", "-")
            matching = [e for e in entries if e.lstrip().startswith(flag + " ")]
            if f.name in {"vocab_size", "out_dir", "device", "seed", "progress"}:
                continue  # from the data, or a flag of its own
            assert matching or any(e.lstrip().startswith(flag + ",") for e in entries), flag
            if f.default is not None:
                entry = " ".join((matching or [e for e in entries if flag + "," in e])[0].split())
                assert f"(default: {f.default})" in entry, entry


def test_config_values_are_checked_in_the_library_too():
    for name, value in [("learning_rate", float("nan")), ("beta2", 1.0), ("seed", -1)]:
        with pytest.raises(ValueError, match=f"TrainConfig: {name} must be"):
            TrainConfig(**{name: value})


# ---- data, out-dir and existing runs: refused before the first step, exit 2 ----------------------


def test_a_directory_as_data(tmp_path):
    err = one_line_error(cli("--data", tmp_path, "--out-dir", tmp_path / "out", *TINY))
    assert err == f"error: data file {str(tmp_path)!r} is a directory; pass a text file inside it"


def test_an_out_dir_that_is_a_file(corpus, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    err = one_line_error(cli("--data", corpus, "--out-dir", target, *TINY))
    assert err == f"error: --out-dir {str(target)!r} is a file, not a directory; pass a directory"
    assert target.read_text() == "mine"


@POSIX
def test_a_read_only_out_dir(corpus, tmp_path):
    out = tmp_path / "ro"
    if os.geteuid() == 0:  # root writes through permissions: use a read-only file system
        context = tmpfs(out, "1m", readonly=True)
    else:
        out.mkdir()
        out.chmod(0o555)
        context = contextlib.nullcontext()
    with context:
        proc = cli("--data", corpus, "--out-dir", out, *TINY)
    err = one_line_error(proc)
    assert err.startswith(f"error: --out-dir: cannot write in {str(out)!r} (")
    assert err.endswith("); pass a writable directory")
    assert "model:" not in proc.stdout  # nothing built, nothing trained


def test_an_out_dir_without_room_for_the_checkpoints(corpus, tmp_path, monkeypatch, capsys):
    """Checked with the free space the file system reports, before the first step."""
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=300 * 1024))
    argv = ["--data", str(corpus), "--out-dir", str(tmp_path / "out"), *TINY]
    assert load_example().main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"error: --out-dir: {str(tmp_path / 'out')!r} has 0.3 MiB free, and the checkpoints of "
        "this run need about 0.6 MiB; free some space or pass another directory"
    )
    assert "model:" not in captured.out


def test_an_out_dir_on_a_full_file_system(corpus, tmp_path):
    with tmpfs(tmp_path / "small", "300k") as out:
        proc = cli("--data", corpus, "--out-dir", out, *TINY)
        err = one_line_error(proc)
        assert "has 0.3 MiB free, and the checkpoints of this run need about 0.6 MiB" in err
        assert os.listdir(out) == []


def test_an_existing_run_is_continued_only_with_resume_and_replaced_only_with_overwrite(
    corpus, tmp_path
):
    out = tmp_path / "out"
    train_tiny(corpus, out)
    before = (out / "best.npz").read_bytes()
    err = one_line_error(cli("--data", corpus, "--out-dir", out, "--steps", 2, *TINY))
    assert err == (
        f"error: --out-dir {str(out)!r} already holds a run (best.npz, last.npz); continue it "
        "with --resume, replace it with --overwrite, or pass another --out-dir"
    )
    assert (out / "best.npz").read_bytes() == before
    err = one_line_error(cli("--data", corpus, "--out-dir", out, "--resume", "--steps", 1, *TINY))
    assert err == (
        f"error: --steps (1) is below the step the run in {str(out)!r} reached (2); pass more "
        "--steps to continue it, or leave the flag out"
    )
    assert (out / "best.npz").read_bytes() == before
    proc = train_tiny(corpus, out, "--overwrite", "--seed", "7")
    assert "resumed" not in proc.stdout
    assert load_checkpoint(out / "last.npz")["train_config"]["seed"] == 7


def test_stale_temporary_files_are_removed(corpus, tmp_path):
    out = tmp_path / "out"
    train_tiny(corpus, out)
    stale = [out / ".last.npz.k1ll3d.tmp", out / ".best.npz.x9y8z7.tmp"]
    for path in stale:
        path.write_bytes(b"PK\x03\x04 cut short by SIGKILL")
    others = [out / "notes.tmp", out / ".other.npz.abc.tmp"]
    for path in others:
        path.write_text("not ours")
    proc = cli("--data", corpus, "--out-dir", out, "--resume", "--steps", 4, *TINY)
    assert proc.returncode == 0, proc.stderr
    for path in stale:
        assert f"removed {path}, a temporary file left by an interrupted save" in proc.stdout
        assert not path.exists()
    assert all(path.read_text() == "not ours" for path in others)


def test_resume_on_a_run_of_another_model_names_the_file_and_the_model(corpus, tmp_path):
    from tinygrad_edu.models import CharLSTM, CharLSTMConfig

    tok, train_ids, val_ids = encoded_corpus(corpus)
    tg.manual_seed(0)
    model = CharLSTM(CharLSTMConfig(vocab_size=tok.vocab_size, block_size=8, hidden_size=16))
    out = tmp_path / "lstm"
    cfg = TrainConfig(steps=2, batch_size=2, eval_interval=2, eval_iters=1, warmup_steps=0,
                      out_dir=str(out), progress=False, plot=False)  # fmt: skip
    train_mod.train(model, train_ids, val_ids, cfg, tok, log=None)
    err = one_line_error(cli("--data", corpus, "--out-dir", out, "--resume", *TINY))
    assert err.startswith(f"error: {str(out / 'last.npz')!r} holds a CharLSTM model (")
    assert "hidden_size=16" in err
    assert err.endswith(
        "and this example trains a GPT; pass the --out-dir of a GPT run, or another --out-dir"
    )


def test_an_unusable_last_checkpoint_gets_the_advice_that_fits_and_is_kept(corpus, tmp_path):
    """A checkpoint of a newer format needs a newer tinygrad_edu, not "delete it"."""
    out = tmp_path / "out"
    train_tiny(corpus, out)
    last = out / "last.npz"
    with zipfile.ZipFile(out / "best.npz") as old, zipfile.ZipFile(last, "w") as new:
        for name in old.namelist():
            payload = old.read(name)
            if name == io.META_KEY + ".npy":
                payload = payload.replace(b'"version": 1', b'"version": 2')
            new.writestr(name, payload)
    newer = last.read_bytes()
    err = one_line_error(cli("--data", corpus, "--out-dir", out, "--resume", "--steps", 4, *TINY))
    assert err == (
        f"error: load: {str(last)!r} is checkpoint format version 2, this version of "
        "tinygrad_edu reads version 1; upgrade tinygrad_edu"
    )
    assert last.read_bytes() == newer
    last.write_bytes(newer[: len(newer) // 2])
    err = one_line_error(cli("--data", corpus, "--out-dir", out, "--resume", "--steps", 4, *TINY))
    assert f"{str(last)!r} is truncated or corrupt" in err and "delete" not in err


def test_a_checkpoint_with_config_fields_of_a_newer_version(corpus, tmp_path):
    out = tmp_path / "out"
    train_tiny(corpus, out)
    ckpt = tg.load(out / "last.npz")
    ckpt["model_config"]["rope"] = True  # a field this version does not have
    tg.save(ckpt, out / "last.npz")
    err = one_line_error(cli("--data", corpus, "--out-dir", out, "--resume", "--steps", 4, *TINY))
    assert err == (
        f"error: {str(out / 'last.npz')!r} has model_config fields this version does not know "
        "(rope): a newer tinygrad_edu wrote it; upgrade tinygrad_edu"
    )


# ---- non-finite numbers: refused on load, stop the run -------------------------------------------


def test_a_checkpoint_with_nan_weights_is_refused(corpus, tmp_path):
    out = tmp_path / "out"
    train_tiny(corpus, out)
    for name in ("best.npz", "last.npz"):
        ckpt = tg.load(out / name)
        # the tied head: one array under two names on NumPy, two copies where the loaded
        # arrays are converted (strict); poison both names so the file is the same either way
        for key in ("wte.weight", "lm_head.weight"):
            ckpt["model"][key][0, 0] = np.nan
        tg.save(ckpt, out / name)
    expected = (
        "holds NaN or infinite values (model.wte.weight, model.lm_head.weight): the run that "
        "wrote it diverged; "
        "use an earlier checkpoint, or train again with a lower --learning-rate"
    )
    err = one_line_error(cli("sample", "--out-dir", out, "--max-new-tokens", 5))
    assert err == f"error: checkpoint {str(out / 'best.npz')!r} {expected}"
    err = one_line_error(cli("--data", corpus, "--out-dir", out, "--resume", "--steps", 4, *TINY))
    assert err == f"error: checkpoint {str(out / 'last.npz')!r} {expected}"


def test_a_nan_loss_stops_the_run_and_keeps_the_last_finite_checkpoint(corpus, tmp_path):
    out = tmp_path / "out"
    train_tiny(corpus, out)  # last.npz at step 2, finite
    # a learning rate of 1e30 throws the weights to ~1e30: the next steps overflow float32
    proc = cli("--data", corpus, "--out-dir", out, "--resume", "--steps", 50,
               "--eval-interval", 50, "--learning-rate", "1e30", *TINY)  # fmt: skip
    err = one_line_error(proc, status=1)
    assert re.fullmatch(
        r"error: step (\d+): the (loss|gradient norm) is (nan|inf), so training stopped; "
        + re.escape(f"{str(out / 'last.npz')!r} (step 2) is the last finite checkpoint. ")
        + re.escape(
            "Find the first op that made it with tg.detect_anomaly(), or lower the learning rate"
        ),
        err,
    ), err
    assert load_checkpoint(out / "last.npz")["step"] == 2  # loads: finite


# ---- a full disk during the run: exit 1, nothing lost --------------------------------------------


def test_a_full_disk_during_a_save_stops_with_one_line(corpus, tmp_path, monkeypatch, capsys):
    """The third checkpoint write fails half-way with ENOSPC (as on a full disk)."""
    out = tmp_path / "out"
    calls = []
    real = io._write_npz

    def write_then_fill_up(f, arrays, meta):
        calls.append(1)
        if len(calls) == 3:
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(f, arrays, meta)

    monkeypatch.setattr(io, "_write_npz", write_then_fill_up)
    argv = ["--data", str(corpus), "--out-dir", str(out), "--steps", "6", "--eval-interval", "2",
            *TINY]  # fmt: skip
    assert load_example().main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(
        r"error: cannot write '.*/(best|last)\.npz' \(OSError: No space left on device\); the "
        r"previous (best|last)\.npz, if any, is intact: free some space or pass another --out-dir, "
        r"then continue with --resume",
        err,
    ), err
    assert load_checkpoint(out / "last.npz")["step"] == 2
    assert sorted(os.listdir(out)) == ["best.npz", "last.npz"]  # no temporary file left


@POSIX
def test_a_disk_that_fills_up_during_the_run(corpus, tmp_path):
    """A real full file system: another process takes every free byte after the first save."""
    with tmpfs(tmp_path / "small", "1m") as out:
        proc = start("--data", corpus, "--out-dir", out, "--steps", 100_000, "--eval-interval", 5,
                     *TINY)  # fmt: skip
        for line in proc.stdout:
            if line.startswith("step 5:"):
                break
        while not (out / "last.npz").exists() and proc.poll() is None:
            time.sleep(0.001)  # the first checkpoint is written
        fd = os.open(out / "filler", os.O_WRONLY | os.O_CREAT)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                os.write(fd, b"\0" * 4096)  # take every page the run frees
            except OSError:
                time.sleep(0.001)
        os.close(fd)
        rest, stderr = proc.communicate(timeout=60)
        os.unlink(out / "filler")
        proc.stderr = stderr
        err = one_line_error(proc, status=1)
        assert "(OSError: No space left on device); the previous" in err
        step = load_checkpoint(out / "last.npz")["step"]
        assert step >= 5 and step % 5 == 0
        assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


# ---- signals: save, exit 128 + signal, resume ---------------------------------------------------


@POSIX
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_exits_with_its_status_and_resume_continues(
    corpus, tmp_path, signum, status
):
    out = tmp_path / "out"
    proc = start("--data", corpus, "--out-dir", out, "--steps", 100_000, "--eval-interval", 10,
                 *TINY)  # fmt: skip
    for line in proc.stdout:
        if line.startswith("step 10:"):  # training is under way
            proc.send_signal(signum)
            break
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert "Traceback" not in err
    name = signal.Signals(signum).name
    match = re.search(
        rf"interrupted at step (\d+) \({name}\): saved (.*); continue with --resume", rest
    )
    assert match and match.group(2) == str(out / "last.npz"), rest
    step = int(match.group(1))
    assert load_checkpoint(out / "last.npz")["step"] == step >= 10
    proc = cli("--data", corpus, "--out-dir", out, "--resume", "--steps", step + 2, *TINY)
    assert proc.returncode == 0, proc.stderr
    assert f"resumed from {out / 'last.npz'} at step {step}" in proc.stdout
    assert f"step {step + 2}: train loss" in proc.stdout


@POSIX
def test_a_signal_during_an_evaluation_ends_it_at_once_and_saves(corpus, tmp_path):
    """An evaluation can take minutes (here it would never end): SIGTERM must not wait for it,
    or a scheduler's SIGKILL a few seconds later loses every step since the last checkpoint."""
    out = tmp_path / "out"
    proc = start("--data", corpus, "--out-dir", out, "--steps", 2, "--eval-interval", 2, *TINY,
                 "--eval-iters", 10**9)  # fmt: skip
    try:
        for line in proc.stdout:
            if line.startswith("model:"):
                break
        time.sleep(2.0)  # the two steps take milliseconds: the evaluation is under way
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert "interrupted at step 2 (SIGTERM)" in rest
    assert load_checkpoint(out / "last.npz")["step"] == 2


@POSIX
@pytest.mark.parametrize(
    "first, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_a_second_signal_during_the_save_waits_for_it(corpus, tmp_path, first, status):
    """A signal, then Ctrl-C while the checkpoint is being written (its temporary file exists):
    the save completes, the process exits with the first signal's status, no traceback."""
    # The default width and depth: a 10 MB checkpoint, whose save usually takes long enough to be
    # seen. A fast machine can finish it between two polls; such a try proves nothing, so it is
    # repeated (at most 5 times) until the second signal lands inside the save.
    for attempt in range(5):
        out = tmp_path / f"out{attempt}"
        proc = start("--data", corpus, "--out-dir", out, "--steps", 100_000,
                     "--eval-interval", 100_000, "--block-size", 16, "--batch-size", 2,
                     "--no-progress", "--no-plot")  # fmt: skip
        for line in proc.stdout:
            if line.startswith("model:"):
                break
        time.sleep(0.5)  # a few steps
        proc.send_signal(first)
        seen = False
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if out.is_dir() and any(n.startswith(".last.npz.") for n in os.listdir(out)):
                proc.send_signal(signal.SIGINT)  # the save is under way
                seen = True
                break
            time.sleep(0.0005)
        if seen:
            break
        proc.communicate(timeout=60)
    rest, err = proc.communicate(timeout=60)
    assert seen, (
        f"in 5 tries the save finished before the test saw its temporary file:\n{err[-2000:]}"
    )
    assert proc.returncode == status, err
    assert "Traceback" not in err and err == "", err
    assert "interrupted at step" in rest
    assert load_checkpoint(out / "last.npz")["step"] > 0
    assert sorted(os.listdir(out)) == ["last.npz"]


def test_signals_during_a_save_are_delivered_after_it(corpus, tmp_path, monkeypatch, python_sigint):
    """In-process and deterministic: Ctrl-C arrives twice in the middle of writing each checkpoint.
    No save is cut short; the run stops after the step and saves once more."""
    if not hasattr(signal, "raise_signal"):
        pytest.skip("signal.raise_signal is needed")
    real = io._write_npz

    def write_with_ctrl_c(f, arrays, meta):
        f.write(b"")
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
        real(f, arrays, meta)

    monkeypatch.setattr(io, "_write_npz", write_with_ctrl_c)
    tok, train_ids, val_ids = encoded_corpus(corpus)
    tg.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=2, n_embd=16))
    cfg = TrainConfig(steps=8, batch_size=2, eval_interval=2, eval_iters=1, warmup_steps=0,
                      out_dir=str(tmp_path / "out"), progress=False, plot=False)  # fmt: skip
    lines = []
    result = train_mod.train(model, train_ids, val_ids, cfg, tok, log=lines.append)
    assert result.interrupted and result.step == 2 and result.signal == signal.SIGINT
    assert lines[-1].startswith("interrupted at step 2 (SIGINT): saved")
    assert load_checkpoint(tmp_path / "out" / "last.npz")["step"] == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_deferred_signals_holds_ctrl_c_until_the_block_ends(python_sigint):
    if not hasattr(signal, "raise_signal"):
        pytest.skip("signal.raise_signal is needed")
    done = []
    with pytest.raises(KeyboardInterrupt):
        with io.deferred_signals():
            signal.raise_signal(signal.SIGINT)
            time.sleep(0.01)  # a handler would have run by now
            done.append("finished")
    assert done == ["finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ---- what the user sees: evaluation progress, the final message, memory -------------------------


def test_evaluation_shows_in_the_progress_bar(corpus, tmp_path, capsys):
    tok, train_ids, val_ids = encoded_corpus(corpus)
    tg.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=2, n_embd=16))
    cfg = TrainConfig(steps=2, batch_size=2, eval_interval=2, eval_iters=3, warmup_steps=0,
                      out_dir=str(tmp_path / "out"), progress=True, plot=False)  # fmt: skip
    train_mod.train(model, train_ids, val_ids, cfg, tok, log=None)
    err = capsys.readouterr().err
    assert "evaluating train: 3/3 batches" in err and "evaluating val: 3/3 batches" in err


def test_the_final_message_names_loss_png_only_when_it_is_drawn(corpus, tmp_path):
    proc = train_tiny(corpus, tmp_path / "a")
    assert f"; checkpoints in {tmp_path / 'a'}\n" in proc.stdout and "loss.png" not in proc.stdout
    proc = train_tiny(corpus, tmp_path / "b", "--plot")
    assert f"; checkpoints and loss.png in {tmp_path / 'b'}\n" in proc.stdout
    assert (tmp_path / "b" / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_each_loss_plot_is_freed_at_once(tmp_path):
    from matplotlib.figure import Figure

    history = {"step": [1, 2, 3], "loss": [3.0, 2.5, 2.2], "eval_step": [3], "train_loss": [2.1],
               "val_loss": [2.3]}  # fmt: skip
    gc.collect()
    before = sum(isinstance(o, Figure) for o in gc.get_objects())
    gc.disable()  # only plot_losses itself may free the figure
    try:
        for _ in range(3):
            train_mod.plot_losses(history, tmp_path / "loss.png")
        after = sum(isinstance(o, Figure) for o in gc.get_objects())
    finally:
        gc.enable()
    assert after == before

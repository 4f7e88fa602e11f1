"""The example, end to end: a tiny training run as a subprocess, sampling from its checkpoint,
resuming, and a one-line error (exit status 2) for each kind of bad input."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinygrad_edu import data

pytestmark = pytest.mark.ch11

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "char_transformer.py"
TINY = [
    "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
    "--batch-size", "4", "--eval-iters", "2", "--warmup-steps", "1", "--no-progress",
    "--no-plot",
]  # fmt: skip


def load_example():
    spec = importlib.util.spec_from_file_location("char_transformer_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    shutil.copy(data.BUNDLED_CORPUS, path)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus_file):
    """One tiny training run of the example, as a user runs it: a separate process."""
    out = tmp_path_factory.mktemp("run") / "out"
    cmd = [sys.executable, str(EXAMPLE), "--data", str(corpus_file), "--out-dir", str(out),
           "--steps", "4", "--eval-interval", "2", "--max-new-tokens", "20", *TINY]  # fmt: skip
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_smoke_run_trains_evaluates_saves_and_samples(trained):
    out, stdout = trained
    evals = re.findall(r"step (\d+): train loss (\d+\.\d{3}), val loss (\d+\.\d{3})", stdout)
    assert [int(s) for s, _, _ in evals] == [2, 4]
    assert "--- sample ---" in stdout
    assert (out / "best.npz").is_file() and (out / "last.npz").is_file()


def test_sample_mode_from_the_checkpoint(trained, capsys):
    out, _ = trained
    example = load_example()
    argv = ["sample", "--out-dir", str(out), "--prompt", "The", "--temperature", "0.8",
            "--top-k", "5", "--max-new-tokens", "30", "--seed", "3"]  # fmt: skip
    assert example.main(argv) == 0
    first = capsys.readouterr().out
    assert first.startswith("The") and len(first.rstrip("\n")) >= 3
    assert example.main(argv) == 0
    assert capsys.readouterr().out == first  # same seed, same text


def test_resume_continues_from_last_checkpoint(trained, corpus_file, capsys, tmp_path):
    out, _ = trained
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    example = load_example()
    argv = ["--data", str(corpus_file), "--out-dir", str(copy), "--resume", "--steps", "6",
            "--eval-interval", "2", "--max-new-tokens", "5", *TINY]  # fmt: skip
    assert example.main(argv) == 0
    stdout = capsys.readouterr().out
    assert "resumed from" in stdout and "at step 4" in stdout
    assert [int(s) for s in re.findall(r"step (\d+): train loss", stdout)] == [6]


def _error(argv, capsys) -> str:
    example = load_example()
    assert example.main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err  # one line, no traceback
    return lines[0]


def test_bad_data_errors(tmp_path, capsys):
    err = _error(["--data", str(tmp_path / "missing.txt"), *TINY], capsys)
    assert "does not exist; pass an existing text file" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    assert "is empty; pass a file with text in it" in _error(["--data", str(empty), *TINY], capsys)
    short = tmp_path / "short.txt"
    short.write_text("only a few characters here", encoding="utf-8")
    err = _error(["--data", str(short), "--out-dir", str(tmp_path / "o"), *TINY], capsys)
    assert "fewer than block_size + 1 = 17; use a longer text (--data PATH) or a smaller" in err


def test_bad_checkpoint_errors(trained, corpus_file, tmp_path, capsys):
    out, _ = trained
    err = _error(["sample", "--out-dir", str(tmp_path / "nothing")], capsys)
    assert "does not exist; train first" in err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "best.npz").write_bytes(b"PK\x03\x04 truncated")
    err = _error(["sample", "--out-dir", str(broken)], capsys)
    assert "best.npz' is truncated or corrupt" in err
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    argv = ["--data", str(corpus_file), "--out-dir", str(copy), "--resume", *TINY]
    err = _error([*argv, "--n-embd", "32"], capsys)
    assert "different model configuration (n_embd=16, not 32)" in err


def test_unknown_prompt_character_error(trained, capsys):
    out, _ = trained
    err = _error(["sample", "--out-dir", str(out), "--prompt", "Th\u00a7\u2603"], capsys)
    assert "not in the model's vocabulary: '\u00a7', '\u2603'; use only characters" in err

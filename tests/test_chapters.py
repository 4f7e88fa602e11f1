"""The book is executed: every ```python block of every chapter runs, and every quote matches.

For each ``chapters/NN_slug.md``:

* every fenced block whose info string is exactly ``python`` runs, top to bottom, in one fresh
  namespace per chapter, with the working directory set to a temporary folder (figures are
  written there) and matplotlib on its non-interactive ``Agg`` backend: the command a reader
  uses, ``python tools/run_chapter.py NN --figures DIR``. The test carries the chapter's marker,
  so ``pytest -m ch03`` also runs chapter 3's code (or a later chapter's marker where the code
  calls that chapter's exercise, ``CODE_NEEDS_CHAPTER``);
* every block preceded by a comment ``<!-- quote: tinygrad_edu/ops.py::Mul.backward -->`` (info
  string ``python quote``) is not run but compared with the source of that class or function in
  the library, character for character (after removing the common indentation). A quote that
  drifts from the code fails here.

The conventions are described in ``chapters/README.md``.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
# one runner for the reader and for this test: tools/run_chapter.py
from run_chapter import parse_blocks, run_chapter  # noqa: E402, F401

CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.md"))


def library_source(path: str, qualname: str) -> str:
    """The source of ``qualname`` (``Class``, ``function`` or ``Class.method``) in ``path``,
    decorators included, with the common indentation removed."""
    file = ROOT / path
    source = file.read_text()
    tree = ast.parse(source)
    node = None
    body = tree.body
    for part in qualname.split("."):
        node = next(
            (
                n
                for n in body
                if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and n.name == part
            ),
            None,
        )
        if node is None:
            raise LookupError(f"{path} has no {qualname!r} (no {part!r})")
        body = node.body
    lines = source.splitlines()
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    end = node.end_lineno
    # an exercise region that closes the function ends in a comment, which the syntax tree
    # leaves out: the quote includes it (the learner copy's stub needs both markers)
    while end < len(lines) and lines[end].strip() == "# --- end exercise ---":
        end += 1
    return textwrap.dedent("\n".join(lines[start - 1 : end])).strip("\n")


# In a learner's copy (tools/make_exercises.py), a chapter quotes an exercise region as the stub,
# and the learner then replaces the stub with their own code: there the quote is compared with the
# region bodies left out on both sides (everything around them must still match).
IN_LEARNER_COPY = (ROOT / ".learner_copy").exists()
_REGION_BODY = re.compile(
    r"^([ \t]*# --- exercise [^\n]*\n).*?^([ \t]*# --- end exercise ---)$", re.M | re.S
)


def without_region_bodies(code: str) -> str:
    """``code`` with the lines between each exercise's two marker comments removed."""
    return _REGION_BODY.sub(r"\1\2", code)


def _chapter_id(path: Path) -> str:
    return path.name[:2]


# A chapter whose code calls a later chapter's exercise runs under that chapter's marker (a test
# marked chK needs only the exercises of chapters 1..K; tests/test_learner_path.py checks it).
# Chapter 8 samples with top_k, which is exercise 11.4.
CODE_NEEDS_CHAPTER = {"08": 11}


def _params(code=False):
    params = []
    for p in CHAPTERS:
        chapter = int(_chapter_id(p))
        if code:
            chapter = CODE_NEEDS_CHAPTER.get(_chapter_id(p), chapter)
        params.append(pytest.param(p, id=p.stem, marks=getattr(pytest.mark, f"ch{chapter:02d}")))
    return params


def test_there_are_fourteen_chapters():
    numbers = [int(_chapter_id(p)) for p in CHAPTERS]
    assert numbers[:14] == list(range(1, 15)), f"chapters found: {[p.name for p in CHAPTERS]}"


@pytest.mark.parametrize("chapter", _params())
def test_chapter_quotes_match_the_library(chapter: Path):
    blocks = parse_blocks(chapter.read_text())
    for kind, code, line, target in blocks:
        if kind == "quote":
            assert target is not None, (
                f"{chapter.name}:{line}: a ```python quote block needs a "
                "<!-- quote: path::qualname --> comment on the line before it"
            )
        if target is None:
            continue
        assert kind == "quote", (
            f"{chapter.name}:{line}: the block after <!-- quote: ... --> must be ```python quote"
        )
        expected = library_source(*target)
        code = code.strip("\n")
        if IN_LEARNER_COPY:
            code, expected = without_region_bodies(code), without_region_bodies(expected)
        assert code == expected, (
            f"{chapter.name}:{line}: the quote of {target[0]}::{target[1]} differs from the "
            f"library; the library now reads:\n{expected}"
        )


@pytest.mark.parametrize("chapter", _params(code=True))
def test_chapter_code_runs(chapter: Path, tmp_path):
    """Each chapter runs in a fresh interpreter, with the command a reader uses
    (``python tools/run_chapter.py NN --figures DIR``): no state leaks between chapters (seeds,
    default device, Functions defined in a chapter), and BLAS runs single-threaded."""
    blocks = [b for b in parse_blocks(chapter.read_text()) if b[0] == "run"]
    assert blocks, f"{chapter.name} has no runnable ```python block"
    env = dict(os.environ, MPLBACKEND="Agg")
    cmd = [sys.executable, str(ROOT / "tools" / "run_chapter.py"), str(chapter),
           "--figures", str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    print(proc.stdout)
    assert proc.returncode == 0, (
        f"{chapter.name} failed:\n{proc.stderr[-4000:]}\n--- output ---\n{proc.stdout[-2000:]}"
    )
    # figures the chapter says it writes must exist
    for name in re.findall(r"savefig\(\s*[\"']([^\"']+)[\"']", chapter.read_text()):
        assert (tmp_path / name).exists(), f"{chapter.name} did not write {name}"


def test_quote_checker_catches_drift(tmp_path):
    text = (
        "<!-- quote: tinygrad_edu/ops.py::Mul.backward -->\n```python quote\n"
        "def backward(self, grad_out):\n    return grad_out\n```\n"
    )
    ((kind, code, _, target),) = parse_blocks(text)
    assert kind == "quote" and target == ("tinygrad_edu/ops.py", "Mul.backward")
    assert code.strip("\n") != library_source(*target)
    with pytest.raises(LookupError, match="NoSuchThing"):
        library_source("tinygrad_edu/ops.py", "NoSuchThing")


# ---- what chapter 14 relies on ------------------------------------------------------------------


@pytest.mark.ch14
def test_frozen_parameters_get_no_gradient_and_stay_put():
    import numpy as np

    import tinygrad_edu as tg
    from tinygrad_edu import nn, optim

    tg.manual_seed(0)
    body, head = nn.Linear(3, 4), nn.Linear(4, 2)
    for p in body.parameters():
        p.requires_grad_(False)
    before = [p.numpy().copy() for p in body.parameters()]
    head_before = head.weight.numpy().copy()
    with pytest.raises(ValueError, match="does not require grad"):
        optim.Adam(body.parameters() + head.parameters(), lr=0.1)  # frozen ones are refused
    opt = optim.Adam(head.parameters(), lr=0.1)
    loss = (head(body(tg.randn(5, 3))) ** 2).mean()
    loss.backward()
    assert all(p.grad is None for p in body.parameters())
    opt.step()
    for p, b in zip(body.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.numpy(), b)
    assert not np.array_equal(head.weight.numpy(), head_before)


@pytest.mark.ch14
def test_pretrained_checkpoint_loads_into_a_fresh_model(tmp_path):
    import numpy as np

    import tinygrad_edu as tg
    from tinygrad_edu import train as training
    from tinygrad_edu.data import CharTokenizer
    from tinygrad_edu.io import CheckpointError
    from tinygrad_edu.models.char_transformer import GPT, GPTConfig

    text = "to be or not to be, that is the question. " * 20
    tok = CharTokenizer(text)
    ids = np.asarray(tok.encode(text))
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=2, n_embd=8)
    cfg = training.TrainConfig(
        steps=3, batch_size=2, warmup_steps=1, eval_interval=3, eval_iters=1,
        out_dir=str(tmp_path), progress=False, plot=False, seed=0,
    )  # fmt: skip
    tg.manual_seed(0)
    trained = GPT(config)
    training.train(trained, ids[:700], ids[700:], cfg, tok, log=None)
    ckpt = training.load_checkpoint(tmp_path / "best.npz")
    tg.manual_seed(1)
    fresh = GPT(config)
    x = tg.tensor(ids[None, :8])
    assert not np.allclose(fresh(x)[0].numpy(), trained(x)[0].numpy())
    training.restore_model(fresh, ckpt)
    np.testing.assert_array_equal(fresh(x)[0].numpy(), trained(x)[0].numpy())
    other = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=2, n_embd=16))
    with pytest.raises(CheckpointError, match="n_embd"):
        training.restore_model(other, ckpt)


def test_a_learner_copy_compares_quotes_without_the_region_bodies():
    """A learner's own code in a region passes; a change outside the regions still fails."""
    stub = (
        "def f():\n    # --- exercise 2.1: x ---\n    raise NotImplementedError\n"
        "    # --- end exercise ---\n    return y\n"
    )
    solved = stub.replace("    raise NotImplementedError\n", "    y = 1\n    y += 1\n")
    assert without_region_bodies(stub) == without_region_bodies(solved)
    assert without_region_bodies(stub) != without_region_bodies(
        solved.replace("return y", "return 0")
    )

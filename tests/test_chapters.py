"""The book is executed: every ```python block of every chapter runs, and every quote matches.

For each ``chapters/NN_slug.md``:

* every fenced block whose info string is exactly ``python`` runs, top to bottom, in one fresh
  namespace per chapter, with the working directory set to a temporary folder (figures are
  written there) and matplotlib on its non-interactive ``Agg`` backend. The test carries the
  chapter's marker, so ``pytest -m ch03`` also runs chapter 3's code;
* every block preceded by a comment ``<!-- quote: tinygrad_edu/ops.py::Mul.backward -->`` (info
  string ``python quote``) is not run but compared with the source of that class or function in
  the library, character for character (after removing the common indentation). A quote that
  drifts from the code fails here.

The conventions are described in ``chapters/README.md``.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.md"))

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
QUOTE = re.compile(r"<!--\s*quote:\s*(\S+?)::(\S+?)\s*-->\s*$")


def parse_blocks(text: str):
    """Fenced code blocks of a chapter, in order: ``(kind, code, line, quote_target)``.

    ``kind`` is ``"run"`` for ```python, ``"quote"`` for ```python quote, ``"other"`` otherwise;
    ``quote_target`` is ``(path, qualname)`` from a ``<!-- quote: path::qualname -->`` comment on
    the last non-blank line before the fence, or None.
    """
    blocks = []
    for m in FENCE.finditer(text):
        info = m.group(1).strip()
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip().splitlines()
        target = None
        if before:
            q = QUOTE.search(before[-1].strip())
            if q:
                target = (q.group(1), q.group(2))
        if info == "python":
            kind = "run"
        elif info == "python quote":
            kind = "quote"
        else:
            kind = "other"
        blocks.append((kind, m.group(2), line, target))
    return blocks


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
    return textwrap.dedent("\n".join(lines[start - 1 : node.end_lineno])).strip("\n")


def _chapter_id(path: Path) -> str:
    return path.name[:2]


def _params():
    return [
        pytest.param(p, id=p.stem, marks=getattr(pytest.mark, f"ch{_chapter_id(p)}"))
        for p in CHAPTERS
    ]


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
        assert code.strip("\n") == expected, (
            f"{chapter.name}:{line}: the quote of {target[0]}::{target[1]} differs from the "
            f"library; the library now reads:\n{expected}"
        )


@pytest.mark.parametrize("chapter", _params())
def test_chapter_code_runs(chapter: Path, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import tinygrad_edu as tg

    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    blocks = [b for b in parse_blocks(chapter.read_text()) if b[0] == "run"]
    assert blocks, f"{chapter.name} has no runnable ```python block"
    namespace = {"__name__": f"chapter_{chapter.stem}"}
    device = tg.backend.default_device()
    out = io.StringIO()
    try:
        for _, code, line, _ in blocks:
            # pad with blank lines so a traceback's line numbers are the chapter's own
            padded = "\n" * line + code
            try:
                with contextlib.redirect_stdout(out):
                    exec(compile(padded, str(chapter), "exec"), namespace)
            except Exception as e:
                raise AssertionError(
                    f"{chapter.name}: the block at line {line} failed: {type(e).__name__}: {e}\n"
                    f"output so far:\n{out.getvalue()[-2000:]}"
                ) from e
    finally:
        plt.close("all")
        tg.backend.set_default_device(device)
    # figures the chapter says it writes must exist
    for name in re.findall(r"savefig\(\s*[\"']([^\"']+)[\"']", chapter.read_text()):
        assert (tmp_path / name).exists(), f"{chapter.name} did not write {name}"
    print(out.getvalue())


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

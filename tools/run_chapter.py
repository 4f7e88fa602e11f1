"""Run a chapter's code as a reader would: ``python tools/run_chapter.py 11 --figures figs/``.

Every fenced block whose info string is exactly ``python`` runs, top to bottom, in one namespace,
printing what the chapter prints; ``python quote`` blocks (library code the chapter quotes) are not
run. The working directory is the figures folder, so the figures the chapter saves land there
(a new temporary folder if ``--figures`` is not given; its path is printed). BLAS runs on one
thread unless ``OPENBLAS_NUM_THREADS`` (or ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``) is set:
these tiny matrices run several times faster on one thread than with threads fighting over the
cores. matplotlib draws without a window (``Agg``).

The package of this checkout (or of the learner's copy the tool sits in) is the one imported.
``tests/test_chapters.py`` runs every chapter with this same command.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy is imported: BLAS reads it once
os.environ.setdefault("MPLBACKEND", "Agg")

import argparse  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
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


def chapter_path(chapter: str, root: Path = ROOT) -> Path:
    """``11``, ``chapters/11_char_transformer_lm.md`` or a path -> the chapter's file."""
    if chapter.isdigit():
        found = sorted((root / "chapters").glob(f"{int(chapter):02d}_*.md"))
        if not found:
            names = sorted(p.name for p in (root / "chapters").glob("[0-9][0-9]_*.md"))
            raise FileNotFoundError(f"run_chapter: no chapter {chapter}; the chapters are {names}")
        return found[0]
    path = Path(chapter)
    if not path.exists():
        raise FileNotFoundError(f"run_chapter: no such chapter file: {chapter}")
    return path


def run_chapter(path) -> None:
    """Run every ```python block of a chapter, in order, in one namespace (in this process)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    blocks = [b for b in parse_blocks(path.read_text()) if b[0] == "run"]
    namespace = {"__name__": f"chapter_{path.stem}"}
    for _, code, line, _ in blocks:
        padded = "\n" * line + code  # so a traceback's line numbers are the chapter's own
        try:
            exec(compile(padded, str(path), "exec"), namespace)
        except Exception:
            print(f"\n{path.name}: the block at line {line} failed", file=sys.stderr)
            raise
        finally:
            plt.close("all")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", help="the chapter's number (11) or its file")
    parser.add_argument(
        "--figures", type=Path, help="folder for the figures (default: a new temporary folder)"
    )
    args = parser.parse_args(argv)
    try:
        path = chapter_path(args.chapter).resolve()
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    figures = args.figures or Path(tempfile.mkdtemp(prefix=f"{path.stem}_"))
    figures = figures.expanduser().resolve()
    figures.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))  # this checkout's tinygrad_edu, not an installed one
    os.chdir(figures)
    start = time.perf_counter()
    run_chapter(path)
    seconds = time.perf_counter() - start
    saved = sorted(p.name for p in figures.iterdir())
    print(f"\n{path.name} ran in {seconds:.1f} s (BLAS threads: "
          f"{os.environ['OPENBLAS_NUM_THREADS']}); figures in {figures}: "
          f"{', '.join(saved) if saved else 'none'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

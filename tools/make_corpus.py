"""Regenerate the corpus bundled with the package: ``tinygrad_edu/corpus/book.txt``.

The bundled corpus is what ``tinygrad_edu.data.load_corpus`` trains on when tiny Shakespeare is
neither given, cached nor downloadable (offline). It is the project's own text: the book's
chapters (``chapters/*.md``) followed by the docstrings of the package's modules, classes and
functions, so it is free to redistribute and says something useful when a model imitates it.

Run from the repository root:

    python tools/make_corpus.py
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tinygrad_edu" / "corpus" / "book.txt"
# Tiny Shakespeare must never end up in the bundled corpus (its first line of dialogue is checked
# always; every line of 40+ characters when $TINYGRAD_EDU_DATA names the file).
FORBIDDEN = "Before we proceed any further, hear me speak."


def docstrings(path: Path) -> list[str]:
    """The docstrings of a module and of every class and function in it, in source order."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [tree] + [
        n
        for n in ast.walk(tree)
        if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    nodes.sort(key=lambda n: getattr(n, "lineno", 0))
    return [d.strip() for d in (ast.get_docstring(n) for n in nodes) if d]


def build() -> str:
    parts = []
    for md in sorted((ROOT / "chapters").glob("*.md")):
        parts.append(md.read_text(encoding="utf-8").strip())
    for py in sorted((ROOT / "tinygrad_edu").rglob("*.py")):
        parts.extend(docstrings(py))
    text = "\n\n".join(parts) + "\n"
    shakespeare = os.environ.get("TINYGRAD_EDU_DATA")
    lines = [FORBIDDEN]
    if shakespeare and Path(shakespeare).is_file():
        source = Path(shakespeare).read_text(encoding="utf-8")
        lines += [s for s in source.splitlines() if len(s) >= 40]
    for line in lines:
        if line in text:
            sys.exit(f"make_corpus: the text contains {line!r}; the bundled corpus must not")
    return text


def main() -> None:
    text = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(text):,} characters, {len(set(text))} distinct")


if __name__ == "__main__":
    main()

"""Generate the learner's copy of tinygrad_edu: exercise regions become stubs.

The solutions live in the library itself, between two comment lines::

    def backward(self, grad_out):
        # --- exercise 2.7: absolute value backward ---
        a = self.inputs[0].data
        return grad_out * _const(backend.xp_of(a).sign(a))
        # --- end exercise ---

In the learner's copy the lines between the markers are replaced by one line at the indentation
of the opening marker::

        # --- exercise 2.7: absolute value backward ---
        raise NotImplementedError("Exercise 2.7 (chapters/02_autograd.md): absolute value ...")
        # --- end exercise ---

The message names the chapter and the hint command (``python tools/hint.py 2.7``; the hints are
in ``tools/hints.py``). A region must sit inside a function body (a stub at module or class level
would break the import). Exercise ``N.M`` belongs to chapter ``N``.

``--solved-through N`` keeps the solutions of chapters 1..N and stubs the rest: the state of a
learner who has finished chapter N (tests/test_learner_path.py checks every such state). The same
transformation is applied to the chapters' ``python quote`` blocks, so a quote of a function that
holds an exercise shows the stub in the copy, and to docstrings: a docstring paragraph listed as a
spoiler in ``tools/hints.py`` (it states the answer) is left out while its exercise is a stub.

Usage::

    python tools/make_exercises.py --list                  # the exercises and where they are
    python tools/make_exercises.py --out ~/my-exercises    # every exercise a stub
    python tools/make_exercises.py --out exercises/        # inside the repository (git-ignored)
    python tools/make_exercises.py --out DIR --solved-through 8   # chapters 1-8 solved

The output folder is a complete project: run ``python -m pytest -m ch02`` inside it.
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import hints as hints_data  # noqa: E402  (tools/hints.py)

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# --- exercise (?P<id>\d+\.\d+): (?P<title>.+?) ---[ \t]*$")
END = re.compile(r"^(?P<indent>[ \t]*)# --- end exercise ---[ \t]*$")
FENCE = re.compile(r"^(?P<open>```python[^\n`]*\n)(?P<code>.*?)^```[ \t]*$", re.S | re.M)
# files and folders copied next to the package so the output is a project pytest can run in
PROJECT_FILES = ("pyproject.toml",)
PROJECT_DIRS = ("tests", "chapters", "tools", "examples", "benchmarks")
MARKER_FILE = ".learner_copy"
# the project's README (tests/test_readme.py runs its examples). In a folder that already has a
# README.md of its own (the repository's exercises/), it is written under this name instead.
PROJECT_README = "PROJECT_README.md"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


class ExerciseError(ValueError):
    """A malformed exercise region: unclosed, nested, empty, or not inside a function."""


@dataclass
class Region:
    id: str
    title: str
    path: str  # relative to the package's parent, e.g. tinygrad_edu/ops.py
    begin: int  # 1-based line of the opening marker
    end: int  # 1-based line of the closing marker
    indent: str

    @property
    def chapter(self) -> int:
        return int(self.id.split(".")[0])


def chapter_file(chapter: int, root: Path = ROOT) -> str:
    """``chapters/NN_slug.md`` for a chapter number (``chapters/NN_*.md`` if not written yet)."""
    found = sorted((root / "chapters").glob(f"{chapter:02d}_*.md"))
    return f"chapters/{found[0].name}" if found else f"chapters/{chapter:02d}_*.md"


def stub_message(region: Region, root: Path = ROOT) -> str:
    """What the stub raises: the exercise, its chapter, its title and the hint command."""
    return (
        f"Exercise {region.id} ({chapter_file(region.chapter, root)}): {region.title}. "
        f"Hints: python tools/hint.py {region.id}"
    )


def find_regions(text: str, path: str) -> list[Region]:
    """The exercise regions of one file, checked for pairing."""
    regions = []
    open_region = None
    for i, line in enumerate(text.splitlines(), start=1):
        b, e = BEGIN.match(line), END.match(line)
        if b:
            if open_region is not None:
                raise ExerciseError(
                    f"{path}:{i}: exercise {b['id']} starts inside exercise {open_region.id} "
                    f"(opened at line {open_region.begin}); regions cannot nest"
                )
            open_region = Region(b["id"], b["title"], path, i, -1, b["indent"])
        elif e:
            if open_region is None:
                raise ExerciseError(
                    f"{path}:{i}: '# --- end exercise ---' without an opening marker"
                )
            if e["indent"] != open_region.indent:
                raise ExerciseError(
                    f"{path}:{i}: the end marker of exercise {open_region.id} is indented "
                    f"{len(e['indent'])} spaces, the opening marker {len(open_region.indent)}"
                )
            if i == open_region.begin + 1:
                raise ExerciseError(f"{path}:{i}: exercise {open_region.id} is empty")
            open_region.end = i
            regions.append(open_region)
            open_region = None
    if open_region is not None:
        raise ExerciseError(
            f"{path}:{open_region.begin}: exercise {open_region.id} has no '# --- end exercise ---'"
        )
    return regions


# -------------------------------------------------------------------------------------------------
# Docstring spoilers: a paragraph that states the answer is left out while its exercise is a stub
# -------------------------------------------------------------------------------------------------


def _enclosing_docstrings(tree: ast.AST, line: int) -> list[tuple[int, int]]:
    """(first line, last line) of the docstrings of every def/class that encloses ``line``."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if not (node.lineno <= line <= node.end_lineno) or not node.body:
            continue
        first = node.body[0]
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            found.append((first.lineno, first.end_lineno))
    return found


def _paragraph_spans(lines: list[str], start: int, stop: int) -> list[tuple[int, int]]:
    """0-based [begin, end) spans of the blank-line separated paragraphs in lines[start:stop]."""
    spans, begin = [], None
    for i in range(start, stop):
        if lines[i].strip() == "":
            if begin is not None:
                spans.append((begin, i))
                begin = None
        elif begin is None:
            begin = i
    if begin is not None:
        spans.append((begin, stop))
    return spans


def _spoiler_cuts(lines: list[str], doc: tuple[int, int], prefixes: list[str]):
    """0-based [begin, end) line spans to delete from one docstring, and the prefixes they match.

    From a line that starts with one of ``prefixes`` to the end of its paragraph goes, with the
    indented literal block that follows when the paragraph ends in ``::`` (and the blank line
    before it, when the whole paragraph goes).
    """
    first, last = doc[0] - 1, doc[1] - 1
    spans = _paragraph_spans(lines, first + 1, last)  # never the summary line, never the closing
    cuts, matched = [], set()
    k = 0
    while k < len(spans):
        begin, end = spans[k]
        hit = next(
            ((i, p) for i in range(begin, end) for p in prefixes if lines[i].strip().startswith(p)),
            None,
        )
        if hit is None:
            k += 1
            continue
        start, prefix = hit
        matched.add(prefix)
        indent = len(lines[begin]) - len(lines[begin].lstrip())
        if lines[end - 1].rstrip().endswith("::"):
            while k + 1 < len(spans):
                nb = spans[k + 1][0]
                if len(lines[nb]) - len(lines[nb].lstrip()) <= indent:
                    break
                end = spans[k + 1][1]
                k += 1
        whole = start == begin and lines[begin - 1].strip() == ""
        cuts.append((begin - 1 if whole else start, end))
        k += 1
    return cuts, matched


# -------------------------------------------------------------------------------------------------
# One source text -> its learner version
# -------------------------------------------------------------------------------------------------


def learner_source(
    text: str,
    path: str,
    solved_through: int = 0,
    root: Path = ROOT,
    hints: dict | None = None,
    check_functions: bool = True,
) -> tuple[str, list[Region]]:
    """``text`` with the regions of chapters after ``solved_through`` stubbed.

    Returns the new text and the stubbed regions. The docstrings that enclose a stubbed region
    lose the paragraphs ``hints[id]["spoilers"]`` lists (each must be found, so that a renamed
    paragraph is noticed).
    """
    hints = hints_data.HINTS if hints is None else hints
    regions = [r for r in find_regions(text, path) if r.chapter > solved_through]
    if not regions:
        return text, []
    lines = text.splitlines(keepends=True)
    cuts = []  # (begin, end, replacement lines), 0-based, end exclusive
    for r in regions:
        stub = f'{r.indent}raise NotImplementedError("{_escape(stub_message(r, root))}")\n'
        cuts.append((r.begin, r.end - 1, [stub]))
    prefixes_by_region = {r.id: list(hints.get(r.id, {}).get("spoilers", ())) for r in regions}
    if any(prefixes_by_region.values()):
        tree = ast.parse(text, filename=path)
        matched = {r.id: set() for r in regions}  # an exercise may have several regions
        for r in regions:
            prefixes = prefixes_by_region[r.id]
            for doc in _enclosing_docstrings(tree, r.begin) if prefixes else ():
                doc_cuts, found = _spoiler_cuts(lines, doc, prefixes)
                matched[r.id] |= found
                cuts += [(b, e, []) for b, e in doc_cuts]
        for r in regions:
            missing = [p for p in prefixes_by_region[r.id] if p not in matched[r.id]]
            if missing and check_functions:
                raise ExerciseError(
                    f"{path}:{r.begin}: tools/hints.py lists spoiler paragraphs of exercise "
                    f"{r.id} that no enclosing docstring starts with: {missing}"
                )
    for begin, end, new in sorted(set((b, e, tuple(n)) for b, e, n in cuts), reverse=True):
        lines[begin:end] = list(new)
    out = "".join(lines)
    if check_functions:
        _check_stubs_inside_functions(out, path, regions)
    return out, regions


def stub_text(text: str, path: str, root: Path = ROOT) -> tuple[str, list[Region]]:
    """``text`` with every region's body replaced by a NotImplementedError stub."""
    return learner_source(text, path, 0, root)


def learner_chapter(text: str, path: str, solved_through: int = 0, root: Path = ROOT) -> str:
    """A chapter with its ``python`` blocks transformed like the library (quotes show stubs)."""

    def one_block(m):
        if "# --- exercise " not in m["code"]:
            return m.group(0)
        code, _ = learner_source(m["code"], path, solved_through, root, check_functions=False)
        return m["open"] + code + "```"

    return FENCE.sub(one_block, text)


def _escape(message: str) -> str:
    return message.replace("\\", "\\\\").replace('"', '\\"')


def _check_stubs_inside_functions(text: str, path: str, regions: list[Region]) -> None:
    tree = ast.parse(text, filename=path)
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Raise):
                    inside.add(sub.lineno)
    stub_lines = [
        i
        for i, line in enumerate(text.splitlines(), start=1)
        if 'raise NotImplementedError("Exercise ' in line
    ]
    for i, r in zip(stub_lines, regions, strict=True):
        if i not in inside:
            raise ExerciseError(
                f"{path}:{r.begin}: exercise {r.id} is not inside a function; the stub would "
                "run at import time"
            )


def all_regions(package: Path) -> list[Region]:
    regions = []
    for file in sorted(package.rglob("*.py")):
        rel = file.relative_to(package.parent).as_posix()
        regions += find_regions(file.read_text(), rel)
    # one exercise may have several regions (a forward and its backward, two related rules),
    # all in one file; an id in two files is a mistake
    files: dict[str, set] = {}
    for r in regions:
        files.setdefault(r.id, set()).add(r.path)
    dupes = sorted(i for i, paths in files.items() if len(paths) > 1)
    if dupes:
        raise ExerciseError(f"exercise ids used in more than one file: {dupes}")
    return regions


# -------------------------------------------------------------------------------------------------
# The copy
# -------------------------------------------------------------------------------------------------


def make_copy(
    out: Path, root: Path = ROOT, solved_through: int = 0, force: bool = True
) -> list[Region]:
    """Write the learner's project into ``out``; returns the stubbed regions.

    With ``force=False`` a copy that already holds a ``tinygrad_edu`` package is refused (the
    learner's work would be overwritten).
    """
    out = Path(out)
    package = root / "tinygrad_edu"
    all_regions(package)  # each id in one file, regions well formed
    target = out / "tinygrad_edu"
    if target.exists() and not force:
        raise FileExistsError(
            f"make_exercises: {target} exists and may hold your solutions; pass --force to "
            "overwrite it, or choose another --out"
        )
    stubbed, new_text = [], {}  # transform everything before writing anything
    for file in sorted(package.rglob("*.py")):
        rel = file.relative_to(root).as_posix()
        text = file.read_text()
        if "# --- exercise " in text:
            new_text[rel], done = learner_source(text, rel, solved_through, root)
            stubbed += done
    out.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(package, target, ignore=IGNORE)
    for rel, text in new_text.items():
        (out / rel).write_text(text)
    for name in PROJECT_DIRS:
        if (root / name).exists():
            if (out / name).exists():
                shutil.rmtree(out / name)
            shutil.copytree(root / name, out / name, ignore=IGNORE)
    for chapter in sorted((out / "chapters").glob("*.md")):
        text = chapter.read_text()
        rel = chapter.relative_to(out).as_posix()
        chapter.write_text(learner_chapter(text, rel, solved_through, root))
    for name in PROJECT_FILES:
        if (root / name).exists():
            shutil.copy2(root / name, out / name)
    _copy_readme(root, out)
    (out / MARKER_FILE).write_text(
        "This folder was generated by tools/make_exercises.py; edit the exercises here.\n"
        f"solved through chapter: {solved_through}\n"
    )
    return stubbed


def _copy_readme(root: Path, out: Path) -> None:
    """The project's README.md, as README.md unless the folder has a README.md of its own."""
    readme = root / "README.md"
    if not readme.exists():
        return
    own = out / "README.md"
    if not own.exists() or own.read_text() == readme.read_text():
        shutil.copy2(readme, own)
        (out / PROJECT_README).unlink(missing_ok=True)
    else:
        shutil.copy2(readme, out / PROJECT_README)


def _id_key(exercise_id: str) -> tuple:
    return tuple(int(part) for part in exercise_id.split("."))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "exercises", help="output folder")
    parser.add_argument(
        "--solved-through",
        type=int,
        default=0,
        metavar="N",
        help="keep the solutions of chapters 1..N (default 0: every exercise is a stub)",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite a copy that already holds tinygrad_edu/"
    )
    parser.add_argument("--list", action="store_true", help="list the exercises and exit")
    args = parser.parse_args(argv)
    if args.list:
        for r in sorted(all_regions(ROOT / "tinygrad_edu"), key=lambda r: _id_key(r.id)):
            print(f"{r.id:>5}  {r.title:<40} {r.path}:{r.begin}  ({chapter_file(r.chapter)})")
        return 0
    if (ROOT / MARKER_FILE).exists():
        print("make_exercises: this is a learner copy already; run the tool in the repository")
        return 2
    out = args.out.expanduser()
    if out.resolve() == ROOT.resolve():
        print("make_exercises: refusing to overwrite the solutions; choose another --out")
        return 2
    if args.solved_through < 0:
        print(f"make_exercises: --solved-through must be 0 or more, got {args.solved_through}")
        return 2
    try:
        stubbed = make_copy(out, solved_through=args.solved_through, force=args.force)
    except FileExistsError as e:
        print(e)
        return 2
    stubbed = sorted(stubbed, key=lambda r: _id_key(r.id))
    print(
        f"wrote the learner copy to {out}: {len({r.id for r in stubbed})} exercises to do", end=""
    )
    print(f" (chapters 1-{args.solved_through} solved)" if args.solved_through else "")
    for r in stubbed:
        print(f"  {r.id:>5}  {r.title}  ({r.path})")
    print(
        f"start with: cd {out} && python -m pytest -m ch{stubbed[0].chapter:02d}"
        if stubbed
        else "nothing left to do: every exercise is solved in this copy"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

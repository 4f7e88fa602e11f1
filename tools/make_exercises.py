"""Generate the learner's copy of tinygrad_edu: every exercise region becomes a stub.

The solutions live in the library itself, between two comment lines::

    def backward(self, grad_out):
        # --- exercise 2.1: Abs backward ---
        a = self.inputs[0].data
        return grad_out * _const(backend.xp_of(a).sign(a))
        # --- end exercise ---

In the learner's copy the lines between the markers are replaced by one line at the indentation
of the opening marker::

        # --- exercise 2.1: Abs backward ---
        raise NotImplementedError("Exercise 2.1, see chapters/02_autograd.md")
        # --- end exercise ---

A region must sit inside a function body (a stub at module or class level would break the
import). Exercise ``N.M`` belongs to chapter ``N``.

Usage::

    python tools/make_exercises.py                # -> exercises/ (tinygrad_edu, tests, ...)
    python tools/make_exercises.py --out /tmp/ex  # anywhere else
    python tools/make_exercises.py --list         # the exercises and where they are

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
BEGIN = re.compile(r"^(?P<indent>[ \t]*)# --- exercise (?P<id>\d+\.\d+): (?P<title>.+?) ---[ \t]*$")
END = re.compile(r"^(?P<indent>[ \t]*)# --- end exercise ---[ \t]*$")
# files copied next to the package so the output is a project pytest can run in
PROJECT_FILES = ("pyproject.toml",)
PROJECT_DIRS = ("tests", "chapters", "tools", "examples", "benchmarks")
MARKER_FILE = ".learner_copy"


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


def stub_text(text: str, path: str, root: Path = ROOT) -> tuple[str, list[Region]]:
    """``text`` with every region's body replaced by a NotImplementedError stub."""
    regions = find_regions(text, path)
    lines = text.splitlines(keepends=True)
    for r in reversed(regions):
        msg = f"Exercise {r.id}, see {chapter_file(r.chapter, root)}"
        stub = f'{r.indent}raise NotImplementedError("{msg}")\n'
        lines[r.begin : r.end - 1] = [stub]
    out = "".join(lines)
    _check_stubs_inside_functions(out, path, regions)
    return out, regions


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
    ids = [r.id for r in regions]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ExerciseError(f"exercise ids used more than once: {dupes}")
    return regions


def make_copy(out: Path, root: Path = ROOT) -> list[Region]:
    """Write the learner's project into ``out``; returns the stubbed regions."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    package = root / "tinygrad_edu"
    regions = all_regions(package)  # validate everything before writing anything
    target = out / "tinygrad_edu"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for file in sorted(target.rglob("*.py")):
        rel = file.relative_to(out).as_posix()
        text = file.read_text()
        if "# --- exercise " in text:
            file.write_text(stub_text(text, rel, root)[0])
    for name in PROJECT_DIRS:
        if (root / name).exists():
            if (out / name).exists():
                shutil.rmtree(out / name)
            shutil.copytree(
                root / name, out / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
    for name in PROJECT_FILES:
        if (root / name).exists():
            shutil.copy2(root / name, out / name)
    (out / MARKER_FILE).write_text(
        "This folder was generated by tools/make_exercises.py; edit the exercises here.\n"
    )
    return regions


def _id_key(exercise_id: str) -> tuple:
    return tuple(int(part) for part in exercise_id.split("."))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "exercises", help="output folder")
    parser.add_argument("--list", action="store_true", help="list the exercises and exit")
    args = parser.parse_args(argv)
    if args.list:
        for r in sorted(all_regions(ROOT / "tinygrad_edu"), key=lambda r: _id_key(r.id)):
            print(f"{r.id:>5}  {r.title:<40} {r.path}:{r.begin}  ({chapter_file(r.chapter)})")
        return 0
    if args.out.resolve() == ROOT.resolve():
        print("make_exercises: refusing to overwrite the solutions; choose another --out")
        return 2
    regions = sorted(make_copy(args.out), key=lambda r: _id_key(r.id))
    print(f"wrote the learner copy to {args.out} with {len(regions)} exercises:")
    for r in regions:
        print(f"  {r.id:>5}  {r.title}  ({r.path})")
    print(
        f"start with: cd {args.out} && python -m pytest -m ch{regions[0].chapter:02d}"
        if regions
        else "no exercise markers found"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

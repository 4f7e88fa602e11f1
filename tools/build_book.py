"""Build the book: execute every chapter, write a static website and one notebook per chapter.

Usage::

    pip install -e ".[book]"
    python tools/build_book.py --out site/          # then open site/index.html in a browser

For every ``chapters/NN_slug.md`` (the one source of the book):

1. ``jupytext`` reads the Markdown into a notebook: each ```` ```python ```` block becomes a code
   cell; ```` ```python quote ```` blocks (library source quoted in the text) stay code in the
   text and are not run.
2. ``nbclient`` runs the code cells in order in one Jupyter kernel, in a fresh temporary folder,
   with matplotlib's ``Agg`` backend and one BLAS thread, as ``tests/test_chapters.py`` runs them.
   Every picture a cell writes there (``fig.savefig("NN_name.png")``, ``viz`` functions given a
   path) becomes an image output of that cell: the figures of the book are the ones its code drew
   in this build.
3. The executed notebook is written to ``OUT/notebooks/NN_slug.ipynb``, with a first cell that
   imports ``tinygrad_edu`` and installs it from the repository when it is missing.
4. The same notebook becomes a Markdown page (prose, code, each cell's printed output under it,
   its figures), and ``mkdocs`` with the Material theme turns the pages into the site: a front
   page with the table of contents, navigation between chapters, search, and math typeset in the
   browser by MathJax from a local copy (the ``django-static-mathjax`` package ships MathJax 3),
   so the site needs no network when it is read.

A chapter whose code raises stops the build with the chapter, the block's line and the error.
``OUT`` is replaced only when the build succeeds, and only if it is empty or an earlier build of
the book (so a wrong ``--out`` cannot delete anything else).
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS_DIR = ROOT / "chapters"
MARKER = ".tinygrad_edu_book"  # written into OUT; a folder without it is never replaced
PICTURES = (".png", ".jpg", ".jpeg", ".gif", ".svg")
BOOK_MODULES = ("jupytext", "nbclient", "nbformat", "ipykernel", "mkdocs", "material", "mathjax")

SETUP_CELL = """\
# Setup: this notebook needs the tinygrad_edu package. If it is not installed, install it from a
# checkout of the project's repository: $TINYGRAD_EDU_REPO, a folder above this notebook, or the
# checkout the book was built from. Otherwise say how to get it.
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

if importlib.util.find_spec("tinygrad_edu") is None:
    candidates = [os.environ.get("TINYGRAD_EDU_REPO"), *map(str, [Path.cwd(), *Path.cwd().parents])]
    candidates.append({built_from!r})
    repo = next(
        (Path(c) for c in candidates if c and (Path(c) / "tinygrad_edu" / "__init__.py").is_file()),
        None,
    )
    if repo is None:
        raise ModuleNotFoundError(
            "tinygrad_edu is not installed and no checkout of its repository was found. Get the "
            "project's repository, run `pip install -e .` in it (or set TINYGRAD_EDU_REPO to its "
            "folder and run this cell again), then restart the kernel."
        )
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "-e", str(repo)])
    print(f"installed tinygrad_edu from {{repo}}; if the next cell fails, restart the kernel")
import tinygrad_edu

print("tinygrad_edu", tinygrad_edu.__version__)
"""

MATHJAX_CONFIG = """\
window.MathJax = {
  tex: {
    inlineMath: [["\\\\(", "\\\\)"]],
    displayMath: [["\\\\[", "\\\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: { ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex" },
};
"""

EXTRA_CSS = """\
/* what a cell printed, right under the cell */
.book-output pre > code { background: var(--md-default-bg-color); }
.book-output { border-left: 3px solid var(--md-accent-fg-color); margin-top: -0.6em; }
.book-output::before {
  content: "output"; display: block; padding: 0.3em 0 0 1.2em;
  font-size: 0.6rem; color: var(--md-default-fg-color--light);
}
.book-output pre { margin-top: 0; }
.book-figure img { max-width: 100%; }
"""


class BookError(RuntimeError):
    """A chapter failed, or the output folder is not one the build may replace."""


# ---- reading a chapter ---------------------------------------------------------------------------

FENCE_LINE = re.compile(r"^(```|~~~)")
QUOTE_COMMENT = re.compile(r"<!--\s*quote:\s*(\S+?)::(\S+?)\s*-->\s*$")
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def chapters(directory: Path = CHAPTERS_DIR) -> list[Path]:
    return sorted(directory.glob("[0-9][0-9]_*.md"))


def chapter_title(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


def _map_prose(text: str, fn) -> str:
    """Apply ``fn`` to the prose of a Markdown text, leaving fenced code and inline code alone."""
    out, prose, in_fence = [], [], None
    for line in text.splitlines(keepends=True):
        m = FENCE_LINE.match(line.lstrip())
        if in_fence is None and m:
            out.append(fn("".join(prose)))
            prose, in_fence = [], m.group(1)
            out.append(line)
        elif in_fence is not None:
            out.append(line)
            if line.strip() == in_fence:
                in_fence = None
        else:
            prose.append(line)
    out.append(fn("".join(prose)))
    return "".join(out)


def _outside_inline_code(text: str, fn) -> str:
    parts = re.split(r"(`+[^`]*?`+)", text)
    return "".join(p if p.startswith("`") else fn(p) for p in parts)


def rewrite_links(text: str, target: str, figures: dict[str, str]) -> str:
    """Point a chapter's relative links at what exists where the text is shown.

    ``target`` is ``"site"`` (pages ``NN_slug.md``, ``exercises.md``, ``index.md``) or
    ``"notebook"`` (sibling notebooks ``NN_slug.ipynb``). A picture the build drew (``figures``:
    file name -> new path) is shown from there. Links to other files of the repository become
    plain text: the site does not carry the repository.
    """

    def one(m: re.Match) -> str:
        bang, label, href = m.groups()
        if re.match(r"^[a-z][a-z0-9+.-]*:", href) or href.startswith("#"):
            return m.group(0)  # absolute URL or anchor on the same page
        path, _, anchor = href.partition("#")
        name = path.split("/")[-1]
        anchor = f"#{anchor}" if anchor else ""
        if bang:
            return f"![{label}]({figures[name]})" if name in figures else m.group(0)
        if re.fullmatch(r"(\./)?\d\d_[\w-]+\.md", path):
            page = name if target == "site" else name[:-3] + ".ipynb"
            return f"[{label}]({page}{anchor})"
        if target == "site" and path in ("README.md", "./README.md"):
            return f"[{label}](index.md{anchor})"
        if target == "site" and path == "../exercises/README.md":
            return f"[{label}](exercises.md{anchor})"
        return label

    return _map_prose(text, lambda prose: _outside_inline_code(prose, lambda s: LINK.sub(one, s)))


def exercise_note(chapter_id: str, target: str) -> str:
    if target == "site":
        where = "see [Exercises: the learner's copy](exercises.md)"
    else:
        where = "see `exercises/README.md` in the repository"
    return (
        f"> **Doing the exercises.** The solutions live in the library. Make a learner's copy of "
        f"the project in which they are stubs (`python tools/make_exercises.py --out exercises/`), "
        f"fill them in, and check your work with `pytest -m ch{chapter_id}`: {where}.\n\n"
    )


def add_exercise_note(text: str, chapter_id: str, target: str) -> str:
    """After the chapter's "Exercises" heading, say how to do them (the learner-copy workflow)."""
    heading = re.compile(r"^(#{2,3} [^\n]*\bExercises?\b[^\n]*\n)\n?", re.M)
    note = exercise_note(chapter_id, target)
    return _map_prose(text, lambda prose: heading.sub(lambda m: m.group(1) + "\n" + note, prose))


def read_chapter(path: Path, built_from: Path):
    """The chapter as a notebook: a setup cell, then the chapter's cells in order.

    Cells that are not run (```python quote) become Markdown cells holding the code, with
    ``metadata.book.quote`` naming the quoted object.
    """
    import jupytext
    import nbformat

    text = path.read_text()
    nb = jupytext.reads(text, fmt="md")
    lines = [  # where each runnable block starts, for error messages
        text.count("\n", 0, m.start()) + 1
        for m in re.finditer(r"^```python[ \t]*$", text, flags=re.M)
    ]
    expected = len(lines)
    cells, run = [], 0
    for cell in nb.cells:
        meta = {k: v for k, v in cell.metadata.items() if not k.startswith("lines_to_")}
        if cell.cell_type == "code" and not meta:
            code = nbformat.v4.new_code_cell(cell.source)
            code.metadata["book"] = {"line": lines[run] if run < expected else None}
            cells.append(code)
            run += 1
        elif cell.cell_type == "code":  # ```python quote (or other options): shown, not run
            quote = None
            if cells and cells[-1].cell_type == "markdown":
                last = cells[-1].source.rstrip().splitlines()
                q = QUOTE_COMMENT.search(last[-1]) if last else None
                if q:
                    quote = f"{q.group(1)}::{q.group(2)}"
                    cells[-1].source = "\n".join(last[:-1]).rstrip()
            md = nbformat.v4.new_markdown_cell(f"```python\n{cell.source}\n```")
            md.metadata["book"] = {"quote": quote}
            cells.append(md)
        else:
            cells.append(nbformat.v4.new_markdown_cell(cell.source))
    if run != expected:
        raise BookError(
            f"{path.name}: jupytext found {run} runnable ```python blocks, the text has {expected}"
        )
    setup = nbformat.v4.new_code_cell(SETUP_CELL.format(built_from=str(built_from)))
    setup.metadata["book"] = {"setup": True}
    book = nbformat.v4.new_notebook(cells=[setup, *cells])
    book.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    book.metadata["language_info"] = {"name": "python"}
    return book


# ---- running a chapter ---------------------------------------------------------------------------


def _pictures(folder: Path) -> dict[Path, tuple[int, int]]:
    return {
        p: (p.stat().st_mtime_ns, p.stat().st_size)
        for p in folder.rglob("*")
        if p.suffix.lower() in PICTURES and p.is_file()
    }


def _kernel_env() -> dict[str, str]:
    env = dict(os.environ, MPLBACKEND="Agg", PYDEVD_DISABLE_FILE_VALIDATION="1")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    # the package of this checkout comes first, as in tests/test_chapters.py
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def execute_chapter(path: Path, timeout: int = 900) -> tuple[str, dict[str, bytes], float]:
    """Run one chapter; return the executed notebook (JSON), its pictures and the seconds taken."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    start = time.perf_counter()
    nb = read_chapter(path, ROOT)
    pictures: dict[str, bytes] = {}
    with (
        tempfile.TemporaryDirectory(prefix=f"book_{path.stem}_") as tmp,
        tempfile.TemporaryDirectory(prefix="book_kernel_") as sockets,
    ):
        workdir = Path(tmp)
        client = NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": tmp}}
        )
        # talk to the kernel over local sockets (files), not TCP
        client.km = client.create_kernel_manager()
        client.km.transport = "ipc"
        client.km.ip = str(Path(sockets) / "kernel")
        with client.setup_kernel(env=_kernel_env(), cwd=tmp):
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                before = _pictures(workdir)
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as e:
                    line = cell.metadata.get("book", {}).get("line")
                    where = f"the block at line {line}" if line else "the setup cell"
                    raise BookError(
                        f"{path.name}: {where} failed:\n{ANSI.sub('', str(e))}"
                    ) from None
                for pic, stamp in sorted(_pictures(workdir).items()):
                    if before.get(pic) == stamp:
                        continue
                    name = pic.relative_to(workdir).as_posix()
                    if name in pictures:  # drawn again by a later cell: keep both versions
                        name = f"{name.rsplit('.', 1)[0]}.cell{index}{pic.suffix}"
                    data = pic.read_bytes()
                    pictures[name] = data
                    mime = "image/svg+xml" if pic.suffix == ".svg" else f"image/{pic.suffix[1:]}"
                    mime = mime.replace("jpg", "jpeg")
                    payload = data.decode() if mime == "image/svg+xml" else _b64(data)
                    cell.outputs.append(
                        nbformat.v4.new_output(
                            "display_data", data={mime: payload}, metadata={"filename": name}
                        )
                    )
    return nbformat.writes(nb), pictures, time.perf_counter() - start


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---- writing a page ------------------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _fence(body: str, info: str) -> str:
    ticks = "`" * max(3, max((len(r) for r in re.findall(r"`+", body)), default=0) + 1)
    return f"{ticks}{info}\n{body.rstrip()}\n{ticks}\n"


def _output_text(cell) -> str:
    texts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            texts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            if not any(k.startswith("image/") for k in out.data) and "text/plain" in out.data:
                texts.append(out.data["text/plain"] + "\n")
    return ANSI.sub("", "".join(texts))


def notebook_to_page(nb, stem: str, figure_dir: str) -> tuple[str, dict[str, str]]:
    """The Markdown page of an executed chapter notebook, and its figures (name -> page path)."""
    parts, figures = [], {}
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.metadata.get("book", {}).get("setup"):
            continue
        if cell.cell_type == "markdown":
            quote = cell.metadata.get("book", {}).get("quote")
            if quote:
                code = cell.source.split("\n", 1)[1].rsplit("\n```", 1)[0]
                parts.append(_fence(code, f'python title="{quote}"'))
            else:
                parts.append(cell.source.rstrip() + "\n")
            continue
        parts.append(_fence(cell.source, "python"))
        text = _output_text(cell)
        if text.strip():
            parts.append(
                '<div class="book-output" markdown>\n\n' + _fence(text, "text") + "\n</div>\n"
            )
        for out in cell.outputs:
            name = out.get("metadata", {}).get("filename")
            if out.output_type == "display_data" and name:
                figures[name.split("/")[-1]] = f"{figure_dir}/{name}"
                parts.append(
                    f'<figure class="book-figure" markdown>\n![{name}]({figure_dir}/{name})\n'
                    f"</figure>\n"
                )
    return "\n".join(parts), figures


# ---- the site ------------------------------------------------------------------------------------


def front_page(entries: list[tuple[str, str, str]]) -> str:
    rows = "\n".join(
        f"| [{title}]({stem}.md) | [{stem}.ipynb](notebooks/{stem}.ipynb) |"
        for stem, title, _ in entries
    )
    return f"""# tinygrad_edu: the book

An educational, NumPy-first deep-learning framework, built up chapter by chapter to a
character-level Transformer language model. Every chapter below was executed to make this site:
the output under each code block is what that block printed, and every figure is the one its
code drew, in this build.

| chapter | notebook |
| --- | --- |
{rows}

**Notebooks.** Each chapter is also a Jupyter notebook, executed, with its outputs
(`notebooks/` next to this page). Open one in Jupyter (`jupyter lab notebooks/02_autograd.ipynb`)
or upload it to Colab and run it top to bottom; its first cell imports `tinygrad_edu` and, when it
is missing, installs it from a checkout of the project's repository (or says how to get one).

**Exercises.** The solutions live in the library; a learner's copy replaces them by stubs that
the tests check: see [Exercises: the learner's copy](exercises.md).
"""


def mkdocs_config(docs: Path, site: Path, entries) -> str:
    import json

    nav = [{"Home": "index.md"}] + [{title: f"{stem}.md"} for stem, title, _ in entries]
    nav.append({"Exercises": "exercises.md"})
    config = {
        "site_name": "tinygrad_edu: the book",
        "docs_dir": str(docs),
        "site_dir": str(site),
        "use_directory_urls": False,
        "theme": {
            "name": "material",
            "font": False,  # no web fonts: the site works without a network
            "features": [
                "navigation.footer",
                "navigation.top",
                "search.highlight",
                "content.code.copy",
            ],
        },
        "plugins": ["search"],
        "nav": nav,
        "markdown_extensions": [
            "admonition",
            "attr_list",
            "md_in_html",
            "tables",
            "toc",
            {"pymdownx.arithmatex": {"generic": True}},
            {"pymdownx.highlight": {"use_pygments": True}},
            "pymdownx.superfences",
        ],
        "extra_javascript": ["javascripts/mathjax-config.js", "javascripts/mathjax/tex-chtml.js"],
        "extra_css": ["stylesheets/book.css"],
    }
    return json.dumps(config, indent=1)  # JSON is YAML


def copy_mathjax(dest: Path) -> None:
    """MathJax 3 (TeX in, CommonHTML out) and what it loads on demand, from the installed copy."""
    import mathjax  # the django-static-mathjax package: MathJax's release files

    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-chtml.js").is_file():
        raise BookError(f"no MathJax at {es5}: reinstall the book extra (pip install -e '.[book]')")
    dest.mkdir(parents=True)
    shutil.copy2(es5 / "tex-chtml.js", dest / "tex-chtml.js")
    for sub in ("output/chtml/fonts/woff-v2", "input/tex/extensions", "ui", "a11y"):
        shutil.copytree(es5 / sub, dest / sub)


def exercises_page() -> str:
    text = (ROOT / "exercises" / "README.md").read_text()
    text = re.sub(
        r"^# Exercises\b.*$", "# Exercises: the learner's copy", text, count=1, flags=re.M
    )
    return rewrite_links(text.replace("](../chapters/", "]("), "site", {})


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise BookError(
            f"--out {out}: exists and is not an earlier build of the book (no {MARKER} in it); "
            "give an empty or new folder"
        )


def build(
    out: Path,
    jobs: int = 2,
    only: list[str] | None = None,
    chapters_dir: Path = CHAPTERS_DIR,
    log=print,
) -> dict[str, float]:
    """Build the site and notebooks into ``out``; return the seconds each chapter took."""
    missing = [m for m in BOOK_MODULES if _missing(m)]
    if missing:
        raise BookError(
            f"the book needs {', '.join(missing)}: pip install -e '.[book]' "
            "(see README, 'The book')"
        )
    import nbformat
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    out = out.resolve()
    _check_out(out)
    paths = chapters(chapters_dir)
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
    if not paths:
        raise BookError(f"no NN_*.md chapters in {chapters_dir} (filter: {only})")

    with tempfile.TemporaryDirectory(prefix="book_src_") as tmp:
        docs = Path(tmp) / "docs"
        (docs / "notebooks").mkdir(parents=True)
        timings: dict[str, float] = {}
        entries = []
        with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {p: pool.submit(execute_chapter, p) for p in paths}
            for path, future in futures.items():
                nb_json, pictures, seconds = future.result()
                timings[path.stem] = seconds
                log(f"  {path.name}: executed in {seconds:.1f} s")
                nb = nbformat.reads(nb_json, as_version=4)
                chapter_id = path.name[:2]
                figure_dir = f"figures/{path.stem}"
                for name, data in pictures.items():
                    (docs / figure_dir / name).parent.mkdir(parents=True, exist_ok=True)
                    (docs / figure_dir / name).write_bytes(data)
                page, figures = notebook_to_page(nb, path.stem, figure_dir)
                _copy_static_images(path, docs)
                page = add_exercise_note(rewrite_links(page, "site", figures), chapter_id, "site")
                (docs / f"{path.stem}.md").write_text(page)
                for cell in nb.cells:  # the notebook's own prose: links to sibling notebooks
                    if cell.cell_type == "markdown":
                        cell.source = rewrite_links(cell.source, "notebook", {})
                        cell.source = add_exercise_note(cell.source, chapter_id, "notebook")
                    cell.metadata.pop("book", None)
                nbformat.write(nb, docs / "notebooks" / f"{path.stem}.ipynb")
                entries.append((path.stem, chapter_title(path), figure_dir))
        (docs / "index.md").write_text(front_page(entries))
        (docs / "exercises.md").write_text(exercises_page())
        (docs / "javascripts").mkdir()
        (docs / "javascripts" / "mathjax-config.js").write_text(MATHJAX_CONFIG)
        copy_mathjax(docs / "javascripts" / "mathjax")
        (docs / "stylesheets").mkdir()
        (docs / "stylesheets" / "book.css").write_text(EXTRA_CSS)

        staging = out.parent / f".{out.name}.partial-{os.getpid()}"
        config_file = Path(tmp) / "mkdocs.yml"
        config_file.write_text(mkdocs_config(docs, staging, entries))
        log("  mkdocs: writing the site")
        # mkdocs reports broken links and the like as warnings, which strict mode makes fatal
        handler = _ListHandler()
        logging.getLogger("mkdocs").addHandler(handler)
        try:
            try:
                mkdocs_build(load_config(str(config_file), strict=True))
            except MkDocsException as e:
                raise BookError(f"mkdocs: {e}\n" + "\n".join(handler.messages)) from None
            finally:
                logging.getLogger("mkdocs").removeHandler(handler)
            (staging / MARKER).write_text(
                "written by tools/build_book.py; replaced by the next build\n"
            )
            if out.exists():
                shutil.rmtree(out)
            staging.rename(out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return timings


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(f"  {record.levelname.lower()}: {record.getMessage()}")


def _copy_static_images(chapter: Path, docs: Path) -> None:
    """Pictures kept in git that a chapter shows (``![..](figures/x.png)`` beside it)."""
    home = chapter.parent.resolve()
    for bang, _, href in LINK.findall(chapter.read_text()):
        source = (home / href.split("#")[0]).resolve()
        if bang and source.is_file() and source.is_relative_to(home):
            dest = docs / source.relative_to(home)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the site (replaced)")
    parser.add_argument("--jobs", type=int, default=2, help="chapters executed at once (default 2)")
    parser.add_argument(
        "--only", nargs="*", help="only chapters whose file name starts so, e.g. 02"
    )
    parser.add_argument(
        "--chapters",
        type=Path,
        default=CHAPTERS_DIR,
        help="folder of NN_slug.md (default chapters/)",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        timings = build(args.out, jobs=args.jobs, only=args.only, chapters_dir=args.chapters)
    except BookError as e:
        print(f"build_book: {e}", file=sys.stderr)
        return 1
    print(
        f"wrote {args.out}/index.html, {len(timings)} chapter pages and notebooks "
        f"in {time.perf_counter() - start:.0f} s; open {args.out.resolve() / 'index.html'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

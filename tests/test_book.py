"""The book as a website and as notebooks, checked in a real browser.

``tools/build_book.py`` is run once for this module (it executes every chapter), then headless
Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by Selenium) opens the front page,
every chapter page and the exercises page, served from the build folder on 127.0.0.1, and checks
that the math is typeset, every image loaded, every printed output is under its block, every link
to a page or file of the site resolves, and the browser console shows no error.

Screenshots of every page (the top, the whole page, the first figure and the first formula) are
written to ``$TINYGRAD_EDU_BOOK_SCREENSHOTS`` when it is set, else to a pytest temporary folder;
the folder is printed, and named in every failure message.

Skipped, with the reason, when the ``book`` extra (``pip install -e ".[book]"``) or Chromium is
missing, and on a device other than the default CPU one: the book is built once, on NumPy; the
chapters' code on the other devices is run by ``tests/test_chapters.py``.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.md"))

_BOOK_EXTRA = ("selenium", "mkdocs", "material", "jupytext", "nbclient", "nbformat", "mathjax")
for _module in _BOOK_EXTRA:
    pytest.importorskip(
        _module, reason=f"the book extra is missing ({_module}): pip install -e '.[book]'"
    )
if os.environ.get("TINYGRAD_EDU_DEVICE", "cpu") != "cpu":
    pytest.skip(
        "the book is built once, on the default device (cpu); chapters on "
        f"{os.environ['TINYGRAD_EDU_DEVICE']} are run by tests/test_chapters.py",
        allow_module_level=True,
    )
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(
        "headless Chromium is missing: apt-get install chromium chromium-driver",
        allow_module_level=True,
    )

import nbformat  # noqa: E402

pytestmark = pytest.mark.slow  # the module builds the whole book once (about a minute)

sys.path.insert(0, str(ROOT / "tools"))
import build_book  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("book") / "site"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_book.py"), "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    print(f"book built in {time.perf_counter() - start:.0f} s into {out}\n{proc.stdout}")
    assert proc.returncode == 0, f"the book build failed:\n{proc.stderr[-6000:]}"
    return out


@pytest.fixture(scope="module")
def base_url(site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = os.environ.get("TINYGRAD_EDU_BOOK_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("book_screenshots")
    path.mkdir(parents=True, exist_ok=True)
    print(f"book screenshots: {path}")
    return path


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


# ---- what the build wrote -----------------------------------------------------------------------


def _notebook(site: Path, chapter: Path):
    return nbformat.read(site / "notebooks" / f"{chapter.stem}.ipynb", as_version=4)


def _printed(nb) -> list[str]:
    """What each executed cell of a chapter printed (streams and text results), in order."""
    return [build_book._output_text(cell) for cell in nb.cells[1:] if cell.cell_type == "code"]


def test_build_writes_a_page_and_an_executed_notebook_per_chapter(site):
    assert len(CHAPTERS) >= 14
    assert (site / "index.html").is_file()
    index = (site / "index.html").read_text()
    for chapter in CHAPTERS:
        assert (site / f"{chapter.stem}.html").is_file(), f"no page for {chapter.name}"
        assert f'href="{chapter.stem}.html"' in index, (
            f"the front page does not link {chapter.name}"
        )
        nb = _notebook(site, chapter)
        code = [c for c in nb.cells if c.cell_type == "code"]
        runnable = len(re.findall(r"^```python[ \t]*$", chapter.read_text(), flags=re.M))
        assert len(code) == runnable + 1, f"{chapter.name}: a setup cell plus one cell per block"
        assert all(c.execution_count for c in code), f"{chapter.name}: a cell was not executed"
        assert nb.cells[0].outputs, f"{chapter.name}: the setup cell printed nothing"
        if "print(" in chapter.read_text():
            assert any(_printed(nb)), f"{chapter.name}: no printed output in the notebook"
        # the figures are the ones the chapter's code wrote in this build
        drawn = {
            o.metadata["filename"]
            for c in code
            for o in c.outputs
            if o.output_type == "display_data" and "filename" in o.get("metadata", {})
        }
        for name in re.findall(r"savefig\(\s*[\"']([^\"']+)[\"']", chapter.read_text()):
            assert name in drawn, f"{chapter.name}: {name} is not an output of the notebook"
            assert (site / "figures" / chapter.stem / name).is_file()


def test_setup_cell_installs_from_a_checkout_or_says_how(monkeypatch, tmp_path, site):
    import importlib.util

    source = _notebook(site, CHAPTERS[0]).cells[0].source
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tinygrad_edu" else real_find_spec(name, *a),
    )
    calls = []
    monkeypatch.setattr(subprocess, "check_call", lambda cmd, **kw: calls.append(cmd))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TINYGRAD_EDU_REPO", raising=False)
    exec(compile(source, "setup cell", "exec"), {})  # finds the checkout it was built from
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", "-e", str(ROOT)]]

    nowhere = source.replace(repr(str(ROOT)), repr(str(tmp_path / "gone")))
    assert nowhere != source
    with pytest.raises(ModuleNotFoundError, match="pip install -e"):
        exec(compile(nowhere, "setup cell", "exec"), {})
    monkeypatch.setenv("TINYGRAD_EDU_REPO", str(ROOT))
    exec(compile(nowhere, "setup cell", "exec"), {})
    assert calls[-1][-1] == str(ROOT)


def test_links_are_rewritten_for_the_site_and_the_notebooks():
    text = (
        "See [chapter 3](03_dense_layers_and_mlps.md#31-a), "
        "[the exercises](../exercises/README.md), "
        "[ops](../tinygrad_edu/ops.py), [web](https://example.org) and `[x](y.md)`.\n"
        "```python\nprint('[a](b.md)')\n```\n![loss](11_loss.png)\n"
    )
    site = build_book.rewrite_links(text, "site", {"11_loss.png": "figures/11/11_loss.png"})
    assert "[chapter 3](03_dense_layers_and_mlps.md#31-a)" in site
    assert "[the exercises](exercises.md)" in site
    assert "[ops]" not in site and " ops, " in site  # the site does not carry the repository
    assert "[web](https://example.org)" in site and "`[x](y.md)`" in site
    assert "print('[a](b.md)')" in site and "![loss](figures/11/11_loss.png)" in site
    notebook = build_book.rewrite_links(text, "notebook", {})
    assert "[chapter 3](03_dense_layers_and_mlps.ipynb#31-a)" in notebook


SMALL_BOOK = {
    "01_first.md": r"""# 1. First

Math $a^2 + b^2$ and

$$ \frac{1}{2} $$

See [the next chapter](02_second.md), [ops](../tinygrad_edu/ops.py) and ![kept](figures/kept.png).

<!-- quote: tinygrad_edu/ops.py::Mul -->
```python quote
raise SystemExit("a quote was run")
```

```python
import matplotlib.pyplot as plt

print("hello from the first block")
fig, ax = plt.subplots()
ax.plot([1, 2])
fig.savefig("01_line.png")
```

```python
ax.plot([2, 1])
fig.savefig("01_line.png")  # the same file, drawn again
x = 41
x + 1
```

## Exercises

Do something.
""",
    "02_second.md": (
        "# 2. Second\n\n```python\nprint('second', x if 'x' in dir() else 'fresh')\n```\n"
    ),
}


def _small_book(folder: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir()
    for name, text in SMALL_BOOK.items():
        (folder / name).write_text(text)
    (folder / "figures").mkdir()
    fig, ax = plt.subplots(figsize=(2, 2))
    fig.savefig(folder / "figures" / "kept.png")
    plt.close(fig)
    return folder


def test_a_small_book_end_to_end(tmp_path):
    chapters = _small_book(tmp_path / "chapters")
    out = tmp_path / "site"
    build_book.build(out, jobs=1, chapters_dir=chapters, log=lambda *a: None)
    page = (out / "01_first.html").read_text()
    assert 'class="book-output"' in page and "hello from the first block" in page
    assert ">42\n<" in page or ">42<" in page  # the value of a last expression is shown
    assert "a quote was run" in page  # shown as code, never run (else the build had failed)
    assert 'href="02_second.html"' in page and "ops.py" not in page.replace("ops.py::", "")
    assert 'href="exercises.html"' in page  # the learner-copy workflow, after "Exercises"
    assert 'class="arithmatex"' in page and "$" not in re.sub(
        r"<(pre|code)[^>]*>.*?</\1>", "", page, flags=re.S
    )
    drawn = sorted((out / "figures" / "01_first").glob("01_line*.png"))  # both versions kept
    assert len(drawn) == 2 and drawn[0].read_bytes() != drawn[1].read_bytes()
    assert (out / "figures" / "kept.png").is_file()
    # one kernel per chapter: nothing leaks from chapter 1 into chapter 2
    nb = nbformat.read(out / "notebooks" / "02_second.ipynb", as_version=4)
    assert build_book._output_text(nb.cells[-1]) == "second fresh\n"
    nb = nbformat.read(out / "notebooks" / "01_first.ipynb", as_version=4)
    kinds = [c.cell_type for c in nb.cells]
    assert kinds[0] == "code" and kinds.count("code") == 3  # setup + the two runnable blocks
    assert "tools/make_exercises.py" in nb.cells[-1].source

    # a chapter that fails stops the build, names itself, and leaves the last site as it was
    (chapters / "03_broken.md").write_text("# 3. Broken\n\n```python\n1 / 0\n```\n")
    with pytest.raises(
        build_book.BookError,
        match=r"(?s)03_broken.md: the block at line 3 failed.*ZeroDivisionError",
    ):
        build_book.build(out, jobs=1, chapters_dir=chapters, log=lambda *a: None)
    assert (out / "01_first.html").read_text() == page and not (out / "03_broken.html").exists()


def test_a_picture_that_is_not_there_stops_the_build(tmp_path):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    (chapters / "01_one.md").write_text("# 1. One\n\n![gone](gone.png)\n\n```python\nx = 1\n```\n")
    with pytest.raises(build_book.BookError, match=r"(?s)mkdocs: .*gone\.png"):
        build_book.build(tmp_path / "site", jobs=1, chapters_dir=chapters, log=lambda *a: None)
    assert not (tmp_path / "site").exists()


def test_out_folder_that_is_not_a_book_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(build_book.BookError, match="not an earlier build"):
        build_book.build(tmp_path, only=["01"], log=lambda *a: None)
    assert (tmp_path / "notes.txt").read_text() == "mine"


# ---- the pages, in Chromium ---------------------------------------------------------------------

PAGES = ["index", *(c.stem for c in CHAPTERS), "exercises"]

_VISIBLE_PROSE = """
const article = document.querySelector("article").cloneNode(true);
article.querySelectorAll("pre, code, mjx-container, script").forEach(e => e.remove());
return article.innerText;
"""

_LINKS = """
return [...document.querySelectorAll("a[href], img[src], link[href], script[src]")]
  .map(e => e.href || e.src);
"""


def _wait_for_math(driver) -> str:
    """Wait until MathJax has typeset the page: "ok", or what went wrong."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "if (!window.MathJax || !MathJax.startup) { done('no MathJax'); return; }"
        "MathJax.startup.promise.then(() => done('ok'), e => done(String(e)));"
    )


def _screenshots(driver, folder: Path, name: str) -> None:
    driver.save_screenshot(str(folder / f"{name}.png"))
    width, height = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    full = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 30000), "scale": 1},
        },
    )
    (folder / f"{name}_full.png").write_bytes(base64.b64decode(full["data"]))
    for what, selector in (("figure", "article img"), ("math", "article div.arithmatex")):
        found = driver.find_elements("css selector", selector)
        if found:
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", found[0])
            time.sleep(0.2)
            driver.save_screenshot(str(folder / f"{name}_{what}.png"))
    driver.execute_script("window.scrollTo(0, 0)")


@pytest.mark.parametrize("page", PAGES)
def test_page_in_the_browser(page, site, base_url, browser, shots):
    driver = browser
    driver.get_log("browser")  # forget what earlier pages logged
    driver.get(urljoin(base_url, f"{page}.html"))
    mathjax = _wait_for_math(driver)
    _screenshots(driver, shots, page)
    where = f"(screenshots of {page}: {shots})"
    assert mathjax == "ok", f"{page}: MathJax did not start: {mathjax} {where}"

    # math: every formula typeset, no TeX delimiter left in the prose
    formulas = driver.find_elements("css selector", ".arithmatex")
    typeset = driver.find_elements("css selector", ".arithmatex mjx-container")
    assert len(typeset) == len(formulas), (
        f"{len(formulas) - len(typeset)} formulas not typeset {where}"
    )
    prose = driver.execute_script(_VISIBLE_PROSE)
    for raw in ("$", "\\(", "\\[", "\\frac", "\\partial"):
        assert raw not in prose, f"raw TeX {raw!r} in the text of {page}: {mathjax} {where}"
    chapter = next((c for c in CHAPTERS if c.stem == page), None)
    if chapter is not None and "$" in chapter.read_text():
        assert typeset, f"{page}: the chapter has math but no formula was typeset {where}"

    # images: every one loaded; a chapter shows every figure its code drew
    images = driver.execute_script(
        "return [...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"
    )
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert not broken, f"{page}: images not loaded: {broken} {where}"

    # outputs: what each block printed is under it, as in the notebook
    if chapter is not None:
        nb = _notebook(site, chapter)
        shown = [
            e.get_attribute("textContent")
            for e in driver.find_elements("css selector", ".book-output pre")
        ]
        printed = [t for t in _printed(nb) if t.strip()]
        assert len(shown) == len(printed), (
            f"{page}: {len(shown)} outputs shown, {len(printed)} printed"
        )
        for text, on_page in zip(printed, shown, strict=True):
            assert text.strip() in on_page, f"{page}: output {text[:80]!r} not shown {where}"
        figures = sum(
            1
            for c in nb.cells
            for o in getattr(c, "outputs", [])
            if o.output_type == "display_data" and "filename" in o.get("metadata", {})
        )
        assert sum(1 for src, _, _ in images if src.startswith("figures/")) >= figures

    # links: every link to this site's pages and files resolves
    missing = []
    for href in driver.execute_script(_LINKS):
        url = urlparse(href)
        if f"{url.scheme}://{url.netloc}/" != base_url:
            continue
        path = url.path.lstrip("/") or "index.html"
        if path.endswith("/"):
            path += "index.html"
        if not (site / path).exists():
            missing.append(href)
    assert not missing, f"{page}: links to missing files: {missing} {where}"

    # console: no error
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"{page}: console errors: {json.dumps(errors, indent=1)} {where}"


def test_chapters_link_to_the_next_and_previous(site, base_url, browser):
    driver = browser
    stems = [c.stem for c in CHAPTERS]
    for i, stem in enumerate(stems):
        driver.get(urljoin(base_url, f"{stem}.html"))
        footer = {
            kind: urlparse(e.get_attribute("href")).path.lstrip("/")
            for kind in ("prev", "next")
            for e in driver.find_elements("css selector", f"a.md-footer__link--{kind}")
        }
        previous = f"{stems[i - 1]}.html" if i else "index.html"
        following = f"{stems[i + 1]}.html" if i + 1 < len(stems) else "exercises.html"
        assert footer == {"prev": previous, "next": following}, f"{stem}: footer links {footer}"


def test_search_finds_chapters(site, base_url, browser, shots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.get(urljoin(base_url, "index.html"))
    box = driver.find_element(By.CSS_SELECTOR, "input.md-search__input")
    if not box.is_displayed():  # a narrow window shows a search button instead of the box
        driver.find_element(By.CSS_SELECTOR, "label[for='__search']").click()
    WebDriverWait(driver, 10).until(ec.element_to_be_clickable(box)).click()
    box.send_keys("gradient check")
    results = WebDriverWait(driver, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".md-search-result__item a")
    )
    driver.save_screenshot(str(shots / "search.png"))
    targets = {urlparse(a.get_attribute("href")).path.lstrip("/").split("#")[0] for a in results}
    assert "02_autograd.html" in targets, f"search results: {sorted(targets)} ({shots})"


def test_pages_open_from_disk_without_a_server(site, browser):
    """``open site/index.html``: math, figures and links work from file://; only search needs a
    server (the browser runs no search worker from a file), which the README says."""
    driver = browser
    for page in ("index", "02_autograd"):
        driver.get_log("browser")
        driver.get((site / f"{page}.html").as_uri())
        assert _wait_for_math(driver) == "ok"
        formulas = driver.find_elements("css selector", ".arithmatex")
        assert len(driver.find_elements("css selector", ".arithmatex mjx-container")) == len(
            formulas
        )
        images = driver.execute_script("return [...document.images].map(i => i.naturalWidth)")
        assert all(w > 0 for w in images)
        errors = [
            e
            for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "search/search_index" not in e["message"]
        ]
        assert not errors, f"{page} from disk: console errors: {json.dumps(errors, indent=1)}"

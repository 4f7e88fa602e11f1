"""The portability rules, checked on the source code itself (chapter 12).

The strict-backend run of the suite proves that the code that *ran* uses only the array API. These
checks read every module of the package (its syntax tree, nothing is executed) and prove it for
the code that did not run too:

1. only ``backend.py`` and the boundary modules import NumPy: ``tensor.py`` (Python data in,
   printing out), ``testing.py`` (numerical gradients on the host), ``data.py`` (token ids on the
   host), ``io.py`` (files), ``interop.py`` (state dicts exchanged with PyTorch, on the host) and
   ``viz.py`` (figures); only ``backend.py`` imports CuPy;
2. the compute modules do not even name NumPy (``np``), so a NumPy-only call cannot hide there;
3. every function called on an array namespace (``xp.exp``, ``backend.xp_of(a).take``) is one of
   the array API standard's, as array-api-strict lists them: ``xp.einsum`` or ``xp.add.at`` would
   work on NumPy and CuPy and fail elsewhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

import array_api_strict
import pytest

import tinygrad_edu

pytestmark = pytest.mark.ch12

PACKAGE = Path(tinygrad_edu.__file__).resolve().parent
MODULES = sorted(PACKAGE.rglob("*.py"))
NUMPY_ALLOWED = {
    "backend.py",
    "tensor.py",
    "testing.py",
    "data.py",
    "io.py",
    "interop.py",
    "viz.py",
}
CUPY_ALLOWED = {"backend.py"}
ARRAY_LIBRARIES = ("numpy", "cupy", "cupyx")
STANDARD_NAMES = {n for n in dir(array_api_strict) if not n.startswith("_")}


def rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def tree(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imported_libraries(node: ast.AST) -> list[tuple[str, int]]:
    """(top-level library, line) for every import of NumPy/CuPy, however it is spelled:
    ``import numpy``, ``import numpy.linalg as la``, ``from numpy import add``,
    ``importlib.import_module("cupy")``, ``__import__("numpy")``."""
    found = []
    for n in ast.walk(node):
        names = []
        if isinstance(n, ast.Import):
            names = [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            names = [n.module]
        elif isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.Constant):
            f = n.func
            fname = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if fname in ("import_module", "__import__") and isinstance(n.args[0].value, str):
                names = [n.args[0].value]
        for name in names:
            top = name.split(".")[0]
            if top in ARRAY_LIBRARIES:
                found.append((top, n.lineno))
    return found


def test_the_package_is_found():
    names = {rel(p) for p in MODULES}
    assert {"backend.py", "ops.py", "functional/losses.py", "optim.py", "nn/linear.py"} <= names


def test_the_checks_catch_every_spelling():
    """The import finder itself: each spelling is caught, a look-alike is not."""
    src = """
import numpy
import numpy.linalg as la
from numpy import add
from cupyx import scatter_add
import importlib
importlib.import_module("cupy")
__import__("numpy")
from .backend import numpy_like
import numpyish
"""
    found = imported_libraries(ast.parse(src))
    assert [lib for lib, _ in found] == ["numpy", "numpy", "numpy", "cupyx", "cupy", "numpy"]
    assert non_standard_calls(ast.parse("xp.einsum(a, b)\nxp.exp(a)\nxp_of(a).pad(a)")) == [
        ("einsum", 1),
        ("pad", 3),
    ]


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_only_backend_and_the_boundary_import_numpy_or_cupy(path):
    for lib, line in imported_libraries(tree(path)):
        if lib == "numpy":
            assert path.name in NUMPY_ALLOWED and path.parent == PACKAGE, (
                f"{rel(path)}:{line} imports NumPy; compute goes through backend.xp_of(array) "
                f"(only {sorted(NUMPY_ALLOWED)} convert at the boundary)"
            )
        else:
            assert rel(path) in CUPY_ALLOWED, (
                f"{rel(path)}:{line} imports {lib}; only backend.py may (it picks the kernels)"
            )


COMPUTE = [p for p in MODULES if not (p.parent == PACKAGE and p.name in NUMPY_ALLOWED)]


@pytest.mark.parametrize("path", COMPUTE, ids=rel)
def test_compute_modules_never_name_numpy(path):
    """functional, nn, optim, models, train, ops, autograd: no ``np``/``numpy``/``cupy`` at all
    (not through another module either, as ``backend.np.add.at`` would be)."""
    bad = []
    for n in ast.walk(tree(path)):
        if isinstance(n, ast.Name) and n.id in ("np", "numpy", "_np", "cp", "cupy", "cupyx"):
            bad.append((n.id, n.lineno))
        if isinstance(n, ast.Attribute) and n.attr in ("np", "numpy", "_np", "cupy", "cupyx"):
            bad.append((n.attr, n.lineno))
    assert not bad, f"{rel(path)} names an array library directly: {bad}"


def non_standard_calls(node: ast.AST) -> list[tuple[str, int]]:
    """Attributes taken from an array namespace that the array API standard does not define.

    A namespace is a variable named ``xp`` or a call of ``xp_of(...)``/``namespace(...)``."""
    bad = []
    for n in ast.walk(node):
        if not isinstance(n, ast.Attribute):
            continue
        v = n.value
        is_namespace = (isinstance(v, ast.Name) and v.id == "xp") or (
            isinstance(v, ast.Call)
            and (getattr(v.func, "attr", None) or getattr(v.func, "id", None))
            in ("xp_of", "namespace")
        )
        if is_namespace and n.attr not in STANDARD_NAMES:
            bad.append((n.attr, n.lineno))
    return bad


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_array_namespaces_are_used_only_through_standard_names(path):
    bad = non_standard_calls(tree(path))
    assert not bad, (
        f"{rel(path)} calls functions that are not in the array API standard on an array "
        f"namespace: {bad}; use standard names or a kernel of backend.py"
    )

"""Every registered Function has a gradient check, and every check passes.

Each module of ``tests/cases/`` exports ``CASES`` (Function name -> list of zero-argument
callables returning ``(fn, inputs)``) and optionally ``GRADGRAD`` (names also checked with
``gradgradcheck``). A Function in ``autograd.REGISTRY`` without a case fails this file, so a new
op cannot slip in unchecked. Each case must really use its Function: the test looks for it in
the output's graph.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import tinygrad_edu
from tinygrad_edu.autograd import REGISTRY
from tinygrad_edu.testing import gradcheck, gradgradcheck, graph_functions

pytestmark = pytest.mark.ch02

# A Function whose forward or backward is (or calls) a later chapter's exercise: its checks need
# that exercise, so they carry that chapter's marker (the highest marker wins, tests/conftest.py).
EXERCISE_CHAPTER = {
    "LinearFunction": 3,  # its forward and backward are exercise 3.2
    "ReLUFunction": 3,  # its forward and backward are exercise 3.3
    "LogSoftmaxFunction": 4,  # 4.1
    "CrossEntropyFunction": 4,  # 4.2
    "EmbeddingFunction": 5,  # 5.3
    "Unfold1dFunction": 6,  # its backward is Fold1dFunction (6.2)
    "Fold1dFunction": 6,
    "RNNSequenceFunction": 7,
    "LSTMCellFunction": 8,
    "LSTMSequenceFunction": 8,
    "ScaledDotProductAttentionFunction": 9,
    "LayerNormFunction": 10,
    "GELUFunction": 10,  # its backward is exercise 10.2
    "SoftplusFunction": 13,  # its backward is exercise 13.1
}


def _import_package():
    """Import every module of tinygrad_edu, so that every Function (layers too) is registered."""
    for info in pkgutil.walk_packages(tinygrad_edu.__path__, "tinygrad_edu."):
        importlib.import_module(info.name)


def _collect():
    cases, gradgrad, sources = {}, set(), {}
    folder = Path(__file__).parent / "cases"
    for info in sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name):
        module = importlib.import_module(f"cases.{info.name}")
        for name, fns in getattr(module, "CASES", {}).items():
            if name in cases:
                raise AssertionError(
                    f"{name} has cases in both cases/{sources[name]}.py and cases/{info.name}.py"
                )
            cases[name] = list(fns)
            sources[name] = info.name
        gradgrad |= set(getattr(module, "GRADGRAD", set()))
    return cases, gradgrad


_import_package()
CASES, GRADGRAD = _collect()
PARAMS = [(name, i) for name in sorted(CASES) for i in range(len(CASES[name]))]
GRADGRAD_PARAMS = [(name, i) for name, i in PARAMS if name in GRADGRAD]


def _params(pairs):
    return [
        pytest.param(
            name,
            i,
            id=f"{name}-{i}",
            marks=[getattr(pytest.mark, f"ch{EXERCISE_CHAPTER[name]:02d}")]
            if name in EXERCISE_CHAPTER
            else [],
        )
        for name, i in pairs
    ]


def test_every_function_has_a_case():
    missing = sorted(set(REGISTRY) - set(CASES))
    assert not missing, (
        f"these Functions have no gradient check: {missing}; add cases for them to "
        "tests/cases/<your area>.py (CASES = {name: [lambda: (fn, inputs), ...]})"
    )


def test_exercise_chapters_name_registered_functions():
    unknown = sorted(set(EXERCISE_CHAPTER) - set(REGISTRY))
    assert not unknown, f"EXERCISE_CHAPTER names Functions that are not registered: {unknown}"


def test_every_case_names_a_function():
    unknown = sorted(set(CASES) - set(REGISTRY))
    assert not unknown, f"cases for names that are not registered Functions: {unknown}"
    unknown_gg = sorted(GRADGRAD - set(CASES))
    assert not unknown_gg, f"GRADGRAD names without cases: {unknown_gg}"


@pytest.mark.parametrize(("name", "index"), _params(PARAMS))
def test_gradcheck(name, index):
    fn, inputs = CASES[name][index]()
    used = {type(f).__name__ for f in graph_functions(fn(*inputs))}
    assert name in used, f"case {name}-{index} does not use {name}; its graph has {sorted(used)}"
    assert gradcheck(fn, inputs, name=f"{name}-{index}")


@pytest.mark.parametrize(("name", "index"), _params(GRADGRAD_PARAMS))
def test_gradgradcheck(name, index):
    fn, inputs = CASES[name][index]()
    assert gradgradcheck(fn, inputs, name=f"{name}-{index}")

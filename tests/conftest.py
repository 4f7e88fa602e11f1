"""Shared test setup: importable helpers, Hypothesis settings, a fresh seed for every test.

The whole suite runs twice: on NumPy, and with ``TINYGRAD_EDU_DEVICE=strict`` on array-api-strict
(a second array library that is not NumPy). ``TINYGRAD_EDU_DEVICE=cuda`` runs it on CuPy; where
CuPy or a GPU is missing every test is reported as skipped, with the reason. Tests build tensors
with ``tg.*`` or ``tg.tensor(numpy_array)`` (host arrays follow the default device) and compare
via ``.numpy()``.
"""

from __future__ import annotations

import os
import re
import signal
import sys

import pytest
from hypothesis import HealthCheck, settings

import tinygrad_edu as tg

# tests/ on the path: `from strategies import ...` and `import cases.ops` work from every test file
sys.path.insert(0, os.path.dirname(__file__))

# Programs the tests start (the example, the benchmarks, a checkpoint writer) import the package of
# this tree, like the tests do: the repository's, or a learner's copy's (tools/make_exercises.py)
# even where another tinygrad_edu is installed.
_TREE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_TREE, os.environ.get("PYTHONPATH")]))

# The CuPy stand-in must never be imported by collection (--doctest-modules would register it as
# `cupy` and make device "cuda" look available); test_gpu_path.py installs it where it is meant.
collect_ignore = ["fake_cupy"]

# No deadline: the strict backend is several times slower than NumPy, and timing is not what
# these tests check. Examples stay few so that each file runs in seconds. Under CI the examples
# are derandomized (the same every run), so a red CI is reproducible; locally they vary.
settings.register_profile(
    "tinygrad_edu",
    deadline=None,
    max_examples=25,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.load_profile("tinygrad_edu")


def _unusable_device_reason() -> str | None:
    """Why the device this run asks for (``$TINYGRAD_EDU_DEVICE``) cannot be used, or None.

    ``TINYGRAD_EDU_DEVICE=cuda`` on a machine without CuPy or without a GPU must not error in
    every test: the whole suite is reported as skipped, with the backend's own message.
    """
    try:
        tg.backend.default_device()
    except tg.DeviceError as e:
        # collection (module-level code in test files) goes on on the CPU; nothing runs there
        tg.backend.set_default_device("cpu")
        return str(e)
    return None


_SKIP_REASON = _unusable_device_reason()


def pytest_report_header(config):
    return f"tinygrad_edu device: {os.environ.get('TINYGRAD_EDU_DEVICE') or 'cpu'}" + (
        f" (unusable, every test skipped: {_SKIP_REASON})" if _SKIP_REASON else ""
    )


CHAPTER_MARKER = re.compile(r"ch(\d\d)")


def _one_chapter_per_test(items) -> None:
    """Give every test exactly one chapter marker: the highest it carries.

    A chapter marker says what a test needs: ``chK`` means the exercises of chapters 1..K solved
    (tests/test_learner_path.py checks it). A test in a module marked ``ch03`` that also needs
    exercise 10.1 is decorated ``@pytest.mark.ch10``; here the ``ch03`` it inherits is dropped, so
    that ``pytest -m ch03`` does not select it. The chapter is also recorded as a property of the
    test (``chapter``) in a ``--junitxml`` report.
    """
    chapters = {}
    for item in items:
        found = [
            int(m[1]) for mk in item.iter_markers() if (m := CHAPTER_MARKER.fullmatch(mk.name))
        ]
        if found:
            chapters[item] = max(found)
    parents = {p for item in chapters for p in item.listchain()[:-1]}
    for node in list(parents) + list(chapters):
        node.own_markers[:] = [m for m in node.own_markers if not CHAPTER_MARKER.fullmatch(m.name)]
    for item, chapter in chapters.items():
        item.add_marker(f"ch{chapter:02d}")
        item.user_properties.append(("chapter", chapter))


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection
def pytest_collection_modifyitems(config, items):
    _one_chapter_per_test(items)
    if _SKIP_REASON is None:
        return
    marker = pytest.mark.skip(reason=_SKIP_REASON)
    for item in items:
        item.add_marker(marker)


@pytest.fixture(autouse=True)
def _seed_and_device():
    """Every test starts from the same seed and the default device, whatever the last one did."""
    tg.manual_seed(0)
    tg.backend.set_default_device(None)
    yield
    tg.backend.set_default_device(None)


@pytest.fixture
def python_sigint():
    """Ctrl-C handled as Python's default (``KeyboardInterrupt``) for the test, then as before.

    A suite started in the background by a shell without job control inherits SIGINT ignored,
    and Python then leaves it ignored; the tests of signal handling need Python's usual state."""
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture
def device() -> str:
    """The device this run of the suite uses (``cpu``, ``strict`` or ``cuda``)."""
    return tg.backend.default_device()

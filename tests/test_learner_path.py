"""The learner's path, chapter by chapter: the chapter markers say what a test needs.

A test marked ``chK`` needs only the exercises of chapters 1..K. This file proves it on the
learner's copies (``tools/make_exercises.py --solved-through N``):

* in the state after chapter N (exercises of chapters <= N solved, later ones stubbed) every test
  marked ``ch01`` .. ``chN`` passes (or is skipped for a stated reason, such as a missing torch);
* in the state before chapter N (its exercises stubbed too) the tests marked ``chN`` that fail are
  exactly the ones that need those exercises: each fails with a ``NotImplementedError`` of a
  chapter-N stub, and every check that ``tests/test_exercises.py`` maps to a chapter-N exercise
  is among them, failing with its own exercise's stub; nothing of an earlier chapter fails.

The states differ only at chapters that have exercises, so one copy per such chapter is built,
and each runs one pytest over its own markers: the chapters it completes (must pass) and the next
chapter with exercises (the stubbed check above). That is every test at most twice, instead of the
whole suite once per chapter. Running ``chK`` only in the state of chapter K is enough: a test
that passes there never entered a later chapter's stub (entering one raises, and no library code
or test swallows a ``NotImplementedError``), and the later states differ from it only inside
those stubs, so the test runs the same code in every later state. The state with every exercise
solved is the library itself, which the rest of the suite checks. Set
``TINYGRAD_EDU_LEARNER_PATH=full`` to run, in every state, every marker up to its chapter (and the
all-solved copy too): the slow, literal version of the same check.

The copies are built and run two at a time (CI has two cores). Runs on the NumPy pass of the
suite only: markers do not depend on the device.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import make_exercises  # noqa: E402
from test_exercises import EXERCISES  # noqa: E402

BOOK = sorted(int(p.name[:2]) for p in (ROOT / "chapters").glob("[0-9][0-9]_*.md"))
FULL = os.environ.get("TINYGRAD_EDU_LEARNER_PATH") == "full"

pytestmark = pytest.mark.skipif(
    (ROOT / make_exercises.MARKER_FILE).exists(),
    reason="this is a learner copy: the path is checked in the repository",
)


@dataclass
class State:
    solved_through: int  # exercises of chapters <= this are solved
    passing: list[int]  # chapters whose tests must all pass here
    stubbed: int | None  # the next chapter with exercises: its tests are checked stubbed here
    results: dict = field(default_factory=dict)  # node id -> (chapter, outcome, text)
    seconds: float = 0.0


def exercise_chapters() -> list[int]:
    return sorted({r.chapter for r in make_exercises.all_regions(ROOT / "tinygrad_edu")})


def plan(chapters: list[int], book: list[int] = BOOK, full: bool = FULL) -> list[State]:
    """One state per distinct copy: nothing solved, then each chapter with exercises solved.

    ``chapters``: the chapters that have exercises; ``book``: every chapter's number.
    """
    points = [0] + [c for c in chapters if c > 0]
    states = []
    for i, solved in enumerate(points):
        nxt = points[i + 1] if i + 1 < len(points) else None
        end = nxt if nxt is not None else max(book) + 1
        if nxt is None and not full:
            break  # every exercise solved: the library itself, checked by the whole suite
        first = 1 if (full or solved == 0) else solved
        states.append(State(solved, [c for c in book if first <= c < end], nxt))
    return states


def _copy(state: State, workdir: Path) -> Path:
    copy = workdir / f"solved_through_{state.solved_through:02d}"
    make_exercises.make_copy(copy, solved_through=state.solved_through)
    return copy


def _run(state: State, workdir: Path) -> State:
    copy = workdir / f"solved_through_{state.solved_through:02d}"
    chapters = state.passing + ([state.stubbed] if state.stubbed else [])
    report = workdir / f"report_{state.solved_through:02d}.xml"
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    for var in ("PYTHONPATH", "TINYGRAD_EDU_DEVICE", "TINYGRAD_EDU_LEARNER_PATH"):
        env.pop(var, None)  # the copy's own package, on the CPU
    env.setdefault("OPENBLAS_NUM_THREADS", "1")  # two copies run at once on two cores
    cmd = [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider",
           "-o", "addopts=", "--strict-markers", "-o", "junit_family=xunit1",
           f"--junitxml={report}", "-m", " or ".join(f"ch{c:02d}" for c in chapters)]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=900)
    state.seconds = time.perf_counter() - start
    if not report.exists():
        raise AssertionError(
            f"pytest did not run in the copy solved through chapter {state.solved_through}:\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    state.results = _parse(report)
    return state


def _parse(report: Path) -> dict:
    """{node id: (chapter, "passed" | "skipped" | "failed", failure text)} from a junit report."""
    results = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        file = case.get("file")
        module = file[: -len(".py")].replace("/", ".")
        inner = case.get("classname")[len(module) :].lstrip(".")
        node = "::".join([file] + ([inner] if inner else []) + [case.get("name")])
        chapter = next(
            (int(p.get("value")) for p in case.iter("property") if p.get("name") == "chapter"),
            None,
        )
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            text = (bad.get("message") or "") + "\n" + (bad.text or "")
            results[node] = (chapter, "failed", text)
        elif case.find("skipped") is not None:
            results[node] = (chapter, "skipped", "")
        else:
            results[node] = (chapter, "passed", "")
    return results


def _stub_ids(text: str) -> list[str]:
    """The exercises whose stubs a failure raised: read from the failure's message and its `E`
    lines only. The traceback also prints the source of each function it passes through, and a
    function may hold the stubs of two exercises (Adam's update: 4.4 and 11.2); one of them ran.
    """
    message, _, trace = text.partition("\n")
    raised = [message] + [line for line in trace.splitlines() if line.startswith("E ")]
    return re.findall(r"Exercise (\d+\.\d+) \(chapters/", "\n".join(raised))


def problems_of(state: State, exercises: dict[str, list[str]]) -> list[str]:
    """What the markers got wrong in one state, as sentences that say what to change."""
    where = f"in the copy solved through chapter {state.solved_through}"
    problems = []
    for node, (chapter, outcome, text) in sorted(state.results.items()):
        if outcome != "failed":
            continue
        needs = sorted(set(_stub_ids(text)), key=lambda i: tuple(map(int, i.split("."))))
        top = max((int(i.split(".")[0]) for i in needs), default=None)
        if top is not None and top > chapter:
            problems.append(
                f"{node} is marked ch{chapter:02d} but needs exercise {', '.join(needs)}: "
                f"it fails {where}; mark it ch{top:02d}"
            )
        elif chapter in state.passing:
            problems.append(f"{node} (ch{chapter:02d}) fails {where}: {text[:600]}")
        elif chapter == state.stubbed and top != state.stubbed:
            problems.append(
                f"{node} (ch{chapter:02d}) fails {where}, and not on a chapter-"
                f"{state.stubbed} stub: {text[:600]}"
            )
    if state.stubbed is not None:
        for ex, nodes in sorted(exercises.items()):
            if int(ex.split(".")[0]) != state.stubbed:
                continue
            for node in nodes:
                if node not in state.results:
                    problems.append(f"{node} (exercise {ex}) was not collected {where}")
                    continue
                chapter, outcome, text = state.results[node]
                if outcome != "failed" or ex not in _stub_ids(text):
                    problems.append(
                        f"{node} checks exercise {ex} but does not fail on its stub {where} "
                        f"({outcome}): {text[:300]}"
                    )
    return problems


def test_plan_covers_every_chapter_once():
    book = list(range(1, 15))
    states = plan([2, 3, 5, 11], book, full=False)
    assert [(s.solved_through, s.passing, s.stubbed) for s in states] == [
        (0, [1], 2),
        (2, [2], 3),
        (3, [3, 4], 5),
        (5, [5, 6, 7, 8, 9, 10], 11),
    ]
    full = plan([2, 3], book + [16], full=True)
    assert [(s.solved_through, s.passing, s.stubbed) for s in full] == [
        (0, [1], 2),
        (2, [1, 2], 3),
        (3, [*range(1, 15), 16], None),
    ]


def test_problems_name_the_marker_to_change():
    state = State(3, [3, 4], 5)
    stub = "NotImplementedError: Exercise {} (chapters/x.md): t. Hints: python tools/hint.py {}"
    state.results = {
        "t.py::lies": (3, "failed", stub.format("10.1", "10.1")),
        "t.py::ok": (4, "passed", ""),
        "t.py::needs5": (5, "failed", stub.format("5.1", "5.1")),
        "t.py::broken": (5, "failed", "AssertionError: 1 != 2"),
        "t.py::ex5": (5, "passed", ""),
    }
    problems = problems_of(state, {"5.1": ["t.py::ex5", "t.py::missing"]})
    assert len(problems) == 4, problems
    assert "t.py::lies is marked ch03 but needs exercise 10.1" in problems[1]
    assert "mark it ch10" in problems[1]
    assert "t.py::broken (ch05) fails" in problems[0] and "not on a chapter-5 stub" in problems[0]
    assert "t.py::ex5 checks exercise 5.1 but does not fail on its stub" in problems[2]
    assert "t.py::missing (exercise 5.1) was not collected" in problems[3]


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("TINYGRAD_EDU_DEVICE", "cpu") not in ("", "cpu"),
    reason="the learner path is checked on the NumPy pass of the suite (markers do not depend on "
    "the device)",
)
def test_each_chapter_is_green_on_its_own_markers(tmp_path):
    states = plan(exercise_chapters())
    assert states, "the library has no exercises"
    start = time.perf_counter()
    for s in states:  # in this thread: ast.parse is not thread-safe on Python 3.11
        _copy(s, tmp_path)
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        done = list(pool.map(lambda s: _run(s, tmp_path), states))
    total = time.perf_counter() - start
    problems, lines = [], []
    for s in done:
        problems += problems_of(s, EXERCISES)
        counts = {o: sum(1 for _, out, _ in s.results.values() if out == o) for o in
                  ("passed", "failed", "skipped")}  # fmt: skip
        lines.append(
            f"solved through {s.solved_through:2d}: chapters {s.passing[0]}-{s.passing[-1]} "
            f"+ stubbed {s.stubbed}: {counts} in {s.seconds:.1f} s"
        )
    print("\n".join(lines + [f"learner path: {len(done)} copies in {total:.1f} s"]))
    assert all(s.results for s in done), "a state selected no test"
    assert not problems, "\n".join(problems)

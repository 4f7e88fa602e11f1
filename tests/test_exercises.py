"""Exercises: the checks a learner runs, and the checks that stubs, hints and solutions agree.

1. **Exercise checks** (``test_exercise_N_M_*``), marked with their chapter's marker, so that a
   learner who has filled in exercise 2.1 in the generated copy runs ``pytest -m ch02`` and sees
   them turn green. They gradient-check the learner's backward rules (float64, random upstream
   gradient) or compare results with plain-NumPy references.
2. **The tool** (``tools/make_exercises.py``): stubs, ``--solved-through``, docstring spoilers,
   malformed regions; the copy imports from itself and collects the whole suite.
3. **The registry of exercises**: every region in the library has an entry in ``EXERCISES``
   (its checks), both hint levels in ``tools/hints.py`` and a chapter that states it.

``tests/test_learner_path.py`` builds the copy of every chapter's state and checks that the
chapter markers tell the truth: with chapter N's exercises stubbed exactly the tests that need
them fail, and once they are solved everything marked ``ch01`` .. ``chN`` passes.

To register a new exercise (see ``exercises/README.md``): wrap the solution in the library in
``# --- exercise N.M: title ---`` / ``# --- end exercise ---``, add its hints to
``tools/hints.py``, its checks below (marked ``chNN``) and their node ids to ``EXERCISES``.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import leaf

import tinygrad_edu as tg
from tinygrad_edu.tensor import Tensor
from tinygrad_edu.testing import gradcheck

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import hint  # noqa: E402
import hints  # noqa: E402
import make_exercises  # noqa: E402

IN_LEARNER_COPY = (ROOT / make_exercises.MARKER_FILE).exists()
HERE = "tests/test_exercises.py"

# exercise id -> the tests that check it (each must fail while the exercise is a stub, with that
# exercise's NotImplementedError, and pass once it is solved; tests/test_learner_path.py checks)
EXERCISES: dict[str, list[str]] = {
    "2.1": [f"{HERE}::test_exercise_2_1_recording_the_graph"],
    "2.2": [f"{HERE}::test_exercise_2_2_backward_order_and_accumulation"],
    "2.3": [f"{HERE}::test_exercise_2_3_unbroadcast"],
    "2.4": [f"{HERE}::test_exercise_2_4_mul_and_matmul_backward"],
    "2.5": [f"{HERE}::test_exercise_2_5_sum_reshape_transpose_backward"],
    "2.6": [f"{HERE}::test_exercise_2_6_maximum_minimum_backward",
            f"{HERE}::test_exercise_2_6_ties_split_the_gradient"],
    "2.7": [f"{HERE}::test_exercise_2_7_abs_backward"],
    "3.1": [f"{HERE}::test_exercise_3_1_named_parameters"],
    "3.2": [f"{HERE}::test_exercise_3_2_linear_forward"],
    "3.3": [f"{HERE}::test_exercise_3_3_relu_forward_and_backward"],
    "3.4": [f"{HERE}::test_exercise_3_4_kaiming_normal"],
    "3.5": [f"{HERE}::test_exercise_3_5_xavier_normal"],
    "4.1": [f"{HERE}::test_exercise_4_1_stable_log_softmax"],
    "4.2": [f"{HERE}::test_exercise_4_2_cross_entropy_backward"],
    "4.3": [f"{HERE}::test_exercise_4_3_sgd_momentum[False]",
            f"{HERE}::test_exercise_4_3_sgd_momentum[True]"],
    "4.4": [f"{HERE}::test_exercise_4_4_adam[options0]",
            f"{HERE}::test_exercise_4_4_adam[options1]",
            f"{HERE}::test_exercise_4_4_adam[options2]"],
    "4.5": [f"{HERE}::test_exercise_4_5_train_step"],
    "5.1": [f"{HERE}::test_exercise_5_1_one_hot"],
    "5.2": [f"{HERE}::test_exercise_5_2_decode"],
    "5.3": [f"{HERE}::test_exercise_5_3_embedding_backward[one-hot matmul]",
            f"{HERE}::test_exercise_5_3_embedding_backward[scatter-add]"],
    "6.1": [f"{HERE}::test_exercise_6_1_unfold_windows"],
    "6.2": [f"{HERE}::test_exercise_6_2_fold_adds_overlapping_windows"],
    "7.1": [f"{HERE}::test_exercise_7_1_rnn_cell_forward[tanh]",
            f"{HERE}::test_exercise_7_1_rnn_cell_forward[relu]"],
    "7.2": [f"{HERE}::test_exercise_7_2_bptt[tanh]", f"{HERE}::test_exercise_7_2_bptt[relu]"],
    "7.3": [f"{HERE}::test_exercise_7_3_clip_grad_norm"],
    "8.1": [f"{HERE}::test_exercise_8_1_lstm_gates_forward"],
    "8.2": [f"{HERE}::test_exercise_8_2_lstm_cell_backward",
            f"{HERE}::test_exercise_8_2_lstm_sequence_backward"],
    "9.1": [f"{HERE}::test_exercise_9_1_attention_forward_with_masks"],
    "9.2": [f"{HERE}::test_exercise_9_2_attention_backward"],
    "9.3": [f"{HERE}::test_exercise_9_3_split_heads"],
    "10.1": [f"{HERE}::test_exercise_10_1_layer_norm_backward"],
    "10.2": [f"{HERE}::test_exercise_10_2_gelu_backward"],
    "10.3": [f"{HERE}::test_exercise_10_3_pre_norm_block_forward"],
    "11.1": [f"{HERE}::test_exercise_11_1_gpt_forward"],
    "11.2": [f"{HERE}::test_exercise_11_2_adamw_decoupled_decay_with_groups"],
    "11.3": [f"{HERE}::test_exercise_11_3_warmup_cosine_schedule"],
    "11.4": [f"{HERE}::test_exercise_11_4_temperature_and_top_k"],
    "12.1": [f"{HERE}::test_exercise_12_1_optimizer_state_follows_the_model"],
    "13.1": [f"{HERE}::test_exercise_13_1_fused_softplus_backward_matches_the_composed_one"],
    "14.1": [f"{HERE}::test_exercise_14_1_freezing_parameters"],
    "14.2": [f"{HERE}::test_exercise_14_2_classifier_head_on_pooled_features"],
    "15.1": [f"{HERE}::test_exercise_15_1_bert_masking"],
    "15.2": [f"{HERE}::test_exercise_15_2_mlm_loss"],
}  # fmt: skip


# =================================================================================================
# The exercise-region tool
# =================================================================================================

SOURCE = textwrap.dedent(
    '''\
    class A:
        """Adds two.

        With ``y = x + 1`` the answer is plain::

            z = x + 2

        Returns ``z``.
        """

        def f(self, x):
            y = x + 1
            # --- exercise 99.1: add two ---
            z = y + 1
            return z
            # --- end exercise ---

        def g(self, x):
            # --- exercise 98.1: add one ---
            return x + 1
            # --- end exercise ---
    '''
)


def test_stub_keeps_indentation_and_names_the_chapter_title_and_hint():
    out, regions = make_exercises.stub_text(SOURCE, "pkg/a.py")
    assert sorted(r.id for r in regions) == ["98.1", "99.1"]
    lines = out.splitlines()
    begin = lines.index("        # --- exercise 99.1: add two ---")
    assert lines[begin + 1] == (
        '        raise NotImplementedError("Exercise 99.1 (chapters/99_*.md): add two. '
        'Hints: python tools/hint.py 99.1")'
    )
    assert lines[begin + 2] == "        # --- end exercise ---"
    assert "z = y + 1" not in out and "        y = x + 1\n" in out
    ns = {}
    exec(out, ns)
    with pytest.raises(NotImplementedError, match=r"Exercise 99\.1 .*hint\.py 99\.1"):
        ns["A"]().f(1)


def test_solved_through_keeps_the_solutions_of_earlier_chapters():
    out, regions = make_exercises.learner_source(SOURCE, "pkg/a.py", solved_through=98)
    assert [r.id for r in regions] == ["99.1"]
    assert "return x + 1" in out and "z = y + 1" not in out
    same, none = make_exercises.learner_source(SOURCE, "pkg/a.py", solved_through=99)
    assert same == SOURCE and none == []


def test_spoiler_paragraphs_leave_the_docstring_while_the_exercise_is_a_stub():
    spoil = {"99.1": {"spoilers": ["With ``y = x + 1``"]}}
    out, _ = make_exercises.learner_source(SOURCE, "pkg/a.py", hints=spoil)
    assert "z = x + 2" not in out and "With ``y" not in out
    assert '"""Adds two.\n\n    Returns ``z``.\n    """' in out  # summary and the contract kept
    solved, _ = make_exercises.learner_source(SOURCE, "pkg/a.py", solved_through=99, hints=spoil)
    assert solved == SOURCE
    with pytest.raises(make_exercises.ExerciseError, match="spoiler paragraphs of exercise 99.1"):
        make_exercises.learner_source(SOURCE, "pkg/a.py", hints={"99.1": {"spoilers": ["Gone"]}})


def test_chapter_quotes_show_the_stub_in_the_copy():
    quote = textwrap.indent(SOURCE, "")
    chapter = f"Text.\n\n<!-- quote: pkg/a.py::A -->\n```python quote\n{quote}```\n\nMore.\n"
    out = make_exercises.learner_chapter(chapter, "chapters/99_x.md", solved_through=98)
    assert "z = y + 1" not in out and 'raise NotImplementedError("Exercise 99.1' in out
    assert "return x + 1" in out and out.startswith("Text.") and out.endswith("More.\n")


@pytest.mark.parametrize(
    "src, match",
    [
        ("def f():\n    # --- exercise 1.1: a ---\n    return 1\n", "no '# --- end exercise ---'"),
        ("def f():\n    return 1\n    # --- end exercise ---\n", "without an opening marker"),
        (
            "def f():\n    # --- exercise 1.1: a ---\n    # --- exercise 1.2: b ---\n"
            "    return 1\n    # --- end exercise ---\n    # --- end exercise ---\n",
            "cannot nest",
        ),
        ("def f():\n    # --- exercise 1.1: a ---\n    # --- end exercise ---\n", "is empty"),
        (
            "def f():\n    # --- exercise 1.1: a ---\n    return 1\n# --- end exercise ---\n",
            "indented",
        ),
        ("# --- exercise 1.1: a ---\nX = 1\n# --- end exercise ---\n", "not inside a function"),
    ],
)
def test_malformed_regions_are_refused(src, match):
    with pytest.raises(make_exercises.ExerciseError, match=match):
        make_exercises.stub_text(src, "pkg/a.py")


@pytest.mark.skipif(IN_LEARNER_COPY, reason="in the learner copy the regions are stubs")
def test_every_region_has_checks_hints_and_a_chapter():
    regions = make_exercises.all_regions(ROOT / "tinygrad_edu")
    ids = sorted({r.id for r in regions})  # an exercise may have several regions
    assert ids == sorted(EXERCISES), (
        "exercise regions in the library and EXERCISES in tests/test_exercises.py differ: "
        f"regions only {sorted(set(ids) - set(EXERCISES))}, "
        f"EXERCISES only {sorted(set(EXERCISES) - set(ids))}"
    )
    assert ids == sorted(hints.HINTS), (
        "exercise regions in the library and HINTS in tools/hints.py differ: "
        f"regions only {sorted(set(ids) - set(hints.HINTS))}, "
        f"HINTS only {sorted(set(hints.HINTS) - set(ids))}"
    )
    collected = {name for name in globals() if name.startswith("test_exercise_")}
    for r in regions:
        chapter = ROOT / make_exercises.chapter_file(r.chapter)
        assert chapter.exists(), f"exercise {r.id} points to a missing chapter {chapter}"
        assert f"Exercise {r.id}" in chapter.read_text(), f"{chapter.name} never states {r.id}"
        assert EXERCISES[r.id], f"exercise {r.id} has no check in EXERCISES"
        for node in EXERCISES[r.id]:
            path, name = node.split("::")
            assert path == HERE and name.split("[")[0] in collected, node
            marks = {m.name for m in globals()[name.split("[")[0]].pytestmark}
            assert f"ch{r.chapter:02d}" in marks, f"{node} must be marked ch{r.chapter:02d}"
        entry = hints.HINTS[r.id]
        for level in (1, 2):
            text = hint.hint(r.id, level)
            assert isinstance(text, str) and len(text.split()) >= 8, (
                f"tools/hints.py: hint {level} of exercise {r.id} is missing or too short"
            )
        assert entry["idea"] != entry["formula"], r.id
        assert set(entry) <= {"idea", "formula", "spoilers"}, f"{r.id}: unknown keys {set(entry)}"


def test_hint_command_prints_each_level_and_refuses_an_unknown_id():
    tool = ROOT / "tools" / "hint.py"
    first = subprocess.run([sys.executable, str(tool), "2.7"], capture_output=True, text=True)
    assert first.returncode == 0 and hints.HINTS["2.7"]["idea"][:40] in first.stdout
    assert "--level 2" in first.stdout
    second = subprocess.run(
        [sys.executable, str(tool), "2.7", "--level", "2"], capture_output=True, text=True
    )
    assert second.returncode == 0 and "sign" in second.stdout
    bad = subprocess.run([sys.executable, str(tool), "99.9"], capture_output=True, text=True)
    assert bad.returncode == 2 and "no exercise '99.9'" in bad.stderr and "2.1" in bad.stderr


@pytest.mark.skipif(IN_LEARNER_COPY, reason="the exercises README is not part of the copy")
def test_exercises_readme_shows_no_solution():
    text = (ROOT / "exercises" / "README.md").read_text()
    for r in make_exercises.all_regions(ROOT / "tinygrad_edu"):
        source = (ROOT / r.path).read_text().splitlines()[r.begin : r.end - 1]
        body = [
            line.strip() for line in source if line.strip() and not line.strip().startswith("#")
        ]
        shown = [line for line in body if len(line) > 12 and line in text]
        assert not shown, f"exercises/README.md shows the solution of {r.id}: {shown}"
        assert f"| {r.id} " in text, f"exercises/README.md's table has no row for {r.id}"


# =================================================================================================
# The learner copy
# =================================================================================================


def _env():
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)  # the copy's own package, not this one
    return env


@pytest.mark.skipif(IN_LEARNER_COPY, reason="this is the learner copy already")
@pytest.mark.parametrize("where", ["outside", "inside"])
def test_learner_copy_imports_itself_and_collects_the_whole_suite(tmp_path, where):
    """The copy works wherever the learner writes it: a folder of its own (``~/my-exercises``) or
    a folder that already has a README.md of its own, like the repository's ``exercises/``."""
    copy = tmp_path / "learner"
    if where == "inside":
        copy.mkdir()
        (copy / "README.md").write_text(
            "# Exercises\n\n```python\n    indented = 'not runnable'\n```\n"
        )
    stubbed = make_exercises.make_copy(copy)
    assert sorted({r.id for r in stubbed}) == sorted(EXERCISES)
    if where == "inside":
        assert (copy / "README.md").read_text().startswith("# Exercises")
        assert (copy / make_exercises.PROJECT_README).read_text() == (
            ROOT / "README.md"
        ).read_text()
    else:
        assert (copy / "README.md").read_text() == (ROOT / "README.md").read_text()
    probe = (
        "import importlib, pkgutil, tinygrad_edu as t; "
        "mods = pkgutil.walk_packages(t.__path__, 'tinygrad_edu.'); "
        "[importlib.import_module(m.name) for m in mods]; "
        "print(t.__file__)"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=copy, env=_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).resolve().is_relative_to(copy.resolve()), proc.stdout
    collect = subprocess.run(
        [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider"],
        cwd=copy, env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert collect.returncode == 0, f"collection failed in the copy:\n{collect.stdout[-3000:]}"
    assert "error" not in collect.stdout.splitlines()[-1], collect.stdout[-2000:]
    for r in stubbed:  # no docstring spoiler survives
        for prefix in hints.HINTS[r.id].get("spoilers", ()):
            assert prefix not in (copy / r.path).read_text(), (r.id, prefix)


@pytest.mark.skipif(IN_LEARNER_COPY, reason="the tool runs in the repository, not in a copy")
def test_copy_refuses_to_overwrite_a_learners_work(tmp_path):
    tool = ROOT / "tools" / "make_exercises.py"
    out = tmp_path / "mine"
    first = subprocess.run([sys.executable, str(tool), "--out", str(out), "--solved-through", "3"],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "chapters 1-3 solved" in first.stdout and "ch04" in first.stdout
    stubbed = first.stdout.split("solved)")[1].splitlines()
    assert "3.1" not in [line.split()[0] for line in stubbed if line.strip()]
    (out / "tinygrad_edu" / "mine.py").write_text("# my work\n")
    again = subprocess.run([sys.executable, str(tool), "--out", str(out)],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode == 2 and "--force" in again.stdout
    assert (out / "tinygrad_edu" / "mine.py").exists()


# =================================================================================================
# The exercise checks: what a learner runs with ``pytest -m chNN``
# =================================================================================================


def _backward_of(cls, inputs, grad_out, *options):
    """``cls``'s backward on ``inputs`` for the upstream ``grad_out``, called directly (outside the
    graph), so that a check of one backward rule needs no other exercise: forward on the arrays,
    then the two attributes a backward reads, then backward. Returns the gradients as arrays."""
    fn = cls()
    fn.forward(*(x.data if isinstance(x, Tensor) else x for x in inputs), *options)
    fn.inputs = tuple(inputs) + options
    fn.needs_input_grad = [isinstance(x, Tensor) and x.requires_grad for x in fn.inputs]
    grads = fn.backward(tg.tensor(grad_out, dtype="float64"))
    grads = grads if isinstance(grads, tuple) else (grads,)
    return [None if g is None else g.numpy() for g in grads]


def _ctx(t: Tensor):
    """The op that made ``t``; in a copy where exercise 2.1 is a stub, the stub's error."""
    if type(t._ctx).__name__ == "_Unrecorded":
        t._ctx.backward()  # raises the stub's NotImplementedError
    return t._ctx


@pytest.mark.ch02
def test_exercise_2_1_recording_the_graph():
    from tinygrad_edu import ops

    a = leaf(2, 3, seed=1)
    b = leaf(2, 3, seed=2, requires_grad=False)
    y = a * b
    fn = _ctx(y)
    assert type(fn) is ops.Mul and y.requires_grad and not y.is_leaf
    assert len(fn.inputs) == 2 and fn.inputs[0] is a and fn.inputs[1] is b
    assert list(fn.needs_input_grad) == [True, False]
    z = y + 1.5  # a Python number is an input too, one that needs no gradient
    assert _ctx(z).inputs[0] is y and _ctx(z).inputs[1] == 1.5
    assert list(_ctx(z).needs_input_grad) == [True, False]
    s = z.sum(axis=0)  # options are inputs as well (Sum.apply(a, axes, keepdims))
    assert _ctx(s).inputs[0] is z and list(_ctx(s).needs_input_grad) == [True, False, False]
    assert _ctx(s).freed is False
    with tg.no_grad():  # nothing is recorded without a gradient to compute
        assert (a * b)._ctx is None
    assert (b * b)._ctx is None and not (b * b).requires_grad


class _Node:
    """A hand-made op for the backward pass to walk, with a given backward ``rule``: the graphs
    below are linked by hand, so that the checks of exercise 2.2 need no other exercise."""

    output_ids = None
    differentiable_backward = True
    reads_inputs, stamp = True, 0  # recorded before any in-place write (tensor._check_unwritten)

    def __init__(self, rule, *inputs):
        self.rule, self.inputs = rule, inputs
        self.needs_input_grad = [t.requires_grad for t in inputs]
        self.freed = False
        self.calls = []  # the backward pass clears the op's attributes: _node keeps this list

    def backward(self, grad_out):
        self.calls.append(grad_out.numpy().copy())
        return self.rule(grad_out)


def _node(rule, *inputs):
    """A tensor made by a ``_Node``, and the list of the upstream gradients its backward got."""
    ctx = _Node(rule, *inputs)
    return Tensor._make(inputs[0].data, True, ctx), ctx.calls  # the values are not used


@pytest.mark.ch02
def test_exercise_2_2_backward_order_and_accumulation():
    x = leaf(3, seed=4)
    g = np.array([0.5, -1.0, 2.0])
    # a diamond: x -> a -> (b, c) -> y. a's backward must run once, with both shares summed
    a, fa = _node(lambda g: g * 3.0, x)
    b, _ = _node(lambda g: g * 2.0, a)
    c, _ = _node(lambda g: g * 5.0, a)
    y, _ = _node(lambda g: (g, g), b, c)
    y.backward(tg.tensor(g, dtype="float64"))
    np.testing.assert_allclose(x.grad.numpy(), 3.0 * (2.0 + 5.0) * g, rtol=1e-12)
    assert len(fa) == 1, f"a's backward ran {len(fa)} times (once, when complete)"
    np.testing.assert_allclose(fa[0], 7.0 * g, rtol=1e-12)
    # one tensor used twice by the same op: both gradients count
    x2 = leaf(3, seed=5)
    y2, _ = _node(lambda g: (g, g * 2.0), x2, x2)
    y2.backward(tg.tensor(g, dtype="float64"))
    np.testing.assert_allclose(x2.grad.numpy(), 3.0 * g, rtol=1e-12)
    # a consumer that passes no gradient (None) still counts as done
    x3 = leaf(3, seed=6)
    p, _ = _node(lambda g: None, x3)
    q, _ = _node(lambda g: g * 2.0, x3)
    r, fr = _node(lambda g: g * 1.0, p)
    y3, _ = _node(lambda g: (g, g), r, q)
    y3.backward(tg.tensor(g, dtype="float64"))
    assert len(fr) == 1
    np.testing.assert_allclose(x3.grad.numpy(), 2.0 * g, rtol=1e-12)
    # a long chain: the walk needs no recursion
    x4 = leaf(2, seed=7)
    h = x4
    for _ in range(3000):
        h, _ = _node(lambda g: g * 1.0, h)
    h.backward(tg.tensor([1.0, 2.0], dtype="float64"))
    np.testing.assert_allclose(x4.grad.numpy(), [1.0, 2.0])


@pytest.mark.ch02
def test_exercise_2_3_unbroadcast():
    from tinygrad_edu.ops import unbroadcast

    rng = np.random.default_rng(8)
    for grad_shape, shape, axes in [
        ((3, 4), (3, 1), (1,)),
        ((3, 4), (4,), (0,)),
        ((2, 3, 4), (3, 1), (0, 2)),
        ((2, 3, 4), (1, 1, 4), (0, 1)),
        ((2, 3), (), (0, 1)),
        ((5, 1, 4), (1, 1, 4), (0,)),
        ((1, 3), (1, 3), ()),
    ]:
        g = rng.standard_normal(grad_shape)
        out = unbroadcast(tg.tensor(g, dtype="float64"), shape)
        assert out.shape == shape, (grad_shape, shape, out.shape)
        np.testing.assert_allclose(out.numpy(), g.sum(axis=axes).reshape(shape), rtol=1e-12)
    a, b = leaf(3, 1, seed=9), leaf(4, seed=10)
    assert gradcheck(lambda a, b: a + b, [a, b], name="add, broadcast")


@pytest.mark.ch02
def test_exercise_2_4_mul_and_matmul_backward():
    from tinygrad_edu import ops

    a, b = leaf(3, 4, seed=11), leaf(4, seed=12)
    g = np.random.default_rng(13).standard_normal((3, 4))
    ga, gb = _backward_of(ops.Mul, [a, b], g)
    np.testing.assert_allclose(ga, g * b.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gb, (g * a.numpy()).sum(axis=0), rtol=1e-12)
    assert _backward_of(ops.Mul, [a, b.detach()], g)[1] is None  # b needs no gradient
    m, n = leaf(2, 3, 4, seed=14), leaf(4, 5, seed=15)
    gm = np.random.default_rng(16).standard_normal((2, 3, 5))
    ga, gb = _backward_of(ops.MatMul, [m, n], gm)
    np.testing.assert_allclose(ga, gm @ n.numpy().T, rtol=1e-12)
    np.testing.assert_allclose(gb, np.einsum("bik,bij->kj", m.numpy(), gm), rtol=1e-12)
    assert gradcheck(lambda a, b: a * b, [a, b], name="mul, broadcast")
    assert gradcheck(lambda m, n: m @ n, [m, n], name="matmul, batch broadcast")
    v = leaf(4, seed=17)
    assert gradcheck(lambda m, v: m @ v, [m, v], name="matmul by a vector")


@pytest.mark.ch02
def test_exercise_2_5_sum_reshape_transpose_backward():
    from tinygrad_edu import ops

    a = leaf(2, 3, 4, seed=18)
    g = np.random.default_rng(19).standard_normal((2, 4))
    ga = _backward_of(ops.Sum, [a], g, (1,), False)[0]
    np.testing.assert_allclose(ga, np.broadcast_to(g[:, None, :], (2, 3, 4)), rtol=1e-12)
    gr = np.random.default_rng(20).standard_normal((6, 4))
    np.testing.assert_allclose(_backward_of(ops.Reshape, [a], gr, (6, 4))[0], gr.reshape(2, 3, 4))
    gt = np.random.default_rng(21).standard_normal((4, 2, 3))
    ga = _backward_of(ops.Transpose, [a], gt, (2, 0, 1))[0]
    np.testing.assert_allclose(ga, gt.transpose(1, 2, 0), rtol=1e-12)
    for name, f in [
        ("sum", lambda a: a.sum()),
        ("sum over axes 0 and 2, keepdims", lambda a: a.sum(axis=(0, 2), keepdims=True)),
        ("mean over the last axis", lambda a: a.mean(axis=-1)),
        ("reshape", lambda a: a.reshape(4, 6)),
        ("transpose (2, 0, 1)", lambda a: a.transpose(2, 0, 1)),
        ("mT", lambda a: a.mT),
    ]:
        assert gradcheck(f, [a], name=name)


@pytest.mark.ch02
def test_exercise_2_6_maximum_minimum_backward():
    from tinygrad_edu import ops

    x, y = tg.tensor([1.0, 2.0], dtype="float64", requires_grad=True), leaf(2, seed=1)
    assert _backward_of(ops.Maximum, [x, y], [1.0, 1.0])[0] is not None
    a = leaf(3, 4, seed=1)
    b = tg.tensor(np.linspace(-0.95, 0.95, 4) + 0.013, dtype="float64", requires_grad=True)
    assert gradcheck(tg.maximum, [a, b], name="maximum")  # b broadcasts over the rows
    assert gradcheck(tg.minimum, [a, b], name="minimum")
    assert gradcheck(lambda a: tg.maximum(a, 0.25), [a], name="maximum with a number")


@pytest.mark.ch02
def test_exercise_2_6_ties_split_the_gradient():
    from tinygrad_edu import ops

    a = tg.tensor([1.0, 2.0, 3.0], dtype="float64", requires_grad=True)
    b = tg.tensor([1.0, 5.0, 0.0], dtype="float64", requires_grad=True)
    ga, gb = _backward_of(ops.Minimum, [a, b], [1.0, 1.0, 1.0])
    assert ga.tolist() == [0.5, 1.0, 0.0] and gb.tolist() == [0.5, 0.0, 1.0]
    tg.maximum(a, b).backward(tg.tensor([1.0, 1.0, 1.0], dtype="float64"))
    assert a.grad.numpy().tolist() == [0.5, 0.0, 1.0]
    assert b.grad.numpy().tolist() == [0.5, 1.0, 0.0]


@pytest.mark.ch02
def test_exercise_2_7_abs_backward():
    from tinygrad_edu import ops

    x = tg.tensor([-2.0, -0.5, 0.3, 1.7], dtype="float64", requires_grad=True)
    np.testing.assert_allclose(_backward_of(ops.Abs, [x], [1.0, 2.0, 3.0, 4.0])[0], [-1, -2, 3, 4])
    assert gradcheck(tg.abs, [x], name="abs")
    z = tg.tensor([0.0, -3.0], dtype="float64", requires_grad=True)
    z.abs().sum().backward()
    assert z.grad.numpy().tolist() == [0.0, -1.0]  # 0 at the kink, by convention


@pytest.mark.ch03
def test_exercise_3_1_named_parameters():
    from tinygrad_edu import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 3)
            self.blocks = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1, bias=False))
            self.head = nn.Linear(2, 3)
            self.head.weight = self.a.weight  # tied: the same parameter under two names

    net = Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["a.weight", "a.bias", "blocks.0.weight", "blocks.0.bias",
                     "blocks.2.weight", "head.bias"], names  # fmt: skip
    params = dict(net.named_parameters())
    assert params["a.weight"] is net.a.weight and params["blocks.2.weight"] is net.blocks[2].weight
    assert [n for n, _ in net.blocks.named_parameters("blocks")][:1] == ["blocks.0.weight"]
    assert net.parameters()[0] is net.a.weight and len(net.parameters()) == 6
    assert list(nn.ReLU().named_parameters()) == []


@pytest.mark.ch03
def test_exercise_3_2_linear_forward():
    from tinygrad_edu import functional as F
    from tinygrad_edu import nn

    x, w, b = leaf(5, 3, seed=22), leaf(4, 3, seed=23), leaf(4, seed=24)
    np.testing.assert_allclose(F.linear(x, w, b).numpy(), x.numpy() @ w.numpy().T + b.numpy())
    np.testing.assert_allclose(F.linear(x, w).numpy(), x.numpy() @ w.numpy().T)
    layer = nn.Linear(3, 4).astype("float64")
    x3 = leaf(2, 5, 3, seed=25)
    ref = x3.numpy() @ layer.weight.numpy().T + layer.bias.numpy()
    out = layer(x3)
    assert out.shape == (2, 5, 4)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)
    from tinygrad_edu.functional.linear import LinearFunction

    g = np.random.default_rng(34).standard_normal((5, 4))
    gx, gw, gb = _backward_of(LinearFunction, [x, w, b], g)
    np.testing.assert_allclose(gx, g @ w.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gw, g.T @ x.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gb, g.sum(axis=0), rtol=1e-12)
    assert gradcheck(F.linear, [x, w, b], name="linear")
    assert gradcheck(lambda x, w: F.linear(x, w), [x3, w], name="linear, 3-d, no bias")


@pytest.mark.ch03
def test_exercise_3_3_relu_forward_and_backward():
    from tinygrad_edu import ops

    a = tg.tensor([[-2.0, 0.0, 0.5], [3.0, -0.1, 0.0]], dtype="float64", requires_grad=True)
    g = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    ga = _backward_of(ops.ReLUFunction, [a], g)[0]
    np.testing.assert_array_equal(ga, [[0.0, 0.0, 3.0], [4.0, 0.0, 0.0]])  # 0 at the kink
    out = tg.relu(a)
    np.testing.assert_array_equal(out.numpy(), np.maximum(a.numpy(), 0.0))
    f32 = tg.relu(tg.tensor([-1.0, 2.0]))
    assert f32.dtype == "float32" and f32.numpy().tolist() == [0.0, 2.0]
    x = leaf(3, 4, seed=26, low=0.05, high=1.0) * tg.tensor([1.0, -1.0, 1.0, -1.0], dtype="float64")
    x = x.detach().requires_grad_()  # no value near the kink: central differences are exact
    assert gradcheck(tg.relu, [x], name="relu")


@pytest.mark.ch03
def test_exercise_3_4_kaiming_normal():
    from tinygrad_edu.nn import init

    w = tg.zeros(256, 512)
    assert init.kaiming_normal_(w, nonlinearity="relu") is w
    values = w.numpy()
    assert abs(values.std() / np.sqrt(2.0 / 512) - 1) < 0.03
    assert abs(values.mean()) < 0.01 * np.sqrt(2.0 / 512) * 10
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.numpy().std() / np.sqrt(2.0 / 256) - 1) < 0.03
    init.kaiming_normal_(w, a=1.0)  # leaky ReLU with slope 1: gain 1
    assert abs(w.numpy().std() / np.sqrt(1.0 / 512) - 1) < 0.03


@pytest.mark.ch03
def test_exercise_3_5_xavier_normal():
    from tinygrad_edu.nn import init

    w = tg.zeros(300, 500)
    assert init.xavier_normal_(w) is w
    assert abs(w.numpy().std() / np.sqrt(2.0 / 800) - 1) < 0.03
    init.xavier_normal_(w, gain=5.0 / 3.0)
    assert abs(w.numpy().std() / (5.0 / 3.0 * np.sqrt(2.0 / 800)) - 1) < 0.03


@pytest.mark.ch04
def test_exercise_4_1_stable_log_softmax():
    from references import log_softmax as log_softmax_ref

    from tinygrad_edu import functional as F

    x = np.array([[1.0, 2.0, 3.0, 4.0], [1e4, 0.0, -1e4, 1e4], [-800.0, -801.0, -900.0, -800.5]])
    for axis in (-1, 0):
        out = F.log_softmax(tg.tensor(x, dtype="float64"), axis=axis).numpy()
        np.testing.assert_allclose(out, log_softmax_ref(x, axis=axis), rtol=1e-12, atol=1e-12)
    out32 = F.log_softmax(tg.tensor(x.astype(np.float32)), axis=-1)
    assert out32.dtype == "float32" and np.isfinite(out32.numpy()).all()
    np.testing.assert_allclose(np.exp(out32.numpy()).sum(axis=-1), 1.0, rtol=1e-5)
    assert gradcheck(lambda a: F.log_softmax(a, axis=1), [leaf(3, 5, seed=27)], name="log_softmax")


@pytest.mark.ch04
def test_exercise_4_2_cross_entropy_backward():
    from references import softmax as softmax_ref

    from tinygrad_edu import functional as F
    from tinygrad_edu.functional.losses import CrossEntropyFunction

    x = leaf(4, 5, seed=28, low=-3.0, high=3.0)
    t = tg.tensor(np.array([1, 4, 1, 0]))
    onehot = np.eye(5)[t.numpy()]
    got = _backward_of(CrossEntropyFunction, [x, t], 1.0, -100, "mean", 0.0)[0]
    np.testing.assert_allclose(got, (softmax_ref(x.numpy()) - onehot) / 4, rtol=1e-12)
    ignored = tg.tensor(np.array([1, -100, 1, 0]))  # the second row counts for nothing
    got = _backward_of(CrossEntropyFunction, [x, ignored], 2.0, -100, "sum", 0.0)[0]
    ref = 2.0 * (softmax_ref(x.numpy()) - onehot) * np.array([[1.0], [0.0], [1.0], [1.0]])
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    big = tg.tensor([[1e4, 0.0, -1e4]], dtype="float64", requires_grad=True)
    grad = _backward_of(CrossEntropyFunction, [big, tg.tensor([2])], 1.0, -100, "mean", 0.0)[0]
    np.testing.assert_allclose(grad, [[1.0, 0.0, -1.0]], atol=1e-12)  # no 1/p, no overflow
    for kw in ({}, {"reduction": "sum"}, {"reduction": "none"}, {"label_smoothing": 0.2},
               {"ignore_index": 1}):  # fmt: skip
        assert gradcheck(lambda a, kw=kw: F.cross_entropy(a, t, **kw), [x], name=f"ce {kw}")


@pytest.mark.ch04
@pytest.mark.parametrize("nesterov", [False, True])
def test_exercise_4_3_sgd_momentum(nesterov):
    from tinygrad_edu import optim

    lr, mu = 0.1, 0.9
    dampening = 0.0 if nesterov else 0.25
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(4)]
    w = tg.tensor(w0, dtype="float64", requires_grad=True)
    opt = optim.SGD([w], lr=lr, momentum=mu, dampening=dampening, nesterov=nesterov)
    ref, buf = w0.copy(), None
    for g in grads:
        opt.zero_grad()
        (w * tg.tensor(g, dtype="float64")).sum().backward()  # the gradient is exactly g
        opt.step()
        buf = g.copy() if buf is None else mu * buf + (1 - dampening) * g
        ref = ref - lr * (g + mu * buf if nesterov else buf)
        np.testing.assert_allclose(w.numpy(), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.ch04
@pytest.mark.parametrize("options", [{}, {"weight_decay": 0.1}, {"amsgrad": True}])
def test_exercise_4_4_adam(options):
    from references import adam as adam_ref

    from tinygrad_edu import optim

    rng = np.random.default_rng(29)
    w0 = rng.standard_normal(6)
    grads = [rng.standard_normal(6) * s for s in (1.0, 0.01, 5.0, 0.3, 2.0)]
    w = tg.tensor(w0, dtype="float64", requires_grad=True)
    opt = optim.Adam([w], lr=0.05, betas=(0.8, 0.95), eps=1e-6, **options)
    for g, ref in zip(grads, adam_ref(w0, grads, 0.05, (0.8, 0.95), 1e-6, **options), strict=True):
        w.grad = tg.tensor(g, dtype="float64")
        opt.step()
        np.testing.assert_allclose(w.numpy(), ref, rtol=1e-12, atol=1e-14)
    # the first step moves every weight by about lr, whatever the scale of its gradient
    v = tg.tensor([1.0, 1.0], dtype="float64", requires_grad=True)
    first = optim.Adam([v], lr=0.1)
    v.grad = tg.tensor([1e-3, 1e3], dtype="float64")
    first.step()
    np.testing.assert_allclose(v.numpy(), [0.9, 0.9], rtol=1e-4)


@pytest.mark.ch04
def test_exercise_4_5_train_step():
    from tinygrad_edu import functional as F
    from tinygrad_edu import nn, optim
    from tinygrad_edu.train import train_step

    tg.manual_seed(0)
    model = nn.Linear(3, 2).astype("float64")
    x, y = leaf(8, 3, seed=30, requires_grad=False), leaf(8, 2, seed=31, requires_grad=False)
    w0, b0 = model.weight.numpy().copy(), model.bias.numpy().copy()
    for p in model.parameters():  # a stale gradient the step must clear first
        p.grad = tg.ones(*p.shape, dtype="float64")
    opt = optim.SGD(model.parameters(), lr=0.1)
    loss = train_step(model, opt, (x, y), F.mse_loss)
    xn, yn = x.numpy(), y.numpy()
    r = xn @ w0.T + b0 - yn
    assert loss == pytest.approx(float((r**2).mean()), rel=1e-12)
    np.testing.assert_allclose(model.weight.numpy(), w0 - 0.1 * 2 * r.T @ xn / r.size, rtol=1e-10)
    np.testing.assert_allclose(model.bias.numpy(), b0 - 0.1 * 2 * r.sum(axis=0) / r.size)
    losses = [train_step(model, opt, (x, y), F.mse_loss) for _ in range(20)]
    assert losses[-1] < losses[0] < loss


@pytest.mark.ch05
def test_exercise_5_1_one_hot():
    from tinygrad_edu import functional as F

    ids = np.array([[0, 3], [2, 2]])
    out = F.one_hot(tg.tensor(ids), 5)
    assert out.shape == (2, 2, 5) and out.dtype == "int64"
    np.testing.assert_array_equal(out.numpy(), np.eye(5, dtype=np.int64)[ids])
    np.testing.assert_array_equal(F.one_hot(tg.tensor([1, 0])).numpy(), [[0, 1], [1, 0]])


@pytest.mark.ch05
def test_exercise_5_2_decode():
    from tinygrad_edu.data import CharTokenizer

    tok = CharTokenizer("hello, world\n")
    text = "word, hell\nlow"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.decode(np.array(ids)) == text
    assert tok.decode(tg.tensor(ids)) == text
    assert tok.decode([]) == ""


@pytest.mark.ch05
@pytest.mark.parametrize("route", ["one-hot matmul", "scatter-add"])
def test_exercise_5_3_embedding_backward(route, monkeypatch):
    from tinygrad_edu import functional as F
    from tinygrad_edu.functional.embedding import EmbeddingFunction

    if route == "scatter-add":
        monkeypatch.setattr(EmbeddingFunction, "ONEHOT_LIMIT", 0)
    w = leaf(5, 4, seed=32)
    ids = np.array([[1, 3, 1], [0, 1, 3]])  # 1 three times, 3 twice, 2 and 4 never
    g = np.random.default_rng(33).standard_normal((6, 4))
    ref = np.zeros((5, 4))
    np.add.at(ref, ids.reshape(-1), g)
    got = _backward_of(EmbeddingFunction, [w, tg.tensor(ids.reshape(-1))], g)[0]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert not got[[2, 4]].any()
    assert gradcheck(lambda w: F.embedding(tg.tensor(ids), w), [w], name=f"embedding, {route}")


# ---- chapter 6: Conv1d -------------------------------------------------------------------------

CONV_SETTINGS = ((1, 0, 1), (2, 1, 1), (1, 2, 2), (3, 1, 2))  # (stride, padding, dilation)


def _unfold_reference(x, K, stride, padding, dilation):
    """Every window of the padded input as a column: (N, C, L) -> (N, C*K, L_out), by loops."""
    N, C, L = x.shape
    xpad = np.zeros((N, C, L + 2 * padding))
    xpad[:, :, padding : padding + L] = x
    L_out = (L + 2 * padding - dilation * (K - 1) - 1) // stride + 1
    cols = np.zeros((N, C * K, L_out))
    for n in range(N):
        for i in range(L_out):
            for c in range(C):
                for k in range(K):
                    cols[n, c * K + k, i] = xpad[n, c, i * stride + k * dilation]
    return cols


@pytest.mark.ch06
def test_exercise_6_1_unfold_windows():
    from references import conv1d as conv1d_reference

    from tinygrad_edu import functional as F
    from tinygrad_edu.functional.conv import Unfold1dFunction

    x = np.random.default_rng(1).standard_normal((2, 3, 11))
    for stride, padding, dilation in CONV_SETTINGS:
        cols = Unfold1dFunction.apply(tg.tensor(x), 3, stride, padding, dilation)
        expected = _unfold_reference(x, 3, stride, padding, dilation)
        assert cols.shape == expected.shape, (stride, padding, dilation)
        np.testing.assert_array_equal(cols.numpy(), expected)
    # the whole convolution forward, which reads the windows
    w = np.random.default_rng(2).standard_normal((4, 3, 3))
    b = np.random.default_rng(3).standard_normal(4)
    y = F.conv1d(tg.tensor(x), tg.tensor(w), tg.tensor(b), stride=2, padding=1, dilation=2)
    np.testing.assert_allclose(y.numpy(), conv1d_reference(x, w, b, 2, 1, 2), rtol=1e-12)


@pytest.mark.ch06
def test_exercise_6_2_fold_adds_overlapping_windows():
    from tinygrad_edu.functional.conv import Fold1dFunction

    rng = np.random.default_rng(4)
    N, C, L, K = 2, 3, 11, 3
    x = rng.standard_normal((N, C, L))
    for stride, padding, dilation in CONV_SETTINGS:
        L_out = (L + 2 * padding - dilation * (K - 1) - 1) // stride + 1
        c = rng.standard_normal((N, C * K, L_out))
        out = Fold1dFunction.apply(tg.tensor(c), C, L, K, stride, padding, dilation)
        assert out.shape == (N, C, L), (stride, padding, dilation, out.shape)
        # fold is the adjoint (the transpose) of unfold: <unfold(x), c> = <x, fold(c)>
        lhs = float(np.sum(_unfold_reference(x, K, stride, padding, dilation) * c))
        assert abs(lhs - float(np.sum(x * out.numpy()))) < 1e-10, (stride, padding, dilation)
        # and every input position receives the sum over the windows that read it
        ones = Fold1dFunction.apply(tg.ones(N, C * K, L_out, dtype="float64"), C, L, K,
                                    stride, padding, dilation)  # fmt: skip
        counts = _unfold_reference(np.ones((N, C, L)), K, stride, padding, dilation)
        assert ones.numpy().sum() == counts.sum()


# ---- chapter 7: RNNs ---------------------------------------------------------------------------


@pytest.mark.ch07
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_exercise_7_1_rnn_cell_forward(nonlinearity):
    from references import rnn_cell

    from tinygrad_edu import nn

    tg.manual_seed(0)
    for bias in (True, False):
        cell = nn.RNNCell(3, 4, bias=bias, nonlinearity=nonlinearity).astype("float64")
        x = np.random.default_rng(5).standard_normal((2, 3)) * 2
        h = np.random.default_rng(6).standard_normal((2, 4))
        params = {name: p.numpy() for name, p in cell.named_parameters()}
        expected, _ = rnn_cell(f"rnn_{nonlinearity}", params, x, h)
        got = cell(tg.tensor(x), tg.tensor(h))
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-14)
        # without hx the state starts at zero; an unbatched input gives an unbatched state
        expected0, _ = rnn_cell(f"rnn_{nonlinearity}", params, x[0], np.zeros(4))
        np.testing.assert_allclose(cell(tg.tensor(x[0])).numpy(), expected0, rtol=1e-12)
    # the cell is differentiable through autograd
    x = leaf(2, 3, seed=7)
    assert gradcheck(lambda x: cell(x), [x], name="RNNCell")


@pytest.mark.ch07
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_exercise_7_2_bptt(nonlinearity):
    from tinygrad_edu import nn

    tg.manual_seed(0)
    rnn = nn.RNN(3, 4, nonlinearity=nonlinearity).astype("float64")
    composed = nn.RNN(3, 4, nonlinearity=nonlinearity, fused=False).astype("float64")
    composed.load_state_dict(rnn.state_dict())
    x = leaf(5, 2, 3, seed=4)
    g = tg.tensor(np.random.default_rng(5).standard_normal((5, 2, 4)), dtype="float64")
    grads = []
    for layer in (rnn, composed):
        x.grad = None
        layer.zero_grad()
        layer(x)[0].backward(g)
        grads.append([x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()])
    for fused_grad, reference in zip(grads[0], grads[1], strict=True):
        np.testing.assert_allclose(fused_grad, reference, rtol=1e-10, atol=1e-12)
    if nonlinearity == "tanh":
        assert gradcheck(lambda x: rnn(x)[0], [x], name="RNN")


@pytest.mark.ch07
def test_exercise_7_3_clip_grad_norm():
    from tinygrad_edu import optim

    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal((3, 4)), rng.standard_normal(5), rng.standard_normal((2, 2))]

    def params(scale=1.0):
        ps = [tg.tensor(a, dtype="float64", requires_grad=True) for a in arrays]
        for p, a in zip(ps, arrays, strict=True):
            p.grad = tg.tensor(a * scale, dtype="float64")
        return ps

    flat = np.concatenate([a.ravel() for a in arrays])
    for norm_type, total in ((2.0, np.linalg.norm(flat)), (1.0, np.abs(flat).sum()),
                             (3.0, (np.abs(flat) ** 3).sum() ** (1 / 3)),
                             (float("inf"), np.abs(flat).max())):  # fmt: skip
        ps = params()
        old = [p.grad for p in ps]  # the gradients before clipping, as Tensors
        returned = optim.clip_grad_norm(ps, max_norm=0.5, norm_type=norm_type)
        assert abs(float(returned.item()) - total) < 1e-9 * total, (norm_type, returned, total)
        coef = [p.grad.numpy() / a for p, a in zip(ps, arrays, strict=True)]
        assert np.allclose(np.concatenate([c.ravel() for c in coef]), 0.5 / total, rtol=1e-5)
        for g, a in zip(old, arrays, strict=True):
            np.testing.assert_array_equal(g.numpy(), a)  # the old gradient arrays are not written
    # a norm already below max_norm leaves the gradients as they are
    ps = params(scale=0.01)
    optim.clip_grad_norm(ps, max_norm=10.0)
    for p, a in zip(ps, arrays, strict=True):
        np.testing.assert_array_equal(p.grad.numpy(), a * 0.01)
    # a parameter without a gradient is skipped; a non-finite norm changes nothing
    ps = params()
    ps[1].grad = None
    ps[0].grad = tg.tensor(np.full((3, 4), np.inf))
    total = optim.clip_grad_norm(ps, max_norm=1.0)
    assert not np.isfinite(float(total.item()))
    np.testing.assert_array_equal(ps[2].grad.numpy(), arrays[2])


# ---- chapter 8: LSTM ---------------------------------------------------------------------------


@pytest.mark.ch08
def test_exercise_8_1_lstm_gates_forward():
    from references import rnn_cell

    from tinygrad_edu import nn
    from tinygrad_edu.functional import lstm_cell

    H = 3
    rng = np.random.default_rng(9)
    a = rng.standard_normal((2, 4 * H)) * 3
    a[0, :] = 1e3  # saturated gates: exactly 0 or 1, no overflow, no NaN
    a[1, :H] = -1e3
    c = rng.standard_normal((2, H))
    h_new, c_new = lstm_cell(tg.tensor(a), tg.tensor(c))
    # rnn_cell computes x @ W_ih^T + ... ; with W_ih = I and W_hh = 0, a is the pre-activation
    params = {"weight_ih": np.eye(4 * H), "weight_hh": np.zeros((4 * H, H))}
    with np.errstate(over="ignore"):  # the reference's sigmoid overflows to exp(1e3) = inf
        expected_h, expected_c = rnn_cell("lstm", params, a, np.zeros((2, H)), c)
    np.testing.assert_allclose(h_new.numpy(), expected_h, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c_new.numpy(), expected_c, rtol=1e-12, atol=1e-14)
    assert np.isfinite(h_new.numpy()).all() and np.isfinite(c_new.numpy()).all()
    # the Module: LSTMCell (fused) gives the reference's (h', c')
    tg.manual_seed(0)
    cell = nn.LSTMCell(2, H).astype("float64")
    params = {name: p.numpy() for name, p in cell.named_parameters()}
    x, h, c = rng.standard_normal((4, 2)), rng.standard_normal((4, H)), rng.standard_normal((4, H))
    h1, c1 = cell(tg.tensor(x), (tg.tensor(h), tg.tensor(c)))
    eh, ec = rnn_cell("lstm", params, x, h, c)
    np.testing.assert_allclose(h1.numpy(), eh, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c1.numpy(), ec, rtol=1e-12, atol=1e-14)


@pytest.mark.ch08
def test_exercise_8_2_lstm_cell_backward():
    """``_lstm_cell_backward`` against autograd through the composed cell (Tensor ops)."""
    from tinygrad_edu.functional import lstm_cell_composed
    from tinygrad_edu.functional.recurrent import _lstm_cell_backward, _split4

    H = 2
    a, c = leaf(3, 4 * H, low=-2.0, high=2.0, seed=6), leaf(3, H, seed=7)
    rng = np.random.default_rng(10)
    gh, gc = rng.standard_normal((3, H)), rng.standard_normal((3, H))
    h_new, c_new = lstm_cell_composed(a, c)
    ((h_new * tg.tensor(gh)).sum() + (c_new * tg.tensor(gc)).sum()).backward()
    a_i, a_f, a_g, a_o = _split4(a.data, H)
    i, f, o = (1.0 / (1.0 + np.exp(-z)) for z in (a_i, a_f, a_o))
    g = np.tanh(a_g)
    tanh_c = np.tanh(f * c.data + i * g)
    d_i, d_f, d_g, d_o, d_c = _lstm_cell_backward(i, f, g, o, c.data, tanh_c, gh, gc)
    np.testing.assert_allclose(np.concatenate([d_i, d_f, d_g, d_o], axis=-1), a.grad.numpy(),
                               rtol=1e-10, atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(d_c, c.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.ch08
def test_exercise_8_2_lstm_sequence_backward():
    from tinygrad_edu import nn

    tg.manual_seed(0)
    lstm = nn.LSTM(3, 2).astype("float64")
    x = leaf(4, 2, 3, seed=8)
    assert gradcheck(lambda x: lstm(x)[0], [x], name="LSTM")
    assert gradcheck(lambda x: lstm(x)[1][1], [x], name="LSTM c_n")
    w = lstm.weight_hh_l0
    assert gradcheck(lambda w: lstm(x.detach())[0], [w], name="LSTM weight_hh")


# ---- chapter 9: attention ----------------------------------------------------------------------


@pytest.mark.ch09
def test_exercise_9_1_attention_forward_with_masks():
    from references import attention

    from tinygrad_edu import functional as F

    rng = np.random.default_rng(11)
    q, k = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 5, 3))
    v = rng.standard_normal((2, 5, 2))
    T = tg.tensor
    out = F.scaled_dot_product_attention(T(q), T(k), T(v))
    np.testing.assert_allclose(out.numpy(), attention(q, k, v), rtol=1e-12, atol=1e-14)
    # the additive (float) mask, broadcast over the batch
    additive = rng.standard_normal((4, 5))
    out = F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=T(additive))
    np.testing.assert_allclose(out.numpy(), attention(q, k, v, additive=additive), rtol=1e-12)
    # causal: query i sees keys 0..i (L = S)
    qs = rng.standard_normal((2, 5, 3)) * 30  # large scores: the softmax must stay stable
    causal = np.tril(np.ones((5, 5), dtype=bool))
    out = F.scaled_dot_product_attention(T(qs), T(k), T(v), is_causal=True)
    np.testing.assert_allclose(out.numpy(), attention(qs, k, v, keep=causal), rtol=1e-10)
    # padding: the last two keys of batch element 1 are hidden; a row with every key hidden
    keep = np.ones((2, 4, 5), dtype=bool)
    keep[1, :, 3:] = False
    keep[0, 2, :] = False
    out = F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=T(keep))
    np.testing.assert_allclose(out.numpy(), attention(q, k, v, keep=keep), rtol=1e-12, atol=1e-14)
    assert (out.numpy()[0, 2] == 0).all()
    # a hidden key gets exactly zero weight: changing its value changes nothing
    v2 = v.copy()
    v2[1, 3:] = 1e6
    out2 = F.scaled_dot_product_attention(T(q), T(k), T(v2), attn_mask=T(keep))
    np.testing.assert_array_equal(out2.numpy()[1], out.numpy()[1])


@pytest.mark.ch09
def test_exercise_9_2_attention_backward(monkeypatch):
    from tinygrad_edu import functional as F
    from tinygrad_edu.functional import attention

    # the forward's scores from the library's composed version, so that only the backward
    # (this exercise) is checked here, not exercise 9.1
    def scores(q, k, additive, keep, scale, xp):
        def c(a):
            return None if a is None else tg.Tensor(a)

        s = attention._attention_scores_tensor(c(q), c(k), c(additive), keep, scale)
        return s.data

    monkeypatch.setattr(attention, "_attention_scores", scores)
    q, k, v = leaf(2, 3, 4, seed=9), leaf(2, 5, 4, seed=10), leaf(2, 5, 3, seed=11)
    assert gradcheck(F.scaled_dot_product_attention, [q, k, v], name="attention")
    bias = leaf(3, 5, seed=12)
    assert gradcheck(
        lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
        [q, k, v, bias],
        name="attention with a float mask",
    )
    q4 = leaf(2, 5, 4, seed=13)
    assert gradcheck(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        [q4, k, v],
        name="causal attention",
    )
    keep = np.ones((2, 3, 5), dtype=bool)
    keep[0, 1, :] = False  # a row with every key masked: zero output, zero gradient
    keep[1, :, 4] = False
    assert gradcheck(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=tg.tensor(keep)),
        [q, k, v],
        name="attention with a padding mask",
    )


@pytest.mark.ch09
def test_exercise_9_3_split_heads():
    from references import multi_head_attention

    from tinygrad_edu import nn

    tg.manual_seed(0)
    m = nn.MultiHeadAttention(6, 3).astype("float64")
    x = np.random.default_rng(12).standard_normal((2, 4, 6))
    heads = m._split_heads(tg.tensor(x))
    assert heads.shape == (2, 3, 4, 2)
    np.testing.assert_array_equal(heads.numpy()[1, 2, 3], x[1, 3, 4:6])  # head 2: features 4, 5
    # merging (in forward) undoes the split; the layer matches the per-head reference
    expected, _ = multi_head_attention(m, x, x, x)
    np.testing.assert_allclose(m(tg.tensor(x)).numpy(), expected, rtol=1e-10, atol=1e-12)


# ---- chapter 10: the Transformer block ---------------------------------------------------------


@pytest.mark.ch10
def test_exercise_10_1_layer_norm_backward():
    from tinygrad_edu import functional as F

    x, w, b = leaf(2, 3, 6, seed=14), leaf(6, seed=15), leaf(6, seed=16)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (6,), w, b), [x, w, b], name="layer_norm")
    assert gradcheck(lambda x: F.layer_norm(x, (3, 6)), [x], name="layer_norm without weight")


@pytest.mark.ch10
def test_exercise_10_2_gelu_backward():
    from tinygrad_edu import functional as F
    from tinygrad_edu.testing import gradgradcheck

    x = leaf(3, 7, low=-4.0, high=4.0, seed=17)
    assert gradcheck(F.gelu, [x], name="gelu")
    assert gradgradcheck(F.gelu, [x], name="gelu, second derivative")
    x32 = tg.tensor(np.linspace(-5, 5, 11), dtype="float32", requires_grad=True)
    F.gelu(x32).sum().backward()
    assert x32.grad.dtype == "float32"
    xs = np.linspace(-5, 5, 11)
    phi = np.exp(-xs * xs / 2) / np.sqrt(2 * np.pi)
    from references import normal_cdf

    np.testing.assert_allclose(x32.grad.numpy(), normal_cdf(xs) + xs * phi, atol=1e-6)


@pytest.mark.ch10
def test_exercise_10_3_pre_norm_block_forward():
    from references import transformer_block

    from tinygrad_edu import nn

    tg.manual_seed(0)
    x = np.random.default_rng(18).standard_normal((2, 5, 8))
    for bias in (True, False):
        blk = nn.TransformerBlock(d_model=8, n_head=2, bias=bias).astype("float64")
        for p in blk.parameters():  # LayerNorms start at weight 1, bias 0: move them off it
            noise = np.random.default_rng(19).standard_normal(p.shape) * 0.1
            p.data = (p.detach() + tg.tensor(noise, dtype="float64")).data
        got = blk(tg.tensor(x))
        np.testing.assert_allclose(got.numpy(), transformer_block(blk, x), rtol=1e-9, atol=1e-11)
    # padding: keys at padded positions are hidden from every query
    pad = np.zeros((2, 5), dtype=bool)
    pad[1, 3:] = True
    y = blk(tg.tensor(x), key_padding_mask=tg.tensor(pad)).numpy()
    x2 = x.copy()
    x2[1, 3:] = 100.0  # what a padded position holds cannot reach the others
    y2 = blk(tg.tensor(x2), key_padding_mask=tg.tensor(pad)).numpy()
    np.testing.assert_allclose(y2[1, :3], y[1, :3], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y2[0], y[0], rtol=1e-12)


# ---- chapters 11-14 ------------------------------------------------------------------------------


def _tiny_gpt(seed=0, dtype="float64"):
    from tinygrad_edu.models.char_transformer import GPT, GPTConfig

    tg.manual_seed(seed)
    config = GPTConfig(vocab_size=7, block_size=8, n_layer=2, n_head=2, n_embd=8)
    model = GPT(config).astype(dtype)
    for p in model.parameters():  # non-trivial LayerNorm gains and shifts
        p.data = p.data + 0.1 * tg.randn(*p.shape, dtype=dtype).data
    return model


@pytest.mark.ch11
def test_exercise_11_1_gpt_forward():
    import references

    model = _tiny_gpt()
    idx = np.array([[1, 1, 4, 0, 6], [3, 3, 3, 2, 1]])  # repeated ids, T = 5 < block_size = 8
    # reference: token + position embeddings, each block (chapter 10's reference), final norm
    x = references.npy(model.wte.weight)[idx] + references.npy(model.wpe.weight)[:5]
    for block in model.h:
        x = references.transformer_block(block, x)
    ln = model.ln_f
    h = references.layer_norm(x, 1, references.npy(ln.weight))
    np.testing.assert_allclose(model.encode(tg.tensor(idx)).numpy(), h, rtol=1e-9, atol=1e-12)
    targets = np.array([[1, 4, 0, 6, 2], [3, 3, 2, 1, 5]])
    logits, loss = model(tg.tensor(idx), tg.tensor(targets))
    want = h @ references.npy(model.wte.weight).T  # the tied head
    np.testing.assert_allclose(logits.numpy(), want, rtol=1e-9, atol=1e-12)
    ce = references.cross_entropy(want.reshape(10, 7), targets.reshape(10))
    np.testing.assert_allclose(loss.item(), ce, rtol=1e-9)
    # the gradient reaches both embeddings (the forward pass must stay in the graph)
    v = np.random.default_rng(18).standard_normal(h.shape)
    (model.encode(tg.tensor(idx)) * tg.tensor(v)).sum().backward()
    for name in ("wte.weight", "wpe.weight", "ln_f.weight", "h.0.attn.q_proj.weight"):
        p = dict(model.named_parameters())[name]
        assert p.grad is not None and np.abs(p.grad.numpy()).sum() > 0, name
    assert not np.any(model.wpe.weight.grad.numpy()[5:]), "positions 5..7 were not used"


@pytest.mark.ch11
def test_exercise_11_2_adamw_decoupled_decay_with_groups():
    import references

    from tinygrad_edu import optim

    rng = np.random.default_rng(19)
    w0, b0 = rng.standard_normal((3, 4)), rng.standard_normal(4)
    w, b = tg.tensor(w0, requires_grad=True), tg.tensor(b0, requires_grad=True)
    opt = optim.AdamW(
        [{"params": [w], "weight_decay": 0.3}, {"params": [b], "weight_decay": 0.0, "lr": 0.05}],
        lr=0.1,
        betas=(0.8, 0.9),
    )
    rates = [0.1, 0.02, 0.07]  # a schedule changes the group's lr between steps
    grads_w, grads_b = [], []
    for lr in rates:
        opt.param_groups[0]["lr"] = lr
        loss = (w * w).sum() + (b * b * b).sum()  # gradients that depend on the weights
        opt.zero_grad()
        loss.backward()
        grads_w.append(w.grad.numpy().copy())
        grads_b.append(b.grad.numpy().copy())
        opt.step()
    # reference: decay the weight with the step's own rate, then the Adam step
    p, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    for t, (lr, g) in enumerate(zip(rates, grads_w, strict=True), start=1):
        p = p * (1 - lr * 0.3)
        m = 0.8 * m + (1 - 0.8) * g
        v = 0.9 * v + (1 - 0.9) * g * g
        p = p - lr * (m / (1 - 0.8**t)) / (np.sqrt(v / (1 - 0.9**t)) + 1e-8)
    np.testing.assert_allclose(w.numpy(), p, rtol=1e-12, atol=1e-14)
    # the group without decay is plain Adam at its own rate
    want_b = references.adam(b0, grads_b, lr=0.05, betas=(0.8, 0.9))[-1]
    np.testing.assert_allclose(b.numpy(), want_b, rtol=1e-12, atol=1e-14)


@pytest.mark.ch11
def test_exercise_11_3_warmup_cosine_schedule():
    from tinygrad_edu import optim

    def want(step, lr, min_lr, warmup, max_steps):  # nanoGPT's get_lr
        if step < warmup:
            return lr * (step + 1) / (warmup + 1)
        if step > max_steps:
            return min_lr
        ratio = (step - warmup) / (max_steps - warmup)
        return min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (lr - min_lr)

    for warmup, max_steps in ((10, 50), (0, 7), (3, 4)):
        for step in [0, 1, warmup - 1, warmup, warmup + 1, (warmup + max_steps) // 2,
                     max_steps - 1, max_steps, max_steps + 1, 3 * max_steps]:  # fmt: skip
            if step < 0:
                continue
            got = optim.warmup_cosine_lr(step, 2e-3, 1e-4, warmup, max_steps)
            assert got == pytest.approx(want(step, 2e-3, 1e-4, warmup, max_steps), rel=1e-12), (
                step, warmup, max_steps)  # fmt: skip
    assert optim.warmup_cosine_lr(0, 1.0, 0.0, 4, 10) > 0  # the first update is never lr = 0
    # the scheduler: each group from its own rate down to min_lr
    a, b = tg.zeros(1, requires_grad=True), tg.zeros(1, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=1.0)
    sched = optim.WarmupCosineLR(opt, warmup_steps=2, max_steps=6, min_lr=0.1)
    seen = []
    for _ in range(8):
        seen.append([g["lr"] for g in opt.param_groups])
        sched.step()
    for step, (lr_a, lr_b) in enumerate(seen):
        assert lr_a == pytest.approx(want(step, 1.0, 0.1, 2, 6), rel=1e-12)
        assert lr_b == pytest.approx(want(step, 0.5, 0.1, 2, 6), rel=1e-12)


@pytest.mark.ch11
def test_exercise_11_4_temperature_and_top_k():
    from tinygrad_edu.models.char_transformer import sample_next

    logits = np.array([[2.0, 1.0, 0.5, 0.5, -1.0, 0.0]])
    rows = tg.tensor(np.repeat(logits, 6000, axis=0))  # the same prediction, 6000 draws

    def frequencies(**kw):
        tg.manual_seed(3)
        ids = sample_next(rows, **kw).numpy()
        assert ids.shape == (6000, 1) and ids.dtype == np.int64
        return np.bincount(ids.ravel(), minlength=6) / 6000

    def softmax(z):
        e = np.exp(z - z.max())
        return e / e.sum()

    for tau in (0.5, 1.0, 2.5):  # p proportional to exp(z / tau); 4 standard deviations
        np.testing.assert_allclose(frequencies(temperature=tau), softmax(logits[0] / tau),
                                   atol=0.026)  # fmt: skip
    # top-k keeps the k largest scores (ties at the k-th included), renormalised
    f3 = frequencies(top_k=3)
    assert f3[[4, 5]].sum() == 0 and f3[[0, 1]].min() > 0 and f3[[2, 3]].sum() > 0
    f2 = frequencies(top_k=2, temperature=0.7)
    np.testing.assert_allclose(f2[:2], softmax(logits[0, :2] / 0.7), atol=0.026)
    assert f2[2:].sum() == 0
    assert set(frequencies(top_k=1).nonzero()[0]) == {0}  # greedy
    np.testing.assert_allclose(frequencies(top_k=50), softmax(logits[0]), atol=0.026)  # k > V
    # rows are independent: each row keeps its own top k
    two = tg.tensor(np.array([[0.0, 5.0, 4.0, -3.0], [9.0, -1.0, 0.0, 8.0]]))
    tg.manual_seed(4)
    ids = np.concatenate([sample_next(two, top_k=2).numpy() for _ in range(200)], axis=1)
    assert set(ids[0]) == {1, 2} and set(ids[1]) == {0, 3}


@pytest.mark.ch12
def test_exercise_12_1_optimizer_state_follows_the_model(device):
    pytest.importorskip("array_api_strict", reason="the second device needs array-api-strict")
    from tinygrad_edu import backend, nn, optim

    other = "strict" if device == "cpu" else "cpu"  # start on the default device, move to other

    def run(move_at, make_opt):
        tg.manual_seed(5)
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).astype("float64")
        opt = make_opt(model.parameters())
        x = np.random.default_rng(20).standard_normal((6, 3))
        where = device
        for step in range(4):
            if step == move_at:
                model.to(other)
                where = other
            loss = (model(tg.tensor(x, device=where)) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return model, opt

    makers = {
        "Adam": lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True),
        "SGD": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    }
    for name, make in makers.items():
        moved, opt = run(2, make)
        stayed, _ = run(None, make)
        for p, q in zip(moved.parameters(), stayed.parameters(), strict=True):
            assert p.device == other
            np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-12, atol=1e-14)
        for p in moved.parameters():
            state = opt.state[p]
            arrays = {k: v for k, v in state.items() if backend.is_array(v)}
            assert arrays, name
            for key, value in arrays.items():
                assert backend.device_of(value) == other, (name, key)
                assert tuple(value.shape) == p.shape, (name, key)
            if name == "Adam":
                assert state["step"] == 4  # plain numbers stay as they are
    # a cast follows too: float64 state for float64 weights
    tg.manual_seed(6)
    lin = nn.Linear(2, 2)
    opt = optim.Adam(lin.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        lin(tg.ones(1, 2, dtype=lin.weight.dtype)).sum().backward()
        opt.step()
        lin.astype("float64")  # after the first step: the state is float32 until the next one
    assert all(backend.dtype_name(v.dtype) == "float64"
               for s in opt.state.values() for v in s.values() if backend.is_array(v))  # fmt: skip


@pytest.mark.ch13
def test_exercise_13_1_fused_softplus_backward_matches_the_composed_one():
    from tinygrad_edu import functional as F
    from tinygrad_edu.testing import gradgradcheck

    x = leaf(3, 5, low=-4.0, high=4.0, seed=21)
    assert gradcheck(F.softplus, [x], name="softplus")
    assert gradgradcheck(F.softplus, [x], name="softplus")  # the backward is differentiable
    v = tg.tensor(np.random.default_rng(22).standard_normal((3, 5)))
    grads = []
    for f in (F.softplus, F.softplus_composed):
        x.grad = None
        (f(x) * v).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-15)
    # at the kink of max and abs, and far out, where exp(x) overflows float64
    edge = tg.tensor([0.0, -1e4, 1e4, 800.0, -800.0], dtype="float64", requires_grad=True)
    F.softplus(edge).sum().backward()
    np.testing.assert_allclose(edge.grad.numpy(), [0.5, 0.0, 1.0, 1.0, 0.0], atol=1e-15)
    x32 = tg.tensor([0.0, 100.0], dtype="float32", requires_grad=True)
    F.softplus(x32).sum().backward()
    assert x32.grad.dtype == "float32"
    np.testing.assert_allclose(x32.grad.numpy(), [0.5, 1.0])


@pytest.mark.ch14
def test_exercise_14_1_freezing_parameters():
    from tinygrad_edu import nn, optim

    tg.manual_seed(7)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = tg.randn(5, 3, requires_grad=True)
    model(x).sum().backward()  # every parameter has a gradient now
    body = model[0]
    assert body.requires_grad_(False) is body  # returns the module, as PyTorch
    assert [p.requires_grad for p in model.parameters()] == [False, False, True, True]
    assert all(p.grad is None for p in body.parameters()), "freezing drops old gradients"
    before = [p.numpy().copy() for p in body.parameters()]
    opt = optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x.grad = None
    model[2].zero_grad()
    model(x).sum().backward()
    assert all(p.grad is None for p in body.parameters())
    assert all(p.grad is not None for p in model[2].parameters())
    assert x.grad is not None  # the gradient still flows through a frozen layer to its input
    opt.step()
    assert all(np.array_equal(p.numpy(), b) for p, b in zip(body.parameters(), before, strict=True))
    assert model.requires_grad_(True) is model  # unfreeze everything
    assert all(p.requires_grad for p in model.parameters())
    model(x).sum().backward()
    assert all(p.grad is not None for p in body.parameters())


@pytest.mark.ch14
def test_exercise_14_2_classifier_head_on_pooled_features():
    from tinygrad_edu.models.char_transformer import GPTClassifier

    body = _tiny_gpt(seed=8)
    idx = tg.tensor(np.array([[1, 2, 3, 4, 5], [0, 0, 6, 6, 1], [5, 4, 3, 2, 1]]))  # B=3, T=5
    h = body.encode(idx).numpy()  # (3, 5, 8)
    for pool, features in (("mean", h.mean(axis=1)), ("last", h[:, -1])):
        tg.manual_seed(9)
        clf = GPTClassifier(body, num_classes=4, pool=pool).astype("float64")
        W, b = clf.head.weight.numpy(), clf.head.bias.numpy()
        out = clf(idx)
        assert out.shape == (3, 4), pool
        np.testing.assert_allclose(out.numpy(), features @ W.T + b, rtol=1e-9, atol=1e-12)
        clf.zero_grad()
        out.sum().backward()  # the head and the body both get gradients
        assert clf.head.weight.grad is not None and body.wte.weight.grad is not None, pool
    # a frozen body: only the head trains
    for p in body.parameters():
        p.requires_grad_(False)
        p.grad = None
    clf = GPTClassifier(body, num_classes=2).astype("float64")
    clf(idx).sum().backward()
    assert body.wte.weight.grad is None and clf.head.weight.grad is not None


@pytest.mark.ch15
def test_exercise_15_1_bert_masking():
    from tinygrad_edu.models.bert import IGNORE_INDEX, mask_tokens

    # ids 0..9 are characters, 10 [PAD], 11 [CLS], 12 [SEP], 13 [MASK]
    rng = np.random.default_rng(18)
    x = rng.integers(0, 10, (300, 40))
    x[:, 0], x[:, -1], x[:150, 30:] = 11, 12, 10  # [CLS] ... [SEP], and padding
    tg.manual_seed(0)
    inputs, targets = mask_tokens(tg.tensor(x), 14, 13, [10, 11, 12, 13], mask_prob=0.15)
    y, t = inputs.numpy(), targets.numpy()
    assert y.shape == t.shape == x.shape
    chars, chosen = x < 10, t != IGNORE_INDEX
    assert not (chosen & ~chars).any(), "special tokens must never be chosen"
    assert np.array_equal(t[chosen], x[chosen]), "a chosen position's target is its original id"
    assert np.array_equal(y[~chosen], x[~chosen]), "positions not chosen keep their input"

    def near(count, n, p, what):  # within 5 binomial standard deviations
        sd = (n * p * (1 - p)) ** 0.5
        assert abs(count - n * p) <= 5 * sd, f"{what}: {count} of {n}, expected about {n * p:.0f}"

    n = int(chosen.sum())
    near(n, int(chars.sum()), 0.15, "chosen positions")
    c, o = y[chosen], x[chosen]
    near(int((c == 13).sum()), n, 0.8, "[MASK]")
    near(int((c == o).sum()), n, 0.1 + 0.1 / 10, "unchanged (a random id can be the original)")
    assert np.all(c[c != 13] < 10), "a random replacement must be a character, not a special id"
    inputs, targets = mask_tokens(tg.tensor(x), 14, 13, [10, 11, 12, 13], mask_prob=0.0)
    assert np.array_equal(inputs.numpy(), x) and np.all(targets.numpy() == IGNORE_INDEX)


@pytest.mark.ch15
def test_exercise_15_2_mlm_loss():
    from tinygrad_edu.models.bert import IGNORE_INDEX, mlm_loss

    logits = leaf(3, 4, 6, low=-2.0, high=2.0, seed=19)
    t = np.full((3, 4), IGNORE_INDEX)
    t[0, 0], t[1, 2], t[2, 1], t[2, 3] = 5, 0, 2, 2
    z = logits.numpy()
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    expected = -np.mean([logp[0, 0, 5], logp[1, 2, 0], logp[2, 1, 2], logp[2, 3, 2]])
    loss = mlm_loss(logits, tg.tensor(t))
    assert loss.shape == ()
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-10)  # divided by 4, not by 12
    loss.backward()
    assert np.all(logits.grad.numpy()[t == IGNORE_INDEX] == 0), "unchosen positions: no gradient"
    assert gradcheck(lambda z: mlm_loss(z, tg.tensor(t)), [logits], name="mlm_loss")

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

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import leaf

import tinygrad_edu as tg
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
    "2.1": [f"{HERE}::test_exercise_2_1_maximum_minimum_backward",
            f"{HERE}::test_exercise_2_1_ties_split_the_gradient"],
    "2.2": [f"{HERE}::test_exercise_2_2_abs_backward"],
    "3.1": [f"{HERE}::test_exercise_3_1_kaiming_normal"],
    "3.2": [f"{HERE}::test_exercise_3_2_xavier_normal"],
    "4.1": [f"{HERE}::test_exercise_4_1_sgd_momentum[False]",
            f"{HERE}::test_exercise_4_1_sgd_momentum[True]"],
    "5.1": [f"{HERE}::test_exercise_5_1_one_hot"],
    "5.2": [f"{HERE}::test_exercise_5_2_decode"],
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
    "11.1": [f"{HERE}::test_exercise_11_1_kth_largest"],
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
    ids = sorted(r.id for r in regions)
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
    first = subprocess.run([sys.executable, str(tool), "2.2"], capture_output=True, text=True)
    assert first.returncode == 0 and hints.HINTS["2.2"]["idea"][:40] in first.stdout
    assert "--level 2" in first.stdout
    second = subprocess.run(
        [sys.executable, str(tool), "2.2", "--level", "2"], capture_output=True, text=True
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
    assert sorted(r.id for r in stubbed) == sorted(EXERCISES)
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


def test_copy_refuses_to_overwrite_a_learners_work(tmp_path):
    tool = ROOT / "tools" / "make_exercises.py"
    out = tmp_path / "mine"
    first = subprocess.run([sys.executable, str(tool), "--out", str(out), "--solved-through", "3"],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "chapters 1-3 solved" in first.stdout and "ch04" in first.stdout
    assert "3.1" not in first.stdout.split("solved)")[1]
    (out / "tinygrad_edu" / "mine.py").write_text("# my work\n")
    again = subprocess.run([sys.executable, str(tool), "--out", str(out)],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode == 2 and "--force" in again.stdout
    assert (out / "tinygrad_edu" / "mine.py").exists()


# =================================================================================================
# The exercise checks: what a learner runs with ``pytest -m chNN``
# =================================================================================================


@pytest.mark.ch02
def test_exercise_2_1_maximum_minimum_backward():
    a = leaf(3, 4, seed=1)
    b = tg.tensor(np.linspace(-0.95, 0.95, 4) + 0.013, dtype="float64", requires_grad=True)
    assert gradcheck(tg.maximum, [a, b], name="maximum")  # b broadcasts over the rows
    assert gradcheck(tg.minimum, [a, b], name="minimum")
    assert gradcheck(lambda a: tg.maximum(a, 0.25), [a], name="maximum with a number")


@pytest.mark.ch02
def test_exercise_2_1_ties_split_the_gradient():
    a = tg.tensor([1.0, 2.0, 3.0], dtype="float64", requires_grad=True)
    b = tg.tensor([1.0, 5.0, 0.0], dtype="float64", requires_grad=True)
    tg.maximum(a, b).backward(tg.tensor([1.0, 1.0, 1.0], dtype="float64"))
    assert a.grad.numpy().tolist() == [0.5, 0.0, 1.0]
    assert b.grad.numpy().tolist() == [0.5, 1.0, 0.0]


@pytest.mark.ch02
def test_exercise_2_2_abs_backward():
    x = tg.tensor([-2.0, -0.5, 0.3, 1.7], dtype="float64", requires_grad=True)
    assert gradcheck(tg.abs, [x], name="abs")
    z = tg.tensor([0.0, -3.0], dtype="float64", requires_grad=True)
    z.abs().sum().backward()
    assert z.grad.numpy().tolist() == [0.0, -1.0]  # 0 at the kink, by convention


@pytest.mark.ch03
def test_exercise_3_1_kaiming_normal():
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
def test_exercise_3_2_xavier_normal():
    from tinygrad_edu.nn import init

    w = tg.zeros(300, 500)
    assert init.xavier_normal_(w) is w
    assert abs(w.numpy().std() / np.sqrt(2.0 / 800) - 1) < 0.03
    init.xavier_normal_(w, gain=5.0 / 3.0)
    assert abs(w.numpy().std() / (5.0 / 3.0 * np.sqrt(2.0 / 800)) - 1) < 0.03


@pytest.mark.ch04
@pytest.mark.parametrize("nesterov", [False, True])
def test_exercise_4_1_sgd_momentum(nesterov):
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


@pytest.mark.ch11
def test_exercise_11_1_kth_largest():
    from tinygrad_edu.models.char_transformer import _kth_largest, sample_next

    logits = np.random.default_rng(17).standard_normal((4, 9)).astype(np.float32)
    for k in (1, 3, 9):
        got = _kth_largest(tg.tensor(logits), k)
        assert got.shape == (4, 1)
        np.testing.assert_array_equal(got.numpy()[:, 0], np.sort(logits, axis=1)[:, 9 - k])
    tg.manual_seed(0)
    rows = tg.tensor(np.repeat(logits[:1], 200, axis=0))
    drawn = set(sample_next(rows, top_k=3).numpy().ravel().tolist())
    assert drawn <= set(np.argsort(logits[0])[-3:].tolist()) and len(drawn) > 1


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

"""Exercises: the checks a learner runs, and the check that stubs and solutions never drift.

Two kinds of test live here.

1. **Exercise checks** (``test_exercise_N_M_*``), marked with their chapter's marker, so that a
   learner who has filled in exercise 2.1 in the generated copy runs ``pytest -m ch02`` and sees
   them turn green. They gradient-check the learner's backward rules (float64, random upstream
   gradient) or compare results with plain-NumPy references.
2. **The learner-copy check** (``test_learner_copy``): generate the copy with
   ``tools/make_exercises.py`` into a temporary folder, check that it imports, run the exercise
   checks there and expect *exactly* the mapped tests to fail with the exercise's
   ``NotImplementedError``, and run a sample of other engine tests expecting them to pass.

``EXERCISES`` maps each exercise id to the tests that check it; every exercise region in the
library must appear here and every id here must have a region.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from helpers import leaf

import tinygrad_edu as tg
from tinygrad_edu.testing import gradcheck

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import make_exercises  # noqa: E402

IN_LEARNER_COPY = (ROOT / make_exercises.MARKER_FILE).exists()
HERE = "tests/test_exercises.py"

# exercise id -> the tests that check it (each must fail while the exercise is a stub)
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
    "6.1": [f"{HERE}::test_exercise_6_1_fold_is_the_conv_input_gradient"],
    "7.1": [f"{HERE}::test_exercise_7_1_bptt[tanh]", f"{HERE}::test_exercise_7_1_bptt[relu]"],
    "8.1": [f"{HERE}::test_exercise_8_1_lstm_cell_backward",
            f"{HERE}::test_exercise_8_1_lstm_sequence_backward"],
    "9.1": [f"{HERE}::test_exercise_9_1_attention_backward"],
    "10.1": [f"{HERE}::test_exercise_10_1_layer_norm_backward"],
    "11.1": [f"{HERE}::test_exercise_11_1_kth_largest"],
}  # fmt: skip

# Functions whose backward is (or calls) an exercise: their cases in tests/test_registry.py fail
# in the learner copy; the cases of the Functions in REGISTRY_SAMPLE must keep passing there.
STUBBED_FUNCTIONS: dict[str, list[str]] = make_exercises.REGISTRY_CASES
REGISTRY_SAMPLE = ["Add", "Mul", "MatMul", "Sum", "Reshape", "Transpose", "Exp", "Log"]


# =================================================================================================
# The exercise-region tool
# =================================================================================================


def test_stub_keeps_indentation_and_names_the_chapter():
    src = textwrap.dedent(
        """\
        class A:
            def f(self, x):
                y = x + 1
                # --- exercise 99.1: add two ---
                z = y + 1
                return z
                # --- end exercise ---
        """
    )
    out, regions = make_exercises.stub_text(src, "pkg/a.py")
    assert [r.id for r in regions] == ["99.1"] and regions[0].title == "add two"
    lines = out.splitlines()
    assert lines[3] == "        # --- exercise 99.1: add two ---"
    assert lines[4] == '        raise NotImplementedError("Exercise 99.1, see chapters/99_*.md")'
    assert lines[5] == "        # --- end exercise ---"
    assert "z = y + 1" not in out and "y = x + 1" in out
    ns = {}
    exec(out, ns)
    with pytest.raises(NotImplementedError, match=r"Exercise 99\.1"):
        ns["A"]().f(1)


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
def test_every_region_has_checks_and_a_chapter():
    regions = make_exercises.all_regions(ROOT / "tinygrad_edu")
    assert sorted(r.id for r in regions) == sorted(EXERCISES), (
        "exercise regions in the library and EXERCISES in tests/test_exercises.py differ"
    )
    collected = {name for name in globals() if name.startswith("test_exercise_")}
    for r in regions:
        chapter = ROOT / make_exercises.chapter_file(r.chapter)
        assert chapter.exists(), f"exercise {r.id} points to a missing chapter {chapter}"
        assert f"Exercise {r.id}" in chapter.read_text(), f"{chapter.name} never states {r.id}"
        for node in EXERCISES[r.id]:
            path, name = node.split("::")
            assert path == HERE and name.split("[")[0] in collected, node


# =================================================================================================
# The learner copy
# =================================================================================================


def _run_pytest(cwd: Path, args: list[str], tmp_path: Path) -> dict[str, str]:
    """Run pytest in the learner copy; returns {node id: "passed" | "failed: message"}."""
    report = tmp_path / "report.xml"
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header",
           "-o", "addopts=", f"--junitxml={report}", *args]  # fmt: skip
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if not report.exists():
        raise AssertionError(
            f"pytest did not run in the learner copy:\n{proc.stdout}\n{proc.stderr}"
        )
    results = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        file = case.get("file") or case.get("classname").replace(".", "/") + ".py"
        node = f"{file}::{case.get('name')}"
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            results[node] = "failed: " + (bad.get("message") or "") + (bad.text or "")[-400:]
        elif case.find("skipped") is not None:
            results[node] = "skipped"
        else:
            results[node] = "passed"
    return results


@pytest.mark.skipif(IN_LEARNER_COPY, reason="this is the learner copy already")
def test_learner_copy(tmp_path):
    copy = tmp_path / "learner"
    regions = make_exercises.make_copy(copy)
    assert regions, "the library has no exercise regions"
    stubbed = [p for p in (copy / "tinygrad_edu").rglob("*.py") if "NotImplementedError(\"Ex" in
               p.read_text()]  # fmt: skip
    assert stubbed, "no stub was written"

    # 1. it imports, every module of it, from the copy and not from the solutions
    probe = (
        "import importlib, pkgutil, tinygrad_edu as t; "
        "mods = pkgutil.walk_packages(t.__path__, 'tinygrad_edu.'); "
        "[importlib.import_module(m.name) for m in mods]; "
        "print(t.__file__)"
    )
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-c", probe], cwd=copy, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).resolve().is_relative_to(copy.resolve()), proc.stdout

    # 2. exactly the exercise checks fail, each with its own exercise's NotImplementedError
    expect_fail = {node: ex for ex, nodes in EXERCISES.items() for node in nodes}
    stub_fns = sorted({f for fns in STUBBED_FUNCTIONS.values() for f in fns})
    results = _run_pytest(copy, [HERE, "-k", "test_exercise_ or malformed or stub_keeps"], tmp_path)
    registry = _run_pytest(
        copy, ["tests/test_registry.py", "-k", _k_names(stub_fns + REGISTRY_SAMPLE)], tmp_path
    )
    problems = []
    for node, outcome in sorted(results.items()):
        if node in expect_fail:
            ex = expect_fail[node]
            if not outcome.startswith("failed") or f"Exercise {ex}" not in outcome:
                problems.append(
                    f"{node} should fail with Exercise {ex}'s stub, got {outcome[:200]}"
                )
        elif outcome != "passed":
            problems.append(f"{node} should pass in the learner copy, got {outcome[:300]}")
    missing = set(expect_fail) - set(results)
    problems += [f"{node} was not collected in the learner copy" for node in sorted(missing)]
    for node, outcome in sorted(registry.items()):
        fn = node.split("[")[-1].rsplit("-", 1)[0] if "[" in node else None
        if fn in stub_fns and not outcome.startswith("failed"):
            problems.append(f"{node} should fail (its backward is an exercise), got {outcome}")
        if fn in REGISTRY_SAMPLE and outcome != "passed":
            problems.append(f"{node} should pass in the learner copy, got {outcome[:300]}")
    assert any("[" in n for n in registry), "no registry case was selected"
    assert not problems, "\n".join(problems)

    # 3. in the copy, a Function's gradient checks count for the chapter of its exercise
    def collected(markexpr):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
             "-o", "addopts=", "-m", markexpr, "tests/test_registry.py"],
            cwd=copy, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return {line.split("[")[-1].rsplit("-", 1)[0] for line in proc.stdout.splitlines()
                if "::test_gradcheck[" in line}  # fmt: skip

    in_ch02, in_ch10 = collected("ch02"), collected("ch10")
    assert "Add" in in_ch02 and "Maximum" in in_ch02, in_ch02
    assert "LayerNormFunction" not in in_ch02, in_ch02
    assert "ScaledDotProductAttentionFunction" not in in_ch02, in_ch02
    assert in_ch10 == {"LayerNormFunction"}, in_ch10


def _k_names(functions: list[str]) -> str:
    """A ``-k`` expression selecting the registry cases of these Functions."""
    return " or ".join(f"gradcheck and {f}-" for f in functions)


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


@pytest.mark.ch06
def test_exercise_6_1_fold_is_the_conv_input_gradient():
    from tinygrad_edu import functional as F

    x = leaf(2, 3, 11, seed=2)
    w = leaf(4, 3, 3, seed=3)
    for stride, padding, dilation in ((1, 0, 1), (2, 1, 1), (1, 2, 2), (3, 1, 2)):
        assert gradcheck(
            lambda x, w, s=stride, p=padding, d=dilation: F.conv1d(
                x, w, stride=s, padding=p, dilation=d
            ),
            [x, w],
            name=f"conv1d stride={stride} padding={padding} dilation={dilation}",
        )


@pytest.mark.ch07
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_exercise_7_1_bptt(nonlinearity):
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


@pytest.mark.ch08
def test_exercise_8_1_lstm_cell_backward():
    from tinygrad_edu.functional import lstm_cell

    a = leaf(3, 4 * 2, low=-2.0, high=2.0, seed=6)
    c = leaf(3, 2, seed=7)
    assert gradcheck(lambda a, c: lstm_cell(a, c)[0], [a, c], name="LSTM cell, h")
    assert gradcheck(lambda a, c: lstm_cell(a, c)[1], [a, c], name="LSTM cell, c")


@pytest.mark.ch08
def test_exercise_8_1_lstm_sequence_backward():
    from tinygrad_edu import nn

    tg.manual_seed(0)
    lstm = nn.LSTM(3, 2).astype("float64")
    x = leaf(4, 2, 3, seed=8)
    assert gradcheck(lambda x: lstm(x)[0], [x], name="LSTM")
    w = lstm.weight_hh_l0
    assert gradcheck(lambda w: lstm(x.detach())[0], [w], name="LSTM weight_hh")


@pytest.mark.ch09
def test_exercise_9_1_attention_backward():
    from tinygrad_edu import functional as F

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


@pytest.mark.ch10
def test_exercise_10_1_layer_norm_backward():
    from tinygrad_edu import functional as F

    x, w, b = leaf(2, 3, 6, seed=14), leaf(6, seed=15), leaf(6, seed=16)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (6,), w, b), [x, w, b], name="layer_norm")
    assert gradcheck(lambda x: F.layer_norm(x, (3, 6)), [x], name="layer_norm without weight")


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

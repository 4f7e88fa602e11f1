"""Smoke test of ``benchmarks/run.py``: it runs every case on tiny shapes and reports numbers.

No timing is asserted (machines are noisy); the test checks that each case runs end to end and
that ``--json`` prints one JSON object with the documented keys on its last line.
"""

import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ch13

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"

# What each case needs from the library; a case may only be skipped when one of these is missing.
NEEDS = {
    "B1": [
        ("tinygrad_edu.nn", "Linear"),
        ("tinygrad_edu.optim", "SGD"),
        ("tinygrad_edu.functional", "cross_entropy"),
    ],
    "B2": [
        ("tinygrad_edu.nn", "Embedding"),
        ("tinygrad_edu.nn", "LSTM"),
        ("tinygrad_edu.optim", "Adam"),
        ("tinygrad_edu.functional", "cross_entropy"),
    ],
    "B3": [("tinygrad_edu.models.char_transformer", None), ("tinygrad_edu.optim", "AdamW")],
    "B4": [
        ("tinygrad_edu.nn", "Conv1d"),
        ("tinygrad_edu.optim", "SGD"),
        ("tinygrad_edu.functional", "cross_entropy"),
    ],
    "B5": [],
}


def _available(case: str) -> bool:
    for module, name in NEEDS[case]:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            return False
        if name is not None and not hasattr(mod, name):
            return False
    return True


def run_benchmarks(*args, timeout=120) -> subprocess.CompletedProcess:
    """``python benchmarks/run.py *args``, its output captured."""
    cmd = [sys.executable, str(RUN), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


# a smoke run: tiny shapes, two steps after one warm-up step, on this run's device
TINY = ["--tiny", "--steps", "2", "--warmup", "1", "--device"]
TINY.append(os.environ.get("TINYGRAD_EDU_DEVICE") or "cpu")


@pytest.fixture(scope="module")
def smoke_run():
    return run_benchmarks(*TINY, "--no-torch", "--json")


def test_runs_and_prints_json_last(smoke_run):
    assert smoke_run.returncode == 0, smoke_run.stdout[-2000:] + smoke_run.stderr[-3000:]
    assert "TINY SHAPES" in smoke_run.stdout  # a smoke run must never pass for the benchmark
    result = json.loads(smoke_run.stdout.strip().splitlines()[-1])
    assert set(result) >= {"B1", "B2", "B3", "B4", "B5", "machine", "matmul_gflops"}
    assert result["tiny"] is True
    assert result["matmul_gflops"] > 0


@pytest.mark.parametrize("case", ["B1", "B2", "B3", "B4", "B5"])
def test_case_reports_a_positive_time(smoke_run, case):
    result = json.loads(smoke_run.stdout.strip().splitlines()[-1])
    entry = result[case]
    key = "us_per_op" if case == "B5" else "ms"
    assert key in entry
    if entry[key] is None:
        # only allowed while a layer the case needs is not in the library yet
        assert "skipped" in entry, entry
        assert not _available(case), f"{case} was skipped but its layers exist: {entry['skipped']}"
        return
    assert math.isfinite(entry[key]) and entry[key] > 0
    assert 0 < entry["min"] <= entry[key] <= entry["max"]
    if case != "B5":
        assert math.isfinite(entry["first_loss"]) and entry["first_loss"] > 0


def test_b3_reports_flop_rate_and_memory(smoke_run):
    result = json.loads(smoke_run.stdout.strip().splitlines()[-1])
    b3 = result["B3"]
    if b3["ms"] is None:
        assert not _available("B3")
        return
    # 6N + 12 L H Q T with the tiny config: L=1, H=2, Q=8, T=8
    assert b3["flops_per_token"] == 6 * b3["n_params_counted"] + 12 * 1 * 2 * 8 * 8
    assert b3["n_params_counted"] < b3["n_params_total"]
    assert b3["fraction_of_matmul_peak"] > 0
    assert b3["peak_rss_mib"] >= b3["rss_after_import_mib"] > 0


def test_bad_case_name_is_a_clear_error():
    proc = run_benchmarks("--cases", "B9", timeout=60)
    assert proc.returncode != 0
    assert "unknown case(s) ['B9']" in proc.stderr


def test_profile_mode_lists_the_engine_functions():
    proc = run_benchmarks("--profile", "--cases", "B5", "--top", "5", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "==== B5: 2 steps under cProfile" in proc.stdout
    assert "sorted by tottime" in proc.stdout and "sorted by cumtime" in proc.stdout
    assert "tensor.py" in proc.stdout  # B5 is all engine overhead: the profile must show it


@pytest.mark.parametrize("case", ["B1", "B2", "B3", "B4"])
def test_case_reports_its_blas_floor(smoke_run, case):
    """The floor (the case's own matrix products alone) is timed and is below the full step."""
    entry = json.loads(smoke_run.stdout.strip().splitlines()[-1])[case]
    if entry["ms"] is None:
        assert not _available(case)
        return
    assert entry["floor_gflop"] > 0 and entry["floor_ms"] > 0
    assert 0 < entry["floor_over_ours"] < 1
    assert f"{case} BLAS floor: " in smoke_run.stdout


def _run_module():
    sys.path.insert(0, str(RUN.parent))
    try:
        return importlib.import_module("run")
    finally:
        sys.path.remove(str(RUN.parent))


def test_floor_replays_the_model_flops_of_b3():
    """B3's list of matrix products does the model's FLOPs (6N + 12LHQT per token, which
    counts exactly the matrix products), so no product of the step is missing from the floor."""
    run = _run_module()
    cfg = run.FULL["B3"]
    C, L, H, T, V = cfg["n_embd"], cfg["n_layer"], cfg["n_head"], cfg["block"], cfg["vocab"]
    n = V * C + L * (4 * C * C + 8 * C * C)  # tied embedding once, attention and MLP matrices
    tokens = cfg["batch"] * T
    model_gflop = (6 * n + 12 * L * H * (C // H) * T) * tokens / 1e9
    floor_gflop = run.gemm_floor_step("B3", cfg).gflop
    # the floor also holds the embeddings' one-hot backward products (about 1% more)
    assert model_gflop <= floor_gflop <= 1.02 * model_gflop


@pytest.mark.parametrize("case", ["B1", "B3", "B4"])
def test_torch_floor_replays_the_same_products(case):
    """PyTorch's floor runs our very arrays (shapes and strides) through torch.matmul: the same
    FLOPs, and each product equal to NumPy's."""
    torch = pytest.importorskip("torch", reason="PyTorch's floor needs torch (optional)")
    import numpy as np

    run = _run_module()
    cfg = run.TINY[case]
    ours, theirs = run.gemm_floor_step(case, cfg), run.gemm_floor_step(case, cfg, torch)
    assert theirs.gflop == ours.gflop > 0
    for a, b in run.gemms(case, cfg):
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        assert ta.stride() == tuple(s // a.itemsize for s in a.strides)  # no copy, same layout
        np.testing.assert_allclose(torch.matmul(ta, tb).numpy(), a @ b, rtol=1e-4, atol=1e-4)


def test_end_to_end_case_trains_and_evaluates(smoke_run):
    e2e = json.loads(smoke_run.stdout.strip().splitlines()[-1])["E2E"]
    assert "error" not in e2e, e2e
    assert e2e["steps"] == 2 and e2e["eval_iters"] >= 1
    ours = e2e["ours"]
    assert ours["seconds"] > 0 and ours["eval_seconds"] > 0
    assert math.isfinite(ours["first_loss"]) and math.isfinite(ours["val_loss"])
    assert "| ours |" in smoke_run.stdout


OVERHEAD = RUN.parent / "overhead.py"


def test_overhead_script_splits_b5_per_op_and_compares_copies():
    """``benchmarks/overhead.py`` prints the per-op pieces of B5, and with ``--against`` the same
    pieces for a second copy of the package with their ratios (here: this checkout against
    itself)."""
    root = RUN.parents[1]
    proc = subprocess.run(
        [sys.executable, str(OVERHEAD), "--rounds", "3", "--against", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if "this" in line and "ratio" in line]
    names = [row.split(" this ")[0].strip() for row in rows]
    assert names == [
        "mul, graph recorded",
        "mul, no graph",
        "add, graph recorded",
        "chain: forward, count, backward",
    ]
    for row in rows:
        ratios = row.split("ratio")[1].split("/")
        assert all(float(r) > 0 for r in ratios), row


@pytest.mark.parametrize(
    "args, message",
    [(["--rounds", "0"], "--rounds must be at least 1"), (["--against", "/"], "no tinygrad_edu")],
)
def test_overhead_script_rejects_bad_flags(args, message):
    proc = subprocess.run(
        [sys.executable, str(OVERHEAD), *args], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr

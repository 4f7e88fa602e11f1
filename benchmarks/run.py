"""Benchmark cases B1-B5: milliseconds per full training step, side by side with PyTorch eager.

Every case times one *full* training step in float32: forward, loss, backward and the optimizer
step (B5 times the autograd machinery alone). Each case is timed for ``--steps`` steps after
``--warmup`` untimed ones; the median is the headline number, min and max show the spread.

=====  =========================================================================================
case   what
=====  =========================================================================================
B1     MLP 784-512-512-10 ReLU, batch 128, softmax cross-entropy, SGD
B2     LSTM LM: vocab 65, embedding 64, LSTM 256, batch 32, sequence 64, Adam
B3     char Transformer (nanoGPT's CPU recipe): 4 layers, 4 heads, width 128, block 64, batch 12,
       no bias, tied embedding, AdamW, gradient clipping at 1.0
B4     Conv1d 64->128, kernel 5, padding 2, length 256, batch 32, ReLU, mean-pool, linear 10, SGD
B5     autograd overhead: 1,000 x ``x = x * 1.0001 + 0.0001`` on a scalar (2,000 ops), then
       backward; microseconds per op
=====  =========================================================================================

When PyTorch is importable (it is never a dependency), the same cases run in PyTorch eager in
the same process, *interleaved*: a block of our steps, then a block of PyTorch steps, and so on,
so that noise on a shared machine hits both sides alike. Both sides use the same shapes, the same
initial weights (copied from our model by parameter name; the names are PyTorch's on purpose) and
the same number of threads (``torch.set_num_threads`` is set to our BLAS thread count).

For B3 it also prints the model FLOP rate (6N + 12 L H Q T FLOPs per token, as in the PaLM paper's
appendix B and nanoGPT's ``estimate_mfu``) as a fraction of the float32 matmul peak measured in the
same run, and the peak resident memory (RSS) of a B3 training run in a fresh subprocess per side.

Usage::

    python benchmarks/run.py                  # all cases, with PyTorch if installed
    python benchmarks/run.py --cases B1,B3 --steps 30
    python benchmarks/run.py --no-torch --json   # last line: one JSON object
    python benchmarks/run.py --tiny --steps 2 --warmup 1   # smoke run on shrunken shapes
    OPENBLAS_NUM_THREADS=1 python benchmarks/run.py --clock cpu   # steady on a busy machine
    python benchmarks/run.py --profile --cases B3 --steps 10    # cProfile of our side
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback

CASES = ("B1", "B2", "B3", "B4", "B5")
ALL_CASES = CASES + ("E2E",)  # E2E: the example's training run, see run_e2e

# The shapes of DESIGN.md's benchmark table, and the shrunken ones of the smoke test (--tiny).
FULL = {
    "B1": dict(batch=128, sizes=(784, 512, 512, 10), lr=0.01),
    "B2": dict(vocab=65, emb=64, hidden=256, batch=32, seq=64, lr=1e-3),
    "B3": dict(vocab=65, n_layer=4, n_head=4, n_embd=128, block=64, batch=12, lr=1e-3),
    "B4": dict(batch=32, c_in=64, c_out=128, kernel=5, padding=2, length=256, classes=10, lr=0.01),
    "B5": dict(reps=1000),
}
TINY = {
    "B1": dict(batch=8, sizes=(32, 16, 16, 4), lr=0.01),
    "B2": dict(vocab=11, emb=8, hidden=16, batch=2, seq=5, lr=1e-3),
    "B3": dict(vocab=11, n_layer=1, n_head=2, n_embd=16, block=8, batch=2, lr=1e-3),
    "B4": dict(batch=2, c_in=3, c_out=4, kernel=3, padding=1, length=10, classes=3, lr=0.01),
    "B5": dict(reps=50),
}
DESCRIPTION = {
    "B1": "MLP 784-512-512-10, batch 128, SGD",
    "B2": "LSTM LM 65/64/256, B32 T64, Adam",
    "B3": "char Transformer 4L 4H 128C T64 B12, AdamW",
    "B4": "Conv1d 64->128 k5, L256 B32, SGD",
    "B5": "autograd overhead, 2,000 scalar ops",
}


# =================================================================================================
# The machine
# =================================================================================================


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> dict:
    """BLAS library, version, kernel architecture and threads (threadpoolctl if installed)."""
    import numpy as np

    try:
        import threadpoolctl

        for pool in threadpoolctl.threadpool_info():
            if pool.get("user_api") == "blas":
                return {
                    "source": "threadpoolctl",
                    "library": pool.get("internal_api"),
                    "version": pool.get("version"),
                    "architecture": pool.get("architecture"),
                    "threads": pool.get("num_threads"),
                    "threading_layer": pool.get("threading_layer"),
                }
    except ImportError:
        pass
    info = {"source": "numpy.show_config"}
    try:
        import io
        import warnings
        from contextlib import redirect_stdout

        with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info.update(library=blas.get("name"), version=blas.get("version"))
    except Exception:  # numpy 1.x or an unusual build: report what we know
        info["library"] = "unknown"
    core = _openblas_corename()
    if core:
        info["architecture"] = core
    return info


def _openblas_corename():
    """The kernel OpenBLAS chose at run time (``SkylakeX``, ``Haswell`` ...), asked from the
    library NumPy bundles; None when it cannot be found."""
    import ctypes
    import glob

    import numpy as np

    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*")
    for path in glob.glob(libs):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                     "openblas_get_corename64_", "openblas_get_corename"):  # fmt: skip
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return None


def our_threads(blas: dict) -> int:
    """The number of threads our matmuls use: the BLAS pool's, else the usual variables."""
    if blas.get("threads"):
        return int(blas["threads"])
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def machine_info() -> dict:
    import numpy as np

    blas = blas_info()
    return {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "threads": our_threads(blas),
        # OpenBLAS picks its kernels from the CPU it detects; these two variables override that
        # choice and its cache-size guess, and can change matmul speed by a factor of two.
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        # other variables that change the numbers: thread counts, and glibc's malloc thresholds
        # (large temporaries are mapped fresh from the OS, page faults included, below them)
        "env": {
            k: os.environ[k]
            for k in (
                "OPENBLAS_NUM_THREADS",
                "OMP_NUM_THREADS",
                "MKL_NUM_THREADS",
                "MALLOC_MMAP_THRESHOLD_",
                "MALLOC_TRIM_THRESHOLD_",
            )
            if k in os.environ
        },
    }


def _proc_status_mib(key: str) -> float | None:
    """A memory line of /proc/self/status (``VmHWM``, ``VmRSS``) in MiB; None without /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM), in MiB."""
    peak = _proc_status_mib("VmHWM")
    if peak is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return peak


def current_rss_mib() -> float:
    """This process's resident memory now (VmRSS), in MiB; NaN without /proc."""
    rss = _proc_status_mib("VmRSS")
    return float("nan") if rss is None else rss


# =================================================================================================
# Timing
# =================================================================================================


def matmul_peak(n: int = 1024, reps: int = 10, torch=None, clock=time.perf_counter) -> float:
    """GFLOP/s of the best of ``reps`` float32 (n, n) @ (n, n) products (2 n^3 FLOPs each)."""
    if torch is None:
        from tinygrad_edu import backend

        xp = backend.namespace("cpu")
        a = xp.asarray(backend.rng().standard_normal((n, n)), dtype=xp.float32)
        b = xp.asarray(backend.rng().standard_normal((n, n)), dtype=xp.float32)
        mm = xp.matmul
    else:
        a, b = torch.randn(n, n), torch.randn(n, n)
        mm = torch.matmul
    for _ in range(3):
        mm(a, b)
    best = math.inf
    for _ in range(reps):
        t0 = clock()
        mm(a, b)
        best = min(best, clock() - t0)
    return 2 * n**3 / best / 1e9


def interleaved(
    runners: dict, steps: int, warmup: int, block: int, clock=time.perf_counter
) -> dict:
    """Time every runner ``steps`` times, alternating blocks of ``block`` steps between them.

    ``runners`` maps a name to a zero-argument function doing one step. Returns name -> list of
    seconds per step, read from ``clock`` (wall time; ``time.process_time`` counts this
    process's CPU time instead, which other programs on a busy machine do not inflate).
    Garbage collection is run between blocks, never inside one, so a collector pause lands on
    neither side's clock. The minor page faults of each runner's blocks are counted under the key
    ``name + "_faults"`` (a large temporary that the allocator maps fresh from the OS costs one
    fault per 4 KiB page touched).
    """
    for fn in runners.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in runners}
    faults = {name: 0 for name in runners}
    while any(len(t) < steps for t in times.values()):
        for name, fn in runners.items():
            gc.collect()
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(min(block, steps - len(times[name]))):
                t0 = clock()
                fn()
                times[name].append(clock() - t0)
            faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    times.update({name + "_faults": [faults[name]] for name in runners})
    return times


def summary(seconds: list, scale: float) -> dict:
    """Median, min and max of per-step seconds, times ``scale`` (1e3 for ms)."""
    return {
        "median": statistics.median(seconds) * scale,
        "min": min(seconds) * scale,
        "max": max(seconds) * scale,
        "n": len(seconds),
    }


# =================================================================================================
# Our side. Each builder returns (step, info): step() does one full training step.
# =================================================================================================


def training_step(opt, compute_loss, clip=None):
    """One full training step, the same on both sides (PyTorch's optimizers share the API):
    zero the gradients, forward and loss, backward, optionally clip, update. Returns the loss."""

    def step():
        opt.zero_grad()
        loss = compute_loss()
        loss.backward()
        if clip is not None:
            clip()
        opt.step()
        return loss

    return step


# What both sides run, written once: the models of B1, B2 and B4 (``nn`` is ``tinygrad_edu.nn`` or
# ``torch.nn``, whose layers share their names, arguments and parameter names) and B5's chain.


def mlp(nn, sizes):
    """B1: Linear -> ReLU -> Linear -> ReLU -> Linear, ``sizes`` = (d_in, h1, h2, d_out)."""
    d_in, h1, h2, d_out = sizes

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(d_in, h1)
            self.fc2 = nn.Linear(h1, h2)
            self.fc3 = nn.Linear(h2, d_out)

        def forward(self, x):
            return self.fc3(self.fc2(self.fc1(x).relu()).relu())

    return MLP()


def lstm_lm(nn, V, E, H):
    """B2: Embedding -> LSTM -> Linear head, a language model over V tokens."""

    class LSTMLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(V, E)
            self.lstm = nn.LSTM(E, H, batch_first=True)
            self.head = nn.Linear(H, V)

        def forward(self, idx):
            h, _ = self.lstm(self.emb(idx))  # (B, T) -> (B, T, E) -> (B, T, H)
            return self.head(h)  # (B, T, V)

    return LSTMLM()


def conv_net(nn, cfg: dict):
    """B4: Conv1d -> ReLU -> mean over time -> Linear."""

    class ConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(cfg["c_in"], cfg["c_out"], cfg["kernel"], padding=cfg["padding"])
            self.fc = nn.Linear(cfg["c_out"], cfg["classes"])

        def forward(self, x):
            h = self.conv(x).relu()  # (N, C_in, L) -> (N, C_out, L)
            return self.fc(h.mean(axis=2))  # (N, C_out) -> (N, classes)

    return ConvNet()


def scalar_chain(x, reps: int):
    """B5's step on the scalar leaf ``x`` (ours or PyTorch's): ``2 * reps`` tiny ops, one
    backward; the arithmetic is nothing, so the time is the framework's overhead per op."""

    def step():
        x.grad = None
        y = x
        for _ in range(reps):
            y = y * 1.0001 + 0.0001
        y.backward()
        return y

    return step


def ours_b1(cfg: dict):
    import tinygrad_edu as tg
    from tinygrad_edu import nn, optim
    from tinygrad_edu.functional import cross_entropy

    d_in, d_out = cfg["sizes"][0], cfg["sizes"][-1]
    tg.manual_seed(0)
    model = mlp(nn, cfg["sizes"])
    x = tg.randn(cfg["batch"], d_in)
    y = tg.randint(0, d_out, (cfg["batch"],))
    opt = optim.SGD(model.parameters(), lr=cfg["lr"])

    step = training_step(opt, lambda: cross_entropy(model(x), y))
    return step, {"model": model, "inputs": (x, y)}


def ours_b2(cfg: dict):
    import tinygrad_edu as tg
    from tinygrad_edu import nn, optim
    from tinygrad_edu.functional import cross_entropy

    V, E, H = cfg["vocab"], cfg["emb"], cfg["hidden"]

    tg.manual_seed(0)
    model = lstm_lm(nn, V, E, H)
    B, T = cfg["batch"], cfg["seq"]
    idx = tg.randint(0, V, (B, T))
    targets = tg.randint(0, V, (B, T))
    opt = optim.Adam(model.parameters(), lr=cfg["lr"])

    def compute_loss():
        logits = model(idx)  # (B, T, V)
        return cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))

    step = training_step(opt, compute_loss)
    return step, {"model": model, "inputs": (idx, targets)}


def ours_b3_model(cfg: dict):
    """The project's char Transformer with B3's configuration, and its AdamW optimizer."""
    import tinygrad_edu as tg
    from tinygrad_edu.models.char_transformer import GPT, GPTConfig

    config = GPTConfig(
        vocab_size=cfg["vocab"],
        block_size=cfg["block"],
        n_layer=cfg["n_layer"],
        n_head=cfg["n_head"],
        n_embd=cfg["n_embd"],
        dropout=0.0,
        bias=False,
    )
    tg.manual_seed(0)
    model = GPT(config)
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=cfg["lr"], betas=(0.9, 0.99))
    return model, opt, config


def ours_b3(cfg: dict):
    import tinygrad_edu as tg
    from tinygrad_edu import optim

    model, opt, config = ours_b3_model(cfg)
    B, T, V = cfg["batch"], cfg["block"], cfg["vocab"]
    tg.manual_seed(1)
    idx = tg.randint(0, V, (B, T))
    targets = tg.randint(0, V, (B, T))
    params = model.parameters()
    clip = lambda: optim.clip_grad_norm(params, 1.0)  # noqa: E731
    step = training_step(opt, lambda: model(idx, targets)[1], clip=clip)  # model -> (logits, loss)
    return step, {"model": model, "inputs": (idx, targets), "config": config}


def ours_b4(cfg: dict):
    import tinygrad_edu as tg
    from tinygrad_edu import nn, optim
    from tinygrad_edu.functional import cross_entropy

    tg.manual_seed(0)
    model = conv_net(nn, cfg)
    x = tg.randn(cfg["batch"], cfg["c_in"], cfg["length"])
    y = tg.randint(0, cfg["classes"], (cfg["batch"],))
    opt = optim.SGD(model.parameters(), lr=cfg["lr"])

    step = training_step(opt, lambda: cross_entropy(model(x), y))
    return step, {"model": model, "inputs": (x, y)}


def ours_b5(cfg: dict):
    import tinygrad_edu as tg

    reps = cfg["reps"]
    return scalar_chain(tg.tensor(1.0, requires_grad=True), reps), {"ops": 2 * reps}


# =================================================================================================
# The BLAS-bound floor: each case's own matrix products, replayed alone
# =================================================================================================
# A step can never be faster than its matrix products. These lists hold the products one training
# step of each case computes (forward and backward), with the shapes and memory layouts our
# implementation passes to NumPy (``W.T`` is a transposed view of a C-ordered weight, the heads
# of attention are (B, H, T, D) views of a (B, T, C) array). Replaying them alone, interleaved
# with the full steps, gives the time a step would take if everything but the products were free.


def _gemm_operands(shape, transposed=False):
    """A float32 array of ``shape``, C-ordered, or the transposed view of a C-ordered one."""
    import numpy as np

    rng = np.random.default_rng(0)
    if transposed:  # (m, n) as the .T view of an (n, m) C-ordered array
        return rng.standard_normal(shape[::-1], dtype=np.float32).T
    return rng.standard_normal(shape, dtype=np.float32)


def _linear_gemms(M, n_in, n_out, grad_x=True):
    """A Linear layer on M rows: ``y = x @ W.T``; backward ``dW = g.T @ x``, ``dx = g @ W``."""
    A = _gemm_operands
    pairs = [(A((M, n_in)), A((n_in, n_out), transposed=True))]  # forward
    pairs.append((A((n_out, M), transposed=True), A((M, n_in))))  # grad of W (out, in)
    if grad_x:
        pairs.append((A((M, n_out)), A((n_out, n_in))))  # grad of x
    return pairs


def _heads(B, H, T, D):
    """A (B, H, T, D) view of a C-ordered (B, T, H*D) array, as attention's heads are."""
    return _gemm_operands((B, T, H, D)).transpose(0, 2, 1, 3)


def gemms(case: str, cfg: dict) -> list:
    """The (a, b) operand pairs of one training step's matrix products (forward and backward)."""
    A = _gemm_operands
    if case == "B1":
        d_in, h1, h2, d_out = cfg["sizes"]
        M = cfg["batch"]
        return (
            _linear_gemms(M, d_in, h1, grad_x=False)  # the input needs no gradient
            + _linear_gemms(M, h1, h2)
            + _linear_gemms(M, h2, d_out)
        )
    if case == "B2":
        V, E, H, B, T = cfg["vocab"], cfg["emb"], cfg["hidden"], cfg["batch"], cfg["seq"]
        M = B * T
        pairs = [(A((V, M)), A((M, E)))]  # embedding backward: one-hot^T @ grad
        pairs += _linear_gemms(M, E, 4 * H)  # the input projection of every step at once
        w_hh_t = A((H, 4 * H))  # a contiguous W_hh^T
        pairs += [(A((B, H)), w_hh_t)] * T  # forward: h_{t-1} @ W_hh^T, step by step
        pairs += [(A((B, 4 * H)), A((4 * H, H)))] * T  # backward: dh = da_t @ W_hh
        pairs.append((A((4 * H, M), transposed=True), A((M, H))))  # grad W_hh, one product
        return pairs + _linear_gemms(M, H, V)  # the head
    if case == "B3":
        V, L, H, C = cfg["vocab"], cfg["n_layer"], cfg["n_head"], cfg["n_embd"]
        B, T = cfg["batch"], cfg["block"]
        M, D = B * T, C // H
        pairs = [(A((V, M)), A((M, C))), (A((T, T)), A((T, C)))]  # embeddings' backward
        for _ in range(L):
            for _ in range(4):  # q, k, v and output projections
                pairs += _linear_gemms(M, C, C)
            q, k, v, g = (_heads(B, H, T, D) for _ in range(4))
            P, dS = A((B, H, T, T)), A((B, H, T, T))
            pairs += [(q, k.transpose(0, 1, 3, 2)), (P, v)]  # scores, weighted values
            pairs += [(P.transpose(0, 1, 3, 2), g), (g, v.transpose(0, 1, 3, 2))]  # dv, dP
            pairs += [(dS, k), (dS.transpose(0, 1, 3, 2), q)]  # dq, dk
            pairs += _linear_gemms(M, C, 4 * C) + _linear_gemms(M, 4 * C, C)  # the MLP
        return pairs + _linear_gemms(M, C, V)  # the tied head
    if case == "B4":
        N, L, K = cfg["batch"], cfg["length"], cfg["kernel"]
        c_in, c_out = cfg["c_in"], cfg["c_out"]
        # the convolution: W (C_out, C_in*K) @ the unfolded input (N, C_in*K, L), one product per
        # example; the weight's gradient: grad (N, C_out, L) @ cols^T, then summed over N
        w, cols = A((c_out, c_in * K)), A((N, c_in * K, L))
        pairs = [(w, cols), (A((N, c_out, L)), cols.transpose(0, 2, 1))]
        return pairs + _linear_gemms(N, c_out, cfg["classes"])
    return []


def gemm_floor_step(case: str, cfg: dict, torch=None):
    """A step that runs only ``case``'s matrix products (None for B5, which has none).

    With ``torch``, the same products (the same arrays, shared through ``torch.from_numpy``, so
    the same shapes and strides) go through ``torch.matmul``: PyTorch's BLAS on our layouts. The
    two floors side by side split the gap between the whole steps into the part the BLAS
    libraries make (NumPy's OpenBLAS against PyTorch's MKL/oneDNN) and everything else."""
    import numpy as np

    pairs = gemms(case, cfg)
    if not pairs:
        return None

    def flops(a, b):  # 2 m k n per product, times the (broadcast) batch
        batch = math.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
        return 2 * a.shape[-2] * a.shape[-1] * b.shape[-1] * batch

    gflop = sum(flops(a, b) for a, b in pairs) / 1e9
    matmul = np.matmul
    if torch is not None:
        pairs = [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in pairs]
        matmul = torch.matmul

    def step():
        for a, b in pairs:
            matmul(a, b)

    step.gflop = gflop
    return step


OURS = {"B1": ours_b1, "B2": ours_b2, "B3": ours_b3, "B4": ours_b4, "B5": ours_b5}


# =================================================================================================
# PyTorch's side: the same models, built only when torch imports. Weights are copied from ours.
# =================================================================================================


def copy_weights(ours, theirs, torch) -> int:
    """Copy our parameters into a torch module by (PyTorch-style) name; returns how many."""
    import numpy as np

    own = {k: np.asarray(v) for k, v in _numpy_state(ours).items()}
    n = 0
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            if name in own and tuple(own[name].shape) == tuple(p.shape):
                p.copy_(torch.from_numpy(np.ascontiguousarray(own[name], dtype=np.float32)))
                n += 1
    return n


def _numpy_state(model) -> dict:
    from tinygrad_edu import backend

    return {k: backend.to_numpy(v) for k, v in model.state_dict().items()}


def _torch_tensor(t, torch):
    from tinygrad_edu import backend

    return torch.from_numpy(backend.to_numpy(t.data).copy())


def torch_b1(cfg, torch, ours):
    nn = torch.nn
    model = mlp(nn, cfg["sizes"])
    copied = copy_weights(ours["model"], model, torch)
    x, y = (_torch_tensor(t, torch) for t in ours["inputs"])
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"])

    step = training_step(opt, lambda: nn.functional.cross_entropy(model(x), y))
    return step, {"copied": copied, "params": len(list(model.parameters()))}


def torch_b2(cfg, torch, ours, cell: bool = False):
    """B2 in PyTorch: fused ``nn.LSTM``, or (``cell=True``) ``nn.LSTMCell`` step by step."""
    nn = torch.nn
    V, E, H = cfg["vocab"], cfg["emb"], cfg["hidden"]

    class LSTMCellLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(V, E)
            self.cell = nn.LSTMCell(E, H)
            self.head = nn.Linear(H, V)

        def forward(self, idx):
            x = self.emb(idx)
            h = x.new_zeros(x.shape[0], H)
            c = x.new_zeros(x.shape[0], H)
            outs = []
            for t in range(x.shape[1]):
                h, c = self.cell(x[:, t], (h, c))
                outs.append(h)
            return self.head(torch.stack(outs, dim=1))

    model = LSTMCellLM() if cell else lstm_lm(nn, V, E, H)
    copied = copy_weights(ours["model"], model, torch)
    if cell:  # the cell's parameters are the layer's, without the "_l0" suffix
        state = _numpy_state(ours["model"])
        with torch.no_grad():
            for name, p in model.cell.named_parameters():
                key = f"lstm.{name}_l0"
                if key in state and tuple(state[key].shape) == tuple(p.shape):
                    p.copy_(torch.from_numpy(state[key].copy()))
                    copied += 1
    idx, targets = (_torch_tensor(t, torch) for t in ours["inputs"])
    B, T = idx.shape
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])

    def compute_loss():
        logits = model(idx)  # (B, T, V)
        return nn.functional.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))

    step = training_step(opt, compute_loss)
    return step, {"copied": copied, "params": len(list(model.parameters()))}


def b3_layout(names) -> dict:
    """How our B3 model names its block's parts, so the PyTorch twin can use the same names
    (nanoGPT's ``ln_1``/``attn.c_attn``/``mlp.c_fc``, or ``ln1``/``attn.q_proj``/``mlp.0``)."""
    names = list(names)
    return {
        "ln": "ln1" if any(".ln1." in k for k in names) else "ln_1",
        "attn": "separate" if any(".attn.q_proj." in k for k in names) else "fused",
        "mlp": "sequential" if any(".mlp.0." in k for k in names) else "named",
    }


def torch_b3_model(cfg, torch, layout: dict):
    """nanoGPT's model in PyTorch (no bias, tied embedding, N(0, 0.02) init, scaled residuals),
    with its parts named as in our model (``layout``) so that our weights copy over."""
    nn = torch.nn
    F = nn.functional
    C, nh, T, L, V = cfg["n_embd"], cfg["n_head"], cfg["block"], cfg["n_layer"], cfg["vocab"]

    def heads(z, B, T_):  # (B, T, C) -> (B, H, T, D)
        return z.view(B, T_, nh, C // nh).transpose(1, 2)

    class FusedAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(C, 3 * C, bias=False)
            self.c_proj = nn.Linear(C, C, bias=False)

        def forward(self, x):
            B, T_, _ = x.shape
            q, k, v = (heads(z, B, T_) for z in self.c_attn(x).split(C, dim=2))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).reshape(B, T_, C))

    class SeparateAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj = nn.Linear(C, C, bias=False)
            self.k_proj = nn.Linear(C, C, bias=False)
            self.v_proj = nn.Linear(C, C, bias=False)
            self.out_proj = nn.Linear(C, C, bias=False)

        def forward(self, x):
            B, T_, _ = x.shape
            q, k, v = (heads(f(x), B, T_) for f in (self.q_proj, self.k_proj, self.v_proj))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.out_proj(y.transpose(1, 2).reshape(B, T_, C))

    class NamedMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(C, 4 * C, bias=False)
            self.c_proj = nn.Linear(4 * C, C, bias=False)

        def forward(self, x):
            return self.c_proj(F.gelu(self.c_fc(x)))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norms = ("ln1", "ln2") if layout["ln"] == "ln1" else ("ln_1", "ln_2")
            self.add_module(self.norms[0], nn.LayerNorm(C, bias=False))
            self.attn = SeparateAttention() if layout["attn"] == "separate" else FusedAttention()
            self.add_module(self.norms[1], nn.LayerNorm(C, bias=False))
            if layout["mlp"] == "sequential":
                self.mlp = nn.Sequential(
                    nn.Linear(C, 4 * C, bias=False), nn.GELU(), nn.Linear(4 * C, C, bias=False)
                )
            else:
                self.mlp = NamedMLP()

        def forward(self, x):
            ln_a, ln_b = (getattr(self, n) for n in self.norms)
            x = x + self.attn(ln_a(x))
            return x + self.mlp(ln_b(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(V, C)
            self.wpe = nn.Embedding(T, C)
            self.h = nn.ModuleList(Block() for _ in range(L))
            self.ln_f = nn.LayerNorm(C, bias=False)
            self.lm_head = nn.Linear(C, V, bias=False)
            self.lm_head.weight = self.wte.weight  # tied
            residual = ("c_proj.weight", "out_proj.weight", "mlp.2.weight")
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    std = 0.02 / math.sqrt(2 * L) if name.endswith(residual) else 0.02
                    nn.init.normal_(p, 0.0, std)

        def forward(self, idx, targets):
            pos = torch.arange(idx.shape[1])
            x = self.wte(idx) + self.wpe(pos)  # (B, T, C)
            for block in self.h:
                x = block(x)
            logits = self.lm_head(self.ln_f(x))  # (B, T, V)
            return logits, F.cross_entropy(logits.view(-1, V), targets.view(-1))

    model = GPT()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg["lr"],
        betas=(0.9, 0.99),
    )
    return model, opt


def torch_b3(cfg, torch, ours, layout: dict | None = None):
    if ours:
        layout = b3_layout(ours["model"].state_dict())
    model, opt = torch_b3_model(cfg, torch, layout)
    copied = copy_weights(ours["model"], model, torch) if ours else 0
    if ours:
        idx, targets = (_torch_tensor(t, torch) for t in ours["inputs"])
    else:
        g = torch.Generator().manual_seed(1)
        idx = torch.randint(0, cfg["vocab"], (cfg["batch"], cfg["block"]), generator=g)
        targets = torch.randint(0, cfg["vocab"], (cfg["batch"], cfg["block"]), generator=g)
    params = list(model.parameters())
    clip = lambda: torch.nn.utils.clip_grad_norm_(params, 1.0)  # noqa: E731
    step = training_step(opt, lambda: model(idx, targets)[1], clip=clip)  # model -> (logits, loss)
    return step, {"copied": copied, "params": len(params), "layout": layout}


def torch_b4(cfg, torch, ours):
    nn = torch.nn
    model = conv_net(nn, cfg)
    copied = copy_weights(ours["model"], model, torch)
    x, y = (_torch_tensor(t, torch) for t in ours["inputs"])
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"])

    step = training_step(opt, lambda: nn.functional.cross_entropy(model(x), y))
    return step, {"copied": copied, "params": len(list(model.parameters()))}


def torch_b5(cfg, torch, ours):
    return scalar_chain(torch.tensor(1.0, requires_grad=True), cfg["reps"]), {}


THEIRS = {"B1": torch_b1, "B2": torch_b2, "B3": torch_b3, "B4": torch_b4, "B5": torch_b5}


def _loss_value(x) -> float:
    """A step's returned loss as a float (our Tensor or a torch tensor)."""
    return float(x.item())


# =================================================================================================
# B3 extras: FLOPs per token, and a training run in a fresh process for its peak memory
# =================================================================================================


def b3_flops_per_token(n_params: int, cfg: dict) -> int:
    """6N + 12 L H Q T: 6 FLOPs per parameter per token for forward and backward matmuls, plus
    the attention scores and weighted sum (2 matmuls of T x Q per head, forward and backward)."""
    L, H, T = cfg["n_layer"], cfg["n_head"], cfg["block"]
    Q = cfg["n_embd"] // H
    return 6 * n_params + 12 * L * H * Q * T


def b3_params_counted(model, cfg: dict) -> int:
    """N: all parameters except the position embedding (nanoGPT's ``get_num_params``); the tied
    token embedding counts once, as the output layer whose matmul it is."""
    total = sum(p.size if isinstance(p.size, int) else p.numel() for p in model.parameters())
    return total - cfg["block"] * cfg["n_embd"]


def child_b3(impl: str, cfg: dict, steps: int, warmup: int, threads: int, layout: dict) -> dict:
    """Runs inside a fresh process: build the B3 model of one side, train, report time and RSS."""
    rss_start = current_rss_mib()
    if impl == "torch":
        import torch

        torch.set_num_threads(threads)
        rss_import = current_rss_mib()
        step, _ = torch_b3(cfg, torch, None, layout)
    else:
        import tinygrad_edu

        tinygrad_edu.backend.keep_freed_memory()  # as the training loop does (see backend.py)
        rss_import = current_rss_mib()
        step, _ = ours_b3(cfg)
    times = interleaved({impl: step}, steps, warmup, block=steps)[impl]  # seconds per step
    return {
        "impl": impl,
        "ms": statistics.median(times) * 1e3,
        "rss_start_mib": rss_start,
        "rss_after_import_mib": rss_import,
        "peak_rss_mib": peak_rss_mib(),
    }


def run_child(impl: str, args, threads: int, layout: dict) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", impl]
    cmd += ["--steps", str(args.child_steps), "--warmup", str(min(args.warmup, 2))]
    cmd += ["--threads", str(threads), "--device", args.device, "--layout", json.dumps(layout)]
    if args.tiny:
        cmd.append("--tiny")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"B3 memory run ({impl}) failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# =================================================================================================
# Main
# =================================================================================================


# =================================================================================================
# End to end: the example's default configuration for a fixed number of steps, evaluation included
# =================================================================================================


def e2e_setup(tiny: bool, steps: int):
    """The corpus, tokenizer, splits, model shape and training configuration of the E2E case.

    The example's defaults (``GPTConfig()``, ``TrainConfig()``) for ``steps`` steps, with the
    learning-rate schedule of the full 2,000-step run and one evaluation at the end whose size
    keeps the default run's ratio of evaluation to training (``eval_iters`` batches per split
    every ``eval_interval`` steps: 200 per 500, so 40 for 100 steps). No progress bar, no plot.
    """
    import tempfile

    from tinygrad_edu import data
    from tinygrad_edu.models.char_transformer import GPTConfig
    from tinygrad_edu.train import TrainConfig

    text = data.load_corpus(data.BUNDLED_CORPUS if tiny else None, log=None)
    tokenizer = data.CharTokenizer(text)
    train_ids, val_ids = data.train_val_split(tokenizer.encode(text))
    shape = {"vocab_size": tokenizer.vocab_size}
    if tiny:
        t = TINY["B3"]
        shape.update(block_size=t["block"], n_layer=t["n_layer"], n_head=t["n_head"])
        shape.update(n_embd=t["n_embd"])
    model_config = GPTConfig(**shape)
    default = TrainConfig()
    eval_iters = max(1, round(default.eval_iters * steps / default.eval_interval))
    config = TrainConfig(
        steps=steps,
        lr_decay_steps=default.steps,
        eval_interval=steps,
        eval_iters=eval_iters,
        batch_size=TINY["B3"]["batch"] if tiny else default.batch_size,
        out_dir=tempfile.mkdtemp(prefix="tinygrad_edu_e2e_"),
        progress=False,
        plot=False,
    )
    return tokenizer, train_ids, val_ids, model_config, config


def e2e_ours(model, tokenizer, train_ids, val_ids, config, clock) -> dict:
    """Our side: ``train.train`` as the example calls it, then the evaluation alone again."""
    from tinygrad_edu.train import estimate_loss, train

    losses = []
    t0 = clock()
    result = train(
        model,
        train_ids,
        val_ids,
        config,
        tokenizer,
        callback=lambda s, l: losses.append(l),
        log=None,
    )
    total = clock() - t0
    t0 = clock()
    for i, split in enumerate((train_ids, val_ids)):
        estimate_loss(
            model, split, config.batch_size, model.config.block_size, config.eval_iters,
            seed=config.seed + 1 + i,
        )  # fmt: skip
    return {
        "seconds": total,
        "eval_seconds": clock() - t0,
        "first_loss": losses[0],
        "val_loss": result.val_loss,
    }


def e2e_torch(torch, tmodel, train_ids, val_ids, config, model_config, clock) -> dict:
    """PyTorch eager running the same loop: the same batches (drawn with our generator from the
    same seed), the same schedule, AdamW groups, clipping, evaluation batches (the same chunks
    of ``estimate_loss``) and two checkpoint writes per evaluation, as ``train.train`` does."""
    import os

    from tinygrad_edu import backend
    from tinygrad_edu.data import get_batch
    from tinygrad_edu.optim import warmup_cosine_lr
    from tinygrad_edu.train import EVAL_TOKENS

    B, T = config.batch_size, model_config.block_size
    params = list(tmodel.parameters())
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
        betas=(config.beta1, config.beta2),
    )

    def batch(split, n):
        x, y = get_batch(split, n, T)
        return torch.from_numpy(x.numpy()), torch.from_numpy(y.numpy())

    def evaluate(split, seed):
        saved = backend.get_rng_state()
        backend.manual_seed(seed)
        tmodel.eval()
        chunk = max(1, min(config.eval_iters, EVAL_TOKENS // (B * T)))  # as estimate_loss
        total, done = 0.0, 0
        with torch.no_grad():
            while done < config.eval_iters:
                n = min(chunk, config.eval_iters - done)
                total += tmodel(*batch(split, B * n))[1].item() * n
                done += n
        tmodel.train()
        backend.set_rng_state(saved)
        return total / config.eval_iters

    losses = []
    t0 = clock()
    backend.manual_seed(config.seed)
    decay_steps = config.lr_decay_steps or config.steps
    for step in range(config.steps):
        lr = warmup_cosine_lr(
            step, config.learning_rate, config.min_lr, config.warmup_steps, decay_steps
        )
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = batch(train_ids, B)
        _, loss = tmodel(x, y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % config.eval_interval == 0 or step + 1 == config.steps:
            val = [evaluate(s, config.seed + 1 + i) for i, s in enumerate((train_ids, val_ids))]
            for name in ("best.pt", "last.pt"):
                torch.save(
                    {"model": tmodel.state_dict(), "optimizer": opt.state_dict()},
                    os.path.join(config.out_dir, name),
                )
    total = clock() - t0
    t0 = clock()
    for i, split in enumerate((train_ids, val_ids)):
        evaluate(split, config.seed + 1 + i)
    return {
        "seconds": total,
        "eval_seconds": clock() - t0,
        "first_loss": losses[0],
        "val_loss": val[1],
    }


def run_e2e(args, torch, clock) -> dict:
    """Both sides of the E2E case, ours first; returns the numbers for the report."""
    import shutil

    import tinygrad_edu as tg
    from tinygrad_edu.models.char_transformer import GPT

    steps = args.e2e_steps
    tokenizer, train_ids, val_ids, model_config, config = e2e_setup(args.tiny, steps)
    entry = {"steps": steps, "eval_iters": config.eval_iters, "batch": config.batch_size}
    try:
        tg.manual_seed(config.seed)
        model = GPT(model_config)
        tmodel = None
        if torch is not None:  # built now, from our initial weights
            cfg = {
                "n_embd": model_config.n_embd,
                "n_head": model_config.n_head,
                "block": model_config.block_size,
                "n_layer": model_config.n_layer,
                "vocab": model_config.vocab_size,
            }
            tmodel, _ = torch_b3_model({**cfg, "lr": config.learning_rate}, torch, b3_layout(
                model.state_dict()
            ))  # fmt: skip
            entry["torch_weights_copied"] = copy_weights(model, tmodel, torch)
        gc.collect()
        entry["ours"] = e2e_ours(model, tokenizer, train_ids, val_ids, config, clock)
        if tmodel is not None:
            gc.collect()
            entry["torch"] = e2e_torch(
                torch, tmodel, train_ids, val_ids, config, model_config, clock
            )
            entry["ratio"] = entry["ours"]["seconds"] / entry["torch"]["seconds"]
    finally:
        shutil.rmtree(config.out_dir, ignore_errors=True)
    return entry


def profile_case(case: str, cfg: dict, steps: int, warmup: int, top: int) -> None:
    """Run ``steps`` of our side of ``case`` under cProfile; print the functions that take the
    most time by themselves (tottime) and with what they call (cumtime)."""
    import cProfile
    import pstats

    step, _ = OURS[case](cfg)
    for _ in range(warmup):
        step()
    # CPU time of this process, not wall time: other programs on a busy machine then do not
    # show up as slow functions here (run with OPENBLAS_NUM_THREADS=1 to see BLAS in it too)
    profiler = cProfile.Profile(time.process_time)
    t0, c0 = time.perf_counter(), time.process_time()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    wall = (time.perf_counter() - t0) / steps * 1e3
    cpu = (time.process_time() - c0) / steps * 1e3
    print(
        f"==== {case}: {steps} steps under cProfile: {wall:.1f} ms wall, {cpu:.1f} ms CPU "
        "per step (profiler included)"
    )
    for key in ("tottime", "cumtime"):
        print(f"---- sorted by {key}")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats(key).print_stats(top)


def _import_torch(threads: int):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def _fmt(s: dict | None, unit: str) -> str:
    if not s:
        return "-"
    return f"{s['median']:.2f} {unit} [{s['min']:.2f}, {s['max']:.2f}]"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default=",".join(ALL_CASES), help="comma-separated, e.g. B1,B3")
    p.add_argument(
        "--e2e-steps", type=int, default=None, help="training steps of the E2E case (100; tiny: 2)"
    )
    p.add_argument("--steps", type=int, default=20, help="timed steps per case and side")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--block", type=int, default=5, help="steps per interleaved block")
    p.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time (default), or this process's CPU time: steadier on a busy machine, "
        "and equal to wall time when both sides use one thread",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--no-torch", action="store_true", help="do not time PyTorch even if installed")
    p.add_argument(
        "--no-lstmcell", action="store_true", help="skip the torch LSTMCell variant of B2"
    )
    p.add_argument("--no-memory", action="store_true", help="skip the B3 peak-memory subprocesses")
    p.add_argument(
        "--no-floor", action="store_true", help="skip the BLAS floor (matrix products alone)"
    )
    p.add_argument("--child-steps", type=int, default=5, help="steps of each B3 memory run")
    p.add_argument("--tiny", action="store_true", help="shrunken shapes for a smoke test")
    p.add_argument(
        "--profile",
        action="store_true",
        help="instead of timing, run our side of each case under cProfile and print the top",
    )
    p.add_argument("--top", type=int, default=25, help="rows of each --profile listing")
    p.add_argument("--device", default="cpu", help="our side's device (default cpu)")
    p.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--layout", default="{}", help=argparse.SUPPRESS)
    p.add_argument("--child", choices=("ours", "torch"), default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    shapes = TINY if args.tiny else FULL
    from tinygrad_edu import backend

    backend.set_default_device(args.device)

    if args.child:  # a B3 memory run in a fresh process: print one JSON line and leave
        print(
            json.dumps(
                child_b3(
                    args.child,
                    shapes["B3"],
                    args.steps,
                    args.warmup,
                    args.threads,
                    json.loads(args.layout),
                )
            )
        )
        return 0

    cases = [c.strip().upper() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in ALL_CASES]
    if unknown:
        p.error(f"unknown case(s) {unknown}; choose from {', '.join(ALL_CASES)}")
    if args.e2e_steps is None:
        args.e2e_steps = 2 if args.tiny else 100
    if args.e2e_steps < 1:
        p.error(f"--e2e-steps must be at least 1, got {args.e2e_steps}")
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be at least 1 and --warmup at least 0")

    import tinygrad_edu  # loads NumPy and its BLAS, so the BLAS info is complete

    tinygrad_edu.backend.keep_freed_memory()  # as the training loop does (see backend.py)

    if args.profile:
        for case in cases:
            if case != "E2E":
                profile_case(case, shapes[case], args.steps, args.warmup, args.top)
        return 0

    machine = machine_info()
    threads = machine["threads"]
    torch = None if args.no_torch else _import_torch(threads)
    if torch is not None:
        machine["torch"] = torch.__version__
        machine["torch_threads"] = torch.get_num_threads()

    print(
        "tinygrad_edu benchmarks"
        + ("  ** TINY SHAPES: a smoke run, not the benchmark **" if args.tiny else "")
    )
    print(
        f"command: python benchmarks/run.py {' '.join(argv if argv is not None else sys.argv[1:])}"
    )
    b = machine["blas"]
    print(
        f"machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs "
        f"({machine['usable_cpus']} usable), Python {machine['python']}"
    )
    print(
        f"numpy {machine['numpy']}, BLAS {b.get('library')} {b.get('version')} "
        f"arch={b.get('architecture', '?')} threads={threads} (via {b['source']})"
    )
    print(f"OPENBLAS_CORETYPE={machine['OPENBLAS_CORETYPE']} ", end="")
    print(f"OPENBLAS_L2_SIZE={machine['OPENBLAS_L2_SIZE']}", end="")
    print("".join(f" {k}={v}" for k, v in machine["env"].items()))
    if torch is not None:
        print(f"torch {machine['torch']}, threads={machine['torch_threads']} (set to match ours)")
    else:
        print("torch: " + ("not used (--no-torch)" if args.no_torch else "not installed"))
    print(f"our device: {args.device}")
    print(f"steps: {args.steps} timed after {args.warmup} warm-up, ", end="")
    print(f"interleaved in blocks of {args.block}, {args.clock} clock")
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        machine["load_average_1min"] = load
        busy = load > 0.5 * (machine["usable_cpus"] or 1)
        print(
            f"load average (1 min) at start: {load:.2f}" + ("  ** BUSY MACHINE **" if busy else "")
        )

    result: dict = {
        "tiny": args.tiny,
        "clock": args.clock,
        "device": args.device,
        "steps": args.steps,
        "warmup": args.warmup,
        "machine": machine,
    }
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    peak = matmul_peak(256 if args.tiny else 1024, clock=clock)
    result["matmul_gflops"] = peak
    line = f"float32 matmul peak ({256 if args.tiny else 1024}^2, ours/NumPy): {peak:.1f} GFLOP/s"
    if torch is not None:
        result["torch_matmul_gflops"] = matmul_peak(
            256 if args.tiny else 1024, torch=torch, clock=clock
        )
        line += f"; torch: {result['torch_matmul_gflops']:.1f} GFLOP/s"
    print(line)
    print()

    failed = False
    rows = []
    for case in cases:
        if case == "E2E":
            continue  # after the step cases, below
        cfg = shapes[case]
        unit, scale = ("us_per_op", 1e6 / (2 * cfg["reps"])) if case == "B5" else ("ms", 1e3)
        entry: dict = {}
        result[case] = entry
        try:
            ours_step, ours_info = OURS[case](cfg)
        except (ImportError, AttributeError) as e:
            # a layer the case needs is not in the library (yet); any other error is a failure
            if isinstance(e, AttributeError) and "module" not in str(e):
                raise
            entry.update({unit: None, "skipped": f"not available yet: {type(e).__name__}: {e}"})
            rows.append((case, None, None, None, "skipped: " + entry["skipped"]))
            continue
        runners = {"ours": ours_step}
        floor_step = None if args.no_floor else gemm_floor_step(case, cfg)
        if floor_step is not None:
            runners["floor"] = floor_step
        if torch is not None:
            try:
                torch_step, torch_info = THEIRS[case](cfg, torch, ours_info)
                runners["torch"] = torch_step
                if floor_step is not None:
                    runners["torch_floor"] = gemm_floor_step(case, cfg, torch)
                if "copied" in torch_info:
                    entry["torch_weights_copied"] = f"{torch_info['copied']}/{torch_info['params']}"
                if case == "B2" and not args.no_lstmcell:
                    cell_step, _ = torch_b2(cfg, torch, ours_info, cell=True)
                    runners["torch_lstmcell"] = cell_step
            except Exception as e:  # the torch side is a comparison, never a reason to stop
                entry["torch_error"] = f"{type(e).__name__}: {e}"
        try:
            # first-step losses of both sides, from the same weights and data: a sanity check
            # that the two sides compute the same thing (B5 has no loss)
            if case != "B5":
                entry["first_loss"] = _loss_value(ours_step())
                if "torch" in runners:
                    entry["torch_first_loss"] = _loss_value(runners["torch"]())
            times = interleaved(runners, args.steps, args.warmup, args.block, clock)
        except Exception as e:
            failed = True
            entry.update({unit: None, "error": f"{type(e).__name__}: {e}"})
            traceback.print_exc()
            rows.append((case, None, None, None, "ERROR " + entry["error"]))
            continue
        ours_s = summary(times["ours"], scale)
        entry.update({unit: ours_s["median"], "min": ours_s["min"], "max": ours_s["max"]})
        entry["page_faults_per_step"] = times["ours_faults"][0] / args.steps
        if "torch_faults" in times:
            entry["torch_page_faults_per_step"] = times["torch_faults"][0] / args.steps
        torch_s = summary(times["torch"], scale) if "torch" in times else None
        if torch_s:
            entry.update(
                {
                    "torch_" + unit: torch_s["median"],
                    "torch_min": torch_s["min"],
                    "torch_max": torch_s["max"],
                    "ratio": ours_s["median"] / torch_s["median"],
                }
            )
        if "floor" in times:
            floor_s = summary(times["floor"], scale)
            entry["floor_ms"] = floor_s["median"]
            entry["floor_gflop"] = floor_step.gflop
            entry["floor_over_ours"] = floor_s["median"] / ours_s["median"]
            if torch_s:
                entry["floor_over_torch"] = floor_s["median"] / torch_s["median"]
            if torch_s and "torch_floor" in times:
                # the whole step minus its products: what each side spends on everything else
                # (medians subtracted, so a rough split, not a measurement of its own)
                entry["torch_floor_ms"] = summary(times["torch_floor"], scale)["median"]
                entry["rest_ms"] = ours_s["median"] - floor_s["median"]
                entry["torch_rest_ms"] = torch_s["median"] - entry["torch_floor_ms"]
        rows.append((case, ours_s, torch_s, entry.get("ratio"), ""))
        if "torch_lstmcell" in times:
            cell_s = summary(times["torch_lstmcell"], scale)
            entry["torch_lstmcell_ms"] = cell_s["median"]
            entry["ratio_lstmcell"] = ours_s["median"] / cell_s["median"]
            rows.append(("B2c", None, cell_s, entry["ratio_lstmcell"], "torch nn.LSTMCell loop"))
        if case == "B3":
            model = ours_info["model"]
            entry["layout"] = b3_layout(model.state_dict())
            n = b3_params_counted(model, cfg)
            fpt = b3_flops_per_token(n, cfg)
            tokens = cfg["batch"] * cfg["block"]
            gflops = fpt * tokens / (ours_s["median"] / 1e3) / 1e9
            entry.update(
                {
                    "n_params_counted": n,
                    "n_params_total": sum(p.size for p in model.parameters()),
                    "flops_per_token": fpt,
                    "model_gflops": gflops,
                    "fraction_of_matmul_peak": gflops / peak,
                }
            )
            if torch_s:
                entry["torch_model_gflops"] = fpt * tokens / (torch_s["median"] / 1e3) / 1e9
                entry["torch_fraction_of_matmul_peak"] = entry["torch_model_gflops"] / peak
        del ours_step, runners
        gc.collect()

    if "B3" in cases and "ms" in result["B3"] and result["B3"]["ms"] and not args.no_memory:
        for impl in ("ours", "torch") if torch is not None else ("ours",):
            key = "" if impl == "ours" else "torch_"
            try:
                child = run_child(impl, args, threads, result["B3"]["layout"])
                result["B3"][key + "peak_rss_mib"] = child["peak_rss_mib"]
                result["B3"][key + "rss_after_import_mib"] = child["rss_after_import_mib"]
                result["B3"][key + "memory_run_ms"] = child["ms"]
            except Exception as e:
                result["B3"][key + "memory_error"] = str(e)

    # ---- the table, in Markdown so that it can go into the README as it is --------------------
    print(
        "| case | what | ours: median [min, max] | PyTorch eager: median [min, max] | ratio "
        "| BLAS floor | floor / PyTorch | PyTorch's floor | rest: ours, PyTorch |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for case, ours_s, torch_s, ratio, note in rows:
        unit = "us/op" if case == "B5" else "ms"
        what = note if case == "B2c" else DESCRIPTION[case]
        ours_cell = _fmt(ours_s, unit) if ours_s else ("-" if case == "B2c" else note.split(":")[0])
        ratio_cell = f"{ratio:.2f}" if ratio is not None else "-"
        e = result[case] if case in result else {}
        floor_cell = f"{e['floor_ms']:.2f} {unit}" if "floor_ms" in e and case != "B2c" else "-"
        floor_ratio = e.get("floor_over_torch") if case != "B2c" else None
        floor_ratio_cell = f"{floor_ratio:.2f}" if floor_ratio is not None else "-"
        has_rest = "torch_floor_ms" in e and case != "B2c"
        torch_floor_cell = f"{e['torch_floor_ms']:.2f} {unit}" if has_rest else "-"
        rest_cell = f"{e['rest_ms']:.2f}, {e['torch_rest_ms']:.2f} {unit}" if has_rest else "-"
        print(
            f"| {case} | {what} | {ours_cell} | {_fmt(torch_s, unit)} | {ratio_cell} "
            f"| {floor_cell} | {floor_ratio_cell} | {torch_floor_cell} | {rest_cell} |"
        )
    print(
        "(ms per full training step: forward, loss, backward, optimizer; B5 in us per op; "
        "ratio = ours / PyTorch, below 1 is faster; BLAS floor = the case's own matrix "
        "products replayed alone, same shapes and layouts, timed in the same interleaved loop; "
        "PyTorch's floor = the same products through torch.matmul; rest = step minus floor, "
        "each side)"
    )
    for case in (c for c in cases if c != "E2E"):
        e = result[case]
        if "first_loss" in e:
            extra = f", torch {e['torch_first_loss']:.6f}" if "torch_first_loss" in e else ""
            copied = (
                f" (torch weights copied from ours: {e['torch_weights_copied']})"
                if "torch_weights_copied" in e
                else ""
            )
            print(f"{case} first-step loss: ours {e['first_loss']:.6f}{extra}{copied}")
        if "floor_ms" in e:
            print(
                f"{case} BLAS floor: {e['floor_gflop']:.3f} GFLOP per step in "
                f"{e['floor_ms']:.2f} ms ({e['floor_gflop'] / e['floor_ms'] * 1e3:.1f} GFLOP/s), "
                f"{100 * e['floor_over_ours']:.0f}% of our step"
            )
        if "page_faults_per_step" in e:
            line = f"{case} minor page faults per step: ours {e['page_faults_per_step']:,.0f}"
            if "torch_page_faults_per_step" in e:
                line += f", torch {e['torch_page_faults_per_step']:,.0f}"
            print(line)
        for key in ("skipped", "error", "torch_error"):
            if key in e:
                print(f"{case} {key.replace('_', ' ')}: {e[key]}")
    b3 = result.get("B3", {})
    if b3.get("model_gflops"):
        print(
            f"B3 model FLOPs: {b3['flops_per_token'] / 1e6:.2f} MFLOP/token = 6N + 12LHQT with "
            f"N = {b3['n_params_counted']:,} (all {b3['n_params_total']:,} parameters except the "
            "position embedding; the tied embedding counted once)"
        )
        line = (
            f"B3 model FLOP rate: ours {b3['model_gflops']:.1f} GFLOP/s = "
            f"{100 * b3['fraction_of_matmul_peak']:.1f}% of the measured matmul peak ({peak:.1f})"
        )
        if "torch_model_gflops" in b3:
            line += (
                f"; torch {b3['torch_model_gflops']:.1f} GFLOP/s = "
                f"{100 * b3['torch_fraction_of_matmul_peak']:.1f}%"
            )
        print(line)
    if "peak_rss_mib" in b3:
        line = (
            f"B3 training peak RSS (fresh process, {args.child_steps} steps): ours "
            f"{b3['peak_rss_mib']:.0f} MiB (after imports {b3['rss_after_import_mib']:.0f})"
        )
        if "torch_peak_rss_mib" in b3:
            line += (
                f"; torch {b3['torch_peak_rss_mib']:.0f} MiB (after imports "
                f"{b3['torch_rss_after_import_mib']:.0f}); ratio "
                f"{b3['peak_rss_mib'] / b3['torch_peak_rss_mib']:.2f}"
            )
        print(line)
    for key in ("memory_error", "torch_memory_error"):
        if key in b3:
            print(f"B3 {key}: {b3[key]}")
    if "E2E" in cases:
        try:
            result["E2E"] = e2e = run_e2e(args, torch, clock)
        except Exception as e:
            failed = True
            result["E2E"] = {"error": f"{type(e).__name__}: {e}"}
            traceback.print_exc()
            print(f"E2E error: {result['E2E']['error']}")
        else:
            print()
            print(
                f"E2E: the example's default configuration, {e2e['steps']} steps of batch "
                f"{e2e['batch']}, then one evaluation of {e2e['eval_iters']} batches per split "
                "(the default run's ratio) and two checkpoint writes; first-step loss ours "
                f"{e2e['ours']['first_loss']:.6f}"
                + (f", torch {e2e['torch']['first_loss']:.6f}" if "torch" in e2e else "")
            )
            print("| side | whole run | evaluation alone | val loss |")
            print("| --- | --- | --- | --- |")
            for side in ("ours", "torch"):
                if side in e2e:
                    r = e2e[side]
                    print(
                        f"| {'ours' if side == 'ours' else 'PyTorch eager'} | "
                        f"{r['seconds']:.2f} s | {r['eval_seconds']:.2f} s | {r['val_loss']:.4f} |"
                    )
            if "ratio" in e2e:
                print(f"E2E ratio ours / PyTorch (whole run): {e2e['ratio']:.2f}")
    if args.json:
        print(json.dumps(result))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

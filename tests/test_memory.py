"""Memory stays flat over many training steps, because the graph is freed after backward.

Each training step records a graph (every intermediate activation of the forward pass, kept for
backward). ``backward()`` frees it: every Function drops its inputs and saved arrays, so once the
loss goes out of scope nothing of the step is left. If any of it survived (a Function still
holding its inputs, a loss kept in a list, an optimizer state that grows), memory would grow
with every step. Two checks:

* **weakrefs**: every intermediate Tensor of one B3 forward pass is dead after ``backward()``
  and ``del loss``, by reference counting alone (no cycles that wait for the garbage collector);
* **RSS**: the resident memory of the process over many steps of the B3 model (nanoGPT's CPU
  recipe: 4 layers, 4 heads, width 128, block 64, batch 12, vocabulary 65, AdamW) after a
  warm-up: its floor (minimum over a window of steps) rises by less than 20 MiB.

Why 20 MiB: one B3 step's graph holds more than 30 MiB of activations (dozens of (12, 64, 128)
float32 arrays of 384 KiB, the (12, 4, 64, 64) attention weights of 768 KiB per layer, the
(12, 64, 65) logits), so a graph kept alive even once a step crosses the bound in the first
step; leaking a single (B, T, C) activation per step crosses it within 54 steps, while the two
windows compared are 160 steps apart on NumPy (64 on the strict backend, where steps are
slower). What the bound allows is the allocator's noise.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import weakref

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import data
from tinygrad_edu.models import GPT, GPTConfig

pytestmark = pytest.mark.ch11

B3 = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=65, dropout=0.0, bias=False)
BATCH = 12
BOUND_MIB = 20.0
# NumPy: ~80 ms a step on one core, so warm-up + 200 steps fit in about 20 s. The strict backend
# is several times slower: fewer steps, same bound (the weakref test proves the freeing itself).
STEPS = {"cpu": 200, "strict": 80}
WARMUP = 20


def rss_mib() -> float:
    """The resident set size now (not the peak): /proc/self/statm, else getrusage's peak."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux: the peak is all there is (kilobytes on Linux, bytes on macOS)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if os.uname().sysname == "Darwin" else peak / 2**10


def b3_setup():
    tg.manual_seed(0)
    model = GPT(GPTConfig(**B3))
    optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3)
    # a cycle through a random order of the 65 ids: learnable (each id predicts the next), so the
    # falling loss shows the steps really train
    ids = np.tile(np.random.default_rng(0).permutation(B3["vocab_size"]), 300)
    return model, optimizer, ids


def train_step(model, optimizer, ids) -> float:
    x, y = data.get_batch(ids, BATCH, B3["block_size"])  # (B, T) each
    loss = model(x, y)[1]
    optimizer.zero_grad()
    loss.backward()
    tg.optim.clip_grad_norm(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()


def graph_tensors(root) -> list:
    """Every Tensor reachable from ``root`` through the recorded graph (``_ctx.inputs``)."""
    seen, stack, out = set(), [root], []
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        out.append(t)
        ctx = t._ctx
        if ctx is not None:
            stack.extend(i for i in ctx.inputs if isinstance(i, tg.Tensor))
    return out


def test_the_graph_is_freed_after_backward(device):
    """All intermediates of a B3 forward pass die after backward, without the garbage collector."""
    model, optimizer, ids = b3_setup()
    x, y = data.get_batch(ids, BATCH, B3["block_size"])
    logits, loss = model(x, y)
    del logits  # the (B, T, V) logits are an intermediate too: only the graph may hold them
    params = {id(p) for p in model.parameters()}
    nodes = [t for t in graph_tensors(loss) if t._ctx is not None and id(t) not in params]
    # the walk saw the whole graph: every Linear of the 4 blocks (6 each) and the head, among
    # 4 blocks of about 20 ops
    linears = sum(type(t._ctx).__name__ == "LinearFunction" for t in nodes)
    assert linears == 6 * B3["n_layer"] + 1 and len(nodes) > 80
    refs = [weakref.ref(t) for t in nodes]
    del nodes
    assert all(r() is not None for r in refs)  # the graph holds them until backward
    gc.disable()  # reference counting alone must free the graph: no cycles
    try:
        loss.backward()
        del loss
        alive = [r() for r in refs if r() is not None]
    finally:
        gc.enable()
    assert not alive, f"{len(alive)} intermediates survive backward, e.g. {alive[0]!r:.200}"
    assert all(p.grad is not None for p in model.parameters())


def measure(steps: int) -> dict:
    """Train the B3 model for ``WARMUP + steps`` steps; the RSS after each measured step."""
    model, optimizer, ids = b3_setup()
    losses = [train_step(model, optimizer, ids) for _ in range(WARMUP)]
    gc.collect()
    rss = []
    for _ in range(steps):
        losses.append(train_step(model, optimizer, ids))
        rss.append(rss_mib())
    return {"rss": rss, "losses": losses}


def test_memory_stays_flat_over_many_b3_training_steps(device):
    """The RSS *floor* (its minimum over a window of steps) does not rise.

    RSS sampled after single steps jumps by tens of MiB either way: glibc's malloc keeps some
    freed blocks of the last step's arrays mapped, or returns them, at its own pace. Memory that
    is still referenced can never be returned, so a leak raises the floor; the minimum over the
    first fifth of the measured steps against the minimum over the last fifth sees the leak and
    not the noise.

    The steps run in a fresh process: its memory holds nothing of earlier tests, and BLAS runs on
    one thread (on a busy two-core machine, two BLAS threads fighting for a core make a step
    ten times slower).
    """
    steps = STEPS.get(device, STEPS["strict"])
    window = steps // 5
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        [sys.executable, __file__, str(steps)], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    rss, losses = result["rss"], result["losses"]
    assert len(rss) == steps and len(losses) == WARMUP + steps
    first, last = min(rss[:window]), min(rss[-window:])
    growth = last - first
    assert growth < BOUND_MIB, (
        f"the RSS floor rose by {growth:.1f} MiB over {steps} B3 steps (bound {BOUND_MIB} MiB); "
        f"RSS every 10 steps: {[round(r) for r in rss[::10]]} MiB"
    )
    assert np.isfinite(losses).all()
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])  # it trained: the steps were real


def test_rss_measure_sees_a_leak(device):
    """The measuring stick works: keeping each step's graph alive is caught by the same bound."""
    model, optimizer, ids = b3_setup()
    for _ in range(3):
        train_step(model, optimizer, ids)
    gc.collect()
    before = rss_mib()
    kept = []
    for _ in range(3):
        x, y = data.get_batch(ids, BATCH, B3["block_size"])
        _, loss = model(x, y)
        kept.append(loss)  # a learner's classic leak: a list of losses *with* their graphs
    growth = rss_mib() - before
    assert growth > BOUND_MIB, f"three kept graphs added only {growth:.1f} MiB"
    del kept


if __name__ == "__main__":  # the measuring process of test_memory_stays_flat_...
    print(json.dumps(measure(int(sys.argv[1]))))

"""The engine's cost per operation, piece by piece: what B5 (``run.py --cases B5``) adds up.

B5 times 1,000 x ``y = y * 1.0001 + 0.0001`` on a scalar and the backward pass, as one number per
op. This script splits that number: an op that records a graph node, the same op under
``no_grad()`` (what each gradient product in a backward pass costs), an ``Add`` with a graph, and
for a chain of 100 such ops the forward, the backward pass's consumer count, and the whole
backward pass (count included), each per op. Every time is the minimum over many short runs of
this process's CPU time with the garbage collector off, so that other programs on a busy machine
and collector pauses do not show up; differences of a few percent are still noise.

``--against DIR`` times a second copy of the package (``DIR/tinygrad_edu``, e.g. a checkout of an
older commit) in the same process, interleaved, and prints both with their ratio:

    OPENBLAS_NUM_THREADS=1 python benchmarks/overhead.py
    git worktree add /tmp/old HEAD~1 && python benchmarks/overhead.py --against /tmp/old
"""

from __future__ import annotations

import argparse
import gc
import importlib
import shutil
import sys
import tempfile
import time
from pathlib import Path


def workloads(tg) -> dict:
    """name -> (function, number of ops it times); a function returns its CPU ns or a tuple."""
    clock = time.process_time_ns
    tensor_module = sys.modules[tg.__name__ + ".tensor"]
    x = tg.tensor(1.0, requires_grad=True)
    g = x * 1.0  # a scalar that records a graph
    c = tg.tensor(1.0) * 1.0  # the same scalar without one

    def timed(body):
        def run():
            t0 = clock()
            body()
            return clock() - t0

        return run

    def op_graph():
        for _ in range(100):
            g * 1.0001

    def op_no_graph():
        for _ in range(100):
            c * 1.0001

    def add_graph():
        for _ in range(100):
            g + 0.0001

    def chain():
        x.grad = None
        y = x
        t0 = clock()
        for _ in range(50):
            y = y * 1.0001 + 0.0001
        t1 = clock()
        tensor_module._count_consumers(y)
        t2 = clock()
        y.backward()
        return t1 - t0, t2 - t1, clock() - t2

    return {
        "mul, graph recorded": (timed(op_graph), 100),
        "mul, no graph": (timed(op_no_graph), 100),
        "add, graph recorded": (timed(add_graph), 100),
        "chain: forward, count, backward": (chain, 100),
    }


def load_copy(directory: str):
    """``directory/tinygrad_edu`` imported under another name (its imports are relative)."""
    tmp = Path(tempfile.mkdtemp())
    shutil.copytree(Path(directory) / "tinygrad_edu", tmp / "tinygrad_edu_against")
    sys.path.insert(0, str(tmp))
    return importlib.import_module("tinygrad_edu_against")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", help="a directory holding another copy of tinygrad_edu")
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.against and not (Path(args.against) / "tinygrad_edu").is_dir():
        parser.error(f"--against {args.against}: no tinygrad_edu package in that directory")

    import tinygrad_edu

    engines = {"this": workloads(tinygrad_edu)}
    if args.against:
        engines["against"] = workloads(load_copy(args.against))
    best: dict = {}
    gc.disable()
    for r in range(args.rounds):
        for engine, ws in engines.items():
            for name, (run, n) in ws.items():
                t = run()
                per_op = tuple(v / n for v in (t if isinstance(t, tuple) else (t,)))
                key = (engine, name)
                old = best.get(key, per_op)
                best[key] = tuple(min(a, b) for a, b in zip(old, per_op, strict=True))
        if r % 100 == 0:
            gc.collect()
    gc.enable()
    print("ns per op, minimum over", args.rounds, "runs of process CPU time, GC off")
    for name in engines["this"]:
        this = best[("this", name)]
        line = f"{name:33s} this {' / '.join(f'{v:6.0f}' for v in this)}"
        if args.against:
            other = best[("against", name)]
            line += f"   against {' / '.join(f'{v:6.0f}' for v in other)}"
            ratios = (a / b for a, b in zip(this, other, strict=True))
            line += f"   ratio {' / '.join(f'{r:.2f}' for r in ratios)}"
        print(line)


if __name__ == "__main__":
    main()

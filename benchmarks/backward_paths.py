"""Is a second backward path worth it? Exp, Sqrt, Tanh and Sigmoid, measured both ways.

The backward of these four ops needs the forward's result. ``ops.py`` uses the saved output array
when no graph of the backward pass is recorded, and recomputes the output from the input Tensor
when one is (``create_graph=True``), so that it can be differentiated again. Recomputing always
would be one path instead of two; this script measures what that one path would cost: the median
time of forward + backward on a (256, 1024) float32 tensor with each backward, three rounds,
the best round kept.

    OPENBLAS_NUM_THREADS=1 python benchmarks/backward_paths.py
"""

from __future__ import annotations

import time

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu import ops


def recompute_exp(self, grad_out):
    return grad_out * ops.exp(self.inputs[0])


def recompute_sqrt(self, grad_out):
    return grad_out * 0.5 / ops.sqrt(self.inputs[0])


def recompute_tanh(self, grad_out):
    out = ops.tanh(self.inputs[0])
    return grad_out * (1.0 - out * out)


def recompute_sigmoid(self, grad_out):
    out = ops.sigmoid(self.inputs[0])
    return grad_out * out * (1.0 - out)


CASES = {
    "Exp": (ops.Exp, ops.exp, recompute_exp),
    "Sqrt": (ops.Sqrt, ops.sqrt, recompute_sqrt),
    "Tanh": (ops.TanhFunction, ops.tanh, recompute_tanh),
    "Sigmoid": (ops.SigmoidFunction, ops.sigmoid, recompute_sigmoid),
}


def median_ms(fn, shape=(256, 1024), reps=60) -> float:
    host = np.random.default_rng(0).random(shape, dtype=np.float32) + 0.5
    x = tg.tensor(host, requires_grad=True)
    g = tg.ones(*shape)

    def step():
        x.grad = None
        fn(x).backward(g)

    for _ in range(5):
        step()
    times = []
    for _ in range(reps):
        t = time.process_time()
        step()
        times.append(time.process_time() - t)
    return sorted(times)[len(times) // 2] * 1e3


def main() -> None:
    print("forward + backward of a (256, 1024) float32 tensor, median ms (process time)")
    for name, (cls, fn, recompute) in CASES.items():
        saved_backward = cls.backward
        saved, recomputed = [], []
        try:
            for _ in range(3):
                cls.backward = saved_backward
                saved.append(median_ms(fn))
                cls.backward = recompute
                recomputed.append(median_ms(fn))
        finally:
            cls.backward = saved_backward
        a, b = min(saved), min(recomputed)
        print(f"{name:8s} saved output {a:.2f} ms, recomputed {b:.2f} ms: one path {b / a:.2f}x")


if __name__ == "__main__":
    main()

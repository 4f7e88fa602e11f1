"""The training loop: the one the example, the chapters and the benchmarks all call.

Chapter 11 builds it. One step of training a language model is

1. draw a batch of random windows from the training split (``data.get_batch``),
2. forward: logits and the mean cross-entropy of the next character (``model(x, targets=y)``),
3. backward: ``loss.backward()`` fills every parameter's ``.grad``,
4. clip the gradient's global norm (one bad batch cannot throw the weights far),
5. set the learning rate of this step (linear warm-up, then cosine decay) and update (AdamW).

Around the step, the loop keeps what a real run needs:

* **evaluation** every ``eval_interval`` steps and at the end: the mean loss over ``eval_iters``
  random batches of each split, in ``model.eval()`` mode and under ``no_grad()``, printed as
  ``step 500: train loss 1.623, val loss 1.789``;
* **checkpoints**, written atomically (a temporary file renamed over the old one) with
  ``tg.save``: ``last.npz`` after every evaluation (what ``resume`` continues from) and ``best.npz``
  when the validation loss improves (what sampling loads). A checkpoint holds the model, the
  optimizer's state, the tokenizer, both configs, the step, the random generator's state and the
  loss history, so **resuming is exact**: the steps after ``k`` see the same batches and the same
  weights as an uninterrupted run, and print the same losses;
* **Ctrl-C** finishes the current step, writes ``last.npz`` and returns (a second Ctrl-C stops at
  once); a ``KeyboardInterrupt`` raised elsewhere (in a callback) also saves the last completed
  step;
* a **progress bar** (tqdm) with the loss, milliseconds per step and tokens per second, and a
  **loss-curve** PNG (``loss.png``) beside the checkpoints.

Read next: ``examples/char_transformer.py``.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import backend
from .autograd import no_grad
from .data import CharTokenizer, get_batch
from .io import CheckpointError, load, save
from .optim import clip_grad_norm


@dataclass
class TrainConfig:
    """How to train. Defaults: nanoGPT's CPU recipe for tiny Shakespeare (the quality recipe),
    with a peak learning rate of 2e-3 instead of 1e-3 (same steps, same cost, lower loss)."""

    # Optimizer updates in total; the cosine schedule ends here too.
    steps: int = 2000
    # Windows per batch; a step sees batch_size * block_size = 768 next-character targets.
    batch_size: int = 12
    # Peak learning rate, reached after the warm-up. nanoGPT uses 1e-3; this 0.8M-parameter model
    # trained for only 2,000 steps does better with 2e-3: validation loss 1.820 instead of 1.905
    # here (PyTorch eager, same recipe and seed: 1.817 instead of 1.897).
    learning_rate: float = 2e-3
    # The learning rate the cosine decays to.
    min_lr: float = 1e-4
    # Linear warm-up from ~0: Adam's second-moment estimates are noisy over the first steps.
    warmup_steps: int = 100
    # Steps over which the learning rate decays (None: ``steps``); after it, ``min_lr``.
    lr_decay_steps: int | None = None
    # Adam's averaging rates for the gradient and its square; 0.99 rather than 0.999 because
    # with few tokens per step the gradient changes quickly.
    beta1: float = 0.9
    beta2: float = 0.99
    # Decoupled weight decay (AdamW) on matrices only (see the model's configure_optimizers).
    weight_decay: float = 0.1
    # Clip the global gradient norm to this value (0 disables clipping).
    grad_clip: float = 1.0
    # Evaluate (and checkpoint) every this many steps, and always at the last step.
    eval_interval: int = 500
    # Batches per split in an evaluation; the printed losses are means over them.
    eval_iters: int = 200
    # Seed of every random draw of the run (initial weights, batches, dropout).
    seed: int = 1337
    # Directory for best.npz, last.npz and loss.png.
    out_dir: str = "out"
    # "cpu" or "cuda"; None: the default device ($TINYGRAD_EDU_DEVICE or cpu).
    device: str | None = None
    # Show the tqdm progress bar.
    progress: bool = True
    # Redraw loss.png after every evaluation (matplotlib; off in quick tests).
    plot: bool = True

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_interval", "eval_iters"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig: {name} must be a positive integer, got {value!r}")
        decay_steps = self.lr_decay_steps or self.steps
        if not 0 <= self.warmup_steps < decay_steps:
            raise ValueError(
                f"TrainConfig: need 0 <= warmup_steps < lr_decay_steps (default: steps), got "
                f"warmup_steps={self.warmup_steps}, lr_decay_steps={decay_steps}"
            )


@dataclass
class TrainResult:
    """What ``train`` returns: where it stopped and the losses it saw."""

    step: int
    best_val_loss: float
    interrupted: bool
    out_dir: Path
    history: dict = field(default_factory=dict)

    @property
    def val_loss(self) -> float:
        """The last evaluated validation loss (NaN before the first evaluation)."""
        vals = self.history.get("val_loss", [])
        return float(vals[-1]) if len(vals) else math.nan


def get_lr(step: int, config: TrainConfig) -> float:
    """The learning rate of update number ``step`` (0-based): linear warm-up, then cosine decay.

    ``lr = peak * (step + 1) / (warmup + 1)`` during the warm-up; then, with
    ``r = (step - warmup) / (decay_steps - warmup)`` going from 0 to 1,
    ``lr = min_lr + (peak - min_lr) * (1 + cos(pi * r)) / 2``; ``min_lr`` after ``decay_steps``.

    >>> c = TrainConfig(learning_rate=1.0, min_lr=0.1, warmup_steps=10, steps=110)
    >>> [round(get_lr(s, c), 3) for s in (0, 9, 10, 60, 110)]
    [0.091, 0.909, 1.0, 0.55, 0.1]
    """
    from .optim import warmup_cosine_lr

    decay_steps = config.lr_decay_steps or config.steps
    return warmup_cosine_lr(
        step, config.learning_rate, config.min_lr, config.warmup_steps, decay_steps
    )


# -------------------------------------------------------------------------------------------------
# Evaluation
# -------------------------------------------------------------------------------------------------


def estimate_loss(
    model, split_data, batch_size: int, block_size: int, eval_iters: int, seed: int | None = None
) -> float:
    """The mean loss over ``eval_iters`` random batches, in evaluation mode, without a graph.

    With a ``seed``, the batches are drawn from a generator seeded with it and the framework's
    generator is put back afterwards: every evaluation then sees the same batches (so two
    evaluations compare the model, not the luck of the draw), and evaluating does not change
    the batches training sees next (so a resumed run matches an uninterrupted one).

    The batches are run ``chunk`` at a time as one larger batch: every batch has the same number
    of targets, so the mean over the big batch equals the mean of the batch means, and a few big
    matrix products are much faster than many small ones.
    """
    was_training = model.training
    saved_rng = backend.get_rng_state()
    if seed is not None:
        backend.manual_seed(seed)
    model.eval()
    device = _model_device(model)
    chunk = max(1, min(eval_iters, 256 // batch_size))
    total, done = 0.0, 0
    try:
        with no_grad():
            while done < eval_iters:
                n = min(chunk, eval_iters - done)
                x, y = get_batch(split_data, batch_size * n, block_size, device)
                _, loss = model(x, targets=y)
                total += loss.item() * n
                done += n
    finally:
        model.train(was_training)
        if seed is not None:
            backend.set_rng_state(saved_rng)
    return total / eval_iters


def _model_device(model) -> str:
    params = model.parameters()
    return params[0].device if params else backend.default_device()


# -------------------------------------------------------------------------------------------------
# Checkpoints
# -------------------------------------------------------------------------------------------------


def make_checkpoint(model, optimizer, tokenizer, config, step, history, best_val_loss, rng_state):
    """Everything a run needs to continue exactly, as a nested dict for ``tg.save``.

    Arrays go into the ``.npz`` as arrays; the configs, the tokenizer's characters, the step and
    the generator's state (which holds 128-bit integers) are plain values that ``tg.save`` keeps
    in its JSON document, so the file needs no pickle and ``np.load`` can read the weights.
    """
    return {
        "model": {k: backend.to_numpy(v) for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "model_type": type(model).__name__,
        "model_config": asdict(model.config),
        "train_config": asdict(config),
        "tokenizer": tokenizer.to_dict(),
        "step": int(step),
        "best_val_loss": float(best_val_loss),
        "rng_state": rng_state,
        "history": {k: list(v) for k, v in history.items()},
    }


def save_checkpoint(path, checkpoint: dict) -> None:
    """Write a checkpoint atomically (``tg.save`` writes a temporary file, then renames it)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save(checkpoint, path)


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by ``train``; a missing or unreadable file is a one-line
    :class:`CheckpointError` that says what to do."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not exist; train first (without --resume) or pass "
            "the --out-dir of a finished run"
        )
    try:
        ckpt = load(path)
        for key in (
            "model",
            "optimizer",
            "model_type",
            "model_config",
            "tokenizer",
            "step",
            "rng_state",
            "history",
        ):
            ckpt[key]  # noqa: B018 - a missing key means the file is not one of ours
        ckpt["tokenizer"] = CharTokenizer.from_dict(ckpt["tokenizer"])
    except Exception as e:  # a truncated file, another program's .npz, a missing key ...
        raise CheckpointError(
            f"cannot use checkpoint {str(path)!r} ({type(e).__name__}: {e}); it is damaged or "
            "was not written by this trainer: delete it and train again"
        ) from None
    return ckpt


def restore_model(model, ckpt: dict, path="checkpoint") -> None:
    """Load checkpoint weights into ``model``, with a one-line error when the shapes differ
    (a checkpoint from a different configuration)."""
    if ckpt["model_type"] != type(model).__name__:
        raise CheckpointError(
            f"{path} holds a {ckpt['model_type']} model, not a {type(model).__name__}; "
            "use a matching --out-dir"
        )
    try:
        model.load_state_dict(ckpt["model"])
    except ValueError as e:
        saved, current = ckpt["model_config"], asdict(model.config)
        diffs = [f"{k}={saved.get(k)}, not {v}" for k, v in current.items() if saved.get(k) != v]
        raise CheckpointError(
            f"{path} was trained with a different model configuration "
            f"({'; '.join(diffs) or str(e)}): pass the same settings, or another --out-dir to "
            "train a new model"
        ) from None


# -------------------------------------------------------------------------------------------------
# The loop
# -------------------------------------------------------------------------------------------------


class _StopFlag:
    """Turns the first Ctrl-C (SIGINT) into a request to stop after the current step; the
    second raises KeyboardInterrupt as usual. Installed only in the main thread."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def train(
    model,
    train_data,
    val_data,
    config: TrainConfig,
    tokenizer: CharTokenizer,
    resume: bool | str | os.PathLike = False,
    callback=None,
    log=print,
) -> TrainResult:
    """Train ``model`` on the token ids ``train_data`` / ``val_data`` (host int arrays).

    ``model`` must have ``forward(idx, targets) -> (logits, loss)``, a ``config`` dataclass with
    ``block_size`` and ``configure_optimizers(weight_decay, learning_rate, betas)``. Build it
    after ``tg.manual_seed(config.seed)`` so that its initial weights are seeded too.

    ``resume``: False starts at step 0; True continues from ``out_dir/last.npz``; a path
    continues from that checkpoint. ``callback(step, loss)`` is called after every completed
    step (``step`` counts completed updates). ``log`` receives the printed lines.

    Returns a :class:`TrainResult`; ``interrupted`` is True after Ctrl-C.
    """
    from .tensor import Tensor  # noqa: F401  (documentation: batches are Tensors)

    say = log or (lambda *a: None)
    backend.keep_freed_memory()  # reuse freed blocks of the big temporaries (see backend.py)
    out_dir = Path(config.out_dir)
    device = backend.get_device(config.device)
    model.to(device)
    block_size = model.config.block_size
    optimizer = model.configure_optimizers(
        config.weight_decay, config.learning_rate, (config.beta1, config.beta2)
    )
    history = {"step": [], "loss": [], "eval_step": [], "train_loss": [], "val_loss": []}
    best_val = math.inf
    start = 0

    if resume:
        path = out_dir / "last.npz" if resume is True else Path(resume)
        ckpt = load_checkpoint(path)
        restore_model(model, ckpt, path)
        if ckpt["tokenizer"].chars != tokenizer.chars:
            raise CheckpointError(
                f"{path} was trained on a corpus with a different vocabulary "
                f"({ckpt['tokenizer'].vocab_size} vs {tokenizer.vocab_size} characters); "
                "resume with the same --data"
            )
        optimizer.load_state_dict(ckpt["optimizer"])
        start = ckpt["step"]
        best_val = ckpt["best_val_loss"]
        history = {k: [float(v) for v in ckpt["history"][k]] for k in history}
        backend.set_rng_state(ckpt["rng_state"])
        say(f"resumed from {path} at step {start}")
    else:
        backend.manual_seed(config.seed)

    def checkpoint(step: int) -> dict:
        state = backend.get_rng_state()
        return make_checkpoint(model, optimizer, tokenizer, config, step, history, best_val, state)

    params = model.parameters()
    tokens_per_step = config.batch_size * block_size
    bar = _progress(config, start)
    step = start
    interrupted = False
    ema_ms = None
    # Where a KeyboardInterrupt can land, and what a checkpoint must then hold to resume exactly:
    # "draw" (batch, forward, backward): undo this step's random draws (rng_before);
    # "update" (optimizer.step): the parameters may be half updated, so nothing can be saved;
    # "done": the step is complete and the generator is where the next step expects it.
    phase, rng_before = "done", None
    with _StopFlag() as stop:
        try:
            while step < config.steps:
                phase, rng_before = "draw", backend.get_rng_state()
                t0 = time.perf_counter()
                lr = get_lr(step, config)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                x, y = get_batch(train_data, config.batch_size, block_size, device)
                _, loss = model(x, targets=y)  # (B, T) ids -> scalar mean cross-entropy
                optimizer.zero_grad()
                loss.backward()
                if config.grad_clip > 0.0:
                    clip_grad_norm(params, config.grad_clip)
                phase = "update"
                optimizer.step()
                step += 1
                phase = "done"
                loss_value = loss.item()
                history["step"].append(step)
                history["loss"].append(loss_value)
                ms = (time.perf_counter() - t0) * 1000.0
                ema_ms = ms if ema_ms is None else 0.9 * ema_ms + 0.1 * ms
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(
                        f"loss {loss_value:.4f}, {ema_ms:.0f} ms/step, "
                        f"{tokens_per_step / ema_ms * 1000.0:,.0f} tokens/s",
                        refresh=False,
                    )
                if callback is not None:
                    callback(step, loss_value)
                if step % config.eval_interval == 0 or step == config.steps:
                    losses = [
                        estimate_loss(
                            model,
                            split,
                            config.batch_size,
                            block_size,
                            config.eval_iters,
                            seed=config.seed + 1 + i,
                        )
                        for i, split in enumerate((train_data, val_data))
                    ]
                    history["eval_step"].append(step)
                    history["train_loss"].append(losses[0])
                    history["val_loss"].append(losses[1])
                    _write(
                        bar,
                        say,
                        f"step {step}: train loss {losses[0]:.3f}, val loss {losses[1]:.3f}",
                    )
                    if losses[1] < best_val:
                        best_val = losses[1]
                        save_checkpoint(out_dir / "best.npz", checkpoint(step))
                    save_checkpoint(out_dir / "last.npz", checkpoint(step))
                    if config.plot:
                        plot_losses(history, out_dir / "loss.png")
                if stop.requested:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            interrupted = True
            if phase == "update":
                _write(
                    bar,
                    say,
                    f"interrupted during the update of step {step + 1}: the "
                    f"weights are half updated, so {out_dir / 'last.npz'} was "
                    "left as it was",
                )
            else:
                if phase == "draw":  # forget the batch this unfinished step drew
                    backend.set_rng_state(rng_before)
                save_checkpoint(out_dir / "last.npz", checkpoint(step))
                if config.plot:
                    plot_losses(history, out_dir / "loss.png")
                _write(
                    bar,
                    say,
                    f"interrupted at step {step}: saved {out_dir / 'last.npz'}; "
                    "continue with --resume",
                )
        finally:
            if bar is not None:
                bar.close()
    return TrainResult(step, best_val, interrupted, out_dir, history)


def _progress(config: TrainConfig, start: int):
    if not config.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=config.steps, initial=start, unit="step", dynamic_ncols=True, mininterval=0.5)


def _write(bar, say, line: str) -> None:
    if bar is not None and say is print:
        bar.write(line)
    else:
        say(line)


def plot_losses(history: dict, path) -> None:
    """The loss curves (every step's batch loss, the evaluated train and val losses) as a PNG,
    written atomically by ``viz.plot_loss_curves``."""
    from .viz import plot_loss_curves

    plot_loss_curves(history, path, title="character-level LM: cross-entropy (nats/char)")

"""The training loop: the one the example, the chapters and the benchmarks all call.

Chapter 11 builds it. One step of training a language model is

1. draw a batch of random windows from the training split (``data.get_batch``),
2. forward: logits and the mean cross-entropy of the next character (``model(x, targets=y)``),
3. backward: ``loss.backward()`` fills every parameter's ``.grad``,
4. clip the gradient's global norm (one bad batch cannot throw the weights far),
5. update (AdamW), and move the learning rate on to the next step's (``optim.WarmupCosineLR``:
   linear warm-up, then cosine decay).

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
* **Ctrl-C or SIGTERM** (what ``kill`` and job schedulers send) finishes the current step,
  writes ``last.npz`` and returns (an evaluation under way is cut short and not repeated on
  resume; a second signal stops at once, except during an update or a save, which always
  complete first); a ``KeyboardInterrupt`` raised elsewhere (in a callback) also saves the last
  completed step;
* **failures stop the run with a one-line message** rather than after hours of wasted steps:
  an output directory that cannot be written or lacks the space for the checkpoints is refused
  before the first step; a full disk during a save raises :class:`SaveError` (the previous file
  is intact); a loss or gradient norm that is NaN or infinite raises :class:`NonFiniteLossError`
  before the update, so the last checkpoint stays finite;
* a **progress bar** (tqdm) with the loss, milliseconds per step and tokens per second, and a
  **loss-curve** PNG (``loss.png``) beside the checkpoints.

Read next: ``examples/char_transformer.py``.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import backend
from ._config import check_nonnegative_int, check_positive_ints
from .autograd import no_grad
from .data import CharTokenizer, get_batch
from .io import (
    ENTRY_TYPES,
    CheckpointError,
    check_entry_types,
    deferred_signals,
    load,
    remove_stale_temporaries,
    save,
)
from .optim import WarmupCosineLR, clip_grad_norm


@dataclass
class TrainConfig:
    """How to train. Defaults: nanoGPT's CPU recipe for tiny Shakespeare (the quality recipe),
    with a peak learning rate of 2e-3 instead of 1e-3 (same steps, same cost, lower loss)."""

    # Optimizer updates in total; the cosine schedule ends here too.
    steps: int = 2000
    # Windows per batch; a step sees batch_size * block_size = 768 next-character targets.
    batch_size: int = 12
    # Peak learning rate, reached after the warm-up. nanoGPT uses 1e-3; this 0.8M-parameter model
    # trained for only 2,000 steps does better with 2e-3 (the README's "Training" section has the
    # measured validation losses of both).
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
        check_positive_ints(self, "steps", "batch_size", "eval_interval", "eval_iters")
        checks = {
            "learning_rate": ("> 0", lambda v: v > 0),
            "min_lr": (">= 0", lambda v: v >= 0),
            "beta1": ("in [0, 1)", lambda v: 0 <= v < 1),
            "beta2": ("in [0, 1)", lambda v: 0 <= v < 1),
            "weight_decay": (">= 0", lambda v: v >= 0),
            "grad_clip": (">= 0 (0 disables clipping)", lambda v: v >= 0),
        }
        for name, (expected, ok) in checks.items():
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and ok(value)):
                raise ValueError(
                    f"TrainConfig: {name} must be a finite number {expected}, got {value!r}"
                )
        check_nonnegative_int(self, "seed")
        decay_steps = self.lr_decay_steps or self.steps
        if not 0 <= self.warmup_steps < decay_steps:
            raise ValueError(
                f"TrainConfig: need 0 <= warmup_steps < lr_decay_steps (default: steps), got "
                f"warmup_steps={self.warmup_steps}, lr_decay_steps={decay_steps}"
            )


@dataclass
class TrainResult:
    """What ``train`` returns: where it stopped and the losses it saw. ``signal`` is the signal
    that stopped an interrupted run (``signal.SIGINT`` for Ctrl-C or a ``KeyboardInterrupt``,
    ``signal.SIGTERM``), None for a finished one."""

    step: int
    best_val_loss: float
    interrupted: bool
    out_dir: Path
    history: dict = field(default_factory=dict)
    signal: int | None = None

    @property
    def val_loss(self) -> float:
        """The last evaluated validation loss (NaN before the first evaluation)."""
        vals = self.history.get("val_loss", [])
        return float(vals[-1]) if len(vals) else math.nan


def train_step(model, optimizer, batch, loss_fn=None) -> float:
    """One step of gradient descent on ``batch = (x, y)``; returns the loss as a number.

    The loss is ``loss_fn(model(x), y)``, or, without ``loss_fn``, the one the model computes
    itself (the language models: ``model(x, targets=y)`` returns ``(logits, loss)``). Then the
    three calls of every training step. ``train`` below makes the same three calls, with checks
    between them (a loss that is not finite, gradient clipping, a signal during the update).
    """
    x, y = batch
    if loss_fn is None:
        _, loss = model(x, targets=y)
    else:
        loss = loss_fn(model(x), y)
    # --- exercise 4.5: the training step ---
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    # --- end exercise ---
    return loss.item()


def lr_schedule(optimizer, config: TrainConfig, start: int = 0) -> WarmupCosineLR:
    """The run's learning-rate schedule, ``optim.WarmupCosineLR``, set to the rate of update
    number ``start`` (0-based); ``schedule.step()`` after each update moves it on.

    Linear warm-up to ``config.learning_rate`` over ``warmup_steps``, then cosine decay to
    ``min_lr`` at ``lr_decay_steps`` (default: ``steps``); see ``optim.warmup_cosine_lr``. The
    peak is always ``config.learning_rate``, also when resuming from a checkpoint.

    >>> import tinygrad_edu as tg
    >>> opt = tg.optim.SGD([tg.zeros(1, requires_grad=True)], lr=0.5)
    >>> c = TrainConfig(learning_rate=1.0, min_lr=0.1, warmup_steps=10, steps=110)
    >>> [round(lr_schedule(opt, c, start=s).get_last_lr()[0], 3) for s in (0, 9, 10, 60, 110)]
    [0.091, 0.909, 1.0, 0.55, 0.1]
    """
    for group in optimizer.param_groups:
        group["initial_lr"] = config.learning_rate  # the schedule's base rate (PyTorch's key)
    decay_steps = config.lr_decay_steps or config.steps
    return WarmupCosineLR(
        optimizer, config.warmup_steps, decay_steps, config.min_lr, last_epoch=start - 1
    )


# -------------------------------------------------------------------------------------------------
# Evaluation
# -------------------------------------------------------------------------------------------------


# Tokens per forward pass of an evaluation. Bigger batches make bigger matrix products, but every
# elementwise pass then streams activations that no longer fit in cache: 40 batches of the default
# model (12 x 64 tokens) took 1.34-1.74 s in forwards of 256 windows, 1.40-1.68 s of 48, 1.08-1.10 s
# of 24 and 1.10-1.35 s of 12 (one thread, CPU time; the losses are the same).
EVAL_TOKENS = 1536


def estimate_loss(
    model,
    split_data,
    batch_size: int,
    block_size: int,
    eval_iters: int,
    seed: int | None = None,
    progress=None,
) -> float:
    """The mean loss over ``eval_iters`` random batches, in evaluation mode, without a graph.

    With a ``seed``, the batches are drawn from a generator seeded with it and the framework's
    generator is put back afterwards: every evaluation then sees the same batches (so two
    evaluations compare the model, not the luck of the draw), and evaluating does not change
    the batches training sees next (so a resumed run matches an uninterrupted one).

    The batches are run ``chunk`` at a time as one larger batch of about ``EVAL_TOKENS`` tokens:
    every batch has the same number of targets, so the mean over the big batch equals the mean of
    the batch means. ``progress(done, eval_iters)``, if given, is called after each of them (the
    training loop shows it in the progress bar).
    """
    was_training = model.training
    saved_rng = backend.get_rng_state()
    if seed is not None:
        backend.manual_seed(seed)
    model.eval()
    device = _model_device(model)
    chunk = max(1, min(eval_iters, EVAL_TOKENS // (batch_size * block_size)))
    total, done = 0.0, 0
    try:
        with no_grad():
            while done < eval_iters:
                n = min(chunk, eval_iters - done)
                x, y = get_batch(split_data, batch_size * n, block_size, device)
                _, loss = model(x, targets=y)
                total += loss.item() * n
                done += n
                if progress is not None:
                    progress(done, eval_iters)
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


class SaveError(OSError):
    """The output directory cannot hold the run: not a directory, not writable, or full. The
    message is one line that names the path and what to do."""


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient norm; the message says at which step
    and which checkpoint is the last finite one."""


# The files a run writes in its out_dir.
RUN_FILES = ("best.npz", "last.npz", "loss.png")


def save_checkpoint(path, checkpoint: dict) -> None:
    """Write a checkpoint atomically (``tg.save`` writes a temporary file, then renames it); a
    full disk or a lost permission is a :class:`SaveError` naming the file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save(checkpoint, path)
    except OSError as e:
        raise SaveError(
            f"cannot write {str(path)!r} ({_reason(e)}); the previous {path.name}, if any, is "
            "intact: free some space or pass another --out-dir, then continue with --resume"
        ) from None


def _reason(e: OSError) -> str:
    return f"{type(e).__name__}: {e.strerror or e}" if e.errno else f"{type(e).__name__}: {e}"


def checkpoint_bytes(model) -> int:
    """About how large a checkpoint of ``model`` is: its weights and Adam's two moments, plus
    the JSON document and the zip entries."""
    weights = sum(backend.to_numpy(p.data).nbytes for p in model.parameters())
    return 3 * weights + 64 * 1024


def space_needed(model) -> int:
    """The disk space a run of ``model`` needs at most: best.npz, last.npz, the temporary copy of
    last.npz while it is written, and 256 KiB for loss.png and its temporary copy."""
    return 3 * checkpoint_bytes(model) + 256 * 1024


def check_out_dir(out_dir, need_bytes: int = 0) -> None:
    """Make sure ``out_dir`` can hold the run before any step is trained: it is (or can be
    created as) a directory, a file can be written in it, and at least ``need_bytes`` are free
    (counting the space of the run files it already holds, which will be replaced). Raises
    :class:`SaveError` with a one-line reason."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise SaveError(f"{str(out_dir)!r} is a file, not a directory; pass a directory path")
    probe = out_dir / f".write-test.{os.getpid()}.tmp"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"tinygrad_edu")
        probe.unlink()
        free = shutil.disk_usage(out_dir).free
    except OSError as e:
        with contextlib.suppress(OSError):
            probe.unlink()
        raise SaveError(
            f"cannot write in {str(out_dir)!r} ({_reason(e)}); pass a writable directory"
        ) from None
    reusable = sum(
        (out_dir / name).stat().st_size for name in RUN_FILES if (out_dir / name).is_file()
    )
    if free + reusable < need_bytes:
        raise SaveError(
            f"{str(out_dir)!r} has {free / 2**20:.1f} MiB free, and the checkpoints of this run "
            f"need about {need_bytes / 2**20:.1f} MiB; free some space or pass another directory"
        )


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
        _check_entries(ckpt)
        ckpt["tokenizer"] = CharTokenizer.from_dict(ckpt["tokenizer"])
    except CheckpointError:  # load's own message: truncated, not a checkpoint, a newer format ...
        raise
    except Exception as e:  # another program's .npz, a missing key, an edited entry ...
        raise CheckpointError(
            f"cannot use checkpoint {str(path)!r} ({type(e).__name__}: {e}); it is damaged or "
            "was not written by this trainer: train a new run in another --out-dir"
        ) from None
    bad = _non_finite({"model": ckpt["model"], "optimizer": ckpt["optimizer"]})
    if bad:
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds NaN or infinite values ({', '.join(bad[:3])}"
            f"{', ...' if len(bad) > 3 else ''}): the run that wrote it diverged; use an earlier "
            "checkpoint, or train again with a lower --learning-rate"
        )
    return ckpt


HISTORY_KEYS = ("step", "loss", "eval_step", "train_loss", "val_loss")


def _check_entries(ckpt) -> None:
    """Raise (KeyError, TypeError, ValueError) unless ``ckpt`` holds every entry of a training
    checkpoint with its type, so that resuming cannot fail halfway through restoring it."""
    missing = [key for key in ENTRY_TYPES if key not in ckpt]  # make_checkpoint writes them all
    if missing:
        raise KeyError(missing[0])
    check_entry_types(ckpt, ENTRY_TYPES)
    if ckpt["step"] < 0 or not {"state", "param_groups"} <= set(ckpt["optimizer"]):
        raise ValueError("its step or optimizer state is malformed")
    history = ckpt["history"]
    for name in HISTORY_KEYS:  # lists of numbers; a list not kept (a hand-made file) is empty
        history[name] = [float(v) for v in history.get(name, [])]
    if len(history["step"]) != len(history["loss"]) or not (
        len(history["eval_step"]) == len(history["train_loss"]) == len(history["val_loss"])
    ):
        raise ValueError("its loss history has lists of different lengths")
    scratch = type(backend.rng().bit_generator)()
    scratch.state = ckpt["rng_state"]  # a generator state the framework's generator accepts


def _non_finite(tree, prefix="") -> list[str]:
    """The dotted names of the floating-point arrays in a nested dict/list that hold NaN or inf."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    elif backend.is_array(tree) and backend.is_floating(tree.dtype):
        xp = backend.xp_of(tree)
        return [] if bool(xp.all(xp.isfinite(tree))) else [prefix]
    else:
        return []
    return [bad for k, v in items for bad in _non_finite(v, f"{prefix}.{k}" if prefix else str(k))]


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
    """Turns the first SIGINT (Ctrl-C) or SIGTERM into a request to stop after the current step;
    a second one raises KeyboardInterrupt at once, unless the run is already stopping (saving its
    last checkpoint), when it is ignored. Installed only in the main thread."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    active = None  # the flag of the run under way, which an evaluation checks between batches

    def __init__(self):
        self.signal = None  # the first signal received
        self.stopping = False
        self._previous = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        _StopFlag.active = self
        return self

    def _handle(self, signum, frame):
        if self.signal is None:
            self.signal = signum
        elif not self.stopping:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        _StopFlag.active = None
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


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

    Returns a :class:`TrainResult`; ``interrupted`` is True after Ctrl-C or SIGTERM. Raises
    :class:`SaveError` when ``out_dir`` cannot hold the checkpoints (checked before the first
    step) or a save fails, and :class:`NonFiniteLossError` when the loss or the gradient norm
    stops being finite.
    """
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

    schedule = lr_schedule(optimizer, config, start)

    def checkpoint(step: int) -> dict:
        state = backend.get_rng_state()
        return make_checkpoint(model, optimizer, tokenizer, config, step, history, best_val, state)

    for name in RUN_FILES:  # leftovers of saves killed by SIGKILL or a power cut
        for tmp in remove_stale_temporaries(out_dir / name):
            say(f"removed {tmp}, a temporary file left by an interrupted save")
    check_out_dir(out_dir, space_needed(model))

    saved_step = start if resume else None  # the step of the last.npz this run can go back to

    def not_finite(at_step: int, what: str, value: float):
        kept = "no checkpoint was written yet"
        if saved_step is not None:
            kept = (
                f"{str(out_dir / 'last.npz')!r} (step {saved_step}) is the last finite checkpoint"
            )
        return NonFiniteLossError(
            f"step {at_step}: the {what} is {value}, so training stopped; {kept}. Find the first "
            "op that made it with tg.detect_anomaly(), or lower the learning rate"
        )

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
    # Overflow warnings (RuntimeWarning) are left out: the loop checks the loss and the gradient
    # norm itself and names the step where they stopped being finite (detect_anomaly: the op).
    with _StopFlag() as stop, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            while step < config.steps:
                phase, rng_before = "draw", backend.get_rng_state()
                t0 = time.perf_counter()
                x, y = get_batch(train_data, config.batch_size, block_size, device)
                _, loss = model(x, targets=y)  # (B, T) ids -> scalar mean cross-entropy
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise not_finite(step + 1, "loss", loss_value)
                optimizer.zero_grad()
                loss.backward()
                if config.grad_clip > 0.0:
                    norm = clip_grad_norm(params, config.grad_clip).item()
                    if not math.isfinite(norm):
                        raise not_finite(step + 1, "gradient norm", norm)
                phase = "update"
                with deferred_signals():  # a signal now would leave the weights half updated
                    optimizer.step()
                    schedule.step()
                step += 1
                phase = "done"
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
                            progress=_eval_progress(bar, name),
                        )
                        for i, (name, split) in enumerate(
                            (("train", train_data), ("val", val_data))
                        )
                    ]
                    bad = [v for v in losses if not math.isfinite(v)]
                    if bad:
                        raise not_finite(step, "evaluated loss", bad[0])
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
                    saved_step = step
                    if config.plot:
                        plot_losses(history, out_dir / "loss.png")
                if stop.requested:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            interrupted = True
            stop.stopping = True  # from here on, further signals wait: the last save must finish
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
                    f"interrupted at step {step}{_signal_name(stop.signal)}: saved "
                    f"{out_dir / 'last.npz'}; continue with --resume",
                )
        finally:
            if bar is not None:
                bar.close()
    stopped_by = (stop.signal or signal.SIGINT) if interrupted else None
    return TrainResult(step, best_val, interrupted, out_dir, history, stopped_by)


def _signal_name(signum) -> str:
    return f" ({signal.Signals(signum).name})" if signum is not None else ""


def _eval_progress(bar, split: str):
    """Called after each batch of an evaluation, which can take many steps' time: show its
    progress in the bar, and end it at once when Ctrl-C or SIGTERM asked the run to stop (the
    step is complete, so the loop saves it; a scheduler's SIGKILL may follow within seconds)."""

    def progress(done: int, total: int) -> None:
        if _StopFlag.active is not None and _StopFlag.active.requested:
            raise KeyboardInterrupt
        if bar is not None:
            bar.set_postfix_str(f"evaluating {split}: {done}/{total} batches")

    return progress


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
    written atomically by ``viz.plot_loss_curves``.

    A matplotlib Figure is a web of reference cycles (each artist points to its axes and back),
    which only Python's cycle collector frees: collecting here returns its memory (about 0.8 MB)
    at once instead of whenever the next full collection runs (0.1 s, once per evaluation)."""
    import gc

    from .viz import plot_loss_curves

    try:
        fig = plot_loss_curves(history, path, title="character-level LM: cross-entropy (nats/char)")
    except OSError as e:
        raise SaveError(f"cannot write {str(path)!r} ({_reason(e)}); free some space") from None
    fig.clear()
    del fig
    gc.collect()

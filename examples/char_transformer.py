"""Train a character-level Transformer on tiny Shakespeare, then sample from it.

    python examples/char_transformer.py               # train: the quality recipe, 2,000 steps
    python examples/char_transformer.py --resume      # continue an interrupted run exactly
    python examples/char_transformer.py sample --prompt "ROMEO:" --temperature 0.8 --top-k 40
    python examples/char_transformer.py export        # best.npz -> best.safetensors, for PyTorch

Training prints a progress bar (loss, ms/step, tokens/s), ``step N: train loss ..., val loss ...``
every ``--eval-interval`` steps and at the end, and a generated sample. It writes ``best.npz``
(best validation loss; what ``sample`` loads), ``last.npz`` (what ``--resume`` continues) and
``loss.png`` under ``--out-dir``. Ctrl-C (SIGINT) or SIGTERM saves ``last.npz`` and exits with
status 130 or 143, as a shell reports a process those signals ended; a second signal never cuts a
save short. An ``--out-dir`` that already holds a run is continued only with ``--resume`` and
replaced only with ``--overwrite``. ``export`` writes the best model's weights, configuration and
tokenizer as ``best.safetensors`` (or ``--to FILE``) in nanoGPT's names, which PyTorch reads
without this package (chapter 16); ``sample --checkpoint FILE`` samples from any such weights-only
file (``.npz`` or ``.safetensors``) or training checkpoint.

Expected result of the default run (seed 1337, measured on a 2-core CPU): ``step 2000: train loss
1.650, val loss 1.820``; PyTorch eager running the same recipe and seed gives val loss 1.817. The
defaults are nanoGPT's CPU recipe (4 layers, 4 heads, width 128, block 64, batch 12, 2,000 steps)
except the peak learning rate, 2e-3 instead of 1e-3 (which gives 1.905 here, 1.897 in PyTorch).

Every field of the model's configuration (``GPTConfig``) and of the training configuration
(``TrainConfig``) is a flag: ``--n-layer 6``, ``--learning-rate 3e-4``, ``--eval-iters 50`` ...
(``python examples/char_transformer.py --help`` lists them). The corpus is found as
``tinygrad_edu.data.load_corpus`` describes: ``--data PATH``, ``$TINYGRAD_EDU_DATA``, the cache,
one download, or offline the corpus bundled with the package.

Bad input ends with a one-line ``error: ...`` on stderr and exit status 2, before any step is
trained: an unknown flag or a value out of range (a learning rate that is NaN, infinite or
negative, a beta outside [0, 1) ...), a missing, empty or too short data file, an unreadable
checkpoint or one from another model or configuration, an ``--out-dir`` that is a file, cannot be
written or has too little free space, a prompt character the model has never seen. A run that
fails on its way (the disk fills up, the loss becomes NaN) stops with a one-line ``error: ...``
and exit status 1; the last checkpoint it wrote is intact and finite.
"""

from __future__ import annotations

import os

# One BLAS thread unless the user says otherwise (this must happen before NumPy is imported). The
# matrices of this model are small, and OpenBLAS's worker threads spin while they wait: on a 2-core
# machine with one other busy process, a training step took 521 ms with 2 threads and 83 ms with 1.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import difflib  # noqa: E402
import math  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from dataclasses import fields  # noqa: E402
from pathlib import Path  # noqa: E402

import tinygrad_edu as tg  # noqa: E402
from tinygrad_edu import backend, data  # noqa: E402
from tinygrad_edu import io as tg_io  # noqa: E402
from tinygrad_edu.io import CheckpointError  # noqa: E402
from tinygrad_edu.models import GPT, GPTConfig, build_model  # noqa: E402
from tinygrad_edu.train import (  # noqa: E402
    RUN_FILES,
    NonFiniteLossError,
    SaveError,
    TrainConfig,
    check_out_dir,
    load_checkpoint,
    restore_model,
    space_needed,
    train,
)

# Config fields that are not flags of their own: set from the data, or by a dedicated flag.
NOT_FLAGS = {"vocab_size", "out_dir", "device", "seed", "progress"}


MODES = ("train", "sample", "export")


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


# -------------------------------------------------------------------------------------------------
# Flags: each value is checked as it is parsed, so a bad one is refused before anything runs
# -------------------------------------------------------------------------------------------------


def _checked(kind, expected: str, ok):
    """An argparse ``type``: parse with ``kind`` (int or float), then require ``ok(value)``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or (kind is float and not math.isfinite(value)) or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected  # what argparse would name in its own messages
    return parse


POSITIVE_INT = _checked(int, "an integer >= 1", lambda v: v >= 1)
NON_NEGATIVE_INT = _checked(int, "an integer >= 0", lambda v: v >= 0)
POSITIVE = _checked(float, "a finite number > 0", lambda v: v > 0)
NON_NEGATIVE = _checked(float, "a finite number >= 0", lambda v: v >= 0)
FRACTION = _checked(float, "a number in [0, 1)", lambda v: 0 <= v < 1)
# Logits divided by a tinier temperature overflow float32 (1e-40 gave inf, then NaN, then
# newlines); --top-k 1 is the greedy limit of temperature -> 0. A temperature beyond float32's
# range (1e300) overflowed with a RuntimeWarning; at 1e6 the draw is already uniform.
MIN_TEMPERATURE, MAX_TEMPERATURE = 1e-6, 1e6
TEMPERATURE = _checked(
    float,
    f"a number in [{MIN_TEMPERATURE:g}, {MAX_TEMPERATURE:g}] (--top-k 1 for greedy)",
    lambda v: MIN_TEMPERATURE <= v <= MAX_TEMPERATURE,
)


def _path(text: str) -> str:
    """An argparse ``type`` for file and directory flags: an empty path ('' is the current
    directory to the OS: --out-dir '' would write the run there) is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return text


# Every config field's flag: (what it accepts, help). tests/test_cli.py checks that each field of
# GPTConfig and TrainConfig has one, and that --help shows each default once.
FIELD_FLAGS = {
    # GPTConfig
    "block_size": (POSITIVE_INT, "context length in characters"),
    "n_layer": (POSITIVE_INT, "Transformer blocks"),
    "n_head": (POSITIVE_INT, "attention heads per block (must divide --n-embd)"),
    "n_embd": (POSITIVE_INT, "width of the residual stream"),
    "dropout": (FRACTION, "dropout probability"),
    "bias": (None, "biases in Linear and LayerNorm layers"),
    # TrainConfig
    "steps": (
        POSITIVE_INT,
        "optimizer updates in total (with --resume, more continue a finished run)",
    ),
    "batch_size": (POSITIVE_INT, "windows per batch"),
    "learning_rate": (POSITIVE, "peak learning rate, reached after the warm-up"),
    "min_lr": (NON_NEGATIVE, "learning rate the cosine decays to"),
    "warmup_steps": (NON_NEGATIVE_INT, "steps of linear warm-up (fewer than --steps)"),
    "lr_decay_steps": (POSITIVE_INT, "steps of cosine decay (default: --steps)"),
    "beta1": (FRACTION, "Adam's averaging rate of the gradient"),
    "beta2": (FRACTION, "Adam's averaging rate of the squared gradient"),
    "weight_decay": (NON_NEGATIVE, "AdamW's decoupled weight decay, on matrices"),
    "grad_clip": (NON_NEGATIVE, "clip the gradient's global norm to this (0: off)"),
    "eval_interval": (POSITIVE_INT, "evaluate and save every this many steps"),
    "eval_iters": (POSITIVE_INT, "batches per split in an evaluation"),
    "plot": (None, "redraw OUT_DIR/loss.png after every evaluation"),
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_config_flags(group, config_cls) -> None:
    """One flag per dataclass field; default None means 'not given' (the config's default, or
    with --resume the run's own value, applies)."""
    for f in fields(config_cls):
        if f.name in NOT_FLAGS:
            continue
        kind, text = FIELD_FLAGS[f.name]
        shown = "" if f.name == "lr_decay_steps" else f" (default: {f.default})"
        if kind is None:  # a bool: --bias / --no-bias
            group.add_argument(
                _flag(f.name),
                action=argparse.BooleanOptionalAction,
                default=None,
                help=text + shown,
            )
        else:
            metavar = "X" if isinstance(f.default, float) else "N"
            group.add_argument(
                _flag(f.name), type=kind, default=None, metavar=metavar, help=text + shown
            )


class Parser(argparse.ArgumentParser):
    """argparse, with every error on one line and unknown flags named with a suggestion.

    ``allow_abbrev=False``: argparse would otherwise take ``--lr 500`` for ``--lr-decay-steps 500``.
    """

    def __init__(self, **kw):
        super().__init__(allow_abbrev=False, **kw)

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        known = self._option_string_actions
        tokens = []
        for token in sys.argv[1:] if args is None else args:
            previous = known.get(tokens[-1]) if tokens else None
            if "--" in tokens or not token.startswith("-") or len(token) == 1:
                if previous is not None and previous.nargs == 0 and token not in MODES:
                    self.error(f"{tokens[-1]} takes no value, got {token!r}{_bool_hint(previous)}")
                tokens.append(token)  # a value, a mode, or anything after "--"
                continue
            name = token.split("=", 1)[0]
            if name not in known and previous is not None and previous.nargs is None:
                tokens[-1] += "=" + token  # a value starting with "-" ("-1", "-inf", "-x")
                continue
            if name not in known and token != "--" and not _is_number(token):
                self.error(f"unknown flag {name}{self._suggest(name)}")
            tokens.append(token)
        return super().parse_known_args(tokens, namespace)

    def _suggest(self, name: str) -> str:
        flags = [s for s in self._option_string_actions if s.startswith("--")]
        typed = name.lstrip("-")
        initials = [f for f in flags if "".join(w[:1] for w in f[2:].split("-")) == typed]
        prefixed = [f for f in flags if f.startswith(name)]
        close = difflib.get_close_matches(name, flags, n=3, cutoff=0.7)
        candidates = list(dict.fromkeys(initials + prefixed + close))[:3]
        return f"; did you mean {' or '.join(candidates)}?" if candidates else ""


def _bool_hint(action) -> str:
    flags = [f for f in action.option_strings if f.startswith("--")]
    return f"; write {' or '.join(flags)}" if len(flags) > 1 else ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def make_parser() -> argparse.ArgumentParser:
    p = Parser(
        description="Train a character-level Transformer (default) or sample from a checkpoint.",
    )
    p.add_argument(
        "mode",
        nargs="?",
        choices=MODES,
        default="train",
        help="train a model (default), sample from OUT_DIR/best.npz (or --checkpoint FILE), or "
        "export OUT_DIR/best.npz as best.safetensors for PyTorch",
    )
    p.add_argument(
        "--out-dir",
        default="out-char-transformer",
        type=_path,
        help="directory of best.npz, last.npz and loss.png (default: out-char-transformer)",
    )
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default=None,
        help="where to compute (default: $TINYGRAD_EDU_DEVICE, else cpu)",
    )
    p.add_argument(
        "--seed",
        type=NON_NEGATIVE_INT,
        default=1337,
        metavar="N",
        help="seeds weights, batches and sampling (default: 1337)",
    )
    p.add_argument(
        "--data",
        default=None,
        type=_path,
        metavar="PATH",
        help="a UTF-8 text file to train on (default: $TINYGRAD_EDU_DATA, else tiny Shakespeare)",
    )
    runs = p.add_mutually_exclusive_group()
    runs.add_argument(
        "--resume", action="store_true", help="continue the run in OUT_DIR from its last.npz"
    )
    runs.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in OUT_DIR (without it, an existing run is refused)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    kept = "with --resume, a flag not given keeps the run's own value"
    _add_config_flags(p.add_argument_group("model (GPTConfig)", kept), GPTConfig)
    _add_config_flags(p.add_argument_group("training (TrainConfig)", kept), TrainConfig)
    s = p.add_argument_group("sampling")
    s.add_argument(
        "--prompt", default="\n", help="text to continue, sample mode (default: a newline)"
    )
    s.add_argument(
        "--max-new-tokens",
        type=NON_NEGATIVE_INT,
        default=500,
        metavar="N",
        help="characters to generate (default: 500)",
    )
    s.add_argument(
        "--temperature",
        type=TEMPERATURE,
        default=0.8,
        metavar="X",
        help="below 1 sharpens the distribution, above 1 flattens it (default: 0.8)",
    )
    s.add_argument(
        "--top-k",
        type=POSITIVE_INT,
        default=None,
        metavar="K",
        help="draw only from the K likeliest characters; 1 is greedy (default: all)",
    )
    s.add_argument(
        "--checkpoint",
        default=None,
        type=_path,
        metavar="FILE",
        help="sample from this file: a training checkpoint or weights + config + tokenizer "
        "(.npz or .safetensors) (default: OUT_DIR/best.npz)",
    )
    p.add_argument(
        "--to",
        default=None,
        type=_path,
        metavar="FILE",
        help="export: the file to write, .safetensors or .npz (default: OUT_DIR/best.safetensors)",
    )
    return p


def _given(args, config_cls) -> dict:
    return {
        f.name: getattr(args, f.name)
        for f in fields(config_cls)
        if f.name not in NOT_FLAGS and getattr(args, f.name, None) is not None
    }


def _build(cls, values: dict):
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None


def run_train(args) -> int:
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir {str(out_dir)!r} is a file, not a directory; pass a directory")
    existing = [name for name in RUN_FILES[:2] if (out_dir / name).is_file()]
    if existing and not (args.resume or args.overwrite):
        raise UsageError(
            f"--out-dir {str(out_dir)!r} already holds a run ({', '.join(existing)}); continue it "
            "with --resume, replace it with --overwrite, or pass another --out-dir"
        )
    text = data.load_corpus(args.data)
    tokenizer = data.CharTokenizer(text)
    train_ids, val_ids = data.train_val_split(tokenizer.encode(text))

    model_values = {"vocab_size": tokenizer.vocab_size}
    train_values = {}
    if args.resume:  # the run's own settings, unless a flag overrides one (e.g. more --steps)
        path = out_dir / "last.npz"
        ckpt = load_checkpoint(path)
        if ckpt["model_type"] != GPT.__name__:
            raise CheckpointError(
                f"{str(path)!r} holds a {ckpt['model_type']} model ({_settings(ckpt)}), and this "
                "example trains a GPT; pass the --out-dir of a GPT run, or another --out-dir"
            )
        for key, config_cls in (("model_config", GPTConfig), ("train_config", TrainConfig)):
            unknown = sorted(set(ckpt[key]) - {f.name for f in fields(config_cls)})
            if unknown:
                raise CheckpointError(
                    f"{str(path)!r} has {key} fields this version does not know "
                    f"({', '.join(unknown)}): a newer tinygrad_edu wrote it; upgrade tinygrad_edu"
                )
        if args.steps is not None and args.steps < ckpt["step"]:
            raise UsageError(
                f"--steps ({args.steps}) is below the step the run in {str(out_dir)!r} reached "
                f"({ckpt['step']}); pass more --steps to continue it, or leave the flag out"
            )
        model_values.update(ckpt["model_config"])
        train_values.update(ckpt["train_config"])
    model_values.update(_given(args, GPTConfig))
    train_values.update(_given(args, TrainConfig))
    train_values.update(
        out_dir=str(out_dir), device=args.device, seed=args.seed, progress=not args.no_progress
    )
    _check_schedule(train_values)
    model_config = _build(GPTConfig, model_values)
    train_config = _build(TrainConfig, train_values)
    data.check_length(train_ids, model_config.block_size, "training split (first 90%)")
    data.check_length(val_ids, model_config.block_size, "validation split (last 10%)")

    tg.manual_seed(train_config.seed)  # the initial weights depend on the seed only
    model = GPT(model_config)
    try:  # fail before the first step, not at the first checkpoint
        check_out_dir(out_dir, space_needed(model))
    except SaveError as e:
        raise UsageError(f"--out-dir: {e}") from None
    if args.overwrite:
        for name in RUN_FILES:
            (out_dir / name).unlink(missing_ok=True)
    print(f"model: {model.num_parameters():,} parameters, {model_config}")
    result = train(model, train_ids, val_ids, train_config, tokenizer, resume=args.resume)
    if result.interrupted:
        return 128 + result.signal  # as a shell reports a process ended by that signal
    written = "checkpoints and loss.png" if train_config.plot else "checkpoints"
    print(f"best val loss {result.best_val_loss:.3f}; {written} in {out_dir}")
    prompt = "\n" if "\n" in tokenizer.stoi else tokenizer.chars[0]
    print("--- sample ---")
    print(_sample(model, tokenizer, prompt, args, train_config.device))
    return 0


def _settings(ckpt) -> str:
    return ", ".join(f"{k}={v}" for k, v in ckpt["model_config"].items())


def _check_schedule(values: dict) -> None:
    """The warm-up must end before the decay does; say which flag to change."""
    steps = values.get("steps", TrainConfig.steps)
    warmup = values.get("warmup_steps", TrainConfig.warmup_steps)
    decay = values.get("lr_decay_steps") or steps
    if warmup >= decay:
        which = (
            f"--lr-decay-steps ({decay})" if values.get("lr_decay_steps") else f"--steps ({steps})"
        )
        raise UsageError(
            f"--warmup-steps ({warmup}) must be smaller than {which}, or the learning rate never "
            f"leaves its warm-up; pass e.g. --warmup-steps {decay // 10}"
        )


def _sample(model, tokenizer, prompt: str, args, device) -> str:
    ids = tokenizer.encode(prompt)
    if not ids:
        raise UsageError("the prompt is empty; pass at least one character with --prompt")
    tg.manual_seed(args.seed)
    idx = tg.tensor([ids], dtype="int64", device=device)  # (1, T0)
    out = model.generate(idx, args.max_new_tokens, args.temperature, args.top_k)
    return tokenizer.decode(out[0])


def _load_best(out_dir: Path):
    """The model and tokenizer of OUT_DIR/best.npz (or last.npz), from a training checkpoint."""
    path = out_dir / "best.npz"
    if not path.is_file() and (out_dir / "last.npz").is_file():
        path = out_dir / "last.npz"
    ckpt = load_checkpoint(path)
    try:
        model = build_model(ckpt["model_type"], ckpt["model_config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has an unusable configuration ({e}); train again"
        ) from None
    restore_model(model, ckpt, path)
    return model, ckpt["tokenizer"]


def run_sample(args) -> int:
    device = backend.get_device(args.device)
    if args.checkpoint:  # any file with weights + config + tokenizer, e.g. from nanoGPT
        model, tokenizer = tg_io.load_model(args.checkpoint)
    else:
        model, tokenizer = _load_best(Path(args.out_dir))
    model.to(device)
    print(_sample(model, tokenizer, args.prompt, args, device))
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM outside the training loop (which handles it itself)."""


def _terminate(signum, frame):
    raise Terminated


def run_export(args) -> int:
    """The best model as weights + config + tokenizer in nanoGPT's names, for PyTorch."""
    out_dir = Path(args.out_dir)
    to = Path(args.to) if args.to else out_dir / "best.safetensors"
    if to.suffix not in (".safetensors", ".npz"):
        raise UsageError(f"--to {str(to)!r} must end in .safetensors or .npz")
    if args.to and (to.is_dir() or not to.parent.is_dir()):  # (the default's is OUT_DIR's run)
        raise UsageError(f"--to {str(to)!r}: pass a file path in an existing directory")
    if to.exists() and any(to.samefile(out_dir / n) for n in RUN_FILES if (out_dir / n).exists()):
        raise UsageError(f"--to {str(to)!r} would replace a file of the run; pass another name")
    model, tokenizer = _load_best(out_dir)
    names = "nanogpt" if isinstance(model, GPT) else "tinygrad_edu"
    try:
        tg_io.save_weights(to, model, tokenizer, names=names)
    except OSError as e:
        raise SaveError(
            f"cannot write {str(to)!r} ({e.strerror or e}); any previous file there is intact"
        ) from None
    print(f"wrote {to} (weights in {names}'s names, config and tokenizer in its metadata)")
    return 0


def main(argv=None) -> int:
    try:
        args = make_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
        return e.code
    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        backend.get_device(args.device)  # fail fast: no data loaded, no model built on a bad device
        if args.mode == "export":
            return run_export(args)
        return run_sample(args) if args.mode == "sample" else run_train(args)
    # (ImportError: an optional package, e.g. safetensors for .safetensors files)
    except (UsageError, data.DataError, CheckpointError, backend.DeviceError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (SaveError, NonFiniteLossError) as e:  # the run itself failed: nothing is lost
        print(f"error: {e}", file=sys.stderr)
        return 1
    except MemoryError as e:  # a model, batch or vocabulary too big for this machine
        print(
            f"error: out of memory ({e}); pass a smaller --n-embd, --n-layer, --batch-size or "
            "--block-size (a huge vocabulary: --data with fewer distinct characters); the "
            "checkpoints written so far are intact",
            file=sys.stderr,
        )
        return 1
    except BrokenPipeError:  # the reader of the output went away (... | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no 2nd error at exit
        return 1
    except KeyboardInterrupt as e:  # outside the training loop, which saves and returns
        print("terminated" if isinstance(e, Terminated) else "interrupted", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())

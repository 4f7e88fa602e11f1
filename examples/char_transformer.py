"""Train a character-level Transformer on tiny Shakespeare, then sample from it.

    python examples/char_transformer.py               # train: the quality recipe, 2,000 steps
    python examples/char_transformer.py --resume      # continue an interrupted run exactly
    python examples/char_transformer.py sample --prompt "ROMEO:" --temperature 0.8 --top-k 40
    python examples/char_transformer.py export        # best.npz -> best.safetensors, for PyTorch

Training prints a progress bar (loss, ms/step, tokens/s), ``step N: train loss ..., val loss ...``
every ``--eval-interval`` steps and at the end, and a generated sample. It writes ``best.npz``
(best validation loss; what ``sample`` loads), ``last.npz`` (what ``--resume`` continues) and
``loss.png`` under ``--out-dir``. Ctrl-C saves ``last.npz`` and exits. ``export`` writes the best
model's weights, configuration and tokenizer as ``best.safetensors`` (or ``--to FILE``) in nanoGPT's
names, which PyTorch reads without this package (chapter 16); ``sample --checkpoint FILE`` samples
from any such weights-only file (``.npz`` or ``.safetensors``) or training checkpoint.

Expected result of the default run (seed 1337, measured on a 2-core CPU): ``step 2000: train loss
1.650, val loss 1.820``; PyTorch eager running the same recipe and seed gives val loss 1.817. The
defaults are nanoGPT's CPU recipe (4 layers, 4 heads, width 128, block 64, batch 12, 2,000 steps)
except the peak learning rate, 2e-3 instead of 1e-3 (which gives 1.905 here, 1.897 in PyTorch).

Every field of the model's configuration (``GPTConfig``) and of the training configuration
(``TrainConfig``) is a flag: ``--n-layer 6``, ``--learning-rate 3e-4``, ``--eval-iters 50`` ...
(``python examples/char_transformer.py --help`` lists them). The corpus is found as
``tinygrad_edu.data.load_corpus`` describes: ``--data PATH``, ``$TINYGRAD_EDU_DATA``, the cache,
one download, or offline the corpus bundled with the package.

Bad input (a missing or empty data file, a corpus shorter than a block, an unreadable checkpoint or
one from another configuration, a prompt character the model has never seen) ends with a one-line
``error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import os

# One BLAS thread unless the user says otherwise (this must happen before NumPy is imported). The
# matrices of this model are small, and OpenBLAS's worker threads spin while they wait: on a 2-core
# machine with one other busy process, a training step took 521 ms with 2 threads and 83 ms with 1.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from dataclasses import fields  # noqa: E402
from pathlib import Path  # noqa: E402

import tinygrad_edu as tg  # noqa: E402
from tinygrad_edu import backend, data  # noqa: E402
from tinygrad_edu import io as tg_io  # noqa: E402
from tinygrad_edu.io import CheckpointError  # noqa: E402
from tinygrad_edu.models import GPT, GPTConfig, build_model  # noqa: E402
from tinygrad_edu.train import TrainConfig, load_checkpoint, restore_model, train  # noqa: E402

# Config fields that are not flags of their own: set from the data, or by a dedicated flag.
NOT_FLAGS = {"vocab_size", "out_dir", "device", "seed", "progress"}


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_config_flags(group, config_cls) -> None:
    """One flag per dataclass field, typed like its default; default None means 'not given'."""
    for f in fields(config_cls):
        if f.name in NOT_FLAGS:
            continue
        default = f.default
        if isinstance(default, bool):
            group.add_argument(
                _flag(f.name),
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"default: {default}",
            )
        else:
            kind = float if isinstance(default, float) else int
            group.add_argument(_flag(f.name), type=kind, default=None, help=f"default: {default}")


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Train a character-level Transformer (default) or sample from a checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("mode", nargs="?", choices=("train", "sample", "export"), default="train")
    p.add_argument("--out-dir", default="out-char-transformer", help="checkpoints and loss.png")
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default=None,
        help="default: $TINYGRAD_EDU_DEVICE or cpu",
    )
    p.add_argument("--seed", type=int, default=1337, help="seeds weights, batches and sampling")
    p.add_argument("--data", default=None, help="a UTF-8 text file to train on")
    p.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.npz")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_config_flags(p.add_argument_group("model (GPTConfig)"), GPTConfig)
    _add_config_flags(p.add_argument_group("training (TrainConfig)"), TrainConfig)
    s = p.add_argument_group("sampling")
    s.add_argument("--prompt", default="\n", help="text to continue (sample mode)")
    s.add_argument("--max-new-tokens", type=int, default=500)
    s.add_argument("--temperature", type=float, default=0.8)
    s.add_argument("--top-k", type=int, default=None)
    s.add_argument("--checkpoint", default=None, help="sample from this file (default: best.npz)")
    p.add_argument("--to", default=None, help="export: the file to write (.safetensors or .npz)")
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


def run_train(args) -> None:
    text = data.load_corpus(args.data)
    tokenizer = data.CharTokenizer(text)
    train_ids, val_ids = data.train_val_split(tokenizer.encode(text))
    out_dir = Path(args.out_dir)

    model_values = {"vocab_size": tokenizer.vocab_size}
    train_values = {}
    if args.resume:  # the run's own settings, unless a flag overrides one (e.g. more --steps)
        ckpt = load_checkpoint(out_dir / "last.npz")
        model_values.update(ckpt["model_config"])
        train_values.update(ckpt["train_config"])
    model_values.update(_given(args, GPTConfig))
    train_values.update(_given(args, TrainConfig))
    train_values.update(
        out_dir=str(out_dir), device=args.device, seed=args.seed, progress=not args.no_progress
    )
    model_config = _build(GPTConfig, model_values)
    train_config = _build(TrainConfig, train_values)
    data.check_length(train_ids, model_config.block_size, "training split (first 90%)")
    data.check_length(val_ids, model_config.block_size, "validation split (last 10%)")

    tg.manual_seed(train_config.seed)  # the initial weights depend on the seed only
    model = GPT(model_config)
    print(f"model: {model.num_parameters():,} parameters, {model_config}")
    result = train(model, train_ids, val_ids, train_config, tokenizer, resume=args.resume)
    if result.interrupted:
        return
    print(f"best val loss {result.best_val_loss:.3f}; checkpoints and loss.png in {out_dir}")
    prompt = "\n" if "\n" in tokenizer.stoi else tokenizer.chars[0]
    print("--- sample ---")
    print(_sample(model, tokenizer, prompt, args, train_config.device))


def _sample(model, tokenizer, prompt: str, args, device) -> str:
    ids = tokenizer.encode(prompt)
    if not ids:
        raise UsageError("the prompt is empty; pass at least one character with --prompt")
    if args.temperature <= 0:
        raise UsageError(
            f"--temperature must be > 0, got {args.temperature}; use --top-k 1 for greedy decoding"
        )
    if args.top_k is not None and args.top_k < 1:
        raise UsageError(f"--top-k must be >= 1, got {args.top_k}")
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


def run_sample(args) -> None:
    device = backend.get_device(args.device)
    if args.checkpoint:  # any file with weights + config + tokenizer, e.g. from nanoGPT
        model, tokenizer = tg_io.load_model(args.checkpoint)
    else:
        model, tokenizer = _load_best(Path(args.out_dir))
    model.to(device)
    print(_sample(model, tokenizer, args.prompt, args, device))


def run_export(args) -> None:
    """The best model as weights + config + tokenizer in nanoGPT's names, for PyTorch."""
    model, tokenizer = _load_best(Path(args.out_dir))
    to = Path(args.to) if args.to else Path(args.out_dir) / "best.safetensors"
    names = "nanogpt" if isinstance(model, GPT) else "tinygrad_edu"
    tg_io.save_weights(to, model, tokenizer, names=names)
    print(f"wrote {to} (weights in {names}'s names, config and tokenizer in its metadata)")


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    try:
        backend.get_device(args.device)  # fail fast: no data loaded, no model built on a bad device
        if args.mode == "sample":
            run_sample(args)
        elif args.mode == "export":
            run_export(args)
        else:
            run_train(args)
    except (UsageError, data.DataError, CheckpointError, backend.DeviceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside the training loop (which handles its own)
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

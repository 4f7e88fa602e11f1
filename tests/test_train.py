"""Tests of tinygrad_edu.train: schedule, evaluation, checkpoints, exact resume, Ctrl-C."""

import math
import os
import re
import signal

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import backend, data
from tinygrad_edu import train as train_mod
from tinygrad_edu.io import CheckpointError
from tinygrad_edu.models import GPT, GPTConfig
from tinygrad_edu.train import (
    TrainConfig,
    estimate_loss,
    load_checkpoint,
    lr_schedule,
    restore_model,
)

pytestmark = pytest.mark.ch11

TEXT = (
    "Gradients flow backwards through the graph, one node at a time, and every parameter "
    "receives the sum of the paths that reach it. "
) * 6


@pytest.fixture
def corpus():
    tok = data.CharTokenizer(TEXT)
    train_ids, val_ids = data.train_val_split(tok.encode(TEXT))
    return tok, train_ids, val_ids


def make_model(tok, seed=0, **kw):
    tg.manual_seed(seed)
    cfg = dict(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=2, n_embd=16)
    return GPT(GPTConfig(**{**cfg, **kw}))


def make_config(tmp_path, **kw):
    base = dict(
        steps=8,
        batch_size=4,
        eval_interval=4,
        eval_iters=2,
        warmup_steps=2,
        out_dir=str(tmp_path / "out"),
        progress=False,
        plot=False,
        learning_rate=3e-3,
    )
    return TrainConfig(**{**base, **kw})


def run(tok, train_ids, val_ids, config, resume=False, callback=None, model=None, **model_kw):
    model = model or make_model(tok, **model_kw)
    lines = []
    result = train_mod.train(
        model, train_ids, val_ids, config, tok, resume=resume, callback=callback, log=lines.append
    )
    return model, result, lines


# ---- schedule and config -----------------------------------------------------------------------


def _rates(config, steps, start=0):
    """The rates ``lr_schedule`` gives updates ``start .. steps - 1``, stepped as the loop does."""
    opt = tg.optim.AdamW([tg.zeros(1, requires_grad=True)], lr=0.5)  # lr: replaced by the peak
    schedule = lr_schedule(opt, config, start)
    rates = []
    for _ in range(start, steps):
        rates.append(opt.param_groups[0]["lr"])
        schedule.step()
    return rates


def _warmup_cosine(step, config):
    """The schedule written out: linear warm-up, cosine decay, then min_lr (the formula the loop
    used before it took ``optim.WarmupCosineLR``)."""
    peak, warmup = config.learning_rate, config.warmup_steps
    decay = config.lr_decay_steps or config.steps
    if step < warmup:
        return peak * (step + 1) / (warmup + 1)
    if step > decay:
        return config.min_lr
    r = (step - warmup) / (decay - warmup)
    return config.min_lr + (peak - config.min_lr) * 0.5 * (1.0 + math.cos(math.pi * r))


def test_lr_schedule_warmup_then_cosine():
    c = TrainConfig(learning_rate=1e-3)  # nanoGPT: 1e-3, warm-up 100, cosine to 1e-4 at 2,000
    lrs = _rates(c, 5001)
    assert lrs[0] == pytest.approx(1e-3 / 101)
    assert np.all(np.diff(lrs[:100]) > 0)  # warm-up rises
    assert lrs[100] == pytest.approx(1e-3)
    assert np.all(np.diff(lrs[100:]) <= 0)  # cosine falls
    assert lrs[1050] == pytest.approx(5.5e-4)
    assert lrs[2000] == pytest.approx(1e-4) and lrs[5000] == pytest.approx(1e-4)
    assert lrs == [_warmup_cosine(s, c) for s in range(5001)]  # the same float at every step
    assert _rates(c, 5001, start=1234) == lrs[1234:]  # started late (resuming): the same rates
    assert _rates(TrainConfig(), 101)[100] == pytest.approx(2e-3)  # the default peak


def test_the_loop_sets_the_scheduled_rate_at_every_update_also_after_resume(corpus, tmp_path):
    tok, train_ids, val_ids = corpus
    cfg = make_config(tmp_path, lr_decay_steps=6, min_lr=1e-4)  # steps 7 and 8 run at min_lr
    expected = [_warmup_cosine(s, cfg) for s in range(cfg.steps)]

    def recording_model(rates, seed=0):
        model = make_model(tok, seed)
        configure = model.configure_optimizers

        def configure_and_record(*args, **kw):
            opt = configure(*args, **kw)
            update = opt.step

            def step():
                rates.append([group["lr"] for group in opt.param_groups])
                update()

            opt.step = step
            return opt

        model.configure_optimizers = configure_and_record
        return model

    full, part, rest = [], [], []
    run(tok, train_ids, val_ids, cfg, model=recording_model(full))
    assert full == [[lr, lr] for lr in expected]  # both groups (decay, no decay), exactly
    cfg_b = make_config(tmp_path / "b", lr_decay_steps=6, min_lr=1e-4)
    run(tok, train_ids, val_ids, cfg_b, callback=_stop_at(3), model=recording_model(part))
    run(tok, train_ids, val_ids, cfg_b, resume=True, model=recording_model(rest, seed=5))
    assert part + rest == full


def test_train_config_errors():
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="need 0 <= warmup_steps < lr_decay_steps"):
        TrainConfig(steps=10, warmup_steps=10)


# ---- evaluation ------------------------------------------------------------------------------


def test_estimate_loss_is_seeded_uses_eval_mode_and_leaves_rng_alone(corpus):
    tok, train_ids, val_ids = corpus
    model = make_model(tok, dropout=0.5)
    tg.manual_seed(42)
    before = backend.rng().integers(0, 10**9, size=3)
    tg.manual_seed(42)
    a = estimate_loss(model, val_ids, 4, 8, eval_iters=5, seed=7)
    after = backend.rng().integers(0, 10**9, size=3)
    np.testing.assert_array_equal(before, after)  # evaluation drew from its own generator
    b = estimate_loss(model, val_ids, 4, 8, eval_iters=5, seed=7)
    assert a == b  # same seed, same batches; no dropout in eval mode
    assert model.training
    # the chunked mean equals the mean over batches taken one by one
    tg.manual_seed(7)
    model.eval()
    with tg.no_grad():
        one_batch = [model(*data.get_batch(val_ids, 20, 8))[1].item()]
    model.train()
    c = estimate_loss(model, val_ids, 20, 8, eval_iters=1, seed=7)
    assert c == pytest.approx(one_batch[0], rel=1e-6)


# ---- a run: logs, files, checkpoint round trip -------------------------------------------------


def test_run_logs_val_loss_writes_checkpoints_and_plot(corpus, tmp_path):
    tok, train_ids, val_ids = corpus
    model, result, lines = run(tok, train_ids, val_ids, make_config(tmp_path, plot=True))
    evals = [s for s in lines if "val loss" in s]
    assert [int(re.match(r"step (\d+):", s).group(1)) for s in evals] == [4, 8]
    assert all(
        re.fullmatch(r"step \d+: train loss \d+\.\d{3}, val loss \d+\.\d{3}", s) for s in evals
    )
    assert result.step == 8 and not result.interrupted
    assert len(result.history["loss"]) == 8
    assert result.history["loss"][-1] < result.history["loss"][0]
    out = tmp_path / "out"
    assert (out / "best.npz").is_file() and (out / "last.npz").is_file()
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left

    ckpt = load_checkpoint(out / "last.npz")
    assert ckpt["step"] == 8 and ckpt["model_type"] == "GPT"
    assert ckpt["tokenizer"].chars == tok.chars
    assert ckpt["model_config"]["n_embd"] == 16 and ckpt["train_config"]["steps"] == 8
    assert ckpt["history"]["val_loss"] == pytest.approx(result.history["val_loss"])
    fresh = make_model(tok, seed=99)
    restore_model(fresh, ckpt, "last.npz")
    x, _ = data.get_batch(val_ids, 2, 8)
    np.testing.assert_array_equal(fresh(x)[0].numpy(), model(x)[0].numpy())
    opt = fresh.configure_optimizers(0.1, 1e-3)
    opt.load_state_dict(ckpt["optimizer"])
    assert opt.state_dict()["state"][0]["step"] == 8


def test_restore_from_other_config_or_vocab_is_a_clear_error(corpus, tmp_path):
    tok, train_ids, val_ids = corpus
    run(tok, train_ids, val_ids, make_config(tmp_path, steps=4))
    ckpt = load_checkpoint(tmp_path / "out" / "last.npz")
    with pytest.raises(
        CheckpointError, match=r"different model configuration \(n_embd=16, not 32\)"
    ):
        restore_model(make_model(tok, n_embd=32), ckpt, "last.npz")
    other = data.CharTokenizer(TEXT + "XYZ")
    with pytest.raises(CheckpointError, match="different vocabulary"):
        train_mod.train(
            make_model(tok),
            train_ids,
            val_ids,
            make_config(tmp_path, steps=6),
            other,
            resume=True,
            log=None,
        )


def test_unreadable_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist; train first"):
        load_checkpoint(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="bad.npz' is not a checkpoint: tg.save writes"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.npz"
    tg.save({"weights": np.ones(3)}, foreign)
    with pytest.raises(CheckpointError, match="damaged or was not written by this trainer"):
        load_checkpoint(foreign)


EDITS = {
    "step": "abc",
    "best_val_loss": "low",
    "rng_state": {"bit_generator": "MT19937"},
    "history": {"step": [1], "loss": []},
    "optimizer": {"state": {}},
    "train_config": None,
}


@pytest.mark.parametrize("key", list(EDITS))
def test_an_edited_checkpoint_is_refused_before_anything_is_restored(corpus, tmp_path, key):
    """Each of these once failed halfway through resuming, with a traceback."""
    tok, train_ids, val_ids = corpus
    config = make_config(tmp_path, steps=4)
    run(tok, train_ids, val_ids, config)
    last = tmp_path / "out" / "last.npz"
    ckpt = tg.load(last)
    ckpt[key] = EDITS[key]
    tg.save(ckpt, last)
    with pytest.raises(CheckpointError, match=r"cannot use checkpoint .*last.npz' \("):
        load_checkpoint(last)
    with pytest.raises(CheckpointError, match=r"train a new run in another --out-dir"):
        run(tok, train_ids, val_ids, make_config(tmp_path, steps=8), resume=True)


# ---- exact resume and Ctrl-C -------------------------------------------------------------------


def _stop_at(k):
    def callback(step, loss):
        if step == k:
            raise KeyboardInterrupt

    return callback


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_resume_after_interrupt_gives_the_same_losses(corpus, tmp_path, dropout):
    tok, train_ids, val_ids = corpus
    _, full, _ = run(tok, train_ids, val_ids, make_config(tmp_path / "a"), dropout=dropout)

    cfg = make_config(tmp_path / "b")
    _, part, lines = run(tok, train_ids, val_ids, cfg, callback=_stop_at(3), dropout=dropout)
    assert part.interrupted and part.step == 3
    assert any("interrupted at step 3" in s and "--resume" in s for s in lines)
    # resume into a model built with another seed: everything must come from the checkpoint
    _, rest, lines = run(tok, train_ids, val_ids, cfg, resume=True, seed=123, dropout=dropout)
    assert lines[0].startswith("resumed from") and "step 3" in lines[0]
    assert rest.step == 8 and not rest.interrupted
    assert rest.history["loss"] == full.history["loss"]  # bit for bit, steps 1..8
    assert rest.history["val_loss"] == full.history["val_loss"]


@pytest.mark.parametrize("where", ["batch", "evaluation"])
def test_interrupt_in_the_middle_of_a_step_or_evaluation(corpus, tmp_path, monkeypatch, where):
    tok, train_ids, val_ids = corpus
    _, full, _ = run(tok, train_ids, val_ids, make_config(tmp_path / "a"))

    calls = {"train": 0, "eval": 0}
    real_get_batch = train_mod.get_batch

    def get_batch_then_interrupt(split, batch_size, *args, **kw):
        out = real_get_batch(split, batch_size, *args, **kw)  # the generator has moved ...
        kind = "train" if batch_size == 4 else "eval"  # evaluation draws 2 batches at once
        calls[kind] += 1
        if (where, kind, calls[kind]) in {("batch", "train", 6), ("evaluation", "eval", 1)}:
            raise KeyboardInterrupt  # ... then Ctrl-C arrives before the step is done
        return out

    monkeypatch.setattr(train_mod, "get_batch", get_batch_then_interrupt)
    cfg = make_config(tmp_path / "b")
    _, part, _ = run(tok, train_ids, val_ids, cfg)
    assert part.interrupted and part.step == (5 if where == "batch" else 4)
    monkeypatch.setattr(train_mod, "get_batch", real_get_batch)
    _, rest, _ = run(tok, train_ids, val_ids, cfg, resume=True)
    assert rest.history["loss"] == full.history["loss"]


def test_interrupt_during_the_update_keeps_the_previous_checkpoint(corpus, tmp_path, monkeypatch):
    tok, train_ids, val_ids = corpus
    cfg = make_config(tmp_path, steps=8, eval_interval=2)
    model = make_model(tok)
    real = model.configure_optimizers

    def configure(*args):
        opt = real(*args)
        step = opt.step

        def step_then_interrupt(*a):
            if opt.state and next(iter(opt.state.values()))["step"] == 3:
                raise KeyboardInterrupt
            return step(*a)

        opt.step = step_then_interrupt
        return opt

    model.configure_optimizers = configure
    _, result, lines = run(tok, train_ids, val_ids, cfg, model=model)
    assert result.interrupted and result.step == 3
    assert any("half updated" in s for s in lines)
    assert load_checkpoint(tmp_path / "out" / "last.npz")["step"] == 2  # the last good one


def test_sigint_stops_after_the_step_and_saves(corpus, tmp_path, python_sigint):
    tok, train_ids, val_ids = corpus

    def send_sigint(step, loss):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does

    cfg = make_config(tmp_path)
    _, result, _ = run(tok, train_ids, val_ids, cfg, callback=send_sigint)
    assert result.interrupted and result.step == 2
    assert load_checkpoint(tmp_path / "out" / "last.npz")["step"] == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_the_lstm_model_trains_and_reloads_through_the_same_loop(corpus, tmp_path):
    from tinygrad_edu.models import CharLSTM, CharLSTMConfig, build_model

    tok, train_ids, val_ids = corpus
    tg.manual_seed(0)
    model = CharLSTM(CharLSTMConfig(vocab_size=tok.vocab_size, block_size=8, hidden_size=16))
    cfg = make_config(tmp_path, steps=4, eval_interval=4)
    _, result, lines = run(tok, train_ids, val_ids, cfg, model=model)
    assert result.step == 4 and any("val loss" in s for s in lines)
    ckpt = load_checkpoint(tmp_path / "out" / "best.npz")
    again = build_model(ckpt["model_type"], ckpt["model_config"])
    restore_model(again, ckpt, "best.npz")
    x, _ = data.get_batch(val_ids, 2, 8)
    np.testing.assert_array_equal(again(x)[0].numpy(), model(x)[0].numpy())

"""Tests of tinygrad_edu.models: the character-level GPT and the LSTM language model."""

import math

import numpy as np
import pytest
from helpers import train_losses

import tinygrad_edu as tg
from tinygrad_edu import nn
from tinygrad_edu.models import GPT, MODELS, CharLSTM, CharLSTMConfig, GPTConfig, build_model
from tinygrad_edu.models.char_transformer import sample_next

pytestmark = pytest.mark.ch11

TINY = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)


def tiny_gpt(seed=0, **kw):
    tg.manual_seed(seed)
    return GPT(GPTConfig(**{**TINY, **kw}))


def ids(*shape, high=11, seed=0):
    return tg.tensor(np.random.default_rng([seed, *shape]).integers(0, high, size=shape))


# ---- structure and initialisation ------------------------------------------------------------


def test_forward_shapes_and_initial_loss():
    model = tiny_gpt()
    x, y = ids(3, 8), ids(3, 8, seed=1)
    logits, loss = model(x, targets=y)
    assert logits.shape == (3, 8, 11) and logits.dtype == "float32"
    assert loss.shape == ()
    # small initial weights: predictions near uniform, loss near log(V)
    assert abs(loss.item() - math.log(11)) < 0.3
    logits2, none = model(x[:, :5])
    assert none is None and logits2.shape == (3, 5, 11)


def test_output_head_is_tied_to_token_embedding():
    model = tiny_gpt()
    assert model.lm_head.weight is model.wte.weight
    names = [n for n, _ in model.named_parameters()]
    assert "wte.weight" in names and "lm_head.weight" not in names
    assert "lm_head.weight" in model.state_dict()  # both names load, as in PyTorch
    _, loss = model(ids(2, 8), ids(2, 8, seed=1))
    loss.backward()
    assert model.wte.weight.grad is not None


def test_init_std_and_residual_scaling():
    tg.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=64, block_size=64, n_layer=2, n_head=2, n_embd=64))
    named = dict(model.named_parameters())
    resid = 0.02 / math.sqrt(2 * 2)
    for name in ("h.0.attn.out_proj.weight", "h.1.mlp.2.weight"):
        assert abs(named[name].numpy().std() / resid - 1) < 0.1, name
    for name in ("wte.weight", "wpe.weight", "h.0.attn.q_proj.weight", "h.1.mlp.0.weight"):
        assert abs(named[name].numpy().std() / 0.02 - 1) < 0.1, name
    assert np.all(named["h.0.ln1.weight"].numpy() == 1.0)
    assert not any(n.endswith("bias") for n in named)  # bias=False: none anywhere


def test_bias_true_starts_at_zero():
    model = tiny_gpt(bias=True)
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    assert len(biases) > 0 and all(np.all(p.numpy() == 0.0) for p in biases)


def test_weight_decay_groups_follow_nanogpt():
    model = tiny_gpt(bias=True)
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.99))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])
    assert any(p is model.wte.weight for p in decay["params"])  # embeddings decay, as nanoGPT
    assert len(decay["params"]) + len(no_decay["params"]) == len(model.parameters())
    assert decay["betas"] == (0.9, 0.99)


def test_config_errors():
    with pytest.raises(ValueError, match=r"n_embd \(30\) must be divisible by n_head \(4\)"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="n_layer must be a positive integer, got 0"):
        GPTConfig(n_layer=0)
    with pytest.raises(ValueError, match="GPTConfig: bias must be True or False, got 'false'"):
        GPTConfig(bias="false")  # e.g. a hand-edited config: a truthy string
    model = tiny_gpt()
    with pytest.raises(ValueError, match="length 9 is longer than block_size 8; crop it"):
        model(ids(1, 9))


def test_attention_is_causal():
    model = tiny_gpt()
    x = ids(1, 8).numpy()
    x2 = x.copy()
    x2[0, 5] = (x2[0, 5] + 1) % 11
    a, _ = model(tg.tensor(x))
    b, _ = model(tg.tensor(x2))
    a, b = a.numpy(), b.numpy()
    np.testing.assert_array_equal(a[:, :5], b[:, :5])  # positions before 5 cannot see it
    assert not np.allclose(a[:, 5:], b[:, 5:])


def test_overfits_one_batch():
    model = tiny_gpt(n_layer=1, n_embd=32)
    opt = model.configure_optimizers(weight_decay=0.0, learning_rate=1e-2)
    x, y = ids(4, 8), ids(4, 8, seed=1)
    losses = train_losses(model, opt, 60, x, y)
    assert losses[0] > 2.0 and losses[-1] < 0.05, losses[::10]


# ---- sampling ----------------------------------------------------------------------------------


def test_generate_is_deterministic_for_a_seed():
    model = tiny_gpt()
    start = ids(2, 3)
    tg.manual_seed(5)
    a = model.generate(start, max_new_tokens=12).numpy()
    tg.manual_seed(5)
    b = model.generate(start, max_new_tokens=12).numpy()
    tg.manual_seed(6)
    c = model.generate(start, max_new_tokens=12).numpy()
    assert a.shape == (2, 15)
    np.testing.assert_array_equal(a[:, :3], start.numpy())  # the prompt is kept
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert model.training  # generate restores the training mode


def test_generate_crops_context_to_block_size():
    model = tiny_gpt()
    out = model.generate(ids(1, 8), max_new_tokens=10)  # 18 > block_size 8: must crop
    assert out.shape == (1, 18) and out.numpy().max() < 11


def test_top_k_1_is_greedy_argmax():
    model = tiny_gpt()
    idx = ids(2, 2)
    out = model.generate(idx, max_new_tokens=6, top_k=1).numpy()
    # the same decoding done by hand: append the argmax of the last position's logits
    seq = idx.numpy()
    for _ in range(6):
        logits, _ = model(tg.tensor(seq))
        nxt = logits.numpy()[:, -1, :].argmax(axis=-1)[:, None]
        seq = np.concatenate([seq, nxt], axis=1)
    np.testing.assert_array_equal(out, seq)


def test_sample_next_matches_softmax_and_respects_top_k_and_temperature():
    tg.manual_seed(0)
    row = np.array([1.0, 0.0, -1.0, 2.0], dtype=np.float32)
    logits = tg.tensor(np.tile(row, (20000, 1)))

    def freq(**kw):
        s = sample_next(logits, **kw).numpy().ravel()
        assert s.min() >= 0 and s.max() < 4
        return np.bincount(s, minlength=4) / s.size

    p = np.exp(row) / np.exp(row).sum()
    np.testing.assert_allclose(freq(), p, atol=0.015)
    p_cold = np.exp(row / 0.5) / np.exp(row / 0.5).sum()
    np.testing.assert_allclose(freq(temperature=0.5), p_cold, atol=0.015)
    f2 = freq(top_k=2)  # only the two largest scores (ids 3 and 0) survive
    assert f2[1] == 0 and f2[2] == 0
    np.testing.assert_allclose(f2[[0, 3]], p[[0, 3]] / p[[0, 3]].sum(), atol=0.015)
    assert freq(top_k=1)[3] == 1.0


def test_sample_next_errors():
    logits = tg.zeros(1, 4)
    with pytest.raises(ValueError, match="temperature must be > 0, got 0.0; use top_k=1"):
        sample_next(logits, temperature=0.0)
    with pytest.raises(ValueError, match="top_k must be >= 1, got 0"):
        sample_next(logits, top_k=0)


# ---- the LSTM language model and the registry --------------------------------------------------


def test_char_lstm_forward_overfit_and_generate():
    tg.manual_seed(0)
    model = CharLSTM(CharLSTMConfig(vocab_size=11, block_size=8, n_embd=8, hidden_size=32))
    x, y = ids(4, 8), ids(4, 8, seed=1)
    logits, loss = model(x, y)
    assert logits.shape == (4, 8, 11)
    assert isinstance(model.lstm, nn.LSTM)
    opt = model.configure_optimizers(weight_decay=0.0, learning_rate=5e-2)
    first = loss.item()
    for _ in range(30):
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 2.0 and loss.item() < 0.2
    tg.manual_seed(3)
    a = model.generate(x[:, :2], max_new_tokens=10).numpy()
    tg.manual_seed(3)
    b = model.generate(x[:, :2], max_new_tokens=10).numpy()
    assert a.shape == (4, 12)
    np.testing.assert_array_equal(a, b)


def test_build_model_from_name_and_config():
    assert set(MODELS) == {"GPT", "CharLSTM"}
    model = build_model("GPT", dict(TINY))
    assert isinstance(model, GPT) and model.config == GPTConfig(**TINY)
    with pytest.raises(ValueError, match="unknown model type 'Nope'; expected one of"):
        build_model("Nope", {})


@pytest.mark.ch14
def test_classifier_errors_name_the_argument():
    from tinygrad_edu.models.char_transformer import GPTClassifier

    body = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4))
    with pytest.raises(ValueError, match=r"GPTClassifier: pool must be one of .*'max'"):
        GPTClassifier(body, num_classes=2, pool="max")
    with pytest.raises(ValueError, match="GPTClassifier: num_classes must be a positive integer"):
        GPTClassifier(body, num_classes=0)
    with pytest.raises(ValueError, match="longer than block_size 4"):
        GPTClassifier(body, num_classes=2)(tg.randint(0, 5, (1, 6)))

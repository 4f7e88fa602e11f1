"""Tests of chapter 15: special tokens, pad_batch, Embedding's padding_idx and models/bert.py.

Gradient checks are float64 with a random upstream gradient (``tinygrad_edu.testing``); the
masking statistics are checked against the binomial standard deviation of the counts.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import train_losses

import tinygrad_edu as tg
import tinygrad_edu.functional as F
from tinygrad_edu import data, io, nn, optim
from tinygrad_edu.data import SPECIAL_TOKENS, CharTokenizer, DataError, pad_batch
from tinygrad_edu.models.bert import (
    BERT,
    IGNORE_INDEX,
    BERTClassifier,
    BERTConfig,
    mask_tokens,
    mlm_loss,
)
from tinygrad_edu.testing import analytic_grad, gradcheck, gradcheck_module, numerical_grad

pytestmark = pytest.mark.ch15

# a vocabulary of 8 characters (ids 0..7) and the four special tokens (8..11)
TOK = CharTokenizer("abcdefgh", special_tokens=SPECIAL_TOKENS)
PAD, CLS, SEP, MASK = TOK.pad_id, TOK.cls_id, TOK.sep_id, TOK.mask_id
SPECIALS = sorted(TOK.special_ids.values())


def tiny_config(**kw):
    base = dict(vocab_size=TOK.vocab_size, pad_id=PAD, block_size=8, n_layer=1, n_head=2, n_embd=8)
    return BERTConfig(**{**base, **kw})


def tiny_bert(seed=0, dtype=None, **kw):
    tg.manual_seed(seed)
    model = BERT(tiny_config(**kw))
    return model.astype(dtype) if dtype else model


def padded_batch(lengths=(6, 3, 4), seed=0, max_len=None):
    """[CLS] chars [SEP] sequences with the given numbers of characters, padded."""
    rng = np.random.default_rng(seed)
    seqs = [[CLS, *rng.integers(0, 8, n).tolist(), SEP] for n in lengths]
    return pad_batch(seqs, PAD, max_len=max_len)


# ---- tokenizer ---------------------------------------------------------------------------------


def test_special_tokens_come_after_the_characters():
    text = "to be, or not to be"
    plain, tok = CharTokenizer(text), CharTokenizer(text, special_tokens=SPECIAL_TOKENS)
    assert tok.chars == plain.chars and tok.encode(text) == plain.encode(text)
    n = plain.vocab_size
    assert tok.vocab_size == n + 4
    assert (tok.pad_id, tok.cls_id, tok.sep_id, tok.mask_id) == (n, n + 1, n + 2, n + 3)
    assert tok.decode([tok.cls_id, *tok.encode("to"), tok.sep_id, tok.pad_id]) == (
        "[CLS]to[SEP][PAD]"
    )
    # "[MASK]" in the text is six characters, never the special token
    chars = CharTokenizer("[MASK]", special_tokens=SPECIAL_TOKENS)
    assert chars.encode("[MASK]") == [4, 2, 0, 3, 1, 5] and chars.mask_id == 9


def test_tokenizer_with_special_tokens_round_trips_through_a_checkpoint(tmp_path):
    tok = CharTokenizer("hello world", special_tokens=SPECIAL_TOKENS)
    io.save({"tokenizer": tok.to_dict()}, tmp_path / "tok.npz")
    again = CharTokenizer.from_dict(io.load(tmp_path / "tok.npz")["tokenizer"])
    assert again.chars == tok.chars and again.special_tokens == list(SPECIAL_TOKENS)
    assert again.special_ids == tok.special_ids
    # a checkpoint of the GPT's tokenizer (no special tokens) reads as before
    plain = CharTokenizer("hello world")
    assert plain.to_dict() == {"chars": " dehlorw"}
    assert CharTokenizer.from_dict(plain.to_dict()).special_tokens == []


def test_tokenizer_special_token_errors():
    with pytest.raises(DataError, match=r"special token 'x' must be a string of 2 or more"):
        CharTokenizer("abc", special_tokens=["x"])
    with pytest.raises(DataError, match=r"special tokens must be distinct"):
        CharTokenizer("abc", special_tokens=["[PAD]", "[PAD]"])
    with pytest.raises(DataError, match=r"no special token '\[MASK\]'.*special_tokens="):
        _ = CharTokenizer("abc").mask_id


# ---- pad_batch ---------------------------------------------------------------------------------


def test_pad_batch_pads_on_the_right_and_marks_the_padding():
    ids, pad = pad_batch([[1, 2, 3], np.array([4]), [5, 6]], padding_value=9)
    assert ids.dtype == "int64" and pad.dtype == "bool"
    assert ids.tolist() == [[1, 2, 3], [4, 9, 9], [5, 6, 9]]
    assert pad.tolist() == [[False] * 3, [False, True, True], [False, False, True]]
    ids, pad = pad_batch([[1, 2]], padding_value=0, max_len=4)
    assert ids.tolist() == [[1, 2, 0, 0]] and pad.tolist() == [[False, False, True, True]]


@pytest.mark.parametrize(
    "seqs, kw, match",
    [
        ([], {}, r"pad_batch: got no sequences"),
        ([[1, 2], []], {}, r"pad_batch: sequence 1 has shape \(0,\).*non-empty 1-D"),
        ([[[1, 2]]], {}, r"pad_batch: sequence 0 has shape \(1, 2\)"),
        ([[1.5, 2.0]], {}, r"pad_batch: sequence 0 .* dtype float64; expected .* integer ids"),
        ([[1, 2, 3], [1]], {"max_len": 2}, r"sequence 0 has length 3, more than max_len=2"),
    ],
)
def test_pad_batch_errors(seqs, kw, match):
    with pytest.raises(DataError, match=match):
        pad_batch(seqs, 0, **kw)


# ---- Embedding with padding_idx ----------------------------------------------------------------


@pytest.mark.parametrize("onehot", [True, False], ids=["onehot-route", "scatter-route"])
def test_padding_row_starts_at_zero_and_gets_no_gradient(onehot, monkeypatch):
    if not onehot:  # force the scatter-add backward (used for large vocabularies)
        monkeypatch.setattr(F.EmbeddingFunction, "ONEHOT_LIMIT", 0)
    emb = nn.Embedding(6, 3, padding_idx=2).astype("float64")
    w = emb.weight.numpy()
    assert np.all(w[2] == 0) and np.all(w[[0, 1, 3, 4, 5]] != 0)
    ids = tg.tensor([[2, 0, 2, 5], [1, 2, 0, 2]])
    upstream = np.random.default_rng(0).standard_normal((2, 4, 3))
    (emb(ids) * tg.tensor(upstream)).sum().backward()
    grad = emb.weight.grad.numpy()
    assert np.all(grad[2] == 0)
    # the other rows get the usual scatter-add: the sum of the upstream rows that looked them up
    x = ids.numpy()
    for v in (0, 1, 3, 4, 5):
        np.testing.assert_allclose(grad[v], upstream[x == v].sum(axis=0), atol=1e-12)


def test_padding_idx_gradient_is_the_true_gradient_everywhere_else():
    """Gradient check with the padding row excluded: it is the one row whose analytic gradient
    is 0 by definition (PyTorch), although the output does depend on it."""
    tg.manual_seed(0)
    weight = tg.randn(5, 3, dtype="float64", requires_grad=True)
    ids = tg.tensor([[4, 1, 4], [0, 3, 1]])

    def fn(w):
        return F.embedding(ids, w, padding_idx=-1) * 1.5

    upstream = [np.random.default_rng(1).standard_normal((2, 3, 3))]
    (analytic,) = analytic_grad(fn, [weight], upstream)
    (numeric,) = numerical_grad(fn, [weight], upstream)
    assert np.all(analytic[4] == 0) and np.abs(numeric[4]).max() > 0.1
    np.testing.assert_allclose(analytic[:4], numeric[:4], rtol=1e-5, atol=1e-6)
    # without the padding id in the batch, nothing is special: the full check passes
    ids2 = tg.tensor([[0, 1, 3], [2, 1, 0]])
    assert gradcheck(lambda w: F.embedding(ids2, w, padding_idx=4), [weight], name="embedding")


def test_padding_idx_looks_up_the_row_and_stays_put_under_an_optimizer():
    emb = nn.Embedding(4, 2, padding_idx=0)
    emb.weight.data = tg.tensor([[7.0, 7.0], [1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]).data
    ids = tg.tensor([0, 1, 0])
    assert emb(ids).numpy().tolist() == [[7.0, 7.0], [1.0, 2.0], [7.0, 7.0]]  # PyTorch: as is
    opt = optim.Adam(emb.parameters(), lr=0.1)
    for _ in range(3):
        loss = (emb(ids) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert emb.weight.numpy()[0].tolist() == [7.0, 7.0]
    assert emb.weight.numpy()[1].tolist() != [1.0, 2.0]


def test_padding_idx_negative_repr_and_errors():
    assert nn.Embedding(10, 3, padding_idx=-1).padding_idx == 9
    assert repr(nn.Embedding(10, 3, padding_idx=0)) == "Embedding(10, 3, padding_idx=0)"
    with pytest.raises(ValueError, match=r"Embedding: padding_idx 10 must be an id of the table"):
        nn.Embedding(10, 3, padding_idx=10)
    with pytest.raises(IndexError, match=r"embedding: padding_idx -6 is out of range .* 5 emb"):
        F.embedding(tg.tensor([0]), tg.randn(5, 2), padding_idx=-6)


# ---- the encoder -------------------------------------------------------------------------------


def test_forward_shapes_initial_loss_tied_head_and_zero_padding_row():
    model = tiny_bert()
    assert model.mlm_head.weight is model.tok_emb.weight
    assert np.all(model.tok_emb.weight.numpy()[PAD] == 0)
    names = [n for n, _ in model.named_parameters()]
    assert "tok_emb.weight" in names and "mlm_head.weight" not in names
    ids, pad = padded_batch()
    inputs, targets = mask_tokens(ids, TOK.vocab_size, MASK, SPECIALS, mask_prob=0.5)
    logits, loss = model(inputs, targets, key_padding_mask=pad)
    assert logits.shape == (3, 8, TOK.vocab_size) and loss.shape == ()
    assert abs(loss.item() - math.log(TOK.vocab_size)) < 0.5
    logits, none = model(ids, key_padding_mask=pad)
    assert none is None


def _real(pad: tg.Tensor, dtype="float64") -> tg.Tensor:
    """(B, T, 1) with 1 at real positions and 0 at padding."""
    return tg.tensor((~pad.numpy())[..., None].astype(dtype))


def test_gradcheck_encoder_with_padding_and_segments():
    """Every parameter, float64, random upstream gradient, padding in the batch. The outputs at
    padding positions are zeroed: the real positions do not depend on the padding, so the
    padding row's true gradient is 0, which is what padding_idx gives it."""
    model = tiny_bert(dtype="float64", type_vocab_size=2, block_size=6, n_embd=4)
    ids, pad = padded_batch(lengths=(4, 2), max_len=6)
    segments = tg.tensor(np.array([[0, 0, 0, 1, 1, 1], [0, 1, 1, 0, 0, 0]]))
    real = _real(pad)

    def fn(*params):
        return model.encode(ids, key_padding_mask=pad, token_type_ids=segments) * real

    assert gradcheck(fn, model.parameters(), name="BERT.encode")


def test_gradcheck_mlm_head_loss_and_classifier():
    model = tiny_bert(dtype="float64", n_embd=4)
    ids, pad = padded_batch(lengths=(3, 5))
    tg.manual_seed(3)
    inputs, targets = mask_tokens(ids, TOK.vocab_size, MASK, SPECIALS, mask_prob=0.6)
    assert (targets.numpy() != IGNORE_INDEX).sum() >= 2

    def loss_fn(*params):
        return model(inputs, targets, key_padding_mask=pad)[1]

    assert gradcheck(loss_fn, model.parameters(), name="BERT MLM loss")
    tg.manual_seed(4)
    clf = BERTClassifier(tiny_bert(n_embd=4), num_classes=3).astype("float64")
    # the [CLS] output does not depend on the padding: every parameter's gradient is the true one
    assert gradcheck_module(clf, ids, kwargs={"key_padding_mask": pad}, name="BERTClassifier")


@pytest.mark.parametrize("dtype, atol", [("float32", 1e-5), ("float64", 1e-12)])
def test_padding_does_not_change_the_real_positions(dtype, atol):
    model = tiny_bert(dtype=dtype, n_layer=2)
    ids, pad = padded_batch(lengths=(6, 1, 3), seed=5)
    lengths = (~pad.numpy()).sum(axis=1)
    with tg.no_grad():
        batched = model.encode(ids, key_padding_mask=pad).numpy()
        unmasked = model.encode(ids).numpy()
        extra_ids, extra_pad = padded_batch(lengths=(6, 1, 3), seed=5, max_len=8)  # more padding
        more = model.encode(extra_ids, key_padding_mask=extra_pad).numpy()
        for b, n in enumerate(lengths):
            alone = model.encode(ids[b : b + 1, :n]).numpy()[0]
            np.testing.assert_allclose(batched[b, :n], alone, atol=atol, rtol=0)
            np.testing.assert_allclose(more[b, :n], alone, atol=atol, rtol=0)
            if n < ids.shape[1]:  # without the mask, the padding leaks into the real positions
                assert np.abs(unmasked[b, :n] - alone).max() > 1e-3


def test_attention_is_bidirectional():
    model = tiny_bert()
    ids = tg.tensor([[CLS, 1, 2, 3, 4, SEP]])
    changed = tg.tensor([[CLS, 1, 2, 3, 7, SEP]])
    with tg.no_grad():
        a, b = model.encode(ids).numpy(), model.encode(changed).numpy()
    assert np.abs(a[0, 0] - b[0, 0]).max() > 1e-4  # position 0 sees position 4


def test_overfits_one_masked_batch():
    model = tiny_bert(n_embd=16)
    ids, pad = padded_batch(lengths=(6, 4, 5, 6), seed=2)
    tg.manual_seed(1)
    inputs, targets = mask_tokens(ids, TOK.vocab_size, MASK, SPECIALS, mask_prob=0.4)
    opt = optim.Adam(model.parameters(), lr=2e-2)
    losses = train_losses(model, opt, 80, inputs, targets, key_padding_mask=pad)
    assert losses[0] > 1.5 and losses[-1] < 0.05, losses[::10]


def test_padding_row_is_trained_only_by_the_tied_head():
    """padding_idx stops the *lookups* of [PAD] from training its row; the tied MLM head still
    trains it as an output class (as in PyTorch). With the head untied, the row gets nothing."""
    model = tiny_bert()
    ids, pad = padded_batch()
    inputs, targets = mask_tokens(ids, TOK.vocab_size, MASK, SPECIALS, mask_prob=0.5)
    model(inputs, targets, key_padding_mask=pad)[1].backward()
    assert np.abs(model.tok_emb.weight.grad.numpy()[PAD]).max() > 0  # from the head
    model.zero_grad()
    model.mlm_head.weight = nn.Parameter(model.tok_emb.weight.numpy().copy())  # untie
    model(inputs, targets, key_padding_mask=pad)[1].backward()
    assert np.all(model.tok_emb.weight.grad.numpy()[PAD] == 0)
    assert np.abs(model.tok_emb.weight.grad.numpy()[:8]).max() > 0


def test_classifier_overfits_a_few_labels():
    tg.manual_seed(0)
    clf = BERTClassifier(BERT(tiny_config(n_embd=16)), num_classes=2)
    ids, pad = padded_batch(lengths=(6, 2, 4, 5, 3, 6), seed=3)
    y = tg.tensor([0, 1, 1, 0, 1, 0])
    opt = optim.Adam(clf.parameters(), lr=1e-2)
    for _ in range(60):
        loss = F.cross_entropy(clf(ids, key_padding_mask=pad), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    assert clf(ids, key_padding_mask=pad).argmax(axis=1).tolist() == y.tolist()


def test_checkpoint_round_trip_without_pickle(tmp_path):
    model = tiny_bert(type_vocab_size=2)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    ids, pad = padded_batch()
    for _ in range(2):  # move the weights away from their initial values
        _, loss = model(*mask_tokens(ids, TOK.vocab_size, MASK, SPECIALS, 0.5), pad)
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path / "bert.npz"
    io.save({"model": model.state_dict(), "tokenizer": TOK.to_dict()}, path)
    ckpt = io.load(path)
    fresh = tiny_bert(seed=7, type_vocab_size=2)
    with tg.no_grad():
        before = fresh(ids, key_padding_mask=pad)[0].numpy()
        fresh.load_state_dict(ckpt["model"])
        np.testing.assert_array_equal(
            fresh(ids, key_padding_mask=pad)[0].numpy(), model(ids, key_padding_mask=pad)[0].numpy()
        )
    assert not np.array_equal(before, model(ids, key_padding_mask=pad)[0].numpy())
    assert fresh.mlm_head.weight is fresh.tok_emb.weight  # still tied after loading
    assert CharTokenizer.from_dict(ckpt["tokenizer"]).special_ids == TOK.special_ids
    with pytest.raises(ValueError, match=r"tok_emb.weight: checkpoint \(12, 8\), model \(12, 16\)"):
        tiny_bert(n_embd=16, type_vocab_size=2).load_state_dict(ckpt["model"])


# ---- masking -----------------------------------------------------------------------------------


def _within(count, n, p, name, k=5.0):
    """``count`` successes of ``n`` Bernoulli(p) draws, within k binomial standard deviations."""
    sd = math.sqrt(n * p * (1 - p))
    assert abs(count - n * p) <= k * sd, f"{name}: {count} of {n}, expected {n * p:.0f} +- {sd:.0f}"


def test_masking_statistics_follow_the_80_10_10_rule():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, 400)
    seqs = [[CLS, *rng.integers(0, 8, n).tolist(), SEP] for n in lengths]
    ids, pad = pad_batch(seqs, PAD)
    tg.manual_seed(0)
    inputs, targets = mask_tokens(ids, TOK.vocab_size, MASK, SPECIALS, mask_prob=0.15)
    x, y, t = ids.numpy(), inputs.numpy(), targets.numpy()
    chars = x < 8
    chosen = t != IGNORE_INDEX
    n_chars, n_chosen = int(chars.sum()), int(chosen.sum())
    assert not (chosen & ~chars).any(), "a special token was chosen"
    _within(n_chosen, n_chars, 0.15, "chosen")
    assert np.array_equal(t[chosen], x[chosen]), "targets are the original ids"
    assert np.array_equal(y[~chosen], x[~chosen]), "unchosen inputs are unchanged"
    c, o = y[chosen], x[chosen]
    _within(int((c == MASK).sum()), n_chosen, 0.8, "[MASK]")
    # a random replacement is uniform over the 8 characters, so 1 in 8 is the original one
    _within(int((c == o).sum()), n_chosen, 0.1 + 0.1 / 8, "unchanged")
    random = c[(c != MASK) & (c != o)]
    _within(len(random), n_chosen, 0.1 * 7 / 8, "another character")
    assert np.all(random < 8), "a random replacement was a special token"
    counts = np.bincount(random, minlength=8)
    assert counts.min() > 0  # every character can be drawn


def test_masking_edges_and_seed():
    ids, _ = padded_batch(lengths=(6, 3))
    x = ids.numpy()
    inputs, targets = mask_tokens(ids, TOK.vocab_size, MASK, SPECIALS, mask_prob=0.0)
    assert np.array_equal(inputs.numpy(), x) and np.all(targets.numpy() == IGNORE_INDEX)
    inputs, targets = mask_tokens(ids, TOK.vocab_size, MASK, SPECIALS, mask_prob=1.0)
    t = targets.numpy()
    assert np.array_equal(t != IGNORE_INDEX, x < 8)  # every character, no special token
    tg.manual_seed(3)
    a = [v.numpy() for v in mask_tokens(ids, TOK.vocab_size, MASK, SPECIALS)]
    tg.manual_seed(3)
    b = [v.numpy() for v in mask_tokens(ids, TOK.vocab_size, MASK, SPECIALS)]
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert inputs.dtype == "int64" and targets.dtype == "int64" and inputs.device == ids.device


def test_mlm_loss_counts_only_the_chosen_positions():
    rng = np.random.default_rng(0)
    logits_np = rng.standard_normal((2, 5, 7))
    t = np.full((2, 5), IGNORE_INDEX)
    t[0, 1], t[1, 3], t[1, 4] = 3, 0, 6
    logits = tg.tensor(logits_np, requires_grad=True)
    loss = mlm_loss(logits, tg.tensor(t))
    logp = logits_np - np.log(np.exp(logits_np).sum(-1, keepdims=True))
    expected = -np.mean([logp[0, 1, 3], logp[1, 3, 0], logp[1, 4, 6]])  # divided by 3, not 10
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-12)
    loss.backward()
    g = logits.grad.numpy()
    assert np.all(g[t == IGNORE_INDEX] == 0) and np.abs(g[t != IGNORE_INDEX]).min() > 0
    assert gradcheck(lambda z: mlm_loss(z, tg.tensor(t)), [logits], name="mlm_loss")


# ---- bad input ---------------------------------------------------------------------------------


def test_mask_tokens_errors():
    ids, _ = padded_batch()
    args = (TOK.vocab_size, MASK, SPECIALS)
    with pytest.raises(ValueError, match=r"mask_tokens: mask_prob must be .* \[0, 1\], got 1.5"):
        mask_tokens(ids, *args, mask_prob=1.5)
    with pytest.raises(ValueError, match=r"mask_tokens: mask_prob .* got -0.1"):
        mask_tokens(ids, *args, mask_prob=-0.1)
    bad = tg.tensor(np.array([[CLS, 3, 12, SEP]]))
    with pytest.raises(ValueError, match=r"mask_tokens: ids of shape \(1, 4\) range over 3..12, "):
        mask_tokens(bad, *args)
    with pytest.raises(TypeError, match=r"mask_tokens: ids must be an integer Tensor, got dtype"):
        mask_tokens(tg.tensor([[0.5, 1.0]]), *args)
    with pytest.raises(ValueError, match=r"mask_tokens: mask_id 3 must be one of special_ids"):
        mask_tokens(ids, TOK.vocab_size, 3, SPECIALS)
    with pytest.raises(ValueError, match=r"mask_tokens: mask_id 20 is out of range .*=12"):
        mask_tokens(ids, TOK.vocab_size, 20, SPECIALS)


def test_model_input_errors():
    model = tiny_bert()
    ids, pad = padded_batch()
    with pytest.raises(ValueError, match=r"BERT: key_padding_mask must be a boolean Tensor of the "
                       r"ids' shape \(B, T\) = \(3, 8\), True at padding, got dtype bool and "
                       r"shape \(3, 7\)"):  # fmt: skip
        model(ids, key_padding_mask=pad[:, :7])
    with pytest.raises(ValueError, match=r"got dtype int64 and shape \(3, 8\)"):
        model(ids, key_padding_mask=pad.astype("int64"))
    with pytest.raises(IndexError, match=r"BERT: ids of shape \(1, 3\) range over 9..12, out of "):
        model(tg.tensor([[CLS, 12, SEP]]))
    with pytest.raises(IndexError, match=r"range over -1..10, out of range for vocab_size=12"):
        model(tg.tensor([[CLS, -1, SEP]]))
    with pytest.raises(TypeError, match=r"BERT: ids must be integers, got dtype float32"):
        model(tg.tensor([[1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"BERT: a sequence of length 9 is longer than block_size"):
        model(tg.tensor(np.zeros((1, 9), dtype=np.int64)))
    with pytest.raises(ValueError, match=r"BERT: got token_type_ids but .*\(type_vocab_size=2\)"):
        model.encode(ids, token_type_ids=ids * 0)
    with pytest.raises(ValueError, match=r"mlm_loss: targets must be a Tensor of shape \(B, T\) ="):
        model(ids, ids[:, :4])
    with pytest.raises(ValueError, match=r"mlm_loss: logits must be a \(B, T, V\) Tensor"):
        mlm_loss(tg.randn(3, 4), tg.tensor([0, 1, 2]))


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"pad_id": 12}, r"BERTConfig: pad_id 12 must be an id of the vocabulary, in 0..11"),
        ({"n_embd": 9}, r"BERTConfig: n_embd \(9\) must be divisible by n_head \(2\)"),
        ({"n_layer": 0}, r"BERTConfig: n_layer must be a positive integer, got 0"),
        ({"type_vocab_size": -1}, r"BERTConfig: type_vocab_size must be an integer >= 0"),
        ({"dropout": 1.0}, r"BERTConfig: dropout must be in \[0, 1\), got 1.0"),
        ({"bias": "no"}, r"BERTConfig: bias must be True or False, got 'no'"),
    ],
)
def test_config_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        tiny_config(**kw)


def test_data_module_exports():
    assert data.SPECIAL_TOKENS == ("[PAD]", "[CLS]", "[SEP]", "[MASK]")

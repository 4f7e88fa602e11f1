"""Weights to PyTorch and back (chapter 16): ``interop`` converters, safetensors files, dtype
methods, the GPT's ``ignore_index`` and weights-only checkpoints.

Without torch, the converters are checked on NumPy arrays shaped as the other side's: key names
and shapes written down from nanoGPT's ``model.py`` and ``torch.nn.MultiheadAttention``, and a
NumPy forward pass of nanoGPT's GPT (float64) against ours. With torch installed, a nanoGPT model
written below and ``torch.nn.MultiheadAttention`` are compared output for output, both ways; those
tests skip with the reason when torch is absent (CI does not install it).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import field, make_dataclass

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import interop, nn
from tinygrad_edu import io as tgio
from tinygrad_edu.io import CheckpointError
from tinygrad_edu.models import GPT, GPTConfig

pytestmark = pytest.mark.ch16

HAS_FLOAT16 = hasattr(tg.backend.namespace(tg.backend.default_device()), "float16")
TORCH_REASON = "torch is not installed (pip install torch) - the PyTorch cross-checks need it"


# nanoGPT's GPTConfig (model.py), field for field, with this file's small model as the defaults
# (nanoGPT's own are GPT-2's sizes); each field's type is its default's.
NANOGPT_DEFAULTS = dict(
    block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=True
)
NanoGPTConfig = make_dataclass(
    "NanoGPTConfig", [(name, type(v), field(default=v)) for name, v in NANOGPT_DEFAULTS.items()]
)


def nanogpt_shapes(c: NanoGPTConfig) -> dict:
    """nanoGPT's GPT.state_dict() names and shapes (torch 2, flash attention: no attn.bias)."""
    C, b = c.n_embd, c.bias
    out = {"transformer.wte.weight": (c.vocab_size, C), "transformer.wpe.weight": (c.block_size, C)}
    for i in range(c.n_layer):
        p = f"transformer.h.{i}."
        layers = [
            ("ln_1", None, C),
            ("attn.c_attn", C, 3 * C),
            ("attn.c_proj", C, C),
            ("ln_2", None, C),
            ("mlp.c_fc", C, 4 * C),
            ("mlp.c_proj", 4 * C, C),
        ]
        for name, fan_in, fan_out in layers:
            out[p + name + ".weight"] = (fan_out,) if fan_in is None else (fan_out, fan_in)
            if b:
                out[p + name + ".bias"] = (fan_out,)
    out["transformer.ln_f.weight"] = (C,)
    if b:
        out["transformer.ln_f.bias"] = (C,)
    out["lm_head.weight"] = (c.vocab_size, C)
    return out


def random_nanogpt(c: NanoGPTConfig, seed=0) -> dict:
    """A nanoGPT state dict of random float64 arrays (LayerNorm gains too), tied head."""
    r = np.random.default_rng(seed)
    sd = {k: r.normal(0, 0.2, s) for k, s in nanogpt_shapes(c).items() if k != "lm_head.weight"}
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    return sd


def numpy_nanogpt_forward(sd: dict, c: NanoGPTConfig, idx: np.ndarray) -> np.ndarray:
    """nanoGPT's GPT.forward in NumPy (float64): logits (B, T, V) at every position."""
    erf = np.vectorize(math.erf)

    def ln(x, p):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        y = (x - mu) / np.sqrt(var + 1e-5) * sd[p + ".weight"]
        return y + sd[p + ".bias"] if c.bias else y

    def linear(x, p):
        y = x @ sd[p + ".weight"].T
        return y + sd[p + ".bias"] if c.bias else y

    B, T = idx.shape
    C, H = c.n_embd, c.n_head
    x = sd["transformer.wte.weight"][idx] + sd["transformer.wpe.weight"][:T]
    for i in range(c.n_layer):
        p = f"transformer.h.{i}."
        q, k, v = np.split(linear(ln(x, p + "ln_1"), p + "attn.c_attn"), 3, axis=2)
        q, k, v = (t.reshape(B, T, H, C // H).transpose(0, 2, 1, 3) for t in (q, k, v))
        att = q @ k.transpose(0, 1, 3, 2) / math.sqrt(C // H)
        att = np.where(np.tril(np.ones((T, T), bool)), att, -np.inf)
        att = np.exp(att - att.max(-1, keepdims=True))
        y = (att / att.sum(-1, keepdims=True)) @ v
        x = x + linear(y.transpose(0, 2, 1, 3).reshape(B, T, C), p + "attn.c_proj")
        h = linear(ln(x, p + "ln_2"), p + "mlp.c_fc")
        x = x + linear(0.5 * h * (1 + erf(h / math.sqrt(2))), p + "mlp.c_proj")
    return ln(x, "transformer.ln_f") @ sd["lm_head.weight"].T


def small_gpt(bias=True, dtype="float32", n_layer=2) -> GPT:
    c = NanoGPTConfig(bias=bias, n_layer=n_layer)
    return GPT(interop.config_from_nanogpt(c)).to(dtype=dtype)


# -------------------------------------------------------------------------------------------------
# GPT <-> nanoGPT on NumPy arrays
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_to_nanogpt_gives_nanogpts_names_and_shapes(bias):
    c = NanoGPTConfig(bias=bias)
    sd = interop.to_nanogpt(small_gpt(bias))
    assert {k: v.shape for k, v in sd.items()} == nanogpt_shapes(c)
    assert sd["lm_head.weight"] is sd["transformer.wte.weight"]  # tied: one array


@pytest.mark.parametrize("bias", [True, False])
def test_round_trip_is_exact(bias):
    model = small_gpt(bias)
    back = interop.from_nanogpt(interop.to_nanogpt(model))
    own = model.state_dict()
    assert list(back) == list(own) or sorted(back) == sorted(own)
    for k, v in own.items():
        np.testing.assert_array_equal(back[k], tg.tensor(v).numpy(), err_msg=k)


def test_c_attn_rows_are_q_then_k_then_v():
    model = small_gpt()
    sd = interop.to_nanogpt(model)
    packed = sd["transformer.h.1.attn.c_attn.weight"]
    C = model.config.n_embd
    for j, name in enumerate(("q_proj", "k_proj", "v_proj")):
        proj = getattr(model.h[1].attn, name)
        np.testing.assert_array_equal(packed[j * C : (j + 1) * C], proj.weight.numpy())
        np.testing.assert_array_equal(
            sd["transformer.h.1.attn.c_attn.bias"][j * C : (j + 1) * C], proj.bias.numpy()
        )


@pytest.mark.parametrize("bias", [True, False])
def test_nanogpt_weights_give_nanogpts_logits(bias):
    """A nanoGPT state dict (NumPy, float64) loaded here: the same logits as nanoGPT's forward
    pass written in NumPy; the loss is the cross-entropy of those logits."""
    c = NanoGPTConfig(bias=bias)
    sd = random_nanogpt(c)
    model = interop.gpt_from_nanogpt(sd, c)
    assert model.wte.weight.dtype == "float64"  # the weights' dtype by default
    idx = np.random.default_rng(1).integers(0, c.vocab_size, (3, c.block_size))
    targets = np.random.default_rng(2).integers(0, c.vocab_size, (3, c.block_size))
    logits, loss = model(tg.tensor(idx), tg.tensor(targets))
    expected = numpy_nanogpt_forward(sd, c, idx)
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-10, atol=1e-12)
    z = expected.reshape(-1, c.vocab_size)
    logp = z - z.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    np.testing.assert_allclose(loss.item(), -logp[np.arange(z.shape[0]), targets.ravel()].mean())


def test_from_nanogpt_drops_compile_prefix_and_mask_buffers():
    c = NanoGPTConfig()
    sd = random_nanogpt(c)
    wrapped = {"_orig_mod." + k: v for k, v in sd.items()}
    for i in range(c.n_layer):  # nanoGPT without flash attention keeps its causal mask
        wrapped[f"_orig_mod.transformer.h.{i}.attn.bias"] = np.tril(np.ones((1, 1, 8, 8)))
    a, b = interop.from_nanogpt(wrapped), interop.from_nanogpt(sd)
    assert sorted(a) == sorted(b)
    del sd["lm_head.weight"]  # a file that stores the tied embedding once
    assert sorted(interop.from_nanogpt(sd)) == sorted(b)


def test_from_nanogpt_bad_input_names_the_key_and_shapes():
    c = NanoGPTConfig()
    sd = random_nanogpt(c)
    bad = dict(sd, **{"transformer.h.1.attn.c_attn.weight": np.zeros((40, 16))})
    with pytest.raises(
        ValueError,
        match=r"transformer\.h\.1\.attn\.c_attn\.weight has shape "
        r"\(40, 16\), expected \(48, 16\)",
    ):
        interop.from_nanogpt(bad)
    missing = {k: v for k, v in sd.items() if k != "transformer.h.0.mlp.c_fc.bias"}
    with pytest.raises(ValueError, match=r"missing key 'transformer\.h\.0\.mlp\.c_fc\.bias'"):
        interop.from_nanogpt(missing)
    with pytest.raises(ValueError, match=r"unexpected keys 'transformer\.h\.0\.extra'"):
        interop.from_nanogpt(dict(sd, **{"transformer.h.0.extra": np.zeros(3)}))
    with pytest.raises(
        ValueError,
        match=r"transformer\.wpe\.weight has shape \(8, 16\), "
        r"expected \(32, 16\)",
    ):
        interop.from_nanogpt(sd, NanoGPTConfig(block_size=32))
    with pytest.raises(ValueError, match="lm_head.weight .* differs from transformer.wte.weight"):
        interop.from_nanogpt(dict(sd, **{"lm_head.weight": sd["lm_head.weight"] + 1}))
    with pytest.raises(ValueError, match=r"missing key 'transformer\.wte\.weight'"):
        interop.from_nanogpt({"lm_head.weight": np.zeros((3, 4))})
    for err in (tg.randn(2).numpy(),):
        with pytest.raises(ValueError, match="must be 2-D"):
            interop.from_nanogpt(dict(sd, **{"transformer.wte.weight": err}))
    # every message is one line
    try:
        interop.from_nanogpt(bad)
    except ValueError as e:
        assert "\n" not in str(e)


def test_to_nanogpt_refuses_foreign_keys():
    sd = dict(small_gpt().state_dict(), extra=np.zeros(2))
    with pytest.raises(ValueError, match="unexpected keys 'extra'"):
        interop.to_nanogpt(sd)
    sd = {k: v for k, v in small_gpt().state_dict().items() if k != "h.0.attn.k_proj.weight"}
    with pytest.raises(ValueError, match="missing key 'h.0.attn.k_proj.weight'"):
        interop.to_nanogpt(sd)


def test_config_from_and_to_nanogpt():
    c = NanoGPTConfig(n_layer=3, bias=False, dropout=0.1)
    ours = interop.config_from_nanogpt(c)
    assert (ours.n_layer, ours.bias, ours.dropout, ours.n_embd) == (3, False, 0.1, 16)
    assert interop.config_from_nanogpt(vars(c)) == ours
    assert interop.config_to_nanogpt(ours) == vars(c)
    with pytest.raises(ValueError, match=r"missing fields \['bias'\]"):
        interop.config_from_nanogpt({k: v for k, v in vars(c).items() if k != "bias"})
    with pytest.raises(ValueError, match=r"unknown fields \['n_kv_head'\]"):
        interop.config_from_nanogpt(dict(vars(c), n_kv_head=1))


# -------------------------------------------------------------------------------------------------
# nn.MultiHeadAttention <-> torch.nn.MultiheadAttention on NumPy arrays
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_mha_round_trip_and_packing(bias):
    attn = nn.MultiHeadAttention(8, 2, bias=bias)
    sd = interop.to_torch_mha(attn)
    expected = {"in_proj_weight": (24, 8), "out_proj.weight": (8, 8)}
    if bias:
        expected.update({"in_proj_bias": (24,), "out_proj.bias": (8,)})
    assert {k: v.shape for k, v in sd.items()} == expected
    np.testing.assert_array_equal(sd["in_proj_weight"][8:16], attn.k_proj.weight.numpy())
    other = nn.MultiHeadAttention(8, 2, bias=bias)
    other.load_state_dict(interop.from_torch_mha(sd))
    for (k, a), (_, b) in zip(attn.state_dict().items(), other.state_dict().items(), strict=True):
        np.testing.assert_array_equal(tg.tensor(a).numpy(), tg.tensor(b).numpy(), err_msg=k)


def test_mha_with_other_kdim_vdim_keeps_projections_apart():
    attn = nn.MultiHeadAttention(8, 2, kdim=5, vdim=3)
    sd = interop.to_torch_mha(attn)
    assert {k: v.shape for k, v in sd.items()} == {
        "q_proj_weight": (8, 8),
        "k_proj_weight": (8, 5),
        "v_proj_weight": (8, 3),
        "in_proj_bias": (24,),
        "out_proj.weight": (8, 8),
        "out_proj.bias": (8,),
    }
    other = nn.MultiHeadAttention(8, 2, kdim=5, vdim=3)
    other.load_state_dict(interop.from_torch_mha(sd))
    np.testing.assert_array_equal(other.v_proj.weight.numpy(), attn.v_proj.weight.numpy())


def test_mha_bad_input():
    sd = interop.to_torch_mha(nn.MultiHeadAttention(8, 2))
    with pytest.raises(ValueError, match=r"in_proj_weight has shape \(16, 8\), expected \(24, 8\)"):
        interop.from_torch_mha(dict(sd, in_proj_weight=np.zeros((16, 8))))
    with pytest.raises(ValueError, match="bias_k .add_bias_kv=True. has no counterpart"):
        interop.from_torch_mha(dict(sd, bias_k=np.zeros((1, 1, 8))))
    with pytest.raises(ValueError, match="missing key 'out_proj.weight'"):
        interop.from_torch_mha({"in_proj_weight": np.zeros((24, 8))})


# -------------------------------------------------------------------------------------------------
# safetensors and .npz: the tied embedding stored once, config and tokenizer in the metadata
# -------------------------------------------------------------------------------------------------


def test_safetensors_round_trip_with_metadata(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy", reason="safetensors is in the test extra")
    model = small_gpt(dtype="float64")
    path = tmp_path / "w.safetensors"
    tok = {"chars": "abcdefghijk"}
    tg.save(
        {"model": model.state_dict(), "model_config": vars(NanoGPTConfig()), "tokenizer": tok}, path
    )
    # read without tinygrad_edu: the tensors, once each, and the metadata as JSON strings
    raw = st_numpy.load_file(str(path))
    assert "lm_head.weight" not in raw and raw["wte.weight"].dtype == np.float64
    assert sorted(raw) == sorted(k for k in model.state_dict() if k != "lm_head.weight")
    import safetensors

    with safetensors.safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
    assert json.loads(meta["tokenizer"]) == tok
    assert json.loads(meta["model_config"])["n_embd"] == 16
    # read back here: the tied weight is one array under both names
    back = tg.load(path)
    assert back["tokenizer"] == tok and back["model_config"] == vars(NanoGPTConfig())
    assert back["model"]["lm_head.weight"] is back["model"]["wte.weight"]
    fresh = small_gpt(dtype="float64")
    fresh.load_state_dict(back["model"])
    idx = tg.randint(0, 11, (2, 8))
    np.testing.assert_array_equal(fresh(idx)[0].numpy(), model(idx)[0].numpy())


def test_safetensors_flat_state_dict_and_bad_values(tmp_path):
    pytest.importorskip("safetensors", reason="safetensors is in the test extra")
    path = tmp_path / "flat.safetensors"
    tg.save({"a": np.arange(6, dtype=np.int64).reshape(2, 3), "b": tg.ones(2)}, path)
    back = tg.load(path)
    assert sorted(back) == ["a", "b"] and back["a"].dtype == np.int64
    with pytest.raises(TypeError, match="'step' is a int; the weights of a .safetensors"):
        tg.save({"w": np.ones(2), "step": 3}, path)
    with pytest.raises(TypeError, match="'optimizer' cannot go in the metadata"):
        tg.save({"model": {"w": np.ones(2)}, "optimizer": {"m": np.ones(2)}}, path)
    np.testing.assert_array_equal(tg.load(path)["a"], back["a"])  # the failed saves left it alone


def test_safetensors_damaged_file_is_a_checkpoint_error(tmp_path):
    pytest.importorskip("safetensors", reason="safetensors is in the test extra")
    path = tmp_path / "w.safetensors"
    tg.save({"w": np.ones((4, 4))}, path)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        tg.load(path)


def test_safetensors_of_a_newer_format_version_is_refused(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy", reason="safetensors is in the test extra")
    path = tmp_path / "w.safetensors"
    info = {"format": tgio.FORMAT, "version": tgio.VERSION + 1, "layout": "state_dict", "tied": {}}
    st_numpy.save_file({"w": np.ones(2)}, str(path), metadata={"tinygrad_edu": json.dumps(info)})
    with pytest.raises(CheckpointError, match=r"is checkpoint format version 2, this version of "):
        tg.load(path)


def test_safetensors_in_bfloat16_says_so(tmp_path):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    st_torch = pytest.importorskip("safetensors.torch", reason="safetensors is not installed")
    path = tmp_path / "bf16.safetensors"
    st_torch.save_file({"w": torch.ones(2, dtype=torch.bfloat16)}, str(path))
    with pytest.raises(CheckpointError, match=r"holds bfloat16 tensors, which NumPy cannot"):
        tg.load(path)


def test_missing_safetensors_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)  # import safetensors -> ImportError
    with pytest.raises(ImportError, match=r'pip install "tinygrad_edu\[safetensors\]"'):
        tg.save({"w": np.ones(2)}, tmp_path / "w.safetensors")
    assert not list(tmp_path.iterdir())


def test_npz_stores_a_tied_weight_once(tmp_path):
    model = small_gpt()
    path = tmp_path / "ckpt.npz"
    tg.save({"model": model.state_dict()}, path)
    with np.load(path) as npz:
        names = npz.files
    assert "model.wte.weight.npy" not in names  # np.load lists names without .npy
    assert "model.wte.weight" in names and "model.lm_head.weight" not in names
    back = tg.load(path)["model"]
    assert back["lm_head.weight"] is back["wte.weight"]
    small_gpt().load_state_dict(back)


# -------------------------------------------------------------------------------------------------
# dtype methods
# -------------------------------------------------------------------------------------------------


def test_module_dtype_methods():
    model = small_gpt()
    assert model.double() is model
    assert {p.dtype for p in model.parameters()} == {"float64"}
    assert model.lm_head.weight is model.wte.weight  # the tie survives
    assert {p.dtype for p in model.float().parameters()} == {"float32"}
    if HAS_FLOAT16:
        assert {p.dtype for p in model.half().parameters()} == {"float16"}
    else:  # array-api-strict: the standard has no float16
        with pytest.raises(TypeError, match="GPT.to: device 'strict' has no dtype 'float16'"):
            model.half()
    assert {p.dtype for p in model.to(dtype="float64").parameters()} == {"float64"}
    assert {p.dtype for p in model.to("cpu", "float32").parameters()} == {"float32"}
    assert {p.dtype for p in model.to(np.float64).parameters()} == {"float64"}
    with pytest.raises(TypeError, match="GPT.to: dtype must be a floating-point dtype.*'int64'"):
        model.to(dtype="int64")
    with pytest.raises(tg.DeviceError, match="unknown device 'gpu'"):
        model.to("gpu")


def test_module_cast_moves_gradients_and_keeps_optimizer_working():
    model = small_gpt(n_layer=1)
    opt = tg.optim.AdamW(model.parameters(), lr=1e-2)
    idx = tg.randint(0, 11, (2, 8))
    _, loss = model(idx, idx)
    loss.backward()
    opt.step()
    model.double()  # after a step: the optimizer holds the same Parameters
    assert model.wte.weight.grad.dtype == "float64"
    opt.zero_grad()
    _, loss = model(idx, idx)
    loss.backward()
    opt.step()
    state = opt.state_dict()["state"]
    assert {backend_dtype(s["exp_avg"]) for s in state.values()} == {"float64"}
    assert {p.dtype for p in model.parameters()} == {"float64"}


def backend_dtype(a) -> str:
    return tg.backend.dtype_name(a.dtype)


def test_tensor_dtype_methods():
    x = tg.randn(2, 3, requires_grad=True)
    assert (x.double().dtype, x.float().dtype) == ("float64", "float32")
    if HAS_FLOAT16:
        assert x.half().dtype == "float16" and x.to("cpu", "float16").dtype == "float16"
    assert x.to(dtype="float64").dtype == "float64" and x.to("float64").dtype == "float64"
    assert x.to(x.device) is x
    y = x.to(x.device, "float64")
    (y * y).sum().backward()  # a cast is differentiable
    assert x.grad.dtype == "float32"
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy(), rtol=1e-6)
    with pytest.raises(tg.DeviceError, match="unknown device 'gpu'"):
        x.to("gpu")


# -------------------------------------------------------------------------------------------------
# ignore_index
# -------------------------------------------------------------------------------------------------


def test_gpt_loss_ignores_minus_one_like_nanogpt():
    model = small_gpt(dtype="float64")
    idx = tg.randint(0, 11, (2, 8))
    targets = np.random.default_rng(0).integers(0, 11, (2, 8))
    masked = targets.copy()
    masked[:, :3] = -1  # e.g. a prompt that is not scored
    logits, loss = model(idx, tg.tensor(masked))
    _, full = model(idx, tg.tensor(targets))
    z = logits.numpy()[:, 3:].reshape(-1, 11)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    expected = -logp[np.arange(z.shape[0]), targets[:, 3:].ravel()].mean()
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-12)
    assert abs(loss.item() - full.item()) > 1e-6
    masked[:, :3] = -100
    _, loss100 = model(idx, tg.tensor(masked), ignore_index=-100)
    np.testing.assert_allclose(loss100.item(), expected, rtol=1e-12)
    with pytest.raises((IndexError, ValueError)):
        model(idx, tg.tensor(masked))  # -100 is a bad class when -1 is the ignored one


# -------------------------------------------------------------------------------------------------
# Weights-only checkpoints and sampling
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
@pytest.mark.parametrize("names", ["tinygrad_edu", "nanogpt"])
def test_save_weights_then_load_model(tmp_path, suffix, names):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors", reason="safetensors is in the test extra")
    from tinygrad_edu.data import CharTokenizer

    tok = CharTokenizer("abcdefghijk")
    model = small_gpt(dtype="float64")
    path = tmp_path / ("w" + suffix)
    tgio.save_weights(path, model, tok, names=names)
    loaded, tok2 = tgio.load_model(path)
    assert tok2.chars == tok.chars and not loaded.training
    assert loaded.wte.weight.dtype == "float64"
    idx = tg.randint(0, 11, (2, 8))
    np.testing.assert_array_equal(loaded(idx)[0].numpy(), model(idx)[0].numpy())


def test_load_model_names_exactly_what_is_missing(tmp_path):
    model = small_gpt()
    path = tmp_path / "bare.npz"
    tg.save({"model": model.state_dict(), "model_config": vars(NanoGPTConfig())}, path)
    with pytest.raises(CheckpointError, match=r"bare.npz' lacks tokenizer: a model is rebuilt"):
        tgio.load_model(path)
    tg.save(model.state_dict(), path)  # a bare state dict
    with pytest.raises(CheckpointError, match="lacks model, model_config, tokenizer"):
        tgio.load_model(path)
    tg.save(
        {
            "model": model.state_dict(),
            "model_config": vars(NanoGPTConfig(n_embd=32)),
            "tokenizer": {"chars": "abcdefghijk"},
        },
        path,
    )
    with pytest.raises(CheckpointError, match="cannot be loaded: .*wte.weight"):
        tgio.load_model(path)
    weights = {k: np.array(tg.tensor(v).numpy()) for k, v in model.state_dict().items()}
    weights["h.1.mlp.0.weight"][0, 0] = np.nan
    tg.save(
        {"model": weights, "model_config": vars(NanoGPTConfig()), "tokenizer": {"chars": "ab"}},
        path,
    )
    with pytest.raises(CheckpointError, match=r"NaN or infinite weights \(h\.1\.mlp\.0\.weight\)"):
        tgio.load_model(path)
    weights = {k: np.ones(v.shape, np.int32) for k, v in weights.items()}  # e.g. a token table
    tg.save(
        {"model": weights, "model_config": vars(NanoGPTConfig()), "tokenizer": {"chars": "ab"}},
        path,
    )
    with pytest.raises(CheckpointError, match=r"not floating-point: wte\.weight \(int32\), "):
        tgio.load_model(path)


def test_load_model_reads_a_training_checkpoint(tmp_path):
    from tinygrad_edu import train as training
    from tinygrad_edu.data import CharTokenizer

    model = small_gpt(n_layer=1)
    opt = model.configure_optimizers(0.1, 1e-3)
    tok = CharTokenizer("abcdefghijk")
    ckpt = training.make_checkpoint(
        model, opt, tok, training.TrainConfig(), 5, {"step": []}, 2.0, tg.backend.get_rng_state()
    )
    training.save_checkpoint(tmp_path / "best.npz", ckpt)
    loaded, _ = tgio.load_model(tmp_path / "best.npz")
    idx = tg.randint(0, 11, (1, 8))
    np.testing.assert_array_equal(loaded(idx)[0].numpy(), model(idx)[0].numpy())


def test_example_exports_and_samples_from_weights_only(tmp_path, capsys):
    pytest.importorskip("safetensors", reason="safetensors is in the test extra")
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "examples"))
    try:
        import char_transformer as example
    finally:
        sys.path.pop(0)
    from tinygrad_edu import train as training
    from tinygrad_edu.data import CharTokenizer

    tok = CharTokenizer("abcdefghijk\n")
    model = GPT(GPTConfig(vocab_size=12, block_size=8, n_layer=1, n_head=2, n_embd=16))
    opt = model.configure_optimizers(0.1, 1e-3)
    ckpt = training.make_checkpoint(
        model, opt, tok, training.TrainConfig(), 5, {"step": []}, 2.0, tg.backend.get_rng_state()
    )
    training.save_checkpoint(tmp_path / "best.npz", ckpt)
    assert example.main(["export", "--out-dir", str(tmp_path)]) == 0
    out = tmp_path / "best.safetensors"
    assert "transformer.wte.weight" in tg.load(out)["model"]  # nanoGPT's names
    capsys.readouterr()
    args = ["--prompt", "ab", "--max-new-tokens", "5", "--seed", "3"]
    assert example.main(["sample", "--out-dir", str(tmp_path), *args]) == 0
    from_npz = capsys.readouterr().out
    assert example.main(["sample", "--checkpoint", str(out), *args]) == 0
    assert capsys.readouterr().out == from_npz and from_npz.startswith("ab")
    bare = tmp_path / "bare.safetensors"
    tg.save(model.state_dict(), bare)
    assert example.main(["sample", "--checkpoint", str(bare), *args]) == 2
    assert "lacks model, model_config, tokenizer" in capsys.readouterr().err
    assert example.main(["sample", "--checkpoint", str(tmp_path / "nope.npz"), *args]) == 2
    assert "nope.npz' does not exist" in capsys.readouterr().err


# -------------------------------------------------------------------------------------------------
# Against PyTorch itself (skipped without torch)
# -------------------------------------------------------------------------------------------------


def nanogpt_classes(torch):
    """nanoGPT's model.py (karpathy/nanoGPT), condensed: the same modules, names and maths.

    One difference on purpose: without targets nanoGPT returns the logits of the last position
    only (for sampling); here every position, to compare them all."""
    tnn, F = torch.nn, torch.nn.functional

    class LayerNorm(tnn.Module):
        def __init__(self, ndim, bias):
            super().__init__()
            self.weight = tnn.Parameter(torch.ones(ndim))
            self.bias = tnn.Parameter(torch.zeros(ndim)) if bias else None

        def forward(self, x):
            return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)

    class CausalSelfAttention(tnn.Module):
        def __init__(self, c):
            super().__init__()
            self.c_attn = tnn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
            self.c_proj = tnn.Linear(c.n_embd, c.n_embd, bias=c.bias)
            self.n_head, self.n_embd = c.n_head, c.n_embd

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            q, k, v = (
                t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v)
            )
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    class MLP(tnn.Module):
        def __init__(self, c):
            super().__init__()
            self.c_fc = tnn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias)
            self.gelu = tnn.GELU()
            self.c_proj = tnn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)

        def forward(self, x):
            return self.c_proj(self.gelu(self.c_fc(x)))

    class Block(tnn.Module):
        def __init__(self, c):
            super().__init__()
            self.ln_1, self.attn = LayerNorm(c.n_embd, c.bias), CausalSelfAttention(c)
            self.ln_2, self.mlp = LayerNorm(c.n_embd, c.bias), MLP(c)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class NanoGPT(tnn.Module):
        def __init__(self, c):
            super().__init__()
            self.transformer = tnn.ModuleDict(
                dict(
                    wte=tnn.Embedding(c.vocab_size, c.n_embd),
                    wpe=tnn.Embedding(c.block_size, c.n_embd),
                    h=tnn.ModuleList([Block(c) for _ in range(c.n_layer)]),
                    ln_f=LayerNorm(c.n_embd, c.bias),
                )
            )
            self.lm_head = tnn.Linear(c.n_embd, c.vocab_size, bias=False)
            self.transformer.wte.weight = self.lm_head.weight  # weight tying

        def forward(self, idx, targets=None):
            t = self.transformer
            x = t.wte(idx) + t.wpe(torch.arange(idx.size(1)))
            for block in t.h:
                x = block(x)
            logits = self.lm_head(t.ln_f(x))
            if targets is None:
                return logits, None
            loss = F.cross_entropy(
                logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1
            )
            return logits, loss

    return NanoGPT


def _targets_with_ignored(c, seed):
    r = np.random.default_rng(seed)
    idx = r.integers(0, c.vocab_size, (3, c.block_size))
    targets = r.integers(0, c.vocab_size, (3, c.block_size))
    targets[0, :2] = -1
    return idx, targets


@pytest.mark.parametrize("bias", [True, False])
def test_real_nanogpt_to_here_same_logits_loss_and_gradients(bias):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    c = NanoGPTConfig(bias=bias)
    torch.manual_seed(0)
    theirs = nanogpt_classes(torch)(c).double()
    with torch.no_grad():  # every parameter random, LayerNorm gains too
        for p in theirs.parameters():
            p.normal_(0, 0.2)
    model = interop.gpt_from_nanogpt(theirs.state_dict(), c)  # torch tensors in, one call
    idx, targets = _targets_with_ignored(c, 1)
    t_logits, t_loss = theirs(torch.from_numpy(idx), torch.from_numpy(targets))
    t_loss.backward()
    logits, loss = model(tg.tensor(idx), tg.tensor(targets))
    loss.backward()
    np.testing.assert_allclose(logits.numpy(), t_logits.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=1e-12)
    grads = interop.to_nanogpt({k: p.grad.numpy() for k, p in _all_named(model)})
    for k, p in theirs.named_parameters():
        np.testing.assert_allclose(grads[k], p.grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=k)


def _all_named(model):
    """(name, parameter) for every state-dict name, the tied one under both names."""
    params = dict(model.named_parameters())
    params["lm_head.weight"] = model.lm_head.weight
    return params.items()


@pytest.mark.parametrize("bias", [True, False])
def test_here_to_real_nanogpt_same_logits_and_loss(bias, tmp_path):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    c = NanoGPTConfig(bias=bias)
    model = interop.gpt_from_nanogpt(random_nanogpt(c, seed=3), c)  # float64, random weights
    theirs = nanogpt_classes(torch)(c).double()
    sd = {k: torch.from_numpy(v) for k, v in interop.to_nanogpt(model).items()}
    theirs.load_state_dict(sd)  # strict: every key, no extra
    idx, targets = _targets_with_ignored(c, 2)
    t_logits, t_loss = theirs(torch.from_numpy(idx), torch.from_numpy(targets))
    logits, loss = model(tg.tensor(idx), tg.tensor(targets))
    np.testing.assert_allclose(t_logits.detach().numpy(), logits.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(t_loss.item(), loss.item(), rtol=1e-12)
    # and through a file, read by safetensors.torch without tinygrad_edu
    st_torch = pytest.importorskip("safetensors.torch", reason="safetensors is not installed")
    from tinygrad_edu.data import CharTokenizer

    path = tmp_path / "gpt.safetensors"
    tgio.save_weights(path, model, CharTokenizer("abcdefghijk"), names="nanogpt")
    fresh = nanogpt_classes(torch)(c).double()
    missing, unexpected = st_torch.load_model(fresh, str(path))  # handles the tied head
    assert (missing, unexpected) == (set(), [])
    f_logits, _ = fresh(torch.from_numpy(idx))
    np.testing.assert_array_equal(f_logits.detach().numpy(), t_logits.detach().numpy())
    raw = st_torch.load_file(str(path))
    assert "lm_head.weight" not in raw and raw["transformer.wte.weight"].dtype == torch.float64


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kv_dims", [None, (5, 3)])
def test_real_torch_multihead_attention_both_ways(bias, kv_dims):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    E, H, B, L, S = 8, 2, 2, 5, 5
    kdim, vdim = kv_dims or (E, E)
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(
        E, H, bias=bias, batch_first=True, kdim=kdim, vdim=vdim
    ).double()
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_(0, 0.3)
    ours = nn.MultiHeadAttention(E, H, bias=bias, kdim=kdim, vdim=vdim).double()
    ours.load_state_dict(interop.from_torch_mha(theirs.state_dict()))  # one call
    r = np.random.default_rng(0)
    q, k, v = r.normal(size=(B, L, E)), r.normal(size=(B, S, kdim)), r.normal(size=(B, S, vdim))
    causal = np.triu(np.ones((L, S), bool), 1)  # True = not allowed, on both sides
    pad = np.zeros((B, S), bool)
    pad[1, -1] = True
    expected, _ = theirs(
        *map(torch.from_numpy, (q, k, v)),
        key_padding_mask=torch.from_numpy(pad),
        attn_mask=torch.from_numpy(causal),
        need_weights=False,
    )
    got = ours(
        tg.tensor(q),
        tg.tensor(k),
        tg.tensor(v),
        key_padding_mask=tg.tensor(pad),
        attn_mask=tg.tensor(causal),
    )
    np.testing.assert_allclose(got.numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    # the other way: ours (perturbed) into a fresh torch module
    for p in ours.parameters():
        p.data = p.data * 1.5
    back = torch.nn.MultiheadAttention(
        E, H, bias=bias, batch_first=True, kdim=kdim, vdim=vdim
    ).double()
    back.load_state_dict({k: torch.from_numpy(a) for k, a in interop.to_torch_mha(ours).items()})
    expected, _ = back(*map(torch.from_numpy, (q, k, v)), need_weights=False)
    got = ours(tg.tensor(q), tg.tensor(k), tg.tensor(v))
    np.testing.assert_allclose(got.numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_a_safetensors_file_from_here_loads_in_torch_without_tinygrad_edu(tmp_path):
    pytest.importorskip("torch", reason=TORCH_REASON)
    pytest.importorskip("safetensors", reason="safetensors is not installed")
    import subprocess

    model = small_gpt(dtype="float64")
    path = tmp_path / "w.safetensors"
    tg.save({"model": model.state_dict(), "model_config": vars(NanoGPTConfig())}, path)
    np.save(tmp_path / "wte.npy", model.wte.weight.numpy())
    code = (
        "import sys, json, numpy as np, safetensors, safetensors.torch as st\n"
        "sd = st.load_file(sys.argv[1])\n"
        "with safetensors.safe_open(sys.argv[1], framework='pt') as f: meta = f.metadata()\n"
        "assert 'tinygrad_edu' not in sys.modules\n"
        "assert np.array_equal(sd['wte.weight'].numpy(), np.load(sys.argv[2]))\n"
        "print(json.loads(meta['model_config'])['n_layer'], len(sd))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path), str(tmp_path / "wte.npy")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["2", str(len(model.state_dict()) - 1)]

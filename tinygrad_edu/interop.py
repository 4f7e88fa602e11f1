"""Moving weights to PyTorch and back: nanoGPT's GPT and ``torch.nn.MultiheadAttention``.

Chapter 16 ("To PyTorch and back") uses this module. Layer names, shapes and conventions here
are PyTorch's (a ``Linear`` weight is (out, in) on both sides), so moving weights is renaming
keys plus two small reshuffles, and no array is transposed:

* **nanoGPT's GPT** (``model.py`` of karpathy/nanoGPT) prefixes its body with ``transformer.``,
  calls the block's norms ``ln_1``/``ln_2`` and its MLP's Linears ``c_fc``/``c_proj``, and packs
  the query, key and value projections into one ``attn.c_attn`` of shape (3C, C): rows ``0:C``
  are ``q_proj``, ``C:2C`` ``k_proj``, ``2C:3C`` ``v_proj``. Its head ``lm_head.weight`` is the
  token embedding ``transformer.wte.weight`` (tied, as here). Its configuration ``GPTConfig`` has
  exactly the fields of ours (``block_size, vocab_size, n_layer, n_head, n_embd, dropout, bias``).
* **torch.nn.MultiheadAttention** packs the same three projections into ``in_proj_weight``
  (3E, E) and ``in_proj_bias`` (3E,) (or keeps ``q_proj_weight``, ``k_proj_weight``,
  ``v_proj_weight`` apart when ``kdim``/``vdim`` differ from ``embed_dim``); ``out_proj`` is ours.

One call loads either way, and every converter returns a plain dict of NumPy arrays (no torch
needed here; wrap them with ``torch.from_numpy`` on the PyTorch side)::

    model = interop.gpt_from_nanogpt(nanogpt_state_dict, nanogpt_config)   # PyTorch -> here
    torch_gpt.load_state_dict({k: torch.from_numpy(v)
                               for k, v in interop.to_nanogpt(model).items()})   # here -> PyTorch
    attn.load_state_dict(interop.from_torch_mha(torch_mha.state_dict()))
    torch_mha.load_state_dict({k: torch.from_numpy(v)
                               for k, v in interop.to_torch_mha(attn).items()})

Inputs may hold NumPy arrays, tinygrad_edu Tensors or (CPU) torch tensors. Bad input (a missing
key, a key neither side has, a wrong shape) is a one-line ``ValueError`` naming the key, the shape
expected and the shape given.

>>> import tinygrad_edu as tg
>>> from tinygrad_edu.models import GPT, GPTConfig
>>> model = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=16))
>>> sd = to_nanogpt(model)
>>> sd["transformer.h.0.attn.c_attn.weight"].shape      # q, k, v packed: (3C, C)
(48, 16)
>>> again = gpt_from_nanogpt(sd, GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2,
...                                        n_embd=16))
>>> bool((again.h[0].attn.k_proj.weight.numpy() == model.h[0].attn.k_proj.weight.numpy()).all())
True
"""

from __future__ import annotations

import re
from dataclasses import asdict

import numpy as np  # state dicts cross to PyTorch on the host: NumPy is the exchange format

from . import backend
from .models.char_transformer import GPT, GPTConfig
from .tensor import Tensor

__all__ = [
    "config_from_nanogpt",
    "config_to_nanogpt",
    "from_nanogpt",
    "to_nanogpt",
    "gpt_from_nanogpt",
    "is_nanogpt_state_dict",
    "from_torch_mha",
    "to_torch_mha",
]

# nanoGPT's GPTConfig fields, which are also ours
NANOGPT_CONFIG_FIELDS = (
    "block_size",
    "vocab_size",
    "n_layer",
    "n_head",
    "n_embd",
    "dropout",
    "bias",
)

# Inside block i: (our name, nanoGPT's name); q/k/v <-> c_attn is handled apart (packed).
_BLOCK_NAMES = [
    ("ln1.weight", "ln_1.weight"),
    ("ln1.bias", "ln_1.bias"),
    ("attn.out_proj.weight", "attn.c_proj.weight"),
    ("attn.out_proj.bias", "attn.c_proj.bias"),
    ("ln2.weight", "ln_2.weight"),
    ("ln2.bias", "ln_2.bias"),
    ("mlp.0.weight", "mlp.c_fc.weight"),
    ("mlp.0.bias", "mlp.c_fc.bias"),
    ("mlp.2.weight", "mlp.c_proj.weight"),
    ("mlp.2.bias", "mlp.c_proj.bias"),
]
_TOP_NAMES = [
    ("wte.weight", "transformer.wte.weight"),
    ("wpe.weight", "transformer.wpe.weight"),
    ("ln_f.weight", "transformer.ln_f.weight"),
    ("ln_f.bias", "transformer.ln_f.bias"),
]
_QKV = ("q_proj", "k_proj", "v_proj")  # the order of the packed rows, on both sides


# -------------------------------------------------------------------------------------------------
# Helpers
# -------------------------------------------------------------------------------------------------


def _host(value, who: str, key: str) -> np.ndarray:
    """Any array-like (NumPy, Tensor, CuPy, a CPU torch tensor) as a NumPy array."""
    if isinstance(value, Tensor):
        return value.numpy()
    if backend.is_array(value):
        return backend.to_numpy(value)
    if hasattr(value, "detach") and hasattr(
        value, "cpu"
    ):  # a torch tensor, without importing torch
        value = value.detach().cpu()
        if str(getattr(value, "dtype", "")) == "torch.bfloat16":
            raise TypeError(
                f"{who}: {key} is a torch.bfloat16 tensor, which NumPy cannot hold; convert it "
                "first with .float()"
            )
        return value.numpy()
    try:
        return np.asarray(value)
    except Exception as e:
        raise TypeError(f"{who}: {key} is a {type(value).__name__}, not an array ({e})") from None


def _state_dict_of(obj, who: str) -> dict:
    """A module's state dict, or the dict itself; values as NumPy arrays."""
    from .nn import Module

    sd = obj.state_dict() if isinstance(obj, Module) else obj
    if not hasattr(sd, "items"):
        raise TypeError(f"{who}: expected a state dict (a mapping) or a Module, got {type(obj)}")
    return {str(k): _host(v, who, str(k)) for k, v in sd.items()}


def _check_shape(who: str, key: str, array: np.ndarray, expected: tuple, why: str = "") -> None:
    if tuple(array.shape) != tuple(expected):
        raise ValueError(
            f"{who}: {key} has shape {tuple(array.shape)}, expected {tuple(expected)}"
            + (f" ({why})" if why else "")
        )


def _take(who: str, sd: dict, key: str, used: set) -> np.ndarray:
    if key not in sd:
        raise ValueError(f"{who}: missing key {key!r} (the state dict has {len(sd)} keys)")
    used.add(key)
    return sd[key]


def _unexpected(who: str, sd: dict, used: set, hint: str) -> None:
    extra = [k for k in sd if k not in used]
    if extra:
        shown = ", ".join(repr(k) for k in extra[:5]) + (" ..." if len(extra) > 5 else "")
        raise ValueError(f"{who}: unexpected keys {shown} ({len(extra)} in all); {hint}")


# -------------------------------------------------------------------------------------------------
# Configuration
# -------------------------------------------------------------------------------------------------


def config_from_nanogpt(config) -> GPTConfig:
    """Our ``GPTConfig`` from nanoGPT's: a ``GPTConfig`` object or a dict (such as the
    ``model_args`` of a nanoGPT checkpoint) with the fields ``n_layer, n_head, n_embd,
    block_size, vocab_size, bias, dropout``. The fields have the same names and meanings, so this
    only checks that all seven are there and nothing else is.

    >>> config_from_nanogpt(dict(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=65,
    ...                          bias=True, dropout=0.0)).n_embd
    32
    """
    if isinstance(config, GPTConfig):
        return config
    if isinstance(config, dict):
        values = dict(config)
    else:
        values = {f: getattr(config, f) for f in NANOGPT_CONFIG_FIELDS if hasattr(config, f)}
    missing = [f for f in NANOGPT_CONFIG_FIELDS if f not in values]
    unknown = [f for f in values if f not in NANOGPT_CONFIG_FIELDS]
    if missing or unknown:
        raise ValueError(
            "config_from_nanogpt: "
            + (f"missing fields {missing}" if missing else "")
            + ("; " if missing and unknown else "")
            + (f"unknown fields {unknown}" if unknown else "")
            + f"; nanoGPT's GPTConfig has exactly {list(NANOGPT_CONFIG_FIELDS)}"
        )
    return GPTConfig(**{f: values[f] for f in NANOGPT_CONFIG_FIELDS})


def config_to_nanogpt(config) -> dict:
    """nanoGPT's ``GPTConfig`` fields as a dict: ``model.GPTConfig(**config_to_nanogpt(c))``."""
    config = config.config if isinstance(config, GPT) else config
    return {f: asdict(config)[f] for f in NANOGPT_CONFIG_FIELDS}


# -------------------------------------------------------------------------------------------------
# GPT <-> nanoGPT
# -------------------------------------------------------------------------------------------------


def is_nanogpt_state_dict(state_dict) -> bool:
    """True when the keys are nanoGPT's (``transformer.wte.weight`` ...), not ours."""
    return any(_strip(k).startswith("transformer.") for k in state_dict)


def _strip(key: str) -> str:
    # a model wrapped by torch.compile saves its keys as "_orig_mod.<name>" (nanoGPT's train.py)
    return key[len("_orig_mod.") :] if key.startswith("_orig_mod.") else key


def from_nanogpt(state_dict, config=None) -> dict:
    """nanoGPT's state dict -> ours (NumPy arrays): ``model.load_state_dict(from_nanogpt(sd))``.

    ``c_attn`` (3C, C) is split into ``q_proj``, ``k_proj``, ``v_proj``; the ``_orig_mod.``
    prefix of a ``torch.compile``'d model and the causal-mask buffers ``attn.bias`` of older
    nanoGPT versions are dropped; ``lm_head.weight`` may be absent (it is the token embedding)
    but, when present, must equal ``transformer.wte.weight``. With ``config`` (ours or
    nanoGPT's), every shape is checked against it; without, the sizes come from the embeddings.
    """
    who = "from_nanogpt"
    sd = {_strip(k): v for k, v in _state_dict_of(state_dict, who).items()}
    # the causal mask buffer (1, 1, T, T) of nanoGPT without flash attention: not a weight
    sd = {k: v for k, v in sd.items() if not re.fullmatch(r"transformer\.h\.\d+\.attn\.bias", k)}
    used: set = set()
    wte = _take(who, sd, "transformer.wte.weight", used)
    wpe = _take(who, sd, "transformer.wpe.weight", used)
    if wte.ndim != 2 or wpe.ndim != 2:
        raise ValueError(
            f"{who}: transformer.wte.weight and transformer.wpe.weight must be 2-D (vocab_size, "
            f"n_embd) and (block_size, n_embd), got {wte.shape} and {wpe.shape}"
        )
    if config is not None:
        cfg = config_from_nanogpt(config)
        V, T, C, n_layer, bias = cfg.vocab_size, cfg.block_size, cfg.n_embd, cfg.n_layer, cfg.bias
        where = "from the config"
    else:
        V, C = wte.shape
        T = wpe.shape[0]
        blocks = {int(m.group(1)) for k in sd if (m := re.match(r"transformer\.h\.(\d+)\.", k))}
        n_layer = max(blocks) + 1 if blocks else 0
        bias = "transformer.ln_f.bias" in sd
        where = "from transformer.wte.weight"
    _check_shape(who, "transformer.wte.weight", wte, (V, C), f"(vocab_size, n_embd) {where}")
    _check_shape(who, "transformer.wpe.weight", wpe, (T, C), f"(block_size, n_embd) {where}")

    out = {"wte.weight": wte, "wpe.weight": wpe}
    shapes = {"ln1": (C,), "ln2": (C,), "attn.out_proj": (C, C), "mlp.0": (4 * C, C)}
    shapes["mlp.2"] = (C, 4 * C)
    for i in range(n_layer):
        p = f"transformer.h.{i}."
        for ours, theirs in _BLOCK_NAMES:
            if ours.endswith(".bias") and not bias:
                continue
            layer = ours.rsplit(".", 1)[0]
            w = _take(who, sd, p + theirs, used)
            expected = shapes[layer] if ours.endswith(".weight") else shapes[layer][:1]
            _check_shape(who, p + theirs, w, expected)
            out[f"h.{i}.{ours}"] = w
        for kind in ("weight", "bias") if bias else ("weight",):
            key = p + "attn.c_attn." + kind
            packed = _take(who, sd, key, used)
            expected = (3 * C, C) if kind == "weight" else (3 * C,)
            _check_shape(who, key, packed, expected, "q, k and v packed: 3 * n_embd rows")
            for j, name in enumerate(_QKV):
                out[f"h.{i}.attn.{name}.{kind}"] = packed[j * C : (j + 1) * C]
    out["ln_f.weight"] = _take(who, sd, "transformer.ln_f.weight", used)
    _check_shape(who, "transformer.ln_f.weight", out["ln_f.weight"], (C,))
    if bias:
        out["ln_f.bias"] = _take(who, sd, "transformer.ln_f.bias", used)
        _check_shape(who, "transformer.ln_f.bias", out["ln_f.bias"], (C,))
    if "lm_head.weight" in sd:
        head = _take(who, sd, "lm_head.weight", used)
        if head.shape != wte.shape or not np.array_equal(head, wte):
            raise ValueError(
                f"{who}: lm_head.weight (shape {head.shape}) differs from transformer.wte.weight "
                f"(shape {wte.shape}); this GPT ties them (one array), as nanoGPT does"
            )
    out["lm_head.weight"] = wte  # tied: the same array under both names, as state_dict() gives
    _unexpected(
        who, sd, used, f"a nanoGPT GPT with n_layer={n_layer} and bias={bias} has no such keys"
    )
    return out


def to_nanogpt(model_or_state_dict) -> dict:
    """Our GPT (or its state dict) -> nanoGPT's state dict, as NumPy arrays.

    ``q_proj``, ``k_proj``, ``v_proj`` are packed into ``c_attn``; ``lm_head.weight`` and
    ``transformer.wte.weight`` are the same array (tied), so ``torch_model.load_state_dict``
    (strict) is satisfied and a file written with ``tg.save`` stores it once.
    """
    who = "to_nanogpt"
    sd = _state_dict_of(model_or_state_dict, who)
    used: set = set()
    out = {}
    for ours, theirs in _TOP_NAMES:
        if ours in sd or not ours.endswith(".bias"):
            out[theirs] = _take(who, sd, ours, used)
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"h\.(\d+)\.", k))})
    for i in blocks:
        for ours, theirs in _BLOCK_NAMES:
            if f"h.{i}.{ours}" in sd or not ours.endswith(".bias"):
                out[f"transformer.h.{i}.{theirs}"] = _take(who, sd, f"h.{i}.{ours}", used)
        for kind in ("weight", "bias"):
            if kind == "bias" and f"h.{i}.attn.q_proj.bias" not in sd:
                continue
            parts = [_take(who, sd, f"h.{i}.attn.{name}.{kind}", used) for name in _QKV]
            out[f"transformer.h.{i}.attn.c_attn.{kind}"] = np.concatenate(parts, axis=0)
    wte = out["transformer.wte.weight"]
    if "lm_head.weight" in sd:
        head = _take(who, sd, "lm_head.weight", used)
        if head is not wte and not np.array_equal(head, wte):
            raise ValueError(
                f"{who}: lm_head.weight differs from wte.weight; nanoGPT ties them (one array)"
            )
    out["lm_head.weight"] = wte
    _unexpected(who, sd, used, "is this the state dict of tinygrad_edu's GPT?")
    return out


def gpt_from_nanogpt(state_dict, config, dtype=None) -> GPT:
    """A ``GPT`` built from nanoGPT's configuration and loaded with its weights, in one call.

    ``config``: nanoGPT's ``GPTConfig`` (or a dict of its fields, e.g. a checkpoint's
    ``model_args``). ``dtype``: the model's parameter dtype; by default the weights' own
    (a float64 nanoGPT gives a float64 model).
    """
    cfg = config_from_nanogpt(config)
    ours = from_nanogpt(state_dict, cfg)
    model = GPT(cfg)
    model.to(dtype=dtype or ours["wte.weight"].dtype)
    model.load_state_dict(ours)
    return model


# -------------------------------------------------------------------------------------------------
# nn.MultiHeadAttention <-> torch.nn.MultiheadAttention
# -------------------------------------------------------------------------------------------------


def from_torch_mha(state_dict) -> dict:
    """``torch.nn.MultiheadAttention``'s state dict -> ours: ``attn.load_state_dict(...)``.

    ``in_proj_weight`` (3E, E) and ``in_proj_bias`` (3E,) are split in q, k, v order; a module
    built with another ``kdim``/``vdim`` has ``q_proj_weight``, ``k_proj_weight``,
    ``v_proj_weight`` instead. ``add_bias_kv`` (``bias_k``, ``bias_v``) has no counterpart here.
    """
    who = "from_torch_mha"
    sd = _state_dict_of(state_dict, who)
    used: set = set()
    for extra in ("bias_k", "bias_v"):
        if extra in sd:
            raise ValueError(
                f"{who}: {extra} (add_bias_kv=True) has no counterpart in nn.MultiHeadAttention"
            )
    out_w = _take(who, sd, "out_proj.weight", used)
    if out_w.ndim != 2 or out_w.shape[0] != out_w.shape[1]:
        raise ValueError(f"{who}: out_proj.weight has shape {out_w.shape}, expected (E, E)")
    E = out_w.shape[0]
    out = {}
    if "in_proj_weight" in sd:
        packed = _take(who, sd, "in_proj_weight", used)
        _check_shape(
            who, "in_proj_weight", packed, (3 * E, E), "q, k and v packed, E from out_proj"
        )
        for j, name in enumerate(_QKV):
            out[f"{name}.weight"] = packed[j * E : (j + 1) * E]
    else:
        for name in _QKV:
            key = f"{name}_weight"
            w = _take(who, sd, key, used)
            if w.ndim != 2 or w.shape[0] != E:
                raise ValueError(f"{who}: {key} has shape {w.shape}, expected ({E}, in_features)")
            out[f"{name}.weight"] = w
    if "in_proj_bias" in sd:
        packed = _take(who, sd, "in_proj_bias", used)
        _check_shape(who, "in_proj_bias", packed, (3 * E,), "q, k and v packed")
        for j, name in enumerate(_QKV):
            out[f"{name}.bias"] = packed[j * E : (j + 1) * E]
    out["out_proj.weight"] = out_w
    if "out_proj.bias" in sd:
        out["out_proj.bias"] = _take(who, sd, "out_proj.bias", used)
        _check_shape(who, "out_proj.bias", out["out_proj.bias"], (E,))
    _unexpected(who, sd, used, "expected torch.nn.MultiheadAttention's keys")
    return out


def to_torch_mha(module_or_state_dict) -> dict:
    """Our ``nn.MultiHeadAttention`` (or its state dict) -> ``torch.nn.MultiheadAttention``'s.

    Packed into ``in_proj_weight``/``in_proj_bias`` when the three projections have the same
    shape (``kdim == vdim == embed_dim``, PyTorch's ``_qkv_same_embed_dim``), separate
    ``q_proj_weight``/``k_proj_weight``/``v_proj_weight`` otherwise (and the bias still packed).
    """
    who = "to_torch_mha"
    sd = _state_dict_of(module_or_state_dict, who)
    used: set = set()
    weights = [_take(who, sd, f"{name}.weight", used) for name in _QKV]
    out = {}
    if weights[0].shape == weights[1].shape == weights[2].shape:
        out["in_proj_weight"] = np.concatenate(weights, axis=0)
    else:
        for name, w in zip(_QKV, weights, strict=True):
            out[f"{name}_weight"] = w
    if "q_proj.bias" in sd:
        biases = [_take(who, sd, f"{name}.bias", used) for name in _QKV]
        out["in_proj_bias"] = np.concatenate(biases, axis=0)
    out["out_proj.weight"] = _take(who, sd, "out_proj.weight", used)
    if "out_proj.bias" in sd:
        out["out_proj.bias"] = _take(who, sd, "out_proj.bias", used)
    _unexpected(who, sd, used, "is this the state dict of nn.MultiHeadAttention?")
    return out

"""``MultiHeadAttention``: every position gathers information from the positions it attends to.

Chapter 9 ("Attention") builds this layer. Each query position ``i`` scores every key position
``j`` with a dot product, turns the scores into weights with a softmax, and returns the weighted
average of the values. ``num_heads`` heads do this side by side on slices of the features, each
with its own projections, so one head can track the previous character while another tracks the
start of the word.

Design (close to ``torch.nn.MultiheadAttention``, with these differences, each on purpose):

* **batch first**: inputs are (B, T, C), as in nanoGPT and ``batch_first=True`` in PyTorch;
* **separate projections** ``q_proj``, ``k_proj``, ``v_proj`` and ``out_proj``, each a ``Linear``
  (the names of PyTorch's ``out_proj`` and of its separate-weight variant, also used by fairseq
  and Hugging Face). PyTorch packs the three input projections into one ``in_proj_weight``
  (3E, E) and ``in_proj_bias`` (3E,); that is exactly ``concat([q_proj.weight, k_proj.weight,
  v_proj.weight])`` and likewise for the biases, so weights convert either way. Separate
  projections read better and make cross attention (keys from another sequence, with ``kdim``
  and ``vdim`` features) the same code as self-attention;
* ``forward(query)`` alone is self-attention (``key`` and ``value`` default to ``query``);
* it returns the output tensor; ``need_weights=True`` returns ``(output, weights)`` with the
  per-head weights (B, H, L, S) (PyTorch's ``average_attn_weights=False``);
* ``causal=True`` at construction makes every call causal (query i sees keys 0..i); the
  ``is_causal`` argument of ``forward`` overrides it for one call.

Masks follow ``torch.nn.MultiheadAttention`` (the opposite of ``F.scaled_dot_product_attention``,
where True means "may attend"): ``key_padding_mask`` (B, S) is True at *padding* keys, which no
query may attend to; a boolean ``attn_mask`` broadcasting to (B, H, L, S), e.g. (L, S), is True
where attention is *not* allowed, and a float ``attn_mask`` is added to the scores (-inf blocks).

Initialisation as PyTorch: ``q_proj``, ``k_proj``, ``v_proj`` weights ``xavier_uniform_`` (as its
separate-weight variant) and their biases zero; ``out_proj`` weight like any ``Linear`` and its bias
zero.

Read next: ``normalization.py``.
"""

from __future__ import annotations

import math

from .. import backend, ops
from .. import functional as F
from .._config import check_positive_sizes
from ..ops import _const
from ..tensor import Tensor
from . import init
from ._checks import check_device, check_dtype, check_ndim, check_size, check_tensor, layer_name
from .linear import Linear
from .module import Module


class MultiHeadAttention(Module):
    """Multi-head scaled dot-product attention (Vaswani et al., 2017), batch first.

    With ``D = embed_dim // num_heads`` and, for every head ``h``::

        Q = query Wq^T + bq,   K = key Wk^T + bk,   V = value Wv^T + bv     (then split into heads)
        A_h = softmax(Q_h K_h^T / sqrt(D) + mask)                           (B, L, S)
        out = concat_h(A_h V_h) Wo^T + bo                                   (B, L, E)

    ``mask`` is -inf where attention is not allowed (causal, padding, ``attn_mask``).
    Backward: autograd through the projections and the fused ``F.scaled_dot_product_attention``.

    Shapes: ``query`` (B, L, embed_dim), ``key`` (B, S, kdim), ``value`` (B, S, vdim) -> (B, L,
    embed_dim). ``dropout`` is the probability of dropping attention weights in training mode.

    >>> import tinygrad_edu as tg
    >>> from tinygrad_edu import nn
    >>> attn = nn.MultiHeadAttention(embed_dim=16, num_heads=4, causal=True)
    >>> x = tg.randn(2, 5, 16)                     # (B, T, C)
    >>> attn(x).shape                              # self-attention
    (2, 5, 16)
    >>> memory = tg.randn(2, 7, 16)
    >>> out, weights = attn(x, memory, is_causal=False, need_weights=True)   # cross attention
    >>> out.shape, weights.shape                   # weights: (B, H, L, S)
    ((2, 5, 16), (2, 4, 5, 7))
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        causal: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        device=None,
        dtype=None,
    ):
        super().__init__()
        check_positive_sizes("MultiHeadAttention", embed_dim=embed_dim, num_heads=num_heads)
        if embed_dim % num_heads != 0:
            raise ValueError(
                f"MultiHeadAttention: embed_dim ({embed_dim}) must be divisible by num_heads "
                f"({num_heads})"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiHeadAttention: dropout must be in [0, 1), got {dropout}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.causal = causal
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        check_positive_sizes("MultiHeadAttention", kdim=self.kdim, vdim=self.vdim)
        kw = dict(bias=bias, device=device, dtype=dtype)
        self.q_proj = Linear(embed_dim, embed_dim, **kw)
        self.k_proj = Linear(self.kdim, embed_dim, **kw)
        self.v_proj = Linear(self.vdim, embed_dim, **kw)
        self.out_proj = Linear(embed_dim, embed_dim, **kw)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            init.xavier_uniform_(proj.weight)
            if proj.bias is not None:
                init.zeros_(proj.bias)
        self.out_proj.reset_parameters()
        if self.out_proj.bias is not None:
            init.zeros_(self.out_proj.bias)

    # ---- helpers ------------------------------------------------------------------------------
    def _split_heads(self, x: Tensor) -> Tensor:
        """(B, T, E) -> (B, H, T, D): head h gets the features h*D .. (h+1)*D - 1."""
        # --- exercise 9.3: splitting the heads ---
        B, T, _ = x.shape
        x = x.reshape(B, T, self.num_heads, self.head_dim)  # (B, T, E) -> (B, T, H, D)
        return x.transpose(0, 2, 1, 3)  # -> (B, H, T, D)
        # --- end exercise ---

    def _check_inputs(self, query, key, value, key_padding_mask, attn_mask):
        for name, t, dim in (
            ("query", query, self.embed_dim),
            ("key", key, self.kdim),
            ("value", value, self.vdim),
        ):
            check_tensor(self, t, name)
            check_ndim(self, t, {3: "(B, T, C)"}, name)
            check_size(self, t, -1, dim, "last dimension {}", name)
            check_device(self, t, self.q_proj.weight.device, name)
            check_dtype(self, t, self.q_proj.weight.dtype, name)
        if key.shape[0] != query.shape[0] or value.shape[0] != query.shape[0]:
            raise ValueError(
                f"{layer_name(self)}: query, key and value must have the same batch size, got "
                f"shapes {query.shape}, {key.shape}, {value.shape}"
            )
        if key.shape[1] != value.shape[1]:
            raise ValueError(
                f"{layer_name(self)}: key and value must have the same length S, got shapes "
                f"{key.shape} and {value.shape}"
            )
        B, L, S = query.shape[0], query.shape[1], key.shape[1]
        for name, mask in (("key_padding_mask", key_padding_mask), ("attn_mask", attn_mask)):
            if mask is not None:
                check_tensor(self, mask, name)
                if mask.device != query.device:
                    raise backend.DeviceError(
                        f"{layer_name(self)}: {name} is on device {mask.device!r} but query is on "
                        f"{query.device!r}; move the mask with .to({query.device!r})"
                    )
        if key_padding_mask is not None:
            if key_padding_mask.dtype != "bool" or key_padding_mask.shape != (B, S):
                raise ValueError(
                    f"{layer_name(self)}: key_padding_mask must be a boolean tensor of shape "
                    f"(B, S) = {(B, S)} (True = padding), got dtype {key_padding_mask.dtype} and "
                    f"shape {key_padding_mask.shape}"
                )
        if attn_mask is not None:
            full = (B, self.num_heads, L, S)
            kind_ok = attn_mask.dtype == "bool" or backend.is_floating(attn_mask.dtype)
            if not kind_ok or ops._broadcast_shape(attn_mask.shape, full) != full:
                raise ValueError(
                    f"{layer_name(self)}: attn_mask must be a boolean (True = not allowed) or "
                    f"float (added to the scores) tensor broadcasting to (B, H, L, S) = {full}, "
                    f"e.g. (L, S), got dtype {attn_mask.dtype} and shape {attn_mask.shape}"
                )

    def _keep_mask(self, B, L, S, key_padding_mask, attn_mask, is_causal, xp):
        """One boolean array, True where a query may attend, broadcasting to (B, H, L, S);
        ``None`` when everything is allowed."""
        keep = None
        if is_causal:
            keep = xp.arange(L)[:, None] >= xp.arange(S)[None, :]  # (L, S): key j <= query i
        if key_padding_mask is not None:
            # (B, S) -> (B, 1, 1, S): a padding key is hidden from every head and query
            pad_keep = xp.reshape(~key_padding_mask.data, (B, 1, 1, S))
            keep = pad_keep if keep is None else keep & pad_keep
        if attn_mask is not None:
            allowed = ~attn_mask.data
            keep = allowed if keep is None else keep & allowed
        return keep

    # ---- forward ------------------------------------------------------------------------------
    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = False,
        attn_mask: Tensor | None = None,
        is_causal: bool | None = None,
    ):
        key = query if key is None else key
        value = key if value is None else value
        is_causal = self.causal if is_causal is None else is_causal
        self._check_inputs(query, key, value, key_padding_mask, attn_mask)
        B, L, S = query.shape[0], query.shape[1], key.shape[1]

        q = self._split_heads(self.q_proj(query))  # (B, L, E) -> (B, H, L, D)
        k = self._split_heads(self.k_proj(key))  # (B, S, kdim) -> (B, H, S, D)
        v = self._split_heads(self.v_proj(value))  # (B, S, vdim) -> (B, H, S, D)

        additive = None
        if attn_mask is not None and attn_mask.dtype != "bool":
            additive, attn_mask = attn_mask.astype(query.dtype), None  # added to the scores
        xp = backend.xp_of(q.data)
        keep = self._keep_mask(B, L, S, key_padding_mask, attn_mask, is_causal, xp)
        mask = None if keep is None else _const(keep)
        if additive is not None:  # one float mask: -inf where ``keep`` blocks
            mask = additive if keep is None else ops.where(mask, additive, -math.inf)
        dropout_p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            # the same computation step by step, to hand the weights back
            scores = (q @ k.mT) * (1.0 / math.sqrt(self.head_dim))  # (B, H, L, S)
            if additive is not None:
                scores = scores + mask
            elif mask is not None:
                scores = ops.where(mask, scores, -math.inf)
            weights = F.softmax(scores, axis=-1)  # a row with every key masked gives zeros
            attended = F.dropout(weights, dropout_p, training=dropout_p > 0.0)
            y = attended @ v  # (B, H, L, S) @ (B, H, S, D) -> (B, H, L, D)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(0, 2, 1, 3).reshape(B, L, self.embed_dim)  # (B, H, L, D) -> (B, L, E)
        out = self.out_proj(y)
        return (out, weights) if need_weights else out

    def extra_repr(self) -> str:
        s = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if self.kdim != self.embed_dim or self.vdim != self.embed_dim:
            s += f", kdim={self.kdim}, vdim={self.vdim}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.q_proj.bias is None:
            s += ", bias=False"
        if self.causal:
            s += ", causal=True"
        return s

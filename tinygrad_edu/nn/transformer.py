"""``TransformerBlock``: attention then an MLP, each on a normalised copy, each added back.

Chapter 10 ("The Transformer block") builds this layer; chapter 11 stacks it into a character
language model. It is the *pre-norm* block of GPT-2 and nanoGPT::

    x = x + dropout(attn(ln1(x)))      # positions exchange information
    x = x + dropout(mlp(ln2(x)))       # each position computes on what it gathered

The residual path ``x -> x + ...`` is never normalised or squashed, so the gradient reaches the
first block undiminished however many blocks are stacked: that is why the norm goes *before* each
sub-layer (the original post-norm block, ``ln(x + attn(x))``, needs a learning-rate warm-up to
train at all).

Names and their counterparts in ``torch.nn.TransformerEncoderLayer(d_model, nhead,
dim_feedforward, dropout, activation="gelu", batch_first=True, norm_first=True)``:
``ln1`` = ``norm1``, ``ln2`` = ``norm2``, ``attn`` = ``self_attn`` (with ``q_proj``, ``k_proj``,
``v_proj`` packed in PyTorch's ``in_proj_weight``, see ``attention.py``), ``mlp.0`` = ``linear1``,
``mlp.2`` = ``linear2``. In nanoGPT's ``Block``: ``ln_1``, ``attn`` (``c_attn`` packs q, k, v;
``c_proj`` = ``out_proj``), ``ln_2``, ``mlp.c_fc`` = ``mlp.0``, ``mlp.c_proj`` = ``mlp.2``. The
two "residual projections" that GPT-2 initialises with a smaller spread are ``attn.out_proj`` and
``mlp.2``.

Read next: ``../optim.py``.
"""

from __future__ import annotations

from ..tensor import Tensor
from ._checks import check_ndim, check_size, check_tensor
from .activation import GELU
from .attention import MultiHeadAttention
from .dropout import Dropout
from .linear import Linear
from .module import Module, Sequential
from .normalization import LayerNorm


class TransformerBlock(Module):
    """Pre-norm Transformer block: attention, then an MLP, each reading a layer-normed copy of
    the stream ``x`` and adding its result back to it (a residual connection).

    ``mlp`` is ``Linear(d_model, dim_feedforward) -> GELU -> Linear(dim_feedforward, d_model)``;
    ``dim_feedforward`` defaults to ``4 * d_model``. ``dropout`` is used on the attention weights
    and on both residual branches. ``bias=False`` removes every bias (the Linears' and the
    LayerNorms'), as nanoGPT's ``bias=False``. ``causal=True`` (the default, for language models)
    lets position t attend to positions 0..t only.

    Shapes: x (B, T, d_model) -> (B, T, d_model); ``key_padding_mask`` (B, T), True at padding.
    Backward: autograd; the residual additions pass ``grad_out`` to both branches unchanged.

    >>> import tinygrad_edu as tg
    >>> from tinygrad_edu import nn
    >>> block = nn.TransformerBlock(d_model=32, n_head=4)
    >>> block(tg.randn(2, 10, 32)).shape
    (2, 10, 32)
    >>> [name for name, _ in block.named_parameters()][:4]
    ['ln1.weight', 'ln1.bias', 'attn.q_proj.weight', 'attn.q_proj.bias']
    """

    def __init__(
        self,
        d_model: int,
        n_head: int,
        dim_feedforward: int | None = None,
        dropout: float = 0.0,
        bias: bool = True,
        causal: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.d_model = d_model
        self.n_head = n_head
        self.dim_feedforward = 4 * d_model if dim_feedforward is None else dim_feedforward
        kw = dict(device=device, dtype=dtype)
        self.ln1 = LayerNorm(d_model, bias=bias, **kw)
        self.attn = MultiHeadAttention(
            d_model, n_head, dropout=dropout, bias=bias, causal=causal, **kw
        )
        self.ln2 = LayerNorm(d_model, bias=bias, **kw)
        self.mlp = Sequential(
            Linear(d_model, self.dim_feedforward, bias=bias, **kw),
            GELU(),
            Linear(self.dim_feedforward, d_model, bias=bias, **kw),
        )
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        check_tensor(self, x)
        check_ndim(self, x, {3: "(B, T, d_model)"})
        check_size(self, x, -1, self.d_model, "last dimension {}")
        # --- exercise 10.3: the pre-norm block forward ---
        x = x + self.dropout(self.attn(self.ln1(x), key_padding_mask=key_padding_mask))
        x = x + self.dropout(self.mlp(self.ln2(x)))  # (B, T, C) -> (B, T, 4C) -> (B, T, C)
        return x
        # --- end exercise ---

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, n_head={self.n_head}, dim_feedforward={self.dim_feedforward}"
        )

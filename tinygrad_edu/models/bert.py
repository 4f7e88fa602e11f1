"""A character-level BERT: a bidirectional Transformer encoder (chapter 15).

The GPT of chapter 11 reads left to right: position ``t`` sees positions ``0..t`` only, because
its job is to predict ``t + 1``. BERT (Devlin et al., 2019) drops the causal mask, so every
position sees the whole sequence, and trains on a task for which that is not cheating: some
characters are hidden (replaced by ``[MASK]``, mostly) and the model fills them in from both
sides, the *masked language model* (MLM) objective. Its outputs are then a summary of the whole
text at every position, which is what a classifier wants; the vector at the ``[CLS]`` token that
starts every sequence is the one a classification head reads.

    ids (B, T), padded -> token embedding (padding_idx) + position embedding  (B, T, C)
                          (+ segment embedding, optional)
                       -> n_layer pre-norm blocks, *not* causal, padding keys masked out
                       -> final LayerNorm                                      (B, T, C)
                       -> MLM head: the token embedding, transposed, plus a bias (B, T, V)

A sequence is ``[CLS] c_1 ... c_n [SEP]`` followed by ``[PAD]`` up to the batch's length
(``data.pad_batch``); ``key_padding_mask`` (B, T), True at padding, hides the padding from every
query, so a real position's output does not depend on how much padding follows it.

Differences from the original BERT, each on purpose: the blocks are the library's pre-norm
``nn.TransformerBlock`` (as in the GPT; BERT's are post-norm, with a LayerNorm after the
embeddings), so that the two models differ only in the mask and the objective; no next-sentence
prediction and no pooler (``Linear + tanh`` on ``[CLS]``, trained by that task); the MLM head
is the tied embedding plus a bias, without BERT's extra ``Linear + GELU + LayerNorm``.

Shape letters: B batch, T positions (``T <= block_size``), C ``n_embd``, V ``vocab_size``
(characters and special tokens).

Read next: chapter 15, then ``tinygrad_edu/train.py`` for the loop this chapter writes by hand.

>>> import math
>>> import tinygrad_edu as tg
>>> tg.manual_seed(0)
>>> model = BERT(BERTConfig(vocab_size=12, pad_id=8, block_size=8, n_layer=1, n_head=2, n_embd=16))
>>> idx = tg.tensor([[9, 11, 2, 10], [9, 3, 11, 8]])  # 8 [PAD], 9 [CLS], 10 [SEP], 11 [MASK]
>>> pad = tg.tensor([[False, False, False, False], [False, False, False, True]])
>>> targets = tg.tensor([[-100, 1, -100, -100], [-100, -100, 5, -100]])  # the masked ones
>>> logits, loss = model(idx, targets, key_padding_mask=pad)
>>> logits.shape, abs(loss.item() - math.log(12)) < 0.3  # about log V at initialisation
((2, 4, 12), True)
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import backend, nn
from .. import functional as F
from .._config import check_dropout, check_nonnegative_int, check_positive_ints
from ..tensor import Tensor, arange

# the target of a position that is not predicted: cross_entropy skips it (PyTorch's default)
IGNORE_INDEX = -100


@dataclass
class BERTConfig:
    """The encoder's shape. Defaults: a small model that pretrains in seconds on a CPU."""

    # Characters plus special tokens: CharTokenizer(text, special_tokens=SPECIAL_TOKENS).vocab_size.
    vocab_size: int = 69
    # Id of [PAD]: its embedding row starts at 0 and gets no gradient (Embedding's padding_idx).
    # None: no padding row.
    pad_id: int | None = None
    # Longest sequence, [CLS] and [SEP] included: position embeddings exist for 0..block_size-1.
    block_size: int = 64
    # Depth, heads and width, as in GPTConfig (chapter 15's model: 2 layers, 4 heads of 8).
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 32
    # Dropout on embeddings, attention weights and residual branches (BERT uses 0.1; 0.0 for
    # the few hundred steps of the chapter).
    dropout: float = 0.0
    # Biases in Linear and LayerNorm layers (BERT has them).
    bias: bool = True
    # Segment embeddings (BERT's token types: sentence A = 0, sentence B = 1); 0 = none.
    type_vocab_size: int = 0

    def __post_init__(self):
        check_positive_ints(self, "vocab_size", "block_size", "n_layer", "n_head", "n_embd")
        check_nonnegative_int(self, "type_vocab_size")
        if self.pad_id is not None and not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(
                f"BERTConfig: pad_id {self.pad_id} must be an id of the vocabulary, in "
                f"0..{self.vocab_size - 1}"
            )
        if self.n_embd % self.n_head:
            raise ValueError(
                f"BERTConfig: n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})"
            )
        check_dropout(self)
        if not isinstance(self.bias, bool):  # "false" from an edited file would mean True
            raise ValueError(f"BERTConfig: bias must be True or False, got {self.bias!r}")


class BERT(nn.Module):
    """The bidirectional encoder with its tied MLM head (see the module docstring)."""

    def __init__(self, config: BERTConfig):
        super().__init__()
        self.config = config
        C = config.n_embd
        # (V, C); the [PAD] row starts at 0 and its lookups do not train it
        self.tok_emb = nn.Embedding(config.vocab_size, C, padding_idx=config.pad_id)
        self.pos_emb = nn.Embedding(config.block_size, C)  # (T, C)
        if config.type_vocab_size:
            self.seg_emb = nn.Embedding(config.type_vocab_size, C)  # (2, C) in BERT
        else:
            self.seg_emb = None
        self.drop = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            [
                # causal=False: every position attends to every (non-padding) position
                nn.TransformerBlock(
                    C, config.n_head, dropout=config.dropout, bias=config.bias, causal=False
                )
                for _ in range(config.n_layer)
            ]
        )
        self.ln_f = nn.LayerNorm(C, bias=config.bias)
        # the MLM head: scores (B, T, V) = x @ tok_emb.weight^T + bias, one tied Parameter
        self.mlm_head = nn.Linear(C, config.vocab_size, bias=True)
        self.mlm_head.weight = self.tok_emb.weight
        self._init_weights()

    def _init_weights(self) -> None:
        """Embeddings N(0, 0.02) as in BERT, with the [PAD] row at 0; the MLM head's bias at 0.

        The blocks keep the library's (PyTorch's) initialisation of ``nn.Linear``,
        ``nn.MultiHeadAttention`` and ``nn.LayerNorm``; BERT itself draws every matrix from
        N(0, 0.02).
        """
        for emb in (self.tok_emb, self.pos_emb, self.seg_emb):
            if emb is not None:
                nn.init.normal_(emb.weight, 0.0, 0.02)
        if self.config.pad_id is not None:
            self.tok_emb.weight.data[self.config.pad_id, ...] = 0.0
        nn.init.zeros_(self.mlm_head.bias)

    def _check_inputs(self, idx, key_padding_mask, token_type_ids) -> None:
        if not isinstance(idx, Tensor) or idx.ndim != 2:
            shape = idx.shape if isinstance(idx, Tensor) else type(idx).__name__
            raise ValueError(f"BERT: expected ids as a (B, T) Tensor, got {shape}")
        B, T = idx.shape
        V = self.config.vocab_size
        if not backend.is_integer(idx.dtype):
            raise TypeError(
                f"BERT: ids must be integers, got dtype {idx.dtype} (shape {idx.shape})"
            )
        _check_ids_in_vocab(idx, V, "BERT", IndexError, note=", special tokens included")
        if T > self.config.block_size:
            raise ValueError(
                f"BERT: a sequence of length {T} is longer than block_size "
                f"{self.config.block_size}; crop it or build the model with a larger block_size"
            )
        if key_padding_mask is not None and (
            not isinstance(key_padding_mask, Tensor)
            or key_padding_mask.dtype != "bool"
            or key_padding_mask.shape != (B, T)
        ):
            got = (
                f"dtype {key_padding_mask.dtype} and shape {key_padding_mask.shape}"
                if isinstance(key_padding_mask, Tensor)
                else type(key_padding_mask).__name__
            )
            raise ValueError(
                f"BERT: key_padding_mask must be a boolean Tensor of the ids' shape (B, T) = "
                f"{(B, T)}, True at padding, got {got}"
            )
        if token_type_ids is not None:
            if self.seg_emb is None:
                raise ValueError(
                    "BERT: got token_type_ids but the model has no segment embedding; build it "
                    "with BERTConfig(type_vocab_size=2)"
                )
            if not isinstance(token_type_ids, Tensor) or token_type_ids.shape != (B, T):
                got = getattr(token_type_ids, "shape", type(token_type_ids).__name__)
                raise ValueError(
                    f"BERT: token_type_ids must be a Tensor of the ids' shape {(B, T)}, got {got}"
                )

    def encode(
        self,
        idx: Tensor,
        key_padding_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> Tensor:
        """The final hidden state of every position, (B, T) ids -> (B, T, C).

        ``key_padding_mask`` (B, T) bool, True at padding (``data.pad_batch`` returns it);
        ``token_type_ids`` (B, T), the segment of every position (zeros when not given).
        """
        self._check_inputs(idx, key_padding_mask, token_type_ids)
        B, T = idx.shape
        pos = arange(T, device=idx.device)  # (T,): padding is on the right, so 0..T-1 for all
        x = self.tok_emb(idx) + self.pos_emb(pos)  # (B, T, C) + (T, C) -> (B, T, C)
        if self.seg_emb is not None:
            if token_type_ids is None:
                token_type_ids = idx * 0  # (B, T): everything is segment 0
            x = x + self.seg_emb(token_type_ids)  # (B, T, C)
        x = self.drop(x)
        for layer in self.layers:
            x = layer(x, key_padding_mask=key_padding_mask)  # (B, T, C), padding keys hidden
        return self.ln_f(x)  # (B, T, C)

    def forward(
        self,
        idx: Tensor,
        targets: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ):
        """MLM scores at every position and the loss on the chosen positions.

        ``idx`` (B, T) int64, masked as :func:`mask_tokens` does; ``targets`` (B, T): the
        original id at every chosen position, ``IGNORE_INDEX`` elsewhere (or None: no loss).
        Returns ``(logits (B, T, V), loss)``.
        """
        x = self.encode(idx, key_padding_mask, token_type_ids)  # (B, T, C)
        logits = self.mlm_head(x)  # (B, T, C) -> (B, T, V)
        loss = None if targets is None else mlm_loss(logits, targets)
        return logits, loss


class BERTClassifier(nn.Module):
    """A classification head on the encoder's ``[CLS]`` vector (position 0).

    ``[CLS]`` carries no character of its own, and in a bidirectional encoder it attends to the
    whole sequence, so after fine-tuning its final state is a summary of the text made for the
    task. Shapes: ``idx`` (B, T) -> logits (B, num_classes).
    """

    def __init__(self, body: BERT, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.body = body
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(body.config.n_embd, num_classes)

    def forward(self, idx: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        h = self.body.encode(idx, key_padding_mask)  # (B, T, C)
        return self.head(self.drop(h[:, 0]))  # the [CLS] vector (B, C) -> (B, num_classes)


# -------------------------------------------------------------------------------------------------
# The pretraining task
# -------------------------------------------------------------------------------------------------


def mask_tokens(ids: Tensor, vocab_size: int, mask_id: int, special_ids, mask_prob: float = 0.15):
    """BERT's masking: choose positions to predict and corrupt the input there.

    Every position whose id is not special is chosen with probability ``mask_prob`` (15% in
    BERT), independently. A chosen position's input becomes

    * ``mask_id`` with probability 0.8,
    * a random non-special id (uniform) with probability 0.1,
    * its own id, unchanged, with probability 0.1,

    and its target is its original id; every other position keeps its input and gets the target
    ``IGNORE_INDEX``, so the loss counts the chosen positions only. Special tokens (``[PAD]``,
    ``[CLS]``, ``[SEP]``, ``[MASK]``, listed in ``special_ids``) are never chosen.

    Shapes: ``ids`` (B, T) int64 -> ``(inputs, targets)``, both (B, T) int64 on ``ids``' device.
    The draws come from the framework's generator (``tg.manual_seed`` fixes them), made on the
    host and moved to ``ids``' device, as every random draw of the library.
    """
    special = sorted({int(i) for i in special_ids})
    _check_mask_args(ids, vocab_size, mask_id, special, mask_prob)
    xp = backend.xp_of(ids.data)
    x = ids.data  # (B, T)
    # the ids a random replacement may be: every id that is not special
    regular = [i for i in range(vocab_size) if i not in special]
    regular = backend.asarray(regular, dtype="int64", device=ids.device)  # (R,)
    # --- exercise 15.1: BERT's 80/10/10 masking ---
    candidate = xp.ones(x.shape, dtype=xp.bool)  # (B, T): special tokens are never predicted
    for s in special:
        candidate = candidate & (x != s)
    u = backend.rand(x.shape, "float64", ids.device)  # one uniform draw per position ...
    chosen = candidate & (u < mask_prob)  # ... chooses it with probability mask_prob
    targets = xp.where(chosen, x, xp.full_like(x, IGNORE_INDEX))  # the loss sees these only
    action = backend.rand(x.shape, "float64", ids.device)  # a second draw: what it shows
    to_mask = chosen & (action < 0.8)  # 80%: [MASK]
    to_random = chosen & (action >= 0.8) & (action < 0.9)  # 10%: a random id; 10%: unchanged
    k = backend.randint(0, regular.shape[0], (x.size,), ids.device)  # (B*T,) random indices
    random_ids = xp.reshape(xp.take(regular, k), x.shape)  # (B, T) random non-special ids
    inputs = xp.where(to_random, random_ids, x)
    inputs = xp.where(to_mask, xp.full_like(x, mask_id), inputs)
    # --- end exercise ---
    return Tensor(inputs), Tensor(targets)


def _check_ids_in_vocab(ids: Tensor, vocab_size: int, who: str, error, note: str = "") -> None:
    """Raise ``error`` naming ``who``, the shape and the range found unless every id is in
    0..vocab_size-1."""
    if ids.size:
        xp = backend.xp_of(ids.data)
        lo, hi = int(xp.min(ids.data)), int(xp.max(ids.data))
        if lo < 0 or hi >= vocab_size:
            raise error(
                f"{who}: ids of shape {ids.shape} range over {lo}..{hi}, out of range for "
                f"vocab_size={vocab_size} (valid: 0..{vocab_size - 1}{note})"
            )


def _check_mask_args(ids, vocab_size, mask_id, special, mask_prob) -> None:
    if not isinstance(ids, Tensor) or not backend.is_integer(ids.dtype):
        got = f"dtype {ids.dtype}" if isinstance(ids, Tensor) else type(ids).__name__
        raise TypeError(f"mask_tokens: ids must be an integer Tensor, got {got}")
    if not (isinstance(mask_prob, (int, float)) and 0.0 <= mask_prob <= 1.0):
        raise ValueError(f"mask_tokens: mask_prob must be a probability in [0, 1], got {mask_prob}")
    for name, value in [("mask_id", mask_id)] + [("special id", s) for s in special]:
        if not 0 <= value < vocab_size:
            raise ValueError(
                f"mask_tokens: {name} {value} is out of range for vocab_size={vocab_size} "
                f"(valid: 0..{vocab_size - 1})"
            )
    if mask_id not in special:
        raise ValueError(
            f"mask_tokens: mask_id {mask_id} must be one of special_ids {special}, so that "
            "it is never drawn as a random replacement nor chosen itself"
        )
    _check_ids_in_vocab(ids, vocab_size, "mask_tokens", ValueError)


def mlm_loss(logits: Tensor, targets: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """The masked-language-model loss: mean cross-entropy over the chosen positions only.

    With ``S`` the set of positions whose target is not ``ignore_index``::

        loss = -(1 / |S|) * sum over (b, t) in S of log softmax(logits[b, t])[targets[b, t]]

    Unchosen positions add nothing to the sum *and nothing to the count*: dividing by all
    ``B * T`` positions would shrink the loss (and its gradient) by the masking rate. Their
    logits get a zero gradient. With no chosen position at all the mean is 0 / 0 = nan, as in
    PyTorch.

    Shapes: ``logits`` (B, T, V), ``targets`` (B, T) int64 -> a scalar.
    """
    if not isinstance(logits, Tensor) or logits.ndim != 3:
        got = logits.shape if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"mlm_loss: logits must be a (B, T, V) Tensor, got {got}")
    if not isinstance(targets, Tensor) or targets.shape != logits.shape[:2]:
        got = targets.shape if isinstance(targets, Tensor) else type(targets).__name__
        raise ValueError(
            f"mlm_loss: targets must be a Tensor of shape (B, T) = {logits.shape[:2]} for logits "
            f"of shape {logits.shape}, got {got}"
        )
    B, T, V = logits.shape
    # --- exercise 15.2: the MLM loss ---
    logits = logits.reshape(B * T, V)  # every position is one classification row
    targets = targets.reshape(B * T)
    # ignore_index rows add 0 to the sum and 0 to the count: the mean is over chosen positions
    return F.cross_entropy(logits, targets, ignore_index=ignore_index)
    # --- end exercise ---

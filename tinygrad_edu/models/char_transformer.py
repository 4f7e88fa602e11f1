"""A character-level GPT: the book's final model (chapter 11).

The model reads ``T`` character ids and, at every position ``t``, outputs scores (logits) for the
character at ``t + 1``. It is nanoGPT's GPT-2 design at small scale:

    ids (B, T) -> token embedding + learned position embedding                 (B, T, C)
               -> n_layer pre-norm blocks:  x = x + attn(ln_1(x))  (causal self-attention)
                                            x = x + mlp(ln_2(x))   (Linear-GELU-Linear, 4C wide)
               -> final LayerNorm -> head (the token embedding, transposed)     (B, T, V)

Shape letters: B batch, T positions (``T <= block_size``), C ``n_embd``, H ``n_head``,
D = C / H per head, V ``vocab_size``.

Three details that matter for how well it trains (GPT-2 section 2.3, nanoGPT ``model.py``):

* **Pre-norm.** LayerNorm sits *inside* each residual branch, so the residual stream ``x`` is a
  plain sum of branch outputs and the gradient flows through it undisturbed at any depth.
* **Tied output head.** The head's weight *is* the token embedding (the same ``Parameter``): the
  score of character ``v`` is the dot product of the final state with ``v``'s embedding. This saves
  ``V * C`` parameters and gives both uses the same notion of similarity.
* **Initialisation.** Every weight matrix starts ``N(0, 0.02)``, biases at 0; the two projections
  that write into the residual stream (``attn.c_proj``, ``mlp.c_proj``) start with std
  ``0.02 / sqrt(2 * n_layer)``, so the stream's variance does not grow with depth
  (``2 * n_layer`` branches add into it).

Read next: ``train.py`` (the training loop) and ``examples/char_transformer.py``.

>>> import tinygrad_edu as tg
>>> tg.manual_seed(0)
>>> model = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=16))
>>> idx, targets = tg.randint(0, 10, (2, 8)), tg.randint(0, 10, (2, 8))
>>> logits, loss = model(idx, targets)
>>> logits.shape, round(loss.item(), 1)  # about log(10) = 2.3 at initialisation
((2, 8, 10), 2.3)
>>> model.generate(idx[:, :3], max_new_tokens=4).shape
(2, 7)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import backend, nn
from .. import functional as F
from .._config import check_dropout, check_positive_ints
from ..autograd import no_grad
from ..ops import concat
from ..optim import AdamW
from ..tensor import Tensor, arange, rand


@dataclass
class GPTConfig:
    """The model's shape. Defaults: nanoGPT's CPU recipe for tiny Shakespeare (benchmark B3)."""

    # Longest context the model sees: position embeddings exist for 0..block_size-1 only, and
    # generation crops its input to the last block_size characters.
    block_size: int = 64
    # Number of distinct characters; set it from the tokenizer (65 for tiny Shakespeare).
    vocab_size: int = 65
    # Depth: 4 blocks are enough for character statistics and train in minutes on a CPU.
    n_layer: int = 4
    # Attention heads per block; each attends with D = n_embd / n_head = 32 dimensions.
    n_head: int = 4
    # Width of the residual stream (C); the MLP inside a block is 4 * n_embd wide.
    n_embd: int = 128
    # Dropout probability on embeddings, attention weights and residual branches; 0.0 because
    # a 0.8M-parameter model trained for 2,000 steps does not overfit tiny Shakespeare.
    dropout: float = 0.0
    # Biases in Linear and LayerNorm layers; False as in nanoGPT's recipe (a little faster, and
    # LayerNorm's shift makes most of them redundant).
    bias: bool = False

    def __post_init__(self):
        check_positive_ints(self, "block_size", "vocab_size", "n_layer", "n_head", "n_embd")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"GPTConfig: n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}), "
                "so that every head gets n_embd / n_head dimensions"
            )
        check_dropout(self)
        if not isinstance(self.bias, bool):  # "false" from an edited file would mean True
            raise ValueError(f"GPTConfig: bias must be True or False, got {self.bias!r}")


class GPT(nn.Module):
    """The character-level Transformer language model (see the module docstring).

    The blocks are the library's ``nn.TransformerBlock`` (chapter 10): pre-norm, causal
    multi-head attention, a GELU MLP 4C wide. Top-level names follow nanoGPT (``wte``, ``wpe``,
    ``h``, ``ln_f``, ``lm_head``, without its ``transformer.`` prefix); inside a block they are
    the block's own (``h.0.ln1``, ``h.0.attn.q_proj`` ... ``h.0.attn.out_proj``, ``h.0.mlp.0``,
    ``h.0.mlp.2``).
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embedding (V, C)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # position embedding (T, C)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(
            [
                nn.TransformerBlock(
                    config.n_embd, config.n_head, dropout=config.dropout, bias=config.bias
                )
                for _ in range(config.n_layer)
            ]
        )
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: the head's weight (V, C) *is* the token embedding's, one Parameter that
        # both uses update. named_parameters() lists it once, as "wte.weight".
        self.lm_head.weight = self.wte.weight
        self._init_weights()

    def _init_weights(self) -> None:
        """N(0, 0.02) for matrices and embeddings, 0 for biases, (1, 0) for LayerNorm; the
        residual projections get std 0.02 / sqrt(2 * n_layer) (GPT-2)."""
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        # the two Linears whose output is added into the residual stream, in every block
        residual = ("attn.out_proj.weight", "mlp.2.weight")
        layer_norms = {id(m) for m in self.modules() if isinstance(m, nn.LayerNorm)}
        for module in self.modules():
            if id(module) in layer_norms:
                continue  # LayerNorm keeps weight = 1, bias = 0
            for name, p in module._parameters.items():
                if p is None:
                    continue
                if name == "bias":
                    nn.init.zeros_(p)
                else:
                    nn.init.normal_(p, 0.0, 0.02)
        for name, p in self.named_parameters():
            if name.endswith(residual):
                nn.init.normal_(p, 0.0, residual_std)

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position embedding (as nanoGPT reports it;
        the token embedding is counted because the head uses it)."""
        n = super().num_parameters()
        return n - self.wpe.weight.size if non_embedding else n

    def encode(self, idx: Tensor) -> Tensor:
        """The final hidden state of every position: (B, T) ids -> (B, T, C).

        Token embedding plus position embedding, the blocks, the final LayerNorm: everything
        but the head. ``forward`` turns it into logits; a classifier pools it (chapter 14).
        """
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(
                f"GPT: a sequence of length {T} is longer than block_size "
                f"{self.config.block_size}; crop it to the last {self.config.block_size} ids"
            )
        # --- exercise 11.1: the GPT forward pass ---
        pos = arange(T, device=idx.device)  # (T,)
        tok_emb = self.wte(idx)  # (B, T) -> (B, T, C)
        pos_emb = self.wpe(pos)  # (T,) -> (T, C), broadcast over the batch below
        x = self.drop(tok_emb + pos_emb)  # (B, T, C)
        for block in self.h:
            x = block(x)  # (B, T, C)
        x = self.ln_f(x)  # (B, T, C)
        # --- end exercise ---
        return x

    def forward(self, idx: Tensor, targets: Tensor | None = None, ignore_index: int = -1):
        """Logits for the next character at every position, and the mean cross-entropy loss
        against ``targets`` (None without targets).

        ``idx`` and ``targets``: (B, T) int64 with ``T <= block_size``. Returns logits (B, T, V).
        Positions whose target is ``ignore_index`` count for nothing; the default -1 is
        nanoGPT's (PyTorch's ``F.cross_entropy`` defaults to -100: pass ``ignore_index=-100``
        for targets padded that way).
        """
        B, T = idx.shape
        x = self.encode(idx)  # (B, T) -> (B, T, C)
        logits = self.lm_head(x)  # the tied head: x @ wte.weight.T, (B, T, C) -> (B, T, V)
        if targets is None:
            return logits, None
        V = logits.shape[-1]
        # every position is one classification example: (B*T, V) scores against (B*T,) ids
        loss = F.cross_entropy(
            logits.reshape(B * T, V), targets.reshape(B * T), ignore_index=ignore_index
        )
        return logits, loss

    def configure_optimizers(self, weight_decay: float, learning_rate: float, betas=(0.9, 0.99)):
        """AdamW with weight decay on every parameter of 2 or more dimensions (the Linear
        weights *and* the token/position embeddings, as nanoGPT does) and none on 1-D ones
        (LayerNorm weights, biases): decaying a gain or a shift towards 0 only hurts."""
        return AdamW(param_groups(self, weight_decay), lr=learning_rate, betas=tuple(betas))

    def generate(self, idx: Tensor, max_new_tokens: int, temperature=1.0, top_k=None) -> Tensor:
        """Continue each row of ``idx`` (B, T0) by ``max_new_tokens`` sampled characters.

        See :func:`generate` (shared with the LSTM model).
        """
        return generate(self, idx, max_new_tokens, temperature, top_k, self.config.block_size)


class GPTClassifier(nn.Module):
    """A classification head on a GPT's pooled hidden states (chapter 14).

    ``body.encode`` gives one hidden state per position (B, T, C); *pooling* turns them into one
    feature vector per window (B, C), and a ``Linear(C, num_classes)`` head maps it to class
    scores (B, num_classes). ``pool="mean"`` averages over the positions; ``pool="last"`` takes
    the last position's state, the only one that has seen the whole window in a causal model.
    Freeze the body (``body.requires_grad_(False)``) to train the head alone.

    >>> import tinygrad_edu as tg
    >>> tg.manual_seed(0)
    >>> body = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=16))
    >>> GPTClassifier(body, num_classes=3)(tg.randint(0, 10, (4, 8))).shape
    (4, 3)
    """

    POOLS = ("mean", "last")

    def __init__(self, body: GPT, num_classes: int, pool: str = "mean"):
        super().__init__()
        if pool not in self.POOLS:
            raise ValueError(f"GPTClassifier: pool must be one of {self.POOLS}, got {pool!r}")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f"GPTClassifier: num_classes must be a positive integer, got {num_classes!r}"
            )
        self.body = body
        self.pool = pool
        self.head = nn.Linear(body.config.n_embd, num_classes)

    def forward(self, idx: Tensor) -> Tensor:
        """Class scores (logits) of each window: (B, T) ids -> (B, num_classes)."""
        h = self.body.encode(idx)  # (B, T, C)
        # --- exercise 14.2: the classifier head on pooled features ---
        if self.pool == "mean":
            features = h.mean(axis=1)  # (B, T, C) -> (B, C): the average over positions
        else:
            features = h[:, -1]  # (B, T, C) -> (B, C): the last position
        logits = self.head(features)  # (B, C) -> (B, num_classes)
        # --- end exercise ---
        return logits


# -------------------------------------------------------------------------------------------------
# Helpers shared with models/char_rnn.py
# -------------------------------------------------------------------------------------------------


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two optimizer groups: ``weight_decay`` for parameters with ``ndim >= 2``, 0 for the rest."""
    params = model.parameters()
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def sample_next(logits: Tensor, temperature: float = 1.0, top_k: int | None = None) -> Tensor:
    """Draw one id per row from ``softmax(logits / temperature)``, keeping only the ``top_k``
    largest scores when given. ``logits`` (B, V) -> ids (B, 1) int64.

    Sampling is by the inverse CDF, with the device's own array functions (so it runs on any
    device) and the framework's generator (so a seed fixes the text): with ``c = cumsum(p)`` and
    ``u`` uniform in [0, c_V), the sample is the number of entries of ``c`` that are ``<= u``. A
    token of probability 0 adds a step of height 0 to ``c`` and can never be chosen;
    ``top_k=1`` is greedy decoding (the argmax).

    >>> import tinygrad_edu as tg
    >>> sample_next(tg.tensor([[0.0, 5.0, 1.0]]), top_k=1).tolist()
    [[1]]
    """
    if not temperature > 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}; use top_k=1 for greedy")
    if top_k is not None and int(top_k) < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    B, V = logits.shape
    # --- exercise 11.4: temperature and top-k ---
    logits = logits / temperature  # (B, V): below 1 sharpens, above 1 flattens
    if top_k is not None:
        k = min(int(top_k), V)
        # the k-th largest score of each row, from the sorted raw array (no gradient needed) ...
        xp = backend.xp_of(logits.data)
        kth = Tensor(xp.sort(logits.data, axis=-1)[:, V - k : V - k + 1])  # (B, 1)
        # ... and every score below it gets probability 0
        logits = logits.masked_fill(logits < kth, -math.inf)
    # --- end exercise ---
    probs = F.softmax(logits, axis=-1)  # (B, V)
    # cdf[:, j] = sum_{i <= j} probs[:, i], on the raw array (no gradient is needed): O(V). A
    # product with a (V, V) triangle of ones did the same in O(V^2): 5 samples at V = 18,981 took
    # 14.6 s and a 4.5 GiB peak against 0.002 s and 37 MiB (one thread, CPU time)
    cdf = Tensor(backend.cumulative_sum(probs.data, axis=-1))  # (B, V)
    u = rand(B, 1, dtype=probs.dtype, device=probs.device) * cdf[:, V - 1 :]  # (B, 1)
    idx_next = (cdf <= u).astype("int64").sum(axis=1, keepdims=True)  # (B, 1)
    return idx_next.clip(0, V - 1)


def generate(model, idx: Tensor, max_new_tokens: int, temperature, top_k, block_size) -> Tensor:
    """Autoregressive sampling: append one sampled id at a time, feeding the result back in.

    ``idx`` (B, T0) int64 -> (B, T0 + max_new_tokens). The model runs in evaluation mode (no
    dropout) and without recording a graph; its previous mode is restored afterwards. Sampling
    uses the framework's generator, so ``tg.manual_seed(s)`` before a call fixes the text.
    """
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for _ in range(max_new_tokens):
                # 1. crop the context: the model has positions 0..block_size-1 only
                idx_cond = idx if idx.shape[1] <= block_size else idx[:, -block_size:]
                # 2. scores for the character after the last position
                logits, _ = model(idx_cond)  # (B, T, V)
                logits = logits[:, -1, :]  # (B, T, V) -> (B, V)
                # 3. temperature, top-k, softmax and one draw per row
                idx_next = sample_next(logits, temperature, top_k)  # (B, 1)
                # 4. append it and go again
                idx = concat([idx, idx_next], axis=1)  # (B, T) -> (B, T + 1)
    finally:
        model.train(was_training)
    return idx

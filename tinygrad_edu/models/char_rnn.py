"""A character-level LSTM language model: the recurrent baseline for chapter 11 (and B2).

The same job and the same interface as the Transformer in ``char_transformer.py``:
``forward(idx, targets=None) -> (logits, loss)``, ``generate(idx, max_new_tokens, temperature,
top_k)``, ``configure_optimizers``; so ``train.py``, the checkpoints and the example's ``sample``
mode work for both. Where the Transformer lets every position look at every earlier one through
attention, the LSTM carries one state vector from left to right (chapter 8)::

    ids (B, T) -> Embedding (B, T, E) -> LSTM (B, T, H) -> Linear head (B, T, V)

Generation re-reads the last ``block_size`` characters each step (no state is carried between
calls): the model then always sees contexts like those it was trained on, windows of at most
``block_size`` characters that start from a zero state.

>>> import tinygrad_edu as tg
>>> tg.manual_seed(0)
>>> model = CharLSTM(CharLSTMConfig(vocab_size=10, block_size=8, n_embd=4, hidden_size=16))
>>> idx, targets = tg.randint(0, 10, (2, 8)), tg.randint(0, 10, (2, 8))
>>> logits, loss = model(idx, targets)
>>> logits.shape, model.generate(idx[:, :3], max_new_tokens=2).shape
((2, 8, 10), (2, 5))
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import functional as F
from .. import nn
from .._config import check_dropout, check_positive_ints
from ..optim import AdamW
from ..tensor import Tensor
from .char_transformer import generate, param_groups


@dataclass
class CharLSTMConfig:
    """The LSTM model's shape. Defaults: benchmark B2 (embedding 64, LSTM 256)."""

    # Training window, and the context generation re-reads at every step.
    block_size: int = 64
    # Number of distinct characters; set it from the tokenizer.
    vocab_size: int = 65
    # Width of the character embedding fed to the LSTM (E).
    n_embd: int = 64
    # Width of the LSTM state (H): the model's whole memory of the text so far.
    hidden_size: int = 256
    # Stacked LSTM layers; one is enough for a baseline.
    num_layers: int = 1
    # Dropout on the LSTM output before the head (0: no regularisation).
    dropout: float = 0.0

    def __post_init__(self):
        check_positive_ints(self, "block_size", "vocab_size", "n_embd", "hidden_size", "num_layers")
        check_dropout(self)


class CharLSTM(nn.Module):
    """Embedding -> LSTM -> Linear: an LSTM language model over characters."""

    def __init__(self, config: CharLSTMConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.lstm = nn.LSTM(
            config.n_embd, config.hidden_size, num_layers=config.num_layers, batch_first=True
        )
        self.drop = nn.Dropout(config.dropout)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)
        nn.init.normal_(self.wte.weight, 0.0, 1.0)

    def forward(self, idx: Tensor, targets: Tensor | None = None):
        """Logits (B, T, V) for the next character at every position, and the mean
        cross-entropy against ``targets`` (None without targets)."""
        B, T = idx.shape
        x = self.wte(idx)  # (B, T) -> (B, T, E)
        out, _ = self.lstm(x)  # (B, T, E) -> (B, T, H); the final (h, c) is not needed
        logits = self.lm_head(self.drop(out))  # (B, T, H) -> (B, T, V)
        if targets is None:
            return logits, None
        V = logits.shape[-1]
        loss = F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))
        return logits, loss

    def configure_optimizers(self, weight_decay: float, learning_rate: float, betas=(0.9, 0.99)):
        """AdamW, decaying the weight matrices and the embedding but not the biases."""
        return AdamW(param_groups(self, weight_decay), lr=learning_rate, betas=tuple(betas))

    def generate(self, idx: Tensor, max_new_tokens: int, temperature=1.0, top_k=None) -> Tensor:
        """Continue each row of ``idx`` (B, T0) by ``max_new_tokens`` sampled characters;
        see ``char_transformer.generate``."""
        return generate(self, idx, max_new_tokens, temperature, top_k, self.config.block_size)

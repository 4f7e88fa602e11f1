"""Layers with PyTorch's names, signatures, defaults and parameter shapes.

Read in this order (the chapters' order): ``module.py`` (Module, Parameter, Sequential), then
``linear.py`` (Linear = the book's Dense), ``init.py`` and ``activation.py`` (chapter 3),
``embedding.py`` (5), ``conv.py`` (6), ``rnn.py`` (7, 8), ``attention.py`` (9),
``normalization.py``, ``dropout.py`` and ``transformer.py`` (10); ``loss.py`` holds the
losses as modules (``CrossEntropyLoss``).

>>> import tinygrad_edu as tg
>>> from tinygrad_edu import nn
>>> mlp = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
>>> mlp(tg.randn(8, 4)).shape
(8, 3)
"""

# Layer imports: one line per file that defines layers.
from . import init
from .activation import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .attention import MultiHeadAttention
from .conv import Conv1d
from .dropout import Dropout
from .embedding import Embedding
from .linear import Dense, Flatten, Identity, Linear
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module, ModuleList, Parameter, Sequential
from .normalization import LayerNorm
from .rnn import LSTM, RNN, LSTMCell, RNNCell
from .transformer import TransformerBlock

__all__ = [
    "Softmax",
    "LogSoftmax",
    "Identity",
    "Flatten",
    "NLLLoss",
    "MSELoss",
    "CrossEntropyLoss",
    "BCEWithLogitsLoss",
    "GELU",
    "LSTM",
    "RNN",
    "Conv1d",
    "Dense",
    "Dropout",
    "Embedding",
    "LSTMCell",
    "LayerNorm",
    "Linear",
    "Module",
    "ModuleList",
    "MultiHeadAttention",
    "Parameter",
    "RNNCell",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "TransformerBlock",
    "init",
]

"""Layers with PyTorch's names, signatures, defaults and parameter shapes.

Read in this order: ``module.py`` (Module, Parameter), ``linear.py`` (Linear = the book's Dense),
``init.py``, then the layer files; each says which chapter builds it.
"""

# Layer imports: one line per file that defines layers.
from . import init
from .activation import GELU, ReLU, Sigmoid, Tanh
from .attention import MultiHeadAttention
from .conv import Conv1d
from .dropout import Dropout
from .embedding import Embedding
from .linear import Dense, Linear
from .module import Module, ModuleList, Parameter, Sequential
from .normalization import LayerNorm
from .rnn import LSTM, RNN, LSTMCell, RNNCell
from .transformer import TransformerBlock

__all__ = [
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

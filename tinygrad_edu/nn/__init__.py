"""Layers with PyTorch's names, signatures, defaults and parameter shapes.

Read in this order: ``module.py`` (Module, Parameter), ``linear.py`` (Linear = the book's Dense),
``init.py``, then the layer files; each says which chapter builds it.
"""

from .module import Module, ModuleList, Parameter, Sequential

# Layer imports are added below by the files that define them.
from .rnn import LSTM, RNN, LSTMCell, RNNCell

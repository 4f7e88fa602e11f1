"""Composite and fused operations with PyTorch's names (``import tinygrad_edu.functional as F``).

One file per topic, read in the chapters' order:

========================  =====================================================================
``linear.py``             ``linear`` (chapter 3)
``activations.py``        ``relu``, ``sigmoid``, ``tanh``, ``softplus`` (3); ``gelu`` (10)
``softmax.py``            ``softmax``, ``log_softmax`` (4)
``losses.py``             ``cross_entropy``, ``nll_loss``, ``mse_loss``,
                          ``binary_cross_entropy_with_logits`` (4)
``embedding.py``          ``one_hot``, ``embedding`` (5)
``conv.py``               ``conv1d`` (6)
``recurrent.py``          the kernels of ``nn.RNN`` (7), ``nn.LSTMCell`` and ``nn.LSTM`` (8)
``attention.py``          ``scaled_dot_product_attention`` (9)
``normalization.py``      ``layer_norm`` (10)
``dropout.py``            ``dropout`` (10)
========================  =====================================================================

Two ways to get a gradient live side by side here:

* *composed* functions (``mse_loss``, ``nll_loss`` ...) are built from the primitives of
  ``ops.py``; autograd differentiates them for free;
* *fused* functions (``linear``, ``softmax``, ``log_softmax``, ``cross_entropy``, ``layer_norm``,
  ``gelu``, ``softplus``, ``scaled_dot_product_attention``, ``lstm_cell``) apply a ``Function``
  subclass (named ``...Function``: ``LayerNormFunction``, ``nn.LayerNorm`` is the layer) with a
  hand-written backward rule. A fused rule does in a few array operations what the composed graph
  does in many, and it can be numerically careful (``softmax - onehot`` instead of differentiating
  ``log(exp(x) / sum))``).

Each fused function has its composed version beside it, from ``ops.py`` primitives only
(``softmax_composed``, ``log_softmax_composed``, ``cross_entropy_composed``,
``layer_norm_composed``, ``scaled_dot_product_attention_composed``, ``gelu_composed``,
``softplus_composed``, ``lstm_cell_composed``): the reference the tests compare the fused rule
with, in value and gradient.

Fused backward rules are written with Tensor operations, so ``backward(create_graph=True)`` can
differentiate them again; when no graph is being recorded they reuse arrays saved by ``forward``.
Chapter 13 explains them.

Read next: ``nn/``.
"""

from .activations import (
    GELUFunction,
    NormalCDFFunction,
    SoftplusFunction,
    gelu,
    gelu_composed,
    relu,
    sigmoid,
    softplus,
    softplus_composed,
    tanh,
)
from .attention import (
    ScaledDotProductAttentionFunction,
    scaled_dot_product_attention,
    scaled_dot_product_attention_composed,
)
from .conv import Fold1dFunction, Unfold1dFunction, conv1d
from .dropout import dropout
from .embedding import EmbeddingFunction, embedding, one_hot
from .linear import LinearFunction, linear
from .losses import (
    CrossEntropyFunction,
    binary_cross_entropy_with_logits,
    cross_entropy,
    cross_entropy_composed,
    mse_loss,
    nll_loss,
)
from .normalization import LayerNormFunction, layer_norm, layer_norm_composed
from .recurrent import (
    LSTMCellFunction,
    LSTMSequenceFunction,
    RNNSequenceFunction,
    lstm_cell,
    lstm_cell_composed,
)
from .softmax import (
    LogSoftmaxFunction,
    SoftmaxFunction,
    log_softmax,
    log_softmax_composed,
    softmax,
    softmax_composed,
)

__all__ = [
    # functions
    "binary_cross_entropy_with_logits",
    "conv1d",
    "cross_entropy",
    "dropout",
    "embedding",
    "gelu",
    "layer_norm",
    "linear",
    "log_softmax",
    "lstm_cell",
    "mse_loss",
    "nll_loss",
    "one_hot",
    "relu",
    "scaled_dot_product_attention",
    "sigmoid",
    "softmax",
    "softplus",
    "tanh",
    # composed versions of the fused functions
    "cross_entropy_composed",
    "gelu_composed",
    "layer_norm_composed",
    "log_softmax_composed",
    "lstm_cell_composed",
    "scaled_dot_product_attention_composed",
    "softmax_composed",
    "softplus_composed",
    # the Functions with hand-written backward rules
    "CrossEntropyFunction",
    "EmbeddingFunction",
    "Fold1dFunction",
    "GELUFunction",
    "LSTMCellFunction",
    "LSTMSequenceFunction",
    "LayerNormFunction",
    "LinearFunction",
    "LogSoftmaxFunction",
    "NormalCDFFunction",
    "RNNSequenceFunction",
    "ScaledDotProductAttentionFunction",
    "SoftmaxFunction",
    "SoftplusFunction",
    "Unfold1dFunction",
]

"""``Embedding``: a learned vector for every id (token, character, position).

Chapter 5 ("Embeddings") builds this layer. A lookup ``weight[ids]`` is the same as multiplying
a one-hot matrix by ``weight``, without building the one-hot matrix. Its backward adds each row of
``grad_out`` into the row of ``grad_weight`` its id selected; an id that appears several times in a
batch receives the *sum* of its gradients (a scatter-add, ``backend.index_add``).

Read next: ``conv.py``.
"""

from __future__ import annotations

from .. import functional as F
from ..tensor import Tensor, zeros
from . import init
from ._checks import check_device, check_tensor, layer_name
from .module import Module, Parameter


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``.

    Shapes: ids, integers of any shape (B, T) -> output (B, T, embedding_dim); ``weight``
    (num_embeddings, embedding_dim), initialised N(0, 1) as in PyTorch.

    Forward: ``out[b, t, :] = weight[ids[b, t], :]``.
    Backward: ``grad_weight[v, :] = sum of grad_out[b, t, :] over every (b, t) with ids[b, t] = v``.

    >>> import tinygrad_edu as tg
    >>> from tinygrad_edu import nn
    >>> emb = nn.Embedding(10, 3)
    >>> emb
    Embedding(10, 3)
    >>> emb(tg.tensor([[1, 2, 2], [0, 9, 4]])).shape
    (2, 3, 3)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, device=None, dtype=None):
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.weight = Parameter(zeros(num_embeddings, embedding_dim, dtype=dtype, device=device))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight)

    def forward(self, ids: Tensor) -> Tensor:
        check_tensor(self, ids, "ids")
        check_device(self, ids, self.weight.device, "ids")
        try:
            return F.embedding(ids, self.weight)  # ids.shape -> ids.shape + (embedding_dim,)
        except (TypeError, IndexError) as e:
            # F.embedding names the bad dtype or the out-of-range id; add which layer was fed it
            raise type(e)(f"{layer_name(self)}: {str(e).removeprefix('embedding: ')}") from None

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"

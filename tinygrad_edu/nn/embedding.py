"""``Embedding``: a learned vector for every id (token, character, position).

Chapter 5 ("Embeddings") builds this layer. A lookup ``weight[ids]`` is the same as multiplying
a one-hot matrix by ``weight``, without building the one-hot matrix. Its backward adds each row of
``grad_out`` into the row of ``grad_weight`` its id selected; an id that appears several times in a
batch receives the *sum* of its gradients (a scatter-add, ``backend.index_add``).

Read next: ``conv.py``.
"""

from __future__ import annotations

from .. import backend
from .. import functional as F
from .._config import check_positive_sizes
from ..functional._checks import check_int, check_range, is_number
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

    ``padding_idx`` (PyTorch's semantics, chapter 15): the row of the padding id starts at zeros
    and gets no gradient, so the padding vector stays what it is while the others train.

    ``max_norm`` (PyTorch's semantics): before each lookup, every row that the ids select and
    whose ``norm_type``-norm exceeds ``max_norm`` is scaled down to that norm, in the table itself
    (in place, outside the graph). ``scale_grad_by_freq`` and ``sparse`` are PyTorch's arguments
    with the only value supported here, False.

    >>> import tinygrad_edu as tg
    >>> from tinygrad_edu import nn
    >>> emb = nn.Embedding(10, 3)
    >>> emb
    Embedding(10, 3)
    >>> emb(tg.tensor([[1, 2, 2], [0, 9, 4]])).shape
    (2, 3, 3)
    >>> nn.Embedding(10, 3, padding_idx=0).weight.numpy()[0].tolist()
    [0.0, 0.0, 0.0]
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        device=None,
        dtype=None,
    ):
        check_positive_sizes(
            "Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim
        )
        super().__init__()
        if max_norm is not None and (not is_number(max_norm) or max_norm <= 0):
            raise ValueError(
                f"Embedding: max_norm must be a positive number or None, got {max_norm!r}"
            )
        if not is_number(norm_type) or norm_type <= 0:
            raise ValueError(f"Embedding: norm_type must be a positive number, got {norm_type!r}")
        if scale_grad_by_freq or sparse:
            raise ValueError(
                "Embedding: scale_grad_by_freq=True and sparse=True are not supported, got "
                f"scale_grad_by_freq={scale_grad_by_freq!r}, sparse={sparse!r}"
            )
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, int):
                raise TypeError(
                    f"Embedding: padding_idx must be an int or None, got {padding_idx!r}"
                )
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} must be an id of the table of "
                    f"{num_embeddings} embeddings, in -{num_embeddings}..{num_embeddings - 1}"
                )
            padding_idx %= num_embeddings  # a negative index counts from the end, as in PyTorch
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.weight = Parameter(zeros(num_embeddings, embedding_dim, dtype=dtype, device=device))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            # the padding vector starts at zeros (PyTorch); its lookups send it no gradient
            self.weight.data[self.padding_idx, ...] = 0.0

    def forward(self, ids: Tensor) -> Tensor:
        check_tensor(self, ids, "ids")
        check_device(self, ids, self.weight.device, "ids")
        try:
            if self.max_norm is not None:
                self._renorm(ids)
            # ids.shape -> ids.shape + (embedding_dim,)
            return F.embedding(ids, self.weight, padding_idx=self.padding_idx)
        except (TypeError, IndexError) as e:
            # F.embedding names the bad dtype or the out-of-range id; add which layer was fed it
            raise type(e)(f"{layer_name(self)}: {str(e).removeprefix('embedding: ')}") from None

    def _renorm(self, ids: Tensor) -> None:
        """``max_norm``: scale the rows ``ids`` selects down to norm ``max_norm``, in place."""
        check_int("embedding", "ids", ids)
        check_range("embedding", ids, self.num_embeddings, "num_embeddings")
        w = self.weight.data  # (V, D)
        xp = backend.xp_of(w)
        flat = xp.reshape(ids.data, (-1,))
        used = backend.index_add(
            xp.zeros((w.shape[0],), dtype=w.dtype), (flat,), xp.ones_like(flat, dtype=w.dtype)
        )
        norm = xp.sum(xp.abs(w) ** self.norm_type, axis=1) ** (1.0 / self.norm_type)  # (V,)
        too_long = (used > 0) & (norm > self.max_norm)
        # PyTorch's factor, with its 1e-7 guard
        scale = xp.where(too_long, self.max_norm / (norm + 1e-7), xp.ones_like(norm))
        self.weight.data = w * xp.reshape(scale, (-1, 1))

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2.0:
            s += f", norm_type={self.norm_type}"
        return s

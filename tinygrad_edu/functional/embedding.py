"""``one_hot`` and ``embedding`` (chapter 5): integer ids to vectors.

``embedding`` is a row lookup, ``EmbeddingFunction``; its backward adds each row's gradient back
into the table (an id used twice receives both gradients).
"""

from __future__ import annotations

from .. import backend, ops
from ..autograd import Function
from ..ops import _const
from ..tensor import Tensor
from ._checks import check_float, check_int, check_int_arg, check_range, check_tensor


def one_hot(ids: Tensor, num_classes: int = -1) -> Tensor:
    """``out[..., c] = 1`` where ``c = ids[...]``: shape ``ids.shape + (num_classes,)``, int64 as
    PyTorch. ``num_classes=-1`` means ``max(ids) + 1``.

    >>> import tinygrad_edu as tg
    >>> one_hot(tg.tensor([0, 2]), 3).numpy().tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    check_int("one_hot", "ids", ids)
    xp = backend.xp_of(ids.data)
    if check_int_arg("one_hot", "num_classes", num_classes) < -1:
        raise ValueError(f"one_hot: num_classes must be -1 (max id + 1) or >= 0, got {num_classes}")
    if num_classes == -1:
        num_classes = int(xp.max(ids.data)) + 1 if ids.size else 0
    check_range("one_hot", ids, num_classes, "num_classes")
    # --- exercise 5.1: one-hot encoding ---
    classes = xp.arange(num_classes, dtype=ids.data.dtype)
    return _const(xp.astype(ids.data[..., None] == classes, xp.int64))
    # --- end exercise ---


class EmbeddingFunction(Function):
    """Row lookup ``out[m] = weight[ids[m]]`` for flat ids (M,) and a table (V, D) -> (M, D).

    Backward: ``grad_weight[v] = sum of grad_out[m] over every m with ids[m] = v`` (a scatter-add:
    a repeated id accumulates). Written as ``onehot(ids)^T @ grad_out`` when the (V, M) one-hot
    matrix is small (one BLAS call, much faster than NumPy's ``add.at`` for a character vocabulary),
    else with the engine's scatter-add ``ops.IndexAdd``. Both are Tensor ops (create_graph works).
    With ``padding_idx`` the positions that looked up that row send it no gradient: its
    ``grad_weight`` row is 0 (PyTorch's ``padding_idx``).
    """

    ONEHOT_LIMIT = 1 << 22  # V * M elements (16 MiB of float32) at most for the one-hot route

    def forward(self, weight, ids, padding_idx=None):
        self.ids = ids
        self.padding_idx = padding_idx
        self.onehot = weight.shape[0] * ids.shape[0] <= self.ONEHOT_LIMIT
        return backend.xp_of(weight).take(weight, ids, axis=0)

    def backward(self, grad_out):
        xp = backend.xp_of(self.ids)
        V, D = self.inputs[0].shape
        if self.padding_idx is not None:
            # the padding row gets no gradient: zero the rows of grad_out that looked it up
            keep = xp.reshape(self.ids != self.padding_idx, (-1, 1))  # (M, 1)
            grad_out = grad_out * _const(xp.astype(keep, grad_out.data.dtype))
        # --- exercise 5.3: embedding backward ---
        if self.onehot:
            onehot_t = xp.arange(V, dtype=self.ids.dtype)[:, None] == self.ids[None, :]  # (V, M)
            return _const(xp.astype(onehot_t, grad_out.data.dtype)) @ grad_out, None
        return ops.IndexAdd.apply(grad_out, (V, D), (self.ids, Ellipsis)), None
        # --- end exercise ---


def embedding(ids: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Look up rows of ``weight``: ``out[..., :] = weight[ids[...], :]``.

    Shapes: ``ids`` integers of any shape, ``weight`` (num_embeddings, embedding_dim) ->
    ``ids.shape + (embedding_dim,)``. Backward is a scatter-add of ``grad_out`` into the rows of
    ``grad_weight``: an id that appears twice receives both gradients (see ``EmbeddingFunction``).
    ``padding_idx`` (an id, negative counts from the end): that row is looked up as any other
    but gets no gradient, as in PyTorch (chapter 15: the lookups of padding do not train it).

    >>> import tinygrad_edu as tg
    >>> embedding(tg.tensor([[2, 0]]), tg.arange(6).astype("float32").reshape(3, 2)).shape
    (1, 2, 2)
    """
    check_tensor("embedding", "ids", ids)
    check_float("embedding", "weight", weight)
    if not backend.is_integer(ids.dtype):
        raise TypeError(
            f"embedding: ids must be integers, got dtype {ids.dtype} (shape {ids.shape}); "
            "convert with .astype('int64')"
        )
    if weight.ndim != 2:
        raise ValueError(
            f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got {weight.shape}"
        )
    n = weight.shape[0]
    if ids.size:
        xp = backend.xp_of(ids.data)
        lo, hi = int(xp.min(ids.data)), int(xp.max(ids.data))
        if lo < 0:
            raise IndexError(
                f"embedding: id {lo} is negative; ids must be in 0..{n - 1} for a table of "
                f"{n} embeddings"
            )
        if hi >= n:
            raise IndexError(
                f"embedding: id {hi} is out of range for a table of {n} embeddings "
                f"(valid ids: 0..{n - 1})"
            )
    if padding_idx is not None:
        if not -n <= check_int_arg("embedding", "padding_idx", padding_idx) < n:
            raise IndexError(
                f"embedding: padding_idx {padding_idx} is out of range for a table of {n} "
                f"embeddings (valid: -{n}..{n - 1})"
            )
        padding_idx = padding_idx % n
    flat = ids.data if ids.ndim == 1 else backend.xp_of(ids.data).reshape(ids.data, (-1,))
    out = EmbeddingFunction.apply(weight, flat, padding_idx=padding_idx)  # (M, D)
    return out.reshape(ids.shape + (weight.shape[1],))  # -> ids.shape + (D,)

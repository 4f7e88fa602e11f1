"""Hypothesis strategies shared by the test suite: shapes, broadcasting pairs, arrays, layouts.

Arrays are drawn as NumPy (host) arrays; tests turn them into tensors with ``as_tensor``, which
also makes some of them non-contiguous (a transposed or strided view), because ops must not
assume a C-contiguous layout.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_edu as tg


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Array shapes, including 0-d scalars ``()``; ``min_side=0`` allows zero-size dimensions."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)  # fmt: skip


def broadcast_pairs(min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Two shapes that broadcast together, e.g. ``((3, 1), (4,))`` or ``((), (2, 3))``."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    ).map(lambda r: r.input_shapes)


def any_pairs(max_dims=3, max_side=4):
    """Two shapes that may or may not broadcast together (for error tests)."""
    return st.tuples(shapes(0, max_dims, 1, max_side), shapes(0, max_dims, 1, max_side))


def arrays(shape, low=-2.0, high=2.0, dtype=np.float64):
    """Float arrays of ``shape`` with finite values in ``[low, high]``."""
    width = 32 if np.dtype(dtype) == np.float32 else 64
    elements = st.floats(low, high, allow_nan=False, allow_infinity=False, width=width)
    return hnp.arrays(dtype, shape, elements=elements)


def layouts():
    """How to lay an array out in memory before it becomes a tensor."""
    return st.sampled_from(["contiguous", "transposed", "strided"])


def non_contiguous(array: np.ndarray, layout: str) -> np.ndarray:
    """The same values as ``array`` in a non-contiguous NumPy view (when the layout says so)."""
    if layout == "transposed" and array.ndim >= 2:
        return np.ascontiguousarray(array.T).T  # same values, Fortran order
    if layout == "strided" and array.ndim >= 1:
        doubled = np.repeat(array, 2, axis=-1)
        return doubled[..., ::2]  # same values, every other element of a bigger buffer
    return array


def as_tensor(array: np.ndarray, layout: str = "contiguous", requires_grad=False) -> tg.Tensor:
    """A tensor on the default device with ``array``'s values and dtype, laid out per ``layout``.

    On NumPy the view is kept (the tensor really is non-contiguous); other devices copy.
    """
    view = non_contiguous(array, layout)
    assert np.array_equal(view, array)
    return tg.tensor(view, requires_grad=requires_grad)


@st.composite
def axes_for(draw, ndim: int):
    """An ``axis`` argument for a reduction over ``ndim`` dims: None, an int (maybe negative),
    or a tuple of distinct axes."""
    if ndim == 0:
        return draw(st.sampled_from([None, ()]))
    choice = draw(st.sampled_from(["none", "int", "tuple"]))
    if choice == "none":
        return None
    if choice == "int":
        return draw(st.integers(-ndim, ndim - 1))
    picked = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    return tuple(ax - ndim if draw(st.booleans()) else ax for ax in picked)


@st.composite
def matmul_shapes(draw, max_batch_dims=2, max_side=4):
    """Two shapes that ``matmul`` accepts: vectors, matrices, broadcast batch dimensions."""
    n, k, m = (draw(st.integers(1, max_side)) for _ in range(3))
    batch_a, batch_b = draw(
        hnp.mutually_broadcastable_shapes(
            num_shapes=2, min_dims=0, max_dims=max_batch_dims, max_side=3
        )  # fmt: skip
    ).input_shapes
    a = draw(st.sampled_from([(k,), batch_a + (n, k)]))
    b = draw(st.sampled_from([(k,), batch_b + (k, m)]))
    return a, b


def conv1d_sizes(max_padding=2, max_dilation=2):
    """Keyword strategies for ``@given(**conv1d_sizes(...))``: batch ``n``, ``c_in``, ``c_out``,
    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` of a small 1-D convolution."""
    return dict(
        n=st.integers(1, 2),
        c_in=st.integers(1, 3),
        c_out=st.integers(1, 3),
        kernel_size=st.integers(1, 4),
        stride=st.integers(1, 3),
        padding=st.integers(0, max_padding),
        dilation=st.integers(1, max_dilation),
    )

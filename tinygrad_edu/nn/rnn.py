"""Recurrent layers: ``RNNCell``, ``RNN`` (chapter 7) and ``LSTMCell``, ``LSTM`` (chapter 8).

Names, signatures, defaults, parameter names and shapes are PyTorch's, so a state dict maps
one-to-one. A layer ``k`` of ``RNN``/``LSTM`` holds ``weight_ih_l{k}`` (G*H, in), ``weight_hh_l{k}``
(G*H, H), ``bias_ih_l{k}`` and ``bias_hh_l{k}`` (G*H,), with G = 1 for an RNN and G = 4 for an LSTM
(gates packed in the order i, f, g, o). Every parameter starts uniform in (-1/sqrt(H), 1/sqrt(H)).

How a layer runs over a sequence of T steps (shape letters: T steps, B batch, H hidden):

1. The input projection of *all* steps is one matrix product, ``x @ W_ih^T + b_ih + b_hh``:
   (T*B, in) @ (in, G*H). Only the recurrent part, ``h_{t-1} @ W_hh^T``, must wait for the
   previous step, so only that part loops over time.
2. The loop. ``fused=False`` builds it from primitive ops (about fifteen graph nodes per step: the
   reference, easy to read). ``fused=True`` (the default) runs the whole loop inside one
   ``Function`` (``RNNSequenceFunction`` / ``LSTMSequenceFunction``) on raw arrays, and its backward
   is backpropagation through time written out by hand: the same math, one graph node per layer.
   The composed loop also pays for taking ``x_proj[t]`` out of one tensor: each slice's backward
   scatters into a zero array of the full (T, B, G*H) shape, O(T^2) work over the sequence.

``LSTMCellFunction`` is the fused single step behind ``LSTMCell``; its backward applies the gate
equations' derivatives directly and is itself written with Tensor ops (so it is differentiable).

Read next: ``attention.py``.

>>> import tinygrad_edu as tg
>>> from tinygrad_edu import nn
>>> tg.manual_seed(0)
>>> lstm = nn.LSTM(input_size=3, hidden_size=5, num_layers=2, batch_first=True)
>>> x = tg.randn(4, 7, 3)                      # (B, T, in)
>>> output, (h_n, c_n) = lstm(x)
>>> output.shape, h_n.shape, c_n.shape        # (B, T, H), (num_layers, B, H) twice
((4, 7, 5), (2, 4, 5), (2, 4, 5))
"""

from __future__ import annotations

import math

from .. import backend, ops
from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor, zeros
from . import init
from .module import Module, Parameter

# =================================================================================================
# The LSTM cell, written once for raw arrays and Tensors alike.
# =================================================================================================


def _gate_scale(xp, H: int, dtype):
    """The per-column scale of ``_gate_activations``: 1/2 for i, f, o and 1 for g, shape (4H,)."""
    col = xp.arange(4 * H)
    is_g = (col >= 2 * H) & (col < 3 * H)
    return xp.where(is_g, xp.asarray(1.0, dtype=dtype), xp.asarray(0.5, dtype=dtype))


def _gate_activations(xp, gates, scale):
    """``[sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)]`` of pre-activations (..., 4H).

    One ``tanh`` does all four gates: ``sigmoid(a) = tanh(a / 2) / 2 + 1 / 2``, so with
    ``s = 1/2`` for i, f, o and ``s = 1`` for g, every gate is ``s * tanh(s * a) + (1 - s)``.
    This form is also the numerically stable sigmoid: ``tanh`` saturates to +-1 and never
    overflows, whereas ``1 / (1 + exp(-a))`` computes ``exp(1000) = inf`` on the way at a = -1000.
    Its error is absolute, at most about one rounding step of 1 (6e-8 in float32): a gate of
    1e-10 comes out as 0. That is harmless for a gate (it multiplies a bounded value); a
    log-probability would need the relative accuracy of ``log_softmax``'s form instead.
    """
    return scale * xp.tanh(scale * gates) + (1.0 - scale)


def _lstm_cell_backward(i, f, g, o, c_prev, tanh_c, grad_h, grad_c):
    """The backward of one LSTM step, given the gate values of the forward.

    Works unchanged on raw arrays and on Tensors (it uses only ``+``, ``-``, ``*``).
    With ``c' = f*c + i*g`` and ``h' = o*tanh(c')``::

        dc' = grad_c + grad_h * o * (1 - tanh(c')^2)     (c' reaches the loss directly and via h')
        da_o = grad_h * tanh(c') * o (1 - o)            (sigmoid' = s (1 - s))
        da_i = dc' * g * i (1 - i)
        da_f = dc' * c * f (1 - f)
        da_g = dc' * i * (1 - g^2)                       (tanh' = 1 - tanh^2)
        dc   = dc' * f                                   (the "constant error carousel")

    Returns ``(da_i, da_f, da_g, da_o, dc)``.
    """
    # --- exercise 8.1: the LSTM cell backward ---
    grad_c = grad_c + grad_h * o * (1.0 - tanh_c * tanh_c)
    grad_o = grad_h * tanh_c * o * (1.0 - o)
    grad_i = grad_c * g * i * (1.0 - i)
    grad_f = grad_c * c_prev * f * (1.0 - f)
    grad_g = grad_c * i * (1.0 - g * g)
    return grad_i, grad_f, grad_g, grad_o, grad_c * f
    # --- end exercise ---


def _split4(a, H: int):
    """The four gate blocks (i, f, g, o) of the last axis of ``a`` (arrays or Tensors)."""
    return tuple(a[..., k * H : (k + 1) * H] for k in range(4))


class LSTMCellFunction(Function):
    """One fused LSTM step: pre-activations ``a`` (..., 4H) and cell ``c`` (..., H) -> (2, ..., H).

    ``a = x @ W_ih^T + b_ih + h @ W_hh^T + b_hh`` is computed by ordinary ops; this Function does
    the rest. Forward, with the gates packed in the order i, f, g, o::

        i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)
        c' = f * c + i * g
        h' = o * tanh(c')

    The result stacks ``h'`` and ``c'``: ``out[0]`` is h', ``out[1]`` is c' (a Function has one
    output). Backward (upstream ``grad_h = grad_out[0]``, ``grad_c = grad_out[1]``)::

        dc' = grad_c + grad_h * o * (1 - tanh(c')^2)
        da_i = dc' * g * i (1 - i)        da_f = dc' * c * f (1 - f)
        da_g = dc' * i * (1 - g^2)        da_o = grad_h * tanh(c') * o (1 - o)
        grad_a = [da_i, da_f, da_g, da_o]  (concatenated on the last axis)
        grad_c = dc' * f

    The sigmoid is ``tanh(a / 2) / 2 + 1 / 2``, finite for any input (pre-activations of +-1e3
    give gates of exactly 0 or 1 and zero, not NaN, gradients). The composed version of the same
    step, from primitive ops, is ``lstm_cell_composed``; the tests check that both agree.

    >>> import tinygrad_edu as tg
    >>> a, c = tg.randn(2, 4 * 3), tg.randn(2, 3)
    >>> out = LSTMCellFunction.apply(a, c)
    >>> out.shape                       # (2, B, H): h' then c'
    (2, 2, 3)
    """

    def forward(self, gates, c):
        xp = backend.xp_of(gates)
        H = c.shape[-1]
        act = _gate_activations(xp, gates, _gate_scale(xp, H, gates.dtype))
        i, f, g, o = _split4(act, H)
        c_new = f * c + i * g
        tanh_c = xp.tanh(c_new)
        self.saved = act, tanh_c
        return xp.stack([o * tanh_c, c_new], axis=0)

    def backward(self, grad_out):
        gates, c = self.inputs
        H = c.shape[-1]
        if is_grad_enabled():
            # create_graph=True: recompute the gates as Tensors so the gradient is differentiable
            a_i, a_f, a_g, a_o = _split4(gates, H)
            i, f, g, o = a_i.sigmoid(), a_f.sigmoid(), a_g.tanh(), a_o.sigmoid()
            tanh_c = (f * c + i * g).tanh()
        else:
            act, tanh_c = self.saved
            i, f, g, o = (Tensor._make(x, False, None) for x in _split4(act, H))
            tanh_c = Tensor._make(tanh_c, False, None)
        grad_i, grad_f, grad_g, grad_o, grad_c = _lstm_cell_backward(
            i, f, g, o, c, tanh_c, grad_out[0], grad_out[1]
        )
        grad_gates = ops.concat([grad_i, grad_f, grad_g, grad_o], axis=-1)
        return grad_gates, grad_c


def lstm_cell(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTM step from pre-activations ``gates`` (..., 4H) and cell ``c`` (..., H): ``(h', c')``,
    with the fused ``LSTMCellFunction``."""
    out = LSTMCellFunction.apply(gates, c)  # (2, ..., H)
    return out[0], out[1]


def lstm_cell_composed(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """The same step as ``lstm_cell`` built from primitive ops (the reference; ~10 graph nodes).

    >>> import tinygrad_edu as tg
    >>> a, c = tg.randn(2, 8), tg.randn(2, 2)
    >>> h1, c1 = lstm_cell(a, c)
    >>> h2, c2 = lstm_cell_composed(a, c)
    >>> bool(((h1 - h2).abs() < 1e-6).all()) and bool(((c1 - c2).abs() < 1e-6).all())
    True
    """
    H = c.shape[-1]
    a_i, a_f, a_g, a_o = _split4(gates, H)
    i, f, g, o = a_i.sigmoid(), a_f.sigmoid(), a_g.tanh(), a_o.sigmoid()
    c_new = f * c + i * g
    return o * c_new.tanh(), c_new


# =================================================================================================
# Whole-sequence Functions: the time loop on raw arrays, backpropagation through time by hand.
# =================================================================================================


def _const(array) -> Tensor:
    return Tensor._make(array, False, None)


class LSTMSequenceFunction(Function):
    """An LSTM layer's recurrence over T steps in one graph node.

    Inputs: ``x_proj`` (T, B, 4H), the input projections ``x_t @ W_ih^T + b_ih + b_hh`` of every
    step; ``h0``, ``c0`` (B, H); ``w_hh`` (4H, H). Forward, for t = 1..T::

        a_t = x_proj_t + h_{t-1} @ W_hh^T                 (B, 4H)
        h_t, c_t = the LSTMCellFunction step of (a_t, c_{t-1})

    Output (T + 1, B, H): rows 0..T-1 are h_1..h_T, row T is c_T (one Function, one output).

    Backward is backpropagation through time, from t = T down to 1, with ``dh``/``dc`` the
    gradient reaching h_t / c_t from later steps plus the upstream gradient of that row::

        da_t = LSTM cell backward (see LSTMCellFunction) of (dh, dc)   -> grad_x_proj[t]
        dh  <- da_t @ W_hh       dc <- dc' * f_t
        grad_w_hh = sum_t da_t^T @ h_{t-1}                              (one matmul at the end)
        grad_h0, grad_c0 = dh, dc after the last step back

    The loop's cost is the matrix products; the cell's elementwise backward is done per step on
    small (B, H) arrays, which stay in the CPU cache (computing its factors for all steps at once
    before the loop was measured slower: it streams several (T, B, 4H) arrays through memory).
    The backward works on raw arrays for speed, so it cannot be differentiated a second time.
    """

    differentiable_backward = False

    def forward(self, x_proj, h0, c0, w_hh):
        xp = backend.xp_of(x_proj)
        T, B, G = x_proj.shape
        H = G // 4
        dt = x_proj.dtype
        w_hh_t = xp.permute_dims(w_hh, (1, 0))  # (4H, H) -> (H, 4H), once per sequence
        out = xp.empty((T + 1, B, H), dtype=dt)  # h_1..h_T, then c_T
        acts = xp.empty((T, B, G), dtype=dt)  # gate values, for backward
        cs = xp.empty((T + 1, B, H), dtype=dt)  # c_0..c_T, for backward
        scale = _gate_scale(xp, H, dt)
        cs[0, ...] = c0
        h, c = h0, c0
        for t in range(T):
            a = x_proj[t, ...] + xp.matmul(h, w_hh_t)  # (B, 4H)
            act = _gate_activations(xp, a, scale)
            i, f, g, o = _split4(act, H)
            c = f * c + i * g
            h = o * xp.tanh(c)
            acts[t, ...] = act
            cs[t + 1, ...] = c
            out[t, ...] = h
        out[T, ...] = c
        self.saved = acts, cs, out, h0, w_hh
        return out

    def backward(self, grad_out):
        acts, cs, out, h0, w_hh = self.saved
        xp = backend.xp_of(acts)
        g_out = grad_out.data
        T, B, G = acts.shape
        H = G // 4
        grad_x_proj = xp.empty((T, B, G), dtype=acts.dtype)
        dh = xp.zeros_like(h0)
        dc = g_out[T, ...]
        for t in range(T - 1, -1, -1):
            dh = dh + g_out[t, ...]
            i, f, g, o = _split4(acts[t, ...], H)
            tanh_c = xp.tanh(cs[t + 1, ...])  # recomputed: cheaper than storing it
            d_i, d_f, d_g, d_o, dc = _lstm_cell_backward(i, f, g, o, cs[t, ...], tanh_c, dh, dc)
            da = xp.concat([d_i, d_f, d_g, d_o], axis=-1)  # (B, 4H)
            grad_x_proj[t, ...] = da
            dh = xp.matmul(da, w_hh)  # (B, 4H) @ (4H, H)
        grad_w_hh = None
        if self.needs_input_grad[3]:
            # h_{t-1} for t = 1..T: h0 then the outputs h_1..h_{T-1}
            h_prev = xp.concat([xp.expand_dims(h0, axis=0), out[: T - 1, ...]], axis=0)
            grad_w_hh = xp.matmul(
                xp.permute_dims(xp.reshape(grad_x_proj, (T * B, G)), (1, 0)),
                xp.reshape(h_prev, (T * B, H)),
            )  # (4H, T*B) @ (T*B, H) -> (4H, H)
            grad_w_hh = _const(grad_w_hh)
        return _const(grad_x_proj), _const(dh), _const(dc), grad_w_hh


class RNNSequenceFunction(Function):
    """An Elman RNN layer's recurrence over T steps in one graph node.

    Inputs: ``x_proj`` (T, B, H) = ``x_t @ W_ih^T + b_ih + b_hh`` for every step, ``h0`` (B, H),
    ``w_hh`` (H, H); option ``nonlinearity`` ("tanh" or "relu"). Forward::

        h_t = act(x_proj_t + h_{t-1} @ W_hh^T)            output (T, B, H) = h_1..h_T

    Backward, t = T..1, with ``dh`` the gradient reaching h_t (from later steps and upstream)::

        dz_t = dh * act'(z_t)          tanh' = 1 - h_t^2,  relu' = [h_t > 0]
        grad_x_proj[t] = dz_t     dh <- dz_t @ W_hh     grad_w_hh = sum_t dz_t^T @ h_{t-1}

    Raw-array backward for speed: not differentiable a second time.
    """

    differentiable_backward = False

    def forward(self, x_proj, h0, w_hh, nonlinearity="tanh"):
        xp = backend.xp_of(x_proj)
        T, B, H = x_proj.shape
        self.relu = nonlinearity == "relu"
        w_hh_t = xp.permute_dims(w_hh, (1, 0))
        out = xp.empty((T, B, H), dtype=x_proj.dtype)
        h = h0
        for t in range(T):
            z = x_proj[t, ...] + xp.matmul(h, w_hh_t)
            h = xp.maximum(z, xp.zeros_like(z)) if self.relu else xp.tanh(z)
            out[t, ...] = h
        self.saved = out, h0, w_hh
        return out

    def backward(self, grad_out):
        out, h0, w_hh = self.saved
        xp = backend.xp_of(out)
        g_out = grad_out.data
        T, B, H = out.shape
        grad_x_proj = xp.empty((T, B, H), dtype=out.dtype)
        dh = xp.zeros_like(h0)
        # --- exercise 7.1: backpropagation through time ---
        for t in range(T - 1, -1, -1):
            h = out[t, ...]
            dh = dh + g_out[t, ...]  # from the loss at step t and from step t + 1
            dz = dh * xp.astype(h > 0, h.dtype) if self.relu else dh * (1.0 - h * h)
            grad_x_proj[t, ...] = dz
            dh = xp.matmul(dz, w_hh)  # (B, H) @ (H, H): on to h_{t-1}
        # --- end exercise ---
        grad_w_hh = None
        if self.needs_input_grad[2]:
            h_prev = xp.concat([xp.expand_dims(h0, axis=0), out[: T - 1, ...]], axis=0)
            grad_w_hh = _const(
                xp.matmul(
                    xp.permute_dims(xp.reshape(grad_x_proj, (T * B, H)), (1, 0)),
                    xp.reshape(h_prev, (T * B, H)),
                )
            )
        return _const(grad_x_proj), _const(dh), grad_w_hh


# =================================================================================================
# Modules
# =================================================================================================


def _uniform(shape: tuple, bound: float) -> Parameter:
    """PyTorch's init for recurrent layers: uniform in (-bound, bound), bound = 1/sqrt(H)."""
    return init.uniform_(Parameter(zeros(*shape)), -bound, bound)


def _check_sizes(name: str, input_size, hidden_size) -> None:
    for what, n in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"{name}: {what} must be a positive integer, got {n!r}")


def _check_nonlinearity(name: str, nonlinearity: str) -> None:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(
            f"{name}: unknown nonlinearity {nonlinearity!r}; expected 'tanh' or 'relu'"
        )


def _check_floating(name: str, what: str, t: Tensor, dtype: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected {what} to be a Tensor, got {type(t).__name__}")
    if not backend.is_floating(t.dtype):
        raise TypeError(
            f"{name}: expected a floating-point {what}, got dtype {t.dtype} (shape {t.shape}); "
            "token ids go through an Embedding first"
        )
    if t.dtype != dtype:
        raise TypeError(
            f"{name}: {what} has dtype {t.dtype} but the parameters are {dtype}; convert one "
            f"(x.astype({dtype!r}) or module.astype({t.dtype!r}))"
        )


class _CellBase(Module):
    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        _check_sizes(type(self).__name__, input_size, hidden_size)
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        G, H, k = self.gates, hidden_size, 1.0 / math.sqrt(hidden_size)
        self.weight_ih = _uniform((G * H, input_size), k)
        self.weight_hh = _uniform((G * H, H), k)
        if bias:
            self.bias_ih = _uniform((G * H,), k)
            self.bias_hh = _uniform((G * H,), k)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"

    def _check_input(self, input: Tensor) -> bool:
        """Check the input; return True when it is batched (B, in), False for (in,)."""
        name = type(self).__name__
        _check_floating(name, "input", input, self.weight_ih.dtype)
        if input.ndim not in (1, 2):
            raise ValueError(
                f"{name}: expected input of 2 dimensions (batch, input_size) or 1 (input_size,), "
                f"got shape {input.shape}"
            )
        if input.shape[-1] != self.input_size:
            raise ValueError(
                f"{name}: input_size is {self.input_size} but the input's last dimension is "
                f"{input.shape[-1]} (input shape {input.shape})"
            )
        return input.ndim == 2

    def _check_state(self, what: str, state: Tensor, input: Tensor) -> None:
        name = type(self).__name__
        _check_floating(name, what, state, self.weight_ih.dtype)
        expected = input.shape[:-1] + (self.hidden_size,)
        if state.shape != expected:
            raise ValueError(
                f"{name}: expected {what} of shape {expected} (batch, hidden_size) for an input "
                f"of shape {input.shape}, got {state.shape}"
            )

    def _preactivation(self, input: Tensor, h: Tensor) -> Tensor:
        """``x @ W_ih^T + b_ih + h @ W_hh^T + b_hh``: (..., G*H)."""
        a = input @ self.weight_ih.mT + h @ self.weight_hh.mT
        if self.bias:
            a = a + (self.bias_ih + self.bias_hh)
        return a


class RNNCell(_CellBase):
    """One step of an Elman RNN: ``h' = tanh(x @ W_ih^T + b_ih + h @ W_hh^T + b_hh)``.

    ``RNNCell(input_size, hidden_size, bias=True, nonlinearity='tanh')`` ('relu' also works).
    ``cell(input, hx=None)``: input (B, in) or (in,), hx like (B, H) (zeros if None) -> h' (B, H).
    The gradient is the chain rule through tanh, ``1 - h'^2``, then through both matmuls.

    >>> import tinygrad_edu as tg
    >>> from tinygrad_edu import nn
    >>> cell = nn.RNNCell(3, 4)
    >>> cell(tg.randn(2, 3)).shape
    (2, 4)
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh"):
        _check_nonlinearity("RNNCell", nonlinearity)
        super().__init__(input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        self._check_input(input)
        if hx is None:
            hx = zeros(*input.shape[:-1], self.hidden_size, dtype=input.dtype, device=input.device)
        self._check_state("hx", hx, input)
        a = self._preactivation(input, hx)
        return a.tanh() if self.nonlinearity == "tanh" else a.relu()


class LSTMCell(_CellBase):
    """One LSTM step (Hochreiter and Schmidhuber 1997, with a forget gate as in PyTorch).

    ``LSTMCell(input_size, hidden_size, bias=True)``; parameters ``weight_ih`` (4H, in),
    ``weight_hh`` (4H, H), ``bias_ih``, ``bias_hh`` (4H,), gates packed i, f, g, o.
    ``cell(input, hx=None)``: input (B, in) or (in,), ``hx = (h, c)`` (zeros if None) -> (h', c')::

        a = x @ W_ih^T + b_ih + h @ W_hh^T + b_hh
        i, f, g, o = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)
        c' = f * c + i * g          h' = o * tanh(c')

    ``fused=True`` runs the step after the matmuls as one ``LSTMCellFunction`` (backward by the gate
    derivatives, see there); ``fused=False`` builds it from primitive ops (``lstm_cell_composed``).

    >>> import tinygrad_edu as tg
    >>> from tinygrad_edu import nn
    >>> cell = nn.LSTMCell(3, 4)
    >>> h, c = cell(tg.randn(2, 3))
    >>> h.shape, c.shape
    ((2, 4), (2, 4))
    """

    gates = 4

    def __init__(self, input_size, hidden_size, bias=True, *, fused=True):
        super().__init__(input_size, hidden_size, bias)
        self.fused = fused

    def forward(self, input: Tensor, hx=None) -> tuple[Tensor, Tensor]:
        self._check_input(input)
        if hx is None:
            shape = input.shape[:-1] + (self.hidden_size,)
            h = zeros(*shape, dtype=input.dtype, device=input.device)
            c = h
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError("LSTMCell: hx must be a tuple (h, c) of two tensors")
            h, c = hx
        self._check_state("h", h, input)
        self._check_state("c", c, input)
        a = self._preactivation(input, h)
        return lstm_cell(a, c) if self.fused else lstm_cell_composed(a, c)


class _RNNBase(Module):
    """What ``RNN`` and ``LSTM`` share: parameters per layer, input checks, the layer loop."""

    gates = 1

    def __init__(self, input_size, hidden_size, num_layers, bias, batch_first, fused):
        super().__init__()
        name = type(self).__name__
        _check_sizes(name, input_size, hidden_size)
        if num_layers < 1:
            raise ValueError(f"{name}: num_layers must be at least 1, got {num_layers}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.fused = fused
        G, H, k = self.gates, hidden_size, 1.0 / math.sqrt(hidden_size)
        # registration order is PyTorch's: all four of layer 0, then layer 1, ...
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else H
            setattr(self, f"weight_ih_l{layer}", _uniform((G * H, in_size), k))
            setattr(self, f"weight_hh_l{layer}", _uniform((G * H, H), k))
            if bias:
                setattr(self, f"bias_ih_l{layer}", _uniform((G * H,), k))
                setattr(self, f"bias_hh_l{layer}", _uniform((G * H,), k))

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        return s

    def _layer_params(self, layer: int):
        w_ih = getattr(self, f"weight_ih_l{layer}")
        w_hh = getattr(self, f"weight_hh_l{layer}")
        b = None
        if self.bias:
            b = getattr(self, f"bias_ih_l{layer}") + getattr(self, f"bias_hh_l{layer}")
        return w_ih, w_hh, b

    def _to_time_major(self, input: Tensor) -> tuple[Tensor, bool]:
        """Check ``input``; return it as (T, B, in) and whether it was batched."""
        name = type(self).__name__
        _check_floating(name, "input", input, self.weight_ih_l0.dtype)
        layout = (
            "(batch, seq_len, input_size)" if self.batch_first else "(seq_len, batch, input_size)"
        )
        if input.ndim not in (2, 3):
            raise ValueError(
                f"{name}: expected input of 3 dimensions {layout} or 2 (seq_len, input_size) for "
                f"one unbatched sequence, got shape {input.shape}"
            )
        if input.shape[-1] != self.input_size:
            raise ValueError(
                f"{name}: input_size is {self.input_size} but the input's last dimension is "
                f"{input.shape[-1]} (input shape {input.shape})"
            )
        batched = input.ndim == 3
        if not batched:
            input = input.unsqueeze(1)  # (T, in) -> (T, 1, in)
        elif self.batch_first:
            input = input.swapaxes(0, 1)  # (B, T, in) -> (T, B, in)
        if input.shape[0] == 0:
            raise ValueError(
                f"{name}: the input sequence is empty (seq_len 0, shape {input.shape})"
            )
        return input, batched

    def _initial_state(self, what: str, state, x: Tensor, batched: bool) -> Tensor:
        """``state`` (num_layers, B, H) checked, or zeros when None; always (L, B, H)."""
        name = type(self).__name__
        L, B, H = self.num_layers, x.shape[1], self.hidden_size
        if state is None:
            return zeros(L, B, H, dtype=x.dtype, device=x.device)
        _check_floating(name, what, state, self.weight_ih_l0.dtype)
        expected = (L, B, H) if batched else (L, H)
        if state.shape != expected:
            layout = "(num_layers, batch, hidden_size)" if batched else "(num_layers, hidden_size)"
            raise ValueError(
                f"{name}: expected {what} of shape {expected} {layout}, got {state.shape}"
            )
        return state if batched else state.unsqueeze(1)

    def _input_projection(self, x: Tensor, w_ih: Tensor, b: Tensor | None) -> Tensor:
        """``x @ W_ih^T + b`` for every step at once: (T, B, in) -> (T, B, G*H), one matmul."""
        T, B, n_in = x.shape
        proj = x.reshape(T * B, n_in) @ w_ih.mT  # (T*B, in) @ (in, G*H)
        if b is not None:
            proj = proj + b
        return proj.reshape(T, B, proj.shape[-1])

    def _finish(self, output: Tensor, batched: bool) -> Tensor:
        if not batched:
            return output.squeeze(1)  # (T, 1, H) -> (T, H)
        return output.swapaxes(0, 1) if self.batch_first else output


class RNN(_RNNBase):
    """A multi-layer Elman RNN: ``h_t = tanh(x_t @ W_ih^T + b_ih + h_{t-1} @ W_hh^T + b_hh)``.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False)``, as PyTorch. ``rnn(input, h_0=None) -> (output, h_n)``:

    - input (T, B, in), or (B, T, in) with ``batch_first``, or (T, in) unbatched;
    - h_0 (num_layers, B, H), zeros if None;
    - output (T, B, H) (or (B, T, H)): the last layer's h_t for every t; h_n (num_layers, B, H).

    Layer k > 0 reads the outputs of layer k - 1. Backpropagation through time is the chain rule
    along the unrolled loop: the gradient reaching h_{t-1} is ``(dh_t * (1 - h_t^2)) @ W_hh``, so
    it is multiplied by W_hh once per step, which is why plain RNNs forget (or explode).

    >>> import tinygrad_edu as tg
    >>> from tinygrad_edu import nn
    >>> rnn = nn.RNN(3, 5, num_layers=2)
    >>> output, h_n = rnn(tg.randn(7, 4, 3))       # (T, B, in)
    >>> output.shape, h_n.shape
    ((7, 4, 5), (2, 4, 5))
    """

    gates = 1

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        nonlinearity="tanh",
        bias=True,
        batch_first=False,
        *,
        fused=True,
    ):
        _check_nonlinearity("RNN", nonlinearity)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, fused)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x, batched = self._to_time_major(input)  # (T, B, in)
        h0 = self._initial_state("h_0", hx, x, batched)  # (L, B, H)
        T = x.shape[0]
        h_n = []
        for layer in range(self.num_layers):
            w_ih, w_hh, b = self._layer_params(layer)
            x_proj = self._input_projection(x, w_ih, b)  # (T, B, H)
            if self.fused:
                x = RNNSequenceFunction.apply(
                    x_proj, h0[layer], w_hh, nonlinearity=self.nonlinearity
                )
                h_n.append(x[T - 1])
            else:
                x = self._composed_layer(x_proj, h0[layer], w_hh)
                h_n.append(x[T - 1])
        h_n = ops.stack(h_n, axis=0)  # (L, B, H)
        return self._finish(x, batched), (h_n if batched else h_n.squeeze(1))

    def _composed_layer(self, x_proj: Tensor, h: Tensor, w_hh: Tensor) -> Tensor:
        w_hh_t = w_hh.mT  # transposed once, not once per step
        outputs = []
        for t in range(x_proj.shape[0]):
            z = x_proj[t] + h @ w_hh_t  # (B, H)
            h = z.tanh() if self.nonlinearity == "tanh" else z.relu()
            outputs.append(h)
        return ops.stack(outputs, axis=0)  # (T, B, H), stacked once


class LSTM(_RNNBase):
    """A multi-layer LSTM; each layer runs ``LSTMCell``'s equations along the sequence.

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False)``, as PyTorch.
    ``lstm(input, (h_0, c_0)=None) -> (output, (h_n, c_n))``:

    - input (T, B, in), or (B, T, in) with ``batch_first``, or (T, in) unbatched;
    - h_0, c_0 (num_layers, B, H), zeros if None;
    - output (T, B, H) (or (B, T, H)): the last layer's h_t for every t;
    - h_n, c_n (num_layers, B, H): the last step's h and c of every layer.

    Per layer: one matmul projects the inputs of all steps (``x @ W_ih^T + b_ih + b_hh``), then
    the recurrence ``a_t = x_proj_t + h_{t-1} @ W_hh^T``; ``(h_t, c_t) = cell(a_t, c_{t-1})`` runs
    in ``LSTMSequenceFunction`` (``fused=True``) or from primitive ops (``fused=False``).
    The cell state's gradient flows back through ``dc <- dc * f``: no matrix product on that path,
    which is why an LSTM remembers longer than a plain RNN.

    >>> import tinygrad_edu as tg
    >>> from tinygrad_edu import nn
    >>> lstm = nn.LSTM(3, 5)
    >>> output, (h_n, c_n) = lstm(tg.randn(7, 4, 3))  # (T, B, in)
    >>> output.shape, h_n.shape
    ((7, 4, 5), (1, 4, 5))
    """

    gates = 4

    def __init__(
        self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, *, fused=True
    ):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, fused)

    def forward(self, input: Tensor, hx=None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        x, batched = self._to_time_major(input)  # (T, B, in)
        if hx is None:
            h0 = c0 = self._initial_state("h_0", None, x, batched)
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError("LSTM: hx must be a tuple (h_0, c_0) of two tensors")
            h0 = self._initial_state("h_0", hx[0], x, batched)  # (L, B, H)
            c0 = self._initial_state("c_0", hx[1], x, batched)
        T = x.shape[0]
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            w_ih, w_hh, b = self._layer_params(layer)
            x_proj = self._input_projection(x, w_ih, b)  # (T, B, 4H)
            if self.fused:
                seq = LSTMSequenceFunction.apply(x_proj, h0[layer], c0[layer], w_hh)
                x = seq[:T]  # (T + 1, B, H) -> (T, B, H): h_1..h_T
                h_n.append(seq[T - 1])
                c_n.append(seq[T])
            else:
                x, c = self._composed_layer(x_proj, h0[layer], c0[layer], w_hh)
                h_n.append(x[T - 1])
                c_n.append(c)
        h_n = ops.stack(h_n, axis=0)  # (L, B, H)
        c_n = ops.stack(c_n, axis=0)
        if not batched:
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        return self._finish(x, batched), (h_n, c_n)

    def _composed_layer(self, x_proj, h, c, w_hh):
        w_hh_t = w_hh.mT  # transposed once, not once per step
        outputs = []
        for t in range(x_proj.shape[0]):
            a = x_proj[t] + h @ w_hh_t  # (B, 4H)
            h, c = lstm_cell_composed(a, c)
            outputs.append(h)
        return ops.stack(outputs, axis=0), c  # (T, B, H), stacked once

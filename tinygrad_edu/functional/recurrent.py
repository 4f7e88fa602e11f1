"""The recurrent kernels behind ``nn.RNN``, ``nn.LSTMCell`` and ``nn.LSTM`` (chapters 7 and 8).

* ``LSTMCellFunction``: one fused LSTM step after the matmuls (its backward is written with Tensor
  ops, so it is differentiable); ``lstm_cell_composed`` is the same step from primitive ops.
* ``RNNSequenceFunction`` and ``LSTMSequenceFunction``: a layer's whole time loop in one graph
  node, on raw arrays, with backpropagation through time written out by hand.

The layers compute the input projection of every step, ``x_proj = x @ W_ih^T + b_ih + b_hh``, as
one matmul and pass it in (the LSTM passes ``x @ W_ih^T`` and its biases, which its loop adds);
only the recurrent part ``h_{t-1} @ W_hh^T`` is left to the loop.
Shape letters: T steps, B batch, H hidden; gates are packed in the order i, f, g, o.
"""

from __future__ import annotations

from .. import backend, ops
from ..autograd import Function, is_grad_enabled
from ..ops import _const
from ..tensor import Tensor

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
    # --- exercise 8.2: the LSTM cell backward ---
    grad_c = grad_c + grad_h * o * (1.0 - tanh_c * tanh_c)
    grad_o = grad_h * tanh_c * o * (1.0 - o)
    grad_i = grad_c * g * i * (1.0 - i)
    grad_f = grad_c * c_prev * f * (1.0 - f)
    grad_g = grad_c * i * (1.0 - g * g)
    grad_c_prev = grad_c * f
    # --- end exercise ---
    return grad_i, grad_f, grad_g, grad_o, grad_c_prev


def _split4(a, H: int):
    """The four gate blocks (i, f, g, o) of the last axis of ``a`` (arrays or Tensors)."""
    return tuple(a[..., k * H : (k + 1) * H] for k in range(4))


class LSTMCellFunction(Function):
    """One fused LSTM step: pre-activations ``a`` (..., 4H) and cell ``c`` (..., H) -> ``(h', c')``.

    ``a = x @ W_ih^T + b_ih + h @ W_hh^T + b_hh`` is computed by ordinary ops; this Function does
    the rest. Forward, with the gates packed in the order i, f, g, o::

        i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)
        c' = f * c + i * g
        h' = o * tanh(c')

    Two outputs, ``h'`` and ``c'`` (..., H) each. Backward receives one gradient for each and
    applies the gate derivatives of ``_lstm_cell_backward``: the gradient of ``a`` (the four gate
    blocks concatenated) and the gradient of ``c``.

    The sigmoid is ``tanh(a / 2) / 2 + 1 / 2``, finite for any input (pre-activations of +-1e3
    give gates of exactly 0 or 1 and zero, not NaN, gradients). The composed version of the same
    step, from primitive ops, is ``lstm_cell_composed``; the tests check that both agree.

    >>> import tinygrad_edu as tg
    >>> a, c = tg.randn(2, 4 * 3), tg.randn(2, 3)
    >>> h, c_new = LSTMCellFunction.apply(a, c)
    >>> h.shape, c_new.shape            # (B, H) each
    ((2, 3), (2, 3))
    """

    def forward(self, gates, c):
        xp = backend.xp_of(gates)
        H = c.shape[-1]
        # --- exercise 8.1: the LSTM gates forward ---
        act = _gate_activations(xp, gates, _gate_scale(xp, H, gates.dtype))  # i, f, g, o
        i, f, g, o = _split4(act, H)
        c_new = f * c + i * g
        tanh_c = xp.tanh(c_new)
        self.saved = act, tanh_c  # what backward reads
        return o * tanh_c, c_new
        # --- end exercise ---

    def backward(self, grad_h, grad_c):
        gates, c = self.inputs
        H = c.shape[-1]
        if is_grad_enabled():
            # create_graph=True: recompute the gates as Tensors so the gradient is differentiable
            a_i, a_f, a_g, a_o = _split4(gates, H)
            i, f, g, o = a_i.sigmoid(), a_f.sigmoid(), a_g.tanh(), a_o.sigmoid()
            tanh_c = (f * c + i * g).tanh()
        else:
            act, tanh_c = self.saved
            i, f, g, o = (_const(x) for x in _split4(act, H))
            tanh_c = _const(tanh_c)
        grad_i, grad_f, grad_g, grad_o, grad_c_prev = _lstm_cell_backward(
            i, f, g, o, c, tanh_c, grad_h, grad_c
        )
        grad_gates = ops.concat([grad_i, grad_f, grad_g, grad_o], axis=-1)
        return grad_gates, grad_c_prev


def lstm_cell(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTM step from pre-activations ``gates`` (..., 4H) and cell ``c`` (..., H): ``(h', c')``,
    with the fused ``LSTMCellFunction``."""
    return LSTMCellFunction.apply(gates, c)


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


def _repeat_rows(xp, row, n: int):
    """``row`` (K,) repeated into a new contiguous (n, K) array."""
    out = xp.empty((n, row.shape[0]), dtype=row.dtype)
    out[...] = row
    return out


class LSTMSequenceFunction(Function):
    """An LSTM layer's recurrence over T steps in one graph node.

    Inputs: ``x_proj`` (T, B, 4H), the input projections ``x_t @ W_ih^T`` of every step;
    ``h0``, ``c0`` (B, H); ``w_hh`` (4H, H); ``bias`` (4H,) = ``b_ih + b_hh``, or None.
    Forward, for t = 1..T::

        a_t = x_proj_t + h_{t-1} @ W_hh^T + bias          (B, 4H)
        h_t, c_t = the LSTMCellFunction step of (a_t, c_{t-1})

    Two outputs: ``hs`` (T, B, H), the hidden states h_1..h_T, and ``c_T`` (B, H), the last cell.

    Backward is backpropagation through time, from t = T down to 1, with ``dh``/``dc`` the
    gradient reaching h_t / c_t from later steps plus the upstream gradient (of ``hs[t]``; of
    ``c_T`` at the start)::

        da_t, dc = _lstm_cell_backward(gates of step t, c_{t-1}, dh, dc)  -> grad_x_proj[t]
        dh <- da_t @ W_hh
        grad_w_hh = sum_t da_t^T @ h_{t-1}                              (one matmul at the end)
        grad_bias = sum_t da_t summed over the batch
        grad_h0, grad_c0 = dh, dc after the last step back

    The backward works on raw arrays for speed, so it cannot be differentiated a second time.
    """

    differentiable_backward = False

    def forward(self, x_proj, h0, c0, w_hh, bias=None):
        xp = backend.xp_of(x_proj)
        T, B, G = x_proj.shape
        H = G // 4
        dt = x_proj.dtype
        # W_hh^T copied once into row order: ``h @ W_hh^T`` on the transposed view of W_hh took
        # 414 us per step, on the copy 270 us (B2: (32, 256) @ (256, 1024), one thread)
        w_hh_t = xp.empty((H, G), dtype=dt)
        w_hh_t[...] = xp.permute_dims(w_hh, (1, 0))  # (4H, H) -> (H, 4H)
        scale = _gate_scale(xp, H, dt)  # (4H,): 1/2 for i, f, o, 1 for g
        scale4 = xp.reshape(scale[::H], (4, 1, 1))  # the same, one value per gate block
        shift4 = 1.0 - scale4
        # The (4H,) rows repeated to (B, 4H) once: adding a row to every row of a (B, 4H) array
        # took NumPy 16.5 us, adding an array of the same shape 8.5 us (B2, per step).
        scale = _repeat_rows(xp, scale, B)
        if bias is not None:
            bias = _repeat_rows(xp, bias, B)
        # Buffers for backward. The gate values are stored gate-major, (T, 4, B, H): each gate of
        # a step is then one contiguous (B, H) block, and every elementwise op below and in the
        # backward runs on contiguous memory (on (B, H) slices of a (B, 4H) row, NumPy took
        # 7.7 us per multiply instead of 3.3 us). With tanh(c) saved rather than recomputed,
        # B2's backward through this Function took 47.7 ms instead of 50.5 ms (medians of 30,
        # interleaved with the (T, B, 4H) layout, one thread, a busy 2-core machine); the
        # forward's time did not change (the transposing tanh costs what the rest saves).
        acts = xp.empty((T, 4, B, H), dtype=dt)  # i, f, g, o of every step
        cs = xp.empty((T + 1, B, H), dtype=dt)  # c_0..c_T
        tanh_cs = xp.empty((T, B, H), dtype=dt)  # tanh(c_1..c_T): saved, not recomputed
        hs = xp.empty((T + 1, B, H), dtype=dt)  # h_0..h_T: h_{t-1} of every step for grad W_hh
        cs[0, ...] = c0
        hs[0, ...] = h0
        # Each step writes its results straight into the buffers above, in place (the step of
        # _gate_activations and LSTMCellFunction, without their temporaries): the loop took
        # 20.9 ms instead of 31.3 ms (B2, one thread; 38.6 ms before W_hh^T was copied).
        for t in range(T):
            a = xp.matmul(hs[t, ...], w_hh_t)  # (B, H) @ (H, 4H) -> (B, 4H)
            a += x_proj[t, ...]
            if bias is not None:
                a += bias
            a *= scale
            act = acts[t, ...]
            act[...] = xp.tanh(xp.permute_dims(xp.reshape(a, (B, 4, H)), (1, 0, 2)))
            act *= scale4
            act += shift4  # s tanh(s a) + (1 - s): sigmoid for i, f, o and tanh for g
            i, f, g, o = act[0, ...], act[1, ...], act[2, ...], act[3, ...]  # (B, H) each
            c_new = cs[t + 1, ...]
            c_new[...] = f * cs[t, ...]
            c_new += i * g  # c' = f c + i g
            tanh_c = tanh_cs[t, ...]
            tanh_c[...] = xp.tanh(c_new)
            h = hs[t + 1, ...]
            h[...] = o * tanh_c  # h' = o tanh(c')
        self.saved = acts, cs, tanh_cs, hs, w_hh
        return hs[1:, ...], cs[T, ...]

    def backward(self, grad_hs, grad_c):
        acts, cs, tanh_cs, hs, w_hh = self.saved
        xp = backend.xp_of(acts)
        g_out = grad_hs.data
        T, _, B, H = acts.shape
        grad_x_proj = xp.empty((T, B, 4, H), dtype=acts.dtype)  # (T, B, 4H) once reshaped
        dh = xp.zeros_like(hs[0, ...])
        dc = grad_c.data
        for t in range(T - 1, -1, -1):
            dh += g_out[t, ...]
            i, f, g, o = acts[t, 0, ...], acts[t, 1, ...], acts[t, 2, ...], acts[t, 3, ...]
            *d_gates, dc = _lstm_cell_backward(i, f, g, o, cs[t, ...], tanh_cs[t, ...], dh, dc)
            da = grad_x_proj[t, ...]  # (B, 4, H): the gradients of a_t's four gate blocks
            for k in range(4):
                da[:, k, :] = d_gates[k]
            dh = xp.matmul(xp.reshape(da, (B, 4 * H)), w_hh)  # (B, 4H) @ (4H, H)
        grad_x_proj = xp.reshape(grad_x_proj, (T, B, 4 * H))
        needs = self.needs_input_grad
        grad_w_hh = _grad_w_hh(grad_x_proj, hs[0, ...], hs[1:, ...]) if needs[3] else None
        grads = [_const(grad_x_proj), _const(dh), _const(dc), grad_w_hh]
        if len(needs) > 4:  # a bias was passed: its gradient is da summed over steps and batch
            da_rows = xp.reshape(grad_x_proj, (T * B, 4 * H))
            grads.append(_const(xp.sum(da_rows, axis=0)) if needs[4] else None)
        return tuple(grads)


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
        # --- exercise 7.2: backpropagation through time ---
        for t in range(T - 1, -1, -1):
            h = out[t, ...]
            dh = dh + g_out[t, ...]  # from the loss at step t and from step t + 1
            dz = dh * xp.astype(h > 0, h.dtype) if self.relu else dh * (1.0 - h * h)
            grad_x_proj[t, ...] = dz
            dh = xp.matmul(dz, w_hh)  # (B, H) @ (H, H): on to h_{t-1}
        # --- end exercise ---
        grad_w_hh = _grad_w_hh(grad_x_proj, h0, out) if self.needs_input_grad[2] else None
        return _const(grad_x_proj), _const(dh), grad_w_hh


def _grad_w_hh(grad_x_proj, h0, hs) -> Tensor:
    """``sum_t da_t^T @ h_{t-1}`` as one matmul: ``grad_x_proj`` (T, B, G*H) holds the ``da_t``,
    ``hs`` (T, B, H) the outputs h_1..h_T, so h_{t-1} is h0 followed by ``hs[:T-1]``."""
    xp = backend.xp_of(grad_x_proj)
    T, B, GH = grad_x_proj.shape
    H = h0.shape[-1]
    h_prev = xp.concat([xp.expand_dims(h0, axis=0), hs[: T - 1, ...]], axis=0)
    da = xp.permute_dims(xp.reshape(grad_x_proj, (T * B, GH)), (1, 0))
    return _const(xp.matmul(da, xp.reshape(h_prev, (T * B, H))))  # (G*H, T*B) @ (T*B, H)

"""Recurrent layers: ``RNNCell``, ``RNN`` (chapter 7) and ``LSTMCell``, ``LSTM`` (chapter 8).

Names, signatures, defaults, parameter names and shapes are PyTorch's, so a state dict maps
one-to-one. A layer ``k`` of ``RNN``/``LSTM`` holds ``weight_ih_l{k}`` (G*H, in), ``weight_hh_l{k}``
(G*H, H), ``bias_ih_l{k}`` and ``bias_hh_l{k}`` (G*H,), with G = 1 for an RNN and G = 4 for an LSTM
(gates packed in the order i, f, g, o). Every parameter starts uniform in (-1/sqrt(H), 1/sqrt(H)).
With ``bidirectional=True`` each layer has a second set, ``weight_ih_l{k}_reverse`` ..., that reads
the sequence backwards; its outputs are concatenated to the forward ones, (T, B, 2H), and layer
k + 1 reads those 2H features. ``dropout`` drops the outputs of every layer but the last, in
training mode, as PyTorch.

How a layer runs over a sequence of T steps (shape letters: T steps, B batch, H hidden):

1. The input projection of *all* steps is one matrix product, ``x @ W_ih^T + b_ih + b_hh``:
   (T*B, in) @ (in, G*H). Only the recurrent part, ``h_{t-1} @ W_hh^T``, must wait for the
   previous step, so only that part loops over time. (The fused LSTM leaves the biases out of
   the projection and adds them in its loop, step by step: cheaper than one more pass over the
   whole (T, B, 4H) projection.)
2. The loop. ``fused=False`` builds it from primitive ops (5 graph nodes per step for the RNN,
   17 for the LSTM: the reference, easy to read). ``fused=True`` (the default) runs the whole
   loop inside one ``Function`` (``F.RNNSequenceFunction`` / ``F.LSTMSequenceFunction``, in
   ``functional/recurrent.py``) on raw arrays, and its backward is backpropagation through time
   written out by hand: the same math, one graph node per layer.
   The composed loop also pays for taking ``x_proj[t]`` out of one tensor: each slice's backward
   scatters into a zero array of the full (T, B, G*H) shape, O(T^2) work over the sequence.

``LSTMCell`` runs ``F.lstm_cell`` (the fused ``F.LSTMCellFunction``) or ``F.lstm_cell_composed``.

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

from .. import functional as F
from .. import ops
from .._config import check_positive_sizes
from ..tensor import Tensor, zeros
from . import init
from ._checks import (
    check_device,
    check_dtype,
    check_floating,
    check_ndim,
    check_shape,
    check_size,
    check_tensor,
    layer_name,
)
from .module import Module, Parameter


def _uniform(shape: tuple, bound: float, device=None, dtype=None) -> Parameter:
    """PyTorch's init for recurrent layers: uniform in (-bound, bound), bound = 1/sqrt(H)."""
    return init.uniform_(Parameter(zeros(*shape, device=device, dtype=dtype)), -bound, bound)


def _check_nonlinearity(name: str, nonlinearity: str) -> None:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(
            f"{name}: unknown nonlinearity {nonlinearity!r}; expected 'tanh' or 'relu'"
        )


class _CellBase(Module):
    gates = 1

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ):
        check_positive_sizes(type(self).__name__, input_size=input_size, hidden_size=hidden_size)
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        G, H, k = self.gates, hidden_size, 1.0 / math.sqrt(hidden_size)
        where = dict(device=device, dtype=dtype)
        self.weight_ih = _uniform((G * H, input_size), k, **where)
        self.weight_hh = _uniform((G * H, H), k, **where)
        if bias:
            self.bias_ih = _uniform((G * H,), k, **where)
            self.bias_hh = _uniform((G * H,), k, **where)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"

    def _check_input(self, input: Tensor) -> None:
        """The input: (B, in) or unbatched (in,), floating point, where the parameters are."""
        check_tensor(self, input)
        check_floating(self, input)
        check_ndim(self, input, {2: "(batch, input_size)", 1: "(input_size,)"})
        check_size(self, input, -1, self.input_size, "last dimension {} (input_size)")
        check_device(self, input, self.weight_ih.device)
        check_dtype(self, input, self.weight_ih.dtype)

    def _check_state(self, what: str, state: Tensor, input: Tensor) -> None:
        """A state ``h`` or ``c``: (B, H) for a (B, in) input, (H,) for an unbatched one."""
        check_tensor(self, state, what)
        check_floating(self, state, what)
        check_device(self, state, self.weight_ih.device, what)
        check_dtype(self, state, self.weight_ih.dtype, what)
        layout = "(batch, hidden_size)" if input.ndim == 2 else "(hidden_size,)"
        check_shape(self, state, input.shape[:-1] + (self.hidden_size,), layout, what)

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

    def __init__(
        self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None
    ):
        _check_nonlinearity("RNNCell", nonlinearity)
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        self._check_input(input)
        if hx is None:
            hx = zeros(*input.shape[:-1], self.hidden_size, dtype=input.dtype, device=input.device)
        self._check_state("hx", hx, input)
        # --- exercise 7.1: the RNN cell forward ---
        a = (
            input @ self.weight_ih.mT + hx @ self.weight_hh.mT
        )  # (B, in) @ (in, H) + (B, H) @ (H, H)
        if self.bias:
            a = a + (self.bias_ih + self.bias_hh)
        h = a.tanh() if self.nonlinearity == "tanh" else a.relu()
        # --- end exercise ---
        return h


class LSTMCell(_CellBase):
    """One LSTM step (Hochreiter and Schmidhuber 1997, with a forget gate as in PyTorch).

    ``LSTMCell(input_size, hidden_size, bias=True)``; parameters ``weight_ih`` (4H, in),
    ``weight_hh`` (4H, H), ``bias_ih``, ``bias_hh`` (4H,), gates packed i, f, g, o.
    ``cell(input, hx=None)``: input (B, in) or (in,), ``hx = (h, c)`` (zeros if None) -> (h', c')::

        a = x @ W_ih^T + b_ih + h @ W_hh^T + b_hh
        i, f, g, o = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)
        c' = f * c + i * g          h' = o * tanh(c')

    ``fused=True`` runs the step after the matmuls as one ``F.LSTMCellFunction`` (its backward
    applies the gate derivatives directly); ``fused=False`` builds it from primitive ops
    (``F.lstm_cell_composed``).

    >>> import tinygrad_edu as tg
    >>> from tinygrad_edu import nn
    >>> cell = nn.LSTMCell(3, 4)
    >>> h, c = cell(tg.randn(2, 3))
    >>> h.shape, c.shape
    ((2, 4), (2, 4))
    """

    gates = 4

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None, *, fused=True):
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.fused = fused

    def forward(self, input: Tensor, hx=None) -> tuple[Tensor, Tensor]:
        self._check_input(input)
        if hx is None:
            shape = input.shape[:-1] + (self.hidden_size,)
            h = zeros(*shape, dtype=input.dtype, device=input.device)
            c = h
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(
                    f"{layer_name(self)}: expected hx to be a tuple (h, c) of two tensors, "
                    f"got {type(hx).__name__}"
                )
            h, c = hx
        self._check_state("h", h, input)
        self._check_state("c", c, input)
        a = self._preactivation(input, h)
        return F.lstm_cell(a, c) if self.fused else F.lstm_cell_composed(a, c)


class _RNNBase(Module):
    """What ``RNN`` and ``LSTM`` share: parameters per layer, input checks, the layer loop."""

    gates = 1

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers,
        bias,
        batch_first,
        dropout,
        bidirectional,
        fused,
        device,
        dtype,
    ):
        super().__init__()
        name = type(self).__name__
        check_positive_sizes(
            name, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers
        )
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise TypeError(f"{name}: dropout must be a number in [0, 1], got {dropout!r}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.fused = fused
        G, H, k = self.gates, hidden_size, 1.0 / math.sqrt(hidden_size)
        where = dict(device=device, dtype=dtype)
        # registration order is PyTorch's: all four of layer 0 (then its reverse), then layer 1 ...
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else H * len(self._directions())
            for suffix in self._directions():
                tag = f"l{layer}{suffix}"
                setattr(self, f"weight_ih_{tag}", _uniform((G * H, in_size), k, **where))
                setattr(self, f"weight_hh_{tag}", _uniform((G * H, H), k, **where))
                if bias:
                    setattr(self, f"bias_ih_{tag}", _uniform((G * H,), k, **where))
                    setattr(self, f"bias_hh_{tag}", _uniform((G * H,), k, **where))

    def _directions(self) -> tuple:
        """The parameter-name suffixes of a layer's directions: forward, then backward."""
        return ("", "_reverse") if self.bidirectional else ("",)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    def _layer_params(self, name: str):
        """W_ih, W_hh and b_ih + b_hh (or None) of ``name``, e.g. ``"l0"`` or ``"l1_reverse"``."""
        w_ih = getattr(self, f"weight_ih_{name}")
        w_hh = getattr(self, f"weight_hh_{name}")
        b = None
        if self.bias:
            b = getattr(self, f"bias_ih_{name}") + getattr(self, f"bias_hh_{name}")
        return w_ih, w_hh, b

    def _run_layers(self, x: Tensor, h0: Tensor, c0: Tensor | None):
        """Every layer and direction over ``x`` (T, B, in), each starting from its row of ``h0``
        (and ``c0``), (L*D, B, H). Returns the last layer's output (T, B, D*H) and the lists of
        last states h_T (and c_T) in ``h0``'s row order."""
        T = x.shape[0]
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            if layer > 0 and self.training and self.dropout > 0.0:
                x = F.dropout(x, self.dropout)  # between layers, never after the last
            outputs = []
            for suffix in self._directions():
                row = len(h_n)  # this direction's row of h0, c0, h_n and c_n
                reverse = suffix == "_reverse"
                seq = x[::-1] if reverse else x  # the reverse direction reads from T down to 1
                state = None if c0 is None else c0[row]
                out, c = self._layer(seq, self._layer_params(f"l{layer}{suffix}"), h0[row], state)
                h_n.append(out[T - 1])  # out: (T, B, H), h_1..h_T in the order it read
                c_n.append(c)
                outputs.append(out[::-1] if reverse else out)  # back in time order
            x = outputs[0] if len(outputs) == 1 else ops.concat(outputs, axis=-1)  # (T, B, 2H)
        return x, h_n, c_n

    def _to_time_major(self, input: Tensor) -> tuple[Tensor, bool]:
        """Check ``input``; return it as (T, B, in) and whether it was batched."""
        check_tensor(self, input)
        check_floating(self, input)
        layout = (
            "(batch, seq_len, input_size)" if self.batch_first else "(seq_len, batch, input_size)"
        )
        check_ndim(self, input, {3: layout, 2: "(seq_len, input_size)"})
        check_size(self, input, -1, self.input_size, "last dimension {} (input_size)")
        check_device(self, input, self.weight_ih_l0.device)
        check_dtype(self, input, self.weight_ih_l0.dtype)
        batched = input.ndim == 3
        if (input.shape[1] if batched and self.batch_first else input.shape[0]) == 0:
            raise ValueError(
                f"{layer_name(self)}: expected a sequence of at least one step, got seq_len 0 "
                f"(input shape {input.shape})"
            )
        if not batched:
            input = input.unsqueeze(1)  # (T, in) -> (T, 1, in)
        elif self.batch_first:
            input = input.swapaxes(0, 1)  # (B, T, in) -> (T, B, in)
        return input, batched

    def _initial_state(self, what: str, state, x: Tensor, batched: bool) -> Tensor:
        """``state`` (num_layers * D, B, H) checked, or zeros when None; always (L*D, B, H), with
        D = 2 directions if bidirectional, else 1."""
        L, B, H = self.num_layers * len(self._directions()), x.shape[1], self.hidden_size
        if state is None:
            return zeros(L, B, H, dtype=x.dtype, device=x.device)
        check_tensor(self, state, what)
        check_floating(self, state, what)
        check_device(self, state, self.weight_ih_l0.device, what)
        check_dtype(self, state, self.weight_ih_l0.dtype, what)
        layers = "num_layers * 2" if self.bidirectional else "num_layers"
        if batched:
            check_shape(self, state, (L, B, H), f"({layers}, batch, hidden_size)", what)
        else:
            check_shape(self, state, (L, H), f"({layers}, hidden_size)", what)
        return state if batched else state.unsqueeze(1)

    def _input_projection(self, x: Tensor, w_ih: Tensor, b: Tensor | None) -> Tensor:
        """``x @ W_ih^T + b`` for every step at once: (T, B, in) -> (T, B, G*H), one matmul.

        ``F.linear`` is the dense layer of chapter 3: its backward writes the gradient of W_ih
        in W_ih's own (row) order, where ``x @ w_ih.mT`` handed the optimizer a transposed view
        (Adam on B2's (1024, 64) W_ih: 0.26 ms per step with the row-order gradient, 0.48 ms
        with the transposed one; one thread).
        """
        return F.linear(x, w_ih, b)  # (T*B, in) @ (in, G*H), reshaped back to (T, B, G*H)

    def _finish(self, output: Tensor, batched: bool) -> Tensor:
        if not batched:
            return output.squeeze(1)  # (T, 1, H) -> (T, H)
        return output.swapaxes(0, 1) if self.batch_first else output


class RNN(_RNNBase):
    """A multi-layer Elman RNN: ``h_t = tanh(x_t @ W_ih^T + b_ih + h_{t-1} @ W_hh^T + b_hh)``.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None)``, as PyTorch.
    ``rnn(input, h_0=None) -> (output, h_n)``:

    - input (T, B, in), or (B, T, in) with ``batch_first``, or (T, in) unbatched;
    - h_0 (num_layers, B, H), zeros if None;
    - output (T, B, H) (or (B, T, H)): the last layer's h_t for every t; h_n (num_layers, B, H).
    - bidirectional: output (T, B, 2H), h_0 and h_n (2 num_layers, B, H), each layer's two
      directions in turn.

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
        dropout=0.0,
        bidirectional=False,
        device=None,
        dtype=None,
        *,
        fused=True,
    ):
        _check_nonlinearity("RNN", nonlinearity)
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            fused,
            device,
            dtype,
        )
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x, batched = self._to_time_major(input)  # (T, B, in)
        h0 = self._initial_state("h_0", hx, x, batched)  # (L*D, B, H)
        x, h_n, _ = self._run_layers(x, h0, None)
        h_n = ops.stack(h_n, axis=0)  # (L*D, B, H)
        return self._finish(x, batched), (h_n if batched else h_n.squeeze(1))

    def _layer(self, x: Tensor, params, h: Tensor, c=None):
        """One layer, one direction: x (T, B, in) -> (h_1..h_T (T, B, H), None)."""
        w_ih, w_hh, b = params
        x_proj = self._input_projection(x, w_ih, b)  # (T, B, H)
        if self.fused:
            return F.RNNSequenceFunction.apply(x_proj, h, w_hh, nonlinearity=self.nonlinearity), c
        return self._composed_layer(x_proj, h, w_hh), c

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

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None)``, as PyTorch (bidirectional as ``RNN``).
    ``lstm(input, (h_0, c_0)=None) -> (output, (h_n, c_n))``:

    - input (T, B, in), or (B, T, in) with ``batch_first``, or (T, in) unbatched;
    - h_0, c_0 (num_layers, B, H), zeros if None;
    - output (T, B, H) (or (B, T, H)): the last layer's h_t for every t;
    - h_n, c_n (num_layers, B, H): the last step's h and c of every layer.

    Per layer: one matmul projects the inputs of all steps (``x @ W_ih^T``), then the recurrence
    ``a_t = x_proj_t + h_{t-1} @ W_hh^T + b_ih + b_hh``; ``(h_t, c_t) = cell(a_t, c_{t-1})`` runs
    in ``F.LSTMSequenceFunction`` (``fused=True``, which adds the biases inside its loop) or from
    primitive ops (``fused=False``, which adds them to the projection).
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
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        device=None,
        dtype=None,
        *,
        fused=True,
    ):
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            fused,
            device,
            dtype,
        )

    def forward(self, input: Tensor, hx=None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        x, batched = self._to_time_major(input)  # (T, B, in)
        if hx is None:
            h0 = c0 = self._initial_state("h_0", None, x, batched)
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(
                    f"{layer_name(self)}: expected hx to be a tuple (h_0, c_0) of two tensors, "
                    f"got {type(hx).__name__}"
                )
            h0 = self._initial_state("h_0", hx[0], x, batched)  # (L*D, B, H)
            c0 = self._initial_state("c_0", hx[1], x, batched)
        x, h_n, c_n = self._run_layers(x, h0, c0)
        h_n = ops.stack(h_n, axis=0)  # (L*D, B, H)
        c_n = ops.stack(c_n, axis=0)
        if not batched:
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        return self._finish(x, batched), (h_n, c_n)

    def _layer(self, x: Tensor, params, h: Tensor, c: Tensor):
        """One layer, one direction: x (T, B, in) -> (h_1..h_T (T, B, H), c_T (B, H))."""
        w_ih, w_hh, b = params
        if self.fused:
            # the bias is added inside the loop, one (B, 4H) add per step: 64 of them took
            # 0.40 ms against 1.38 ms for ``x_proj + b`` over the whole (T*B, 4H) (B2)
            x_proj = self._input_projection(x, w_ih, None)  # (T, B, 4H)
            return F.LSTMSequenceFunction.apply(x_proj, h, c, w_hh, b)
        x_proj = self._input_projection(x, w_ih, b)
        return self._composed_layer(x_proj, h, c, w_hh)

    def _composed_layer(self, x_proj, h, c, w_hh):
        w_hh_t = w_hh.mT  # transposed once, not once per step
        outputs = []
        for t in range(x_proj.shape[0]):
            a = x_proj[t] + h @ w_hh_t  # (B, 4H)
            h, c = F.lstm_cell_composed(a, c)
            outputs.append(h)
        return ops.stack(outputs, axis=0), c  # (T, B, H), stacked once

"""``Conv1d``: one small ``Linear`` slid along a sequence.

Chapter 6 ("Conv1d") builds this layer. Each output position sees a window of ``kernel_size``
neighbouring positions (every ``dilation``-th one, windows ``stride`` apart) across all input
channels, and applies the same weights everywhere: few parameters, and a pattern learned at one
position is recognised at all of them. ``F.conv1d`` gathers all the windows at once ("im2col") and
does one matrix product, with no Python loop over positions.

Read next: ``rnn.py``.
"""

from __future__ import annotations

from .. import functional as F
from .._config import check_positive_sizes
from ..tensor import Tensor, zeros
from ._checks import check_device, check_dtype, check_ndim, check_size, check_tensor, layer_name
from .linear import Linear
from .module import Module, Parameter


class Conv1d(Module):
    """1-D convolution (a cross-correlation, as in every framework), PyTorch's signature.

    Shapes: input (N, C_in, L) or unbatched (C_in, L) -> (N, C_out, L_out) or (C_out, L_out), with
    ``L_out = (L + 2 padding - dilation (kernel_size - 1) - 1) // stride + 1``;
    ``weight`` (C_out, C_in, kernel_size), ``bias`` (C_out,).

    Forward: ``y[n, o, i] = b[o] + sum_{c, k} W[o, c, k] x[n, c, i stride + k dilation - padding]``
    (zero outside the input). Backward: autograd through the unfold and the matmul; the unfold's
    backward ("fold") adds each window's gradient back where the windows overlap.

    ``padding`` is an integer or ``"valid"`` (0) or ``"same"`` (output as long as the input,
    stride 1; when the kernel spans an even number of positions, the extra zero goes on the right,
    as in PyTorch). ``groups`` and ``padding_mode`` are PyTorch's arguments with the only values
    supported here, 1 and ``"zeros"``. As in PyTorch, ``kernel_size``, ``stride``, ``padding``
    and ``dilation`` are kept as 1-tuples. Initialisation as PyTorch: ``W`` and ``b`` uniform in
    (-1/sqrt(fan_in), 1/sqrt(fan_in)), ``fan_in = C_in * kernel_size``.

    >>> import tinygrad_edu as tg
    >>> from tinygrad_edu import nn
    >>> conv = nn.Conv1d(3, 8, kernel_size=5, padding=2)
    >>> conv
    Conv1d(3, 8, kernel_size=(5,), stride=(1,), padding=(2,))
    >>> conv(tg.ones(4, 3, 20)).shape
    (4, 8, 20)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | str = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        super().__init__()
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(
                f"Conv1d: padding must be an integer, 'valid' or 'same', got {padding!r}"
            )
        if padding == "same" and _single(stride) != (1,):
            raise ValueError("Conv1d: padding='same' needs stride=1")
        if groups != 1 or isinstance(groups, bool) or padding_mode != "zeros":
            raise ValueError(
                f"Conv1d: only groups=1 and padding_mode='zeros' are supported, got "
                f"groups={groups!r}, padding_mode={padding_mode!r} (pass bias by name: bias=...)"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride)
        self.padding = padding if isinstance(padding, str) else _single(padding)
        self.dilation = _single(dilation)
        check_positive_sizes("Conv1d", in_channels=in_channels, out_channels=out_channels,
                             kernel_size=self.kernel_size[0], stride=self.stride[0],
                             dilation=self.dilation[0])  # fmt: skip
        if not isinstance(padding, str):
            check_positive_sizes("Conv1d", minimum=0, padding=self.padding[0])
        K = self.kernel_size[0]
        self.weight = Parameter(zeros(out_channels, in_channels, K, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(zeros(out_channels, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    # Linear's: both uniform in (-1/sqrt(fan_in), 1/sqrt(fan_in)), here fan_in = C_in * kernel_size
    reset_parameters = Linear.reset_parameters

    def forward(self, x: Tensor) -> Tensor:
        check_tensor(self, x)
        check_ndim(self, x, {2: "(C_in, L)", 3: "(N, C_in, L)"})
        check_size(self, x, -2, self.in_channels, "{} channels (axis -2)")
        check_device(self, x, self.weight.device)
        check_dtype(self, x, self.weight.dtype)
        padding = self.padding if isinstance(self.padding, str) else self.padding[0]
        span = self.dilation[0] * (self.kernel_size[0] - 1) + 1  # input positions one output sees
        if isinstance(padding, str):  # zeros added at both ends, in total
            added = span - 1 if padding == "same" else 0
        else:
            added = 2 * padding
        if x.shape[-1] + added < span:
            raise ValueError(
                f"{layer_name(self)}: expected input length (axis -1) of at least "
                f"{span - added} (the kernel spans {span} positions, padding adds {added}), "
                f"got shape {x.shape}"
            )
        # (N, C_in, L) -> (N, C_out, L_out), or (C_in, L) -> (C_out, L_out) unbatched
        return F.conv1d(x, self.weight, self.bias, self.stride[0], padding, self.dilation[0])

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,):  # a string ("same") is shown too, as PyTorch does
            s += f", padding={self.padding}"
        if self.dilation != (1,):
            s += f", dilation={self.dilation}"
        if self.bias is None:
            s += ", bias=False"
        return s


def _single(v) -> tuple:
    """``5 -> (5,)``; a 1-tuple stays as it is (PyTorch keeps conv sizes as tuples)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"Conv1d: expected an integer or a 1-tuple, got {v!r}")
        v = v[0]
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"Conv1d: sizes must be integers or 1-tuples, got {v!r}")
    return (v,)

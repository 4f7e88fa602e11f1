"""The layers of ``tinygrad_edu.nn`` (except RNN/LSTM: test_rnn.py) and ``Module``'s features.

Every layer is checked three ways: its forward against a plain-NumPy reference written as loops
(``references.py``: explicit sums, a loop over positions, a loop over queries and heads), its
backward with a float64 gradient check with respect to the input *and every parameter*
(``gradcheck_module``), and its bookkeeping (parameter names and shapes as PyTorch's,
initialisation, repr, errors that name the layer and both sizes).
Two toy problems show the pieces learn: an MLP on XOR and a Transformer block on a copy task.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import references
from helpers import leaf, leaf64, npy, other_device, raises_each, t64
from hypothesis import given
from hypothesis import strategies as st
from strategies import conv1d_sizes

import tinygrad_edu as tg
import tinygrad_edu.functional as F
from tinygrad_edu import nn
from tinygrad_edu.nn import init
from tinygrad_edu.testing import gradcheck_module

# ================================================================================================
# Helpers
# ================================================================================================


def shift_biases(module, seed=1):
    """Give every bias a random value (some start at zero, which would hide a bias bug)."""
    rng = np.random.default_rng(seed)
    for name, p in module.named_parameters():
        if name.endswith("bias"):
            p.data = t64(rng.uniform(-0.5, 0.5, size=p.shape)).astype(p.dtype).data


def shapes(module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


# ================================================================================================
# init (chapter 3)
# ================================================================================================


@pytest.mark.ch03
class TestInit:
    def test_uniform_and_normal_fill_in_place_with_the_right_spread(self):
        t = tg.zeros(200, 300)
        assert init.uniform_(t, -2.0, 3.0) is t
        a = t.numpy()
        assert a.min() >= -2.0 and a.max() < 3.0
        assert abs(a.mean() - 0.5) < 0.05 and abs(a.std() - 5 / math.sqrt(12)) < 0.02
        init.normal_(t, mean=1.0, std=0.5)
        a = t.numpy()
        assert abs(a.mean() - 1.0) < 0.01 and abs(a.std() - 0.5) < 0.01
        assert t.dtype == "float32" and t.shape == (200, 300)

    def test_constants(self):
        t = tg.randn(3, 4, dtype="float64")
        assert init.zeros_(t).numpy().tolist() == [[0.0] * 4] * 3
        assert init.ones_(t).numpy().tolist() == [[1.0] * 4] * 3
        assert init.constant_(t, 2.5).numpy().tolist() == [[2.5] * 4] * 3
        assert t.dtype == "float64"

    def test_fan_in_and_fan_out_count_the_kernel(self):
        w = tg.zeros(20, 10, 5)  # (out, in, K): fan_in 50, fan_out 100
        bound = math.sqrt(6.0 / 150)
        a = init.xavier_uniform_(w).numpy()
        assert np.abs(a).max() <= bound and np.abs(a).max() > 0.95 * bound
        bound = math.sqrt(2.0) * math.sqrt(3.0 / 50)  # relu gain
        a = init.kaiming_uniform_(w, nonlinearity="relu").numpy()
        assert np.abs(a).max() <= bound and np.abs(a).max() > 0.95 * bound
        a = init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu").numpy()
        assert np.abs(a).max() <= math.sqrt(6.0 / 100)

    def test_kaiming_uniform_with_a_sqrt5_is_one_over_sqrt_fan_in(self):
        w = init.kaiming_uniform_(tg.zeros(256, 64), a=math.sqrt(5)).numpy()
        bound = 1 / math.sqrt(64)
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
        assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound

    def test_normal_variants(self):
        w = init.kaiming_normal_(tg.zeros(400, 100), nonlinearity="relu").numpy()
        assert abs(w.std() - math.sqrt(2.0 / 100)) < 0.01 * math.sqrt(2.0 / 100) * 3
        w = init.xavier_normal_(tg.zeros(300, 100)).numpy()
        assert abs(w.std() - math.sqrt(2.0 / 400)) < 0.03 * math.sqrt(2.0 / 400)

    def test_calculate_gain(self):
        assert init.calculate_gain("linear") == 1.0
        assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
        assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
        assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
        with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
            init.calculate_gain("swish")

    def test_errors(self):
        with pytest.raises(ValueError, match=r"at least 2 dimensions, got shape \(5,\)"):
            init.xavier_uniform_(tg.zeros(5))
        with pytest.raises(TypeError, match="expected a Tensor"):
            init.normal_(np.zeros(3))
        with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
            init.kaiming_uniform_(tg.zeros(3, 3), mode="fan")

    def test_the_seed_decides_every_draw(self, device):
        tg.manual_seed(7)
        a = nn.Linear(5, 3)
        tg.manual_seed(7)
        b = nn.Linear(5, 3)
        c = nn.Linear(5, 3)
        assert np.array_equal(a.weight.numpy(), b.weight.numpy())
        assert not np.array_equal(b.weight.numpy(), c.weight.numpy())
        assert a.weight.device == device


# ================================================================================================
# Linear (chapter 3)
# ================================================================================================


@pytest.mark.ch03
class TestLinear:
    @pytest.mark.parametrize("lead", [(), (3,), (2, 3)])
    @pytest.mark.parametrize("bias", [True, False])
    def test_forward_equals_explicit_sums(self, lead, bias):
        layer = nn.Linear(5, 4, bias=bias).astype("float64")
        shift_biases(layer)
        x = np.random.default_rng(0).standard_normal(lead + (5,))
        out = layer(t64(x))
        b = npy(layer.bias) if bias else None
        assert out.shape == lead + (4,)
        np.testing.assert_allclose(
            out.numpy(), references.linear(x, npy(layer.weight), b), atol=1e-12
        )

    @pytest.mark.parametrize("bias", [True, False])
    def test_gradcheck_input_and_parameters(self, bias):
        layer = nn.Linear(4, 3, bias=bias).astype("float64")
        assert gradcheck_module(layer, leaf(2, 5, 4), name="Linear")

    def test_parameters_as_pytorch(self):
        layer = nn.Linear(4, 2)
        assert shapes(layer) == {"weight": (2, 4), "bias": (2,)}
        assert shapes(nn.Linear(4, 2, bias=False)) == {"weight": (2, 4)}
        assert layer.bias.requires_grad and layer.weight.dtype == "float32"
        assert nn.Linear(3, 2, dtype="float64").weight.dtype == "float64"

    def test_init_as_pytorch(self):
        layer = nn.Linear(64, 512)
        bound = 1 / math.sqrt(64)
        w, b = layer.weight.numpy(), layer.bias.numpy()
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
        assert np.abs(b).max() <= bound and np.abs(b).max() > 0.9 * bound
        assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound

    def test_dense_is_linear_and_repr(self):
        assert nn.Dense is nn.Linear
        assert repr(nn.Dense(4, 2)) == "Linear(in_features=4, out_features=2, bias=True)"
        assert repr(nn.Linear(4, 2, bias=False)) == (
            "Linear(in_features=4, out_features=2, bias=False)"
        )

    def test_wrong_feature_size_names_the_layer_and_both_sizes(self):
        layer = nn.Linear(4, 2)
        msg = (
            r"Linear\(in_features=4, out_features=2, bias=True\): expected input with last "
            r"dimension 4, got shape \(3, 5\)"
        )
        with pytest.raises(ValueError, match=msg):
            layer(tg.ones(3, 5))
        with pytest.raises(ValueError, match=r"last dimension 4, got shape \(\)"):
            layer(tg.tensor(1.0))
        with pytest.raises(TypeError, match=r"Linear\(.*\): expected a Tensor as input, got list"):
            layer([1.0, 2.0, 3.0, 4.0])
        msg = (
            r"Linear\(in_features=4, out_features=2, bias=True\): expected input of dtype float32 "
            r"\(the layer's parameters\), got float64 \(shape \(3, 4\)\); convert the input "
            r"with .astype\('float32'\) or the layer with .astype\('float64'\)"
        )
        with pytest.raises(TypeError, match=msg):
            layer(tg.ones(3, 4, dtype="float64"))
        with pytest.raises(TypeError, match=r"got int64 \(shape \(3, 4\)\)"):
            layer(tg.ones(3, 4, dtype="int64"))


# ================================================================================================
# Activations (chapters 3 and 10)
# ================================================================================================

ACTIVATIONS = [
    (nn.ReLU(), lambda x: np.maximum(x, 0.0), "ReLU()"),
    (nn.Tanh(), np.tanh, "Tanh()"),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x)), "Sigmoid()"),
    pytest.param(  # the exact GELU's backward is exercise 10.2
        nn.GELU(), references.gelu, "GELU(approximate='none')", marks=pytest.mark.ch10
    ),
    (
        nn.GELU(approximate="tanh"),
        lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
        "GELU(approximate='tanh')",
    ),
]


@pytest.mark.ch03
@pytest.mark.parametrize(
    "module, ref, text", ACTIVATIONS, ids=[getattr(a, "values", a)[2] for a in ACTIVATIONS]
)
def test_activation_forward_backward_repr(module, ref, text):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 3.0, size=(3, 4)) * np.where(rng.random((3, 4)) < 0.5, -1, 1)  # no kink
    np.testing.assert_allclose(module(t64(x)).numpy(), ref(x), rtol=1e-12, atol=1e-14)
    assert gradcheck_module(module, leaf64(x), name=text)
    assert repr(module) == text
    assert module.parameters() == []


@pytest.mark.ch03
def test_gelu_rejects_an_unknown_approximation():
    with pytest.raises(ValueError, match="GELU: approximate must be 'none' or 'tanh', got 'fast'"):
        nn.GELU(approximate="fast")


# ================================================================================================
# Module features (chapter 3)
# ================================================================================================


class Net(nn.Module):
    """The same architecture in PyTorch has exactly the state dict keys of ``TORCH_KEYS``."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.conv = nn.Conv1d(8, 16, 3, padding=1)
        self.norm = nn.LayerNorm(16)
        self.blocks = nn.ModuleList([nn.Linear(16, 16), nn.Linear(16, 16, bias=False)])
        self.head = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 4))

    def forward(self, ids):
        x = self.emb(ids).transpose(0, 2, 1)  # (B, T, 8) -> (B, 8, T)
        x = self.conv(x).transpose(0, 2, 1)  # -> (B, T, 16)
        x = self.norm(x)
        for blk in self.blocks:
            x = blk(x).relu()
        return self.head(x)


# written down from torch.nn for the same architecture (name -> shape, in order)
TORCH_KEYS = {
    "emb.weight": (10, 8),
    "conv.weight": (16, 8, 3),
    "conv.bias": (16,),
    "norm.weight": (16,),
    "norm.bias": (16,),
    "blocks.0.weight": (16, 16),
    "blocks.0.bias": (16,),
    "blocks.1.weight": (16, 16),
    "head.0.weight": (32, 16),
    "head.0.bias": (32,),
    "head.3.weight": (4, 32),
    "head.3.bias": (4,),
}

TORCH_REPR = """Net(
  (emb): Embedding(10, 8)
  (conv): Conv1d(8, 16, kernel_size=(3,), stride=(1,), padding=(1,))
  (norm): LayerNorm((16,), eps=1e-05, elementwise_affine=True, bias=True)
  (blocks): ModuleList(
    (0): Linear(in_features=16, out_features=16, bias=True)
    (1): Linear(in_features=16, out_features=16, bias=False)
  )
  (head): Sequential(
    (0): Linear(in_features=16, out_features=32, bias=True)
    (1): ReLU()
    (2): Dropout(p=0.1, inplace=False)
    (3): Linear(in_features=32, out_features=4, bias=True)
  )
)"""


@pytest.mark.ch03
class TestModule:
    def test_state_dict_keys_shapes_and_order_as_pytorch(self):
        net = Net()
        assert list(shapes(net).items()) == list(TORCH_KEYS.items())
        names = [n for n, _ in net.named_parameters()]
        assert names == list(TORCH_KEYS)
        assert [id(p) for p in net.parameters()] == [id(p) for _, p in net.named_parameters()]
        assert net.num_parameters() == sum(int(np.prod(s)) for s in TORCH_KEYS.values())

    def test_repr_as_pytorch(self):
        assert repr(Net()) == TORCH_REPR

    @pytest.mark.ch06  # Net's Conv1d (exercise 6.1)
    def test_forward_runs_and_shared_parameters_count_once(self):
        net = Net()
        out = net(tg.tensor(np.array([[1, 2, 3, 4, 5]])))
        assert out.shape == (1, 5, 4)
        net.blocks.append(net.blocks[0])  # the same Linear twice
        assert len(net.parameters()) == len(TORCH_KEYS)
        assert "blocks.2.weight" in net.state_dict()  # a tied tensor is saved under both names

    @pytest.mark.ch06  # Net's Conv1d (exercise 6.1)
    def test_load_state_dict_round_trip(self):
        a, b = Net(), Net()
        ids = tg.tensor(np.array([[0, 3, 9, 2]]))
        a.eval(), b.eval()
        assert not np.allclose(a(ids).numpy(), b(ids).numpy())
        missing, unexpected = b.load_state_dict(a.state_dict())
        assert missing == [] and unexpected == []
        np.testing.assert_array_equal(a(ids).numpy(), b(ids).numpy())
        # the arrays were copied in, not shared
        a.head[0].weight.data = a.head[0].weight.data * 2.0
        assert not np.array_equal(a.head[0].weight.numpy(), b.head[0].weight.numpy())

    def test_load_state_dict_names_missing_unexpected_and_misshaped_keys(self):
        net = Net()
        sd = dict(net.state_dict())
        del sd["norm.bias"]
        sd["head.9.weight"] = np.zeros((2, 2), dtype=np.float32)
        with pytest.raises(ValueError, match=r"missing keys: norm\.bias") as info:
            net.load_state_dict(sd)
        assert "unexpected keys: head.9.weight" in str(info.value)
        assert "load_state_dict into Net" in str(info.value)
        missing, unexpected = net.load_state_dict(sd, strict=False)
        assert missing == ["norm.bias"] and unexpected == ["head.9.weight"]
        sd = dict(net.state_dict())
        sd["conv.bias"] = np.zeros(15, dtype=np.float32)
        with pytest.raises(ValueError, match=r"conv\.bias: checkpoint \(15,\), model \(16,\)"):
            net.load_state_dict(sd, strict=False)

    def test_train_and_eval_reach_every_submodule(self):
        net = Net()
        assert all(m.training for m in net.modules())
        assert net.eval() is net
        assert not any(m.training for m in net.modules())
        net.train()
        assert net.head[2].training

    @pytest.mark.ch10  # backward through Net's Conv1d (6.1) and LayerNorm (10.1)
    def test_zero_grad(self):
        net = Net()
        net(tg.tensor(np.array([[1, 2, 3]]))).sum().backward()
        assert all(p.grad is not None for p in net.parameters())
        net.zero_grad()
        assert all(p.grad is None for p in net.parameters())

    @pytest.mark.ch06  # Net's Conv1d (exercise 6.1)
    def test_to_device_keeps_the_parameter_objects(self, device):
        net = Net().eval()
        ids = np.array([[1, 2, 3]])
        before = net(tg.tensor(ids)).numpy()
        params = net.parameters()
        other = other_device(device)
        assert net.to(other) is net
        assert [id(p) for p in net.parameters()] == [id(p) for p in params]
        assert all(p.device == other for p in net.parameters())
        out = net(tg.tensor(ids, device=other))
        assert out.device == other
        np.testing.assert_allclose(out.numpy(), before, rtol=1e-6, atol=1e-6)
        net.to(device)
        assert all(p.device == device for p in net.parameters())

    @pytest.mark.ch10  # runs a TransformerBlock (exercise 10.3)
    def test_layers_are_built_on_the_device_and_dtype_asked_for(self, device):
        other = other_device(device)
        layers = [
            nn.Linear(3, 2, device=other, dtype="float64"),
            nn.Embedding(5, 2, device=other, dtype="float64"),
            nn.Conv1d(2, 3, 3, device=other, dtype="float64"),
            nn.LayerNorm(4, device=other, dtype="float64"),
            nn.MultiHeadAttention(4, 2, device=other, dtype="float64"),
            nn.TransformerBlock(4, 2, device=other, dtype="float64"),
        ]
        for layer in layers:
            assert {(p.device, p.dtype) for p in layer.parameters()} == {(other, "float64")}
        x = tg.ones(1, 3, 4, dtype="float64", device=other)
        assert layers[-1](x).device == other

    def test_input_on_another_device_names_the_layer_and_both_devices(self, device):
        other = other_device(device)
        for layer, x, name in [
            (nn.Linear(3, 2), tg.ones(2, 3, device=other), "input"),
            (nn.Conv1d(3, 2, 1), tg.ones(2, 3, 4, device=other), "input"),
            (nn.LayerNorm(3), tg.ones(2, 3, device=other), "input"),
            (nn.Embedding(5, 2), tg.tensor(np.array([1, 2]), device=other), "ids"),
            (nn.MultiHeadAttention(4, 2), tg.ones(1, 2, 4, device=other), "query"),
        ]:
            msg = (
                rf"{type(layer).__name__}\(.*\): {name} is on device '{other}' but the layer's "
                rf"parameters are on '{device}'; move the input with .to\('{device}'\) or the "
                rf"model with .to\('{other}'\)"
            )
            with pytest.raises(tg.backend.DeviceError, match=msg):
                layer(x)

    def test_astype_float64(self):
        net = Net().astype("float64")
        assert {p.dtype for p in net.parameters()} == {"float64"}

    def test_sequential_and_module_list(self):
        seq = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
        assert len(seq) == 3 and isinstance(seq[1], nn.Tanh) and list(seq)[2] is seq[2]
        x = tg.randn(5, 3)
        np.testing.assert_allclose(seq(x).numpy(), seq[2](seq[1](seq[0](x))).numpy())
        seq.append(nn.ReLU())  # as PyTorch's Sequential.append: one more step at the end
        assert len(seq) == 4 and not (seq(x).numpy() < 0).any()
        ml = nn.ModuleList([nn.Linear(2, 2)])
        ml.append(nn.Linear(2, 3))
        assert len(ml) == 2 and ml[1].out_features == 3
        assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]

    def test_forgetting_super_init_is_a_clear_error(self):
        class Broken(nn.Module):
            def __init__(self):
                self.fc = nn.Linear(2, 2)

        with pytest.raises(RuntimeError, match=r"Broken: call super\(\).__init__\(\)"):
            Broken()


# ================================================================================================
# Toy training: an MLP learns XOR (chapter 3)
# ================================================================================================


@pytest.mark.ch04  # trains with cross_entropy (exercise 4.2)
def test_mlp_learns_xor_with_plain_sgd():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    Y = np.array([0, 1, 1, 0])
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
    x, y = tg.tensor(X), tg.tensor(Y)
    losses = []
    for _ in range(300):
        loss = F.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        losses.append(loss.item())
        with tg.no_grad():
            for p in model.parameters():
                p.data = (p - 0.5 * p.grad).data
    assert losses[0] > 0.6  # chance level is log 2 = 0.69
    assert losses[-1] < 0.05
    assert model(x).argmax(axis=-1).numpy().tolist() == [0, 1, 1, 0]


# ================================================================================================
# Embedding (chapter 5)
# ================================================================================================


@pytest.mark.ch05
class TestEmbedding:
    def test_forward_is_a_row_lookup(self):
        emb = nn.Embedding(7, 3)
        ids = np.array([[1, 6, 1], [0, 3, 2]])
        out = emb(tg.tensor(ids)).numpy()
        W = emb.weight.numpy()
        assert out.shape == (2, 3, 3)
        for b in range(2):
            for t in range(3):
                np.testing.assert_array_equal(out[b, t], W[ids[b, t]])

    def test_gradcheck_weight_and_repeated_ids_accumulate(self):
        emb = nn.Embedding(5, 3).astype("float64")
        ids = tg.tensor(np.array([[1, 1, 4], [1, 0, 4]]))
        assert gradcheck_module(emb, ids, name="Embedding")
        g = np.random.default_rng(0).standard_normal((2, 3, 3))
        emb.zero_grad()
        emb(ids).backward(t64(g))
        grad = emb.weight.grad.numpy()
        np.testing.assert_allclose(grad[1], g[0, 0] + g[0, 1] + g[1, 0])
        np.testing.assert_allclose(grad[4], g[0, 2] + g[1, 2])
        np.testing.assert_allclose(grad[0], g[1, 1])
        np.testing.assert_array_equal(grad[[2, 3]], 0.0)

    def test_parameters_init_and_repr_as_pytorch(self):
        emb = nn.Embedding(200, 100)
        assert shapes(emb) == {"weight": (200, 100)}
        w = emb.weight.numpy()
        assert abs(w.mean()) < 0.02 and abs(w.std() - 1.0) < 0.02  # N(0, 1)
        assert repr(emb) == "Embedding(200, 100)"

    def test_bad_ids_name_the_layer_the_id_and_the_table_size(self):
        emb = nn.Embedding(10, 3)
        with pytest.raises(IndexError, match=r"Embedding\(10, 3\): id 12 is out of range .* 10"):
            emb(tg.tensor(np.array([[1, 12]])))
        with pytest.raises(IndexError, match=r"Embedding\(10, 3\): id -1 is negative"):
            emb(tg.tensor(np.array([-1, 2])))
        with pytest.raises(TypeError, match=r"Embedding\(10, 3\): ids must be integers, got dtype"):
            emb(tg.tensor([1.0, 2.0]))


# ================================================================================================
# Conv1d (chapter 6)
# ================================================================================================


@pytest.mark.ch06
class TestConv1d:
    @pytest.mark.parametrize(
        "kernel_size, stride, padding, dilation, bias",
        [(3, 1, 0, 1, True), (3, 2, 1, 1, True), (2, 1, 2, 2, False), (4, 3, 2, 1, True)],
    )
    def test_forward_equals_a_loop_over_positions(
        self, kernel_size, stride, padding, dilation, bias
    ):
        conv = nn.Conv1d(3, 4, kernel_size, stride, padding, dilation, bias=bias).astype("float64")
        shift_biases(conv)
        x = np.random.default_rng(0).standard_normal((2, 3, 11))
        out = conv(t64(x)).numpy()
        b = npy(conv.bias) if bias else None
        ref = references.conv1d(x, npy(conv.weight), b, stride, padding, dilation)
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, atol=1e-12)

    @given(
        **conv1d_sizes(max_padding=2, max_dilation=2),
        extra=st.integers(0, 5),
        layout=st.sampled_from(["contiguous", "transposed"]),
    )
    def test_forward_equals_the_loop_for_drawn_sizes(
        self, n, c_in, c_out, kernel_size, stride, padding, dilation, extra, layout
    ):
        # the shortest valid input, plus `extra` (down to one output position)
        L = max(1, dilation * (kernel_size - 1) + 1 - 2 * padding) + extra
        conv = nn.Conv1d(c_in, c_out, kernel_size, stride, padding, dilation).astype("float64")
        x = np.random.default_rng(extra).standard_normal((n, c_in, L))
        if layout == "transposed":  # the same values, laid out (N, L, C) in memory
            x = np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1)
        ref = references.conv1d(x, npy(conv.weight), npy(conv.bias), stride, padding, dilation)
        np.testing.assert_allclose(conv(t64(x)).numpy(), ref, atol=1e-12)

    def test_same_padding_and_unbatched_input(self):
        conv = nn.Conv1d(2, 3, 5, padding="same").astype("float64")
        x = np.random.default_rng(1).standard_normal((2, 9))
        out = conv(t64(x))
        assert out.shape == (3, 9)
        ref = references.conv1d(x[None], npy(conv.weight), npy(conv.bias), 1, 2, 1)[0]
        np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)

    def test_gradcheck_input_and_parameters(self):
        conv = nn.Conv1d(2, 3, 3, stride=2, padding=1, dilation=2).astype("float64")
        assert gradcheck_module(conv, leaf(2, 2, 8), name="Conv1d")

    def test_parameters_init_and_repr_as_pytorch(self):
        conv = nn.Conv1d(16, 32, 5)
        assert shapes(conv) == {"weight": (32, 16, 5), "bias": (32,)}
        bound = 1 / math.sqrt(16 * 5)
        w = conv.weight.numpy()
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
        assert np.abs(conv.bias.numpy()).max() <= bound
        assert repr(conv) == "Conv1d(16, 32, kernel_size=(5,), stride=(1,))"
        assert repr(nn.Conv1d(3, 8, 5, stride=2, padding=2, dilation=2, bias=False)) == (
            "Conv1d(3, 8, kernel_size=(5,), stride=(2,), padding=(2,), dilation=(2,), bias=False)"
        )
        assert repr(nn.Conv1d(3, 8, 5, padding="same")).endswith("padding=same)")
        assert conv.kernel_size == (5,) and conv.stride == (1,) and conv.padding == (0,)

    def test_wrong_channels_or_rank_name_the_layer_and_both_sizes(self):
        conv = nn.Conv1d(3, 4, 3)
        name = r"Conv1d\(3, 4, kernel_size=\(3,\), stride=\(1,\)\)"
        raises_each(
            (
                lambda: conv(tg.ones(2, 5, 10)),
                ValueError,
                name + r": expected input with 3 channels \(axis -2\), got shape \(2, 5, 10\)",
            ),
            (
                lambda: conv(tg.ones(1, 2, 3, 10)),
                ValueError,
                name + r": expected 2-D \(C_in, L\) or 3-D "
                r"\(N, C_in, L\) input, got shape \(1, 2, 3, 10\)",
            ),
            (
                lambda: conv(tg.ones(1, 3, 2)),
                ValueError,
                name + r": expected input length \(axis -1\) of at least 3 \(the kernel spans 3 "
                r"positions, padding adds 0\), got shape \(1, 3, 2\)",
            ),
            (
                lambda: nn.Conv1d(3, 4, 5, padding=2, dilation=2)(tg.ones(3, 4)),
                ValueError,
                r"at least 5 \(the kernel spans 9 positions, padding adds 4\), got shape \(3, 4\)",
            ),
            (
                lambda: conv(tg.ones(1, 3, 5, dtype="float64")),
                TypeError,
                name + r": expected input of dtype float32 \(the "
                r"layer's parameters\), got float64 \(shape \(1, 3, 5\)\)",
            ),
            (
                lambda: nn.Conv1d(3, 4, 3, padding="full"),
                ValueError,
                "padding must be an integer, 'valid' or 'same'",
            ),
            (
                lambda: nn.Conv1d(3, 4, 3, stride=2, padding="same"),
                ValueError,
                "padding='same' needs stride=1",
            ),
        )
        assert nn.Conv1d(3, 4, 5, padding=2, dilation=2)(tg.ones(3, 5)).shape == (4, 1)
        assert nn.Conv1d(3, 4, 5, padding="same")(tg.ones(3, 1)).shape == (4, 1)

    def test_bad_stride_padding_or_dilation_is_refused_by_the_constructor(self):
        raises_each(
            (
                lambda: nn.Conv1d(3, 4, 3, stride=0),
                ValueError,
                r"Conv1d: stride must be a positive integer, got 0",
            ),
            (
                lambda: nn.Conv1d(3, 4, 3, dilation=-1),
                ValueError,
                r"Conv1d: dilation must be a positive integer, got -1",
            ),
            (
                lambda: nn.Conv1d(3, 4, 3, padding=-1),
                ValueError,
                r"Conv1d: padding must be an integer >= 0, got -1",
            ),
            (
                lambda: nn.Conv1d(3, 4, 3, stride=1.5),
                TypeError,
                r"Conv1d: sizes must be integers or 1-tuples, got 1\.5",
            ),
        )
        assert nn.Conv1d(3, 4, 3, padding=0, stride=(2,))(tg.ones(3, 7)).shape == (4, 3)


# ================================================================================================
# LayerNorm and Dropout (chapter 10)
# ================================================================================================


@pytest.mark.ch10
class TestLayerNorm:
    @pytest.mark.parametrize(
        "normalized_shape, affine, bias",
        [(6, True, True), ((2, 3), True, True), (6, True, False), (6, False, False)],
    )
    def test_forward_equals_explicit_mean_and_variance(self, normalized_shape, affine, bias):
        ln = nn.LayerNorm(normalized_shape, elementwise_affine=affine, bias=bias)
        ln = ln.astype("float64")
        rng = np.random.default_rng(0)
        for p in ln.parameters():  # not ones/zeros, so a swapped weight/bias shows
            p.data = t64(rng.uniform(0.5, 1.5, size=p.shape)).data
        x = rng.standard_normal((4, 6)).reshape((4,) + ln.normalized_shape) * 3 + 1
        w = None if ln.weight is None else npy(ln.weight)
        b = None if ln.bias is None else npy(ln.bias)
        ref = references.layer_norm(x, len(ln.normalized_shape), w, b)
        np.testing.assert_allclose(ln(t64(x)).numpy(), ref, atol=1e-12)

    def test_gradcheck_input_and_parameters(self):
        ln = nn.LayerNorm(5).astype("float64")
        shift_biases(ln)
        assert gradcheck_module(ln, leaf(2, 3, 5), name="LayerNorm")

    def test_parameters_init_and_repr_as_pytorch(self):
        ln = nn.LayerNorm(8)
        assert shapes(ln) == {"weight": (8,), "bias": (8,)}
        assert ln.weight.numpy().tolist() == [1.0] * 8 and ln.bias.numpy().tolist() == [0.0] * 8
        assert shapes(nn.LayerNorm((2, 8), bias=False)) == {"weight": (2, 8)}
        assert shapes(nn.LayerNorm(8, elementwise_affine=False)) == {}
        assert repr(ln) == "LayerNorm((8,), eps=1e-05, elementwise_affine=True, bias=True)"
        assert repr(nn.LayerNorm(8, elementwise_affine=False)) == (
            "LayerNorm((8,), eps=1e-05, elementwise_affine=False, bias=False)"
        )

    def test_wrong_shape_names_the_layer_and_both_shapes(self):
        with pytest.raises(
            ValueError,
            match=r"LayerNorm\(\(8,\), .*\): expected input whose last "
            r"dimensions are \(8,\), got shape \(2, 5\)",
        ):
            nn.LayerNorm(8)(tg.ones(2, 5))
        with pytest.raises(TypeError, match=r"LayerNorm\(.*\): expected input of dtype float32"):
            nn.LayerNorm(8)(tg.ones(2, 8, dtype="float64"))
        no_affine = nn.LayerNorm(8, elementwise_affine=False)  # no parameters: any float dtype
        assert no_affine(tg.ones(2, 8, dtype="float64")).dtype == "float64"

    def test_bad_normalized_shape_is_a_one_line_error_naming_it(self):
        raises_each(
            (lambda: nn.LayerNorm(3.0), TypeError, r"LayerNorm: normalized_shape must be an int"),
            (lambda: nn.LayerNorm(None), TypeError, r"a tuple of ints, got None"),
            (lambda: nn.LayerNorm((4, 2.0)), ValueError, r"normalized_shape\[1\] .* got 2\.0"),
            (
                lambda: nn.LayerNorm(-2),
                ValueError,
                r"normalized_shape\[0\] must be an integer >= 0",
            ),
            (lambda: nn.LayerNorm(True), ValueError, r"normalized_shape\[0\] .* got True"),
        )
        assert nn.LayerNorm([4]).normalized_shape == (4,)  # a list is a shape, as in PyTorch


@pytest.mark.ch10
class TestDropout:
    def test_training_zeroes_a_fraction_p_and_scales_the_rest(self):
        drop = nn.Dropout(p=0.3)
        y = drop(tg.ones(20000)).numpy()
        assert np.unique(y).tolist() == [0.0, pytest.approx(1 / 0.7)]
        assert abs((y == 0).mean() - 0.3) < 0.02
        assert abs(y.mean() - 1.0) < 0.03  # the expected value is unchanged

    def test_eval_is_the_identity(self):
        drop = nn.Dropout(p=0.5).eval()
        x = tg.randn(4, 5)
        np.testing.assert_array_equal(drop(x).numpy(), x.numpy())
        drop.train()
        assert (drop(tg.ones(1000)).numpy() == 0).any()

    def test_extreme_probabilities(self):
        x = tg.randn(50)
        np.testing.assert_array_equal(nn.Dropout(p=0.0)(x).numpy(), x.numpy())
        np.testing.assert_array_equal(nn.Dropout(p=1.0)(x).numpy(), np.zeros(50))

    def test_backward_uses_the_same_mask(self):
        x = tg.ones(200, requires_grad=True)
        y = nn.Dropout(p=0.5)(x)
        y.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), y.numpy())  # mask * 2 in both

    def test_gradcheck_with_a_fixed_mask(self):
        drop = nn.Dropout(p=0.4)
        tg.manual_seed(3)  # gradcheck_module draws the same mask at every evaluation
        assert gradcheck_module(drop, leaf(3, 4), name="Dropout")

    def test_repr_and_bad_p(self):
        assert repr(nn.Dropout(0.1)) == "Dropout(p=0.1, inplace=False)"
        with pytest.raises(ValueError, match="Dropout: probability p must be between 0 and 1"):
            nn.Dropout(p=1.5)
        with pytest.raises(ValueError, match="inplace=True is not supported"):
            nn.Dropout(p=0.1, inplace=True)


# ================================================================================================
# MultiHeadAttention (chapter 9)
# ================================================================================================


def make_mha(E=8, H=2, **kwargs):
    m = nn.MultiHeadAttention(E, H, **kwargs).astype("float64")
    shift_biases(m)  # the in-projection biases start at zero
    return m


@pytest.mark.ch09
class TestMultiHeadAttention:
    @pytest.mark.parametrize("need_weights", [False, True])
    def test_self_attention_equals_a_loop_over_queries_and_heads(self, need_weights):
        m = make_mha(8, 2)
        x = np.random.default_rng(0).standard_normal((2, 5, 8))
        out = m(t64(x), need_weights=need_weights)
        ref, ref_w = references.multi_head_attention(m, x, x, x)
        if need_weights:
            out, weights = out
            np.testing.assert_allclose(weights.numpy(), ref_w, atol=1e-12)
            np.testing.assert_allclose(weights.numpy().sum(-1), 1.0)
        np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)

    @pytest.mark.parametrize("need_weights", [False, True])
    def test_cross_attention_with_other_key_and_value_sizes(self, need_weights):
        m = make_mha(6, 3, kdim=4, vdim=5)
        rng = np.random.default_rng(1)
        q, k, v = (rng.standard_normal(s) for s in ((2, 3, 6), (2, 7, 4), (2, 7, 5)))
        out = m(t64(q), t64(k), t64(v), need_weights=need_weights)
        if need_weights:
            out = out[0]
        assert out.shape == (2, 3, 6)
        np.testing.assert_allclose(
            out.numpy(), references.multi_head_attention(m, q, k, v)[0], atol=1e-12
        )

    @pytest.mark.parametrize("need_weights", [False, True])
    def test_causal_and_padding_masks_equal_the_loop(self, need_weights):
        m = make_mha(8, 2, causal=True)
        x = np.random.default_rng(2).standard_normal((2, 6, 8))
        pad = np.zeros((2, 6), dtype=bool)
        pad[1, 4:] = True  # the second sequence has 4 real tokens
        pad[0, 0] = True  # query 0 of sequence 0 has no key left: its output is out_proj's bias
        out = m(t64(x), key_padding_mask=tg.tensor(pad), need_weights=need_weights)
        if need_weights:
            out = out[0]
        ref, _ = references.multi_head_attention(
            m, x, x, x, keep=lambda b, i, j: j <= i and not pad[b, j]
        )
        np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)
        assert np.isfinite(out.numpy()).all()

    def test_attn_mask_is_true_where_attention_is_not_allowed(self):
        m = make_mha(8, 2)
        x = np.random.default_rng(3).standard_normal((1, 4, 8))
        banned = np.zeros((4, 4), dtype=bool)
        banned[:, 2] = True
        banned[3, 0] = True
        out = m(t64(x), attn_mask=tg.tensor(banned))
        ref, _ = references.multi_head_attention(m, x, x, x, keep=lambda b, i, j: not banned[i, j])
        np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)

    def test_causal_future_tokens_do_not_change_earlier_outputs(self):
        m = make_mha(8, 2, causal=True)
        rng = np.random.default_rng(4)
        x = rng.standard_normal((2, 6, 8))
        x2 = x.copy()
        x2[:, 4:] = rng.standard_normal((2, 2, 8))  # change the last two tokens
        a, b = m(t64(x)).numpy(), m(t64(x2)).numpy()
        np.testing.assert_allclose(a[:, :4], b[:, :4], atol=1e-12)
        assert np.abs(a[:, 4:] - b[:, 4:]).min() > 1e-6
        # without the causal mask, every output sees the change
        c, d = m(t64(x), is_causal=False).numpy(), m(t64(x2), is_causal=False).numpy()
        assert np.abs(c[:, :4] - d[:, :4]).min() > 1e-6

    def test_padding_keys_are_ignored(self):
        m = make_mha(8, 2)
        rng = np.random.default_rng(5)
        x = rng.standard_normal((1, 6, 8))
        memory = rng.standard_normal((1, 5, 8))
        pad = tg.tensor(np.array([[False, False, False, True, True]]))
        out = m(t64(x), t64(memory), key_padding_mask=pad).numpy()
        memory2 = memory.copy()
        memory2[:, 3:] = 100 * rng.standard_normal((1, 2, 8))  # garbage in the padding
        np.testing.assert_allclose(
            out, m(t64(x), t64(memory2), key_padding_mask=pad).numpy(), atol=1e-12
        )
        # the same as attending to the three real keys only
        np.testing.assert_allclose(out, m(t64(x), t64(memory[:, :3])).numpy(), atol=1e-12)

    def test_gradcheck_input_and_parameters_causal_with_padding(self):
        m = make_mha(4, 2, causal=True)
        pad = tg.tensor(np.array([[False, False, False, True], [False, False, False, False]]))
        assert gradcheck_module(m, leaf(2, 4, 4), kwargs={"key_padding_mask": pad}, name="MHA self")

    def test_gradcheck_cross_attention_query_key_value_and_parameters(self):
        m = make_mha(4, 2, kdim=3, vdim=2)
        q, k, v = leaf(2, 3, 4, seed=1), leaf(2, 5, 3, seed=2), leaf(2, 5, 2, seed=3)
        assert gradcheck_module(m, q, k, v, name="MHA cross")

    def test_gradcheck_through_the_weights_path(self):
        m = make_mha(4, 2, bias=False)
        kwargs = {"need_weights": True, "is_causal": True}
        assert gradcheck_module(m, leaf(1, 3, 4), kwargs=kwargs, name="MHA need_weights")

    def test_dropout_on_weights_only_in_training(self):
        m = make_mha(8, 2, dropout=0.5)
        x = t64(np.random.default_rng(6).standard_normal((2, 5, 8)))
        plain = make_mha(8, 2)
        plain.load_state_dict(m.state_dict())
        m.eval()
        np.testing.assert_allclose(m(x).numpy(), plain(x).numpy(), atol=1e-12)
        m.train()
        assert np.abs(m(x).numpy() - plain(x).numpy()).max() > 1e-3

    def test_parameter_names_shapes_init_and_repr(self):
        m = nn.MultiHeadAttention(16, 4, kdim=8, vdim=12)
        assert shapes(m) == {
            "q_proj.weight": (16, 16), "q_proj.bias": (16,),
            "k_proj.weight": (16, 8), "k_proj.bias": (16,),
            "v_proj.weight": (16, 12), "v_proj.bias": (16,),
            "out_proj.weight": (16, 16), "out_proj.bias": (16,),
        }  # fmt: skip
        assert shapes(nn.MultiHeadAttention(16, 4, bias=False)) == {
            f"{p}_proj.weight": (16, 16) for p in ("q", "k", "v", "out")
        }
        # PyTorch's init: xavier-uniform in-projections, zero biases
        bound = math.sqrt(6 / (16 + 8))
        w = m.k_proj.weight.numpy()
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            assert not getattr(m, name).bias.numpy().any()
        assert repr(m).splitlines()[:2] == [
            "MultiHeadAttention(",
            "  embed_dim=16, num_heads=4, kdim=8, vdim=12",
        ]

    def test_a_mask_on_another_device_is_a_clear_error(self, device):
        m = nn.MultiHeadAttention(8, 2)
        pad = tg.tensor(np.zeros((2, 5), dtype=bool), device=other_device(device))
        with pytest.raises(
            tg.backend.DeviceError,
            match=r"MultiHeadAttention\(.*\): "
            rf"key_padding_mask is on device '{other_device(device)}' but query "
            rf"is on '{device}'",
        ):
            m(tg.ones(2, 5, 8), key_padding_mask=pad)

    def test_bad_input_names_the_layer_and_both_sizes(self):
        m = nn.MultiHeadAttention(8, 2)
        name = r"MultiHeadAttention\(embed_dim=8, num_heads=2\)"
        pad_2x4 = tg.tensor(np.zeros((2, 4), dtype=bool))
        raises_each(
            (
                lambda: m(tg.ones(2, 5, 6)),
                ValueError,
                name + r": expected query with last dimension 8, got shape \(2, 5, 6\)",
            ),
            (
                lambda: m(tg.ones(5, 8)),
                ValueError,
                name + r": expected 3-D \(B, T, C\) query, got shape \(5, 8\)",
            ),
            (
                lambda: m(tg.ones(2, 5, 8), tg.ones(2, 4, 3)),
                ValueError,
                r"expected key with last dimension 8, got shape \(2, 4, 3\)",
            ),
            (
                lambda: m(tg.ones(2, 5, 8), tg.ones(3, 4, 8)),
                ValueError,
                r"same batch size, got shapes \(2, 5, 8\), \(3, 4, 8\)",
            ),
            (
                lambda: m(tg.ones(2, 5, 8), key_padding_mask=pad_2x4),
                ValueError,
                r"key_padding_mask must be a boolean tensor of shape \(B, S\) = \(2, 5\).*"
                r"shape \(2, 4\)",
            ),
            (
                lambda: m(tg.ones(2, 5, 8), tg.ones(2, 4, 8), tg.ones(2, 4, 8, dtype="float64")),
                TypeError,
                name + r": expected value of dtype float32",
            ),
            (
                lambda: m(tg.ones(2, 5, 8), attn_mask=tg.zeros(5, 5, dtype="int64")),
                ValueError,
                r"attn_mask must be a boolean .* or float .* got dtype int64",
            ),
            (
                lambda: nn.MultiHeadAttention(10, 3),
                ValueError,
                r"embed_dim \(10\) must be divisible by num_heads \(3\)",
            ),
        )


# ================================================================================================
# TransformerBlock (chapter 10)
# ================================================================================================


def make_block(d=8, h=2, ff=12, **kwargs):
    blk = nn.TransformerBlock(d, h, dim_feedforward=ff, **kwargs).astype("float64")
    shift_biases(blk)
    rng = np.random.default_rng(2)
    for ln in (blk.ln1, blk.ln2):
        ln.weight.data = t64(rng.uniform(0.5, 1.5, size=ln.weight.shape)).data
    return blk


BLOCK_KEYS = [
    "ln1.weight", "ln1.bias",
    "attn.q_proj.weight", "attn.q_proj.bias", "attn.k_proj.weight", "attn.k_proj.bias",
    "attn.v_proj.weight", "attn.v_proj.bias", "attn.out_proj.weight", "attn.out_proj.bias",
    "ln2.weight", "ln2.bias",
    "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias",
]  # fmt: skip


@pytest.mark.ch10
class TestTransformerBlock:
    @pytest.mark.parametrize("bias", [True, False])
    def test_forward_equals_the_reference(self, bias):
        blk = make_block(bias=bias)
        x = np.random.default_rng(0).standard_normal((2, 5, 8))
        np.testing.assert_allclose(
            blk(t64(x)).numpy(), references.transformer_block(blk, x), atol=1e-11
        )

    def test_gradcheck_input_and_every_parameter(self):
        blk = make_block(4, 2, 8)  # small: the check differentiates ~200 numbers two ways
        assert len(blk.parameters()) == len(BLOCK_KEYS)
        assert gradcheck_module(blk, leaf(2, 3, 4), name="TransformerBlock")

    def test_causal_by_default(self):
        blk = make_block()
        rng = np.random.default_rng(1)
        x = rng.standard_normal((1, 6, 8))
        x2 = x.copy()
        x2[:, 3:] = rng.standard_normal((1, 3, 8))
        a, b = blk(t64(x)).numpy(), blk(t64(x2)).numpy()
        np.testing.assert_allclose(a[:, :3], b[:, :3], atol=1e-12)
        assert np.abs(a[:, 3:] - b[:, 3:]).min() > 1e-6
        full = make_block(causal=False)
        assert np.abs(full(t64(x)).numpy()[:, :3] - full(t64(x2)).numpy()[:, :3]).min() > 1e-6

    def test_padding_tokens_do_not_reach_real_positions(self):
        blk = make_block(causal=False)
        rng = np.random.default_rng(3)
        x = rng.standard_normal((2, 5, 8))
        pad = np.zeros((2, 5), dtype=bool)
        pad[0, 3:] = True
        x2 = x.copy()
        x2[0, 3:] = rng.standard_normal((2, 8))
        a = blk(t64(x), key_padding_mask=tg.tensor(pad)).numpy()
        b = blk(t64(x2), key_padding_mask=tg.tensor(pad)).numpy()
        np.testing.assert_allclose(a[0, :3], b[0, :3], atol=1e-12)
        np.testing.assert_allclose(a[0, :3], blk(t64(x[:1, :3])).numpy()[0], atol=1e-12)
        assert np.abs(a[0, :3] - blk(t64(x2[:1])).numpy()[0, :3]).min() > 1e-6  # unmasked: differs

    def test_parameter_names_and_shapes(self):
        blk = nn.TransformerBlock(16, 4)
        assert [n for n, _ in blk.named_parameters()] == BLOCK_KEYS
        assert blk.dim_feedforward == 64
        assert shapes(blk)["mlp.0.weight"] == (64, 16) and shapes(blk)["mlp.2.weight"] == (16, 64)
        no_bias = nn.TransformerBlock(16, 4, bias=False)
        assert [n for n, _ in no_bias.named_parameters()] == [
            n for n in BLOCK_KEYS if not n.endswith("bias")
        ]
        assert repr(blk).splitlines()[:2] == [
            "TransformerBlock(",
            "  d_model=16, n_head=4, dim_feedforward=64",
        ]

    def test_dropout_only_in_training(self):
        blk = nn.TransformerBlock(8, 2, dropout=0.3)
        x = tg.randn(2, 5, 8)
        blk.eval()
        np.testing.assert_array_equal(blk(x).numpy(), blk(x).numpy())
        blk.train()
        assert not np.array_equal(blk(x).numpy(), blk(x).numpy())

    def test_bad_input_names_the_block(self):
        blk = nn.TransformerBlock(8, 2)
        with pytest.raises(
            ValueError,
            match=r"TransformerBlock\(d_model=8, n_head=2, "
            r"dim_feedforward=32\): expected input with last dimension 8, got "
            r"shape \(2, 5, 6\)",
        ):
            blk(tg.ones(2, 5, 6))
        with pytest.raises(
            ValueError,
            match=r"expected 3-D \(B, T, d_model\) input, got shape "
            r"\(5, 8\)",
        ):
            blk(tg.ones(5, 8))


class DelayModel(nn.Module):
    """Token + position embedding, one causal TransformerBlock, a LayerNorm, a linear head."""

    def __init__(self, vocab, block_size, d):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(block_size, d)
        self.block = nn.TransformerBlock(d, 4)
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, ids):
        x = self.tok(ids) + self.pos(tg.arange(ids.shape[1]))  # (B, T, d)
        return self.head(self.ln(self.block(x)))  # (B, T, vocab)


@pytest.mark.ch10
def test_transformer_block_learns_to_copy_with_a_delay():
    """Output t must be input t - 2: only attention to an earlier position can do it."""
    V, T, D, B, K = 6, 8, 16, 16, 2
    model = DelayModel(V, T, D)
    params = model.parameters()
    moments = [(np.zeros(p.shape), np.zeros(p.shape)) for p in params]
    rng = np.random.default_rng(0)
    lr, beta1, beta2 = 2e-2, 0.9, 0.99

    def batch():
        x = rng.integers(0, V, size=(B, T))
        y = np.full((B, T), -100)  # the first K positions have nothing to copy: ignored
        y[:, K:] = x[:, :-K]
        return tg.tensor(x), tg.tensor(y.reshape(-1))

    losses = []
    for step in range(1, 101):
        x, y = batch()
        loss = F.cross_entropy(model(x).reshape(B * T, V), y)
        model.zero_grad()
        loss.backward()
        losses.append(loss.item())
        for p, (m, v) in zip(params, moments, strict=True):  # Adam, written out
            g = p.grad.numpy().astype(np.float64)
            m[...] = beta1 * m + (1 - beta1) * g
            v[...] = beta2 * v + (1 - beta2) * g * g
            update = lr * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + 1e-8)
            p.data = (p.detach() - tg.tensor(update.astype(np.float32))).data
    assert np.mean(losses[:5]) > 1.5  # chance is log 6 = 1.79
    assert np.mean(losses[-10:]) < 0.1
    x, y = batch()
    pred = model(x).argmax(axis=-1).numpy()[:, K:]
    assert (pred == x.numpy()[:, :-K]).mean() > 0.95

"""Optimizers, schedules and gradient clipping against plain-NumPy versions of the published rules.

Each reference (``references.sgd``, ``references.adam``) is written from PyTorch's documented
pseudo-code (``torch.optim.SGD``, ``Adam``, ``AdamW``), in float64, independently of
``tinygrad_edu/optim.py``: the bias correction is applied to ``m`` and ``v`` as in the papers
(``m_hat = m / (1 - beta1^t)``), while the library folds it into a step size, so agreement checks
the algebra too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import references

import tinygrad_edu as tg
from tinygrad_edu import backend, optim

pytestmark = pytest.mark.ch04


def draw(shape, n, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for _ in range(n)]


def run(make_opt, w0, grads):
    """Drive an optimizer over one parameter with the given gradients; params after each step."""
    w = tg.tensor(w0.copy(), requires_grad=True)
    opt = make_opt([w])
    out = []
    for g in grads:
        opt.zero_grad()
        w.grad = tg.tensor(g)
        opt.step()
        out.append(w.numpy().copy())
    return out


def assert_trajectory(got, want, rtol=1e-12, atol=1e-14):
    assert len(got) == len(want)
    for t, (a, b) in enumerate(zip(got, want, strict=True), start=1):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"step {t}")


SGD_CASES = {
    "plain": dict(lr=0.1),
    "weight_decay": dict(lr=0.1, weight_decay=0.05),
    "momentum": dict(lr=0.05, momentum=0.9),
    "momentum_dampening_wd": dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "nesterov_wd": dict(lr=0.05, momentum=0.7, nesterov=True, weight_decay=0.1),
}

ADAM_CASES = {
    "defaults": dict(lr=1e-3),
    "betas_eps": dict(lr=0.05, betas=(0.8, 0.95), eps=1e-3),
    "weight_decay": dict(lr=0.01, weight_decay=0.1),
    "amsgrad": dict(lr=0.02, betas=(0.5, 0.9), amsgrad=True),
    "amsgrad_wd": dict(lr=0.02, amsgrad=True, weight_decay=0.2),
}


# =================================================================================================
# Update rules, step by step
# =================================================================================================


@pytest.mark.parametrize("name", list(SGD_CASES))
def test_sgd_follows_its_update_rule(name):
    kw = SGD_CASES[name]
    w0 = draw((3, 4), 1, seed=1)[0]
    grads = draw((3, 4), 6, seed=2)
    got = run(lambda ps: optim.SGD(ps, **kw), w0, grads)
    assert_trajectory(got, references.sgd(w0, grads, **kw))


@pytest.mark.parametrize("name", list(ADAM_CASES))
def test_adam_follows_its_update_rule(name):
    kw = ADAM_CASES[name]
    w0 = draw((5,), 1, seed=3)[0]
    grads = draw((5,), 7, seed=4)
    got = run(lambda ps: optim.Adam(ps, **kw), w0, grads)
    assert_trajectory(got, references.adam(w0, grads, **kw))


@pytest.mark.ch11  # AdamW: exercise 11.2
@pytest.mark.parametrize("name", list(ADAM_CASES))
def test_adamw_follows_its_update_rule(name):
    kw = dict(ADAM_CASES[name])
    kw.setdefault("weight_decay", 1e-2)  # AdamW's default
    w0 = draw((2, 3), 1, seed=5)[0]
    grads = draw((2, 3), 7, seed=6)
    got = run(lambda ps: optim.AdamW(ps, **kw), w0, grads)
    assert_trajectory(got, references.adam(w0, grads, decoupled=True, **kw))


@pytest.mark.ch11  # AdamW: exercise 11.2
def test_adam_and_adamw_differ_with_weight_decay():
    """Coupled (Adam) and decoupled (AdamW) decay are different algorithms: the test of the
    test that the two references are not accidentally the same."""
    w0 = draw((4,), 1, seed=7)[0]
    grads = draw((4,), 3, seed=8)
    adam = run(lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.5), w0, grads)
    adamw = run(lambda ps: optim.AdamW(ps, lr=0.1, weight_decay=0.5), w0, grads)
    assert np.abs(adam[-1] - adamw[-1]).max() > 1e-3


def test_defaults_are_pytorchs():
    w = tg.zeros(2, requires_grad=True)
    assert optim.SGD([w]).defaults == dict(
        lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False
    )
    adam = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False)
    assert optim.Adam([w]).defaults == adam
    assert optim.AdamW([w]).defaults == {**adam, "weight_decay": 1e-2}


def test_gradients_from_backward_drive_the_update():
    """The whole loop: forward, backward, step, against the analytic gradient 2 c (w - target)."""
    rng = np.random.default_rng(9)
    w0, target, c = rng.standard_normal(6), rng.standard_normal(6), rng.uniform(0.5, 2.0, 6)
    w = tg.tensor(w0.copy(), requires_grad=True)
    opt = optim.Adam([w], lr=0.05, weight_decay=0.01)
    t_, c_ = tg.tensor(target), tg.tensor(c)
    ref_w = w0.copy()
    m = np.zeros(6)
    v = np.zeros(6)
    for t in range(1, 6):
        opt.zero_grad()
        ((w - t_) * (w - t_) * c_).sum().backward()
        opt.step()
        g = 2 * c * (ref_w - target) + 0.01 * ref_w
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        ref_w = ref_w - 0.05 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        np.testing.assert_allclose(w.numpy(), ref_w, rtol=1e-10, atol=1e-12)


def test_parameters_without_grad_are_skipped():
    a = tg.tensor(np.ones(3), requires_grad=True)
    b = tg.tensor(np.ones(3), requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = tg.tensor(np.full(3, 2.0))
    opt.step()
    assert np.all(b.numpy() == 1.0) and b not in opt.state
    assert np.all(a.numpy() < 1.0)


# =================================================================================================
# dtypes, aliasing and devices
# =================================================================================================


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
        lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1, amsgrad=True),
        pytest.param(  # AdamW decays by default: exercise 11.2
            lambda ps: optim.AdamW(ps, lr=np.float64(0.1), betas=(np.float64(0.9), 0.99)),
            marks=pytest.mark.ch11,
        ),
    ],
    ids=["sgd", "adam", "adamw_numpy_scalars"],
)
def test_float32_stays_float32(make):
    """Options (even NumPy float64 scalars) must not promote float32 parameters or state."""
    w0 = draw((3, 2), 1, seed=10, dtype=np.float32)[0]
    grads = draw((3, 2), 3, seed=11, dtype=np.float32)
    w = tg.tensor(w0.copy(), requires_grad=True)
    opt = make([w])
    for g in grads:
        w.grad = tg.tensor(g)
        opt.step()
        assert w.dtype == "float32"
    for value in opt.state[w].values():
        if backend.is_array(value):
            assert backend.dtype_name(value.dtype) == "float32"
    # and the float32 run agrees with the same run in float64 to float32 precision
    got64 = run(make, w0.astype(np.float64), [g.astype(np.float64) for g in grads])
    np.testing.assert_allclose(w.numpy(), got64[-1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
        lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1, amsgrad=True),
        pytest.param(lambda ps: optim.AdamW(ps, lr=0.1), marks=pytest.mark.ch11),  # 11.2
    ],
    ids=["sgd_momentum", "sgd_nesterov", "adam", "adamw"],
)
def test_gradients_are_never_modified(make):
    """Two parameters share one gradient Tensor (as ``a + b`` hands the same gradient to both):
    each must still follow the reference, and the gradient must be unchanged."""
    w0 = draw((4,), 1, seed=12)[0]
    grads = draw((4,), 4, seed=13)
    a = tg.tensor(w0.copy(), requires_grad=True)
    b = tg.tensor(w0.copy(), requires_grad=True)
    opt = make([a, b])
    for g in grads:
        shared = tg.tensor(g.copy())
        a.grad = b.grad = shared
        opt.step()
        np.testing.assert_array_equal(shared.numpy(), g)
    want = run(make, w0, grads)[-1]
    np.testing.assert_allclose(a.numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(b.numpy(), want, rtol=1e-12)


def test_updates_do_not_write_into_the_callers_array():
    """A Parameter made from a NumPy array may share it; stepping must not change that array."""
    w0 = np.ones(3)
    w = tg.tensor(w0, requires_grad=True)
    opt = optim.SGD([w], lr=0.5)
    w.grad = tg.tensor(np.ones(3))
    opt.step()
    assert np.all(w0 == 1.0) and np.all(w.numpy() == 0.5)


@pytest.mark.ch12  # needs exercise 12.1
def test_state_follows_the_parameter_to_another_device_and_dtype(device):
    """Moving or casting a parameter after some steps moves its state lazily."""
    other = "strict" if device == "cpu" else "cpu"
    w0 = draw((3,), 1, seed=14)[0]
    grads = draw((3,), 4, seed=15)
    w = tg.tensor(w0.copy(), requires_grad=True)
    opt = optim.Adam([w], lr=0.1, amsgrad=True)
    for g in grads[:2]:
        w.grad = tg.tensor(g)
        opt.step()
    w.data = backend.to_device(w.data, other)  # what Module.to(other) does
    for g in grads[2:]:
        w.grad = tg.tensor(g, device=other)
        opt.step()
    assert w.device == other
    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        assert backend.device_of(opt.state[w][key]) == other
    want = references.adam(w0, grads, lr=0.1, amsgrad=True)[-1]
    np.testing.assert_allclose(w.numpy(), want, rtol=1e-12)
    # cast to float32: the state is cast too, and the step runs in float32
    w.data = backend.asarray(w.data, dtype="float32", device=other)
    w.grad = tg.tensor(np.ones(3, np.float32), device=other)
    opt.step()
    assert w.dtype == "float32"
    assert backend.dtype_name(opt.state[w]["exp_avg"].dtype) == "float32"


# =================================================================================================
# Parameter groups and zero_grad
# =================================================================================================


def test_parameter_groups_have_their_own_options():
    wa, wb, wc = draw((3,), 3, seed=16)
    ga, gb, gc = (draw((3,), 4, seed=s) for s in (17, 18, 19))
    a, b, c = (tg.tensor(w.copy(), requires_grad=True) for w in (wa, wb, wc))
    opt = optim.SGD(
        [{"params": [a], "lr": 0.5}, {"params": [b], "momentum": 0.9, "weight_decay": 0.1}],
        lr=0.01,
    )
    opt.add_param_group({"params": c, "lr": 0.2, "nesterov": True, "momentum": 0.5})
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.01, 0.2]
    for t in range(4):
        a.grad, b.grad, c.grad = tg.tensor(ga[t]), tg.tensor(gb[t]), tg.tensor(gc[t])
        opt.step()
    np.testing.assert_allclose(a.numpy(), references.sgd(wa, ga, lr=0.5)[-1], rtol=1e-12)
    want_b = references.sgd(wb, gb, lr=0.01, momentum=0.9, weight_decay=0.1)[-1]
    np.testing.assert_allclose(b.numpy(), want_b, rtol=1e-12)
    want_c = references.sgd(wc, gc, lr=0.2, momentum=0.5, nesterov=True)[-1]
    np.testing.assert_allclose(c.numpy(), want_c, rtol=1e-12)


def test_zero_grad():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None and w.grad.numpy().tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert w.grad is None


def test_step_with_closure_returns_the_loss():
    w = tg.tensor([3.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 9.0
    assert w.item() == pytest.approx(3.0 - 0.25 * 6.0)


def test_repr_lists_the_groups():
    text = repr(optim.Adam([tg.zeros(1, requires_grad=True)], lr=0.01))
    assert text.startswith("Adam (") and "Parameter Group 0" in text and "lr: 0.01" in text


# =================================================================================================
# state_dict / load_state_dict: resuming gives exactly the uninterrupted run
# =================================================================================================


def _quadratic_problem():
    rng = np.random.default_rng(20)
    w0 = [rng.standard_normal((3, 2)), rng.standard_normal(2)]
    target = [rng.standard_normal((3, 2)), rng.standard_normal(2)]
    return w0, target


def _train(params, opt, target, steps, sched=None):
    for _ in range(steps):
        opt.zero_grad()
        loss = sum(((p - tg.tensor(t)) ** 2 * (i + 1.0)).sum() for i, (p, t) in enumerate(
            zip(params, target, strict=True)))  # fmt: skip
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()


RESUME_CASES = {
    "sgd_nesterov": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "adam_amsgrad": lambda ps: optim.Adam(ps, lr=0.05, amsgrad=True, weight_decay=0.01),
    "adamw_groups": lambda ps: optim.AdamW(
        [{"params": ps[:1], "weight_decay": 0.1}, {"params": ps[1:], "weight_decay": 0.0}],
        lr=0.05,
        betas=(0.9, 0.99),
    ),
}


@pytest.mark.parametrize("through_file", [False, True], ids=["in_memory", "tg_save_load"])
@pytest.mark.parametrize(
    "name",
    [  # AdamW's decay is exercise 11.2
        pytest.param(name, marks=[pytest.mark.ch11] if name.startswith("adamw") else [])
        for name in RESUME_CASES
    ],
)
def test_state_dict_round_trip_resumes_identically(name, through_file, tmp_path):
    make = RESUME_CASES[name]
    w0, target = _quadratic_problem()

    # the uninterrupted run: 8 steps
    ps = [tg.tensor(w.copy(), requires_grad=True) for w in w0]
    opt = make(ps)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    _train(ps, opt, target, 8, sched)

    # the interrupted run: 3 steps, save, rebuild everything, load, 5 more steps
    qs = [tg.tensor(w.copy(), requires_grad=True) for w in w0]
    opt1 = make(qs)
    sched1 = optim.StepLR(opt1, step_size=2, gamma=0.5)
    _train(qs, opt1, target, 3, sched1)
    ckpt = {
        "params": [q.data for q in qs],
        "optimizer": opt1.state_dict(),
        "scheduler": sched1.state_dict(),
    }
    if through_file:
        tg.save(ckpt, tmp_path / "ckpt.npz")
        del opt1, sched1, qs
        ckpt = tg.load(tmp_path / "ckpt.npz")
    rs = [tg.tensor(w.copy(), requires_grad=True) for w in w0]  # a fresh "model"...
    for r, saved in zip(rs, ckpt["params"], strict=True):
        r.data = backend.asarray(saved, dtype=r.dtype, device=r.device)
    opt2 = make(rs)  # ...with a fresh optimizer and schedule, built as in the first run
    sched2 = optim.StepLR(opt2, step_size=2, gamma=0.5)
    opt2.load_state_dict(ckpt["optimizer"])
    sched2.load_state_dict(ckpt["scheduler"])
    _train(rs, opt2, target, 5, sched2)

    for p, r in zip(ps, rs, strict=True):
        np.testing.assert_array_equal(p.numpy(), r.numpy())
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert opt2.param_groups[0].get("betas") == opt.param_groups[0].get("betas")  # a tuple again


def test_state_dict_layout_and_snapshot():
    a = tg.tensor(np.ones((2, 2)), requires_grad=True)
    b = tg.tensor(np.ones(3), requires_grad=True)
    opt = optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad = tg.tensor(np.ones((2, 2)))
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert [g["lr"] for g in sd["param_groups"]] == [0.1, 0.5]
    assert list(sd["state"]) == [0]  # b has no gradient yet, so no state
    assert sd["state"][0]["step"] == 1
    m = tg.tensor(sd["state"][0]["exp_avg"]).numpy().copy()
    np.testing.assert_allclose(m, 0.1 * np.ones((2, 2)))
    opt.step()  # a later step must not change the snapshot
    np.testing.assert_array_equal(tg.tensor(sd["state"][0]["exp_avg"]).numpy(), m)


def test_load_state_dict_accepts_string_keys_and_lists():
    """A state dict that went through JSON has string indices and lists instead of tuples."""
    w = tg.tensor(np.ones(2), requires_grad=True)
    opt = optim.Adam([w], lr=0.1)
    w.grad = tg.tensor(np.ones(2))
    opt.step()
    sd = opt.state_dict()
    sd = {
        "state": {str(k): {kk: tg.tensor(vv).numpy() if backend.is_array(vv) else vv
                           for kk, vv in v.items()} for k, v in sd["state"].items()},
        "param_groups": [{**g, "betas": list(g["betas"])} for g in sd["param_groups"]],
    }  # fmt: skip
    opt2 = optim.Adam([tg.tensor(np.ones(2), requires_grad=True)])
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["betas"] == (0.9, 0.999) and opt2.param_groups[0]["lr"] == 0.1
    (p,) = opt2.param_groups[0]["params"]
    assert opt2.state[p]["step"] == 1 and backend.device_of(opt2.state[p]["exp_avg"]) == p.device


def test_load_state_dict_errors():
    w = tg.tensor(np.ones(2), requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    w.grad = tg.tensor(np.ones(2))
    opt.step()
    sd = opt.state_dict()
    two = optim.SGD([{"params": [tg.zeros(2, requires_grad=True)]},
                     {"params": [tg.zeros(2, requires_grad=True)]}])  # fmt: skip
    with pytest.raises(ValueError, match=r"has 1 parameter groups, this optimizer has 2"):
        two.load_state_dict(sd)
    more = optim.SGD([tg.zeros(2, requires_grad=True), tg.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError, match=r"group 0 has 1 parameters in the state dict and 2"):
        more.load_state_dict(sd)
    other_shape = optim.SGD([tg.zeros(3, requires_grad=True)])
    with pytest.raises(
        ValueError, match=r"'momentum_buffer' of parameter 0 has shape \(2,\), .*\(3,\)"
    ):
        other_shape.load_state_dict(sd)
    with pytest.raises(ValueError, match=r"expected a dict with 'state' and 'param_groups'"):
        opt.load_state_dict({"w": np.ones(2)})


# =================================================================================================
# Learning-rate schedules
# =================================================================================================


def _sgd(lr=1e-3):
    return optim.SGD([tg.tensor(np.zeros(2), requires_grad=True)], lr=lr)


def _rates(sched, n):
    rates = []
    for _ in range(n):
        rates.append(sched.get_last_lr()[0])
        sched.step()
    return rates


@pytest.mark.ch11  # the schedule: exercise 11.3
def test_warmup_cosine_key_steps():
    """The recipe: warm-up 100 steps, then cosine from 1e-3 to 1e-4 at step 2000."""
    lr, min_lr = 1e-3, 1e-4
    rates = _rates(optim.WarmupCosineLR(_sgd(lr), 100, 2000, min_lr=min_lr), 2101)
    assert rates[0] == pytest.approx(lr / 101)  # never exactly zero
    assert rates[99] == pytest.approx(lr * 100 / 101)  # last warm-up step
    assert rates[100] == pytest.approx(lr)  # peak
    assert rates[1050] == pytest.approx((lr + min_lr) / 2)  # half-way down the cosine
    quarter = min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi / 4))
    assert rates[575] == pytest.approx(quarter)
    assert rates[2000] == pytest.approx(min_lr)
    assert rates[2100] == min_lr
    assert all(x < y for x, y in zip(rates[:100], rates[1:101], strict=True))  # warm-up rises
    assert all(x >= y for x, y in zip(rates[100:2000], rates[101:2001], strict=True))  # decays
    for s in (0, 99, 100, 1050, 2000, 2100):
        assert optim.warmup_cosine_lr(s, lr, min_lr, 100, 2000) == pytest.approx(rates[s])


@pytest.mark.ch11  # the schedule: exercise 11.3
def test_scheduler_sets_the_rate_the_optimizer_uses():
    w = tg.tensor(np.zeros(1), requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    sched = optim.WarmupCosineLR(opt, warmup_steps=3, max_steps=10)
    before = w.numpy().copy()
    for _ in range(2):
        w.grad = tg.tensor(np.ones(1))
        opt.step()
        sched.step()
    # steps 0 and 1 of the warm-up: lr = 1/4 and 2/4
    np.testing.assert_allclose(w.numpy(), before - 0.25 - 0.5)


def test_step_and_lambda_schedules_per_group():
    a = tg.zeros(1, requires_grad=True)
    b = tg.zeros(1, requires_grad=True)
    opt = optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.1}])
    sched = optim.StepLR(opt, step_size=3, gamma=0.5)
    got = []
    for _ in range(7):
        got.append(sched.get_last_lr())
        sched.step()
    want = [[0.5 ** (s // 3), 0.1 * 0.5 ** (s // 3)] for s in range(7)]
    np.testing.assert_allclose(got, want)
    opt2 = optim.SGD([{"params": [a], "lr": 2.0}, {"params": [b], "lr": 1.0}])
    lam = optim.LambdaLR(opt2, [lambda s: 1.0 / (s + 1), lambda s: 0.9**s])
    _rates(lam, 4)
    assert lam.get_last_lr() == pytest.approx([2.0 / 5, 0.9**4])
    assert [g["lr"] for g in opt2.param_groups] == pytest.approx([2.0 / 5, 0.9**4])


def test_scheduler_state_dict_round_trip():
    sched = optim.StepLR(_sgd(1.0), step_size=2, gamma=0.1)
    _rates(sched, 5)
    sd = sched.state_dict()
    opt2 = _sgd(1.0)
    sched2 = optim.StepLR(opt2, step_size=2, gamma=0.1)
    sched2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == pytest.approx(sched.get_last_lr()[0])
    assert _rates(sched2, 4) == pytest.approx(_rates(sched, 4))


def test_schedule_errors():
    with pytest.raises(
        ValueError, match=r"need 0 <= warmup_steps < max_steps.*warmup_steps=10, max_steps=10"
    ):
        optim.WarmupCosineLR(_sgd(), 10, 10)
    with pytest.raises(ValueError, match=r"invalid min_lr: -1"):
        optim.WarmupCosineLR(_sgd(), 10, 100, min_lr=-1)
    with pytest.raises(ValueError, match=r"step_size must be a positive integer, got 0"):
        optim.StepLR(_sgd(), step_size=0)
    with pytest.raises(ValueError, match=r"expected 1 lr_lambdas .* got 2"):
        optim.LambdaLR(_sgd(), [lambda s: 1.0, lambda s: 1.0])
    with pytest.raises(TypeError, match=r"lr_lambda must be a function of the step .* got 0.5"):
        optim.LambdaLR(_sgd(), 0.5)
    with pytest.raises(TypeError, match=r"expected an Optimizer"):
        optim.StepLR([tg.zeros(1)], step_size=1)


# =================================================================================================
# Gradient clipping
# =================================================================================================


def _params_with_grads(seed=21, scale=1.0):
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (5,), ()]
    grads = [scale * rng.standard_normal(s) for s in shapes]
    ps = [tg.tensor(np.zeros(s), requires_grad=True) for s in shapes]
    for p, g in zip(ps, grads, strict=True):
        p.grad = tg.tensor(g)
    return ps, grads


@pytest.mark.ch07  # clip_grad_norm is exercise 7.3
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm_matches_numpy(norm_type):
    ps, grads = _params_with_grads()
    flat = np.concatenate([np.ravel(g) for g in grads])
    want_norm = np.linalg.norm(flat, ord=norm_type)
    max_norm = want_norm / 3  # clipping happens
    old = [p.grad for p in ps]
    total = optim.clip_grad_norm(ps, max_norm, norm_type)
    assert total.item() == pytest.approx(want_norm, rel=1e-12)
    coef = max_norm / (want_norm + 1e-6)
    for p, g, o in zip(ps, grads, old, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), g * coef, rtol=1e-12)
        np.testing.assert_array_equal(o.numpy(), g)  # out of place: the old gradient is intact
    new_flat = np.concatenate([np.ravel(p.grad.numpy()) for p in ps])
    assert np.linalg.norm(new_flat, ord=norm_type) == pytest.approx(max_norm, rel=1e-5)


@pytest.mark.ch07  # clip_grad_norm is exercise 7.3
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm_matches_torch(norm_type):
    torch = pytest.importorskip("torch", reason="PyTorch is needed to compare against it")
    ps, grads = _params_with_grads()
    ts = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(ts, grads, strict=True):
        t.grad = torch.tensor(g)
    want = torch.nn.utils.clip_grad_norm_(ts, 0.5, norm_type).item()
    assert optim.clip_grad_norm_(ps, 0.5, norm_type).item() == pytest.approx(want, rel=1e-12)
    for p, t in zip(ps, ts, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.ch07  # clip_grad_norm is exercise 7.3
def test_clip_grad_norm_leaves_small_gradients_alone():
    ps, grads = _params_with_grads(scale=1e-3)
    total = optim.clip_grad_norm_(ps, max_norm=1.0)  # the PyTorch spelling
    assert optim.clip_grad_norm_ is optim.clip_grad_norm
    assert total.item() == pytest.approx(
        np.linalg.norm(np.concatenate([np.ravel(g) for g in grads]))
    )
    for p, g in zip(ps, grads, strict=True):
        np.testing.assert_array_equal(p.grad.numpy(), g)


@pytest.mark.ch07  # clip_grad_norm is exercise 7.3
def test_clip_grad_norm_float32_single_tensor_and_missing_grads():
    w = tg.tensor(np.array([3.0, 4.0], np.float32), requires_grad=True)
    skip = tg.zeros(2, requires_grad=True)  # no gradient: ignored
    w.grad = tg.tensor(np.array([3.0, 4.0], np.float32))
    total = optim.clip_grad_norm([w, skip], 1.0)
    assert total.dtype == "float32" and total.item() == pytest.approx(5.0)
    assert w.grad.dtype == "float32"
    np.testing.assert_allclose(w.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    assert skip.grad is None
    w.grad = tg.tensor(np.array([0.3, 0.4], np.float32))
    assert optim.clip_grad_norm(w, 1.0).item() == pytest.approx(0.5)  # a single Tensor


@pytest.mark.ch07  # clip_grad_norm is exercise 7.3
def test_clip_grad_norm_nonfinite():
    w = tg.tensor(np.zeros(2), requires_grad=True)
    w.grad = tg.tensor(np.array([np.inf, 1.0]))
    assert math.isinf(optim.clip_grad_norm([w], 1.0).item())
    assert w.grad.numpy().tolist() == [np.inf, 1.0]  # left as it is, to be found
    with pytest.raises(RuntimeError, match=r"total norm of order 2.0 of the gradients is inf"):
        optim.clip_grad_norm([w], 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match=r"norm_type must be > 0 or inf, got -1.0"):
        optim.clip_grad_norm([w], 1.0, norm_type=-1)


# =================================================================================================
# Bad input: errors that teach
# =================================================================================================


def _w():
    return tg.zeros(2, requires_grad=True)


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW])
def test_empty_parameter_list(cls):
    with pytest.raises(ValueError, match=rf"{cls.__name__}: optimizer got an empty parameter list"):
        cls([])
    with pytest.raises(ValueError, match=r"optimizer got an empty parameter list"):
        cls(p for p in [])  # an exhausted generator, e.g. model.parameters() used twice
    with pytest.raises(ValueError, match=r"optimizer got an empty parameter list"):
        cls([{"params": []}])


BAD_HYPERPARAMETERS = {
    "sgd_lr": (lambda: optim.SGD([_w()], lr=-0.1), r"SGD: invalid learning rate lr: -0.1 \("),
    "adam_lr": (lambda: optim.Adam([_w()], lr=-1e-3), r"Adam: invalid learning rate lr: -0.001"),
    "adamw_nan_lr": (lambda: optim.AdamW([_w()], lr=math.nan), r"AdamW: .* learning rate lr: nan"),
    "eps": (lambda: optim.Adam([_w()], eps=-1e-8), r"Adam: invalid epsilon value eps: -1e-08"),
    "beta1": (
        lambda: optim.Adam([_w()], betas=(1.0, 0.999)),
        r"invalid beta parameter at index 0: 1.0 \(it must be in \[0, 1\)\)",
    ),
    "beta2": (
        lambda: optim.AdamW([_w()], betas=(0.9, -0.1)),
        r"AdamW: invalid beta parameter at index 1: -0.1",
    ),
    "betas_pair": (
        lambda: optim.Adam([_w()], betas=(0.9,)),
        r"betas must be a pair \(beta1, beta2\), got \(0.9,\)",
    ),
    "betas_scalar": (
        lambda: optim.Adam([_w()], betas=0.9),
        r"Adam: betas must be a pair \(beta1, beta2\), got 0.9",
    ),
    "wd": (lambda: optim.AdamW([_w()], weight_decay=-0.1), r"invalid weight_decay value: -0.1"),
    "momentum": (lambda: optim.SGD([_w()], momentum=-0.9), r"SGD: invalid momentum value: -0.9"),
    "nesterov": (
        lambda: optim.SGD([_w()], nesterov=True),
        r"Nesterov momentum requires a momentum > 0 and zero dampening, got momentum=0.0",
    ),
    "group_lr": (
        lambda: optim.SGD([{"params": [_w()], "lr": -2.0}], lr=0.1),
        r"SGD: invalid learning rate lr: -2.0",
    ),
}


@pytest.mark.parametrize("case", list(BAD_HYPERPARAMETERS))
def test_bad_hyperparameters(case):
    make, match = BAD_HYPERPARAMETERS[case]
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_parameters():
    frozen = tg.zeros(2, 3)
    with pytest.raises(
        ValueError,
        match=r"SGD: parameter 1 \(shape \(2, 3\), dtype float32\) does not require grad",
    ):
        optim.SGD([_w(), frozen])
    w = _w()
    with pytest.raises(
        ValueError,
        match=r"Adam: parameter 0 \(shape \(2,\)\) is not a leaf tensor \(it was computed by Mul\)",
    ):
        optim.Adam([w * 2])
    with pytest.raises(TypeError, match=r"can only optimize Tensors, but parameter 0 is a ndarray"):
        optim.SGD([np.zeros(2)])
    with pytest.raises(TypeError, match=r"got a single Tensor of shape \(2,\); wrap it in a list"):
        optim.Adam(w)
    with pytest.raises(TypeError, match=r"pass model.parameters\(\) \(not model.state_dict\(\)\)"):
        optim.Adam({"w": w})
    with pytest.raises(ValueError, match=r"appears more than once across the parameter groups"):
        optim.SGD([w, w])
    opt = optim.SGD([w])
    with pytest.raises(ValueError, match=r"parameter 0 \(shape \(2,\)\) appears more than once"):
        opt.add_param_group({"params": [w]})
    with pytest.raises(TypeError, match=r"not a set"):
        opt.add_param_group({"params": {_w()}})


def test_module_instead_of_parameters():
    from tinygrad_edu.nn import Module, Parameter

    class Tiny(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter(np.zeros(2))

    with pytest.raises(TypeError, match=r"got a Module; pass model.parameters\(\) instead"):
        optim.SGD(Tiny())
    optim.SGD(Tiny().parameters())  # the right way works


# =================================================================================================
# Against torch.optim itself: the same steps, and state dicts that go from PyTorch to here
# =================================================================================================

TORCH_REASON = "PyTorch is needed to compare against torch.optim"

TORCH_CASES = {
    "sgd_nesterov_wd": ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "sgd_dampening": ("SGD", dict(lr=0.1, momentum=0.8, dampening=0.3)),
    "adam_amsgrad_wd": ("Adam", dict(lr=0.02, betas=(0.5, 0.9), amsgrad=True, weight_decay=0.1)),
    "adamw_amsgrad": pytest.param(
        "AdamW", dict(lr=0.02, weight_decay=0.1, amsgrad=True), marks=pytest.mark.ch11
    ),
}


def _both(torch, cls: str, kw: dict):
    """The same two parameters (float64) under our optimizer and torch.optim's."""
    w0 = draw((3, 4), 1, seed=30)[0], draw((4,), 1, seed=31)[0]
    ours = [tg.tensor(w.copy(), requires_grad=True) for w in w0]
    theirs = [torch.tensor(w.copy(), requires_grad=True) for w in w0]
    return ours, getattr(optim, cls)(ours, **kw), theirs, getattr(torch.optim, cls)(theirs, **kw)


def _steps(torch, ours, opt, theirs, topt, n, seed):
    for g in zip(draw((3, 4), n, seed=seed), draw((4,), n, seed=seed + 1), strict=True):
        for p, q, gg in zip(ours, theirs, g, strict=True):
            p.grad, q.grad = tg.tensor(gg.copy()), torch.tensor(gg.copy())
        opt.step()
        topt.step()
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("cls", "kw"), list(TORCH_CASES.values()), ids=list(TORCH_CASES))
def test_steps_match_torch_optim_and_a_torch_state_dict_continues_here(cls, kw):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    ours, opt, theirs, topt = _both(torch, cls, kw)
    _steps(torch, ours, opt, theirs, topt, 4, seed=32)
    # PyTorch's state dict (tensors, a float step count) continues here as PyTorch continues
    fresh = [tg.tensor(p.numpy().copy(), requires_grad=True) for p in ours]
    opt2 = getattr(optim, cls)(fresh, **kw)
    opt2.load_state_dict(topt.state_dict())
    assert opt2.state_dict()["state"].keys() == topt.state_dict()["state"].keys()
    _steps(torch, fresh, opt2, theirs, topt, 3, seed=40)


def test_torch_state_dicts_with_options_not_implemented_here_are_refused():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    maximizing = torch.optim.SGD([w], lr=0.1, maximize=True).state_dict()
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: parameter group 0 has maximize="):
        optim.SGD([tg.zeros(2, requires_grad=True)], lr=0.1).load_state_dict(maximizing)
    adamw = torch.optim.AdamW([w]).state_dict()  # decoupled decay: not Adam's rule
    with pytest.raises(ValueError, match=r"decoupled_weight_decay=True .* Adam implements"):
        optim.Adam([tg.zeros(2, requires_grad=True)]).load_state_dict(adamw)


def test_load_state_dict_checks_the_options_like_the_constructor():
    w = tg.zeros(2, requires_grad=True)
    sd = optim.Adam([w], lr=0.1).state_dict()
    sd["param_groups"][0]["lr"] = -1.0
    opt = optim.Adam([tg.zeros(2, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match=r"Adam: invalid learning rate lr: -1.0"):
        opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.1  # nothing was changed

"""Optimizers, learning-rate schedules and gradient clipping.

Chapter 4 ("Losses, maximum likelihood and optimizers") builds this module. An optimizer holds
*parameter groups* (lists of parameters sharing options such as ``lr``) and, per parameter, a
*state* (momentum buffers, moment estimates, a step count). ``step()`` reads each ``p.grad`` and
moves ``p`` against it; ``zero_grad()`` forgets the gradients before the next backward pass.

Names, signatures, defaults and update rules are PyTorch's (``torch.optim``), so the formulas in
PyTorch's documentation are the ones implemented here, and a state dict has the same layout:
``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``.

Updates work on raw arrays through the array namespace ``xp`` of each parameter, outside any
graph. Options are Python floats, so a float32 parameter stays float32 (a NumPy float64 scalar
would silently promote it). State buffers belong to the optimizer and are updated in place
(``m *= beta1``); a gradient array is never modified, because it may be shared with other
gradients (``a + b`` hands the same gradient to both inputs).

In-place updates: the parameter's array is updated in place too (``p.data -= lr * grad``, as
``torch.optim`` does), so an update allocates one temporary instead of a fresh weight array per
step. The optimizer copies a parameter's array once, at its first update, and from then on owns
it: the caller's array (``tg.tensor(w0)`` shares ``w0``) is never written to. Measured with
C-contiguous gradients (one BLAS thread, CPU time, median of 3 runs of 300 steps): SGD on B1's
MLP 0.61 -> 0.44 ms per step, AdamW on B3's Transformer 2.77 -> 2.51 ms.

Read next: ``io.py`` (saving model and optimizer state), ``data.py``.

>>> import tinygrad_edu as tg
>>> from tinygrad_edu import optim
>>> w = tg.tensor([1.0, -2.0], requires_grad=True)
>>> opt = optim.SGD([w], lr=0.1)
>>> (w * w).sum().backward()  # dL/dw = 2 w = [2, -4]
>>> opt.step()                # w <- w - 0.1 * [2, -4]
>>> [round(v, 4) for v in w.numpy().tolist()]
[0.8, -1.6]
"""

from __future__ import annotations

import math

from . import backend
from .autograd import enable_grad, no_grad
from .tensor import Tensor

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "LRScheduler",
    "LambdaLR",
    "StepLR",
    "WarmupCosineLR",
    "warmup_cosine_lr",
    "clip_grad_norm",
    "clip_grad_norm_",
]


def _copy(array):
    """A fresh copy of an array (``astype`` to the same dtype always copies)."""
    return backend.xp_of(array).astype(array, array.dtype, copy=True)


# =================================================================================================
# The base class: parameter groups, state, zero_grad, state_dict
# =================================================================================================


class Optimizer:
    """Base class: ``param_groups`` and per-parameter ``state``; subclasses define ``_update``.

    ``params`` is an iterable of Tensors (usually ``model.parameters()``) or of dicts, each a
    parameter group with its own options, e.g. no weight decay for biases::

        AdamW([{"params": matrices, "weight_decay": 0.1},
               {"params": vectors, "weight_decay": 0.0}], lr=1e-3)

    Options missing from a group are taken from ``defaults`` (the constructor's arguments).
    """

    def __init__(self, params, defaults: dict):
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(
                f"{name}: params should be an iterable of Tensors or dicts, got a single Tensor "
                f"of shape {params.shape}; wrap it in a list: {name}([p], ...)"
            )
        if isinstance(params, dict):
            raise TypeError(
                f"{name}: params is a dict; pass model.parameters() (not model.state_dict()), "
                "or a list of parameter-group dicts"
            )
        if callable(getattr(params, "parameters", None)):
            raise TypeError(f"{name}: got a Module; pass model.parameters() instead")
        self.defaults = dict(defaults)
        self.state: dict = {}  # Tensor -> dict (Tensors hash by identity)
        self._owned: dict = {}  # Tensor -> the array of p.data this optimizer copied, owns
        self.param_groups: list[dict] = []
        params = list(params)
        if len(params) == 0:
            raise ValueError(f"{name}: optimizer got an empty parameter list")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for group in params:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own options (e.g. a layer unfrozen to fine-tune)."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got {type(param_group)}")
        group = dict(param_group)
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(
                f"{name}: parameters in a group must be an ordered sequence (list), not a set, "
                "so that state dicts refer to them in a stable order"
            )
        elif params is None:
            raise ValueError(f"{name}: a parameter group needs a 'params' entry")
        params = list(params)
        if len(params) == 0:
            raise ValueError(f"{name}: optimizer got an empty parameter list")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            _check_param(name, i, p)
            if id(p) in seen:
                raise ValueError(
                    f"{name}: parameter {i} (shape {p.shape}) appears more than once across "
                    "the parameter groups; each parameter must be in exactly one group"
                )
            seen.add(id(p))
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group)
        self.param_groups.append(group)

    def _torch_options(self) -> dict:
        """The ``torch.optim`` options that change the update, with the values this optimizer
        implements: a PyTorch state dict with other values is refused (``foreach``, ``fused``
        ... only choose kernels)."""
        return {"maximize": False}

    def _check_group(self, group: dict) -> None:
        """Validate a group's options with messages that name the optimizer and the value."""
        _check_nonnegative(type(self).__name__, "learning rate lr", group["lr"])

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"

    # ---- the training-loop API ------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of every parameter (backward *adds* into ``.grad``)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    xp = backend.xp_of(p.grad.data)
                    p.grad = Tensor._make(xp.zeros_like(p.grad.data), False, None)

    def step(self, closure=None):
        """Update every parameter that has a gradient. ``closure`` (optional) re-evaluates the
        model and returns the loss, which ``step`` returns."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    grad = p.grad.data
                    if grad.dtype != p.data.dtype:
                        grad = backend.xp_of(grad).astype(grad, p.data.dtype)
                    self._own(p)
                    self._update(p, grad, group, self._state_for(p))
                    p._written()  # a graph recorded before this step can no longer backward
        return loss

    def _own(self, p: Tensor) -> None:
        """Make ``p.data`` an array this optimizer may update in place: the array a parameter
        was made from may be the caller's (``tg.tensor(w0)`` shares ``w0``), so it is copied
        once, on the first update, and again only if ``p.data`` is replaced later."""
        if self._owned.get(p) is not p.data:
            p.data = _copy(p.data)
            self._owned[p] = p.data

    def _update(self, p: Tensor, grad, group: dict, state: dict) -> None:  # pragma: no cover
        raise NotImplementedError

    def _state_for(self, p: Tensor) -> dict:
        """The state of ``p``, moved to its device and dtype if the parameter moved or was cast
        (``model.to("cuda")`` after the optimizer was built): the state follows lazily."""
        state = self.state.setdefault(p, {})
        if any(backend.is_array(v) and not _matches(v, p) for v in state.values()):
            # --- exercise 12.1: the optimizer state follows its parameter ---
            for key, value in state.items():
                if backend.is_array(value):  # Adam's moments, SGD's momentum buffer
                    state[key] = backend.asarray(value, dtype=p.dtype, device=p.device)
            # --- end exercise ---
        return state

    # ---- saving and resuming --------------------------------------------------------------------
    def state_dict(self) -> dict:
        """A snapshot of the optimizer: ``{"state": {index: {...}}, "param_groups": [...]}``.

        Parameters are referred to by their index in the order of ``param_groups`` (as in
        PyTorch), so the dict can be loaded into a new optimizer over a new model. Arrays are
        copies (later steps do not change a saved snapshot); everything else is plain numbers,
        strings and lists, ready for ``tg.save``.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            options = {k: v for k, v in group.items() if k != "params"}
            options["params"] = []
            for p in group["params"]:
                index[id(p)] = len(index)
                options["params"].append(index[id(p)])
            groups.append(options)
        state = {}
        for p, s in self.state.items():
            if s:
                state[index[id(p)]] = {
                    k: _copy(v) if backend.is_array(v) else v for k, v in s.items()
                }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore options and state saved by ``state_dict()`` (perhaps via ``tg.save``/``load``).

        The groups must have the same sizes; arrays are copied to each parameter's device and
        dtype; keys may be ints or strings (``"0"``), so a dict that went through JSON loads too.
        A ``torch.optim`` state dict of the same optimizer loads as well (its tensors become
        arrays); the other way, ``torch.optim`` loads this one once each array is a tensor
        (``torch.from_numpy``).
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError(
                f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups' "
                f"(from optimizer.state_dict()), got {type(state_dict).__name__}"
                + (f" with keys {sorted(state_dict)}" if isinstance(state_dict, dict) else "")
            )
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the state dict has {len(saved_groups)} parameter "
                f"groups, this optimizer has {len(self.param_groups)}"
            )
        params = []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: parameter group {i} has {len(saved['params'])} "
                    f"parameters in the state dict and {len(group['params'])} in this optimizer"
                )
            params.extend(group["params"])
        by_index = {}
        for key, saved_state in state_dict["state"].items():
            i = int(key)
            if not 0 <= i < len(params):
                raise ValueError(
                    f"{name}.load_state_dict: state refers to parameter {i}, but this optimizer "
                    f"has {len(params)} parameters"
                )
            p = params[i]
            new = {}
            for k, v in saved_state.items():
                v = v.data if isinstance(v, Tensor) else _from_torch(v)
                if k == "step":
                    v = int(v)  # torch.optim keeps the step count as a 0-d float tensor
                elif backend.is_array(v):
                    if tuple(v.shape) != p.shape:
                        raise ValueError(
                            f"{name}.load_state_dict: state {k!r} of parameter {i} has shape "
                            f"{tuple(v.shape)}, but the parameter has shape {p.shape}"
                        )
                    v = backend.asarray(v, dtype=p.dtype, device=p.device)  # a copy
                new[k] = v
            by_index[i] = (p, new)
        groups = []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            for k, implemented in self._torch_options().items():
                if k in saved and saved[k] is not None and bool(saved[k]) != implemented:
                    raise ValueError(
                        f"{name}.load_state_dict: parameter group {i} has {k}={saved[k]!r} (a "
                        f"torch.optim option), but {name} implements {k}={implemented}"
                    )
            new_group = dict(group)
            for k, v in saved.items():
                if k == "params":
                    continue
                if isinstance(group.get(k), tuple) and isinstance(v, list):
                    v = tuple(v)  # JSON turned betas=(0.9, 0.999) into a list
                new_group[k] = v
            self._check_group(new_group)  # a saved lr of -1 is refused as in the constructor
            groups.append(new_group)
        # Everything checked: now replace options and state.
        for group, new_group in zip(self.param_groups, groups, strict=True):
            group.update(new_group)
        self.state = {p: new for p, new in by_index.values()}


def _from_torch(value):
    """A torch tensor (``torch.optim`` state dicts hold them) as a host array; else ``value``."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # without importing torch
        return backend.asarray(value.detach().cpu(), device="cpu")
    return value


def _matches(array, p: Tensor) -> bool:
    """True when ``array`` is on ``p``'s device and of ``p``'s dtype."""
    return backend.device_of(array) == p.device and backend.dtype_name(array.dtype) == p.dtype


def _check_param(name: str, i: int, p) -> None:
    if not isinstance(p, Tensor):
        raise TypeError(
            f"{name}: can only optimize Tensors, but parameter {i} is a {type(p).__name__}"
        )
    if not p.requires_grad:
        raise ValueError(
            f"{name}: parameter {i} (shape {p.shape}, dtype {p.dtype}) does not require grad, so "
            "it would never be updated; pass only trainable parameters, e.g. "
            "[p for p in model.parameters() if p.requires_grad]"
        )
    if not p.is_leaf:
        raise ValueError(
            f"{name}: parameter {i} (shape {p.shape}) is not a leaf tensor (it was computed by "
            f"{type(p._ctx).__name__}); optimize the leaves it was computed from"
        )


def _check_number(name: str, what: str, value) -> None:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__float__"):
        raise TypeError(f"{name}: {what} must be a number, got {type(value).__name__} {value!r}")


def _check_nonnegative(name: str, what: str, value) -> None:
    _check_number(name, what, value)
    if not value >= 0.0:  # also catches NaN
        raise ValueError(f"{name}: invalid {what}: {value!r} (it must be >= 0)")


def _check_betas(name: str, betas) -> None:
    if not isinstance(betas, (list, tuple)) or len(betas) != 2:
        raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
    for i, beta in enumerate(betas):
        _check_number(name, f"beta parameter at index {i}", beta)
        if not 0.0 <= beta < 1.0:
            raise ValueError(
                f"{name}: invalid beta parameter at index {i}: {beta!r} (it must be in [0, 1))"
            )


# =================================================================================================
# SGD
# =================================================================================================


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (PyTorch's ``torch.optim.SGD``).

    For each parameter ``p`` with gradient ``g``, at step t (PyTorch's documented algorithm)::

        g   <- g + weight_decay * p                      (L2 penalty, if weight_decay != 0)
        b_1 <- g                                         (first step: the buffer is the gradient)
        b_t <- momentum * b_{t-1} + (1 - dampening) * g  (if momentum != 0)
        g   <- g + momentum * b_t   if nesterov  else  b_t
        p   <- p - lr * g

    >>> import tinygrad_edu as tg
    >>> w = tg.tensor([1.0], requires_grad=True)
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     (w * 1.0).sum().backward()  # the gradient is always 1
    ...     opt.step()
    >>> round(w.item(), 4)  # 1 - 0.1 * 1 - 0.1 * (0.9 * 1 + 1)
    0.71
    """

    def __init__(
        self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False
    ):
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        _check_nonnegative("SGD", "momentum value", group["momentum"])
        _check_nonnegative("SGD", "weight_decay value", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"SGD: Nesterov momentum requires a momentum > 0 and zero dampening, got "
                f"momentum={group['momentum']!r}, dampening={group['dampening']!r}"
            )

    def _update(self, p, grad, group, state):
        lr, momentum = float(group["lr"]), float(group["momentum"])
        dampening, weight_decay = float(group["dampening"]), float(group["weight_decay"])
        if weight_decay != 0:
            grad = grad + weight_decay * p.data  # a new array: p.grad is left untouched
        if momentum != 0:
            # --- exercise 4.3: SGD with momentum ---
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = _copy(grad)  # a copy: grad may be shared
            else:
                buf *= momentum  # in place: the buffer belongs to the optimizer
                buf += (1 - dampening) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
            # --- end exercise ---
        p.data -= lr * grad  # in place: see "In-place updates" in the module docstring


# =================================================================================================
# Adam and AdamW
# =================================================================================================


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with PyTorch's defaults and update rule (``torch.optim.Adam``).

    For each parameter ``p`` with gradient ``g``, at step t = 1, 2, ...::

        g   <- g + weight_decay * p                  (L2 penalty, coupled to the gradient)
        m_t <- beta1 * m_{t-1} + (1 - beta1) * g     (first moment: a running mean of g)
        v_t <- beta2 * v_{t-1} + (1 - beta2) * g^2   (second moment: running mean of g^2)
        v_hat <- max(v_hat, v_t) if amsgrad else v_t
        p   <- p - lr / (1 - beta1^t) * m_t / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)

    ``m`` and ``v`` start at zero, so early on they are biased towards zero; dividing by
    ``1 - beta^t`` (the *bias correction*) removes that bias. Note that ``eps`` is added after
    the correction, exactly as PyTorch does.

    >>> import tinygrad_edu as tg
    >>> w = tg.tensor([1.0, -1.0], requires_grad=True)
    >>> opt = Adam([w], lr=0.1)
    >>> (w * 3.0).sum().backward()
    >>> opt.step()  # the first Adam step moves each weight by about lr, whatever the scale of g
    >>> [round(v, 4) for v in w.numpy().tolist()]
    [0.9, -1.1]
    """

    _decoupled_weight_decay = False

    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False
    ):
        betas = tuple(betas) if isinstance(betas, (list, tuple)) else betas  # JSON gives lists
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults)

    def _torch_options(self) -> dict:
        return {"maximize": False, "decoupled_weight_decay": self._decoupled_weight_decay}

    def _check_group(self, group: dict) -> None:
        name = type(self).__name__
        super()._check_group(group)
        _check_nonnegative(name, "epsilon value eps", group["eps"])
        _check_betas(name, group["betas"])
        _check_nonnegative(name, "weight_decay value", group["weight_decay"])

    def _update(self, p, grad, group, state):
        xp = backend.xp_of(p.data)
        lr, eps, weight_decay = (
            float(group["lr"]),
            float(group["eps"]),
            float(group["weight_decay"]),
        )
        beta1, beta2 = (float(b) for b in group["betas"])
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]

        if weight_decay != 0:
            if self._decoupled_weight_decay:
                # --- exercise 11.2: AdamW's decoupled weight decay ---
                p.data *= 1 - lr * weight_decay  # AdamW: shrink the weight itself, in place
                # --- end exercise ---
            else:
                grad = grad + weight_decay * p.data  # Adam: L2 penalty added to the gradient

        # --- exercise 4.4: Adam with bias correction ---
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1  # m_t = beta1 m_{t-1} + (1 - beta1) g, in place
        m += (1 - beta1) * grad
        v *= beta2  # v_t = beta2 v_{t-1} + (1 - beta2) g^2, in place
        v += (1 - beta2) * (grad * grad)
        if group["amsgrad"]:
            v_max = state["max_exp_avg_sq"]
            v_max[...] = xp.maximum(v_max, v)
            v = v_max

        bias_correction1 = 1 - beta1**t  # Python floats: no float64 creeps into the arrays
        bias_correction2 = 1 - beta2**t
        step_size = lr / bias_correction1
        # sqrt(v_hat) / sqrt(bc2) + eps, then m / that, each in place on the one temporary
        update = xp.sqrt(v)
        update /= math.sqrt(bias_correction2)
        update += eps
        update = m / update
        update *= step_size
        p.data -= update
        # --- end exercise ---


class AdamW(Adam):
    """Adam with *decoupled* weight decay (Loshchilov & Hutter, 2019), ``torch.optim.AdamW``.

    Instead of adding ``weight_decay * p`` to the gradient (where Adam's normalisation would
    shrink it), AdamW first shrinks the weight itself, by a factor set by the learning rate and
    the decay, then takes a plain Adam step with ``g`` (no L2 term). Decay is a group option: the
    char Transformer decays its matrices and not its gains and biases (``param_groups``).

    >>> import tinygrad_edu as tg
    >>> w = tg.tensor([2.0], requires_grad=True)
    >>> opt = AdamW([w], lr=0.1, weight_decay=0.5)
    >>> (w * 0.0).sum().backward()  # zero gradient: only the decay acts
    >>> opt.step()
    >>> round(w.item(), 4)
    1.9
    """

    _decoupled_weight_decay = True

    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


# =================================================================================================
# Learning-rate schedules
# =================================================================================================


class LRScheduler:
    """Base class of learning-rate schedules (PyTorch's ``torch.optim.lr_scheduler`` API).

    A scheduler sets ``group["lr"]`` of every parameter group from the group's initial rate
    (``base_lrs``) and a counter ``last_epoch`` (really: the number of ``step()`` calls). Building
    it applies the rate of step 0; call ``scheduler.step()`` once after each ``optimizer.step()``.
    Subclasses define ``get_lr()``: the rates at ``self.last_epoch``.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {type(optimizer)}")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(
                    f"{type(self).__name__}: param_groups[{i}] has no 'initial_lr'; to resume "
                    "with last_epoch != -1, load the optimizer's state dict first"
                )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self) -> list:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self) -> None:
        """Advance one step and write the new rates into the optimizer's groups."""
        self.last_epoch += 1
        self._last_lr = [float(lr) for lr in self.get_lr()]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr, strict=True):
            group["lr"] = lr

    def get_last_lr(self) -> list:
        """The rates set by the last ``step()``, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """The counter and rates; the schedule's own settings come from its constructor."""
        return {
            "last_epoch": self.last_epoch,
            "base_lrs": list(self.base_lrs),
            "_last_lr": list(self._last_lr),
        }

    def load_state_dict(self, state_dict: dict) -> None:
        self.last_epoch = int(state_dict["last_epoch"])
        self.base_lrs = [float(lr) for lr in state_dict["base_lrs"]]
        self._last_lr = [float(lr) for lr in state_dict["_last_lr"]]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr, strict=True):
            group["lr"] = lr


class LambdaLR(LRScheduler):
    """``lr = base_lr * lr_lambda(step)``; ``lr_lambda`` is a function or one per group.

    >>> import tinygrad_edu as tg
    >>> opt = SGD([tg.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = LambdaLR(opt, lambda step: 0.5**step)
    >>> sched.step(); sched.step()
    >>> sched.get_last_lr()
    [0.25]
    """

    def __init__(self, optimizer: Optimizer, lr_lambda, last_epoch: int = -1):
        n = len(optimizer.param_groups)
        if callable(lr_lambda):
            self.lr_lambdas = [lr_lambda] * n
        elif not isinstance(lr_lambda, (list, tuple)) or not all(map(callable, lr_lambda)):
            raise TypeError(
                f"LambdaLR: lr_lambda must be a function of the step (or a list of {n}, one per "
                f"parameter group), got {lr_lambda!r}"
            )
        else:
            self.lr_lambdas = list(lr_lambda)
            if len(self.lr_lambdas) != n:
                raise ValueError(
                    f"LambdaLR: expected {n} lr_lambdas (one per parameter group), "
                    f"got {len(self.lr_lambdas)}"
                )
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        return [
            base * f(self.last_epoch)
            for base, f in zip(self.base_lrs, self.lr_lambdas, strict=True)
        ]


class StepLR(LRScheduler):
    """``lr = base_lr * gamma ** (step // step_size)``: divide the rate every ``step_size`` steps.

    >>> import tinygrad_edu as tg
    >>> opt = SGD([tg.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = StepLR(opt, step_size=2, gamma=0.1)
    >>> rates = []
    >>> for _ in range(5):
    ...     rates.append(round(sched.get_last_lr()[0], 6))
    ...     sched.step()
    >>> rates
    [1.0, 1.0, 0.1, 0.1, 0.01]
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch=-1):
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


def warmup_cosine_lr(
    step: int, lr: float, min_lr: float, warmup_steps: int, max_steps: int
) -> float:
    """Linear warm-up, then cosine decay from ``lr`` to ``min_lr`` (nanoGPT's schedule): the
    learning rate of update number ``step`` (0-based).

    The rate, step by step::

        step <  warmup_steps:  lr * (step + 1) / (warmup_steps + 1)         (never exactly 0)
        step <= max_steps:     min_lr + (lr - min_lr) * (1 + cos(pi * r)) / 2,
                               r = (step - warmup_steps) / (max_steps - warmup_steps)
        step >  max_steps:     min_lr

    Warm-up keeps the first updates small while Adam's moment estimates are still noisy; the
    cosine spends most steps at a high rate and then anneals smoothly.

    >>> [round(warmup_cosine_lr(s, 1e-3, 1e-4, 100, 2000), 6) for s in (0, 99, 100, 1050, 2000)]
    [1e-05, 0.00099, 0.001, 0.00055, 0.0001]
    """
    # --- exercise 11.3: warm-up, then cosine decay ---
    if step < warmup_steps:
        rate = lr * (step + 1) / (warmup_steps + 1)
    elif step > max_steps:
        rate = min_lr
    else:
        ratio = (step - warmup_steps) / (max_steps - warmup_steps)
        rate = min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * ratio))
    # --- end exercise ---
    return rate


class WarmupCosineLR(LRScheduler):
    """``warmup_cosine_lr`` as a scheduler: each group goes from its own ``lr`` to ``min_lr``.

    The recipe of the char Transformer: ``WarmupCosineLR(opt, warmup_steps=100,
    max_steps=2000, min_lr=1e-4)`` with ``AdamW(..., lr=1e-3)``.

    >>> import tinygrad_edu as tg
    >>> opt = AdamW([tg.zeros(1, requires_grad=True)], lr=1e-3)
    >>> sched = WarmupCosineLR(opt, warmup_steps=100, max_steps=2000, min_lr=1e-4)
    >>> round(opt.param_groups[0]["lr"], 8)  # step 0 of the warm-up
    9.9e-06
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int,
        max_steps: int,
        min_lr: float = 0.0,
        last_epoch: int = -1,
    ):
        if warmup_steps < 0 or max_steps <= warmup_steps:
            raise ValueError(
                f"WarmupCosineLR: need 0 <= warmup_steps < max_steps, got "
                f"warmup_steps={warmup_steps!r}, max_steps={max_steps!r}"
            )
        _check_nonnegative("WarmupCosineLR", "min_lr", min_lr)
        self.warmup_steps = int(warmup_steps)
        self.max_steps = int(max_steps)
        self.min_lr = float(min_lr)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        return [
            warmup_cosine_lr(self.last_epoch, base, self.min_lr, self.warmup_steps, self.max_steps)
            for base in self.base_lrs
        ]


# =================================================================================================
# Gradient clipping
# =================================================================================================


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite=False):
    """Rescale gradients so that their joint norm is at most ``max_norm``; return that norm.

    The norm is taken over all gradients together, as if concatenated into one vector, and the
    gradients are scaled down only when it exceeds ``max_norm``::

        total = (sum over params of sum |g|^p) ^ (1/p)        (max |g| for norm_type=inf)
        if total > max_norm:  g <- g * max_norm / (total + 1e-6)

    Gradients are replaced by scaled copies (never scaled in place: a gradient array can be
    shared). Returns the norm *before* clipping as a 0-d Tensor of the gradients' dtype, as
    PyTorch does; log it to see when training is unstable. A NaN or infinite norm leaves the
    gradients untouched (scaling by 0 would turn inf into NaN and hide where it came from);
    ``error_if_nonfinite=True`` raises instead.

    >>> import tinygrad_edu as tg
    >>> w = tg.tensor([3.0, 4.0], requires_grad=True)
    >>> (w * w).sum().backward()  # grad = [6, 8], norm 10
    >>> clip_grad_norm([w], max_norm=1.0).item()
    10.0
    >>> [round(v, 4) for v in w.grad.numpy().tolist()]
    [0.6, 0.8]
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p for p in parameters if p.grad is not None]
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return Tensor(0.0)
    if norm_type <= 0:
        raise ValueError(f"clip_grad_norm: norm_type must be > 0 or inf, got {norm_type!r}")
    arrays = [p.grad.data for p in grads]
    # --- exercise 7.3: gradient clipping by norm ---
    if norm_type == math.inf:
        total = max(float(backend.xp_of(g).max(backend.xp_of(g).abs(g))) for g in arrays)
    else:
        total = 0.0  # a Python float: the sum over parameters is accumulated in float64
        for g in arrays:
            xp = backend.xp_of(g)
            total += (
                float(xp.sum(g * g)) if norm_type == 2.0 else float(xp.sum(xp.abs(g) ** norm_type))
            )
        total = total ** (1.0 / norm_type)
    clip_coef = max_norm / (total + 1e-6)
    if math.isfinite(total) and clip_coef < 1.0:
        for p in grads:
            p.grad = Tensor._make(p.grad.data * clip_coef, False, None)
    # --- end exercise ---
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm: the total norm of order {norm_type} of the gradients is {total}; "
            "a NaN or Inf crept into the gradients (try tg.detect_anomaly() to find where)"
        )
    return Tensor(total, dtype=grads[0].grad.dtype, device=grads[0].device)


clip_grad_norm_ = clip_grad_norm  # PyTorch's name (the trailing _ says: modifies the grads)

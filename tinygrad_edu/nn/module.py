"""``Module`` and ``Parameter``: how layers hold their weights and find each other.

Chapter 3 ("Dense layers and MLPs") builds this module. A ``Module`` registers every ``Parameter``
and sub-``Module`` assigned to it as an attribute, in definition order, so ``parameters()``,
``named_parameters()`` and ``state_dict()`` walk the tree with PyTorch's dotted names
(``blocks.0.attn.q_proj.weight``) and a state dict maps one-to-one onto PyTorch's.

>>> import tinygrad_edu as tg
>>> from tinygrad_edu import nn
>>> class TwoLayer(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc1 = nn.Linear(4, 8)
...         self.fc2 = nn.Linear(8, 2)
...     def forward(self, x):
...         return self.fc2(self.fc1(x).relu())
>>> [name for name, _ in TwoLayer().named_parameters()]
['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

from .. import backend
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module learns: ``requires_grad=True`` and registered by assignment."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True, dtype=None, device=None):
        super().__init__(data, requires_grad=False, dtype=dtype, device=device)
        self.requires_grad_(requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def _is_dtype(value) -> bool:
    """True for a dtype (``"float64"``, ``np.float64``), False for a device name (``"cuda:0"``)."""
    name = backend.dtype_name(value) if not isinstance(value, str) else value
    return backend.is_floating(name) or backend.is_integer(name) or name == "bool"


class Module:
    """Base class of every layer and model: subclasses define ``forward``; call the module."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration -----------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        for store in (self._parameters, self._modules, self._buffers):
            if store.get(name) is not value:  # the same object again (w -= ...) keeps its place
                store.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for store in (self._parameters, self._modules, self._buffers):
            store.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor: Tensor | None) -> None:
        """A tensor that belongs to the module's state (saved, moved) but is not learned."""
        object.__setattr__(self, name, tensor)
        self._buffers[name] = tensor

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is None:
            object.__setattr__(self, name, None)
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as the child ``name``: the same as ``setattr(self, name, module)``
        (PyTorch's; useful when the name is built at run time, e.g. ``f"layer{i}"``)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(
                f"{type(self).__name__}.add_module: {name!r} must be a Module or None, got "
                f"{type(module).__name__}"
            )
        if module is None:
            object.__setattr__(self, name, None)
            self._modules[name] = None
        else:
            setattr(self, name, module)

    register_module = add_module

    # ---- calling ------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- walking the tree ---------------------------------------------------------------------
    def named_modules(self, prefix: str = ""):
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def children(self):
        return (m for m in self._modules.values() if m is not None)

    def named_children(self):
        return ((name, m) for name, m in self._modules.items() if m is not None)

    def get_submodule(self, target: str) -> Module:
        """The module at the dotted path ``target`` (``"blocks.0.attn"``); ``""`` is ``self``."""
        module = self
        for name in target.split(".") if target else ():
            child = module._modules.get(name)
            if child is None:
                raise AttributeError(
                    f"{type(self).__name__}.get_submodule: {type(module).__name__} has no "
                    f"submodule {name!r} (path {target!r}); it has {list(module._modules)}"
                )
            module = child
        return module

    def apply(self, fn):
        """Call ``fn(m)`` on every submodule, children first, then on ``self``; return ``self``.

        PyTorch's way to initialise a whole model: ``model.apply(init_weights)``, where
        ``init_weights`` tests ``isinstance(m, nn.Linear)``.
        """
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def named_parameters(self, prefix: str = ""):
        """``(name, parameter)`` pairs in definition order; a shared parameter appears once."""
        # --- exercise 3.1: finding the parameters ---
        seen = set()
        for mod_name, m in self.named_modules(prefix):
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p
        # --- end exercise ---

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        for mod_name, m in self.named_modules():
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self):
        return [b for _, b in self.named_buffers()]

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # ---- state ----------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict:
        """Parameter and buffer arrays by dotted name (the arrays are shared, not copied).

        A tied parameter (the same Parameter under two names) appears under both names, as in
        PyTorch, so the dict loads into a freshly built model either way.
        """
        out = OrderedDict()
        for mod_name, m in self.named_modules():
            for store in (m._parameters, m._buffers):
                for name, t in store.items():
                    if t is not None:
                        out[f"{mod_name}.{name}" if mod_name else name] = t.data
        return out

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy arrays into the parameters and buffers; with ``strict``, keys must match exactly.

        Shapes must always match. Returns ``(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"load_state_dict into {type(self).__name__}: expected a dict of arrays by "
                f"name (from state_dict()), got {type(state_dict).__name__}"
            )
        own = OrderedDict()
        for mod_name, m in self.named_modules():
            for store in (m._parameters, m._buffers):
                for name, t in store.items():
                    if t is not None:
                        own[f"{mod_name}.{name}" if mod_name else name] = t
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = []
        for k, t in own.items():
            if k in state_dict:
                shape = tuple(getattr(state_dict[k], "shape", ()))
                if shape != t.shape:
                    mismatched.append(f"{k}: checkpoint {shape}, model {t.shape}")
        problems = []
        if mismatched:
            problems.append("mis-shaped keys: " + "; ".join(mismatched))
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__}: " + " | ".join(problems))
        for k, t in own.items():
            if k in state_dict:
                value = state_dict[k]
                value = value.data if isinstance(value, Tensor) else value
                t.data = backend.asarray(value, dtype=t.dtype, device=t.device)
        return missing, unexpected

    # ---- modes and devices ----------------------------------------------------------------------
    def train(self, mode: bool = True):
        if not isinstance(mode, bool):
            raise ValueError(
                f"{type(self).__name__}.train: mode must be True or False, got {mode!r}"
            )
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                xp = backend.xp_of(p.grad.data)
                p.grad = Tensor(xp.zeros_like(p.grad.data))  # same shape, dtype and device

    def requires_grad_(self, requires_grad: bool = True):
        """Freeze (``False``) or unfreeze (``True``) every parameter of this module and its
        children, in place, and return the module (PyTorch's ``module.requires_grad_``).

        A frozen parameter gets no gradient from ``backward`` and so never moves; freezing also
        drops the gradient it already has, so that an optimizer holding it cannot apply a stale
        one. Give a new optimizer only the parameters that still train:
        ``[p for p in model.parameters() if p.requires_grad]``.
        """
        # --- exercise 14.1: freezing parameters ---
        for p in self.parameters():
            p.requires_grad_(requires_grad)
            if not requires_grad:
                p.grad = None
        # --- end exercise ---
        return self

    def to(self, device=None, dtype=None):
        """Move every parameter and buffer to ``device`` and/or cast the floating-point ones to
        ``dtype``, in place, as PyTorch's ``module.to(device, dtype)``; ``module.to("float64")``
        (a dtype alone) casts. The Parameter objects are kept, so an optimizer built before
        still holds them; its state (Adam's moments) follows the parameters' device and dtype at
        its next ``step()``. Gradients move and cast with their parameters.
        """
        if dtype is None and device is not None and _is_dtype(device):
            device, dtype = None, device  # module.to(torch.float64)-style: a dtype alone
        if device is not None:
            device = backend.get_device(device)
            for t in self._tensors():
                t.data = backend.to_device(t.data, device)
                if t.grad is not None:
                    t.grad = t.grad.to(device)
        if dtype is not None:
            name = backend.dtype_name(dtype)
            if not backend.is_floating(name):
                raise TypeError(
                    f"{type(self).__name__}.to: dtype must be a floating-point dtype (float16, "
                    f"float32, float64), got {name!r}; only floating-point parameters are cast"
                )
            for t in self._tensors():
                if backend.is_floating(t.dtype) and not hasattr(backend.namespace(t.device), name):
                    raise TypeError(
                        f"{type(self).__name__}.to: device {t.device!r} has no dtype {name!r} "
                        "(the array API standard has float32 and float64 only)"
                    )
                if backend.is_floating(t.dtype) and t.dtype != name:
                    t.data = backend.asarray(t.data, dtype=name, device=t.device)
                    if t.grad is not None:
                        t.grad = Tensor(backend.asarray(t.grad.data, dtype=name, device=t.device))
        return self

    def _tensors(self):
        """Every parameter and buffer once (a tied parameter is cast or moved once)."""
        seen = set()
        for m in self.modules():
            for store in (m._parameters, m._buffers):
                for t in store.values():
                    if t is not None and id(t) not in seen:
                        seen.add(id(t))
                        yield t

    def astype(self, dtype):
        """Cast every floating-point parameter and buffer (e.g. to float64 for gradient checks);
        the same as ``to(dtype=dtype)``."""
        return self.to(dtype=dtype)

    def double(self):
        """PyTorch's ``module.double()``: floating-point parameters and buffers to float64."""
        return self.to(dtype="float64")

    def float(self):
        """PyTorch's ``module.float()``: floating-point parameters and buffers to float32."""
        return self.to(dtype="float32")

    def half(self):
        """PyTorch's ``module.half()``: floating-point parameters and buffers to float16 (for
        storage and export; NumPy computes float16 slowly and the losses need float32)."""
        return self.to(dtype="float16")

    # ---- printing -------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        if not self._modules:
            return f"{type(self).__name__}({extra})"
        # as PyTorch: with children, the extra_repr gets a line of its own above them
        lines = [extra] if extra else []
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {sub}")
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


class ModuleList(Module):
    """A list of modules, registered under the names ``0, 1, 2 ...``."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        if not isinstance(module, Module):  # a plain function would be stored but never called
            raise TypeError(
                f"{type(self).__name__}: element {len(self._modules)} is a "
                f"{type(module).__name__}, not a Module; wrap functions in a Module "
                "(e.g. nn.ReLU())"
            )
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, i: int) -> Module:
        modules = list(self._modules.values())
        if isinstance(i, slice):
            return (
                Sequential(*modules[i]) if isinstance(self, Sequential) else ModuleList(modules[i])
            )
        if not -len(modules) <= i < len(modules):
            raise IndexError(
                f"{type(self).__name__}: index {i} is out of range for {len(modules)} modules"
            )
        return modules[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(ModuleList):
    """Modules applied in order: ``Sequential(Linear(4, 8), ReLU(), Linear(8, 2))``.

    A ``ModuleList`` (the same names ``0, 1, 2 ...``, indexing, ``len``, iteration) whose
    ``forward`` feeds each module's output to the next.
    """

    def __init__(self, *modules: Module):
        super().__init__(modules)

    def forward(self, x):
        for m in self:
            x = m(x)
        return x

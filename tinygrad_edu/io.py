"""Checkpoints: ``tg.save(obj, path)`` and ``tg.load(path)``, as ``.npz`` files without pickle.

Chapter 11 ("The character-level Transformer LM") uses this module to save and resume training.
A checkpoint is usually a nested dict::

    {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 1200,
     "config": {...}, "rng": tg.backend.get_rng_state()}

**Format.** An ``.npz`` file is a zip archive of ``.npy`` files, one per array. Each array is
stored under its dotted path (``model.blocks.0.attn.weight``), so ``np.load(path)`` shows them
by name. Everything else (numbers, strings, None, booleans, lists, the dict structure itself,
including keys that contain dots or are integers) goes into one JSON document stored as the
entry ``__tinygrad_edu__``, with a format version. Nothing is pickled, so loading a checkpoint
cannot run code: a file that contains a pickled object is refused.

**Shared arrays are stored once.** An array that appears under two names (the tied token
embedding of the GPT is ``wte.weight`` and ``lm_head.weight``) is written once; ``load`` gives
back one array under both names.

**safetensors.** A path ending in ``.safetensors`` is written in that format (Hugging Face's: a
JSON header, then the raw tensors; no code runs on load), which PyTorch reads with
``safetensors.torch.load_file(path)`` without this package. It holds weights, not training
state: ``obj`` is a state dict (name -> array), or a dict whose ``"model"`` entry is the state
dict and whose other entries (the config, the tokenizer ...) are plain values, each stored in the
file's metadata as a JSON string under its own key. Needs ``pip install
"tinygrad_edu[safetensors]"``.

**Weights-only checkpoints.** :func:`save_weights` writes a model's weights with its
configuration and tokenizer (what sampling needs, and what another framework needs; chapter 16);
:func:`load_model` rebuilds ``(model, tokenizer)`` from such a file or from a training
checkpoint, and names exactly what is missing when it cannot.

**Safety.** ``save`` writes to a temporary file in the same directory, flushes it to disk
(``fsync``) and only then renames it over ``path`` with ``os.replace``, which is atomic: a crash
or Ctrl-C at any moment leaves either the old checkpoint or the new one, never half a file.
Arrays on any device are saved from the host; ``load`` returns NumPy arrays and
``load_state_dict`` moves them to the model's device.

>>> import os, tempfile
>>> import numpy as np
>>> import tinygrad_edu as tg
>>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
>>> tg.save({"model": {"w": np.ones((2, 3), np.float32)}, "step": 7}, path)
>>> ckpt = tg.load(path)
>>> ckpt["step"], ckpt["model"]["w"].shape, ckpt["model"]["w"].dtype
(7, (2, 3), dtype('float32'))
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import signal
import tempfile
import threading
import zipfile

import numpy as np  # files live on the host: NumPy is the file format here, not a compute backend

from . import backend

FORMAT = "tinygrad_edu.checkpoint"
VERSION = 1
META_KEY = "__tinygrad_edu__"  # the .npz entry that holds the JSON document

SAFETENSORS_KEY = "tinygrad_edu"  # the .safetensors metadata entry that describes the file

__all__ = [
    "save",
    "load",
    "CheckpointError",
    "atomic_write",
    "deferred_signals",
    "remove_stale_temporaries",
    "save_weights",
    "load_model",
]


class CheckpointError(ValueError):
    """A file that cannot be loaded as a checkpoint: truncated, corrupt, foreign or pickled."""


# =================================================================================================
# Saving
# =================================================================================================


def save(obj, path) -> None:
    """Write ``obj`` (usually a nested dict of arrays and plain values) to ``path`` atomically.

    Allowed values: arrays of any device (and Tensors, saved as their data), NumPy scalars,
    ``None``, bools, ints, floats, strings, and lists, tuples and dicts of these (dict keys must
    be strings or ints). Anything else is a ``TypeError`` naming where it is. A path ending in
    ``.safetensors`` is written in that format (see the module docstring).
    """
    if _is_safetensors(path):
        _save_safetensors(obj, path)
        return
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, [], arrays, {})  # check everything before touching the disk
    meta = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree})
    with atomic_write(path, "save") as f:
        _write_npz(f, arrays, meta)


@contextlib.contextmanager
def atomic_write(path, who: str = "atomic_write"):
    """Open a binary file that appears at ``path`` only once it is complete.

    The data goes to a temporary file in the same directory (a rename is only atomic within one
    file system); when the block ends without an error, the file is flushed to disk (``fsync``)
    and renamed over ``path`` with ``os.replace``. On an error or Ctrl-C the temporary file is
    removed and ``path`` is untouched. SIGINT (Ctrl-C) and SIGTERM arriving while the file is
    written are held back until it is complete (``deferred_signals``), so a second Ctrl-C never
    cuts a save short. A process killed with SIGKILL leaves the temporary file
    (``.<name>.<random>.tmp``) behind, and ``path`` still untouched;
    ``remove_stale_temporaries(path)`` deletes such leftovers. Used for checkpoints and figures.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "hello.txt")
    >>> with atomic_write(path) as f:
    ...     _ = f.write(b"hello")
    >>> open(path, "rb").read()
    b'hello'
    """
    with deferred_signals():  # a Ctrl-C or SIGTERM waits until the file is complete
        with _atomic_write(path, who) as f:
            yield f


@contextlib.contextmanager
def _atomic_write(path, who: str):
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"{who}: cannot write {path!r}: it is a directory; pass a file path inside it"
        )
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"{who}: cannot write {path!r}: the directory {directory!r} does not exist "
            "(create it first, e.g. os.makedirs(directory, exist_ok=True))"
        )
    fd, tmp = tempfile.mkstemp(
        prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them visible
        mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
        os.chmod(tmp, mode)  # mkstemp creates files readable by the owner only
        os.replace(tmp, path)  # atomic: readers see the old file or the new one, nothing between
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)  # make the rename itself durable


@contextlib.contextmanager
def deferred_signals(signums=(signal.SIGINT, signal.SIGTERM)):
    """Hold SIGINT and SIGTERM back while the block runs, then deliver them.

    Inside the block a signal is only noted; when the block ends, the previous handlers are put
    back and each noted signal is raised again, so it has its usual effect (``KeyboardInterrupt``
    for Ctrl-C, the training loop's stop request, or the end of the process for an unhandled
    SIGTERM) once the work in the block is complete. Python runs signal handlers in the main
    thread only, so elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = {}
    try:
        for signum in signums:
            handler = signal.getsignal(signum)
            if handler is None or handler is signal.SIG_IGN:  # not ours to change, or ignored
                continue
            previous[signum] = signal.signal(signum, lambda s, frame: received.append(s))
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(received):  # each kind once, in the order they came
            signal.raise_signal(signum)


def remove_stale_temporaries(path) -> list[str]:
    """Delete the temporary files that killed writes of ``path`` left (``.<name>.*.tmp`` beside
    it, see ``atomic_write``); return their paths. Call it when no other process writes ``path``.
    """
    directory, name = os.path.split(os.fspath(path))
    pattern = os.path.join(glob.escape(directory or os.curdir), glob.escape(f".{name}.") + "*.tmp")
    stale = sorted(glob.glob(pattern))
    removed = []
    for tmp in stale:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
            removed.append(tmp)
    return removed


def _write_npz(f, arrays: dict, meta: str) -> None:
    """What ``np.savez`` does, spelled out: a zip archive with one ``.npy`` entry per array.

    Writing the entries ourselves lets any string be a name (``np.savez(file, **arrays)`` breaks
    on a key named ``file``) and refuses pickles on the way out (``allow_pickle=False``).
    """
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in arrays.items():
            with zf.open(name + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
        meta_bytes = np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)
        with zf.open(META_KEY + ".npy", mode="w", force_zip64=True) as member:
            np.lib.format.write_array(member, meta_bytes, allow_pickle=False)


def _fsync_directory(directory: str) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _where(keys: list) -> str:
    return ".".join(str(k) for k in keys) or "<top level>"


def _encode(obj, keys: list, arrays: dict, seen: dict):
    """Turn ``obj`` into a JSON tree; arrays go into ``arrays`` and are referenced by name.

    Tree nodes: ``{"dict": [[key, node], ...]}`` (keys keep their type and order),
    ``{"list": [...]}``, ``{"tuple": [...]}``, ``{"array": name}`` (``"scalar": true`` for a
    NumPy scalar), ``{"value": v}`` for JSON values. ``seen`` maps ``id(array)`` to
    ``(array, name)``: an array met again (a tied weight) is a second reference to the same name.
    """
    from .tensor import Tensor

    if isinstance(obj, Tensor):
        obj = obj.data
    if backend.is_array(obj) and not isinstance(obj, np.generic) and id(obj) in seen:
        return {"array": seen[id(obj)][1]}  # the same array again: stored once
    if backend.is_array(obj):
        host = backend.to_numpy(obj)
        if host.dtype.hasobject:
            raise TypeError(
                f"save: the array at {_where(keys)!r} has dtype object; checkpoints hold only "
                "plain numeric, bool or string arrays (object arrays would need pickle)"
            )
        name = _unique_name(_where(keys) if keys else "array", arrays)
        arrays[name] = host
        seen[id(obj)] = (obj, name)  # keeps obj alive, so its id is not reused meanwhile
        node = {"array": name}
        if isinstance(obj, np.generic):
            node["scalar"] = True
        return node
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if isinstance(k, np.integer):
                k = int(k)
            if not isinstance(k, (str, int)):
                raise TypeError(
                    f"save: dict keys must be strings or ints, got {type(k).__name__} key {k!r} "
                    f"at {_where(keys)!r}"
                )
            items.append([k, _encode(v, keys + [k], arrays, seen)])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        kind = "tuple" if isinstance(obj, tuple) else "list"
        if kind == "list" and all(v is None or isinstance(v, (bool, int, float, str)) for v in obj):
            return {"value": list(obj)}  # a flat list of plain values is stored as it is
        return {kind: [_encode(v, keys + [i], arrays, seen) for i, v in enumerate(obj)]}
    raise TypeError(
        f"save: cannot store a {type(obj).__name__} at {_where(keys)!r}; checkpoints hold arrays, "
        "numbers, strings, None, bools, and lists/tuples/dicts of these (no pickle)"
    )


def _unique_name(name: str, arrays: dict) -> str:
    """The dotted path, made unique (``{"a.b": x, "a": {"b": y}}`` both flatten to ``a.b``)."""
    candidate, n = name, 1
    while candidate in arrays or candidate == META_KEY:
        n += 1
        candidate = f"{name}~{n}"
    return candidate


# =================================================================================================
# Loading
# =================================================================================================


def load(path):
    """Read a checkpoint written by ``save``; arrays come back as NumPy arrays on the host.

    Raises ``CheckpointError`` (a ``ValueError``) naming the file and what to do when it is
    empty, truncated, corrupt, not a checkpoint, or contains pickled objects.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no checkpoint at {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"load: {path!r} is a directory; pass a checkpoint file inside it")
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        raise CheckpointError(
            f"load: {path!r} is empty (0 bytes), so it was never completely written; "
            "use an earlier checkpoint"
        )
    if _is_safetensors(path):
        if head.startswith(b"PK"):
            raise CheckpointError(
                f"load: {path!r} is named .safetensors but is an .npz (zip) archive; rename it "
                "to end in .npz"
            )
        return _load_safetensors(path)
    if head.startswith(b"\x93NUMPY"):
        raise CheckpointError(
            f"load: {path!r} is a single .npy array, not a checkpoint; read it with np.load, "
            "or write checkpoints with tg.save"
        )
    if not head.startswith(b"PK"):
        raise CheckpointError(
            f"load: {path!r} is not a checkpoint: tg.save writes .npz (zip) files, and this file "
            f"starts with {head!r}"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise CheckpointError(
                f"load: {path!r} contains a pickled Python object, which is refused (unpickling "
                "can run arbitrary code). Checkpoints from tg.save never contain pickles: "
                "only load this file with np.load(allow_pickle=True) if you trust its source"
            ) from e
        raise CheckpointError(_corrupt(path, e)) from e
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as e:
        raise CheckpointError(_corrupt(path, e)) from e
    if any(name.endswith("data.pkl") for name in arrays):  # torch.save's zip: a pickle inside
        raise CheckpointError(
            f"load: {path!r} was written by torch.save, whose pickle is never loaded here; in "
            "PyTorch, save the weights with safetensors.torch.save_file(state_dict, "
            "'w.safetensors'), or pass a nanoGPT ckpt['model'] and ckpt['model_args'] to "
            "tinygrad_edu.interop.gpt_from_nanogpt"
        )
    if META_KEY not in arrays:
        raise CheckpointError(
            f"load: {path!r} is an .npz archive but was not written by tg.save (it has no "
            f"{META_KEY!r} entry); read its arrays with np.load({path!r})"
        )
    try:
        meta = json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError; deep nesting
        raise CheckpointError(_corrupt(path, e)) from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"load: {path!r} has an unknown format marker, not {FORMAT!r}")
    _check_version(path, meta.get("version"))
    try:
        return _decode(meta["tree"], arrays)
    except (KeyError, TypeError, IndexError, ValueError, RecursionError) as e:  # a tampered tree
        raise CheckpointError(_corrupt(path, e)) from e


def _corrupt(path: str, error: Exception) -> str:
    return (
        f"load: {path!r} is truncated or corrupt ({type(error).__name__}: {error}); it was "
        "probably cut short by a crash or a full disk while being copied. Use an earlier checkpoint"
    )


def _decode(node: dict, arrays: dict):
    if "array" in node:
        array = arrays[node["array"]]
        return array[()] if node.get("scalar") else array
    if "value" in node:
        return node["value"]
    if "dict" in node:
        return {k: _decode(v, arrays) for k, v in node["dict"]}
    if "list" in node:
        return [_decode(v, arrays) for v in node["list"]]
    if "tuple" in node:
        return tuple(_decode(v, arrays) for v in node["tuple"])
    raise KeyError(f"unknown node {sorted(node)}")


# =================================================================================================
# safetensors
# =================================================================================================


def _is_safetensors(path) -> bool:
    return os.fspath(path).lower().endswith(".safetensors")


def _safetensors(who: str):
    """The ``safetensors`` package, or a one-line error that names the extra to install."""
    try:
        import safetensors
        import safetensors.numpy
    except ImportError:
        raise ImportError(
            f"{who}: .safetensors files need the safetensors package: "
            'pip install "tinygrad_edu[safetensors]"'
        ) from None
    return safetensors


def _save_safetensors(obj, path) -> None:
    """A state dict, or ``{"model": state_dict, **plain values}``, as one .safetensors file."""
    from .tensor import Tensor

    if not isinstance(obj, dict):
        raise TypeError(
            f"save: a .safetensors file holds a state dict (name -> array) or a dict with a "
            f"'model' state dict and plain values; got a {type(obj).__name__}"
        )
    if isinstance(obj.get("model"), dict):
        layout, weights = "checkpoint", obj["model"]
        extras = {k: v for k, v in obj.items() if k != "model"}
    else:
        layout, weights, extras = "state_dict", obj, {}
    tensors: dict[str, np.ndarray] = {}
    tied: dict[str, str] = {}
    seen: dict[int, tuple] = {}
    for name, value in weights.items():
        value = value.data if isinstance(value, Tensor) else value
        where = f"model.{name}" if layout == "checkpoint" else str(name)
        if not isinstance(name, str) or not backend.is_array(value):
            raise TypeError(
                f"save: {where!r} is a {type(value).__name__}; the weights of a .safetensors file "
                "must be arrays under string names (plain values go next to 'model'; optimizer "
                "state and other nested data go in a .npz checkpoint)"
            )
        if id(value) in seen:  # a tied weight: stored once, recorded as an alias
            tied[name] = seen[id(value)][1]
            continue
        seen[id(value)] = (value, name)
        tensors[name] = np.ascontiguousarray(backend.to_numpy(value))
    metadata = {}
    for key, value in extras.items():
        if key == SAFETENSORS_KEY or not isinstance(key, str):
            raise TypeError(f"save: {key!r} cannot be a metadata key of a .safetensors file")
        try:
            metadata[key] = json.dumps(value)
        except TypeError as e:
            raise TypeError(
                f"save: {key!r} cannot go in the metadata of a .safetensors file, which holds "
                f"plain values as JSON ({e}); arrays belong in 'model', other state in a .npz"
            ) from None
    info = {"format": FORMAT, "version": VERSION, "layout": layout, "tied": tied}
    metadata[SAFETENSORS_KEY] = json.dumps(info)
    payload = _safetensors("save").numpy.save(tensors, metadata=metadata)
    with atomic_write(path, "save") as f:
        f.write(payload)


def _check_version(path: str, version) -> None:
    """A checkpoint (.npz or .safetensors) of another format version is refused (and left as
    it is)."""
    if version != VERSION:
        raise CheckpointError(
            f"load: {path!r} is checkpoint format version {version!r}, this version of "
            f"tinygrad_edu reads version {VERSION}; upgrade tinygrad_edu"
        )


def _load_safetensors(path: str):
    """The inverse of ``_save_safetensors``; a file written elsewhere loads as its state dict."""
    st = _safetensors("load")
    try:
        with st.safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except Exception as e:  # safetensors' own error type, a short read, a bad header ...
        if "bfloat16" in str(e):  # a sound file with a dtype that NumPy does not have
            raise CheckpointError(
                f"load: {path!r} holds bfloat16 tensors, which NumPy cannot represent; convert "
                "them in PyTorch first, e.g. {k: v.float() for k, v in state_dict.items()}"
            ) from None
        raise CheckpointError(_corrupt(path, e)) from e
    if SAFETENSORS_KEY not in metadata:
        return tensors  # written by another program: just the tensors
    try:
        info = json.loads(metadata.pop(SAFETENSORS_KEY))
        version = info.get("version")
    except (ValueError, AttributeError) as e:
        raise CheckpointError(_corrupt(path, e)) from e
    _check_version(path, version)
    try:
        for alias, name in info.get("tied", {}).items():
            tensors[alias] = tensors[name]  # one array under both names, as when saved
        if info.get("layout") != "checkpoint":
            return tensors
        extras = {key: json.loads(value) for key, value in metadata.items()}
    except (ValueError, KeyError, AttributeError) as e:
        raise CheckpointError(_corrupt(path, e)) from e
    return {"model": tensors, **extras}


# =================================================================================================
# Weights-only checkpoints: save one, and rebuild a model (and tokenizer) from any checkpoint
# =================================================================================================

# what a checkpoint needs so that a model can be rebuilt from it, and what each entry is
WEIGHTS_ENTRIES = {
    "model": "the weights",
    "model_config": "a dict of GPTConfig fields",
    "tokenizer": 'a dict such as {"chars": "..."}',
}


# The type of every entry a checkpoint may hold: ``save_weights`` writes the first four, a
# training checkpoint (``train.make_checkpoint``) all of them.
ENTRY_TYPES = {
    "model": dict,
    "model_config": dict,
    "tokenizer": dict,
    "model_type": str,
    "optimizer": dict,
    "train_config": dict,
    "step": int,
    "best_val_loss": (int, float),
    "rng_state": dict,
    "history": dict,
}


def check_entry_types(ckpt: dict, keys) -> None:
    """Raise ``TypeError`` naming the first entry among ``keys`` that ``ckpt`` holds with another
    type than ``ENTRY_TYPES`` says (a bool is not a number); absent entries are not checked."""
    for key in keys:
        kind, value = ENTRY_TYPES[key], ckpt.get(key)
        if key in ckpt and (isinstance(value, bool) or not isinstance(value, kind)):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise TypeError(f"its entry {key!r} is a {type(value).__name__}, expected a {names}")


def save_weights(path, model, tokenizer=None, names: str = "tinygrad_edu") -> None:
    """Save ``model``'s weights with its configuration and ``tokenizer``: what sampling needs,
    and all a user of another framework needs. ``.npz`` or ``.safetensors`` by ``path``'s suffix.

    ``names="nanogpt"`` writes a ``GPT`` with nanoGPT's names (``transformer.h.0.attn.c_attn``
    ...), so nanoGPT's ``model.py`` loads the file with ``safetensors.torch.load_model``; the
    config fields are nanoGPT's ``GPTConfig`` fields. :func:`load_model` reads either naming.
    """
    from dataclasses import asdict

    if names not in ("tinygrad_edu", "nanogpt"):
        raise ValueError(f"save_weights: names must be 'tinygrad_edu' or 'nanogpt', got {names!r}")
    if names == "nanogpt":
        from .interop import to_nanogpt

        weights = to_nanogpt(model)
    else:
        weights = {k: backend.to_numpy(v) for k, v in model.state_dict().items()}
    obj = {"model": weights, "model_type": type(model).__name__}
    obj["model_config"] = asdict(model.config)
    if tokenizer is not None:
        obj["tokenizer"] = tokenizer.to_dict() if hasattr(tokenizer, "to_dict") else tokenizer
    save(obj, path)


def load_model(path, device=None):
    """``(model, tokenizer)`` rebuilt from a checkpoint: one written by training (``.npz``),
    or a weights-only one (``.npz`` or ``.safetensors``, from :func:`save_weights` or written by
    hand) holding ``model`` (the weights, in tinygrad_edu's or nanoGPT's names),
    ``model_config`` and ``tokenizer``; ``model_type`` defaults to ``"GPT"``. Optimizer state,
    step, history and generator state are not needed. A checkpoint that lacks something is a
    one-line :class:`CheckpointError` naming exactly what is missing.

    The model comes back in evaluation mode on ``device`` (default: the default device), in the
    dtype of the saved weights.
    """
    from .data import CharTokenizer
    from .models import MODELS, build_model

    path = os.fspath(path)
    where = f"checkpoint {path!r}"
    if not os.path.isfile(path):
        raise CheckpointError(f"{where} does not exist (or is not a file)")
    ckpt = load(path)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{where} holds a {type(ckpt).__name__}, not a dict of entries")
    missing = [k for k in WEIGHTS_ENTRIES if k not in ckpt]
    if missing:
        needs = ", ".join(f"{k} ({v})" for k, v in WEIGHTS_ENTRIES.items())
        raise CheckpointError(
            f"{where} lacks {', '.join(missing)}: a model is rebuilt from {needs}; "
            "tinygrad_edu.io.save_weights writes all three"
        )
    try:
        check_entry_types(ckpt, ("model", "model_config", "tokenizer", "model_type"))
    except TypeError as e:
        raise CheckpointError(
            f"{where}: {e}; the file was edited or not written by tinygrad_edu"
        ) from None
    model_type = ckpt.get("model_type", "GPT")
    if model_type not in MODELS:
        raise CheckpointError(
            f"{where} holds a model of type {model_type!r}; expected one of {sorted(MODELS)}"
        )
    weights = ckpt["model"]
    dtypes = {k: np.asarray(w).dtype for k, w in weights.items()}
    not_float = [f"{k} ({d})" for k, d in dtypes.items() if not np.issubdtype(d, np.floating)]
    if not_float:  # an integer table would be cast to floats without a word
        raise CheckpointError(
            f"{where} holds weights that are not floating-point: {', '.join(not_float[:3])}"
            f"{', ...' if len(not_float) > 3 else ''}; a model's weights are float16, float32 or "
            "float64"
        )
    bad = [
        k
        for k, w in weights.items()
        if np.issubdtype(np.asarray(w).dtype, np.floating) and not np.isfinite(w).all()
    ]
    if bad:
        raise CheckpointError(
            f"{where} holds NaN or infinite weights ({', '.join(bad[:3])}"
            f"{', ...' if len(bad) > 3 else ''}): the run that wrote it diverged"
        )
    try:
        if model_type == "GPT":
            from .interop import from_nanogpt, is_nanogpt_state_dict

            if is_nanogpt_state_dict(weights):
                weights = from_nanogpt(weights, ckpt["model_config"])
        model = build_model(model_type, dict(ckpt["model_config"]))
        floats = [w for w in weights.values() if np.issubdtype(np.asarray(w).dtype, np.floating)]
        if floats:
            model.to(dtype=np.asarray(floats[0]).dtype)
        model.load_state_dict(weights)
        tokenizer = CharTokenizer.from_dict(ckpt["tokenizer"])
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{where} cannot be loaded: {e}") from None
    if tokenizer.vocab_size != getattr(model.config, "vocab_size", tokenizer.vocab_size):
        raise CheckpointError(
            f"{where}: the tokenizer has {tokenizer.vocab_size} characters but the model's "
            f"vocab_size is {model.config.vocab_size}"
        )
    return model.to(device=backend.get_device(device)).eval(), tokenizer

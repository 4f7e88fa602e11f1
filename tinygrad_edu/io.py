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

__all__ = [
    "save",
    "load",
    "CheckpointError",
    "atomic_write",
    "deferred_signals",
    "remove_stale_temporaries",
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
    be strings or ints). Anything else is a ``TypeError`` naming where it is.
    """
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, [], arrays)  # check everything before touching the disk
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


def _encode(obj, keys: list, arrays: dict):
    """Turn ``obj`` into a JSON tree; arrays go into ``arrays`` and are referenced by name.

    Tree nodes: ``{"dict": [[key, node], ...]}`` (keys keep their type and order),
    ``{"list": [...]}``, ``{"tuple": [...]}``, ``{"array": name}`` (``"scalar": true`` for a
    NumPy scalar), ``{"value": v}`` for JSON values.
    """
    from .tensor import Tensor

    if isinstance(obj, Tensor):
        obj = obj.data
    if backend.is_array(obj):
        host = backend.to_numpy(obj)
        if host.dtype.hasobject:
            raise TypeError(
                f"save: the array at {_where(keys)!r} has dtype object; checkpoints hold only "
                "plain numeric, bool or string arrays (object arrays would need pickle)"
            )
        name = _unique_name(_where(keys) if keys else "array", arrays)
        arrays[name] = host
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
            items.append([k, _encode(v, keys + [k], arrays)])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        kind = "tuple" if isinstance(obj, tuple) else "list"
        if kind == "list" and all(v is None or isinstance(v, (bool, int, float, str)) for v in obj):
            return {"value": list(obj)}  # a flat list of plain values is stored as it is
        return {kind: [_encode(v, keys + [i], arrays) for i, v in enumerate(obj)]}
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
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        raise CheckpointError(
            f"load: {path!r} is empty (0 bytes), so it was never completely written; "
            "use an earlier checkpoint"
        )
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
    if META_KEY not in arrays:
        raise CheckpointError(
            f"load: {path!r} is an .npz archive but was not written by tg.save (it has no "
            f"{META_KEY!r} entry); read its arrays with np.load({path!r})"
        )
    try:
        meta = json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8"))
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CheckpointError(_corrupt(path, e)) from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"load: {path!r} has an unknown format marker, not {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"load: {path!r} is checkpoint format version {meta.get('version')!r}, this "
            f"version of tinygrad_edu reads version {VERSION}; upgrade tinygrad_edu"
        )
    try:
        return _decode(meta["tree"], arrays)
    except (KeyError, TypeError, IndexError) as e:
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

"""Text data for the character-level language model: tokenizer, corpus, splits and batches.

Chapter 11 ("The character-level Transformer LM") builds this module. A language model learns
``p(next character | previous characters)`` from one long string, so the whole data pipeline is:

1. **load** the corpus (:func:`load_corpus`): tiny Shakespeare, 1,115,394 characters;
2. **tokenize** it (:class:`CharTokenizer`): every distinct character gets an integer id;
3. **split** it (:func:`train_val_split`): the first 90% trains, the last 10% validates (a
   contiguous split, so validation text is text the model has never seen, not shuffled lines);
4. **batch** it (:func:`get_batch`): ``B`` random windows of ``T + 1`` characters; the input is the
   first ``T``, the target the last ``T`` (the same window shifted by one), so one window gives
   ``T`` training examples, one per position.

Where the corpus comes from, first match wins:

=========================================  =====================================================
``load_corpus(path)`` / ``--data PATH``    the file you name
``$TINYGRAD_EDU_DATA``                     the file it names (tests and CI set it)
the cache                                  ``~/.cache/tinygrad_edu/tinyshakespeare.txt``
                                           (``$TINYGRAD_EDU_CACHE`` names another directory)
one download                               ``$TINYGRAD_EDU_DATA_URL`` or the char-rnn repository's
                                           raw URL, short timeout, md5 checked, written to the
                                           cache atomically
the bundled corpus                         ``tinygrad_edu/corpus/book.txt``, the book's own text,
                                           used offline, with a message saying so
=========================================  =====================================================

Everything here works on the host (plain Python and NumPy integer arrays); a batch is moved to its
device once, as a whole, by :func:`get_batch`. Random windows come from the framework's generator
(``backend.rng()``), so ``tg.manual_seed`` fixes the batches as it fixes the initial weights.

Read next: ``models/char_transformer.py``.

>>> tok = CharTokenizer("hello world")
>>> tok.vocab_size, tok.encode("hell"), tok.decode(tok.encode("low"))
(8, [3, 2, 4, 4], 'low')
"""

from __future__ import annotations

import collections
import hashlib
import os
import urllib.request
from pathlib import Path

import numpy as np  # host-side only: token ids live on the host until a batch is moved

from . import backend
from .tensor import Tensor

TINYSHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
TINYSHAKESPEARE_MD5 = "6fb458f1232090904fb40fe944165e91"
CACHE_NAME = "tinyshakespeare.txt"
BUNDLED_CORPUS = Path(__file__).parent / "corpus" / "book.txt"


class DataError(ValueError):
    """Bad data input: the message is one line and says what to do."""


# BERT's special tokens (chapter 15): padding, classification, separator, mask
SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")


# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------


class CharTokenizer:
    """Characters <-> integer ids, the vocabulary being the sorted distinct characters of a text.

    ``encode`` maps a string to a list of ids, ``decode`` maps ids back to a string, and
    ``decode(encode(s)) == s`` for every string made of vocabulary characters. Sorting makes the
    vocabulary depend only on *which* characters occur, so the same corpus always gives the same
    ids. ``to_dict``/``from_dict`` store it beside the weights in a checkpoint: a model is useless
    without the exact id of every character it was trained on.

    ``special_tokens`` (chapter 15, for the BERT encoder), e.g. :data:`SPECIAL_TOKENS`, adds
    tokens that are not characters of the text: ``[PAD]`` fills a short sequence up to the
    batch's length, ``[CLS]`` starts every sequence (its output vector is the one a classifier
    reads), ``[SEP]`` ends it, ``[MASK]`` hides a character the model must guess. They get the
    ids *after* the characters', so the characters' ids are the same with or without them.
    ``encode`` reads characters only (the text ``"[PAD]"`` is five characters); ``decode``
    writes a special id as its name.

    >>> tok = CharTokenizer("abcab")
    >>> tok.chars, tok.vocab_size
    (['a', 'b', 'c'], 3)
    >>> CharTokenizer.from_dict(tok.to_dict()).decode([2, 0])
    'ca'
    >>> tok = CharTokenizer("abcab", special_tokens=SPECIAL_TOKENS)
    >>> tok.vocab_size, tok.encode("ca"), tok.pad_id, tok.mask_id
    (7, [2, 0], 3, 6)
    >>> tok.decode([tok.cls_id, 2, 0, tok.mask_id])
    '[CLS]ca[MASK]'
    """

    def __init__(self, text: str = "", chars=None, special_tokens=()):
        if chars is None:
            chars = sorted(set(text))
        self.chars = list(chars)
        if not self.chars:
            raise DataError("CharTokenizer: the text is empty, so there is no vocabulary")
        if len(set(self.chars)) != len(self.chars):  # e.g. an edited checkpoint's tokenizer
            twice = [c for c, n in collections.Counter(self.chars).items() if n > 1]
            raise DataError(
                f"CharTokenizer: the characters must be distinct (one id each), but "
                f"{', '.join(map(repr, twice))} appear more than once"
            )
        self.special_tokens = list(special_tokens)
        for token in self.special_tokens:
            if not isinstance(token, str) or len(token) < 2:
                raise DataError(
                    f"CharTokenizer: special token {token!r} must be a string of 2 or more "
                    "characters (such as '[PAD]'), so that it can never be read as one character"
                )
        if len(set(self.special_tokens)) != len(self.special_tokens):
            raise DataError(
                f"CharTokenizer: special tokens must be distinct, got {self.special_tokens}"
            )
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        # special tokens come after the characters, so every character keeps the id it has
        # without them (a GPT's checkpoint and a BERT's share the ids of their characters)
        self.itos = dict(enumerate(self.chars + self.special_tokens))
        self.special_ids = {t: len(self.chars) + k for k, t in enumerate(self.special_tokens)}

    @property
    def vocab_size(self) -> int:
        """Characters plus special tokens: the number of rows of the embedding table."""
        return len(self.chars) + len(self.special_tokens)

    def special_id(self, token: str) -> int:
        """The id of a special token, e.g. ``special_id("[MASK]")``."""
        if token not in self.special_ids:
            raise DataError(
                f"CharTokenizer: no special token {token!r} (it has {self.special_tokens}); "
                f"build it with special_tokens=SPECIAL_TOKENS"
            )
        return self.special_ids[token]

    # the ids of SPECIAL_TOKENS as attributes: tok.pad_id is tok.special_id("[PAD]")
    pad_id = property(lambda self: self.special_id("[PAD]"))
    cls_id = property(lambda self: self.special_id("[CLS]"))
    sep_id = property(lambda self: self.special_id("[SEP]"))
    mask_id = property(lambda self: self.special_id("[MASK]"))

    def encode(self, text: str) -> list[int]:
        """String -> list of ids; characters outside the vocabulary are an error listing them."""
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            unknown = sorted(set(text) - set(self.stoi))
            raise DataError(
                f"the text contains {len(unknown)} character(s) not in the model's vocabulary: "
                f"{', '.join(repr(c) for c in unknown)}; use only characters of the training "
                "corpus"
            ) from None

    def decode(self, ids) -> str:
        """Ids (a list, a NumPy array or a 1-D Tensor) -> string."""
        # --- exercise 5.2: decoding ids ---
        if isinstance(ids, Tensor):
            ids = ids.numpy()
        return "".join(self.itos[int(i)] for i in np.asarray(ids).reshape(-1))
        # --- end exercise ---

    def to_dict(self) -> dict:
        """The vocabulary as one string (and the special tokens, if any, one per line), for a
        checkpoint (``from_dict`` inverts it)."""
        d = {"chars": "".join(self.chars)}
        if self.special_tokens:
            d["special_tokens"] = "\n".join(self.special_tokens)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CharTokenizer:
        def as_str(value):
            return value if isinstance(value, str) else str(np.asarray(value).reshape(()).item())

        specials = as_str(d["special_tokens"]).split("\n") if "special_tokens" in d else ()
        return cls(chars=list(as_str(d["chars"])), special_tokens=specials)

    def __repr__(self) -> str:
        extra = f", special_tokens={self.special_tokens}" if self.special_tokens else ""
        return f"CharTokenizer(vocab_size={self.vocab_size}{extra})"


# ---------------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where the downloaded corpus is kept: ``$TINYGRAD_EDU_CACHE`` or ``~/.cache/tinygrad_edu``."""
    env = os.environ.get("TINYGRAD_EDU_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tinygrad_edu"


def read_text(path) -> str:
    """Read a UTF-8 text file, with a one-line error for a missing, unreadable or empty file."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(f"data file {str(path)!r} is a directory; pass a text file inside it")
    if not path.exists():
        raise DataError(f"data file {str(path)!r} does not exist; pass an existing text file")
    if not path.is_file():  # /dev/null, a named pipe, a socket: nothing to train on, or no end
        raise DataError(f"data file {str(path)!r} is not a regular file; pass a text file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(
            f"cannot read data file {str(path)!r} as UTF-8 text ({type(e).__name__}); "
            "pass a plain UTF-8 text file"
        ) from None
    if not text:
        raise DataError(f"data file {str(path)!r} is empty; pass a file with text in it")
    return text


def download(url: str, dest: Path, md5: str | None = TINYSHAKESPEARE_MD5, timeout=10.0) -> str:
    """Fetch ``url`` once, check its md5, and write it to ``dest`` atomically; return the text.

    Atomically: the bytes go to a temporary file in the same directory that is then renamed over
    ``dest`` (``os.replace``), so an interrupted download never leaves a half file that a later
    run would take for the corpus. A checksum mismatch writes nothing and raises
    :class:`DataError`; network errors propagate as ``OSError`` (``URLError`` is one).
    """
    with urllib.request.urlopen(url, timeout=timeout) as response:
        payload = response.read()
    got = hashlib.md5(payload).hexdigest()
    if md5 is not None and got != md5:
        raise DataError(
            f"the file downloaded from {url} failed its checksum (md5 {got}, expected {md5}) "
            "and was not cached; retry, or download it yourself and pass --data PATH"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(payload)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return payload.decode("utf-8")


def load_corpus(path=None, url: str | None = None, timeout: float = 10.0, log=print) -> str:
    """The training text: ``path``, else ``$TINYGRAD_EDU_DATA``, else the cache, else one
    download (``url``, else ``$TINYGRAD_EDU_DATA_URL``, else tiny Shakespeare's), else, offline,
    the corpus bundled with the package. ``log`` receives one line saying where the text came
    from (``log=None`` keeps quiet).

    >>> text = load_corpus(BUNDLED_CORPUS, log=None)
    >>> len(text) > 10_000
    True
    """
    say = log or (lambda *a: None)
    if path is None and os.environ.get("TINYGRAD_EDU_DATA"):
        path = os.environ["TINYGRAD_EDU_DATA"]
        try:
            text = read_text(path)
        except DataError as e:  # say where the path came from: no --data was given
            raise DataError(f"$TINYGRAD_EDU_DATA: {e}, or unset the variable") from None
        say(f"data: {path} ({len(text):,} characters, from $TINYGRAD_EDU_DATA)")
        return text
    if path is not None:
        text = read_text(path)
        say(f"data: {path} ({len(text):,} characters)")
        return text
    cached = cache_dir() / CACHE_NAME
    if cached.is_file() and cached.stat().st_size > 0:
        text = read_text(cached)
        say(f"data: {cached} ({len(text):,} characters, cached)")
        return text
    url = url or os.environ.get("TINYGRAD_EDU_DATA_URL") or TINYSHAKESPEARE_URL
    try:
        say(f"data: downloading tiny Shakespeare from {url} (once; cached in {cached})")
        text = download(url, cached, md5=TINYSHAKESPEARE_MD5, timeout=timeout)
        say(f"data: {cached} ({len(text):,} characters, downloaded)")
        return text
    except OSError as e:  # no network, DNS failure, refused connection, timeout, HTTP error
        reason = getattr(e, "reason", None) or e
        say(
            f"data: could not download {url} ({reason}); offline, so training on the corpus "
            f"bundled with the package ({BUNDLED_CORPUS.name}, the book's own text), not on "
            "Shakespeare. Pass --data PATH or set TINYGRAD_EDU_DATA to use another text"
        )
        return read_text(BUNDLED_CORPUS)


# ---------------------------------------------------------------------------------------------
# Splits and batches
# ---------------------------------------------------------------------------------------------


def train_val_split(ids, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """The first ``1 - val_fraction`` of the ids trains, the rest validates (nanoGPT's split).

    >>> train, val = train_val_split(list(range(10)))
    >>> train.tolist(), val.tolist()
    ([0, 1, 2, 3, 4, 5, 6, 7, 8], [9])
    """
    ids = np.asarray(ids, dtype=np.int64)
    n = int(len(ids) * (1.0 - val_fraction))
    return ids[:n], ids[n:]


def check_length(split_data, block_size: int, name: str = "corpus") -> None:
    """A split must hold at least ``block_size + 1`` ids: one window of input plus its target."""
    if len(split_data) < block_size + 1:
        raise DataError(
            f"the {name} has {len(split_data)} characters, fewer than block_size + 1 = "
            f"{block_size + 1}; use a longer text (--data PATH) or a smaller --block-size"
        )


def get_batch(split_data, batch_size: int, block_size: int, device=None) -> tuple[Tensor, Tensor]:
    """``batch_size`` random windows of a split: inputs ``x`` and targets ``y``, both (B, T) int64.

    ``y[b, t] = x[b, t + 1]``: the target at each position is the next character, so the model
    is trained on every prefix length 1..T at once. The windows are cut on the host with the
    framework's generator and the two arrays moved to ``device`` once.

    >>> import tinygrad_edu as tg
    >>> tg.manual_seed(0)
    >>> x, y = get_batch(list(range(100)), batch_size=2, block_size=4)
    >>> x.shape, y.dtype, bool((x.numpy()[:, 1:] == y.numpy()[:, :-1]).all())
    ((2, 4), 'int64', True)
    """
    data = np.asarray(split_data, dtype=np.int64)
    check_length(data, block_size, "split")
    starts = backend.rng().integers(0, len(data) - block_size, size=batch_size)  # (B,)
    offsets = np.arange(block_size)  # (T,)
    x = data[starts[:, None] + offsets[None, :]]  # (B, T): the inputs
    y = data[starts[:, None] + offsets[None, :] + 1]  # (B, T): the same windows shifted by one
    return Tensor(x, device=device), Tensor(y, device=device)


def pad_batch(sequences, padding_value: int, max_len: int | None = None, device=None):
    """Stack sequences of different lengths into one batch: ``(ids, key_padding_mask)``.

    ``sequences``: a list of B id sequences (lists or 1-D integer arrays), lengths ``L_b >= 1``.
    Returns ``ids`` (B, T) int64 with ``T = max_len or max(L_b)``, each row its sequence followed
    by ``padding_value``, and ``key_padding_mask`` (B, T) bool, True at the padding positions (the
    convention of ``nn.MultiHeadAttention``'s ``key_padding_mask``). This is
    ``torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True, padding_value=...)`` with the
    mask returned beside it, because the mask is what lets attention ignore the padding (chapter
    15). Both are built on the host and moved to ``device`` once.

    >>> ids, pad = pad_batch([[5, 6, 7], [8]], padding_value=0)
    >>> ids.tolist(), pad.tolist()
    ([[5, 6, 7], [8, 0, 0]], [[False, False, False], [False, True, True]])
    """
    if len(sequences) == 0:
        raise DataError("pad_batch: got no sequences; pass a list of at least one id sequence")
    rows = [np.asarray(s) for s in sequences]
    for b, row in enumerate(rows):
        if row.ndim != 1 or row.size == 0 or not np.issubdtype(row.dtype, np.integer):
            raise DataError(
                f"pad_batch: sequence {b} has shape {row.shape} and dtype {row.dtype}; expected "
                "a non-empty 1-D sequence of integer ids"
            )
    lengths = np.array([row.size for row in rows])  # (B,)
    T = int(lengths.max()) if max_len is None else int(max_len)
    if lengths.max() > T:
        raise DataError(
            f"pad_batch: sequence {int(lengths.argmax())} has length {int(lengths.max())}, more "
            f"than max_len={T}; crop it or raise max_len"
        )
    ids = np.full((len(rows), T), padding_value, dtype=np.int64)  # (B, T)
    for b, row in enumerate(rows):
        ids[b, : row.size] = row
    key_padding_mask = np.arange(T)[None, :] >= lengths[:, None]  # (B, T): True past the end
    return Tensor(ids, device=device), Tensor(key_padding_mask, device=device)

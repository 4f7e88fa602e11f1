"""Tests of tinygrad_edu.data: tokenizer, corpus loading (path, env, cache, download, offline),
splits and batches. The download path is tested against a local HTTP server, never the internet."""

import hashlib
import http.server
import os
import socket
import threading

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import data
from tinygrad_edu.data import CharTokenizer, DataError

pytestmark = pytest.mark.ch11


# ---- tokenizer -------------------------------------------------------------------------------


def test_tokenizer_round_trip_and_sorted_vocab():
    text = "To be, or not to be: that is the question.\nÆ→ unicode too"
    tok = CharTokenizer(text)
    assert tok.chars == sorted(set(text))
    assert tok.vocab_size == len(set(text))
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text
    assert tok.decode(np.asarray(ids)) == text
    assert tok.decode(tg.tensor(np.asarray(ids, dtype=np.int64))) == text
    again = CharTokenizer.from_dict(tok.to_dict())
    assert again.chars == tok.chars and again.encode("question") == tok.encode("question")


def test_tokenizer_unknown_characters_error_lists_them():
    tok = CharTokenizer("abc")
    msg = r"2 character\(s\) not in the model's vocabulary: 'x', 'z'; use only characters"
    with pytest.raises(DataError, match=msg):
        tok.encode("abzcx")


def test_tokenizer_empty_text_error():
    with pytest.raises(DataError, match="empty"):
        CharTokenizer("")


def test_tokenizer_refuses_a_character_listed_twice():
    """An edited checkpoint's {"chars": "aabc"}: 'a' would have two ids, and id 0 no text."""
    with pytest.raises(DataError, match=r"must be distinct \(one id each\), but 'a' appear"):
        CharTokenizer.from_dict({"chars": "aabca"})


# ---- splits and batches ---------------------------------------------------------------------


def test_split_is_first_90_percent_then_last_10():
    ids = np.arange(1000)
    train, val = data.train_val_split(ids)
    assert len(train) == 900 and len(val) == 100
    assert train[0] == 0 and train[-1] == 899 and val[0] == 900 and val[-1] == 999


def test_get_batch_windows_targets_and_seed():
    ids = np.arange(500) * 3  # distinct values, so a window's start can be read back
    tg.manual_seed(7)
    x, y = data.get_batch(ids, batch_size=5, block_size=8)
    assert x.shape == (5, 8) and y.shape == (5, 8)
    assert x.dtype == "int64" and y.dtype == "int64"
    xn, yn = x.numpy(), y.numpy()
    for b in range(5):
        start = xn[b, 0] // 3
        np.testing.assert_array_equal(xn[b], ids[start : start + 8])
        np.testing.assert_array_equal(yn[b], ids[start + 1 : start + 9])
    tg.manual_seed(7)
    x2, _ = data.get_batch(ids, batch_size=5, block_size=8)
    np.testing.assert_array_equal(x2.numpy(), xn)
    x3, _ = data.get_batch(ids, batch_size=5, block_size=8)
    assert not np.array_equal(x3.numpy(), xn)


def test_get_batch_covers_last_window():
    # the last valid window starts at len - block_size - 1; a tiny split must reach it
    ids = np.arange(6)
    tg.manual_seed(0)
    starts = {int(data.get_batch(ids, 64, 4)[0].numpy()[b, 0]) for b in range(64)}
    assert starts == {0, 1}


def test_get_batch_too_short_error():
    with pytest.raises(DataError, match=r"fewer than block_size \+ 1 = 9; use a longer text"):
        data.get_batch(np.arange(8), batch_size=2, block_size=8)


# ---- corpus loading ----------------------------------------------------------------------------


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $TINYGRAD_EDU_DATA, an empty cache dir, and no URL override."""
    monkeypatch.delenv("TINYGRAD_EDU_DATA", raising=False)
    monkeypatch.delenv("TINYGRAD_EDU_DATA_URL", raising=False)
    monkeypatch.setenv("TINYGRAD_EDU_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_load_corpus_path_then_env(isolated, monkeypatch):
    a = isolated / "a.txt"
    b = isolated / "b.txt"
    a.write_text("from the argument", encoding="utf-8")
    b.write_text("from the environment", encoding="utf-8")
    monkeypatch.setenv("TINYGRAD_EDU_DATA", str(b))
    lines = []
    assert data.load_corpus(a, log=lines.append) == "from the argument"
    assert data.load_corpus(log=lines.append) == "from the environment"
    assert str(b) in lines[-1]


def test_load_corpus_uses_cache_before_download(isolated):
    cache = isolated / "cache"
    cache.mkdir()
    (cache / data.CACHE_NAME).write_text("cached text", encoding="utf-8")
    # a URL nobody serves: reaching it would fail the test by returning the bundled corpus
    assert data.load_corpus(url=f"http://127.0.0.1:{_closed_port()}/x", log=None) == "cached text"


def test_missing_and_empty_file_errors(isolated):
    with pytest.raises(DataError, match="does not exist; pass an existing text file"):
        data.load_corpus(isolated / "nope.txt", log=None)
    empty = isolated / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="is empty; pass a file with text in it"):
        data.load_corpus(empty, log=None)


def test_a_bad_path_in_the_environment_names_the_variable(isolated, monkeypatch):
    monkeypatch.setenv("TINYGRAD_EDU_DATA", str(isolated / "nowhere.txt"))
    with pytest.raises(DataError, match=r"^\$TINYGRAD_EDU_DATA: data file .*nowhere.txt' does not"):
        data.load_corpus(log=None)


@pytest.mark.skipif(not os.path.exists(os.devnull), reason="needs a device file")
def test_a_file_that_is_not_a_regular_file(isolated):
    with pytest.raises(DataError, match=r"is not a regular file; pass a text file"):
        data.load_corpus(os.devnull, log=None)


class _Server:
    """A local HTTP server in a thread serving ``body`` at every path."""

    def __init__(self, body: bytes):
        self.hits = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/input.txt"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _closed_port() -> int:
    """A local port nothing listens on: bind one, note it, close it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_checks_md5_caches_atomically_and_only_once(isolated, monkeypatch):
    body = b"A small stand-in corpus served locally.\n" * 50
    monkeypatch.setattr(data, "TINYSHAKESPEARE_MD5", hashlib.md5(body).hexdigest())
    with _Server(body) as server:
        monkeypatch.setenv("TINYGRAD_EDU_DATA_URL", server.url)
        lines = []
        text = data.load_corpus(log=lines.append)
        assert text == body.decode()
        cached = isolated / "cache" / data.CACHE_NAME
        assert cached.read_bytes() == body
        assert [p.name for p in cached.parent.iterdir()] == [data.CACHE_NAME]  # no temp file left
        assert any("downloaded" in s for s in lines)
        assert data.load_corpus(log=None) == text
        assert server.hits == 1  # the second call read the cache


def test_download_checksum_mismatch_is_an_error_and_caches_nothing(isolated):
    body = b"not the corpus you are looking for\n"
    with _Server(body) as server:
        with pytest.raises(DataError, match=r"failed its checksum \(md5 [0-9a-f]{32}, expected "):
            data.load_corpus(url=server.url, log=None)
    assert not (isolated / "cache" / data.CACHE_NAME).exists()
    assert not any((isolated / "cache").glob("*"))


def test_offline_falls_back_to_bundled_corpus_and_says_so(isolated):
    lines = []
    text = data.load_corpus(url=f"http://127.0.0.1:{_closed_port()}/input.txt", log=lines.append)
    assert text == data.BUNDLED_CORPUS.read_text(encoding="utf-8")
    assert "offline" in lines[-1] and "bundled" in lines[-1]
    assert not (isolated / "cache" / data.CACHE_NAME).exists()


def test_bundled_corpus_is_usable_and_not_shakespeare():
    text = data.BUNDLED_CORPUS.read_text(encoding="utf-8")
    assert len(text) >= 20 * 65  # many blocks of the default block size
    assert "Before we proceed any further" not in text
    train, val = data.train_val_split(CharTokenizer(text).encode(text))
    data.check_length(val, 64, "validation split")  # must not raise

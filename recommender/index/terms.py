"""The terms of every event: BM25 tokens and proper names as sparse count matrices, and BM25 computed from them."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.index.layout import IndexMeta, damaged, read_file

VERSION = 1  # of what this code makes of a ready list: bump it when a change can alter one (`rank/fingerprint.py`)


def bm25s_module() -> Any:
    """bm25s, imported without numba. bm25s imports numba when it is installed (ranx needs it) for retrieval
    backends this project does not use (it scores from the saved matrices); numba and LLVM would cost every
    server worker about 100 MB."""
    if "bm25s" not in sys.modules and "numba" not in sys.modules:
        sys.modules["numba"] = None  # type: ignore[assignment]  # makes `import numba` raise ImportError
        try:
            import bm25s
        finally:
            del sys.modules["numba"]
    import bm25s

    return bm25s


def tokenize(texts: Sequence[str], progress: bool = False) -> list[list[str]]:
    """BM25 tokens: bm25s's English stop words and Snowball stems."""
    import Stemmer

    bm25s = bm25s_module()

    stemmer = Stemmer.Stemmer("english")
    tokens: list[list[str]] = bm25s.tokenize(
        list(texts), stopwords="en", stemmer=stemmer, return_ids=False, show_progress=progress
    )
    return tokens


@cache
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def stem(word: str) -> str:
    """One word's BM25 token (no stop-word test)."""
    return str(_stemmer().stemWord(word.lower()))


def tokenize_query(text: str) -> list[str]:
    """BM25 tokens of one text, as the index was built."""
    return tokenize([text])[0]


@dataclass
class Terms:
    """The terms of every event (its names, or its BM25 tokens) as an events x vocabulary matrix of counts."""

    matrix: sp.csr_matrix
    vocab: list[str]

    @property
    def rows(self) -> int:
        return int(self.matrix.shape[0])

    @classmethod
    def load(cls, folder: Path, stem: str, meta: IndexMeta | None = None) -> Terms:
        """`stem`.npz and `stem`.json, checked against `meta`; IndexLoadError naming the file when damaged."""
        arrays, words = f"{stem}.npz", f"{stem}.json"
        try:
            data = np.load(io.BytesIO(read_file(folder, meta, arrays)), allow_pickle=False)
            indptr, indices, values = data["indptr"], data["indices"], data["data"]
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise damaged(folder, f"{arrays} is unreadable ({str(exc)[:120]})") from None
        try:
            vocab = json.loads(read_file(folder, meta, words).decode("utf-8"))["vocab"]
            if not isinstance(vocab, list):
                raise TypeError("vocab is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise damaged(folder, f"{words} is unreadable ({str(exc)[:120]})") from None
        try:
            matrix = sp.csr_matrix((values, indices, indptr), shape=(len(indptr) - 1, len(vocab)))
        except (ValueError, TypeError) as exc:
            raise damaged(folder, f"{arrays} does not match {words} ({str(exc)[:120]})") from None
        return cls(matrix, vocab)

    def save(self, folder: Path, stem: str) -> None:
        m = self.matrix
        np.savez(folder / f"{stem}.npz", indptr=m.indptr.astype(np.int64), indices=m.indices, data=m.data)
        (folder / f"{stem}.json").write_text(json.dumps({"vocab": self.vocab}, ensure_ascii=False))

    @classmethod
    def assemble(cls, previous: Terms | None, source: np.ndarray, fresh: list[list[str]]) -> Terms:
        """Rows for a new index: row i is `previous` row `source[i]` where that is >= 0, else the next list of
        `fresh` terms. Terms no row uses any more leave the vocabulary."""
        vocab = {term: i for i, term in enumerate(previous.vocab)} if previous else {}
        rows, columns = [], []
        for row, terms in enumerate(fresh):
            for term in terms:
                rows.append(row)
                columns.append(vocab.setdefault(term, len(vocab)))
        ones = np.ones(len(rows), dtype=np.float32)
        added = sp.csr_matrix((ones, (rows, columns)), shape=(len(fresh), len(vocab)))  # duplicates summed
        kept = previous.matrix if previous else sp.csr_matrix((0, 0), dtype=np.float32)
        kept = sp.csr_matrix((kept.data, kept.indices, kept.indptr), shape=(kept.shape[0], len(vocab)))
        order = source.copy()
        order[source < 0] = kept.shape[0] + np.arange(len(fresh))
        matrix = sp.vstack([kept, added], format="csr")[order]
        used = np.unique(matrix.indices)
        renumber = np.zeros(len(vocab), dtype=np.int32)
        renumber[used] = np.arange(len(used), dtype=np.int32)
        terms = list(vocab)
        matrix = sp.csr_matrix((matrix.data, renumber[matrix.indices], matrix.indptr), shape=(len(order), len(used)))
        return cls(matrix, [terms[i] for i in used])


def write_bm25(folder: Path, tokens: Terms) -> None:
    """Save a bm25s index (read back with `load_bm25`) computed from the term counts of every event.

    The same scores as `bm25s.BM25().index(tokens)` with its default Lucene BM25 (tests check it), computed with
    array operations: bm25s counts terms document by document in Python, seconds on the full archive.
    """
    retriever = bm25s_module().BM25()
    counts = tokens.matrix
    n_docs, n_terms = counts.shape
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    average = float(lengths.mean()) if n_docs else 1.0
    df = np.bincount(counts.indices, minlength=n_terms)
    idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5))
    tf = counts.data.astype(np.float64)
    k1, b = retriever.k1, retriever.b
    norm = k1 * ((1 - b) + b * np.repeat(lengths, np.diff(counts.indptr)) / average)
    scores = sp.csr_matrix(
        ((idf[counts.indices] * tf / (norm + tf)).astype(np.float32), counts.indices, counts.indptr),
        shape=counts.shape,
    ).tocsc()
    retriever.scores = {"data": scores.data, "indices": scores.indices, "indptr": scores.indptr, "num_docs": n_docs}
    retriever.vocab_dict = {term: i for i, term in enumerate(tokens.vocab)}
    retriever.vocab_dict.setdefault("", n_terms)  # bm25s's own index adds the empty token too
    retriever.unique_token_ids_set = set(retriever.vocab_dict.values())
    retriever.nonoccurrence_array = None  # only the bm25l and bm25+ variants use it
    retriever.save(str(folder))


def load_bm25(folder: Path, mmap: bool = False) -> Any:
    """The bm25s index saved in `folder` (`mmap`: its arrays mapped read-only, shared between processes)."""
    retriever = bm25s_module().BM25.load(str(folder), mmap=mmap)
    # plain views of the maps: numpy's memmap subclass costs a Python call on every element read
    retriever.scores = {k: np.asarray(v) if isinstance(v, np.memmap) else v for k, v in retriever.scores.items()}
    return retriever


def document_frequency(retriever: Any, token: str) -> int:
    """How many events use the BM25 `token` (0 for one not in the vocabulary)."""
    term = retriever.vocab_dict.get(token)
    if term is None:
        return 0
    indptr = retriever.scores["indptr"]
    return int(indptr[term + 1] - indptr[term])


def bm25_scores(retriever: Any, tokens: list[str], count: int) -> np.ndarray:
    """BM25 score of each of `count` events for the query tokens (zeros when none is in the vocabulary)."""
    ids = retriever.get_tokens_ids(tokens)
    if not ids:
        return np.zeros(count, dtype=np.float32)
    return np.asarray(retriever.get_scores_from_ids(ids), dtype=np.float32)

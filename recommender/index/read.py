"""A saved index, loaded: `load_index(path)` checks it is whole and gives an `Index`, whose parts load on first use."""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import scipy.sparse as sp

from recommender.archive import event_text, link_key
from recommender.embed import Embedder
from recommender.index import layout
from recommender.index.layout import Columns, IndexLoadError, IndexMeta, damaged
from recommender.index.records import EventRecord, parse_record
from recommender.index.terms import Terms, bm25_scores, load_bm25
from recommender.names import extract_names


class Index:
    """A loaded index. Rows are events; `position[id]` gives the row."""

    def __init__(self, path: Path, meta: IndexMeta, columns: Columns):
        self.path = path
        self.meta = meta
        self.ids = columns.id
        self.headlines = columns.headline
        self.summaries = columns.summary
        self.text_sha = columns.text_sha
        self.day: np.ndarray = np.asarray(columns.date, dtype=np.int32)  # proleptic ordinal
        self.story_density: np.ndarray = np.asarray(columns.story_density, dtype=np.float32)
        self.position: dict[str, int] = {event_id: i for i, event_id in enumerate(self.ids)}
        self.aliases = columns.aliases

    def __len__(self) -> int:
        return len(self.ids)

    def text(self, row: int) -> str:
        return event_text(self.headlines[row], self.summaries[row])

    def date(self, row: int) -> dt.date:
        return dt.date.fromordinal(int(self.day[row]))

    # --- vectors ---------------------------------------------------------------------------------------
    @cached_property
    def _vectors(self) -> tuple[Any, np.ndarray]:
        try:
            flat, vectors = layout.read_vectors(self.path)
        except RuntimeError as exc:
            raise damaged(self.path, f"vectors.faiss cannot be read ({str(exc).splitlines()[0]})") from None
        if vectors.shape != (len(self.ids), self.meta.dim):
            raise damaged(self.path, "vectors.faiss does not match columns.json")
        return flat, vectors

    @property
    def vectors(self) -> np.ndarray:
        """All vectors as one (n, dim) float32 array of unit rows."""
        return self._vectors[1]

    # --- BM25 and names ---------------------------------------------------------------------------------
    @cached_property
    def bm25(self) -> Any:
        try:
            return load_bm25(self.path / layout.BM25)
        except Exception as exc:  # bm25s raises several kinds on damaged files
            raise damaged(self.path, f"bm25/ cannot be read ({exc})") from None

    def bm25_scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every event for the query tokens (zeros when none is in the vocabulary)."""
        return bm25_scores(self.bm25, tokens, len(self.ids))

    @cached_property
    def _names(self) -> Terms:
        return Terms.load(self.path, layout.NAMES)

    @property
    def names(self) -> sp.csr_matrix:
        """Binary (events x names) matrix."""
        return self._names.matrix

    @property
    def name_vocab(self) -> list[str]:
        return self._names.vocab

    @cached_property
    def name_lookup(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.name_vocab)}

    @cached_property
    def name_idf(self) -> np.ndarray:
        df = np.bincount(self.names.indices, minlength=len(self.name_vocab)).astype(np.float32)
        return np.log((1 + len(self.ids)) / (1 + df)).astype(np.float32)

    def names_of(self, row: int) -> np.ndarray:
        names = self.names
        return np.asarray(names.indices[names.indptr[row] : names.indptr[row + 1]])

    def name_ids(self, text: str) -> np.ndarray:
        lookup = self.name_lookup
        return np.asarray([lookup[n] for n in extract_names(text) if n in lookup], dtype=np.int64)

    # --- dates and lengths -----------------------------------------------------------------------------
    @cached_property
    def _date_order(self) -> tuple[np.ndarray, np.ndarray]:
        by_day = np.argsort(self.day, kind="stable")
        return by_day, self.day[by_day]

    def rows_within(self, day: int, days: int) -> np.ndarray:
        """Rows dated within `days` of `day` (a binary search over the rows in date order)."""
        by_day, sorted_days = self._date_order
        start, end = np.searchsorted(sorted_days, [day - days, day + days + 1])
        return by_day[start:end]

    @cached_property
    def text_lengths(self) -> np.ndarray:
        """Characters of headline plus summary of every event."""
        lengths = np.fromiter(map(len, self.headlines), dtype=np.int64, count=len(self))
        return (lengths + np.fromiter(map(len, self.summaries), dtype=np.int64, count=len(self))).astype(np.float32)

    # --- records ---------------------------------------------------------------------------------------
    @cached_property
    def _spans(self) -> np.ndarray:
        return np.load(self.path / layout.RECORD_SPANS)

    def record(self, row: int) -> EventRecord:
        """The full event at `row` (sources, curated Related with their links resolved) from records.jsonl."""
        start, end = (int(x) for x in self._spans[row])
        with open(self.path / layout.RECORDS, "rb") as handle:
            handle.seek(start)
            return parse_record(handle.read(end - start), self.resolve)

    def resolve(self, href: str) -> str | None:
        """The id of the indexed event a link points to, whatever its day padding or leading slash; else None."""
        key = link_key(href)
        return key if key in self.position else self.aliases.get(key)


def load_index(path: str | Path = layout.DEFAULT_INDEX) -> Index:
    """Load an index folder, checking that it is complete; raises IndexLoadError with how to rebuild."""
    folder = Path(path)
    if not (folder / layout.META).exists():
        raise IndexLoadError(
            f"no index at {folder}: build it with `recommender index --archive ARCHIVE --out {folder}`"
        )
    meta = IndexMeta.read(folder)
    if meta.format != layout.FORMAT_VERSION:
        raise damaged(folder, f"format {meta.format}, this version reads {layout.FORMAT_VERSION}")
    for name, size in meta.files.items():
        file = folder / name
        if not file.exists():
            raise damaged(folder, f"{name} is missing")
        if file.stat().st_size != size:
            raise damaged(folder, f"{name} has {file.stat().st_size} bytes, expected {size} (truncated?)")
    try:
        columns = Columns.read(folder)
    except orjson.JSONDecodeError as exc:
        raise damaged(folder, f"{layout.COLUMNS} is unreadable ({exc})") from None
    if len(columns.id) != meta.count:
        raise damaged(folder, f"{layout.COLUMNS} does not match {layout.META}")
    return Index(folder, meta, columns)


def check_model(index: Index, embedder: Embedder) -> None:
    """Stop with a clear message when the index was built with another model or backend."""
    if index.meta.model_fingerprint != embedder.fingerprint:
        raise IndexLoadError(
            f"index at {index.path} was built with model {index.meta.model} "
            f"({index.meta.model_fingerprint}), not the one loaded ({embedder.name}, {embedder.fingerprint}). "
            f"Rebuild it: recommender index --archive ARCHIVE --out {index.path} --model {embedder.model_choice} "
            f"--backend {embedder.backend}"
        )

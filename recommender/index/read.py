"""A saved index, loaded: `load_index(path)` checks it is whole and gives an `Index`, whose parts load on first use.

Each file is checked against its checksum in meta.json when it is first read. What is read stays in memory (the
records through the file opened at load), so an index rebuilt into the same folder never changes what
a loaded `Index` answers: load the new one to serve it.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import mmap
import os
from collections.abc import Callable
from contextlib import suppress
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import scipy.sparse as sp

from recommender.archive import event_text
from recommender.embed import Embedder
from recommender.index.layout import (
    BM25,
    COLUMNS,
    DEFAULT_INDEX,
    FORMAT_VERSION,
    META,
    NAMES,
    RECORDS,
    STORIES,
    Columns,
    IndexLoadError,
    IndexMeta,
    PackedStrings,
    damaged,
    load_spans,
    load_vectors,
    read_file,
    read_generic_words,
    verify,
)
from recommender.index.lists import ReadyLists
from recommender.index.records import EventRecord, parse_record, resolve_link, story_labels
from recommender.index.terms import Terms, bm25_scores, document_frequency, load_bm25
from recommender.names import extract_names, joined_of, not_names_of


class Index:
    """A loaded index. Rows are events; `position[id]` gives the row."""

    def __init__(self, path: Path, meta: IndexMeta, columns: Columns):
        self.path = path
        self.meta = meta
        self.ids = columns.id
        self.headlines = PackedStrings(columns.headline)
        self.summaries = PackedStrings(columns.summary)
        self.text_sha = PackedStrings(columns.text_sha)
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
    def vectors(self) -> np.ndarray:
        """All vectors as one (n, dim) float32 array of unit rows, a read-only map of vectors.npy (processes
        serving the index share it)."""
        return load_vectors(self.path, self.meta, len(self.ids))

    @cached_property
    def lists(self) -> ReadyLists | None:
        """The ready lists (mapped), or None when the index has none (`recommender index --no-lists`)."""
        return ReadyLists.load(self.path, self.meta)

    # --- BM25 and names ---------------------------------------------------------------------------------
    @cached_property
    def bm25(self) -> Any:
        for name in (n for n in self.meta.files if n.startswith(f"{BM25}/")):
            read_file(self.path, self.meta, name)
        try:
            return load_bm25(self.path / BM25, mmap=True)
        except Exception as exc:  # bm25s raises several kinds on damaged files  # noqa: BLE001
            raise damaged(self.path, f"bm25/ cannot be read ({str(exc)[:120]})") from None

    def bm25_scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every event for the query tokens (zeros when none is in the vocabulary)."""
        return bm25_scores(self.bm25, tokens, len(self.ids))

    def document_frequency(self, token: str) -> int:
        """How many events use the BM25 token."""
        return document_frequency(self.bm25, token)

    @cached_property
    def _names(self) -> Terms:
        terms = Terms.load(self.path, NAMES, self.meta)
        if terms.rows != len(self.ids):
            raise damaged(self.path, f"{NAMES}.npz does not match {COLUMNS}")
        return terms

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

    @cached_property
    def _word_roles(self) -> dict[str, Any]:
        """names.generic.json (`names.word_roles`), {} where the index has none."""
        return read_generic_words(self.path, self.meta) or {}

    @cached_property
    def generic_words(self) -> dict[str, float]:
        """The words the archive mostly writes in lower case, which names leave out (names.generic.json)."""
        shares = self._word_roles.get("shares")
        return dict(shares) if isinstance(shares, dict) else {}

    @cached_property
    def not_names(self) -> frozenset[str]:
        """The capitalised words the archive shows are never a name alone (`names.not_names_of`: `Libyan`, `AI`);
        none for an index built before names.VERSION 3 kept them."""
        return not_names_of(self._word_roles)

    @cached_property
    def joined_names(self) -> frozenset[str]:
        """The pairs of names the archive writes joined by `and` as one name (`names.joined_of`: `jammu and
        kashmir`); none for an index built before names.VERSION 4 kept them."""
        return joined_of(self._word_roles)

    def name_ids(self, text: str) -> np.ndarray:
        lookup = self.name_lookup
        names = extract_names(text, self.generic_words)
        return np.asarray([lookup[n] for n in names if n in lookup], dtype=np.int64)

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
    def _records(self) -> RecordsFile:
        """records.jsonl, opened once and checked (a rebuild that replaces the folder leaves the open file as it
        was)."""
        try:
            records = RecordsFile(self.path / RECORDS)
        except FileNotFoundError:
            raise damaged(self.path, f"{RECORDS} is missing") from None
        except OSError as exc:
            raise damaged(self.path, f"{RECORDS} cannot be read ({exc.strerror})") from None
        records.check(lambda data: verify(self.path, self.meta, RECORDS, data))
        return records

    @cached_property
    def _spans(self) -> np.ndarray:
        return load_spans(self.path, self.meta, len(self.ids), len(self._records))

    def record(self, row: int) -> EventRecord:
        """The full event at `row` (sources, curated Related with their links resolved) from records.jsonl."""
        start, end = (int(x) for x in self._spans[row])
        try:
            return parse_record(self._records[start:end], self.resolve)
        except (ValueError, KeyError, TypeError) as exc:  # only an index without checksums gets here
            raise damaged(self.path, f"{RECORDS} line of row {row} is unreadable ({str(exc)[:80]})") from None

    def load_all(self) -> None:
        """Read every file a query may need now (a server keeps serving them while the folder is rebuilt)."""
        _ = self.vectors, self.bm25, self.names, self.name_idf, self.name_lookup, self._records, self._spans
        _ = self.lists, self._stories

    def resolve(self, href: str) -> str | None:
        """The id of the indexed event a link points to, whatever its day padding or leading slash; else None."""
        return resolve_link(href, self.position, self.aliases)

    # --- story labels (for contexts only) --------------------------------------------------------------
    @cached_property
    def _stories(self) -> Terms:
        """stories.npz/.json; for an index built before them, read from every record once (about 1 s for the
        full archive)."""
        if f"{STORIES}.npz" in self.meta.files or (self.path / f"{STORIES}.npz").exists():
            terms = Terms.load(self.path, STORIES, self.meta)
            if terms.rows != len(self.ids):
                raise damaged(self.path, f"{STORIES}.npz does not match {COLUMNS}")
            return terms
        data, spans = self._records[0 : len(self._records)], self._spans
        links = []
        for start, end in spans.tolist():
            related = orjson.loads(data[start:end])["related"]
            links.append([(link["href"], link["context"]) for link in related])
        return Terms.assemble(None, np.full(len(self.ids), -1), story_labels(self.ids, links, self.resolve))

    def story_labels(self, row: int) -> list[str]:
        """The story labels editors use for the event at `row` (`records.story_labels`): shown as a context,
        never read by a ranking feature (they come from Related sections)."""
        stories = self._stories
        columns = stories.matrix.indices[stories.matrix.indptr[row] : stories.matrix.indptr[row + 1]]
        return [stories.vocab[c] for c in sorted(columns.tolist())]


class RecordsFile:
    """records.jsonl read a line at a time with `pread`, not mapped: a server process reading one record per
    request would otherwise keep every page it ever read counted in its own memory."""

    def __init__(self, path: Path):
        self._handle = open(path, "rb")  # noqa: SIM115 (open as long as the index is loaded)
        self.size = os.fstat(self._handle.fileno()).st_size

    def __len__(self) -> int:
        return self.size

    def check(self, verify_bytes: Callable[[memoryview], None]) -> None:
        """Hand the whole file to `verify_bytes` through a map that is closed after (its pages leave with it)."""
        if not self.size:
            verify_bytes(memoryview(b""))
            return
        with mmap.mmap(self._handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            view = memoryview(data)
            try:
                verify_bytes(view)
            finally:
                view.release()

    def __getitem__(self, span: slice) -> bytes:
        return os.pread(self._handle.fileno(), span.stop - span.start, span.start)


def load_index(path: str | Path = DEFAULT_INDEX) -> Index:
    """Load an index folder, checking that it is complete; raises IndexLoadError with how to rebuild."""
    folder = Path(path)
    if not (folder / META).exists():
        raise IndexLoadError(
            f"no index at {folder}: build it with `recommender index --archive ARCHIVE --out {folder}`"
        )
    meta = IndexMeta.read(folder)
    if meta.format != FORMAT_VERSION:
        raise damaged(folder, f"format {meta.format}, this version reads {FORMAT_VERSION}")
    for name, size in meta.files.items():
        file = folder / name
        if not file.exists():
            raise damaged(folder, f"{name} is missing")
        if file.stat().st_size != size:
            raise damaged(folder, f"{name} has {file.stat().st_size} bytes, expected {size} (truncated?)")
    columns = Columns.read(folder, meta)
    if len(columns.id) != meta.count:
        raise damaged(folder, f"{COLUMNS} does not match {META}")
    index = Index(folder, meta, columns)
    del columns
    _release_freed_memory()
    return index


def _release_freed_memory() -> None:
    """Hand the pages freed after parsing columns.json back to the system: glibc keeps freed small blocks in
    its heap, where they would count in each server process's memory for as long as it runs."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def check_model(index: Index, embedder: Embedder) -> None:
    """Stop with a clear message when the index was built with another model or backend."""
    if index.meta.model_fingerprint != embedder.fingerprint:
        raise IndexLoadError(
            f"index at {index.path} was built with model {index.meta.model} "
            f"({index.meta.model_fingerprint}), not the one loaded ({embedder.name}, {embedder.fingerprint}). "
            f"Rebuild it: recommender index --archive ARCHIVE --out {index.path} --model {embedder.model_choice} "
            f"--backend {embedder.backend}"
        )

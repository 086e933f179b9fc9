"""Build, save and load the on-disk index: vectors (FAISS), the id map, BM25 and the names of every event.

Layout of an index folder (default `models/default/`):
    meta.json            model name and weights fingerprint, dimension, counts, archive fingerprint, file sizes
    vectors.faiss        FAISS exact inner-product index of unit vectors (row i is event i)
    columns.json         id, date, headline, summary and text hash of every event, in row order
    records.jsonl        the full event (sources, curated Related) one per line, read by byte offset
    records.offsets.npy  byte offset of each line of records.jsonl
    bm25/                bm25s index over the same text the embedder sees
    names.npz names.json the names of each event (sparse rows) and their vocabulary

A build writes everything to a temporary folder and renames it into place, so a crash never leaves half an
index. Vectors of unchanged events (same model fingerprint, same text hash) are reused, not re-embedded.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.archive import Archive, Event
from recommender.embed import Embedder, text_hash
from recommender.names import extract_names

FORMAT_VERSION = 2
DEFAULT_INDEX = Path("models") / "default"
REQUIRED_FILES = (
    "vectors.faiss",
    "columns.json",
    "records.jsonl",
    "records.offsets.npy",
    "names.npz",
    "names.json",
)


class IndexLoadError(Exception):
    """The index is missing, damaged or built with another model; the message says how to rebuild."""


@dataclass
class IndexMeta:
    model: str
    model_fingerprint: str
    backend: str
    dim: int
    count: int
    archive: str
    archive_fingerprint: str
    built_at: str
    build_seconds: float = 0.0
    embedded: int = 0
    reused: int = 0
    format: int = FORMAT_VERSION
    files: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class EventRecord:
    """What the index knows of an event, read back from records.jsonl."""

    id: str
    date: dt.date
    headline: str
    summary: str
    sources: list[dict[str, Any]]
    related: list[dict[str, Any]]
    curated: list[str]


def _tokenize(texts: Sequence[str], progress: bool = False) -> list[list[str]]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    tokens: list[list[str]] = bm25s.tokenize(
        list(texts), stopwords="en", stemmer=stemmer, return_ids=False, show_progress=progress
    )
    return tokens


def tokenize_query(text: str) -> list[str]:
    """BM25 tokens of one text, as the index was built."""
    return _tokenize([text])[0]


class Index:
    """A loaded index. Rows are events; `position[id]` gives the row."""

    def __init__(self, path: Path, meta: IndexMeta, columns: dict[str, list[Any]]):
        self.path = path
        self.meta = meta
        self.ids: list[str] = columns["id"]
        self.headlines: list[str] = columns["headline"]
        self.summaries: list[str] = columns["summary"]
        self.text_sha: list[str] = columns["text_sha"]
        self.day: np.ndarray = np.asarray(columns["date"], dtype=np.int32)  # proleptic ordinal
        self.story_density: np.ndarray = np.asarray(columns["story_density"], dtype=np.float32)
        self.position: dict[str, int] = {event_id: i for i, event_id in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def text(self, row: int) -> str:
        return f"{self.headlines[row]} {self.summaries[row]}".strip()

    def date(self, row: int) -> dt.date:
        return dt.date.fromordinal(int(self.day[row]))

    @cached_property
    def faiss(self) -> Any:
        import faiss

        try:
            index = faiss.read_index(str(self.path / "vectors.faiss"))
        except RuntimeError as exc:
            raise _damaged(self.path, f"vectors.faiss cannot be read ({str(exc).splitlines()[0]})") from None
        if index.ntotal != len(self.ids) or index.d != self.meta.dim:
            raise _damaged(self.path, "vectors.faiss does not match columns.json")
        return index

    @cached_property
    def vectors(self) -> np.ndarray:
        """All vectors as one (n, dim) float32 array, a view on the FAISS index's storage (not a copy)."""
        import faiss

        flat = self.faiss
        if not len(self.ids):
            return np.zeros((0, self.meta.dim), dtype=np.float32)
        return faiss.rev_swig_ptr(flat.get_xb(), len(self.ids) * self.meta.dim).reshape(len(self.ids), self.meta.dim)

    @cached_property
    def bm25(self) -> Any:
        import bm25s

        try:
            return bm25s.BM25.load(str(self.path / "bm25"), mmap=False)
        except Exception as exc:  # bm25s raises several kinds on damaged files
            raise _damaged(self.path, f"bm25/ cannot be read ({exc})") from None

    def bm25_scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every event for the query tokens (zeros when none is in the vocabulary)."""
        ids = self.bm25.get_tokens_ids(tokens)
        if not ids:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self.bm25.get_scores_from_ids(ids), dtype=np.float32)

    @cached_property
    def names(self) -> sp.csr_matrix:
        """Binary (events x names) matrix."""
        data = np.load(self.path / "names.npz")
        indptr, indices = data["indptr"], data["indices"]
        ones = np.ones(len(indices), dtype=np.float32)
        return sp.csr_matrix((ones, indices, indptr), shape=(len(self.ids), len(self.name_vocab)))

    @cached_property
    def name_vocab(self) -> list[str]:
        return list(json.loads((self.path / "names.json").read_text())["vocab"])

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

    @cached_property
    def _offsets(self) -> np.ndarray:
        return np.load(self.path / "records.offsets.npy")

    def record(self, row: int) -> EventRecord:
        """The full event at `row` (sources, curated Related) from records.jsonl."""
        start = int(self._offsets[row])
        with open(self.path / "records.jsonl", "rb") as handle:
            handle.seek(start)
            raw = json.loads(handle.readline())
        raw["date"] = dt.date.fromisoformat(raw["date"])
        return EventRecord(**raw)


def _damaged(path: Path, why: str) -> IndexLoadError:
    return IndexLoadError(
        f"index at {path} is damaged: {why}. Rebuild it: recommender index --archive ARCHIVE --out {path}"
    )


def load_index(path: str | Path = DEFAULT_INDEX) -> Index:
    """Load an index folder, checking that it is complete; raises IndexLoadError with how to rebuild."""
    folder = Path(path)
    if not (folder / "meta.json").exists():
        raise IndexLoadError(
            f"no index at {folder}: build it with `recommender index --archive ARCHIVE --out {folder}`"
        )
    try:
        raw = json.loads((folder / "meta.json").read_text())
        meta = IndexMeta(**raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise _damaged(folder, f"meta.json is unreadable ({exc})") from None
    if meta.format != FORMAT_VERSION:
        raise _damaged(folder, f"format {meta.format}, this version reads {FORMAT_VERSION}")
    for name, size in meta.files.items():
        file = folder / name
        if not file.exists():
            raise _damaged(folder, f"{name} is missing")
        if file.stat().st_size != size:
            raise _damaged(folder, f"{name} has {file.stat().st_size} bytes, expected {size} (truncated?)")
    try:
        columns = json.loads((folder / "columns.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _damaged(folder, f"columns.json is unreadable ({exc})") from None
    if len(columns.get("id", [])) != meta.count:
        raise _damaged(folder, "columns.json does not match meta.json")
    return Index(folder, meta, columns)


def check_model(index: Index, embedder: Embedder) -> None:
    """Stop with a clear message when the index was built with another model or backend."""
    if index.meta.model_fingerprint != embedder.fingerprint:
        raise IndexLoadError(
            f"index at {index.path} was built with model {index.meta.model} "
            f"({index.meta.model_fingerprint}), not the one loaded ({embedder.name}, {embedder.fingerprint}). "
            f"Rebuild it: recommender index --archive ARCHIVE --out {index.path} --backend {embedder.backend}"
        )


@dataclass
class BuildReport:
    path: Path
    count: int
    embedded: int
    reused: int
    removed: int
    seconds: float
    embed_seconds: float

    @property
    def docs_per_second(self) -> float:
        return self.embedded / self.embed_seconds if self.embed_seconds > 0 else 0.0


@dataclass
class Previous:
    """What an index already at the output folder lets a rebuild reuse: vectors (same model) and names by
    text hash, story density by (id, date, text hash). Empty when there is none or it cannot be read."""

    ids: set[str] = field(default_factory=set)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)
    density: dict[tuple[str, int, str], int] = field(default_factory=dict)


def _previous(out: Path, fingerprint: str) -> Previous:
    """Read directly (not through load_index) so that an index of an older format still serves as a cache."""
    import faiss

    try:
        meta = json.loads((out / "meta.json").read_text())
        columns = json.loads((out / "columns.json").read_text())
        ids, hashes = list(columns["id"]), list(columns["text_sha"])
    except (OSError, ValueError, KeyError):
        return Previous()
    previous = Previous(ids=set(ids))
    if meta.get("format") == FORMAT_VERSION:  # names and density are computed as this version computes them
        try:
            data = np.load(out / "names.npz")
            vocab = json.loads((out / "names.json").read_text())["vocab"]
            indptr, indices = data["indptr"], data["indices"]
            previous.names = {h: [vocab[n] for n in indices[indptr[i] : indptr[i + 1]]] for i, h in enumerate(hashes)}
            previous.density = {
                key: int(d)
                for key, d in zip(zip(ids, columns["date"], hashes, strict=True), columns["story_density"], strict=True)
            }
        except (OSError, ValueError, KeyError, IndexError):
            previous.names, previous.density = {}, {}
    if meta.get("model_fingerprint") != fingerprint:
        return previous
    try:
        flat: Any = faiss.read_index(str(out / "vectors.faiss"))
    except RuntimeError:
        return previous
    if flat.ntotal == len(hashes):
        vectors = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d).copy()
        previous.vectors = dict(zip(hashes, vectors, strict=True))
    return previous


def build_index(
    archive: Archive,
    out: str | Path = DEFAULT_INDEX,
    embedder: Embedder | None = None,
    archive_name: str = "",
    progress: bool = False,
    reuse: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> BuildReport:
    """Embed every event of `archive` (reusing unchanged vectors) and write the index atomically to `out`."""
    import bm25s
    import faiss

    started = time.perf_counter()
    out = Path(out)
    embedder = embedder or Embedder()
    events: list[Event] = [archive.events[i] for i in sorted(archive.events)]
    if not events:
        raise IndexLoadError(f"archive {archive_name or '?'} holds no events: nothing to index")
    texts = [e.text for e in events]
    hashes = [text_hash(t) for t in texts]

    previous = _previous(out, embedder.fingerprint) if reuse else Previous()
    cache = previous.vectors
    todo = [i for i, h in enumerate(hashes) if h not in cache]
    log(f"embedding {len(todo)} of {len(events)} events ({len(events) - len(todo)} unchanged, reused)")
    embed_started = time.perf_counter()
    if todo:
        fresh = embedder.encode([texts[i] for i in todo], progress=progress)
    else:  # nothing changed: the model is not even loaded
        fresh = np.zeros((0, len(next(iter(cache.values())))), dtype=np.float32)
    embed_seconds = time.perf_counter() - embed_started
    dim = fresh.shape[1]
    vectors = np.empty((len(events), dim), dtype=np.float32)
    fresh_rows = dict(zip(todo, range(len(todo)), strict=True))
    for i, h in enumerate(hashes):
        vectors[i] = fresh[fresh_rows[i]] if i in fresh_rows else cache[h]

    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        flat = faiss.IndexFlatIP(dim)
        flat.add(vectors)
        faiss.write_index(flat, str(tmp / "vectors.faiss"))

        ids = [e.id for e in events]
        days = np.asarray([e.date.toordinal() for e in events], dtype=np.int32)
        columns = {
            "id": ids,
            "story_density": _story_density(vectors, days, ids, hashes, previous.density).tolist(),
            "date": [e.date.toordinal() for e in events],
            "headline": [e.headline for e in events],
            "summary": [e.summary for e in events],
            "text_sha": hashes,
        }
        (tmp / "columns.json").write_text(json.dumps(columns, ensure_ascii=False))
        _write_records(tmp, events, archive)

        log("indexing BM25 and names")
        retriever = bm25s.BM25()
        retriever.index(_tokenize(texts), show_progress=False)
        retriever.save(str(tmp / "bm25"))
        _write_names(tmp, texts, hashes, previous.names)

        meta = IndexMeta(
            model=embedder.name,
            model_fingerprint=embedder.fingerprint,
            backend=embedder.backend,
            dim=dim,
            count=len(events),
            archive=archive_name,
            archive_fingerprint=archive.fingerprint,
            built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            build_seconds=round(time.perf_counter() - started, 2),
            embedded=len(todo),
            reused=len(events) - len(todo),
            files={name: (tmp / name).stat().st_size for name in REQUIRED_FILES},
        )
        (tmp / "meta.json").write_text(json.dumps(asdict(meta), indent=2))
        _replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    removed = len(previous.ids - set(ids))
    return BuildReport(
        out,
        len(events),
        len(todo),
        len(events) - len(todo),
        removed,
        time.perf_counter() - started,
        embed_seconds,
    )


def story_density(
    vectors: np.ndarray, days: np.ndarray, window: int = 7, threshold: float = 0.5, only_days: set[int] | None = None
) -> np.ndarray:
    """For each event, how many others within `window` days are similar (cosine >= threshold) to it.

    Events of an ongoing story have many such neighbours; one-off items have few. Text and dates only.
    `only_days`: compute just the events of these days (the others are left at 0).
    """
    order = np.argsort(days, kind="stable")
    sorted_days = days[order]
    counts = np.zeros(len(days), dtype=np.int32)
    for day in np.unique(sorted_days):
        if only_days is not None and int(day) not in only_days:
            continue
        lo, hi = np.searchsorted(sorted_days, day, "left"), np.searchsorted(sorted_days, day, "right")
        start = np.searchsorted(sorted_days, day - window, "left")
        end = np.searchsorted(sorted_days, day + window, "right")
        similar = vectors[order[lo:hi]] @ vectors[order[start:end]].T >= threshold
        counts[order[lo:hi]] = similar.sum(axis=1) - 1  # not itself
    return counts


def _story_density(
    vectors: np.ndarray,
    days: np.ndarray,
    ids: list[str],
    hashes: list[str],
    previous: dict[tuple[str, int, str], int],
    window: int = 7,
) -> np.ndarray:
    """`story_density`, recomputed only for the days within `window` of an added, changed or removed event."""
    keys = list(zip(ids, days.tolist(), hashes, strict=True))
    if not previous:
        return story_density(vectors, days, window)
    changed = {key[1] for key in keys if key not in previous} | {key[1] for key in previous.keys() - set(keys)}
    affected = {day + offset for day in changed for offset in range(-window, window + 1)}
    counts = story_density(vectors, days, window, only_days=affected)
    for row, key in enumerate(keys):
        if key[1] not in affected:
            counts[row] = previous[key]
    return counts


def _write_records(folder: Path, events: list[Event], archive: Archive) -> None:
    offsets = np.zeros(len(events), dtype=np.int64)
    with open(folder / "records.jsonl", "wb") as handle:
        for i, event in enumerate(events):
            offsets[i] = handle.tell()
            record = {
                "id": event.id,
                "date": event.date.isoformat(),
                "headline": event.headline,
                "summary": event.summary,
                "sources": [{"name": s.name, "url": s.url} for s in event.sources],
                "related": [
                    {
                        "text": r.text,
                        "href": r.href,
                        "context": list(r.context),
                        "id": archive.resolve(r.href),
                    }
                    for r in event.related
                ],
                "curated": archive.curated_ids(event),
            }
            handle.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
    np.save(folder / "records.offsets.npy", offsets)


def _write_names(folder: Path, texts: list[str], hashes: list[str], previous: dict[str, list[str]]) -> None:
    """The names of each text (reused by text hash from the previous index where it has them)."""
    vocab: dict[str, int] = {}
    indptr = [0]
    indices: list[int] = []
    for text, sha in zip(texts, hashes, strict=True):
        names = previous[sha] if sha in previous else extract_names(text)
        row = sorted({vocab.setdefault(name, len(vocab)) for name in names})
        indices.extend(row)
        indptr.append(len(indices))
    np.savez(
        folder / "names.npz",
        indptr=np.asarray(indptr, dtype=np.int64),
        indices=np.asarray(indices, dtype=np.int32),
    )
    (folder / "names.json").write_text(json.dumps({"vocab": list(vocab)}, ensure_ascii=False))


def _replace(tmp: Path, out: Path) -> None:
    """Swap the new index into place; the old one is removed only once the new one is there."""
    out.parent.mkdir(parents=True, exist_ok=True)
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)

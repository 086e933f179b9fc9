"""Build, save and load the on-disk index: vectors (FAISS), the id map, BM25 and the names of every event.

Layout of an index folder (default `models/default/`):
    meta.json            model name and weights fingerprint, dimension, counts, archive fingerprint, file sizes
    vectors.faiss        FAISS exact inner-product index of unit vectors (row i is event i)
    columns.json         id, date, headline, summary, text hash and file digest of every event, in row order
    records.jsonl        the full event (sources, curated Related) one per line, read by byte offset
    records.offsets.npy  (start, end) byte span of each row's line in records.jsonl
    bm25/                bm25s index over the same text the embedder sees
    tokens.npz .json     the BM25 term counts of each event (sparse rows) and their vocabulary
    names.npz names.json the names of each event (sparse rows) and their vocabulary

A build writes everything to a temporary folder and renames it into place, so a crash never leaves half an
index. An update reuses, row by row, what the index at the output folder already holds for unchanged events:
vectors, names and BM25 terms by text hash (same model), the records.jsonl line by file digest. Curated links
are stored as written and resolved to ids when read, so a record never goes stale when other events come or go.
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
import orjson
import scipy.sparse as sp

from recommender.archive import Archive, Event, link_key
from recommender.embed import Embedder, text_hash
from recommender.names import extract_names

FORMAT_VERSION = 3
DEFAULT_INDEX = Path("models") / "default"
REQUIRED_FILES = (
    "vectors.faiss",
    "columns.json",
    "records.jsonl",
    "records.offsets.npy",
    "names.npz",
    "names.json",
    "tokens.npz",
    "tokens.json",
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


@dataclass
class Terms:
    """The terms of every event (its names, or its BM25 tokens) as an events x vocabulary matrix of counts."""

    matrix: sp.csr_matrix
    vocab: list[str]

    @property
    def rows(self) -> int:
        return int(self.matrix.shape[0])

    @classmethod
    def load(cls, folder: Path, stem: str) -> Terms:
        data = np.load(folder / f"{stem}.npz")
        vocab = list(json.loads((folder / f"{stem}.json").read_text())["vocab"])
        indptr = data["indptr"]
        matrix = sp.csr_matrix((data["data"], data["indices"], indptr), shape=(len(indptr) - 1, len(vocab)))
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


class Index:
    """A loaded index. Rows are events; `position[id]` gives the row."""

    def __init__(self, path: Path, meta: IndexMeta, columns: dict[str, Any]):
        self.path = path
        self.meta = meta
        self.ids: list[str] = columns["id"]
        self.headlines: list[str] = columns["headline"]
        self.summaries: list[str] = columns["summary"]
        self.text_sha: list[str] = columns["text_sha"]
        self.day: np.ndarray = np.asarray(columns["date"], dtype=np.int32)  # proleptic ordinal
        self.story_density: np.ndarray = np.asarray(columns["story_density"], dtype=np.float32)
        self.position: dict[str, int] = {event_id: i for i, event_id in enumerate(self.ids)}
        self.aliases: dict[str, str] = columns["aliases"]  # link key -> id, for ids that are not their own key

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
    def _names(self) -> Terms:
        return Terms.load(self.path, "names")

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

    @cached_property
    def _offsets(self) -> np.ndarray:
        return np.load(self.path / "records.offsets.npy")

    def record(self, row: int) -> EventRecord:
        """The full event at `row` (sources, curated Related with their links resolved) from records.jsonl."""
        start, end = (int(x) for x in self._offsets[row])
        with open(self.path / "records.jsonl", "rb") as handle:
            handle.seek(start)
            raw = json.loads(handle.read(end - start))
        related = [{**link, "id": self.resolve(link["href"])} for link in raw["related"]]
        return EventRecord(
            id=raw["id"],
            date=dt.date.fromisoformat(raw["date"]),
            headline=raw["headline"],
            summary=raw["summary"],
            sources=raw["sources"],
            related=related,
            curated=[link["id"] for link in related if link["id"] is not None],
        )

    def resolve(self, href: str) -> str | None:
        """The id of the indexed event a link points to, whatever its day padding or leading slash; else None."""
        key = link_key(href)
        return key if key in self.position else self.aliases.get(key)


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
        columns = orjson.loads((folder / "columns.json").read_bytes())
    except orjson.JSONDecodeError as exc:
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
    """What the index already at the output folder lets an update reuse, row by row. `vectors` only when it was
    built with the same model, the rest only when it has this format. Empty when there is none."""

    ids: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    vectors: np.ndarray | None = None
    names: Terms | None = None
    tokens: Terms | None = None
    digests: list[str] = field(default_factory=list)
    records: Path | None = None  # its records.jsonl, and where each row's line is in it
    spans: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    aliases: dict[str, str] = field(default_factory=dict)
    days: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    density: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    def rows_by_text(self, hashes: list[str]) -> np.ndarray:
        """For each text hash, a previous row with the same text, or -1."""
        return _rows_of(hashes, self.hashes)

    def rows_by_id(self, ids: list[str]) -> np.ndarray:
        """For each id, its previous row, or -1."""
        return _rows_of(ids, self.ids)


def _rows_of(wanted: list[str], keys: list[str]) -> np.ndarray:
    row_of = {key: row for row, key in enumerate(keys)}
    return np.fromiter((row_of.get(key, -1) for key in wanted), dtype=np.int64, count=len(wanted))


def _previous(out: Path, fingerprint: str) -> Previous:
    """Read directly (not through load_index) so that an index of an older format still serves for its vectors."""
    import faiss

    try:
        meta = json.loads((out / "meta.json").read_text())
        columns = orjson.loads((out / "columns.json").read_bytes())
        previous = Previous(ids=list(columns["id"]), hashes=list(columns["text_sha"]))
    except (OSError, ValueError, KeyError):
        return Previous()
    if meta.get("format") == FORMAT_VERSION:  # names, terms and records are computed as this version does
        try:
            previous.names = Terms.load(out, "names")
            previous.tokens = Terms.load(out, "tokens")
            previous.spans = np.load(out / "records.offsets.npy")
            previous.records = out / "records.jsonl"
            previous.digests = list(columns["digest"])
            previous.aliases = dict(columns["aliases"])
            previous.days = np.asarray(columns["date"], dtype=np.int32)
            previous.density = np.asarray(columns["story_density"], dtype=np.int32)
        except (OSError, ValueError, KeyError, IndexError):
            previous = Previous(ids=previous.ids, hashes=previous.hashes)
        n = len(previous.ids)
        if previous.spans.shape != (n, 2) or (previous.names and previous.names.rows != n):
            previous = Previous(ids=previous.ids, hashes=previous.hashes)
    if meta.get("model_fingerprint") != fingerprint:
        return previous
    try:
        flat: Any = faiss.read_index(str(out / "vectors.faiss"))
    except RuntimeError:
        return previous
    if flat.ntotal == len(previous.hashes):
        previous.vectors = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d).copy()
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
    """Embed every event of `archive` and write the index atomically to `out`, reusing what the index already
    there holds for unchanged events (see the module docstring)."""
    import faiss

    started = time.perf_counter()
    out = Path(out)
    embedder = embedder or Embedder()
    events: list[Event] = [archive.events[i] for i in sorted(archive.events)]
    if not events:
        raise IndexLoadError(f"archive {archive_name or '?'} holds no events: nothing to index")
    ids = [e.id for e in events]
    texts = [e.text for e in events]
    hashes = [text_hash(t) for t in texts]

    previous = _previous(out, embedder.fingerprint) if reuse else Previous()
    same_text = previous.rows_by_text(hashes)
    same_id = previous.rows_by_id(ids)
    vector_source = same_text if previous.vectors is not None else np.full(len(events), -1)
    todo = np.flatnonzero(vector_source < 0)
    log(f"embedding {len(todo)} of {len(events)} events ({len(events) - len(todo)} unchanged, reused)")
    embed_started = time.perf_counter()
    fresh = embedder.encode([texts[i] for i in todo], progress=progress) if len(todo) else None
    embed_seconds = time.perf_counter() - embed_started
    dim = fresh.shape[1] if fresh is not None else previous.vectors.shape[1]  # type: ignore[union-attr]
    vectors = np.empty((len(events), dim), dtype=np.float32)
    kept = vector_source >= 0
    if kept.any():
        vectors[kept] = previous.vectors[vector_source[kept]]  # type: ignore[index]
    if fresh is not None:
        vectors[todo] = fresh

    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        flat = faiss.IndexFlatIP(dim)
        flat.add(vectors)
        faiss.write_index(flat, str(tmp / "vectors.faiss"))

        days = np.asarray([e.date.toordinal() for e in events], dtype=np.int32)
        digests = [archive.digests.get(event_id, "") for event_id in ids]
        known = set(ids)
        aliases = {key: i for key, i in previous.aliases.items() if i in known}
        unaliased = np.flatnonzero(same_id < 0) if previous.tokens is not None else range(len(ids))  # new ids
        aliases.update((key, ids[row]) for row in unaliased if (key := link_key(ids[row])) != ids[row])
        columns = {
            "id": ids,
            "story_density": _story_density(vectors, days, hashes, previous, same_id).tolist(),
            "date": days.tolist(),
            "headline": [e.headline for e in events],
            "summary": [e.summary for e in events],
            "text_sha": hashes,
            "digest": digests,
            "aliases": aliases,
        }
        (tmp / "columns.json").write_bytes(orjson.dumps(columns))
        _write_records(tmp, events, digests, previous, same_id)

        log("indexing BM25 and names")
        term_source = same_text if previous.tokens is not None else np.full(len(events), -1)
        new_rows = np.flatnonzero(term_source < 0)
        tokens = Terms.assemble(previous.tokens, term_source, _tokenize([texts[i] for i in new_rows]))
        tokens.save(tmp, "tokens")
        _write_bm25(tmp / "bm25", tokens)
        names = [list(dict.fromkeys(extract_names(texts[i]))) for i in new_rows]
        Terms.assemble(previous.names, term_source, names).save(tmp, "names")

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
    return BuildReport(
        out,
        len(events),
        len(todo),
        len(events) - len(todo),
        len(previous.ids) - int((same_id >= 0).sum()),  # removed
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
    vectors: np.ndarray, days: np.ndarray, hashes: list[str], previous: Previous, source: np.ndarray, window: int = 7
) -> np.ndarray:
    """`story_density`, recomputed only for the days within `window` of an added, changed or removed event.
    `source`: each row's previous row with the same id, or -1."""
    if len(previous.density) != len(previous.ids) or not len(previous.ids):
        return story_density(vectors, days, window)
    same = source >= 0
    old_hashes, new_hashes = np.asarray(previous.hashes, dtype=object), np.asarray(hashes, dtype=object)
    same[same] = (previous.days[source[same]] == days[same]) & (old_hashes[source[same]] == new_hashes[same])
    matched = np.zeros(len(previous.ids), dtype=bool)
    matched[source[same]] = True
    changed = {int(d) for d in np.concatenate([days[~same], previous.days[~matched]])}
    affected = {day + offset for day in changed for offset in range(-window, window + 1)}
    counts = story_density(vectors, days, window, only_days=affected)
    untouched = ~np.isin(days, np.fromiter(affected, dtype=np.int64, count=len(affected)))
    counts[untouched] = previous.density[source[untouched]]
    return counts


def _write_records(
    folder: Path, events: list[Event], digests: list[str], previous: Previous, same_id: np.ndarray
) -> None:
    """One JSON line per event, found by its (start, end) byte span in records.offsets.npy.

    Append-only across updates: the previous file is copied and only the lines of new or changed events (same
    id, other file digest; `same_id` is each row's previous row with its id, or -1) are appended. Once lines no
    row uses would make up a quarter of the file, it is rewritten in row order.
    """
    source = same_id.copy()
    if previous.digests:
        before = [previous.digests[row] if row >= 0 else "" for row in same_id.tolist()]
        changed = np.asarray([not d or d != b for d, b in zip(digests, before, strict=True)], dtype=bool)
        source[changed] = -1
    else:
        source[:] = -1
    kept = source >= 0
    kept_spans = previous.spans[source[kept]]
    added = [_record_line(events[i]) for i in np.flatnonzero(~kept)]
    size = previous.records.stat().st_size if previous.records and kept.any() else 0
    live = int((kept_spans[:, 1] - kept_spans[:, 0]).sum()) + sum(len(line) for line in added)
    spans = np.zeros((len(events), 2), dtype=np.int64)
    target = folder / "records.jsonl"
    if previous.records and kept.any() and size + sum(len(line) for line in added) - live <= live // 3:
        shutil.copyfile(previous.records, target)
        lengths = np.asarray([len(line) for line in added], dtype=np.int64)
        ends = size + np.cumsum(lengths)
        spans[kept] = kept_spans
        spans[~kept, 0], spans[~kept, 1] = ends - lengths, ends
        with open(target, "ab") as handle:
            handle.write(b"".join(added))
    else:
        old = previous.records.read_bytes() if previous.records and size else b""
        fresh = iter(added)
        kept_lines = iter(old[a:b] for a, b in kept_spans.tolist())
        lines = [next(kept_lines) if k else next(fresh) for k in kept.tolist()]
        ends = np.cumsum([len(line) for line in lines], dtype=np.int64)
        spans[:, 1] = ends
        spans[1:, 0] = ends[:-1]
        target.write_bytes(b"".join(lines))
    np.save(folder / "records.offsets.npy", spans)


def _record_line(event: Event) -> bytes:
    record = {
        "id": event.id,
        "date": event.date.isoformat(),
        "headline": event.headline,
        "summary": event.summary,
        "sources": [{"name": s.name, "url": s.url} for s in event.sources],
        "related": [{"text": r.text, "href": r.href, "context": list(r.context)} for r in event.related],
    }
    return json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"


def _write_bm25(folder: Path, tokens: Terms) -> None:
    """Save a bm25s index (read back with `bm25s.BM25.load`) computed from the term counts of every event.

    The same scores as `bm25s.BM25().index(tokens)` with its default Lucene BM25 (tests check it), computed with
    array operations: bm25s counts terms document by document in Python, seconds on the full archive.
    """
    import bm25s

    retriever = bm25s.BM25()
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


def _replace(tmp: Path, out: Path) -> None:
    """Swap the new index into place; the old one is removed only once the new one is there."""
    out.parent.mkdir(parents=True, exist_ok=True)
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)

"""Build an index folder from an archive, atomically, reusing what the index already there holds.

A build writes everything to a temporary folder and renames it into place, so a crash never leaves half an
index. An update reuses, row by row, what the index at the output folder already holds for unchanged events:
vectors, names and BM25 terms by text hash (same model), the records.jsonl line by file digest, and the story
density of days that no change comes near.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recommender.archive import Archive, Event, link_key, padded_variants
from recommender.embed import Embedder, text_hash
from recommender.index.layout import (
    BM25,
    COLUMNS,
    DEFAULT_INDEX,
    FORMAT_VERSION,
    META,
    NAMES,
    RECORDS,
    STORIES,
    TOKENS,
    Columns,
    IndexLoadError,
    IndexMeta,
    damaged,
    load_spans,
    load_vectors,
    new_build_id,
    read_file,
    read_generic_words,
    write_generic_words,
    write_vectors,
)
from recommender.index.records import resolve_link, story_labels, write_records
from recommender.index.terms import Terms, tokenize, write_bm25
from recommender.names import VERSION as NAMES_VERSION
from recommender.names import extract_names, word_roles
from recommender.wording import count


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
    """What the index already at the output folder lets an update reuse, row by row: only from an index of this
    format whose every reused file passes its checksum, and `vectors` only when it was built with the same
    model. Empty when there is none."""

    ids: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    vectors: np.ndarray | None = None
    names: Terms | None = None
    tokens: Terms | None = None
    digests: list[str] = field(default_factory=list)
    records: bytes = b""  # its records.jsonl, and where each row's line is in it
    spans: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    aliases: dict[str, str] = field(default_factory=dict)
    days: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    density: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    # names.generic.json (`names.word_roles`: lower-case shares, modifiers, acronyms); None: recompute, with every
    # event's names
    generic: dict[str, Any] | None = None

    @classmethod
    def read(cls, out: Path, embedder: Embedder, log: Callable[[str], None] = lambda _: None) -> Previous:
        """Raises IndexLoadError (naming the file, advising --full) when a file it would reuse is damaged."""
        if not (out / META).exists():
            if out.is_dir() and any(out.iterdir()):
                log(f"no {META} in {out}: nothing to reuse, embedding every event")
            return cls()
        meta = IndexMeta.read(out)
        if meta.format != FORMAT_VERSION or not meta.checksums:
            log(f"index at {out} has format {meta.format} without checksums: nothing reused, embedding every event")
            return cls()
        columns = Columns.read(out, meta)
        n = len(columns.id)
        previous = cls(
            ids=list(columns.id),
            hashes=list(columns.text_sha),
            names=Terms.load(out, NAMES, meta),
            tokens=Terms.load(out, TOKENS, meta),
            digests=list(columns.digest),
            records=read_file(out, meta, RECORDS),
            aliases=dict(columns.aliases),
            days=np.asarray(columns.date, dtype=np.int32),
            density=np.asarray(columns.story_density, dtype=np.int32),
            generic=read_generic_words(out, meta, NAMES_VERSION),
        )
        previous.spans = load_spans(out, meta, n, len(previous.records))
        if n != meta.count or previous.names.rows != n or previous.tokens.rows != n:  # type: ignore[union-attr]
            raise damaged(out, f"{COLUMNS}, {NAMES}.npz and {TOKENS}.npz do not match {META}")
        if meta.model_fingerprint != embedder.fingerprint:
            log(
                f"index at {out} was built with backend {meta.backend} ({meta.model_fingerprint}), this build uses "
                f"{embedder.backend} ({embedder.fingerprint}): re-embedding every event"
            )
            return previous
        previous.vectors = load_vectors(out, meta, n)
        return previous

    def rows_by_text(self, hashes: list[str]) -> np.ndarray:
        """For each text hash, a previous row with the same text, or -1."""
        return _rows_of(hashes, self.hashes)

    def rows_by_id(self, ids: list[str]) -> np.ndarray:
        """For each id, its previous row, or -1."""
        return _rows_of(ids, self.ids)


@dataclass
class Rebuilt:
    """What a build hands to its `extra` step before sealing: the new index in its temporary `folder` (meta.json
    written, not yet sealed), the index it replaces (`previous`, None when nothing is reused) and, for each new
    row, the previous row of the same event unchanged (same id, text, date and model), or -1."""

    folder: Path
    previous: Path | None
    unchanged: np.ndarray
    previous_days: np.ndarray  # the date (ordinal) of each previous row
    previous_density: np.ndarray  # and its story density


def _rows_of(wanted: list[str], keys: list[str]) -> np.ndarray:
    row_of = {key: row for row, key in enumerate(keys)}
    return np.fromiter((row_of.get(key, -1) for key in wanted), dtype=np.int64, count=len(wanted))


def build_index(
    archive: Archive,
    out: str | Path = DEFAULT_INDEX,
    embedder: Embedder | None = None,
    archive_name: str = "",
    progress: bool = False,
    reuse: bool = True,
    log: Callable[[str], None] = lambda _: None,
    extra: Callable[[Rebuilt, IndexMeta], None] | None = None,
) -> BuildReport:
    """Embed every event of `archive` and write the index atomically to `out`, reusing what the index already
    there holds for unchanged events (see the module docstring). `extra` adds files to the new index (and
    records them in its meta) before it is sealed and swapped in: the ready lists, made by `rank/`."""
    started = time.perf_counter()
    out = Path(out)
    embedder = embedder or Embedder()
    events: list[Event] = [archive.events[i] for i in sorted(archive.events)]
    if not events:
        raise IndexLoadError(f"archive {archive_name or '?'} holds no events: nothing to index")
    texts = [e.text for e in events]
    hashes = [text_hash(t) for t in texts]

    _remove_stale(out, log)
    previous = Previous.read(out, embedder, log) if reuse else Previous()
    same_text = previous.rows_by_text(hashes)
    same_id = previous.rows_by_id([e.id for e in events])
    vectors, embedded, embed_seconds = _vectors(texts, previous, same_text, embedder, progress, log)

    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write_vectors(tmp, vectors)
        days = np.asarray([e.date.toordinal() for e in events], dtype=np.int32)
        _write_events(tmp, archive, events, vectors, days, hashes, previous, same_id)
        log("indexing BM25 and names")
        _write_terms(tmp, texts, previous, same_text)
        meta = IndexMeta(
            model=embedder.name,
            model_fingerprint=embedder.fingerprint,
            backend=embedder.backend,
            embedder=embedder.model_choice,
            dim=vectors.shape[1],
            count=len(events),
            archive=archive_name,
            archive_fingerprint=archive.fingerprint,
            built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            build_seconds=round(time.perf_counter() - started, 2),
            embedded=embedded,
            reused=len(events) - embedded,
            build_id=new_build_id(),
        )
        if extra is not None:
            meta.write(tmp)
            unchanged = _unchanged(previous, same_id, hashes, days)
            extra(Rebuilt(tmp, out if previous.ids else None, unchanged, previous.days, previous.density), meta)
        meta.build_seconds = round(time.perf_counter() - started, 2)
        meta.seal(tmp)
        meta.write(tmp)
        _replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    removed = len(previous.ids) - int((same_id >= 0).sum())
    return BuildReport(
        out, len(events), embedded, len(events) - embedded, removed, time.perf_counter() - started, embed_seconds
    )


def _vectors(
    texts: list[str],
    previous: Previous,
    same_text: np.ndarray,
    embedder: Embedder,
    progress: bool,
    log: Callable[[str], None],
) -> tuple[np.ndarray, int, float]:
    """Every event's vector, the previous one where its text is unchanged (same model), else embedded now; with
    how many were embedded and in how many seconds."""
    vector_source = same_text if previous.vectors is not None else np.full(len(texts), -1)
    todo = np.flatnonzero(vector_source < 0)
    log(f"embedding {len(todo):,} of {count(len(texts), 'event')} ({len(texts) - len(todo):,} unchanged, reused)")
    embed_started = time.perf_counter()
    fresh = embedder.encode([texts[i] for i in todo], progress=progress) if len(todo) else None
    embed_seconds = time.perf_counter() - embed_started
    dim = fresh.shape[1] if fresh is not None else previous.vectors.shape[1]  # type: ignore[union-attr]
    vectors = np.empty((len(texts), dim), dtype=np.float32)
    kept = vector_source >= 0
    if kept.any():
        vectors[kept] = previous.vectors[vector_source[kept]]  # type: ignore[index]
    if fresh is not None:
        vectors[todo] = fresh
    return vectors, len(todo), embed_seconds


def _write_events(
    tmp: Path,
    archive: Archive,
    events: list[Event],
    vectors: np.ndarray,
    days: np.ndarray,
    hashes: list[str],
    previous: Previous,
    same_id: np.ndarray,
) -> None:
    """The columns (with the link aliases and story density), the records and the story labels, into `tmp`."""
    ids = [e.id for e in events]
    digests = [archive.digests.get(event_id, "") for event_id in ids]
    aliases = _aliases(ids, previous, same_id)
    Columns(
        id=ids,
        story_density=_story_density(vectors, days, hashes, previous, same_id).tolist(),
        date=days.tolist(),
        headline=[e.headline for e in events],
        summary=[e.summary for e in events],
        text_sha=hashes,
        digest=digests,
        aliases=aliases,
    ).write(tmp)
    write_records(tmp, events, digests, previous.records, previous.spans, previous.digests, same_id)
    position = {event_id: row for row, event_id in enumerate(ids)}
    resolved: dict[str, str | None] = {}  # many events link to the same events: each link resolved once

    def resolve(href: str) -> str | None:
        if href not in resolved:
            resolved[href] = resolve_link(href, position, aliases)
        return resolved[href]

    labels = story_labels(ids, [[(link.href, link.context) for link in e.related] for e in events], resolve)
    Terms.assemble(None, np.full(len(events), -1), labels).save(tmp, STORIES)


def _aliases(ids: list[str], previous: Previous, same_id: np.ndarray) -> dict[str, str]:
    """A link key for an id it is not: only where trying the id's zero paddings (`Index.resolve`) cannot find it;
    the previous index's kept for the ids still there, made for the new ones."""
    known = set(ids)
    aliases = {key: i for key, i in previous.aliases.items() if i in known and i not in padded_variants(key)}
    unaliased = np.flatnonzero(same_id < 0) if previous.tokens is not None else range(len(ids))  # new ids
    aliases.update(
        (key, ids[row])
        for row in unaliased
        if (key := link_key(ids[row])) != ids[row] and ids[row] not in padded_variants(key)
    )
    return aliases


def _write_terms(tmp: Path, texts: list[str], previous: Previous, same_text: np.ndarray) -> None:
    """The BM25 tokens and index, the generic words and the names, into `tmp`: the previous rows' where the text
    is unchanged."""
    term_source = same_text if previous.tokens is not None else np.full(len(texts), -1)
    new_rows = np.flatnonzero(term_source < 0)
    tokens = Terms.assemble(previous.tokens, term_source, tokenize([texts[i] for i in new_rows]))
    tokens.save(tmp, TOKENS)
    write_bm25(tmp / BM25, tokens)
    # which words are generic is read once from the whole archive and kept, so an update extracts the names
    # of its new events exactly as those of the events it reuses
    if previous.generic is None:
        roles = word_roles(texts)
        name_source = np.full(len(texts), -1)
    else:
        roles, name_source = previous.generic, term_source
    write_generic_words(tmp, roles, NAMES_VERSION)
    name_rows = np.flatnonzero(name_source < 0)
    names = [extract_names(texts[i], roles["shares"]) for i in name_rows]
    Terms.assemble(previous.names, name_source, names).save(tmp, NAMES)


def _unchanged(previous: Previous, same_id: np.ndarray, hashes: list[str], days: np.ndarray) -> np.ndarray:
    """For each row, the previous row of the same event with the same text, date and model, or -1."""
    unchanged = np.full(len(hashes), -1, dtype=np.int64)
    if previous.vectors is not None:
        same = same_id >= 0
        old_hashes = np.asarray(previous.hashes, dtype=object)[same_id[same]]
        same[same] = (old_hashes == np.asarray(hashes, dtype=object)[same]) & (
            previous.days[same_id[same]] == days[same]
        )
        unchanged[same] = same_id[same]
    return unchanged


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


def _remove_stale(out: Path, log: Callable[[str], None]) -> None:
    """Remove the temporary folders (`.NAME.tmp-PID`, `.NAME.old-PID`) a build killed on the way left beside
    `out`; a live process's are left alone."""
    if not out.parent.is_dir():
        return
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(?:tmp|old)-(\d+)")
    for path in out.parent.iterdir():
        match = pattern.fullmatch(path.name)
        if match and path.is_dir() and not path.is_symlink() and not _alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            log(f"removed {path}, left by an interrupted build")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _replace(tmp: Path, out: Path) -> None:
    """Swap the new index into place; the old one is removed only once the new one is there."""
    out.parent.mkdir(parents=True, exist_ok=True)
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)

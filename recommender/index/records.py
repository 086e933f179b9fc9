"""records.jsonl: the full event (sources, curated links as written) one JSON line per row, found by byte span.

Curated links are stored as written and resolved to ids when read, so a record never goes stale when other
events come or go.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recommender.archive import Event, link_key, padded_variants
from recommender.index.layout import RECORD_SPANS, RECORDS


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


def parse_record(line: bytes, resolve: Any) -> EventRecord:
    """A record from its line; `resolve(href)` gives the id of a linked event in the index, or None."""
    raw = json.loads(line)
    related = [{**link, "id": resolve(link["href"])} for link in raw["related"]]
    return EventRecord(
        id=raw["id"],
        date=dt.date.fromisoformat(raw["date"]),
        headline=raw["headline"],
        summary=raw["summary"],
        sources=raw["sources"],
        related=related,
        curated=[link["id"] for link in related if link["id"] is not None],
    )


def resolve_link(href: str, position: Mapping[str, int], aliases: Mapping[str, str]) -> str | None:
    """The id among `position`'s that a link points to, whatever its day padding or leading slash; else None."""
    key = link_key(href)
    if key in position:
        return key
    return next((v for v in padded_variants(key) if v in position), None) or aliases.get(key)


def story_labels(
    ids: Sequence[str], links: Sequence[Sequence[tuple[str, Sequence[str]]]], resolve: Callable[[str], str | None]
) -> list[list[str]]:
    """Each event's story labels as its editors title them: the `_Context:_` items of its own curated links
    (`links[i]`: (href, context) of event `ids[i]`'s) and of the links other events make to it, each once (case,
    dash style and spacing aside), in the order first seen. Read from Related sections: for the contexts shown
    to editors only, never for a ranking feature."""
    row_of = {event_id: row for row, event_id in enumerate(ids)}
    labels: list[dict[str, str]] = [{} for _ in ids]
    for row, own in enumerate(links):
        for href, context in own:
            target = resolve(href)
            for label in context:
                key = " ".join(label.lower().replace("\u2013", "-").replace("\u2014", "-").split())
                labels[row].setdefault(key, label)
                if target is not None and target in row_of:
                    labels[row_of[target]].setdefault(key, label)
    return [list(found.values()) for found in labels]


def record_line(event: Event) -> bytes:
    record = {
        "id": event.id,
        "date": event.date.isoformat(),
        "headline": event.headline,
        "summary": event.summary,
        "sources": [{"name": s.name, "url": s.url} for s in event.sources],
        "related": [{"text": r.text, "href": r.href, "context": list(r.context)} for r in event.related],
    }
    return json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"


def write_records(
    folder: Path,
    events: list[Event],
    digests: list[str],
    previous: bytes,
    previous_spans: np.ndarray,
    previous_digests: list[str],
    same_id: np.ndarray,
) -> None:
    """One JSON line per event, found by its (start, end) byte span in records.offsets.npy.

    Append-only across updates: the `previous` file (its bytes, already checked) is copied and only the lines
    of new or changed events (same id, other file digest; `same_id` is each row's previous row with its id, or
    -1) are appended. Once lines no row uses would make up a quarter of the file, it is rewritten in row order.
    """
    source = same_id.copy()
    if previous_digests:
        before = [previous_digests[row] if row >= 0 else "" for row in same_id.tolist()]
        changed = np.asarray([not d or d != b for d, b in zip(digests, before, strict=True)], dtype=bool)
        source[changed] = -1
    else:
        source[:] = -1
    kept = source >= 0
    kept_spans = previous_spans[source[kept]]
    added = [record_line(events[i]) for i in np.flatnonzero(~kept)]
    size = len(previous) if kept.any() else 0
    live = int((kept_spans[:, 1] - kept_spans[:, 0]).sum()) + sum(len(line) for line in added)
    spans = np.zeros((len(events), 2), dtype=np.int64)
    target = folder / RECORDS
    if size and size + sum(len(line) for line in added) - live <= live // 3:
        lengths = np.asarray([len(line) for line in added], dtype=np.int64)
        ends = size + np.cumsum(lengths)
        spans[kept] = kept_spans
        spans[~kept, 0], spans[~kept, 1] = ends - lengths, ends
        with open(target, "wb") as handle:
            handle.write(previous)
            handle.write(b"".join(added))
    else:
        old = previous
        fresh = iter(added)
        kept_lines = iter(old[a:b] for a, b in kept_spans.tolist())
        lines = [next(kept_lines) if k else next(fresh) for k in kept.tolist()]
        ends = np.cumsum([len(line) for line in lines], dtype=np.int64)
        spans[:, 1] = ends
        spans[1:, 0] = ends[:-1]
        target.write_bytes(b"".join(lines))
    np.save(folder / RECORD_SPANS, spans)

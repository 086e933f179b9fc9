"""The curated truth: the fixed train/test split, and each query's curated list as relevant ids.

Shared by the eval (which reports on the test split) and `tune` (which learns from the train split alone).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from recommender.archive import Archive


def bucket_of(event_id: str) -> int:
    """0..99, fixed by the id's hash."""
    return int(hashlib.sha1(event_id.encode("utf-8")).hexdigest()[:8], 16) % 100


def split_of(event_id: str, test_share: int = 20) -> str:
    """A fixed train/test split by id hash: about `test_share`% of events are `test`."""
    return "test" if bucket_of(event_id) < test_share else "train"


TIME_SPLIT = (dt.date(2019, 12, 31), dt.date(2021, 1, 1))  # train up to the first, test from the second


def time_split_of(date: dt.date) -> str:
    """The split forward in time, as the product is used: `train` to 2019, `test` from 2021, a `gap` between."""
    return "train" if date <= TIME_SPLIT[0] else "test" if date >= TIME_SPLIT[1] else "gap"


DEV = range(20, 30)  # buckets of the train split held out to choose settings on (fine-tuning), never test


def subsplit_of(event_id: str) -> str:
    """`test` as split_of; the train split's `dev` part (DEV buckets, a tenth of all events); else `train`."""
    bucket = bucket_of(event_id)
    return "test" if bucket < 20 else "dev" if bucket in DEV else "train"


@dataclass
class Truth:
    """Relevant ids per query, and what was left out building them."""

    relevant: dict[str, list[str]]
    stories: dict[str, set[str]]  # story names per event, from `_Context:_` (lenient score only)
    unresolved_links: int = 0
    empty_queries: int = 0


def truth_from_archive(archive: Archive, known: set[str]) -> Truth:
    relevant: dict[str, list[str]] = {}
    unresolved = empty = 0
    for event in archive.events.values():
        if not event.related:
            continue
        ids = [i for i in archive.curated_ids(event) if i in known]
        unresolved += len(event.related) - len(ids)
        if event.id not in known or not ids:
            empty += 1
            continue
        relevant[event.id] = ids
    return Truth(relevant, stories_of(archive), unresolved, empty)


def truth_from_file(path: Path, known: set[str], archive: Archive | None) -> Truth:
    """JSON lines `{"id": ..., "related": [ids]}`; ids outside the index are left out and counted."""
    relevant: dict[str, list[str]] = {}
    unresolved = empty = 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            event_id, related = row["id"], list(row["related"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a {{'id', 'related'}} JSON object ({exc})") from None
        ids = [i for i in related if i in known]
        unresolved += len(related) - len(ids)
        if event_id not in known or not ids:
            empty += 1
            continue
        relevant[event_id] = ids
    return Truth(relevant, stories_of(archive) if archive else {}, unresolved, empty)


def stories_of(archive: Archive) -> dict[str, set[str]]:
    """Each event's story names: the union of the `_Context:_` items of its curated links, normalised."""
    return {
        e.id: {c.lower().replace("–", "-").strip() for link in e.related for c in link.context}
        for e in archive.events.values()
        if e.related
    }

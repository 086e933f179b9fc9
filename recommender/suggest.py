"""Batch Related suggestions for editors, in the archive's own format, with editors in control.

Editors' rules live in `editors.toml` in the archive (see archive/editors.example.toml): pairs never to
suggest, pairs always put first, events and date ranges left out. `--write` adds or replaces a
`### Suggested related:` section in each event file and never touches `### Related:` or anything else.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from recommender.atomic import write_text
from recommender.recommend import Recommender, Suggestion

SECTION = "### Suggested related:"
SECTION_PATTERN = re.compile(r"^### Suggested related:[^\n]*\n.*?(?=^### |\Z)", re.M | re.S)
FORMATS = ("jsonl", "markdown", "csv")


class RulesError(ValueError):
    """editors.toml is not valid; the message names the file and the field."""


@dataclass
class EditorRules:
    never: set[frozenset[str]] = field(default_factory=set)
    pins: dict[str, list[str]] = field(default_factory=dict)
    exclude_events: set[str] = field(default_factory=set)
    exclude_dates: list[tuple[dt.date, dt.date]] = field(default_factory=list)

    def excluded(self, event_id: str, date: dt.date) -> bool:
        return event_id in self.exclude_events or any(a <= date <= b for a, b in self.exclude_dates)


def load_rules(path: Path) -> EditorRules:
    """Read editors' rules; an absent file means no rules."""
    if not path.exists():
        return EditorRules()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: not valid TOML ({exc})") from None
    rules = EditorRules()
    unknown = set(raw) - {"never", "pin", "exclude_events", "exclude_dates"}
    if unknown:
        raise RulesError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    for name in ("never", "pin", "exclude_dates"):
        value = raw.get(name, [])
        if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in value
        ):
            raise RulesError(f'{path}: field {name!r} must be a list of ["...", "..."] pairs')
    rules.never = {frozenset(p) for p in raw.get("never", [])}
    for event_id, pinned in raw.get("pin", []):
        rules.pins.setdefault(event_id, []).append(pinned)
    events = raw.get("exclude_events", [])
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise RulesError(f"{path}: field 'exclude_events' must be a list of event ids")
    rules.exclude_events = set(events)
    for start, end in raw.get("exclude_dates", []):
        try:
            rules.exclude_dates.append((dt.date.fromisoformat(start), dt.date.fromisoformat(end)))
        except ValueError:
            raise RulesError(f"{path}: field 'exclude_dates': {start!r}..{end!r} is not a YYYY-MM-DD range") from None
    return rules


@dataclass
class EventSuggestions:
    id: str
    date: dt.date
    headline: str
    suggestions: list[Suggestion]
    curated: int  # length of the event's curated list (resolved)


def select_events(
    recommender: Recommender,
    only: Iterable[str] = (),
    since: dt.date | None = None,
    until: dt.date | None = None,
    rules: EditorRules | None = None,
    new_ids: set[str] | None = None,
) -> list[int]:
    """Rows of the events to process, in date order (`new_ids`: only those, for --new-only)."""
    index = recommender.index
    rules = rules or EditorRules()
    rows = [recommender.row_of(i) for i in only] if only else range(len(index))
    chosen = []
    for row in rows:
        date = index.date(row)
        if (since and date < since) or (until and date > until) or rules.excluded(index.ids[row], date):
            continue
        if new_ids is not None and index.ids[row] not in new_ids:
            continue
        chosen.append(row)
    return sorted(chosen, key=lambda r: (int(index.day[r]), index.ids[r]))


def excluded_rows(recommender: Recommender, rules: EditorRules) -> set[int]:
    """Rows never suggested under the rules: excluded events and every event in an excluded date range."""
    index = recommender.index
    rows = {index.position[i] for i in rules.exclude_events if i in index.position}
    for start, end in rules.exclude_dates:
        inside = (index.day >= start.toordinal()) & (index.day <= end.toordinal())
        rows.update(int(r) for r in inside.nonzero()[0])
    return rows


def suggest_for(
    recommender: Recommender,
    row: int,
    k: int,
    rules: EditorRules,
    past_only: bool = False,
    excluded: set[int] | None = None,
    dense: np.ndarray | None = None,
) -> EventSuggestions:
    """Suggestions for one event with the editors' rules applied: exclusions, never-pairs, pins first.

    `dense`: the event's row of `Recommender.dense_scores`, when computed for a batch."""
    index = recommender.index
    event_id = index.ids[row]
    never = {index.position[i] for pair in rules.never if event_id in pair for i in pair if i in index.position}
    skip = (excluded if excluded is not None else excluded_rows(recommender, rules)) | never
    skip.discard(row)
    until = index.date(row) if past_only else None
    pinned = [p for p in rules.pins.get(event_id, []) if p in index.position and p != event_id]
    exclude = skip | {index.position[p] for p in pinned}
    suggestions = recommender.related(event_id, k, until=until, exclude_rows=exclude, dense=dense)
    if pinned:
        suggestions = recommender.describe(event_id, pinned) + suggestions
    suggestions = [_renumber(s, i + 1) for i, s in enumerate(suggestions[:k])]
    return EventSuggestions(
        event_id, index.date(row), index.headlines[row], suggestions, len(index.record(row).curated)
    )


def _renumber(suggestion: Suggestion, rank: int) -> Suggestion:
    return replace(suggestion, rank=rank)


BLOCK = 256  # events whose dense scores are computed in one matrix product (256 x 113,512 floats: 116 MB)
_worker: tuple[Recommender, int, EditorRules, bool, set[int]] | None = None


def suggest_all(
    recommender: Recommender,
    rows: list[int],
    k: int,
    rules: EditorRules,
    past_only: bool,
    progress: bool = False,
    jobs: int = 1,
) -> Iterator[EventSuggestions]:
    """`suggest_for` every row, in order: blocks of events share one matrix product for their dense scores,
    and `jobs` > 1 processes share the blocks (forked, so the loaded index is shared, not copied)."""
    global _worker
    from tqdm import tqdm

    blocks = [rows[i : i + BLOCK] for i in range(0, len(rows), BLOCK)]
    _worker = (recommender, k, rules, past_only, excluded_rows(recommender, rules))
    bar = tqdm(total=len(rows), disable=not progress, desc="suggest", unit="event", mininterval=1)
    if jobs > 1 and len(blocks) > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(min(jobs, len(blocks)), initializer=_one_thread) as pool:
            for done in pool.imap(_suggest_block, blocks):
                bar.update(len(done))
                yield from done
    else:
        for block in blocks:
            done = _suggest_block(block)
            bar.update(len(done))
            yield from done
    bar.close()


def _one_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # the processes already use every core; BLAS threads would fight over them


def _suggest_block(rows: list[int]) -> list[EventSuggestions]:
    assert _worker is not None
    recommender, k, rules, past_only, excluded = _worker
    dense = recommender.dense_scores(rows)
    return [suggest_for(recommender, row, k, rules, past_only, excluded, dense[i]) for i, row in enumerate(rows)]


# --- rendering --------------------------------------------------------------------------------------------
def markdown_block(item: EventSuggestions) -> str:
    """A `### Suggested related:` block in exactly the seed page's Related format."""
    lines = [SECTION, ""]
    for s in item.suggestions:
        context = f" _Context: {', '.join(s.context)}_" if s.context else ""
        lines.append(f"{s.rank}. [{s.headline}](/{s.id}){context}")
    return "\n".join(lines) + "\n"


def render(items: Iterable[EventSuggestions], fmt: str) -> Iterator[str]:
    """Chunks of output text in `fmt` (jsonl, markdown or csv)."""
    if fmt == "csv":
        header = ["event_id", "rank", "id", "date", "headline", "score", "curated", "context"]
        yield ",".join(header) + "\r\n"
    for item in items:
        if fmt == "jsonl":
            yield (
                json.dumps(
                    {
                        "id": item.id,
                        "date": item.date.isoformat(),
                        "headline": item.headline,
                        "suggestions": [_as_dict(s) for s in item.suggestions],
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
        elif fmt == "markdown":
            yield f"## [{item.headline}](/{item.id})\n\n{markdown_block(item)}\n"
        else:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for s in item.suggestions:
                writer.writerow([item.id, s.rank, s.id, s.date, s.headline, s.score, s.curated, "; ".join(s.context)])
            yield buffer.getvalue()


def _as_dict(s: Suggestion) -> dict[str, object]:
    data = asdict(s)
    data["date"] = s.date.isoformat()
    data["context"] = list(s.context)
    return data


# --- writing into the archive ---------------------------------------------------------------------------------
@dataclass
class WriteOutcome:
    path: Path
    status: str  # added | replaced | unchanged | skipped
    reason: str = ""


def with_section(text: str, block: str) -> str:
    """`text` with its Suggested related section replaced by `block` (or `block` appended)."""
    if SECTION_PATTERN.search(text):
        return SECTION_PATTERN.sub(lambda _: block + "\n", text, count=1).rstrip("\n") + "\n"
    return text.rstrip("\n") + "\n\n" + block


def write_suggestions(archive_root: Path, item: EventSuggestions, dry_run: bool) -> WriteOutcome:
    """Add or replace the event file's Suggested related section, atomically; report, never raise, on I/O errors."""
    path = archive_root / item.id
    try:
        old = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return WriteOutcome(path, "skipped", "file vanished")
    except (OSError, UnicodeDecodeError) as exc:
        return WriteOutcome(path, "skipped", f"cannot read ({exc.__class__.__name__}: {exc})")
    new = with_section(old, markdown_block(item))
    if new == old:
        return WriteOutcome(path, "unchanged")
    status = "replaced" if SECTION_PATTERN.search(old) else "added"
    if dry_run:
        return WriteOutcome(path, status)
    try:
        if not _writable(path):
            return WriteOutcome(path, "skipped", "read-only file")
        write_text(path, new)
    except OSError as exc:
        return WriteOutcome(path, "skipped", f"cannot write ({exc.strerror or exc})")
    return WriteOutcome(path, status)


def _writable(path: Path) -> bool:
    """A file marked read-only (no write bit) is left alone, even for a user, like root, who could write it."""
    import os

    return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)

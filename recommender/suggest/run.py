"""One batch run, as `recommender suggest` makes it: suggestions for the chosen events of an archive, rendered to
a stream and, for an archive of files, written into each file (or, in a dry run, what would change counted),
with the files as they are now and the editors' earlier decisions respected."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from recommender.archive import Archive
from recommender.embed import text_hash
from recommender.eventfile import related_ids
from recommender.rank import Recommender
from recommender.suggest.batch import BatchOptions, EventSuggestions, FileState, suggest_each
from recommender.suggest.decisions import Decisions
from recommender.suggest.render import render
from recommender.suggest.rules import EditorRules
from recommender.suggest.write import WriteOutcome, write_suggestions


@dataclass
class BatchSummary:
    events: int = 0
    suggestions: int = 0
    curated_matches: int = 0  # suggestions already in the event's curated list (only with include_curated)
    events_with_curated: int = 0
    rejections: int = 0  # suggestions an editor removed since the last run, now remembered
    files: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("added", "replaced", "removed", "unchanged", "skipped"), 0)
    )


@dataclass
class ArchiveRows:
    """The archive's events in the index: their rows, and the events the index lacks or holds another text of."""

    rows: dict[str, int]
    missing: list[str]
    stale: list[str]


def archive_rows(recommender: Recommender, archive: Archive) -> ArchiveRows:
    index = recommender.index
    rows: dict[str, int] = {}
    missing, stale = [], []
    for event in archive.events.values():
        row = recommender.find(event.id)
        if row is None:
            missing.append(event.id)
            continue
        rows[event.id] = row
        if index.text_sha[row] != text_hash(event.text):
            stale.append(event.id)
    return ArchiveRows(rows, missing, stale)


def file_states(
    recommender: Recommender, archive: Archive, rows: dict[str, int], decisions: Decisions, summary: BatchSummary
) -> dict[int, FileState]:
    """Each event's file as it is now: its Related list (as index ids) and its rejected ids, counting (and
    recording in `decisions`) the items an editor removed from its Suggested section since the last write."""
    resolve = recommender.find_id
    states = {}
    for event_id, row in rows.items():
        event = archive.events[event_id]
        removed = decisions.removed_by_editor(event, resolve)
        if removed:
            decisions.reject(event_id, removed)
            summary.rejections += len(removed)
        states[row] = FileState(related_ids(event, resolve), frozenset(decisions.rejected.get(event_id, ())))
    return states


@dataclass
class BatchRun:
    """One batch run: `rows` suggested for under `rules` and `options`, rendered to `stream` in `fmt` (None: no
    output); with `files` (the archive folder), each event file's Suggested related section added, replaced or
    removed (unless `dry_run`), each skipped file reported to `on_skip` and each new offer recorded in
    `decisions`. `states`: each row's file as it is now (`file_states`); `jobs` processes share the work."""

    rows: list[int]
    rules: EditorRules
    options: BatchOptions
    fmt: str | None = None
    stream: TextIO | None = None
    files: Path | None = None
    dry_run: bool = True
    progress: bool = False
    jobs: int = 1
    on_skip: Callable[[WriteOutcome], None] = lambda _: None
    states: dict[int, FileState] = field(default_factory=dict)
    decisions: Decisions | None = None
    summary: BatchSummary = field(default_factory=BatchSummary)


def run_batch(recommender: Recommender, run: BatchRun) -> BatchSummary:
    """Make `run` (see `BatchRun`); its summary, counted as it goes."""
    summary, files, dry_run, decisions = run.summary, run.files, run.dry_run, run.decisions

    def write(item: EventSuggestions) -> WriteOutcome | None:
        if files is None:
            return None
        return write_suggestions(files, item, dry_run=dry_run, resolve=recommender.find_id)

    def counted() -> Iterator[EventSuggestions]:
        # each file is written by the process that made its suggestions
        made = suggest_each(recommender, run.rows, run.rules, run.options, write, run.progress, run.jobs, run.states)
        for item, outcome in made:
            if not item.excluded:
                summary.events += 1
                summary.suggestions += len(item.suggestions)
                if item.curated:
                    summary.events_with_curated += 1
                    summary.curated_matches += sum(s.curated for s in item.suggestions)
            if outcome is not None:
                summary.files[outcome.status] += 1
                if outcome.status == "skipped":
                    run.on_skip(outcome)
                elif outcome.offered is not None and decisions is not None and not dry_run:
                    decisions.offer(item.id, outcome.offered)
            yield item

    if run.fmt is None or run.stream is None:
        for _ in counted():
            pass
    else:
        for chunk in render(counted(), run.fmt):
            run.stream.write(chunk)
    return summary

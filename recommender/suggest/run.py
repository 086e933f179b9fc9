"""One batch run, as `recommender suggest` makes it: suggestions for the chosen events, rendered to a stream and,
for an archive of files, written into each file (or, in a dry run, what would change counted)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from recommender.rank import Recommender
from recommender.suggest.batch import EventSuggestions, suggest_all
from recommender.suggest.render import render
from recommender.suggest.rules import EditorRules
from recommender.suggest.write import WriteOutcome, write_suggestions


@dataclass
class BatchSummary:
    events: int = 0
    suggestions: int = 0
    curated_matches: int = 0  # suggestions already in the event's curated list
    events_with_curated: int = 0
    files: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("added", "replaced", "unchanged", "skipped"), 0)
    )


def run_batch(
    recommender: Recommender,
    rows: list[int],
    k: int,
    rules: EditorRules,
    fmt: str,
    stream: TextIO,
    past_only: bool = False,
    files: Path | None = None,
    dry_run: bool = True,
    progress: bool = False,
    jobs: int = 1,
    on_skip: Callable[[WriteOutcome], None] = lambda _: None,
) -> BatchSummary:
    """Suggest for `rows` and render them to `stream` in `fmt`; with `files` (the archive folder), add or replace
    each event file's Suggested related section (unless `dry_run`), reporting each skipped file to `on_skip`."""
    summary = BatchSummary()

    def counted() -> Iterator[EventSuggestions]:
        for item in suggest_all(recommender, rows, k, rules, past_only, progress=progress, jobs=jobs):
            summary.events += 1
            summary.suggestions += len(item.suggestions)
            if item.curated:
                summary.events_with_curated += 1
                summary.curated_matches += sum(s.curated for s in item.suggestions)
            if files is not None:
                outcome = write_suggestions(files, item, dry_run=dry_run)
                summary.files[outcome.status] += 1
                if outcome.status == "skipped":
                    on_skip(outcome)
            yield item

    for chunk in render(counted(), fmt):
        stream.write(chunk)
    return summary

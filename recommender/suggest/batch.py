"""Suggestions for many events with the editors' rules applied: read from the index's ready lists where they can
answer (the editors' rules and the files' lists filter them), else ranked in blocks that share their dense
scores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import numpy as np

from recommender.archive import in_event_layout
from recommender.index import Index
from recommender.rank import Recommender, RelatedRequest, Suggestion
from recommender.rank.calibration import MIN_CONFIDENCE
from recommender.rank.threads import use_cores
from recommender.suggest.rules import EditorRules


@dataclass
class EventSuggestions:
    id: str
    date: dt.date
    headline: str
    suggestions: list[Suggestion]
    curated: int  # length of the event's curated list (resolved)
    excluded: bool = False  # an excluded event: no suggestions, and any Suggested section goes


@dataclass(frozen=True)
class FileState:
    """An event's file as it is now: the ids of its Related list and those rejected for it (never suggested)."""

    curated: frozenset[str] = frozenset()
    rejected: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BatchOptions:
    k: int = 10
    past_only: bool = False
    include_curated: bool = False  # suggest items already in the file's Related list, marked curated
    min_confidence: float = MIN_CONFIDENCE


def select_events(
    recommender: Recommender,
    only: Iterable[str] = (),
    since: dt.date | None = None,
    until: dt.date | None = None,
    rules: EditorRules | None = None,
    new_ids: set[str] | None = None,
    within: Iterable[int] | None = None,
    with_excluded: bool = False,
) -> list[int]:
    """Rows of the events to process, in date order (`new_ids`: only those, for --new-only; `within`: only
    these rows, the archive's events; `with_excluded`: keep excluded events, whose sections are removed)."""
    index = recommender.index
    rules = rules or EditorRules()
    allowed = None if within is None else set(within)
    if only:
        rows: Iterable[int] = [recommender.row_of(i) for i in only]
        outside = [index.ids[r] for r in rows if allowed is not None and r not in allowed]
        if outside:
            raise ValueError(f"--only: {outside[0]} is not an event of the archive")
    else:
        rows = sorted(allowed) if allowed is not None else range(len(index))
    chosen = []
    for row in rows:
        date = index.date(row)
        if (since and date < since) or (until and date > until):
            continue
        if not with_excluded and rules.excluded(index.ids[row], date):
            continue
        if new_ids is not None and index.ids[row] not in new_ids:
            continue
        chosen.append(row)
    return sorted(chosen, key=lambda r: (int(index.day[r]), index.ids[r]))


def excluded_rows(recommender: Recommender, rules: EditorRules) -> set[int]:
    """Rows never suggested under the rules: excluded events and every event in an excluded date range; and
    never a page outside the archive's event layout (`in_event_layout`), whose link would lead nowhere."""
    index = recommender.index
    rows = {index.position[i] for i in rules.exclude_events if i in index.position} | outside_layout(index)
    for start, end in rules.exclude_dates:
        inside = (index.day >= start.toordinal()) & (index.day <= end.toordinal())
        rows.update(int(r) for r in inside.nonzero()[0])
    return rows


@lru_cache(maxsize=4)
def outside_layout(index: Index) -> frozenset[int]:
    """The rows of an index whose ids are not event pages of the archive's layout (SEED-EXAMPLE.md)."""
    return frozenset(row for row, event_id in enumerate(index.ids) if not in_event_layout(event_id))


def suggest_for(
    recommender: Recommender,
    row: int,
    rules: EditorRules,
    options: BatchOptions | None = None,
    excluded: set[int] | None = None,
    dense: np.ndarray | None = None,
    state: FileState | None = None,
) -> EventSuggestions:
    """Suggestions for one event with the editors' rules applied: exclusions, never-pairs, pins first (marked).

    `excluded`: `excluded_rows` of the rules, when computed once for a batch; `dense`: the event's row of
    `Recommender.dense_scores`; `state`: the event's file as it is now (its Related items are not suggested
    unless `options.include_curated`; rejected items never)."""
    index = recommender.index
    options = options or BatchOptions()
    event_id = index.ids[row]
    if rules.excluded(event_id, index.date(row)):
        return EventSuggestions(event_id, index.date(row), index.headlines[row], [], 0, excluded=True)
    found = recommender.answer(row, batch_request(recommender, row, rules, options, excluded, state), dense=dense)
    count = len(state.curated) if state is not None else len(index.record(row).curated)
    return EventSuggestions(event_id, index.date(row), index.headlines[row], found, count)


def batch_request(
    recommender: Recommender,
    row: int,
    rules: EditorRules,
    options: BatchOptions,
    excluded: set[int] | None = None,
    state: FileState | None = None,
) -> RelatedRequest:
    """The request for one event of a batch: the editors' rules and the file's state as exclusions and pins."""
    index = recommender.index
    position = index.position
    event_id = index.ids[row]
    never = {position[i] for pair in rules.never if event_id in pair for i in pair if i in position}
    skip = (excluded if excluded is not None else excluded_rows(recommender, rules)) | never
    if state is not None:
        skip |= {position[i] for i in state.rejected if i in position}
    pins = tuple(
        position[p] for p in rules.pins.get(event_id, []) if p in position and p != event_id and in_event_layout(p)
    )
    return RelatedRequest(
        options.k,
        min_confidence=options.min_confidence,
        # without the file's state, the indexed Related items are marked but not left out (as they always were)
        exclude_curated=state is not None and not options.include_curated,
        curated=None if state is None else state.curated,
        exclude=frozenset(skip),
        pins=pins,
        past_only=options.past_only,
    )


BLOCK = 256  # events whose dense scores are computed in one matrix product (256 x 113,512 floats: 116 MB)
Outcome = TypeVar("Outcome")
_worker: tuple[Recommender, EditorRules, BatchOptions, set[int], dict[int, FileState], Callable[..., Any]] | None = None


def suggest_all(
    recommender: Recommender,
    rows: list[int],
    rules: EditorRules,
    options: BatchOptions | None = None,
    progress: bool = False,
    jobs: int = 1,
    states: dict[int, FileState] | None = None,
) -> Iterator[EventSuggestions]:
    """`suggest_for` every row, in order: blocks of events share one matrix product for their dense scores,
    and `jobs` > 1 processes share the blocks (forked, so the loaded index is shared, not copied). `states`:
    each row's file as it is now (see `suggest_for`)."""
    for item, _ in suggest_each(recommender, rows, rules, options, _nothing, progress, jobs, states):
        yield item


def _nothing(item: EventSuggestions) -> None:
    return None


def suggest_each(
    recommender: Recommender,
    rows: list[int],
    rules: EditorRules,
    options: BatchOptions | None,
    then: Callable[[EventSuggestions], Outcome],
    progress: bool = False,
    jobs: int = 1,
    states: dict[int, FileState] | None = None,
) -> Iterator[tuple[EventSuggestions, Outcome]]:
    """`suggest_all`, each item with what `then` made of it, in the process that made the item: writing an
    event's file there spreads the writes over the processes too (the one that reads their answers would
    otherwise write every file itself, one after another)."""
    global _worker
    from tqdm import tqdm

    blocks = [rows[i : i + BLOCK] for i in range(0, len(rows), BLOCK)]
    options = options or BatchOptions()
    _worker = (recommender, rules, options, excluded_rows(recommender, rules), states or {}, then)
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

    use_cores(1)
    threadpool_limits(1)  # the processes already use every core; BLAS threads would fight over them


def _suggest_block(rows: list[int]) -> list[tuple[EventSuggestions, Any]]:
    assert _worker is not None
    recommender, rules, options, excluded, states, then = _worker
    # read from the ready lists, events need no dense scores (the few that fall back to ranking compute theirs)
    ready = recommender.lists_answer(RelatedRequest(options.k, past_only=options.past_only))
    dense = None if ready else recommender.dense_scores(rows)
    done = []
    for i, row in enumerate(rows):
        item = suggest_for(
            recommender, row, rules, options, excluded, None if dense is None else dense[i], states.get(row)
        )
        done.append((item, then(item)))
    return done

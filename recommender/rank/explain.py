"""Ranked rows turned into `Suggestion`s, with why: what both events truly share, days apart, the signals."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from recommender.index import Index
from recommender.names import (
    COMMON,
    CONNECTORS,
    GENERIC_ALONE,
    GENERIC_LAST_WORD,
    WORD,
    _clean,
    locator,
    whole_names,
)
from recommender.rank.calibration import Calibration
from recommender.rank.features import shared_name_weight
from recommender.rank.query import Query

VERSION = 5  # of what this code makes of a ready list: bump it when a change can alter one (`rank/fingerprint.py`)


@dataclass(frozen=True)
class Signals:
    """Why a suggestion was made: each signal's value for the pair."""

    dense: float
    bm25: float  # relative to the best BM25 score among the candidates ranked with it
    names: float  # share of the query's name weight (IDF) that the suggestion shares
    days_apart: int | None
    shared_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suggestion:
    """One proposed related event, shared by the CLI, the API, batch suggestions and the eval."""

    rank: int
    id: str
    date: dt.date
    headline: str
    score: float
    curated: bool = False
    signals: Signals | None = None
    # the probability that the item belongs in the event's Related list (calibrated on the train split); None
    # for a system without a fitted calibration (dense, bm25)
    confidence: float | None = None
    pinned: bool = False  # put first by an editor's pin in editors.toml
    source: str = "live"  # "ready": read from the index's ready lists; "live": ranked for this request

    @property
    def context(self) -> tuple[str, ...]:
        """What the two events share, for an editor, like the archive's `_Context:_`: names both write, else a
        story label of the suggestion's that the event's text supports, else nothing (`Contexts`)."""
        return self.signals.shared_names if self.signals else ()


@dataclass(frozen=True)
class Ranked:
    """A query's chosen rows, best first, with their scores; `best_bm25` scales the BM25 signal shown."""

    rows: np.ndarray
    scores: np.ndarray
    best_bm25: float
    pool: np.ndarray | None = None  # the candidates ranked (a trained ranker's pool)


def suggestions(
    index: Index, query: Query, ranked: Ranked, curated: set[str], calibration: Calibration | None = None
) -> list[Suggestion]:
    """`ranked` as Suggestions; `curated` (ids) marks those already in the query's Related list; `calibration`
    (of the system that ranked them) turns each score into its confidence."""
    rows = ranked.rows
    dense, bm25, names = signal_values(index, query, ranked)
    day = query.day if query.dated else None
    return built(index, rows, ranked.scores, dense, bm25, names, day, Contexts(index, query), curated, calibration)


def signal_values(index: Index, query: Query, ranked: Ranked) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dense, relative BM25 and names signals of `ranked`'s rows, as float32 (what ready lists store)."""
    rows = ranked.rows
    dense = query.scores.dense[rows]
    bm25 = query.scores.bm25[rows]
    bm25 = bm25 / ranked.best_bm25 if ranked.best_bm25 > 0 else np.zeros(len(rows), dtype=np.float32)
    return dense, bm25, shared_name_weight(index, query, rows)


def built(
    index: Index,
    rows: np.ndarray,
    scores: np.ndarray,
    dense: np.ndarray,
    bm25: np.ndarray,
    names: np.ndarray,
    query_day: int | None,
    contexts: Contexts,
    curated: set[str],
    calibration: Calibration | None,
    source: str = "live",
    kept: Sequence[tuple[str, ...] | None] = (),
) -> list[Suggestion]:
    """Suggestions from their rows, scores and signal values (ranked now, or read from a ready list): the one
    place they are rounded and explained, so that both give the same answer. `query_day`: the query's own date
    (None for undated text); `kept`: contexts a ready list holds (None where it holds none), made by `contexts`
    as here."""
    confidence = calibration(np.asarray(scores)) if calibration is not None else None
    out = []
    for i, (row, score) in enumerate(zip(rows.tolist(), scores, strict=True)):
        context = kept[i] if i < len(kept) else None
        out.append(
            Suggestion(
                rank=i + 1,
                id=index.ids[row],
                date=index.date(row),
                headline=index.headlines[row],
                score=round(float(score), 4),
                curated=index.ids[row] in curated,
                confidence=None if confidence is None else round(float(confidence[i]), 3),
                signals=Signals(
                    dense=round(float(dense[i]), 4),
                    bm25=round(float(bm25[i]), 4),
                    names=round(float(names[i]), 4),
                    days_apart=abs(int(index.day[row]) - query_day) if query_day is not None else None,
                    shared_names=contexts(row) if context is None else context,
                ),
                source=source,
            )
        )
    return out


# of the rules below (`Contexts`): ready lists keep contexts, and those made by other rules are stale
CONTEXTS_VERSION = 5
MAX_NAMES = 4
MAX_LABELS = 2


class Contexts:
    """The context of each suggestion for one query, what an editor may write as its `_Context:_`, and only what
    is true of both events, in one rule that live answers and the ready lists' kept contexts share:

    1. the proper names both texts write whole (`names.whole_names`), as the suggestion writes them, the rarest
       first, in its order: never a fragment of a longer name (`Jammu` of `Jammu and Kashmir`, `Isa Al Khalifa` of
       `Hamad ibn Isa Al Khalifa`), never a word the archive mostly writes in lower
       case, never a people's adjective or a common term's word (`Libyan`, `Richter`, `AI`: `Index.not_names`),
       a currency's prefix (`US$`) or a name given only as a measure (`the size of Neptune`), nor one the event
       writes only to locate another place (`Glendale, near Phoenix`: `names.locator`); a name made only
       of such words (`Defence Ministry`, `National Assembly`) only beside another;
    2. else the story labels editors use for the suggestion (its curated links' `_Context:_`, `Index.
       story_labels`) whose every word the event's own text writes too (`Syrian` for `Syria`; a year in the
       label is the event's year or written in it; `relations` is said by naming both sides), those the event
       is filed under too first (the archive's own `_Context:_` of the pair);
    3. else nothing: a blank is better than a context that is not true.

    `query` may be a function that makes it, called on first need: a ready list keeps most contexts, and its
    answer then needs no query."""

    def __init__(self, index: Index, query: Query | Callable[[], Query]):
        self.index = index
        self._query = query

    @cached_property
    def query(self) -> Query:
        return self._query if isinstance(self._query, Query) else self._query()

    @cached_property
    def _found(self) -> list[tuple[str, int, int]]:
        index = self.index
        return whole_names(self.query.text, index.generic_words, index.name_lookup, index.not_names, index.joined_names)

    @cached_property
    def names(self) -> set[str]:
        # a place the event names only to locate another (`Glendale, near Phoenix`) is not what it is about
        return {name for name, start, _ in self._found if not locator(self.query.text, start)}

    @cached_property
    def words(self) -> set[str]:
        """The event's words, those of the places it names only as locators left out (a story label `Syria` is
        not supported by `a town near Syria`)."""
        text = self.query.text
        for _, start, end in self._found:
            if locator(text, start):
                text = text[:start] + " " * (end - start) + text[end:]
        return label_words(text)

    @cached_property
    def year(self) -> int | None:
        query = self.query
        return dt.date.fromordinal(query.day).year if query.day is not None and query.dated else None

    @cached_property
    def own_labels(self) -> set[str]:
        row = self.query.row
        return {label.lower() for label in self.index.story_labels(row)} if row is not None else set()

    def __call__(self, row: int) -> tuple[str, ...]:
        return self.shared_names(row) or self.story_labels(row)

    def shared_names(self, row: int) -> tuple[str, ...]:
        """The names both texts write whole, as the suggestion at `row` writes them (rule 1)."""
        index, text, generic = self.index, self.index.text(row), self.index.generic_words
        found = whole_names(text, generic, index.name_lookup, index.not_names, index.joined_names)
        shared = [(name, start, end) for name, start, end in found if name in self.names]
        # the longest shared name of each span: a shorter one inside it says less
        shared = [x for x in shared if not any(o[1] <= x[1] and x[2] <= o[2] and o != x for o in shared)]
        lookup, idf = index.name_lookup, index.name_idf
        top = float(idf.max()) if len(idf) else 0.0
        ranked = sorted(shared, key=lambda x: -(float(idf[lookup[x[0]]]) if x[0] in lookup else top))
        picked: list[tuple[str, int, int]] = []
        for name, start, end in ranked:
            said = any(_within(name, other) or _within(other, name) for other, _, _ in picked)
            if len(picked) < MAX_NAMES and not said:
                picked.append((name, start, end))
        if not any(not _generic_only(name, generic) for name, _, _ in picked):
            return ()  # only names like `Supreme Court` or `National Assembly`: which one, neither text says
        return tuple(text[start:end] for _, start, end in sorted(picked, key=lambda x: x[1]))

    def story_labels(self, row: int) -> tuple[str, ...]:
        """The suggestion's story labels that the event's text supports, those the event is filed under too first
        (rule 2): a label the event is filed under but does not write (`Terrorism in Turkey` for a trial with no
        word of terrorism) is not shown."""
        generic, labels = self.index.generic_words, self.index.story_labels(row)
        backed = [x for x in labels if supported(x, self.words, self.year, generic)]
        shared = [x for x in backed if x.lower() in self.own_labels]
        return tuple((shared + [x for x in backed if x not in shared])[:MAX_LABELS])


def _within(short: str, long: str) -> bool:
    """`short` is a word or words of the name `long` (`putin` of `vladimir putin`)."""
    return f" {short} " in f" {long} "


def _generic_only(name: str, generic: Mapping[str, float]) -> bool:
    """Every word of `name` is one the archive often writes in lower case, or a connector: a name only beside
    another (which `Supreme Court`, which `Defence Ministry`?)."""
    return all(w in CONNECTORS or w in COMMON or generic.get(w, 0.0) >= GENERIC_LAST_WORD for w in name.split())


LABEL_STOP_WORDS = CONNECTORS | {"a", "an", "and", "or", "in", "on", "at", "to", "by", "with", "from", "into", "vs"}
IMPLIED = {"relations"}  # `Cuba–United States relations` is said by naming both
FORM_ENDINGS = ("s", "es", "n", "an", "i")  # plurals, and a place's people: Syria/Syrian, Iraq/Iraqi
YEAR_RANGE = re.compile(r"\b(\d{4})\s*[-\u2013\u2014/]\s*(\d{2}|\d{4})\b")


@lru_cache(maxsize=4096)
def label_words(text: str) -> set[str]:
    """The words of `text`, lower-cased, possessives left out: what a story label's words are looked up in."""
    return {w for m in WORD.finditer(text) if (w := _clean(m.group()))}


def supported(label: str, words: set[str], year: int | None, generic: Mapping[str, float]) -> bool:
    """Every word of the story `label` is in `words` (the event's text), in the same or a near form (`Syrian`
    for `Syria`, `bombings` for `bombing`); a year (or a season, `2015-16`) is the event's `year` or written in
    it; never a label that is one word the archive mostly writes in lower case."""
    years: set[int] = set()
    for first, last in YEAR_RANGE.findall(label):
        end = int(last) if len(last) == 4 else int(first[:2] + last)
        years.update(range(int(first), end + 1))
    keys = [w for m in WORD.finditer(YEAR_RANGE.sub(" ", label)) if (w := _clean(m.group()))]
    keys = [w for w in keys if w not in LABEL_STOP_WORDS]
    years.update(int(w) for w in keys if len(w) == 4 and w.isdigit())
    keys = [w for w in keys if not (len(w) == 4 and w.isdigit())]
    if not keys or (len(keys) == 1 and (keys[0] in COMMON or generic.get(keys[0], 0.0) >= GENERIC_ALONE)):
        return False
    if years and year not in years and not any(str(y) in words for y in years):
        return False
    return all(_written(w, words) or w in IMPLIED for w in keys)


def _written(word: str, words: set[str]) -> bool:
    if word in words:
        return True
    for ending in FORM_ENDINGS:
        if word + ending in words:
            return True
        base = word.removesuffix(ending)
        if base != word and len(base) >= 4 and base in words:
            return True
    return False

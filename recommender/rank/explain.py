"""Ranked rows turned into `Suggestion`s, with why: the names both events share, days apart, the signals."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

import numpy as np

from recommender.index import Index
from recommender.index.terms import bm25s_module, stem, tokenize_query
from recommender.names import COMMON, name_spans, span_names
from recommender.rank.calibration import Calibration
from recommender.rank.candidates import LOCAL_DAYS
from recommender.rank.features import shared_name_weight
from recommender.rank.query import Query

VERSION = 1  # of what this code makes of a ready list: bump it when a change can alter one (`rank/fingerprint.py`)


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
        """What the two events share, for an editor: names, like the archive's `_Context:_`."""
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


class Contexts:
    """The context of each suggestion for one query: the names both share; where none, what the suggestion
    shares with the query's story (its nearest events, found once, on first need). `query` may be a function
    that makes it, called on first need: a ready list keeps most contexts, and its answer then needs no query."""

    def __init__(self, index: Index, query: Query | Callable[[], Query]):
        self.index = index
        self._query = query
        self.story_rows: list[int] | None = None

    @cached_property
    def query(self) -> Query:
        return self._query if isinstance(self._query, Query) else self._query()

    @cached_property
    def wanted(self) -> set[int]:
        return {int(n) for n in self.query.names}

    def __call__(self, row: int) -> tuple[str, ...]:
        index, query = self.index, self.query
        shared = [int(n) for n in index.names_of(row) if int(n) in self.wanted]
        context = display_names(index, shared, index.text(row), query)
        if not context:  # nothing in common with the event itself: what it shares with the event's story
            if self.story_rows is None:
                self.story_rows = nearest_events(index, query)
            story = story_of(index, query, [r for r in self.story_rows if r != row])
            in_story = set(story.names.tolist())
            names_in_story = [int(n) for n in index.names_of(row) if n in in_story]
            context = display_names(index, names_in_story, index.text(row), story)
        return context


def nearest_events(index: Index, query: Query, events: int = 5) -> list[int]:
    """The rows of the query's `events` most similar events within LOCAL_DAYS (any date for undated text), items
    with its text left out: its story, as the ranker's story features take it."""
    if query.day is None:
        rows, dense = np.arange(len(index)), query.scores.dense
    else:  # only the events within LOCAL_DAYS are scored, so a ready answer costs no scan of the whole index
        rows = np.sort(index.rows_within(query.day, LOCAL_DAYS))
        dense = index.vectors[rows] @ query.vector
    order = rows[np.argsort(-dense, kind="stable")[: events + 3]]
    return [int(r) for r in order if r != query.row and index.text_sha[r] != query.text_sha][:events]


def story_of(index: Index, query: Query, rows: list[int]) -> Query:
    """The query and the events at `rows` as one query: their names, words and text."""
    texts = [query.text, *(index.text(r) for r in rows)]
    names = np.unique(np.concatenate([query.names, *(index.names_of(r) for r in rows)])).astype(np.int64)
    return replace(query, text="\n".join(texts), tokens=tokenize_query(" ".join(texts)), names=names)


def display_names(
    index: Index, name_ids: list[int], text: str, query: Query | None = None, limit: int = 4
) -> tuple[str, ...]:
    """What a suggestion shares with its query, for an editor, as written in its `text`: the rarest shared names,
    each the whole name as the text writes it (or the part of it the query names too: `Federal Reserve` of
    `U.S. Federal Reserve`), in the text's order and case. Where no name is shared, the rarest words shared with
    `query` (when given)."""
    shared = {index.name_vocab[n]: float(index.name_idf[n]) for n in name_ids}
    found: dict[str, tuple[float, int, str]] = {}  # lower-cased shown text: (weight, position, as written)
    generic = index.generic_words
    for span in name_spans(text):
        whole, endings = span_names(span, generic)
        for name in [*whole, *endings]:
            if name in shared:
                start, end = span.ending(name.count(" ") + 1)
                written = text[start:end]
                key = written.lower()
                if key not in found or found[key][0] < shared[name]:
                    found[key] = (shared[name], start, written)
                break  # the longest shared piece of this span
    candidates = sorted(found.values(), key=lambda x: -x[0])
    if not candidates and query is not None:
        candidates = [(0.0, start, word) for start, word in shared_words(index, text, query)]
    picked: list[tuple[float, int, str]] = []
    for item in candidates:
        if not any(_repeats(item[2].lower(), other[2].lower()) for other in picked):
            picked.append(item)
    return tuple(written for _, _, written in sorted(picked[:limit], key=lambda x: x[1]))


def _repeats(a: str, b: str) -> bool:
    """`a` says what `b` says: the same word in another form (`Iraqi`, `Iraq`) or a part of it."""
    return a in b or b in a or _same_stem(a, b)


def shared_words(index: Index, text: str, query: Query) -> list[tuple[int, str]]:
    """(position, words as written) of the words of `text` that the query also uses, rarest first: the same BM25
    token, or the same stem as written (`Libyan` for `Libya`, `presidential` for `president`); neighbours in the
    text are shown together (`Syrian Arab`). Words used by more than RARE_WORD of the archive's events, stop
    words and news style (`says`, `however`) say nothing."""
    most = RARE_WORD * len(index)
    mine = _words_by_prefix(query.text)
    query_tokens = set(query.tokens)
    found: list[tuple[int, int, int]] = []  # (start, end, events using it)
    for start, end, key, token in _content_words(text):
        frequency = index.document_frequency(token)
        if 0 < frequency <= most and (
            token in query_tokens or any(_same_stem(key, other) for other in mine.get(key[:4], ()))
        ):
            found.append((start, end, frequency))
    runs: list[tuple[int, int, int]] = []
    for start, end, frequency in found:
        if runs and not text[runs[-1][1] : start].strip():
            runs[-1] = (runs[-1][0], end, min(runs[-1][2], frequency))
        else:
            runs.append((start, end, frequency))
    seen: set[str] = set()
    out = []
    for start, end, _ in sorted(runs, key=lambda run: run[2]):
        if text[start:end].lower() not in seen:
            seen.add(text[start:end].lower())
            out.append((start, text[start:end]))
    return out


# a batch's contexts read the same texts again and again (the same events are suggested to many)
@lru_cache(maxsize=8192)
def _content_words(text: str) -> tuple[tuple[int, int, str, str], ...]:
    """(start, end, lower-cased, BM25 token) of each word of `text` that can say something: not a stop word, not
    news style, not a function word; a possessive's 's left out."""
    bm25s_module()  # imported as this project imports it, before its stop words
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    words = []
    for match in CONTENT_WORD.finditer(text):
        word = match.group().removesuffix("'s").removesuffix("’s")
        key = word.lower()
        if key not in COMMON and key not in SAY_NOTHING and key not in STOPWORDS_EN_PLUS:
            words.append((match.start(), match.start() + len(word), key, stem(word)))
    return tuple(words)


@lru_cache(maxsize=1024)
def _words_by_prefix(text: str) -> dict[str, list[str]]:
    """The words of a query's `text`, lower-cased, by their first 4 letters: all `_same_stem` can match (read
    only)."""
    mine: dict[str, list[str]] = {}
    for word in {m.group().lower() for m in CONTENT_WORD.finditer(text)}:
        mine.setdefault(word[:4], []).append(word)
    return mine


RARE_WORD = 0.1
# words of news style that any two items share without being about the same thing
SAY_NOTHING = frozenset(
    [
        "will",
        "would",
        "could",
        "should",
        "says",
        "said",
        "announces",
        "announced",
        "reports",
        "reported",
        "claims",
        "claimed",
        "states",
        "stated",
        "calls",
        "called",
        "tells",
        "told",
        "according",
        "also",
        "first",
        "last",
        "new",
        "year",
        "years",
        "week",
        "month",
        "today",
        "yesterday",
        "however",
    ]
)
CONTENT_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]{2,}")


def _same_stem(a: str, b: str) -> bool:
    """Two proper words of one stem: a shared beginning of 4 letters or more covering most of the shorter."""
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    return common >= 4 and common >= 0.75 * min(len(a), len(b))

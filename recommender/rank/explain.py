"""Ranked rows turned into `Suggestion`s, with why: the names both events share, days apart, the signals."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np

from recommender.index import Index
from recommender.index.terms import stem
from recommender.names import name_spans, span_names
from recommender.rank.calibration import Calibration
from recommender.rank.features import shared_name_weight
from recommender.rank.query import Query


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


def suggestions(
    index: Index, query: Query, ranked: Ranked, curated: set[str], calibration: Calibration | None = None
) -> list[Suggestion]:
    """`ranked` as Suggestions; `curated` (ids) marks those already in the query's Related list; `calibration`
    (of the system that ranked them) turns each score into its confidence."""
    rows = ranked.rows
    confidence = calibration(ranked.scores) if calibration is not None else None
    dense = query.scores.dense[rows]
    bm25 = query.scores.bm25[rows]
    bm25 = bm25 / ranked.best_bm25 if ranked.best_bm25 > 0 else np.zeros(len(rows), dtype=np.float32)
    names = shared_name_weight(index, query, rows)
    query_names = {int(n) for n in query.names}
    out = []
    for i, (row, score) in enumerate(zip(rows.tolist(), ranked.scores, strict=True)):
        shared = [int(n) for n in index.names_of(row) if int(n) in query_names]
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
                    days_apart=abs(int(index.day[row]) - query.day) if query.day is not None and query.dated else None,
                    shared_names=display_names(index, shared, index.text(row), query),
                ),
            )
        )
    return out


def display_names(index: Index, name_ids: list[int], text: str, query: Query, limit: int = 4) -> tuple[str, ...]:
    """What a suggestion shares with its query, for an editor, as written in its `text`: the rarest shared names,
    each the whole name as the text writes it (or the part of it the query names too: `Federal Reserve` of
    `U.S. Federal Reserve`), in the text's order and case. Where no name is shared, the longest shared words."""
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
    if not candidates:
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
    """(position, word as written) of the words of `text` that the query also uses, longest first: the same BM25
    token, or for capitalised words the same stem as written (`Libyan` for `Libya`, `Pakistani` for `Pakistan`).
    Words used by more than RARE_WORD of the archive's events (`announces`, `minister`) say nothing."""
    most = RARE_WORD * len(index)
    stems = {t for t in query.tokens if index.document_frequency(t) <= most}
    capitalised = {m.group().lower() for m in CONTENT_WORD.finditer(query.text) if m.group()[0].isupper()}
    seen: set[str] = set()
    out = []
    for match in CONTENT_WORD.finditer(text):
        word = match.group()
        key = word.lower()
        if key in seen:
            continue
        token = stem(word)
        if token in stems or (
            word[0].isupper()
            and index.document_frequency(token) <= most
            and any(_same_stem(key, other) for other in capitalised)
        ):
            seen.add(key)
            out.append((match.start(), word))
    return sorted(out, key=lambda x: -len(x[1]))


RARE_WORD = 0.05
CONTENT_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")


def _same_stem(a: str, b: str) -> bool:
    """Two proper words of one stem: a shared beginning of 4 letters or more covering most of the shorter."""
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    return common >= 4 and common >= 0.75 * min(len(a), len(b))

"""Ranked rows turned into `Suggestion`s, with why: the names both events share, days apart, the signals."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np

from recommender.index import Index
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
                    shared_names=display_names(index, shared, index.text(row)),
                ),
            )
        )
    return out


def display_names(index: Index, name_ids: list[int], text: str, limit: int = 4) -> tuple[str, ...]:
    """The rarest shared names, whole names before their words, as written in `text`."""
    ranked = sorted(name_ids, key=lambda n: (-(" " in index.name_vocab[n]), -index.name_idf[n]))
    picked: list[str] = []
    for n in ranked:
        name = index.name_vocab[n]
        if any(name in p for p in picked):
            continue
        picked.append(name)
        if len(picked) == limit:
            break
    return tuple(_as_written(name, text) for name in picked)


def _as_written(name: str, text: str) -> str:
    match = re.search(re.escape(name).replace(r"\ ", r"\s+"), text, flags=re.IGNORECASE)
    return match.group(0) if match else name

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
    query_day = query.day if query.dated else None
    return built(index, rows, ranked.scores, dense, bm25, names, query_day, query.names, curated, calibration)


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
    query_names: np.ndarray,
    curated: set[str],
    calibration: Calibration | None,
    source: str = "live",
) -> list[Suggestion]:
    """Suggestions from their rows, scores and signal values (ranked now, or read from a ready list): the one
    place they are rounded and explained, so that both give the same answer."""
    confidence = calibration(np.asarray(scores)) if calibration is not None else None
    wanted = {int(n) for n in query_names}
    out = []
    for i, (row, score) in enumerate(zip(rows.tolist(), scores, strict=True)):
        shared = [int(n) for n in index.names_of(row) if int(n) in wanted]
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
                    shared_names=display_names(index, shared, index.text(row)),
                ),
                source=source,
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

"""The fused ranker's features: one table of name, ablation groups and how each is computed from a candidate pool.

A feature is one row of FEATURES, so its name, its column (its place in the table) and the ablation groups that
leave it out (`recommender tune`) cannot drift apart. Each is computed from `PoolSignals`, which holds what
several features share (days apart, the story around the query, name overlaps), each part computed once.
Several features are relative to the pool (ranks, standardised values), so a candidate is only ever scored
within one. Text, vectors, names and dates only: never a Related section.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from recommender.index import Index
from recommender.rank.candidates import LOCAL_DAYS, MAX_POOL, allowed_rows, candidate_pool
from recommender.rank.query import Query

VERSION = 1  # of what this code makes of a ready list: bump it when a change can alter one (`rank/fingerprint.py`)
NAMED = 0.15  # share of the query's name weight a candidate must share to count as naming the same things
SIMILAR = 0.45  # cosine above which a candidate likely belongs to the query's story
# "not in this set" for the rank features: a constant past any pool's end. A pool-size sentinel would tell
# the trees how large the pool is, which differs between the full archive and a small one.
NOT_RANKED = np.float32(MAX_POOL)
GROUPS = ("dense", "bm25", "names", "time")  # the ablations: `fused-no-GROUP` leaves out a group's features


class PoolSignals:
    """What the features of one query's candidate pool (index rows `pool`) are computed from."""

    def __init__(self, index: Index, query: Query, pool: np.ndarray):
        self.index, self.query, self.pool, self.n = index, query, pool, len(pool)
        self.dated = query.day is not None

    @cached_property
    def dense(self) -> np.ndarray:
        return self.query.scores.dense[self.pool]

    @cached_property
    def bm25(self) -> np.ndarray:
        return self.query.scores.bm25[self.pool]

    @cached_property
    def bm25_scaled(self) -> np.ndarray:
        best = float(self.bm25.max(initial=0.0))
        return self.bm25 / best if best > 0 else np.zeros(self.n, dtype=np.float32)

    # --- time ------------------------------------------------------------------------------------------
    @cached_property
    def days(self) -> np.ndarray:
        """Signed days from the query to each candidate (dated queries only)."""
        return (self.index.day[self.pool] - self.query.day).astype(np.float32)

    @cached_property
    def near_order(self) -> np.ndarray:
        """Pool positions by dense cosine, those within LOCAL_DAYS first."""
        return np.argsort(-np.where(self.near, self.dense, -np.inf), kind="stable")

    @cached_property
    def near(self) -> np.ndarray:
        return np.abs(self.days) <= LOCAL_DAYS

    def nan(self) -> np.ndarray:
        return np.full(self.n, np.nan, dtype=np.float32)

    def dense_rank_near(self) -> np.ndarray:
        if not self.dated:
            return self.nan()
        count = int(self.near.sum())
        ranks = np.full(self.n, NOT_RANKED)
        ranks[self.near_order[:count]] = np.arange(count)
        return ranks

    def similar_within_week(self) -> np.ndarray:
        if not self.dated:
            return self.nan()
        similar = self.dense >= SIMILAR
        return np.full(self.n, np.float32(np.sum(similar & (np.abs(self.days) <= 7))))

    def days_rank_similar(self) -> np.ndarray:
        if not self.dated:
            return self.nan()
        similar = self.dense >= SIMILAR
        ranks = np.full(self.n, NOT_RANKED)
        by_days = np.argsort(np.where(similar, np.abs(self.days), np.inf), kind="stable")[: int(similar.sum())]
        ranks[by_days] = np.arange(len(by_days))
        return ranks

    def days_rank_named(self) -> np.ndarray:
        ranks = np.full(self.n, NOT_RANKED)
        if not self.dated:
            ranks[:] = np.nan
            return ranks
        named = self.names_of_query >= NAMED
        distance = np.where(named, np.abs(self.index.day[self.pool] - self.query.day), np.iinfo(np.int32).max)
        by_days = np.argsort(distance, kind="stable")[: int(named.sum())]
        ranks[by_days] = np.arange(len(by_days))
        return ranks

    # --- the story around the query: its nearest events in time and text, as one pseudo-query --------------
    @cached_property
    def nearest(self) -> np.ndarray:
        if self.dated:
            return self.pool[self.near_order[: min(5, int(self.near.sum()))]]
        return self.pool[np.argsort(-self.dense)[:5]]

    @cached_property
    def story(self) -> np.ndarray:
        vectors = self.index.vectors
        centre = self.query.vector + vectors[self.nearest].sum(axis=0)
        return vectors[self.pool] @ (centre / max(float(np.linalg.norm(centre)), 1e-6))

    # --- names -----------------------------------------------------------------------------------------
    @cached_property
    def name_weights(self) -> np.ndarray:
        """The IDF of the query's names, 0 for other names."""
        index, names = self.index, self.query.names
        weights = np.zeros(index.names.shape[1], dtype=np.float32)
        weights[names] = index.name_idf[names]
        return weights

    @cached_property
    def story_name_weights(self) -> np.ndarray:
        """The IDF of the names of the query's story (its own and those of its nearest events), 0 for other
        names: a follow-up often names the story's other actors, not the query's."""
        index = self.index
        names = index.names
        in_story = np.zeros(names.shape[1], dtype=bool)
        in_story[self.query.names] = True
        for row in self.nearest:
            in_story[names.indices[names.indptr[row] : names.indptr[row + 1]]] = True
        return np.where(in_story, index.name_idf, np.float32(0))

    @cached_property
    def overlaps(self) -> tuple[np.ndarray, ...]:
        """Per candidate: the IDF weight of its own names, the query's name weight it shares, how many names it
        shares, the largest shared weight, and the story's name weight it shares."""
        index = self.index
        names = index.names
        return _name_overlaps(
            names.indptr, names.indices, self.pool, index.name_idf, self.name_weights, self.story_name_weights
        )

    @cached_property
    def names_of_query(self) -> np.ndarray:
        """Share of the query's name weight that each candidate shares."""
        return self.overlaps[1] / max(float(self.name_weights.sum()), 1e-6)


def _standardised(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    return (values - values.mean()) / max(float(values.std()), 1e-6) if len(values) else values


def _ranks(values: np.ndarray) -> np.ndarray:
    """Each value's rank in the pool, 0 for the highest (ties in pool order)."""
    ranks = np.empty(len(values), dtype=np.float32)
    ranks[np.argsort(-values, kind="stable")] = np.arange(len(values))
    return ranks


def _constant(p: PoolSignals, value: float) -> np.ndarray:
    return np.full(p.n, value, dtype=np.float32)


@dataclass(frozen=True)
class Feature:
    name: str
    groups: tuple[str, ...]  # the ablation groups it belongs to (none: kept by every ablation)
    compute: Callable[[PoolSignals], np.ndarray]


FEATURES: tuple[Feature, ...] = (
    Feature("dense", ("dense",), lambda p: p.dense),
    Feature("dense_gap", ("dense",), lambda p: p.dense - p.dense.max(initial=0.0)),
    Feature("dense_rank", ("dense",), lambda p: _ranks(p.dense)),
    Feature("bm25", ("bm25",), lambda p: p.bm25_scaled),
    Feature("bm25_raw", ("bm25",), lambda p: p.bm25),
    Feature("names", ("names",), lambda p: p.names_of_query),
    Feature("names_of_candidate", ("names",), lambda p: p.overlaps[1] / np.maximum(p.overlaps[0], 1e-6)),
    Feature("names_shared", ("names",), lambda p: p.overlaps[2]),
    Feature("names_max_idf", ("names",), lambda p: p.overlaps[3]),
    Feature("log_days", ("time",), lambda p: np.log1p(np.abs(p.days)) if p.dated else p.nan()),
    Feature("days", ("time",), lambda p: np.clip(p.days, -3650, 3650) if p.dated else p.nan()),
    Feature("dense_rank_near", ("dense", "time"), PoolSignals.dense_rank_near),
    Feature("story", ("dense",), lambda p: p.story),
    Feature("year", ("time",), lambda p: p.index.day[p.pool].astype(np.float32) / 365.25),
    Feature("similar_within_week", ("time",), PoolSignals.similar_within_week),
    Feature("days_rank_similar", ("time",), PoolSignals.days_rank_similar),
    Feature("story_density", ("time",), lambda p: np.log1p(p.index.story_density[p.pool])),
    Feature(
        "query_story_density",
        ("time",),
        lambda p: _constant(
            p,
            np.log1p(p.index.story_density[p.query.row] if p.query.row is not None else p.query.story_density),
        ),
    ),
    Feature("days_rank_named", ("names",), PoolSignals.days_rank_named),
    Feature("bm25_rank", ("bm25",), lambda p: _ranks(p.bm25)),
    Feature("query_best_dense", ("dense",), lambda p: _constant(p, p.dense.max(initial=0.0))),
    # how much text each side has: short items match less on every signal
    Feature("query_terms", (), lambda p: _constant(p, np.log1p(len(p.query.tokens)))),
    Feature("query_names", ("names",), lambda p: _constant(p, len(p.query.names))),
    Feature("candidate_length", (), lambda p: np.log1p(p.index.text_lengths[p.pool])),
    Feature("names_rank", ("names",), lambda p: _ranks(p.names_of_query)),
    Feature("story_rank", ("dense",), lambda p: _ranks(p.story)),
    # the same signals relative to this query's pool: trees score one candidate at a time
    Feature("dense_z", ("dense",), lambda p: _standardised(p.dense)),
    Feature("bm25_z", ("bm25",), lambda p: _standardised(p.bm25)),
    Feature("story_z", ("dense",), lambda p: _standardised(p.story)),
    Feature("days_rank", ("time",), lambda p: _ranks(-np.abs(p.days)) if p.dated else p.nan()),
    Feature(
        "names_ratio", ("names",), lambda p: p.names_of_query / max(float(p.names_of_query.max(initial=0.0)), 1e-6)
    ),
    # names shared with the story, as a share of the story's and of the candidate's
    Feature("names_story", ("names",), lambda p: p.overlaps[4] / max(float(p.story_name_weights.sum()), 1e-6)),
    Feature("names_story_share", ("names",), lambda p: p.overlaps[4] / np.maximum(p.overlaps[0], 1e-6)),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
COLUMN: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}


def group_features(group: str) -> tuple[str, ...]:
    """The names of the features an ablation of `group` leaves out."""
    return tuple(f.name for f in FEATURES if group in f.groups)


def feature_matrix(index: Index, query: Query, pool: np.ndarray) -> np.ndarray:
    """(len(pool), len(FEATURES)) float32: every feature of every candidate of `pool` against `query`."""
    signals = PoolSignals(index, query, pool)
    matrix = np.empty((len(pool), len(FEATURES)), dtype=np.float32)
    for column, feature in enumerate(FEATURES):
        matrix[:, column] = feature.compute(signals)
    return matrix


def window_features(index: Index, query: Query, pool: np.ndarray) -> np.ndarray:
    """`feature_matrix` of a pool drawn from a window (the rows --since/--until leave), computed within
    the pool the whole archive would give, the window's candidates added, and cut to `pool`.

    Several features are relative to the pool (ranks, standardised values, the story around the query), and the
    trees learned them over whole-archive pools: within a window's pool the best of a few becomes "the best", and
    a one-off event's same-week neighbours look like its story. Relative to the whole archive, a candidate gets
    the features it would have unwindowed; the window only says which may be suggested."""
    context = candidate_pool(index, query, allowed_rows(index, query, None, None), extra=pool)
    return feature_matrix(index, query, context)[np.isin(context, pool, assume_unique=True)]


def shared_name_weight(index: Index, query: Query, rows: np.ndarray) -> np.ndarray:
    """The `names` feature of `rows` alone (it does not depend on the pool), for explanations."""
    weights = PoolSignals(index, query, rows).name_weights
    names = index.names
    overlap = _name_overlaps(names.indptr, names.indices, rows, index.name_idf, weights, weights)[1]
    return overlap / max(float(weights.sum()), 1e-6)


def _name_overlaps(
    indptr: np.ndarray,
    indices: np.ndarray,
    pool: np.ndarray,
    idf: np.ndarray,
    weights: np.ndarray,
    story_weights: np.ndarray,
) -> tuple[np.ndarray, ...]:
    # every (candidate, name) pair of the pool's rows of the CSR matrix at once, summed per candidate
    starts, ends = indptr[pool], indptr[pool + 1]
    lengths = ends - starts
    owner = np.repeat(np.arange(len(pool)), lengths)
    entries = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths) + starts[owner]
    names = indices[entries]
    weight = weights[names]

    def summed(values: np.ndarray) -> np.ndarray:
        return np.bincount(owner, values, minlength=len(pool)).astype(np.float32)

    largest = np.zeros(len(pool), dtype=np.float32)
    np.maximum.at(largest, owner, weight)
    return summed(idf[names]), summed(weight), summed(weight > 0), largest, summed(story_weights[names])

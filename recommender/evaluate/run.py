"""Rank the queries with every system and score the runs against the truth (metrics by ranx).

Queries are events with a curated list (or a seeded sample of them); candidates are the whole index except
the query. No system reads a Related section: systems see only the index (text, vectors, dates); the truth
(`recommender.truth`) is read from the archive for scoring alone.
"""

from __future__ import annotations

import datetime as dt
import random as random_module
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recommender.rank import Query, Recommender
from recommender.rank.candidates import allowed_rows
from recommender.truth import Truth, split_of

METRICS = [
    "precision@1",
    "precision@5",
    "precision@10",
    "recall@10",
    "ndcg@10",
    "mrr@10",
    "map@10",
    "hit_rate@10",
]
BASELINES = ("random", "recency")
DEFAULT_SYSTEMS = ("random", "recency", "bm25", "dense", "fused")
K = 10


@dataclass
class EvalConfig:
    queries: int | None = 3000  # None: all
    seed: int = 42
    systems: tuple[str, ...] = DEFAULT_SYSTEMS
    split: str = "all"  # all | train | test
    since: dt.date | None = None
    until: dt.date | None = None
    k: int = K


@dataclass
class EvalResult:
    config: EvalConfig
    runs: dict[str, dict[str, dict[str, float]]]
    metrics: dict[str, dict[str, float]]
    per_query: dict[str, dict[str, np.ndarray]]
    query_ids: list[str]
    truth: Truth
    seconds: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)
    # per system with a calibration: each suggestion's confidence and whether it is in the query's list
    confidence: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    ranx: Any = field(default=None, repr=False)  # (Qrels, {system: Run}), built once by _ranx


def select_queries(truth: Truth, config: EvalConfig) -> list[str]:
    ids = sorted(truth.relevant)
    if config.split != "all":
        ids = [i for i in ids if split_of(i) == config.split]
    if config.queries is not None and config.queries < len(ids):
        ids = sorted(random_module.Random(config.seed).sample(ids, config.queries))
    return ids


class Baselines:
    """`random` and `recency` (nearest in date), over the same candidates as every other system."""

    def __init__(self, recommender: Recommender, seed: int):
        self.index = recommender.index
        self.rng = np.random.default_rng(seed)
        self.order = np.argsort(self.index.day, kind="stable")
        self.sorted_days = self.index.day[self.order]

    def rank(self, system: str, query: Query, allowed: np.ndarray, k: int) -> list[int]:
        if system == "random":
            candidates = np.flatnonzero(allowed)
            picked = self.rng.choice(candidates, size=min(k, len(candidates)), replace=False)
            return [int(r) for r in picked]
        assert query.day is not None
        # widen a window around the query's date until it holds k allowed events, then sort by distance
        centre = int(np.searchsorted(self.sorted_days, query.day))
        width = k
        while True:
            lo, hi = max(0, centre - width), min(len(self.order), centre + width)
            window = self.order[lo:hi]
            window = window[allowed[window]]
            if len(window) >= k or (lo == 0 and hi == len(self.order)):
                break
            width *= 2
        distance = np.abs(self.index.day[window] - query.day)
        return [int(r) for r in window[np.lexsort((window, distance))][:k]]


def run_eval(
    recommender: Recommender,
    truth: Truth,
    config: EvalConfig,
    progress: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> EvalResult:
    """Rank every query with every system and score the runs with ranx."""
    from tqdm import tqdm

    index = recommender.index
    unknown = [s for s in config.systems if s not in BASELINES and s not in recommender.systems]
    if unknown:
        known = ", ".join([*BASELINES, *recommender.systems])
        raise ValueError(f"--systems: unknown {', '.join(unknown)}; known: {known}")
    query_ids = select_queries(truth, config)
    if not query_ids:
        raise ValueError("no queries: no event with a curated list (or gold entry) is in the index")
    log(f"{len(query_ids):,} queries, {len(config.systems)} systems, {len(index):,} candidates")
    baselines = Baselines(recommender, config.seed)
    runs: dict[str, dict[str, dict[str, float]]] = {s: {} for s in config.systems}
    seconds: dict[str, float] = defaultdict(float)
    sure: dict[str, tuple[list[float], list[int]]] = {}
    for query_id in tqdm(query_ids, disable=not progress, desc="eval", unit="q"):
        started = time.perf_counter()
        query = recommender.query(index.position[query_id])
        allowed = allowed_rows(index, query, config.since, config.until)
        # scores every system may use, computed once per query and timed apart
        _ = query.scores.dense, query.scores.bm25
        seconds["shared"] += time.perf_counter() - started
        for system in config.systems:
            started = time.perf_counter()
            if system in BASELINES:
                rows = baselines.rank(system, query, allowed, config.k)
                scores = [float(config.k - i) for i in range(len(rows))]
            else:
                ranked = recommender.rank(query, config.k, system, config.since, config.until)
                rows, scores = [int(r) for r in ranked.rows], [float(s) for s in ranked.scores]
                calibration = recommender.calibration
                if calibration is not None and calibration.system == system:
                    relevant = set(truth.relevant[query_id])
                    confidence, labels = sure.setdefault(system, ([], []))
                    confidence.extend(float(c) for c in calibration(ranked.scores))
                    labels.extend(int(index.ids[r] in relevant) for r in rows)
            seconds[system] += time.perf_counter() - started
            runs[system][query_id] = _run_scores(index.ids, rows, scores)

    metrics, per_query = score_runs(truth, query_ids, runs, config.k)
    log(
        f"shared scoring (query text, dense and BM25 scores of every event): "
        f"{1000 * seconds['shared'] / len(query_ids):.1f} ms/query"
    )
    for system in runs:
        metrics[system]["seconds_per_query"] = round(seconds[system] / len(query_ids), 5)
    calibrated = {s: (np.asarray(c), np.asarray(y)) for s, (c, y) in sure.items()}
    return EvalResult(config, runs, metrics, per_query, query_ids, truth, dict(seconds), confidence=calibrated)


def score_runs(
    truth: Truth, query_ids: list[str], runs: dict[str, dict[str, dict[str, float]]], k: int = K
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, np.ndarray]]]:
    """Mean and per-query metrics of each run (ranx), plus the lenient precision."""
    from ranx import Qrels, Run, evaluate

    qrels = Qrels({q: {d: 1 for d in truth.relevant[q]} for q in query_ids})
    metrics: dict[str, dict[str, float]] = {}
    per_query: dict[str, dict[str, np.ndarray]] = {}
    for system, run in runs.items():
        complete = {q: run.get(q, {}) for q in query_ids}
        if any(complete.values()):
            values = evaluate(qrels, Run(complete, name=system), METRICS, return_mean=False)
            per_query[system] = {m: np.asarray(v, dtype=np.float64) for m, v in values.items()}
        else:  # ranx cannot hold a run with no document at all: every metric is 0
            per_query[system] = {m: np.zeros(len(query_ids)) for m in METRICS}
        per_query[system]["lenient_precision@10"] = lenient_precision(complete, query_ids, truth.stories, k)
        metrics[system] = {m: round(float(np.mean(v)), 4) for m, v in per_query[system].items()}
    return metrics, per_query


def _run_scores(ids: list[str], rows: list[int], scores: list[float]) -> dict[str, float]:
    # ranx orders by score; make ties impossible so it keeps the system's order
    return {
        ids[r]: float(len(rows) - i) + 1e-6 * (s if np.isfinite(s) else 0.0)
        for i, (r, s) in enumerate(zip(rows, scores, strict=True))
    }


def lenient_precision(
    run: dict[str, dict[str, float]], query_ids: list[str], stories: dict[str, set[str]], k: int
) -> np.ndarray:
    """Share of the top k whose own curated story names intersect the query's (a list keeps only 10)."""
    values = np.zeros(len(query_ids))
    for i, query_id in enumerate(query_ids):
        mine = stories.get(query_id, set())
        top = sorted(run.get(query_id, {}).items(), key=lambda x: -x[1])[:k]
        if mine:
            values[i] = sum(1 for doc, _ in top if stories.get(doc, set()) & mine) / k
    return values

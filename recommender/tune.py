"""Fit the fused ranker's weights on the train split: coordinate ascent on nDCG@10 (as in RankLib).

Four signals and a linear model leave nothing to memorise: the fit learns how much each signal counts,
never which pairs are related, so a train event's list cannot reveal a test event's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from recommender.evaluate import Truth, split_of
from recommender.recommend import SIGNALS, Recommender, Weights

GRID = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
ABLATIONS = {
    "fused-no-dense": ("dense",),
    "fused-no-bm25": ("bm25",),
    "fused-no-names": ("names",),
    "fused-no-time": ("days30", "days365"),
}


class Pools:
    """Padded candidate pools of many queries: features (q, p, s), relevance (q, p), ideal DCG (q)."""

    def __init__(self, recommender: Recommender, truth: Truth, query_ids: list[str]):
        index = recommender.index
        feature_rows, relevance_rows = [], []
        for query_id in query_ids:
            query = recommender.query_for_row(index.position[query_id])
            pool, features = recommender.candidates(query, recommender.allowed(query, None, None))
            relevant = {index.position[i] for i in truth.relevant[query_id]}
            feature_rows.append(features)
            relevance_rows.append(np.asarray([int(r) in relevant for r in pool], dtype=np.float32))
        width = max(len(r) for r in relevance_rows)
        self.features = np.zeros((len(query_ids), width, len(SIGNALS)), dtype=np.float32)
        self.relevance = np.zeros((len(query_ids), width), dtype=np.float32)
        self.mask = np.zeros((len(query_ids), width), dtype=bool)
        for i, (f, r) in enumerate(zip(feature_rows, relevance_rows, strict=True)):
            self.features[i, : len(r)], self.relevance[i, : len(r)], self.mask[i, : len(r)] = f, r, True
        discounts = 1.0 / np.log2(np.arange(2, 12))
        counts = np.asarray([min(len(truth.relevant[q]), 10) for q in query_ids])
        self.ideal = np.asarray([discounts[:c].sum() for c in counts])
        self.discounts = discounts

    def ndcg(self, weights: np.ndarray) -> float:
        """Mean nDCG@10 of the pools ranked by `features @ weights` (the tuning objective)."""
        scores = np.where(self.mask, self.features @ weights, -np.inf)
        top = np.argpartition(-scores, 9, axis=1)[:, :10]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.take_along_axis(top, np.argsort(-top_scores, axis=1), axis=1)
        gains = np.take_along_axis(self.relevance, order, axis=1)
        return float(np.mean((gains @ self.discounts) / self.ideal))


def coordinate_ascent(pools: Pools, removed: tuple[str, ...] = (), rounds: int = 3) -> tuple[Weights, float]:
    """Best weights on a grid, one signal at a time; the first kept signal is fixed at 1 (scale)."""
    free = [s for s in SIGNALS if s not in removed]
    weights = np.asarray([0.0 if s in removed else 0.3 for s in SIGNALS], dtype=np.float32)
    weights[SIGNALS.index(free[0])] = 1.0
    best = pools.ndcg(weights)
    for _ in range(rounds):
        improved = False
        for signal in free[1:]:
            i = SIGNALS.index(signal)
            for value in GRID:
                trial = weights.copy()
                trial[i] = value
                score = pools.ndcg(trial)
                if score > best + 1e-6:
                    best, weights, improved = score, trial, True
        if not improved:
            break
    return Weights(**{s: round(float(w), 4) for s, w in zip(SIGNALS, weights, strict=True)}), best


def tune(
    recommender: Recommender,
    truth: Truth,
    queries: int,
    seed: int,
    out: Path,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, dict[str, float]]:
    """Fit `fused` and its ablations on train-split queries only; write them to `out` (weights.json)."""
    from recommender.atomic import write_text

    train = sorted(q for q in truth.relevant if split_of(q) == "train")
    rng = np.random.default_rng(seed)
    if queries < len(train):
        train = sorted(rng.choice(train, size=queries, replace=False).tolist())
    log(f"computing candidate pools for {len(train):,} train queries")
    pools = Pools(recommender, truth, train)
    systems: dict[str, dict[str, float]] = {}
    fitted: dict[str, float] = {}
    for name, removed in {"fused": (), **ABLATIONS}.items():
        weights, score = coordinate_ascent(pools, removed)
        systems[name] = asdict(weights)
        fitted[name] = round(score, 4)
        log(f"{name:<16} train nDCG@10 {score:.4f}  {systems[name]}")
    write_text(
        out,
        json.dumps(
            {
                "fitted_on": {"train_queries": len(train), "seed": seed, "train_ndcg@10": fitted},
                "systems": systems,
            },
            indent=2,
        )
        + "\n",
    )
    return systems

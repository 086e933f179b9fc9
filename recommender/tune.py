"""Train the fused ranker (LightGBM LambdaRank) and its ablations on the train split of the curated lists.

The model sees only the signals of `Recommender.features` (text, vectors, names, dates): never a Related
section. It learns how signals combine, not which pairs are related, and is trained on train-split queries
alone, so a train event's list cannot reveal a test event's. Every reported figure is on the test split.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recommender.evaluate import Truth, split_of
from recommender.recommend import FEATURES, RANKER_DIR, Recommender

FEATURE_GROUPS = {
    "dense": (
        "dense",
        "dense_gap",
        "dense_rank",
        "dense_rank_near",
        "story",
        "query_best_dense",
        "story_rank",
        "dense_z",
        "story_z",
    ),
    "bm25": ("bm25", "bm25_raw", "bm25_rank", "bm25_z"),
    "names": (
        "names",
        "names_of_candidate",
        "names_shared",
        "names_max_idf",
        "days_rank_named",
        "query_names",
        "names_rank",
        "names_ratio",
        "names_story",
        "names_story_share",
    ),
    "time": (
        "log_days",
        "days",
        "dense_rank_near",
        "year",
        "similar_within_week",
        "days_rank_similar",
        "story_density",
        "query_story_density",
        "days_rank",
    ),
}
PARAMS = {
    "objective": "lambdarank",
    "lambdarank_truncation_level": 20,
    "n_estimators": 400,
    "num_leaves": 63,
    "learning_rate": 0.05,
    "min_child_samples": 100,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}


def training_data(
    recommender: Recommender, truth: Truth, query_ids: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features of every query's candidate pool, 0/1 labels from its curated list, and pool sizes."""
    from tqdm import tqdm

    index = recommender.index
    features, labels, sizes = [], [], []
    for query_id in tqdm(query_ids, desc="features", unit="q", mininterval=5):
        query = recommender.query_for_row(index.position[query_id])
        pool, values = recommender.candidates(query, recommender.allowed(query, None, None))
        relevant = {index.position[i] for i in truth.relevant[query_id]}
        features.append(values)
        labels.append(np.fromiter((int(r) in relevant for r in pool), dtype=np.int32, count=len(pool)))
        sizes.append(len(pool))
    return np.vstack(features), np.concatenate(labels), np.asarray(sizes)


def cached_training_data(
    recommender: Recommender, truth: Truth, query_ids: list[str], cache: Path | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`training_data`, kept in `cache` (.npz) for the same index, queries and features, so that refitting
    with other parameters does not rebuild every candidate pool."""
    from recommender.atomic import atomic_path

    meta = recommender.index.meta
    key = hashlib.sha256(json.dumps([meta.built_at, meta.count, query_ids, FEATURES]).encode()).hexdigest()
    if cache is not None and cache.exists():
        with np.load(cache) as saved:
            if str(saved["key"]) == key:
                return saved["features"], saved["labels"], saved["sizes"]
    features, labels, sizes = training_data(recommender, truth, query_ids)
    if cache is not None:
        with atomic_path(cache) as tmp, tmp.open("wb") as file:
            np.savez(file, key=key, features=features, labels=labels, sizes=sizes)
    return features, labels, sizes


def train_rankers(
    recommender: Recommender,
    truth: Truth,
    queries: int | None,
    seed: int,
    out: Path = RANKER_DIR,
    log: Callable[[str], None] = lambda _: None,
    cache: Path | None = None,
) -> dict[str, list[str]]:
    """Train `fused` and one ablation per signal group on train-split queries; write them to `out`."""
    import lightgbm

    from recommender.atomic import atomic_path, write_text

    train = sorted(q for q in truth.relevant if split_of(q) == "train")
    if queries is not None and queries < len(train):
        train = sorted(np.random.default_rng(seed).choice(train, size=queries, replace=False).tolist())
    log(f"building candidate pools and features for {len(train):,} train-split queries")
    features, labels, sizes = cached_training_data(recommender, truth, train, cache)
    log(f"{len(labels):,} candidates, {int(labels.sum()):,} relevant ({labels.sum() / len(train):.1f} per query)")
    out.mkdir(parents=True, exist_ok=True)
    systems: dict[str, dict[str, object]] = {}
    for name, removed in {"fused": (), **{f"fused-no-{g}": cols for g, cols in FEATURE_GROUPS.items()}}.items():
        kept = [f for f in FEATURES if f not in removed]
        started = time.perf_counter()
        model = lightgbm.LGBMRanker(random_state=seed, n_jobs=2, **PARAMS)  # type: ignore[arg-type]
        model.fit(features[:, [FEATURES.index(f) for f in kept]], labels, group=sizes)
        with atomic_path(out / f"{name}.txt") as tmp:
            model.booster_.save_model(str(tmp))
        systems[name] = {"model": f"{name}.txt", "features": kept}
        log(f"trained {name:<16} on {len(kept)} features in {time.perf_counter() - started:.0f}s")
    manifest = {
        "trained_on": {"train_queries": len(train), "seed": seed, "split": "train (80% by id hash)", "params": PARAMS},
        "systems": systems,
    }
    write_text(out / "rankers.json", json.dumps(manifest, indent=2) + "\n")
    return {name: list(spec["features"]) for name, spec in systems.items()}  # type: ignore[call-overload]

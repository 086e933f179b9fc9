"""Train the fused ranker (LightGBM LambdaRank) and its ablations on the train split of the curated lists.

Editors' decisions in review (`decisions.jsonl`, `tune --decisions`) are extra labels that outrank the lists: an
accepted pair is relevant and a rejected one is not, whatever the lists say, and a decided candidate is scored
even when the candidate pool would not have held it. Only train-split events' decisions are used, so that the
test split stays unseen.

The model sees only the features of `recommender.rank.features` (text, vectors, names, dates): never a Related
section. It learns how signals combine, not which pairs are related, and is trained on train-split queries
alone, so a train event's list cannot reveal a test event's. Every reported figure is on the test split.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recommender.atomic import atomic_path, write_text
from recommender.index import Index
from recommender.rank import CASCADE, FEATURE_NAMES, GROUPS, RANKER_DIR, Recommender
from recommender.rank.calibration import CALIBRATION_FILE, Calibration, expected_calibration_error, fit_isotonic
from recommender.rank.candidates import allowed_rows, candidate_pool
from recommender.rank.features import feature_matrix, group_features
from recommender.rank.query import query_for_row
from recommender.truth import TIME_SPLIT, Truth, split_of, time_split_of

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
    index: Index,
    truth: Truth,
    query_ids: list[str],
    progress: bool = False,
    decisions: dict[str, dict[str, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features of the judged candidates of every query's pool, 0/1 labels from its curated list, and the number
    of judged candidates per query.

    Judged: in the query's list, or with a list of its own. An event in no list was never filed, not judged
    unrelated: counted as irrelevant, it would teach the ranker to push down every event without a list (the
    gap in the lists) rather than unrelated ones. So the other candidates are left out of training, after the
    features are computed on the whole pool (several are relative to it), exactly as at query time, where
    every candidate is ranked alike.

    `decisions`: editors' labels per query and candidate from review (1 accepted, 0 rejected), which override
    the list's; a decided candidate is judged, and is added to the pool when the pool would not hold it."""
    from tqdm import tqdm

    decisions = decisions or {}
    judged = np.zeros(len(index), dtype=bool)
    judged[[index.position[i] for i in truth.relevant if i in index.position]] = True
    features, labels, sizes = [], [], []
    for query_id in tqdm(query_ids, desc="features", unit="q", mininterval=1, disable=not progress):
        query = query_for_row(index, index.position[query_id])
        decided = {index.position[c]: v for c, v in decisions.get(query_id, {}).items() if c in index.position}
        decided.pop(index.position[query_id], None)
        extra = np.asarray(sorted(decided), dtype=np.int64) if decided else None
        pool = candidate_pool(index, query, allowed_rows(index, query, None, None), extra=extra)
        relevant = np.zeros(len(index), dtype=bool)
        relevant[[index.position[i] for i in truth.relevant.get(query_id, []) if i in index.position]] = True
        label = relevant[pool].astype(np.int32)
        keep = judged[pool] | relevant[pool]
        if decided:
            rows = np.asarray(sorted(decided), dtype=np.int64)
            at = np.searchsorted(pool, rows)
            label[at] = [decided[int(r)] for r in rows]
            keep[at] = True
        if not keep.any():
            continue
        features.append(feature_matrix(index, query, pool)[keep])
        labels.append(label[keep])
        sizes.append(int(keep.sum()))
    return np.vstack(features), np.concatenate(labels), np.asarray(sizes)


def cached_training_data(
    index: Index,
    truth: Truth,
    query_ids: list[str],
    cache: Path | None,
    progress: bool = False,
    decisions: dict[str, dict[str, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`training_data`, kept in `cache` (.npz) for the same index, queries and features, so that refitting
    with other parameters does not rebuild every candidate pool."""
    meta = index.meta
    key_parts = [meta.built_at, meta.count, query_ids, FEATURE_NAMES, "judged", decisions or {}]
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()
    if cache is not None and cache.exists():
        with np.load(cache) as saved:
            if str(saved["key"]) == key:
                return saved["features"], saved["labels"], saved["sizes"]
    features, labels, sizes = training_data(index, truth, query_ids, progress, decisions)
    if cache is not None:
        with atomic_path(cache) as tmp, tmp.open("wb") as file:
            np.savez(file, key=key, features=features, labels=labels, sizes=sizes)
    return features, labels, sizes


def train_queries(index: Index, truth: Truth, split_by: str = "hash") -> list[str]:
    """The queries with a list in the train part of the split (`hash` or `time`)."""
    if split_by == "time":
        return sorted(q for q in truth.relevant if time_split_of(index.date(index.position[q])) == "train")
    return sorted(q for q in truth.relevant if split_of(q) == "train")


def train_rankers(
    index: Index,
    truth: Truth,
    queries: int | None,
    seed: int,
    out: Path = RANKER_DIR,
    log: Callable[[str], None] = lambda _: None,
    cache: Path | None = None,
    progress: bool = False,
    ablations_too: bool = True,
    split_by: str = "hash",
    decisions: dict[str, dict[str, int]] | None = None,
) -> dict[str, list[str]]:
    """Train `fused` and one ablation per signal group on train-split queries (`split_by`: hash, the packaged
    rankers' split, or time, to measure forward in time); write them to `out`. `decisions`: editors' review
    decisions as labels (see the module docstring)."""
    import lightgbm

    train = train_queries(index, truth, split_by)
    if queries is not None and queries < len(train):
        train = sorted(np.random.default_rng(seed).choice(train, size=queries, replace=False).tolist())
    decided = decision_labels(decisions or {}, set(index.position))
    train = sorted(set(train) | set(decided))
    if decided:
        pairs = sum(len(v) for v in decided.values())
        log(f"editors' decisions: {pairs:,} decided pairs of {len(decided):,} train-split events as labels")
    log(f"building candidate pools and features for {len(train):,} train-split queries")
    features, labels, sizes = cached_training_data(index, truth, train, cache, progress, decided)
    log(f"{len(labels):,} candidates, {int(labels.sum()):,} relevant ({labels.sum() / len(train):.1f} per query)")
    out.mkdir(parents=True, exist_ok=True)
    systems: dict[str, dict[str, object]] = {}
    ablations = {f"fused-no-{g}": group_features(g) for g in GROUPS} if ablations_too else {}
    for name, removed in {"fused": (), **ablations}.items():
        kept = [f for f in FEATURE_NAMES if f not in removed]
        started = time.perf_counter()
        model = lightgbm.LGBMRanker(random_state=seed, n_jobs=2, **PARAMS)  # type: ignore[arg-type]
        model.fit(features[:, [FEATURE_NAMES.index(f) for f in kept]], labels, group=sizes)
        with atomic_path(out / f"{name}.txt") as tmp:
            model.booster_.save_model(str(tmp))
        systems[name] = {"model": f"{name}.txt", "features": kept}
        log(f"trained {name:<16} on {len(kept)} features in {time.perf_counter() - started:.0f}s")
    manifest = {
        "trained_on": {
            "train_queries": len(train),
            "seed": seed,
            "split": "train (80% by id hash)" if split_by == "hash" else f"train (to {TIME_SPLIT[0]})",
            "params": PARAMS,
        },
        "cascade": [list(stage) for stage in CASCADE],  # choose the model's own: eval/prune_agreement.py
        "systems": systems,
    }
    write_text(out / "rankers.json", json.dumps(manifest, indent=2) + "\n")
    return {name: list(spec["features"]) for name, spec in systems.items()}  # type: ignore[call-overload]


def copy_packaged_rankers(out: Path) -> None:
    """Copy the packaged rankers (manifest, models, confidence) into `out`, to refit their confidence there:
    the installed package is never written unless a command names it."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((RANKER_DIR / "rankers.json").read_text())
    files = ["rankers.json", CALIBRATION_FILE, *(spec["model"] for spec in manifest["systems"].values())]
    for name in files:
        if (RANKER_DIR / name).is_file():
            with atomic_path(out / name) as tmp:
                shutil.copyfile(RANKER_DIR / name, tmp)


def decision_labels(decisions: dict[str, dict[str, int]], known: set[str]) -> dict[str, dict[str, int]]:
    """The editors' labels that training may use: train-split events of the index, candidates in it."""
    kept = {
        event: {c: label for c, label in pairs.items() if c in known and c != event}
        for event, pairs in decisions.items()
        if event in known and split_of(event) == "train"
    }
    return {event: pairs for event, pairs in kept.items() if pairs}


def calibration_data(
    recommender: Recommender, truth: Truth, query_ids: list[str], k: int = 10, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The fused ranker's scores of each query's top `k` and whether each is in the query's curated list."""
    from tqdm import tqdm

    index = recommender.index
    scores, labels = [], []
    for query_id in tqdm(query_ids, desc="calibration", unit="q", disable=not progress, mininterval=1):
        ranked = recommender.rank(recommender.query(index.position[query_id]), k, "fused")
        relevant = {index.position[i] for i in truth.relevant[query_id]}
        scores.append(ranked.scores.astype(np.float64))
        labels.append(np.fromiter((int(r) in relevant for r in ranked.rows), dtype=np.int32, count=len(ranked.rows)))
    return np.concatenate(scores), np.concatenate(labels)


def fit_calibration(
    recommender: Recommender,
    truth: Truth,
    queries: int | None,
    seed: int,
    out: Path = RANKER_DIR,
    log: Callable[[str], None] = lambda _: None,
    progress: bool = False,
) -> Calibration:
    """Fit the fused ranker's confidence map on train-split queries only and write it beside the rankers."""
    train = sorted(q for q in truth.relevant if split_of(q) == "train")
    if queries is not None and queries < len(train):
        train = sorted(np.random.default_rng(seed).choice(train, size=queries, replace=False).tolist())
    log(f"calibrating the fused ranker's confidence on {len(train):,} train-split queries")
    scores, labels = calibration_data(recommender, truth, train, progress=progress)
    calibration = fit_isotonic(scores, labels)
    ece = expected_calibration_error(calibration(scores), labels)
    calibration.save(
        out / CALIBRATION_FILE,
        {"train_queries": len(train), "items": len(labels), "k": 10, "seed": seed, "train_ece": round(ece, 4)},
    )
    log(f"calibration: {len(labels):,} suggestions, {labels.mean():.3f} relevant; train ECE {ece:.4f}")
    return calibration

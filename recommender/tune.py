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
from recommender.judgments import GAIN, Judged
from recommender.rank import CASCADE, FEATURE_NAMES, GROUPS, RANKER_DIR, Recommender, load_rankers
from recommender.rank.calibration import CALIBRATION_FILE, JUDGED, Calibration, expected_calibration_error, fit_isotonic
from recommender.rank.candidates import allowed_rows, candidate_pool
from recommender.rank.features import feature_matrix, group_features
from recommender.rank.query import query_for_row
from recommender.rank.ranker import TREES, JudgedStage, Logistic
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


class TrainingDataError(ValueError):
    """The archive gives nothing to train or calibrate on (a one-line message for the CLI)."""


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
    if not train:
        raise TrainingDataError("--archive: no train-split event has a curated Related list: nothing to calibrate on")
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


# --- the judged stage: meaning from blind judgments (issue 30) ------------------------------------------------
STAGE_INPUTS = (TREES, "dense", "names", "bm25_raw")  # the trees' score and what carries meaning at any date
SAME_STORY_WEIGHT = 2.0  # a same-story item's gain, against 1 for related: the judged sets' graded gain
STAGE_L2 = 1.0  # ridge penalty on the standardised weights: a few thousand judged pairs, no more
# the trees' score from which they order a likely-related item themselves, chosen on the judged development
# events and on curated lists (eval/RESULTS.md, "Related by meaning (issue 30)")
STORY_TREES = 1.0
CALIBRATION_BLOCK = 100  # judged items per starting block of the confidence's isotonic fit


def judged_stage_data(recommender: Recommender, judged: Judged) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The judged pairs of `judged` whose event is indexed: the fused ranker's trees' score and the stage's
    other inputs of each, within the event's whole-archive pool (the judged candidates added, as review
    decisions are), its gain (2 same story, 1 related, 0 unrelated) and the event's number per pair."""
    index = recommender.index
    ranker = recommender.rankers["fused"]
    by_event: dict[str, dict[int, int]] = {}
    for (event, candidate), label in judged.labels.items():
        if event in index.position and candidate in index.position and event != candidate:
            by_event.setdefault(event, {})[index.position[candidate]] = GAIN[label]
    inputs, gains, events = [], [], []
    for number, event in enumerate(sorted(by_event)):
        query = recommender.query(index.position[event])
        rows = np.asarray(sorted(by_event[event]), dtype=np.int64)
        pool = candidate_pool(index, query, allowed_rows(index, query, None, None), extra=rows)
        features = feature_matrix(index, query, pool)
        at = np.searchsorted(pool, rows)
        trees = ranker.tree_scores(features)[at]
        inputs.append(JudgedStage.matrix_of(STAGE_INPUTS, features[at], trees))
        gains.append([by_event[event][int(r)] for r in rows])
        events.append(np.full(len(rows), number))
    return np.vstack(inputs), np.concatenate(gains), np.concatenate(events)


def fit_logistic(
    inputs: np.ndarray, labels: np.ndarray, l2: float = STAGE_L2, weights: np.ndarray | None = None
) -> Logistic:
    """Ridge logistic regression by Newton's method on standardised inputs (the intercept unpenalised), each
    row counted `weights` times (default once), returned in the inputs' own units."""
    mean, scale = inputs.mean(axis=0), inputs.std(axis=0) + 1e-9
    x = np.hstack([np.ones((len(inputs), 1)), (inputs - mean) / scale])
    y = labels.astype(np.float64)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    if not 0 < y.mean() < 1:
        raise ValueError("the judged pairs hold one label only: a logistic model needs both")
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 1e-9  # the intercept: all but unpenalised, the Hessian never singular
    theta = np.zeros(x.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ theta, -35.0, 35.0)))
        gradient = x.T @ (w * (p - y)) + penalty * theta
        hessian = (x * (w * p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-9:
            break
    weights = theta[1:] / scale
    return Logistic(tuple(float(w) for w in weights), float(theta[0] - weights @ mean))


def shown_judged(recommender: Recommender, judged: Judged, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The fused ranker's score of each judged item of each judged event's top `k`, and whether a judge called it
    related or the same story (unjudged items are left out)."""
    index = recommender.index
    scores, related = [], []
    for event in judged.events:
        if event not in index.position:
            continue
        ranked = recommender.rank(recommender.query(index.position[event]), k, "fused")
        for row, score in zip(ranked.rows.tolist(), ranked.scores.tolist(), strict=True):
            label = judged.labels.get((event, index.ids[row]))
            if label is not None:
                scores.append(score)
                related.append(label != "unrelated")
    return np.asarray(scores, dtype=np.float64), np.asarray(related, dtype=np.int32)


def fit_judged_stage(
    recommender: Recommender,
    judged: Judged,
    out: Path = RANKER_DIR,
    log: Callable[[str], None] = lambda _: None,
    keep_stage: bool = False,
) -> JudgedStage:
    """Fit the fused ranker's judged stage on the judged pairs of events not held out, write it into the
    manifest in `out`, and fit its confidence on the same pairs and the judged items of the same events' top 10
    by the new ranker: the calibrated probability that a judge calls a suggestion related or the same story.
    `keep_stage`: the stage already in `out` is kept (its order unchanged) and the confidence alone refitted."""
    development = judged.development()
    inputs, gains, events = judged_stage_data(recommender, development)
    log(
        f"judged pairs: {len(gains):,} of {len(np.unique(events))} events not held out "
        f"({int((gains == 2).sum())} same story, {int((gains == 1).sum())} related); "
        f"{len(judged.heldout)} held-out events left out"
    )
    manifest_path = out / "rankers.json"
    manifest = json.loads(manifest_path.read_text())
    if keep_stage:
        stage = JudgedStage.from_dict(manifest["systems"]["fused"]["judged_stage"])
        log("judged stage kept as it is in the manifest; the confidence alone is refitted")
    else:
        fitted = JudgedStage(
            STAGE_INPUTS,
            fit_logistic(inputs, gains == 2),
            fit_logistic(inputs, gains >= 1),
            SAME_STORY_WEIGHT,
            STORY_TREES,
        )
        stage = JudgedStage.from_dict(fitted.as_dict())  # as the manifest keeps it (rounded), so as queries use it
        manifest["systems"]["fused"]["judged_stage"] = stage.as_dict()
        manifest["judged_stage_fitted_on"] = {
            "pairs": len(gains),
            "events": len(np.unique(events)),
            "heldout_events_left_out": len(judged.heldout),
            "l2": STAGE_L2,
        }
        write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")
    # the confidence: fitted on every judged pair (its low scores are where filler lies) and again on the judged
    # items of the new ranker's own top 10s (what an editor is shown, where selection shifts the rate)
    shown, shown_related = shown_judged(Recommender(recommender.index, rankers=load_rankers(out)), development)
    scores = np.concatenate([stage.gain(inputs), shown])
    related = np.concatenate([(gains >= 1).astype(np.int32), shown_related])
    block = min(CALIBRATION_BLOCK, max(10, len(related) // 20))  # a few judged pairs: smaller blocks, 20 at least
    calibration = fit_isotonic(scores, related, min_block=block, label=JUDGED)
    ece = expected_calibration_error(calibration(shown), shown_related)
    calibration.save(
        out / CALIBRATION_FILE,
        {
            "items": "every judged pair of the development events, and the judged items of their top 10 again",
            "judged_pairs": len(gains),
            "judged_items_shown": len(shown),
            "events": len(development.events),
            "train_ece_shown": round(ece, 4),
        },
    )
    log(
        f"confidence: P(judged related or same story), fitted on {len(gains):,} judged pairs and the "
        f"{len(shown):,} judged items of the development events' top 10; ECE on those shown {ece:.4f}"
    )
    return stage

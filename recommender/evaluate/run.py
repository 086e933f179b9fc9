"""Rank the queries with every system and score the runs against the truth (metrics by ranx).

Queries are events with a curated list (or a seeded sample of them); candidates are the whole index except
the query, or (`window="month"`, the windowed eval) the events of the query's own calendar month alone, scored
against the part of its list in that month. No system reads a Related section: systems see only the index
(text, vectors, dates); the truth (`recommender.truth`) is read from the archive for scoring alone.
"""

from __future__ import annotations

import datetime as dt
import random as random_module
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from recommender.archive import Archive
from recommender.rank import Query, Recommender
from recommender.rank.candidates import allowed_rows
from recommender.truth import Truth, split_of, time_split_of

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
    split_by: str = "hash"  # hash: by id hash (truth.split_of); time: train to 2019-12-31, test from 2021-01-01
    since: dt.date | None = None
    until: dt.date | None = None
    k: int = K
    deep: int = 100  # ranking depth for the condensed-list metrics and bpref (0: not computed)
    window: str | None = None  # "month": queries and candidates within each query's calendar month

    @property
    def systems_ranked(self) -> tuple[str, ...]:
        """The systems that are not baselines."""
        return tuple(s for s in self.systems if s not in BASELINES)

    @classmethod
    def from_options(
        cls,
        queries: str,
        seed: int,
        systems: str,
        split: str,
        split_by: str,
        deep: int,
        since: dt.date | None,
        until: dt.date | None,
        window: str | None = None,
    ) -> EvalConfig:
        """The config of `recommender eval`'s options; a ValueError names the option that is off."""
        if queries != "all" and not (queries.isdigit() and int(queries) > 0):
            raise ValueError(f"--queries: {queries!r} is neither a positive number nor 'all'")
        if split not in ("all", "train", "test"):
            raise ValueError(f"--split: {split!r} is not one of all, train, test")
        if split_by not in ("hash", "time"):
            raise ValueError(f"--split-by: {split_by!r} is not one of hash, time")
        if window not in (None, "month"):
            raise ValueError(f"--window: {window!r} is not 'month'")
        if window and (since or until):
            raise ValueError("--window ranks each query within its own window: leave out --since and --until")
        chosen = tuple(s.strip() for s in systems.split(",") if s.strip())
        queried = None if queries == "all" else int(queries)
        return cls(queried, seed, chosen, split, split_by, since, until, K, deep, window)


def month_of(day: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of `day`'s calendar month."""
    first = day.replace(day=1)
    following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following - dt.timedelta(days=1)


def window_of(window: str | None) -> Callable[[dt.date], tuple[dt.date | None, dt.date | None]]:
    """Each query's candidate window: `month` (its calendar month) or None (no window of its own)."""
    if window is None:
        return lambda _: (None, None)
    if window == "month":
        return month_of
    raise ValueError(f"--window: {window!r} is not 'month'")


def within_windows(truth: Truth, dates: dict[str, dt.date], window: str) -> Truth:
    """`truth` with each query's list cut to the events of its own window; queries left with none dropped."""
    bounds = window_of(window)
    relevant: dict[str, list[str]] = {}
    for query_id, ids in truth.relevant.items():
        since, until = bounds(dates[query_id])
        inside = [i for i in ids if (since is None or dates[i] >= since) and (until is None or dates[i] <= until)]
        if inside:
            relevant[query_id] = inside
    return replace(truth, relevant=relevant)


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
    # metrics honest about incomplete judgments: condensed lists (unjudged candidates dropped) and bpref
    condensed: dict[str, dict[str, float]] = field(default_factory=dict)


def _deep_rows(
    recommender: Recommender,
    baselines: Baselines,
    system: str,
    query: Query,
    allowed: Any,
    config: EvalConfig,
    window: tuple[dt.date | None, dt.date | None],
) -> list[int]:
    """A system's ranking `config.deep` deep within `window` (since, until), for the condensed lists and bpref."""
    if system in BASELINES:
        return list(baselines.rank(system, query, allowed, config.deep))
    return [int(r) for r in recommender.rank(query, config.deep, system, *window).rows]


def _condensed(
    truth: Truth,
    query_ids: list[str],
    condensed_runs: dict[str, dict[str, dict[str, float]]],
    bpref: dict[str, list[float]],
    outside: dict[str, list[int]],
    k: int,
) -> dict[str, dict[str, float]]:
    """Each system's condensed-list metrics, bpref and share of judged events in its top k outside the list."""
    condensed_metrics, _ = score_runs(truth, query_ids, condensed_runs, k)
    return {
        system: {m: condensed_metrics[system][m] for m in ("precision@10", "ndcg@10", "mrr@10", "recall@10")}
        | {
            "bpref": round(float(np.mean(bpref[system])), 4),
            "judged_share_outside_list": round(outside[system][1] / max(outside[system][0], 1), 4),
        }
        for system in condensed_runs
    }


def select_queries(truth: Truth, config: EvalConfig, dates: dict[str, dt.date] | None = None) -> list[str]:
    ids = sorted(truth.relevant)
    if config.split != "all" and config.split_by == "time":
        if dates is None:
            raise ValueError("--split-by time needs the events' dates")
        ids = [i for i in ids if time_split_of(dates[i]) == config.split]
    elif config.split != "all":
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
    dates = {event_id: index.date(row) for event_id, row in index.position.items()}
    truth, query_ids, bounds = _eval_queries(recommender, truth, config, dates, log)
    baselines = Baselines(recommender, config.seed)
    deep_baselines = Baselines(recommender, config.seed + 1)  # the standard runs keep their own random draws
    runs: dict[str, dict[str, dict[str, float]]] = {s: {} for s in config.systems}
    condensed_runs: dict[str, dict[str, dict[str, float]]] = {s: {} for s in config.systems}
    bpref: dict[str, list[float]] = {s: [] for s in config.systems}
    # of the top-k items outside the query's list, how many have a list of their own: a ranker that learned
    # "has a curated list" as relevance shows it here, beside dense and BM25, which cannot know it
    outside: dict[str, list[int]] = {s: [0, 0] for s in config.systems}
    judged = {index.position[i] for i in truth.relevant if i in index.position}  # events with a list of their own
    seconds: dict[str, float] = defaultdict(float)
    sure: dict[str, tuple[list[float], list[int]]] = {}
    for query_id in tqdm(query_ids, disable=not progress, desc="eval", unit="q"):
        started = time.perf_counter()
        query = recommender.query(index.position[query_id])
        since, until = bounds(dates[query_id]) if config.window else (config.since, config.until)
        allowed = allowed_rows(index, query, since, until)
        # scores every system may use, computed once per query and timed apart
        _ = query.scores.dense, query.scores.bm25
        seconds["shared"] += time.perf_counter() - started
        for system in config.systems:
            started = time.perf_counter()
            if system in BASELINES:
                rows = baselines.rank(system, query, allowed, config.k)
                scores = [float(config.k - i) for i in range(len(rows))]
            else:
                ranked = recommender.rank(query, config.k, system, since, until)
                rows, scores = [int(r) for r in ranked.rows], [float(s) for s in ranked.scores]
                calibration = recommender.calibration
                if calibration is not None and calibration.system == system:
                    relevant = set(truth.relevant[query_id])
                    confidence, labels = sure.setdefault(system, ([], []))
                    confidence.extend(float(c) for c in calibration(ranked.scores))
                    labels.extend(int(index.ids[r] in relevant) for r in rows)
            seconds[system] += time.perf_counter() - started
            runs[system][query_id] = _run_scores(index.ids, rows, scores)
            relevant_rows = {index.position[i] for i in truth.relevant[query_id]}
            others = [r for r in rows if r not in relevant_rows]
            outside[system][0] += len(others)
            outside[system][1] += sum(r in judged for r in others)
            if config.deep:
                deep = _deep_rows(recommender, deep_baselines, system, query, allowed, config, (since, until))
                kept = [r for r in deep if r in relevant_rows or r in judged][: config.k]
                condensed_runs[system][query_id] = _run_scores(index.ids, kept, [0.0] * len(kept))
                bpref[system].append(binary_preference(deep, relevant_rows, judged))

    log(
        "scoring the runs with ranx"
        + (": its first use after an install compiles its metrics (about a minute, once)" if ranx_cold() else "")
    )
    metrics, per_query = score_runs(truth, query_ids, runs, config.k)
    log(
        f"shared scoring (query text, dense and BM25 scores of every event): "
        f"{1000 * seconds['shared'] / len(query_ids):.1f} ms/query"
    )
    for system in runs:
        metrics[system]["seconds_per_query"] = round(seconds[system] / len(query_ids), 5)
    condensed = _condensed(truth, query_ids, condensed_runs, bpref, outside, config.k) if config.deep else {}
    calibrated = {s: (np.asarray(c), np.asarray(y)) for s, (c, y) in sure.items()}
    result = EvalResult(
        config, runs, metrics, per_query, query_ids, truth, dict(seconds), confidence=calibrated, condensed=condensed
    )
    result.extra["judged_events"] = len(judged)
    if recommender.calibration is not None:
        result.extra["confidence_label"] = recommender.calibration.label
    return result


def _eval_queries(
    recommender: Recommender,
    truth: Truth,
    config: EvalConfig,
    dates: dict[str, dt.date],
    log: Callable[[str], None],
) -> tuple[Truth, list[str], Callable[[dt.date], tuple[dt.date | None, dt.date | None]]]:
    """The systems checked, the truth cut to each query's own window (--window), the queries chosen and each
    one's window; raises ValueError naming the option when they cannot be run."""
    unknown = [s for s in config.systems if s not in BASELINES and s not in recommender.systems]
    if unknown:
        known = ", ".join([*BASELINES, *recommender.systems])
        raise ValueError(f"--systems: unknown {', '.join(unknown)}; known: {known}")
    bounds = window_of(config.window)
    if config.window is not None:
        if config.since or config.until:
            raise ValueError("--window ranks each query within its own window: leave out --since and --until")
        truth = within_windows(truth, dates, config.window)
    query_ids = select_queries(truth, config, dates)
    if not query_ids:
        raise ValueError("no queries: no event with a curated list (or gold entry) is in the index")
    log(f"{len(query_ids):,} queries, {len(config.systems)} systems, {len(recommender.index):,} candidates")
    for warning in dropped_queries(truth, config, len(query_ids)):
        log(f"warning: {warning}")
    return truth, query_ids, bounds


def dropped_queries(truth: Truth, config: EvalConfig, chosen: int) -> list[str]:
    """Why fewer queries are run than asked for, or than the archive holds: events with a curated list that are
    not in the index (an index built from another archive), or whose list's items are not."""
    warnings = []
    if config.queries is not None and chosen < config.queries:
        warnings.append(
            f"{chosen:,} queries, not the {config.queries:,} asked for: only {len(truth.relevant):,} events with a "
            "curated list are in the index (and in the split)"
        )
    if truth.empty_queries > len(truth.relevant):
        warnings.append(
            f"{truth.empty_queries:,} of the archive's events with a curated list are left out (they, or every item of "
            "their list, are not in the index): was the index built from another archive?"
        )
    return warnings


def ranx_cold() -> bool:
    """Whether ranx's numba-compiled metrics are not cached yet (the first eval after an install compiles them)."""
    import importlib.util
    import os
    from pathlib import Path

    spec = importlib.util.find_spec("ranx")
    if spec is None or spec.origin is None:
        return False
    chosen = os.environ.get("NUMBA_CACHE_DIR")  # numba's cache there, else beside the package's modules
    place = Path(chosen) if chosen else Path(spec.origin).parent / "metrics" / "__pycache__"
    return not (place.is_dir() and next(place.rglob("*.nbi"), None))


def binary_preference(ranking: list[int], relevant: set[int], judged: set[int]) -> float:
    """bpref (Buckley and Voorhees 2004) of a deep ranking: each relevant item retrieved counts less for each
    judged non-relevant item (an event with a list of its own, not in this list) ranked above it; unjudged
    items are ignored, as if absent."""
    total = len(relevant)
    if not total:
        return 0.0
    above = 0
    score = 0.0
    for row in ranking:
        if row in relevant:
            score += 1 - min(above, total) / total
        elif row in judged:
            above += 1
    return score / total


def score_runs(
    truth: Truth, query_ids: list[str], runs: dict[str, dict[str, dict[str, float]]], k: int = K
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, np.ndarray]]]:
    """Mean and per-query metrics of each run (ranx), plus the lenient precision."""
    import warnings

    from numba.core.errors import NumbaTypeSafetyWarning
    from ranx import Qrels, Run, evaluate

    # ranx's precision casts its uint64 counts to int64 when numba compiles it: harmless, and no user's concern
    warnings.filterwarnings("ignore", category=NumbaTypeSafetyWarning)

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


def decision_precision(
    recommender: Recommender, judged: dict[str, dict[str, int]], systems: tuple[str, ...], k: int = K
) -> dict[str, dict[str, float]]:
    """Each system scored on the pairs editors decided in review (1 accepted, 0 rejected): of the decided pairs it
    ranks in its decided events' top k, the share accepted (`precision`), and the share of accepted pairs it ranks
    there (`accepted_recall`). Undecided items are left out, as in a condensed list."""
    index = recommender.index
    events = {e: pairs for e, pairs in judged.items() if e in index.position}
    accepted = sum(label for pairs in events.values() for label in pairs.values())
    total = sum(len(pairs) for pairs in events.values())
    out: dict[str, dict[str, float]] = {}
    for system in systems:
        if system in BASELINES:
            continue
        shown = hits = 0
        for event, pairs in events.items():
            ranked = recommender.rank(recommender.query(index.position[event]), k, system)
            top_ids = {index.ids[r] for r in ranked.rows}
            decided = [label for candidate, label in pairs.items() if candidate in top_ids]
            shown += len(decided)
            hits += sum(decided)
        out[system] = {
            "events": len(events),
            "pairs": total,
            "accepted": accepted,
            "rejected": total - accepted,
            f"decided_in_top{k}": shown,
            "precision": round(hits / shown, 4) if shown else 0.0,
            "accepted_recall": round(hits / accepted, 4) if accepted else 0.0,
        }
    return out


def evaluate_archive(
    recommender: Recommender,
    archive: Archive,
    config: EvalConfig,
    gold: Path | None = None,
    judged: dict[str, dict[str, int]] | None = None,
    progress: bool = False,
    log: Callable[[str], None] = lambda _: None,
    judgments: Path | None = None,
) -> EvalResult:
    """The eval of `recommender eval`: the truth from `gold` (JSON lines) or the archive's curated lists, every
    system ranked and scored, with `judged` (pairs decided in review) each system's precision on them, and with
    `judgments` (a folder of blind judgments, `recommender.judgments`) each system's judged figures."""
    from recommender.truth import truth_from_archive, truth_from_file

    known = set(recommender.index.ids)
    truth = truth_from_file(gold, known, archive) if gold else truth_from_archive(archive, known)
    result = run_eval(recommender, truth, config, progress=progress, log=log)
    if judged is not None:
        result.extra["decisions"] = decision_precision(recommender, judged, config.systems)
    if judgments is not None:
        from recommender.evaluate.judged import judged_figures
        from recommender.judgments import load_judged

        listed = set(truth.relevant)
        figures = judged_figures(recommender, load_judged(judgments), listed, config.systems_ranked, config.window)
        result.extra["judged"] = figures
    return result

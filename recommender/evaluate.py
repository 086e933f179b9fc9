"""Measure suggestions against the curated Related lists, beside baselines; metrics by ranx.

Queries are events with a curated list (or a seeded sample of them); candidates are the whole index except
the query. The truth is the query's curated list (links that do not resolve in the index left out), or the
lists of a `--gold` file. No system reads a Related section: systems see only the index (text, vectors,
dates); the archive's Related sections are read here for the truth and the lenient score alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random as random_module
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recommender.archive import Archive
from recommender.recommend import Query, Recommender

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


def split_of(event_id: str, test_share: int = 20) -> str:
    """A fixed train/test split by id hash: about `test_share`% of events are `test`."""
    bucket = int(hashlib.sha1(event_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "test" if bucket < test_share else "train"


@dataclass
class Truth:
    """Relevant ids per query, and what was left out building them."""

    relevant: dict[str, list[str]]
    stories: dict[str, set[str]]  # story names per event, from `_Context:_` (lenient score only)
    unresolved_links: int = 0
    empty_queries: int = 0


def truth_from_archive(archive: Archive, known: set[str]) -> Truth:
    relevant: dict[str, list[str]] = {}
    unresolved = empty = 0
    for event in archive.events.values():
        if not event.related:
            continue
        ids = [i for i in archive.curated_ids(event) if i in known]
        unresolved += len(event.related) - len(ids)
        if event.id not in known or not ids:
            empty += 1
            continue
        relevant[event.id] = ids
    return Truth(relevant, stories_of(archive), unresolved, empty)


def truth_from_file(path: Path, known: set[str], archive: Archive | None) -> Truth:
    """JSON lines `{"id": ..., "related": [ids]}`; ids outside the index are left out and counted."""
    relevant: dict[str, list[str]] = {}
    unresolved = empty = 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            event_id, related = row["id"], list(row["related"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a {{'id', 'related'}} JSON object ({exc})") from None
        ids = [i for i in related if i in known]
        unresolved += len(related) - len(ids)
        if event_id not in known or not ids:
            empty += 1
            continue
        relevant[event_id] = ids
    return Truth(relevant, stories_of(archive) if archive else {}, unresolved, empty)


def stories_of(archive: Archive) -> dict[str, set[str]]:
    """Each event's story names: the union of the `_Context:_` items of its curated links, normalised."""
    return {
        e.id: {c.lower().replace("–", "-").strip() for link in e.related for c in link.context}
        for e in archive.events.values()
        if e.related
    }


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
    for query_id in tqdm(query_ids, disable=not progress, desc="eval", unit="q"):
        started = time.perf_counter()
        query = recommender.query_for_row(index.position[query_id])
        allowed = recommender.allowed(query, config.since, config.until)
        # scores every system may use, computed once per query and timed apart
        query.dense = index.vectors @ query.vector
        query.bm25 = index.bm25_scores(query.tokens)
        seconds["shared"] += time.perf_counter() - started
        for system in config.systems:
            started = time.perf_counter()
            if system in BASELINES:
                rows = baselines.rank(system, query, allowed, config.k)
                scores = [float(config.k - i) for i in range(len(rows))]
            else:
                ranked = recommender.rank(query, config.k, system, config.since, config.until)
                rows, scores = [int(r) for r in ranked.rows], [float(s) for s in ranked.scores]
            seconds[system] += time.perf_counter() - started
            runs[system][query_id] = _run_scores(index.ids, rows, scores)

    metrics, per_query = score_runs(truth, query_ids, runs, config.k)
    log(
        f"shared scoring (query text, dense and BM25 scores of every event): "
        f"{1000 * seconds['shared'] / len(query_ids):.1f} ms/query"
    )
    for system in runs:
        metrics[system]["seconds_per_query"] = round(seconds[system] / len(query_ids), 5)
    return EvalResult(config, runs, metrics, per_query, query_ids, truth, dict(seconds))


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


# --- report -------------------------------------------------------------------------------------------
def breakdowns(result: EvalResult, archive_dates: dict[str, dt.date]) -> dict[str, dict[str, dict[str, Any]]]:
    """nDCG@10 and P@10 by year of the query and by length of its curated list."""
    groups: dict[str, dict[str, list[int]]] = {"year": defaultdict(list), "list_length": defaultdict(list)}
    for i, query_id in enumerate(result.query_ids):
        groups["year"][str(archive_dates[query_id].year)].append(i)
        length = len(result.truth.relevant[query_id])
        groups["list_length"]["1-3" if length <= 3 else "4-9" if length < 10 else "10"].append(i)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for by, buckets in groups.items():
        out[by] = {}
        for bucket in sorted(buckets, key=lambda b: int(b.split("-")[0])):
            rows = buckets[bucket]
            out[by][bucket] = {"queries": len(rows)} | {
                system: {m: round(float(np.mean(values[m][rows])), 4) for m in ("ndcg@10", "precision@10")}
                for system, values in result.per_query.items()
            }
    return out


def _ranx(result: EvalResult) -> tuple[Any, dict[str, Any]]:
    """ranx Qrels and Runs of a result, built once (each costs seconds on tens of thousands of queries)."""
    from ranx import Qrels, Run

    if result.ranx is None:
        qrels = Qrels({q: {d: 1 for d in result.truth.relevant[q]} for q in result.query_ids})
        runs = {
            s: Run({q: run.get(q, {}) for q in result.query_ids}, name=s)
            for s, run in result.runs.items()
            if any(run.values())
        }
        result.ranx = (qrels, runs)
    return result.ranx


def significance(result: EvalResult, against: tuple[str, ...] = ("bm25", "dense", "fused")) -> list[dict[str, Any]]:
    """Paired two-sided tests (ranx `compare`, Student's t) of every system against bm25, dense and fused."""
    from ranx import compare

    qrels, ranx_runs = _ranx(result)
    rows = []
    for base in against:
        if base not in ranx_runs:
            continue
        for system in result.runs:
            if system in (*against[: against.index(base) + 1], *BASELINES) or system not in ranx_runs:
                continue
            runs = [ranx_runs[base], ranx_runs[system]]
            report = compare(qrels, runs, ["ndcg@10", "precision@10"], stat_test="student", max_p=0.01).to_dict()
            pvalues = report[system]["comparisons"].get(base, {})
            rows.append(
                {"system": system, "against": base}
                | {
                    m: {
                        "delta": round(result.metrics[system][m] - result.metrics[base][m], 4),
                        "p": float(pvalues.get(m, float("nan"))),
                    }
                    for m in ("ndcg@10", "precision@10")
                }
            )
    return rows


def precision_curve(result: EvalResult) -> dict[str, dict[int, dict[str, float]]]:
    from ranx import evaluate

    qrels, ranx_runs = _ranx(result)
    ks = range(1, result.config.k + 1)
    curve: dict[str, dict[int, dict[str, float]]] = {}
    for system in result.runs:
        if system not in ranx_runs:  # a run with no document at all
            curve[system] = {k: {"precision": 0.0, "ndcg": 0.0} for k in ks}
            continue
        values = evaluate(
            qrels,
            ranx_runs[system],
            [f"{m}@{k}" for m in ("precision", "ndcg") for k in range(1, result.config.k + 1)],
        )
        curve[system] = {
            k: {m: float(values[f"{m}@{k}"]) for m in ("precision", "ndcg")} for k in range(1, result.config.k + 1)
        }
    return curve


def write_report(result: EvalResult, out: Path, archive_dates: dict[str, dt.date], command: str = "") -> Path:
    """Write report.md, metrics.json, run-<system>.json and PNG plots into `out`; returns report.md."""
    from recommender.atomic import write_text

    out.mkdir(parents=True, exist_ok=True)
    by = breakdowns(result, archive_dates)
    tests = significance(result)
    curve = precision_curve(result)
    truth = result.truth
    summary = {
        "queries": len(result.query_ids),
        "split": result.config.split,
        "seed": result.config.seed,
        "since": str(result.config.since) if result.config.since else None,
        "until": str(result.config.until) if result.config.until else None,
        "unresolved_truth_links": truth.unresolved_links,
        "queries_without_truth": truth.empty_queries,
        "seconds": {s: round(v, 2) for s, v in result.seconds.items()},
        "shared_ms_per_query": round(1000 * result.seconds.get("shared", 0.0) / max(len(result.query_ids), 1), 2),
        "command": command,
    } | result.extra
    metrics = {"systems": result.metrics, "run": summary, "breakdowns": by, "significance": tests}
    write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    for system, run in result.runs.items():
        write_text(out / f"run-{system}.json", json.dumps(run))
    plots = _plots(result, curve, by, out)

    lines = [f"# Evaluation: {len(result.query_ids):,} queries", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [
        f"Truth: curated Related lists ({truth.unresolved_links:,} links that do not resolve in the index left "
        f"out; {truth.empty_queries:,} queries left with none skipped). Split: {result.config.split}. "
        f"Candidates: every indexed event but the query"
        + (
            f", dated {result.config.since or '...'} to {result.config.until or '...'}"
            if result.config.since or result.config.until
            else ""
        )
        + ".",
        "",
        "| system | P@1 | P@5 | P@10 | R@10 | nDCG@10 | MRR@10 | MAP@10 | hit@10 | lenient P@10 | ms/query |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for system, m in result.metrics.items():
        cells = [m[x] for x in [*METRICS, "lenient_precision@10"]]
        lines.append(
            f"| {system} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {1000 * m['seconds_per_query']:.1f} |"
        )
    lines += [
        "",
        f"ms/query is each system's own time; the scores they share (dense and BM25 against every event) took "
        f"{summary['shared_ms_per_query']} ms/query more.",
    ]
    if tests:
        lines += [
            "",
            "## Significance (paired Student's t-test, two-sided)",
            "",
            "| system | vs | Δ nDCG@10 | p | Δ P@10 | p |",
            "|---|---|---|---|---|---|",
        ]
        for t in tests:
            lines.append(
                f"| {t['system']} | {t['against']} | {t['ndcg@10']['delta']:+.4f} | "
                f"{_p(t['ndcg@10']['p'])} | {t['precision@10']['delta']:+.4f} | "
                f"{_p(t['precision@10']['p'])} |"
            )
    for key, title in (("year", "By year of the query"), ("list_length", "By length of the curated list")):
        systems = list(result.runs)
        lines += [
            "",
            f"## {title} (nDCG@10)",
            "",
            "| " + key.replace("_", " ") + " | queries | " + " | ".join(systems) + " |",
            "|---|---|" + "---|" * len(systems),
        ]
        for bucket, row in by[key].items():
            lines.append(
                f"| {bucket} | {row['queries']} | " + " | ".join(f"{row[s]['ndcg@10']:.3f}" for s in systems) + " |"
            )
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    lines += [
        "",
        "Lenient P@10: share of the top 10 whose own curated `_Context:_` story names intersect the "
        "query's (read for scoring only; no system sees them).",
    ]
    report = out / "report.md"
    write_text(report, "\n".join(lines) + "\n")
    return report


def _p(value: float) -> str:
    return "<1e-300" if value == 0 else f"{value:.2g}"


def _plots(
    result: EvalResult,
    curve: dict[str, dict[int, dict[str, float]]],
    by: dict[str, dict[str, dict[str, Any]]],
    out: Path,
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recommender.atomic import atomic_path

    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for system, points in curve.items():
        ks = sorted(points)
        for ax, metric in zip(axes, ("precision", "ndcg"), strict=True):
            ax.plot(ks, [points[k][metric] for k in ks], marker="o", label=system)
    for ax, metric in zip(axes, ("P@k", "nDCG@k"), strict=True):
        ax.set_xlabel("k")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    axes[1].legend()
    with atomic_path(out / "precision_at_k.png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    paths.append(out / "precision_at_k.png")
    plt.close(fig)

    years = list(by["year"])
    fig, ax = plt.subplots(figsize=(11, 4))
    for system in result.runs:
        ax.plot(years, [by["year"][y][system]["ndcg@10"] for y in years], marker="o", label=system)
    ax.set_title("nDCG@10 by year of the query")
    ax.tick_params(axis="x", rotation=45)
    ax.grid(alpha=0.3)
    ax.legend()
    with atomic_path(out / "ndcg_by_year.png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    paths.append(out / "ndcg_by_year.png")
    plt.close(fig)
    return paths

"""The eval's report: report.md, metrics.json, the runs, breakdowns by year and list length, significance, plots."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from recommender.atomic import atomic_path, write_text
from recommender.evaluate.judged import judged_table
from recommender.evaluate.run import BASELINES, METRICS, EvalResult
from recommender.rank.calibration import CURATED, expected_calibration_error, reliability


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
    calibration: dict[str, dict[str, Any]] = {
        system: {
            "items": len(labels),
            "expected_calibration_error": round(expected_calibration_error(confidence, labels), 4),
            "reliability": reliability(confidence, labels),
        }
        for system, (confidence, labels) in result.confidence.items()
    }
    summary["split_by"] = result.config.split_by
    summary["queries_used"] = queries_used(result)
    metrics = {
        "systems": result.metrics,
        "condensed": result.condensed,
        "run": summary,
        "breakdowns": by,
        "significance": tests,
        "calibration": calibration,
    }
    decided = result.extra.get("decisions")
    if decided:
        metrics["decisions"] = decided
    write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    for system, run in result.runs.items():
        write_text(out / f"run-{system}.json", json.dumps(run))
    plots = _plots(result, curve, by, out)

    lines = [f"# Evaluation: {len(result.query_ids):,} queries", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [
        f"Truth: curated Related lists ({truth.unresolved_links:,} links that do not resolve in the index left "
        f"out; {truth.empty_queries:,} queries left with none skipped). Queries: {summary['queries_used']}. "
        f"Candidates: every indexed event but the query"
        + (
            f", dated {result.config.since or '...'} to {result.config.until or '...'}"
            if result.config.since or result.config.until
            else ""
        )
        + (
            ", those of the query's own calendar month alone (windowed; its list cut to that month)"
            if result.config.window == "month"
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
    if result.condensed:
        lines += [
            "",
            "## Honest about incomplete judgments: condensed lists and bpref",
            "",
            f"Only {result.extra.get('judged_events', 0):,} events have a curated list: an event in no list was never "
            f"judged, not judged unrelated. Here each system ranks {result.config.deep} deep; candidates that are "
            "neither in the query's list nor have a list of their own (unjudged) are dropped and the first 10 left "
            "are scored (Sakai 2007); bpref scores the deep ranking against judged candidates alone (Buckley and "
            "Voorhees 2004). Judged relevant: the query's curated list; judged not relevant: events with a list of "
            "their own that is not the query's. The last column: of each system's top 10 outside the query's list, "
            "the share that has a list of its own (about 29% of all events do): far above dense and BM25's share, "
            "it would say a ranker learned the gaps in the lists rather than relatedness.",
            "",
            "| system | condensed P@10 | condensed nDCG@10 | condensed MRR@10 | condensed R@10 | bpref "
            "| top 10 outside the list: share with a list |",
            "|---|---|---|---|---|---|---|",
        ]
        for system, m in result.condensed.items():
            keys = ("precision@10", "ndcg@10", "mrr@10", "recall@10", "bpref", "judged_share_outside_list")
            cells = [m[x] for x in keys]
            lines.append(f"| {system} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
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
    judged_by = result.extra.get("confidence_label", CURATED)
    for system, c in calibration.items():
        meaning = (
            "A suggestion shown with confidence 0.7 is in the curated list about 70% of the time."
            if judged_by == CURATED
            else f"Its confidence is the probability that a blind judge calls the suggestion {judged_by} "
            "(calibrated on judged items; its error on them is in the judged table). A curated list keeps the 10 "
            "nearest in date of a story, so against the lists the confidence runs above the in-list rate."
        )
        lines += [
            "",
            f"## Confidence of {system} against the curated lists",
            "",
            f"Expected calibration error over its {c['items']:,} suggestions (top {result.config.k} of each query, "
            f"10 equal-width bins): **{c['expected_calibration_error']:.4f}**. {meaning}",
            "",
            "| confidence bin | suggestions | mean confidence | in the curated list |",
            "|---|---|---|---|",
        ]
        for b in c["reliability"]:
            lines.append(
                f"| {b['bin'] / 10:.1f}-{(b['bin'] + 1) / 10:.1f} | {b['items']:,} | {b['confidence']:.3f} | "
                f"{b['observed']:.3f} |"
            )
    if "judged" in result.extra:
        lines += [
            "",
            "## Blind judgments (same story / related / unrelated)",
            "",
            "Each system's top 10 of the judged events (eval/judged/), ranked as above"
            + (" (within each event's calendar month)" if result.config.window else "")
            + ": same-story and related-or-better P@10 over the judged items; unjudged items are left out, never "
            "counted right or wrong. `heldout`: events no fit or choice saw; `dev`: the rest. ECE: the confidence "
            'against "judged related or same story".',
            "",
            *judged_table(result.extra["judged"]),
        ]
    if decided:
        lines += [
            "",
            "## Precision on pairs decided in review",
            "",
            "Of the pairs editors decided in `recommender review` (decisions.jsonl) that a system ranks in the "
            "top 10 of their event, the share accepted; and the share of accepted pairs it ranks there.",
            "",
            "| system | decided pairs in the top 10 | precision | accepted recall |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {system} | {m['decided_in_top10']:,} | {m['precision']:.3f} | {m['accepted_recall']:.3f} |"
            for system, m in decided.items()
        ]
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
    paths.append(_save(fig, out / "precision_at_k.png"))

    years = list(by["year"])
    fig, ax = plt.subplots(figsize=(11, 4))
    for system in result.runs:
        ax.plot(years, [by["year"][y][system]["ndcg@10"] for y in years], marker="o", label=system)
    ax.set_title("nDCG@10 by year of the query")
    ax.tick_params(axis="x", rotation=45)
    ax.grid(alpha=0.3)
    ax.legend()
    paths.append(_save(fig, out / "ndcg_by_year.png"))

    if result.confidence:
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
        for system, (confidence, labels) in result.confidence.items():
            bins = reliability(confidence, labels)
            ece = expected_calibration_error(confidence, labels)
            ax.plot(
                [b["confidence"] for b in bins],
                [b["observed"] for b in bins],
                marker="o",
                label=f"{system} (ECE {ece:.3f})",
            )
        ax.set_xlabel("confidence shown")
        ax.set_ylabel("share in the curated list")
        ax.set_title("Reliability of the confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend()
        paths.append(_save(fig, out / "reliability.png"))
    return paths


def queries_used(result: EvalResult) -> str:
    """Which queries the figures use, said plainly (the packaged rankers learned from the hash split's train)."""
    config = result.config
    if config.split_by == "time":
        which = {"train": "dated up to 2019-12-31", "test": "dated from 2021-01-01", "all": "of every date"}
        base = f"events with a curated list {which.get(config.split, config.split)} (time split)"
        trained = "the trained rankers learned from the hash split's train part, which includes some of these"
    else:
        base = f"events with a curated list in the {config.split} split (by id hash)"
        trained = (
            "none of these trained the rankers"
            if config.split == "test"
            else "the trained rankers (fused and its ablations) learned from the train part of these"
        )
    sample = "all of them" if config.queries is None else f"a sample of {config.queries:,} (seed {config.seed})"
    return f"{base}, {sample}; {trained}"


def _save(fig: Any, path: Path) -> Path:
    """Write a figure as PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path

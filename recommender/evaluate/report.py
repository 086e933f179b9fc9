"""The eval's report: report.md, metrics.json, the runs, breakdowns by year and list length, significance, plots."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recommender.atomic import atomic_path, write_text
from recommender.evaluate.judged import judged_table
from recommender.evaluate.run import BASELINES, METRICS, EvalResult
from recommender.rank.calibration import CURATED, expected_calibration_error, reliability
from recommender.wording import count


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


@dataclass
class EvalReport:
    """An eval's figures, measured once, and their renderings: metrics.json, the runs, report.md and its plots,
    and the table the command line prints."""

    result: EvalResult
    archive_dates: dict[str, dt.date]
    command: str = ""
    by: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    tests: list[dict[str, Any]] = field(default_factory=list)
    curve: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)
    calibration: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, result: EvalResult, archive_dates: dict[str, dt.date], command: str = "") -> EvalReport:
        calibration = {
            system: {
                "items": len(labels),
                "expected_calibration_error": round(expected_calibration_error(confidence, labels), 4),
                "reliability": reliability(confidence, labels),
            }
            for system, (confidence, labels) in result.confidence.items()
        }
        by = breakdowns(result, archive_dates)
        return cls(result, archive_dates, command, by, significance(result), precision_curve(result), calibration)

    def summary(self) -> dict[str, Any]:
        result, config = self.result, self.result.config
        return (
            {
                "queries": len(result.query_ids),
                "split": config.split,
                "seed": config.seed,
                "since": str(config.since) if config.since else None,
                "until": str(config.until) if config.until else None,
                "unresolved_truth_links": result.truth.unresolved_links,
                "queries_without_truth": result.truth.empty_queries,
                "seconds": {s: round(v, 2) for s, v in result.seconds.items()},
                "shared_ms_per_query": round(
                    1000 * result.seconds.get("shared", 0.0) / max(len(result.query_ids), 1), 2
                ),
                "command": self.command,
            }
            | result.extra
            | {"split_by": config.split_by, "queries_used": queries_used(result)}
        )

    def metrics(self) -> dict[str, Any]:
        """What metrics.json holds."""
        metrics = {
            "systems": self.result.metrics,
            "condensed": self.result.condensed,
            "run": self.summary(),
            "breakdowns": self.by,
            "significance": self.tests,
            "calibration": self.calibration,
        }
        decided = self.result.extra.get("decisions")
        return metrics | {"decisions": decided} if decided else metrics

    def write(self, out: Path) -> Path:
        """Write report.md, metrics.json, run-<system>.json and PNG plots into `out`; returns report.md."""
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "metrics.json", json.dumps(self.metrics(), indent=2))
        for system, run in self.result.runs.items():
            write_text(out / f"run-{system}.json", json.dumps(run))
        report = out / "report.md"
        write_text(report, self.markdown(_plots(self.result, self.curve, self.by, out)))
        return report

    def markdown(self, plots: list[Path]) -> str:
        lines = [
            *self._systems_table(),
            *self._condensed_table(),
            *self._significance_table(),
            *self._breakdown_tables(),
            *self._calibration_tables(),
            *self._judged_table(),
            *self._decisions_table(),
            *["", "## Plots", ""],
            *[f"![{p.stem}]({p.name})" for p in plots],
            "",
            "Lenient P@10: share of the top 10 whose own curated `_Context:_` story names intersect the "
            "query's (read for scoring only; no system sees them).",
        ]
        return "\n".join(lines) + "\n"

    def console(self) -> list[str]:
        """The lines the command line prints: the main metrics, the calibration error, the decided pairs."""
        result = self.result
        columns = ("P@10", "R@10", "nDCG@10", "MRR@10", "lenient", "cond. nDCG", "bpref")
        lines = [f"{'system':<16}" + "".join(f"{c:>12}" for c in columns)]
        for system, m in result.metrics.items():
            values = [m[x] for x in ("precision@10", "recall@10", "ndcg@10", "mrr@10", "lenient_precision@10")]
            condensed = result.condensed.get(system)
            values += [condensed["ndcg@10"], condensed["bpref"]] if condensed else []
            lines.append(f"{system:<16}" + "".join(f"{v:>12.3f}" for v in values))
        for system, c in self.calibration.items():
            lines.append(
                f"{system} confidence: expected calibration error {c['expected_calibration_error']:.4f} over "
                f"{c['items']:,} suggestions"
            )
        if "judged" in result.extra:
            lines += judged_table(result.extra["judged"])
        decided: dict[str, dict[str, float]] | None = result.extra.get("decisions")
        if decided is not None:
            first = next(iter(decided.values()), {"pairs": 0, "accepted": 0, "rejected": 0, "events": 0})
            lines.append(
                f"precision on decided pairs ({count(int(first['pairs']), 'pair')} of "
                f"{count(int(first['events']), 'event')} in decisions.jsonl: {first['accepted']:,.0f} accepted, "
                f"{first['rejected']:,.0f} rejected):"
            )
            lines += [
                f"{system:<16} precision {m['precision']:.3f} over {m['decided_in_top10']:,.0f} decided pairs in "
                f"the top 10; accepted recall {m['accepted_recall']:.3f}"
                for system, m in decided.items()
            ]
        return lines

    def _systems_table(self) -> list[str]:
        result, config, truth = self.result, self.result.config, self.result.truth
        window = f", dated {config.since or '...'} to {config.until or '...'}" if config.since or config.until else ""
        if config.window == "month":
            window = ", those of the query's own calendar month alone (windowed; its list cut to that month)"
        lines = [f"# Evaluation: {len(result.query_ids):,} queries", ""]
        if self.command:
            lines += ["```", self.command, "```", ""]
        lines += [
            f"Truth: curated Related lists ({truth.unresolved_links:,} links that do not resolve in the index left "
            f"out; {truth.empty_queries:,} queries left with none skipped). Queries: {queries_used(result)}. "
            f"Candidates: every indexed event but the query{window}.",
            "",
            "| system | P@1 | P@5 | P@10 | R@10 | nDCG@10 | MRR@10 | MAP@10 | hit@10 | lenient P@10 | ms/query |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for system, m in result.metrics.items():
            cells = " | ".join(f"{m[x]:.3f}" for x in [*METRICS, "lenient_precision@10"])
            lines.append(f"| {system} | {cells} | {1000 * m['seconds_per_query']:.1f} |")
        return [
            *lines,
            "",
            f"ms/query is each system's own time; the scores they share (dense and BM25 against every event) took "
            f"{self.summary()['shared_ms_per_query']} ms/query more.",
        ]

    def _condensed_table(self) -> list[str]:
        result = self.result
        if not result.condensed:
            return []
        lines = [
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
        keys = ("precision@10", "ndcg@10", "mrr@10", "recall@10", "bpref", "judged_share_outside_list")
        for system, m in result.condensed.items():
            lines.append(f"| {system} | " + " | ".join(f"{m[x]:.3f}" for x in keys) + " |")
        return lines

    def _significance_table(self) -> list[str]:
        if not self.tests:
            return []
        return [
            "",
            "## Significance (paired Student's t-test, two-sided)",
            "",
            "| system | vs | Δ nDCG@10 | p | Δ P@10 | p |",
            "|---|---|---|---|---|---|",
        ] + [
            f"| {t['system']} | {t['against']} | {t['ndcg@10']['delta']:+.4f} | {_p(t['ndcg@10']['p'])} | "
            f"{t['precision@10']['delta']:+.4f} | {_p(t['precision@10']['p'])} |"
            for t in self.tests
        ]

    def _breakdown_tables(self) -> list[str]:
        lines: list[str] = []
        systems = list(self.result.runs)
        for key, title in (("year", "By year of the query"), ("list_length", "By length of the curated list")):
            lines += [
                "",
                f"## {title} (nDCG@10)",
                "",
                "| " + key.replace("_", " ") + " | queries | " + " | ".join(systems) + " |",
                "|---|---|" + "---|" * len(systems),
            ]
            for bucket, row in self.by[key].items():
                cells = " | ".join(f"{row[s]['ndcg@10']:.3f}" for s in systems)
                lines.append(f"| {bucket} | {row['queries']} | {cells} |")
        return lines

    def _calibration_tables(self) -> list[str]:
        lines: list[str] = []
        judged_by = self.result.extra.get("confidence_label", CURATED)
        meaning = (
            ""
            if judged_by == CURATED
            else f" Its confidence is the probability that a blind judge calls the suggestion {judged_by} "
            "(calibrated on judged items; its error on them is in the judged table); a curated list keeps only the "
            "10 nearest in date of a story, so against the lists it runs above the in-list rate."
        )
        for system, c in self.calibration.items():
            lines += [
                "",
                f"## Confidence of {system} against the curated lists",
                "",
                f"Expected calibration error over its {c['items']:,} suggestions (top {self.result.config.k} of "
                f"each query, 10 equal-width bins): **{c['expected_calibration_error']:.4f}**. "
                + calibration_sentence(c["reliability"])
                + meaning,
                "",
                "| confidence bin | suggestions | mean confidence | in the curated list |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| {b['bin'] / 10:.1f}-{(b['bin'] + 1) / 10:.1f} | {b['items']:,} | {b['confidence']:.3f} | "
                f"{b['observed']:.3f} |"
                for b in c["reliability"]
            ]
        return lines

    def _judged_table(self) -> list[str]:
        figures = self.result.extra.get("judged")
        if not figures:
            return []
        windowed = " (within each event's calendar month)" if self.result.config.window else ""
        return [
            "",
            "## Blind judgments (same story / related / unrelated)",
            "",
            f"Each system's top 10 of the judged events (eval/judged/){windowed}: same-story and related-or-better "
            "P@10 over the judged items; unjudged items are left out, never counted right or wrong. `heldout`: "
            'events no fit or choice saw; `dev`: the rest. ECE: the confidence against "judged related or same '
            'story".',
            "",
            *judged_table(figures),
        ]

    def _decisions_table(self) -> list[str]:
        decided = self.result.extra.get("decisions")
        if not decided:
            return []
        return [
            "",
            "## Precision on pairs decided in review",
            "",
            "Of the pairs editors decided in `recommender review` (decisions.jsonl) that a system ranks in the "
            "top 10 of their event, the share accepted; and the share of accepted pairs it ranks there.",
            "",
            "| system | decided pairs in the top 10 | precision | accepted recall |",
            "|---|---|---|---|",
        ] + [
            f"| {system} | {m['decided_in_top10']:,} | {m['precision']:.3f} | {m['accepted_recall']:.3f} |"
            for system, m in decided.items()
        ]


def calibration_sentence(bins: list[dict[str, Any]]) -> str:
    """What the confidence means, said from the measured bins: in the bin that holds the most suggestions, the
    mean confidence shown against the share found in the curated list."""
    filled = [b for b in bins if b["items"]]
    if not filled:
        return "No suggestion had a confidence to measure."
    b = max(filled, key=lambda b: b["items"])
    return (
        f"Measured here: of the {b['items']:,} suggestions shown with confidence {b['bin'] / 10:.1f}-"
        f"{(b['bin'] + 1) / 10:.1f} (mean {b['confidence']:.2f}), {b['observed']:.0%} are in the curated list."
    )


def write_report(result: EvalResult, out: Path, archive_dates: dict[str, dt.date], command: str = "") -> Path:
    """Write report.md, metrics.json, run-<system>.json and PNG plots into `out`; returns report.md."""
    return EvalReport.of(result, archive_dates, command).write(out)


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

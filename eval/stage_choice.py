"""Choose the fused ranker's judged stage on development events only: cross-validated by event, beside dense.

    python eval/stage_choice.py --archive ../shared/archive --index models/full --judged eval/judged

Every development event of the judged sets (never a held-out one) is ranked once: its whole-archive pool, the
feature table and the trees' score (the cascade as served). Each variant of the stage (its inputs, which judged
events it is fitted on, the tier: where the trees order first) is then fitted on four fifths of the events and
ranks the other fifth, five times; the table prints same-story and related-or-better P@10 over the judged items
of each variant's top 10, per group (with / without a list), with how many items are unjudged, and dense's
beside. The curated-list check: nDCG@10 of each variant fitted on every development event, on `--queries`
train-split events with a list (the trees learned that split; the variants are compared with each other).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent / "judged"
FOLDS = 5
RICHER = ("trees", "dense", "names", "bm25_raw", "names_max_idf", "dense_rank")
MEANING = ("dense", "names", "bm25_raw", "names_max_idf", "dense_rank")


@dataclass
class Ranked:
    """One event's pool as the ranker sees it, and its judged pairs' inputs for a fit."""

    event: str
    listed: bool
    query: object
    pool: np.ndarray
    table: np.ndarray
    trees: np.ndarray
    fit_table: np.ndarray  # the judged candidates' rows of a pool with them added (as `tune` fits)
    fit_trees: np.ndarray
    fit_gains: np.ndarray


@dataclass(frozen=True)
class Variant:
    name: str
    inputs: tuple[str, ...] = ("trees", "dense", "names", "bm25_raw")
    story_trees: float | None = 1.0
    story_related: float = 0.5
    same_story_weight: float = 2.0
    fit_on: str = "all"  # "all" development events, or "unlisted" only (as the shipped stage was)
    bar_inputs: tuple[str, ...] | None = None  # the tier's relatedness bar from a model of these alone


def gold_ids(archive: Path) -> dict[str, set[str]]:
    with gzip.open(archive / "gold.jsonl.gz", "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return {row["id"]: set(row["related"]) for row in rows}


def prepare(recommender, events: list[str], labels: dict, listed: set[str]) -> list[Ranked]:  # type: ignore[no-untyped-def]
    from recommender.index.layout import READY_K
    from recommender.judgments import GAIN
    from recommender.rank.candidates import allowed_rows, candidate_pool
    from recommender.rank.features import feature_matrix
    from recommender.rank.ranker import cascade_for

    index, ranker = recommender.index, recommender.rankers["fused"]
    out = []
    for event in events:
        query = recommender.query(index.position[event])
        mask = allowed_rows(index, query, None, None)
        pool = candidate_pool(index, query, mask)
        table = feature_matrix(index, query, pool)
        trees = ranker.tree_scores_many([table], cascade_for(ranker.cascade, READY_K))[0]
        judged = {index.position[c]: GAIN[lab] for (q, c), lab in labels.items() if q == event and c in index.position}
        judged.pop(index.position[event], None)
        rows = np.asarray(sorted(judged), dtype=np.int64)
        fit_pool = candidate_pool(index, query, mask, extra=rows) if len(rows) else pool
        fit_table = feature_matrix(index, query, fit_pool)[np.searchsorted(fit_pool, rows)] if len(rows) else table[:0]
        fit_trees = ranker.tree_scores(fit_table) if len(rows) else trees[:0]
        gains = np.asarray([judged[int(r)] for r in rows], dtype=np.int32)
        out.append(Ranked(event, event in listed, query, pool, table, trees, fit_table, fit_trees, gains))
    return out


def stage_for(variant: Variant, train: list[Ranked]):  # type: ignore[no-untyped-def]
    from recommender.rank.ranker import JudgedStage
    from recommender.tune import fit_logistic

    used = [r for r in train if variant.fit_on == "all" or not r.listed]
    inputs = np.vstack([JudgedStage.matrix_of(variant.inputs, r.fit_table, r.fit_trees) for r in used])
    gains = np.concatenate([r.fit_gains for r in used])
    stage = JudgedStage(
        variant.inputs,
        fit_logistic(inputs, gains == 2),
        fit_logistic(inputs, gains >= 1),
        variant.same_story_weight,
        variant.story_trees,
        variant.story_related,
    )
    if variant.bar_inputs is None:
        return stage
    bar_inputs = np.vstack([JudgedStage.matrix_of(variant.bar_inputs, r.fit_table, r.fit_trees) for r in used])
    return BarStage(stage, variant.bar_inputs, fit_logistic(bar_inputs, gains >= 1))


class BarStage:
    """A stage whose tier asks a model of meaning alone (no trees) whether a judge would call the item related."""

    def __init__(self, stage, inputs: tuple[str, ...], bar) -> None:  # type: ignore[no-untyped-def]
        self.stage, self.inputs, self.bar = stage, inputs, bar

    def score(self, features: np.ndarray, trees: np.ndarray) -> np.ndarray:
        from recommender.rank.ranker import JudgedStage

        stage = self.stage
        alive = np.isfinite(trees)
        scores = np.full(len(trees), -np.inf, dtype=np.float32)
        x = JudgedStage.matrix_of(stage.inputs, features[alive], trees[alive])
        gain = stage.same_story_weight * stage.same_story(x) + stage.related(x)
        related = self.bar(JudgedStage.matrix_of(self.inputs, features[alive], trees[alive]))
        sure = (trees[alive] >= stage.story_trees) & (related >= stage.story_related)
        scores[alive] = np.where(sure, stage.same_story_weight + 1 + trees[alive], gain)
        return scores


def top10(recommender, ranked: Ranked, scores: np.ndarray) -> list[str]:  # type: ignore[no-untyped-def]
    from recommender.rank.select import select

    index = recommender.index
    picked = select(index, ranked.query, ranked.pool, scores, 10, recommender.near_duplicate)
    return [index.ids[int(r)] for r in ranked.pool[picked]]


def dense10(recommender, ranked: Ranked) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.id for s in recommender.related(ranked.event, k=10, system="dense")]


def judged_p10(labels: dict, event: str, ids: list[str]) -> tuple[float, float, int, int]:
    """(same story, related or better) summed over judged items, judged count, unjudged count."""
    found = [labels.get((event, i)) for i in ids]
    judged = [label for label in found if label is not None]
    same = sum(label == "same_story" for label in judged)
    related = sum(label != "unrelated" for label in judged)
    return same, related, len(judged), len(found) - len(judged)


def table_of(rows: dict[str, list[tuple[float, float, int, int]]]) -> str:
    def part(values: list[tuple[float, float, int, int]]) -> str:
        if not values:
            return "-"
        judged = sum(v[2] for v in values) or 1
        return (
            f"S {sum(v[0] for v in values) / judged:.3f} R+ {sum(v[1] for v in values) / judged:.3f} "
            f"(unjudged {sum(v[3] for v in values)})"
        )

    return " | ".join(f"{group} {part(values)}" for group, values in rows.items())


def ndcg10(ids: list[str], relevant: set[str]) -> float:
    gains = [1.0 / np.log2(i + 2) for i, c in enumerate(ids[:10]) if c in relevant]
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(10, len(relevant))))
    return sum(gains) / ideal if ideal else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, default=Path("../shared/archive"))
    parser.add_argument("--index", type=Path, default=Path("models/full"))
    parser.add_argument("--judged", type=Path, default=HERE)
    parser.add_argument("--queries", type=int, default=400, help="train-split events with a list, for nDCG@10")
    parser.add_argument("--seed", type=int, default=30)
    parser.add_argument("--gaps", type=Path, help="write blind packets of the variants' unjudged top-10 items here")
    args = parser.parse_args()

    from recommender import Recommender, load_index
    from recommender.judgments import load_judged
    from recommender.truth import split_of

    recommender = Recommender(load_index(args.index))
    index = recommender.index
    gold = gold_ids(args.archive)
    development = load_judged(args.judged).development()
    labels = development.labels
    events = [e for e in development.events if e in index.position]
    ranked = prepare(recommender, events, labels, set(gold))
    print(f"{len(ranked)} development events ({sum(r.listed for r in ranked)} with a list), {len(labels):,} pairs")
    rng = np.random.default_rng(args.seed)
    fold_of = {r.event: int(f) for r, f in zip(ranked, rng.permutation(len(ranked)) % FOLDS, strict=True)}
    listed_train = sorted(i for i in gold if split_of(i) == "train" and i in index.position and i not in fold_of)
    curated = prepare(recommender, list(rng.choice(listed_train, args.queries, replace=False)), {}, set(gold))

    def group(r: Ranked) -> str:  # the trees learned the lists of train-split events: their listed ones apart
        return f"listed ({split_of(r.event)})" if r.listed else "unlisted"

    dense = {"listed (test)": [], "listed (train)": [], "unlisted": []}  # type: ignore[var-annotated]
    for r in ranked:
        dense[group(r)].append(judged_p10(labels, r.event, dense10(recommender, r)))
    print(f"{'dense':34s} {table_of(dense)}")
    gaps: dict[str, set[str]] = {}
    variants = [
        Variant("shipped: tier 1.0/0.5, fit unlisted", fit_on="unlisted"),
        Variant("tier 1.0/0.5, fit all"),
        Variant("tier 1.0/0.7, fit all", story_related=0.7),
        Variant("tier 1.0/0.8, fit all", story_related=0.8),
        Variant("tier 2.0/0.5, fit all", story_trees=2.0),
        Variant("no tier, fit all", story_trees=None),
        Variant("no tier, weight 1, fit all", story_trees=None, same_story_weight=1.0),
        Variant("+names_max_idf,dense_rank, tier 1.0/0.7", inputs=RICHER, story_related=0.7),
        Variant("+names_max_idf,dense_rank, no tier", inputs=RICHER, story_trees=None),
        Variant("richer, tier 1.0, meaning bar 0.5", inputs=RICHER, bar_inputs=MEANING),
        Variant("richer, tier 1.0, meaning bar 0.6", inputs=RICHER, bar_inputs=MEANING, story_related=0.6),
        Variant("richer, tier 1.0, meaning bar 0.7", inputs=RICHER, bar_inputs=MEANING, story_related=0.7),
        Variant(
            "richer, tier 0.5, meaning bar 0.6", inputs=RICHER, bar_inputs=MEANING, story_trees=0.5, story_related=0.6
        ),
        Variant("tier 1.0, meaning bar 0.6", bar_inputs=MEANING, story_related=0.6),
    ]
    for variant in variants:
        rows = {"listed (test)": [], "listed (train)": [], "unlisted": []}  # type: ignore[var-annotated]
        for fold in range(FOLDS):
            stage = stage_for(variant, [r for r in ranked if fold_of[r.event] != fold])
            for r in ranked:
                if fold_of[r.event] == fold:
                    ids = top10(recommender, r, stage.score(r.table, r.trees))
                    gaps.setdefault(r.event, set()).update(i for i in ids if (r.event, i) not in labels)
                    rows[group(r)].append(judged_p10(labels, r.event, ids))
        stage = stage_for(variant, ranked)
        ndcg = np.mean([ndcg10(top10(recommender, q, stage.score(q.table, q.trees)), gold[q.event]) for q in curated])
        print(f"{variant.name:34s} {table_of(rows)} | curated nDCG@10 {ndcg:.3f}")
    trees_ndcg = np.mean([ndcg10(top10(recommender, q, q.trees), gold[q.event]) for q in curated])
    print(f"trees alone: curated nDCG@10 {trees_ndcg:.3f} ({len(curated)} train-split queries)")
    if args.gaps:
        import random

        from judge_blind import write_packets

        todo = {event: sorted(ids) for event, ids in sorted(gaps.items()) if ids}
        write_packets(index, todo, 10, random.Random(args.seed), args.gaps)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The trained rankers (`fused` and its ablations), the cascade that scores a pool with their trees, and the fused
ranker's judged stage, which turns its trees' score into an order by meaning (`JudgedStage`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from recommender.rank.features import COLUMN
from recommender.rank.forest import Forest

VERSION = 2  # of what this code makes of a ready list: bump it when a change can alter one (`rank/fingerprint.py`)
RANKER_DIR = Path(__file__).with_name("models")
# A cascade: boosting is additive, so the ranker's first trees are a cheap first look at the whole pool. Each
# (trees, keep) stage scores the candidates still in with the first `trees` trees and keeps the best `keep`
# (at least 4k + 20); those left get every tree, and exactly the full model's score. How early the trees can
# judge depends on the model, so each trained model's manifest (rankers.json) names its own cascade, chosen on
# train-split queries by `eval/prune_agreement.py`; CASCADE is what `tune` writes until one is chosen.
Cascade = Sequence[tuple[int, int]]
CASCADE: Cascade = ((200, 200),)


def cascade_for(cascade: Cascade, k: int) -> list[tuple[int, int]]:
    """`cascade` for `k` suggestions: every stage keeps at least 4k + 20."""
    return [(trees, max(keep, 4 * k + 20)) for trees, keep in cascade]


TREES = "trees"  # the judged stage's name for the trees' score among its inputs


@dataclass(frozen=True)
class Logistic:
    """P(label) = sigmoid(weights . inputs + intercept)."""

    weights: tuple[float, ...]
    intercept: float

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(inputs @ np.asarray(self.weights, dtype=np.float64) + self.intercept)))


@dataclass(frozen=True)
class JudgedStage:
    """The fused ranker's second stage, fitted on blind judgments (`recommender tune --judged`).

    The trees learned the curated lists, which are "the same story, the 10 nearest in date": they find the same
    story near in time and, for an event without one, fill the list with what happened that week. Judges label
    each suggestion same story (S), related (R: the same subject at any date) or unrelated (U). Two logistic
    models over the trees' score and signals of meaning (dense cosine, shared names, BM25) give P(S) and
    P(S or R); candidates are ordered by the expected graded gain `same_story_weight` * P(S) + P(S or R), so a
    same-story item still comes first, and where the trees are unsure, what the event is about decides. The
    same week alone is no longer enough: it moves an item only through the trees' score, which the judged
    fit weighs against meaning."""

    inputs: tuple[str, ...]  # TREES or feature names, in the models' order
    same_story: Logistic
    related: Logistic  # related or same story
    same_story_weight: float
    # where the trees are this sure (their score at least this) and a judge would likely call the item related,
    # the trees order it first: the same story near in time, what the lists and the trees know best
    story_trees: float | None = None
    story_related: float = 0.5  # ... and P(related or same story) at least this

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JudgedStage:
        def logistic(part: dict[str, Any]) -> Logistic:
            return Logistic(tuple(float(w) for w in part["weights"]), float(part["intercept"]))

        return cls(
            tuple(data["inputs"]),
            logistic(data["same_story"]),
            logistic(data["related"]),
            float(data["same_story_weight"]),
            None if data.get("story_trees") is None else float(data["story_trees"]),
            float(data.get("story_related", 0.5)),
        )

    def as_dict(self) -> dict[str, Any]:
        def logistic(part: Logistic) -> dict[str, Any]:
            return {"weights": [round(w, 6) for w in part.weights], "intercept": round(part.intercept, 6)}

        return {
            "inputs": list(self.inputs),
            "same_story": logistic(self.same_story),
            "related": logistic(self.related),
            "same_story_weight": self.same_story_weight,
            "story_trees": self.story_trees,
            "story_related": self.story_related,
        }

    @staticmethod
    def matrix_of(inputs: Sequence[str], features: np.ndarray, trees: np.ndarray) -> np.ndarray:
        """(candidates, inputs) float64: `inputs` of each candidate (rows of `features`, every feature)."""
        columns = [trees if name == TREES else features[:, COLUMN[name]] for name in inputs]
        return np.stack(columns, axis=1).astype(np.float64)

    def gain(self, inputs: np.ndarray) -> np.ndarray:
        """The stage's score of each row of its `inputs`: the expected graded gain, or above every gain the
        trees' own score where they are sure of a related item."""
        related = self.related(inputs)
        gain = self.same_story_weight * self.same_story(inputs) + related
        if self.story_trees is None:
            return gain
        trees = inputs[:, self.inputs.index(TREES)]
        sure = (trees >= self.story_trees) & (related >= self.story_related)
        return np.where(sure, self.same_story_weight + 1 + trees, gain)

    def score(self, features: np.ndarray, trees: np.ndarray) -> np.ndarray:
        """The expected graded gain of each candidate; -inf where the trees' score is (left out by the cascade)."""
        alive = np.isfinite(trees)
        scores = np.full(len(trees), -np.inf, dtype=np.float32)
        if alive.any():
            scores[alive] = self.gain(self.matrix_of(self.inputs, features[alive], trees[alive])).astype(np.float32)
        return scores


class Ranker:
    """A trained ranker over some of the features (the ablations leave a group out): LightGBM's trees, scored
    without LightGBM (`forest.Forest`), then its judged stage where it has one."""

    def __init__(
        self,
        name: str,
        model_file: Path,
        features: list[str],
        cascade: Cascade = CASCADE,
        stage: JudgedStage | None = None,
    ):
        self.name = name
        self.model_file = model_file
        self.columns = np.asarray([COLUMN[f] for f in features], dtype=np.int32)
        self.cascade = tuple((int(trees), int(keep)) for trees, keep in cascade)
        self.stage = stage

    @cached_property
    def digest(self) -> str:
        """The model file's digest, read no later than the trees (`forest`): the ready lists' recipe names it."""
        return hashlib.blake2b(self.model_file.read_bytes(), digest_size=8).hexdigest()

    @cached_property
    def forest(self) -> Forest:
        """Loaded on first use: a server needs `fused` alone, not the ablations (about 20 MB each)."""
        _ = self.digest  # of the file as these trees were read from it (`tune` may rewrite it later)
        return Forest.load(self.model_file)

    def score(self, features: np.ndarray, cascade: Cascade = ()) -> np.ndarray:
        """The model's score of every candidate (rows of `features`, every feature): the judged stage's of the
        trees' score where the ranker has one, else the trees' score."""
        return self.score_many([features], cascade)[0]

    def score_many(self, tables: Sequence[np.ndarray], cascade: Cascade = ()) -> list[np.ndarray]:
        """`score` of each pool's feature table, the trees called once a stage for all of them (a block of ready
        lists): each row is scored alone whatever the others (tested), so each pool's scores are its own."""
        trees = self.tree_scores_many(tables, cascade)
        if self.stage is None:
            return trees
        stage = self.stage
        return [stage.score(table, scores) for table, scores in zip(tables, trees, strict=True)]

    def tree_scores(self, features: np.ndarray, cascade: Cascade = ()) -> np.ndarray:
        """The trees' score of every candidate. With a `cascade` of (trees, keep) stages, only the candidates
        kept by every stage get all the trees; the others get -inf."""
        return self.tree_scores_many([features], cascade)[0]

    def tree_scores_many(self, tables: Sequence[np.ndarray], cascade: Cascade = ()) -> list[np.ndarray]:
        """`tree_scores` of each pool's feature table, the trees called once a cascade stage for all of them."""
        forest = self.forest
        alive = [np.arange(len(table)) for table in tables]
        for trees, keep in cascade:
            if trees >= forest.num_trees:
                continue
            staged = [i for i, rows in enumerate(alive) if keep < len(rows)]
            if not staged:
                continue
            partial = forest.predict(np.concatenate([tables[i][alive[i]] for i in staged]), trees, self.columns)
            for i, part in zip(staged, _split(partial, [len(alive[i]) for i in staged]), strict=True):
                alive[i] = alive[i][np.argpartition(-part, keep - 1)[:keep]]
        full = forest.predict(
            np.concatenate([table[rows] for table, rows in zip(tables, alive, strict=True)]), None, self.columns
        )
        out = []
        for table, rows, part in zip(tables, alive, _split(full, [len(rows) for rows in alive]), strict=True):
            scores = np.full(len(table), -np.inf, dtype=np.float32)
            scores[rows] = part
            out.append(scores)
        return out


def _split(values: np.ndarray, lengths: list[int]) -> list[np.ndarray]:
    return np.split(values, np.cumsum(lengths)[:-1])


def load_rankers(folder: Path = RANKER_DIR) -> dict[str, Ranker]:
    """The trained rankers by system name (`fused` and its ablations), from `folder/rankers.json`."""
    manifest = folder / "rankers.json"
    if not manifest.exists():
        return {}
    data = json.loads(manifest.read_text())
    cascade = data.get("cascade", CASCADE)
    return {
        name: Ranker(
            name,
            folder / spec["model"],
            spec["features"],
            cascade,
            JudgedStage.from_dict(spec["judged_stage"]) if "judged_stage" in spec else None,
        )
        for name, spec in data["systems"].items()
    }

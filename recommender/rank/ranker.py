"""The trained rankers (`fused` and its ablations) and the cascade that scores a pool with their trees."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from recommender.rank.features import COLUMN
from recommender.rank.forest import Forest

VERSION = 1  # of what this code makes of a ready list: bump it when a change can alter one (`rank/fingerprint.py`)
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


class Ranker:
    """A trained ranker over some of the features (the ablations leave a group out): LightGBM's trees, scored
    without LightGBM (`forest.Forest`)."""

    def __init__(self, name: str, model_file: Path, features: list[str], cascade: Cascade = CASCADE):
        self.name = name
        self.model_file = model_file
        self.columns = np.asarray([COLUMN[f] for f in features], dtype=np.int32)
        self.cascade = tuple((int(trees), int(keep)) for trees, keep in cascade)

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
        """The model's score of every candidate (rows of `features`, every feature). With a `cascade` of
        (trees, keep) stages, only the candidates kept by every stage get all the trees; the others get -inf."""
        return self.score_many([features], cascade)[0]

    def score_many(self, tables: Sequence[np.ndarray], cascade: Cascade = ()) -> list[np.ndarray]:
        """`score` of each pool's feature table, the trees called once a stage for all of them (a block of ready
        lists): each row is scored alone whatever the others (tested), so each pool's scores are its own."""
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
        name: Ranker(name, folder / spec["model"], spec["features"], cascade) for name, spec in data["systems"].items()
    }

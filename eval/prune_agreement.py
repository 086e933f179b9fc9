"""How closely the cascade (the ranker's first trees pick which candidates get all of them, rank.CASCADE)
agrees with scoring every candidate with every tree, and what it saves. Train-split queries only, and no labels:
the settings are chosen here without looking at the test split, whose relevance the eval then reports.

    .venv/bin/python eval/prune_agreement.py --index models/full --queries 500
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# isort: off
import recommender  # noqa: E402, F401  (first: it sets the thread settings numpy and LightGBM read on load)
import numpy as np  # noqa: E402
# isort: on

from recommender.index import load_index  # noqa: E402
from recommender.rank import Recommender  # noqa: E402
from recommender.rank.forest import Forest  # noqa: E402
from recommender.truth import split_of  # noqa: E402

CASCADES = [
    ((100, 60),),  # the two-pass scoring chosen at first
    ((50, 100),),
    ((25, 200), (100, 60)),
    ((25, 300), (100, 60)),
    ((50, 200), (100, 60)),
    ((25, 150), (50, 100), (100, 60)),
    ((10, 300), (50, 120), (100, 60)),
    ((25, 200), (100, 60), (200, 40)),
    ((50, 200), (150, 50)),  # keeps 60 at k = 10 (4k + 20)
    ((50, 150), (150, 60)),
    ((30, 250), (150, 60)),
    ((40, 200), (200, 60)),
    ((50, 120), (150, 60)),
    ((20, 300), (50, 150), (150, 60)),
    ((30, 250), (60, 120), (150, 60)),
    # the fused ranker retrained on the tuned model's vectors judges later: its own cascade is among these
    ((100, 150), (200, 60)),
    ((50, 300), (150, 100)),
    ((100, 300), (200, 100)),
    ((100, 200), (250, 80)),
    ((150, 250),),
    ((200, 200),),
]
if os.environ.get("CASCADES"):  # a subset, by position: CASCADES=0,8 python eval/prune_agreement.py
    CASCADES = [CASCADES[int(i)] for i in os.environ["CASCADES"].split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", default="models/default")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    index = load_index(Path(args.index))
    Recommender(index).warm_up()
    train = [i for i in index.ids if split_of(i) == "train"]
    ids = random.Random(11).sample(train, min(args.queries, len(train)))

    walks = [0]  # candidates x trees walked, counted in the forest
    predict = Forest.predict

    def counted(self: Forest, rows: np.ndarray, stop: int | None = None, **rest: Any) -> np.ndarray:
        walks[0] += len(rows) * (self.num_trees if stop is None else min(stop, self.num_trees))
        return predict(self, rows, stop, **rest)

    Forest.predict = counted  # type: ignore[method-assign]

    def run(cascade: tuple[tuple[int, int], ...]) -> tuple[list[list[str]], float]:
        ranker = Recommender(index, cascade=cascade)
        walks[0] = 0
        started = time.perf_counter()
        tops = [[s.id for s in ranker.related(i, k=args.k)] for i in ids]
        return tops, (time.perf_counter() - started) * 1000 / len(ids)

    full, full_ms = run(())
    full_walks = walks[0] / len(ids)
    print(
        f"every tree on every candidate: {full_ms:.1f} ms/query, {full_walks:,.0f} tree walks/query, "
        f"{len(ids)} train-split queries"
    )
    print("| cascade: (trees, kept) stages | top-10 overlap | same order | tree walks/query | ms/query | x |")
    print("|---|---|---|---|---|---|")
    for cascade in CASCADES:
        pruned, ms = run(cascade)
        overlap = np.mean([len(set(a) & set(b)) / max(len(a), 1) for a, b in zip(full, pruned, strict=True)])
        same = np.mean([a == b for a, b in zip(full, pruned, strict=True)])
        stages = ", ".join(f"({trees}, {keep})" for trees, keep in cascade)
        print(f"| {stages} | {overlap:.4f} | {same:.3f} | {walks[0] / len(ids):,.0f} | {ms:.1f} | {full_ms / ms:.2f} |")


if __name__ == "__main__":
    main()

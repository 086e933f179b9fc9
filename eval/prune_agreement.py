"""How closely the two-pass scoring (the ranker's first trees pick which candidates get all of them) agrees
with scoring every candidate with every tree, and what it saves. Train-split queries only, and no labels:
the settings are chosen here without looking at the test split, whose relevance the eval then reports.

    .venv/bin/python eval/prune_agreement.py --index models/full --queries 500
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# isort: off
import recommender  # noqa: E402, F401  (first: it sets the thread settings numpy and LightGBM read on load)
import numpy as np  # noqa: E402
# isort: on

import recommender.recommend as rec  # noqa: E402
from recommender.evaluate import split_of  # noqa: E402
from recommender.index import load_index  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", default="models/default")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    ranker = rec.Recommender(load_index(Path(args.index)))
    ranker.warm_up()
    ranker.threads = 1
    train = [i for i in ranker.index.ids if split_of(i) == "train"]
    ids = random.Random(11).sample(train, min(args.queries, len(train)))

    def run(prune: bool) -> tuple[list[list[str]], float]:
        ranker.prune = prune
        started = time.perf_counter()
        tops = [[s.id for s in ranker.related(i, k=args.k)] for i in ids]
        return tops, (time.perf_counter() - started) * 1000 / len(ids)

    full, full_ms = run(False)
    print(f"every tree on every candidate: {full_ms:.1f} ms/query (one tree thread), {len(ids)} train-split queries")
    print("| first-pass trees | kept | top-10 overlap | same order | ms/query | x |")
    print("|---|---|---|---|---|---|")
    for trees in (25, 50, 100):
        for keep in (60, 100, 200):
            rec.PRUNE_TREES, rec.PRUNE_KEEP = trees, keep
            pruned, ms = run(True)
            overlap = np.mean([len(set(a) & set(b)) / max(len(a), 1) for a, b in zip(full, pruned, strict=True)])
            same = np.mean([a == b for a, b in zip(full, pruned, strict=True)])
            print(f"| {trees} | {keep} | {overlap:.4f} | {same:.3f} | {ms:.1f} | {full_ms / ms:.2f} |")


if __name__ == "__main__":
    main()

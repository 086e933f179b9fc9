"""Which candidates of the fused ranker's pool can reach a ready list: for a sample of events, where each item of
the final top 50 (and each survivor of the cascade's first stage) ranks in the pool's three sources (dense, BM25,
dense within LOCAL_DAYS), and how much of the pool lies beyond a given depth in all three. A pre-stage that gave
the trees only the candidates within that depth of one source (the features still computed on the whole pool,
so every score stays the same) would change a list only where a top-50 item lies deeper.

    .venv/bin/python eval/pool_ranks.py --index models/full --events 300
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recommender.index import load_index  # noqa: E402
from recommender.index.layout import READY_K  # noqa: E402
from recommender.rank import Recommender  # noqa: E402
from recommender.rank.candidates import allowed_rows, candidate_pool  # noqa: E402
from recommender.rank.features import COLUMN, feature_matrix  # noqa: E402
from recommender.rank.query import query_for_row  # noqa: E402
from recommender.rank.ranker import cascade_for  # noqa: E402
from recommender.rank.select import select  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=ROOT / "models" / "full")
    parser.add_argument("--events", type=int, default=300)
    args = parser.parse_args()
    recommender = Recommender(load_index(args.index))
    index = recommender.index
    ranker = recommender.rankers["fused"]
    cascade = cascade_for(ranker.cascade, READY_K)
    rows = np.random.default_rng(261).choice(len(index), size=args.events, replace=False)
    depths = (100, 150, 200)
    per_event: list[np.ndarray] = []  # each event's top-50 items' best rank in a source
    survivors: list[np.ndarray] = []
    pool_sizes: list[int] = []
    beyond: dict[int, list[float]] = {d: [] for d in depths}
    for row in rows.tolist():
        query = query_for_row(index, row)
        pool = candidate_pool(index, query, allowed_rows(index, query, None, None))
        table = feature_matrix(index, query, pool)
        # the rank of each candidate in each source, within the pool (BM25: positive scores only)
        bm25_rank = np.where(query.scores.bm25[pool] > 0, table[:, COLUMN["bm25_rank"]], np.inf)
        ranks = np.minimum.reduce([table[:, COLUMN["dense_rank"]], bm25_rank, table[:, COLUMN["dense_rank_near"]]])
        scores = ranker.score(table, cascade)
        picked = select(index, query, pool, scores, READY_K, recommender.near_duplicate)
        per_event.append(ranks[picked])
        survivors.append(ranks[np.isfinite(scores)])
        pool_sizes.append(len(pool))
        for d in depths:
            beyond[d].append(float((ranks >= d).mean()))
    top = np.concatenate(per_event)
    print(f"# {len(rows)} events; pool {np.mean(pool_sizes):.0f} candidates on average")
    for name, values in (("top-50 items", top), ("first stage's survivors", np.concatenate(survivors))):
        quantiles = np.percentile(values, [50, 90, 99, 99.9, 100])
        print(f"{name}: best rank in a source p50/p90/p99/p99.9/max = " + "/".join(f"{q:.0f}" for q in quantiles))
    for d in depths:
        events = sum(1 for ranks in per_event if (ranks >= d).any())
        print(
            f"depth {d}: pool beyond it in all three sources {100 * np.mean(beyond[d]):.1f}%; top-50 items beyond "
            f"it {int((top >= d).sum())} of {len(top)}; events with one {events} of {len(per_event)}"
        )


if __name__ == "__main__":
    main()

"""Where a ready list's CPU goes: each step of making one list timed over a sample of events, on one core (as a
build's worker processes run), for the live path (one event at a time, as `rank/ready.py` made every list
before issue 26) and the block path (`rank/ready.py`'s blocks now).

    .venv/bin/python eval/profile_lists.py --index models/full --events 2000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from threadpoolctl import threadpool_limits  # noqa: E402

from recommender.index import load_index  # noqa: E402
from recommender.index.layout import CONTEXT_K, READY_K  # noqa: E402
from recommender.index.lists import encode_context  # noqa: E402
from recommender.rank import Recommender  # noqa: E402
from recommender.rank.candidates import POOL, allowed_rows, candidate_pool  # noqa: E402
from recommender.rank.explain import Contexts, signal_values  # noqa: E402
from recommender.rank.features import feature_matrix  # noqa: E402
from recommender.rank.query import query_for_row  # noqa: E402
from recommender.rank.ranker import cascade_for  # noqa: E402
from recommender.rank.select import select  # noqa: E402
from recommender.rank.threads import use_cores  # noqa: E402


def profile_live(recommender: Recommender, rows: list[int]) -> dict[str, float]:
    """Seconds per step, summed over `rows`, each event ranked alone as `Recommender.rank` ranks it."""
    from recommender.rank.ready import _nth

    index = recommender.index
    ranker = recommender.rankers["fused"]
    cascade = cascade_for(ranker.cascade if recommender.cascade is None else recommender.cascade, READY_K)
    spent: dict[str, float] = defaultdict(float)
    for row in rows:
        marks = [time.thread_time()]

        def mark(step: str) -> None:
            marks.append(time.thread_time())
            spent[step] += marks[-1] - marks[-2]

        query = query_for_row(index, row)
        mark("query (tokens, names)")
        _ = query.scores.dense
        mark("dense scan (every event)")
        _ = query.scores.bm25
        mark("bm25 (every event)")
        allowed = allowed_rows(index, query, None, None)
        pool = candidate_pool(index, query, allowed)
        mark("candidate pool")
        features = feature_matrix(index, query, pool)
        mark("feature table")
        scores = ranker.score(features, cascade)
        mark("trees (cascade)")
        picked = select(index, query, pool, scores, READY_K, recommender.near_duplicate)
        mark("selection (near-duplicates)")
        from recommender.rank.explain import Ranked

        rows_ = pool[picked]
        ranked = Ranked(rows_, scores[picked].astype(np.float32), float(query.scores.bm25[pool].max(initial=0.0)), pool)
        signal_values(index, query, ranked)
        mark("signals kept")
        contexts = Contexts(index, query)
        [encode_context(contexts(r)) for r in ranked.rows[:CONTEXT_K].tolist()]
        mark("contexts of the first 10")
        _nth(query.scores.dense[pool], POOL), _nth(query.scores.bm25[pool], POOL, True)
        mark("thresholds")
    return dict(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=ROOT / "models" / "full")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--block", action="store_true", help="Also time the block path (rank/ready.py's blocks).")
    args = parser.parse_args()
    use_cores(1)
    threadpool_limits(1)
    index = load_index(args.index)
    recommender = Recommender(index)
    recommender.warm_up()
    rows = np.random.default_rng(args.seed).choice(len(index), size=args.events, replace=False)
    rows = np.sort(rows).tolist()
    print(f"# {len(index):,} events, {len(rows):,} lists, one core; load average {os.getloadavg()[0]:.2f}")
    started = time.process_time()
    wall = time.perf_counter()
    spent = profile_live(recommender, rows)
    cpu = time.process_time() - started
    total = sum(spent.values())
    print(f"live path: {1e3 * total / len(rows):.2f} ms a list (CPU {1e3 * cpu / len(rows):.2f} ms, wall "
          f"{1e3 * (time.perf_counter() - wall) / len(rows):.2f} ms)")
    for step, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {step:<32} {1e3 * seconds / len(rows):6.2f} ms  {100 * seconds / total:5.1f}%")
    if args.block:
        from recommender.rank.ready import compute_lists

        started, wall = time.process_time(), time.perf_counter()
        compute_lists(recommender, np.asarray(rows, dtype=np.int64), jobs=1)
        print(f"block path (compute_lists, one process): CPU {1e3 * (time.process_time() - started) / len(rows):.2f}"
              f" ms a list, wall {1e3 * (time.perf_counter() - wall) / len(rows):.2f} ms")


if __name__ == "__main__":
    main()

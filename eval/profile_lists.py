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
from recommender.rank.explain import Contexts, Ranked, signal_values  # noqa: E402
from recommender.rank.features import feature_matrix  # noqa: E402
from recommender.rank.query import cosines, event_cosines, query_for_row  # noqa: E402
from recommender.rank.ranker import cascade_for  # noqa: E402
from recommender.rank.ready import BLOCK, _nth  # noqa: E402
from recommender.rank.select import select  # noqa: E402
from recommender.rank.threads import use_cores  # noqa: E402


class Clock:
    """CPU seconds of this thread per step (the machine is shared: wall time would count the others' work)."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self.last = time.thread_time()

    def __call__(self, step: str) -> None:
        now = time.thread_time()
        self.spent[step] += now - self.last
        self.last = now


def profile_live(recommender: Recommender, rows: list[int]) -> dict[str, float]:
    """CPU seconds per step, summed over `rows`, each event ranked alone as a live ranking ranks it (and as
    `rank/ready.py` made every list before issue 26, its dense scores by the matrix-vector kernel)."""
    index = recommender.index
    ranker = recommender.rankers["fused"]
    cascade = cascade_for(ranker.cascade if recommender.cascade is None else recommender.cascade, READY_K)
    mark = Clock()
    for row in rows:
        mark.last = time.thread_time()
        query = query_for_row(index, row, dense=None)
        mark("query (tokens, names)")
        query.scores.__dict__["dense"] = cosines(index.vectors, query.vector)  # a live scan before issue 26
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
        ranked = Ranked(pool[picked], scores[picked].astype(np.float32), float(query.scores.bm25[pool].max()), pool)
        mark("selection (near-duplicates)")
        _rest(index, query, ranked, mark)
    return dict(mark.spent)


def _rest(index, query, ranked, mark) -> None:
    signal_values(index, query, ranked)
    mark("signals kept")
    contexts = Contexts(index, query)
    [encode_context(contexts(r)) for r in ranked.rows[:CONTEXT_K].tolist()]
    mark("contexts of the first 10")
    pool = ranked.pool
    _nth(query.scores.dense[pool], POOL), _nth(query.scores.bm25[pool], POOL, True)
    mark("thresholds")


def profile_block(recommender: Recommender, rows: list[int], block: int = BLOCK) -> dict[str, float]:
    """The same steps as `rank/ready.py`'s `block_lists` takes them, a block of events at a time."""
    index = recommender.index
    ranker = recommender.rankers["fused"]
    cascade = cascade_for(ranker.cascade if recommender.cascade is None else recommender.cascade, READY_K)
    mark = Clock()
    for start in range(0, len(rows), block):
        part = np.asarray(rows[start : start + block], dtype=np.int64)
        mark.last = time.thread_time()
        dense = event_cosines(index.vectors, index.vectors[part])
        mark("dense scan (one product a block)")
        queries = [query_for_row(index, row, dense=dense[i]) for i, row in enumerate(part.tolist())]
        mark("query (tokens, names)")
        for query in queries:
            _ = query.scores.bm25
        mark("bm25 (every event)")
        pools = [candidate_pool(index, q, allowed_rows(index, q, None, None)) for q in queries]
        mark("candidate pool")
        tables = [feature_matrix(index, q, pool) for q, pool in zip(queries, pools, strict=True)]
        mark("feature table")
        scored = ranker.score_many(tables, cascade)
        mark("trees (cascade)")
        for query, pool, scores in zip(queries, pools, scored, strict=True):
            mark.last = time.thread_time()
            picked = select(index, query, pool, scores, READY_K, recommender.near_duplicate)
            best = float(query.scores.bm25[pool].max())
            ranked = Ranked(pool[picked], scores[picked].astype(np.float32), best, pool)
            mark("selection (near-duplicates)")
            _rest(index, query, ranked, mark)
    return dict(mark.spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=ROOT / "models" / "full")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=26)
    args = parser.parse_args()
    use_cores(1)
    threadpool_limits(1)
    index = load_index(args.index)
    recommender = Recommender(index)
    recommender.warm_up()
    # two disjoint samples: the contexts' caches (texts split and stemmed) must not favour the second path
    drawn = np.random.default_rng(args.seed).choice(len(index), size=2 * args.events, replace=False)
    samples = {
        profile_live: np.sort(drawn[: args.events]).tolist(),
        profile_block: np.sort(drawn[args.events :]).tolist(),
    }
    rows = samples[profile_live]
    print(f"# {len(index):,} events, {len(rows):,} lists, one core; load average {os.getloadavg()[0]:.2f}")
    for name, profile in (("one event at a time (before)", profile_live), ("in blocks of 64 (now)", profile_block)):
        started = time.process_time()
        spent = profile(recommender, samples[profile])
        cpu = time.process_time() - started
        total = sum(spent.values())
        print(f"{name}: {1e3 * total / len(rows):.2f} ms of CPU a list (process {1e3 * cpu / len(rows):.2f} ms)")
        for step, seconds in sorted(spent.items(), key=lambda item: -item[1]):
            print(f"  {step:<34} {1e3 * seconds / len(rows):6.2f} ms  {100 * seconds / total:5.1f}%")


if __name__ == "__main__":
    main()

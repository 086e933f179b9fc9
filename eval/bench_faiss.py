"""The dense step of a query, numpy against FAISS (issue 28): is a FAISS index worth its file?

    .venv/bin/python eval/bench_faiss.py --index models/full [--queries 200]

One query at a time on the index's own vectors (a row's vector as the query), in one process, alternating the
methods query by query: the numpy product over the memory-mapped vectors.npy that queries use (every event's
cosine, which the fused ranker needs), then its top 100 by argpartition; FAISS's exact IndexFlatIP (top 100 only:
it copies the vectors into the process's own memory); and FAISS HNSW (approximate, top 100; its recall@100 against
the exact top 100 is printed). Prints p50/p95 per method with ratios against numpy, the build time of each FAISS
index and the memory each holds outside the shared map.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

# isort: off
import recommender  # noqa: F401  (first: it sets the thread settings numpy reads on load)
import numpy as np
# isort: on


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    vectors = np.asarray(np.load(args.index / "vectors.npy", mmap_mode="r"))
    n, dim = vectors.shape
    print(f"{n:,} x {dim} vectors ({vectors.nbytes / 2**20:.0f} MiB, memory-mapped), {os.cpu_count()} cores")
    started = time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    flat.add(np.ascontiguousarray(vectors))
    print(f"IndexFlatIP built in {time.perf_counter() - started:.1f}s, holds {n * dim * 4 / 2**20:.0f} MiB of its own")
    started = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efSearch = 128
    hnsw.add(np.ascontiguousarray(vectors))
    extra = n * 32 * 2 * 4 / 2**20
    print(
        f"HNSW (M=32, efSearch=128) built in {time.perf_counter() - started:.1f}s, holds {n * dim * 4 / 2**20:.0f}"
        f" MiB of vectors and about {extra:.0f} MiB of graph"
    )
    rng = np.random.default_rng(0)
    rows = rng.choice(n, size=args.queries, replace=False)
    times: dict[str, list[float]] = {
        "numpy scan + top-k": [],
        "numpy scan only": [],
        "faiss flat": [],
        "faiss hnsw": [],
    }
    recall = []
    for row in rows:
        query = np.array(vectors[row], dtype=np.float32)[None, :]
        started = time.perf_counter()
        scores = vectors @ query[0]
        times["numpy scan only"].append(time.perf_counter() - started)
        top = np.argpartition(-scores, args.k)[: args.k]
        times["numpy scan + top-k"].append(time.perf_counter() - started)
        started = time.perf_counter()
        _, exact = flat.search(query, args.k)
        times["faiss flat"].append(time.perf_counter() - started)
        started = time.perf_counter()
        _, approx = hnsw.search(query, args.k)
        times["faiss hnsw"].append(time.perf_counter() - started)
        recall.append(len(set(approx[0]) & set(exact[0])) / args.k)
        assert len(set(top) & set(exact[0])) >= args.k - 2  # the same top-k but for ties
    base = float(np.median(times["numpy scan + top-k"]))
    for name, spent in times.items():
        p50, p95 = np.percentile(np.array(spent) * 1000, [50, 95])
        print(f"{name:<20} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  x{p50 / 1000 / base:4.2f} vs numpy scan + top-k")
    print(f"HNSW recall@{args.k} against the exact top {args.k}: {np.mean(recall):.3f}")


if __name__ == "__main__":
    main()

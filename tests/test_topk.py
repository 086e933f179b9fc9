"""Selecting the best rows of a score array (the candidate pool's top dense and BM25 rows, the top k)."""

from __future__ import annotations

import numpy as np

from recommender.rank.topk import top, top_allowed


def test_top_selection_matches_a_full_sort():
    rng = np.random.default_rng(0)
    for trial in range(80):
        if trial < 20:  # small archives, few wanted
            size, n = int(rng.integers(1, 5000)), int(rng.integers(0, 12))
        else:
            size, n = int(rng.integers(1, 150_000)), int(rng.integers(0, 400))
        scores = np.round(rng.standard_normal(size), 2).astype(np.float32)  # many ties
        if trial % 3 == 0:
            scores[rng.random(size) < 0.95] = -np.inf  # mostly disallowed rows
        best = top(scores, n)
        expected = np.sort(scores)[::-1][: min(n, size)]
        assert len(set(best.tolist())) == len(best)
        assert np.array_equal(scores[best], expected)


def test_the_candidate_pools_top_rows_are_those_of_a_full_sort():
    """`top_allowed` (the pool's top dense and top BM25 rows): the n best allowed rows, positive scores only for
    BM25, ties to the lower row; archives large and small, many ties, most rows disallowed or none."""
    rng = np.random.default_rng(1)
    for trial in range(80):
        size = int(rng.integers(1, 5000)) if trial < 20 else int(rng.integers(1, 150_000))
        n = int(rng.integers(1, 400))
        scores = np.round(rng.standard_normal(size), 2).astype(np.float32)  # many ties
        allowed = rng.random(size) < (0.05 if trial % 3 == 0 else 0.99)
        positive_only = bool(trial % 2)
        eligible = np.flatnonzero(allowed & ((scores > 0) | (not positive_only)))
        best = eligible[np.lexsort((eligible, -scores[eligible]))][:n]  # by score, then by row
        assert np.array_equal(top_allowed(scores, allowed, n, positive_only), np.sort(best))

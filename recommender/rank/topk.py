"""The best rows of a score array: a threshold from a sample, then a sort of the few rows above it."""

from __future__ import annotations

import numpy as np

VERSION = 1  # of what this code makes of a ready list: bump it when a change can alter one (`rank/fingerprint.py`)


def top(scores: np.ndarray, n: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Indices of the `n` highest scores (among `allowed` rows), highest first; ties go to the lower index."""
    n = max(0, min(n, len(scores)))
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rows = top_allowed(scores, np.ones(len(scores), dtype=bool) if allowed is None else allowed, n, False)
    return rows[np.lexsort((rows, -scores[rows]))]


def union_top(dense: np.ndarray, bm25: np.ndarray, allowed: np.ndarray, n: int) -> np.ndarray:
    """The rows of the `n` best allowed dense scores and of the `n` best positive allowed BM25 scores, sorted."""
    return np.union1d(top_allowed(dense, allowed, n, False), top_allowed(bm25, allowed, n, True))


def top_allowed(scores: np.ndarray, allowed: np.ndarray, n: int, positive_only: bool) -> np.ndarray:
    """The `n` best allowed rows by `scores` (only rows scoring > 0 with `positive_only`; ties to the lower
    row), in row order. No sort of every score: a threshold from a strided sample leaves a few times n rows to
    sort (lower thresholds, then every eligible row, if too few pass)."""
    size = len(scores)
    stride = max(1, size // 4096)
    sample = scores[::stride][allowed[::stride]]
    if positive_only:
        sample = sample[sample > 0]
    rows = np.zeros(0, dtype=np.int64)
    for above in (3 * n, 12 * n, size):  # about this many eligible rows lie above the threshold
        place = len(sample) - 1 - above // stride
        threshold = np.partition(sample, place)[place] if place >= 0 and size > 64 * n else -np.inf
        passing = allowed & (scores >= threshold)
        if positive_only:
            passing &= scores > 0
        rows = np.flatnonzero(passing)
        if len(rows) >= n or threshold == -np.inf:
            break
    if len(rows) <= n:
        return rows
    # the n best, ties in row order: a stable sort by score keeps equal scores in row order
    best = rows[np.argsort(-scores[rows], kind="stable")[:n]]
    return np.sort(best)

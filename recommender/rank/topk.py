"""The best rows of a score array: a few passes over the scores in a compiled loop, no full sort."""

from __future__ import annotations

import numba
import numpy as np


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


@numba.njit(cache=True, nogil=True)
def top_allowed(scores, allowed, n, positive_only):
    """The `n` best allowed rows by `scores` (only rows scoring > 0 with `positive_only`; ties to the lower
    row), in row order. A few passes over the scores and no array of their size: a threshold from a strided
    sample leaves a few times n rows to sort (lower thresholds, then every eligible row, if too few pass)."""
    size = len(scores)
    stride = max(1, size // 4096)
    sample = np.empty((size + stride - 1) // stride, dtype=scores.dtype)
    taken = 0
    for i in range(0, size, stride):
        if allowed[i] and (scores[i] > 0 or not positive_only):
            sample[taken] = scores[i]
            taken += 1
    sample = sample[:taken]
    mask = np.zeros((size + 7) // 8 * 8, dtype=np.uint8)  # whole 8-byte words, read as such below
    count = 0
    for above in (3 * n, 12 * n, size):  # about this many eligible rows lie above the threshold
        place = taken - 1 - above // stride
        threshold = np.partition(sample, place)[place] if place >= 0 and size > 64 * n else -np.inf
        count = 0
        for i in range(size):  # branch-free, so that it vectorises
            mask[i] = allowed[i] & (scores[i] >= threshold) & ((scores[i] > 0) | (not positive_only))
            count += mask[i]
        if count >= n or threshold == -np.inf:
            break
    rows = np.empty(count, dtype=np.int64)
    count = 0
    words = mask.view(np.uint64)
    for word in range(len(words)):  # skip eight rows at a time: few pass the threshold
        if words[word]:
            for i in range(8 * word, 8 * word + 8):
                if mask[i]:
                    rows[count] = i
                    count += 1
    if count <= n:
        return rows
    values = scores[rows]
    cut = -np.partition(-values, n - 1)[n - 1]  # the n-th best score: take all above it, then ties in row order
    ties = n - np.sum(values > cut)
    top = np.empty(n, dtype=np.int64)
    taken = 0
    for j in range(count):
        if values[j] > cut or (values[j] == cut and ties > 0):
            ties -= values[j] == cut
            top[taken] = rows[j]
            taken += 1
    return top

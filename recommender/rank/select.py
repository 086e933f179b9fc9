"""The top k of a scored pool, each item once: no repeat of the query's text, a headline or a near-duplicate."""

from __future__ import annotations

import re

import numpy as np

from recommender.index import Index
from recommender.rank.query import Query

VERSION = 1  # of what this code makes of a ready list: bump it when a change can alter one (`rank/fingerprint.py`)


def select(
    index: Index,
    query: Query,
    pool: np.ndarray,
    scores: np.ndarray,
    k: int,
    near_duplicate: float,
    skip: frozenset[int] = frozenset(),
) -> np.ndarray:
    """Positions in `pool` of the best `k` by `scores` (highest first, ties in pool order), skipping -inf scores,
    the query's own text, a headline already chosen (the same item again, perhaps with a summary added) and an
    item within `near_duplicate` cosine of one already chosen (`embed.near_duplicate_cosine` of the index's model).
    Rows in `skip` are chosen but not returned: the answer is the list without them filtered out afterwards,
    which is what a ready list filtered on read gives."""
    order = np.argsort(-scores, kind="stable")
    chosen: list[int] = []
    kept: list[int] = []
    shas, headlines, vectors = index.text_sha, index.headlines, index.vectors
    seen_text = {query.text_sha}
    seen_headlines = {normal(headlines[query.row])} if query.row is not None else set()
    picked = np.empty((16, vectors.shape[1]), dtype=vectors.dtype)  # the chosen items' vectors, in order
    for position in order:
        row = int(pool[position])
        if not np.isfinite(scores[position]) or shas[row] in seen_text:
            continue
        headline = normal(headlines[row])
        if headline in seen_headlines:
            continue
        if chosen and float(np.max(picked[: len(chosen)] @ vectors[row])) >= near_duplicate:
            continue
        seen_text.add(shas[row])
        seen_headlines.add(headline)
        if len(chosen) == len(picked):
            picked = np.concatenate([picked, np.empty_like(picked)])
        picked[len(chosen)] = vectors[row]
        chosen.append(int(position))
        if row not in skip:
            kept.append(int(position))
            if len(kept) == k:
                break
    return np.asarray(kept, dtype=np.int64)


NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")


def normal(text: str) -> str:
    return NOT_ALPHANUMERIC.sub(" ", text.lower()).strip()

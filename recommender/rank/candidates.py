"""Which events a query may be given (`allowed_rows`) and the fused ranker's candidate pool among them."""

from __future__ import annotations

import datetime as dt

import numpy as np

from recommender.index import Index
from recommender.rank.query import Query
from recommender.rank.topk import top, union_top

VERSION = 1  # of what this code makes of a ready list: bump it when a change can alter one (`rank/fingerprint.py`)
POOL = 300  # candidates taken from each of dense and BM25 before fusion
LOCAL_POOL = 300  # and the best dense matches among events close in date: stories run in time
LOCAL_DAYS = 30
MAX_POOL = 2 * POOL + LOCAL_POOL


def allowed_rows(index: Index, query: Query, since: dt.date | None, until: dt.date | None) -> np.ndarray:
    """A mask of the rows that may be suggested: within since/until, not the query, not its excluded rows."""
    allowed = np.ones(len(index), dtype=bool)
    if since:
        allowed &= index.day >= since.toordinal()
    if until:
        allowed &= index.day <= until.toordinal()
    if query.row is not None:
        allowed[query.row] = False
    if query.exclude:
        allowed[list(query.exclude)] = False
    return allowed


def candidate_pool(index: Index, query: Query, allowed: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
    """The rows the fused ranker scores, sorted: the top dense and top BM25 allowed rows, the best dense matches
    within LOCAL_DAYS of the query's date, and `extra` rows."""
    dense = query.scores.dense
    pool = union_top(dense, query.scores.bm25, allowed, POOL)
    if query.day is not None and LOCAL_POOL:
        near = index.rows_within(query.day, LOCAL_DAYS)
        near = near[allowed[near]]
        pool = np.union1d(pool, near[top(dense[near], LOCAL_POOL)])
    if extra is not None:
        pool = np.union1d(pool, extra)
    return pool

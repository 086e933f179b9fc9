"""What the rankers know of a query (an indexed event or free text), and its scores against every event.

A `Query` is made in one place for each kind of query and never changed afterwards; free text gets its date
from `anchored`, as a new query. Its dense and BM25 scores against every event are computed once, on first
use, and shared by the candidates, the features and the selection.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from recommender.embed import text_hash
from recommender.index import Index, tokenize_query
from recommender.rank.threads import query_cores, threads
from recommender.rank.topk import top

VERSION = 2  # of what this code makes of a ready list: bump it when a change can alter one (`rank/fingerprint.py`)
SPLIT_ROWS = 1 << 16  # from this many events on, a query's scan is split in two halves, one on another thread
BLOCK_ROWS = 64  # the halves split at a multiple of this: BLAS computes each row alike in the whole and the halves


def cosines(vectors: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """`vectors @ vector`, to the last bit (tested), on two cores for a large index: one scan reads every vector
    from memory (175 MB for the full archive), which one core does at about half the speed two do."""
    rows = len(vectors)
    if rows < SPLIT_ROWS or query_cores() < 2:
        return vectors @ vector
    out = np.empty(rows, dtype=np.result_type(vectors, vector))
    cut = rows // 2 // BLOCK_ROWS * BLOCK_ROWS
    other = threads("scan", 1).submit(np.matmul, vectors[:cut], vector, out=out[:cut])
    np.matmul(vectors[cut:], vector, out=out[cut:])
    other.result()
    return out


def event_cosines(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(len(queries), n): `queries @ vectors.T`, each row the same to the last bit whether the queries come one at
    a time (a live ranking) or in a block (ready lists, batch suggestions): BLAS's matrix-matrix kernel sums each
    cosine alike whatever the block and wherever the rows are split (tested), its matrix-vector kernel does not,
    so a lone query is computed as a block of two (itself twice). A tree split on a cosine then goes the same
    way in both. A lone query on a large index is split in two halves of the rows, one on another thread."""
    queries = np.asarray(queries)
    if len(queries) == 1:
        queries = np.concatenate([queries, queries])
        lone = True
    else:
        lone = False
    rows = len(vectors)
    if not lone or rows < SPLIT_ROWS or query_cores() < 2:
        out = queries @ vectors.T
    else:
        out = np.empty((2, rows), dtype=np.result_type(vectors, queries))
        cut = rows // 2 // BLOCK_ROWS * BLOCK_ROWS
        other = threads("scan", 1).submit(np.matmul, queries, vectors[:cut].T, out=out[:, :cut])
        np.matmul(queries, vectors[cut:].T, out=out[:, cut:])
        other.result()
    return out[:1] if lone else out


class Scores:
    """One query's dense cosine and BM25 score against every event of the index, each computed on first use."""

    def __init__(
        self, index: Index, vector: np.ndarray, tokens: list[str], dense: np.ndarray | None = None, event: bool = False
    ):
        self._index, self._vector, self._tokens, self.event = index, vector, tokens, event
        if dense is not None:  # computed already, for a block of events at once (batch suggestions)
            self.__dict__["dense"] = dense

    @cached_property
    def dense(self) -> np.ndarray:
        if self.event:  # computed as a block's row is: a ready list and a live ranking see the same cosines
            return event_cosines(self._index.vectors, self._vector[None, :])[0]
        return cosines(self._index.vectors, self._vector)

    @cached_property
    def bm25(self) -> np.ndarray:
        return self._index.bm25_scores(self._tokens)


@dataclass(frozen=True, eq=False)
class Query:
    """Never a Related section: text, vector, names and date of the query alone."""

    vector: np.ndarray
    tokens: list[str]
    names: np.ndarray
    scores: Scores
    day: int | None = None  # proleptic ordinal
    row: int | None = None  # an indexed event's row
    text_sha: str = ""
    dated: bool = True  # False: `day` was inferred (free text placed at its closest event's date)
    story_density: float = np.nan  # of the event an undated query is placed at
    exclude: frozenset[int] = field(default_factory=frozenset)  # rows never to suggest
    text: str = ""  # what was embedded: shown contexts are read from it, no feature is


def query_for_row(
    index: Index, row: int, exclude: frozenset[int] = frozenset(), dense: np.ndarray | None = None
) -> Query:
    """The query of the indexed event at `row` (`dense`: its scores against every event, when known)."""
    text, vector = index.text(row), index.vectors[row]
    query = _query(index, text, vector, index.names_of(row), index.text_sha[row], dense, event=True)
    return replace(query, day=int(index.day[row]), row=row, exclude=exclude)


def query_for_text(index: Index, text: str, vector: np.ndarray) -> Query:
    """The query of free text with its embedding `vector`: no date of its own (see `anchored`)."""
    return _query(index, text, vector, index.name_ids(text), text_hash(text))


def _query(
    index: Index,
    text: str,
    vector: np.ndarray,
    names: np.ndarray,
    text_sha: str,
    dense: np.ndarray | None = None,
    event: bool = False,
) -> Query:
    """An undated query of `text`, with its embedding `vector` and `names` (`Scores` for `dense` and `event`)."""
    tokens = tokenize_query(text)
    scores = Scores(index, vector, tokens, dense, event=event)
    return Query(text=text, vector=vector, tokens=tokens, names=names, scores=scores, text_sha=text_sha)


def anchored(index: Index, query: Query, allowed: np.ndarray) -> Query:
    """An undated query placed at the date of its closest `allowed` event by dense cosine (not one with the same
    text): the rankers were trained on dated events, and a story is told around a date."""
    if query.day is not None:
        return query
    scores = np.where(allowed, query.scores.dense, -np.inf)
    scores[[row for row in top(scores, 5) if index.text_sha[row] == query.text_sha]] = -np.inf
    closest = int(np.argmax(scores))
    if not np.isfinite(scores[closest]):
        return query
    return anchored_at(index, query, closest)


def anchored_at(index: Index, query: Query, row: int) -> Query:
    """An undated query placed at the date of the event at `row`."""
    return replace(query, day=int(index.day[row]), dated=False, story_density=float(index.story_density[row]))

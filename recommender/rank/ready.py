"""Ready lists: every event's top READY_K suggestions by the fused ranker, made when an index is built and, on
an update, remade only for the events whose list can change (`lists_step`, handed to `build_index`).

An event's list can change when an event enters or leaves its candidate pool (the 300 best by dense cosine,
the 300 best by BM25 and the best dense matches within LOCAL_DAYS, `candidates.py`) or its story. Remaking
every such list costs about 50 s for a day's 15 events on 2 cores; most of them do not change. So an update
remakes the lists a new event can join the first ENTER_DEPTH of, and those whose story features it changes
(`affected` says which), and copies the others; what that misses is measured by `eval/bench_refresh.py`.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.index import Index, IndexMeta, load_index
from recommender.index.build import Rebuilt
from recommender.index.layout import CONTEXT_K, READY_K, TOKENS
from recommender.index.lists import ReadyLists, encode_context
from recommender.index.terms import Terms
from recommender.rank.candidates import LOCAL_DAYS, POOL
from recommender.rank.explain import Contexts, signal_values
from recommender.rank.query import event_cosines, query_for_row
from recommender.rank.recommender import RankOptions, Recommender
from recommender.rank.threads import use_cores

BLOCK = 64  # events per task of a worker process
# the suggestions shown by default: an update keeps them as a build from scratch makes them (`affected`)
ENTER_DEPTH = 10
NEAR_MARGIN = 0.1  # how much less close than a list's items a new event within LOCAL_DAYS can be and still join


@dataclass
class ListsReport:
    computed: int
    copied: int
    seconds: float
    recipe: dict[str, str]  # what made them (`fingerprint.py`)


# --- making lists -------------------------------------------------------------------------------------------
_worker: Recommender | None = None


def compute_lists(recommender: Recommender, rows: np.ndarray, jobs: int = 1) -> ReadyLists:
    """The lists of `rows` (row i of the result is `rows[i]`'s), ranked as a live request ranks them; `jobs`
    forked processes share them, in blocks (the loaded index is shared, not copied)."""
    global _worker
    out = ReadyLists.empty(len(rows), recommender.fingerprint)
    blocks = [rows[i : i + BLOCK] for i in range(0, len(rows), BLOCK)]
    _worker = recommender
    recommender.warm_up()
    if jobs > 1 and len(blocks) > 1:
        with multiprocessing.get_context("fork").Pool(min(jobs, len(blocks)), initializer=_one_thread) as pool:
            done = list(pool.imap(_block, blocks))
    else:
        done = [_block(block) for block in blocks]
    start = 0
    for part in done:
        out.take(np.arange(len(part)), np.arange(start, start + len(part)), part)
        start += len(part)
    return out


def _one_thread() -> None:
    from threadpoolctl import threadpool_limits

    use_cores(1)
    threadpool_limits(1)  # the processes already use every core


def _block(rows: np.ndarray) -> ReadyLists:
    assert _worker is not None
    return block_lists(_worker, rows)


def block_lists(recommender: Recommender, rows: np.ndarray) -> ReadyLists:
    """The lists of a block of events: their dense scores in one matrix product (`event_cosines`: each row as a
    live ranking computes it alone, to the last bit) and their pools scored by one call of the trees a cascade
    stage (`Recommender.rank_many`); the rest (pools, features, selection, contexts) event by event."""
    index = recommender.index
    out = ReadyLists.empty(len(rows), "")
    assert out.contexts is not None
    dense = event_cosines(index.vectors, index.vectors[rows])
    queries = [query_for_row(index, row, dense=dense[i]) for i, row in enumerate(rows.tolist())]
    ranked_all = recommender.rank_many(queries, RankOptions(READY_K))
    for i, (query, ranked) in enumerate(zip(queries, ranked_all, strict=True)):
        n = len(ranked.rows)
        out.rows[i, :n] = ranked.rows
        out.score[i, :n] = ranked.scores
        values = signal_values(index, query, ranked)
        out.dense[i, :n], out.bm25[i, :n], out.names[i, :n] = values
        contexts = Contexts(index, query)
        out.contexts[i, : min(n, CONTEXT_K)] = [encode_context(contexts(r)) for r in ranked.rows[:CONTEXT_K].tolist()]
        assert ranked.pool is not None
        pool = ranked.pool
        out.thresholds[i] = (_nth(query.scores.dense[pool], POOL), _nth(query.scores.bm25[pool], POOL, True))
    return out


def _nth(values: np.ndarray, n: int, positive: bool = False) -> float:
    """The n-th best of `values` (the pool holds the n best of each kind, so this is the n-th best of all);
    -inf (dense) or 0 (BM25, only positive scores are candidates) when there are fewer."""
    if positive:
        values = values[values > 0]
    if len(values) < n:
        return 0.0 if positive else -np.inf
    return float(np.partition(values, len(values) - n)[len(values) - n])


# --- an update: which lists can change ----------------------------------------------------------------------
def doc_term_scores(index: Index) -> sp.csr_matrix:
    """(events, terms): each event's BM25 term scores as a document (bm25s keeps them by term)."""
    scores = index.bm25.scores
    shape = (int(scores["num_docs"]), len(scores["indptr"]) - 1)
    return sp.csc_matrix((scores["data"], scores["indices"], scores["indptr"]), shape=shape).tocsr()


def affected(
    new: Index,
    old_lists: ReadyLists,
    unchanged: np.ndarray,
    old_days: np.ndarray,
    old_density: np.ndarray,
    depth: int = ENTER_DEPTH,
) -> np.ndarray:
    """A mask over `new`'s rows of the lists an update must remake (`unchanged`: each new row's old row of the
    same unchanged event, or -1; `old_days`, `old_density`: the old rows' dates and story densities):

    - the new and changed events themselves;
    - every event within LOCAL_DAYS of a removed or changed one, and every event whose list names one;
    - every event whose story density changed (a new event is similar to it within a week), and every event
      with one among the first `depth` items of its list: the density is a feature of query and candidate;
    - every event that a new or changed event is about as close to, by dense cosine, as the first `depth`
      items of its list: within LOCAL_DAYS, no more than NEAR_MARGIN below the least close of them (nearness
      in time lifts it); farther away, closer than every one of them and in its pool (scoring at least the
      event's stored POOL-th dense or BM25 candidate).

    Every other list is copied. A new event in a copied list's pool still shifts the pool-relative features and
    BM25's IDF a little, and a near tie can turn: `eval/bench_refresh.py` measures how many lists then differ
    from a build from scratch (0.09% of the top 10s when a day's 15 events arrive)."""
    n = len(new)
    todo = unchanged < 0
    kept = np.flatnonzero(~todo)
    old_rows = np.full(n, -1, dtype=np.int64)
    old_rows[kept] = unchanged[kept]
    gone = _gone(unchanged, old_days)  # removed or changed events, as the old index had them
    added = np.flatnonzero(todo)  # new or changed events, as the new index has them
    todo |= _within_days(new, {int(d) for d in old_days[gone]})
    stored = np.asarray(old_lists.rows[unchanged[kept]])
    if len(gone):
        todo[kept[np.isin(stored, gone).any(axis=1)]] = True
    denser = kept[new.story_density[kept] != old_density[unchanged[kept]]]
    if len(denser):
        todo[denser] = True
        old_to_new = np.full(len(old_days) + 1, -1, dtype=np.int64)  # the last: -1 (past a list's end) stays
        old_to_new[unchanged[kept]] = kept
        marked = np.zeros(n + 1, dtype=bool)
        marked[denser] = True
        todo[kept[marked[old_to_new[stored[:, :depth]]].any(axis=1)]] = True
    if not len(added):
        return todo
    counts = Terms.load(new.path, TOKENS, new.meta if new.meta.checksums else None).matrix
    terms = doc_term_scores(new)
    # the least and the most close, by dense cosine, of each list's first `depth` items (-inf for a list shorter
    # than that: any new event can join it)
    least = np.full(n, -np.inf, dtype=np.float32)
    closest = np.full(n, -np.inf, dtype=np.float32)
    values = np.asarray(old_lists.dense[unchanged[kept], :depth])
    full = (np.asarray(old_lists.rows[unchanged[kept], :depth]) >= 0).all(axis=1)
    least[kept[full]] = values[full].min(axis=1)
    closest[kept[full]] = values[full].max(axis=1)
    for doc in added.tolist():
        dense = new.vectors @ new.vectors[doc]
        near = np.abs(new.day.astype(np.int64) - int(new.day[doc])) <= LOCAL_DAYS
        todo |= near & (dense >= least - NEAR_MARGIN)
        rest = np.flatnonzero(~todo & ~near & (dense >= closest))
        bm25 = np.asarray((counts[rest] @ terms[doc].T).toarray()).ravel().astype(np.float32)
        thresholds = old_lists.thresholds[old_rows[rest]]
        todo[rest[(dense[rest] >= thresholds[:, 0]) | ((bm25 > 0) & (bm25 >= thresholds[:, 1]))]] = True
    return todo


def near_a_change(new: Index, unchanged: np.ndarray, old_days: np.ndarray) -> np.ndarray:
    """A mask over `new`'s rows of the events within LOCAL_DAYS of a new, changed or removed event: their story
    (their nearest events within LOCAL_DAYS) can have changed, and with it a context made from it, so a copied
    list's kept contexts are dropped there (made on read)."""
    days = {int(d) for d in old_days[_gone(unchanged, old_days)]} | {int(d) for d in new.day[unchanged < 0]}
    return _within_days(new, days)


def _gone(unchanged: np.ndarray, old_days: np.ndarray) -> np.ndarray:
    """The old rows of the removed and changed events: those no new row keeps."""
    seen = np.zeros(len(old_days), dtype=bool)
    seen[unchanged[unchanged >= 0]] = True
    return np.flatnonzero(~seen)


def _within_days(new: Index, days: set[int]) -> np.ndarray:
    """A mask over `new`'s rows of the events within LOCAL_DAYS of any of `days`."""
    near = np.zeros(len(new), dtype=bool)
    for day in days:
        near[new.rows_within(day, LOCAL_DAYS)] = True
    return near


def update_lists(
    new: Index,
    previous: Path | None,
    unchanged: np.ndarray,
    old_days: np.ndarray,
    old_density: np.ndarray,
    jobs: int = 1,
    log: Callable[[str], None] = print,
    make: Callable[[Index], Recommender] = Recommender,
) -> tuple[ReadyLists, ListsReport]:
    """The lists of the index `new`, ranked by `make(new)`: those that can have changed since the index at
    `previous` (made by the same ranker) computed, the others copied from it; all computed when it has no
    current lists."""
    started = time.perf_counter()
    recommender = make(new)
    old_lists = ReadyLists.load(previous, IndexMeta.read(previous)) if previous is not None else None
    if old_lists is None or old_lists.fingerprint != recommender.fingerprint:
        if previous is not None:
            log("ready lists: none current in the index before (no lists, or another ranker): making every list")
        todo = np.ones(len(new), dtype=bool)
    else:
        todo = affected(new, old_lists, unchanged, old_days, old_density)
    rows = np.flatnonzero(todo)
    log(f"ready lists: making {len(rows):,} of {len(new):,} (the others copied)")
    lists = ReadyLists.empty(len(new), recommender.fingerprint)
    copied = np.flatnonzero(~todo)
    if len(copied):
        assert old_lists is not None
        lists.take(unchanged[copied], copied, old_lists)
        old_to_new = np.full(len(old_lists) + 1, -1, dtype=np.int32)  # the last: -1 stays -1
        old_to_new[unchanged[unchanged >= 0]] = np.flatnonzero(unchanged >= 0)
        lists.rows[copied] = old_to_new[lists.rows[copied]]
        assert lists.contexts is not None
        lists.contexts[copied[near_a_change(new, unchanged, old_days)[copied]]] = b""
    if len(rows):
        lists.take(np.arange(len(rows)), rows, compute_lists(recommender, rows, jobs))
    return lists, ListsReport(len(rows), len(copied), time.perf_counter() - started, recommender.lists_recipe)


def lists_step(
    jobs: int = 1, log: Callable[[str], None] = print, make: Callable[[Index], Recommender] = Recommender
) -> Callable[[Rebuilt, IndexMeta], None]:
    """The `extra` step of `build_index` that writes the new index's ready lists, ranked by `make(index)`, and
    records them (their fingerprint and recipe) in its meta."""

    def step(rebuilt: Rebuilt, meta: IndexMeta) -> None:
        new = load_index(rebuilt.folder)
        lists, report = update_lists(
            new, rebuilt.previous, rebuilt.unchanged, rebuilt.previous_days, rebuilt.previous_density, jobs, log, make
        )
        lists.write(rebuilt.folder)
        meta.lists_fingerprint = lists.fingerprint
        meta.lists_recipe = report.recipe
        meta.lists_computed = report.computed
        meta.lists_seconds = round(report.seconds, 2)
        log(f"ready lists: {report.computed:,} made, {report.copied:,} copied in {report.seconds:.1f}s")

    return step

"""Propose related events for an indexed event or for free text.

One ranking path serves the CLI, the API, batch suggestions and the eval. Systems:
- `dense`: cosine of the MiniLM vectors (exact, FAISS / BLAS).
- `bm25`: bm25s over the same text the embedder sees.
- `fused` (default): a candidate pool (top dense, top BM25, and the best dense matches within a month of the
  query) re-scored by a small learned model (LightGBM LambdaRank) over dense similarity, BM25, the names
  both events share, and closeness in time; trained on a train split of the curated lists
  (`recommender tune`). A linear mix cannot say "same story *and* close in time"; trees can.
Nothing here reads a Related section: `curated` only marks suggestions already in the event's list.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numba
import numpy as np

from recommender.embed import Embedder, text_hash
from recommender.forest import Forest
from recommender.index import Index, check_model, tokenize_query

FEATURES = (
    "dense",
    "dense_gap",
    "dense_rank",
    "bm25",
    "bm25_raw",
    "names",
    "names_of_candidate",
    "names_shared",
    "names_max_idf",
    "log_days",
    "days",
    "dense_rank_near",
    "story",
    "year",
    "similar_within_week",
    "days_rank_similar",
    "story_density",
    "query_story_density",
    "days_rank_named",
    "bm25_rank",
    "query_best_dense",
    "query_terms",
    "query_names",
    "candidate_length",
    "names_rank",
    "story_rank",
    "dense_z",
    "bm25_z",
    "story_z",
    "days_rank",
    "names_ratio",
    "names_story",
    "names_story_share",
)
NAMED = 0.15  # share of the query's name weight a candidate must share to count as naming the same things
SIMILAR = 0.45  # cosine above which a candidate likely belongs to the query's story
RANKER_DIR = Path(__file__).with_name("ranker")
POOL = 300  # candidates taken from each of dense and BM25 before fusion
LOCAL_POOL = 300  # and the best dense matches among events close in date: stories run in time
LOCAL_DAYS = 30
MAX_POOL = 2 * POOL + LOCAL_POOL
# "not in this set" for the rank features: a constant past any pool's end. A pool-size sentinel would tell
# the trees how large the pool is, which differs between the full archive and a small one.
NOT_RANKED = np.float32(MAX_POOL)
# A cascade: boosting is additive, so the ranker's first trees are a cheap first look at the whole pool. Each
# (trees, keep) stage scores the candidates still in with the trees up to `trees` and keeps the best `keep`
# (at least 4k + 20); those left get every tree, and exactly the full model's score.
CASCADE: tuple[tuple[int, int], ...] = ((50, 150), (150, 60))
NEAR_DUPLICATE = 0.97  # cosine above which two suggestions count as one item repeated with small edits


class UnknownEventError(KeyError):
    """An id that is not in the index; carries the closest ids by name."""

    def __init__(self, event_id: str, closest: list[str]):
        super().__init__(event_id)
        self.event_id = event_id
        self.closest = closest

    def __str__(self) -> str:
        hint = ("; closest ids: " + ", ".join(self.closest)) if self.closest else ""
        return f"unknown event id {self.event_id!r}{hint}"


@dataclass(frozen=True)
class Signals:
    """Why a suggestion was made: each signal's value for the pair."""

    dense: float
    bm25: float
    names: float
    days_apart: int | None
    shared_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suggestion:
    """One proposed related event, shared by the CLI, the API, batch suggestions and the eval."""

    rank: int
    id: str
    date: dt.date
    headline: str
    score: float
    curated: bool = False
    signals: Signals | None = None

    @property
    def context(self) -> tuple[str, ...]:
        """What the two events share, for an editor: names, like the archive's `_Context:_`."""
        return self.signals.shared_names if self.signals else ()


class Ranker:
    """A trained ranker over some of FEATURES (the ablations leave a signal's features out): LightGBM's trees,
    walked without LightGBM (`forest.Forest`)."""

    def __init__(self, name: str, model_file: Path, features: list[str]):
        self.name = name
        self.model_file = model_file
        self.columns = np.asarray([FEATURES.index(f) for f in features], dtype=np.int32)

    @cached_property
    def forest(self) -> Forest:
        """Loaded on first use: a server needs `fused` alone, not the ablations (about 20 MB each)."""
        return Forest.load(self.model_file)

    def score(self, features: np.ndarray, cascade: Sequence[tuple[int, int]] = ()) -> np.ndarray:
        """The model's score of every candidate (rows of `features`, all of FEATURES). With a `cascade` of
        (trees, keep) stages, only the candidates kept by every stage get all the trees; the others get -inf."""
        forest = self.forest
        alive = np.arange(len(features))
        partial = np.zeros(len(features))
        done = 0
        for trees, keep in cascade:
            if keep >= len(alive) or trees >= forest.num_trees:
                continue
            partial[alive] = forest.predict(features[alive], done, trees, columns=self.columns, initial=partial[alive])
            done = trees
            alive = alive[np.argpartition(-partial[alive], keep - 1)[:keep]]
        scores = np.full(len(features), -np.inf, dtype=np.float32)
        scores[alive] = forest.predict(features[alive], done, columns=self.columns, initial=partial[alive])
        return scores


def load_rankers(folder: Path = RANKER_DIR) -> dict[str, Ranker]:
    """The trained rankers by system name (`fused` and its ablations), from `folder/rankers.json`."""
    manifest = folder / "rankers.json"
    if not manifest.exists():
        return {}
    systems = json.loads(manifest.read_text())["systems"]
    return {name: Ranker(name, folder / spec["model"], spec["features"]) for name, spec in systems.items()}


@dataclass
class Query:
    """What the rankers know of a query: never its Related section."""

    vector: np.ndarray
    tokens: list[str]
    names: np.ndarray
    day: int | None = None
    row: int | None = None
    text_sha: str = ""
    dated: bool = True  # False: `day` was inferred (free text placed at its closest event's date)
    story_density: float = np.nan  # of an indexed event: how many similar events surround it in time
    exclude: set[int] = field(default_factory=set)
    dense: np.ndarray | None = None  # scores against every event, computed once per query
    bm25: np.ndarray | None = None


@dataclass
class Ranked:
    rows: np.ndarray
    scores: np.ndarray
    features: np.ndarray  # (len(rows), len(FEATURES)), for explanations


class Recommender:
    """`Recommender(load_index(path)).related(event_id)`; the model is loaded only for free text."""

    def __init__(self, index: Index, embedder: Embedder | None = None, rankers: dict[str, Ranker] | None = None):
        self.index = index
        self._embedder = embedder
        self.rankers = load_rankers() if rankers is None else rankers
        self.prune = True  # the CASCADE; False scores every candidate with every tree

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder(backend=self.index.meta.backend)
            check_model(self.index, self._embedder)
        return self._embedder

    @property
    def systems(self) -> list[str]:
        return ["dense", "bm25", *self.rankers]

    def warm_up(self, text: bool = False) -> None:
        """Load every lazy part now (a server's first request should not pay for it)."""
        index = self.index
        _ = index.vectors, index.bm25, index.names, index.name_idf, index.name_lookup
        if len(index):
            self.related(index.ids[0], k=1, system="fused" if "fused" in self.rankers else "dense")
        if text:
            self.embedder.encode(["warm up"])

    # --- queries -------------------------------------------------------------------------------------
    def row_of(self, event_id: str) -> int:
        row = self.index.position.get(event_id)
        if row is None:
            raise UnknownEventError(event_id, self.closest_ids(event_id))
        return row

    def closest_ids(self, event_id: str, limit: int = 5) -> list[str]:
        from rapidfuzz import fuzz, process

        matches = process.extract(event_id, self.index.ids, scorer=fuzz.WRatio, limit=limit)
        return [m[0] for m in matches]

    def query_for_row(self, row: int) -> Query:
        text = self.index.text(row)
        return Query(
            vector=self.index.vectors[row],
            tokens=tokenize_query(text),
            names=self.index.names_of(row),
            day=int(self.index.day[row]),
            row=row,
            text_sha=self.index.text_sha[row],
        )

    def query_for_text(self, text: str, day: dt.date | None = None) -> Query:
        return Query(
            vector=self.embedder.encode([text])[0],
            tokens=tokenize_query(text),
            names=self.index.name_ids(text),
            day=day.toordinal() if day else None,
            text_sha=text_hash(text),
        )

    # --- ranking -------------------------------------------------------------------------------------
    def allowed(self, query: Query, since: dt.date | None, until: dt.date | None) -> np.ndarray:
        index = self.index
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

    def rank(
        self,
        query: Query,
        k: int = 10,
        system: str = "fused",
        since: dt.date | None = None,
        until: dt.date | None = None,
    ) -> Ranked:
        """Top `k` rows for `query` by `system`, items with the query's own text and near-duplicates removed."""
        index = self.index
        allowed = self.allowed(query, since, until)
        if query.dense is None:
            query.dense = index.vectors @ query.vector
        dense = query.dense
        if system in ("bm25", *self.rankers) and query.bm25 is None:
            query.bm25 = index.bm25_scores(query.tokens)
        if system == "dense":
            scores = dense
        elif system == "bm25":
            scores = query.bm25
        elif system in self.rankers:
            pool, features = self.candidates(query, allowed)
            scores = self.rankers[system].score(features, self.cascade(k))
            return self._select(query, pool, scores, features, k, dense)
        else:
            raise ValueError(f"unknown system {system!r}: choose one of {', '.join(self.systems)}")
        pool = _top(scores, min(4 * k + 20, int(allowed.sum())), allowed)
        return self._select(query, pool, scores[pool], None, k, dense)

    def cascade(self, k: int) -> list[tuple[int, int]]:
        """CASCADE for `k` suggestions: every stage keeps at least 4k + 20 (none when `prune` is False)."""
        return [(trees, max(keep, 4 * k + 20)) for trees, keep in CASCADE] if self.prune else []

    def candidates(
        self, query: Query, allowed: np.ndarray, extra: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The fused ranker's pool (top dense and top BM25 rows, and `extra` rows) and each candidate's signal
        values. Several features are relative to the pool, so a candidate is only scored within one."""
        if query.dense is None:
            query.dense = self.index.vectors @ query.vector
        if query.bm25 is None:
            query.bm25 = self.index.bm25_scores(query.tokens)
        pool = _union_top(query.dense, query.bm25, allowed, POOL)
        if query.day is not None and LOCAL_POOL:
            near = self.rows_within(query.day, LOCAL_DAYS)
            near = near[allowed[near]]
            local = near[_top(query.dense[near], LOCAL_POOL)]
            pool = np.union1d(pool, local)
        if extra is not None:
            pool = np.union1d(pool, extra)
        return pool, self.features(query, pool, query.dense, query.bm25)

    def rows_within(self, day: int, days: int) -> np.ndarray:
        """Rows dated within `days` of `day` (a binary search over the rows in date order)."""
        by_day, sorted_days = self._date_order
        start, end = np.searchsorted(sorted_days, [day - days, day + days + 1])
        return by_day[start:end]

    @cached_property
    def _date_order(self) -> tuple[np.ndarray, np.ndarray]:
        by_day = np.argsort(self.index.day, kind="stable")
        return by_day, self.index.day[by_day]

    @cached_property
    def _text_length(self) -> np.ndarray:
        index = self.index
        lengths = np.fromiter(map(len, index.headlines), dtype=np.int64, count=len(index))
        return (lengths + np.fromiter(map(len, index.summaries), dtype=np.int64, count=len(index))).astype(np.float32)

    def dense_scores(self, rows: Sequence[int]) -> np.ndarray:
        """(len(rows), n) cosine of each indexed event in `rows` with every event: one matrix product, so a
        batch pays for reading the vectors once instead of once per event."""
        vectors = self.index.vectors
        return vectors[np.asarray(rows, dtype=np.int64)] @ vectors.T

    def features(self, query: Query, pool: np.ndarray, dense: np.ndarray, bm25: np.ndarray) -> np.ndarray:
        """(len(pool), len(FEATURES)) signal values of each candidate against the query."""
        index = self.index
        n = len(pool)
        best_bm25 = float(bm25[pool].max(initial=0.0))
        bm25_scaled = bm25[pool] / best_bm25 if best_bm25 > 0 else np.zeros(n, dtype=np.float32)
        dense_pool = dense[pool]
        dense_rank = _ranks(dense_pool)
        if query.day is not None:
            days = (index.day[pool] - query.day).astype(np.float32)
            near = np.abs(days) <= LOCAL_DAYS
            local_rank = np.full(n, NOT_RANKED)
            order = np.argsort(-np.where(near, dense_pool, -np.inf), kind="stable")
            local_rank[order[: int(near.sum())]] = np.arange(int(near.sum()))
            similar = dense_pool >= SIMILAR
            hot = np.full(n, np.float32(np.sum(similar & (np.abs(days) <= 7))))
            days_rank = np.full(n, NOT_RANKED)
            by_days = np.argsort(np.where(similar, np.abs(days), np.inf), kind="stable")[: int(similar.sum())]
            days_rank[by_days] = np.arange(len(by_days))
            time = [np.log1p(np.abs(days)), np.clip(days, -3650, 3650), local_rank]
            # the story around the query: its nearest events in time and text, as one pseudo-query
            nearest = pool[order[: min(5, int(near.sum()))]]
        else:
            time = [np.full(n, np.nan, dtype=np.float32)] * 3
            hot = days_rank = np.full(n, np.nan, dtype=np.float32)
            nearest = pool[np.argsort(-dense_pool)[:5]]
        centre = query.vector + index.vectors[nearest].sum(axis=0)
        story = index.vectors[pool] @ (centre / max(float(np.linalg.norm(centre)), 1e-6))
        weights = np.zeros(index.names.shape[1], dtype=np.float32)  # the query's names' IDF, 0 elsewhere
        weights[query.names] = index.name_idf[query.names]
        story_weights = self._story_weights(query, nearest)
        own_weight, overlap, shared, rarest, story_overlap = _name_overlaps(
            index.names, pool, index.name_idf, weights, story_weights
        )
        names_q = overlap / max(float(weights.sum()), 1e-6)
        names_c = overlap / np.maximum(own_weight, 1e-6)
        # names shared with the story, as a share of the story's and of the candidate's
        names_story = story_overlap / max(float(story_weights.sum()), 1e-6)
        names_story_share = story_overlap / np.maximum(own_weight, 1e-6)
        year = index.day[pool].astype(np.float32) / 365.25
        bm25_rank = _ranks(bm25[pool])
        named_rank = np.full(n, NOT_RANKED)
        if query.day is not None:
            named = names_q >= NAMED
            by_days = np.argsort(
                np.where(named, np.abs(index.day[pool] - query.day), np.iinfo(np.int32).max), kind="stable"
            )[: int(named.sum())]
            named_rank[by_days] = np.arange(len(by_days))
        else:
            named_rank[:] = np.nan
        query_density = index.story_density[query.row] if query.row is not None else query.story_density
        days_rank_all = _ranks(-np.abs(days)) if query.day is not None else np.full(n, np.nan)
        return np.column_stack(
            [
                dense_pool,
                dense_pool - dense_pool.max(initial=0.0),
                dense_rank,
                bm25_scaled,
                bm25[pool],
                names_q,
                names_c,
                shared,
                rarest,
                *time,
                story,
                year,
                hot,
                days_rank,
                np.log1p(index.story_density[pool]),
                np.full(n, np.log1p(query_density), dtype=np.float32),
                named_rank,
                bm25_rank,
                np.full(n, dense_pool.max(initial=0.0), dtype=np.float32),
                # how much text each side has: short items match less on every signal
                np.full(n, np.log1p(len(query.tokens)), dtype=np.float32),
                np.full(n, len(query.names), dtype=np.float32),
                np.log1p(self._text_length[pool]),
                _ranks(names_q),
                _ranks(story),
                # the same signals relative to this query's pool: trees score one candidate at a time
                _standardised(dense_pool),
                _standardised(bm25[pool]),
                _standardised(story),
                days_rank_all,
                names_q / max(float(names_q.max(initial=0.0)), 1e-6),
                names_story,
                names_story_share,
            ]
        ).astype(np.float32)

    def _story_weights(self, query: Query, story: np.ndarray) -> np.ndarray:
        """The IDF of the names of the query's story (its own names and those of its nearest events, rows
        `story`), 0 for other names: a follow-up often names the story's other actors, not the query's."""
        index = self.index
        names = index.names
        in_story = np.zeros(names.shape[1], dtype=bool)
        in_story[query.names] = True
        for row in story:
            in_story[names.indices[names.indptr[row] : names.indptr[row + 1]]] = True
        return np.where(in_story, index.name_idf, np.float32(0))

    def _select(
        self,
        query: Query,
        pool: np.ndarray,
        scores: np.ndarray,
        features: np.ndarray | None,
        k: int,
        dense: np.ndarray,
    ) -> Ranked:
        order = np.argsort(-scores, kind="stable")
        chosen: list[int] = []
        shas, headlines = self.index.text_sha, self.index.headlines
        seen_text = {query.text_sha}
        seen_headlines = {_normal(self.index.headlines[query.row])} if query.row is not None else set()
        for position in order:
            row = int(pool[position])
            if not np.isfinite(scores[position]) or shas[row] in seen_text:
                continue
            headline = _normal(headlines[row])
            if headline in seen_headlines:
                continue  # the same item again, perhaps with a summary added
            vector = self.index.vectors[row]
            if chosen and float(np.max(self.index.vectors[pool[chosen]] @ vector)) >= NEAR_DUPLICATE:
                continue
            seen_text.add(shas[row])
            seen_headlines.add(headline)
            chosen.append(int(position))
            if len(chosen) == k:
                break
        picked = np.asarray(chosen, dtype=np.int64)
        rows = pool[picked]
        if features is None:
            features = self.features(query, rows, dense, query.bm25 if query.bm25 is not None else np.zeros(len(dense)))
        else:
            features = features[picked]
        return Ranked(rows=rows, scores=scores[picked].astype(np.float32), features=features)

    # --- suggestions -----------------------------------------------------------------------------------
    def related(
        self,
        event_id: str,
        k: int = 10,
        since: dt.date | None = None,
        until: dt.date | None = None,
        exclude_curated: bool = False,
        system: str = "fused",
        exclude_rows: Iterable[int] = (),
        dense: np.ndarray | None = None,
    ) -> list[Suggestion]:
        """Suggestions for an indexed event; `curated` marks those already in its Related list.

        `dense`: the event's row of `dense_scores`, when a batch caller has computed it already."""
        row = self.row_of(event_id)
        curated = set(self.index.record(row).curated)
        query = self.query_for_row(row)
        query.dense = dense
        query.exclude = set(exclude_rows)
        if exclude_curated:
            query.exclude |= {self.index.position[c] for c in curated if c in self.index.position}
        return self._suggestions(query, self.rank(query, k, system, since, until), curated)

    def describe(self, event_id: str, ids: list[str]) -> list[Suggestion]:
        """Given events as suggestions for `event_id`, with their signals (for editors' pins)."""
        row = self.row_of(event_id)
        query = self.query_for_row(row)
        rows = np.asarray([self.row_of(i) for i in ids], dtype=np.int64)
        pool, features = self.candidates(query, self.allowed(query, None, None), extra=rows)
        features = features[np.searchsorted(pool, rows)]  # scored within the pool they would be ranked in
        assert query.dense is not None  # computed by candidates()
        scores = self.rankers["fused"].score(features) if "fused" in self.rankers else query.dense[rows]
        ranked = Ranked(rows=rows, scores=scores, features=features)
        return self._suggestions(query, ranked, set(self.index.record(row).curated))

    def similar(
        self,
        text: str,
        k: int = 10,
        since: dt.date | None = None,
        until: dt.date | None = None,
        system: str = "fused",
    ) -> list[Suggestion]:
        """Suggestions for free text. Text has no date of its own: it is placed at the date of its closest
        event (within since/until), so that closeness in time to that story counts as it does for events."""
        query = self.query_for_text(text)
        self.anchor_in_time(query, since, until)
        return self._suggestions(query, self.rank(query, k, system, since, until), set())

    def anchor_in_time(self, query: Query, since: dt.date | None = None, until: dt.date | None = None) -> None:
        """Give an undated query the date of its closest allowed event by dense cosine (not one with the same
        text): the rankers were trained on dated events, and a story is told around a date."""
        if query.day is not None:
            return
        if query.dense is None:
            query.dense = self.index.vectors @ query.vector
        scores = np.where(self.allowed(query, since, until), query.dense, -np.inf)
        scores[[row for row in _top(scores, 5) if self.index.text_sha[row] == query.text_sha]] = -np.inf
        closest = int(np.argmax(scores))
        if np.isfinite(scores[closest]):
            query.day, query.dated = int(self.index.day[closest]), False
            query.story_density = float(self.index.story_density[closest])

    def _suggestions(self, query: Query, ranked: Ranked, curated: set[str]) -> list[Suggestion]:
        index = self.index
        query_names = set(int(n) for n in query.names)
        out = []
        for i, (row, score) in enumerate(zip(ranked.rows, ranked.scores, strict=True)):
            row = int(row)
            features = ranked.features[i]
            shared = [int(n) for n in index.names_of(row) if int(n) in query_names]
            out.append(
                Suggestion(
                    rank=i + 1,
                    id=index.ids[row],
                    date=index.date(row),
                    headline=index.headlines[row],
                    score=round(float(score), 4),
                    curated=index.ids[row] in curated,
                    signals=Signals(
                        dense=round(float(features[FEATURES.index("dense")]), 4),
                        bm25=round(float(features[FEATURES.index("bm25")]), 4),
                        names=round(float(features[FEATURES.index("names")]), 4),
                        days_apart=abs(int(index.day[row]) - query.day)
                        if query.day is not None and query.dated
                        else None,
                        shared_names=self.display_names(shared, index.text(row)),
                    ),
                )
            )
        return out

    def display_names(self, name_ids: list[int], text: str, limit: int = 4) -> tuple[str, ...]:
        """The rarest shared names, whole names before their words, as written in `text`."""
        index = self.index
        ranked = sorted(name_ids, key=lambda n: (-(" " in index.name_vocab[n]), -index.name_idf[n]))
        picked: list[str] = []
        for n in ranked:
            name = index.name_vocab[n]
            if any(name in p for p in picked):
                continue
            picked.append(name)
            if len(picked) == limit:
                break
        return tuple(_as_written(name, text) for name in picked)


def _name_overlaps(
    names: Any, pool: np.ndarray, idf: np.ndarray, weights: np.ndarray, story_weights: np.ndarray
) -> tuple[np.ndarray, ...]:
    """For each candidate in `pool` (rows of the binary events x names matrix `names`): the IDF weight of its
    names, the `weights` of those names summed, how many have weight, the largest weight (0 if none), and the
    `story_weights` of its names summed."""
    return _name_overlaps_kernel(names.indptr, names.indices, pool, idf, weights, story_weights)


@numba.njit(cache=True, nogil=True)
def _name_overlaps_kernel(indptr, indices, pool, idf, weights, story_weights):
    # float32 sums in the matrix's column order: the same values as scipy's CSR product, without its overheads
    n = len(pool)
    own = np.zeros(n, dtype=np.float32)
    overlap = np.zeros(n, dtype=np.float32)
    shared = np.zeros(n, dtype=np.float32)
    largest = np.zeros(n, dtype=np.float32)
    story = np.zeros(n, dtype=np.float32)
    for i in range(n):
        row = pool[i]
        for j in range(indptr[row], indptr[row + 1]):
            name = indices[j]
            own[i] += idf[name]
            story[i] += story_weights[name]
            weight = weights[name]
            overlap[i] += weight
            if weight > 0:
                shared[i] += np.float32(1.0)
                largest[i] = max(largest[i], weight)
    return own, overlap, shared, largest, story


def _normal(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _as_written(name: str, text: str) -> str:
    match = re.search(re.escape(name).replace(r"\ ", r"\s+"), text, flags=re.IGNORECASE)
    return match.group(0) if match else name


def _ranks(values: np.ndarray) -> np.ndarray:
    """Each value's rank in the pool, 0 for the highest (ties in pool order)."""
    ranks = np.empty(len(values), dtype=np.float32)
    ranks[np.argsort(-values, kind="stable")] = np.arange(len(values))
    return ranks


def _standardised(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    return (values - values.mean()) / max(float(values.std()), 1e-6) if len(values) else values


def _top(scores: np.ndarray, n: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Indices of the `n` highest scores (among `allowed` rows), highest first; ties go to the lower index."""
    n = max(0, min(n, len(scores)))
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rows = _top_allowed(scores, np.ones(len(scores), dtype=bool) if allowed is None else allowed, n, False)
    return rows[np.lexsort((rows, -scores[rows]))]


def _union_top(dense: np.ndarray, bm25: np.ndarray, allowed: np.ndarray, n: int) -> np.ndarray:
    """The rows of the `n` best allowed dense scores and of the `n` best positive allowed BM25 scores, sorted."""
    return np.union1d(_top_allowed(dense, allowed, n, False), _top_allowed(bm25, allowed, n, True))


@numba.njit(cache=True, nogil=True)
def _top_allowed(scores, allowed, n, positive_only):
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

"""`Recommender`: related events for an indexed event or for free text, by one of the systems, with why.

Systems: `dense` (cosine of the MiniLM vectors), `bm25` (over the text the embedder sees), and `fused` (the
default) and its ablations: a candidate pool scored by a learned ranker over dense similarity, BM25, the names
both events share and closeness in time. One ranking path serves the CLI, the API, batch suggestions and the
eval, and one request path (`RelatedRequest` -> `Recommender.answer`) decides the whole answer for an indexed
event, ready lists or live, for the CLI, the API, batch suggestions and the review page alike. Nothing here reads
a Related section: `curated` only marks suggestions already in the event's list (or leaves them out).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from recommender.archive import Event, in_event_layout
from recommender.embed import Embedder, near_duplicate_cosine
from recommender.index import Index, check_model
from recommender.index.layout import READY_K
from recommender.index.lists import decode_context
from recommender.rank.calibration import Calibration, load_calibration
from recommender.rank.candidates import allowed_rows, candidate_pool
from recommender.rank.explain import Contexts, Ranked, Suggestion, built, suggestions
from recommender.rank.features import feature_matrix, window_features
from recommender.rank.fingerprint import fingerprint, lists_recipe
from recommender.rank.fusion import ANCHOR_APART, ANCHORS, DEPTH, reciprocal_rank_fusion
from recommender.rank.query import Query, anchored, anchored_at, event_cosines, query_for_row, query_for_text
from recommender.rank.ranker import RANKER_DIR, Cascade, Ranker, cascade_for, load_rankers
from recommender.rank.select import select
from recommender.rank.threads import query_cores, threads
from recommender.rank.topk import top

SCORE_SYSTEMS = ("dense", "bm25")  # ranked by one score alone; every other system is a trained ranker
CLOSE_ENOUGH, CLEAR_MARGIN = 85, 5  # WRatio (0-100) of the one id an unknown id is taken as a typo of


class UnknownEventError(KeyError):
    """An id that is not in the index; carries the one id it is most likely a typo of, if any."""

    def __init__(self, event_id: str, closest: list[str]):
        super().__init__(event_id)
        self.event_id = event_id
        self.closest = closest

    def __str__(self) -> str:
        hint = f"; did you mean {self.closest[0]}?" if self.closest else ""
        return f"unknown event id {self.event_id!r}{hint}"


@dataclass(frozen=True)
class RelatedRequest:
    """Everything an answer for an indexed event depends on besides the event: the one request that the CLI, the
    API, batch suggestions and the review page hand to `Recommender.answer`.

    `curated`: the ids of the event's Related list as its file has it now (None: as indexed); they are marked
    `curated`, and left out with `exclude_curated`. `exclude`: rows never suggested (editors' exclusions and
    never-pairs, rejections). `pins`: rows put first, marked `pinned` (an editor's pins). `past_only`: only
    events up to the event's own date. `min_confidence`: only suggestions at least that sure (so perhaps fewer
    than `k`)."""

    k: int = 10
    since: dt.date | None = None
    until: dt.date | None = None
    system: str = "fused"
    min_confidence: float = 0.0
    exclude_curated: bool = False
    curated: frozenset[str] | None = None
    exclude: frozenset[int] = frozenset()
    pins: tuple[int, ...] = ()
    past_only: bool = False


@dataclass(frozen=True)
class RankOptions:
    """How `Recommender.rank_many` ranks: the top `k` by `system`, over the events dated `since`..`until` (None:
    open), rows in `skip` filtered out of the list (a trained ranker's only); `judged=False`: a trained ranker's
    trees alone, without its judged stage."""

    k: int = 10
    system: str = "fused"
    since: dt.date | None = None
    until: dt.date | None = None
    skip: frozenset[int] = frozenset()
    judged: bool = True


class Recommender:
    """`Recommender(load_index(path)).related(event_id)`; the model is loaded only for free text.

    `rankers`: the trained rankers by system name (default: the packaged ones); `cascade`: the (trees, keep)
    stages that spare most candidates most trees (default: each ranker's own, from its manifest; `()` scores
    every candidate with every tree)."""

    def __init__(
        self,
        index: Index,
        embedder: Embedder | None = None,
        rankers: dict[str, Ranker] | None = None,
        cascade: Cascade | None = None,
    ):
        self.index = index
        self._embedder = embedder
        self.rankers = load_rankers() if rankers is None else rankers
        self.cascade = cascade
        self.near_duplicate = near_duplicate_cosine(index.meta.embedder)
        # the confidence belongs to the packaged fused ranker: rankers passed in have none unless set here
        self.calibration: Calibration | None = load_calibration(RANKER_DIR) if rankers is None else None

    @cached_property
    def lists_recipe(self) -> dict[str, str]:
        """What a ready list made by this recommender's fused ranker is made of (`fingerprint.py`)."""
        fused = self.rankers.get("fused")
        return lists_recipe(fused, self.cascade, self.calibration, self.near_duplicate)

    @cached_property
    def fingerprint(self) -> str:
        """The fused ranker's fingerprint as ready lists record it ("" without a fused ranker)."""
        return fingerprint(self.lists_recipe)

    @property
    def lists_state(self) -> str:
        """ "ready" (lists made by this ranker), "stale" (by another: not served until `index` refreshes them)
        or "none" (an index built with --no-lists)."""
        lists = self.index.lists
        if lists is None:
            return "none"
        return "ready" if lists.fingerprint == self.fingerprint else "stale"

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder(backend=self.index.meta.backend, model=self.index.meta.embedder)
            check_model(self.index, self._embedder)
        return self._embedder

    @property
    def systems(self) -> list[str]:
        return [*SCORE_SYSTEMS, *self.rankers]

    def warm_up(self, text: bool = False) -> None:
        """Load every lazy part now (a server's first request should not pay for it)."""
        index = self.index
        _ = index.vectors, index.bm25, index.names, index.name_idf, index.name_lookup
        if len(index):  # ranked, not read from the ready lists: the trees' sessions are made now
            self.related_to_row(0, k=1, system="fused" if "fused" in self.rankers else "dense", ready=False)
        if text:
            self.embedder.encode(["warm up"])

    def row_of(self, event_id: str) -> int:
        """The row of an event id, written as in the index or as the archive's links write it (a leading slash,
        months and days with or without zero padding)."""
        row = self.find(event_id)
        if row is None:
            raise UnknownEventError(event_id, closest_ids(self.index, event_id))  # at most one
        return row

    def find(self, event_id: str) -> int | None:
        """`row_of`, or None for an id not in the index."""
        row = self.index.position.get(event_id)
        if row is None:
            row = self.index.position.get(event_id.strip().lstrip("/"))
        if row is None:
            found = self.index.resolve(event_id)
            row = None if found is None else self.index.position.get(found)
        return row

    def find_page(self, page: Event) -> int | None:
        """The row of the indexed event that a page kept outside the archive stands for (a copy of an event, such
        as SEED-EXAMPLE.md): the event of the archive's layout, of the same date, whose headline has the same
        words (quotes, case and spacing aside; at least 90% of them in common), or None."""
        words = headline_words(page.headline)
        best, best_overlap = None, 0.9
        for row in np.flatnonzero(self.index.day == page.date.toordinal()):
            if not in_event_layout(self.index.ids[int(row)]):
                continue  # another page, not an event
            other = headline_words(self.index.headlines[int(row)])
            overlap = len(words & other) / max(1, len(words | other))
            if overlap >= best_overlap:
                best, best_overlap = int(row), overlap
        return best

    def find_id(self, event_id: str) -> str | None:
        """The indexed id of an id or link as the archive writes it, or None (a link to an unindexed event)."""
        row = self.find(event_id)
        return None if row is None else self.index.ids[row]

    def _calibration(self, system: str) -> Calibration | None:
        calibration = self.calibration
        return calibration if calibration is not None and calibration.system == system else None

    # --- suggestions ---------------------------------------------------------------------------------------
    def related(
        self,
        event_id: str,
        k: int = 10,
        since: dt.date | None = None,
        until: dt.date | None = None,
        exclude_curated: bool = False,
        system: str = "fused",
        min_confidence: float = 0.0,
    ) -> list[Suggestion]:
        """Suggestions for an indexed event (see `RelatedRequest`)."""
        request = RelatedRequest(k, since, until, system, min_confidence, exclude_curated)
        return self.answer(self.row_of(event_id), request)

    def related_to_row(
        self,
        row: int,
        k: int = 10,
        *,
        exclude_rows: Iterable[int] = (),
        since: dt.date | None = None,
        until: dt.date | None = None,
        system: str = "fused",
        dense: np.ndarray | None = None,
        curated: set[str] | None = None,
        min_confidence: float = 0.0,
        ready: bool = True,
    ) -> list[Suggestion]:
        """`answer` for the event at `row`, its request given as keywords (`exclude_rows`: never suggested)."""
        request = RelatedRequest(
            k,
            since,
            until,
            system,
            min_confidence,
            curated=None if curated is None else frozenset(curated),
            exclude=frozenset(exclude_rows),
        )
        return self.answer(row, request, dense=dense, ready=ready)

    def answer(
        self, row: int, request: RelatedRequest, dense: np.ndarray | None = None, ready: bool = True
    ) -> list[Suggestion]:
        """The whole answer for the event at `row`: read from the ready lists when they can answer (`ready`
        and `lists_answer`), else ranked now, the same answer either way (each Suggestion's `source` says
        which); then `min_confidence` applied and the pins put first. `dense`: the event's row of
        `dense_scores`, when computed for a block of events at once.

        Excluded rows are filtered out of the ranked list (they stay in the pool, as a ready list has them);
        only when that leaves fewer than `k` are they taken out of the pool and the event ranked again."""
        curated, skip = self._curated_and_skip(row, request)
        found = self._from_lists(row, request.k, skip, curated) if ready and self.lists_answer(request) else None
        if found is None:
            until = request.until
            if request.past_only:
                until = min(until, self.index.date(row)) if until is not None else self.index.date(row)
            found = self._live(row, request.k, skip, request.since, until, request.system, dense, curated)
        return self._finished(row, request, curated, found)

    def ready_answer(self, row: int, request: RelatedRequest) -> list[Suggestion] | None:
        """`answer` when the ready lists alone can give it (a fraction of a millisecond: a server answers it on
        its event loop), else None."""
        if request.pins or not self.lists_answer(request):
            return None
        curated, skip = self._curated_and_skip(row, request)
        found = self._from_lists(row, request.k, skip, curated)
        return None if found is None else self._finished(row, request, curated, found)

    def lists_answer(self, request: RelatedRequest) -> bool:
        """Whether the ready lists may answer `request`: lists made by this fused ranker, at least `k` long, and
        no date window (they were ranked over every date). They may still not, for an event whose exclusions
        leave too few (`_from_lists`)."""
        lists = self.index.lists
        return (
            lists is not None
            and request.system == "fused"
            and "fused" in self.rankers
            and request.since is None
            and request.until is None
            and not request.past_only
            and request.k <= min(READY_K, lists.rows.shape[1])
            and self.lists_state == "ready"
        )

    def _curated_and_skip(self, row: int, request: RelatedRequest) -> tuple[set[str], frozenset[int]]:
        """The event's curated ids (as its file has them now, else as indexed) and the rows not to rank: the
        request's exclusions, its pins (put first instead), its curated items with `exclude_curated`."""
        curated = set(self.index.record(row).curated if request.curated is None else request.curated)
        skip = set(request.exclude) | set(request.pins)
        if request.exclude_curated:
            position = self.index.position
            skip |= {position[c] for c in curated if c in position}
        skip.discard(row)
        return curated, frozenset(skip)

    def _finished(
        self, row: int, request: RelatedRequest, curated: set[str], found: list[Suggestion]
    ) -> list[Suggestion]:
        """`found` at least `min_confidence` sure, after the pins; ranks renumbered 1.. when pins or the
        confidence changed the list (a rank is the place in the answer given)."""
        shown = confident(found, request.min_confidence)
        pins = [p for p in request.pins if p != row]
        if pins:
            pinned = [replace(s, pinned=True) for s in self.describe_row(row, pins, curated=curated)]
            shown = (pinned + shown)[: request.k]
        if pins or len(shown) < len(found):
            shown = [replace(s, rank=i + 1) for i, s in enumerate(shown)]
        return shown

    def _from_lists(self, row: int, k: int, skip: frozenset[int], curated: set[str]) -> list[Suggestion] | None:
        """The fused ranker's answer read from the ready lists, which may answer (`lists_answer`), or None where
        they cannot give the live answer (too few left once `skip` is filtered out)."""
        lists = self.index.lists
        assert lists is not None
        stored, score, dense, bm25, names, contexts = lists.entry(row)
        length = int(np.count_nonzero(stored >= 0))
        keep = [i for i in range(length) if int(stored[i]) not in skip][:k]
        if len(keep) < k and (len(keep) < length or length == stored.shape[0] or skip):
            return None  # the live ranking would look further, or rank again without the excluded rows
        index = self.index
        picked = np.asarray(keep, dtype=np.int64)
        return built(
            index,
            stored[picked].astype(np.int64),
            score[picked],
            dense[picked],
            bm25[picked],
            names[picked],
            int(index.day[row]),
            Contexts(index, lambda: query_for_row(index, row)),  # made only for a context the list lacks
            curated,
            self._calibration("fused"),
            source="ready",
            kept=[decode_context(bytes(contexts[i])) if i < len(contexts) else None for i in keep],
        )

    def _live(
        self,
        row: int,
        k: int,
        skip: frozenset[int],
        since: dt.date | None,
        until: dt.date | None,
        system: str,
        dense: np.ndarray | None,
        curated: set[str],
    ) -> list[Suggestion]:
        index = self.index
        options = RankOptions(k, system, since, until)
        if system in self.rankers:
            query = query_for_row(index, row, frozenset(), dense)
            ranked = self.rank_many([query], replace(options, skip=skip))[0]
            if skip and len(ranked.rows) < k:  # the pool ran out: rank again with the excluded rows left out
                query = query_for_row(index, row, skip, query.scores.dense)
                ranked = self.rank_many([query], options)[0]
        else:
            query = query_for_row(index, row, skip, dense)
            ranked = self.rank_many([query], options)[0]
        return suggestions(index, query, ranked, curated, self._calibration(system))

    def describe_row(self, row: int, rows: list[int], curated: set[str] | None = None) -> list[Suggestion]:
        """Given events (`rows`) as suggestions for the event at `row`, with their signals (editors' pins),
        scored within the pool they would be ranked in (several features are relative to the pool)."""
        index = self.index
        query = query_for_row(index, row)
        wanted = np.asarray(rows, dtype=np.int64)
        pool = candidate_pool(index, query, allowed_rows(index, query, None, None), extra=wanted)
        features = feature_matrix(index, query, pool)[np.searchsorted(pool, wanted)]
        scores = self.rankers["fused"].score(features) if "fused" in self.rankers else query.scores.dense[wanted]
        ranked = Ranked(wanted, scores, float(query.scores.bm25[pool].max(initial=0.0)))
        calibration = self._calibration("fused") if "fused" in self.rankers else None
        if curated is None:
            curated = set(index.record(row).curated)
        return suggestions(index, query, ranked, curated, calibration)

    def similar(
        self,
        text: str,
        k: int = 10,
        since: dt.date | None = None,
        until: dt.date | None = None,
        system: str = "fused",
        min_confidence: float = 0.0,
    ) -> list[Suggestion]:
        """Suggestions for free text (see `rank_text`); with a trained ranker, each suggestion's score is its
        fused reciprocal rank and it has no calibrated confidence."""
        query = query_for_text(self.index, text, self.embedder.encode([text])[0])
        if system not in self.rankers:
            query = anchored(self.index, query, allowed_rows(self.index, query, since, until))
            ranked = self.rank(query, k, system, since, until)
            return confident(suggestions(self.index, query, ranked, set(), self._calibration(system)), min_confidence)
        ranked, query = self.rank_text(query, RankOptions(k, system, since, until))
        return suggestions(self.index, query, ranked, set())

    def rank_text(self, query: Query, options: RankOptions = RankOptions()) -> tuple[Ranked, Query]:
        """Top `k` rows for an undated query by a trained ranker (`options.system`), and the query as placed in
        time (at its closest event's date). The ranker was trained on dated events and closeness in time counts
        for much in it, so text is placed where its best dense matches are: at each of the dates of its ANCHORS
        best matches that lie more than a month apart (one story told at several times: Russia's withdrawals from
        Syria of 2016 and 2017), ranked there, and these rankings fused with the dense one (`fusion.py`), so that no
        placing drops the text's best matches elsewhere."""
        index = self.index
        allowed = allowed_rows(index, query, options.since, options.until)
        deep = replace(options, k=DEPTH)
        dense = self.rank_many([query], replace(deep, system="dense"))[0]
        anchors: list[int] = []
        for row in dense.rows.tolist():
            if index.text_sha[row] != query.text_sha and all(
                abs(int(index.day[row]) - int(index.day[a])) > ANCHOR_APART for a in anchors
            ):
                anchors.append(row)
            if len(anchors) == ANCHORS:
                break
        _ = query.scores.bm25  # computed once, before the placings share it

        def placed(row: int) -> np.ndarray:
            # placed at an event, the text is read as about it: that event heads the ranking made there (the
            # ranker, trained on pairs of distinct events, never saw a candidate that is the query itself); the
            # trees alone order a placing: the judged stage, fitted on events' own pools, put other stories that
            # share the text's words above the text's best matches (Putin's 2016 withdrawal fell from the top 3)
            there = self.rank_many([anchored_at(index, query, row)], replace(deep, judged=False))[0].rows
            return np.concatenate([[row], there[there != row]])

        # the placings are independent, and their trees are scored without the GIL: one thread each
        spread = len(anchors) > 1 and query_cores() > 1
        rankings = [dense.rows, *(threads("placing", ANCHORS).map(placed, anchors) if spread else map(placed, anchors))]
        rows, scores = reciprocal_rank_fusion(rankings, options.k)
        best_bm25 = float(query.scores.bm25[np.concatenate(rankings)].max(initial=0.0))
        return Ranked(rows, scores, best_bm25), anchored(index, query, allowed)

    # --- ranking (the eval ranks queries itself) -------------------------------------------------------
    def query(self, row: int) -> Query:
        """The query of the indexed event at `row`."""
        return query_for_row(self.index, row)

    def rank(
        self,
        query: Query,
        k: int = 10,
        system: str = "fused",
        since: dt.date | None = None,
        until: dt.date | None = None,
    ) -> Ranked:
        """Top `k` rows for `query` by `system`, items with the query's own text and near-duplicates removed. A
        trained ranker's cascade keeps as many candidates for any k up to READY_K as for READY_K: its top k is
        then the ready list's."""
        return self.rank_many([query], RankOptions(k, system, since, until))[0]

    def rank_many(self, queries: list[Query], options: RankOptions) -> list[Ranked]:
        """`rank` of each of `queries` (with all of `options`), a trained ranker's trees called once a cascade
        stage for all their pools (a block of ready lists): the same answer as each ranked alone, by the same
        code."""
        k, system, since, until = options.k, options.system, options.since, options.until
        index = self.index
        allowed = [allowed_rows(index, query, since, until) for query in queries]
        if system in self.rankers:
            pools = [candidate_pool(index, query, mask) for query, mask in zip(queries, allowed, strict=True)]
            # within a window, the features are those of the pool the whole archive would give, cut to the window
            table = window_features if since is not None or until is not None else feature_matrix
            tables = [table(index, query, pool) for query, pool in zip(queries, pools, strict=True)]
            ranker = self.rankers[system]
            cascade = ranker.cascade if self.cascade is None else self.cascade
            score_many = ranker.score_many if options.judged else ranker.tree_scores_many
            scored = score_many(tables, cascade_for(cascade, max(k, READY_K)))
        elif system in SCORE_SYSTEMS:
            pools, scored = [], []
            for query, mask in zip(queries, allowed, strict=True):
                every = query.scores.dense if system == "dense" else query.scores.bm25
                pools.append(top(every, min(4 * k + 20, int(mask.sum())), mask))
                scored.append(every[pools[-1]])
        else:
            raise ValueError(f"unknown system {system!r}: choose one of {', '.join(self.systems)}")
        out = []
        for query, pool, scores in zip(queries, pools, scored, strict=True):
            picked = select(index, query, pool, scores, k, self.near_duplicate, options.skip)
            rows = pool[picked]
            # the BM25 shown is relative to the best of the candidates ranked: the pool, or the rows shown
            best_bm25 = query.scores.bm25[pool if system in self.rankers else rows].max(initial=0.0)
            out.append(Ranked(rows, scores[picked].astype(np.float32), float(best_bm25), pool))
        return out

    def dense_scores(self, rows: list[int]) -> np.ndarray:
        """(len(rows), n) cosine of each indexed event in `rows` with every event: one matrix product, so a
        batch pays for reading the vectors once instead of once per event."""
        vectors = self.index.vectors
        return event_cosines(vectors, vectors[np.asarray(rows, dtype=np.int64)])


def confident(found: list[Suggestion], min_confidence: float) -> list[Suggestion]:
    """The suggestions at least `min_confidence` sure (all of them at 0, or without a confidence)."""
    if min_confidence <= 0:
        return found
    return [s for s in found if s.confidence is None or s.confidence >= min_confidence]


def headline_words(headline: str) -> set[str]:
    return set(re.findall(r"\w+", headline.lower()))


def closest_ids(index: Index, event_id: str) -> list[str]:
    """The one indexed id `event_id` is most likely a typo or a shortening of, for an error message; none when
    no id is clearly it (a path such as /etc/passwd is like no id, and gets no guesses)."""
    from rapidfuzz import fuzz, process

    found = process.extract(event_id, index.ids, scorer=fuzz.WRatio, limit=2)
    if not found or found[0][1] < CLOSE_ENOUGH or (len(found) > 1 and found[0][1] - found[1][1] < CLEAR_MARGIN):
        return []
    return [found[0][0]]

"""A small FastAPI service over a saved index: `create_app(index_path)`; `recommender serve` runs it.

Index and model are loaded once, at start. Suggestions come from the same `Recommender` as the CLI. An id is
only ever looked up in the index's id map: no request touches the filesystem.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

from fastapi import Body, FastAPI, HTTPException, Query
from pydantic import BaseModel, Field, field_validator

from recommender.index import DEFAULT_INDEX, load_index
from recommender.rank import Recommender, Suggestion, UnknownEventError

MAX_TEXT = 10_000
MAX_BATCH = 1_000


class SignalsOut(BaseModel):
    dense: float
    bm25: float
    names: float
    days_apart: int | None
    shared_names: list[str]


class SuggestionOut(BaseModel):
    rank: int
    id: str
    date: dt.date
    headline: str
    score: float
    confidence: float | None = None  # probability that it belongs in the event's Related list (README)
    curated: bool
    context: list[str]
    signals: SignalsOut | None

    @classmethod
    def of(cls, s: Suggestion) -> SuggestionOut:
        signals = None
        if s.signals:
            signals = SignalsOut(
                dense=s.signals.dense,
                bm25=s.signals.bm25,
                names=s.signals.names,
                days_apart=s.signals.days_apart,
                shared_names=list(s.signals.shared_names),
            )
        return cls(
            rank=s.rank,
            id=s.id,
            date=s.date,
            headline=s.headline,
            score=s.score,
            confidence=s.confidence,
            curated=s.curated,
            context=list(s.context),
            signals=signals,
        )


class SourceOut(BaseModel):
    name: str
    url: str | None


class RelatedLinkOut(BaseModel):
    text: str
    href: str
    id: str | None = Field(description="The linked event's id, or null when it is not in the index.")
    context: list[str]


class EventOut(BaseModel):
    id: str
    date: dt.date
    headline: str
    summary: str
    sources: list[SourceOut]
    related: list[RelatedLinkOut]


class Health(BaseModel):
    status: str
    events: int
    model: str
    model_fingerprint: str
    index_built_at: str
    archive: str


class SimilarRequest(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    k: int = Field(10, ge=1, le=100)
    since: dt.date | None = None
    until: dt.date | None = None

    @field_validator("text")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty")
        return value


class BatchRequest(BaseModel):
    ids: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    k: int = Field(10, ge=1, le=100)


class BatchResponse(BaseModel):
    results: dict[str, list[SuggestionOut]]
    unknown: list[str] = Field(description="Requested ids that are not in the index.")


def create_app(index_path: str | Path = DEFAULT_INDEX, recommender: Recommender | None = None) -> FastAPI:
    """The API over the index at `index_path` (or an already loaded `recommender`).

    The endpoints are `async` on purpose: ranking is CPU-bound numpy/BLAS work, and running it one request at
    a time on the event loop beats a thread pool whose threads fight over the cores (measured: 5 req/s with
    threads, see eval/bench_api.py).
    """
    recommender = recommender or Recommender(load_index(index_path))
    recommender.warm_up(text=True)
    index = recommender.index
    app = FastAPI(
        title="recommender",
        summary="Related events for a news-event archive.",
        version="0.1.0",
    )

    def row_of(event_id: str) -> int:
        row = recommender.find(event_id)  # as indexed, or as the archive links it (leading slash, padding)
        if row is None:
            raise HTTPException(status_code=404, detail=f"unknown event id {event_id!r}")
        return row

    @app.get("/health", response_model=Health)
    async def health() -> Health:
        meta = index.meta
        return Health(
            status="ok",
            events=len(index),
            model=meta.model,
            model_fingerprint=meta.model_fingerprint,
            index_built_at=meta.built_at,
            archive=meta.archive,
        )

    @app.get("/events/{event_id:path}/related", response_model=list[SuggestionOut])
    async def related(
        event_id: str,
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        since: dt.date | None = None,
        until: dt.date | None = None,
        exclude_curated: bool = False,
        min_confidence: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
    ) -> list[SuggestionOut]:
        row_of(event_id)
        suggestions = recommender.related(
            event_id, k, since=since, until=until, exclude_curated=exclude_curated, min_confidence=min_confidence
        )
        return [SuggestionOut.of(s) for s in suggestions]

    @app.get("/events/{event_id:path}", response_model=EventOut)
    async def event(event_id: str) -> EventOut:
        record = index.record(row_of(event_id))
        return EventOut(
            id=record.id,
            date=record.date,
            headline=record.headline,
            summary=record.summary,
            sources=[SourceOut(**s) for s in record.sources],
            related=[RelatedLinkOut(**r) for r in record.related],
        )

    @app.post("/similar", response_model=list[SuggestionOut])
    async def similar(request: SimilarRequest) -> list[SuggestionOut]:
        suggestions = recommender.similar(request.text, request.k, since=request.since, until=request.until)
        return [SuggestionOut.of(s) for s in suggestions]

    @app.post("/related/batch", response_model=BatchResponse)
    async def batch(request: Annotated[BatchRequest, Body()]) -> BatchResponse:
        results: dict[str, list[SuggestionOut]] = {}
        unknown: list[str] = []
        for event_id in dict.fromkeys(request.ids):
            try:
                results[event_id] = [SuggestionOut.of(s) for s in recommender.related(event_id, request.k)]
            except UnknownEventError:
                unknown.append(event_id)
        return BatchResponse(results=results, unknown=unknown)

    return app

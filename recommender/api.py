"""A small FastAPI service over a saved index: `create_app(index_path)`; `recommender serve` runs it, in one or
several worker processes (`app_from_env`, each mapping the same index files, so their pages are shared).

Suggestions come from the same `Recommender` as the CLI. By id (and each id of a batch) they are read from the
index's ready lists whenever the request allows, on the event loop (a fraction of a millisecond; the JSON of an
answer is kept, per build), and ranked live otherwise. An id is only ever looked up, exactly, in the index's id
map: no request touches the filesystem. No request can hold the server: ids, texts and bodies have limits, bad
JSON (NaN, Infinity, lone surrogates) is a 422 that echoes only an excerpt, and live ranking runs in worker
threads (at most `threads` at once, at most `queue` more waiting: past that a 503 with Retry-After at once,
never an unbounded queue; id by id for a batch, after its ready answers) within a per-request time budget (past
it: a 503, or a batch's remaining ids listed as unfinished), so the event loop (/health) always answers.
Answers by id carry an ETag (the build id and the ranker's fingerprint) and a Cache-Control max-age, so a
site's cache revalidates with If-None-Match (304). The index loaded stays as it was loaded; a new build at the
same path (its build id in meta.json changes) is loaded beside it and swapped in atomically, checked every
`reload_every` seconds and on SIGHUP.
"""

from __future__ import annotations

import asyncio
import ctypes
import datetime as dt
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import orjson
from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator
from starlette.types import ASGIApp, Receive, Scope, Send

from recommender import webguard
from recommender.archive import MAX_ID
from recommender.index import DEFAULT_INDEX, IndexLoadError, IndexMeta, load_index
from recommender.lifecycle import recommender_for
from recommender.rank import Recommender, RelatedRequest, Suggestion
from recommender.rank.output import suggestion_json
from recommender.rank.threads import ranking

MAX_TEXT = 10_000  # characters of a free text
MAX_BATCH = 1_000  # ids in one batch
MAX_BODY = 1_000_000  # bytes of a request body (a full batch of the longest ids is under 400 KB)
EXCERPT = 80  # characters of a bad input echoed in an error
TIME_BUDGET = 30.0  # seconds a request may take, waiting for a worker included
RELOAD_EVERY = 3.0  # seconds between checks for a new build
QUEUE = 32  # live rankings that may wait for a worker thread; one more is a 503 with Retry-After
CACHE_SECONDS = 300  # Cache-Control max-age of an answer by id; after it a cache revalidates (ETag, 304)
KEPT_BYTES = 8_000_000  # JSON of ready answers kept per build and process (about 3 KB an answer for k = 10)
BATCH_TURN = 0.002  # seconds of ready answers a batch makes before the event loop's other requests get a turn
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
SWITCH_INTERVAL = 0.001  # seconds a thread holds the GIL while another waits for it (see app_from_env)

log = logging.getLogger("recommender.api")
T = TypeVar("T")
EventId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID)]


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
    pinned: bool = Field(False, description="Put first by an editor's pin (editors.toml): batch suggestions only.")
    context: list[str]
    signals: SignalsOut | None
    source: str = Field("live", description='"ready": read from the ready lists; "live": ranked for the request.')


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
    build_id: str = Field(description="The build of the index being served (meta.json's build_id).")
    archive: str = Field(description="The name of the archive the index was built from (not its path).")
    lists: str = Field(
        "none",
        description='The ready lists: "ready" (served), "stale" (made by another ranker: every answer is ranked '
        'live until `recommender index` refreshes them) or "none" (an index built with --no-lists).',
    )
    ranker_fingerprint: str = ""
    worker: int = Field(0, description="The process id of the worker that answered.")


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

    @model_validator(mode="after")
    def window(self) -> SimilarRequest:
        problem = window_problem(self.since, self.until)
        if problem:
            raise ValueError(problem)
        return self


def window_problem(since: dt.date | None, until: dt.date | None) -> str | None:
    """Why a since/until window is empty (since after until), as the CLI says it; None when it is not."""
    if since and until and since > until:
        return f"since {since} is after until {until}: no date is in that window"
    return None


def etag_matches(etag: str, if_none_match: str | None) -> bool:
    """If-None-Match's weak comparison (RFC 9110, 13.1.2): `*`, or a listed tag with the same opaque tag as
    `etag`, with or without W/ (a cache may send the strong form of a weak ETag)."""
    if not if_none_match:
        return False
    opaque = etag.removeprefix("W/")
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or any(tag.removeprefix("W/") == opaque for tag in tags)


class BatchRequest(BaseModel):
    ids: list[EventId] = Field(min_length=1, max_length=MAX_BATCH)
    k: int = Field(10, ge=1, le=100)


class BatchResponse(BaseModel):
    results: dict[str, list[SuggestionOut]]
    unknown: list[str] = Field(description="Requested ids that are not in the index.")
    unfinished: list[str] = Field(
        default_factory=list, description="Indexed ids not ranked within the request's time budget: send them again."
    )


class BudgetSpent(Exception):
    """The request's time budget ran out before its work could start."""


class Saturated(Exception):
    """Every worker thread is busy and the queue for them is full."""


def answer_bytes(found: list[Suggestion]) -> bytes:
    return orjson.dumps([suggestion_json(s) for s in found])


def excerpt(value: Any, limit: int = EXCERPT) -> str:
    """A short, always encodable excerpt of a (possibly huge or malformed) input, for an error message."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)[: limit * 4]
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _short_error(error: dict[str, Any]) -> dict[str, Any]:
    short: dict[str, Any] = {
        "type": error.get("type", ""),
        "loc": [part if isinstance(part, int) else excerpt(part) for part in error.get("loc", ())],
        "msg": excerpt(error.get("msg", ""), 200),
    }
    if "input" in error:
        short["input"] = excerpt(error["input"])
    return short


def _error(status: int, loc: list[str | int], msg: str, kind: str) -> JSONResponse:
    return JSONResponse({"detail": [{"type": kind, "loc": loc, "msg": msg}]}, status_code=status)


def add_offline_docs(app: FastAPI, url: str = "/docs", assets: str = "/docs-assets") -> None:
    """Swagger UI at `url` with its JavaScript and CSS served by the app itself, not a CDN: the docs work with
    no network (FastAPI's "self-hosting JavaScript and CSS for docs"; the files ship in fastapi-offline)."""
    import fastapi_offline
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount(assets, StaticFiles(directory=Path(fastapi_offline.__file__).with_name("static")), name="docs-assets")

    @app.get(url, include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
        )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class BodyGuard:
    """Refuse, before any endpoint sees it, a body over `limit` bytes (413, read no further), one not sent within
    `webguard.BODY_TIMEOUT` (408) and one that is not strict JSON: NaN and Infinity, lone surrogates, bad UTF-8,
    nesting deeper than `webguard.MAX_DEPTH` (422). The body is then passed on unchanged."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        too_big = _error(413, ["body"], f"the body is over {self.limit:,} bytes", "too_large")
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            await too_big(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        deadline = time.monotonic() + webguard.BODY_TIMEOUT
        while more:
            try:
                message = await webguard.receive_within(receive, deadline)
            except webguard.BodyTimeout:
                late = f"the body was not sent within {webguard.BODY_TIMEOUT:.0f} s"
                await _error(408, ["body"], late, "timeout")(scope, receive, send)
                return
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await too_big(scope, receive, send)
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = _json_problem(body) if body else None
        if problem:
            await _error(422, ["body"], problem, "json_invalid")(scope, receive, send)
            return
        await self.app(scope, webguard.replay(body, receive), send)


def _json_problem(body: bytes) -> str | None:
    """Why `body` is not strict JSON, or None."""
    deep = webguard.nesting_problem(body)
    if deep:
        return deep
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"the body is not UTF-8 (byte {exc.start})"
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError, or NaN/Infinity
        return excerpt(str(exc), 200)
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "a string holds a lone surrogate (\\ud800-\\udfff escape), which is not valid Unicode"
    return None


class Served:
    """The recommender over the index being served, replaced whole when a new build appears at its path, and the
    JSON of its ready answers (kept per build)."""

    def __init__(self, path: Path, recommender: Recommender):
        self.path = path
        self.recommender = recommender
        self.failed = ""  # a build id that would not load: not retried until the build changes
        self.lock = threading.Lock()
        self.answers: dict[tuple[int, RelatedRequest], bytes] = {}  # ready answers of this build, as JSON
        self.kept = 0  # their bytes

    @property
    def etag(self) -> str:
        """The version of every answer by id: the build and the ranker (weak: the same answer may say it was
        read from a list or ranked live)."""
        recommender = self.recommender
        return f'W/"{recommender.index.meta.build_id}.{recommender.fingerprint}"'

    def ready_json(self, recommender: Recommender, row: int, request: RelatedRequest) -> bytes | None:
        """The JSON of `Recommender.ready_answer` (kept while `recommender` is the one served), or None: the
        answer must be ranked live."""
        answers = self.answers if self.recommender is recommender else {}
        found = answers.get((row, request))
        if found is None:
            suggestions = recommender.ready_answer(row, request)
            if suggestions is None:
                return None
            found = answer_bytes(suggestions)
            if answers is self.answers:
                if self.kept + len(found) > KEPT_BYTES:  # forget the older half (a dict keeps insertion order)
                    for old in list(answers)[: len(answers) // 2 + 1]:
                        self.kept -= len(answers.pop(old))
                answers[(row, request)] = found
                self.kept += len(found)
        return found

    def reload_if_rebuilt(self) -> bool:
        """Load the build now at `path` if its build id is new (a blocking call: run it in a thread)."""
        with self.lock:
            try:
                build = IndexMeta.read(self.path).build_id
            except (OSError, IndexLoadError):
                return False  # mid-swap or damaged: keep serving what is loaded
            if build in (self.recommender.index.meta.build_id, self.failed):
                return False
            old = self.recommender
            try:
                index = load_index(self.path)
                same_model = index.meta.model_fingerprint == old.index.meta.model_fingerprint
                # the same ranking as loaded, or the installed one where it made the new build's lists
                fresh = recommender_for(index, like=old, embedder=old.embedder if same_model else None)
                fresh.warm_up(text=not same_model)
                index.load_all()
            except (IndexLoadError, OSError) as exc:
                self.failed = build
                log.warning("not serving build %s: %s", build, exc)
                return False
            self.recommender = fresh
            self.answers, self.kept = {}, 0
            log.warning("now serving build %s of %s (%d events)", build, self.path, len(index))
            return True


@dataclass(frozen=True)
class Limits:
    """How much a server takes on: `threads` live rankings at once, `queue` more waiting, `time_budget` seconds
    a request, answers by id cached `cache_seconds`, a new build looked for every `reload_every` seconds (when
    `reloads`)."""

    threads: int = 2
    queue: int = QUEUE
    time_budget: float = TIME_BUDGET
    cache_seconds: int = CACHE_SECONDS
    reload_every: float = RELOAD_EVERY
    reloads: bool = True


RELATED_RESPONSES: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified (If-None-Match holds the ETag)"},
    503: {"description": "Busy"},
}
# (method, path, endpoint, response model, responses); `{event_id:path}/related` before `{event_id:path}`
ROUTES: tuple[tuple[str, str, str, Any, dict[int | str, dict[str, Any]] | None], ...] = (
    ("GET", "/health", "health", Health, None),
    ("GET", "/events/{event_id:path}/related", "related", list[SuggestionOut], RELATED_RESPONSES),
    ("GET", "/events/{event_id:path}", "event", EventOut, None),
    ("POST", "/similar", "similar", list[SuggestionOut], None),
    ("POST", "/related/batch", "batch", BatchResponse, None),
)


class Api:
    """The endpoints over one served index: each parses its request, asks the recommender (`Recommender.answer`,
    or `ready_answer` on the event loop) and formats the answer. Live rankings run in worker threads, at most
    `limits.threads` at once with `limits.queue` more waiting (`waiting` counts both)."""

    def __init__(self, served: Served, limits: Limits):
        self.served = served
        self.limits = limits
        self.limiter = anyio.CapacityLimiter(limits.threads)
        self.waiting = 0

    def router(self, app: FastAPI) -> FastAPI:
        """`app` with the route table's endpoints and the validation errors' handler."""
        app.add_exception_handler(RequestValidationError, invalid)  # type: ignore[arg-type]
        for method, path, name, model, responses in ROUTES:
            app.add_api_route(path, getattr(self, name), methods=[method], response_model=model, responses=responses)
        return app

    @asynccontextmanager
    async def lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        """While the app runs, load a new build at the index path: every `reload_every` seconds and on SIGHUP."""
        if not self.limits.reloads:
            yield
            return
        wake = asyncio.Event()
        with suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread: the periodic check
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, wake.set)

        async def watch() -> None:
            while True:
                with suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.limits.reload_every)
                wake.clear()
                await anyio.to_thread.run_sync(self.served.reload_if_rebuilt)

        task = asyncio.create_task(watch())
        try:
            yield
        finally:
            task.cancel()

    # --- live work in worker threads ------------------------------------------------------------------------
    async def work(self, deadline: float, call: Callable[[], T]) -> T:
        """Run CPU work in a worker thread, once one is free; Saturated at once when `threads` run and `queue`
        wait already; BudgetSpent if the request's time is up by the time a thread is free."""
        if self.waiting >= self.limits.threads + self.limits.queue:
            raise Saturated
        self.waiting += 1
        try:
            async with self.limiter:
                if time.monotonic() > deadline:
                    raise BudgetSpent
                return await anyio.to_thread.run_sync(_ranked, call)
        finally:
            self.waiting -= 1

    async def one(self, deadline: float, call: Callable[[], T]) -> T:
        """`work` for a request of one answer: a 503 with Retry-After when it cannot be done now."""
        limits = self.limits
        try:
            return await self.work(deadline, call)
        except BudgetSpent:
            detail = f"busy: over the {limits.time_budget:g}s time budget, retry"
        except Saturated:
            detail = f"busy: {limits.threads} rankings running and {limits.queue} waiting, retry in a second"
        raise HTTPException(status_code=503, detail=detail, headers={"Retry-After": "1"})

    def deadline(self) -> float:
        return time.monotonic() + self.limits.time_budget

    def cached(self, request: Request, body: bytes | None = None) -> Response:
        """`body` with the build's ETag and Cache-Control, or a 304 when the client holds it already."""
        etag = self.served.etag
        headers = {"ETag": etag, "Cache-Control": f"public, max-age={self.limits.cache_seconds}"}
        if etag_matches(etag, request.headers.get("if-none-match")):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    # --- endpoints ------------------------------------------------------------------------------------------
    async def health(self) -> Health:
        recommender = self.served.recommender
        index = recommender.index
        meta = index.meta
        return Health(
            status="ok",
            events=len(index),
            model=meta.model,
            model_fingerprint=meta.model_fingerprint,
            index_built_at=meta.built_at,
            build_id=meta.build_id,
            archive=Path(meta.archive).name,
            lists=recommender.lists_state,
            ranker_fingerprint=recommender.fingerprint,
            worker=os.getpid(),
        )

    async def related(
        self,
        request: Request,
        event_id: Annotated[str, PathParam(max_length=MAX_ID)],
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        since: dt.date | None = None,
        until: dt.date | None = None,
        exclude_curated: bool = False,
        min_confidence: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
    ) -> Response:
        deadline = self.deadline()
        problem = window_problem(since, until)
        if problem:
            return _error(422, ["query", "since"], problem, "empty_window")
        recommender = self.served.recommender
        row = row_of(recommender, event_id)
        if etag_matches(self.served.etag, request.headers.get("if-none-match")):
            return self.cached(request)
        asked = RelatedRequest(k, since, until, min_confidence=min_confidence, exclude_curated=exclude_curated)
        ready = self.served.ready_json(recommender, row, asked)
        if ready is not None:
            return self.cached(request, ready)
        suggestions = await self.one(deadline, lambda: recommender.answer(row, asked))
        return self.cached(request, answer_bytes(suggestions))

    async def event(self, event_id: Annotated[str, PathParam(max_length=MAX_ID)]) -> EventOut:
        recommender = self.served.recommender
        record = recommender.index.record(row_of(recommender, event_id))
        return EventOut(
            id=record.id,
            date=record.date,
            headline=record.headline,
            summary=record.summary,
            sources=[SourceOut(**s) for s in record.sources],
            related=[RelatedLinkOut(**r) for r in record.related],
        )

    async def similar(self, request: SimilarRequest) -> Response:
        deadline = self.deadline()
        recommender = self.served.recommender
        suggestions = await self.one(
            deadline, lambda: recommender.similar(request.text, request.k, since=request.since, until=request.until)
        )
        return Response(answer_bytes(suggestions), media_type="application/json")  # as SuggestionOut, no pydantic

    async def batch(self, request: Annotated[BatchRequest, Body()]) -> Response:
        """Ids answered from the ready lists first (a few at a time, so /health and other requests get their
        turns), then the others ranked one by one, each in its turn for a worker, so that a batch never holds
        the others up for long; unknown ids are listed, never guessed at; those not ranked within the time
        budget are listed as unfinished."""
        deadline = self.deadline()
        recommender = self.served.recommender
        asked = RelatedRequest(request.k)
        results: dict[str, bytes] = {}
        unknown: list[str] = []
        unfinished: list[str] = []
        to_rank: list[tuple[str, int]] = []
        turn = time.monotonic()
        for event_id in dict.fromkeys(request.ids):
            if time.monotonic() - turn > BATCH_TURN:
                await asyncio.sleep(0)
                turn = time.monotonic()
            row = recommender.find(event_id)  # exact, or as the archive links it: never a guess
            ready = None if row is None else self.served.ready_json(recommender, row, asked)
            if row is None:
                unknown.append(event_id)
            elif ready is None:
                to_rank.append((event_id, row))
            else:
                results[event_id] = ready
        for event_id, row in to_rank:
            if unfinished:
                unfinished.append(event_id)
                continue
            try:
                found = await self.work(deadline, _bind(recommender.answer, row, asked))
                results[event_id] = answer_bytes(found)
            except (BudgetSpent, Saturated):
                unfinished.append(event_id)
        order = [i for i in dict.fromkeys(request.ids) if i in results]
        body = {
            "results": {i: orjson.Fragment(results[i]) for i in order},
            "unknown": unknown,
            "unfinished": unfinished,
        }
        return Response(orjson.dumps(body), media_type="application/json")


def _ranked(call: Callable[[], T]) -> T:
    with ranking():  # a query alone in this worker may spread over every core (threads.query_cores)
        return call()


async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    """A 422 that echoes only short excerpts of the bad input, at most ten errors."""
    errors = list(exc.errors())
    detail = [_short_error(e) for e in errors[:10]]
    if len(errors) > 10:
        detail.append({"type": "more", "loc": [], "msg": f"and {len(errors) - 10} more errors"})
    return JSONResponse({"detail": detail}, status_code=422)


def row_of(recommender: Recommender, event_id: str) -> int:
    """The row of an id as indexed, or as the archive links it (leading slash, padding); a 404 otherwise."""
    row = recommender.find(event_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"unknown event id {excerpt(event_id)!r}")
    return row


def create_app(
    index_path: str | Path = DEFAULT_INDEX,
    recommender: Recommender | None = None,
    threads: int = 2,
    time_budget: float = TIME_BUDGET,
    reload_every: float = RELOAD_EVERY,
    queue: int = QUEUE,
    cache_seconds: int = CACHE_SECONDS,
) -> FastAPI:
    """The API over the index at `index_path` (or an already loaded `recommender`, then never reloaded):
    `threads` live rankings at once, `queue` more waiting (see the module docstring)."""
    limits = Limits(threads, queue, time_budget, cache_seconds, reload_every, reloads=recommender is None)
    recommender = recommender or Recommender(load_index(index_path))
    recommender.warm_up(text=True)
    recommender.index.load_all()
    api = Api(Served(Path(index_path), recommender), limits)
    app = FastAPI(
        title="recommender",
        summary="Related events for a news-event archive.",
        version="0.1.0",
        lifespan=api.lifespan,
        docs_url=None,  # add_offline_docs serves them, with Swagger UI's files from here, not a CDN
        redoc_url=None,
    )
    app.add_middleware(BodyGuard)
    add_offline_docs(app)
    return api.router(app)


def _bind(call: Callable[..., T], *args: Any) -> Callable[[], T]:
    return lambda: call(*args)


def _return_large_blocks() -> None:
    """Serve every allocation of 128 KB or more (a query's scores against every event: 450 KB each) from its
    own mapping, returned to the system when freed. glibc otherwise raises that threshold after the first such
    block is freed and keeps the later ones in its heap, about 40 MB a worker after a load of texts."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 128 * 1024)


def app_from_env() -> FastAPI:
    """The app of one worker process of `recommender serve --workers N` (uvicorn's factory, imported in each
    worker): its settings from the RECOMMENDER_SERVE_* variables `serve` sets."""
    env = os.environ
    # the event loop shares the GIL with the ranking threads: each time it gives the GIL up (every socket call)
    # it waits for a thread to hand it back, up to the switch interval (5 ms by default); 1 ms keeps /health
    # and ready answers quick beside live rankings
    sys.setswitchinterval(SWITCH_INTERVAL)
    _return_large_blocks()
    # tqdm (BM25's tokenizer uses it, disabled) would make its lock a multiprocessing semaphore, which a worker
    # ended by SIGTERM leaves to the supervisor's resource tracker: "leaked semaphore objects" at every stop
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    return create_app(
        env.get("RECOMMENDER_SERVE_INDEX", str(DEFAULT_INDEX)),
        threads=int(env.get("RECOMMENDER_SERVE_THREADS", "2")),
        queue=int(env.get("RECOMMENDER_SERVE_QUEUE", str(QUEUE))),
    )

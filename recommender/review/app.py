"""The review web app: `create_review_app(reviewer, host, token)`, served by `recommender review`.

Safety: the app answers only requests addressed to the host it serves (no DNS rebinding); bound to any address
other than loopback it needs a token (`--token`, or RECOMMENDER_REVIEW_TOKEN), which every request then carries
(opening `/?token=...` once sets it as a same-site cookie); every POST carries the server's random CSRF token
(in each form) and, when the browser sends one, an Origin of this very server, so no other site can post a
decision. Decisions only ever write files of the index's id map under the archive root (see `Reviewer.path_of`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from recommender.review import pages
from recommender.review.queue import Reviewer, ReviewError, StaleFileError

MAX_FORM = 64_000  # bytes of a decision form (a Context is one line)
COOKIE = "review_token"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def create_review_app(reviewer: Reviewer, host: str = "127.0.0.1", token: str | None = None) -> FastAPI:
    """The app over `reviewer`; a non-loopback `host` without a `token` is refused (ValueError)."""
    if not is_loopback(host) and not token:
        raise ValueError(f"--host {host} is not a loopback address: give --token (or RECOMMENDER_REVIEW_TOKEN)")
    csrf = secrets.token_urlsafe(32)
    allowed_hosts = {"127.0.0.1", "localhost", "::1", host.strip("[]")}
    app = FastAPI(title="recommender review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.reviewer = reviewer
    app.state.csrf = csrf

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        hostname = (urlsplit(f"//{request.headers.get('host', '')}").hostname or "").strip("[]")
        if hostname not in allowed_hosts:
            return Response("unknown Host", status_code=421)
        if token:
            given = request.query_params.get("token")
            if given is not None and _same(given, token) and request.method == "GET":
                back = RedirectResponse(request.url.path, status_code=303)
                back.set_cookie(COOKIE, token, httponly=True, samesite="strict")
                return back
            presented = request.cookies.get(COOKIE) or request.headers.get("x-review-token") or ""
            if not _same(presented, token) and request.url.path != "/health":
                return Response("this review server needs its token: open /?token=...", status_code=401)
        if request.method == "POST":
            origin = request.headers.get("origin") or request.headers.get("referer")
            if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
                return Response("cross-site request refused", status_code=403)
        response = await call_next(request)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        return response

    async def form(request: Request) -> dict[str, str]:
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            raise PermissionError("not a form of the review pages (no CSRF token): reload the page")
        body = await request.body()
        if len(body) > MAX_FORM:
            raise ReviewError("form too large")
        fields = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True).items()}
        if not _same(fields.get("csrf", ""), csrf):
            raise PermissionError("missing or wrong CSRF token: reload the page")
        return fields

    def date_param(value: str | None) -> dt.date | None:
        try:
            return dt.date.fromisoformat(value) if value else None
        except ValueError:
            return None

    @app.get("/health")
    def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "events": len(reviewer.window())})

    @app.get("/", response_class=HTMLResponse)
    def queue(
        since: str | None = None,
        until: str | None = None,
        no_related: str | None = None,
        sort: str = "date",
        flash: str = "",
    ) -> HTMLResponse:
        start, end = date_param(since), date_param(until)
        found = reviewer.queue(start, end, bool(no_related), sort == "confidence")
        html = pages.queue_page(
            found, csrf, bool(reviewer.undo_stack), start, end, bool(no_related), sort == "confidence", flash[:300]
        )
        return HTMLResponse(html)

    def render_event(event_id: str, flash: str = "", refused: str = "", kept: dict[str, str] | None = None) -> str:
        view = reviewer.view(event_id)
        found = reviewer.suggestions(event_id)
        pending = reviewer.pending(event_id, found)
        following = reviewer.next_event(event_id)
        return pages.event_page(
            view,
            found,
            pending,
            reviewer.skipped.get(event_id, set()),
            reviewer.queue_counts(),
            csrf,
            bool(reviewer.undo_stack),
            pages.event_url(following) if following else None,
            flash=flash,
            refused=refused,
            kept=kept,
        )

    @app.get("/event/{event_id:path}", response_class=HTMLResponse)
    def event(event_id: str, flash: str = "") -> HTMLResponse:
        try:
            return HTMLResponse(render_event(event_id, flash=flash[:300]))
        except (ReviewError, ValueError, OSError) as exc:  # unknown id, or a file that is no longer an event
            return HTMLResponse(pages.message_page("Not found", str(exc)[:300], csrf), status_code=404)

    @app.post("/decide")
    async def decide(request: Request) -> Response:
        try:
            fields = await form(request)
        except PermissionError as exc:
            return HTMLResponse(pages.message_page("Refused", str(exc), csrf), status_code=403)
        except ReviewError as exc:
            return HTMLResponse(pages.message_page("Bad request", str(exc), csrf), status_code=400)
        event_id, candidate = fields.get("event", ""), fields.get("candidate", "")
        shown = {"rank": _number(fields.get("rank"), int), "score": _number(fields.get("score"), float)}
        shown["confidence"] = _number(fields.get("confidence"), float)
        try:
            record = reviewer.decide(
                fields.get("action", ""),
                event_id,
                candidate,
                fields.get("digest", ""),
                context=fields.get("context", ""),
                reason=fields.get("reason", ""),
                shown=shown,
            )
        except StaleFileError as exc:
            kept = {candidate: fields.get("context", "")}
            html = render_event(event_id, refused=str(exc), kept=kept)
            return HTMLResponse(html, status_code=409)
        except ReviewError as exc:
            return HTMLResponse(pages.message_page("Bad request", str(exc), csrf), status_code=400)
        flash = f"{record['decision']}: {_headline(reviewer, candidate)}"
        target = event_id
        if not reviewer.pending(event_id):
            target = reviewer.next_event(event_id) or ""
        url = pages.event_url(target) if target else "/"
        return RedirectResponse(url + pages.query_string(flash=flash), status_code=303)

    @app.post("/undo")
    async def undo(request: Request) -> Response:
        try:
            await form(request)
            record = reviewer.undo()
        except PermissionError as exc:
            return HTMLResponse(pages.message_page("Refused", str(exc), csrf), status_code=403)
        except (ReviewError, StaleFileError) as exc:
            return HTMLResponse(pages.message_page("Not undone", str(exc), csrf), status_code=409)
        flash = f"undone: {record['undoes']} {_headline(reviewer, str(record['candidate']))}"
        url = pages.event_url(str(record["event"])) + pages.query_string(flash=flash)
        return RedirectResponse(url, status_code=303)

    return app


def _same(given: str, secret: str) -> bool:
    """A constant-time comparison of a presented secret (any text) with ours."""
    return secrets.compare_digest(given.encode("utf-8", "replace"), secret.encode("utf-8"))


def _headline(reviewer: Reviewer, event_id: str) -> str:
    index = reviewer.recommender.index
    row = index.position.get(event_id)
    return index.headlines[row][:120] if row is not None else event_id


def _number(value: str | None, kind: type) -> object:
    try:
        return kind(value) if value not in (None, "") else None
    except ValueError:
        return None

"""The review web app: `create_review_app(reviewer, host, token)`, served by `recommender review`.

Safety: the app answers only requests addressed to a name it serves (no DNS rebinding): loopback's, the address
it is bound to, each `--allowed-host`, and, bound to every address, the machine's own names and addresses. Bound
to any address other than loopback it needs a token of at least 16 characters (`--token-file`, or
RECOMMENDER_TOKEN), which every request then carries (opening `/?token=...` once sets it as a same-site cookie);
wrong guesses of it have a budget, per client and in all (`webguard.GuessBudget`: then 429). Every POST carries
the server's random CSRF token (in each form) and, when the browser sends one, an Origin of this very server, so
no other site can post a decision. Decisions only ever write files of the index's id map under the archive root
(see `Reviewer.path_of`). Bodies are limited before they are read, pages carry a CSP that allows their own
inline style and script only, and a damaged decisions.jsonl or editors.toml is a page that names the file and
line (503), never a 500.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from recommender import webguard
from recommender.review import pages
from recommender.review.queue import DamagedFileError, Reviewer, ReviewError, StaleFileError

MAX_FORM = 64_000  # bytes of a decision form (a Context is one line)
COOKIE = "review_token"


is_loopback = webguard.is_loopback


# (method, path, endpoint); the endpoints are `ReviewApp`'s methods
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/health", "health"),
    ("GET", "/", "queue"),
    ("GET", "/event/{event_id:path}", "event"),
    ("POST", "/decide", "decide"),
    ("POST", "/undo", "undo"),
)
HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": pages.CSP,
}


def create_review_app(
    reviewer: Reviewer,
    host: str = "127.0.0.1",
    token: str | None = None,
    allowed_hosts: tuple[str, ...] = (),
    guesses: webguard.GuessBudget | None = None,
) -> FastAPI:
    """The app over `reviewer`; a non-loopback `host` without a `token`, or a token under 16 characters, is
    refused (ValueError). `allowed_hosts`: more names or addresses that requests may address."""
    if not is_loopback(host) and not token:
        raise ValueError(f"--host {host} is not a loopback address: give --token-file (or RECOMMENDER_TOKEN)")
    if token and (problem := webguard.token_problem(token)):
        raise ValueError(f"--token: {problem}")
    review = ReviewApp(reviewer, webguard.host_names(host, allowed_hosts), token, guesses or webguard.GuessBudget())
    app = FastAPI(title="recommender review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.reviewer = reviewer
    app.state.csrf = review.csrf
    return review.router(app)


class ReviewApp:
    """The review pages over one `reviewer`: each endpoint parses its request, asks the reviewer and renders a
    page (`pages.py`); `guard` admits only requests to a served name, with the token, and no cross-site POST."""

    def __init__(self, reviewer: Reviewer, names: set[str], token: str | None, budget: webguard.GuessBudget):
        self.reviewer = reviewer
        self.names = names
        self.token = token
        self.budget = budget
        self.csrf = secrets.token_urlsafe(32)

    def router(self, app: FastAPI) -> FastAPI:
        """`app` with the route table's endpoints, the guard, and the damaged-file page."""
        app.middleware("http")(self.guard)
        app.add_middleware(webguard.PageGuard, limit=MAX_FORM, headers=HEADERS)  # outermost: limits, then headers
        app.add_exception_handler(DamagedFileError, self.damaged)  # type: ignore[arg-type]
        for method, path, name in ROUTES:
            app.add_api_route(path, getattr(self, name), methods=[method])
        return app

    # --- admission ------------------------------------------------------------------------------------------
    async def guard(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if webguard.request_host(request.headers.get("host", "")) not in self.names:
            return Response("unknown Host", status_code=421)
        if self.token and request.url.path != "/health":
            refused = self.token_refusal(request, self.token)
            if refused is not None:
                return refused
        if request.method == "POST":
            origin = request.headers.get("origin") or request.headers.get("referer")
            if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
                return Response("cross-site request refused", status_code=403)
        return await call_next(request)

    def token_refusal(self, request: Request, token: str) -> Response | None:
        """The answer to a request without the right token (or one that sets it as a cookie), or None."""
        given = request.query_params.get("token")
        presented = request.cookies.get(COOKIE) or request.headers.get("x-review-token") or ""
        client = request.client.host if request.client else ""
        if given is not None or presented:
            wait = self.budget.wait(client)
            if wait > 0:  # no token is compared past the budget: guessing cannot go faster than it
                headers = {"Retry-After": webguard.retry_after(wait)}
                return Response("too many wrong tokens: wait", status_code=429, headers=headers)
        if given is not None and request.method == "GET":
            if _same(given, token):
                back = RedirectResponse(webguard.safe_path(request.url.path), status_code=303)
                back.set_cookie(COOKIE, token, httponly=True, samesite="strict")
                return back
            self.budget.failed(client)
            return Response("wrong token", status_code=401)
        if not _same(presented, token):
            if presented:
                self.budget.failed(client)
            return Response("this review server needs its token: open /?token=...", status_code=401)
        return None

    async def damaged(self, _: Request, exc: DamagedFileError) -> HTMLResponse:
        message = f"{exc} — nothing can be decided until it is mended (the server rereads it on the next request)"
        return self.message("A file of the archive is damaged", message, 503)

    async def form(self, request: Request) -> dict[str, str]:
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            raise PermissionError("not a form of the review pages (no CSRF token): reload the page")
        body = await request.body()
        if len(body) > MAX_FORM:
            raise ReviewError("form too large")
        fields = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True).items()}
        if not _same(fields.get("csrf", ""), self.csrf):
            raise PermissionError("missing or wrong CSRF token: reload the page")
        return fields

    def message(self, title: str, text: str, status_code: int) -> HTMLResponse:
        return HTMLResponse(pages.message_page(title, text, self.csrf), status_code=status_code)

    # --- pages ----------------------------------------------------------------------------------------------
    def health(self) -> JSONResponse:
        return JSONResponse({"status": "ok", "events": len(self.reviewer.window())})

    def queue(
        self,
        since: str | None = None,
        until: str | None = None,
        no_related: str | None = None,
        sort: str = "date",
        flash: str = "",
    ) -> HTMLResponse:
        start, end = _date_param(since), _date_param(until)
        reviewer, by_confidence = self.reviewer, sort == "confidence"
        found = reviewer.queue(start, end, bool(no_related), by_confidence)
        html = pages.queue_page(
            found, self.csrf, bool(reviewer.undo_stack), start, end, bool(no_related), by_confidence, flash[:300]
        )
        return HTMLResponse(html)

    def render_event(
        self, event_id: str, flash: str = "", refused: str = "", kept: dict[str, str] | None = None
    ) -> str:
        reviewer = self.reviewer
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
            self.csrf,
            bool(reviewer.undo_stack),
            pages.event_url(following) if following else None,
            flash=flash,
            refused=refused,
            kept=kept,
        )

    def event(self, event_id: str, flash: str = "") -> HTMLResponse:
        try:
            return HTMLResponse(self.render_event(event_id, flash=flash[:300]))
        except DamagedFileError:
            raise
        except (ReviewError, ValueError, OSError) as exc:  # unknown id, or a file that is no longer an event
            return self.message("Not found", self.reviewer.public(str(exc))[:300], 404)

    # --- decisions ------------------------------------------------------------------------------------------
    async def decide(self, request: Request) -> Response:
        reviewer = self.reviewer
        try:
            fields = await self.form(request)
        except PermissionError as exc:
            return self.message("Refused", str(exc), 403)
        except ReviewError as exc:
            return self.message("Bad request", str(exc), 400)
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
        except DamagedFileError:
            raise
        except StaleFileError as exc:
            kept = {candidate: fields.get("context", "")}
            html = self.render_event(event_id, refused=str(exc), kept=kept)
            return HTMLResponse(html, status_code=409)
        except ReviewError as exc:
            return self.message("Bad request", reviewer.public(str(exc)), 400)
        except OSError as exc:  # a file or folder of the archive that cannot be written (a full disk, permissions)
            message = reviewer.public(f"not written: {exc.strerror or exc} ({exc.filename or 'the archive'})")
            return self.message("Not written", message, 503)
        flash = f"{record['decision']}: {_headline(reviewer, candidate)}"
        target = event_id
        if not reviewer.pending(event_id):
            target = reviewer.next_event(event_id) or ""
        url = pages.event_url(target) if target else "/"
        return RedirectResponse(url + pages.query_string(flash=flash), status_code=303)

    async def undo(self, request: Request) -> Response:
        try:
            await self.form(request)
            record = self.reviewer.undo()
        except PermissionError as exc:
            return self.message("Refused", str(exc), 403)
        except DamagedFileError:
            raise
        except (ReviewError, StaleFileError) as exc:
            return self.message("Not undone", str(exc), 409)
        flash = f"undone: {record['undoes']} {_headline(self.reviewer, str(record['candidate']))}"
        url = pages.event_url(str(record["event"])) + pages.query_string(flash=flash)
        return RedirectResponse(url, status_code=303)


def _date_param(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _same(given: str, secret: str) -> bool:
    """A constant-time comparison of a presented secret (any text) with ours."""
    return secrets.compare_digest(given.encode("utf-8", "replace"), secret.encode("utf-8"))


def _headline(reviewer: Reviewer, event_id: str) -> str:
    index = reviewer.recommender.index
    row = index.position.get(event_id)
    return index.headlines[row][:120] if row is not None else event_id


def _number(value: str | None, kind: type) -> object:
    """A number the page sent back, or None (absent, not a number, or not finite: NaN is not JSON)."""
    try:
        number = kind(value) if value not in (None, "") else None
    except (ValueError, OverflowError):
        return None
    return number if number is None or math.isfinite(number) else None

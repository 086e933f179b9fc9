"""What both servers (the API and the review page) do to stay up and private whatever a client sends: request
header and body timeouts, a body limit checked before reading (Content-Length, then the bytes as they come),
JSON nested too deep refused, security headers, the Host names a server answers to, a token's strength and a
budget for wrong guesses of it, redirects that stay on the server.

Nothing here imports numpy or the package's heavy modules: `recommender serve`'s supervisor imports the HTTP
protocol from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import math
import re
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT = 10.0  # seconds a connection may take to send a request's headers
BODY_TIMEOUT = 30.0  # seconds a request may take to send its body
KEEP_ALIVE = 5  # seconds an idle connection is kept open between requests
MAX_HEADERS = 16_384  # bytes of a request's headers (h11's incomplete event limit)
MAX_DEPTH = 64  # nesting of JSON arrays and objects a body may have; deeper is a 422, never a RecursionError
MIN_TOKEN = 16  # characters of a token; a shorter one is refused when the server starts

# ---- the HTTP protocol --------------------------------------------------------------------------------------


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that closes a connection which has not sent a whole request's headers within
    `HEADER_TIMEOUT` seconds of connecting or of starting them (uvicorn itself waits for ever)."""

    header_timeout = HEADER_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._headers_due: asyncio.TimerHandle | None = None
        self._arm_headers()

    def data_received(self, data: bytes) -> None:
        if self._headers_due is None and self.conn.their_state is h11.IDLE:
            self._arm_headers()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_headers()
        super().connection_lost(exc)

    def _arm_headers(self) -> None:
        self._headers_due = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm_headers(self) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def _headers_late(self) -> None:
        self._headers_due = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():  # still no whole request line
            self.transport.close()


def server_options() -> dict[str, Any]:
    """uvicorn's settings for both servers: the timed protocol, the keep-alive and header limits."""
    return {
        "http": TimedH11Protocol,
        "timeout_keep_alive": KEEP_ALIVE,
        "h11_max_incomplete_event_size": MAX_HEADERS,
    }


# ---- bodies ------------------------------------------------------------------------------------------------

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def nesting_problem(body: bytes, limit: int = MAX_DEPTH) -> str | None:
    """Why a JSON body is nested too deep for any endpoint (over `limit` arrays and objects), or None; counted
    on the bytes, without parsing (the parser's recursion is what it protects)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return None
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    depth = deepest = 0
    for byte in brackets:
        if byte in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return f"the JSON is nested deeper than {limit} levels"
        else:
            depth -= 1
    return None


class BodyTimeout(Exception):
    """The client did not send its whole body within the time allowed."""


async def receive_within(receive: Receive, deadline: float) -> Message:
    """The next ASGI message of a request, if it comes before `deadline` (time.monotonic())."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise BodyTimeout
    try:
        return await asyncio.wait_for(receive(), left)
    except TimeoutError:
        raise BodyTimeout from None


async def plain(send: Send, status: int, text: str, headers: dict[str, str] | None = None) -> None:
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), *extra],
        }
    )
    await send({"type": "http.response.body", "body": text.encode("utf-8")})


class PageGuard:
    """ASGI middleware of the review page: a body over `limit` bytes refused (413) before it is read, and as it
    comes; a body not sent within `BODY_TIMEOUT` seconds (408); JSON nested too deep (422); and every answer
    with `headers` (nosniff, the page's CSP...)."""

    def __init__(self, app: ASGIApp, limit: int, headers: dict[str, str]):
        self.app = app
        self.limit = limit
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in self.headers}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send_with_headers)
            return
        body = await read_body(scope, receive, send_with_headers, self.limit)
        if body is None:
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        if b"json" in content_type and (problem := nesting_problem(body)):
            await plain(send_with_headers, 422, problem)
            return
        await self.app(scope, replay(body, receive), send_with_headers)


async def read_body(scope: Scope, receive: Receive, send: Send, limit: int) -> bytes | None:
    """The request's whole body, or None once an answer was sent: 413 when its Content-Length or its bytes go
    over `limit` (what is past the limit is never read), 408 when it is not sent within `BODY_TIMEOUT`."""
    headers = dict(scope["headers"])
    length = headers.get(b"content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        await plain(send, 413, f"the body is over {limit:,} bytes", {"connection": "close"})
        return None
    deadline = time.monotonic() + BODY_TIMEOUT
    chunks, size, more = [], 0, True
    try:
        while more:
            message = await receive_within(receive, deadline)
            if message["type"] != "http.request":
                return None  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await plain(send, 413, f"the body is over {limit:,} bytes", {"connection": "close"})
                return None
            more = message.get("more_body", False)
    except BodyTimeout:
        await plain(send, 408, f"the body was not sent within {BODY_TIMEOUT:.0f} s", {"connection": "close"})
        return None
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """An ASGI receive that gives `body` once, then what the client sends (its disconnect)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


# ---- Host names, tokens, redirects ---------------------------------------------------------------------------

ANY_ADDRESS = ("0.0.0.0", "::", "")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_names(bind: str, allowed: tuple[str, ...] = ()) -> set[str]:
    """The Host names (lower case, no port or brackets) a server bound to `bind` answers to: loopback's, the
    bound address, each `allowed` (a public name or address, `--allowed-host`), and, bound to every address,
    the machine's own names and addresses (so that another machine can reach it by them)."""
    names = {"127.0.0.1", "localhost", "::1", bind.strip("[]").lower()}
    names |= {a.strip().strip("[]").lower() for a in allowed if a.strip()}
    if bind.strip("[]") in ANY_ADDRESS:
        names |= own_addresses()
    return names - {""}


def own_addresses() -> set[str]:
    """This machine's host names and the addresses of its interfaces (IPv4 by SIOCGIFADDR, IPv6 from /proc)."""
    found = {socket.gethostname(), socket.getfqdn()}
    for name in list(found):
        with contextlib.suppress(OSError):
            found |= {str(info[4][0]) for info in socket.getaddrinfo(name, None)}
    for _, interface in socket.if_nameindex():
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                answer = fcntl.ioctl(probe.fileno(), 0x8915, struct.pack("256s", interface.encode()[:15]))
            found.add(socket.inet_ntoa(answer[20:24]))
        except OSError:
            pass
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            found.add(str(ipaddress.IPv6Address(bytes.fromhex(raw))))
    except (OSError, ValueError, IndexError):
        pass
    return {a.split("%")[0].lower() for a in found if a}


def request_host(host_header: str) -> str:
    """The name a request's Host header addresses (lower case, without port or IPv6 brackets)."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else ""
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def token_problem(token: str) -> str | None:
    """Why a token cannot guard a server, or None."""
    if len(token) < MIN_TOKEN:
        return f"the token must be at least {MIN_TOKEN} characters (it has {len(token)}): e.g. `openssl rand -hex 16`"
    if token != token.strip() or any(ord(c) < 33 or ord(c) > 126 for c in token):
        return "the token must be printable ASCII without spaces"
    return None


def read_token(given: str | None, token_file: Path | None, environ: dict[str, str]) -> str | None:
    """The token from `--token-file` (its first line), else `--token`, else RECOMMENDER_TOKEN (or the older
    RECOMMENDER_REVIEW_TOKEN); None without one. Raises ValueError naming the file it cannot read."""
    if token_file is not None:
        try:
            lines = token_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--token-file: cannot read {token_file} ({exc.__class__.__name__})") from None
        return lines[0].strip() if lines else ""
    if given:
        return given
    return environ.get("RECOMMENDER_TOKEN") or environ.get("RECOMMENDER_REVIEW_TOKEN") or None


def safe_path(path: str) -> str:
    """A path to redirect to on this very server: never `//host/...` or `/\\host` (which a browser takes for
    another site)."""
    return "/" + path.lstrip("/\\")


class GuessBudget:
    """Wrong token guesses allowed, per client and in all: token buckets of `burst` guesses refilled at `rate` a
    second (per client) and `total_burst` at `total_rate` (everyone). Past either, no token is even compared: a
    429 until the bucket refills, so 1,000 guesses take at least (1,000 - burst) / rate seconds per client."""

    def __init__(self, burst: int = 10, rate: float = 1.0, total_burst: int = 100, total_rate: float = 5.0):
        self.burst, self.rate, self.total_burst, self.total_rate = burst, rate, total_burst, total_rate
        self.clients: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)
        self.total = (float(total_burst), time.monotonic())
        self.lock = threading.Lock()

    def _level(self, state: tuple[float, float], burst: int, rate: float, now: float) -> float:
        tokens, at = state
        return min(float(burst), tokens + (now - at) * rate)

    def wait(self, client: str) -> float:
        """Seconds until `client` may guess again (0: now)."""
        now = time.monotonic()
        with self.lock:
            mine = self._level(self.clients.get(client, (float(self.burst), now)), self.burst, self.rate, now)
            everyone = self._level(self.total, self.total_burst, self.total_rate, now)
        waits = [(1 - mine) / self.rate if mine < 1 else 0.0, (1 - everyone) / self.total_rate if everyone < 1 else 0.0]
        return max(waits)

    def failed(self, client: str) -> None:
        """One wrong guess by `client`."""
        now = time.monotonic()
        with self.lock:
            mine = self._level(self.clients.get(client, (float(self.burst), now)), self.burst, self.rate, now)
            self.clients[client] = (mine - 1, now)
            everyone = self._level(self.total, self.total_burst, self.total_rate, now)
            self.total = (everyone - 1, now)
            if len(self.clients) > 10_000:  # forget the clients whose bucket is full again
                full = [c for c, s in self.clients.items() if self._level(s, self.burst, self.rate, now) >= self.burst]
                for c in full:
                    del self.clients[c]


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))

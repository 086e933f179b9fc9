"""Issue 27: several editors at once, any damaged file, any hostile text. The cross-process lock (two review
servers on one archive), damaged decisions.jsonl and editors.toml (a page naming file and line, never a 500 or a
write), text written into markdown read back as meant (hypothesis), CSV formula cells, nested JSON, token mode
from another machine (own address, strength, guess budget, no open redirect), header and body timeouts, the body
limit before reading, security headers, read-only files, NaN scores. Real servers on 127.0.0.1 or this machine's
own address, each stopped by the test."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import importlib.util
import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from urllib.parse import unquote

import httpx
import pytest
import uvicorn
from conftest import PUTIN, ROOT
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from recommender import webguard
from recommender.api import create_app
from recommender.cli import app as cli
from recommender.eventfile import clean_context, is_archive_href, parse_event, unescape_text
from recommender.rank import Suggestion
from recommender.rank.explain import Signals
from recommender.review import Reviewer, ReviewError, create_review_app
from recommender.review.edit import accept
from recommender.suggest import DECISIONS_FILE, load_decisions
from recommender.suggest.batch import EventSuggestions
from recommender.suggest.render import render
from recommender.suggest.write import with_section

BASE_URL = "http://127.0.0.1:8010"
TOKEN = "0123456789abcdef0123456789abcdef"  # 32 characters
HEAD = "### [2016-03-14](https://example.org)\n\n# An event\n\nIts summary.\n"


def _probe():
    spec = importlib.util.spec_from_file_location("probe_reliability", ROOT / "eval" / "probe_reliability.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def reviewer(archive_copy, index_copy):
    day = dt.date(2016, 3, 14)
    found = Reviewer.open(archive_copy, index_copy, since=day, until=day, update_index=False)
    yield found
    found.stop()


def form_of(html: str) -> dict[str, str]:
    import html as html_module

    found = re.search(r'<form class="decide".*?</form>', html, re.S)
    assert found, "no decision form on the page"
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', found.group(0)))
    return {k: html_module.unescape(v) for k, v in fields.items()}


# --- 1. two review servers on one archive --------------------------------------------------------------------
def test_two_review_servers_lose_nothing(archive_copy, index_copy):
    probe = _probe()
    outcome = probe.two_review_servers(archive_copy, index_copy, accepts=12, skips=30, rejects=12, workers=8)
    assert outcome["answered"] == 54 and outcome["statuses"].get(500, 0) == 0, outcome
    assert outcome["accepted"] >= 1 and outcome["rejected"] >= 1, outcome  # some decisions were made at all
    assert outcome["lost_edits"] == 0 and outcome["lost_records"] == 0 and outcome["lost_blocks"] == 0, outcome
    assert outcome["extra_records"] == 0 and outcome["double_wins"] == 0, outcome
    assert outcome["index_errors"] == [], outcome


# --- 2. damaged decisions.jsonl and editors.toml -------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        (DECISIONS_FILE, '{"event": "a", "offered": ["b"]}\n{"event": \n', "decisions.jsonl:2"),
        (
            DECISIONS_FILE,
            '{"event": "a", "decision": "accepted", "candidate": "b", "score": NaN}\n',
            "decisions.jsonl:1",
        ),
        (DECISIONS_FILE, '{"event": "a"}\n', "decisions.jsonl:1"),
        (DECISIONS_FILE, "[" * 100_000 + "\n", "decisions.jsonl:1"),
        (DECISIONS_FILE, b"\xff\xfe\n", "decisions.jsonl:1"),
        ("editors.toml", 'never = [\n  ["a", "b"],\n  ["c"\n', "editors.toml:3"),
        ("editors.toml", 'never = [\n  ["a", "b"],\n  ["c" "d"]]\n', "editors.toml:3"),
        ("editors.toml", b"# \xff\n", "editors.toml:1"),
        ("editors.toml", '# ours\nnever = "a"\n', "editors.toml:2"),
        ("editors.toml", "[[never_pair]]\npair = [1, 2]\n", "editors.toml:1"),
    ],
)
def test_a_damaged_file_is_a_page_naming_it_never_a_500(reviewer, archive_copy, name, text, where):
    web = TestClient(create_review_app(reviewer), base_url=BASE_URL)
    page = web.get("/event/" + PUTIN).text
    fields = form_of(page)
    before = (archive_copy / PUTIN).read_bytes()
    path = archive_copy / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    damaged = path.read_bytes()
    for response in (
        web.get("/"),
        web.get("/event/" + PUTIN),
        web.post("/decide", data={**fields, "action": "accept", "context": "x"}),
        web.post("/decide", data={**fields, "action": "reject", "reason": "other"}),
        web.post("/decide", data={**fields, "action": "skip"}),
    ):
        assert response.status_code == 503, response.text[:300]
        assert where in response.text and str(archive_copy) not in response.text
    # nothing written: the event file, the damaged file (and editors.toml) are as they were
    assert (archive_copy / PUTIN).read_bytes() == before and path.read_bytes() == damaged
    assert not (archive_copy / "editors.toml").exists() or name == "editors.toml"
    # mended, the same server decides again
    path.unlink()
    fresh = form_of(web.get("/event/" + PUTIN).text)
    assert web.post("/decide", data={**fresh, "action": "skip"}, follow_redirects=False).status_code == 303


def test_a_damaged_file_refuses_the_start_and_eval_before_its_run(archive_copy, index_copy, tmp_path):
    (archive_copy / DECISIONS_FILE).write_text('{"event": "a", "offered": []}\nnot json\n')
    with pytest.raises(ReviewError, match=r"^decisions.jsonl:2: not a decision record"):
        Reviewer.open(archive_copy, index_copy)
    args = ["review", "--archive", str(archive_copy), "--index", str(index_copy), "--port", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "decisions.jsonl:2" in result.output
    started = time.monotonic()
    args = ["eval", "--archive", str(archive_copy), "--index", str(index_copy), "--decisions", "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, [*args, "--queries", "50"])
    assert result.exit_code == 2 and "decisions.jsonl:2" in result.output, result.output
    assert "queries in" not in result.output and time.monotonic() - started < 20  # refused before the run


# --- 3. text written into markdown reads back as meant ---------------------------------------------------
HOSTILE = [
    "x](javascript:alert('CTX')) y",
    "[a](javascript:alert(1))",
    "](//evil.example)",
    "back\\slash\\",
    "\\[escaped\\] and [bare]",
    "_Context: a, b_",
    "under_score_",
    "_",
    "tab\there\u2028line\x85next\x1cfile",
    '=HYPERLINK("http://evil.example")',
]
IDS = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).map(
    lambda s: "news/2016/03/14/" + s.replace("/", "-").strip() + "x.md"
)
TEXT = st.one_of(st.sampled_from(HOSTILE), st.text(st.characters(blacklist_categories=("Cs",)), max_size=80))


def _suggestion(rank: int, target: str, headline: str, score: float, names: tuple[str, ...]) -> Suggestion:
    signals = Signals(dense=0.5, bm25=0.5, names=0.5, days_apart=13, shared_names=names)
    return Suggestion(rank, target, dt.date(2016, 3, 1), headline, score, signals=signals, confidence=0.5)


def _expected_items(context: str) -> list[str]:
    return [item for item in clean_context(context).split(", ") if item]


def _read_related(text: str, event_id: str = "news/2016/03/14/e.md"):
    return parse_event(event_id, text).related


@settings(max_examples=400, deadline=None)
@given(headline=TEXT, context=TEXT, target=IDS)
def test_every_accepted_field_round_trips(headline, context, target):
    if not headline.split():
        headline = "h" + headline
    text = HEAD + "\n### Related:\n\n1. [Old one](/news/2016/03/1/old.md) _Context: kept_\n"
    related = _read_related(accept(text, target, headline, context))
    assert [link.text for link in related[:1]] == ["Old one"] and related[0].context == ("kept",)
    assert len(related) == 2, related
    added = related[1]
    assert added.text == unescape_text(" ".join(headline.split()))
    assert unquote(added.href) == "/" + target and is_archive_href(added.href)
    assert list(added.context) == _expected_items(context)


@settings(max_examples=200, deadline=None)
@given(headline=TEXT, context=st.lists(TEXT, max_size=3), target=IDS)
def test_every_suggested_field_round_trips(headline, context, target):
    if not headline.split():
        headline = "h" + headline
    items = tuple(c for c in context if c.strip() and "," not in c)
    s = _suggestion(1, target, headline, 0.5, items)
    item = EventSuggestions("news/2016/03/14/e.md", dt.date(2016, 3, 14), "E", [s], 0)
    from recommender.suggest.render import markdown_block

    event = parse_event(item.id, with_section(HEAD, markdown_block(item)))
    assert len(event.suggested) == 1
    read = event.suggested[0]
    assert read.text == unescape_text(" ".join(headline.split()))
    assert unquote(read.href) == "/" + target
    assert list(read.context) == [" ".join(c.split()) for c in items]


def test_no_foreign_target_is_ever_read_back_as_a_link():
    lines = [
        "1. [a](javascript:alert(1))",
        "2. [b](JavaScript:alert(1))",
        "3. [c](https://evil.example/x.md)",
        "4. [d](//evil.example/x.md)",
        "5. [e](data:text/html,x)",
        "6. [f](/news/2016/03/1/ok.md) _Context: x](javascript:alert('CTX')) y_",
    ]
    related = _read_related(HEAD + "\n### Related:\n\n" + "\n".join(lines) + "\n")
    assert [link.href for link in related] == ["/news/2016/03/1/ok.md"]
    assert related[0].context == ("x](javascript:alert('CTX')) y",)


def test_the_archives_escaped_headlines_read_as_before(sample_archive):
    texts = [link.text for e in sample_archive.events.values() for link in e.related]
    assert texts and all(is_archive_href(link.href) for e in sample_archive.events.values() for link in e.related)
    assert any("[the]" in t for t in texts) and not any("\\[" in t for t in texts)


def test_csv_cells_are_never_formulas():
    hostile = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    suggestions = [_suggestion(i + 1, f"news/2016/03/1/{i}.md", h, -0.5, (h,)) for i, h in enumerate(hostile)]
    item = EventSuggestions("news/2016/03/14/e.md", dt.date(2016, 3, 14), "E", suggestions, 0)
    import csv
    import io

    rows = list(csv.reader(io.StringIO("".join(render([item], "csv")))))[1:]
    for row, headline in zip(rows, hostile, strict=True):
        assert row[4] == "'" + headline and row[9] == "'" + headline
        assert row[5] == "-0.5"  # numbers stay numbers


# --- 4. nested JSON -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [10, 63, 65, 1_000, 100_000])
def test_nested_json_is_never_a_500(recommender, reviewer, depth, caplog):
    api = TestClient(create_app(recommender=recommender), raise_server_exceptions=False)
    page = TestClient(create_review_app(reviewer), base_url=BASE_URL, raise_server_exceptions=False)
    nested = "[" * depth + "]" * depth
    for body in (
        f'{{"text": {nested}}}',
        f'{{"ids": ["a"], "k": {nested}}}',
        nested,
        '{"a":' * depth + "1" + "}" * depth,
    ):
        for path in ("/similar", "/related/batch"):
            response = api.post(path, content=body, headers={"content-type": "application/json"})
            assert response.status_code == 422, (depth, path, response.status_code)
            assert len(response.content) < 2_000
        response = page.post("/decide", content=body, headers={"content-type": "application/json"})
        assert response.status_code in (403, 413, 422), response.status_code
    assert "RecursionError" not in caplog.text


# --- 5. token mode from another machine ---------------------------------------------------------------------
def _own_address() -> str:
    found = sorted(a for a in webguard.own_addresses() if re.fullmatch(r"[\d.]+", a) and not a.startswith("127."))
    if not found:
        pytest.skip("this machine has no IPv4 address but loopback")
    return found[0]


def test_tokens_are_strong_and_read_from_a_file_or_the_environment(reviewer, tmp_path):
    with pytest.raises(ValueError, match="at least 16"):
        create_review_app(reviewer, host="0.0.0.0", token="x")
    with pytest.raises(ValueError, match="token-file"):
        create_review_app(reviewer, host="0.0.0.0")
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    assert webguard.read_token(None, secret, {}) == TOKEN
    assert webguard.read_token(None, None, {"RECOMMENDER_TOKEN": TOKEN}) == TOKEN
    with pytest.raises(ValueError, match="--token-file"):
        webguard.read_token(None, tmp_path / "none", {})


def test_the_machines_own_address_works_with_the_token(reviewer):
    address = _own_address()
    app = create_review_app(reviewer, host="0.0.0.0", token=TOKEN)
    web = TestClient(app, base_url=f"http://{address}:8010")
    assert web.get("/").status_code == 401
    assert web.get("/", headers={"x-review-token": TOKEN}).status_code == 200
    assert web.get("/", headers={"Host": "evil.example"}).status_code == 421
    named = TestClient(create_review_app(reviewer, host="0.0.0.0", token=TOKEN, allowed_hosts=("review.example",)))
    assert named.get("http://review.example/", headers={"x-review-token": TOKEN}).status_code == 200


def test_a_real_server_on_every_address_answers_its_own_address(archive_copy, index_copy, tmp_path):
    address = _own_address()
    probe = _probe()
    secret = tmp_path / "token"
    secret.write_text(TOKEN)
    server = probe.ReviewServer(
        archive_copy, index_copy, host="0.0.0.0", args=("--token-file", str(secret)), wait_host=address
    )
    try:
        url = f"http://{address}:{server.port}/"
        assert httpx.get(url, headers={"x-review-token": TOKEN}, timeout=30).status_code == 200
        assert httpx.get(url, timeout=30).status_code == 401
        assert TOKEN not in " ".join(server.process.args)  # not on the command line, where `ps` shows it
    finally:
        server.stop()


def test_wrong_guesses_have_a_budget(reviewer):
    app = create_review_app(reviewer, host="0.0.0.0", token=TOKEN)
    web = TestClient(app, base_url=f"http://{_own_address()}:8010")
    started = time.monotonic()
    statuses = [web.get("/", headers={"x-review-token": f"guess-{i:026d}"}).status_code for i in range(1_000)]
    seconds = time.monotonic() - started
    compared = statuses.count(401)
    assert statuses.count(429) + compared == 1_000
    # at most the burst plus one a second were even compared: 1,000 guesses would take >= 990 s
    assert compared <= 10 + seconds + 1, (compared, seconds)
    refused = web.get("/", headers={"x-review-token": "wrong-wrong-wrong-wrong"})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    budget = webguard.GuessBudget()
    for _ in range(10):
        budget.failed("a")
    assert budget.wait("a") > 0 and budget.wait("b") == 0  # one client's guesses do not lock out another


def test_no_open_redirect(reviewer):
    app = create_review_app(reviewer, host="192.168.1.5", token=TOKEN)
    web = TestClient(app, base_url="http://192.168.1.5:8010")
    for path in ("//evil.example", "/\\evil.example", "///evil.example/x"):
        response = web.get(f"http://192.168.1.5:8010{path}?token={TOKEN}", follow_redirects=False)
        location = response.headers.get("location", "")
        assert response.status_code == 303 and location.startswith("/") and not location.startswith(("//", "/\\"))
        assert httpx.URL("http://192.168.1.5:8010").join(location).host == "192.168.1.5"


# --- 6. timeouts, limits, headers, read-only files, NaN ------------------------------------------------------
@pytest.fixture()
def live_review(reviewer, monkeypatch):
    """The review app served by uvicorn with both servers' settings, on a free loopback port (short timeouts)."""
    monkeypatch.setattr(webguard.TimedH11Protocol, "header_timeout", 1.0)
    monkeypatch.setattr(webguard, "BODY_TIMEOUT", 1.0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_review_app(reviewer), host="127.0.0.1", port=port, log_level="warning")
    for key, value in webguard.server_options().items():
        setattr(config, key, value)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(10)


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    sock.settimeout(seconds)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True, data
            data += chunk
    except TimeoutError:
        return False, data


def test_headers_and_bodies_have_timeouts_and_limits(live_review):
    port = live_review
    idle = socket.create_connection(("127.0.0.1", port))
    partial = socket.create_connection(("127.0.0.1", port))
    partial.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    started = time.monotonic()
    assert _closed_within(idle, 5)[0] and _closed_within(partial, 5)[0]
    assert time.monotonic() - started < 5
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(b"POST /decide HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nabc")
    closed, answer = _closed_within(slow, 5)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    huge = socket.create_connection(("127.0.0.1", port))
    huge.sendall(b"POST /decide HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 300000000\r\n\r\n")
    closed, answer = _closed_within(huge, 5)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    streamed = httpx.post(
        f"http://127.0.0.1:{port}/decide",
        content=iter([b"x" * 32_768] * 10),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413
    for sock in (idle, partial, slow, huge):
        sock.close()


def test_the_page_has_security_headers_and_no_archive_paths(reviewer, archive_copy):
    web = TestClient(create_review_app(reviewer), base_url=BASE_URL)
    page = web.get("/event/" + PUTIN)
    assert page.headers["x-content-type-options"] == "nosniff"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy and "script-src 'sha256-" in policy
    assert " style=" not in page.text  # every style is the page's own sheet, allowed by its hash
    for tag, kind in (("script", "script-src"), ("style", "style-src")):  # the hashes a browser computes
        inline = re.findall(rf"<{tag}>(.*?)</{tag}>", page.text, re.S)
        assert len(inline) == 1
        digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
        assert f"{kind} 'sha256-{digest}'" in policy
    (archive_copy / PUTIN).unlink()
    gone = web.get("/event/" + PUTIN)
    assert gone.status_code == 404 and str(archive_copy) not in gone.text and "/tmp" not in gone.text


def test_read_only_files_are_never_replaced_and_nan_is_never_logged(reviewer, archive_copy):
    web = TestClient(create_review_app(reviewer), base_url=BASE_URL)
    fields = form_of(web.get("/event/" + PUTIN).text)
    path = archive_copy / PUTIN
    before = path.read_bytes()
    os.chmod(path, 0o444)
    try:
        for action in ("accept", "reject"):
            response = web.post("/decide", data={**fields, "action": action, "reason": "other"})
            assert response.status_code == 400 and "read-only" in response.text
        assert path.read_bytes() == before and stat.S_IMODE(path.stat().st_mode) == 0o444
        assert not (archive_copy / DECISIONS_FILE).exists() and not (archive_copy / "editors.toml").exists()
    finally:
        os.chmod(path, 0o644)
    for score in ("nan", "inf", "-Infinity", "1e999"):
        fresh = form_of(web.get("/event/" + PUTIN).text)
        sent = {**fresh, "action": "skip", "score": score, "confidence": score}
        assert web.post("/decide", data=sent, follow_redirects=False).status_code == 303
    lines = (archive_copy / DECISIONS_FILE).read_text().splitlines()
    records = [
        json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in decisions.jsonl")) for line in lines
    ]
    assert [r["score"] for r in records] == [None] * 4 and [r["confidence"] for r in records] == [None] * 4
    assert load_decisions(archive_copy / DECISIONS_FILE)


def test_suggest_write_and_review_share_the_archive_lock(archive_copy):
    """`suggest --write` replaces a file under the archive's lock: a process holding it holds the writer back."""
    from recommender.locking import archive_lock

    code = (
        "import sys, time; from pathlib import Path; from recommender.locking import archive_lock\n"
        "with archive_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(1.5)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", code, str(archive_copy)], env=env, stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b"held"
    started = time.monotonic()
    with archive_lock(archive_copy):
        waited = time.monotonic() - started
    holder.wait(10)
    assert waited > 0.8, waited

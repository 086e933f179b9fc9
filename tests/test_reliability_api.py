"""No request can hold or break the API: limits, strict JSON, short errors, ranking off the event loop, a rebuild
under load, SIGTERM and SIGHUP. Real servers on 127.0.0.1 (a free port), each stopped by the test."""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time

import httpx
import numpy as np
import pytest
from conftest import PUTIN
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from recommender.api import MAX_BODY, create_app
from recommender.archive import MAX_ID, read_archive
from recommender.cli import app
from recommender.index import build_index
from recommender.testing import ServeProcess


@pytest.fixture(scope="module")
def client(recommender):
    return TestClient(create_app(recommender=recommender))


@pytest.mark.parametrize(
    "body",
    [
        b'{"text": "Syria", "k": NaN}',
        b'{"text": "Syria", "k": Infinity}',
        b'{"ids": ["a"], "k": -Infinity}',
        b'{"text": "Syria", "since": NaN, "extra": [1, NaN]}',
    ],
)
def test_nan_and_infinity_are_422(client, body):
    for path in ("/similar", "/related/batch"):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422 and "not valid JSON" in response.text, response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/similar", b'{"text": "Syria \\ud800 war"}'),
        ("/related/batch", b'{"ids": ["news/2016/03/14/\\udfff.md"]}'),
        ("/related/batch", b'{"ids": ["ok"], "\\ud800": 1}'),
    ],
)
def test_a_lone_surrogate_is_422(client, path, body):
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "surrogate" in response.text, response.text


def test_bad_utf8_and_bad_json_are_422(client):
    for body in (b'{"text": "\xff\xfe"}', b'{"text": ', b"[1, 2"):
        response = client.post("/similar", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422 and len(response.content) < 1000, response.text


def test_a_10_mb_body_is_refused_short(client):
    body = json.dumps({"text": "x" * 10_000_000}).encode()
    response = client.post("/similar", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413 and len(response.content) < 300, response.text[:300]
    assert f"{MAX_BODY:,}" in response.json()["detail"][0]["msg"]


def test_errors_echo_only_an_excerpt(client):
    long_text = "y" * 50_000
    response = client.post("/similar", json={"text": long_text})
    assert response.status_code == 422 and len(response.content) < 1000, len(response.content)
    assert response.json()["detail"][0]["loc"] == ["body", "text"]
    many = client.post("/related/batch", json={"ids": ["z" * 250] * 1001})
    assert many.status_code == 422 and len(many.content) < 1000 and "ids" in many.text


def test_long_ids_are_422_naming_the_field(client):
    response = client.post("/related/batch", json={"ids": [PUTIN, "n" * (MAX_ID + 1)]})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "ids", 1]
    assert len(response.content) < 1000
    path = client.get("/events/" + "n" * 10_000 + "/related")
    assert path.status_code == 422 and "event_id" in path.text and len(path.content) < 1000
    unknown = client.get("/events/" + "n" * MAX_ID)
    assert unknown.status_code == 404 and len(unknown.content) < 300


def test_the_cli_gives_no_hint_for_an_overlong_id(sample_index_path):
    started = time.perf_counter()
    result = CliRunner().invoke(app, ["related", "n" * 100_000, "--index", str(sample_index_path)])
    assert result.exit_code == 2 and time.perf_counter() - started < 2.0
    assert result.output.strip() == f"error: EVENT_ID: 100,000 characters, an id has at most {MAX_ID}"


def test_unknown_ids_are_looked_up_exactly_and_fast(client):
    near_misses = [PUTIN.replace("putin", "putim"), PUTIN.upper(), PUTIN[:-3], "x" * (MAX_ID - 3)] * 250
    near_misses = [f"{i}{n}" for n, i in enumerate(near_misses)]  # 1,000 distinct unknown ids
    started = time.perf_counter()
    response = client.post("/related/batch", json={"ids": near_misses, "k": 1})
    assert response.status_code == 200
    assert response.json() == {"results": {}, "unknown": near_misses, "unfinished": []}
    assert time.perf_counter() - started < 2.0


def test_a_batch_over_its_time_budget_lists_what_it_did_not_rank(recommender, sample_index):
    quick = TestClient(create_app(recommender=recommender, time_budget=0.3))
    ids = list(sample_index.ids[:999])
    body = quick.post("/related/batch", json={"ids": [*ids, "nope.md"], "k": 3}).json()
    assert body["unknown"] == ["nope.md"] and body["unfinished"] and body["results"]
    assert list(body["results"]) + body["unfinished"] == ids
    first = ids[0]
    assert [s["id"] for s in body["results"][first]] == [s.id for s in recommender.related(first, 3)]


def test_health_names_the_archive_and_the_build(client, sample_index):
    body = client.get("/health").json()
    assert body["archive"] == "sample" and body["build_id"] == sample_index.meta.build_id
    assert len(body["build_id"]) == 12


# --- real servers -------------------------------------------------------------------------------------------


@pytest.fixture()
def server(index_copy):
    """`recommender serve` (one worker per core) on a free loopback port, stopped when the test ends."""
    with ServeProcess(index_copy, start_s=60) as running:
        yield running


def hammer(url: str, stop: threading.Event, failures: list[str], paths: list[str]) -> None:
    with httpx.Client(timeout=30) as http:
        n = 0
        while not stop.is_set() and n < 5000:
            path = paths[n % len(paths)]
            n += 1
            try:
                response = http.get(url + path)
                if response.status_code != 200:
                    failures.append(f"{path}: {response.status_code} {response.text[:100]}")
            except httpx.HTTPError as exc:
                failures.append(f"{path}: {exc!r}")


def test_health_answers_while_batches_run(server, sample_index, recommender):
    ids = list(sample_index.ids)
    stop = threading.Event()
    replies: list[dict] = []

    def batches() -> None:
        with httpx.Client(timeout=60) as http:
            for _ in range(3):
                if stop.is_set():
                    return
                replies.append(http.post(f"{server.url}/related/batch", json={"ids": ids[:1000], "k": 10}).json())

    def unknown() -> None:
        with httpx.Client(timeout=60) as http:
            for n in range(50):
                if stop.is_set():
                    return
                http.post(f"{server.url}/related/batch", json={"ids": [f"{n}" + "q" * MAX_ID]})

    workers = [threading.Thread(target=batches) for _ in range(4)] + [threading.Thread(target=unknown)]
    for worker in workers:
        worker.start()
    latencies = []
    with httpx.Client(timeout=10) as http:
        time.sleep(0.5)
        for _ in range(100):
            started = time.perf_counter()
            assert http.get(f"{server.url}/health").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.02)
    stop.set()
    for worker in workers:
        worker.join(timeout=120)
    p99 = float(np.percentile(latencies, 99))
    assert p99 < 0.25, f"/health p99 {p99 * 1000:.0f} ms under batch load"
    assert replies, "no batch finished"
    for event_id in ids[:1000:97]:  # rankings made side by side in threads are the ones made alone
        expected = [s.id for s in recommender.related(event_id, 10)]
        assert all([s["id"] for s in reply["results"][event_id]] == expected for reply in replies)


def test_a_rebuild_under_load_fails_no_request_and_is_picked_up(server, index_copy, archive_copy):
    event = next(archive_copy.rglob("*.md"))
    event_id = event.relative_to(archive_copy).as_posix()
    before = httpx.get(f"{server.url}/health").json()["build_id"]
    paths = [f"/events/{PUTIN}", f"/events/{PUTIN}/related", f"/events/{event_id}", "/health"]
    stop, failures = threading.Event(), []
    clients = [threading.Thread(target=hammer, args=(server.url, stop, failures, paths)) for _ in range(20)]
    for c in clients:
        c.start()
    text = event.read_text(encoding="utf-8")
    event.write_text(text.replace("\n# ", "\n# Rebuilt: ", 1), encoding="utf-8")
    build_index(read_archive(archive_copy), index_copy, archive_name="sample")
    build_index(read_archive(archive_copy), index_copy, archive_name="sample")  # the folder replaced twice
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and httpx.get(f"{server.url}/health").json()["build_id"] == before:
        time.sleep(0.2)
    time.sleep(1)
    stop.set()
    for c in clients:
        c.join(timeout=60)
    assert not failures, failures[:5]
    assert httpx.get(f"{server.url}/health").json()["build_id"] != before
    assert httpx.get(f"{server.url}/events/{event_id}").json()["headline"].startswith("Rebuilt: ")


def test_sighup_reloads_at_once_and_sigterm_stops_a_busy_server_fast(server, index_copy, sample_index):
    meta = json.loads((index_copy / "meta.json").read_text())
    shutil.copytree(index_copy, index_copy.with_name("new"))
    (index_copy.with_name("new") / "meta.json").write_text(json.dumps({**meta, "build_id": "0123456789ab"}))
    shutil.rmtree(index_copy)
    index_copy.with_name("new").rename(index_copy)
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 2.5  # under the periodic check's 3 s
    while httpx.get(f"{server.url}/health").json()["build_id"] != "0123456789ab":
        assert time.monotonic() < deadline, "SIGHUP did not reload"
        time.sleep(0.1)

    def batch() -> None:
        with pytest.raises(httpx.HTTPError), httpx.Client(timeout=30) as http:
            for _ in range(20):
                http.post(f"{server.url}/related/batch", json={"ids": list(sample_index.ids[:1000])})

    busy = [threading.Thread(target=batch) for _ in range(3)]
    for b in busy:
        b.start()
    time.sleep(1.0)
    assert server.stop() < 5.0
    for b in busy:
        b.join(timeout=30)

"""The similarity API on the sample index: every endpoint, every bad input, the OpenAPI contract."""

from __future__ import annotations

import json
import re

import pytest
import schemathesis
from conftest import PUTIN
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from recommender.api import create_app
from recommender.embed import Embedder


@pytest.fixture(scope="module")
def client(recommender):
    return TestClient(create_app(recommender=recommender))


def test_health(client, sample_index):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["events"] == 1155
    assert body["model"] == Embedder().name and "all-MiniLM-L6-v2" in body["model"]
    assert body["index_built_at"] == sample_index.meta.built_at


def test_event(client):
    response = client.get(f"/events/{PUTIN}")
    assert response.status_code == 200
    body = response.json()
    assert body["date"] == "2016-03-14" and body["headline"].startswith("Russian President Vladimir Putin")
    seed = client.get("/events/SEED-EXAMPLE.md").json()
    assert len(seed["sources"]) == 3 and len(seed["related"]) == 10
    assert seed["related"][0]["context"][0] == "Russian Defence Ministry"


def test_related_matches_the_cli_code_path(client, recommender):
    body = client.get(f"/events/{PUTIN}/related", params={"k": 5}).json()
    expected = recommender.related(PUTIN, 5)
    assert [s["id"] for s in body] == [s.id for s in expected]
    assert set(body[0]) >= {"id", "date", "headline", "score", "curated", "context"}
    window = client.get(f"/events/{PUTIN}/related", params={"since": "2016-03-10", "until": "2016-03-20"}).json()
    assert window and all("2016-03-10" <= s["date"] <= "2016-03-20" for s in window)
    fresh = client.get(f"/events/{PUTIN}/related", params={"exclude_curated": True}).json()
    assert not any(s["curated"] for s in fresh)


def test_similar_and_batch(client):
    body = client.post("/similar", json={"text": "Russia withdraws forces from Syria", "k": 3}).json()
    assert len(body) == 3 and any("Syria" in s["headline"] for s in body)
    batch = client.post("/related/batch", json={"ids": [PUTIN, "SEED-EXAMPLE.md", "nope.md"], "k": 2}).json()
    assert set(batch["results"]) == {PUTIN, "SEED-EXAMPLE.md"} and batch["unknown"] == ["nope.md"]
    assert all(len(v) == 2 for v in batch["results"].values())


@pytest.mark.parametrize(
    "path",
    [
        "/events/nope.md",
        "/events/nope.md/related",
        "/events/../../etc/passwd",
        "/events/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/events//etc/passwd",
        "/events/..%2F..%2Fetc%2Fpasswd/related",
    ],
)
def test_unknown_and_path_tricks_are_plain_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "root:" not in response.text


def test_unknown_id_message_names_it(client):
    response = client.get("/events/news/2016/03/14/nope.md/related")
    assert response.status_code == 404 and "news/2016/03/14/nope.md" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("get", f"/events/{PUTIN}/related?k=0", None),
        ("get", f"/events/{PUTIN}/related?k=101", None),
        ("get", f"/events/{PUTIN}/related?since=2016-13-01", None),
        ("get", f"/events/{PUTIN}/related?until=yesterday", None),
        ("post", "/similar", {"text": ""}),
        ("post", "/similar", {"text": "   "}),
        ("post", "/similar", {"text": "x" * 10_001}),
        ("post", "/similar", {"text": "ok", "k": 0}),
        ("post", "/similar", {"text": "ok", "since": "2016-02-30"}),
        ("post", "/similar", {}),
        ("post", "/related/batch", {"ids": ["a"] * 1001}),
        ("post", "/related/batch", {"ids": []}),
        ("post", "/related/batch", {"ids": [PUTIN], "k": 500}),
        ("get", f"/events/{PUTIN}/related?since=2016-03-20&until=2016-03-10", None),  # an empty window, not []
        ("post", "/similar", {"text": "ok", "since": "2016-03-20", "until": "2016-03-10"}),
    ],
)
def test_bad_input_is_422(client, method, path, payload):
    response = client.request(method.upper(), path, json=payload)
    assert response.status_code == 422, response.text


def test_an_empty_window_says_why(client):
    response = client.get(f"/events/{PUTIN}/related", params={"since": "2016-03-20", "until": "2016-03-10"})
    assert response.status_code == 422 and "since 2016-03-20 is after until 2016-03-10" in response.text
    text = client.post("/similar", json={"text": "ok", "since": "2016-03-20", "until": "2016-03-10"})
    assert text.status_code == 422 and "is after until" in text.text


def test_openapi_is_published_and_its_docs_need_no_network(client):
    spec = client.get("/openapi.json").json()
    assert {"/health", "/similar", "/related/batch"} <= set(spec["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert not re.findall(r"(?:src|href)=[\"']?(?:https?:)?//", docs.text)  # no CDN: every asset is served here
    for asset in re.findall(r"(?:src|href)=[\"']?(/docs-assets/[^\"' >]+)", docs.text):
        assert client.get(asset).status_code == 200, asset


def test_a_strong_if_none_match_matches_the_weak_etag(client):
    url = f"/events/{PUTIN}/related"
    etag = client.get(url).headers["etag"]
    assert etag.startswith('W/"')
    for header in (etag, etag.removeprefix("W/"), f'"other", {etag.removeprefix("W/")}', "*"):
        assert client.get(url, headers={"If-None-Match": header}).status_code == 304, header
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_the_cli_and_the_api_give_a_suggestion_one_shape(client, sample_index_path):
    from typer.testing import CliRunner

    from recommender.api import SuggestionOut
    from recommender.cli import app

    api = client.get(f"/events/{PUTIN}/related", params={"k": 3}).json()
    cli = CliRunner().invoke(app, ["related", PUTIN, "--k", "3", "--json", "--index", str(sample_index_path)])
    rows = json.loads(cli.stdout)
    assert set(rows[0]) == set(api[0]) == set(SuggestionOut.model_fields)
    assert {"context", "pinned"} <= set(rows[0])
    assert [r["context"] for r in rows] == [r["context"] for r in api]


def test_property_based_run_finds_no_server_error(client):
    """schemathesis generates requests from /openapi.json for every operation: none may get a 5xx."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 5
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            response = case.call()
            assert response.status_code < 500, (case.method, case.path, response.text[:200])

        check()

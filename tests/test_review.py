"""Review in the browser, without the browser: the file edit (bytes compared exactly, on real sample files), the
refusal of a stale page, editors.toml's never pairs, decisions.jsonl, the app's safety (Host, token, CSRF,
Origin, ids outside the index), and the decisions as labels for `tune` and as a score for `eval --decisions`."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil

import pytest
from conftest import PUTIN
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from recommender.archive import parse_event, read_archive
from recommender.cli import app as cli
from recommender.eventfile import related_href, related_line
from recommender.index import load_index
from recommender.review import Reviewer, ReviewError, StaleFileError, create_review_app
from recommender.review.edit import accept, add_related, drop_suggested, read_checked
from recommender.suggest import (
    DECISIONS_FILE,
    append_never,
    judged_pairs,
    load_decisions,
    load_rules,
    remove_never,
    with_section,
)
from recommender.truth import split_of, truth_from_archive

AMTRAK = "news/2016/03/14/an-amtrak-passenger-train-derails-west-of-dodge-city-in-the-american-state-of-kansas.md"
MOSUL = (
    "news/2016/03/2/iraqi-engineers-warn-that-the-mosul-dam-could-collapse-at-anytime-resulting-in-a-catastrophic-"
    "flash-flood-that-could-kill-up-to-one-million.md"
)
BASE_URL = "http://127.0.0.1:8010"


# --- the file edit --------------------------------------------------------------------------------------------
def test_related_href_is_the_archives_link_form():
    assert related_href("news/2016/03/02/x.md") == "/news/2016/03/2/x.md"
    assert related_href("news/2016/3/14/a b(1).md") == "/news/2016/03/14/a%20b%281%29.md"
    line = related_line(11, " A  headline ", "news/2015/12/8/y.md", "Syria,  Russia ,\n")
    assert line == "11. [A headline](/news/2015/12/8/y.md) _Context: Syria, Russia_"


def test_accept_appends_exactly_one_line_to_an_existing_related_list(sample_path):
    before = (sample_path / PUTIN).read_bytes()
    after = accept(before.decode(), MOSUL, "Mosul dam warning", "Iraq, Mosul Dam").encode()
    line = (
        b"11. [Mosul dam warning](/news/2016/03/2/" + MOSUL.split("/")[-1].encode() + b") _Context: Iraq, Mosul Dam_\n"
    )
    assert after == before + line  # the list ends the file: the new item is its last line
    event = parse_event(PUTIN, after.decode())
    assert len(event.related) == 11 and event.related[-1].context == ("Iraq", "Mosul Dam")
    assert read_archive(sample_path).resolve(event.related[-1].href) == MOSUL


def test_accept_creates_the_section_where_there_is_none_and_keeps_crlf(sample_path):
    lf = (sample_path / AMTRAK).read_text()
    assert "### Related" not in lf
    after = add_related(lf, MOSUL, "Mosul", "Iraq")
    assert after.startswith(lf.rstrip("\n")) and after.endswith(
        "\n\n### Related:\n\n1. [Mosul](" + related_href(MOSUL) + ") _Context: Iraq_\n"
    )
    assert parse_event(AMTRAK, after).related[0].href == related_href(MOSUL)
    crlf = lf.replace("\n", "\r\n")
    assert add_related(crlf, MOSUL, "Mosul", "Iraq") == after.replace("\n", "\r\n")


def test_accept_moves_an_item_out_of_the_suggested_section(sample_path):
    original = (sample_path / AMTRAK).read_text()
    other = PUTIN
    block = f"### Suggested related:\n\n1. [Mosul]({related_href(MOSUL)}) (2016-03-02; confidence 0.50)\n"
    block += f"2. [Putin]({related_href(other)}) (2016-03-14; confidence 0.40)\n"
    text = with_section(original, block)
    once = accept(text, MOSUL, "Mosul", "")
    event = parse_event(AMTRAK, once)
    assert [link.href for link in event.related] == [related_href(MOSUL)]
    assert [link.href for link in event.suggested] == [related_href(other)]
    assert once.index("### Related:") < once.index("### Suggested related:")
    twice = accept(once, other, "Putin", "Syria")
    assert "Suggested" not in twice and twice.startswith(original)  # the emptied section goes, blank lines too
    assert drop_suggested(original, MOSUL) == original


def test_a_stale_digest_is_refused(archive_copy):
    path = archive_copy / PUTIN
    from recommender.review.edit import digest

    seen = digest(path.read_bytes())
    path.write_bytes(path.read_bytes() + b"\n")
    with pytest.raises(StaleFileError, match="changed since this page was shown"):
        read_checked(path, seen)


# --- editors.toml and decisions.jsonl ----------------------------------------------------------------------------
def test_never_pairs_are_appended_keeping_the_editors_file(tmp_path):
    path = tmp_path / "editors.toml"
    written = '# our rules\nnever = [\n  ["news/2016/03/14/a.md", "news/2016/03/15/b.md"],  # noted\n]\n'
    path.write_text(written)
    block = append_never(path, "news/2016/03/14/c.md", 'news/2016/03/15/"d".md', reason="too generic")
    text = path.read_text()
    assert text.startswith(written) and text == written + block
    assert load_rules(path).never == {
        frozenset({"news/2016/03/14/a.md", "news/2016/03/15/b.md"}),
        frozenset({"news/2016/03/14/c.md", 'news/2016/03/15/"d".md'}),
    }
    assert remove_never(path, block) and path.read_text() == written
    missing = tmp_path / "new.toml"
    append_never(missing, "a.md", "b.md")
    assert load_rules(missing).never == {frozenset({"a.md", "b.md"})}


def test_review_records_are_read_with_their_undos(tmp_path):
    path = tmp_path / DECISIONS_FILE
    records = [
        {"event": "e", "offered": ["x", "y"], "at": "t"},
        {"event": "e", "candidate": "x", "decision": "accepted", "at": "t"},
        {"event": "e", "candidate": "y", "decision": "rejected", "reason": "duplicate", "at": "t"},
        {"event": "e", "candidate": "z", "decision": "rejected", "at": "t"},
        {"event": "e", "candidate": "z", "decision": "undo", "undoes": "rejected", "at": "t"},
        {"event": "e", "candidate": "w", "decision": "skipped", "at": "t"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    decisions = load_decisions(path)
    assert decisions.accepted == {"e": {"x"}} and decisions.rejected == {"e": {"y"}}
    assert judged_pairs(decisions) == {"e": {"x": 1, "y": 0}}


# --- the session and the app -------------------------------------------------------------------------------------
@pytest.fixture()
def reviewer(archive_copy, index_copy):
    day = dt.date(2016, 3, 14)
    found = Reviewer.open(archive_copy, index_copy, since=day, until=day)
    found.start()
    yield found
    found.stop()


def client(reviewer, **options) -> TestClient:
    return TestClient(create_review_app(reviewer, **options), base_url=BASE_URL)


def form_of(html: str, candidate: str | None = None) -> dict[str, str]:
    """The hidden fields of the decision form of `candidate` (default: the first one on the page)."""
    forms = re.findall(r'<form class="decide".*?</form>', html, re.S)
    for found in forms:
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', found))
        if candidate is None or fields["candidate"] == candidate:
            import html as html_module

            return {k: html_module.unescape(v) for k, v in fields.items()}
    raise AssertionError(f"no form for {candidate}")


def test_accept_reject_undo_through_the_app(reviewer, archive_copy, index_copy):
    web = client(reviewer)
    assert "decided" in web.get("/").text
    page = web.get("/event/" + PUTIN).text
    before = (archive_copy / PUTIN).read_bytes()
    first = form_of(page)
    response = web.post(
        "/decide", data={**first, "action": "accept", "context": "Edited, Context"}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    after = (archive_copy / PUTIN).read_bytes()
    assert after.startswith(before) and after[len(before) :].decode().startswith("11. [")
    assert after.endswith(b"_Context: Edited, Context_\n")

    # the same (now stale) page cannot reject: the refusal keeps what the editor typed, nothing is written
    second = form_of(page, re.findall(r'name="candidate" value="([^"]+)"', page)[1])
    refused = web.post("/decide", data={**second, "action": "reject", "reason": "too generic", "context": "kept text"})
    assert refused.status_code == 409 and "changed since this page was shown" in refused.text
    assert "kept text" in refused.text and (archive_copy / PUTIN).read_bytes() == after

    fresh = web.get("/event/" + PUTIN).text
    assert first["candidate"] not in re.findall(r'name="candidate" value="([^"]+)"', fresh)  # accepted: in Related
    rejected = form_of(fresh)
    assert web.post("/decide", data={**rejected, "action": "reject", "reason": "wrong story"}).status_code == 200
    rules = load_rules(archive_copy / "editors.toml")
    assert frozenset({PUTIN, rejected["candidate"]}) in rules.never
    again = web.get("/event/" + PUTIN).text
    assert rejected["candidate"] not in re.findall(r'name="candidate" value="([^"]+)"', again)

    csrf = first["csrf"]
    assert web.post("/undo", data={"csrf": csrf}, follow_redirects=False).status_code == 303  # the reject
    assert load_rules(archive_copy / "editors.toml").never == set()
    assert web.post("/undo", data={"csrf": csrf}, follow_redirects=False).status_code == 303  # the accept
    assert (archive_copy / PUTIN).read_bytes() == before
    kinds = [(r["decision"], r.get("undoes")) for r in map(json.loads, (archive_copy / DECISIONS_FILE).open())]
    assert kinds == [("accepted", None), ("rejected", None), ("undo", "rejected"), ("undo", "accepted")]
    record = json.loads((archive_copy / DECISIONS_FILE).read_text().splitlines()[0])
    assert record["rank"] == int(first["rank"]) and record["score"] == float(first["score"])
    assert record["ranker"] and record["model"] == load_index(index_copy).meta.model_fingerprint


def test_the_index_follows_an_accepted_item(reviewer, archive_copy, index_copy):
    web = client(reviewer)
    chosen = form_of(web.get("/event/" + AMTRAK).text)
    web.post("/decide", data={**chosen, "action": "accept", "context": "x"})
    assert reviewer.wait_for_index(120)
    index = load_index(index_copy)
    assert index.record(index.position[AMTRAK]).curated == [chosen["candidate"]]
    assert reviewer.recommender.index.record(index.position[AMTRAK]).curated == [chosen["candidate"]]


def test_writes_only_files_of_the_index_under_the_archive(reviewer, archive_copy):
    web = client(reviewer)
    fields = form_of(web.get("/event/" + PUTIN).text)
    for event in ("../outside.md", "news/2016/03/14/none.md", "README.md"):
        response = web.post("/decide", data={**fields, "event": event, "action": "accept"})
        assert response.status_code == 400, event
    assert web.get("/event/../../etc/passwd").status_code == 404
    with pytest.raises(ReviewError):
        reviewer.path_of("/" + PUTIN)


def test_csrf_origin_and_host_are_checked(reviewer):
    web = client(reviewer)
    fields = form_of(web.get("/event/" + PUTIN).text)
    assert web.post("/decide", data={**fields, "csrf": "guess", "action": "skip"}).status_code == 403
    evil = web.post("/decide", data={**fields, "action": "skip"}, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403
    assert web.post("/undo", data={}).status_code == 403
    assert web.get("/", headers={"Host": "evil.example:8010"}).status_code == 421
    assert web.post("/decide", data={**fields, "action": "skip"}, follow_redirects=False).status_code == 303


def test_other_addresses_need_a_token(reviewer):
    with pytest.raises(ValueError, match="--token"):
        create_review_app(reviewer, host="0.0.0.0")
    app = create_review_app(reviewer, host="192.168.1.5", token="s3cret")
    web = TestClient(app, base_url="http://192.168.1.5:8010")
    assert web.get("/").status_code == 401
    assert web.get("/event/" + PUTIN).status_code == 401
    fields = {"csrf": app.state.csrf, "event": PUTIN, "candidate": MOSUL, "digest": "x", "action": "skip"}
    assert web.post("/decide", data=fields).status_code == 401
    opened = web.get("/?token=s3cret", follow_redirects=False)
    assert opened.status_code == 303 and "review_token" in opened.headers["set-cookie"]
    assert web.get("/").status_code == 200  # the cookie now carries it
    page = web.get("/event/" + PUTIN).text
    assert web.post("/decide", data={**form_of(page), "action": "skip"}, follow_redirects=False).status_code == 303


def test_the_cli_refuses_a_public_address_without_a_token(archive_copy, index_copy, monkeypatch):
    monkeypatch.delenv("RECOMMENDER_REVIEW_TOKEN", raising=False)
    args = ["review", "--archive", str(archive_copy), "--index", str(index_copy), "--host", "0.0.0.0"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "--token" in result.output


# --- decisions as labels and as a score ----------------------------------------------------------------------
def test_tune_learns_from_decisions_whatever_the_lists_say(sample_archive, sample_index):
    from recommender.tune import decision_labels, training_data

    truth = truth_from_archive(sample_archive, set(sample_index.ids))
    event = next(e for e in sorted(truth.relevant) if split_of(e) == "train" and len(truth.relevant[e]) >= 2)
    listed = truth.relevant[event][0]  # in the curated list, but rejected by an editor
    outsider = next(i for i in sample_index.ids if i not in truth.relevant[event] and i != event)
    judged = decision_labels(
        {event: {listed: 0, outsider: 1}, "news/not-indexed.md": {listed: 1}}, set(sample_index.ids)
    )
    assert judged == {event: {listed: 0, outsider: 1}}
    _, labels, sizes = training_data(sample_index, truth, [event], decisions=judged)
    import numpy as np

    from recommender.rank import Recommender
    from recommender.rank.candidates import allowed_rows, candidate_pool

    # the rows trained on, as tune picks them: candidates with a list of their own or in the event's list, and
    # the decided ones (added to the pool)
    query = Recommender(sample_index).query(sample_index.position[event])
    decided = np.asarray(sorted(sample_index.position[i] for i in (listed, outsider)))
    pool = candidate_pool(sample_index, query, allowed_rows(sample_index, query, None, None), decided)
    listed_rows = {sample_index.position[i] for i in truth.relevant if i in sample_index.position}
    listed_rows |= {sample_index.position[i] for i in truth.relevant[event]}
    trained = [int(r) for r in pool if int(r) in listed_rows or int(r) in decided]
    assert sizes.tolist() == [len(trained)]
    label_of = dict(zip(trained, labels.tolist(), strict=True))
    assert label_of[sample_index.position[listed]] == 0  # in the curated list, rejected in review
    assert label_of[sample_index.position[outsider]] == 1  # in no list, accepted in review
    others = set(truth.relevant[event]) - {listed}
    assert all(label_of[sample_index.position[i]] == 1 for i in others if sample_index.position[i] in label_of)
    test_event = next(e for e in sorted(truth.relevant) if split_of(e) == "test")
    assert decision_labels({test_event: {listed: 1}}, set(sample_index.ids)) == {}


def test_eval_reports_precision_on_decided_pairs(archive_copy, index_copy, recommender, tmp_path):
    from recommender.evaluate import decision_precision

    suggested = recommender.related(PUTIN, k=2)  # the top two, as eval ranks them
    judged = {PUTIN: {suggested[0].id: 1, suggested[1].id: 0}}
    scores = decision_precision(recommender, judged, ("dense", "fused"))
    assert scores["fused"]["decided_in_top10"] == 2 and scores["fused"]["precision"] == 0.5
    records = [
        {"at": "t", "event": PUTIN, "candidate": suggested[0].id, "decision": "accepted"},
        {"at": "t", "event": PUTIN, "candidate": suggested[1].id, "decision": "rejected", "reason": "duplicate"},
    ]
    (archive_copy / DECISIONS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    args = ["eval", "--archive", str(archive_copy), "--index", str(index_copy), "--queries", "20", "--deep", "0"]
    args += ["--systems", "dense,fused", "--decisions", "--out", str(tmp_path / "report")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "precision on decided pairs (2 pairs of 1 events" in result.output
    assert re.search(r"fused\s+precision 0\.500 over 2 decided pairs", result.output)
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["decisions"]["fused"]["precision"] == 0.5
    assert "## Precision on pairs decided in review" in (tmp_path / "report" / "report.md").read_text()
    shutil.rmtree(tmp_path / "report")


def test_the_queue_filters_and_sorts(reviewer):
    web = client(reviewer)
    everything = reviewer.queue()
    assert everything.total == 14 and everything.rows and everything.pending == sum(r.pending for r in everything.rows)
    by_confidence = reviewer.queue(by_confidence=True).rows
    assert [r.best for r in by_confidence] == sorted((r.best for r in by_confidence), reverse=True)
    bare = reviewer.queue(no_related=True).rows
    assert bare and all(not r.has_related for r in bare) and AMTRAK in {r.id for r in bare}
    assert reviewer.queue(since=dt.date(2016, 3, 15)).rows == []
    page = web.get("/?no_related=1&sort=confidence").text
    assert AMTRAK in page and PUTIN not in page
    assert 'id="pending"' in page and 'id="decided">0<' in page

"""One index lifecycle (`recommender/lifecycle.py`), on the sample: every write keeps the ready lists current (the
review page's accept, reject and undo included), --no-lists is kept until asked, `validate --index` says why
lists are not current, and the lists' fingerprint follows explicit versions, not the source text."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from conftest import PUTIN, ROOT
from fastapi.testclient import TestClient
from test_review import BASE_URL, form_of
from typer.testing import CliRunner

from recommender.api import create_app
from recommender.archive import read_archive
from recommender.cli import app
from recommender.index import load_index
from recommender.index.lists import DTYPES
from recommender.lifecycle import build, lists_status, recommender_for
from recommender.rank import Recommender
from recommender.rank.query import SPLIT_ROWS, event_cosines
from recommender.rank.ready import block_lists
from recommender.rank.threads import query_cores, use_cores
from recommender.review import Reviewer, create_review_app


def _current(index_path: Path, archive: Path) -> None:
    """The index's lists are current, `validate --index` says so, and the API answers by id from them."""
    recommender = Recommender(load_index(index_path))
    assert recommender.lists_state == "ready" and recommender.index.lists is not None
    result = CliRunner().invoke(app, ["validate", "--archive", str(archive), "--index", str(index_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["lists"] == "ready" and report["lists_reason"].startswith("current"), report["lists_reason"]
    client = TestClient(create_app(index_path))
    assert client.get("/health").json()["lists"] == "ready"
    found = client.get(f"/events/{PUTIN}/related", params={"k": 10}).json()
    assert len(found) == 10 and {s["source"] for s in found} == {"ready"}


def test_accept_reject_and_undo_in_review_keep_the_lists_current(lists_copy, archive_copy):
    _current(lists_copy, archive_copy)
    build_before = load_index(lists_copy).meta.build_id
    day = dt.date(2016, 3, 14)
    reviewer = Reviewer.open(archive_copy, lists_copy, since=day, until=day)
    reviewer.start()
    try:
        web = TestClient(create_review_app(reviewer), base_url=BASE_URL)
        first = form_of(web.get("/event/" + PUTIN).text)
        accepted = web.post("/decide", data={**first, "action": "accept", "context": "x"}, follow_redirects=False)
        assert accepted.status_code == 303, accepted.text
        assert reviewer.wait_for_index(120)
        index = load_index(lists_copy)
        assert index.meta.build_id != build_before  # the index was rebuilt for the accepted item, with lists
        assert first["candidate"] in index.record(index.position[PUTIN]).curated
        assert index.meta.lists_computed == 0  # a Related list is no ranker input: every list copied
        _current(lists_copy, archive_copy)
        assert reviewer.recommender.lists_state == "ready"

        rejected = form_of(web.get("/event/" + PUTIN).text)
        assert web.post("/decide", data={**rejected, "action": "reject", "reason": "wrong story"}).status_code == 200
        csrf = first["csrf"]
        for _ in range(2):  # undo the reject, then the accept: the file is as before
            assert web.post("/undo", data={"csrf": csrf}, follow_redirects=False).status_code == 303
        assert reviewer.wait_for_index(120)
        index = load_index(lists_copy)
        assert first["candidate"] not in index.record(index.position[PUTIN]).curated
        _current(lists_copy, archive_copy)
    finally:
        reviewer.stop()


def test_no_lists_is_kept_until_asked(sample_archive, index_copy, sample_path):
    """The fixtures' sample index is built with lists=False: an update keeps it so, and says why."""
    build(sample_archive, index_copy, archive_name="sample")
    recommender = Recommender(load_index(index_copy))
    state, reason = lists_status(recommender, sample_archive.fingerprint)
    assert state == "none" and "--no-lists" in reason and not (index_copy / "lists").exists()
    build(sample_archive, index_copy, archive_name="sample", lists=True)
    recommender = Recommender(load_index(index_copy))
    assert lists_status(recommender, sample_archive.fingerprint)[0] == "ready"
    build(sample_archive, index_copy, archive_name="sample")  # lists now kept by every later build
    assert Recommender(load_index(index_copy)).lists_state == "ready"


def test_validate_says_why_lists_are_not_current(lists_copy, sample_path, archive_copy):
    def reason(index_path: Path, archive: Path = sample_path) -> str:
        result = CliRunner().invoke(app, ["validate", "--archive", str(archive), "--index", str(index_path)])
        assert result.exit_code == 0, result.output
        return next(line for line in result.stdout.splitlines() if "ready lists" in line)

    assert "current" in reason(lists_copy)
    (archive_copy / PUTIN).write_text((archive_copy / PUTIN).read_text().replace("\n# ", "\n# Update: ", 1))
    assert "another state of the archive" in reason(lists_copy, archive_copy)
    meta = json.loads((lists_copy / "meta.json").read_text())
    meta["lists_recipe"]["code: features"] = "0"
    meta["lists_fingerprint"] = "0" * 16
    (lists_copy / "meta.json").write_text(json.dumps(meta))
    said = reason(lists_copy)
    assert "STALE" in said and "features version 0 -> 1" in said and "model" not in said
    shutil.rmtree(lists_copy / "lists")  # lost lists: the index is damaged, and the error says which file
    result = CliRunner().invoke(app, ["validate", "--archive", str(sample_path), "--index", str(lists_copy)])
    assert result.exit_code == 1 and "lists/rows.npy is missing" in result.output


def test_a_server_reloading_after_tune_serves_the_lists_the_installed_ranker_made(lists_path):
    index = load_index(lists_path)
    older = Recommender(index, cascade=((100, 100),))  # a ranking other than the installed one made the lists
    assert older.lists_state == "stale"
    assert recommender_for(index, like=older).lists_state == "ready"
    same = Recommender(index, cascade=((100, 100),))
    assert recommender_for(load_index(lists_path), like=same).cascade is None


FINGERPRINT = "import sys, recommender; assert recommender.__file__.startswith(sys.argv[2]); "
FINGERPRINT += "from recommender.index import load_index; from recommender.rank import Recommender; "
FINGERPRINT += "print(Recommender(load_index(sys.argv[1])).fingerprint)"


def _fingerprint_of(package: Path, index_path: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(package), "PYTHONDONTWRITEBYTECODE": "1"}  # no stale .pyc
    done = subprocess.run(
        [sys.executable, "-c", FINGERPRINT, str(index_path), str(package)],
        env=env,
        cwd=package,  # `python -c` puts the working folder first on the path
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_fingerprint_follows_versions_not_source_text(lists_path, tmp_path):
    """A comment or a reformatting of every module of rank/ keeps the lists current; a version bump (a change
    that can alter a list) makes them stale."""
    package = tmp_path / "code"
    shutil.copytree(ROOT / "recommender", package / "recommender", ignore=shutil.ignore_patterns("__pycache__"))
    made = load_index(lists_path).meta.lists_fingerprint
    assert _fingerprint_of(package, lists_path) == made
    rank = package / "recommender" / "rank"
    for module in rank.glob("*.py"):
        module.write_text("# a comment added by a refactor\n" + module.read_text())
    ruff = Path(sys.executable).with_name("ruff")
    if ruff.exists():  # and every module of rank/ formatted otherwise
        subprocess.run([str(ruff), "format", "-q", "--line-length", "88", str(rank)], check=True)
        assert "# a comment added by a refactor\n" in (rank / "select.py").read_text()
    assert _fingerprint_of(package, lists_path) == made
    features = package / "recommender" / "rank" / "features.py"
    features.write_text(features.read_text().replace("\nVERSION = 1", "\nVERSION = 2", 1))
    assert _fingerprint_of(package, lists_path) != made


def test_a_build_reads_the_archive_once_and_rebuilds_in_place(lists_copy, archive_copy):
    """A day's work (an event added, one changed, one removed) through `build`: its lists are current."""
    files = sorted((archive_copy / "news").rglob("*.md"))
    files[5].write_text(files[5].read_text().replace("\n# ", "\n# Update: ", 1))
    build(read_archive(archive_copy), lists_copy, archive_name="sample")
    index = load_index(lists_copy)
    assert Recommender(index).lists_state == "ready" and 0 < index.meta.lists_computed < len(index)


def test_a_block_of_events_gets_the_lists_each_event_gets_alone(lists_path):
    """Ready lists are made in blocks (one matrix product, one call of the trees a cascade stage): every sample
    event's list is the one made for it alone, to the last bit of every score and signal."""
    recommender = Recommender(load_index(lists_path))
    rows = np.arange(len(recommender.index))
    blocks = [block_lists(recommender, rows[i : i + 64]) for i in range(0, len(rows), 64)]
    alone = [block_lists(recommender, rows[i : i + 1]) for i in range(0, len(rows), 5)]  # every 5th: 231 events
    for name in (*DTYPES, "thresholds", "contexts"):
        together = np.concatenate([getattr(b, name) for b in blocks])
        assert np.array_equal(together[::5], np.concatenate([getattr(a, name) for a in alone])), name
    stored = recommender.index.lists
    assert stored is not None and np.array_equal(np.concatenate([b.rows for b in blocks]), stored.rows)


def test_a_cosine_is_the_same_alone_in_a_block_and_split_on_two_cores():
    rng = np.random.default_rng(26)
    vectors = rng.standard_normal((SPLIT_ROWS + 1000, 384), dtype=np.float32)
    queries = vectors[[3, SPLIT_ROWS // 2 + 5, 70, 9, 11, 500, SPLIT_ROWS + 10]]
    block = event_cosines(vectors, queries)
    for size in (2, 3):
        assert np.array_equal(event_cosines(vectors, queries[:size]), block[:size])
    assert query_cores() > 1 or os.cpu_count() == 1  # a query alone has every core: its scan split in two halves
    for i, query in enumerate(queries):
        assert np.array_equal(event_cosines(vectors, query[None, :])[0], block[i])
        use_cores(1)
        try:
            assert np.array_equal(event_cosines(vectors, query[None, :])[0], block[i])
        finally:
            use_cores(0)  # back to the default


def test_a_server_answers_from_its_build_while_the_next_one_makes_its_lists(lists_copy, sample_archive):
    """Lists remade (here by another cascade, as after `tune`) are written with the new build in a temporary
    folder: the server goes on answering from the lists it has until the complete build is renamed into place."""
    other = Recommender(load_index(lists_copy), cascade=((100, 100),))
    seen: list[tuple[str, str, set[str]]] = []
    with TestClient(create_app(lists_copy, reload_every=0.1)) as client:
        before = client.get("/health").json()["build_id"]

        def log(message: str) -> None:
            if message.startswith("ready lists: making"):  # every list: made by another ranking
                time.sleep(0.5)  # several reload periods
                health = client.get("/health").json()
                answer = client.get(f"/events/{PUTIN}/related").json()
                seen.append((health["build_id"], health["lists"], {s["source"] for s in answer}))

        build(sample_archive, lists_copy, archive_name="sample", like=other, log=log)
        assert seen == [(before, "ready", {"ready"})]
        deadline = time.monotonic() + 20
        while client.get("/health").json()["build_id"] == before:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert load_index(lists_copy).meta.lists_computed == len(other.index)

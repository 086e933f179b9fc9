"""Suggestions that respect editors (issue 17): the file as it is now is the truth, removals are remembered,
editors.toml mistakes are warnings naming the file and line, and `--write` keeps every byte it does not own."""

from __future__ import annotations

import datetime as dt
import json
import re

from conftest import PUTIN
from typer.testing import CliRunner

from recommender.archive import read_archive
from recommender.cli import app
from recommender.rank import Suggestion
from recommender.suggest import DECISIONS_FILE, EventSuggestions, markdown_block, with_section

ONE_DAY = ["--events-since", "2016-03-14", "--events-until", "2016-03-14"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def suggest(archive, index, *args: str):
    return invoke("suggest", "--archive", str(archive), "--index", str(index), *args)


def suggested_lines(text: str) -> list[str]:
    section = re.search(r"^### Suggested related:\n(.*?)(?=^### |\Z)", text, re.S | re.M)
    assert section, "no Suggested related section"
    return [line for line in section.group(1).splitlines() if re.match(r"^\d+\. ", line)]


def link_id(line: str) -> str:
    match = re.search(r"\]\(/([^)]*)\)", line)
    assert match
    return match.group(1)


def test_a_rerun_restores_neither_a_deleted_line_nor_one_moved_into_related(archive_copy, sample_index_path):
    path = archive_copy / PUTIN
    first = suggest(archive_copy, sample_index_path, "--only", PUTIN, "--write")
    assert first.exit_code == 0, first.output
    lines = suggested_lines(path.read_text())
    assert len(lines) == 10
    deleted, moved = lines[1], lines[2]
    # the editor deletes one suggested line and moves another into Related, by hand
    text = path.read_text().replace(deleted + "\n", "").replace(moved + "\n", "")
    text = text.replace("### Related:\n\n", "### Related:\n\n" + re.sub(r"^\d+\.", "11.", moved) + "\n", 1)
    path.write_text(text)
    assert link_id(moved) in {link.href.lstrip("/") for link in read_archive(archive_copy).events[PUTIN].related}

    third = suggest(archive_copy, sample_index_path, "--only", PUTIN, "--write")
    assert third.exit_code == 0, third.output
    assert "1 removed by editors, remembered" in third.stderr
    after = path.read_text()
    ids = [link_id(line) for line in suggested_lines(after)]
    assert link_id(deleted) not in ids and link_id(moved) not in ids
    assert len(ids) == 10  # refilled from further down the ranking, not restored
    assert re.sub(r"^\d+\.", "11.", moved) in after  # the editor's Related line is still there
    records = [json.loads(line) for line in (archive_copy / DECISIONS_FILE).read_text().splitlines()]
    assert {"event": PUTIN, "rejected": link_id(deleted)} in [
        {k: v for k, v in r.items() if k != "at"} for r in records if "rejected" in r
    ]
    # and a dry run, then a fourth run, change nothing
    before = path.read_bytes(), (archive_copy / DECISIONS_FILE).read_bytes()
    dry = suggest(archive_copy, sample_index_path, "--only", PUTIN)
    assert "0 added, 0 replaced, 0 removed, 1 unchanged" in dry.stderr
    fourth = suggest(archive_copy, sample_index_path, "--only", PUTIN, "--write")
    assert fourth.exit_code == 0 and "1 unchanged" in fourth.stderr
    assert (path.read_bytes(), (archive_copy / DECISIONS_FILE).read_bytes()) == before


def test_no_suggested_item_is_already_in_the_files_related_list(archive_copy, sample_index_path):
    # every event offered something, however unsure (by default an unsure event gets no section)
    result = suggest(archive_copy, sample_index_path, "--write", "--k", "10", "--min-confidence", "0")
    assert result.exit_code == 0, result.output
    archive = read_archive(archive_copy)
    with_both = 0
    for event in archive.events.values():
        related = {archive.resolve(link.href) for link in event.related}
        suggested = {archive.resolve(link.href) for link in event.suggested}
        assert suggested and None not in suggested
        assert not related & suggested, event.id
        with_both += bool(related)
    assert with_both > 10
    # --include-curated: the old behaviour, curated items suggested and marked
    old = suggest(archive_copy, sample_index_path, "--only", PUTIN, "--include-curated", "--format", "markdown")
    assert "; curated)" in old.stdout and "already in the curated lists" in old.stderr


def test_suggest_works_on_the_archive_it_is_given(archive_copy, sample_index_path):
    for path in archive_copy.rglob("*.md"):
        if "2016/03/14" not in str(path):
            path.unlink()
    events = len(read_archive(archive_copy).events)
    result = suggest(archive_copy, sample_index_path, "--write", "--min-confidence", "0")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # with --write, the files are the output
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"{events} events") and f"{events} added" in result.stderr


def test_editors_toml_mistakes_are_warnings_naming_the_file_and_line(archive_copy, sample_index_path, recommender):
    plain = [s.id for s in recommender.related(PUTIN, 10)]
    rules = archive_copy / "editors.toml"
    rules.write_text(
        "# editors' rules\n"  # 1
        "never = [\n"  # 2
        f'  ["/{plain[0]}", "/{PUTIN}"],\n'  # 3: leading slashes, as the files write links: obeyed
        f'  ["news/2016/03/14/no-such-event.md", "{PUTIN}"],\n'  # 4: unknown id
        f'  ["{PUTIN}", "{PUTIN}"],\n'  # 5: a pair of one event
        "]\n"
        "pin = [\n"  # 7
        f'  ["{PUTIN}", "news/2016/03/1/misspelled.md"],\n'  # 8: unknown pinned id
        f'  ["{PUTIN}", "{PUTIN}"],\n'  # 9: pinned to itself
        f'  ["/{PUTIN}", "/{plain[5]}"],\n'  # 10: leading slashes: obeyed and marked
        "]\n"
        'exclude_events = ["news/2099/01/01/gone.md"]\n'  # 12: unknown id
        'exclude_dates = [["2016-03-22", "2016-03-20"]]\n'  # 13: reversed range
    )
    result = suggest(archive_copy, sample_index_path, "--only", "/" + PUTIN, "--format", "markdown")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    expected = {
        4: "unknown event id 'news/2016/03/14/no-such-event.md'",
        5: "a pair of one event with itself",
        8: "unknown event id 'news/2016/03/1/misspelled.md'",
        9: "an event pinned to itself",
        12: "unknown event id 'news/2099/01/01/gone.md'",
        13: "2016-03-22 is after 2016-03-20",
    }
    for line, message in expected.items():
        assert any(f"{rules}:{line}:" in w and message in w for w in warnings), (line, warnings)
    assert len(warnings) == len(expected)
    items = [line for line in result.stdout.splitlines() if re.match(r"^\d+\. ", line)]
    assert link_id(items[0]) == plain[5] and "; pinned" in items[0]
    assert not any(link_id(line) == plain[0] for line in items)


def test_excluded_events_lose_their_suggested_section(archive_copy, sample_index_path):
    first = suggest(archive_copy, sample_index_path, *ONE_DAY, "--write")
    assert first.exit_code == 0, first.output
    before = (archive_copy / PUTIN).read_text()
    assert "### Suggested related:" in before
    (archive_copy / "editors.toml").write_text(f'exclude_events = ["{PUTIN}"]\n')
    second = suggest(archive_copy, sample_index_path, *ONE_DAY, "--write")
    assert second.exit_code == 0, second.output
    assert "1 removed" in second.stderr
    after = (archive_copy / PUTIN).read_text()
    assert "### Suggested related:" not in after
    assert after == before[: before.index("### Suggested related:")].rstrip("\n") + "\n"
    assert not any(PUTIN in p.read_text() for p in (archive_copy / "news/2016/03/14").glob("*.md") if p.name != "x")


def test_since_after_until_and_ids_as_links_write_them(archive_copy, sample_index_path):
    bad = suggest(archive_copy, sample_index_path, "--events-since", "2016-03-15", "--events-until", "2016-03-14")
    assert bad.exit_code == 2 and "--events-since 2016-03-15 is after --events-until 2016-03-14" in bad.output
    related = invoke("related", "/" + PUTIN, "--index", str(sample_index_path), "--json")
    assert related.exit_code == 0, related.output
    padded = PUTIN  # the sample's ids are zero-padded; the archive's links often are not
    unpadded = invoke("related", padded.replace("/03/", "/3/"), "--index", str(sample_index_path), "--json")
    assert json.loads(unpadded.stdout) == json.loads(related.stdout)
    unknown = invoke("related", "news/2016/03/14/no-such.md", "--index", str(sample_index_path))
    assert unknown.exit_code == 2
    assert unknown.output.startswith("error: unknown event id") and unknown.output.count("\n") == 1


def test_related_takes_the_archive_and_its_files_related_list(archive_copy, sample_index_path):
    path = archive_copy / PUTIN
    plain = json.loads(invoke("related", PUTIN, "--index", str(sample_index_path), "--json").stdout)
    top = next(s for s in plain if not s["curated"])
    # the editor adds the top suggestion to Related: the file, not the index, now marks it curated
    path.write_text(path.read_text().replace("### Related:\n\n", f"### Related:\n\n1. [x](/{top['id']})\n", 1))
    args = ["--index", str(sample_index_path), "--archive", str(archive_copy), "--json"]
    marked = json.loads(invoke("related", PUTIN, *args).stdout)
    assert next(s for s in marked if s["id"] == top["id"])["curated"]
    excluded = json.loads(invoke("related", PUTIN, *args, "--exclude-curated").stdout)
    assert top["id"] not in {s["id"] for s in excluded}


def test_confidence_is_everywhere_and_min_confidence_gives_fewer(archive_copy, sample_index_path, recommender):
    found = recommender.related(PUTIN, 10)
    sure = [s.confidence for s in found]
    assert all(c is not None and 0 <= c <= 1 for c in sure)
    assert sure == sorted(sure, reverse=True)  # a function of the ranker's score alone
    threshold = sorted(sure)[5]
    fewer = recommender.related(PUTIN, 10, min_confidence=threshold)
    assert 0 < len(fewer) < 10 and all(s.confidence >= threshold for s in fewer)
    cli = invoke("related", PUTIN, "--index", str(sample_index_path), "--json", "--min-confidence", str(threshold))
    assert [s["id"] for s in json.loads(cli.stdout)] == [s.id for s in fewer]
    for fmt, marker in (("jsonl", '"confidence": '), ("csv", "confidence"), ("markdown", "; confidence ")):
        out = suggest(archive_copy, sample_index_path, "--only", PUTIN, "--format", fmt)
        assert out.exit_code == 0 and marker in out.stdout, fmt
    weak = suggest(archive_copy, sample_index_path, "--only", PUTIN, "--min-confidence", str(threshold))
    not_curated = recommender.related(PUTIN, 10, exclude_curated=True, min_confidence=threshold)
    assert [s["id"] for s in json.loads(weak.stdout)["suggestions"]] == [s.id for s in not_curated]


def _item(event_id: str) -> EventSuggestions:
    odd = Suggestion(1, event_id, dt.date(2016, 3, 14), "An odd (one)", 1.0, confidence=0.5)
    return EventSuggestions("host.md", dt.date(2016, 3, 14), "Host", [odd], 0)


HOST = "### [2016-03-14](/news/2016/03/14/index.md)\n\n# Host\n\nSummary.\n\n### Related:\n\n1. [a](/a.md)\n"


def test_write_keeps_crlf_and_every_byte_outside_the_section():
    crlf = HOST.replace("\n", "\r\n")
    new = with_section(crlf, markdown_block(_item("news/2016/03/14/x.md")))
    assert new.startswith(crlf) and "\n" not in new.replace("\r\n", "")
    assert with_section(new, markdown_block(_item("news/2016/03/14/x.md"))) == new
    assert with_section(new, markdown_block(_item("news/2016/03/14/y.md"))).startswith(crlf)
    no_newline = HOST.rstrip("\n")
    assert with_section(no_newline, markdown_block(_item("news/2016/03/14/x.md"))).startswith(no_newline + "\n\n")


def test_headings_are_matched_as_the_reader_matches_them():
    block = markdown_block(_item("news/2016/03/14/x.md"))
    for heading in ("### Suggested Related:", "### suggested related", "###  Suggested related :"):
        for tail in ("\n\n1. [old](/old.md)\n", "\n1. [old](/old.md)", ""):  # at the end, without a newline too
            text = HOST + "\n" + heading + tail
            new = with_section(text, block)
            assert new.lower().count("suggested related") == 1, (heading, tail)
            assert new.startswith(HOST) and "/old.md" not in new
    # a section followed by another keeps what follows, byte for byte
    text = HOST + "\n### Suggested Related\n\n1. [old](/old.md)\n\n### Notes:\r\n\r\nkeep\r\n"
    assert with_section(text, block).endswith("\n\n### Notes:\r\n\r\nkeep\r\n")


def test_odd_ids_are_written_as_links_that_read_back(tmp_path):
    for odd in ("news/2016/03/14/with space.md", "news/2016/03/14/paren(s).md", "news/2016/03/14/50%_<x>.md"):
        folder = tmp_path / str(abs(hash(odd)))
        (folder / odd).parent.mkdir(parents=True)
        (folder / odd).write_text(HOST.replace("# Host", "# Odd"))
        (folder / "host.md").write_text(with_section(HOST, markdown_block(_item(odd))))
        archive = read_archive(folder)
        assert odd in archive.events
        links = archive.events["host.md"].suggested
        assert len(links) == 1 and archive.resolve(links[0].href) == odd, (odd, links)


def test_api_carries_the_confidence_and_takes_ids_as_links_write_them(recommender):
    from fastapi.testclient import TestClient

    from recommender.api import create_app

    client = TestClient(create_app(recommender=recommender))
    body = client.get(f"/events/{PUTIN}/related", params={"k": 10}).json()
    assert [s["confidence"] for s in body] == [s.confidence for s in recommender.related(PUTIN, 10)]
    threshold = sorted(s["confidence"] for s in body)[5]
    sure = client.get(f"/events/{PUTIN}/related", params={"k": 10, "min_confidence": threshold}).json()
    assert 0 < len(sure) < 10 and all(s["confidence"] >= threshold for s in sure)
    assert client.get(f"/events/{PUTIN}/related", params={"min_confidence": 2}).status_code == 422
    slashed = client.get(f"/events//{PUTIN}/related", params={"k": 10}).json()
    assert [s["id"] for s in slashed] == [s["id"] for s in body]

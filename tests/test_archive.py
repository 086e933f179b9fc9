"""The archive reader: the seed page, the sample, messy input, and (when present) the full archive."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pytest
from conftest import FULL, PUTIN
from typer.testing import CliRunner

import recommender.archive
from recommender.archive import link_key, parse_event, read_archive
from recommender.cli import app


def test_seed_page_parses_completely(sample_archive):
    seed = sample_archive.events["SEED-EXAMPLE.md"]
    assert seed.date == dt.date(2016, 3, 14)
    assert seed.headline.startswith("Russian President Vladimir Putin orders Defence Minister Sergey Shoygu")
    assert seed.headline.endswith('starting from tomorrow."')
    assert seed.summary.startswith("Russian President Vladimir Putin has ordered Defense Minister Sergey Shoigu")
    assert seed.summary.endswith("to observe ceasefire agreements.")
    assert [s.name for s in seed.sources] == ["BBC", "RT", "Cover Image"]
    assert all(s.url and s.url.startswith("http") for s in seed.sources)
    assert len(seed.related) == 10
    # leading spaces in link texts are stripped
    assert seed.related[1].text.startswith("The Russian Defence Ministry says six Russian bombers")
    assert seed.related[0].context == (
        "Russian Defence Ministry",
        "Russian military intervention",
        "Sergey Shoygu",
        "Syria",
    )
    assert seed.related[6].context == ("Russian President Vladimir Putin", "Vladimir Putin")
    assert "Related" not in seed.text and "Context" not in seed.text


def test_seed_links_resolve_whatever_the_padding(sample_archive):
    seed = sample_archive.events["SEED-EXAMPLE.md"]
    # /news/2015/12/8/... (no padding) resolves to the file news/2015/12/8/...
    first = sample_archive.resolve(seed.related[0].href)
    assert first == seed.related[0].href.lstrip("/")
    padded = seed.related[0].href.replace("/2015/12/8/", "/2015/12/08/")
    assert sample_archive.resolve(padded) == first
    assert sample_archive.resolve(padded.lstrip("/")) == first
    assert link_key("/news/2016/03/01/x.md") == link_key("news/2016/3/1/x.md")


def test_sample_matches_its_gold(sample_archive, sample_path):
    gold = [json.loads(line) for line in (sample_path / "gold.jsonl").read_text().splitlines()]
    assert len(gold) == 223  # the March 2016 events with a curated list
    for row in gold:
        assert sample_archive.curated_ids(sample_archive.events[row["id"]]) == row["related"], row["id"]
    assert len(sample_archive.events) == 1155
    assert sample_archive.skipped == []
    assert PUTIN in sample_archive.events


def test_missing_sections_and_summary_paragraphs():
    event = parse_event(
        "x.md", "### [2020-1-2](/news/2020/01/02/index.md)\n\n# Headline  \n\nPara one\nwraps.\n\nTwo.\n"
    )
    assert event.date == dt.date(2020, 1, 2)
    assert event.headline == "Headline"
    assert event.summary == "Para one wraps.\n\nTwo."
    assert event.sources == () and event.related == ()


def test_the_fingerprint_is_of_what_an_index_holds():
    """A Suggested section, CRLF line endings or spacing leave the archive's fingerprint alone (an index built
    before them is still this archive's); a Related link or its context, a date or the text change it."""
    from recommender.archive import archive_fingerprint

    page = (
        "### [2020-01-02](/news/2020/01/02/index.md)\n\n# Headline\n\n### Related:\n"
        "1. [Other](/news/2020/01/01/other.md) _Context: Story_\n"
    )
    base = archive_fingerprint({"x.md": parse_event("x.md", page)})
    same = [
        page + "\n### Suggested related:\n1. [More](/news/2020/01/03/more.md) _Context: Story_\n",
        page.replace("\n", "\r\n"),
        page.replace("# Headline", "#  Headline "),
    ]
    for text in same:
        assert archive_fingerprint({"x.md": parse_event("x.md", text)}) == base
    changed = [
        page.replace("_Context: Story_", "_Context: Another story_"),
        page.replace("other.md", "another.md"),
        page.replace("2020-01-02", "2020-01-03"),
        page.replace("# Headline", "# Headline changed"),
    ]
    for text in changed:
        assert archive_fingerprint({"x.md": parse_event("x.md", text)}) != base


def write(path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_bad_files_are_skipped_with_their_reason(tmp_path):
    good = b"### [2016-03-14](/news/2016/03/14/index.md)\n\n# A good event\n"
    write(tmp_path / "news/2016/03/14/good.md", good)
    write(tmp_path / "news/2016/03/14/latin1.md", good.replace(b"good", b"caf\xe9"))
    write(tmp_path / "news/2016/03/14/nohead.md", b"### [2016-03-14](/news/2016/03/14/index.md)\n\nno headline\n")
    write(tmp_path / "news/2016/03/14/baddate.md", b"### [2016-02-31](/news/2016/02/31/index.md)\n\n# x\n")
    write(tmp_path / "README.md", b"# Not an event\n")
    archive = read_archive(tmp_path)
    assert list(archive.events) == ["news/2016/03/14/good.md"]
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in archive.skipped}
    assert set(reasons) == {"latin1.md", "nohead.md", "baddate.md"}  # the README is ignored, not skipped
    assert reasons["latin1.md"].startswith("bad encoding")
    assert "headline" in reasons["nohead.md"]
    assert reasons["baddate.md"].startswith("bad date '2016-02-31'")

    result = CliRunner().invoke(app, ["validate", "--archive", str(tmp_path)])
    assert result.exit_code == 0
    assert "skipped files: 3" in " ".join(result.output.split())
    strict = CliRunner().invoke(app, ["validate", "--archive", str(tmp_path), "--strict"])
    assert strict.exit_code == 1


def test_validate_reads_a_tarball_and_a_folder_of_tarballs(tmp_path, sample_path):
    import tarfile

    with tarfile.open(tmp_path / "news-2016.tar.gz", "w:gz") as tar:
        tar.add(sample_path / "news" / "2016" / "03", arcname="news/2016/03")
    (tmp_path / "README.md").write_text("# about\n")
    from_folder = read_archive(tmp_path)
    from_file = read_archive(tmp_path / "news-2016.tar.gz")
    assert len(from_folder.events) == len(from_file.events) > 500
    assert all(i.startswith("news/2016/03/") for i in from_folder.events)


def test_the_parse_cache_rereads_only_what_changed(archive_copy, tmp_path, monkeypatch):
    import os
    import tarfile

    with tarfile.open(archive_copy / "news-2015.tar.gz", "w:gz") as tar:  # a tarball beside the folders
        tar.add(archive_copy / "news" / "2015", arcname="news/2015")
    (archive_copy / "news" / "2015").rename(tmp_path / "moved-2015")
    (archive_copy / "news/2016/03/14/broken.md").write_text("### [2016-03-14](/x)\n\nno headline\n")
    cache = tmp_path / "cache"
    plain = read_archive(archive_copy)
    first = read_archive(archive_copy, cache=cache)
    assert first == plain and len(first.skipped) == 1 and len(first.digests) == len(first.events) == 1155

    parsed: list[str] = []
    real = recommender.archive.parse_file
    monkeypatch.setattr(recommender.archive, "parse_file", lambda i, *a: parsed.append(i) or real(i, *a))
    assert read_archive(archive_copy, cache=cache) == plain and parsed == []  # nothing parsed again

    event = archive_copy / PUTIN
    event.write_text(event.read_text().replace("# Russian President", "# Russia's President"))
    os.utime(event, ns=(1, 1))  # even a file put back with an old time is seen: its size changed
    (archive_copy / "news-2015.tar.gz").touch()
    again = read_archive(archive_copy, cache=cache)
    assert again.events[PUTIN].headline.startswith("Russia's President")
    assert again.digests[PUTIN] != plain.digests[PUTIN] and again.fingerprint != plain.fingerprint
    day = {p.relative_to(archive_copy).as_posix() for p in event.parent.glob("*.md")}
    assert set(parsed) == day | {i for i in plain.events if i.startswith("news/2015/")}
    assert again == read_archive(archive_copy)


def test_validate_missing_archive_is_one_line():
    result = CliRunner().invoke(app, ["validate", "--archive", "/nonexistent/archive"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: archive not found: /nonexistent/archive"


@pytest.mark.slow
def test_full_archive_matches_gold(full_archive):
    archive = full_archive
    assert len(archive.events) == 113_512
    assert archive.skipped == []
    with gzip.open(FULL / "gold.jsonl.gz") as handle:
        gold = [json.loads(line) for line in handle]
    assert len(gold) == 33_071
    assert sum(1 for e in archive.events.values() if e.related) == 33_071
    mismatched = [g["id"] for g in gold if archive.curated_ids(archive.events[g["id"]]) != g["related"]]
    assert mismatched == []
    assert archive.unresolved_links() == []

"""The event file's format in one module: the reader's sections and the writers' sections are the same ones,
with the file's line endings kept."""

from __future__ import annotations

from recommender.eventfile import (
    RELATED_HEADING,
    SUGGESTED_HEADING,
    append_block,
    heading_key,
    line_ending,
    parse_event,
    related_ids,
    sections,
)
from recommender.suggest.write import section_spans, with_section

TEXT = (
    "### [2016-03-14](https://example.org)\r\n"
    "# A headline\r\n\r\nThe summary.\r\n\r\n"
    "### RELATED\r\n\r\n1. [One](/news/2016/03/2/one.md) _Context: Syria_\r\n2. [Gone](/news/2016/3/3/gone.md)\r\n\r\n"
    "### suggested related:\r\n\r\n1. [Two](/news/2016/03/04/two.md)\r\n"
)


def test_the_reader_and_the_writers_key_sections_alike():
    assert heading_key("### Suggested Related: ") == SUGGESTED_HEADING
    assert heading_key("### RELATED") == RELATED_HEADING
    assert heading_key("# A headline") is None
    found = {s.name: s for s in sections(TEXT)}
    assert set(found) == {RELATED_HEADING, SUGGESTED_HEADING}
    event = parse_event("news/2016/03/14/x.md", TEXT)
    assert len(event.related) == len(found[RELATED_HEADING].items) == 2
    assert len(event.suggested) == len(found[SUGGESTED_HEADING].items) == 1
    assert section_spans(TEXT) == [(found[SUGGESTED_HEADING].start, found[SUGGESTED_HEADING].end)]


def test_related_ids_are_the_links_that_resolve():
    event = parse_event("news/2016/03/14/x.md", TEXT)
    known = {"/news/2016/03/2/one.md": "news/2016/03/02/one.md"}
    assert related_ids(event, known.get) == frozenset({"news/2016/03/02/one.md"})


def test_written_sections_keep_the_files_line_endings():
    assert line_ending(TEXT) == "\r\n" and line_ending("a\nb\n") == "\n"
    assert append_block("a\r\nb", "### X\r\n") == "a\r\nb\r\n\r\n### X\r\n"
    assert append_block("", "### X\n") == "### X\n"
    removed = with_section(TEXT, None)
    assert "suggested" not in removed.lower() and removed.endswith("gone.md)\r\n")
    replaced = with_section(TEXT, "### Suggested related:\n\n1. [Three](/news/2016/03/05/three.md)\n")
    assert "\r\n1. [Three](/news/2016/03/05/three.md)\r\n" in replaced and "\n\n" not in replaced.replace("\r\n", "")

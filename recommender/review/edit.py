"""The file edit behind a review decision, pure: an item added to an event file's `### Related:` list in the
archive's own format, the decided item dropped from its `### Suggested related:` section, and nothing else.

Every byte outside those two places is kept (CRLF files stay CRLF, a missing final newline stays missing). The
edit is refused when the file's digest is no longer the one the editor's page was made from, so that a change
made meanwhile (by another editor, or by hand) is never overwritten; the write itself is atomic.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from recommender.atomic import atomic_path
from recommender.eventfile import (
    LIST_LINK,
    RELATED_HEADING,
    SUGGESTED_HEADING,
    Section,
    append_block,
    line_ending,
    link_key,
    related_line,
    sections,
)

RELATED_SECTION = "### Related:"


class StaleFileError(Exception):
    """The file changed since the page was shown: the edit is refused, nothing is written."""


def digest(data: bytes) -> str:
    """What a page remembers of a file, to tell whether it changed since: SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


def _number_of(line: str) -> int:
    match = re.match(r"\s*(\d+)\.", line)
    return int(match.group(1)) if match else 0


def item_target(line: str) -> str | None:
    """The link key of a list item's target (`link_key`), or None for a line that is no list link."""
    match = LIST_LINK.match(line.strip())
    return link_key(match.group("href")) if match else None


def add_related(text: str, event_id: str, headline: str, context: str) -> str:
    """`text` with one item appended to its Related list (numbered after the list's last item), or with a new
    `### Related:` section holding it (before a Suggested related section, else at the end of the file)."""
    eol = line_ending(text)
    related = next((s for s in sections(text) if s.name == RELATED_HEADING), None)
    if related is not None:
        last = text[related.items[-1][0] : related.items[-1][1]] if related.items else ""
        line = related_line(_number_of(last) + 1 if last else 1, headline, event_id, context)
        end = related.end
        body = text[related.start : end]
        if not related.items:  # a heading alone: the list starts after one blank line
            return text[:end] + ("" if body.endswith(("\n", "\r")) else eol) + eol + line + eol + text[end:]
        if body.endswith(("\n", "\r")):
            return text[:end] + line + eol + text[end:]
        return text[:end] + eol + line + text[end:]  # the list ends the file without a final newline
    block = f"{RELATED_SECTION}{eol}{eol}{related_line(1, headline, event_id, context)}{eol}"
    suggested = next((s for s in sections(text) if s.name == SUGGESTED_HEADING), None)
    if suggested is not None:
        return text[: suggested.start] + block + eol + text[suggested.start :]
    return append_block(text, block)


def drop_suggested(text: str, event_id: str) -> str:
    """`text` without the Suggested related items that link to `event_id`; the section goes when no item is
    left in it (with the blank lines before it that it brought)."""
    key = link_key(event_id)
    for section in sections(text):
        if section.name != SUGGESTED_HEADING:
            continue
        gone = [(a, b) for a, b in section.items if item_target(text[a:b]) == key]
        if not gone:
            continue
        if len(gone) == len(section.items):
            return _without_section(text, section)
        for a, b in reversed(gone):
            text = text[:a] + text[b:]
        return text
    return text


def _without_section(text: str, section: Section) -> str:
    before, after = text[: section.start], text[section.end :]
    if after.strip():
        return before + after.lstrip("\r\n")
    eol = line_ending(text)
    kept = before.rstrip("\r\n")
    return kept + eol if kept else ""


def accept(text: str, event_id: str, headline: str, context: str) -> str:
    """The file's text once the editor accepts `event_id` into its Related list."""
    return drop_suggested(add_related(text, event_id, headline, context), event_id)


def read_checked(path: Path, expected: str) -> bytes:
    """The file's bytes, if they are still those the page was made from (`expected`: their digest)."""
    data = path.read_bytes()
    if digest(data) != expected:
        raise StaleFileError(
            f"{path.name} changed since this page was shown (another editor, or an edit by hand): nothing was "
            "written; reload the page to see the file as it is now"
        )
    return data


def write_atomic(path: Path, data: bytes) -> None:
    """Replace the file's bytes at once (a temporary file renamed over it, its permissions kept)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)

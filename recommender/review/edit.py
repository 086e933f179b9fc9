"""The file edit behind a review decision, pure: an item added to an event file's `### Related:` list in the
archive's own format, the decided item dropped from its `### Suggested related:` section, and nothing else.

Every byte outside those two places is kept (CRLF files stay CRLF, a missing final newline stays missing). The
edit is refused when the file's digest is no longer the one the editor's page was made from, so that a change
made meanwhile (by another editor, or by hand) is never overwritten; the write itself is atomic.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from recommender.archive import (
    LIST_LINK,
    NEWS_PATH,
    RELATED_HEADING,
    SUGGESTED_HEADING,
    escape_text,
    link_key,
    link_text,
)
from recommender.atomic import atomic_path, writable

RELATED_SECTION = "### Related:"


class StaleFileError(Exception):
    """The file changed since the page was shown: the edit is refused, nothing is written."""


def digest(data: bytes) -> str:
    """What a page remembers of a file, to tell whether it changed since: SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


def related_href(event_id: str) -> str:
    """The link to an event as the archive's Related lists write it: `/news/YYYY/MM/D/slug.md` (month padded to
    two digits, day not), the characters a link target cannot hold bare percent-encoded."""
    from urllib.parse import quote

    match = NEWS_PATH.match(event_id)
    path = event_id
    if match:
        year, month, day, rest = match.groups()
        path = f"news/{year}/{int(month):02d}/{int(day)}/{rest}"
    return "/" + quote(path, safe="/!$&'*+,;=:@~-._")


def clean_context(text: str) -> str:
    """An editor's Context text as one line: no line breaks, single spaces, no stray commas."""
    items = [" ".join(part.split()) for part in text.replace("\r", " ").replace("\n", " ").split(",")]
    return ", ".join(item for item in items if item)


def related_line(number: int, headline: str, event_id: str, context: str) -> str:
    """One Related item, as the archive writes it: `N. [headline](/news/YYYY/MM/D/slug.md) _Context: ..._`, its
    text and Context escaped (`escape_text`) so that the archive reader reads back exactly these."""
    items = [escape_text(item) for item in clean_context(context).split(", ") if item]
    line = f"{number}. [{link_text(headline)}]({related_href(event_id)})"
    return line + (f" _Context: {', '.join(items)}_" if items else "")


@dataclass(frozen=True)
class Section:
    """A `### ` section of a file: where its heading starts, where its last non-blank line ends (end of line
    included), and its list items as (start, end) spans of whole lines."""

    name: str
    start: int
    end: int
    items: tuple[tuple[int, int], ...]


def sections(text: str) -> list[Section]:
    """Every `### ` section after the first line (the date link), as the archive reader keys them."""
    found: list[Section] = []
    current: dict[str, object] | None = None
    offset = 0
    lines = text.splitlines(keepends=True)
    for number, line in enumerate(lines):
        stripped = line.strip()
        if number > 0 and stripped.startswith("### "):
            if current is not None:
                found.append(_section(current))
            name = stripped[4:].strip().rstrip(":").strip().lower()
            current = {"name": name, "start": offset, "end": offset + len(line), "items": []}
        elif current is not None and stripped:
            current["end"] = offset + len(line)
            if LIST_LINK.match(line):
                current["items"].append((offset, offset + len(line)))  # type: ignore[attr-defined]
        offset += len(line)
    if current is not None:
        found.append(_section(current))
    return found


def _section(raw: dict[str, object]) -> Section:
    return Section(str(raw["name"]), int(raw["start"]), int(raw["end"]), tuple(raw["items"]))  # type: ignore[call-overload, arg-type]


def _eol(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


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
    eol = _eol(text)
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
    if text and not text.endswith("\n"):
        text += eol
    if text.strip() and not text.endswith(eol + eol):
        text += eol
    return text + block


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
    eol = _eol(text)
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


class ReadOnlyFileError(Exception):
    """The file is marked read-only: a decision never replaces it (as `suggest --write` leaves it alone)."""


def check_writable(path: Path) -> None:
    if not writable(path):
        raise ReadOnlyFileError(f"{path.name} is read-only: nothing was written (make it writable to decide here)")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace the file's bytes at once (a temporary file renamed over it, its permissions kept)."""
    check_writable(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)

"""The event file's format, read and write: the date link, the `# headline`, the summary, the `### ` sections
(keyed by `heading_key`: any case, colon optional), list items and their links (`link_key` reads a target,
`related_href` writes one), `_Context:_` items, and line endings (a file written keeps its own).

`parse_event` reads a file's text into an `Event`; `sections` finds each section's bytes, for the edits that
touch one section and keep every other byte (review's decisions, `suggest --write`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote, unquote

DATE_LINK = re.compile(r"^###\s*\[(?P<date>[^\]]*)\]\((?P<href>[^)]*)\)")
ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
LIST_LINK = re.compile(r"^\s*\d+\.\s*\[(?P<text>.*)\]\((?P<href>[^)\s]*)\)\s*(?P<rest>.*)$")
CONTEXT = re.compile(r"_Context:\s*(?P<items>.*?)\s*_\s*$")
NEWS_PATH = re.compile(r"^news/(\d{4})/(\d{1,2})/(\d{1,2})/(.+)$")

RELATED_HEADING = "related"
SUGGESTED_HEADING = "suggested related"
SOURCE_HEADING = "source"


@dataclass(frozen=True)
class Source:
    name: str
    url: str | None


@dataclass(frozen=True)
class RelatedLink:
    """One curated (or suggested) link: the link text, its target as written, and its `_Context:_` items."""

    text: str
    href: str
    context: tuple[str, ...] = ()


@dataclass(frozen=True)
class Event:
    id: str
    date: dt.date
    headline: str
    summary: str = ""
    sources: tuple[Source, ...] = ()
    related: tuple[RelatedLink, ...] = ()
    suggested: tuple[RelatedLink, ...] = ()

    @property
    def text(self) -> str:
        return event_text(self.headline, self.summary)


def event_text(headline: str, summary: str) -> str:
    """What the embedder and every text signal see of an event: headline and summary, never a Related section."""
    return f"{headline} {summary}".strip()


def link_key(href: str) -> str:
    """A canonical key for an event path or link: no leading slash, month and day without zero padding,
    percent-encoding decoded (how a link writes a target with spaces or parentheses)."""
    path = unquote(href.strip().split("#", 1)[0]).lstrip("/")
    match = NEWS_PATH.match(path)
    if match:
        year, month, day, rest = match.groups()
        return f"news/{year}/{int(month)}/{int(day)}/{rest}"
    return path


def padded_variants(key: str) -> tuple[str, ...]:
    """The ids a link key (`link_key`) can stand for when only the zero padding of its month and day differs."""
    match = NEWS_PATH.match(key)
    if match is None:
        return ()
    year, month, day, rest = match.groups()
    months, days = {month, month.zfill(2)}, {day, day.zfill(2)}
    return tuple(f"news/{year}/{m}/{d}/{rest}" for m in sorted(months) for d in sorted(days))


class EventParseError(ValueError):
    """An event file that cannot be parsed; the message is the reason."""


def parse_event(event_id: str, text: str) -> Event:
    """Parse one event file's text. Raises EventParseError with the reason when it is not a valid event."""
    lines = text.lstrip("\ufeff").splitlines()
    first = lines[0].strip() if lines else ""
    match = DATE_LINK.match(first)
    if not match:
        raise EventParseError("first line is not a date link '### [YYYY-MM-DD](...)'")
    date = _parse_date(match.group("date").strip())
    headline = ""
    summary: list[list[str]] = []
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines[1:]:
        stripped = line.strip()
        heading = heading_key(line)
        if heading is not None:
            current = sections.setdefault(heading, [])
        elif current is not None:
            current.append(stripped)
        elif stripped.startswith("# ") and not headline:
            headline = stripped[2:].strip()
        elif headline and stripped:
            if not summary or not summary[-1]:
                summary.append([])
            summary[-1].append(stripped)
        elif headline and summary and summary[-1]:
            summary.append([])  # a blank line ends a paragraph
    if not headline:
        raise EventParseError("no '# headline' line")
    return Event(
        id=event_id,
        date=date,
        headline=headline,
        summary="\n\n".join(" ".join(p) for p in summary if p),
        sources=tuple(_sources(sections.get(SOURCE_HEADING, []))),
        related=tuple(_links(sections.get(RELATED_HEADING, []))),
        suggested=tuple(_links(sections.get(SUGGESTED_HEADING, []))),
    )


def _parse_date(value: str) -> dt.date:
    match = ISO_DATE.match(value)
    if not match:
        raise EventParseError(f"bad date {value!r} in the date link (expected YYYY-MM-DD)")
    try:
        return dt.date(*(int(g) for g in match.groups()))
    except ValueError as exc:
        raise EventParseError(f"bad date {value!r} in the date link ({exc})") from None


def _sources(lines: list[str]) -> Iterator[Source]:
    for line in lines:
        match = LIST_LINK.match(line)
        if match:
            url = match.group("href").strip()
            yield Source(name=match.group("text").strip(), url=None if url in ("", "#") else url)


def _links(lines: list[str]) -> Iterator[RelatedLink]:
    for line in lines:
        match = LIST_LINK.match(line)
        if not match:
            continue
        context = CONTEXT.search(match.group("rest"))
        items = context.group("items").split(",") if context else []
        yield RelatedLink(
            text=match.group("text").strip(),
            href=match.group("href").strip(),
            context=tuple(i.strip() for i in items if i.strip()),
        )


def related_href(event_id: str) -> str:
    """The link to an event as the archive's Related lists write it: `/news/YYYY/MM/D/slug.md` (month padded to
    two digits, day not), the characters a link target cannot hold bare percent-encoded."""
    match = NEWS_PATH.match(event_id)
    path = event_id
    if match:
        year, month, day, rest = match.groups()
        path = f"news/{year}/{int(month):02d}/{int(day)}/{rest}"
    return "/" + quote(path, safe="/!$&'*+,;=:@~-._")


def link_target(event_id: str) -> str:
    """The link to an event as a Suggested related section writes it: `/` + id, the id's own padding (unlike
    `related_href`, the Related lists' form; `link_key` reads both as one event), with the characters a markdown
    link target cannot hold bare percent-encoded (spaces, parentheses, `<>`, `%`)."""
    return "/" + quote(event_id, safe="/!$&'*+,;=:@~-._")


def clean_context(text: str) -> str:
    """An editor's Context text as one line: no line breaks, single spaces, no stray commas."""
    items = [" ".join(part.split()) for part in text.replace("\r", " ").replace("\n", " ").split(",")]
    return ", ".join(item for item in items if item)


def related_line(number: int, headline: str, event_id: str, context: str) -> str:
    """One Related item, as the archive writes it: `N. [headline](/news/YYYY/MM/D/slug.md) _Context: ..._`."""
    text = " ".join(headline.split())
    context = clean_context(context)
    return f"{number}. [{text}]({related_href(event_id)})" + (f" _Context: {context}_" if context else "")


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
        name = heading_key(line) if number > 0 else None
        if name is not None:
            if current is not None:
                found.append(_section(current))
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


def line_ending(text: str) -> str:
    """The file's line ending (CRLF if any line has it), which every line written into it takes."""
    return "\r\n" if "\r\n" in text else "\n"


def heading_key(line: str) -> str | None:
    """A `### ` heading's name as the reader keys sections (lower case, no colon), or None for other lines."""
    stripped = line.strip()
    return stripped[4:].strip().rstrip(":").strip().lower() if stripped.startswith("### ") else None


def append_block(text: str, block: str) -> str:
    """`text` with `block` (in the file's line endings) appended after one blank line; a missing final newline
    is added first."""
    eol = line_ending(text)
    if text and not text.endswith("\n"):
        text += eol
    if text.strip() and not text.endswith(eol + eol):
        text += eol
    return text + block


def related_ids(event: Event, resolve: Callable[[str], str | None]) -> frozenset[str]:
    """The ids of an event's Related list as its file has it now (`resolve`: a link to an id, None for a link
    to an event not known); every reader of a file's curated list asks this."""
    return frozenset(i for i in map(resolve, (link.href for link in event.related)) if i is not None)

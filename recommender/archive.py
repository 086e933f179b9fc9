"""Read an archive of event markdown files into typed `Event`s.

An archive is a folder of `.md` event files, a `.tar.gz` of them, or a folder of such tarballs. An event
file's first line is its date link (`### [YYYY-MM-DD](...)`); other markdown (a README) is ignored. Files
that look like events but cannot be read are reported in `Archive.skipped` with their reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

DATE_LINK = re.compile(r"^###\s*\[(?P<date>[^\]]*)\]\((?P<href>[^)]*)\)")
ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
LIST_LINK = re.compile(r"^\s*\d+\.\s*\[(?P<text>.*)\]\((?P<href>[^)\s]*)\)\s*(?P<rest>.*)$")
CONTEXT = re.compile(r"_Context:\s*(?P<items>.*?)\s*_\s*$")
NEWS_PATH = re.compile(r"^news/(\d{4})/(\d{1,2})/(\d{1,2})/(.+)$")

RELATED_HEADING = "related"
SUGGESTED_HEADING = "suggested related"
SOURCE_HEADING = "source"


class ArchiveError(Exception):
    """The archive path cannot be read at all (missing, not an archive)."""


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

    @property
    def target_key(self) -> str:
        return link_key(self.href)


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
        """What the embedder and every text signal see: headline and summary, never a Related section."""
        return f"{self.headline} {self.summary}".strip()

    @property
    def href(self) -> str:
        """The link to this event as the archive's Related lists write it."""
        return "/" + self.id


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class Archive:
    events: dict[str, Event]
    skipped: list[SkippedFile] = field(default_factory=list)
    fingerprint: str = ""
    packed: bool = False  # some events were read from tarballs: they cannot be written in place
    _keys: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self._keys:
            self._keys = {link_key(event_id): event_id for event_id in self.events}

    def resolve(self, href: str) -> str | None:
        """The id of the event a link points to, whatever its day padding or leading slash; None if absent."""
        return self._keys.get(link_key(href))

    def curated_ids(self, event: Event) -> list[str]:
        """The event's curated Related list as resolved ids, in order (unresolved links left out)."""
        ids = [self.resolve(link.href) for link in event.related]
        return [i for i in ids if i is not None]

    def unresolved_links(self) -> list[tuple[str, str]]:
        """(event id, href) of every curated link whose target is not in the archive."""
        return [
            (event.id, link.href)
            for event in self.events.values()
            for link in event.related
            if self.resolve(link.href) is None
        ]


def link_key(href: str) -> str:
    """A canonical key for an event path or link: no leading slash, month and day without zero padding."""
    path = href.strip().split("#", 1)[0].lstrip("/")
    match = NEWS_PATH.match(path)
    if match:
        year, month, day, rest = match.groups()
        return f"news/{year}/{int(month)}/{int(day)}/{rest}"
    return path


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
        if stripped.startswith("### "):
            current = sections.setdefault(stripped[4:].strip().rstrip(":").strip().lower(), [])
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


def read_archive(path: str | Path) -> Archive:
    """Read every event under `path`: a folder of .md files, a .tar.gz of them, or a folder of tarballs."""
    root = Path(path)
    if not root.exists():
        raise ArchiveError(f"archive not found: {root}")
    events: dict[str, Event] = {}
    skipped: list[SkippedFile] = []
    digest = hashlib.sha256()
    packed = False
    for event_id, display, data in sorted(_files(root), key=lambda f: f[0]):
        packed = packed or display != str(root / event_id) and display != str(root)
        if isinstance(data, str):
            skipped.append(SkippedFile(display, data))
            continue
        head = data[:512].decode("utf-8", errors="replace").lstrip("\ufeff").lstrip()
        if not DATE_LINK.match(head.split("\n", 1)[0].strip()):
            continue  # not an event file (a README, notes): ignored, not skipped
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            skipped.append(SkippedFile(display, f"bad encoding: invalid UTF-8 at byte {exc.start}"))
            continue
        try:
            event = parse_event(event_id, text)
        except EventParseError as exc:
            skipped.append(SkippedFile(display, str(exc)))
            continue
        if event_id in events:
            skipped.append(SkippedFile(display, f"duplicate id {event_id}"))
            continue
        events[event_id] = event
        digest.update(event_id.encode() + b"\0" + hashlib.sha256(data).digest())
    if not events and not skipped and not _looks_like_archive(root):
        raise ArchiveError(f"no event files (.md or .tar.gz) under {root}")
    return Archive(events=events, skipped=skipped, fingerprint=digest.hexdigest()[:16], packed=packed)


def _looks_like_archive(root: Path) -> bool:
    return root.is_dir() and any(root.rglob("*.md"))


def _files(root: Path) -> Iterable[tuple[str, str, bytes | str]]:
    """(id, path to show in messages, bytes, or the reason it could not be read) of every candidate file."""
    if root.is_file():
        if root.name.endswith((".tar.gz", ".tgz")):
            yield from _tar_files(root)
        elif root.suffix == ".md":
            yield root.name, str(root), root.read_bytes()
        else:
            raise ArchiveError(f"not an archive: {root} (expected a folder, a .tar.gz or a .md file)")
        return
    for file in root.rglob("*"):
        if file.is_file() and file.suffix == ".md":
            yield file.relative_to(root).as_posix(), str(file), file.read_bytes()
        elif file.is_file() and file.name.endswith((".tar.gz", ".tgz")):
            yield from _tar_files(file)


def _tar_files(path: Path) -> Iterator[tuple[str, str, bytes | str]]:
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".md"):
                    handle = tar.extractfile(member)
                    if handle is not None:
                        name = member.name.lstrip("./")
                        yield name, f"{path}:{name}", handle.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        # A damaged tarball is reported and skipped; the events read before the damage are kept.
        yield path.name, str(path), f"unreadable tarball: {exc}"

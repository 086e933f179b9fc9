"""Read an archive of event markdown files into typed `Event`s.

An archive is a folder of `.md` event files, a `.tar.gz` of them, or a folder of such tarballs. An event
file's first line is its date link (`### [YYYY-MM-DD](...)`); other markdown (a README) is ignored. Every
other file that could be an event but is not read is reported in `Archive.skipped` with its reason: bad
encoding or syntax, not text, over `MAX_FILE` bytes, an id over `MAX_ID` characters, a `.MD` name, a symlink.

Ids are confined to the archive: an id is the file's path under the root, normalised (no `.`, no empty
parts); a tarball member whose path has a `..` part is skipped, and symlinks (to files or folders, loops
included) are never followed, so that nothing outside the archive is read as an event, nor written through.
Ids that differ only in the zero padding of month or day name one link: `Archive.warnings` says so.
"""

from __future__ import annotations

import hashlib
import pickle
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from recommender.atomic import atomic_path
from recommender.eventfile import (
    CONTEXT,
    DATE_LINK,
    ISO_DATE,
    LIST_LINK,
    NEWS_PATH,
    RELATED_HEADING,
    SOURCE_HEADING,
    SUGGESTED_HEADING,
    Event,
    EventParseError,
    RelatedLink,
    Source,
    event_text,
    id_in_path,
    in_event_layout,
    link_key,
    padded_variants,
    parse_event,
)

__all__ = [  # the event file's names, read here, are found here too
    "CONTEXT",
    "DATE_LINK",
    "ISO_DATE",
    "LIST_LINK",
    "NEWS_PATH",
    "RELATED_HEADING",
    "SOURCE_HEADING",
    "SUGGESTED_HEADING",
    "Archive",
    "ArchiveError",
    "Event",
    "EventParseError",
    "archive_fingerprint",
    "RelatedLink",
    "Source",
    "event_text",
    "id_in_path",
    "in_event_layout",
    "link_key",
    "padded_variants",
    "parse_event",
    "read_archive",
]

MAX_ID = 300  # characters of an event id: a file whose id is longer is skipped
MAX_FILE = 1_000_000  # bytes of an event file: a larger one is skipped


class ArchiveError(Exception):
    """The archive path cannot be read at all (missing, not an archive)."""


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
    digests: dict[str, str] = field(default_factory=dict)  # id -> SHA-256 of the event file's bytes
    warnings: list[str] = field(default_factory=list)  # read, but worth an editor's look (duplicate slugs)

    @cached_property
    def _keys(self) -> dict[str, str]:
        return {link_key(event_id): event_id for event_id in self.events}

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


def read_archive(path: str | Path, cache: Path | None = None) -> Archive:
    """Read every event under `path`: a folder of .md files, a .tar.gz of them, or a folder of tarballs.

    With a `cache` folder, what each tarball or folder of .md files parsed to is kept there and reused while the
    tarball, or every file of the folder, keeps its size and modification time.
    """
    root = Path(path)
    if not root.exists():
        raise ArchiveError(f"archive not found: {root}")
    files: list[ParsedFile] = []
    for unit, key, read in _units(root, files):
        files.extend(_parse_unit(root, unit, key, read, cache))
    events: dict[str, Event] = {}
    digests: dict[str, str] = {}
    skipped: list[SkippedFile] = []
    packed = False
    for file in sorted(files, key=lambda f: f.id):
        packed = packed or file.display != str(root / file.id) and file.display != str(root)
        if isinstance(file.outcome, str):
            skipped.append(SkippedFile(file.display, file.outcome))
        elif file.outcome is None:
            continue  # not an event file (a README, notes): ignored, not skipped
        elif file.id in events:
            skipped.append(SkippedFile(file.display, f"duplicate id {file.id}"))
        else:
            events[file.id] = file.outcome
            digests[file.id] = file.sha256.hex()
    if not events and not skipped and not _looks_like_archive(root):
        raise ArchiveError(f"no event files (.md or .tar.gz) under {root}")
    return Archive(
        events=events,
        skipped=skipped,
        fingerprint=archive_fingerprint(events),
        packed=packed,
        digests=digests,
        warnings=_duplicate_slugs(events),
    )


def archive_fingerprint(events: dict[str, Event]) -> str:
    """The archive's version as an index holds it: a digest of every event's id, date, text, sources and Related
    links (targets and contexts), in id order. A file's Suggested section, its layout and line endings are left
    out: `suggest --write` changes no event an index holds, so the index stays this archive's."""
    total = hashlib.sha256()
    for event_id in sorted(events):
        event = events[event_id]
        parts = [event_id, event.date.isoformat(), event.text]
        parts += [f"{source.name}\x1f{source.url or ''}" for source in event.sources]
        parts += [f"{link.href}\x1f{'|'.join(link.context)}" for link in event.related]
        total.update("\x1e".join(parts).encode("utf-8") + b"\0")
    return total.hexdigest()[:16]


def _duplicate_slugs(events: dict[str, Event]) -> list[str]:
    by_key: dict[str, list[str]] = {}
    for event_id in events:
        by_key.setdefault(link_key(event_id), []).append(event_id)
    return [
        f"duplicate slug: {', '.join(ids)} differ only in zero padding; a link to any of them resolves to one"
        for ids in by_key.values()
        if len(ids) > 1
    ]


def confined_id(name: str) -> str | None:
    """`name` (a path under the archive root, `/`-separated) as an id: no leading `/`, no `.` or empty parts;
    None when a `..` part could take it out of the archive."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        return None
    return "/".join(parts)


def _id_problem(event_id: str | None, name: str) -> str | None:
    """Why the file at `name` cannot be an event whatever it holds, or None."""
    if event_id is None:
        return "its path has a '..' part: it would lie outside the archive"
    if not event_id:
        return "empty path"
    if len(event_id) > MAX_ID:
        return f"its id has {len(event_id):,} characters, more than {MAX_ID}"
    if any(ord(c) < 32 or c == "\x7f" for c in event_id):
        return "its path holds a control character"
    if name.endswith(".md"):
        return None
    return f"its name ends in {name[-3:]!r}, not '.md': rename it to be read"


def _is_markdown(name: str) -> bool:
    return name.lower().endswith(".md")


class ParsedFile(NamedTuple):
    """One file of the archive: its id, the path shown in messages, and the Event, the reason it was skipped,
    or None for markdown that is not an event."""

    id: str
    display: str
    outcome: Event | str | None
    sha256: bytes = b""


def parse_file(event_id: str, display: str, data: bytes | str) -> ParsedFile:
    """Parse one file's bytes (or pass on the reason it could not be read)."""
    if isinstance(data, str):
        return ParsedFile(event_id, display, data)
    head = data[:512].decode("utf-8", errors="replace").lstrip("\ufeff").lstrip()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not DATE_LINK.match(head.split("\n", 1)[0].strip()):
            return ParsedFile(event_id, display, f"not a text file: invalid UTF-8 at byte {exc.start}")
        return ParsedFile(event_id, display, f"bad encoding: invalid UTF-8 at byte {exc.start}")
    if not DATE_LINK.match(head.split("\n", 1)[0].strip()):
        return ParsedFile(event_id, display, None)
    try:
        event = parse_event(event_id, text)
    except EventParseError as exc:
        return ParsedFile(event_id, display, str(exc))
    return ParsedFile(event_id, display, event, hashlib.sha256(data).digest())


# What a cache entry was parsed with: a change to this module or to the file format's invalidates every entry.
_PARSER = hashlib.sha256(
    Path(__file__).read_bytes() + Path(__file__).with_name("eventfile.py").read_bytes()
).hexdigest()[:16]

FileReader = Callable[[], Iterable[tuple[str, str, bytes | str]]]


def _parse_unit(root: Path, unit: Path, key: tuple[Any, ...], read: FileReader, cache: Path | None) -> list[ParsedFile]:
    if cache is None:
        return [parse_file(*file) for file in read()]
    entry = cache / (hashlib.sha256(f"{root.resolve()}\0{unit.resolve()}".encode()).hexdigest()[:32] + ".pickle")
    stamp = (_PARSER, key)
    try:
        stored, parsed = pickle.loads(entry.read_bytes())
        if stored == stamp:
            return list(parsed)
    except Exception:  # noqa: BLE001  (no entry yet, or a damaged one, whatever it raises: parse again)
        pass
    parsed = [parse_file(*file) for file in read()]
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with atomic_path(entry) as tmp:
            tmp.write_bytes(pickle.dumps((stamp, parsed), protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:
        pass  # a cache that cannot be written only makes the next read slower
    return parsed


def _looks_like_archive(root: Path) -> bool:
    return root.is_dir() and any(root.rglob("*.md"))


def _units(root: Path, rejected: list[ParsedFile]) -> Iterator[tuple[Path, tuple[Any, ...], FileReader]]:
    """What is read (and cached) together: each tarball, each folder of .md files. Yields (path, a key that
    changes when any of its files does, a reader of (id, path to show, bytes or why unreadable)). Files that
    cannot be events (symlinks, `.MD`, too large, ...) are added to `rejected` with their reason."""
    if root.is_file():
        if root.name.endswith((".tar.gz", ".tgz")):
            yield root, _stat_key(root), lambda: _tar_files(root)
        elif root.suffix == ".md":
            yield root, _stat_key(root), lambda: [(root.name, str(root), _read_limited(root))]
        else:
            raise ArchiveError(f"not an archive: {root} (expected a folder, a .tar.gz or a .md file)")
        return
    folders: dict[Path, list[Path]] = {}
    for file in sorted(root.rglob("*")):  # rglob does not descend into symlinked folders
        name = file.relative_to(root).as_posix()
        if file.is_symlink():
            if _is_markdown(file.name) or file.name.endswith((".tar.gz", ".tgz")) or _is_dir_or_loop(file):
                rejected.append(ParsedFile(name, str(file), _symlink_reason(file)))
        elif file.is_file() and _is_markdown(file.name):
            problem = _id_problem(name, file.name)
            if problem is None and file.stat().st_size > MAX_FILE:
                problem = f"{file.stat().st_size:,} bytes, more than an event's {MAX_FILE:,}"
            if problem is None:
                folders.setdefault(file.parent, []).append(file)
            else:
                rejected.append(ParsedFile(name, str(file), problem))
        elif file.is_file() and file.name.endswith((".tar.gz", ".tgz")):
            yield file, _stat_key(file), lambda file=file: _tar_files(file)  # type: ignore[misc]
    for folder, files in folders.items():
        key = tuple((f.name, *_stat_key(f)) for f in files)
        yield (
            folder,
            key,
            lambda files=files: ((f.relative_to(root).as_posix(), str(f), _read_limited(f)) for f in files),  # type: ignore[misc]
        )


def _is_dir_or_loop(link: Path) -> bool:
    try:
        return link.resolve(strict=True).is_dir()
    except (OSError, RuntimeError):  # a loop or a dangling link
        return True


def _symlink_reason(link: Path) -> str:
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):
        return "symlink loop or dangling symlink"
    kind = "folder" if target.is_dir() else "file"
    return f"symlinked {kind}: symlinks are not followed (copy the {kind} into the archive to read it)"


def _read_limited(path: Path) -> bytes | str:
    """The file's bytes, or why not: unreadable, or over MAX_FILE bytes (it may have grown since listed)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE + 1)
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    if len(data) > MAX_FILE:
        return f"more than an event's {MAX_FILE:,} bytes"
    return data


def _stat_key(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _tar_files(path: Path) -> Iterator[tuple[str, str, bytes | str]]:
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if not _is_markdown(member.name) or member.isdir():
                    continue
                event_id = confined_id(member.name)
                display = f"{path}:{member.name}"
                problem = _id_problem(event_id, member.name)
                if problem is None and not member.isfile():
                    problem = "a link or special file in the tarball: not read"
                if problem is None and member.size > MAX_FILE:
                    problem = f"{member.size:,} bytes, more than an event's {MAX_FILE:,}"
                handle = tar.extractfile(member) if problem is None else None
                if handle is None:
                    yield event_id or member.name, display, problem or "cannot be extracted"
                else:
                    yield event_id or member.name, display, handle.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        # A damaged tarball is reported and skipped; the events read before the damage are kept.
        yield path.name, str(path), f"unreadable tarball: {exc}"

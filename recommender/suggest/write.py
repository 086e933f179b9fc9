"""Writing a `### Suggested related:` section into an event file, atomically, touching nothing else: every byte
outside the section is kept (line endings included), and the section is found as the archive reader finds it
(any case, colon optional, at the end of the file with or without a final newline)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from recommender.atomic import writable as _writable
from recommender.eventfile import (
    SUGGESTED_HEADING,
    EventParseError,
    append_block,
    line_ending,
    parse_event,
    related_ids,
    sections,
)
from recommender.locking import archive_lock
from recommender.suggest.batch import EventSuggestions
from recommender.suggest.render import markdown_block


@dataclass
class WriteOutcome:
    path: Path
    status: str  # added | replaced | removed | unchanged | skipped
    reason: str = ""
    offered: list[str] | None = None  # ids now in the file's Suggested section (None: the file was not changed)


def section_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each Suggested related section: its heading to its last non-blank line, end of line
    included (the blank lines before the next heading are not the section's)."""
    return [(s.start, s.end) for s in sections(text) if s.name == SUGGESTED_HEADING]


def with_section(text: str, block: str | None) -> str:
    """`text` with its Suggested related section replaced by `block` (or `block` appended; None: the section
    removed). The block takes the file's line endings; later duplicate sections are removed."""
    eol = line_ending(text)
    if block is not None and eol != "\n":
        block = block.replace("\n", eol)
    spans = section_spans(text)
    if not spans:
        return text if block is None else append_block(text, block)
    out = []
    last = 0
    for i, (start, end) in enumerate(spans):
        out.append(text[last:start])
        if i == 0 and block is not None:
            out.append(block)
        last = end
    tail = text[last:]
    new = "".join(out) + tail
    if block is None and not tail.strip():
        new = new.rstrip("\r\n") + eol  # a section removed from the end: no blank lines left behind
    return new


def write_suggestions(
    archive_root: Path, item: EventSuggestions, dry_run: bool, resolve: Callable[[str], str | None] = lambda h: h
) -> WriteOutcome:
    """Add, replace or (for an excluded event) remove the event file's Suggested related section, atomically;
    report, never raise, on I/O errors. The file is read again now: an item its Related list holds by now
    (`resolve`: a link to an id) is left out, unless it was asked for (`curated` marks it). The file is read
    and replaced under the archive's lock, so that no review decision made meanwhile is overwritten."""
    if dry_run:
        return _write_suggestions(archive_root, item, dry_run, resolve)
    with archive_lock(archive_root):
        return _write_suggestions(archive_root, item, dry_run, resolve)


def _write_suggestions(
    archive_root: Path, item: EventSuggestions, dry_run: bool, resolve: Callable[[str], str | None]
) -> WriteOutcome:
    path = archive_root / item.id
    try:
        data = path.read_bytes()
        old = data.decode("utf-8")
    except FileNotFoundError:
        return WriteOutcome(path, "skipped", "file vanished")
    except (OSError, UnicodeDecodeError) as exc:
        return WriteOutcome(path, "skipped", f"cannot read ({exc.__class__.__name__}: {exc})")
    had_section = bool(section_spans(old))
    if item.excluded:
        if not had_section:
            return WriteOutcome(path, "unchanged")
        new, status = with_section(old, None), "removed"
    else:
        item = _without_curated_now(item, old, resolve)
        if item.suggestions:
            new, status = with_section(old, markdown_block(item)), "replaced" if had_section else "added"
        else:  # nothing sure enough to offer (the minimum confidence): no section rather than an empty one
            new, status = with_section(old, None), "removed"
    offered = [s.id for s in item.suggestions]
    if new == old:
        return WriteOutcome(path, "unchanged", offered=offered if had_section else None)
    if dry_run:
        return WriteOutcome(path, status, offered=offered)
    try:
        if not _writable(path):
            return WriteOutcome(path, "skipped", "read-only file")
        _write_bytes(path, new.encode("utf-8"))
    except OSError as exc:
        return WriteOutcome(path, "skipped", f"cannot write ({exc.strerror or exc})")
    return WriteOutcome(path, status, offered=offered)


def _without_curated_now(item: EventSuggestions, text: str, resolve: Callable[[str], str | None]) -> EventSuggestions:
    try:
        event = parse_event(item.id, text)
    except EventParseError:
        return item
    curated = related_ids(event, resolve)
    kept = [s for s in item.suggestions if s.curated or s.id not in curated]
    if len(kept) == len(item.suggestions):
        return item
    return replace(item, suggestions=[replace(s, rank=i + 1) for i, s in enumerate(kept)])


def _write_bytes(path: Path, data: bytes) -> None:
    from recommender.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_bytes(data)

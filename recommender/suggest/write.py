"""Writing a `### Suggested related:` section into an event file, atomically, touching nothing else."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from recommender.atomic import write_text
from recommender.suggest.batch import EventSuggestions
from recommender.suggest.render import markdown_block

SECTION_PATTERN = re.compile(r"^### Suggested related:[^\n]*\n.*?(?=^### |\Z)", re.M | re.S)


@dataclass
class WriteOutcome:
    path: Path
    status: str  # added | replaced | unchanged | skipped
    reason: str = ""


def with_section(text: str, block: str) -> str:
    """`text` with its Suggested related section replaced by `block` (or `block` appended)."""
    if SECTION_PATTERN.search(text):
        return SECTION_PATTERN.sub(lambda _: block + "\n", text, count=1).rstrip("\n") + "\n"
    return text.rstrip("\n") + "\n\n" + block


def write_suggestions(archive_root: Path, item: EventSuggestions, dry_run: bool) -> WriteOutcome:
    """Add or replace the event file's Suggested related section, atomically; report, never raise, on I/O errors."""
    path = archive_root / item.id
    try:
        old = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return WriteOutcome(path, "skipped", "file vanished")
    except (OSError, UnicodeDecodeError) as exc:
        return WriteOutcome(path, "skipped", f"cannot read ({exc.__class__.__name__}: {exc})")
    new = with_section(old, markdown_block(item))
    if new == old:
        return WriteOutcome(path, "unchanged")
    status = "replaced" if SECTION_PATTERN.search(old) else "added"
    if dry_run:
        return WriteOutcome(path, status)
    try:
        if not _writable(path):
            return WriteOutcome(path, "skipped", "read-only file")
        write_text(path, new)
    except OSError as exc:
        return WriteOutcome(path, "skipped", f"cannot write ({exc.strerror or exc})")
    return WriteOutcome(path, status)


def _writable(path: Path) -> bool:
    """A file marked read-only (no write bit) is left alone, even for a user, like root, who could write it."""
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)

"""One lock per archive folder (or index folder) that holds across processes: an advisory `fcntl.flock` on a
lock file in it (beside it, for an index), so that what two processes do to its files (a digest check and the
write it allows, an append to decisions.jsonl or editors.toml, an index rebuild) is one step for each.

The lock is reentrant within a thread (a decision holds it while the helpers it calls take it again) and
serialises the threads of one process too (a `threading.RLock` in front of the file lock). `flock` locks are
released by the kernel when a process dies, so a killed server never leaves the archive locked.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

LOCK_NAME = ".recommender.lock"  # in the archive folder; not an event file (the archive reader reads .md only)


class _Held:
    def __init__(self) -> None:
        self.thread_lock = threading.RLock()
        self.depth = 0
        self.fd = -1


_HELD: dict[str, _Held] = {}
_HELD_LOCK = threading.Lock()


def archive_lock(root: Path) -> AbstractContextManager[None]:
    """The lock of an archive folder's files (event files, decisions.jsonl, editors.toml)."""
    return file_lock(Path(root) / LOCK_NAME)


def index_lock(index_path: Path) -> AbstractContextManager[None]:
    """The lock of an index folder, kept beside it (a build replaces the folder whole)."""
    index_path = Path(index_path)
    return file_lock(index_path.parent / f".{index_path.name}.lock")


@contextmanager
def file_lock(lock_file: Path) -> Iterator[None]:
    """Hold the lock on `lock_file` (made if absent), blocking until every other holder, in any process, has
    let go."""
    key = os.path.realpath(lock_file)
    with _HELD_LOCK:
        held = _HELD.setdefault(key, _Held())
    with held.thread_lock:
        if held.depth == 0:
            try:
                held.fd = os.open(key, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError:  # a folder nobody may write to: nothing in it is written either, no lock is needed
                held.fd = -1
            if held.fd >= 0:
                try:
                    fcntl.flock(held.fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(held.fd)
                    held.fd = -1
                    raise
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0 and held.fd >= 0:
                fcntl.flock(held.fd, fcntl.LOCK_UN)
                os.close(held.fd)
                held.fd = -1

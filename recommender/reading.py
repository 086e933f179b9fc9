"""The archive as the commands and the review page read it: through the parse cache, with the garbage collector
set for an archive that lives as long as the process."""

from __future__ import annotations

import gc
import os
from pathlib import Path

from recommender.archive import Archive, read_archive


def archive_cache() -> Path | None:
    """Where parsed archives are kept between runs: $RECOMMENDER_CACHE, else $XDG_CACHE_HOME/recommender/archive
    (~/.cache/recommender/archive); RECOMMENDER_CACHE=off keeps nothing."""
    chosen = os.environ.get("RECOMMENDER_CACHE")
    if chosen:
        return None if chosen == "off" else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "recommender" / "archive"


def read_archive_cached(archive: Path, cached: bool = True) -> Archive:
    """Read the archive, through the parse cache unless `cached` is false, for a process that keeps it."""
    # The archive lives as long as the process. Its million small objects need never be scanned by the cyclic
    # GC, which would otherwise walk them again and again while they are made (a third of a cached read).
    gc.disable()
    try:
        return read_archive(archive, cache=archive_cache() if cached else None)
    finally:
        gc.freeze()
        gc.enable()

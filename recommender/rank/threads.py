"""The threads one query's work is spread over (the two halves of a scan, free text's placings): one pool of each
kind per process, made on first use and kept, so that neither a request nor a reloaded index makes new threads;
and how many cores one query may spread over."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache

QUERY_CORES = "RECOMMENDER_QUERY_CORES"  # set by `serve --workers N`: each worker's share of the cores
_fixed: list[int] = [0]  # cores given to every query of this process (`use_cores`), 0 if not fixed
_running = [0]  # queries being ranked in this process now, as `ranking` counts them (the API's live ones)
_lock = threading.Lock()


def use_cores(cores: int) -> None:
    """Give every query of this process `cores` (the forked processes of a batch keep every core busy)."""
    _fixed[0] = cores


@contextmanager
def ranking() -> Iterator[None]:
    """Count a query as being ranked in this process while it runs."""
    with _lock:
        _running[0] += 1
    try:
        yield
    finally:
        with _lock:
            _running[0] -= 1


def query_cores() -> int:
    """The cores one query may spread its work over. A server worker with several queries running takes its
    share of the cores (`QUERY_CORES`: several workers keep every core busy, and splitting each query as well
    would only make them wait on each other); one query alone takes every core, as any other process does."""
    if _fixed[0]:
        return _fixed[0]
    share = os.environ.get(QUERY_CORES, "")
    if share.isdigit() and _running[0] > 1:
        return max(1, int(share))
    return os.cpu_count() or 1


def threads(name: str, workers: int) -> ThreadPoolExecutor:
    """This process's pool `name` of `workers` threads."""
    return _pool(name, workers, os.getpid())


@cache
def _pool(name: str, workers: int, pid: int) -> ThreadPoolExecutor:
    # keyed by process: a forked process's copy of its parent's pool would have no thread
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

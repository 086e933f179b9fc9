"""The threads one query's work is spread over (the two halves of a scan, free text's placings): one pool of each
kind per process, made on first use and kept, so that neither a request nor a reloaded index makes new threads."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache


def threads(name: str, workers: int) -> ThreadPoolExecutor:
    """This process's pool `name` of `workers` threads."""
    return _pool(name, workers, os.getpid())


@cache
def _pool(name: str, workers: int, pid: int) -> ThreadPoolExecutor:
    # keyed by process: a forked process's copy of its parent's pool would have no thread
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

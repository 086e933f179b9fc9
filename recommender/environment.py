"""Every environment variable the package sets, in one place: the defaults set on import (before numpy loads),
and those `recommender serve` sets for its worker processes. (Variables it only reads are read where they are
used: RECOMMENDER_CACHE in `reading.py`, the serve settings in `api.py`, the query's cores in `rank/threads.py`.)

This module imports nothing but `os`: the package's `__init__` runs `set_import_defaults()` before any import
that loads numpy."""

from __future__ import annotations

import os
from pathlib import Path


def set_import_defaults() -> None:
    """Defaults read by the libraries as they load; an explicit setting in the environment wins."""
    # OPENBLAS_THREAD_TIMEOUT, OMP_WAIT_POLICY: read by OpenBLAS and OpenMP when numpy (and LightGBM, for `tune`)
    # load them. Idle worker threads otherwise spin after each call and take the second core from the next step
    # (the dense scan's BLAS threads from the features and trees that follow): warm `related` by id p50
    # 28.5 -> 18.6 ms on 2 cores when measured (eval/bench_speed.py).
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # The model ships inside a package: nothing is ever fetched from a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def set_serve_settings(index_path: Path, threads: int, queue: int, workers: int) -> None:
    """What `recommender serve` hands its worker processes (read by `api.app_from_env`), and their share of
    the cores."""
    from recommender.rank.threads import QUERY_CORES

    os.environ.update(
        RECOMMENDER_SERVE_INDEX=str(index_path),
        RECOMMENDER_SERVE_THREADS=str(threads),
        RECOMMENDER_SERVE_QUEUE=str(queue),
    )
    # the workers share the cores: BLAS's threads, and a query's own (threads.py), are each worker's share
    share = str(max(1, (os.cpu_count() or 1) // workers))
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", QUERY_CORES):
        os.environ.setdefault(variable, share)
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")  # the ranking threads' own malloc arenas only fragment memory

"""recommender: related-event suggestions for a news-event archive, on the CPU.

from recommender import read_archive, build_index, load_index, Recommender
index = load_index("models/default")
Recommender(index).related("news/2016/03/14/....md", k=10)
"""

import os

# Every environment setting the package relies on, in one place, set before any import below loads numpy.
# OPENBLAS_THREAD_TIMEOUT, OMP_WAIT_POLICY: read by OpenBLAS and OpenMP when numpy (and LightGBM, for `tune`)
# load them. Idle worker threads otherwise spin after each call and take the second core from the next step (the
# dense scan's BLAS threads from the features and trees that follow): warm `related` by id p50 28.5 -> 18.6 ms on
# 2 cores when measured (eval/bench_speed.py).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The model ships inside a package: nothing is ever fetched from a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from recommender.archive import Archive, Event, read_archive  # noqa: E402
from recommender.index import build_index, load_index  # noqa: E402
from recommender.rank import Recommender, Suggestion  # noqa: E402

__all__ = ["Archive", "Event", "Recommender", "Suggestion", "build_index", "load_index", "read_archive"]
__version__ = "0.1.0"

"""Shared fixtures: the real sample archive, indexed once per session with the real model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RECOMMENDER_CACHE", "off")  # the parse cache is tested on its own; keep ~/.cache clean

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT.parent / "shared" / "archive-sample"
FULL = ROOT.parent / "shared" / "archive"
PUTIN = (
    "news/2016/03/14/russian-president-vladimir-putin-orders-defence-minister-sergey-shoygu-to-start-the-"
    "withdrawal-of-russian-armed-forces-from-syria-saying-du.md"
)


@pytest.fixture(scope="session")
def sample_path() -> Path:
    if not SAMPLE.is_dir():
        pytest.skip("../shared/archive-sample is not here")
    return SAMPLE


@pytest.fixture(scope="session")
def full_archive():
    """The full archive (113,512 events), read once; skipped where ../shared/archive is not here."""
    from recommender.archive import read_archive

    if not (FULL / "gold.jsonl.gz").exists():
        pytest.skip("../shared/archive is not here")
    return read_archive(FULL)


@pytest.fixture(scope="session")
def full_recommender(full_archive, tmp_path_factory):
    """The full archive indexed with the default model and no ready lists, as `recommender index --no-lists` does
    it (about three minutes on two cores). RECOMMENDER_TEST_FULL_INDEX names an index already built from it, to
    skip the build."""
    from recommender.index import load_index
    from recommender.lifecycle import build
    from recommender.rank import Recommender

    built = os.environ.get("RECOMMENDER_TEST_FULL_INDEX")
    if built:
        return Recommender(load_index(Path(built)))
    out = tmp_path_factory.mktemp("full") / "index"
    build(full_archive, out, archive_name="archive", lists=False)
    return Recommender(load_index(out))


@pytest.fixture(scope="session")
def sample_archive(sample_path):
    from recommender.archive import read_archive

    return read_archive(sample_path)


@pytest.fixture(scope="session")
def sample_index_path(sample_archive, tmp_path_factory) -> Path:
    from recommender.lifecycle import build

    out = tmp_path_factory.mktemp("index") / "sample"
    build(sample_archive, out, archive_name="sample", lists=False)  # lists: `lists_path` in test_ready_lists.py
    return out


@pytest.fixture(scope="session")
def lists_path(sample_index_path, sample_archive, tmp_path_factory) -> Path:
    """The sample index with its ready lists (its vectors reused: nothing re-embedded)."""
    from recommender.lifecycle import build

    out = tmp_path_factory.mktemp("lists") / "sample"
    shutil.copytree(sample_index_path, out)
    build(sample_archive, out, archive_name="sample", lists=True)
    return out


@pytest.fixture(scope="session")
def sample_index(sample_index_path):
    from recommender.index import load_index

    return load_index(sample_index_path)


@pytest.fixture(scope="session")
def recommender(sample_index):
    from recommender.rank import Recommender

    return Recommender(sample_index)


@pytest.fixture()
def archive_copy(sample_path, tmp_path) -> Path:
    """A writable copy of the sample archive."""
    out = tmp_path / "archive"
    shutil.copytree(sample_path, out, ignore=shutil.ignore_patterns("gold.jsonl"))
    for file in out.rglob("*"):
        file.chmod(0o755 if file.is_dir() else 0o644)
    return out


@pytest.fixture()
def index_copy(sample_index_path, tmp_path) -> Path:
    """A copy of the sample index, to build on top of (its vectors are reused, nothing re-embedded)."""
    return shutil.copytree(sample_index_path, tmp_path / "index")


@pytest.fixture()
def lists_copy(lists_path, tmp_path) -> Path:
    """A copy of the sample index with its ready lists."""
    return shutil.copytree(lists_path, tmp_path / "index")


def pool_features(recommender, query):
    """The fused ranker's candidate pool for `query` (any date, nothing excluded) and its feature matrix."""
    from recommender.rank.candidates import allowed_rows, candidate_pool
    from recommender.rank.features import feature_matrix

    index = recommender.index
    pool = candidate_pool(index, query, allowed_rows(index, query, None, None))
    return pool, feature_matrix(index, query, pool)

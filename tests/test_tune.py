"""Training the rankers on the train split of the sample: models written, loadable, ranking; features cached."""

from __future__ import annotations

import json

import pytest
from conftest import PUTIN

from recommender import tune
from recommender.evaluate import split_of, truth_from_archive
from recommender.recommend import FEATURES, Recommender, load_rankers


def test_tune_writes_rankers_that_rank(sample_archive, recommender, tmp_path, monkeypatch):
    truth = truth_from_archive(sample_archive, set(recommender.index.ids))
    out, cache = tmp_path / "ranker", tmp_path / "features.npz"
    systems = tune.train_rankers(recommender, truth, queries=60, seed=1, out=out, cache=cache)
    assert set(systems) == {"fused", "fused-no-dense", "fused-no-bm25", "fused-no-names", "fused-no-time"}
    assert systems["fused"] == list(FEATURES)
    assert not set(systems["fused-no-names"]) & set(tune.FEATURE_GROUPS["names"])
    manifest = json.loads((out / "rankers.json").read_text())
    assert manifest["trained_on"]["train_queries"] == 60

    trained = Recommender(recommender.index, rankers=load_rankers(out))
    suggestions = trained.related(PUTIN, k=5)
    assert len(suggestions) == 5 and all(s.id != PUTIN for s in suggestions)

    # the same queries again: the cached features are used, no candidate pool is rebuilt
    def rebuilt(*args: object) -> None:
        raise AssertionError("features were rebuilt")

    monkeypatch.setattr(tune, "training_data", rebuilt)
    tune.train_rankers(recommender, truth, queries=60, seed=1, out=out, cache=cache)
    with pytest.raises(AssertionError, match="rebuilt"):
        tune.train_rankers(recommender, truth, queries=50, seed=1, out=out, cache=cache)


def test_training_data_one_labelled_row_per_candidate(sample_archive, recommender):
    truth = truth_from_archive(sample_archive, set(recommender.index.ids))
    queries = [q for q in truth.relevant if split_of(q) == "train"]
    assert queries and len(queries) < len(truth.relevant)
    features, labels, sizes = tune.training_data(recommender, truth, sorted(queries)[:5])
    assert len(features) == len(labels) == sizes.sum() and features.shape[1] == len(FEATURES)

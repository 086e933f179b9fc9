"""Training the rankers on the train split of the sample: models written, loadable, ranking; features cached."""

from __future__ import annotations

import json

import pytest
from conftest import PUTIN

from recommender import tune
from recommender.evaluate import EvalConfig, run_eval
from recommender.rank import FEATURE_NAMES, Recommender, load_rankers
from recommender.rank.features import group_features
from recommender.truth import split_of, truth_from_archive


def test_tune_writes_rankers_that_rank(sample_archive, recommender, tmp_path, monkeypatch):
    truth = truth_from_archive(sample_archive, set(recommender.index.ids))
    out, cache = tmp_path / "ranker", tmp_path / "features.npz"
    systems = tune.train_rankers(recommender.index, truth, queries=60, seed=1, out=out, cache=cache)
    assert set(systems) == {"fused", "fused-no-dense", "fused-no-bm25", "fused-no-names", "fused-no-time"}
    assert systems["fused"] == list(FEATURE_NAMES)
    assert not set(systems["fused-no-names"]) & set(group_features("names"))
    manifest = json.loads((out / "rankers.json").read_text())
    assert manifest["trained_on"]["train_queries"] == 60

    # a model trained on 60 queries already ranks: on the test split it beats random by far and nears dense
    trained = Recommender(recommender.index, rankers=load_rankers(out))
    assert trained.related(PUTIN, k=5) != recommender.related(PUTIN, k=5)  # not the packaged model
    result = run_eval(trained, truth, EvalConfig(queries=None, split="test", systems=("random", "dense", "fused")))
    ndcg = {system: m["ndcg@10"] for system, m in result.metrics.items()}
    assert ndcg["fused"] > 10 * ndcg["random"] and ndcg["fused"] > 0.8 * ndcg["dense"], ndcg

    # the same queries again: the cached features are used, no candidate pool is rebuilt
    def rebuilt(*args: object) -> None:
        raise AssertionError("features were rebuilt")

    monkeypatch.setattr(tune, "training_data", rebuilt)
    tune.train_rankers(recommender.index, truth, queries=60, seed=1, out=out, cache=cache)
    with pytest.raises(AssertionError, match="rebuilt"):
        tune.train_rankers(recommender.index, truth, queries=50, seed=1, out=out, cache=cache)


def test_training_data_one_labelled_row_per_candidate(sample_archive, recommender):
    truth = truth_from_archive(sample_archive, set(recommender.index.ids))
    queries = [q for q in truth.relevant if split_of(q) == "train"]
    assert queries and len(queries) < len(truth.relevant)
    features, labels, sizes = tune.training_data(recommender.index, truth, sorted(queries)[:5])
    assert len(features) == len(labels) == sizes.sum() and features.shape[1] == len(FEATURE_NAMES)


def test_training_learns_from_judged_candidates_only(sample_archive, recommender):
    """An event in no list was never judged: left out of training, so "has a list" cannot be learned as relevance."""
    from recommender.rank.candidates import allowed_rows, candidate_pool
    from recommender.rank.query import query_for_row

    index = recommender.index
    truth = truth_from_archive(sample_archive, set(index.ids))
    query_id = sorted(q for q in truth.relevant if split_of(q) == "train")[0]
    query = query_for_row(index, index.position[query_id])
    pool = candidate_pool(index, query, allowed_rows(index, query, None, None))
    judged = {index.position[i] for i in truth.relevant} | {index.position[i] for i in truth.relevant[query_id]}
    _, labels, sizes = tune.training_data(index, truth, [query_id])
    assert sizes.tolist() == [sum(int(r) in judged for r in pool)] and 0 < sizes[0] < len(pool)
    assert labels.sum() == sum(int(r) in {index.position[i] for i in truth.relevant[query_id]} for r in pool)


def test_calibrate_only_writes_beside_the_index_never_into_the_package(sample_path, index_copy):
    """`tune --calibrate-only`, as the README shows it, leaves the installed package alone (git status clean):
    the packaged rankers are copied into INDEX/rankers and refitted there; `--rankers` chooses them."""
    from typer.testing import CliRunner

    from recommender.cli import app
    from recommender.rank import RANKER_DIR

    packaged = {p.name: p.read_bytes() for p in RANKER_DIR.iterdir() if p.is_file()}
    runner = CliRunner()
    args = ["--archive", str(sample_path), "--index", str(index_copy)]
    done = runner.invoke(app, ["tune", *args, "--calibrate-only", "--calibration-queries", "20"])
    assert done.exit_code == 0, done.output
    assert {p.name: p.read_bytes() for p in RANKER_DIR.iterdir() if p.is_file()} == packaged
    out = index_copy / "rankers"
    assert (out / "calibration.json").read_bytes() != packaged["calibration.json"]  # refitted on 20 queries
    assert (out / "fused.txt").read_bytes() == packaged["fused.txt"]
    chosen = runner.invoke(app, ["related", PUTIN, "--index", str(index_copy), "--rankers", str(out), "--json"])
    assert chosen.exit_code == 0, chosen.output
    assert all(row["confidence"] is not None for row in json.loads(chosen.stdout))  # the folder's own confidence
    missing = runner.invoke(app, ["related", PUTIN, "--index", str(index_copy), "--rankers", str(index_copy)])
    assert missing.exit_code == 2 and "--rankers: no rankers.json" in missing.output

"""The ranker's trees scored without LightGBM (ONNX Runtime) give LightGBM's scores, to the last bit of a float32."""

import lightgbm
import numpy as np
import pytest
from conftest import pool_features

from recommender.rank.forest import MISSING_NAN, MISSING_NONE, Forest, ModelFormatError


def real_features(recommender, rows=(0, 7, 40)):
    """Candidate features of a few real queries (the sample archive and the real model)."""
    return np.concatenate([pool_features(recommender, recommender.query(row))[1] for row in rows])


def test_the_fused_ranker_scores_as_lightgbm_does(recommender):
    fused = recommender.rankers["fused"]
    assert set(fused.forest.missing) == {MISSING_NONE}  # NaN counts as 0
    features = real_features(recommender)
    features[::5, fused.columns[3]] = np.nan  # missing values take LightGBM's route too
    booster = lightgbm.Booster(model_file=str(fused.model_file))
    expected = booster.predict(features[:, fused.columns], num_threads=1)
    forest = Forest.load(fused.model_file)
    assert forest.num_trees == booster.num_trees() == 400
    assert np.array_equal(forest.predict(features, columns=fused.columns), expected.astype(np.float32))
    # the cascade's first look: the first 100 trees alone
    first = booster.predict(features[:, fused.columns], num_iteration=100, num_threads=1)
    assert np.array_equal(forest.predict(features, stop=100, columns=fused.columns), first.astype(np.float32))


def test_every_missing_value_rule_and_one_leaf_trees(tmp_path):
    """A model with NaN as missing (LightGBM's missing type NaN), default left and right, and trees of a single
    leaf; a model with zero as missing is refused by name (`tune` never trains one)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 4))
    y = (x[:, 0] + np.where(np.isnan(x[:, 1]), 2, x[:, 1]) > 0.5).astype(float)
    x[rng.random(x.shape) < 0.2] = np.nan
    x[rng.random(x.shape) < 0.2] = 0.0
    params = {"objective": "regression", "num_leaves": 7, "min_data_in_leaf": 5, "verbose": -1}
    zero = lightgbm.train({**params, "zero_as_missing": True}, lightgbm.Dataset(x, y), num_boost_round=3)
    with pytest.raises(ModelFormatError, match="zero.txt: zero-as-missing"):
        Forest.load(_saved(zero, tmp_path / "zero.txt"))
    booster = lightgbm.train(params, lightgbm.Dataset(x, y), num_boost_round=30)
    # a tree that cannot split: one leaf
    stump = lightgbm.train({**params, "min_data_in_leaf": 10_000}, lightgbm.Dataset(x, y), num_boost_round=2)
    rules = Forest.load(_saved(booster, tmp_path / "booster.txt"))
    assert set(rules.missing) == {MISSING_NAN}  # the fused model: NONE
    assert len(set(rules.default_left)) == 2  # missing values go left at some nodes, right at others
    for model in (booster, stump):
        forest = Forest.load(_saved(model, tmp_path / "model.txt"))
        test = rng.normal(size=(300, 4))
        test[rng.random(test.shape) < 0.3] = np.nan
        test[rng.random(test.shape) < 0.2] = 0.0
        assert np.array_equal(forest.predict(test), model.predict(test, num_threads=1).astype(np.float32))
    assert set(Forest.load(tmp_path / "model.txt").roots) == {-1}  # the stump: a tree of one leaf


def _saved(booster, path):
    booster.save_model(str(path))
    return path


def test_a_file_that_is_not_a_model_is_named(tmp_path, recommender):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(ModelFormatError, match="notes.txt"):
        Forest.load(path)
    # a model cut short: its last tree lacks its leaf values
    text = recommender.rankers["fused"].model_file.read_text().split("end of trees")[0]
    path.write_text(text[: text.rindex("leaf_value=")])
    with pytest.raises(ModelFormatError, match=r"notes.txt: tree 399"):
        Forest.load(path)

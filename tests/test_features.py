"""The fused ranker's features (one table), the trained rankers over them, and the cascade, on the sample."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import PUTIN, pool_features

from recommender.rank import FEATURE_NAMES, FEATURES, GROUPS, RANKER_DIR, Recommender
from recommender.rank.features import group_features
from recommender.rank.query import query_for_text


def test_features_match_their_names(recommender):
    query = recommender.query(recommender.index.position[PUTIN])
    pool, features = pool_features(recommender, query)
    assert features.shape == (len(pool), len(FEATURES)) and features.dtype == np.float32
    column = dict(zip(FEATURE_NAMES, features.T, strict=True))
    assert column["dense"].max() <= 1.0001
    np.testing.assert_array_equal(column["dense"], query.scores.dense[pool])
    # pool-relative signals: standardised over the pool, ranks a permutation of 0..n-1
    assert abs(float(column["dense_z"].mean())) < 1e-3 and abs(float(column["dense_z"].std()) - 1) < 1e-3
    assert sorted(column["days_rank"].tolist()) == list(range(len(pool)))
    days = np.abs(recommender.index.day[pool] - query.day)
    assert np.all(np.diff(days[np.argsort(column["days_rank"])]) >= 0)
    assert column["names_ratio"].max() == 1.0
    # the story's names include the query's own: every candidate naming them shares story names too, and
    # some candidates share only names that the query's nearest events bring in
    assert np.all(column["names_story"][column["names"] > 0] > 0)
    assert np.any((column["names_story"] > 0) & (column["names"] == 0))
    assert column["names_story_share"].min() >= 0 and column["names_story_share"].max() <= 1.0001


def test_an_undated_query_has_no_time_features(recommender):
    text = "Putin orders withdrawal from Syria"
    query = query_for_text(recommender.index, text, recommender.embedder.encode([text])[0])
    pool, features = pool_features(recommender, query)
    assert features.shape == (len(pool), len(FEATURES))
    for name in FEATURE_NAMES:
        values = features[:, FEATURE_NAMES.index(name)]
        undated = name in ("log_days", "days", "dense_rank_near", "similar_within_week", "days_rank_similar")
        undated = undated or name in ("days_rank_named", "days_rank", "query_story_density")
        assert np.all(np.isnan(values)) == undated, name


def test_each_ablation_leaves_out_its_group_and_the_trained_models_agree():
    """A feature's groups live in its row of the table: the packaged models were trained on exactly these."""
    systems = json.loads((RANKER_DIR / "rankers.json").read_text())["systems"]
    assert systems["fused"]["features"] == list(FEATURE_NAMES)
    for group in GROUPS:
        left_out = group_features(group)
        assert left_out and set(left_out) < set(FEATURE_NAMES)
        if f"fused-no-{group}" in systems:  # `tune --ablations` trains them; the package may ship fused alone
            assert systems[f"fused-no-{group}"]["features"] == [f for f in FEATURE_NAMES if f not in left_out]
    assert "dense_rank_near" in group_features("dense") and "dense_rank_near" in group_features("time")
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)


def test_a_pinned_event_is_scored_as_it_would_be_ranked(recommender):
    """Editors' pins are described with the features of the pool they would be ranked in (several features
    are relative to the pool), so a pin that is also a natural candidate keeps its ranked score."""
    ranked = recommender.related(PUTIN, k=5)
    position = recommender.index.position
    described = recommender.describe_row(position[PUTIN], [position[ranked[3].id], position[ranked[0].id]])
    assert [s.id for s in described] == [ranked[3].id, ranked[0].id]
    assert [s.score for s in described] == pytest.approx([ranked[3].score, ranked[0].score], abs=1e-3)


@pytest.mark.parametrize("cascade", [[(100, 60)], [(25, 200), (100, 60)], [(200, 200)]])
def test_the_cascade_gives_the_full_models_scores_to_the_candidates_it_keeps(recommender, cascade):
    """The first trees pick the candidates; those kept get exactly the full model's score."""
    pool, features = pool_features(recommender, recommender.query(recommender.index.position[PUTIN]))
    fused = recommender.rankers["fused"]
    full = fused.score(features)
    pruned = fused.score(features, cascade)
    kept = np.isfinite(pruned)
    assert kept.sum() == cascade[-1][1] and len(pool) > 200
    assert np.array_equal(pruned[kept], full[kept])


def test_the_packaged_cascade_keeps_the_full_models_top_10(recommender):
    """The fused model's own cascade (its manifest's, chosen on train-split queries) agrees with every tree."""
    fused = recommender.rankers["fused"]
    assert fused.cascade == ((200, 200),) and recommender.cascade is None
    every_tree = Recommender(recommender.index, rankers=recommender.rankers, cascade=())
    agree = 0
    for event_id in recommender.index.ids[::60]:
        agree += len({s.id for s in recommender.related(event_id)} & {s.id for s in every_tree.related(event_id)})
    assert agree >= 0.97 * 10 * len(recommender.index.ids[::60])

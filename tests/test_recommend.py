"""Suggestions on the real sample archive with the real model: shape and relevance facts measured here."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import PUTIN
from typer.testing import CliRunner

from recommender.cli import app


def test_related_for_the_putin_event(recommender):
    suggestions = recommender.related(PUTIN, k=10)
    assert [s.rank for s in suggestions] == list(range(1, 11))
    assert PUTIN not in {s.id for s in suggestions}
    # the seed page repeats this event (same headline plus a summary): never suggested as related
    assert "SEED-EXAMPLE.md" not in {s.id for s in suggestions}
    assert len({s.headline for s in suggestions}) == 10
    scores = [s.score for s in suggestions]
    assert scores == sorted(scores, reverse=True)
    # measured: 4 of the top 10 are in the curated list, and most share names with the query
    assert sum(s.curated for s in suggestions) >= 3
    assert sum(1 for s in suggestions if s.context) >= 8
    assert any("Putin" in " ".join(s.context) or "Shoygu" in " ".join(s.context) for s in suggestions)
    assert all(s.signals is not None and s.signals.days_apart is not None for s in suggestions)


def test_fused_beats_dense_for_the_seed_page(recommender):
    curated = {s.id for s in recommender.related("SEED-EXAMPLE.md", k=10) if s.curated}
    dense = {s.id for s in recommender.related("SEED-EXAMPLE.md", k=10, system="dense") if s.curated}
    assert len(curated) >= len(dense)


def test_free_text_finds_the_story(recommender):
    suggestions = recommender.similar("Russia pulls its troops out of Syria", k=5)
    assert len(suggestions) == 5
    assert sum("Syria" in s.headline or "Russia" in s.headline for s in suggestions) >= 4
    assert all(s.signals and s.signals.days_apart is None for s in suggestions)  # text has no date of its own


def test_free_text_is_placed_at_its_closest_event(recommender):
    query = recommender.query_for_text("Russia pulls its troops out of Syria")
    assert query.day is None
    recommender.anchor_in_time(query, since=dt.date(2016, 3, 1), until=dt.date(2016, 3, 31))
    closest = int(
        np.argmax(np.where(recommender.allowed(query, dt.date(2016, 3, 1), dt.date(2016, 3, 31)), query.dense, -1))
    )
    assert query.day == recommender.index.day[closest] and not query.dated
    assert dt.date(2016, 3, 1).toordinal() <= query.day <= dt.date(2016, 3, 31).toordinal()


def test_date_window_and_exclude_curated(recommender):
    march = recommender.related(PUTIN, k=10, since=dt.date(2016, 3, 1), until=dt.date(2016, 3, 31))
    assert all(dt.date(2016, 3, 1) <= s.date <= dt.date(2016, 3, 31) for s in march)
    fresh = recommender.related(PUTIN, k=10, exclude_curated=True)
    assert not any(s.curated for s in fresh)


def test_cli_related_json_shape(sample_index_path):
    result = CliRunner().invoke(app, ["related", PUTIN, "--k", "3", "--json", "--index", str(sample_index_path)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 3
    assert set(rows[0]) >= {"rank", "id", "date", "headline", "score", "curated", "signals"}


def test_cli_unknown_id_exit_2_with_closest(sample_index_path):
    result = CliRunner().invoke(
        app, ["related", "news/2016/03/14/russian-president", "--index", str(sample_index_path)]
    )
    assert result.exit_code == 2
    assert result.output.startswith("error: unknown event id") and PUTIN in result.output


def test_cli_bad_parameters_name_the_parameter(sample_index_path):
    runner = CliRunner()
    bad_date = runner.invoke(app, ["related", PUTIN, "--since", "2016-13-01", "--index", str(sample_index_path)])
    assert bad_date.exit_code == 2 and "--since" in bad_date.output
    both = runner.invoke(app, ["related", PUTIN, "--text", "x", "--index", str(sample_index_path)])
    assert both.exit_code == 2 and "not both" in both.output
    k = runner.invoke(app, ["related", PUTIN, "--k", "0", "--index", str(sample_index_path)])
    assert k.exit_code == 2 and "--k" in k.output


def test_features_match_their_names(recommender):
    from recommender.recommend import FEATURES

    query = recommender.query_for_row(recommender.index.position[PUTIN])
    pool, features = recommender.candidates(query, recommender.allowed(query, None, None))
    assert features.shape == (len(pool), len(FEATURES))
    assert features[:, FEATURES.index("dense")].max() <= 1.0001
    column = dict(zip(FEATURES, features.T, strict=True))
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
    text_query = recommender.query_for_text("Putin orders withdrawal from Syria")
    pool, features = recommender.candidates(text_query, recommender.allowed(text_query, None, None))
    assert features.shape == (len(pool), len(FEATURES))


def test_top_selection_matches_a_full_sort():
    from recommender.recommend import _top

    rng = np.random.default_rng(0)
    for trial in range(80):
        if trial < 20:  # small archives, few wanted
            size, n = int(rng.integers(1, 5000)), int(rng.integers(0, 12))
        else:
            size, n = int(rng.integers(1, 150_000)), int(rng.integers(0, 400))
        scores = np.round(rng.standard_normal(size), 2).astype(np.float32)  # many ties
        if trial % 3 == 0:
            scores[rng.random(size) < 0.95] = -np.inf  # mostly disallowed rows
        top = _top(scores, n)
        expected = np.sort(scores)[::-1][: min(n, size)]
        assert len(set(top.tolist())) == len(top)
        assert np.array_equal(scores[top], expected)


def test_the_candidate_pools_top_rows_are_those_of_a_full_sort():
    """`_top_allowed` (the pool's top dense and top BM25 rows): the n best allowed rows, positive scores only for
    BM25, ties to the lower row; archives large and small, many ties, most rows disallowed or none."""
    from recommender.recommend import _top_allowed

    rng = np.random.default_rng(1)
    for trial in range(80):
        size = int(rng.integers(1, 5000)) if trial < 20 else int(rng.integers(1, 150_000))
        n = int(rng.integers(1, 400))
        scores = np.round(rng.standard_normal(size), 2).astype(np.float32)  # many ties
        allowed = rng.random(size) < (0.05 if trial % 3 == 0 else 0.99)
        positive_only = bool(trial % 2)
        eligible = np.flatnonzero(allowed & ((scores > 0) | (not positive_only)))
        best = eligible[np.lexsort((eligible, -scores[eligible]))][:n]  # by score, then by row
        assert np.array_equal(_top_allowed(scores, allowed, n, positive_only), np.sort(best))


def test_a_cold_related_does_not_import_lightgbm(sample_index_path, recommender):
    """The CLI's `related` walks the ranker's trees itself (recommender.forest): no LightGBM, pandas or
    scikit-learn import (about a second of a cold start), same answers."""
    script = f"""
import sys
from recommender.cli import app
sys.argv = ["recommender", "related", "SEED-EXAMPLE.md", "--index", {str(sample_index_path)!r}, "--k", "5", "--json"]
try:
    app()
except SystemExit as done:
    assert done.code in (0, None), done.code
heavy = {{"lightgbm", "sklearn", "pandas"}} & set(sys.modules)
assert not heavy, heavy
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    expected = [s.id for s in recommender.related("SEED-EXAMPLE.md", k=5)]
    assert [s["id"] for s in json.loads(result.stdout)] == expected


def test_a_pinned_event_is_scored_as_it_would_be_ranked(recommender):
    """Editors' pins are described with the features of the pool they would be ranked in (several features
    are relative to the pool), so a pin that is also a natural candidate keeps its ranked score."""
    ranked = recommender.related(PUTIN, k=5)
    described = recommender.describe(PUTIN, [ranked[3].id, ranked[0].id])
    assert [s.id for s in described] == [ranked[3].id, ranked[0].id]
    assert [s.score for s in described] == pytest.approx([ranked[3].score, ranked[0].score], abs=1e-3)


@pytest.mark.parametrize("cascade", [[(100, 60)], [(25, 200), (100, 60)]])
def test_the_cascade_gives_the_full_models_scores_to_the_candidates_it_keeps(recommender, cascade):
    """The first trees pick the candidates; those kept get exactly the full model's score."""
    query = recommender.query_for_row(recommender.index.position[PUTIN])
    pool, features = recommender.candidates(query, recommender.allowed(query, None, None))
    fused = recommender.rankers["fused"]
    full = fused.score(features)
    pruned = fused.score(features, cascade)
    kept = np.isfinite(pruned)
    assert kept.sum() == 60 and len(pool) > 200
    assert np.array_equal(pruned[kept], full[kept])
    assert set(np.argsort(-full)[:10]) <= set(np.flatnonzero(kept))  # the full model's top 10 all kept here
    recommender.prune = False
    try:
        every = [s.id for s in recommender.related(PUTIN, k=10)]
    finally:
        recommender.prune = True
    assert [s.id for s in recommender.related(PUTIN, k=10)] == every

"""Issue 30: blind judgments, the fused ranker's judged stage and its confidence, the windowed and judged evals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import PUTIN

from recommender import tune
from recommender.evaluate import EvalConfig, run_eval
from recommender.evaluate.judged import judged_figures
from recommender.evaluate.run import month_of
from recommender.judgments import load_judged
from recommender.rank import RANKER_DIR, Recommender, load_rankers
from recommender.rank.calibration import JUDGED, MIN_CONFIDENCE, load_calibration
from recommender.rank.ranker import TREES, JudgedStage, Logistic
from recommender.truth import truth_from_archive

AMTRAK = "news/2016/03/14/an-amtrak-passenger-train-derails-west-of-dodge-city-in-the-american-state-of-kansas.md"
NCAA = (
    "news/2016/03/13/the-field-of-68-teams-for-the-ncaa-tournament-is-announced-kansas-is-the-top-overall-seed-with-"
    "north-carolina-oregon-and-virginia-roundi.md"
)


def label_of(text: str) -> str:
    """A transparent rule standing in for a judge, for Putin's withdrawal from Syria."""
    lower = text.lower()
    if "syria" in lower and ("russia" in lower or "putin" in lower):
        return "same_story"
    return "related" if "russia" in lower or "syria" in lower or "putin" in lower else "unrelated"


def write_judgments(folder, recommender, heldout: str | None = None) -> int:
    """Judgments for the union of dense's and fused's top 30 of the Putin and the Amtrak events (and of `heldout`,
    marked held out in a set file); returns the number of pairs of the two."""
    index = recommender.index
    folder.mkdir(parents=True, exist_ok=True)
    lines, counts = [], {}
    for event in [PUTIN, AMTRAK, *([heldout] if heldout else [])]:
        ids = {s.id for system in ("dense", "fused") for s in recommender.related(event, k=30, system=system)}
        for candidate in sorted(ids):
            label = label_of(index.text(index.position[candidate]))
            lines.append(json.dumps({"query": event, "candidate": candidate, "label": label, "why": "rule"}))
        counts[event] = len(ids)
    (folder / "judgments-t.jsonl").write_text("\n".join(lines) + "\n")
    if heldout:
        events = [{"id": PUTIN, "listed": True, "heldout": False}, {"id": heldout, "listed": True, "heldout": True}]
        (folder / "set-t.json").write_text(json.dumps({"events": events}))
    return counts[PUTIN] + counts[AMTRAK]


def test_load_judged_names_a_bad_line(tmp_path):
    (tmp_path / "judgments-x.jsonl").write_text('{"query": "a", "candidate": "b", "label": "same_story"}\n')
    (tmp_path / "judgments-y.jsonl").write_text('{"query": "a", "candidate": "c", "label": "maybe"}\n')
    with pytest.raises(ValueError, match=r"judgments-y.jsonl:1: label 'maybe'"):
        load_judged(tmp_path)
    (tmp_path / "judgments-y.jsonl").write_text('{"query": "a", "candidate": "c", "label": "related"}\n')
    (tmp_path / "set-e.json").write_text(json.dumps({"events": [{"id": "a", "listed": False, "heldout": True}]}))
    judged = load_judged(tmp_path)
    assert judged.part("a") == "heldout" and judged.part("z") == "dev"
    assert judged.development().labels == {}  # every pair of a held-out event is left out of what fits may use


def test_fit_logistic_recovers_a_known_model():
    rng = np.random.default_rng(3)
    inputs = rng.normal(size=(20_000, 2)) * [1.0, 4.0] + [0.0, 2.0]
    truth = Logistic((2.0, -0.5), 0.3)
    labels = rng.random(len(inputs)) < truth(inputs)
    fitted = tune.fit_logistic(inputs, labels, l2=0.0)
    assert np.allclose(fitted.weights, truth.weights, atol=0.1) and abs(fitted.intercept - truth.intercept) < 0.1


def test_the_stage_puts_sure_story_items_first_and_weighs_same_story():
    related = Logistic((0.0, 10.0), -5.0)  # meaning alone: dense cosine 0.5 is even odds
    same = Logistic((1.0, 8.0), -9.0)  # the trees and meaning together
    stage = JudgedStage((TREES, "dense"), same, related, 2.0, story_trees=1.0)
    inputs = np.asarray([[3.0, 0.6], [0.0, 0.95], [3.0, 0.2], [0.5, 0.7]])
    gain = stage.gain(inputs)
    assert gain[0] > gain[1] > gain[3] > gain[2]  # sure and related; most related; the same week alone is last
    unsure = JudgedStage((TREES, "dense"), same, related, 2.0)
    assert unsure.gain(inputs)[1] > unsure.gain(inputs)[0]  # without the tier the gain orders them


def test_tune_fits_the_judged_stage_on_development_events_only(recommender, tmp_path):
    out, folder = tmp_path / "rankers", tmp_path / "judged"
    out.mkdir()
    for name in ("fused.txt", "rankers.json"):
        shutil.copy(RANKER_DIR / name, out / name)
    pairs = write_judgments(folder, recommender, heldout=NCAA)
    logged: list[str] = []
    trained = Recommender(recommender.index, rankers=load_rankers(out))
    stage = tune.fit_judged_stage(trained, load_judged(folder), out, log=logged.append)
    assert f"judged pairs: {pairs:,} of 2 events not held out" in logged[0]
    assert "1 held-out events left out" in logged[0]
    assert stage.related.weights[stage.inputs.index("dense")] > 0  # meaning raises P(related)
    manifest = json.loads((out / "rankers.json").read_text())
    assert manifest["systems"]["fused"]["judged_stage"] == stage.as_dict()
    calibration = load_calibration(out)
    assert calibration is not None and calibration.label == JUDGED
    # --keep-stage: the order stays, the confidence alone is refitted
    kept = tune.fit_judged_stage(trained, load_judged(folder), out, keep_stage=True)
    assert kept == stage and json.loads((out / "rankers.json").read_text()) == manifest

    fitted = Recommender(recommender.index, rankers=load_rankers(out))
    fitted.calibration = calibration
    top = fitted.related(PUTIN, k=10)
    confidence = [s.confidence for s in top]
    assert all(c is not None and 0 <= c <= 1 for c in confidence)
    assert confidence == sorted(confidence, reverse=True)  # read off the score: it ranks as the ranker does
    # the judges found everything near Putin's withdrawal related and nothing near the Amtrak derailment: the
    # confidence says so, and the default minimum leaves the derailment fewer suggestions
    amtrak = [s.confidence or 0.0 for s in fitted.related(AMTRAK, k=10)]
    assert np.mean(confidence) > np.mean(amtrak) + 0.2, (confidence, amtrak)
    assert len(fitted.related(AMTRAK, k=10, min_confidence=MIN_CONFIDENCE)) < len(top)


def test_windowed_eval_ranks_within_each_querys_month(recommender, sample_archive):
    index = recommender.index
    truth = truth_from_archive(sample_archive, set(index.ids))
    config = EvalConfig(queries=40, seed=2, systems=("dense", "fused"), deep=0, window="month")
    result = run_eval(recommender, truth, config)
    assert result.query_ids
    for query_id in result.query_ids:
        first, last = month_of(index.date(index.position[query_id]))
        for system in ("dense", "fused"):
            ranked = result.runs[system][query_id]
            assert ranked and all(first <= index.date(index.position[c]) <= last for c in ranked), (system, query_id)
        listed = result.truth.relevant[query_id]
        assert listed and all(first <= index.date(index.position[c]) <= last for c in listed)
    with pytest.raises(ValueError, match="--window"):
        run_eval(recommender, truth, EvalConfig(queries=5, systems=("dense",), window="month", since=first))


def test_judged_figures_count_judged_and_unjudged_items(recommender, tmp_path):
    folder = tmp_path / "judged"
    write_judgments(folder, recommender, heldout=NCAA)
    judged = load_judged(folder)
    figures = judged_figures(recommender, judged, {PUTIN}, ("dense", "fused"))
    for system in ("dense", "fused"):
        listed = figures[system]["dev"]["listed"]
        assert listed["events"] == 1 and listed["judged_items"] + listed["unjudged_items"] == 10
        assert listed["unjudged_items"] == 0  # every item of both top 30s was judged
        assert 0 < listed["same_story_p10"] <= listed["related_p10"] <= 1
        assert figures[system]["dev"]["unlisted"]["related_p10"] == 0  # nothing is Amtrak's by the rule
        assert figures[system]["heldout"]["unlisted"]["events"] == 1
    windowed = judged_figures(recommender, judged, {PUTIN}, ("fused",), window="month")
    assert windowed["fused"]["dev"]["all"]["events"] == 2

"""The eval harness: true numbers on a tiny known archive, no Related section reaching any system."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recommender.archive import read_archive
from recommender.cli import app
from recommender.evaluate import EvalConfig, run_eval, score_runs
from recommender.index import build_index, load_index
from recommender.rank import Recommender
from recommender.truth import split_of, truth_from_archive

EVENTS = {  # id -> (date, headline, related ids)
    "a": ("2020-01-01", "Storm hits the coast of Norway", ["b", "c"]),
    "b": ("2020-01-02", "Norway storm damage grows", ["a"]),
    "c": ("2020-01-03", "Norway counts the cost of the storm", []),
    "d": ("2020-01-04", "Chess champion wins in Oslo", []),
    "e": ("2020-01-05", "Football final ends in a draw", ["gone"]),
}


def link(key: str) -> str:
    date = EVENTS[key][0] if key in EVENTS else "2020-01-09"
    return f"{date.replace('-', '/')}/{key}.md"  # zero-padded day, as some archives write it


def tiny_archive(folder):
    for key, (date, headline, related) in EVENTS.items():
        y, m, d = date.split("-")
        links = "".join(f"{i + 1}. [x](/news/{link(r)}) _Context: Story_\n" for i, r in enumerate(related))
        body = f"### [{date}](/news/{date.replace('-', '/')}/index.md)\n\n# {headline}\n\n"
        if links:
            body += f"### Related:\n\n{links}"
        path = folder / f"news/{y}/{m}/{int(d)}/{key}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    return read_archive(folder)


def test_metrics_of_perfect_reversed_and_empty_rankings(tmp_path):
    archive = tiny_archive(tmp_path)
    ids = {key: f"news/2020/01/{int(EVENTS[key][0][-2:])}/{key}.md" for key in EVENTS}
    truth = truth_from_archive(archive, set(archive.events))
    assert truth.relevant == {ids["a"]: [ids["b"], ids["c"]], ids["b"]: [ids["a"]]}
    assert truth.unresolved_links == 1 and truth.empty_queries == 1  # e links only to a missing file
    queries = [ids["a"], ids["b"]]

    def run(order):
        return {q: {ids[k]: float(10 - i) for i, k in enumerate(order[q])} for q in order}

    perfect = run({ids["a"]: ["b", "c", "d", "e"], ids["b"]: ["a", "c", "d", "e"]})
    reversed_ = run({ids["a"]: ["e", "d", "c", "b"], ids["b"]: ["e", "d", "c", "a"]})
    metrics, _ = score_runs(truth, queries, {"perfect": perfect, "reversed": reversed_, "empty": {}})

    assert metrics["perfect"]["ndcg@10"] == 1.0
    assert metrics["perfect"]["precision@1"] == 1.0
    assert metrics["perfect"]["precision@10"] == pytest.approx((2 / 10 + 1 / 10) / 2)
    assert metrics["perfect"]["recall@10"] == 1.0 and metrics["perfect"]["mrr@10"] == 1.0
    # reversed: a's relevant at ranks 3 and 4, b's at rank 4
    ideal_a = 1 + 1 / math.log2(3)
    ndcg_a = (1 / math.log2(4) + 1 / math.log2(5)) / ideal_a
    ndcg_b = 1 / math.log2(5)
    assert metrics["reversed"]["ndcg@10"] == pytest.approx((ndcg_a + ndcg_b) / 2, abs=1e-4)
    assert metrics["reversed"]["mrr@10"] == pytest.approx((1 / 3 + 1 / 4) / 2, abs=1e-4)
    assert metrics["reversed"]["precision@1"] == 0.0 and metrics["reversed"]["recall@10"] == 1.0
    assert all(value == 0.0 for value in metrics["empty"].values())
    # lenient: any candidate whose own curated contexts name the same story counts: for 'a', b and e
    # (e's link is broken but its context names the story); for 'b', a and e. c and d have no list.
    assert metrics["perfect"]["lenient_precision@10"] == pytest.approx(2 / 10)


def eval_args(archive, index) -> list[str]:
    return ["eval", "--archive", str(archive), "--index", str(index)]


def shuffle_related_sections(folder, seed=7):
    """Give every event another event's Related section (the truth changes, the texts do not)."""
    files = sorted(folder.rglob("news/**/*.md"))
    texts = [f.read_text() for f in files]
    pattern = re.compile(r"### Related:.*", re.S)
    sections = [m.group(0) if (m := pattern.search(t)) else "" for t in texts]
    random.Random(seed).shuffle(sections)
    for file, text, section in zip(files, texts, sections, strict=True):
        file.write_text(pattern.sub("", text).rstrip() + "\n\n" + section)


def test_no_related_section_reaches_any_system(archive_copy, index_copy, sample_index):
    before = Recommender(sample_index)
    shuffle_related_sections(archive_copy)
    shuffled = read_archive(archive_copy)
    report = build_index(shuffled, index_copy)
    assert report.embedded == 0  # texts unchanged
    after = Recommender(load_index(index_copy))
    queries = sorted(sample_index.ids)[::40]
    for system in ("dense", "bm25", "fused"):
        for query_id in queries:
            a = before.rank(before.query(before.index.position[query_id]), 10, system)
            b = after.rank(after.query(after.index.position[query_id]), 10, system)
            assert [before.index.ids[r] for r in a.rows] == [after.index.ids[r] for r in b.rows], (system, query_id)


def test_eval_on_the_sample(recommender, sample_archive, tmp_path, sample_path, sample_index_path):
    truth = truth_from_archive(sample_archive, set(recommender.index.ids))
    result = run_eval(recommender, truth, EvalConfig(queries=300, seed=1))
    m = result.metrics
    assert m["random"]["ndcg@10"] < 0.05
    assert m["dense"]["ndcg@10"] > 0.3 and m["bm25"]["ndcg@10"] > 0.3
    assert m["fused"]["ndcg@10"] >= m["dense"]["ndcg@10"]  # the default stays at least as good as dense

    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            *eval_args(sample_path, sample_index_path),
            "--queries",
            "60",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["systems"]) == {"random", "recency", "bm25", "dense", "fused"}
    run = json.loads((out / "run-dense.json").read_text())
    assert len(run) == 60 and all(len(docs) == 10 for docs in run.values())
    # the report's figures are those of the runs written beside it, and they rank: dense far above random
    truth = truth_from_archive(sample_archive, set(recommender.index.ids))
    runs = {s: json.loads((out / f"run-{s}.json").read_text()) for s in ("random", "dense")}
    rescored, _ = score_runs(truth, sorted(run), runs)
    for system in runs:
        for metric in ("precision@10", "ndcg@10", "mrr@10"):
            assert metrics["systems"][system][metric] == rescored[system][metric], (system, metric)
    assert metrics["systems"]["dense"]["precision@10"] > 5 * metrics["systems"]["random"]["precision@10"] + 0.05
    for png in ("precision_at_k.png", "ndcg_by_year.png", "reliability.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "![precision_at_k](precision_at_k.png)" in report and "![reliability](reliability.png)" in report
    # the fused confidence: one per suggestion, its calibration error reported (the sample is too small to bound)
    calibration = metrics["calibration"]["fused"]
    assert calibration["items"] == 600 and 0 <= calibration["expected_calibration_error"] < 0.5
    assert sum(b["items"] for b in calibration["reliability"]) == 600
    assert "expected calibration error" in result.output
    # what the confidence means is said from the measured bins, never a fixed "about 70%"
    fullest = max(calibration["reliability"], key=lambda b: b["items"])
    said = f"of the {fullest['items']:,} suggestions shown with confidence {fullest['bin'] / 10:.1f}-"
    assert said in report and f"{fullest['observed']:.0%} are in the curated list" in report
    assert "about 70% of the time" not in report


def test_eval_out_defaults_to_a_new_folder_outside_the_package(sample_path, sample_index_path):
    result = CliRunner().invoke(
        app, [*eval_args(sample_path, sample_index_path), "--queries", "5", "--systems", "dense"]
    )
    assert result.exit_code == 0, result.output
    folder = Path(result.stderr.split("report folder: ", 1)[1].splitlines()[0])
    assert (folder / "report.md").is_file() and Path(__file__).resolve().parent.parent not in folder.parents


def test_gold_file_and_split(recommender, sample_archive, tmp_path, sample_path, sample_index_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"id": "SEED-EXAMPLE.md", "related": ["news/2016/03/22/nope.md"]}) + "\n")
    result = CliRunner().invoke(
        app,
        [
            *eval_args(sample_path, sample_index_path),
            "--gold",
            str(gold),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2 and "no queries" in result.output
    assert {split_of(i) for i in sample_archive.events} == {"train", "test"}
    share = sum(split_of(i) == "test" for i in sample_archive.events) / len(sample_archive.events)
    assert 0.12 < share < 0.28


def test_bpref_ignores_unjudged_items_and_counts_judged_ones_above():
    from recommender.evaluate.run import binary_preference

    relevant, judged = {1, 2}, {1, 2, 7, 8}
    assert binary_preference([1, 2, 7], relevant, judged) == 1.0
    assert binary_preference([5, 6, 1, 9, 2], relevant, judged) == 1.0  # 5, 6, 9 unjudged: as if absent
    # 7 above both relevant items: each loses 1/2; 8 between them: the second loses another 1/2
    assert binary_preference([7, 1, 8, 2], relevant, judged) == pytest.approx((0.5 + 0.0) / 2)
    assert binary_preference([3, 4], relevant, judged) == 0.0


def test_condensed_metrics_and_the_time_split(recommender, sample_archive):
    truth = truth_from_archive(sample_archive, set(recommender.index.ids))
    result = run_eval(recommender, truth, EvalConfig(queries=80, seed=3, systems=("random", "dense", "fused")))
    condensed = result.condensed
    # dropping unjudged candidates can only move judged relevant items up: condensed P@10 >= standard P@10 (up
    # to the cascade: the deep ranking gives more candidates all the trees, so its top 10 may differ a little)
    for system in ("dense", "fused"):
        assert condensed[system]["precision@10"] >= result.metrics[system]["precision@10"] - 0.01
        assert 0.2 < condensed[system]["bpref"] <= 1.0
    assert condensed["random"]["bpref"] < 0.1 < condensed["dense"]["bpref"]
    dates = {e.id: e.date for e in sample_archive.events.values()}
    by_time = run_eval(recommender, truth, EvalConfig(queries=None, split="test", split_by="time", deep=0))
    assert by_time.query_ids and all(dates[q].year >= 2021 for q in by_time.query_ids)
    assert not by_time.condensed

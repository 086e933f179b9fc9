"""The `recommender` command as a user runs it: output shapes, one-line errors naming the parameter, a light start."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from conftest import PUTIN
from typer.testing import CliRunner

from recommender.cli import app


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
    assert result.output == f"error: unknown event id 'news/2016/03/14/russian-president'; did you mean {PUTIN}?\n"


def test_an_id_like_no_id_gets_no_guesses_and_a_path_to_an_event_file_is_its_id(sample_index_path, sample_path):
    runner = CliRunner()
    for nothing_like in ("/etc/passwd", "news/2016/03/14/nope.md"):
        result = runner.invoke(app, ["related", nothing_like, "--index", str(sample_index_path)])
        assert result.exit_code == 2 and result.output == f"error: unknown event id {nothing_like!r}\n"
    as_path = runner.invoke(
        app, ["related", f"archive/{PUTIN}", "--k", "3", "--json", "--index", str(sample_index_path)]
    )
    by_id = runner.invoke(app, ["related", PUTIN, "--k", "3", "--json", "--index", str(sample_index_path)])
    assert as_path.exit_code == 0 and as_path.stdout == by_id.stdout


def test_cli_bad_parameters_name_the_parameter(sample_index_path):
    runner = CliRunner()
    bad_date = runner.invoke(app, ["related", PUTIN, "--since", "2016-13-01", "--index", str(sample_index_path)])
    assert bad_date.exit_code == 2 and "--since" in bad_date.output
    both = runner.invoke(app, ["related", PUTIN, "--text", "x", "--index", str(sample_index_path)])
    assert both.exit_code == 2 and "not both" in both.output
    k = runner.invoke(app, ["related", PUTIN, "--k", "0", "--index", str(sample_index_path)])
    assert k.exit_code == 2 and "--k" in k.output


def test_a_cold_related_imports_nothing_that_only_trains_or_evaluates(sample_index_path, recommender):
    """The CLI's `related` scores the ranker's trees with ONNX Runtime (recommender.rank.forest makes them an ONNX
    graph): no LightGBM, pandas or scikit-learn import (about a second of a cold start), nor torch, transformers,
    ranx, matplotlib or FAISS (a server's install has none of them: `pip install .`), same answers."""
    script = f"""
import sys
from recommender.cli import app
sys.argv = ["recommender", "related", "SEED-EXAMPLE.md", "--index", {str(sample_index_path)!r}, "--k", "5", "--json"]
try:
    app()
except SystemExit as done:
    assert done.code in (0, None), done.code
heavy = {{"lightgbm", "sklearn", "pandas", "torch", "sentence_transformers", "transformers", "ranx", "matplotlib",
    "faiss"}} & set(sys.modules)
assert not heavy, heavy
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    expected = [s.id for s in recommender.related("SEED-EXAMPLE.md", k=5)]
    assert [s["id"] for s in json.loads(result.stdout)] == expected


def test_related_to_a_page_file_shows_its_event_with_curated_marks(sample_index_path, sample_path):
    """`make run`'s demo: the seed page, kept outside the archive, stands for its event (same date, same
    headline): that event's suggestions, * for its curated list and + for the page's own links."""
    result = CliRunner().invoke(
        app, ["related", str(sample_path / "SEED-EXAMPLE.md"), "--index", str(sample_index_path)]
    )
    assert result.exit_code == 0, result.output
    assert f"is the page of the event {PUTIN}" in result.stderr
    lines = [line for line in result.stdout.splitlines() if re.match(r" *\d+\. ", line)]
    assert len(lines) == 10 and sum(line[5] == "*" for line in lines) >= 4
    assert "(+ in the page's own Related list" in result.stdout


def test_a_page_file_of_no_indexed_event_is_a_one_line_error(sample_index_path, tmp_path):
    page = tmp_path / "page.md"
    page.write_text("### [2016-03-14](/news/2016/03/14/index.md)\n\n# Nothing that happened that day\n")
    result = CliRunner().invoke(app, ["related", str(page), "--index", str(sample_index_path)])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "no event of the index" in result.output and "2016-03-14" in result.output


def test_counts_read_as_counts():
    from recommender.wording import count

    assert [count(1, "event"), count(2, "day"), count(1155, "event"), count(0, "item")] == [
        "1 event",
        "2 days",
        "1,155 events",
        "0 items",
    ]


def test_help_is_never_cut_off_in_an_80_column_terminal():
    import typer

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    for name, command in commands.items():
        shown = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
        assert shown.exit_code == 0 and "…" not in shown.output, (name, shown.output)
        assert max(len(line) for line in shown.output.splitlines()) <= 80, name
        for param in (p for p in command.params if not getattr(p, "hidden", False)):
            assert all(opt in shown.output for opt in param.opts if opt.startswith("--")), (name, param.opts)


def test_usage_errors_are_one_line_naming_what_is_wrong():
    for args, says in (
        (["relatd"], "No such command 'relatd'"),
        (["related", "--bogus"], "No such option: --bogus"),
        (["related", PUTIN, "--k", "0"], "'--k'"),
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and result.output.startswith("error: ") and says in result.output
        assert result.output.count("\n") == 1, result.output


def test_a_narrow_window_shows_what_belongs_not_filler(sample_index_path):
    """Within a week after the Putin event the ranker must fill its list from what happened then: by default only
    suggestions at least 0.3 confident are shown there, and stderr says so; --min-confidence 0 shows all."""
    window = ["--since", "2016-03-21", "--until", "2016-03-27", "--json", "--index", str(sample_index_path)]
    shown = CliRunner().invoke(app, ["related", PUTIN, *window])
    everything = CliRunner().invoke(app, ["related", PUTIN, *window, "--min-confidence", "0"])
    kept, all_ = json.loads(shown.stdout), json.loads(everything.stdout)
    assert "at least 0.3 confident" in shown.stderr and "at least" not in everything.stderr
    assert len(all_) == 10 and 0 < len(kept) < 10 and all(s["confidence"] >= 0.3 for s in kept)
    assert [s["id"] for s in kept] == [s["id"] for s in all_[: len(kept)]]


def test_validate_says_how_an_index_differs_and_lists_unresolved_links(archive_copy, index_copy, sample_path):
    """An index of a few days of the sample, checked against the whole sample: not "ready lists: current", but
    what differs; and the unresolved links are listed (the first few in text, every one in --json)."""
    import shutil

    from recommender.archive import read_archive
    from recommender.index import build_index

    kept = {f"news/2016/03/{day}" for day in range(13, 18)}
    for day in [d for d in archive_copy.glob("news/*/*/*") if d.is_dir()]:
        if str(day.relative_to(archive_copy)) not in kept:
            shutil.rmtree(day)
    build_index(read_archive(archive_copy), index_copy)  # the vectors reused: nothing embedded
    args = ["validate", "--archive", str(sample_path), "--index", str(index_copy)]
    text = CliRunner().invoke(app, args)
    assert text.exit_code == 0, text.output
    assert "is not this archive's" in text.stdout and "of this archive not in it" in text.stdout
    assert "current" not in text.stdout
    assert text.stdout.count("unresolved link in ") == 5 and "(all of them: --json)" in text.stdout
    report = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    assert report["index"]["not_in_index"] > 1000 and not report["index"]["matches"]
    assert len(report["unresolved"]) == report["unresolved_links"] > 1000
    assert set(report["unresolved"][0]) == {"event", "href"}

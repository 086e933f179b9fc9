"""The `recommender` command as a user runs it: output shapes, one-line errors naming the parameter, a light start."""

from __future__ import annotations

import json
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
    assert result.output.startswith("error: unknown event id") and PUTIN in result.output


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

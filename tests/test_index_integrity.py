"""A damaged index is a one-line error, never a traceback or an answer from garbage, and is never "repaired" into
a worse one: every file of the sample index, truncated, emptied, overwritten with same-size garbage or deleted."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from conftest import PUTIN
from typer.testing import CliRunner

from recommender.cli import app
from recommender.index import build_index, load_index
from recommender.index.layout import IndexMeta, index_files

FILES = [
    "meta.json",
    "vectors.npy",
    "columns.json",
    "records.jsonl",
    "records.offsets.npy",
    "names.npz",
    "names.json",
    "names.generic.json",
    "stories.npz",
    "stories.json",
    "tokens.npz",
    "tokens.json",
    "bm25/data.csc.index.npy",
    "bm25/indices.csc.index.npy",
    "bm25/indptr.csc.index.npy",
    "bm25/params.index.json",
    "bm25/vocab.index.json",
]
DAMAGE = ("truncate", "empty", "garbage", "delete")


def damage(path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(os.urandom(len(data)))
    else:
        path.unlink()


def related(index) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["related", PUTIN, "--index", str(index), "--json", "--k", "5"])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.output
    if result.exit_code:
        return result.exit_code, result.output
    # an update makes ready lists: the same answer, read from them ("source" says so)
    return 0, json.dumps([{k: v for k, v in s.items() if k != "source"} for s in json.loads(result.output)])


def assert_clear_error(code: int, output: str) -> None:
    lines = output.strip().splitlines()
    assert code != 0 and "Traceback" not in output, output
    assert lines and lines[-1].startswith("error: "), output
    assert sum(line.startswith("error: ") for line in lines) == 1, output


@pytest.fixture(scope="module")
def baseline(sample_index_path):
    code, output = related(sample_index_path)
    assert code == 0 and json.loads(output)
    return output


def test_the_sample_index_has_every_file_checksummed(sample_index_path):
    meta = IndexMeta.read(sample_index_path)
    assert sorted(meta.checksums) == sorted(FILES[1:]) == sorted(index_files(sample_index_path))
    assert set(meta.files) == set(meta.checksums) and len(meta.build_id) == 12


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("name", FILES)
def test_related_over_a_damaged_file_is_one_error_line_or_the_right_answer(index_copy, baseline, name, how):
    damage(index_copy / name, how)
    code, output = related(index_copy)
    if code == 0:
        assert output == baseline, f"{name} {how}: answered from a damaged file"
    else:
        assert_clear_error(code, output)
        assert "--full" in output or "no index at" in output, output
        if name != "meta.json":
            assert name in output, output


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("name", FILES)
def test_an_update_over_a_damaged_file_refuses_or_rebuilds_it_right(
    index_copy, sample_path, baseline, name, how, tmp_path, monkeypatch
):
    monkeypatch.setenv("RECOMMENDER_CACHE", str(tmp_path.parent / "parse-cache"))  # one archive parse per session
    damage(index_copy / name, how)
    before = snapshot(index_copy)
    result = CliRunner().invoke(app, ["index", "--archive", str(sample_path), "--out", str(index_copy)])
    if result.exit_code == 0:
        assert related(index_copy) == (0, baseline), f"{name} {how}: the update left a wrong index"
        load_index(index_copy).load_all()
    else:
        assert_clear_error(result.exit_code, result.output)
        assert "--full" in result.output and name in result.output, result.output
        assert snapshot(index_copy) == before, "a refused update changed the index"


def snapshot(folder) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


def test_full_rebuilds_a_damaged_index(index_copy, sample_path, baseline):
    damage(index_copy / "vectors.npy", "garbage")
    damage(index_copy / "records.jsonl", "truncate")
    result = CliRunner().invoke(app, ["index", "--full", "--archive", str(sample_path), "--out", str(index_copy)])
    assert result.exit_code == 0, result.output
    assert related(index_copy) == (0, baseline)


def test_a_build_removes_the_folders_a_killed_build_left(index_copy, sample_archive):
    dead = 2**22 + 12345  # above the default pid_max: no process has it
    stale = [index_copy.parent / f".{index_copy.name}.tmp-{dead}", index_copy.parent / f".{index_copy.name}.old-{dead}"]
    for folder in stale:
        shutil.copytree(index_copy, folder)
    mine = index_copy.parent / f".{index_copy.name}.tmp-{os.getppid()}"  # a live process's build: left alone
    mine.mkdir()
    said: list[str] = []
    build_index(sample_archive, index_copy, log=said.append)
    assert not any(folder.exists() for folder in stale) and mine.exists()
    assert sum("left by an interrupted build" in line for line in said) == 2


def test_a_backend_change_is_said_out_loud(index_copy, sample_archive):
    meta = json.loads((index_copy / "meta.json").read_text())
    (index_copy / "meta.json").write_text(
        json.dumps({**meta, "backend": "torch", "model_fingerprint": "53aa51172d142c89-torch"})
    )
    said: list[str] = []
    report = build_index(sample_archive, index_copy, log=said.append)
    assert report.embedded == 1155
    assert any("built with backend torch" in line and "re-embedding every event" in line for line in said), said

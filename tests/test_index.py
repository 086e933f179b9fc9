"""The saved index: complete, atomic, incremental, and clear about damage or another model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import PUTIN
from typer.testing import CliRunner

from recommender.archive import read_archive
from recommender.cli import app
from recommender.embed import Embedder, weights_fingerprint
from recommender.index import IndexLoadError, build_index, check_model, load_index, story_density
from recommender.names import extract_names


def test_index_holds_every_event_with_unit_vectors(sample_index, sample_archive):
    assert len(sample_index) == len(sample_archive.events) == 1155
    assert sample_index.vectors.shape == (1155, 384)
    assert np.allclose(np.linalg.norm(sample_index.vectors, axis=1), 1.0, atol=1e-4)
    meta = sample_index.meta
    assert meta.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta.model_fingerprint == f"{weights_fingerprint()}-torch"
    assert meta.archive_fingerprint == sample_archive.fingerprint and meta.count == 1155
    record = sample_index.record(sample_index.position["SEED-EXAMPLE.md"])
    # 10 curated links, 2 of them to events inside the sample
    assert len(record.related) == 10 and len(record.curated) == 2 and record.sources[0]["name"] == "BBC"


def test_the_related_section_is_never_embedded(sample_index):
    row = sample_index.position["SEED-EXAMPLE.md"]
    text = sample_index.text(row)
    assert "Context" not in text and "Kilo-class" not in text
    vector = Embedder().encode([text])[0]
    assert float(vector @ sample_index.vectors[row]) > 0.999


def test_truncated_index_file_is_a_clear_error(index_copy):
    faiss_file = index_copy / "vectors.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:1000])
    with pytest.raises(IndexLoadError, match=r"vectors.faiss has 1000 bytes.*Rebuild it: recommender index"):
        load_index(index_copy)
    result = CliRunner().invoke(app, ["related", PUTIN, "--index", str(index_copy)])
    assert result.exit_code == 1
    assert result.output.startswith("error: index at") and len(result.output.strip().splitlines()) == 1


def test_missing_index_says_which_command_builds_it(tmp_path):
    result = CliRunner().invoke(app, ["related", PUTIN, "--index", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "build it with `recommender index --archive" in result.output


def test_index_of_another_model_is_refused(index_copy):
    meta = json.loads((index_copy / "meta.json").read_text())
    meta["model_fingerprint"] = "0123456789abcdef-torch"
    (index_copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(IndexLoadError, match="built with model .* Rebuild it"):
        check_model(load_index(index_copy), Embedder())
    result = CliRunner().invoke(app, ["related", "--text", "Putin", "--index", str(index_copy)])
    assert result.exit_code == 1 and "Rebuild it" in result.output


def test_reindex_embeds_only_what_changed(archive_copy, index_copy):
    event = archive_copy / PUTIN
    event.write_text(event.read_text().replace("# Russian President", "# Russia's President"))
    gone = next((archive_copy / "news" / "2016" / "03" / "20").glob("*.md"))
    gone_id = gone.relative_to(archive_copy).as_posix()
    gone.unlink()
    report = build_index(read_archive(archive_copy), index_copy)
    assert (report.embedded, report.removed, report.count) == (1, 1, 1154)
    index = load_index(index_copy)
    assert gone_id not in index.position
    assert index.headlines[index.position[PUTIN]].startswith("Russia's President")
    # names and story density were reused where nothing changed, and equal a computation from scratch
    assert np.array_equal(index.story_density, story_density(index.vectors, index.day))
    for row in range(len(index)):
        assert {index.name_vocab[n] for n in index.names_of(row)} == set(extract_names(index.text(row)))
    again = build_index(read_archive(archive_copy), index_copy)
    assert (again.embedded, again.reused) == (0, 1154)


def test_a_failed_build_leaves_the_old_index_whole(archive_copy, index_copy, monkeypatch):
    before = (index_copy / "vectors.faiss").read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("recommender.index._write_names", boom)
    with pytest.raises(RuntimeError):
        build_index(read_archive(archive_copy), index_copy)
    assert (index_copy / "vectors.faiss").read_bytes() == before
    assert len(load_index(index_copy)) == 1155
    assert not [p for p in index_copy.parent.iterdir() if ".tmp-" in p.name]

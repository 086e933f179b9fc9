"""The saved index: complete, atomic, incremental, and clear about damage or another model."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from conftest import PUTIN
from typer.testing import CliRunner

from recommender.archive import Archive, link_key, read_archive
from recommender.cli import app
from recommender.embed import DEFAULT_MODEL, Embedder, weights_fingerprint
from recommender.index import IndexLoadError, build_index, check_model, load_index, story_density
from recommender.index.layout import PackedStrings
from recommender.index.terms import Terms, tokenize, write_bm25
from recommender.names import extract_names, lower_case_shares, not_names_of, word_roles


def test_index_holds_every_event_with_unit_vectors(sample_index, sample_archive):
    assert len(sample_index) == len(sample_archive.events) == 1155
    assert sample_index.vectors.shape == (1155, 384)
    assert np.allclose(np.linalg.norm(sample_index.vectors, axis=1), 1.0, atol=1e-4)
    meta = sample_index.meta
    assert meta.model == Embedder().name and meta.embedder == DEFAULT_MODEL
    assert meta.model_fingerprint == f"{weights_fingerprint(DEFAULT_MODEL)}-onnx-int8"  # the default backend
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
    vectors_file = index_copy / "vectors.npy"
    vectors_file.write_bytes(vectors_file.read_bytes()[:1000])
    with pytest.raises(IndexLoadError, match=r"vectors.npy has 1000 bytes.*Rebuild it: recommender index"):
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
        assert {index.name_vocab[n] for n in index.names_of(row)} == set(
            extract_names(index.text(row), index.generic_words)
        )
    again = build_index(read_archive(archive_copy), index_copy)
    assert (again.embedded, again.reused) == (0, 1154)


def test_an_index_of_the_previous_format_is_not_reused_unchecked(index_copy, sample_archive, sample_index):
    """An index without checksums cannot be checked, so an update reuses nothing of it, and says so."""
    meta = json.loads((index_copy / "meta.json").read_text())
    (index_copy / "meta.json").write_text(json.dumps({**meta, "format": 2, "checksums": {}}))
    said: list[str] = []
    report = build_index(sample_archive, index_copy, log=said.append)
    assert (report.embedded, report.reused) == (1155, 0)
    assert any("without checksums" in line for line in said)
    updated = load_index(index_copy)
    assert updated.meta.format == 3 and updated.aliases == sample_index.aliases
    assert all(updated.resolve(link_key(i)) == i for i in updated.ids)  # a link without zero padding finds it
    assert all(updated.record(row) == sample_index.record(row) for row in range(0, 1155, 25))


def test_a_failed_build_leaves_the_old_index_whole(archive_copy, index_copy, monkeypatch):
    before = (index_copy / "vectors.npy").read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("recommender.index.build.write_bm25", boom)
    with pytest.raises(RuntimeError):
        build_index(read_archive(archive_copy), index_copy)
    assert (index_copy / "vectors.npy").read_bytes() == before
    assert len(load_index(index_copy)) == 1155
    assert not [p for p in index_copy.parent.iterdir() if ".tmp-" in p.name]


def test_an_update_equals_a_build_from_scratch(sample_archive, sample_index, tmp_path):
    """Build without 40 events and with one headline changed, then update with the real archive: every file
    must hold what the build from scratch holds (vectors to float precision, row by row)."""
    out = tmp_path / "index"
    left_out = sorted(sample_archive.events)[::29][:40]
    events = {i: e for i, e in sample_archive.events.items() if i not in left_out}
    events[PUTIN] = replace(events[PUTIN], headline="Putin orders a withdrawal from Syria")
    digests = {**sample_archive.digests, PUTIN: "changed"}
    build_index(Archive(events, digests=digests), out, reuse=False)
    report = build_index(sample_archive, out)
    assert (report.embedded, report.reused) == (41, 1155 - 41)
    fresh, updated = sample_index, load_index(out)
    assert updated.ids == fresh.ids and updated.aliases == fresh.aliases
    assert np.allclose(updated.vectors, fresh.vectors, atol=1e-5)
    assert np.array_equal(updated.story_density, fresh.story_density)
    assert updated.headlines == fresh.headlines and updated.text_sha == fresh.text_sha
    # records.jsonl was appended to: the 41 new lines at its end, the headline's old line left unused
    assert (out / "records.jsonl").stat().st_size > (fresh.path / "records.jsonl").stat().st_size
    for row in range(len(fresh)):
        assert updated.record(row) == fresh.record(row)
    # which words are generic is read once, at the first build, and kept: an update's names are its texts' names
    # by those words (a build from scratch reads them from all its texts, so may differ by a few)
    first_generic = lower_case_shares([e.text for e in events.values()])
    assert updated.generic_words == first_generic
    assert updated.not_names == not_names_of(word_roles([e.text for e in events.values()]))  # kept alike
    for row in range(len(fresh)):
        names = {updated.name_vocab[n] for n in updated.names_of(row)}
        assert names == set(extract_names(updated.text(row), first_generic))
    for stem in ("tokens",):
        a, b = Terms.load(out, stem), Terms.load(fresh.path, stem)
        assert sorted(a.vocab) == sorted(b.vocab)  # terms of the left-out events came back, the old headline's went
        for row in range(len(fresh)):
            cells_a = dict(zip([a.vocab[t] for t in a.matrix[row].indices], a.matrix[row].data, strict=True))
            cells_b = dict(zip([b.vocab[t] for t in b.matrix[row].indices], b.matrix[row].data, strict=True))
            assert cells_a == cells_b
    for query in ("putin syria withdrawal", "zika virus brazil", "the of and"):
        tokens = tokenize([query])[0]
        assert np.allclose(updated.bm25_scores(tokens), fresh.bm25_scores(tokens))

    # with half the events gone, unused lines would be most of records.jsonl: it is rewritten in row order
    half = Archive(dict(list(sample_archive.events.items())[::2]), digests=sample_archive.digests)
    build_index(half, out)
    smaller = load_index(out)
    spans = np.load(out / "records.offsets.npy")
    assert spans[0, 0] == 0 and np.array_equal(spans[1:, 0], spans[:-1, 1])
    assert spans[-1, 1] == (out / "records.jsonl").stat().st_size
    for row, event_id in enumerate(smaller.ids):
        mine, full = smaller.record(row), fresh.record(fresh.position[event_id])
        assert (mine.id, mine.summary, mine.sources) == (full.id, full.summary, full.sources)
        # links are resolved against the events indexed now: those to left-out events no longer resolve
        assert [link["href"] for link in mine.related] == [link["href"] for link in full.related]
        assert set(mine.curated) == {i for i in full.curated if i in smaller.position}


def test_bm25_scores_are_those_of_bm25s(sample_index, tmp_path):
    """The index's BM25 (array operations over stored term counts) scores as bm25s's own `index` does."""
    import bm25s

    texts = [sample_index.text(row) for row in range(len(sample_index))]
    tokens = tokenize(texts)
    ours = Terms.assemble(None, np.full(len(texts), -1), tokens)
    write_bm25(tmp_path / "bm25", ours)
    loaded = bm25s.BM25.load(str(tmp_path / "bm25"))
    reference = bm25s.BM25()
    reference.index(tokens, show_progress=False)
    checked = 0
    for query in ("putin syria withdrawal", "zika virus brazil", "election president vote", "apple fbi iphone"):
        ids = [loaded.vocab_dict[t] for t in tokenize([query])[0] if t in loaded.vocab_dict]
        reference_ids = [reference.vocab_dict[t] for t in tokenize([query])[0] if t in reference.vocab_dict]
        scores, expected = loaded.get_scores_from_ids(ids), reference.get_scores_from_ids(reference_ids)
        assert np.allclose(scores, expected, rtol=1e-5, atol=1e-6) and expected.max() > 0
        checked += int((expected > 0).sum())
    assert checked > 50


def test_packed_strings_read_back_as_written():
    """A loaded index keeps its headlines as one UTF-8 buffer (a tenth of the memory of a string each)."""
    values = ["", "Zürich – naïve", "a", "𝄞 music", ""]
    packed = PackedStrings(values)
    assert len(packed) == 5 and list(packed) == values and packed == values
    assert packed[1] == values[1] and packed[-2] == values[-2] and packed[1:4] == values[1:4]
    with pytest.raises(IndexError):
        packed[5]


def test_an_index_written_before_vectors_npy_still_loads_and_an_update_drops_its_faiss_file(
    index_copy, sample_index, sample_archive
):
    faiss = pytest.importorskip("faiss")  # to write the file as such an index has it (reading it needs no FAISS)
    from recommender.index.layout import checksum
    from recommender.rank import Recommender

    flat = faiss.IndexFlatIP(384)
    flat.add(np.load(index_copy / "vectors.npy"))
    faiss.write_index(flat, str(index_copy / "vectors.faiss"))
    (index_copy / "vectors.npy").unlink()
    meta = json.loads((index_copy / "meta.json").read_text())
    for table in ("files", "checksums"):
        del meta[table]["vectors.npy"]
    meta["files"]["vectors.faiss"] = (index_copy / "vectors.faiss").stat().st_size
    meta["checksums"]["vectors.faiss"] = checksum((index_copy / "vectors.faiss").read_bytes())
    (index_copy / "meta.json").write_text(json.dumps(meta))
    old = load_index(index_copy)
    assert np.array_equal(old.vectors, sample_index.vectors)
    row = sample_index.position[PUTIN]
    assert [s.id for s in Recommender(old).related(PUTIN, k=10)] == [
        s.id for s in Recommender(sample_index).related(PUTIN, k=10)
    ]
    (index_copy / "vectors.faiss").write_bytes((index_copy / "vectors.faiss").read_bytes()[:-4])
    with pytest.raises(IndexLoadError, match=r"vectors.faiss has"):
        _ = load_index(index_copy).vectors
    (index_copy / "vectors.faiss").write_bytes(faiss.serialize_index(flat).tobytes())
    build_index(sample_archive, index_copy, archive_name="sample")  # an update: nothing to embed again
    assert not (index_copy / "vectors.faiss").exists() and row == load_index(index_copy).position[PUTIN]
    assert np.array_equal(load_index(index_copy).vectors, sample_index.vectors)

"""Fine-tuning the embedder: train-split pairs only, batches free of known false negatives, a model that loads."""

from __future__ import annotations

import json

import numpy as np

from recommender.embed import Embedder, weights_fingerprint
from recommender.finetune import (
    FinetuneSettings,
    batches_without_false_negatives,
    finetune,
    related_rows,
    training_pairs,
)
from recommender.truth import subsplit_of, truth_from_archive


def test_pairs_come_from_the_train_split_alone(sample_archive, sample_index):
    truth = truth_from_archive(sample_archive, set(sample_index.ids))
    pairs = training_pairs(sample_index, truth, FinetuneSettings(pairs=10_000, pairs_per_query=3))
    assert len(pairs) > 200
    ids = sample_index.ids
    assert {subsplit_of(ids[a]) for a, b in pairs} | {subsplit_of(ids[b]) for a, b in pairs} == {"train"}
    assert all(ids[b] in truth.relevant[ids[a]] for a, b in pairs)
    assert {subsplit_of(i) for i in truth.relevant} == {"train", "dev", "test"}  # the others exist, and are left out


def test_no_batch_holds_two_events_of_one_curated_list(sample_archive, sample_index):
    truth = truth_from_archive(sample_archive, set(sample_index.ids))
    pairs = training_pairs(sample_index, truth, FinetuneSettings(pairs=10_000))
    related = related_rows(sample_index, truth)
    batches = batches_without_false_negatives(pairs, related, batch_size=16, steps=30, seed=1)
    assert len(batches) == 30 and max(len(b) for b in batches) == 16
    for batch in batches:
        events = [e for pair in batch for e in pair]
        assert len(events) == len(set(events))
        for i, (a, b) in enumerate(batch):
            others = {e for j, pair in enumerate(batch) if j != i for e in pair}
            assert not (related.get(a, set()) | related.get(b, set())) & others


def test_a_short_run_saves_a_model_that_indexes(sample_archive, sample_index, tmp_path):
    truth = truth_from_archive(sample_archive, set(sample_index.ids))
    out = finetune(sample_index, truth, tmp_path / "tuned", FinetuneSettings(pairs=64, steps=3, batch_size=8))
    record = json.loads((out / "finetune.json").read_text())
    assert record["settings"]["steps"] == 3 and record["base_model_fingerprint"] == weights_fingerprint("base")
    assert (out / "onnx" / "model_int8.onnx").stat().st_size < 25_000_000
    embedder = Embedder(model=str(out))
    assert embedder.fingerprint != Embedder().fingerprint
    vectors = embedder.encode([sample_index.text(0), sample_index.text(1)])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    base = Embedder(model="base").encode([sample_index.text(0)])[0]
    assert 0.9 < float(vectors[0] @ base) < 0.99999  # three small steps from the base model move it a little

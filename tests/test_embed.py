"""The packaged model on the CPU: unit vectors, one vector per text whatever it is batched with, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from recommender.cli import app
from recommender.embed import BACKENDS, Embedder, EmbedderError, weights_fingerprint


def test_a_text_has_one_vector_whatever_it_is_encoded_with(sample_index):
    """The default (ONNX int8) encodes each text alone: in a batch, int8 activation scales would mix texts."""
    texts = [sample_index.text(row) for row in range(40)]
    embedder = Embedder()
    together = embedder.encode(texts)
    alone = np.vstack([embedder.encode([text]) for text in texts[::7]])
    assert np.allclose(together[::7], alone, atol=1e-6)
    assert np.allclose(together, sample_index.vectors[:40], atol=1e-6)  # as the index holds them


def test_vectors_are_unit_length_and_similar_texts_are_close():
    vectors = Embedder().encode(["Putin orders a withdrawal from Syria", "Russia pulls troops out of Syria", "Zika"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > 0.6 > vectors[0] @ vectors[2]
    assert Embedder().encode([]).shape == (0, 384)


def test_the_fingerprint_names_weights_and_backend():
    assert Embedder("onnx-int8", model="base").fingerprint == f"{weights_fingerprint('base')}-onnx-int8"
    assert len({Embedder(b, model="base").fingerprint for b in BACKENDS}) == len(BACKENDS)
    assert Embedder(model="tuned").fingerprint == f"{weights_fingerprint('tuned')}-onnx-int8"
    assert weights_fingerprint("tuned") != weights_fingerprint("base")


def test_the_tuned_model_ships_as_int8_and_loads_offline():
    """The fine-tuned model is in the package (int8 ONNX, tokenizer, config, its training record): nothing to
    train, export or download; its base model's fingerprint is recorded."""
    import json

    from recommender.embed import TUNED_DIR

    assert (TUNED_DIR / "model_int8.onnx").stat().st_size <= 25_000_000
    record = json.loads((TUNED_DIR / "finetune.json").read_text())
    assert record["base_model_fingerprint"] == weights_fingerprint("base") and record["settings"]["steps"] > 0
    tuned, base = Embedder(model="tuned"), Embedder(model="base")
    texts = ["Putin orders a withdrawal from Syria", "Russia pulls troops out of Syria"]
    a, b = tuned.encode(texts), base.encode(texts)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    assert not np.allclose(a, b, atol=1e-3)  # other weights
    assert float(a[0] @ b[0]) > 0.7  # fine-tuned from it, not another model
    with pytest.raises(EmbedderError, match="int8 ONNX alone"):
        Embedder("torch", model="tuned")
    with pytest.raises(EmbedderError, match="--model"):
        Embedder(model="/nonexistent/model")


def test_an_unknown_backend_is_one_line():
    with pytest.raises(EmbedderError, match="unknown backend 'gpu'"):
        Embedder("gpu")
    result = CliRunner().invoke(app, ["index", "--backend", "gpu", "--archive", "/nonexistent"])
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1


def test_the_one_time_export_of_the_base_model_says_so_and_nothing_else(tmp_path):
    """`index --model base` exports the base model once: one plain line on stderr, no loading bar (stderr is no
    terminal here), no tracer warnings."""
    import subprocess
    import sys

    from conftest import ROOT

    script = (
        "from pathlib import Path; from recommender.embed import BASE, model_path; "
        f"from recommender.onnx_export import export; export(model_path(BASE), Path({str(tmp_path)!r}), True)"
    )
    env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"exporting the model to ONNX and quantising it to int8 into {tmp_path}: once, later runs reuse it (about 10 s)"
    ], done.stderr
    assert (tmp_path / "model_int8.onnx").is_file()

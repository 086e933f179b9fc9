"""The index folder's format in one place: its version, file names, columns and meta.json, read and written.

    meta.json            model name and weights fingerprint, dimension, counts, archive name and fingerprint, a
                         build id, and the size and checksum of every other file
    vectors.npy          the unit vectors, (n, dim) float32 (row i is event i), memory-mapped by queries:
                         processes serving the index share its pages. (An index written before it kept them
                         in vectors.faiss, a FAISS flat index, still read here without FAISS; an update drops it.)
    columns.json         id, date, headline, summary, text hash, file digest and story density of every event
    records.jsonl        the full event (sources, curated Related) one per line, read by byte offset
    records.offsets.npy  (start, end) byte span of each row's line in records.jsonl
    bm25/                a bm25s index over the text the embedder sees
    tokens.npz .json     the BM25 term counts of each event (sparse rows) and their vocabulary
    names.npz names.json the names of each event (sparse rows) and their vocabulary
    names.generic.json   the words the archive mostly writes in lower case, which names leave out (names.py)
    stories.npz .json    the story labels of each event (sparse rows) and their vocabulary: the `_Context:_` items
                         of its curated links and of the links made to it, for the contexts shown (never a
                         ranking feature: they are read from Related sections)
    lists/               ready lists (optional, `recommender index --no-lists` skips them): each event's top
                         READY_K suggestions by the fused ranker and their signals, and the thresholds an update
                         uses to find the lists a changed event can enter (`index/lists.py`)

Every file but meta.json is checked against its size and BLAKE2b checksum when it is first read (`read_file`),
so a damaged file is a clear error, never an answer from garbage. An index written before checksums has
sizes only.

Queries score every event with one matrix product over the mapped vectors: the fused ranker needs every
event's cosine (its candidates come from dense, BM25 and a date window, and each is scored on its dense
similarity), which a top-k search would not give. No FAISS index is kept: an exact one is the same product
from a private copy of the vectors, no faster at this size (eval/RESULTS.md, "FAISS (issue 28)").
"""

from __future__ import annotations

import hashlib
import io
import json
import mmap
import secrets
import struct
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, overload

import numpy as np
import orjson

FORMAT_VERSION = 3
DEFAULT_INDEX = Path("models") / "default"

META = "meta.json"
VECTORS = "vectors.npy"
FAISS_VECTORS = "vectors.faiss"  # where an index written before vectors.npy kept its vectors (read-only)
COLUMNS = "columns.json"
RECORDS = "records.jsonl"
RECORD_SPANS = "records.offsets.npy"
BM25 = "bm25"
TOKENS = "tokens"  # tokens.npz and tokens.json
NAMES = "names"  # names.npz and names.json
NAME_GENERIC = "names.generic.json"  # absent from indexes built before it: no word is then generic
STORIES = "stories"  # stories.npz and stories.json; absent from indexes built before them: read from the records
LISTS = "lists"  # the ready lists: one .npy file per array of LIST_ARRAYS
READY_K = 50  # suggestions kept ready per event
# (n, READY_K) arrays, row -1 past a list's end: the suggested rows, the ranker's score and the signals that
# `related --json` shows (dense cosine, BM25 relative to the pool's best, the share of name weight); and (n, 2)
# float32 `thresholds`: each event's POOL-th dense and BM25 candidate score (BM25 0 when fewer score above 0);
# (n, CONTEXT_K) `contexts`: the context shown for each of the first CONTEXT_K, as CONTEXT_BYTES of UTF-8, its
# parts joined by US (0x1f), RS (0x1e) alone for an empty one, no bytes where it did not fit (made on read)
LIST_ARRAYS = ("rows", "score", "dense", "bm25", "names", "thresholds", "contexts")
CONTEXT_K = 10
CONTEXT_BYTES = 64
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
        f"index at {path} is damaged: {why}. Rebuild it: recommender index --full --archive ARCHIVE --out {path}"
    )


def index_files(folder: Path) -> list[str]:
    """Every file of a written index but meta.json, as names relative to it (bm25/ holds several)."""
    bm25 = sorted(f"{BM25}/{f.name}" for f in (folder / BM25).iterdir()) if (folder / BM25).is_dir() else []
    optional = [name for name in (NAME_GENERIC, f"{STORIES}.npz", f"{STORIES}.json") if (folder / name).exists()]
    lists = [f"{LISTS}/{name}.npy" for name in LIST_ARRAYS if (folder / LISTS / f"{name}.npy").exists()]
    return [*REQUIRED_FILES, *optional, *bm25, *lists]


def checksum(data: bytes | memoryview) -> str:
    """A fast checksum of a file's bytes (BLAKE2b: well over 500 MB/s)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def new_build_id() -> str:
    return secrets.token_hex(6)


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
    files: dict[str, int] = field(default_factory=dict)  # size of each file
    checksums: dict[str, str] = field(default_factory=dict)  # `checksum` of each file
    build_id: str = ""
    embedder: str = "base"  # the model choice that built it: base, tuned, or a fine-tuned model's folder
    # the ready lists: the fingerprint of the ranker that made them ("" when there are none), how many were
    # computed by the build that wrote them (the others copied from the index before) and in how many seconds
    lists_fingerprint: str = ""
    lists_computed: int = 0
    lists_seconds: float = 0.0
    lists_recipe: dict[str, str] = field(default_factory=dict)  # what made them (`rank/fingerprint.py`)
    lists_skipped: bool = False  # built with --no-lists: every build after it keeps none until asked

    @classmethod
    def read(cls, folder: Path) -> IndexMeta:
        try:
            meta = cls(**json.loads((folder / META).read_bytes().decode("utf-8")))
        except (ValueError, TypeError) as exc:  # ValueError: bad JSON or bad UTF-8
            raise damaged(folder, f"{META} is unreadable ({str(exc)[:120]})") from None
        expected = {f.name: f.type for f in fields(cls)}
        kinds: dict[str, type | tuple[type, ...]] = {
            "str": str,
            "int": int,
            "float": (int, float),
            "dict[str, int]": dict,
            "dict[str, str]": dict,
            "bool": bool,
        }
        for name, kind in expected.items():
            if not isinstance(getattr(meta, name), kinds[str(kind)]):
                raise damaged(folder, f"{META} is unreadable ({name} has the wrong type)")
        return meta

    def write(self, folder: Path) -> None:
        (folder / META).write_text(json.dumps(asdict(self), indent=2))

    def seal(self, folder: Path) -> None:
        """Record the size and checksum of every file of the index written in `folder`."""
        names = index_files(folder)
        self.files = {name: (folder / name).stat().st_size for name in names}
        self.checksums = {name: checksum((folder / name).read_bytes()) for name in names}


def verify(folder: Path, meta: IndexMeta, name: str, data: bytes | memoryview) -> None:
    """Raise IndexLoadError naming the file when `data` (read from `name`) is not what the build wrote."""
    size = meta.files.get(name)
    if size is not None and len(data) != size:
        raise damaged(folder, f"{name} has {len(data)} bytes, expected {size}")
    expected = meta.checksums.get(name)
    if expected is not None and checksum(data) != expected:
        raise damaged(folder, f"{name} fails its checksum")


def read_file(folder: Path, meta: IndexMeta | None, name: str) -> bytes:
    """The bytes of the index file `name`, checked against `meta` (unchecked when `meta` is None)."""
    try:
        data = (folder / name).read_bytes()
    except FileNotFoundError:
        raise damaged(folder, f"{name} is missing") from None
    except OSError as exc:
        raise damaged(folder, f"{name} cannot be read ({exc.strerror})") from None
    if meta is not None:
        verify(folder, meta, name, data)
    return data


def load_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


@dataclass
class Columns:
    """One value per event, in row order (`aliases`: link key -> id, for ids that are not their own key and that
    trying the key's zero paddings does not find)."""

    id: list[str]
    story_density: list[int]
    date: list[int]  # proleptic ordinal
    headline: list[str]
    summary: list[str]
    text_sha: list[str]
    digest: list[str]
    aliases: dict[str, str]

    @classmethod
    def read(cls, folder: Path, meta: IndexMeta | None = None) -> Columns:
        """columns.json (checked against `meta`); a column that an older format did not write is empty."""
        try:
            raw = orjson.loads(read_file(folder, meta, COLUMNS))
            empty: dict[str, Any] = {"aliases": {}}
            columns = cls(**{f.name: raw.get(f.name, empty.get(f.name, [])) for f in fields(cls)})
        except (orjson.JSONDecodeError, AttributeError, TypeError) as exc:
            raise damaged(folder, f"{COLUMNS} is unreadable ({str(exc)[:120]})") from None
        lengths = {len(v) for f in fields(cls) if f.name != "aliases" and len(v := getattr(columns, f.name))}
        if len(lengths) > 1:
            raise damaged(folder, f"{COLUMNS} has columns of different lengths")
        return columns

    def write(self, folder: Path) -> None:
        # the fields as they are: `asdict` would deep-copy every string first (2 s for the full archive)
        (folder / COLUMNS).write_bytes(orjson.dumps({f.name: getattr(self, f.name) for f in fields(self)}))


class PackedStrings(Sequence[str]):
    """A column of strings held as one UTF-8 buffer and its offsets, decoded on access: a loaded index keeps
    its headlines and summaries in a tenth of the memory that one Python string each takes (a server holds
    one loaded index per worker process)."""

    def __init__(self, strings: Sequence[str]):
        encoded = [s.encode("utf-8") for s in strings]
        self._data = b"".join(encoded)
        self._ends = np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)))

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, row: int) -> str: ...
    @overload
    def __getitem__(self, row: slice) -> list[str]: ...
    def __getitem__(self, row: int | slice) -> str | list[str]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self._ends)
        end = int(self._ends[row])  # IndexError past the end, as a list's
        start = int(self._ends[row - 1]) if row else 0
        return self._data[start:end].decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


def read_faiss_vectors(folder: Path, meta: IndexMeta | None = None) -> np.ndarray:
    """The (n, dim) float32 vectors of vectors.faiss (checked against `meta`), for an index written before
    vectors.npy. Read without FAISS: the file is `faiss.write_index` of a flat index, a 4-byte kind (IxFI inner
    product, IxF2 L2), dim (int32), n (int64), three more header fields, the metric (int32), then n * dim (uint64)
    and the floats. Raises IndexLoadError when it is damaged."""
    data = read_file(folder, meta, FAISS_VECTORS)
    if len(data) < FAISS_HEADER or data[:4] not in (b"IxFI", b"IxF2"):
        raise damaged(folder, f"{FAISS_VECTORS} is not a flat FAISS index")
    dim, rows = struct.unpack_from("<iq", data, 4)
    (floats,) = struct.unpack_from("<Q", data, FAISS_HEADER - 8)
    if dim <= 0 or rows < 0 or floats != rows * dim or len(data) != FAISS_HEADER + 4 * floats:
        raise damaged(folder, f"{FAISS_VECTORS} holds {len(data):,} bytes, not the {rows:,} x {dim} vectors it says")
    return np.frombuffer(data, dtype="<f4", offset=FAISS_HEADER).reshape(rows, dim)


FAISS_HEADER = 45  # bytes before a flat FAISS index's floats


def map_vectors(folder: Path, meta: IndexMeta, rows: int) -> np.ndarray | None:
    """The (rows, meta.dim) float32 vectors of vectors.npy as a read-only memory map (checked against `meta`), so
    that processes serving the same index share its pages; None for an index written before it (vectors.faiss).
    (A build's own folder, read before its meta is sealed, lists no file yet: vectors.npy is there.)"""
    if FAISS_VECTORS in meta.files and VECTORS not in meta.files:
        return None
    try:
        with open(folder / VECTORS, "rb") as handle:
            verify(folder, meta, VECTORS, memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)))
        # a plain view of the map: numpy's memmap subclass costs a Python call on every row read
        vectors: np.ndarray = np.asarray(np.load(folder / VECTORS, mmap_mode="r", allow_pickle=False))
    except FileNotFoundError:
        raise damaged(folder, f"{VECTORS} is missing") from None
    except (OSError, ValueError) as exc:
        raise damaged(folder, f"{VECTORS} is unreadable ({str(exc)[:120]})") from None
    if vectors.shape != (rows, meta.dim) or vectors.dtype != np.float32:
        raise damaged(folder, f"{VECTORS} does not match {COLUMNS}")
    return vectors


def write_generic_words(folder: Path, roles: dict[str, Any], version: int) -> None:
    """names.generic.json: the roles of words in the archive (`names.word_roles`: the lower-case `shares` of the
    words it mostly writes in lower case, its modifiers and acronyms), as the name rules of `version`
    (`names.VERSION`) read them."""
    saved = {"version": version, **roles}
    (folder / NAME_GENERIC).write_text(json.dumps(saved, sort_keys=True), encoding="utf-8")


def read_generic_words(folder: Path, meta: IndexMeta, version: int | None = None) -> dict[str, Any] | None:
    """The word roles of names.generic.json (`shares` and, from names.VERSION 3, modifiers and acronyms), or None
    when the index has none (or, given `version`, has those of other name rules). An index being built has its
    files before its meta names them: its ready lists read it then."""
    if NAME_GENERIC not in meta.files and not (folder / NAME_GENERIC).exists():
        return None
    saved = json.loads(read_file(folder, meta, NAME_GENERIC))
    if not isinstance(saved, dict) or "shares" not in saved:
        return None
    if version is not None and saved.get("version") != version:
        return None
    return {key: value for key, value in saved.items() if key != "version"}


def load_vectors(folder: Path, meta: IndexMeta, rows: int) -> np.ndarray:
    """The (rows, meta.dim) float32 vectors: vectors.npy mapped (`map_vectors`), or, for an index written before
    it, vectors.faiss read into memory. Raises IndexLoadError when they do not match the index."""
    vectors, name = map_vectors(folder, meta, rows), VECTORS
    if vectors is None:
        vectors, name = read_faiss_vectors(folder, meta), FAISS_VECTORS
    if vectors.shape != (rows, meta.dim):
        raise damaged(folder, f"{name} does not match {COLUMNS}")
    if not meta.checksums and not np.isfinite(vectors).all():
        raise damaged(folder, f"{name} holds values that are not numbers")
    return vectors


def load_spans(folder: Path, meta: IndexMeta, rows: int, size: int) -> np.ndarray:
    """Where each row's line is in records.jsonl (of `size` bytes): a (rows, 2) array of start and end offsets,
    checked. Raises IndexLoadError when it is unreadable or does not match."""
    try:
        spans = load_npy(read_file(folder, meta, RECORD_SPANS))
    except (ValueError, OSError, EOFError) as exc:
        raise damaged(folder, f"{RECORD_SPANS} is unreadable ({str(exc)[:120]})") from None
    if (
        spans.shape != (rows, 2)
        or not np.issubdtype(spans.dtype, np.integer)
        or (len(spans) and (spans.min() < 0 or spans.max() > size or (spans[:, 0] > spans[:, 1]).any()))
    ):
        raise damaged(folder, f"{RECORD_SPANS} does not match {RECORDS}")
    return spans


def write_vectors(folder: Path, vectors: np.ndarray) -> None:
    np.save(folder / VECTORS, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)

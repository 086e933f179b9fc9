"""The ready lists of an index folder (`lists/`): stored, checked and memory-mapped; what they hold is made in
`rank/ready.py`.

Each array is one .npy file, mapped read-only on load (`np.load(mmap_mode="r")`): builds and updates read
them whole through the maps. A server reads one event's entry at a time (`entry`) with `pread` from the same
files instead: the pages stay in the system's page cache, shared by every process, and are not counted again in
each server process's memory for every event it ever answered. Each file is checked against its checksum in
meta.json through a map that is closed after, without reading it onto the heap.
"""

from __future__ import annotations

import mmap
import os
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recommender.index.layout import (
    CONTEXT_BYTES,
    CONTEXT_K,
    LIST_ARRAYS,
    LISTS,
    READY_K,
    IndexMeta,
    damaged,
    verify,
)

VERSION = 1  # of what this code makes of a ready list: bump it when a change can alter one (`rank/fingerprint.py`)
DTYPES = {"rows": np.int32, "score": np.float32, "dense": np.float32, "bm25": np.float32, "names": np.float32}
CONTEXT_DTYPE = np.dtype(f"S{CONTEXT_BYTES}")
PART, EMPTY = "\x1f", b"\x1e"


@dataclass
class ReadyLists:
    """Row i: event i's suggestions, best first (`rows` -1 past its end); `thresholds[i]`: its POOL-th dense
    and BM25 candidate scores; `contexts[i]`: the contexts of its first CONTEXT_K, encoded (`encode_context`;
    None for lists written before they were kept); `fingerprint`: the ranker that made them."""

    rows: np.ndarray
    score: np.ndarray
    dense: np.ndarray
    bm25: np.ndarray
    names: np.ndarray
    thresholds: np.ndarray
    contexts: np.ndarray | None
    fingerprint: str
    # for `entry`: each array of DTYPES as (open file, byte offset of its data), when loaded from a folder
    files: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    @classmethod
    def empty(cls, count: int, fingerprint: str, k: int = READY_K) -> ReadyLists:
        arrays = {name: np.zeros((count, k), dtype=dtype) for name, dtype in DTYPES.items()}
        arrays["rows"][:] = -1
        return cls(
            rows=arrays["rows"],
            score=arrays["score"],
            dense=arrays["dense"],
            bm25=arrays["bm25"],
            names=arrays["names"],
            thresholds=np.zeros((count, 2), dtype=np.float32),
            contexts=np.zeros((count, CONTEXT_K), dtype=CONTEXT_DTYPE),
            fingerprint=fingerprint,
        )

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def entry(self, row: int) -> tuple[np.ndarray, ...]:
        """Event `row`'s stored rows, scores and signals (the arrays of DTYPES, in order) and its contexts (empty
        when not kept), read from the files."""
        names = [*DTYPES, "contexts"] if self.contexts is not None else list(DTYPES)
        if not self.files:
            out = [np.asarray(getattr(self, name)[row]) for name in names]
        else:
            out = []
            for name in names:
                array = getattr(self, name)
                handle, offset = self.files[name]
                size = array.shape[1] * array.dtype.itemsize
                out.append(np.frombuffer(os.pread(handle, size, offset + row * size), dtype=array.dtype))
        if self.contexts is None:
            out.append(np.zeros(0, dtype=CONTEXT_DTYPE))
        return tuple(out)

    def take(self, source: np.ndarray, target: np.ndarray, lists: ReadyLists) -> None:
        """Copy the lists of `lists`' events `source` into events `target` (as they are: renumbering the
        suggested rows is the caller's). Contexts that `lists` lacks are left empty: made on read."""
        for name in (*DTYPES, "thresholds"):
            getattr(self, name)[target] = getattr(lists, name)[source]
        if self.contexts is not None:
            self.contexts[target] = lists.contexts[source] if lists.contexts is not None else b""

    def write(self, folder: Path) -> None:
        (folder / LISTS).mkdir(exist_ok=True)
        for name in LIST_ARRAYS:
            if getattr(self, name) is not None:
                np.save(folder / LISTS / f"{name}.npy", getattr(self, name), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, meta: IndexMeta) -> ReadyLists | None:
        """The lists of the index at `folder`, mapped; None when it has none. IndexLoadError when damaged."""
        if not meta.lists_fingerprint or not (folder / LISTS).is_dir():
            return None
        arrays: dict[str, np.ndarray] = {}
        files: dict[str, tuple[int, int]] = {}
        for name in LIST_ARRAYS:
            file = f"{LISTS}/{name}.npy"
            if name == "contexts" and file not in meta.files:
                continue  # lists written before contexts were kept: made on read
            try:
                with open(folder / file, "rb") as handle:
                    _verify_mapped(folder, meta, file, handle.fileno())
                mapped = np.load(folder / file, mmap_mode="r", allow_pickle=False)
                if name != "thresholds":
                    files[name] = (os.open(folder / file, os.O_RDONLY), int(mapped.offset))
                arrays[name] = np.asarray(mapped)  # a plain view: the memmap subclass costs a call a row
            except FileNotFoundError:
                raise damaged(folder, f"{file} is missing") from None
            except (OSError, ValueError) as exc:
                raise damaged(folder, f"{file} is unreadable ({str(exc)[:120]})") from None
        shape = (meta.count, arrays["rows"].shape[1] if arrays["rows"].ndim == 2 else -1)
        if any(arrays[name].shape != shape for name in DTYPES) or arrays["thresholds"].shape != (meta.count, 2):
            raise damaged(folder, f"{LISTS}/ does not match {meta.count} events")
        if any(arrays[name].dtype != dtype or not arrays[name].flags.c_contiguous for name, dtype in DTYPES.items()):
            raise damaged(folder, f"{LISTS}/ holds arrays of another type")
        contexts = arrays.pop("contexts", None)
        layout = (meta.count, CONTEXT_K), CONTEXT_DTYPE, True
        if contexts is not None and (contexts.shape, contexts.dtype, contexts.flags.c_contiguous) != layout:
            contexts = None  # kept in another layout (another CONTEXT_K or CONTEXT_BYTES): made on read
            os.close(files.pop("contexts")[0])
        lists = cls(**arrays, contexts=contexts, fingerprint=meta.lists_fingerprint, files=files)
        for descriptor, _ in files.values():
            weakref.finalize(lists, os.close, descriptor)
        return lists


def _verify_mapped(folder: Path, meta: IndexMeta, name: str, handle: int) -> None:
    """Check a file against meta.json through a map closed after: its pages leave this process's memory."""
    with mmap.mmap(handle, 0, access=mmap.ACCESS_READ) as data:
        view = memoryview(data)
        try:
            verify(folder, meta, name, view)
        finally:
            view.release()


def encode_context(context: tuple[str, ...] | list[str]) -> bytes:
    """A context as `contexts` keeps it; b"" (made on read) when it does not fit in CONTEXT_BYTES or a part of
    it would not read back as written (empty, or holding a separator)."""
    if any(not part or PART in part or EMPTY.decode() in part for part in context):
        return b""
    data = PART.join(context).encode("utf-8") if context else EMPTY
    return data if len(data) <= CONTEXT_BYTES else b""


def decode_context(data: bytes) -> tuple[str, ...] | None:
    """A kept context, or None where none was kept."""
    if not data:
        return None
    return () if data == EMPTY else tuple(data.decode("utf-8").split(PART))

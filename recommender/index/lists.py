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

from recommender.index.layout import LIST_ARRAYS, LISTS, READY_K, IndexMeta, damaged, verify

DTYPES = {"rows": np.int32, "score": np.float32, "dense": np.float32, "bm25": np.float32, "names": np.float32}


@dataclass
class ReadyLists:
    """Row i: event i's suggestions, best first (`rows` -1 past its end); `thresholds[i]`: its POOL-th dense
    and BM25 candidate scores; `fingerprint`: the ranker that made them."""

    rows: np.ndarray
    score: np.ndarray
    dense: np.ndarray
    bm25: np.ndarray
    names: np.ndarray
    thresholds: np.ndarray
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
            fingerprint=fingerprint,
        )

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def entry(self, row: int) -> tuple[np.ndarray, ...]:
        """Event `row`'s stored rows, scores and signals (the arrays of DTYPES, in order), read from the files."""
        if not self.files:
            return tuple(np.asarray(getattr(self, name)[row]) for name in DTYPES)
        width = self.rows.shape[1]
        out = []
        for name, dtype in DTYPES.items():
            handle, offset = self.files[name]
            size = width * np.dtype(dtype).itemsize
            out.append(np.frombuffer(os.pread(handle, size, offset + row * size), dtype=dtype))
        return tuple(out)

    def take(self, source: np.ndarray, target: np.ndarray, lists: ReadyLists) -> None:
        """Copy the lists of `lists`' events `source` into events `target` (as they are: renumbering the
        suggested rows is the caller's)."""
        for name in (*DTYPES, "thresholds"):
            getattr(self, name)[target] = getattr(lists, name)[source]

    def write(self, folder: Path) -> None:
        (folder / LISTS).mkdir(exist_ok=True)
        for name in LIST_ARRAYS:
            np.save(folder / LISTS / f"{name}.npy", getattr(self, name), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, meta: IndexMeta) -> ReadyLists | None:
        """The lists of the index at `folder`, mapped; None when it has none. IndexLoadError when damaged."""
        if not meta.lists_fingerprint or not (folder / LISTS).is_dir():
            return None
        arrays = {}
        files: dict[str, tuple[int, int]] = {}
        for name in LIST_ARRAYS:
            file = f"{LISTS}/{name}.npy"
            try:
                with open(folder / file, "rb") as handle:
                    _verify_mapped(folder, meta, file, handle.fileno())
                mapped = np.load(folder / file, mmap_mode="r", allow_pickle=False)
                if name in DTYPES:
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
        lists = cls(**arrays, fingerprint=meta.lists_fingerprint, files=files)
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

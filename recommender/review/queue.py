"""The review session: which events have suggestions not yet decided, and the decisions themselves (accept into
Related, reject for good, skip, undo), each kept in the files they belong to and logged in decisions.jsonl.

Suggestions are computed lazily, per event, when its page or a queue of at most `QUEUE_BATCH` new events is
shown, and kept while the event's file keeps its digest (an edit by hand is seen at once); a background thread
computes the rest of the session's date window in date order, so that the queue's counts and its confidence
order fill in without one request paying for a whole archive. What is offered leaves out the file's Related items
(shown, marked), pairs in editors.toml's never lists and pairs rejected in decisions.jsonl.

After a file edit the index is updated for it in the background (`lifecycle.build` reuses every vector: only the
Related list changed; the ready lists stay current), and the event's page is always read from its file as it is now.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from recommender.archive import Archive, Event, EventParseError, archive_fingerprint, parse_event
from recommender.embed import Embedder
from recommender.eventfile import related_ids
from recommender.index import load_index
from recommender.lifecycle import build, recommender_for
from recommender.locking import archive_lock, index_lock
from recommender.rank import Recommender, Suggestion
from recommender.reading import read_archive_cached
from recommender.review.edit import (
    ReadOnlyFileError,
    StaleFileError,
    accept,
    check_writable,
    digest,
    drop_suggested,
    read_checked,
    write_atomic,
)
from recommender.suggest import (
    DECISIONS_FILE,
    BatchOptions,
    Decisions,
    EditorRules,
    FileState,
    append_decisions,
    append_never,
    load_decisions,
    load_rules,
    remove_never,
    suggest_for,
)

REASONS = ("wrong story", "too generic", "duplicate", "other")
QUEUE_BATCH = 200  # events whose suggestions one queue request may compute (the background thread does the rest)
RULES_FILE = "editors.toml"
NEXT_SCAN = 100  # events looked at for the next one with something to decide


class ReviewError(Exception):
    """A decision that cannot be made (unknown event, a file outside the archive, nothing to undo)."""


class DamagedFileError(ReviewError):
    """decisions.jsonl or editors.toml cannot be read (the message names the file and line): nothing is decided
    until an editor mends it."""


@dataclass
class EventView:
    """An event as its file has it now, with the digest that a decision about it must match."""

    event: Event
    digest: str
    curated: list[str | None]  # each Related item's id in the index (None: a link to no indexed event)


@dataclass
class Undo:
    """How to take back one decision: the file's bytes before and its digest after, the editors.toml block."""

    record: dict[str, object]
    path: Path | None = None
    before: bytes = b""
    after: str = ""
    never_block: str = ""


@dataclass
class QueueRow:
    id: str
    date: dt.date
    headline: str
    pending: int
    best: float  # the best confidence among its pending suggestions (0 without one)
    has_related: bool


@dataclass
class Queue:
    rows: list[QueueRow]
    computed: int  # events of the filter whose suggestions are known
    total: int  # events of the filter
    pending: int
    decided: int


@dataclass
class _Cached:
    digest: str
    suggestions: list[Suggestion]


@dataclass
class Reviewer:
    """One review server's state over an archive folder and its index (`Reviewer.open`)."""

    root: Path
    archive: Archive
    recommender: Recommender
    index_path: Path
    k: int = 10
    since: dt.date | None = None
    until: dt.date | None = None
    update_index: bool = True
    log: Callable[[str], None] = lambda _: None
    lock: threading.RLock = field(default_factory=threading.RLock)
    undo_stack: list[Undo] = field(default_factory=list)
    skipped: dict[str, set[str]] = field(default_factory=dict)
    _cache: dict[str, _Cached] = field(default_factory=dict)
    _rules: tuple[tuple[int, int], EditorRules] | None = None
    _decisions: tuple[tuple[int, int], Decisions] | None = None
    _index_dirty: threading.Event = field(default_factory=threading.Event)
    _index_idle: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def open(cls, root: Path, index_path: Path, **options: object) -> Reviewer:
        """Read the archive folder and load its index; raises ReviewError when they cannot be reviewed."""
        root = root.resolve()
        if not root.is_dir():
            raise ReviewError(f"--archive: {root} must be a folder of event files (review writes into them)")
        archive = read_archive_cached(root)
        if archive.packed:
            raise ReviewError(f"--archive: {root} holds tarballs, which cannot be written in place; unpack them")
        with index_lock(Path(index_path)):  # not while another review server replaces it
            recommender = Recommender(load_index(index_path))
        reviewer = cls(root, archive, recommender, Path(index_path), **options)  # type: ignore[arg-type]
        reviewer.check_files()
        if not reviewer.window():
            raise ReviewError(f"--index: {index_path} holds none of the events of {root} in the dates asked for")
        return reviewer

    # --- background work ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the threads that compute the window's suggestions and keep the index up to date."""
        self._index_idle.set()
        for target in (self._warm, self._index_worker):
            thread = threading.Thread(target=target, daemon=True, name=f"review-{target.__name__}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._index_dirty.set()

    def _warm(self) -> None:
        for event_id in self.window():
            while not self._stop.is_set():
                try:
                    self.suggestions(event_id)
                except DamagedFileError:  # the pages say so; wait for an editor to mend the file
                    self._stop.wait(2.0)
                    continue
                except (OSError, EventParseError, ReviewError, UnicodeDecodeError):
                    pass
                break

    def _index_worker(self) -> None:
        while not self._stop.is_set():
            self._index_dirty.wait()
            if self._stop.is_set():
                return
            self._index_dirty.clear()
            try:
                self._rebuild_index()
            except Exception as exc:  # noqa: BLE001  (the files are the truth: a failed update is only logged)
                self.log(f"index not updated: {exc}")
            if not self._index_dirty.is_set():
                self._index_idle.set()

    def wait_for_index(self, timeout: float = 60.0) -> bool:
        """Wait until every file edit so far is in the index (tests, and a clean stop)."""
        return self._index_idle.wait(timeout)

    def _rebuild_index(self) -> None:
        with self.lock:
            events = dict(self.archive.events)
            digests = dict(self.archive.digests)
            old = self.recommender
        if set(events) != set(old.index.ids):
            self.log("index not updated: it does not hold exactly the archive's events (the files are kept current)")
            return
        meta = old.index.meta
        archive = Archive(events=events, digests=digests, fingerprint=archive_fingerprint(events))
        embedder = Embedder(backend=meta.backend, model=meta.embedder)
        with index_lock(self.index_path):  # another review server may rebuild the same index: one at a time
            build(archive, self.index_path, embedder, archive_name=meta.archive, like=old)  # lists kept current
            fresh = recommender_for(load_index(self.index_path), like=old)
        with self.lock:
            self.recommender = fresh

    # --- reading ------------------------------------------------------------------------------------------
    def window(self) -> list[str]:
        """The session's events (in the archive and in the index, within --since/--until), in date order."""
        position = self.recommender.index.position
        events = self.archive.events.values()
        chosen = [e for e in events if e.id in position and _within(e.date, self.since, self.until)]
        return [e.id for e in sorted(chosen, key=lambda e: (e.date, e.id))]

    def rules(self) -> EditorRules:
        path = self.root / RULES_FILE
        stamp = _stamp(path)
        if self._rules is None or self._rules[0] != stamp:
            recommender = self.recommender
            try:
                rules = load_rules(path).resolved(recommender.find, lambda row: recommender.index.ids[row])
            except (ValueError, RecursionError) as exc:  # RulesError names the file and the line or field
                raise DamagedFileError(self.public(str(exc))) from None
            self._rules = (stamp, rules)
        return self._rules[1]

    def decisions(self) -> Decisions:
        path = self.root / DECISIONS_FILE
        stamp = _stamp(path)
        if self._decisions is None or self._decisions[0] != stamp:
            try:
                self._decisions = (stamp, load_decisions(path))
            except ValueError as exc:  # names the file and the line
                raise DamagedFileError(self.public(str(exc))) from None
        return self._decisions[1]

    def check_files(self) -> None:
        """Raise DamagedFileError when decisions.jsonl or editors.toml cannot be read (before any decision)."""
        with self.lock:
            self.rules()
            self.decisions()

    def public(self, message: str) -> str:
        """A message as a page may show it: paths under the archive relative to it, no absolute path."""
        return message.replace(f"{self.root}/", "").replace(str(self.root), "the archive")

    def path_of(self, event_id: str) -> Path:
        """The event's file, only for an id in the index's id map that is an event file under the archive root."""
        if event_id not in self.recommender.index.position or event_id not in self.archive.events:
            raise ReviewError(f"unknown event id {event_id[:200]!r}")
        path = self.root / event_id
        if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(self.root):
            raise ReviewError(f"{event_id[:200]}: not an event file of the archive")
        return path

    def view(self, event_id: str) -> EventView:
        data = self.path_of(event_id).read_bytes()
        event = parse_event(event_id, data.decode("utf-8"))
        return EventView(event, digest(data), [self.recommender.find_id(link.href) for link in event.related])

    def suggestions(self, event_id: str, fresh: bool = True) -> list[Suggestion]:
        """The event's suggestions, best first: its Related items among them marked `curated` (not offered).
        `fresh`: check the file first (an event page); else what is known, if anything (the queue's counts)."""
        if not fresh:
            with self.lock:
                known = self._cache.get(event_id)
            if known is not None:
                return known.suggestions
        view = self.view(event_id)
        with self.lock:
            cached = self._cache.get(event_id)
            if cached is not None and cached.digest == view.digest:
                return cached.suggestions
            recommender = self.recommender
            rules, decisions = self.rules(), self.decisions()
        state = FileState(related_ids(view.event, recommender.find_id), frozenset(decisions.rejected.get(event_id, ())))
        row = recommender.index.position[event_id]
        options = BatchOptions(k=self.k, include_curated=True)
        found = suggest_for(recommender, row, rules, options, state=state).suggestions
        with self.lock:
            self._cache[event_id] = _Cached(view.digest, found)
        return found

    def pending(self, event_id: str, suggestions: list[Suggestion] | None = None) -> list[Suggestion]:
        """Suggestions still to decide, skipped ones last."""
        found = self.suggestions(event_id) if suggestions is None else suggestions
        skipped = self.skipped.get(event_id, set())
        open_ = [s for s in found if not s.curated]
        return [s for s in open_ if s.id not in skipped] + [s for s in open_ if s.id in skipped]

    def queue(
        self,
        since: dt.date | None = None,
        until: dt.date | None = None,
        no_related: bool = False,
        by_confidence: bool = False,
        budget: int = QUEUE_BATCH,
    ) -> Queue:
        """The events with suggestions to decide (computing those of at most `budget` events not yet known)."""
        self.check_files()
        ids = [i for i in self.window() if _within(self.archive.events[i].date, since, until)]
        if no_related:
            ids = [i for i in ids if not self.archive.events[i].related]
        rows: list[QueueRow] = []
        computed = 0
        for event_id in ids:
            with self.lock:
                known = event_id in self._cache
            if not known:
                if budget <= 0:
                    continue
                budget -= 1
            try:
                open_ = self.pending(event_id, self.suggestions(event_id, fresh=False))
            except (OSError, EventParseError, ReviewError, UnicodeDecodeError):
                continue
            computed += 1
            if open_:
                event = self.archive.events[event_id]
                best = max((s.confidence or 0.0 for s in open_), default=0.0)
                rows.append(QueueRow(event_id, event.date, event.headline, len(open_), best, bool(event.related)))
        if by_confidence:
            rows.sort(key=lambda r: (-r.best, r.date, r.id))
        decisions = self.decisions()
        decided = sum(len(v) for v in decisions.accepted.values()) + sum(len(v) for v in decisions.rejected.values())
        return Queue(rows, computed, len(ids), sum(r.pending for r in rows), decided)

    def queue_counts(self) -> Queue:
        """The whole window's counts, from what is known so far (nothing computed)."""
        return self.queue(budget=0)

    def next_event(self, after: str) -> str | None:
        """The next event of the window (in date order) with a suggestion to decide, after `after`."""
        ids = self.window()
        start = ids.index(after) + 1 if after in ids else 0
        for event_id in (ids[start:] + ids[:start])[:NEXT_SCAN]:
            try:
                if event_id != after and self.pending(event_id, self.suggestions(event_id, fresh=False)):
                    return event_id
            except (OSError, EventParseError, ReviewError, UnicodeDecodeError):
                continue
        return None

    # --- deciding -------------------------------------------------------------------------------------------
    def decide(
        self,
        action: str,
        event_id: str,
        candidate: str,
        seen: str,
        context: str = "",
        reason: str = "",
        shown: dict[str, object] | None = None,
    ) -> dict[str, object]:
        """Accept, reject or skip `candidate` for `event_id`, on the page made from the file with digest `seen`.
        Raises StaleFileError when the file changed since (nothing written), ReviewError for a bad request."""
        if action not in ("accept", "reject", "skip"):
            raise ReviewError(f"unknown action {action[:40]!r}")
        if reason and reason not in REASONS:
            raise ReviewError(f"reason {reason[:40]!r} is not one of {', '.join(REASONS)}")
        # the archive's lock, across processes: the digest check, the file's edit, editors.toml and decisions.jsonl
        # are one step for every review server and `suggest --write` on this archive
        with self.lock, archive_lock(self.root):
            self.check_files()  # a damaged decisions.jsonl or editors.toml: refused before anything is written
            path = self.path_of(event_id)
            index = self.recommender.index
            if candidate not in index.position or candidate == event_id:
                raise ReviewError(f"unknown candidate id {candidate[:200]!r}")
            record = self._record(action, event_id, candidate, shown or {})
            undo = Undo(record)
            if action == "skip":
                self.skipped.setdefault(event_id, set()).add(candidate)
            else:
                before = read_checked(path, seen)
                try:
                    check_writable(path)
                except ReadOnlyFileError as exc:
                    raise ReviewError(str(exc)) from None
                text = before.decode("utf-8")
                if action == "accept":
                    headline = index.headlines[index.position[candidate]]
                    new = accept(text, candidate, headline, context)
                    record["context"] = context
                else:
                    new = drop_suggested(text, candidate)
                    record["reason"] = reason
                    undo.never_block = append_never(
                        self.root / RULES_FILE, event_id, candidate, reason, str(record["at"])
                    )
                if new != text:
                    data = new.encode("utf-8")
                    try:
                        write_atomic(path, data)
                    except OSError:
                        if undo.never_block:  # the decision is not made at all: no never pair without it
                            remove_never(self.root / RULES_FILE, undo.never_block)
                        raise
                    undo.path, undo.before, undo.after = path, before, digest(data)
                    self._reread(event_id, data)
            append_decisions(self.root / DECISIONS_FILE, [record])
            self.undo_stack.append(undo)
            self._cache.pop(event_id, None)
        return record

    def undo(self) -> dict[str, object]:
        """Take back the last decision of this session: its file edit (if the file is as the decision left it),
        its never pair; logged as an `undo` record."""
        with self.lock, archive_lock(self.root):
            if not self.undo_stack:
                raise ReviewError("nothing to undo in this session")
            last = self.undo_stack[-1]
            event_id, candidate = str(last.record["event"]), str(last.record["candidate"])
            if last.path is not None:
                current = last.path.read_bytes()
                if digest(current) != last.after:
                    raise StaleFileError(
                        f"{last.path.name} changed since that decision: it was not undone (change it by hand)"
                    )
            self.undo_stack.pop()
            if last.path is not None:
                write_atomic(last.path, last.before)
                self._reread(event_id, last.before)
            if last.never_block:
                remove_never(self.root / RULES_FILE, last.never_block)
            if last.record["decision"] == "skipped":
                self.skipped.get(event_id, set()).discard(candidate)
            record: dict[str, object] = {
                "at": _now(),
                "event": event_id,
                "candidate": candidate,
                "decision": "undo",
                "undoes": last.record["decision"],
                "undoes_at": last.record["at"],
                "by": "review",
            }
            append_decisions(self.root / DECISIONS_FILE, [record])
            self._cache.pop(event_id, None)
        return record

    def _record(self, action: str, event_id: str, candidate: str, shown: dict[str, object]) -> dict[str, object]:
        recommender = self.recommender
        shown = {key: _finite(value) for key, value in shown.items()}
        return {
            "at": _now(),
            "event": event_id,
            "candidate": candidate,
            "decision": {"accept": "accepted", "reject": "rejected", "skip": "skipped"}[action],
            "rank": shown.get("rank"),
            "score": shown.get("score"),
            "confidence": shown.get("confidence"),
            "ranker": recommender.fingerprint or "dense",  # "dense": no trained ranker loaded
            "model": recommender.index.meta.model_fingerprint,
            "by": "review",
        }

    def _reread(self, event_id: str, data: bytes) -> None:
        """The archive as the server knows it, after its file changed; the index follows in the background."""
        try:
            self.archive.events[event_id] = parse_event(event_id, data.decode("utf-8"))
        except EventParseError:
            return
        self.archive.digests[event_id] = hashlib.sha256(data).hexdigest()
        if self.update_index:
            self._index_idle.clear()
            self._index_dirty.set()


def _finite(value: object) -> object:
    """A number the page showed, as decisions.jsonl keeps it: NaN and infinities (not JSON) are None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _within(date: dt.date, since: dt.date | None, until: dt.date | None) -> bool:
    return not (since and date < since) and not (until and date > until)


def _stamp(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return (-1, -1)
    return stat.st_size, stat.st_mtime_ns


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


__all__ = ["REASONS", "DamagedFileError", "EventView", "Queue", "QueueRow", "ReviewError", "Reviewer", "StaleFileError"]

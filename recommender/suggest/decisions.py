"""What editors decided about suggestions, remembered in `decisions.jsonl` in the archive folder, so that no
rerun undoes their work.

Each `--write` that changes a file's Suggested related section records what it offered there (`offered`). On a
later run, an item of the last offer that the editor removed from the section, and did not move into the file's
Related list, is a rejection: recorded (`rejected`) and never suggested for that event again. Deleting the whole
section rejects all of it. An editor undoes a rejection by deleting its line. The machine writes this file, not
editors.toml, which is the editors' own hand-written file (rewriting it would lose their comments and layout).

`recommender review` appends one record per decision made in the browser (`decision`: accepted, rejected,
skipped, and `undo` naming the decision it takes back), with the rank, score and confidence shown and the ranker
and model fingerprints; `tune --decisions` learns from them and `eval --decisions` scores on them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from recommender.archive import Event
from recommender.atomic import atomic_path
from recommender.locking import archive_lock

DECISIONS_FILE = "decisions.jsonl"


@dataclass
class Decisions:
    """Per event id: the ids last offered in its Suggested section, and the ids rejected for it."""

    offered: dict[str, list[str]] = field(default_factory=dict)
    rejected: dict[str, set[str]] = field(default_factory=dict)
    accepted: dict[str, set[str]] = field(default_factory=dict)  # accepted in review (and not undone)
    new: list[dict[str, object]] = field(default_factory=list)  # records of this run, not yet saved

    def removed_by_editor(self, event: Event, resolve: Callable[[str], str | None]) -> list[str]:
        """Ids of the last offer for `event` that its file no longer lists, neither as suggested nor in Related."""
        offered = self.offered.get(event.id)
        if not offered:
            return []
        kept = {resolve(link.href) for link in (*event.suggested, *event.related)}
        known = self.rejected.get(event.id, set())
        return [i for i in offered if i not in kept and i not in known]

    def reject(self, event_id: str, ids: Iterable[str]) -> None:
        for rejected in ids:
            self.rejected.setdefault(event_id, set()).add(rejected)
            self.new.append({"event": event_id, "rejected": rejected, "at": _now()})

    def offer(self, event_id: str, ids: list[str]) -> None:
        if self.offered.get(event_id, []) != ids:
            self.offered[event_id] = ids
            self.new.append({"event": event_id, "offered": ids, "at": _now()})


def load_decisions(path: Path) -> Decisions:
    """The decisions recorded in `path` (none if absent); a line that is not a decision is an error naming it."""
    decisions = Decisions()
    if not path.exists():
        return decisions
    for number, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"), parse_constant=_not_json)
            event = str(record["event"])
            if "decision" in record:
                _apply_review(decisions, event, record)
            elif "rejected" in record:
                decisions.rejected.setdefault(event, set()).add(str(record["rejected"]))
            else:
                decisions.offered[event] = [str(i) for i in record["offered"]]
        except (ValueError, KeyError, TypeError, RecursionError) as exc:  # bad JSON or UTF-8, NaN, not a record
            reason = f"{exc.__class__.__name__}: {str(exc)[:200]}"
            raise ValueError(f"{path}:{number}: not a decision record ({reason})") from None
    return decisions


def _apply_review(decisions: Decisions, event: str, record: dict[str, object]) -> None:
    """A decision made in review (or an undo of one) applied to what is remembered."""
    kind = str(record["decision"])
    candidate = str(record["candidate"])
    if kind == "undo":
        undone = str(record["undoes"])
        target = decisions.accepted if undone == "accepted" else decisions.rejected if undone == "rejected" else None
        if target is not None:
            target.get(event, set()).discard(candidate)
    elif kind in ("accepted", "rejected"):
        other = decisions.rejected if kind == "accepted" else decisions.accepted
        other.get(event, set()).discard(candidate)
        (decisions.accepted if kind == "accepted" else decisions.rejected).setdefault(event, set()).add(candidate)
    elif kind != "skipped":
        raise KeyError(f"decision {kind!r}")


def judged_pairs(decisions: Decisions) -> dict[str, dict[str, int]]:
    """Per event, each candidate an editor decided on, as a label: 1 accepted, 0 rejected (the last word on a pair
    counts; undone decisions are not labels)."""
    labels: dict[str, dict[str, int]] = {}
    for event, ids in decisions.rejected.items():
        for candidate in ids:
            labels.setdefault(event, {})[candidate] = 0
    for event, ids in decisions.accepted.items():
        for candidate in ids:
            labels.setdefault(event, {})[candidate] = 1
    return {event: pairs for event, pairs in labels.items() if pairs}


def append_decisions(path: Path, records: list[dict[str, object]]) -> None:
    """Add records to `path` at once (the file rewritten under a temporary name and renamed)."""
    decisions = Decisions(new=list(records))
    save_decisions(path, decisions)


def save_decisions(path: Path, decisions: Decisions) -> int:
    """Add this run's records to `path` (rewritten under a temporary name and renamed); returns how many."""
    if not decisions.new:
        return 0
    lines = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in decisions.new).encode("utf-8")
    with archive_lock(path.parent):  # read and replaced as one step for every process: no record is lost
        old = path.read_bytes() if path.exists() else b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        with atomic_path(path) as tmp:
            tmp.write_bytes(old + lines)
    count = len(decisions.new)
    decisions.new = []
    return count


def _not_json(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

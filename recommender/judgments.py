"""Blind judgments: labels of (event, suggestion) pairs, the judged sets, and which events are held out.

Judges see an event and candidate texts in random order, nothing else, and label each pair `same_story` (the same
episode, its direct causes and consequences, at any distance in time), `related` (the same subject: actors, place
or topic) or `unrelated`. Files: `judgments*.jsonl` (one pair a line: query, candidate, label, why) and set files
`set-*.json` (`{"events": [{"id", "listed", "heldout"}]}`) in one folder (eval/judged/ in the repository).

A set's held-out half (`heldout: true`, fixed by a hash of the id when the set was drawn) is never used to fit or
choose anything (`recommender tune --judged` leaves it out); figures are reported on it. Judged events that no set
file names (the first sets, all of events without a list) are development events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

LABELS = ("same_story", "related", "unrelated")
GAIN = {"same_story": 2, "related": 1, "unrelated": 0}


@dataclass(frozen=True)
class Judged:
    """Every judged pair's label, and the held-out events."""

    labels: dict[tuple[str, str], str]
    heldout: frozenset[str]

    @property
    def events(self) -> list[str]:
        return sorted({query for query, _ in self.labels})

    def part(self, event_id: str) -> str:
        """`heldout` or `dev`."""
        return "heldout" if event_id in self.heldout else "dev"

    def development(self) -> Judged:
        """The pairs of events that are not held out: what a fit or a choice may use."""
        kept = {pair: label for pair, label in self.labels.items() if pair[0] not in self.heldout}
        return Judged(kept, frozenset())


def load_judged(folder: Path) -> Judged:
    """The judgments and set files of `folder`; a bad line is an error naming the file and line."""
    if not folder.is_dir():
        raise ValueError(f"--judged: {folder} is not a folder of judgments")
    labels: dict[tuple[str, str], str] = {}
    for path in sorted(folder.glob("judgments*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                pair, label = (str(row["query"]), str(row["candidate"])), str(row["label"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a {{query, candidate, label}} object ({exc})") from None
            if label not in LABELS:
                raise ValueError(f"{path}:{number}: label {label!r} is not one of {', '.join(LABELS)}")
            labels[pair] = label
    heldout: set[str] = set()
    for path in sorted(folder.glob("set-*.json")):
        try:
            events = json.loads(path.read_text(encoding="utf-8"))["events"]
            heldout |= {str(e["id"]) for e in events if e["heldout"]}
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a judged set {{events: [{{id, heldout}}]}} ({exc})") from None
    return Judged(labels, frozenset(heldout))

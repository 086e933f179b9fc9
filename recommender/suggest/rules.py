"""Editors' rules from `editors.toml` in the archive: pairs never to suggest, pairs always put first, events
and date ranges left out (see archive/editors.example.toml)."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


class RulesError(ValueError):
    """editors.toml is not valid; the message names the file and the field."""


@dataclass
class EditorRules:
    never: set[frozenset[str]] = field(default_factory=set)
    pins: dict[str, list[str]] = field(default_factory=dict)
    exclude_events: set[str] = field(default_factory=set)
    exclude_dates: list[tuple[dt.date, dt.date]] = field(default_factory=list)

    def excluded(self, event_id: str, date: dt.date) -> bool:
        return event_id in self.exclude_events or any(a <= date <= b for a, b in self.exclude_dates)


def load_rules(path: Path) -> EditorRules:
    """Read editors' rules; an absent file means no rules."""
    if not path.exists():
        return EditorRules()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: not valid TOML ({exc})") from None
    rules = EditorRules()
    unknown = set(raw) - {"never", "pin", "exclude_events", "exclude_dates"}
    if unknown:
        raise RulesError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    for name in ("never", "pin", "exclude_dates"):
        value = raw.get(name, [])
        if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in value
        ):
            raise RulesError(f'{path}: field {name!r} must be a list of ["...", "..."] pairs')
    rules.never = {frozenset(p) for p in raw.get("never", [])}
    for event_id, pinned in raw.get("pin", []):
        rules.pins.setdefault(event_id, []).append(pinned)
    events = raw.get("exclude_events", [])
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise RulesError(f"{path}: field 'exclude_events' must be a list of event ids")
    rules.exclude_events = set(events)
    for start, end in raw.get("exclude_dates", []):
        try:
            rules.exclude_dates.append((dt.date.fromisoformat(start), dt.date.fromisoformat(end)))
        except ValueError:
            raise RulesError(f"{path}: field 'exclude_dates': {start!r}..{end!r} is not a YYYY-MM-DD range") from None
    return rules

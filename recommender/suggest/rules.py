"""Editors' rules from `editors.toml` in the archive: pairs never to suggest, pairs always put first, events
and date ranges left out (see archive/editors.example.toml). Ids are taken as the archive's links write them
(with or without a leading slash or zero padding); an id the index lacks is a warning naming the file and line.

`recommender review` adds the pairs an editor rejects as `[[never_pair]]` tables appended at the end of the file
(`append_never`), never rewriting what the editors wrote: their comments and layout stay as they are.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from recommender.eventfile import line_ending


class RulesError(ValueError):
    """editors.toml is not valid; the message names the file and the field."""


@dataclass
class EditorRules:
    never: set[frozenset[str]] = field(default_factory=set)
    pins: dict[str, list[str]] = field(default_factory=dict)
    exclude_events: set[str] = field(default_factory=set)
    exclude_dates: list[tuple[dt.date, dt.date]] = field(default_factory=list)
    source: str = ""  # the file the rules came from, for warnings
    text: str = ""  # its text, to find the line of a value
    warnings: list[str] = field(default_factory=list)

    def excluded(self, event_id: str, date: dt.date) -> bool:
        return event_id in self.exclude_events or any(a <= date <= b for a, b in self.exclude_dates)

    def resolved(self, find: Callable[[str], int | None], id_of: Callable[[int], str]) -> EditorRules:
        """The rules with every id as the index writes it (`find`: an id as written to its row, or None), and a
        warning, naming the file and line, for each id the index lacks and each pair that cannot apply."""
        warnings: list[str] = []

        def known(value: str, field_name: str, *pair: str) -> str | None:
            row = find(value)
            if row is None:
                warnings.append(
                    f"{self._where(field_name, *(pair or (value,)))}: {field_name}: unknown event id {value!r}, ignored"
                )
                return None
            return id_of(row)

        never: set[frozenset[str]] = set()
        for pair in self.never:
            a, b = (sorted(pair) * 2)[:2]
            ids = [known(x, "never", a, b) for x in (a, b)]
            if None in ids:
                continue
            if ids[0] == ids[1]:
                warnings.append(f"{self._where('never', a, b)}: never: a pair of one event with itself, ignored")
                continue
            never.add(frozenset(i for i in ids if i is not None))
        pins: dict[str, list[str]] = {}
        for event, pinned in ((e, p) for e, ps in self.pins.items() for p in ps):
            ids = [known(x, "pin", event, pinned) for x in (event, pinned)]
            if ids[0] is None or ids[1] is None:
                continue
            if ids[0] == ids[1]:
                warnings.append(f"{self._where('pin', event, pinned)}: pin: an event pinned to itself, ignored")
                continue
            pins.setdefault(ids[0], []).append(ids[1])
        events = {i for i in (known(e, "exclude_events") for e in sorted(self.exclude_events)) if i is not None}
        for start, end in self.exclude_dates:
            if start > end:
                where = self._where("exclude_dates", start.isoformat(), end.isoformat())
                warnings.append(f"{where}: exclude_dates: {start} is after {end}, so no date is excluded")
        return replace(self, never=never, pins=pins, exclude_events=events, warnings=self.warnings + warnings)

    def _where(self, field_name: str, *values: str) -> str:
        """`file:line` of the first line that holds every value (quoted, with or without a leading slash, as often
        as given), else of the first value."""
        lines = self.text.splitlines()

        def holds(line: str, value: str, times: int) -> bool:
            bare = value.lstrip("/")
            return sum(line.count(f"{q}{s}{bare}{q}") for q in "\"'" for s in ("", "/")) >= times

        start = next((i for i, line in enumerate(lines) if re.match(rf"\s*{field_name}\s*=", line)), 0)
        for wanted in (values, values[:1]):
            for number, line in enumerate(lines[start:], start + 1):
                if all(holds(line, v, wanted.count(v)) for v in wanted):
                    return f"{self.source}:{number}"
        return self.source or "editors.toml"


def load_rules(path: Path) -> EditorRules:
    """Read editors' rules; an absent file means no rules."""
    if not path.exists():
        return EditorRules()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: not valid TOML ({exc})") from None
    rules = EditorRules(source=str(path), text=path.read_text(encoding="utf-8"))
    unknown = set(raw) - {"never", "never_pair", "pin", "exclude_events", "exclude_dates"}
    if unknown:
        raise RulesError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    for name in ("never", "pin", "exclude_dates"):
        value = raw.get(name, [])
        if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in value
        ):
            raise RulesError(f'{path}: field {name!r} must be a list of ["...", "..."] pairs')
    rules.never = {frozenset(p) for p in raw.get("never", [])}
    tables = raw.get("never_pair", [])
    if not isinstance(tables, list) or not all(
        isinstance(t, dict)
        and isinstance(t.get("pair"), list)
        and len(t["pair"]) == 2
        and all(isinstance(x, str) for x in t["pair"])
        for t in tables
    ):
        raise RulesError(f'{path}: each [[never_pair]] table must hold pair = ["...", "..."]')
    rules.never |= {frozenset(t["pair"]) for t in tables}
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


def never_block(event_id: str, other: str, reason: str = "", at: str = "") -> str:
    """A `[[never_pair]]` table for one rejected pair (what `append_never` adds), in TOML."""
    lines = ["", "[[never_pair]]", f"pair = [{_toml_string(event_id)}, {_toml_string(other)}]"]
    if reason:
        lines.append(f"reason = {_toml_string(reason)}")
    if at:
        lines.append(f"at = {_toml_string(at)}")
    return "\n".join(lines) + "\n"


def append_never(path: Path, event_id: str, other: str, reason: str = "", at: str = "") -> str:
    """Add a never pair to editors.toml as a `[[never_pair]]` table at its end, keeping every byte the editors
    wrote (a missing file is created); returns the text added (for `remove_never`). The file must stay valid."""
    from recommender.atomic import atomic_path

    old = path.read_bytes() if path.exists() else b""
    text = old.decode("utf-8")
    eol = line_ending(text)
    block = never_block(event_id, other, reason, at).replace("\n", eol)
    if text and not text.endswith("\n"):
        block = eol + block
    new = text + block
    try:
        tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:  # e.g. a `never_pair = [...]` key of the editors' own
        raise RulesError(f"{path}: cannot add a [[never_pair]] table to it ({exc})") from None
    with atomic_path(path) as tmp:
        tmp.write_bytes(new.encode("utf-8"))
    return block


def remove_never(path: Path, block: str) -> bool:
    """Take back a block `append_never` added (its last occurrence); False when it is no longer in the file."""
    from recommender.atomic import atomic_path

    if not path.exists():
        return False
    text = path.read_bytes().decode("utf-8")
    at = text.rfind(block)
    if at < 0:
        return False
    with atomic_path(path) as tmp:
        tmp.write_bytes((text[:at] + text[at + len(block) :]).encode("utf-8"))
    return True


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, for the characters an id or a reason can hold)."""
    import json

    return json.dumps(value, ensure_ascii=False)

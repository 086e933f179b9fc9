"""How a count reads in a message or a page: `count(1, "event")` is "1 event", `count(1155, "event")` "1,155 events"."""

from __future__ import annotations


def count(number: int, noun: str, plural: str | None = None) -> str:
    """`number` with thousands separated and `noun` in the singular or plural (`plural`, else noun + "s")."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"

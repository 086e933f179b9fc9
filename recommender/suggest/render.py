"""Batch suggestions as text: jsonl, csv, or the archive's own `### Suggested related:` markdown block."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict

from recommender.eventfile import link_target
from recommender.rank import Suggestion
from recommender.suggest.batch import EventSuggestions

SECTION = "### Suggested related:"
FORMATS = ("jsonl", "markdown", "csv")


def markdown_block(item: EventSuggestions) -> str:
    """A `### Suggested related:` block in the seed page's Related format, each item's date, confidence and
    marks (pinned, curated) between its link and its `_Context:_`, where the archive reader ignores them."""
    lines = [SECTION, ""]
    for s in item.suggestions:
        context = f" _Context: {', '.join(s.context)}_" if s.context else ""
        notes = [s.date.isoformat()]
        if s.confidence is not None:
            notes.append(f"confidence {s.confidence:.2f}")
        notes += [mark for mark, on in (("pinned", s.pinned), ("curated", s.curated)) if on]
        lines.append(f"{s.rank}. [{s.headline}]({link_target(s.id)}) ({'; '.join(notes)}){context}")
    return "\n".join(lines) + "\n"


def render(items: Iterable[EventSuggestions], fmt: str) -> Iterator[str]:
    """Chunks of output text in `fmt` (jsonl, markdown or csv)."""
    if fmt == "csv":
        header = ["event_id", "rank", "id", "date", "headline", "score", "confidence", "curated", "pinned", "context"]
        yield ",".join(header) + "\r\n"
    for item in items:
        if item.excluded:
            continue  # an excluded event is in the batch only to have its file's section removed
        if fmt == "jsonl":
            yield (
                json.dumps(
                    {
                        "id": item.id,
                        "date": item.date.isoformat(),
                        "headline": item.headline,
                        "suggestions": [_as_dict(s) for s in item.suggestions],
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
        elif fmt == "markdown":
            yield f"## [{item.headline}](/{item.id})\n\n{markdown_block(item)}\n"
        else:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for s in item.suggestions:
                row = [item.id, s.rank, s.id, s.date, s.headline, s.score, s.confidence, s.curated, s.pinned]
                writer.writerow([*row, "; ".join(s.context)])
            yield buffer.getvalue()


def _as_dict(s: Suggestion) -> dict[str, object]:
    data = asdict(s)
    data["date"] = s.date.isoformat()
    data["context"] = list(s.context)
    return data

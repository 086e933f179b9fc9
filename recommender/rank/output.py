"""One JSON shape of a suggestion, shared by `related --json`, `suggest`'s jsonl and the API (`SuggestionOut`)."""

from __future__ import annotations

from typing import Any

from recommender.rank.explain import Suggestion


def suggestion_json(s: Suggestion) -> dict[str, Any]:
    """A Suggestion as plain JSON values: every field, and `context` (what both events share, as shown)."""
    signals = s.signals
    return {
        "rank": s.rank,
        "id": s.id,
        "date": s.date.isoformat(),
        "headline": s.headline,
        "score": s.score,
        "confidence": s.confidence,
        "curated": s.curated,
        "pinned": s.pinned,
        "context": list(s.context),
        "signals": None
        if signals is None
        else {
            "dense": signals.dense,
            "bm25": signals.bm25,
            "names": signals.names,
            "days_apart": signals.days_apart,
            "shared_names": list(signals.shared_names),
        },
        "source": s.source,
    }

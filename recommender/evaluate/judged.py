"""Each system scored on the blind judgments (`recommender.judgments`), per group and part, and its confidence.

Per system, for the events of each part (`dev`: fit and choices may use them; `heldout`: never) and each group
(`listed`: events with a curated list; `unlisted`: without), over the system's top 10: same-story P@10 and
related-or-better P@10 over the judged items, and how many items are unjudged (left out of both, never counted
as right or wrong: a system that ranks unjudged items is measured on fewer). A system with a calibrated
confidence also gets its expected calibration error against "judged related or same story" per group.

`window="month"` ranks each event among the events of its own calendar month alone (the windowed eval).
"""

from __future__ import annotations

import numpy as np

from recommender.evaluate.run import window_of
from recommender.judgments import Judged
from recommender.rank import Recommender
from recommender.rank.calibration import expected_calibration_error

GROUPS = ("listed", "unlisted", "all")
PARTS = ("heldout", "dev")


def judged_figures(
    recommender: Recommender,
    judged: Judged,
    listed: set[str],
    systems: tuple[str, ...],
    window: str | None = None,
    k: int = 10,
) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """{system: {part: {group: figures}}} over the judged events that are indexed."""
    index = recommender.index
    events = [e for e in judged.events if e in index.position]
    bounds = window_of(window)
    out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for system in systems:
        tally: dict[tuple[str, str], dict[str, list[float]]] = {}
        for event in events:
            row = index.position[event]
            since, until = bounds(index.date(row))
            ranked = recommender.rank(recommender.query(row), k, system, since, until)
            calibration = recommender.calibration
            sure = calibration is not None and calibration.system == system
            confidence = calibration(ranked.scores) if sure and calibration is not None else None
            group = "listed" if event in listed else "unlisted"
            for key in ((judged.part(event), group), (judged.part(event), "all")):
                t = tally.setdefault(key, {"same": [], "related": [], "unjudged": [], "confidence": [], "label": []})
                t["unjudged"].append(0)
                for i, candidate_row in enumerate(ranked.rows.tolist()):
                    label = judged.labels.get((event, index.ids[candidate_row]))
                    if label is None:
                        t["unjudged"][-1] += 1
                        continue
                    t["same"].append(label == "same_story")
                    t["related"].append(label != "unrelated")
                    if confidence is not None:
                        t["confidence"].append(float(confidence[i]))
                        t["label"].append(label != "unrelated")
        out[system] = {}
        for (part, group), t in sorted(tally.items()):
            figures = {
                "events": len(t["unjudged"]),
                "judged_items": len(t["same"]),
                "unjudged_items": int(sum(t["unjudged"])),
                "same_story_p10": round(float(np.mean(t["same"])), 4) if t["same"] else float("nan"),
                "related_p10": round(float(np.mean(t["related"])), 4) if t["related"] else float("nan"),
            }
            if t["confidence"]:
                ece = expected_calibration_error(np.asarray(t["confidence"]), np.asarray(t["label"]))
                figures["ece"] = round(ece, 4)
                figures["mean_confidence"] = round(float(np.mean(t["confidence"])), 4)
            out[system].setdefault(part, {})[group] = figures
    return out


def judged_table(figures: dict[str, dict[str, dict[str, dict[str, float]]]]) -> list[str]:
    """Markdown rows: system, part, group, events, same-story P@10, related-or-better P@10, items, ECE."""
    lines = [
        "| system | part | group | events | same-story P@10 | related-or-better P@10 | judged / unjudged items | ECE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for part in PARTS:
        for group in GROUPS:
            for system, parts in figures.items():
                f = parts.get(part, {}).get(group)
                if f is None:
                    continue
                ece = f"{f['ece']:.3f}" if "ece" in f else ""
                lines.append(
                    f"| {system} | {part} | {group} | {f['events']:.0f} | {f['same_story_p10']:.3f} | "
                    f"{f['related_p10']:.3f} | {f['judged_items']:.0f} / {f['unjudged_items']:.0f} | {ece} |"
                )
    return lines

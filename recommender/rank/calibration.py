"""The fused ranker's score as a confidence, by an isotonic map (`recommender tune`), and its expected calibration
error. Fitted on blind judgments (`tune --judged`), it is the probability that a judge calls the suggestion related
to the event or the same story (`calibration.json` says what it was fitted on); fitted on the curated lists, the
probability that the suggestion is in the event's Related list.

The map reads the ranker's score alone, so the confidence ranks suggestions exactly as the ranker does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recommender.atomic import write_text

CALIBRATION_FILE = "calibration.json"
# `suggest` and the review page offer no suggestion less sure than this unless told otherwise: fewer items for an
# event with little related in the archive, rather than filler (a judged-unrelated item is the likelier below it)
MIN_CONFIDENCE = 0.3
CURATED = "in the curated list"
JUDGED = "judged related or same story"


@dataclass(frozen=True)
class Calibration:
    """A non-decreasing map from score to probability: linear between the fitted (score, probability) points,
    flat beyond them."""

    scores: np.ndarray
    probabilities: np.ndarray
    system: str = "fused"
    label: str = CURATED  # what the probability is of: CURATED or JUDGED

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        values = np.interp(np.asarray(scores, dtype=np.float64), self.scores, self.probabilities)
        return np.where(np.isfinite(scores), values, 0.0)

    def save(self, path: Path, fitted_on: dict[str, object]) -> None:
        data = {
            "system": self.system,
            "method": "isotonic (pool adjacent violators), linear between block means",
            "fitted_on": {"label": self.label} | fitted_on,
            "scores": [round(float(s), 6) for s in self.scores],
            "probabilities": [round(float(p), 6) for p in self.probabilities],
        }
        write_text(path, json.dumps(data, indent=1) + "\n")


def load_calibration(folder: Path) -> Calibration | None:
    """The fitted map in `folder` (next to the rankers), or None where none was fitted."""
    path = folder / CALIBRATION_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return Calibration(
        np.asarray(data["scores"], dtype=np.float64),
        np.asarray(data["probabilities"], dtype=np.float64),
        data["system"],
        data.get("fitted_on", {}).get("label", CURATED),
    )


def fit_isotonic(scores: np.ndarray, labels: np.ndarray, min_block: int = 200, label: str = CURATED) -> Calibration:
    """Isotonic regression of 0/1 `labels` on `scores` (pool adjacent violators over score-sorted items, in
    starting blocks of `min_block` items so that each point is an average, not a single label)."""
    order = np.argsort(scores, kind="stable")
    s = np.asarray(scores, dtype=np.float64)[order]
    y = np.asarray(labels, dtype=np.float64)[order]
    # blocks: (sum of scores, sum of labels, count)
    blocks: list[list[float]] = []
    for start in range(0, len(s), min_block):
        chunk = slice(start, start + min_block)
        blocks.append([float(s[chunk].sum()), float(y[chunk].sum()), float(len(s[chunk]))])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] >= blocks[-1][1] / blocks[-1][2]:
            last = blocks.pop()
            blocks[-1] = [a + b for a, b in zip(blocks[-1], last, strict=True)]
    points = np.asarray([(b[0] / b[2], b[1] / b[2]) for b in blocks])
    return Calibration(points[:, 0], points[:, 1], label=label)


def expected_calibration_error(confidence: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """Mean |confidence - observed rate| over equal-width confidence bins, weighted by items per bin."""
    confidence = np.asarray(confidence, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.sum() * abs(confidence[inside].mean() - labels[inside].mean())
    return float(error / max(len(confidence), 1))


def reliability(confidence: np.ndarray, labels: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Per confidence bin: items, mean confidence, observed rate (the reliability diagram's points)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            out.append(
                {
                    "bin": b,
                    "items": int(inside.sum()),
                    "confidence": round(float(confidence[inside].mean()), 4),
                    "observed": round(float(labels[inside].mean()), 4),
                }
            )
    return out

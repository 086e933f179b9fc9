"""Reciprocal rank fusion (Cormack, Clarke and Buettcher 2009): one ranking from several, by rank alone.

Free text is ranked this way (`Recommender.rank_text`): the trained ranker was trained on dated events and
closeness in time counts for much in it, while text has no date. Placed at its single closest event's date, the
ranker alone ranks text below dense similarity and can drop the text's best matches at other dates entirely
(eval/free_text_modes.py and eval/RESULTS.md). So it ranks the text at the dates of several of its best dense
matches, and these rankings are fused with the dense one. Scores of different systems are not comparable; ranks
are.
"""

from __future__ import annotations

import numpy as np

RRF_K = 60  # the constant of the paper: a rank's weight is 1 / (RRF_K + rank)
DEPTH = 50  # how deep each ranking is read (measured at 50)
ANCHORS = 3  # free text is ranked at the dates of up to this many of its best dense matches
ANCHOR_APART = 30  # days between two such dates


def reciprocal_rank_fusion(rankings: list[np.ndarray], k: int, rrf_k: int = RRF_K) -> tuple[np.ndarray, np.ndarray]:
    """The top `k` rows over `rankings` (each rows best first) by the sum of 1 / (rrf_k + rank), rank from 1;
    ties keep the first ranking's order. Returns (rows, fused scores)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking.tolist(), start=1):
            fused[row] = fused.get(row, 0.0) + 1.0 / (rrf_k + rank)
    order = sorted(fused, key=lambda row: -fused[row])[:k]  # sorted is stable: dict order breaks ties
    return np.asarray(order, dtype=np.int64), np.asarray([fused[r] for r in order], dtype=np.float32)

"""Free text has no date: how should the fused ranker, trained on dated events, rank it? Test-split events' own
texts as undated text queries (no date, no row; their own row excluded), scored against their curated lists:
dense alone, fused anchored at the closest event (today's `similar`), fused anchored where the top-20 dense
matches cluster in time, reciprocal rank fusion (k = 60) of the fused and dense rankings, 50 deep, and what
`similar` does (`Recommender.rank_text`): that fusion with fused placed at each of the best matches' dates.

    .venv/bin/python eval/free_text_modes.py models/full 500
"""

import random
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from recommender.archive import read_archive
from recommender.evaluate import score_runs
from recommender.evaluate.run import _run_scores
from recommender.index import load_index
from recommender.rank import Recommender
from recommender.rank.candidates import allowed_rows
from recommender.rank.query import anchored, query_for_text
from recommender.truth import split_of, truth_from_archive

index = load_index(sys.argv[1])
r = Recommender(index)
truth = truth_from_archive(
    read_archive("../shared/archive", cache=Path.home() / ".cache/recommender/archive"), set(index.ids)
)
qs = sorted(random.Random(5).sample([q for q in truth.relevant if split_of(q) == "test"], int(sys.argv[2])))


def density_anchor(q, allowed, n=20, width=30):
    scores = np.where(allowed, q.scores.dense, -np.inf)
    top = np.argsort(-scores)[:n]
    top = top[np.isfinite(scores[top])]
    days = index.day[top].astype(np.int64)
    w = scores[top]
    dens = [(w * (np.abs(days - d) <= width)).sum() for d in days]
    best = top[int(np.argmax(dens))]
    return replace(q, day=int(index.day[best]), dated=False, story_density=float(index.story_density[best]))


runs = {s: {} for s in ("dense", "fused-closest", "fused-density", "rrf-closest", "rrf-density", "rrf-anchors")}
for qid in qs:
    row = index.position[qid]
    q = query_for_text(index, index.text(row), index.vectors[row])
    allowed = allowed_rows(index, q, None, None)
    allowed[row] = False
    q = replace(q, exclude=frozenset([row]))
    dense = r.rank(q, 10, "dense")
    runs["dense"][qid] = _run_scores(index.ids, dense.rows.tolist(), dense.scores.tolist())
    deep_dense = r.rank(q, 50, "dense").rows.tolist()
    for name, anch in (("closest", anchored(index, q, allowed)), ("density", density_anchor(q, allowed))):
        f = r.rank(anch, 50, "fused").rows.tolist()
        runs["fused-" + name][qid] = _run_scores(index.ids, f[:10], [0.0] * 10)
        rrf = {}
        for ranking in (f, deep_dense):
            for i, x in enumerate(ranking):
                rrf[x] = rrf.get(x, 0) + 1 / (60 + i)
        best = sorted(rrf, key=lambda x: -rrf[x])[:10]
        runs["rrf-" + name][qid] = _run_scores(index.ids, best, [0.0] * len(best))
    ranked, _ = r.rank_text(q)  # what `similar` does: fused at the dates of the best matches, with dense
    runs["rrf-anchors"][qid] = _run_scores(index.ids, ranked.rows.tolist(), ranked.scores.tolist())
metrics, _ = score_runs(truth, qs, runs)
for s, m in metrics.items():
    print(f"{s:<16} nDCG@10 {m['ndcg@10']:.4f}  P@10 {m['precision@10']:.4f}  MRR {m['mrr@10']:.4f}")

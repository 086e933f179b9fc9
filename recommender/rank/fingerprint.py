"""What makes a ready list, as a recipe of explicit parts and versions, and its fingerprint.

The recipe names the fused ranker's trees (a digest of its model file), the features it reads, its cascade and
calibration, the near-duplicate cut, READY_K, the contexts' layout, and the VERSION constant of each module
whose code shapes a list (the pool, the top-k selection, the feature table, the trees' scoring and the
cascade, the dense scan, BM25's query terms, the names, the contexts and how lists keep them). A change that can
alter a list bumps its module's VERSION; a refactor, a comment or `ruff format` does not, and lists made before
it stay current (`eval/dump_rankings.py` shows that a refactor keeps every ranking). Lists made under another
recipe are stale: never served, remade by the next build (`recommender/lifecycle.py`), and `recipe_changes`
says which parts differ.
"""

from __future__ import annotations

import hashlib
import json

from recommender import names
from recommender.index import lists as lists_layout
from recommender.index import terms
from recommender.index.layout import CONTEXT_BYTES, CONTEXT_K, READY_K
from recommender.rank import candidates, explain, features, forest, query, ranker, select, topk
from recommender.rank.calibration import Calibration
from recommender.rank.ranker import Cascade, Ranker

# the modules whose code shapes a list, by the name a recipe gives them
CODE_VERSIONS: dict[str, int] = {
    "candidates": candidates.VERSION,
    "dense scan": query.VERSION,
    "bm25 query terms": terms.VERSION,
    "names": names.VERSION,
    "features": features.VERSION,
    "trees": forest.VERSION,
    "cascade": ranker.VERSION,
    "top-k": topk.VERSION,
    "selection": select.VERSION,
    "contexts": explain.VERSION,
    "stored lists": lists_layout.VERSION,
}


def lists_recipe(
    fused: Ranker | None, cascade: Cascade | None, calibration: Calibration | None, near_duplicate: float
) -> dict[str, str]:
    """The parts that make a ready list ({} without a fused ranker: no lists)."""
    if fused is None:
        return {}
    recipe = {
        "model": fused.digest,
        "features": ",".join(features.FEATURE_NAMES[c] for c in fused.columns.tolist()),
        "cascade": json.dumps([list(stage) for stage in (fused.cascade if cascade is None else cascade)]),
        "judged_stage": json.dumps(fused.stage.as_dict() if fused.stage is not None else None, sort_keys=True),
        "calibration": _calibration_digest(calibration),
        "near_duplicate": repr(float(near_duplicate)),
        "k": str(READY_K),
        "contexts": f"{CONTEXT_K}x{CONTEXT_BYTES}",
    }
    recipe.update({f"code: {name}": str(version) for name, version in CODE_VERSIONS.items()})
    return recipe


def fingerprint(recipe: dict[str, str]) -> str:
    """The recipe in 16 hex digits ("" for none)."""
    if not recipe:
        return ""
    return hashlib.blake2b(json.dumps(recipe, sort_keys=True).encode(), digest_size=8).hexdigest()


def recipe_changes(made: dict[str, str], now: dict[str, str]) -> list[str]:
    """The parts of the recipe that differ, as `part (then -> now)` for versions and `part` for the rest."""
    changed = []
    for part in sorted(set(made) | set(now)):
        if made.get(part) != now.get(part):
            if part.startswith("code: "):
                changed.append(f"{part[6:]} version {made.get(part, '?')} -> {now.get(part, '?')}")
            else:
                changed.append(part)
    return changed


def _calibration_digest(calibration: Calibration | None) -> str:
    if calibration is None:
        return "none"
    digest = hashlib.blake2b(digest_size=8)
    digest.update(calibration.system.encode())
    for array in (calibration.scores, calibration.probabilities):
        digest.update(array.astype("<f8").tobytes())
    return digest.hexdigest()

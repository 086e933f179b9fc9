"""Ranking: a query's candidates, their features, the trained rankers, selection and explanation, behind
`Recommender`.

    query -> candidates (candidates.py) -> features (features.py, one table) -> ranker and cascade (ranker.py,
    forest.py) -> the top k, each item once (select.py) -> Suggestions with why (explain.py)
"""

from recommender.rank.explain import Ranked, Signals, Suggestion
from recommender.rank.features import FEATURE_NAMES, FEATURES, GROUPS
from recommender.rank.query import Query
from recommender.rank.ranker import CASCADE, RANKER_DIR, Ranker, load_rankers
from recommender.rank.recommender import Recommender, RelatedRequest, UnknownEventError

__all__ = [
    "CASCADE",
    "FEATURES",
    "FEATURE_NAMES",
    "GROUPS",
    "RANKER_DIR",
    "Query",
    "Ranked",
    "Ranker",
    "Recommender",
    "RelatedRequest",
    "Signals",
    "Suggestion",
    "UnknownEventError",
    "load_rankers",
]

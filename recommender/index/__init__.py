"""The saved index of an archive: its format (`layout`), building and updating it (`build`), reading it (`read`).

index = build_index(read_archive("archive"), "models/default")   # or load_index("models/default")
"""

from recommender.index.build import BuildReport, build_index, story_density
from recommender.index.layout import DEFAULT_INDEX, IndexLoadError, IndexMeta
from recommender.index.read import Index, check_model, load_index
from recommender.index.records import EventRecord
from recommender.index.terms import tokenize_query

__all__ = [
    "DEFAULT_INDEX",
    "BuildReport",
    "EventRecord",
    "Index",
    "IndexLoadError",
    "IndexMeta",
    "build_index",
    "check_model",
    "load_index",
    "story_density",
    "tokenize_query",
]

"""recommender: related-event suggestions for a news-event archive, on the CPU.

from recommender import read_archive, build_index, load_index, Recommender
index = load_index("models/default")
Recommender(index).related("news/2016/03/14/....md", k=10)
"""

from recommender.archive import Archive, Event, read_archive
from recommender.index import build_index, load_index
from recommender.recommend import Recommender, Suggestion

__all__ = ["Archive", "Event", "Recommender", "Suggestion", "build_index", "load_index", "read_archive"]
__version__ = "0.1.0"

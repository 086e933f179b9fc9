"""recommender: related-event suggestions for a news-event archive, on the CPU.

from recommender import read_archive, build_index, load_index, Recommender
index = load_index("models/default")
Recommender(index).related("news/2016/03/14/....md", k=10)
"""

# isort: off
from recommender.environment import set_import_defaults

set_import_defaults()  # first: the libraries the imports below load read it (environment.py sets every variable)
# isort: on

from recommender.archive import Archive, Event, read_archive  # noqa: E402
from recommender.index import build_index, load_index  # noqa: E402
from recommender.rank import Recommender, Suggestion  # noqa: E402

__all__ = ["Archive", "Event", "Recommender", "Suggestion", "build_index", "load_index", "read_archive"]
__version__ = "0.1.0"

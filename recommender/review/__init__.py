"""Editors review suggestions in the browser: accept into Related, reject for good, skip, undo.

edit.py (the file edit, pure) -> queue.py (the session: what is pending, each decision kept and logged)
-> pages.py (the HTML) -> app.py (the FastAPI app and its safety); `recommender review` serves it.
"""

from recommender.eventfile import related_href, related_line
from recommender.review.app import create_review_app
from recommender.review.edit import StaleFileError, accept, add_related, drop_suggested
from recommender.review.queue import REASONS, Reviewer, ReviewError

__all__ = [
    "REASONS",
    "ReviewError",
    "Reviewer",
    "StaleFileError",
    "accept",
    "add_related",
    "create_review_app",
    "drop_suggested",
    "related_href",
    "related_line",
]

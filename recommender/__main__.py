"""`python -m recommender`: the command line, as the `recommender` script runs it."""

from recommender.cli import app

app()

"""The eval harness: every ranker against the curated lists (`run`), and the report (`report`)."""

from recommender.evaluate.report import write_report
from recommender.evaluate.run import (
    BASELINES,
    METRICS,
    EvalConfig,
    EvalResult,
    decision_precision,
    run_eval,
    score_runs,
    select_queries,
)

__all__ = [
    "BASELINES",
    "METRICS",
    "EvalConfig",
    "EvalResult",
    "decision_precision",
    "run_eval",
    "score_runs",
    "select_queries",
    "write_report",
]

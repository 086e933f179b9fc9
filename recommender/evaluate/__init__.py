"""The eval harness: every ranker against the curated lists (`run`), and the report (`report`)."""

from recommender.evaluate.report import EvalReport, write_report
from recommender.evaluate.run import (
    BASELINES,
    METRICS,
    EvalConfig,
    EvalResult,
    decision_precision,
    evaluate_archive,
    run_eval,
    score_runs,
    select_queries,
)

__all__ = [
    "BASELINES",
    "METRICS",
    "EvalConfig",
    "EvalReport",
    "EvalResult",
    "decision_precision",
    "evaluate_archive",
    "run_eval",
    "score_runs",
    "select_queries",
    "write_report",
]

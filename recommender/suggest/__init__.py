"""Batch Related suggestions for editors, in the archive's own format, with editors in control.

    rules.py (editors.toml) -> batch.py (suggestions per event, in blocks) -> render.py (jsonl, csv, markdown)
    -> write.py (the `### Suggested related:` section of each file); run.py drives one batch run, and plan.py
    plans one from an editor's request (`recommender suggest`).

`--write` adds or replaces a `### Suggested related:` section in each event file and never touches
`### Related:` or anything else; decisions.py remembers what editors removed from it.
"""

from recommender.suggest.batch import (
    BatchOptions,
    EventSuggestions,
    FileState,
    select_events,
    suggest_all,
    suggest_for,
)
from recommender.suggest.decisions import (
    DECISIONS_FILE,
    Decisions,
    append_decisions,
    judged_pairs,
    load_decisions,
    save_decisions,
)
from recommender.suggest.plan import BatchPlan, BatchRequest, PlanError, plan_batch
from recommender.suggest.render import FORMATS, SECTION, markdown_block, render
from recommender.suggest.rules import EditorRules, RulesError, append_never, load_rules, remove_never
from recommender.suggest.run import ArchiveRows, BatchRun, BatchSummary, archive_rows, file_states, run_batch
from recommender.suggest.write import WriteOutcome, with_section, write_suggestions

__all__ = [
    "DECISIONS_FILE",
    "FORMATS",
    "SECTION",
    "ArchiveRows",
    "BatchOptions",
    "BatchPlan",
    "BatchRequest",
    "BatchRun",
    "PlanError",
    "plan_batch",
    "BatchSummary",
    "Decisions",
    "FileState",
    "append_decisions",
    "append_never",
    "judged_pairs",
    "remove_never",
    "archive_rows",
    "file_states",
    "load_decisions",
    "save_decisions",
    "EditorRules",
    "EventSuggestions",
    "RulesError",
    "WriteOutcome",
    "load_rules",
    "markdown_block",
    "render",
    "run_batch",
    "select_events",
    "suggest_all",
    "suggest_for",
    "with_section",
    "write_suggestions",
]

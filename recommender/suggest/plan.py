"""A batch run planned from an editor's request: the editors' rules, the events chosen, the files as they are now
and the decisions kept, with the warnings the editor should see; then run, and its summary said in one line."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from recommender.archive import Archive
from recommender.atomic import atomic_path
from recommender.rank import Recommender
from recommender.suggest.batch import BatchOptions, FileState, select_events
from recommender.suggest.decisions import DECISIONS_FILE, Decisions, load_decisions, save_decisions
from recommender.suggest.render import FORMATS
from recommender.suggest.rules import EditorRules, RulesError, load_rules
from recommender.suggest.run import BatchRun, BatchSummary, archive_rows, file_states, run_batch
from recommender.suggest.write import WriteOutcome


class PlanError(ValueError):
    """A request that cannot be planned; the message names the parameter."""


@dataclass(frozen=True)
class BatchRequest:
    """What `recommender suggest` was asked for."""

    archive: Path
    index_path: Path
    options: BatchOptions
    only: tuple[str, ...] = ()
    since: dt.date | None = None
    until: dt.date | None = None
    new_only: bool = False
    write: bool = False  # write each file's Suggested related section (else a dry run that counts the changes)
    rules_file: Path | None = None  # default: ARCHIVE/editors.toml
    fmt: str | None = None  # default: jsonl, or no output with --write
    out: Path | None = None  # default: stdout
    jobs: int = 1


@dataclass
class BatchPlan:
    request: BatchRequest
    rows: list[int]
    rules: EditorRules
    states: dict[int, FileState]
    decisions: Decisions
    in_files: bool  # an archive of files (not tarballs): the files are written, or their changes counted
    warnings: list[str] = field(default_factory=list)
    summary: BatchSummary = field(default_factory=BatchSummary)
    recorded: int = 0  # decisions saved to ARCHIVE/decisions.jsonl by the run

    def run(self, recommender: Recommender, progress: bool, on_skip: Callable[[WriteOutcome], None]) -> BatchSummary:
        """Suggest, render to the output and write (or count) the files; then remember the editors' decisions."""
        request = self.request
        fmt = request.fmt or "jsonl"

        def batch(fmt: str | None, stream: TextIO | None) -> None:
            run = BatchRun(
                self.rows,
                self.rules,
                request.options,  # k and past_only are the options' own
                fmt,
                stream,
                files=request.archive if self.in_files else None,
                dry_run=not request.write,
                progress=progress,
                jobs=request.jobs,
                on_skip=on_skip,
                states=self.states,
                decisions=self.decisions,
                summary=self.summary,
            )
            run_batch(recommender, run)

        if request.fmt is None and request.write and request.out is None:
            batch(None, None)  # the files are the output
        elif request.out is None:
            batch(fmt, sys.stdout)
        else:
            with atomic_path(request.out) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
                batch(fmt, handle)
        if request.write and self.in_files:
            self.recorded = save_decisions(request.archive / DECISIONS_FILE, self.decisions)
        return self.summary

    def describe(self, seconds: float) -> str:
        """The run's summary for the editor, in one line."""
        summary, request = self.summary, self.request
        verb = "written" if request.write else "would change (dry run; --write to apply)"
        files = summary.files
        counts = (
            f" Files {verb}: {files['added']:,} added, {files['replaced']:,} replaced, {files['removed']:,} removed, "
            f"{files['unchanged']:,} unchanged, {files['skipped']:,} skipped."
            if self.in_files
            else ""
        )
        curated = (
            f"; {summary.curated_matches:,} already in the curated lists of {summary.events_with_curated:,} events"
            if request.options.include_curated
            else ""
        )
        remembered = (
            f" {summary.rejections:,} removed by editors, "
            + ("remembered" if self.recorded else "not suggested again")
            + f" ({DECISIONS_FILE})."
            if summary.rejections
            else ""
        )
        return f"{summary.events:,} events, {summary.suggestions:,} suggestions in {seconds:.1f}s{curated}." + (
            counts + remembered
        )


def plan_batch(recommender: Recommender, data: Archive, request: BatchRequest) -> BatchPlan:
    """Plan the run: raises PlanError (naming the parameter) for a request that cannot be met."""
    archive = request.archive
    if request.fmt is not None and request.fmt not in FORMATS:
        raise PlanError(f"--format: {request.fmt!r} is not one of {', '.join(FORMATS)}")
    if request.write and not archive.is_dir():
        raise PlanError(f"--write: {archive} must be a folder of event files to write into")
    if request.write and data.packed:
        raise PlanError(f"--write: {archive} holds tarballs, which cannot be written in place; unpack them first")
    rules = _rules(request).resolved(recommender.find, lambda row: recommender.index.ids[row])
    warnings = list(rules.warnings)
    in_files = archive.is_dir() and not data.packed  # tarballs are read-only: no files to change or report on
    found = archive_rows(recommender, data)
    if found.missing:
        warnings.append(
            f"{len(found.missing):,} of the archive's {len(data.events):,} events are not in the index "
            f"{request.index_path} and are left out (first: {found.missing[0]}); run "
            f"`recommender index --archive {archive} --out {request.index_path}`"
        )
    if found.stale:
        warnings.append(
            f"{len(found.stale):,} events changed since the index was built (first: {found.stale[0]}); "
            "their suggestions use the indexed text"
        )
    if not found.rows:
        raise PlanError(f"--index: {request.index_path} holds none of the events of {archive}")
    new_ids = {e.id for e in data.events.values() if not e.related and not e.suggested} if request.new_only else None
    try:
        rows = select_events(
            recommender,
            request.only,
            request.since,
            request.until,
            rules=rules,
            new_ids=new_ids,
            within=found.rows.values(),
            with_excluded=in_files,
        )
        decisions = load_decisions(archive / DECISIONS_FILE) if in_files else Decisions()
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    plan = BatchPlan(request, rows, rules, {}, decisions, in_files, warnings)
    by_row = {row: i for i, row in found.rows.items()}
    chosen = {by_row[r]: r for r in rows if r in by_row}
    plan.states = file_states(recommender, data, chosen, decisions, plan.summary)
    return plan


def _rules(request: BatchRequest) -> EditorRules:
    """The editors' rules: --rules, else ARCHIVE/editors.toml when there is one."""
    try:
        if request.rules_file is not None:
            return load_rules(request.rules_file)
        return load_rules(request.archive / "editors.toml") if request.archive.is_dir() else EditorRules()
    except RulesError as exc:
        raise PlanError(str(exc)) from None

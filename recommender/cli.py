"""The `recommender` command: each command parses its options, calls the package and prints; every error is one
line, never a traceback."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer._click.core import Context as ClickContext  # typer ships its own click
from typer._click.exceptions import UsageError as ClickUsageError
from typer.core import TyperGroup

from recommender.archive import MAX_ID, Archive, ArchiveError, Event, EventParseError, id_in_path, parse_event
from recommender.embed import BACKENDS, DEFAULT_BACKEND, DEFAULT_MODEL, EmbedderError
from recommender.eventfile import related_ids
from recommender.index import DEFAULT_INDEX, IndexLoadError
from recommender.rank.calibration import MIN_CONFIDENCE
from recommender.reading import read_archive_cached
from recommender.wording import count


class OneLineUsageError(ClickUsageError):
    """A usage error (an unknown command or option, a value out of range) as one line naming what is wrong."""

    def show(self, file: Any = None) -> None:
        where = self.ctx.command_path if self.ctx is not None else "recommender"
        typer.echo(f"error: {self.format_message()} (see `{where} --help`)", file=file or sys.stderr)


class OneLineErrors(TyperGroup):
    """The command group: click's usage errors (usage, hint and error: three lines) said in one line."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: ClickContext | None = None, **extra: Any
    ) -> ClickContext:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except ClickUsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except ClickUsageError as exc:
            raise _one_line(exc) from None


def _one_line(exc: ClickUsageError) -> ClickUsageError:
    return exc if isinstance(exc, OneLineUsageError) else OneLineUsageError(exc.format_message(), exc.ctx)


app = typer.Typer(
    cls=OneLineErrors,
    help="Related-event suggestions for a news-event archive.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: wrapped at the terminal's width, never cut off (rich's table cuts)
)

DEFAULT_ARCHIVE = Path("archive")
ArchiveOption = Annotated[
    Path, typer.Option("--archive", help="Folder of event .md files, a .tar.gz, or a folder of tarballs.")
]
IndexOption = Annotated[Path, typer.Option("--index", help="Index folder built by `recommender index`.")]


class UsageError(Exception):
    """A bad parameter value; the message names the parameter."""


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn the package's known errors into one-line messages with an exit code."""
    from recommender.rank import UnknownEventError

    try:
        yield
    except UnknownEventError as exc:
        fail(str(exc), 2)
    except UsageError as exc:
        fail(str(exc), 2)
    except (ArchiveError, IndexLoadError, EmbedderError, OSError) as exc:
        fail(str(exc), 1)


def parse_date(value: str | None, parameter: str) -> dt.date | None:
    if value is None or value == "":
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{parameter}: {value!r} is not a date (expected YYYY-MM-DD)") from None


def date_window(
    since: str | None, until: str | None, names: tuple[str, str] = ("--since", "--until")
) -> tuple[dt.date | None, dt.date | None]:
    """--since and --until (or `names`) as dates; since after until is an error, not an empty result."""
    start, end = parse_date(since, names[0]), parse_date(until, names[1])
    if start and end and start > end:
        raise UsageError(f"{names[0]} {start} is after {names[1]} {end}: no date is in that window")
    return start, end


# `related` and `eval` take --since/--until for the suggestions' dates; `suggest` and `review` choose which events
# get suggestions, named apart. Their old --since/--until still work, hidden, with a warning.
EventsSince = Annotated[
    str | None, typer.Option("--events-since", help="Only events dated on or after this date get suggestions.")
]
EventsUntil = Annotated[
    str | None, typer.Option("--events-until", help="Only events dated on or before this date get suggestions.")
]
OldSince = Annotated[str | None, typer.Option("--since", hidden=True, help="Deprecated: --events-since.")]
OldUntil = Annotated[str | None, typer.Option("--until", hidden=True, help="Deprecated: --events-until.")]


def events_window(
    since: str | None, until: str | None, old_since: str | None, old_until: str | None, command: str
) -> tuple[dt.date | None, dt.date | None]:
    """The dates of the events that get suggestions, from --events-since/--events-until (or the old names)."""
    if old_since is not None or old_until is not None:
        typer.echo(
            f"warning: `{command} --since/--until` are deprecated: say --events-since/--events-until (which events "
            "get suggestions; `related --since/--until` filter the suggestions' own dates)",
            err=True,
        )
    return date_window(since or old_since, until or old_until, ("--events-since", "--events-until"))


def read(archive: Path, cached: bool = True) -> Archive:
    return read_archive_cached(archive, cached)


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@app.command()
def validate(
    archive: ArchiveOption = DEFAULT_ARCHIVE,
    strict: Annotated[bool, typer.Option(help="Exit 1 if any file was skipped.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    index_path: Annotated[
        Path | None, typer.Option("--index", help="Also say whether this index's ready lists are current.")
    ] = None,
) -> None:
    """Parse every event file and report counts, unresolved links and every skipped file with its reason (and,
    with --index, whether the index's ready lists are current or stale)."""
    from recommender.lifecycle import lists_status
    from recommender.suggest.run import index_coverage

    with clear_errors():
        recommender = _recommender(index_path) if index_path is not None else None
        data = read(archive)
    events = data.events.values()
    unresolved = data.unresolved_links()
    report = {
        "archive": str(archive),
        "events": len(data.events),
        "with_summary": sum(1 for e in events if e.summary),
        "with_related": sum(1 for e in events if e.related),
        "related_links": sum(len(e.related) for e in events),
        "unresolved_links": len(unresolved),
        "unresolved": [{"event": event_id, "href": href} for event_id, href in unresolved],
        "skipped": [asdict(s) for s in data.skipped],
        "warnings": data.warnings,
        "fingerprint": data.fingerprint,
    }
    if recommender is not None:
        report["lists"], report["lists_reason"] = lists_status(recommender, data.fingerprint)
        report["index"] = {"path": str(index_path), **index_coverage(recommender, data)}
    if as_json:
        echo_json(report)
    else:
        _print_validation(report, data)
    if strict and data.skipped:
        raise typer.Exit(1)


def _print_validation(report: dict[str, Any], data: Archive) -> None:
    for key in ("events", "with_summary", "with_related", "related_links", "unresolved_links"):
        typer.echo(f"{key.replace('_', ' '):>18}: {report[key]:,}")
    typer.echo(f"{'skipped files':>18}: {len(data.skipped):,}")
    for skipped in data.skipped:
        typer.echo(f"  skipped {skipped.path}: {skipped.reason}")
    for warning in data.warnings:
        typer.echo(f"  warning: {warning}")
    for event_id, href in data.unresolved_links()[:UNRESOLVED_SHOWN]:
        typer.echo(f"  unresolved link in {event_id}: {href}")
    if report["unresolved_links"] > UNRESOLVED_SHOWN:
        typer.echo(f"  ... the first {UNRESOLVED_SHOWN} of {report['unresolved_links']:,} (all of them: --json)")
    if "index" in report:
        _print_coverage(report)


UNRESOLVED_SHOWN = 5  # unresolved links listed in validate's text report; --json lists every one


def _print_coverage(report: dict[str, Any]) -> None:
    """Whether the index is this archive's, and then whether its ready lists are current."""
    index = report["index"]
    if index["matches"]:
        typer.echo(f"{'index':>18}: {index['path']} holds exactly this archive's events, as they are now")
        typer.echo(f"{'ready lists':>18}: {report['lists_reason']}")
        return
    differences = [
        f"{count(index[key], 'event')} {what} (first: {index['first'][key][0]})"
        for key, what in (
            ("not_in_index", "of this archive not in it"),
            ("not_in_archive", "of it not in this archive"),
            ("changed", "changed since it was built"),
        )
        if index[key]
    ]
    typer.echo(f"{'index':>18}: {index['path']} is not this archive's: " + "; ".join(differences))
    typer.echo(
        f"{'ready lists':>18}: {report['lists_reason']}; "
        f"`recommender index --archive {report['archive']} --out {index['path']}` brings the index up to date"
    )


ModelOption = Annotated[
    str, typer.Option(help="Embedding model: base, tuned (fine-tuned, shipped) or a `finetune` output folder.")
]
ListsOption = Annotated[
    bool | None,
    typer.Option(
        "--lists/--no-lists",
        help="Keep every event's top 50 suggestions ready in the index (default: as the index there does; "
        "lists for a new one). --no-lists is kept by later builds until --lists.",
    ),
]
CORES = os.cpu_count() or 1


@app.command()
def index(
    archive: ArchiveOption = DEFAULT_ARCHIVE,
    out: Annotated[Path, typer.Option("--out", help="Index folder to write.")] = DEFAULT_INDEX,
    backend: Annotated[str, typer.Option(help=f"Embedding backend: {', '.join(BACKENDS)}.")] = DEFAULT_BACKEND,
    full: Annotated[bool, typer.Option("--full", help="Re-read and re-embed everything (no caches).")] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=1024, help="Texts per batch (torch only).")] = 64,
    model: ModelOption = DEFAULT_MODEL,
    lists: ListsOption = None,
    jobs: Annotated[int, typer.Option(min=1, help="Processes making ready lists (default: one per core).")] = CORES,
) -> None:
    """Embed every event (only new or changed ones when an index is already there) and save the index, with
    every event's suggestions ready (only those that can have changed are remade on an update)."""
    from recommender.embed import Embedder
    from recommender.lifecycle import build

    with clear_errors():
        started = time.perf_counter()
        data = read(archive, cached=not full)
        read_seconds = time.perf_counter() - started
        _say_skipped(data)
        embedder = Embedder(backend=backend, batch_size=batch_size, model=model)
        report = build(
            data,
            out,
            embedder,
            archive_name=archive.resolve().name,
            lists=lists,
            jobs=jobs,
            progress=sys.stderr.isatty(),
            reuse=not full,
            log=_log,
        )
    typer.echo(
        f"indexed {count(report.count, 'event')} into {report.path} in {time.perf_counter() - started:.1f}s "
        f"(read {read_seconds:.1f}s; embedded {report.embedded:,} at {report.docs_per_second:.0f} docs/s, "
        f"reused {report.reused:,}, removed {report.removed:,})"
    )


def _say_skipped(data: Archive) -> None:
    """The files skipped and the warnings of reading the archive, on stderr."""
    for skipped in data.skipped:
        typer.echo(f"skipped {skipped.path}: {skipped.reason}", err=True)
    for warning in data.warnings:
        typer.echo(f"warning: {warning}", err=True)


def _recommender(index_path: Path, rankers: Path | None = None) -> Any:
    from recommender.index import load_index
    from recommender.rank import Recommender, load_rankers
    from recommender.rank.calibration import load_calibration

    if rankers is None:
        return Recommender(load_index(index_path))
    if not (rankers / "rankers.json").is_file():
        raise UsageError(f"--rankers: no rankers.json in {rankers} (made by `recommender tune --out {rankers}`)")
    chosen = Recommender(load_index(index_path), rankers=load_rankers(rankers))
    chosen.calibration = load_calibration(rankers)  # the folder's own confidence, when tune fitted one
    return chosen


def _print_suggestions(
    suggestions: list[Any], as_json: bool, title: str, in_page: list[str | None] | None = None
) -> None:
    """The suggestions as a table (or JSON); `in_page`: the event each link of a page file's own Related list
    points to (None: not an event of the index), marked +."""
    if as_json:
        from recommender.rank.output import suggestion_json

        echo_json([suggestion_json(s) for s in suggestions])
        return
    source = f"  ({suggestions[0].source})" if suggestions else ""
    typer.echo(title + source)
    for s in suggestions:
        mark = "*" if s.curated else "+" if in_page and s.id in in_page else " "
        context = f"  [{', '.join(s.context)}]" if s.context else ""
        sure = f"{s.confidence:5.2f}" if s.confidence is not None else "    -"
        typer.echo(f"{s.rank:>3}. {mark} {sure} {s.score:6.3f}  {s.date}  {s.headline[:110]}{context}")
        typer.echo(f"          {s.id}")
    if not suggestions:
        typer.echo("(no suggestion is confident enough)")
    typer.echo("(columns: confidence that a judge calls the item related or the same story, 0-1; the ranker's score)")
    if any(s.curated for s in suggestions):
        typer.echo("(* already in the event's curated Related list)")
    if in_page is not None:
        indexed = {i for i in in_page if i}
        shown = sum(s.id in indexed for s in suggestions)
        typer.echo(
            f"(+ in the page's own Related list: {shown} of its {count(len(in_page), 'link')}, "
            f"{len(indexed)} of which {'is an event' if len(indexed) == 1 else 'are events'} of this index)"
        )


WINDOW_CONFIDENCE = 0.3  # `related`'s default floor within a date window (see window_confidence)


def window_confidence(start: dt.date | None, end: dt.date | None) -> float:
    """`related`'s --min-confidence when none is given: 0, but within a date window the ranker must fill the list
    from the few events there, and what fills it is mostly unrelated (the Putin event within a week: a plane crash,
    ExoMars): only suggestions at least WINDOW_CONFIDENCE sure are shown then, and stderr says so."""
    if start is None and end is None:
        return 0.0
    typer.echo(
        f"within --since/--until: only suggestions at least {WINDOW_CONFIDENCE} confident (--min-confidence 0 for all)",
        err=True,
    )
    return WINDOW_CONFIDENCE


EventIdArgument = Annotated[
    str | None,
    typer.Argument(
        help="Event id (news/2016/03/14/slug.md or /news/2016/03/14/slug.md), or an event page's file: its event"
    ),
]
CuratedArchive = Annotated[
    Path | None,
    typer.Option(
        "--archive", help="The archive the event is in: its file's Related list, as it is now, marks curated."
    ),
]
RelatedConfidence = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        help=f"Only suggestions at least this confident (0-1; default 0; {WINDOW_CONFIDENCE} in a date window).",
    ),
]
RankersOption = Annotated[
    Path | None, typer.Option(help="Folder of trained rankers (`tune --out`) to use instead of the packaged ones.")
]


@app.command()
def related(
    event_id: EventIdArgument = None,
    text: Annotated[str | None, typer.Option("--text", help="Free text instead of an event id.")] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="How many suggestions (at most).")] = 10,
    index_path: IndexOption = DEFAULT_INDEX,
    archive: CuratedArchive = None,
    since: Annotated[str | None, typer.Option(help="Only suggestions dated on or after this date.")] = None,
    until: Annotated[str | None, typer.Option(help="Only suggestions dated on or before this date.")] = None,
    exclude_curated: Annotated[bool, typer.Option(help="Leave out events already curated.")] = False,
    min_confidence: RelatedConfidence = None,
    system: Annotated[str, typer.Option(help="Ranker: fused (default), dense or bm25.")] = "fused",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    rankers: RankersOption = None,
) -> None:
    """Related events for an archived event (by id) or for free text (--text)."""
    with clear_errors():
        _check_query(event_id, text)
        start, end = date_window(since, until)
        if min_confidence is None:  # free text and the dense and bm25 systems have no confidence to filter by
            min_confidence = window_confidence(start, end) if event_id is not None and system == "fused" else 0.0
        recommender = _recommender(index_path, rankers)
        if system not in recommender.systems:
            raise UsageError(f"--system: unknown {system!r}, choose one of {', '.join(recommender.systems)}")
        if event_id is not None:
            from recommender.rank import RelatedRequest

            request = RelatedRequest(k, start, end, system, min_confidence, exclude_curated)
            suggestions, title, in_page = _related_to_event(recommender, event_id, request, index_path, archive)
        else:
            assert text is not None
            suggestions = recommender.similar(text, k, start, end, system=system, min_confidence=min_confidence)
            title, in_page = f"text: {text[:120]}", None
    _print_suggestions(suggestions, as_json, title, in_page)


def _check_query(event_id: str | None, text: str | None) -> None:
    """One of EVENT_ID and --text, neither empty nor longer than any id."""
    if (event_id is None) == (text is None):
        raise UsageError("give an EVENT_ID or --text, not both or neither")
    if text is not None and not text.strip():
        raise UsageError("--text is empty")
    if event_id is not None and len(event_id) > MAX_ID:  # no id is longer: no "closest ids" hint to look for
        raise UsageError(f"EVENT_ID: {len(event_id):,} characters, an id has at most {MAX_ID}")


def _related_to_event(
    recommender: Any, event_id: str, request: Any, index_path: Path, archive: Path | None
) -> tuple[list[Any], str, list[str | None] | None]:
    """`related`'s answer for an event id, a path to its file, or a page file outside the index: the suggestions,
    their title, and the ids of the page file's own Related list (None for an indexed event)."""
    index = recommender.index
    in_page: list[str | None] | None = None
    if recommender.find(event_id) is None:  # a path to the event's file names it too
        event_id = id_in_path(event_id) if recommender.find(id_in_path(event_id)) is not None else event_id
    page = _page_file(event_id) if recommender.find(event_id) is None else None
    if page is not None:  # a page file outside the index (SEED-EXAMPLE.md): its event's suggestions
        row = _row_of_page(recommender, page, event_id, index_path)
        in_page = [recommender.find_id(link.href) for link in page.related]
    else:
        row = recommender.row_of(event_id)
    if archive is not None:
        request = replace(request, curated=_curated_in_file(recommender, read(archive), index.ids[row], archive))
    suggestions = recommender.answer(row, request)
    if request.system == "fused" and recommender.lists_state == "stale":
        typer.echo("warning: the index's ready lists were made by another ranker: ranking live", err=True)
    return suggestions, f"{index.date(row)}  {index.headlines[row][:120]}", in_page


def _page_file(argument: str) -> Event | None:
    """The event page at a path given instead of an id (None if no .md file is there)."""
    path = Path(argument)
    if path.suffix != ".md" or not path.is_file():
        return None
    try:
        return parse_event(path.name, path.read_text(encoding="utf-8"))
    except (EventParseError, UnicodeDecodeError) as exc:
        raise UsageError(f"EVENT_ID: {argument} is not an event page ({exc})") from None


def _row_of_page(recommender: Any, page: Event, argument: str, index_path: Path) -> int:
    row = recommender.find_page(page)
    if row is None:
        raise UsageError(
            f"EVENT_ID: no event of the index {index_path} is the page {argument} "
            f"(none dated {page.date} has its headline)"
        )
    typer.echo(f"{argument} is the page of the event {recommender.index.ids[row]}", err=True)
    return int(row)


def _curated_in_file(recommender: Any, data: Archive, event_id: str, archive: Path) -> frozenset[str]:
    """The ids of the event's Related list as its file in `data` has it now."""
    event = data.events.get(event_id)
    if event is None:
        raise UsageError(f"--archive: {archive} has no event {event_id}")
    return related_ids(event, recommender.find_id)


EvalSplitBy = Annotated[
    str, typer.Option(help="hash: fixed split by id hash; time: train to 2019-12-31, test from 2021-01-01.")
]
DeepOption = Annotated[
    int, typer.Option(min=0, help="Rank this deep for condensed-list metrics and bpref (0: skip them).")
]
WindowOption = Annotated[
    str | None,
    typer.Option(help="month: rank each query among the events of its own calendar month alone (windowed eval)."),
]
JudgedFolder = Annotated[
    Path | None,
    typer.Option("--judged", help="Also score each system on the blind judgments in this folder (eval/judged)."),
]
ReportFolder = Annotated[
    Path | None,
    typer.Option(help="Folder for report.md, metrics.json, runs and plots (default: a new temporary folder)."),
]
EvalDecisions = Annotated[
    bool, typer.Option("--decisions", help="Also report precision on pairs decided in review (decisions.jsonl).")
]


@app.command(name="eval")
def eval_command(
    archive: ArchiveOption = DEFAULT_ARCHIVE,
    index_path: IndexOption = DEFAULT_INDEX,
    queries: Annotated[str, typer.Option(help="How many queries (seeded sample), or 'all'.")] = "3000",
    seed: Annotated[int, typer.Option(help="Seed of the query sample and of `random`.")] = 42,
    systems: Annotated[str, typer.Option(help="Comma-separated systems.")] = "random,recency,bm25,dense,fused",
    split: Annotated[str, typer.Option(help="Queries from: all, train or test (see --split-by).")] = "all",
    split_by: EvalSplitBy = "hash",
    deep: DeepOption = 100,
    gold: Annotated[Path | None, typer.Option(help="JSON lines {id, related} to use as the truth.")] = None,
    since: Annotated[str | None, typer.Option(help="Candidates dated on or after this date.")] = None,
    until: Annotated[str | None, typer.Option(help="Candidates dated on or before this date.")] = None,
    window: WindowOption = None,
    judgments: JudgedFolder = None,
    out: ReportFolder = None,
    rankers: RankersOption = None,
    decisions: EvalDecisions = False,
) -> None:
    """Compare systems with the curated Related lists (P@k, R@10, nDCG@10, MRR, MAP, hit rate, lenient P@10)."""
    from recommender.evaluate import EvalConfig, EvalReport, evaluate_archive

    with clear_errors():
        dates = date_window(since, until)
        with _usage_errors():
            config = EvalConfig.from_options(queries, seed, systems, split, split_by, deep, *dates, window=window)
        _file_option(gold, "--gold")
        judged = _judged(archive) if decisions else None  # a missing or bad decisions file fails before the run
        out, started = out or _new_folder("recommender-eval-"), time.perf_counter()
        _log("loading the index and reading the archive")
        recommender, data, progress = _recommender(index_path, rankers), read(archive), sys.stderr.isatty()
        with _usage_errors():
            result = evaluate_archive(recommender, data, config, gold, judged, progress, _log, judgments=judgments)
        result.extra.update(index=str(index_path), archive=str(archive), wall_seconds=_since(started))
        report = EvalReport.of(result, {e.id: e.date for e in data.events.values()}, _command())
        path = report.write(out)
    for line in report.console():
        typer.echo(line)
    typer.echo(f"{len(result.query_ids):,} queries in {_since(started)}s; report: {path}")


def _file_option(path: Path | None, option: str) -> None:
    """An option naming a file that is not there, as the usage error it is."""
    if path is not None and not path.is_file():
        raise UsageError(f"{option}: no such file {path}")


@contextmanager
def _usage_errors(kind: type[Exception] | tuple[type[Exception], ...] = ValueError) -> Iterator[None]:
    """An error of the package about what the options asked for (`kind`), said as the usage error it is."""
    try:
        yield
    except kind as exc:
        raise UsageError(str(exc)) from None


def _log(message: str) -> None:
    typer.echo(message, err=True)


def _command() -> str:
    return "recommender eval " + " ".join(sys.argv[2:])


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 1)


def _new_folder(prefix: str) -> Path:
    """A new temporary folder, said on stderr."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix=prefix))
    typer.echo(f"report folder: {folder}", err=True)
    return folder


def _judged(archive: Path) -> dict[str, dict[str, int]]:
    """The pairs decided in review, as labels (1 accepted, 0 rejected), from ARCHIVE/decisions.jsonl."""
    from recommender.suggest import DECISIONS_FILE, judged_pairs, load_decisions

    path = archive / DECISIONS_FILE
    if not path.is_file():
        raise UsageError(f"--decisions: no {DECISIONS_FILE} in {archive} (made by `recommender review`)")
    try:
        return judged_pairs(load_decisions(path))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


TrainQueries = Annotated[
    int | None, typer.Option(min=10, help="Train-split queries to learn from (a seeded sample; default: all).")
]
SeedOption = Annotated[int, typer.Option()]
RankersOut = Annotated[
    Path | None,
    typer.Option(help="Folder for the rankers and their confidence (default: INDEX/rankers; use them with --rankers)."),
]
FeaturesCache = Annotated[
    Path | None, typer.Option(help="Keep the training features in this .npz and reuse them when they match.")
]
CalibrateOnly = Annotated[
    bool, typer.Option(help="Only refit the fused ranker's confidence (calibration.json), not the rankers.")
]
CalibrationQueries = Annotated[
    int, typer.Option(min=10, help="Train-split queries the confidence is fitted on (a seeded sample).")
]
AblationsOption = Annotated[
    bool, typer.Option(help="Also train the ablations (fused without each signal group), for the eval.")
]
TuneSplitBy = Annotated[
    str, typer.Option(help="Learn from the train part of: hash (the packaged rankers) or time (to 2019-12-31).")
]
TuneDecisions = Annotated[
    bool,
    typer.Option("--decisions", help="Also learn from review decisions (accepted: relevant; rejected: not)."),
]
TuneJudged = Annotated[
    Path | None,
    typer.Option(
        help="Fit the fused ranker's judged stage and its confidence on the blind judgments in this folder "
        "(eval/judged; held-out events left out)."
    ),
]
KeepStage = Annotated[
    bool, typer.Option(help="With --judged: keep the judged stage in --out, refit its confidence alone.")
]


@app.command()
def tune(
    archive: ArchiveOption = DEFAULT_ARCHIVE,
    index_path: IndexOption = DEFAULT_INDEX,
    queries: TrainQueries = None,
    seed: SeedOption = 42,
    out: RankersOut = None,
    features_cache: FeaturesCache = None,
    calibrate_only: CalibrateOnly = False,
    calibration_queries: CalibrationQueries = 3000,
    ablations: AblationsOption = True,
    split_by: TuneSplitBy = "hash",
    decisions: TuneDecisions = False,
    judged: TuneJudged = None,
    keep_stage: KeepStage = False,
) -> None:
    """Train the fused ranker and its ablations on the train split of the curated lists, then fit the fused
    ranker's confidence (calibrated probability) on train-split queries; with --judged, fit its judged stage
    and the confidence on blind judgments instead. --calibrate-only keeps the trees in --out."""
    from recommender.judgments import load_judged
    from recommender.truth import truth_from_archive

    with clear_errors():
        if split_by not in ("hash", "time"):
            raise UsageError(f"--split-by: {split_by!r} is not one of hash, time")
        with _usage_errors():
            judgments = None if judged is None else load_judged(judged)
        recommender = _recommender(index_path)
        truth = truth_from_archive(read(archive), set(recommender.index.ids))
        out = out if out is not None else index_path / "rankers"  # never the installed package unless named
        if calibrate_only:
            _packaged_rankers_in(out)
        else:
            labels = _judged(archive) if decisions else None
            _train(recommender, truth, out, queries, seed, features_cache, ablations, split_by, labels)
        _fit_confidence(recommender, truth, out, judgments, keep_stage, calibration_queries, seed)
    typer.echo(
        f"rankers and calibration written to {out}; the packaged ones are unchanged. Use these with "
        f"`recommender eval --rankers {out}` or `recommender related ... --rankers {out}`"
    )


def _packaged_rankers_in(out: Path) -> None:
    """With --calibrate-only: the packaged rankers copied into `out` when it has none, to refit their confidence."""
    from recommender.tune import copy_packaged_rankers

    if not (out / "rankers.json").is_file():
        typer.echo(f"copying the packaged rankers into {out} to refit their confidence there")
        copy_packaged_rankers(out)


def _train(
    recommender: Any,
    truth: Any,
    out: Path,
    queries: int | None,
    seed: int,
    cache: Path | None,
    ablations: bool,
    split_by: str,
    decisions: dict[str, dict[str, int]] | None,
) -> None:
    from recommender.tune import train_rankers

    index, progress = recommender.index, sys.stderr.isatty()
    train_rankers(index, truth, queries, seed, out, typer.echo, cache, progress, ablations, split_by, decisions)


def _fit_confidence(
    recommender: Any,
    truth: Any,
    out: Path,
    judgments: Any,
    keep_stage: bool,
    calibration_queries: int,
    seed: int,
) -> None:
    """The fused ranker in `out` given its judged stage and confidence (with --judged), else its confidence."""
    from recommender.rank import Recommender, load_rankers
    from recommender.tune import TrainingDataError, fit_calibration, fit_judged_stage

    trained = Recommender(recommender.index, rankers=load_rankers(out))
    if "fused" not in trained.rankers:
        raise UsageError(
            f"--out: no fused ranker in {out} to calibrate; run `recommender tune` without --calibrate-only"
        )
    if judgments is not None:
        fit_judged_stage(trained, judgments, out, log=typer.echo, keep_stage=keep_stage)
        return
    try:
        fit_calibration(trained, truth, calibration_queries, seed, out, log=typer.echo, progress=sys.stderr.isatty())
    except TrainingDataError as exc:
        raise UsageError(str(exc)) from None


@app.command()
def finetune(
    archive: ArchiveOption = DEFAULT_ARCHIVE,
    index_path: IndexOption = DEFAULT_INDEX,
    out: Annotated[Path, typer.Option(help="Folder for the fine-tuned model.")] = Path("models/tuned"),
    pairs: Annotated[int, typer.Option(min=32, help="Train-split (event, curated neighbour) pairs.")] = 8000,
    pairs_per_query: Annotated[int, typer.Option(min=1, help="At most this many pairs per event.")] = 2,
    steps: Annotated[int, typer.Option(min=1, help="Training steps (batches).")] = 250,
    batch_size: Annotated[int, typer.Option(min=2, help="Pairs per batch (in-batch negatives).")] = 32,
    learning_rate: Annotated[float, typer.Option(min=0, help="AdamW learning rate, after a linear warm-up.")] = 3e-5,
    seed: SeedOption = 42,
    ship: Annotated[bool, typer.Option(help="Also copy the int8 model into the package, as `--model tuned`.")] = False,
) -> None:
    """Fine-tune the embedder on the train split's curated lists (CPU, about 15 minutes) and export it to int8."""
    from recommender.finetune import FinetuneSettings, ship_model
    from recommender.finetune import finetune as train
    from recommender.truth import truth_from_archive

    with clear_errors():
        recommender = _recommender(index_path)
        truth = truth_from_archive(read(archive), set(recommender.index.ids))
        settings = FinetuneSettings(
            pairs=pairs,
            pairs_per_query=pairs_per_query,
            steps=steps,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
        )
        train(recommender.index, truth, out, settings, progress=sys.stderr.isatty(), log=typer.echo)
        if ship:
            typer.echo(f"shipped as --model tuned: {ship_model(out)}")
    typer.echo(f"fine-tuned model written to {out}; index with it: recommender index --model {out}")


NewOnly = Annotated[bool, typer.Option(help="Only events with neither a Related nor a Suggested related section.")]
IncludeCurated = Annotated[
    bool, typer.Option(help="Also suggest items already in the file's Related list (marked curated).")
]
SuggestConfidence = Annotated[
    float, typer.Option(min=0.0, max=1.0, help="Only suggestions at least this sure (0-1; 0: all; see README).")
]
FormatOption = Annotated[
    str | None, typer.Option("--format", help="jsonl, markdown or csv (default: jsonl; none with --write).")
]
WriteOption = Annotated[bool, typer.Option(help="Add/replace a '### Suggested related:' section in each event file.")]
RulesOption = Annotated[Path | None, typer.Option("--rules", help="Editors' rules (default: ARCHIVE/editors.toml).")]


@app.command()
def suggest(
    archive: ArchiveOption = DEFAULT_ARCHIVE,
    index_path: IndexOption = DEFAULT_INDEX,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Suggestions per event (at most).")] = 10,
    only: Annotated[list[str] | None, typer.Option("--only", help="Only this event id (repeatable).")] = None,
    events_since: EventsSince = None,
    events_until: EventsUntil = None,
    since: OldSince = None,
    until: OldUntil = None,
    past_only: Annotated[bool, typer.Option(help="Suggest only events dated on or before each event.")] = False,
    new_only: NewOnly = False,
    include_curated: IncludeCurated = False,
    min_confidence: SuggestConfidence = MIN_CONFIDENCE,
    fmt: FormatOption = None,
    out: Annotated[Path | None, typer.Option(help="Write the output to this file (default: stdout).")] = None,
    write: WriteOption = False,
    rules_file: RulesOption = None,
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes (default: one per core).")] = CORES,
) -> None:
    """Related suggestions for the events of ARCHIVE, for editors: as jsonl/markdown/csv, or written into the
    files. Items in a file's Related list and items an editor removed from its Suggested section (remembered
    in ARCHIVE/decisions.jsonl) are not suggested again."""
    from recommender.suggest import BatchOptions, BatchRequest, PlanError, plan_batch

    with clear_errors():
        started = time.perf_counter()
        options, ids = BatchOptions(k, past_only, include_curated, min_confidence), tuple(map(id_in_path, only or ()))
        window = events_window(events_since, events_until, since, until, "suggest")
        request = BatchRequest(archive, index_path, options, ids, *window, new_only, write, rules_file, fmt, out, jobs)
        recommender, data = _recommender(index_path), read(archive)
        with _usage_errors(PlanError):
            plan = plan_batch(recommender, data, request)
        for warning in plan.warnings:
            typer.echo(f"warning: {warning}", err=True)
        plan.run(recommender, sys.stderr.isatty(), lambda o: typer.echo(f"skipped {o.path}: {o.reason}", err=True))
    typer.echo(plan.describe(time.perf_counter() - started), err=True)


ReviewHost = Annotated[
    str, typer.Option(help="Address to listen on (not loopback: a token is needed, see --token-file).")
]
PortOption = Annotated[int, typer.Option(min=1, max=65535)]
TokenFile = Annotated[
    Path | None,
    typer.Option(
        help="File whose first line is the secret every request must carry (open /?token=...), 16+ characters; "
        "or set RECOMMENDER_TOKEN."
    ),
]
TokenOption = Annotated[
    str | None, typer.Option(hidden=True, help="The secret itself (visible to every user in `ps`: prefer a file).")
]
AllowedHost = Annotated[
    list[str] | None,
    typer.Option(help="A name or address other machines reach this server by (repeat for more)."),
]


@app.command()
def review(
    archive: ArchiveOption = DEFAULT_ARCHIVE,
    index_path: IndexOption = DEFAULT_INDEX,
    host: ReviewHost = "127.0.0.1",
    port: PortOption = 8010,
    token_file: TokenFile = None,
    token: TokenOption = None,
    allowed_host: AllowedHost = None,
    events_since: EventsSince = None,
    events_until: EventsUntil = None,
    since: OldSince = None,
    until: OldUntil = None,
    k: Annotated[int, typer.Option("--k", min=1, max=50, help="Suggestions per event.")] = 10,
) -> None:
    """Review suggestions in the browser: accept into Related, reject for good, skip, undo (decisions.jsonl)."""
    import uvicorn

    from recommender import webguard
    from recommender.review import Reviewer, ReviewError, create_review_app

    with clear_errors():
        start, end = events_window(events_since, events_until, since, until, "review")
        with _usage_errors((ReviewError, ValueError)):
            secret = webguard.read_token(token, token_file, dict(os.environ))
            if token:
                typer.echo(
                    "warning: a --token is visible to every user of this machine (ps): use --token-file", err=True
                )
            reviewer = Reviewer.open(archive, index_path, k=k, since=start, until=end, log=typer.echo)
            app_ = create_review_app(reviewer, host, secret, tuple(allowed_host or ()))
    reviewer.start()
    typer.echo(f"reviewing {count(len(reviewer.window()), 'event')} of {archive} on http://{host}:{port}/", err=True)
    uvicorn.run(
        app_, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3, **webguard.server_options()
    )
    reviewer.stop()


def port_in_use(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (the port taken, the address not this machine's), or None.
    Checked before a worker starts, so that `serve` never says it is serving and then fails."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return str(exc.strerror or exc)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as exc:
            return str(exc.strerror or exc).lower()
    return None


WorkersOption = Annotated[
    int, typer.Option(min=1, help="Server processes, sharing the index's mapped files (default: one per core).")
]
QueueOption = Annotated[
    int, typer.Option(min=0, help="Live rankings that may wait in each process; past it a 503 with Retry-After.")
]


@app.command()
def serve(
    index_path: IndexOption = DEFAULT_INDEX,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: PortOption = 8000,
    workers: WorkersOption = CORES,
    threads: Annotated[int, typer.Option(min=1, help="Live rankings at once in each process.")] = 2,
    queue: QueueOption = 32,
) -> None:
    """Run the similarity API (OpenAPI docs at /docs) over a saved index."""
    meta = _served_meta(index_path)
    from recommender.environment import set_serve_settings

    set_serve_settings(index_path, threads, queue, workers)
    busy = port_in_use(host, port)
    if busy:
        fail(f"--port: cannot listen on {host}:{port} ({busy}); is another server running there? choose another --port")
    lists = "its ready lists" if meta.get("lists_fingerprint") else "no ready lists (every answer ranked live)"
    typer.echo(
        f"serving {index_path}, with {lists}, on http://{host}:{port} (API docs: http://{host}:{port}/docs), "
        f"{count(workers, 'worker')}; a new build there is picked up within seconds, or at once on SIGHUP",
        err=True,
    )
    if workers > 1:  # the supervisor, lean: run as a script, it imports uvicorn alone (supervise.py)
        supervisor = str(Path(__file__).with_name("supervise.py"))
        os.execv(sys.executable, [sys.executable, supervisor, host, str(port), str(workers)])
    _serve_here(host, port)


def _serve_here(host: str, port: int) -> None:
    """The API in this process (one worker), its settings from the environment `serve` set."""
    import uvicorn

    from recommender.webguard import server_options

    # Requests still running 3 s after SIGTERM are cut off: the server stops within 5 s whatever its load.
    config = uvicorn.Config(
        "recommender.api:app_from_env",
        factory=True,
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=3,
        **server_options(),
    )
    uvicorn.Server(config).run()


def _served_meta(index_path: Path) -> dict[str, Any]:
    """The index's meta.json. The supervisor of the workers stays small: the index is loaded in each worker, and
    checked here only enough for a missing or unreadable index to be one line before any worker starts."""
    try:
        return dict(json.loads((index_path / "meta.json").read_bytes()))
    except FileNotFoundError:
        fail(f"no index at {index_path}: build it with `recommender index --archive ARCHIVE --out {index_path}`")
    except (OSError, ValueError) as exc:
        fail(f"index at {index_path} is damaged: meta.json is unreadable ({str(exc)[:120]})")

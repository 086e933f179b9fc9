"""One way to build and update an index, and to serve what it holds: every path that writes an index
(`recommender index`, the review page after an accept, reject or undo, the test fixtures) calls `build`, and
every path that loads one to answer from it (the API's hot reload, the review page) calls `recommender_for`.

`build` keeps the ready lists current: an update remakes those a change can reach and copies the others
(`rank/ready.py`), ranked by the rankers, cascade and calibration of the recommender that will serve them
(`like`), unless the index was deliberately built without lists (`--no-lists`, kept until `--lists`). The new
build is written to a temporary folder, its lists with it, and renamed into place only when complete
(`index/build.py`): a server goes on answering from the build it has loaded until then. `lists_status` says
whether an index's lists are current, and if not, why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from recommender.archive import Archive
from recommender.embed import Embedder
from recommender.index import BuildReport, Index, IndexMeta, build_index
from recommender.index.build import Rebuilt
from recommender.index.layout import META
from recommender.rank.fingerprint import recipe_changes
from recommender.rank.ready import lists_step
from recommender.rank.recommender import Recommender


def build(
    archive: Archive,
    out: str | Path,
    embedder: Embedder | None = None,
    *,
    archive_name: str = "",
    lists: bool | None = None,
    like: Recommender | None = None,
    jobs: int = 1,
    reuse: bool = True,
    progress: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> BuildReport:
    """Build or update the index at `out` from `archive` (see the module docstring). `lists`: True makes ready
    lists, False makes none and marks the index so (later builds keep none until asked); None (the default)
    keeps the choice of the index already at `out` (lists for a new one). `like`: the recommender whose ranking
    the lists must be (default: the installed rankers); `jobs`: processes making lists."""
    out = Path(out)
    wanted = lists if lists is not None else not lists_skipped(out)

    def make(index: Index) -> Recommender:
        return recommender_for(index, like)

    step = lists_step(jobs, log, make) if wanted else _no_lists
    return build_index(
        archive, out, embedder, archive_name=archive_name, progress=progress, reuse=reuse, log=log, extra=step
    )


def _no_lists(rebuilt: Rebuilt, meta: IndexMeta) -> None:
    meta.lists_skipped = True


def lists_skipped(out: Path) -> bool:
    """Whether the index at `out` was built with --no-lists (False when there is none, or it is unreadable)."""
    try:
        return (out / META).exists() and IndexMeta.read(out).lists_skipped
    except Exception:  # noqa: BLE001  (a damaged index is rebuilt with lists; its own errors come from the build)
        return False


def recommender_for(index: Index, like: Recommender | None = None, embedder: Embedder | None = None) -> Recommender:
    """A recommender over `index` (texts encoded by `embedder`, loaded on first use when None) that ranks as
    `like` does (its rankers, cascade and calibration; the installed ones without `like`). When the index's
    lists were made by the installed ranking and `like` ranks otherwise (a server running since before `tune`,
    reloading the index that `index` remade after it), the installed ranking: the lists are then served, not
    ranked again live by the older trees."""
    if like is None:
        return Recommender(index, embedder=embedder)
    fresh = Recommender(index, embedder=embedder, rankers=like.rankers, cascade=like.cascade)
    fresh.calibration = like.calibration
    made_by = index.meta.lists_fingerprint
    if made_by and made_by != fresh.fingerprint:
        installed = Recommender(index, embedder=embedder)
        if installed.fingerprint == made_by:
            return installed
    return fresh


def lists_status(recommender: Recommender, archive_fingerprint: str | None = None) -> tuple[str, str]:
    """Whether the index's ready lists can answer ("ready", "stale" or "none") and why, in words. With
    `archive_fingerprint`, also whether the index holds that archive as it is now."""
    index = recommender.index
    meta = index.meta
    state = recommender.lists_state
    if state == "ready":
        reason = "current (made by the installed ranker): answers by id are read from them"
    elif state == "none" and meta.lists_skipped:
        reason = "none (built with --no-lists): every answer is ranked live; `recommender index --lists` makes them"
    elif state == "none":
        reason = (
            "none: this index has no lists (built by a version that dropped them, or before they were kept); "
            "every answer is ranked live until `recommender index` makes them"
        )
    elif not recommender.lists_recipe:
        reason = "STALE: no fused ranker is installed to serve them; every answer is ranked live"
    elif meta.lists_recipe:
        changes = "; ".join(recipe_changes(meta.lists_recipe, recommender.lists_recipe))
        reason = f"STALE (made by another ranker or code: {changes}): every answer is ranked live until `index`"
    else:
        reason = "STALE (made by another ranker or an older version of this code): ranked live until `index`"
    if archive_fingerprint is not None and meta.archive_fingerprint != archive_fingerprint:
        reason += (
            f"; the index was built from another state of the archive ({meta.archive or 'unnamed'}): "
            "`recommender index` updates it and its lists"
        )
    return state, reason

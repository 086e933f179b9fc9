"""Refreshing the ready lists when a day's events arrive (issue 16), against lists made from scratch.

On a copy of a full index with its lists (built from scratch: `recommender index --full`), as CLI runs on an
archive folder whose newest tarball is re-packed (the other tarballs linked, read from the parse cache):

1. the newest tarball without the archive's 15 newest events: the update removes them and remakes the lists
   they can leave;
2. the tarball whole again: the 15 events arrive, and the lists they can enter are remade (timed: the target
   is 15 s for the CLI run, Python's start-up and loading included).

The lists after step 2 are compared with the from-scratch lists of the same archive (the index copied at the
start): the share of identical top-10 lists and the mean top-10 overlap. For every list that differs, it is
ranked live on the refreshed index: when that gives the from-scratch list, the copied list was stale (made on
the index of step 1, whose BM25 IDF, document lengths and pools differ a little); otherwise the index data
themselves differ.

    .venv/bin/python eval/bench_refresh.py --archive ../shared/archive --index models/full
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import ROOT, parser, use_checkout

use_checkout()

from recommender.index import load_index  # noqa: E402
from recommender.rank import Recommender  # noqa: E402


def main() -> None:
    options = parser(__doc__, archive=True)
    options.add_argument("--new", type=int, default=15, help="How many of the newest events arrive.")
    args = options.parse_args()
    from bench_speed import _pack  # (eval/ is on the path: this script's folder)

    scratch = load_index(args.index)
    assert scratch.lists is not None, "the index has no ready lists: build it with `recommender index`"
    newest = sorted(scratch.ids)[-args.new :]
    print(f"# {len(scratch):,} events; the {args.new} newest arrive (from {newest[0]})")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(dir=args.index.parent) as name:
        tmp = Path(name)
        work = tmp / "index"
        shutil.copytree(args.index, work)
        folder, tarball = _archive_copy(args.archive, tmp)
        env["RECOMMENDER_CACHE"] = str(tmp / "cache")
        cli = [sys.executable, "-c", "from recommender.cli import app; app()", "index", "--archive", str(folder)]
        cli += ["--out", str(work)]
        for step, leave_out in (("the newest events removed", set(newest)), ("the newest events added", set())):
            _pack(tarball, folder / tarball.name, leave_out=leave_out)
            started = time.perf_counter()
            run = subprocess.run(cli, check=True, capture_output=True, text=True, env=env)
            seconds = time.perf_counter() - started
            made = [line for line in run.stderr.splitlines() if line.startswith("ready lists:")]
            print(f"CLI run, {step}: {seconds:.1f}s  ({run.stdout.strip()})")
            for line in made:
                print(f"    {line}")
        refreshed = load_index(work)
        assert refreshed.ids == scratch.ids and refreshed.lists is not None
        a, b = np.asarray(refreshed.lists.rows[:, :10]), np.asarray(scratch.lists.rows[:, :10])
        same = (a == b).all(axis=1)
        overlap = np.mean([len(set(x) & set(y)) / max(1, len(set(y) - {-1})) for x, y in zip(a, b, strict=True)])
        print(
            f"top-10 lists identical to the from-scratch build: {same.mean():.2%} ({int(same.sum()):,} of "
            f"{len(same):,}); mean top-10 overlap {overlap:.4f}; top-50 identical "
            f"{(np.asarray(refreshed.lists.rows) == np.asarray(scratch.lists.rows)).all(axis=1).mean():.2%}"
        )
        if refreshed.lists.contexts is not None and scratch.lists.contexts is not None:
            # a kept context is shown as kept; an empty one is made on read, on the refreshed index as from scratch
            kept = np.asarray(refreshed.lists.contexts) != b""
            wrong = same[:, None] & kept & (np.asarray(refreshed.lists.contexts) != np.asarray(scratch.lists.contexts))
            print(
                f"contexts of the first 10: {kept.mean():.2%} kept, the others made on read; of the lists identical "
                f"to the from-scratch build, {int(wrong.any(axis=1).sum()):,} keep a context the from-scratch build "
                f"does not ({int(wrong.sum()):,} contexts)"
            )
        differ = np.flatnonzero(~same)
        recommender = Recommender(refreshed)
        stale = 0
        for row in differ.tolist():
            live = [refreshed.position[s.id] for s in recommender.related_to_row(row, 10, ready=False)]
            stale += live == b[row].tolist()
        print(
            f"of the {len(differ):,} lists that differ, {stale:,} are ranked live on the refreshed index as from "
            f"scratch (a copied list, made on step 1's index: IDF, lengths and pools shifted) and "
            f"{len(differ) - stale:,} are not (the index data differ)"
        )


def _archive_copy(source: Path, tmp: Path) -> tuple[Path, Path]:
    """A folder with copies of the archive's tarballs but the newest (returned, to be re-packed there): the
    reader follows no symlink."""
    folder = tmp / "archive"
    folder.mkdir()
    tarballs = sorted(source.glob("*.tar.gz"))
    for tarball in tarballs[:-1]:
        shutil.copy2(tarball, folder / tarball.name)
    return folder, tarballs[-1]


if __name__ == "__main__":
    main()

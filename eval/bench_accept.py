"""The index refresh after one accept in the review page, on a copy of a full index with ready lists.

The review page updates the index in the background after an accept, a reject or an undo
(`Reviewer._rebuild_index`: `lifecycle.build` on the archive it holds in memory, ranked like the page). This
does the same on a copy of the index: the archive is read (from the parse cache), one event's Related list gets
one more item (its first ready suggestion, as an accept writes it: a new file digest), and the build is timed.
Then: are the lists current, how many were remade, and does the API answer that event from them?

    .venv/bin/python eval/bench_accept.py --archive ../shared/archive --index models/full
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import tempfile
import time
from pathlib import Path

from _common import parser, use_checkout

use_checkout()

from fastapi.testclient import TestClient  # noqa: E402

from recommender.api import create_app  # noqa: E402
from recommender.archive import RelatedLink  # noqa: E402
from recommender.embed import Embedder  # noqa: E402
from recommender.eventfile import related_href  # noqa: E402
from recommender.index import load_index  # noqa: E402
from recommender.lifecycle import build, lists_status, recommender_for  # noqa: E402
from recommender.reading import read_archive_cached  # noqa: E402


def main() -> None:
    args = parser(__doc__, archive=True).parse_args()
    archive = read_archive_cached(args.archive)
    with tempfile.TemporaryDirectory(dir=args.index.parent) as name:
        work = Path(name) / "index"
        shutil.copytree(args.index, work)
        page = recommender_for(load_index(work))  # the review page's recommender
        assert page.lists_state == "ready", "the index has no current lists: build it with `recommender index`"
        event_id = page.index.ids[len(page.index) // 2]
        chosen = page.related(event_id, 1)[0]
        event = archive.events[event_id]
        link = RelatedLink(chosen.headline, related_href(chosen.id), ("accepted",))
        archive.events[event_id] = dataclasses.replace(event, related=(*event.related, link))
        archive.digests[event_id] = hashlib.sha256(b"accepted " + event_id.encode()).hexdigest()
        meta = page.index.meta
        started = time.perf_counter()
        embedder = Embedder(backend=meta.backend, model=meta.embedder)
        build(archive, work, embedder, archive_name=meta.archive, like=page)
        fresh = recommender_for(load_index(work), like=page)
        seconds = time.perf_counter() - started
        state, reason = lists_status(fresh, archive.fingerprint)
        print(
            f"refresh after one accept: {seconds:.1f} s; lists remade {fresh.index.meta.lists_computed:,} "
            f"(lists step {fresh.index.meta.lists_seconds:.1f} s); lists {state}: {reason}"
        )
        assert chosen.id in fresh.index.record(fresh.index.position[event_id]).curated
        answer = TestClient(create_app(work)).get(f"/events/{event_id}/related", params={"k": 10}).json()
        print(f"API by id: {len(answer)} suggestions, source {sorted({s['source'] for s in answer})}")


if __name__ == "__main__":
    main()

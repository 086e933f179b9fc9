"""Speed benchmark: embedding backends on the same real events, incremental indexing, cold `related`.

    .venv/bin/python eval/bench_speed.py --archive ../shared/archive --index models/full [--events 5000]

Prints docs/s of torch fp32, ONNX fp32 and ONNX int8 on the same events with ratios against torch (the
baseline, run in the same process), their cosine agreement with torch; the time to add 15 new events to
the index (in a warm process and as a CLI run); the time of a cold `recommender related ID`; p50/p95 of a
warm `related` by id, dense against fused; and the fused ranker's trees on the same candidates: LightGBM's
Booster.predict (the baseline) against recommender.forest, every tree and the cascade.
`--only incremental,cold` runs just those parts (`backends`, `cold`, `warm`, `incremental`);
`--warm-related-only` is `--only warm`.
Add --full-index to also time a cold full index build with the default backend (minutes; the archive
already read, so the figure is embedding plus indexing).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# isort: off
import recommender  # noqa: E402, F401  (first: it sets the thread settings numpy and LightGBM read on load)
import numpy as np  # noqa: E402
# isort: on

from recommender.archive import Archive, read_archive  # noqa: E402
from recommender.embed import DEFAULT_BACKEND, Embedder  # noqa: E402
from recommender.index import build_index, load_index  # noqa: E402


def bench_backends(texts: list[str]) -> None:
    print(f"\n## Embedding {len(texts):,} real events (same events, same process)")
    reference = None
    baseline = 0.0
    for backend in ("torch", "onnx", "onnx-int8"):
        embedder = Embedder(backend)
        embedder.encode(texts[:64])  # load and export outside the timing
        started = time.perf_counter()
        vectors = embedder.encode(texts)
        rate = len(texts) / (time.perf_counter() - started)
        if reference is None:
            reference, baseline = vectors, rate
        cosine = (reference * vectors).sum(axis=1)
        print(
            f"{backend:<10} {rate:8.1f} docs/s  x{rate / baseline:4.2f} vs torch  "
            f"cosine to torch: min {cosine.min():.4f} mean {cosine.mean():.4f}"
        )


def bench_incremental(archive: Archive, index: Path, archive_arg: str) -> None:
    """Editors add the 15 newest events: in a warm process (archive read, model loaded), then as CLI runs on an
    archive folder whose newest tarball gains those 15 events (the other tarballs unchanged)."""
    print("\n## Adding 15 new events to the index")
    held_out = set(sorted(archive.events)[-15:])
    with tempfile.TemporaryDirectory(dir=index.parent) as tmp:
        work = Path(tmp) / "index"
        shutil.copytree(index, work)
        before = Archive({i: e for i, e in archive.events.items() if i not in held_out}, digests=archive.digests)
        build_index(before, work, archive_name=archive_arg)  # the index without the 15 (vectors reused)
        embedder = Embedder(load_index(work).meta.backend)
        embedder.encode(["warm up"])
        started = time.perf_counter()
        report = build_index(archive, work, embedder, archive_name=archive_arg)
        warm = time.perf_counter() - started
        print(f"warm process: {warm:.1f}s (embedded {report.embedded}, reused {report.reused:,})")

        folder, newest = _archive_folder(Path(archive_arg), Path(tmp))
        cli = [str(Path(sys.executable).with_name("recommender")), "index", "--archive", str(folder)]
        cli += ["--out", str(work), "--backend", embedder.backend]
        for cache in ("off", str(Path(tmp) / "cache")):
            _pack(newest, folder / newest.name, leave_out=held_out)
            env = {**os.environ, "RECOMMENDER_CACHE": cache}
            subprocess.run(cli, check=True, capture_output=True, env=env)  # the index (and cache) before
            _pack(newest, folder / newest.name)
            started = time.perf_counter()
            run = subprocess.run(cli, check=True, capture_output=True, text=True, env=env)
            seconds = time.perf_counter() - started
            label = "no parse cache" if cache == "off" else f"parse cache: {newest.name} re-read, the rest cached"
            print(f"CLI run, {label}: {seconds:.1f}s  ({run.stdout.strip()})")


def _archive_folder(source: Path, tmp: Path) -> tuple[Path, Path]:
    """A folder of links to the archive's tarballs but the newest (returned, to be re-packed there)."""
    folder = tmp / "archive"
    folder.mkdir()
    tarballs = sorted(source.glob("*.tar.gz"))
    newest = tarballs[-1]
    for tarball in tarballs[:-1]:
        (folder / tarball.name).symlink_to(tarball.resolve())
    return folder, newest


def _pack(source: Path, target: Path, leave_out: frozenset[str] | set[str] = frozenset()) -> None:
    import tarfile

    with tarfile.open(source, "r:gz") as src, tarfile.open(target, "w:gz") as out:
        for member in src:
            if member.name.lstrip("./") not in leave_out:
                out.addfile(member, src.extractfile(member) if member.isfile() else None)


def bench_cold_related(index: Path) -> None:
    print("\n## Cold `recommender related ID` (a new process; no model loaded for by-id)")
    ids = load_index(index).ids
    cli = str(Path(sys.executable).with_name("recommender"))
    times = []
    for event_id in random.Random(3).sample(ids, 3):
        started = time.perf_counter()
        subprocess.run([cli, "related", event_id, "--index", str(index)], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    print(
        f"cold related: median {np.median(times):.2f}s over {len(times)} runs ({', '.join(f'{t:.2f}' for t in times)})"
    )


def bench_warm_related(index: Path, queries: int = 300) -> None:
    print(f"\n## Warm `related` by id ({queries} random events, one process, index and rankers loaded)")
    from recommender.rank import Recommender

    ranker = Recommender(load_index(index))
    ranker.warm_up()
    ids = random.Random(7).sample(ranker.index.ids, min(queries, len(ranker.index)))
    baseline = 0.0
    for system in ("dense", "fused"):
        times = []
        for event_id in ids:
            started = time.perf_counter()
            ranker.related(event_id, k=10, system=system)
            times.append((time.perf_counter() - started) * 1000)
        p50 = float(np.median(times))
        baseline = baseline or p50
        print(f"{system:<6} p50 {p50:5.1f} ms  p95 {np.percentile(times, 95):5.1f} ms  x{p50 / baseline:4.2f} vs dense")
    bench_trees(ranker, ids[:100])


def bench_trees(ranker: Any, ids: list[str]) -> None:
    """The fused ranker's 400 trees over the same candidate pools: LightGBM's Booster.predict (the baseline)
    against recommender.rank.forest, and the cascade (rank.CASCADE) against every tree on every candidate."""
    import lightgbm

    fused = ranker.rankers["fused"]
    from recommender.rank.candidates import allowed_rows, candidate_pool
    from recommender.rank.features import feature_matrix
    from recommender.rank.ranker import cascade_for

    index = ranker.index
    pools = []
    for event_id in ids:
        query = ranker.query(index.position[event_id])
        pools.append(feature_matrix(index, query, candidate_pool(index, query, allowed_rows(index, query, None, None))))
    booster = lightgbm.Booster(model_file=str(fused.model_file))
    candidates = sum(len(p) for p in pools)
    print(
        f"\n## The fused ranker's trees on {len(pools)} queries' candidate pools ({candidates / len(pools):.0f} each)"
    )
    runs = {
        "LightGBM Booster.predict": lambda f: booster.predict(f[:, fused.columns], num_threads=1),
        "forest, every tree": lambda f: fused.score(f),
        "forest, cascade": lambda f: fused.score(f, cascade_for(fused.cascade, 10)),
    }
    baseline = 0.0
    for name, run in runs.items():
        started = time.perf_counter()
        for features in pools:
            run(features)
        ms = (time.perf_counter() - started) * 1000 / len(pools)
        baseline = baseline or ms
        print(f"{name:<26} {ms:6.2f} ms/query  x{baseline / ms:5.2f} vs LightGBM")


def bench_full_index(archive: Archive, archive_arg: str, backends: list[str]) -> None:
    print("\n## Cold full index build")
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            embedder = Embedder(backend)
            embedder.encode(["warm up"])
            started = time.perf_counter()
            report = build_index(archive, Path(tmp) / "index", embedder, archive_name=archive_arg, reuse=False)
            seconds = time.perf_counter() - started
            print(
                f"{backend:<10} {report.count:,} events in {seconds:.0f}s ({report.count / seconds:.0f} docs/s "
                f"overall, {report.docs_per_second:.0f} docs/s embedding)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", default="archive")
    parser.add_argument("--index", default="models/default")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--full-index", action="store_true", help="also time cold full index builds (minutes)")
    parser.add_argument("--warm-related-only", action="store_true", help="the same as --only warm")
    parser.add_argument("--only", default="backends,cold,warm,incremental", help="comma-separated parts to run")
    args = parser.parse_args()
    parts = {"warm"} if args.warm_related_only else set(args.only.split(","))
    if unknown := parts - {"backends", "cold", "warm", "incremental"}:
        parser.error(f"--only: unknown part(s) {', '.join(sorted(unknown))}")
    if "cold" in parts:
        bench_cold_related(Path(args.index))
    if "warm" in parts:
        bench_warm_related(Path(args.index))
    if not parts & {"backends", "incremental"} and not args.full_index:
        return

    started = time.perf_counter()
    archive = read_archive(args.archive)
    print(f"read {len(archive.events):,} events from {args.archive} in {time.perf_counter() - started:.1f}s")
    if "backends" in parts:
        texts = [e.text for e in archive.events.values()]
        bench_backends(random.Random(5).sample(texts, min(args.events, len(texts))))
    if "incremental" in parts:
        bench_incremental(archive, Path(args.index), args.archive)
    if args.full_index:
        bench_full_index(archive, args.archive, [DEFAULT_BACKEND])


if __name__ == "__main__":
    main()

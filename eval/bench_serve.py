"""Serving benchmark (issue 16): ready lists against today's live ranking, in the same run, on 127.0.0.1.

Starts `recommender serve` (this checkout's code) with 1 and 2 worker processes and drives it with wrk (Lua
scripts pick random event ids / texts) for a bounded time per scenario:

- by id from ready lists, 1 client and 50 clients, and the same requests ranked live (`since=1000-01-01`
  forces live ranking and gives the same answer): the ratio of the two;
- by text (always live) with 1 and 2 workers: throughput at 8 clients, p50 at 1 client;
- /health p99, sampled every 20 ms, while 4 clients each send 1,000-id batches and 20 clients send texts;
- the total RSS (and PSS, which counts shared pages once) of the 2-worker server's processes.

    .venv/bin/python eval/bench_serve.py --index models/full [--seconds 15]

Needs wrk (`apt-get install -y wrk`). The load generator shares the machine's cores with the server.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's package, run from anywhere

from recommender.testing import ServeProcess  # noqa: E402

TEXTS = [  # several, so that 20 text clients do not all send the same few
    "Russia withdraws its forces from Syria",
    "Earthquake kills hundreds in central Italy",
    "Parliament passes a new budget after a long debate",
    "Protesters clash with police in the capital",
    "The central bank raises interest rates to curb inflation",
    "A ferry capsizes off the coast, dozens missing",
    "Elections are held amid accusations of fraud",
    "A cyclone makes landfall, forcing mass evacuations",
]


class Server(ServeProcess):
    """The server under test (this checkout's code), with every worker up, and its memory."""

    def __init__(self, index: Path, workers: int, threads: int = 2):
        super().__init__(index, "--threads", str(threads), workers=workers)
        self.base = self.url

    def __enter__(self) -> Server:
        return self

    def memory(self) -> tuple[float, float]:
        """Total RSS and PSS (MiB) of the server's processes (the supervisor and its workers)."""
        rss = pss = 0.0
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) / 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) / 1024
        return rss, pss


LUA_GET = """
ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
math.randomseed(%(seed)d)
request = function()
  return wrk.format("GET", "/events/" .. ids[math.random(#ids)] .. "/related?k=10%(suffix)s")
end
"""
LUA_POST = """
bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
math.randomseed(%(seed)d)
request = function()
  return wrk.format("POST", "%(path)s", {["Content-Type"] = "application/json"}, bodies[math.random(#bodies)])
end
"""


def wrk(base: str, script: str, clients: int, seconds: float, tmp: Path) -> dict[str, float]:
    lua = tmp / f"s{random.random()}.lua"
    lua.write_text(script)
    threads = min(2, clients)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{seconds:g}s", "--latency", "--timeout", "10s"]
        + ["-s", str(lua), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(out)


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def parse_wrk(out: str) -> dict[str, float]:
    result: dict[str, float] = {}
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        result[f"p{pct}"] = _ms(match.group(1)) if match else float("nan")
    result["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    result["requests"] = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["errors"] = float(errors.group(1)) if errors else 0.0
    if socket_errors:
        result["errors"] += sum(float(x) for x in socket_errors.groups())
    return result


def show(label: str, r: dict[str, float]) -> None:
    print(
        f"{label:<46} {r['rps']:8.1f} req/s  p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms  "
        f"{int(r['requests']):>7,} requests  {int(r['errors'])} errors",
        flush=True,
    )


def health_while(base: str, seconds: float) -> list[float]:
    """/health latencies (ms), one request every 20 ms for `seconds`."""
    times = []
    with httpx.Client(base_url=base, timeout=10) as client:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            started = time.perf_counter()
            client.get("/health").raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(0.02)
    return times


def in_process(index: Path, events: int = 300) -> None:
    """Ready vs live in one process: the same answers (with and without the curated items excluded), and the
    time of each."""
    from dataclasses import replace

    from recommender.index import load_index
    from recommender.rank import Recommender

    recommender = Recommender(load_index(index))
    recommender.warm_up()
    loaded = recommender.index
    same, ready, live = 0, [], []
    rows = random.Random(11).sample(range(len(loaded)), min(events, len(loaded)))
    for row in rows:
        curated = {loaded.position[c] for c in loaded.record(row).curated if c in loaded.position}
        for skip in (set(), curated):
            started = time.perf_counter()
            a = recommender.related_to_row(row, 10, exclude_rows=skip)
            ready.append(time.perf_counter() - started)
            started = time.perf_counter()
            b = recommender.related_to_row(row, 10, exclude_rows=skip, ready=False)
            live.append(time.perf_counter() - started)
            same += [replace(x, source="") for x in a] == [replace(x, source="") for x in b]
    print(
        f"in process, {len(rows)} random events, k=10, with and without their curated items excluded: "
        f"{same} of {2 * len(rows)} answers identical ready vs live; p50 ready {np.median(ready) * 1000:.2f} ms, "
        f"live {np.median(live) * 1000:.1f} ms (x{np.median(live) / np.median(ready):.0f})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=ROOT / "models" / "full")
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    meta = json.loads((args.index / "meta.json").read_text())
    columns = json.loads((args.index / "columns.json").read_text())
    ids = random.Random(5).sample(columns["id"], min(20_000, len(columns["id"])))
    del columns
    print(f"# bench_serve: {meta['count']:,} events, build {meta['build_id']}, lists {meta.get('lists_fingerprint')}")
    in_process(args.index)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "ids.txt").write_text("\n".join(quote(i, safe="/") for i in ids) + "\n")
        (tmp / "texts.txt").write_text("\n".join(json.dumps({"text": t, "k": 10}) for t in TEXTS) + "\n")
        batches = [json.dumps({"ids": random.Random(s).sample(ids, min(1000, len(ids))), "k": 10}) for s in range(8)]
        (tmp / "batches.txt").write_text("\n".join(batches) + "\n")
        load = Load(
            args.index,
            tmp,
            args.seconds,
            get={"ids": tmp / "ids.txt", "seed": 1},
            texts=LUA_POST % {"bodies": tmp / "texts.txt", "seed": 2, "path": "/similar"},
            batch=LUA_POST % {"bodies": tmp / "batches.txt", "seed": 3, "path": "/related/batch"},
        )
        with Server(args.index, 2) as server:
            print(f"\n## 2 workers (pids {server.pids()})")
            by_id_ready_and_live(server, load)
            by_text(server, load, 1, "by text, 1 client", "text 1 client")
            by_text(server, load, 8, "by text, 8 clients, 2 workers", "text 2 workers")
            health_under_load(server, load)
            rss, pss = server.memory()
            print(f"\n2-worker server memory after the load: RSS {rss:,.0f} MiB in all, PSS {pss:,.0f} MiB", flush=True)
        with Server(args.index, 1) as server:
            print("\n## 1 worker")
            by_text(server, load, 8, "by text, 8 clients, 1 worker", "text 1 worker")
            rss, pss = server.memory()
            print(f"1-worker server memory: RSS {rss:,.0f} MiB, PSS {pss:,.0f} MiB")
        one, two = load.results["text 1 worker"]["rps"], load.results["text 2 workers"]["rps"]
        print(f"by text, 2 threads a worker: 2 workers / 1 worker = x{two / one:.2f} requests/s")
        print("\n## one ranking thread a worker (a worker is then one core's worth: the issue's 'one process')")
        for workers in (1, 2):
            with Server(args.index, workers, threads=1) as server:
                label = f"by text, 8 clients, {workers} worker(s), 1 thread each"
                by_text(server, load, 8, label, f"text {workers} x1")
        one, two = load.results["text 1 x1"]["rps"], load.results["text 2 x1"]["rps"]
        print(f"by text, 1 thread a worker: 2 workers / 1 worker = x{two / one:.2f} requests/s")


@dataclass
class Load:
    """The wrk scripts of a run, where they run, for how long, and the results by name."""

    index: Path
    tmp: Path
    seconds: float
    get: dict[str, Any]
    texts: str
    batch: str
    results: dict[str, dict[str, float]] = field(default_factory=dict)


def by_id_ready_and_live(server: Server, load: Load) -> None:
    for clients in (1, 50):
        for label, suffix in (("ready", ""), ("live", "&since=1000-01-01")):
            r = wrk(server.base, LUA_GET % {**load.get, "suffix": suffix}, clients, load.seconds, load.tmp)
            load.results[f"id {label} {clients}"] = r
            show(f"by id, {label}, {clients} client(s)", r)
        ready, live = load.results[f"id ready {clients}"], load.results[f"id live {clients}"]
        print(
            f"  ready / live: x{ready['rps'] / live['rps']:.1f} requests/s, "
            f"p50 x{live['p50'] / ready['p50']:.1f} lower",
            flush=True,
        )


def by_text(server: Server, load: Load, clients: int, label: str, name: str) -> None:
    r = wrk(server.base, load.texts, clients, load.seconds, load.tmp)
    show(label, r)
    load.results[name] = r


def health_under_load(server: Server, load: Load) -> None:
    print("\n## /health while 4 clients send 1,000-id batches and 20 clients send texts")
    loads: list[Any] = []
    for script, clients in ((load.batch, 4), (load.texts, 20)):
        thread = threading.Thread(
            target=lambda s=script, c=clients: loads.append(wrk(server.base, s, c, load.seconds, load.tmp))
        )
        thread.start()
        loads.append(thread)
    time.sleep(1)
    health = health_while(server.base, load.seconds - 2)
    for item in loads:
        if isinstance(item, threading.Thread):
            item.join()
    batch_r, text_r = (x for x in loads if isinstance(x, dict))
    show("  batches of 1,000 ids, 4 clients", batch_r)
    show("  texts, 20 clients", text_r)
    print(
        f"  /health: {len(health)} requests, p50 {np.percentile(health, 50):.1f} ms, "
        f"p99 {np.percentile(health, 99):.1f} ms, max {max(health):.1f} ms",
        flush=True,
    )


if __name__ == "__main__":
    main()

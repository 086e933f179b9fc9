"""Load benchmark of the similarity API: start `recommender serve` on 127.0.0.1, drive it with N concurrent
clients for a bounded number of requests, print requests/s, p50/p95/p99 latency and the server's RSS.

    .venv/bin/python eval/bench_api.py --index models/full --requests 10000 --concurrency 50

Traffic goes to the loopback address only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

TEXTS = [
    "Russia withdraws its forces from Syria",
    "Earthquake kills hundreds in central Italy",
    "Parliament passes a new budget after a long debate",
    "Protesters clash with police in the capital",
    "The central bank raises interest rates to curb inflation",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def drive(base: str, requests: list[tuple[str, str, dict | None]], concurrency: int, limit_s: float):
    latencies: list[float] = []
    errors = 0
    queue = list(reversed(requests))
    deadline = time.perf_counter() + limit_s

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while queue and time.perf_counter() < deadline:
            method, path, body = queue.pop()
            started = time.perf_counter()
            try:
                response = await client.request(method, path, json=body)
                if response.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return np.asarray(latencies) * 1000, errors, elapsed


def report(name: str, latencies: np.ndarray, errors: int, elapsed: float) -> None:
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    print(
        f"{name:<8} {len(latencies):>7,} requests  {len(latencies) / elapsed:8.1f} req/s  "
        f"p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  p99 {p99:7.2f} ms  errors {errors}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", default="models/default")
    parser.add_argument("--requests", type=int, default=2000, help="by-id requests (by-text: a fifth of it)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--limit-s", type=float, default=300, help="stop each phase after this long")
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    recommender = str(Path(sys.executable).with_name("recommender"))
    server = subprocess.Popen([recommender, "serve", "--index", args.index, "--port", str(port)], env=env)
    try:
        started = time.perf_counter()
        while time.perf_counter() - started < 300:
            try:
                health = httpx.get(f"{base}/health", timeout=2).json()
                break
            except httpx.HTTPError:
                if server.poll() is not None:
                    sys.exit("error: the server exited; see its message above")
                time.sleep(0.5)
        else:
            sys.exit("error: the server did not answer within 300 s")
        print(
            f"server up in {time.perf_counter() - started:.1f}s over {health['events']:,} events; "
            f"RSS {rss_mib(server.pid):.0f} MiB"
        )
        ids = json.loads((Path(args.index) / "columns.json").read_text())["id"]
        rng = random.Random(1)
        by_id = [("GET", f"/events/{rng.choice(ids)}/related?k=10", None) for _ in range(args.requests)]
        by_text = [
            ("POST", "/similar", {"text": rng.choice(TEXTS) + f" {i}", "k": 10})
            for i in range(max(1, args.requests // 5))
        ]
        asyncio.run(drive(base, by_id[:200], 5, 60))  # warm-up, not counted
        print(f"{args.concurrency} concurrent clients")
        report("by id", *asyncio.run(drive(base, by_id, args.concurrency, args.limit_s)))
        report("by text", *asyncio.run(drive(base, by_text, args.concurrency, args.limit_s)))
        print(f"server RSS after the run: {rss_mib(server.pid):.0f} MiB")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()

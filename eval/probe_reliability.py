"""Replay every case of issue 19 (reliability) against a server on 127.0.0.1 and the CLI, print pass/fail per case.

    PYTHONPATH=. .venv/bin/python eval/probe_reliability.py --archive ../shared/archive-sample [--index INDEX]

The index (built from the archive when none is given, or when it has no checksums) is copied to a temporary
folder first (the rebuild and corruption cases damage and replace it; the one given is never written), and the
server runs over the copy on a free loopback port. Every loop is bounded in
count and time; the server is stopped (killed at worst) at the end. `suggest --write` byte-level cases (CRLF,
heading spellings, odd links) belong to recommender/suggest and are not probed here.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from recommender.testing import ServeProcess

ROOT = Path(__file__).resolve().parent.parent
EVENT = "### [2016-03-14](https://example.org)\n\n# {headline}\n\nA summary of it.\n"
RESULTS: list[tuple[str, bool, str]] = []


def case(name: str, ok: bool, detail: str) -> None:
    RESULTS.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RECOMMENDER_CACHE": "off"}
    command = [sys.executable, "-c", "from recommender.cli import app; app()", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response | None, float]:
    started = time.perf_counter()
    try:
        return call(), time.perf_counter() - started
    except httpx.HTTPError:
        return None, time.perf_counter() - started


def probe_requests(url: str, known: str) -> None:
    http = httpx.Client(base_url=url, timeout=30)
    json_headers = {"content-type": "application/json"}
    r, s = timed(lambda: http.post("/related/batch", json={"ids": ["news/2016/03/14/abcdefghi.md"]}))
    case("1. unknown 26-char id in a batch", bool(r and r.status_code == 200 and s < 0.2), f"{s * 1000:.0f} ms")
    for size in (1_000, 100_000):
        r, s = timed(lambda size=size: http.post("/related/batch", json={"ids": ["x" * size]}))
        ok = bool(r is not None and r.status_code in (413, 422) and len(r.content) < 1000 and s < 1.0)
        status = r.status_code if r is not None else "no reply"
        case(f"1. one {size:,}-char id", ok, f"{status}, {len(r.content) if r else 0} bytes, {s * 1000:.0f} ms")
    r = http.get("/events/" + "x" * 10_000 + "/related")
    case("1. a 10,000-char id in a path", r.status_code == 422 and len(r.content) < 1000, f"{r.status_code}")
    for trick in ("/events/../../etc/passwd", "/events/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/events//etc/passwd"):
        r = http.get(trick)
        case(f"path trick {trick}", r.status_code == 404 and "root:" not in r.text, f"{r.status_code}")
    for body in (
        b'{"text": "x", "k": NaN}',
        b'{"text": "x", "k": Infinity}',
        b'{"ids": ["a"], "k": -Infinity}',
        b'{"text": "x", "since": NaN}',
    ):
        for path in ("/similar", "/related/batch"):
            r = http.post(path, content=body, headers=json_headers)
            case(f"5. {path} {body.decode()}", r.status_code == 422, f"{r.status_code}")
    for path, body in (("/similar", b'{"text": "a \\ud800 b"}'), ("/related/batch", b'{"ids": ["\\ud800"]}')):
        r = http.post(path, content=body, headers=json_headers)
        case(f"5. lone surrogate in {path}", r.status_code == 422, f"{r.status_code}")
    r, s = timed(lambda: http.post("/similar", content=json.dumps({"text": "x" * 10_000_000}), headers=json_headers))
    ok = bool(r is not None and r.status_code in (413, 422) and len(r.content) < 1000)
    case("5. a 10 MB body", ok, f"{r.status_code if r else 'no reply'}, {len(r.content) if r else 0} bytes")
    body = http.get("/health").json()
    case("6. /health shows the archive's name", "/" not in body["archive"], f"archive={body['archive']!r}")
    case("2. /health shows the build", bool(body.get("build_id")), f"build_id={body.get('build_id')!r}")
    r = http.get(f"/events/{known}/related")
    case("a known id still answers", r.status_code == 200 and len(r.json()) == 10, f"{r.status_code}")


def probe_load(url: str, ids: list[str], seconds: float) -> None:
    """/health p99 while 4 clients send 1,000-id batches and one sends 10,000-character unknown ids."""
    stop = threading.Event()
    errors: list[str] = []
    statuses: dict[int, int] = {}

    def batches() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while not stop.is_set():
                r = http.post("/related/batch", json={"ids": ids[:1000], "k": 10})
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code != 200:
                    errors.append(str(r.status_code))

    def long_ids() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            for n in range(100_000):
                if stop.is_set():
                    return
                http.post("/related/batch", json={"ids": [f"{n}" + "q" * 10_000]})

    workers = [threading.Thread(target=batches) for _ in range(4)] + [threading.Thread(target=long_ids)]
    for w in workers:
        w.start()
    latencies = []
    with httpx.Client(base_url=url, timeout=30) as http:
        time.sleep(1)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            http.get("/health")
            latencies.append(time.perf_counter() - started)
            time.sleep(0.02)
    stop.set()
    for w in workers:
        w.join(timeout=180)
    p50, p99 = (float(np.percentile(latencies, q)) * 1000 for q in (50, 99))
    detail = f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies) * 1000:.0f} ms over {len(latencies)} checks"
    detail += f"; batch replies by status {dict(sorted(statuses.items()))}"
    case("1. /health p99 < 50 ms under 4 batch clients + long unknown ids", p99 < 50 and not errors, detail)


def probe_rebuild(server: ServeProcess, index: Path, archive: Path, known: str) -> None:
    """20 clients while `recommender index` replaces the folder under the server."""
    before = httpx.get(f"{server.url}/health").json()["build_id"]
    paths = [f"/events/{known}", f"/events/{known}/related", "/health"]
    stop, failures, counts = threading.Event(), [], [0]

    def client() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            n = 0
            while not stop.is_set() and n < 20_000:
                path = paths[n % len(paths)]
                n += 1
                try:
                    r = http.get(path)
                    if r.status_code != 200:
                        failures.append(f"{path} {r.status_code}")
                except httpx.HTTPError as exc:
                    failures.append(f"{path} {exc!r}")
                counts[0] += 1

    clients = [threading.Thread(target=client) for _ in range(20)]
    for c in clients:
        c.start()
    built = cli("index", "--archive", str(archive), "--out", str(index))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and httpx.get(f"{server.url}/health").json()["build_id"] == before:
        time.sleep(0.3)
    after = httpx.get(f"{server.url}/health").json()["build_id"]
    time.sleep(1)
    stop.set()
    for c in clients:
        c.join(timeout=120)
    ok = built.returncode == 0 and not failures and after != before
    detail = f"{len(failures)} failed of {counts[0]:,} requests; build {before} -> {after}"
    case("2. rebuild under load, 20 clients", ok, detail + (f"; {built.stderr[-200:]}" if built.returncode else ""))


def probe_sigterm(server: ServeProcess, ids: list[str]) -> None:
    def busy() -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                for _ in range(20):
                    http.post("/related/batch", json={"ids": ids[:1000]})
        except httpx.HTTPError:
            pass

    workers = [threading.Thread(target=busy) for _ in range(3)]
    for w in workers:
        w.start()
    time.sleep(1.5)
    seconds = server.stop()
    for w in workers:
        w.join(timeout=60)
    case("1. SIGTERM stops a busy server within 5 s", seconds < 5, f"{seconds:.1f} s")


def probe_corruption(index: Path, archive: Path, known: str, work: Path) -> None:
    """Each file x truncate / empty / same-size garbage / delete: `related` and `index` (in-process CLI)."""
    from typer.testing import CliRunner

    from recommender.cli import app
    from recommender.index.layout import META, index_files

    files = [META, *index_files(index)]  # every file the index's layout names, the ready lists' too
    runner = CliRunner()

    def related(folder: Path) -> tuple[int, str, bool]:
        result = runner.invoke(app, ["related", known, "--index", str(folder), "--json"])
        traceback = result.exception is not None and not isinstance(result.exception, SystemExit)
        return result.exit_code, result.output, traceback

    _, baseline, _ = related(index)
    tally = {"related: clean error": 0, "related: right answer": 0, "index: refused": 0, "index: rebuilt right": 0}
    bad: list[str] = []
    os.environ["RECOMMENDER_CACHE"] = str(work / "parse-cache")
    for name in files:
        for how in ("truncate", "empty", "garbage", "delete"):
            for command in ("related", "index"):
                copy = work / "damaged"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(index, copy)
                target = copy / name
                data = target.read_bytes()
                if how == "delete":
                    target.unlink()
                else:
                    damaged = {"truncate": data[: len(data) // 2], "empty": b"", "garbage": os.urandom(len(data))}
                    target.write_bytes(damaged[how])
                if command == "index":
                    result = runner.invoke(app, ["index", "--archive", str(archive), "--out", str(copy)])
                    if result.exception is not None and not isinstance(result.exception, SystemExit):
                        bad.append(f"index {name} {how}: traceback {result.exception!r}")
                    elif result.exit_code == 0:
                        ok = related(copy)[:2] == (0, baseline)
                        tally["index: rebuilt right"] += ok
                        bad += [] if ok else [f"index {name} {how}: rebuilt a wrong index"]
                    else:
                        last = result.output.strip().splitlines()[-1:]
                        ok = bool(last) and last[0].startswith("error:") and "--full" in result.output
                        tally["index: refused"] += ok
                        bad += [] if ok else [f"index {name} {how}: unclear refusal {result.output[-200:]!r}"]
                    continue
                code, output, traceback = related(copy)
                if traceback:
                    bad.append(f"related {name} {how}: traceback")
                elif code == 0:
                    ok = output == baseline
                    tally["related: right answer"] += ok
                    bad += [] if ok else [f"related {name} {how}: silent answer from a damaged file"]
                else:
                    lines = output.strip().splitlines()
                    ok = len(lines) == 1 and lines[0].startswith("error:")
                    tally["related: clean error"] += ok
                    bad += [] if ok else [f"related {name} {how}: {output[-200:]!r}"]
    runs = len(files) * 4
    detail = ", ".join(f"{k} {v}" for k, v in tally.items()) + f" ({runs} damaged copies each)"
    case("4. corruption matrix: 0 tracebacks, 0 answers from garbage", not bad, detail + "; " + "; ".join(bad[:3]))
    full = work / "damaged"
    result = runner.invoke(app, ["index", "--full", "--archive", str(archive), "--out", str(full)])
    case("4. index --full rebuilds a damaged index", result.exit_code == 0 and related(full)[:2] == (0, baseline), "")


def probe_archive(work: Path) -> None:
    from recommender.archive import read_archive

    event = EVENT.format(headline="Something").encode()
    tar_path = work / "evil.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for name in ("news/2016/03/14/good.md", "news/2016/03/14/../../../../../../tmp/x/evil.md"):
            info = tarfile.TarInfo(name)
            info.size = len(event)
            tar.addfile(info, io.BytesIO(event))
    archive = read_archive(tar_path)
    ok = list(archive.events) == ["news/2016/03/14/good.md"] and "outside" in archive.skipped[0].reason
    case("3. a tarball member with '..' is skipped with its reason", ok, archive.skipped[0].reason if ok else "")
    root = work / "folder"
    day = root / "news" / "2016" / "03" / "14"
    day.mkdir(parents=True)
    (day / "good.md").write_bytes(event)
    (work / "outside.md").write_bytes(event)
    (day / "link.md").symlink_to(work / "outside.md")
    (day / "random.md").write_bytes(os.urandom(4096))
    (day / "loop.md").symlink_to(day / "loop.md")
    (day / "CAPS.MD").write_bytes(event)
    (day / "big.md").write_bytes(event + b"x" * 2_000_000)
    (root / "news" / "2017").symlink_to(work)
    (root / "news" / "2016" / "3" / "14").mkdir(parents=True)
    (root / "news" / "2016" / "3" / "14" / "good.md").write_bytes(event)
    archive = read_archive(root)
    reasons = {Path(s.path).name: s.reason for s in archive.skipped}
    for name, label in (
        ("link.md", "3. a symlinked event file"),
        ("random.md", "6. a random-bytes .md"),
        ("loop.md", "6. a symlink loop"),
        ("CAPS.MD", "6. a .MD file"),
        ("2017", "6. a directory symlink"),
        ("big.md", "6. a 2 MB event file"),
    ):
        case(f"{label} is skipped with a reason", name in reasons, reasons.get(name, "no reason"))
    case("6. duplicate slugs warned", len(archive.warnings) == 1, (archive.warnings or ["none"])[0][:90])


def probe_build(work: Path) -> None:
    """A killed build's temporary folders are removed by the next build; a backend change is said out loud (on a
    three-event archive: a backend change re-embeds everything)."""
    archive, copy = work / "tiny", work / "rebuilt"
    for n in range(3):
        (archive / "news" / "2016" / "3" / "14").mkdir(parents=True, exist_ok=True)
        (archive / "news" / "2016" / "3" / "14" / f"e{n}.md").write_text(EVENT.format(headline=f"Event {n}"))
    first = cli("index", "--archive", str(archive), "--out", str(copy))
    if first.returncode:
        raise SystemExit(first.stderr)
    stale = [work / f".rebuilt.{kind}-4194000" for kind in ("tmp", "old")]  # above pid_max: no live process
    for folder in stale:
        shutil.copytree(copy, folder)
    meta = json.loads((copy / "meta.json").read_text())
    (copy / "meta.json").write_text(json.dumps({**meta, "backend": "torch", "model_fingerprint": "x-torch"}))
    built = cli("index", "--archive", str(archive), "--out", str(copy))
    removed = built.returncode == 0 and not any(f.exists() for f in stale)
    case("6. stale .NAME.tmp-PID/.old-PID folders removed", removed, f"{built.stderr.count('interrupted build')} said")
    said = [line for line in built.stderr.splitlines() if "built with backend torch" in line]
    case("6. a backend change is said out loud", bool(said), said[0][-110:] if said else built.stderr[-200:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="An index of the archive (default: build one).")
    parser.add_argument("--archive", type=Path, default=ROOT.parent / "shared" / "archive-sample")
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument("--skip-corruption", action="store_true", help="Leave out the corruption matrix.")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="probe-reliability-") as tmp:
        work = Path(tmp)
        index = work / "index"
        if args.index:
            shutil.copytree(args.index, index)
        if not args.index or not json.loads((index / "meta.json").read_text()).get("checksums"):
            print(f"building an index of {args.archive} (none given, or one without checksums)", flush=True)
            built = cli("index", "--full", "--archive", str(args.archive), "--out", str(index))
            if built.returncode:
                raise SystemExit(built.stderr)
        ids = json.loads((index / "columns.json").read_bytes())["id"]
        known = ids[len(ids) // 2]
        with ServeProcess(index) as server:
            probe_requests(server.url, known)
            probe_load(server.url, ids, args.load_seconds)
            probe_rebuild(server, index, args.archive, known)
            probe_sigterm(server, ids)
        probe_archive(work)
        probe_build(work)
        if not args.skip_corruption:
            probe_corruption(index, args.archive, known, work)
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"\n{len(RESULTS) - len(failed)} of {len(RESULTS)} cases pass in {time.monotonic() - started:.0f} s")
    for name in failed:
        print(f"  FAIL {name}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

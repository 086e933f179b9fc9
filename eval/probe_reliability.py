"""Replay every case of issues 19 and 27 (reliability, review) against servers on 127.0.0.1 (and this machine's
own address, for token mode) and the CLI, print pass/fail per case.

    PYTHONPATH=. .venv/bin/python eval/probe_reliability.py --archive ../shared/archive-sample [--index INDEX]
    PYTHONPATH=. .venv/bin/python eval/probe_reliability.py --only-review   # issue 27's cases alone

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
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from recommender.testing import ServeProcess, free_port

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
    probe_nested_api(url)
    body = http.get("/health").json()
    case("6. /health shows the archive's name", "/" not in body["archive"], f"archive={body['archive']!r}")
    case("2. /health shows the build", bool(body.get("build_id")), f"build_id={body.get('build_id')!r}")
    r = http.get(f"/events/{known}/related")
    case("a known id still answers", r.status_code == 200 and len(r.json()) == 10, f"{r.status_code}")


def probe_nested_api(url: str) -> None:
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=url, timeout=30) as http:
        for depth in (10, 100, 1_000, 10_000, 100_000):
            for nested in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
                for path, body in (("/similar", f'{{"text": {nested}}}'), ("/related/batch", nested)):
                    r = http.post(path, content=body, headers={"content-type": "application/json"})
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    case("27.4 nested JSON at any depth in the API: 0 500s", 500 not in statuses, f"statuses {statuses}")


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


# --- issue 27: review servers -----------------------------------------------------------------------------------
FORM = re.compile(r'<form class="decide".*?</form>', re.S)
HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')


class ReviewServer:
    """`recommender review` over `archive` and `index` on a free port of `host` (March 2016 by default)."""

    def __init__(
        self,
        archive: Path,
        index: Path,
        host: str = "127.0.0.1",
        args: tuple[str, ...] = (),
        wait_host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
    ):
        self.port = free_port()
        self.url = f"http://{wait_host}:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="review-", suffix=".log", delete=False)  # noqa: SIM115
        command = [sys.executable, "-c", "from recommender.cli import app; app()", "review", "--archive", str(archive)]
        command += ["--index", str(index), "--host", host, "--port", str(self.port), *args]
        if "--since" not in args:
            command += ["--since", "2016-03-01", "--until", "2016-03-31"]
        environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.process = subprocess.Popen(command, env=environment, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"review exited with {self.process.returncode}: {self.output()[-400:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.3)
        self.process.kill()
        raise RuntimeError("review did not start in 180 s")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def decision_forms(html: str) -> list[dict[str, str]]:
    import html as html_module

    forms = [dict(HIDDEN.findall(found)) for found in FORM.findall(html)]
    return [{k: html_module.unescape(v) for k, v in f.items()} for f in forms if "candidate" in f]


def two_review_servers(
    archive: Path, index: Path, accepts: int = 50, skips: int = 200, rejects: int = 50, workers: int = 16
) -> dict[str, Any]:
    """Two `recommender review` processes on one archive (as two editors on a shared folder), the decisions fired
    at both at once, on few events (so that pages go stale under each other). Then: every accept answered 303 is
    in its file's Related list, every 303 has its record in decisions.jsonl (and no other record is there), every
    reject answered 303 has its [[never_pair]] block, no two writes won on one digest, no index update failed."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    from recommender.archive import link_key, parse_event
    from recommender.suggest import load_rules

    servers = [ReviewServer(archive, index), ReviewServer(archive, index)]
    try:
        with httpx.Client(timeout=60) as http:
            queue = http.get(servers[0].url + "/?sort=confidence").text
        events = list(dict.fromkeys(re.findall(r'href="/event/([^"?]+)"', queue)))[:12]
        from urllib.parse import unquote

        events = [unquote(e) for e in events]
        plan = ["accept"] * accepts + ["skip"] * skips + ["reject"] * rejects
        random.Random(27).shuffle(plan)
        answers: list[dict[str, Any]] = []
        shown: dict[str, list[dict[str, str]]] = {}
        lock = threading.Lock()

        def fire(number: int, action: str) -> None:
            server = servers[number % 2]
            event = events[number % len(events)]
            with httpx.Client(base_url=server.url, timeout=120) as http:
                with lock:
                    seen = shown.get(event) if number % 3 == 0 else None  # a page another request was shown
                forms = seen or decision_forms(http.get("/event/" + event).text)
                with lock:
                    shown[event] = forms
                if not forms:
                    with lock:
                        answers.append({"action": action, "status": None, "event": event})
                    return
                chosen = forms[number % len(forms)]
                data = {**chosen, "action": action, "reason": "other" if action == "reject" else ""}
                data["context"] = f"probe {number}" if action == "accept" else ""
                status = http.post("/decide", data=data, follow_redirects=False).status_code
            with lock:
                answers.append({**chosen, "action": action, "status": status, "event": event})

        started = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(fire, range(len(plan)), plan))
        seconds = time.monotonic() - started
        time.sleep(5)  # the index updates after the last accepts, in the background
    finally:
        for server in servers:
            server.stop()
    logs = "".join(server.output() for server in servers)
    won = [a for a in answers if a["status"] == 303]
    related: dict[str, set[str]] = {}
    for event in events:
        parsed = parse_event(event, (archive / event).read_text(encoding="utf-8"))
        related[event] = {link_key(link.href) for link in parsed.related}
    lost_edits = [a for a in won if a["action"] == "accept" and link_key(a["candidate"]) not in related[a["event"]]]
    decision = {"accept": "accepted", "reject": "rejected", "skip": "skipped"}
    records = [json.loads(line) for line in (archive / "decisions.jsonl").read_text().splitlines() if line.strip()]
    logged = [(r["event"], r["candidate"], r["decision"]) for r in records]
    wanted = [(a["event"], a["candidate"], decision[a["action"]]) for a in won]
    lost_records = [w for w in wanted if logged.count(w) < wanted.count(w)]
    extra_records = len(logged) - len(wanted)
    rules_path = archive / "editors.toml"
    never = load_rules(rules_path).never if rules_path.exists() else set()
    blocks = rules_path.read_text().count("[[never_pair]]") if rules_path.exists() else 0
    rejected = [a for a in won if a["action"] == "reject"]
    lost_blocks = [a for a in rejected if frozenset({a["event"], a["candidate"]}) not in never]
    by_digest: dict[tuple[str, str], int] = {}
    for a in won:
        if a["action"] == "accept":
            by_digest[(a["event"], a["digest"])] = by_digest.get((a["event"], a["digest"]), 0) + 1
    statuses: dict[Any, int] = {}
    for a in answers:
        statuses[a["status"]] = statuses.get(a["status"], 0) + 1
    return {
        "answered": len(answers),
        "statuses": statuses,
        "seconds": round(seconds, 1),
        "accepted": sum(a["action"] == "accept" for a in won),
        "rejected": len(rejected),
        "skipped": sum(a["action"] == "skip" for a in won),
        "lost_edits": len(lost_edits),
        "lost_records": len(lost_records),
        "extra_records": extra_records,
        "lost_blocks": len(lost_blocks) + max(0, len(rejected) - blocks),
        "double_wins": sum(n > 1 for n in by_digest.values()),
        "index_errors": [line for line in logs.splitlines() if "index not updated" in line or "Traceback" in line],
    }


def probe_review(archive: Path, index: Path, work: Path) -> None:
    """Issue 27's cases, each on a fresh copy of the archive (`index`, a copy, is shared: review updates it)."""
    from recommender import webguard

    def fresh(name: str) -> Path:  # a writable copy (review leaves read-only files alone)
        copy = work / name
        shutil.copytree(archive, copy, ignore=shutil.ignore_patterns("gold.jsonl"))
        for file in copy.rglob("*"):
            file.chmod(0o755 if file.is_dir() else 0o644)
        return copy

    outcome = two_review_servers(fresh("two-servers"), index)
    ok = (
        outcome["accepted"] > 0
        and outcome["rejected"] > 0
        and outcome["lost_edits"] == outcome["lost_records"] == outcome["lost_blocks"] == 0
        and outcome["extra_records"] == outcome["double_wins"] == 0
        and not outcome["index_errors"]
        and outcome["statuses"].get(500, 0) == 0
    )
    detail = ", ".join(f"{k} {v}" for k, v in outcome.items() if k != "index_errors")
    detail += f", index errors {outcome['index_errors'][:2] or 0}"
    case("27.1 two review servers, 50 accepts + 200 skips + 50 rejects: nothing lost", ok, detail)

    # 27.2 damaged decisions.jsonl / editors.toml: refused at start; while running, a page naming file and line
    damaged = fresh("damaged")
    (damaged / "decisions.jsonl").write_text('{"event": "a", "offered": []}\n{"event": \n')
    started = cli("review", "--archive", str(damaged), "--index", str(index), "--port", str(free_port()))
    ok = started.returncode == 2 and "decisions.jsonl:2" in started.stderr and "Traceback" not in started.stderr
    case("27.2 review refuses to start on a bad decisions.jsonl", ok, started.stderr.strip()[-160:])
    (damaged / "decisions.jsonl").unlink()
    server = ReviewServer(damaged, index)
    fives = 0
    named = 0
    tried = 0
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            queue = http.get("/").text
            event = unquote_event(re.findall(r'href="/event/([^"?]+)"', queue)[0])
            forms = decision_forms(http.get("/event/" + event).text)
            before = (damaged / event).read_bytes()
            for name, text, where in (
                ("decisions.jsonl", '{"event": "a", "offered": []}\nnot json\n', "decisions.jsonl:2"),
                ("decisions.jsonl", '{"event": "a", "decision": "skipped", "candidate": "b", "x": NaN}\n', ".jsonl:1"),
                ("editors.toml", 'never = [\n  ["a", "b"],\n  ["c" "d"]]\n', "editors.toml:3"),
                ("editors.toml", '# ours\nexclude_events = "x"\n', "editors.toml:2"),
            ):
                (damaged / name).write_text(text)
                for response in (
                    http.get("/"),
                    http.get("/event/" + event),
                    http.post("/decide", data={**forms[0], "action": "accept", "context": "x"}),
                    http.post("/decide", data={**forms[0], "action": "reject", "reason": "other"}),
                ):
                    tried += 1
                    fives += response.status_code == 500
                    named += where in response.text and str(damaged) not in response.text
                (damaged / name).unlink()
            unchanged = (damaged / event).read_bytes() == before
    finally:
        server.stop()
    detail = f"{tried} requests: {fives} answered 500, {named} named file and line; event file unchanged: {unchanged}"
    case(
        "27.2 a damaged decisions.jsonl / editors.toml: 0 500s, file and line named",
        not fives and named == tried,
        detail,
    )
    started_at = time.monotonic()
    (damaged / "decisions.jsonl").write_text("not json\n")
    result = cli("eval", "--archive", str(damaged), "--index", str(index), "--decisions", "--queries", "100")
    seconds = time.monotonic() - started_at
    ok = result.returncode == 2 and "decisions.jsonl:1" in result.stderr and "queries in" not in result.stdout
    case("27.2 eval --decisions checks the file before the run", ok, f"{seconds:.1f} s: {result.stderr.strip()[-120:]}")

    # 27.3 hostile text round-trips through the review page's accept; no javascript: target read back
    hostile = fresh("hostile")
    server = ReviewServer(hostile, index)
    contexts = ["x](javascript:alert('CTX')) y", "[a](javascript:alert(1))", "back\\slash\\", "_Context: a_"]
    read_back: list[str] = []
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            queue = http.get("/").text
            for number, context in enumerate(contexts):
                event = unquote_event(re.findall(r'href="/event/([^"?]+)"', queue)[number])
                form = decision_forms(http.get("/event/" + event).text)[0]
                http.post("/decide", data={**form, "action": "accept", "context": context})
                from recommender.archive import parse_event

                related = parse_event(event, (hostile / event).read_text()).related
                read_back.append(related[-1].context[0] if related and related[-1].context else "")
                links = [link.href for link in related]
                if any(not webguard_href(h) for h in links):
                    read_back[-1] = "FOREIGN " + str(links)
    finally:
        server.stop()
    ok = read_back == [c.replace("\\\\", "\\") for c in contexts]
    case("27.3 hostile Context written and read back exactly, no foreign target", ok, repr(read_back)[:200])

    # 27.4 nested JSON: the review page (the API's side is probed in probe_requests)
    server = ReviewServer(fresh("nested"), index)
    statuses: dict[int, int] = {}
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for depth in (10, 100, 1_000, 10_000, 100_000):
                for body in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
                    for path in ("/decide", "/undo", "/"):
                        r = http.post(path, content=body, headers={"content-type": "application/json"})
                        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        logs = server.output()
    finally:
        server.stop()
    ok = 500 not in statuses and "RecursionError" not in logs
    case("27.4 nested JSON at any depth on the review page: 0 500s", ok, f"statuses {statuses}")

    # 27.5 token mode from another machine: 0.0.0.0 + a 32-character token, asked at the machine's own address
    addresses = sorted(a for a in webguard.own_addresses() if re.fullmatch(r"[\d.]+", a) and not a.startswith("127."))
    token_dir = work / "secret"
    token_dir.mkdir()
    (token_dir / "token").write_text("0123456789abcdef0123456789abcdef\n")
    short = cli("review", "--archive", str(archive), "--index", str(index), "--host", "0.0.0.0", "--token", "x")
    case("27.5 a 1-character token is refused", short.returncode == 2, short.stderr.strip()[-100:])
    if not addresses:
        case("27.5 token mode at the machine's own address", False, "no IPv4 address but loopback here")
        return
    server = ReviewServer(
        fresh("token"),
        index,
        host="0.0.0.0",
        args=("--token-file", str(token_dir / "token")),
        wait_host=addresses[0],
    )
    token = "0123456789abcdef0123456789abcdef"
    try:
        url = f"http://{addresses[0]}:{server.port}"
        with httpx.Client(base_url=url, timeout=60) as http:
            with_token = http.get("/", headers={"x-review-token": token}).status_code
            without = http.get("/").status_code
            opened = http.get(f"/?token={token}", follow_redirects=False).status_code
            redirect = http.get(f"{url}//evil.example?token={token}", follow_redirects=False)
            location = redirect.headers.get("location", "")
            page = http.get("/", headers={"x-review-token": token})
            started_at = time.monotonic()
            with httpx.Client(base_url=url, timeout=60) as guesser:  # no cookie of the right token
                wrong = [{"x-review-token": f"guess-{i:027d}"} for i in range(1_000)]
                guesses = [guesser.get("/", headers=headers).status_code for headers in wrong]
            seconds = time.monotonic() - started_at
            in_ps = token in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            # connections that never finish their headers are closed
            idle = socket.create_connection((addresses[0], server.port))
            idle.sendall(b"GET / HTTP/1.1\r\nHost: x")
            idle.settimeout(webguard.HEADER_TIMEOUT + 5)
            held_from = time.monotonic()
            try:
                closed = idle.recv(100) == b""
            except TimeoutError:
                closed = False
            held = time.monotonic() - held_from
            idle.close()
            huge = socket.create_connection((addresses[0], server.port))
            request = f"POST /decide HTTP/1.1\r\nHost: {addresses[0]}\r\nContent-Length: 300000000\r\n\r\n"
            huge.sendall(request.encode())
            huge.settimeout(10)
            try:
                huge_answer = huge.recv(100)
            except TimeoutError:
                huge_answer = b"(no answer in 10 s)"
            huge.close()
    finally:
        server.stop()
    case(
        "27.5 0.0.0.0 + 32-char token, at the machine's own address",
        with_token == 200 and without == 401 and opened == 303,
        f"{addresses[0]}: with the token {with_token}, without {without}, /?token= {opened}",
    )
    compared = guesses.count(401)
    ok = compared + guesses.count(429) == 1_000 and (compared <= 10 + seconds + 1)
    detail = f"1,000 wrong guesses in {seconds:.1f} s: {compared} compared (401), {guesses.count(429)} refused (429)"
    detail += f"; to compare all 1,000 at this budget: >= {(1_000 - 10) / 1.0:.0f} s"
    case("27.5 1,000 wrong guesses take >= 100 s or are refused", ok, detail)
    ok = redirect.status_code == 303 and location.startswith("/") and not location.startswith(("//", "/\\"))
    case("27.5 no open redirect from //evil.example?token=", ok, f"{redirect.status_code} -> {location!r}")
    case("27.5 the token is not in ps (--token-file)", not in_ps, f"in ps: {in_ps}")
    csp = page.headers.get("content-security-policy", "")
    ok = page.headers.get("x-content-type-options") == "nosniff" and "script-src 'sha256-" in csp
    case("27.6 nosniff and a CSP of the page's own script and style", ok, csp[:90])
    case("27.6 a connection that never finishes its headers is closed", closed, f"closed after {held:.1f} s")
    ok = huge_answer.startswith(b"HTTP/1.1 413")
    case("27.6 Content-Length 300 MB refused before reading", ok, huge_answer[:40].decode(errors="replace"))


def unquote_event(quoted: str) -> str:
    from urllib.parse import unquote

    return unquote(quoted)


def webguard_href(href: str) -> bool:
    from recommender.eventfile import is_archive_href

    return is_archive_href(href)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="An index of the archive (default: build one).")
    parser.add_argument("--archive", type=Path, default=ROOT.parent / "shared" / "archive-sample")
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument("--skip-corruption", action="store_true", help="Leave out the corruption matrix.")
    parser.add_argument("--only-review", action="store_true", help="Only issue 27's review cases.")
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
        shutil.copytree(index, work / "review-index")
        probe_review(args.archive, work / "review-index", work)
        if args.only_review:
            with ServeProcess(index) as server:
                probe_nested_api(server.url)
            report(started)
        with ServeProcess(index) as server:
            probe_requests(server.url, known)
            probe_load(server.url, ids, args.load_seconds)
            probe_rebuild(server, index, args.archive, known)
            probe_sigterm(server, ids)
        probe_archive(work)
        probe_build(work)
        if not args.skip_corruption:
            probe_corruption(index, args.archive, known, work)
    report(started)


def report(started: float) -> None:
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"\n{len(RESULTS) - len(failed)} of {len(RESULTS)} cases pass in {time.monotonic() - started:.0f} s")
    for name in failed:
        print(f"  FAIL {name}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

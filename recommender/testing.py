"""A `recommender serve` process on a free loopback port, for the tests and the benchmarks under eval/: this
checkout's code, started and waited for until every worker answers /health, stopped by SIGTERM (killed at
worst). Standard library only: a server's install needs nothing more to use it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

CHECKOUT = Path(__file__).resolve().parent.parent  # the folder that holds this package


def free_port() -> int:
    """A loopback port free now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """`recommender serve --index INDEX` with `options` (e.g. "--threads", "2"), on 127.0.0.1; `workers`: its
    --workers, waited for until each has answered (None: serve's default, one per core, and one waited for)."""

    def __init__(self, index: Path, *options: str, workers: int | None = None, start_s: float = 180):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(CHECKOUT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        command = [sys.executable, "-c", "from recommender.cli import app; app()", "serve", "--index", str(index)]
        command += ["--port", str(self.port), *options, *(["--workers", str(workers)] if workers else [])]
        self.log = tempfile.TemporaryFile()  # noqa: SIM115  (what the server says, read should it fail to start)
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=self.log)
        self.workers: set[int] = set()  # each worker answers /health with its pid
        deadline = time.monotonic() + start_s
        while len(self.workers) < (workers or 1):
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}: {self.said()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not answer /health within {start_s:.0f} s")
            try:
                self.workers.add(self.health()["worker"])
            except OSError:
                time.sleep(0.2)

    def said(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
            return dict(json.load(response))

    def pids(self) -> list[int]:
        """The server's process and its workers'."""
        children = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [self.process.pid, *map(int, children.split())]

    def stop(self, wait_s: float = 10) -> float:
        """SIGTERM, killed after `wait_s`; the seconds until it exited."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.monotonic() - started

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None):
        self.stop()
        self.log.close()


@contextlib.contextmanager
def serving_in_thread(app: Any, timeout: float = 20.0) -> Iterator[str]:
    """An ASGI `app` served by uvicorn in a thread of this process on a free loopback port; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)

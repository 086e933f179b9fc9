"""The process that supervises the API's worker processes (`recommender serve --workers N`, N > 1).

`serve` replaces itself with this file run as a script, so the supervisor imports uvicorn alone: not the
package, numpy or the index (about 25 MB instead of the CLI's 115 MB). Each worker loads the index itself
(`recommender.api:app_from_env`), sharing its mapped files with the others.

    python recommender/supervise.py HOST PORT WORKERS
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

# run as a script, Python puts this file's folder first on the path, where its modules would shadow others:
# the folder that holds the package goes there instead
sys.path[0] = str(Path(__file__).resolve().parent.parent)


def supervise(host: str, port: int, workers: int) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    # Requests still running 3 s after SIGTERM are cut off: the server stops within 5 s whatever its load.
    config = uvicorn.Config(
        "recommender.api:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        timeout_graceful_shutdown=3,
        # webguard.server_options(), by name: importing the package here would load numpy in the supervisor
        http="recommender.webguard:TimedH11Protocol",
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=16_384,
    )
    listening = config.bind_socket()
    # a worker gets this socket without its protocol number, so asyncio does not set TCP_NODELAY on what it
    # accepts, and each answer's body would wait for the client's delayed ACK of its headers (40 ms a request);
    # accepted sockets inherit it from the listening one
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    supervisor = Multiprocess(config, sockets=[listening])

    # SIGHUP: each worker loads the new build beside the old one and swaps (uvicorn would restart them)
    def forward_hup() -> None:
        for process in supervisor.processes:
            if process.pid:
                os.kill(process.pid, signal.SIGHUP)

    supervisor.handle_hup = forward_hup  # type: ignore[method-assign]
    supervisor.run()


if __name__ == "__main__":
    supervise(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))

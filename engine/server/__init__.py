"""`cleanclaim serve`: the HTTP API, a small ASGI app on uvicorn (httptools + uvloop).

Endpoints (docs/api.md; the OpenAPI 3.1 document is served at `/openapi.json`):

- `POST /v1/check`        one claim JSON -> one decision JSON (200 for every decision,
                          also for denied and rejected claims; bad JSON is a reject).
- `POST /v1/check/batch`  NDJSON in -> NDJSON out (chunked), one decision per non-blank
                          input line, in order, with `position`: the decisions of a
                          `cleanclaim check` run of the same lines.
- `POST /v1/denials`      an X12 835 (or JSON with it and our decisions) -> the denial
                          report JSON (engine/denials/upload.py, docs/denials.md).
- `GET  /v1/packs`        pack ids and digests, and the plugins loaded.
- `GET  /health`          liveness; `GET /ready`: the packs are loaded.
- `GET  /openapi.json`    the OpenAPI document.

Same engine as `check`: `cleanclaim serve` builds its engine with the CLI's
`build_engine` (one `EngineRecipe`: packs, plugins, tables), and a batch is checked with
`Engine.check_many`, which counts claim history across the batch's claims exactly as a
`check` run of them does. The server keeps no history between requests (no `--state`).

Layout: `protocol.py` (HTTP/1.1 framing as strict as RFC 9112, deadlines, connection
lanes, on uvicorn's httptools protocol), `app.py` (the ASGI app: routes, auth, the
endpoints), `batch.py` (a batch's output buffer), `common.py` (configuration, problem
types, one claim's decision). Why uvicorn: docs/api.md "Stack" has the measurements.

Privacy: the access log has the request id, method, route, status (or how the answer was
cut short), duration and body sizes, nothing else; no claim content, query string,
client-chosen path or client address is ever logged.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any

from cleanclaim.engine.engine import Engine
from cleanclaim.engine.server.app import ClaimApp
from cleanclaim.engine.server.common import (
    ACCESS_LOG,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MIN_RATE,
    DEFAULT_RESERVE,
    DEFAULT_TIMEOUT,
    ERROR_LOG,
    LOOPBACK_HOSTS,
    MIN_TOKEN_LENGTH,
    PROBES,
    PROBLEM_BASE,
    PROBLEMS,
    PROTECTED,
    ROUTES,
    BindRefused,
    ServerConfig,
    bind_problem,
    decide,
    die_with_parent,
    plugins_of,
    problem_body,
    raw_claim,
)
from cleanclaim.engine.server.protocol import Lanes, protocol_for

__all__ = [
    "ACCESS_LOG",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MIN_RATE",
    "DEFAULT_RESERVE",
    "DEFAULT_TIMEOUT",
    "ERROR_LOG",
    "LOOPBACK_HOSTS",
    "MIN_TOKEN_LENGTH",
    "PROBES",
    "PROBLEMS",
    "PROBLEM_BASE",
    "PROTECTED",
    "ROUTES",
    "BindRefused",
    "ClaimApp",
    "ClaimServer",
    "ServerConfig",
    "bind_problem",
    "decide",
    "make_server",
    "plugins_of",
    "problem_body",
    "raw_claim",
    "run",
]

BACKLOG = 128


class ClaimServer:
    """A bound server over one `Engine` (`make_server` builds it): `serve_forever()`
    runs uvicorn on the bound socket until `shutdown()`; `server_close()` releases it."""

    def __init__(self, engine: Engine, config: ServerConfig) -> None:
        problem = bind_problem(config.host, config.token)
        if problem is not None:
            raise BindRefused(problem)
        self.engine = engine
        self.config = config
        infos = socket.getaddrinfo(config.host or None, config.port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(address)
            self.socket.listen(BACKLOG)  # connections queue before serve_forever runs
        except OSError:
            self.socket.close()
            raise
        self.server_address = self.socket.getsockname()
        self.server_port = int(self.server_address[1])
        self.app = ClaimApp(engine, config, self.url)
        self._uvicorn: Any = None
        self._started = threading.Event()
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        host = str(self.server_address[0])
        return (
            f"http://[{host}]:{self.server_port}"
            if ":" in host
            else f"http://{host}:{self.server_port}"
        )

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until `shutdown()` (or, in the main thread, SIGINT/SIGTERM).
        `poll_interval` is accepted for the socketserver interface; uvicorn checks for
        shutdown every 0.1 s."""
        import uvicorn

        lanes = Lanes(self.config.max_connections, self.config.reserve)
        settings = uvicorn.Config(
            self.app,
            http=protocol_for(self.config, lanes),
            loop="auto",
            ws="none",
            lifespan="off",
            interface="asgi3",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            date_header=True,
            timeout_keep_alive=max(1, round(self.config.timeout)),
            timeout_graceful_shutdown=5,
            backlog=BACKLOG,
        )
        self._uvicorn = uvicorn.Server(settings)
        self._started.set()
        try:
            self._uvicorn.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop `serve_forever` (from another thread) and wait until it has."""
        if not self._started.wait(5):
            return
        self._uvicorn.should_exit = True
        self._stopped.wait(15)

    def server_close(self) -> None:
        self.socket.close()


def make_server(engine: Engine, config: ServerConfig) -> ClaimServer:
    """A bound server (port 0 picks a free port: see `server.server_port`); call
    `serve_forever()` to run it. Raises `BindRefused` for a non-loopback host without a
    token of at least MIN_TOKEN_LENGTH characters."""
    return ClaimServer(engine, config)


def run(engine: Engine, config: ServerConfig) -> None:
    """Serve until SIGINT/SIGTERM, printing the address on stderr and the access log."""
    if not ACCESS_LOG.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        for logger in (ACCESS_LOG, ERROR_LOG):
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
    server = make_server(engine, config)
    # The engine and its packs live as long as the server: out of the collector's sight,
    # a collection walks only what requests allocate (docs/api.md "Stack": p99).
    gc.collect()
    gc.freeze()

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # uvicorn stops on the signal, then raises it again for the handler it found: ours.
    previous = signal.signal(signal.SIGTERM, stop)
    auth = "bearer token" if config.token else "none (loopback only)"
    plugins = ", ".join(p["name"] for p in plugins_of(engine)) or "none"
    processes = f"; {config.workers} processes" if config.workers > 1 else ""
    print(
        f"cleanclaim serve: listening on {server.url} (auth: {auth}; "
        f"packs: {', '.join(sorted(engine.packs)) or 'none'}; plugins: {plugins}"
        f"{processes})",
        file=sys.stderr,
        flush=True,
    )
    try:
        if config.workers > 1:
            _serve_in_processes(server, config.workers)
        else:
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
        print("cleanclaim serve: stopped", file=sys.stderr, flush=True)


def _serve_in_processes(server: ClaimServer, count: int) -> None:
    """`count` processes forked from this one (the engine built once, shared
    copy-on-write, frozen out of the collector's sight) serve the one listening socket,
    each with its own event loop; this process only starts and stops them: SIGTERM or
    SIGINT here stops them all, and each stops with this process if it dies."""
    children: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    for _ in range(count):
        pid = os.fork()
        if pid == 0:  # the child: serve until told to stop, then leave at once
            code = 0
            try:
                die_with_parent()
                server.serve_forever()
            except KeyboardInterrupt:
                pass
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failed += os.waitstatus_to_exitcode(status) != 0
    if failed:
        ERROR_LOG.error("%d of %d server processes failed", failed, count)

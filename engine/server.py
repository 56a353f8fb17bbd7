"""`cleanclaim serve`: the HTTP API (stdlib `http.server`, no extra dependency).

Endpoints (docs/api.md; the OpenAPI 3.1 document is served at `/openapi.json`):

- `POST /v1/check`        one claim JSON -> one decision JSON (200 for every decision,
                          also for denied and rejected claims; bad JSON is a reject).
- `POST /v1/check/batch`  NDJSON in -> NDJSON out, streamed both ways (chunked), one
                          decision per non-blank input line, in order, with `position`.
- `GET  /v1/packs`        pack ids and digests, and the plugins loaded.
- `GET  /health`          liveness.
- `GET  /openapi.json`    the OpenAPI document.

Why the standard library: the engine is CPU-bound pure Python, so a server's requests run
one at a time under the GIL whatever the framework; measured on the same machine and load
(docs/api.md, "Stack"), `ThreadingHTTPServer` kept up with uvicorn+starlette while adding no
dependency. Scale out with several processes behind a balancer.

Thread safety: each connection has its own thread and all share one `Engine`. The server
calls `Engine.check_raw`/`Engine.unreadable` only, never `check(..., today=...)` (which
swaps `engine.today` for the call and is not thread-safe). To keep a long-running
server's notion of "today" current, the date is rolled with one attribute store when the
calendar day changes (`ClaimServer.roll_today`); a claim checked in that instant sees
either date.

Privacy: the access log has method, route, status, duration and body sizes, nothing else;
no claim content, query string, client-chosen path or client address is ever logged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import json
import logging
import re
import signal
import socket
import socketserver
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cleanclaim.engine.decision import Decision, Finding
from cleanclaim.engine.engine import Engine
from cleanclaim.engine.inputs import RawClaim, ReadProblem

ACCESS_LOG = logging.getLogger("cleanclaim.server.access")
ERROR_LOG = logging.getLogger("cleanclaim.server")

DEFAULT_MAX_BODY = 10 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_CONNECTIONS = 128
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
BLOCK = 64 * 1024
# Decisions of a batch queued for a client that is not reading yet (per connection).
BATCH_OUTPUT_BUFFER = 32 * 1024 * 1024
_CHUNK_SIZE = re.compile(rb"^[0-9A-Fa-f]{1,16}$")
_LENGTH = re.compile(r"^[0-9]{1,18}$")

# Route -> methods allowed. HEAD is answered like GET, without a body.
ROUTES: dict[str, tuple[str, ...]] = {
    "/v1/check": ("POST",),
    "/v1/check/batch": ("POST",),
    "/v1/packs": ("GET", "HEAD"),
    "/health": ("GET", "HEAD"),
    "/openapi.json": ("GET", "HEAD"),
}
# Routes that need the bearer token when one is configured; /health (for probes) and
# /openapi.json (public contract) stay open.
PROTECTED = frozenset({"/v1/check", "/v1/check/batch", "/v1/packs"})


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How the server listens and what it accepts.

    max_body: largest body of `POST /v1/check`, and largest line of a batch (bytes).
    timeout: seconds a connection may stay silent (idle keep-alive, slow headers or body);
        the whole body of `/v1/check` must also arrive within it.
    max_connections: connections served at once; more get 503 at once.
    follow_today: keep `engine.today` on the current date (claims without
        `received_date` are taken as received today); False keeps the engine's date.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    timeout: float = DEFAULT_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    follow_today: bool = True
    # What `GET /v1/packs` lists as plugins; default: those the engine loaded.
    plugins: Callable[[Engine], list[dict[str, Any]]] | None = None


def plugins_of(engine: Engine) -> list[dict[str, Any]]:
    """The plugins an engine loaded (name, version, distribution, hooks); [] for none."""
    host = getattr(engine, "plugins", None)
    return [{"name": str(getattr(info, "name", "")),
             "version": str(getattr(info, "version", "")),
             "distribution": str(getattr(info, "distribution", "")),
             "hooks": sorted(str(h) for h in getattr(info, "hooks", ()))}
            for info in getattr(host, "plugins", ())]


class BindRefused(Exception):
    """Listening beyond loopback without a token."""


def bind_problem(host: str, token: str | None) -> str | None:
    """Why the server must not listen on `host`, or None when it may."""
    if host in LOOPBACK_HOSTS or token:
        return None
    return (f"refusing to listen on {host!r} without a token: only 127.0.0.1, ::1 and "
            "localhost may be served without authentication. Set --token or the "
            "CLEANCLAIM_TOKEN environment variable.")


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _error_body(status: int, code: str, message: str) -> bytes:
    return _json_bytes({"error": {"status": status, "code": code, "message": message}})


class ClaimServer(ThreadingHTTPServer):
    """A threading HTTP server over one `Engine`; `make_server` builds it."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, engine: Engine, config: ServerConfig) -> None:
        problem = bind_problem(config.host, config.token)
        if problem is not None:
            raise BindRefused(problem)
        self.engine = engine
        self.config = config
        self.token = config.token.encode() if config.token else None
        self._slots = threading.BoundedSemaphore(config.max_connections)
        infos = socket.getaddrinfo(config.host or None, config.port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        self.address_family = family
        super().__init__((str(address[0]), int(address[1])), _Handler)
        self.packs_body = _json_bytes({
            "packs": [{"id": pack_id, "digest": digest}
                      for pack_id, digest in sorted(engine.packs.items())],
            "plugins": (config.plugins or plugins_of)(engine),
        })
        from cleanclaim.engine.openapi import openapi_document

        self.openapi_body = _json_bytes(openapi_document(config.max_body))

    def server_bind(self) -> None:
        # Skip HTTPServer's reverse DNS lookup of the host (socket.getfqdn).
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    @property
    def url(self) -> str:
        host = str(self.server_address[0])
        return f"http://[{host}]:{self.server_port}" if ":" in host else \
            f"http://{host}:{self.server_port}"

    def roll_today(self) -> None:
        if self.config.follow_today:
            today = dt.date.today()
            if self.engine.today != today:
                self.engine.today = today  # one attribute store: readers see either date

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            body = _error_body(503, "busy", "too many connections; retry shortly")
            with contextlib.suppress(OSError):
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: "
                    + str(len(body)).encode() + b"\r\n\r\n" + body)
            ACCESS_LOG.info("- - 503 0.0ms in=0 out=%d", len(body))
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        ERROR_LOG.error("connection failed: %s", type(exc).__name__)


def make_server(engine: Engine, config: ServerConfig) -> ClaimServer:
    """A bound server (port 0 picks a free port: see `server.server_port`); call
    `serve_forever()` to run it. Raises `BindRefused` for a non-loopback host without a
    token."""
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
    auth = "bearer token" if config.token else "none (loopback only)"
    print(f"cleanclaim serve: listening on {server.url} (auth: {auth}; "
          f"packs: {', '.join(sorted(engine.packs)) or 'none'})", file=sys.stderr, flush=True)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
        print("cleanclaim serve: stopped", file=sys.stderr, flush=True)


class _BodyError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _ClientGone(Exception):
    pass


def _internal_failure(position: int | None, exc: Exception) -> Decision:
    ERROR_LOG.error("engine failed on a claim: %s", type(exc).__name__)
    finding = Finding("engine/internal-error", "submission", "review", None, "CO", "16", [],
                      "submission", "billing",
                      f"the engine failed on this claim ({type(exc).__name__}); "
                      "a person must check it", None, None)
    return Decision(None, "review", [finding], {}, position)


def decide(engine: Engine, body: bytes, position: int | None, where: str) -> Decision:
    """One decision for one claim's JSON bytes; never raises."""
    try:
        try:
            data = json.loads(body)
        except RecursionError:
            problem = ReadProblem(where, "not valid JSON: nested too deeply")
            return engine.unreadable(RawClaim(position or 0, None, (problem,)))
        except ValueError as exc:
            problem = ReadProblem(where, f"not valid JSON: {exc}")
            return engine.unreadable(RawClaim(position or 0, None, (problem,)))
        if not isinstance(data, dict):
            kind = "a list" if isinstance(data, list) else type(data).__name__
            problem = ReadProblem(where, f"must be a JSON object (one claim), not {kind}")
            return engine.unreadable(RawClaim(position or 0, None, (problem,)))
        claim_id = data.get("claim_id")
        return engine.check_raw(RawClaim(position or 0, data, (),
                                         claim_id if isinstance(claim_id, str) else None))
    except Exception as exc:  # an engine bug must not cost the client its answer
        return _internal_failure(position, exc)


class _Handler(BaseHTTPRequestHandler):
    server_version = "cleanclaim"
    protocol_version = "HTTP/1.1"

    # ---- per-request state -------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.srv.config.timeout)
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's
        # algorithm and the client's delayed ACK add ~40 ms to every response.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def srv(self) -> ClaimServer:
        server = self.server
        assert isinstance(server, ClaimServer)
        return server

    def _reset(self) -> None:
        self._start = time.perf_counter()
        self._route = "-"
        self._status = 0
        self._bytes_in = 0
        self._bytes_out = 0
        self._logged = False
        self._body_pending = False
        self._length: int | None = None
        self._chunked = False
        self._prechecked = False

    def handle_one_request(self) -> None:
        self._reset()
        self.command = ""
        try:
            self.raw_requestline = self.rfile.readline(65537)
            self._start = time.perf_counter()
            if len(self.raw_requestline) > 65536:
                self.requestline = ""
                self.request_version = "HTTP/1.1"
                self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():  # sent its own error (send_error below)
                return
            self._dispatch()
            self.wfile.flush()
        except (TimeoutError, ConnectionError, _ClientGone):
            self.close_connection = True
        finally:
            if self._status or self.command:
                self._log()

    def _log(self) -> None:
        if self._logged:
            return
        self._logged = True
        elapsed = (time.perf_counter() - self._start) * 1000
        method = self.command if self.command in ("GET", "HEAD", "POST", "PUT", "DELETE",
                                                  "PATCH", "OPTIONS") else "-"
        # Status "-": the client went away or fell silent before an answer was sent.
        ACCESS_LOG.info("%s %s %s %.1fms in=%d out=%d", method, self._route,
                        self._status or "-", elapsed, self._bytes_in, self._bytes_out)

    def log_message(self, format: str, *args: Any) -> None:
        # BaseHTTPRequestHandler would log the request line (with any query string) and
        # error details; the access log above is the only log of a request.
        return

    # ---- responses ---------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None, head: bool = False) -> None:
        self._status = status
        fields = [("Content-Type", content_type), ("Content-Length", str(len(body))),
                  *(headers or {}).items()]
        if self._body_pending or self.close_connection:
            fields.append(("Connection", "close"))
            self.close_connection = True
        # Status line, headers and body in one write (one packet for small answers).
        self.wfile.write(self._head(status, fields) + (b"" if head else body))
        if not head:
            self._bytes_out += len(body)
        if self._body_pending:
            self._linger()

    def _head(self, status: int, fields: list[tuple[str, str]]) -> bytes:
        if self.request_version == "HTTP/0.9":
            return b""
        phrase = HTTPStatus(status).phrase
        lines = [f"{self.protocol_version} {status} {phrase}\r\nServer: cleanclaim\r\n"
                 f"Date: {self.date_time_string()}\r\nCache-Control: no-store\r\n"
                 "X-Content-Type-Options: nosniff\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in fields)
        lines.append("\r\n")
        return "".join(lines).encode("latin-1", "replace")

    def _error(self, status: int, code: str, message: str,
               headers: dict[str, str] | None = None) -> None:
        self._send(status, _error_body(status, code, message), headers=headers)

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """Errors of the request line and headers (http.server's own), as JSON."""
        status = HTTPStatus(code)
        self.close_connection = True
        self._error(status.value, status.phrase.lower().replace(" ", "_").replace("-", "_"),
                    message or status.phrase)

    def _linger(self) -> None:
        """After an early answer, read and drop the unread body for a short while so the
        client gets the answer (closing with unread data would reset the connection)."""
        self._body_pending = False
        deadline = time.monotonic() + min(self.srv.config.timeout, 5.0)
        try:
            self.connection.shutdown(socket.SHUT_WR)
            while time.monotonic() < deadline:
                self.connection.settimeout(max(0.01, deadline - time.monotonic()))
                if not self.rfile.read1(BLOCK):
                    break
        except OSError:
            pass

    # ---- routing -----------------------------------------------------------------------

    def _framing(self) -> _BodyError | None:
        """Read the body framing headers; an error when they are unusable."""
        lengths = self.headers.get_all("Content-Length") or []
        encodings = self.headers.get_all("Transfer-Encoding") or []
        if encodings:
            if lengths:
                return _BodyError(400, "bad_request",
                                  "Content-Length and Transfer-Encoding both given")
            if [e.strip().lower() for e in ",".join(encodings).split(",")] != ["chunked"]:
                return _BodyError(501, "not_implemented",
                                  "only Transfer-Encoding: chunked is supported")
            self._chunked = True
            self._body_pending = True
            return None
        if lengths:
            if len(set(lengths)) != 1 or not _LENGTH.match(lengths[0].strip()):
                self._body_pending = True
                return _BodyError(400, "bad_request", "invalid Content-Length")
            self._length = int(lengths[0])
            self._body_pending = self._length > 0
        return None

    def _precheck(self) -> tuple[int, str, str, dict[str, str]] | None:
        """Framing, route, method, auth and size checks: the error to send, or None.

        Framing comes first so that an early answer knows whether an unread body is
        waiting (the connection is then closed, never reused with body bytes in it)."""
        problem = self._framing()
        if problem is not None:
            return problem.status, problem.code, problem.message, {}
        path = self.path.split("?", 1)[0]
        methods = ROUTES.get(path)
        if methods is None:
            return 404, "not_found", "no such endpoint; see /openapi.json", {}
        self._route = path
        if self.command not in methods:
            return (405, "method_not_allowed", f"{path} allows {', '.join(methods)}",
                    {"Allow": ", ".join(methods)})
        if self.srv.token is not None and path in PROTECTED:
            given = self.headers.get("Authorization", "")
            scheme, _, credential = given.partition(" ")
            ok = hmac.compare_digest(credential.strip().encode(), self.srv.token)
            if scheme.lower() != "bearer" or not ok:
                return (401, "unauthorized", "a valid bearer token is required",
                        {"WWW-Authenticate": 'Bearer realm="cleanclaim"'})
        if (path == "/v1/check" and self._length is not None
                and self._length > self.srv.config.max_body):
            return (413, "body_too_large",
                    f"the body is {self._length} bytes; the limit is "
                    f"{self.srv.config.max_body}", {})
        return None

    def handle_expect_100(self) -> bool:
        problem = self._precheck()
        if problem is not None:
            self._body_pending = False  # the client will not send it
            self.close_connection = True
            status, code, message, headers = problem
            self._error(status, code, message, headers)
            return False
        self._prechecked = True
        return super().handle_expect_100()

    def _dispatch(self) -> None:
        if not self._prechecked:
            problem = self._precheck()
            if problem is not None:
                status, code, message, headers = problem
                self._error(status, code, message, headers)
                return
        route = self._route
        head = self.command == "HEAD"
        if route == "/v1/check":
            self._check()
        elif route == "/v1/check/batch":
            self._batch()
        elif route == "/v1/packs":
            self._send(200, self.srv.packs_body, head=head)
        elif route == "/health":
            self._send(200, _json_bytes({"status": "ok", "packs": len(self.srv.engine.packs)}),
                       head=head)
        else:
            self._send(200, self.srv.openapi_body, head=head)

    # ---- bodies ------------------------------------------------------------------------

    def _read1(self, size: int, deadline: float | None) -> bytes:
        idle = self.srv.config.timeout
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _BodyError(408, "request_timeout", "the body took too long to arrive")
            idle = min(idle, left)
        self.connection.settimeout(idle)
        try:
            data = self.rfile.read1(size)
        except TimeoutError:
            raise _BodyError(408, "request_timeout", "the body took too long to arrive") \
                from None
        if not data:
            raise _ClientGone
        self._bytes_in += len(data)
        return data

    def _readline(self, limit: int, deadline: float | None) -> bytes:
        self.connection.settimeout(self.srv.config.timeout if deadline is None
                                   else max(0.01, deadline - time.monotonic()))
        try:
            line = self.rfile.readline(limit)
        except TimeoutError:
            raise _BodyError(408, "request_timeout", "the body took too long to arrive") \
                from None
        if not line:
            raise _ClientGone
        self._bytes_in += len(line)
        return line

    def _blocks(self, deadline: float | None) -> Iterator[bytes]:
        """The request body as it arrives, unframed (Content-Length or chunked)."""
        if self._chunked:
            while True:
                size_line = self._readline(1026, deadline)
                size_text = size_line.split(b";", 1)[0].strip()
                if not size_line.endswith(b"\n") or not _CHUNK_SIZE.match(size_text):
                    raise _BodyError(400, "bad_request", "malformed chunked body")
                size = int(size_text, 16)
                if size == 0:
                    for _ in range(64):  # trailers, up to the blank line
                        if self._readline(8192, deadline) in (b"\r\n", b"\n"):
                            break
                    else:
                        raise _BodyError(400, "bad_request", "malformed chunked body")
                    break
                while size:
                    data = self._read1(min(size, BLOCK), deadline)
                    size -= len(data)
                    yield data
                if self._readline(3, deadline) not in (b"\r\n", b"\n"):
                    raise _BodyError(400, "bad_request", "malformed chunked body")
        else:
            left = self._length or 0
            while left:
                data = self._read1(min(left, BLOCK), deadline)
                left -= len(data)
                yield data
        self._body_pending = False

    # ---- endpoints ---------------------------------------------------------------------

    def _check(self) -> None:
        limit = self.srv.config.max_body
        deadline = time.monotonic() + self.srv.config.timeout
        parts: list[bytes] = []
        size = 0
        try:
            for block in self._blocks(deadline):
                size += len(block)
                if size > limit:
                    self._error(413, "body_too_large",
                                f"the body is over the limit of {limit} bytes")
                    return
                parts.append(block)
        except _BodyError as exc:
            self.close_connection = True
            self._error(exc.status, exc.code, exc.message)
            return
        self.srv.roll_today()
        decision = decide(self.srv.engine, b"".join(parts), None, "claim")
        decision.position = None
        self._send(200, _json_bytes(decision.to_json()))

    def _batch(self) -> None:
        """NDJSON in, NDJSON out: every non-blank line gets one decision, in order.

        The decisions of the lines of each block read are queued as one chunk before the
        next read, and a writer thread sends them (`_Output`): a client that streams lines
        sees their decisions as they come, and a client that sends its whole batch before
        it reads is not stalled until `BATCH_OUTPUT_BUFFER` bytes of decisions wait. A line
        over the size limit is rejected (and skipped) without ending the batch; broken
        framing or a silent client ends the response without its final chunk, which
        clients report as an incomplete response.
        """
        srv = self.srv
        engine = srv.engine
        limit = srv.config.max_body
        self._status = 200
        # HTTP/1.0 has no chunked encoding: the body then ends when the connection does.
        chunked = self.request_version == "HTTP/1.1"
        fields = [("Content-Type", "application/x-ndjson")]
        if chunked:
            fields.append(("Transfer-Encoding", "chunked"))
        else:
            fields.append(("Connection", "close"))
            self.close_connection = True
        self.wfile.write(self._head(200, fields))
        output = _Output(self.wfile.write, BATCH_OUTPUT_BUFFER, srv.config.timeout)
        position = 0
        number = 0  # input lines completed (1-based numbering of lines in messages)
        pending = bytearray()
        skipping = False  # inside a line over the limit, already answered
        out: list[bytes] = []

        def answer(line: bytes) -> None:
            nonlocal position
            if line.strip():
                decision = decide(engine, line, position, f"line {number}")
                decision.position = position
                out.append(_json_bytes(decision.to_json()) + b"\n")
                position += 1

        def too_long() -> None:
            nonlocal position
            problem = ReadProblem(f"line {number + 1}",
                                  f"the line is over the limit of {limit} bytes")
            decision = engine.unreadable(RawClaim(position, None, (problem,)))
            out.append(_json_bytes(decision.to_json()) + b"\n")
            position += 1

        def flush() -> None:
            if out:
                data = b"".join(out)
                out.clear()
                self._bytes_out += len(data)
                output.put(b"%x\r\n%b\r\n" % (len(data), data) if chunked else data)

        complete = False
        try:
            for block in self._blocks(None):
                srv.roll_today()
                start = 0
                while True:
                    newline = block.find(b"\n", start)
                    if newline < 0:
                        if not skipping:
                            pending += block[start:]
                            if len(pending) > limit:
                                too_long()
                                skipping = True
                                pending.clear()
                        break
                    piece = block[start:newline]
                    start = newline + 1
                    if skipping:
                        skipping = False
                        number += 1
                        continue
                    if pending:
                        pending += piece
                        line = bytes(pending)
                        pending.clear()
                    else:
                        line = piece
                    if len(line) > limit:
                        too_long()
                        number += 1
                        continue
                    number += 1
                    answer(line)
                flush()
            if pending and not skipping:
                number += 1
                answer(bytes(pending))
            flush()
            if chunked:
                output.put(b"0\r\n\r\n")
            complete = True
        except (_BodyError, _ClientGone, TimeoutError, ConnectionError):
            pass
        finally:
            # The decisions so far go out; an incomplete response stays unterminated.
            sent = output.close()
            if not (complete and sent):
                self.close_connection = True
                self._body_pending = False


class _Output:
    """Bytes on their way to the client, sent by a writer thread so that reading the
    request goes on while the client is not reading; `put` waits only while more than
    `cap` bytes are queued (for at most `timeout` seconds without progress)."""

    def __init__(self, write: Callable[[bytes], Any], cap: int, timeout: float) -> None:
        self._write = write
        self._cap = cap
        self._timeout = timeout
        self._items: deque[bytes | None] = deque()
        self._held = 0
        self._failed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="cleanclaim-batch-writer",
                                        daemon=True)
        self._thread.start()

    def put(self, data: bytes) -> None:
        with self._cond:
            while self._held > self._cap and not self._failed:
                if not self._cond.wait(self._timeout):
                    raise TimeoutError("the client does not read its decisions")
            if self._failed:
                raise ConnectionError("the client is gone")
            self._items.append(data)
            self._held += len(data)
            self._cond.notify_all()

    def close(self) -> bool:
        """Wait until everything queued is sent; False when sending failed."""
        with self._cond:
            self._items.append(None)
            self._cond.notify_all()
        self._thread.join()
        return not self._failed

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items:
                    self._cond.wait()
                batch: list[bytes] = []
                done = False
                while self._items:
                    item = self._items.popleft()
                    if item is None:
                        done = True
                        break
                    batch.append(item)
            if batch:
                data = b"".join(batch)
                try:
                    self._write(data)
                except (OSError, ValueError):
                    with self._cond:
                        self._failed = True
                        self._items.clear()
                        self._cond.notify_all()
                    return
                with self._cond:
                    self._held -= len(data)
                    self._cond.notify_all()
            if done:
                return

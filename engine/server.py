"""`cleanclaim serve`: the HTTP API (stdlib sockets and threads, no extra dependency).

Endpoints (docs/api.md; the OpenAPI 3.1 document is served at `/openapi.json`):

- `POST /v1/check`        one claim JSON -> one decision JSON (200 for every decision,
                          also for denied and rejected claims; bad JSON is a reject).
- `POST /v1/check/batch`  NDJSON in -> NDJSON out (chunked), one decision per non-blank
                          input line, in order, with `position`: the decisions of a
                          `cleanclaim check` run of the same lines.
- `GET  /v1/packs`        pack ids and digests, and the plugins loaded.
- `GET  /health`          liveness; `GET /ready`: the packs are loaded.
- `GET  /openapi.json`    the OpenAPI document.

Same engine as `check`: `cleanclaim serve` builds its engine with the CLI's
`build_engine` (one `EngineRecipe`: packs, plugins, tables), and a batch is checked with
`Engine.check_many`, which counts claim history across the batch's claims exactly as a
`check` run of them does. The server keeps no history between requests (no `--state`).

HTTP/1.1 framing follows RFC 9112 strictly, because a lenient server behind a proxy is a
request-smuggling hole: the request line and every header and chunk line must end in
CRLF; obs-fold, whitespace before a header's colon, Content-Length together with
Transfer-Encoding, and anything but `chunked` as the transfer coding are refused; and any
error answer closes the connection, so bytes after it are never read as a new request.

Slow clients: the request line and headers must arrive within `header_timeout` of their
first byte, a `/v1/check` body within `timeout`, and a batch body at `min_rate` bytes/s
on average after a first `timeout` (deadlines are checked between reads, so trickling a
byte at a time does not extend them). `max_connections` connections are served; beyond
them `reserve` more may ask only `/health` or `/ready` (with a 1 s deadline), so probes
never starve; the rest get 503 at once.

Why the standard library: docs/api.md "Stack" has the measurements against uvicorn.

Thread safety: each connection has its own thread and all share one `Engine`
(`check_raw`, `evaluate` and `check_many` keep no per-call state on the engine). A
long-running server keeps `engine.today` current with one attribute store a day
(`ClaimServer.roll_today`).

Privacy: the access log has the request id, method, route, status (or how the answer was
cut short), duration and body sizes, nothing else; no claim content, query string,
client-chosen path or client address is ever logged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import json
import logging
import os
import re
import signal
import socket
import socketserver
import sys
import tempfile
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any

from cleanclaim.engine.batch import ClaimLine
from cleanclaim.engine.decision import Decision, Finding
from cleanclaim.engine.engine import Engine
from cleanclaim.engine.inputs import RawClaim, ReadProblem

ACCESS_LOG = logging.getLogger("cleanclaim.server.access")
ERROR_LOG = logging.getLogger("cleanclaim.server")

DEFAULT_MAX_BODY = 10 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 128
DEFAULT_RESERVE = 8
DEFAULT_MIN_RATE = 1024  # bytes/s a batch body must keep up, on average, after `timeout`
MIN_TOKEN_LENGTH = 16  # beyond loopback (docs/api.md)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
BLOCK = 64 * 1024
MAX_LINE = 8192  # request line, header line, chunk-size line, trailer line
MAX_HEADERS = 100
GZIP_MIN = 4096  # bytes: smaller answers go out as they are
# Decisions of a batch queued in memory for a client that is not reading yet; beyond it
# they wait in a temporary file, up to BATCH_SPOOL_LIMIT (then the server waits).
BATCH_OUTPUT_BUFFER = 8 * 1024 * 1024
BATCH_SPOOL_LIMIT = 2 * 1024 * 1024 * 1024
PROBLEM_BASE = "urn:cleanclaim:problem:"
SWITCH_INTERVAL = 0.0002  # seconds; `cleanclaim serve` only (the default is 0.005)

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([^\x00-\x20\x7f]+) HTTP/([0-9])\.([0-9])\r\n")
_FIELD_LINE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*\r\n")
_QUOTED = rb'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*"'
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})((?:[ \t]*;[ \t]*" + _TOKEN
                         + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*)\r\n")
_LENGTH = re.compile(r"[0-9]{1,18}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

# Route -> methods allowed. HEAD is answered like GET, without a body.
ROUTES: dict[str, tuple[str, ...]] = {
    "/v1/check": ("POST",),
    "/v1/check/batch": ("POST",),
    "/v1/packs": ("GET", "HEAD"),
    "/health": ("GET", "HEAD"),
    "/ready": ("GET", "HEAD"),
    "/openapi.json": ("GET", "HEAD"),
}
# Routes that need the bearer token when one is configured; probes and the public
# contract stay open.
PROTECTED = frozenset({"/v1/check", "/v1/check/batch", "/v1/packs"})
PROBES = frozenset({"/health", "/ready"})

# Problem types (RFC 9457): stable identifiers, `PROBLEM_BASE` + key; the OpenAPI
# document lists them. key -> (status, title).
PROBLEMS: dict[str, tuple[int, str]] = {
    "malformed-request": (400, "The request line or a header is malformed"),
    "missing-host": (400, "An HTTP/1.1 request needs exactly one Host header"),
    "bad-content-length": (400, "Content-Length is not a single whole number"),
    "conflicting-framing": (400, "Content-Length and Transfer-Encoding both given"),
    "bad-chunked-body": (400, "The chunked body is not framed as RFC 9112 says"),
    "unauthorized": (401, "A valid bearer token is required"),
    "not-found": (404, "No such endpoint"),
    "method-not-allowed": (405, "Method not allowed"),
    "request-timeout": (408, "The request did not arrive in time"),
    "body-too-large": (413, "The body is over the limit"),
    "request-line-too-long": (414, "The request line is too long"),
    "expectation-failed": (417, "Only Expect: 100-continue is supported"),
    "headers-too-large": (431, "Too many or too long header lines"),
    "unsupported-transfer-coding": (501, "Only Transfer-Encoding: chunked is supported"),
    "busy": (503, "Too many connections; retry shortly"),
    "not-ready": (503, "No policy pack is loaded"),
    "version-not-supported": (505, "Only HTTP/1.0 and HTTP/1.1 are supported"),
}


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How the server listens and what it accepts.

    max_body: largest body of `POST /v1/check`, and largest line of a batch (bytes).
    timeout: seconds a connection may stay silent (idle keep-alive, a body read); the
        whole body of `/v1/check` must also arrive within it.
    header_timeout: seconds from a request's first byte to the end of its headers.
    min_rate: bytes/s a batch body must average once `timeout` has passed.
    max_connections: connections served at once; `reserve` more may ask `/health` and
        `/ready` only; more get 503 at once.
    follow_today: keep `engine.today` on the current date (claims without
        `received_date` are taken as received today); False keeps the engine's date.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    timeout: float = DEFAULT_TIMEOUT
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    min_rate: int = DEFAULT_MIN_RATE
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    reserve: int = DEFAULT_RESERVE
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
    """Listening beyond loopback without a (long enough) token."""


def bind_problem(host: str, token: str | None) -> str | None:
    """Why the server must not listen on `host`, or None when it may."""
    if host in LOOPBACK_HOSTS:
        return None
    if not token:
        return (f"refusing to listen on {host!r} without a token: only 127.0.0.1, ::1 and "
                "localhost may be served without authentication. Set --token or the "
                "CLEANCLAIM_TOKEN environment variable.")
    if len(token) < MIN_TOKEN_LENGTH:
        return (f"refusing to listen on {host!r} with a token of {len(token)} characters: "
                f"beyond loopback the token must have at least {MIN_TOKEN_LENGTH} "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`).")
    return None


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def problem_body(key: str, detail: str, request_id: str | None = None) -> bytes:
    """An RFC 9457 problem document (`application/problem+json`)."""
    status, title = PROBLEMS[key]
    body: dict[str, Any] = {"type": PROBLEM_BASE + key, "title": title, "status": status,
                            "detail": detail}
    if request_id is not None:
        body["request_id"] = request_id
    return _json_bytes(body)


def _new_request_id() -> str:
    return os.urandom(8).hex()


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
        self._reserve = threading.BoundedSemaphore(max(1, config.reserve))
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

        self.openapi_body = _json_bytes(openapi_document(config.max_body, self.url,
                                                          sorted(engine.packs)))

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
        if self._slots.acquire(blocking=False):
            lane = self._slots
        elif self._reserve.acquire(blocking=False):
            lane = self._reserve  # probes only (`_Handler.reserve`)
        else:
            body = problem_body("busy", "too many connections; retry shortly")
            with contextlib.suppress(OSError):
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                    b"application/problem+json\r\nRetry-After: 1\r\nConnection: close\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            ACCESS_LOG.info("- - - 503 0.0ms in=0 out=%d", len(body))
            self.shutdown_request(request)
            return
        thread = threading.Thread(target=self._connection, daemon=True,
                                  args=(request, client_address, lane))
        try:
            thread.start()
        except BaseException:
            lane.release()
            raise

    def _connection(self, request: Any, client_address: Any,
                    lane: threading.BoundedSemaphore) -> None:
        try:
            handler = _ReserveHandler if lane is self._reserve else _Handler
            handler(request, client_address, self)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            lane.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        ERROR_LOG.error("connection failed: %s", type(exc).__name__)


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
    # Connection threads hand the GIL on sooner: measured at concurrency 8 on loopback
    # (docs/api.md "Stack"), p50 6.8 -> 2.9 ms and 1,123 -> 2,208 requests/s.
    sys.setswitchinterval(SWITCH_INTERVAL)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    auth = "bearer token" if config.token else "none (loopback only)"
    plugins = ", ".join(p["name"] for p in plugins_of(engine)) or "none"
    print(f"cleanclaim serve: listening on {server.url} (auth: {auth}; "
          f"packs: {', '.join(sorted(engine.packs)) or 'none'}; plugins: {plugins})",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
        print("cleanclaim serve: stopped", file=sys.stderr, flush=True)


class _Refused(Exception):
    """A request that gets a problem answer; `fatal`: the connection cannot go on."""

    def __init__(self, key: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.key = key
        self.detail = detail
        self.headers = headers or {}


class _ClientGone(Exception):
    pass


def _internal_failure(position: int | None, exc: BaseException) -> Decision:
    ERROR_LOG.error("engine failed on a claim: %s", type(exc).__name__)
    finding = Finding("engine/internal-error", "submission", "review", None, "CO", "16", [],
                      "submission", "billing",
                      f"the engine failed on this claim ({type(exc).__name__}); "
                      "a person must check it", None, None)
    return Decision(None, "review", [finding], {}, position)


def raw_claim(text: bytes, position: int, number: int) -> RawClaim:
    """One claim's JSON bytes as `cleanclaim check` reads an NDJSON line (the same
    `ClaimLine.to_raw`), so the decisions match byte for byte."""
    try:
        return ClaimLine(position, number, text).to_raw()
    except RecursionError:
        return RawClaim(position, None, (ReadProblem(f"line {number}",
                                                     "not valid JSON: nested too deeply"),))


def decide(engine: Engine, body: bytes, position: int | None, where: str) -> Decision:
    """One decision for one claim's JSON bytes; never raises."""
    try:
        raw = raw_claim(body, position or 0, 1)
        if raw.problems:  # the message names the claim, not "line 1"
            raw = RawClaim(raw.position, None,
                           tuple(ReadProblem(where, p.message) for p in raw.problems))
        return engine.check_raw(raw)
    except Exception as exc:  # an engine bug must not cost the client its answer
        return _internal_failure(position, exc)


def _accepts_gzip(value: str) -> bool:
    for item in value.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().lower()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


class _Handler(BaseHTTPRequestHandler):
    server_version = "cleanclaim"
    protocol_version = "HTTP/1.1"
    reserve = False  # a connection beyond max_connections: probes only

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
        self._status: int | str = 0
        self._bytes_in = 0
        self._bytes_out = 0
        self._logged = False
        self._body_pending = False
        self._length: int | None = None
        self._chunked = False
        self._prechecked = False
        self._gzip = False
        self._request_id = _new_request_id()
        self.command = ""
        self.request_version = "HTTP/1.1"
        self.requestline = ""

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection and not self.reserve:
            self.handle_one_request()

    def handle_one_request(self) -> None:
        self._reset()
        try:
            if not self._read_head():
                self.close_connection = True
                return
            self._dispatch()
            self.wfile.flush()
        except _Refused as exc:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._problem(exc.key, exc.detail, exc.headers)
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
        # Status "-": the client went away or fell silent before an answer was sent;
        # "aborted:<why>": a streamed answer that started 200 and was cut short.
        ACCESS_LOG.info("%s %s %s %s %.1fms in=%d out=%d", self._request_id, method,
                        self._route, self._status or "-", elapsed, self._bytes_in,
                        self._bytes_out)

    def log_message(self, format: str, *args: Any) -> None:
        # BaseHTTPRequestHandler would log the request line (with any query string) and
        # error details; the access log above is the only log of a request.
        return

    # ---- reading the request head (RFC 9112 section 2-5) -------------------------------

    def _peek(self) -> bytes:
        """What is buffered (one socket read if nothing is)."""
        reader: Any = self.rfile  # a BufferedReader (StreamRequestHandler.rbufsize)
        return bytes(reader.peek(1))

    def _wait(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.connection.settimeout(left)

    def _line(self, deadline: float, limit: int = MAX_LINE) -> bytes:
        """One line (through its LF) read before `deadline`; b"" at a clean EOF. Raises
        `_Refused("too-long")`-style errors via the caller's limit check."""
        parts: list[bytes] = []
        size = 0
        while True:
            self._wait(deadline)
            buffered = self._peek()
            if not buffered:
                if parts:
                    raise _ClientGone
                return b""
            end = buffered.find(b"\n", 0, limit + 1 - size)
            data = self.rfile.read(end + 1 if end >= 0 else min(len(buffered),
                                                                limit + 1 - size))
            parts.append(data)
            size += len(data)
            self._bytes_in += len(data)
            if end >= 0:
                return b"".join(parts)
            if size > limit:
                raise OverflowError

    def _read_head(self) -> bool:
        """Request line and headers; False at a clean end of the connection."""
        config = self.srv.config
        idle = min(config.timeout, 1.0) if self.reserve else config.timeout
        self.connection.settimeout(idle)
        try:
            first = self._peek()  # idle keep-alive: wait for the first byte
        except TimeoutError:
            return False
        if not first:
            return False
        self._start = time.perf_counter()
        limit = min(config.header_timeout, config.timeout)
        deadline = time.monotonic() + (min(1.0, limit) if self.reserve else limit)
        try:
            line = self._line(deadline, 65536)
            for _ in range(4):  # RFC 9112 2.2: empty lines before a request are ignored
                if line != b"\r\n":
                    break
                line = self._line(deadline, 65536)
        except OverflowError:
            raise _Refused("request-line-too-long", "the request line is too long") from None
        except TimeoutError:
            raise _Refused("request-timeout", "the request line did not arrive in time") \
                from None
        if not line:
            return False
        match = _REQUEST_LINE.fullmatch(line)
        if match is None:
            raise _Refused("malformed-request", "the request line is not "
                           "`METHOD /path HTTP/1.1` ending in CRLF")
        method, target, major, minor = match.groups()
        self.command = method.decode("ascii")
        self.path = target.decode("latin-1")
        self.requestline = f"{self.command} - HTTP/{major.decode()}.{minor.decode()}"
        if (major, minor) not in ((b"1", b"1"), (b"1", b"0")):
            raise _Refused("version-not-supported", "only HTTP/1.0 and HTTP/1.1")
        self.request_version = f"HTTP/{major.decode()}.{minor.decode()}"
        if not self.path.startswith("/"):
            raise _Refused("malformed-request", "the request target must be a path")
        self.headers = self._read_fields(deadline, "header")
        given = self.headers.get("X-Request-Id")
        if given is not None and _REQUEST_ID.fullmatch(given.strip()):
            self._request_id = given.strip()
        if self.request_version == "HTTP/1.1":
            hosts = self.headers.get_all("Host") or []
            if len(hosts) != 1:
                raise _Refused("missing-host", "HTTP/1.1 requests need one Host header")
        connection = {t.strip().lower()
                      for t in ",".join(self.headers.get_all("Connection") or []).split(",")}
        self.close_connection = ("close" in connection or (
            self.request_version == "HTTP/1.0" and "keep-alive" not in connection))
        self._gzip = _accepts_gzip(",".join(self.headers.get_all("Accept-Encoding") or []))
        expect = self.headers.get("Expect")
        if expect is not None:
            if expect.strip().lower() != "100-continue":
                raise _Refused("expectation-failed", "only Expect: 100-continue")
            if self.request_version == "HTTP/1.1":
                try:
                    self._precheck()
                except _Refused:
                    self._body_pending = False  # the client waits: it will not send it
                    raise
                self._prechecked = True
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.wfile.flush()
        return True

    def _read_fields(self, deadline: float, what: str) -> HTTPMessage:
        """Header (or trailer) lines up to the empty line, each `name: value` + CRLF."""
        fields = HTTPMessage()
        for _ in range(MAX_HEADERS + 1):
            try:
                line = self._line(deadline)
            except OverflowError:
                raise _Refused("headers-too-large", f"a {what} line is too long") from None
            except TimeoutError:
                raise _Refused("request-timeout", f"the {what}s did not arrive in time") \
                    from None
            if not line:
                raise _ClientGone
            if line == b"\r\n":
                return fields
            if line[:1] in (b" ", b"\t"):
                raise _Refused("malformed-request", f"obs-fold (a {what} line starting "
                               "with whitespace) is not accepted")
            match = _FIELD_LINE.fullmatch(line)
            if match is None:
                raise _Refused("malformed-request", f"a {what} line is not `name: value` "
                               "ending in CRLF (no space before the colon)")
            fields[match.group(1).decode("ascii")] = match.group(2).decode("latin-1")
        raise _Refused("headers-too-large", f"more than {MAX_HEADERS} {what} lines")

    # ---- responses ---------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None, head: bool = False) -> None:
        self._status = status
        fields = [("Content-Type", content_type), *(headers or {}).items()]
        if self._gzip and len(body) >= GZIP_MIN and status == 200:
            body = _gzip(body)
            fields.append(("Content-Encoding", "gzip"))
        if status == 200:
            fields.append(("Vary", "Accept-Encoding"))
        fields.append(("Content-Length", str(len(body))))
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
        phrase = HTTPStatus(status).phrase
        lines = [f"HTTP/1.1 {status} {phrase}\r\nServer: cleanclaim\r\n"
                 f"Date: {self.date_time_string()}\r\nCache-Control: no-store\r\n"
                 f"X-Content-Type-Options: nosniff\r\nX-Request-Id: {self._request_id}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in fields)
        lines.append("\r\n")
        return "".join(lines).encode("latin-1", "replace")

    def _problem(self, key: str, detail: str, headers: dict[str, str] | None = None) -> None:
        """An error answer; it always closes the connection (RFC 9112 9.6: nothing after
        a refused request is read as a new request)."""
        self.close_connection = True
        status = PROBLEMS[key][0]
        self._send(status, problem_body(key, detail, self._request_id),
                   "application/problem+json", headers)

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:  # pragma: no cover - not reached
        self._problem("malformed-request", message or HTTPStatus(code).phrase)

    def _linger(self) -> None:
        """After an early answer, read and drop the unread body for a short while so the
        client gets the answer (closing with unread data would reset the connection)."""
        self._body_pending = False
        deadline = time.monotonic() + min(self.srv.config.timeout, 2.0)
        try:
            self.connection.shutdown(socket.SHUT_WR)
            while time.monotonic() < deadline:
                self.connection.settimeout(max(0.01, deadline - time.monotonic()))
                if not self.rfile.read1(BLOCK):
                    break
        except OSError:
            pass

    # ---- routing -----------------------------------------------------------------------

    def _framing(self) -> None:
        """Read the body framing headers (RFC 9112 6); refuse what is ambiguous."""
        lengths = self.headers.get_all("Content-Length") or []
        encodings = self.headers.get_all("Transfer-Encoding") or []
        if encodings:
            self._body_pending = True
            if lengths:
                raise _Refused("conflicting-framing",
                               "Content-Length and Transfer-Encoding both given")
            if self.request_version != "HTTP/1.1":
                raise _Refused("conflicting-framing", "Transfer-Encoding needs HTTP/1.1")
            codings = [e.strip().lower() for e in ",".join(encodings).split(",")]
            if codings[-1:] != ["chunked"]:
                raise _Refused("bad-chunked-body" if "chunked" in codings
                               else "unsupported-transfer-coding",
                               "only Transfer-Encoding: chunked is supported")
            if codings != ["chunked"]:
                raise _Refused("unsupported-transfer-coding",
                               "only Transfer-Encoding: chunked is supported")
            self._chunked = True
            return
        if lengths:
            values = {v.strip() for v in ",".join(lengths).split(",")}
            if len(values) != 1 or not _LENGTH.fullmatch(next(iter(values))):
                self._body_pending = True
                raise _Refused("bad-content-length", "invalid Content-Length")
            self._length = int(next(iter(values)))
            self._body_pending = self._length > 0

    def _precheck(self) -> None:
        """Framing, route, method, auth and size checks; raises `_Refused`.

        Framing comes first so that an early answer knows whether an unread body is
        waiting (the connection is then closed, never reused with body bytes in it)."""
        self._framing()
        path = self.path.split("?", 1)[0]
        methods = ROUTES.get(path)
        if methods is None:
            raise _Refused("not-found", "no such endpoint; see /openapi.json")
        self._route = path
        if self.reserve and path not in PROBES:
            raise _Refused("busy", "too many connections; retry shortly",
                           {"Retry-After": "1"})
        if self.command not in methods:
            raise _Refused("method-not-allowed", f"{path} allows {', '.join(methods)}",
                           {"Allow": ", ".join(methods)})
        if self.srv.token is not None and path in PROTECTED:
            given = self.headers.get("Authorization", "")
            scheme, _, credential = given.partition(" ")
            ok = hmac.compare_digest(credential.strip().encode(), self.srv.token)
            if scheme.lower() != "bearer" or not ok:
                raise _Refused("unauthorized", "a valid bearer token is required",
                               {"WWW-Authenticate": 'Bearer realm="cleanclaim"'})
        if (path == "/v1/check" and self._length is not None
                and self._length > self.srv.config.max_body):
            raise _Refused("body-too-large", f"the body is {self._length} bytes; the limit "
                           f"is {self.srv.config.max_body}")

    def _dispatch(self) -> None:
        if not self._prechecked:
            self._precheck()
        route = self._route
        head = self.command == "HEAD"
        if route == "/v1/check":
            self._check()
        elif route == "/v1/check/batch":
            self._batch()
        elif route == "/v1/packs":
            self._send(200, self.srv.packs_body, head=head)
        elif route == "/health":
            self._send(200, _json_bytes({"status": "ok"}), head=head)
        elif route == "/ready":
            packs = len(self.srv.engine.packs)
            if not packs:
                raise _Refused("not-ready", "no policy pack is loaded")
            self._send(200, _json_bytes({"status": "ready", "packs": packs,
                                         "plugins": len(plugins_of(self.srv.engine))}),
                       head=head)
        else:
            self._send(200, self.srv.openapi_body, head=head)

    # ---- bodies ------------------------------------------------------------------------

    def _read1(self, size: int, deadline: Callable[[], float]) -> bytes:
        try:
            self._wait(deadline())
            self.connection.settimeout(min(self.srv.config.timeout,
                                           max(0.001, deadline() - time.monotonic())))
            data = self.rfile.read1(size)
        except TimeoutError:
            raise _Refused("request-timeout", "the body took too long to arrive") from None
        if not data:
            raise _ClientGone
        self._bytes_in += len(data)
        return data

    def _exact(self, size: int, deadline: Callable[[], float]) -> bytes:
        parts = []
        while size:
            data = self._read1(size, deadline)
            size -= len(data)
            parts.append(data)
        return b"".join(parts)

    def _body_line(self, deadline: Callable[[], float]) -> bytes:
        try:
            return self._line(deadline())
        except OverflowError:
            raise _Refused("bad-chunked-body", "a chunk line is too long") from None
        except TimeoutError:
            raise _Refused("request-timeout", "the body took too long to arrive") from None

    def _blocks(self, deadline: Callable[[], float]) -> Iterator[bytes]:
        """The request body as it arrives, unframed (Content-Length or chunked)."""
        if self._chunked:
            while True:
                match = _CHUNK_LINE.fullmatch(self._body_line(deadline))
                if match is None:
                    raise _Refused("bad-chunked-body", "a chunk-size line is not "
                                   "`hex-size[;ext]` ending in CRLF")
                size = int(match.group(1), 16)
                if size == 0:
                    self._read_fields_body(deadline)
                    break
                while size:
                    data = self._read1(min(size, BLOCK), deadline)
                    size -= len(data)
                    yield data
                if self._exact(2, deadline) != b"\r\n":
                    raise _Refused("bad-chunked-body", "chunk data must end in CRLF")
        else:
            left = self._length or 0
            while left:
                data = self._read1(min(left, BLOCK), deadline)
                left -= len(data)
                yield data
        self._body_pending = False

    def _read_fields_body(self, deadline: Callable[[], float]) -> None:
        """The trailer section (read, checked, dropped) up to the final CRLF."""
        try:
            self._read_fields(deadline(), "trailer")
        except _Refused as exc:
            if exc.key == "malformed-request":
                raise _Refused("bad-chunked-body", exc.detail) from None
            raise

    # ---- endpoints ---------------------------------------------------------------------

    def _check(self) -> None:
        limit = self.srv.config.max_body
        fixed = time.monotonic() + self.srv.config.timeout
        parts: list[bytes] = []
        size = 0
        for block in self._blocks(lambda: fixed):
            size += len(block)
            if size > limit:
                raise _Refused("body-too-large", f"the body is over the limit of {limit} "
                               "bytes")
            parts.append(block)
        self.srv.roll_today()
        decision = decide(self.srv.engine, b"".join(parts), None, "claim")
        decision.position = None
        self._send(200, _json_bytes(decision.to_json()))

    def _batch(self) -> None:
        """NDJSON in, NDJSON out: every non-blank line gets one decision, in order - the
        decisions `cleanclaim check` gives for the same lines (`Engine.check_many`:
        with packs that count history, every claim of the batch is read before the first
        decision, as `check` does; otherwise each block's decisions go out before the
        next block is read). A line over the size limit is rejected (and skipped)
        without ending the batch; broken framing or a silent client ends the response
        without its final chunk, which clients report as an incomplete response, and the
        access log says `aborted:<why>` instead of 200.
        """
        srv = self.srv
        engine = srv.engine
        config = srv.config
        limit = config.max_body
        # HTTP/1.0 has no chunked encoding: the body then ends when the connection does.
        chunked = self.request_version == "HTTP/1.1"
        fields = [("Content-Type", "application/x-ndjson")]
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31) if self._gzip else None
        if compressor is not None:
            fields.append(("Content-Encoding", "gzip"))
        fields.append(("Vary", "Accept-Encoding"))
        if chunked:
            fields.append(("Transfer-Encoding", "chunked"))
        else:
            fields.append(("Connection", "close"))
            self.close_connection = True
        self.wfile.write(self._head(200, fields))
        self._status = "aborted:unknown"
        output = _Output(self.wfile.write, BATCH_OUTPUT_BUFFER, config.timeout)
        out: list[bytes] = []
        start = time.monotonic()

        def deadline() -> float:  # a floor on the average rate, after a first `timeout`
            return start + config.timeout + self._bytes_in / max(1, config.min_rate)

        def send(data: bytes, final: bool = False) -> None:
            if compressor is not None:
                data = (compressor.compress(data)
                        + compressor.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH))
            if data:
                self._bytes_out += len(data)
                output.put(b"%x\r\n%b\r\n" % (len(data), data) if chunked else data)

        def flush() -> None:
            if out:
                data = b"".join(out)
                out.clear()
                send(data)

        def claims() -> Iterator[RawClaim]:
            position = 0
            number = 0  # input lines completed (1-based numbering in messages)
            pending = bytearray()
            skipping = False  # inside a line over the limit, already answered

            def too_long() -> RawClaim:
                problem = ReadProblem(f"line {number + 1}",
                                      f"the line is over the limit of {limit} bytes")
                return RawClaim(position, None, (problem,))

            for block in self._blocks(deadline):
                srv.roll_today()
                at = 0
                while True:
                    newline = block.find(b"\n", at)
                    if newline < 0:
                        if not skipping:
                            pending += block[at:]
                            if len(pending) > limit:
                                yield too_long()
                                position += 1
                                skipping = True
                                pending.clear()
                        break
                    piece = block[at:newline]
                    at = newline + 1
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
                        yield too_long()
                        position += 1
                        number += 1
                        continue
                    number += 1
                    if line.strip():
                        yield raw_claim(line, position, number)
                        position += 1
                flush()  # what this block decided goes out before the next read
            if pending.strip() and not skipping:
                yield raw_claim(bytes(pending), position, number + 1)

        complete = False
        try:
            for decision in engine.check_many(claims()):
                out.append(_json_bytes(decision.to_json()) + b"\n")
            flush()
            if compressor is not None:
                send(b"", final=True)
            if chunked:
                output.put(b"0\r\n\r\n")
            complete = True
        except _Refused as exc:
            self._status = f"aborted:{exc.key}"
        except _ClientGone:
            self._status = "aborted:client-gone"
        except (TimeoutError, ConnectionError):
            self._status = "aborted:client-not-reading"
        except Exception as exc:  # an engine bug: the stream is cut, never faked complete
            ERROR_LOG.error("batch failed: %s", type(exc).__name__)
            self._status = "aborted:internal-error"
        finally:
            # The decisions so far go out; an incomplete response stays unterminated.
            sent = output.close()
            if complete and sent:
                self._status = 200
            else:
                if complete:
                    self._status = "aborted:client-gone"
                self.close_connection = True
                self._body_pending = False


class _ReserveHandler(_Handler):
    reserve = True


def _gzip(body: bytes) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()


class _Output:
    """Bytes on their way to the client, sent by a writer thread so that reading the
    request goes on while the client is not reading. Past `cap` bytes in memory, what
    follows waits in a temporary file (a client that sends a whole batch before it reads
    still gets every decision); `put` waits only when the file holds BATCH_SPOOL_LIMIT
    bytes (for at most `timeout` seconds without progress)."""

    def __init__(self, write: Callable[[bytes], Any], cap: int, timeout: float) -> None:
        self._write = write
        self._cap = cap
        self._timeout = timeout
        self._items: deque[bytes | None] = deque()
        self._held = 0
        self._spool: IO[bytes] | None = None
        self._spool_read = 0
        self._spool_written = 0
        self._closing = False
        self._failed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="cleanclaim-batch-writer",
                                        daemon=True)
        self._thread.start()

    def put(self, data: bytes) -> None:
        with self._cond:
            if self._failed:
                raise ConnectionError("the client is gone")
            if self._spool is None and self._held + len(data) <= self._cap:
                self._items.append(data)
                self._held += len(data)
            else:
                while (self._spool_written - self._spool_read > BATCH_SPOOL_LIMIT
                       and not self._failed):
                    if not self._cond.wait(self._timeout):
                        raise TimeoutError("the client does not read its decisions")
                if self._failed:
                    raise ConnectionError("the client is gone")
                if self._spool is None:
                    self._spool = tempfile.TemporaryFile(prefix="cleanclaim-batch-")  # noqa: SIM115
                self._spool.seek(self._spool_written)
                self._spool.write(data)
                self._spool_written += len(data)
            self._cond.notify_all()

    def close(self) -> bool:
        """Wait until everything queued is sent; False when sending failed."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        if self._spool is not None:
            self._spool.close()
        return not self._failed

    def _next(self) -> bytes | None:
        """The next bytes to send (memory first, then the spool); None: all sent."""
        with self._cond:
            while True:
                if self._items:
                    batch = []
                    while self._items:
                        item = self._items.popleft()
                        assert item is not None
                        batch.append(item)
                    data = b"".join(batch)
                    self._held -= len(data)
                    return data
                if self._spool is not None and self._spool_read < self._spool_written:
                    self._spool.seek(self._spool_read)
                    data = self._spool.read(min(BLOCK * 16,
                                                self._spool_written - self._spool_read))
                    self._spool_read += len(data)
                    if self._spool_read == self._spool_written:  # drained: back to memory
                        self._spool.seek(0)
                        self._spool.truncate()
                        self._spool_read = self._spool_written = 0
                        self._spool.close()
                        self._spool = None
                    return data
                if self._closing:
                    return None
                self._cond.wait()

    def _run(self) -> None:
        while True:
            data = self._next()
            if data is None:
                return
            try:
                self._write(data)
            except (OSError, ValueError):
                with self._cond:
                    self._failed = True
                    self._items.clear()
                    self._cond.notify_all()
                return
            with self._cond:
                self._cond.notify_all()

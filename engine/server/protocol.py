"""HTTP/1.1 on uvicorn's httptools protocol, made as strict as a server behind a proxy must
be (RFC 9112), with the deadlines and connection lanes a public server needs.

llhttp (through httptools) already refuses Content-Length with Transfer-Encoding, a space
before a header's colon, obs-fold, bare LF in the head and in chunk framing, a second
Content-Length and a malformed chunk line (tests/test_server_http.py sends each). What it
allows and this protocol refuses: a request line that is not exactly `METHOD SP /path SP
HTTP/x.y CRLF` (llhttp takes extra spaces and HTTP/0.9 or 2.0), HTTP/1.1 without exactly
one Host, a transfer coding other than `chunked`, Transfer-Encoding in HTTP/1.0, an
Expect other than 100-continue, and heads beyond the size limits (llhttp has none).
uvicorn's h11 protocol is not used: it accepts CL+TE together, obs-fold and bare LF.

Every refused request gets an RFC 9457 problem answer with its request id and closes the
connection, so the bytes after it are never read as a new request (pipelined requests
already parsed are dropped with it); an unread body is drained for a moment first, so
the client reads the answer instead of a reset.

Deadlines: a connection's first byte within `timeout` (1 s on the reserve lane); a
request's head within `header_timeout` of its first byte (llhttp is fed as bytes come,
so trickling does not extend it). Lanes: `max_connections` connections are served; beyond
them `reserve` more may ask only `/health` and `/ready`, one request each; the rest get
503 at once (engine/server/app.py answers the reserve lane's other requests).
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cleanclaim.engine.server.common import (
    MAX_HEADER_LINE,
    MAX_HEADERS,
    MAX_REQUEST_LINE,
    PROBLEMS,
    ROUTES,
    Refused,
    ServerConfig,
    given_request_id,
    log_access,
    new_request_id,
    problem_body,
)

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") (/[^\x00-\x20\x7f]*) HTTP/([0-9])\.([0-9])\r\n")
_VERSIONED = re.compile(rb"\S+ \S+ HTTP/[0-9]\.[0-9]\r\n")
MAX_HEAD = MAX_REQUEST_LINE + MAX_HEADERS * MAX_HEADER_LINE
LINGER = 2.0  # seconds an unread body is drained after an early answer
RESERVE_DEADLINE = 1.0

# llhttp's reasons -> problem keys; anything else is malformed-request (in the head) or
# bad-chunked-body (in the body).
_PARSER_ERRORS = (
    ("can't be present with Content-Length", "conflicting-framing"),
    ("Request has invalid `Transfer-Encoding`", "unsupported-transfer-coding"),
    ("Invalid `Transfer-Encoding` header value", "bad-chunked-body"),
    ("Content-Length", "bad-content-length"),
    ("Invalid HTTP version", "version-not-supported"),
)

IDLE, HEAD, BODY = 0, 1, 2


class Lanes:
    """Connection slots shared by all connections of one server (one event loop)."""

    def __init__(self, served: int, reserve: int) -> None:
        self.free = served
        self.reserve_free = max(1, reserve)

    def take(self) -> str | None:
        if self.free > 0:
            self.free -= 1
            return "main"
        if self.reserve_free > 0:
            self.reserve_free -= 1
            return "reserve"
        return None

    def give(self, lane: str | None) -> None:
        if lane == "main":
            self.free += 1
        elif lane == "reserve":
            self.reserve_free += 1


@dataclass(slots=True)
class Exchange:
    """One request as the protocol saw it, for the app (`scope["cleanclaim"]`).

    broken: the problem key when the protocol refused the request after the app began
    (it then answered and logged it, or cut a started stream); gone: the connection is
    lost; abort: end the connection now (a started answer stays incomplete)."""

    request_id: str
    start: float
    lane: str
    broken: str | None = None
    gone: bool = False
    protocol: Any = field(default=None, repr=False)

    def abort(self) -> None:
        if self.protocol is not None:
            self.protocol.abort()


class _Transport:
    """The transport uvicorn's request cycle writes to: closing it while a request is
    still arriving half-closes and drains instead (see `StrictProtocol.close`)."""

    def __init__(self, real: asyncio.Transport, protocol: StrictProtocol) -> None:
        self._real = real
        self._protocol = protocol

    def write(self, data: bytes) -> None:
        self._real.write(data)

    def close(self) -> None:
        self._protocol.close()

    def is_closing(self) -> bool:
        return self._protocol.closing or self._real.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class StrictProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the rules above; `protocol_for` binds it to a
    server's configuration and lanes."""

    settings: ServerConfig
    lanes: Lanes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lane: str | None = None
        self.state = IDLE
        self.closing = False
        self.exchange: Exchange | None = None
        self._real: asyncio.Transport | None = None
        self._line: bytearray | None = None  # the request line, while it is checked
        self._head_bytes = 0
        self._header_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        self._eof = False

    # ---- connection ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._real = transport
        self.transport = _Transport(transport, self)  # type: ignore[assignment]
        self.lane = self.lanes.take()
        if self.lane is None:
            self._answer(
                "busy",
                "too many connections; retry shortly",
                new_request_id(),
                time.perf_counter(),
                "-",
                "-",
                {"Retry-After": "1"},
            )
            return
        idle = self.settings.timeout
        if self.lane == "reserve":
            idle = min(idle, RESERVE_DEADLINE)
        self.timeout_keep_alive_task = self.loop.call_later(idle, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lanes.give(self.lane)
        self.lane = None
        for timer in (self._head_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        if self.exchange is not None:
            self.exchange.gone = True
        if self.parser is None:  # pragma: no cover - lost twice
            return
        super().connection_lost(exc)

    def eof_received(self) -> bool | None:  # type: ignore[override]
        """The client sent everything (it may still read): keep the connection for the
        answer in progress, then close it."""
        self._eof = True
        if self.closing:
            self._force_close()
            return None
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
            if self.state != IDLE:  # the request was cut short
                self.cycle.disconnected = True
                self.cycle.message_event.set()
                return None
            return True
        return None

    def close(self) -> None:
        """Close the connection; when part of a request is unread, first half-close and
        read (and drop) what is still coming for up to LINGER seconds, so that the client
        reads the answer instead of a reset."""
        if self.closing:
            return
        self.closing = True
        real = self._real
        if real is None or real.is_closing():
            return
        if self.state == IDLE or self._eof:
            real.close()
            return
        self.flow.resume_reading()
        if real.can_write_eof():
            real.write_eof()
        self._linger_timer = self.loop.call_later(LINGER, self._force_close)

    def _force_close(self) -> None:
        if self._real is not None and not self._real.is_closing():
            self._real.close()

    def abort(self) -> None:
        """End the connection now, the answer under way left incomplete (a stream whose
        request broke): the client sees an incomplete response, never a faked end."""
        if self.cycle is not None:
            self.cycle.disconnected = True  # uvicorn writes nothing more
        self.close()

    # ---- bytes in -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return  # draining after an answer: nothing more is a request
        self._unset_keepalive_if_required()
        try:
            if self.state == IDLE or self._line is not None:  # a line may come in pieces
                self._check_request_line(data)
            elif self.state == HEAD:
                self._head_bytes += len(data)
            self.parser.feed_data(data)
        except Refused as exc:
            self._refuse(exc)
            return
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._refuse(
                cause
                if isinstance(cause, Refused)
                else Refused("malformed-request", "the request could not be read")
            )
            return
        except httptools.HttpParserUpgrade:
            return  # no upgrades: the body is never read; the body deadline ends it
        except httptools.HttpParserError as exc:
            self._refuse(self._parser_problem(str(exc)))
            return
        if self.state == HEAD and self._head_bytes > MAX_HEAD:
            self._refuse(Refused("headers-too-large", "the request head is too large"))

    def _check_request_line(self, data: bytes) -> None:
        """The request line of a request that starts a read, exactly as RFC 9112 section
        3 writes it (llhttp alone takes extra spaces and versions 0.9 and 2.0)."""
        if self._line is None:
            self._line = bytearray()
        self._line += data[: MAX_REQUEST_LINE + 2]
        line = self._line
        for _ in range(4):  # RFC 9112 2.2: empty lines before a request are ignored
            if line.startswith(b"\r\n"):
                del line[:2]
        end = line.find(b"\n")
        if end < 0:
            if len(line) > MAX_REQUEST_LINE:
                raise Refused("request-line-too-long", "the request line is too long")
            if not line:
                self._line = None
            return
        first = bytes(line[: end + 1])
        self._line = None
        self.state = HEAD
        self._head_bytes = len(data)
        if len(first) > MAX_REQUEST_LINE:
            raise Refused("request-line-too-long", "the request line is too long")
        match = _REQUEST_LINE.fullmatch(first)
        if match is None:
            if _VERSIONED.fullmatch(first) and not first.split(b" ", 2)[1].startswith(b"/"):
                raise Refused("malformed-request", "the request target must be a path")
            raise Refused(
                "malformed-request",
                "the request line is not `METHOD /path HTTP/1.1` ending in CRLF",
            )
        if (match.group(3), match.group(4)) not in ((b"1", b"1"), (b"1", b"0")):
            raise Refused("version-not-supported", "only HTTP/1.0 and HTTP/1.1")

    def _parser_problem(self, reason: str) -> Refused:
        for fragment, key in _PARSER_ERRORS:
            if fragment in reason:
                return Refused(key, f"the request is not valid HTTP/1.1: {reason}")
        key = "bad-chunked-body" if self.state == BODY else "malformed-request"
        return Refused(key, f"the request is not valid HTTP/1.1: {reason}")

    # ---- parser callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.state = HEAD
        self._header_count = 0
        start = time.perf_counter()
        self.exchange = Exchange(new_request_id(), start, self.lane or "main", protocol=self)
        self.scope["cleanclaim"] = self.exchange  # type: ignore[typeddict-unknown-key]
        limit = min(self.settings.header_timeout, self.settings.timeout)
        if self.lane == "reserve":
            limit = min(limit, RESERVE_DEADLINE)
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(limit, self._head_late)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_REQUEST_LINE:
            raise Refused("request-line-too-long", "the request line is too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        what = "trailer" if self.state == BODY else "header"
        if self._header_count > MAX_HEADERS:
            raise Refused("headers-too-large", f"more than {MAX_HEADERS} {what} lines")
        if len(name) + len(value) > MAX_HEADER_LINE:
            raise Refused("headers-too-large", f"a {what} line is too long")
        if self.state == BODY:
            return  # a trailer: read, checked, dropped
        if name.lower() == b"x-request-id" and self.exchange is not None:
            given = given_request_id(value)
            if given is not None:
                self.exchange.request_id = given
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        version = self.parser.get_http_version()
        if version not in ("1.0", "1.1"):
            raise Refused("version-not-supported", "only HTTP/1.0 and HTTP/1.1")
        headers = self.headers
        if version == "1.1" and sum(1 for n, _ in headers if n == b"host") != 1:
            raise Refused("missing-host", "HTTP/1.1 requests need one Host header")
        codings = [
            c.strip().lower()
            for n, v in headers
            if n == b"transfer-encoding"
            for c in v.split(b",")
        ]
        if codings:
            if version != "1.1":
                raise Refused("conflicting-framing", "Transfer-Encoding needs HTTP/1.1")
            if codings != [b"chunked"]:
                raise Refused(
                    "unsupported-transfer-coding", "only Transfer-Encoding: chunked is supported"
                )
        expect = [v for n, v in headers if n == b"expect"]
        if expect and (len(expect) > 1 or expect[0].strip().lower() != b"100-continue"):
            raise Refused("expectation-failed", "only Expect: 100-continue")
        self.state = BODY
        super().on_headers_complete()
        if self.lane == "reserve" and self.cycle is not None:
            self.cycle.keep_alive = False  # one probe per reserve connection

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.state = IDLE

    # ---- refusing --------------------------------------------------------------------

    def _head_late(self) -> None:
        self._head_timer = None
        if self.state == HEAD and not self.closing:
            self._refuse(
                Refused("request-timeout", "the request line and headers did not arrive in time")
            )

    def _refuse(self, exc: Refused) -> None:
        """Answer a refused request with its problem and close the connection. When the
        app already answers this request as a stream, the stream is cut instead."""
        if self.closing:
            return
        exchange = self.exchange
        cycle = self.cycle
        current = (
            cycle is not None
            and exchange is not None
            and not cycle.response_complete
            and cycle.scope.get("cleanclaim") is exchange
        )
        if current and exchange is not None and cycle is not None:
            exchange.broken = exc.key
            cycle.disconnected = True  # the app sees the client as gone
            cycle.message_event.set()
            if cycle.response_started:
                self.close()  # the app logs the stream as aborted:<key>
                return
        if self.state == IDLE:
            self.state = HEAD  # what follows is unread: drain it
        scope = self.scope if exchange is not None else None
        method = str(scope.get("method", "-")) if scope else "-"
        path = str(scope.get("path", "-")) if scope else "-"
        route = path if path in ROUTES else "-"
        self._answer(
            exc.key,
            exc.detail,
            exchange.request_id if exchange is not None else new_request_id(),
            exchange.start if exchange is not None else time.perf_counter(),
            method,
            route,
            exc.headers,
        )

    def _answer(
        self,
        key: str,
        detail: str,
        request_id: str,
        start: float,
        method: str,
        route: str,
        extra: dict[str, str],
    ) -> None:
        status = PROBLEMS[key][0]
        body = problem_body(key, detail, request_id)
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nServer: cleanclaim\r\n"
            f"Date: {email.utils.formatdate(usegmt=True)}\r\n"
            "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
            f"X-Request-Id: {request_id}\r\nContent-Type: application/problem+json\r\n"
        ]
        lines.extend(f"{name}: {value}\r\n" for name, value in extra.items())
        lines.append(f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        if self._real is not None and not self._real.is_closing():
            self._real.write("".join(lines).encode("latin-1") + body)
        log_access(
            request_id, method, route, status, (time.perf_counter() - start) * 1000, 0, len(body)
        )
        if self.state == IDLE:
            self.state = HEAD
        self.close()


def protocol_for(config: ServerConfig, lanes: Lanes) -> type[StrictProtocol]:
    """`StrictProtocol` bound to one server (uvicorn builds one per connection)."""
    return type("BoundStrictProtocol", (StrictProtocol,), {"settings": config, "lanes": lanes})

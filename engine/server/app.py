"""The ASGI app of `cleanclaim serve`: routes, the bearer token, the endpoints.

It runs on uvicorn with `engine/server/protocol.py`'s strict protocol, which puts an
`Exchange` in `scope["cleanclaim"]` (request id, lane, and whether the protocol refused
the request itself). One claim (`/v1/check`) is decided on the event loop: a check takes
well under a millisecond and a thread hop would cost more. A batch is decided in a
thread of its own that pulls the body from the loop as it needs it and hands decisions
back through `BatchOutput`, so the loop stays free for other requests and probes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from cleanclaim.engine.decision import ndjson_bytes
from cleanclaim.engine.engine import Engine
from cleanclaim.engine.inputs import RawClaim, ReadProblem
from cleanclaim.engine.server.batch import BATCH_OUTPUT_BUFFER, BatchOutput
from cleanclaim.engine.server.common import (
    ERROR_LOG,
    GZIP_MIN,
    PROBES,
    PROTECTED,
    ROUTES,
    ClientGone,
    Refused,
    ServerConfig,
    accepts_gzip,
    decide,
    gzip_bytes,
    json_bytes,
    log_access,
    new_request_id,
    plugins_of,
    problem_body,
    raw_claim,
)
from cleanclaim.engine.server.protocol import Exchange

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_HEALTH = json_bytes({"status": "ok"})


class _Request:
    """Per-request state: what the access log says of it."""

    __slots__ = ("bytes_in", "bytes_out", "close", "exchange", "gzip", "method", "route", "status")

    def __init__(self, exchange: Exchange, method: str) -> None:
        self.exchange = exchange
        self.method = method
        self.route = "-"
        self.status: int | str = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.gzip = False
        self.close = False


def _header(scope: Scope, name: bytes) -> list[bytes]:
    return [v for n, v in scope["headers"] if n == name]


class ClaimApp:
    """The HTTP API over one `Engine` (docs/api.md)."""

    def __init__(self, engine: Engine, config: ServerConfig, url: str) -> None:
        self.engine = engine
        self.config = config
        self.token = config.token.encode() if config.token else None
        self.packs_body = json_bytes(
            {
                "packs": [
                    {"id": pack_id, "digest": digest}
                    for pack_id, digest in sorted(engine.packs.items())
                ],
                "plugins": (config.plugins or plugins_of)(engine),
            }
        )
        from cleanclaim.engine.openapi import openapi_document

        self.openapi_body = json_bytes(openapi_document(config.max_body, url, sorted(engine.packs)))

    def roll_today(self) -> None:
        if self.config.follow_today:
            today = dt.date.today()
            if self.engine.today != today:
                self.engine.today = today  # one attribute store: readers see either date

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan, no websockets
        exchange = scope.get("cleanclaim")
        if not isinstance(exchange, Exchange):  # not behind StrictProtocol (tests)
            exchange = Exchange(new_request_id(), time.perf_counter(), "main")
        request = _Request(exchange, scope["method"])
        try:
            await self._handle(scope, receive, send, request)
        except Refused as exc:
            if exchange.broken is None and not exchange.gone:
                await self._problem(send, request, exc)
        except ClientGone:
            pass
        except Exception as exc:  # a bug here: named by type only (no claim values)
            ERROR_LOG.error("request failed: %s", type(exc).__name__)
            request.status = 500  # uvicorn answers 500 for an app that did not answer
        finally:
            if exchange.broken is None or isinstance(request.status, str):
                if exchange.broken is not None and request.status == "aborted:client-gone":
                    request.status = f"aborted:{exchange.broken}"
                log_access(
                    exchange.request_id,
                    request.method,
                    request.route,
                    request.status,
                    (time.perf_counter() - exchange.start) * 1000,
                    request.bytes_in,
                    request.bytes_out,
                )

    # ---- answers ---------------------------------------------------------------------

    async def _send(
        self,
        send: Send,
        request: _Request,
        status: int,
        body: bytes,
        content_type: bytes = b"application/json",
        extra: dict[str, str] | None = None,
    ) -> None:
        request.status = status
        headers = [
            (b"content-type", content_type),
            *self._common(request),
            *((k.lower().encode(), v.encode()) for k, v in (extra or {}).items()),
        ]
        if request.gzip and len(body) >= GZIP_MIN and status == 200:
            body = gzip_bytes(body)
            headers.append((b"content-encoding", b"gzip"))
        if status == 200:
            headers.append((b"vary", b"Accept-Encoding"))
        headers.append((b"content-length", str(len(body)).encode()))
        if request.close:
            headers.append((b"connection", b"close"))
        head = request.method == "HEAD"
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body})
        if not head:
            request.bytes_out += len(body)

    @staticmethod
    def _common(request: _Request) -> list[tuple[bytes, bytes]]:
        return [
            (b"server", b"cleanclaim"),
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
            (b"x-request-id", request.exchange.request_id.encode()),
        ]

    async def _problem(self, send: Send, request: _Request, exc: Refused) -> None:
        """An error answer; it always closes the connection (RFC 9112 9.6: nothing after
        a refused request is read as a new request)."""
        request.close = True
        body = problem_body(exc.key, exc.detail, request.exchange.request_id)
        from cleanclaim.engine.server.common import PROBLEMS

        await self._send(
            send, request, PROBLEMS[exc.key][0], body, b"application/problem+json", exc.headers
        )

    # ---- routing ---------------------------------------------------------------------

    def _precheck(self, scope: Scope, request: _Request) -> int | None:
        """Route, lane, method, auth and size; raises `Refused`. Returns the announced
        Content-Length (None when chunked or absent)."""
        lengths = _header(scope, b"content-length")
        length = int(lengths[0]) if lengths else None  # llhttp checked: one number
        path = scope["path"]
        methods = ROUTES.get(path)
        if methods is None:
            raise Refused("not-found", "no such endpoint; see /openapi.json")
        request.route = path
        if request.exchange.lane == "reserve" and path not in PROBES:
            raise Refused("busy", "too many connections; retry shortly", {"Retry-After": "1"})
        if request.method not in methods:
            raise Refused(
                "method-not-allowed",
                f"{path} allows {', '.join(methods)}",
                {"Allow": ", ".join(methods)},
            )
        if self.token is not None and path in PROTECTED:
            given = b"".join(_header(scope, b"authorization")[:1]).decode("latin-1")
            scheme, _, credential = given.partition(" ")
            ok = hmac.compare_digest(credential.strip().encode("latin-1"), self.token)
            if scheme.lower() != "bearer" or not ok:
                raise Refused(
                    "unauthorized",
                    "a valid bearer token is required",
                    {"WWW-Authenticate": 'Bearer realm="cleanclaim"'},
                )
        if path == "/v1/check/batch" and scope.get("http_version") == "1.0":
            # The answer streams while the body arrives: chunked, which HTTP/1.0 lacks.
            raise Refused(
                "version-not-supported",
                "/v1/check/batch needs HTTP/1.1 (its answer is streamed, chunked)",
            )
        if (
            path in ("/v1/check", "/v1/denials")
            and length is not None
            and length > self.config.max_body
        ):
            raise Refused(
                "body-too-large", f"the body is {length} bytes; the limit is {self.config.max_body}"
            )
        return length

    async def _handle(self, scope: Scope, receive: Receive, send: Send, request: _Request) -> None:
        self._precheck(scope, request)
        request.gzip = accepts_gzip(b",".join(_header(scope, b"accept-encoding")).decode("latin-1"))
        route = request.route
        if route == "/v1/check":
            await self._check(receive, send, request)
        elif route == "/v1/check/batch":
            await self._batch(scope, receive, send, request)
        elif route == "/v1/denials":
            await self._denials(scope, receive, send, request)
        elif route == "/v1/packs":
            await self._send(send, request, 200, self.packs_body)
        elif route == "/health":
            await self._send(send, request, 200, _HEALTH)
        elif route == "/ready":
            packs = len(self.engine.packs)
            if not packs:
                raise Refused("not-ready", "no policy pack is loaded")
            await self._send(
                send,
                request,
                200,
                json_bytes(
                    {"status": "ready", "packs": packs, "plugins": len(plugins_of(self.engine))}
                ),
            )
        else:
            await self._send(send, request, 200, self.openapi_body)

    # ---- bodies ----------------------------------------------------------------------

    @staticmethod
    async def _receive(receive: Receive, request: _Request, deadline: float) -> tuple[bytes, bool]:
        """The next piece of the body before `deadline` (loop time) and whether more
        follows; raises `Refused("request-timeout")` or `ClientGone`."""
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise Refused("request-timeout", "the body took too long to arrive")
        try:
            async with asyncio.timeout(left):
                message = await receive()
        except TimeoutError:
            raise Refused("request-timeout", "the body took too long to arrive") from None
        if message["type"] == "http.disconnect":
            raise ClientGone
        body: bytes = message.get("body", b"")
        request.bytes_in += len(body)
        return body, bool(message.get("more_body", False))

    async def _whole_body(self, receive: Receive, request: _Request) -> bytes:
        """The whole body, within `max_body` bytes and `timeout` seconds."""
        limit = self.config.max_body
        deadline = asyncio.get_running_loop().time() + self.config.timeout
        parts: list[bytes] = []
        size = 0
        more = True
        while more:
            body, more = await self._receive(receive, request, deadline)
            size += len(body)
            if size > limit:
                raise Refused("body-too-large", f"the body is over the limit of {limit} bytes")
            parts.append(body)
        return b"".join(parts)

    async def _check(self, receive: Receive, send: Send, request: _Request) -> None:
        body = await self._whole_body(receive, request)
        self.roll_today()
        decision = decide(self.engine, body, None, "claim")
        decision.position = None
        await self._send(send, request, 200, ndjson_bytes(decision))

    async def _denials(self, scope: Scope, receive: Receive, send: Send, request: _Request) -> None:
        """An 835 (or JSON with the 835 and our decisions) in, the denial report out
        (engine/denials/upload.py); built in a thread: a large remittance takes seconds."""
        from cleanclaim.engine.denials.upload import report_from_upload

        body = await self._whole_body(receive, request)
        kind = b"".join(_header(scope, b"content-type")[:1]).decode("latin-1")
        report = await asyncio.to_thread(report_from_upload, body, kind)
        await self._send(send, request, 200, json_bytes(report))

    async def _batch(self, scope: Scope, receive: Receive, send: Send, request: _Request) -> None:
        """NDJSON in, NDJSON out: every non-blank line gets one decision, in order - the
        decisions `cleanclaim check` gives for the same lines (`Engine.check_many`:
        with packs that count history, every claim of the batch is read before the first
        decision, as `check` does; otherwise each block's decisions go out before the
        next block is read). A line over the size limit is rejected (and skipped)
        without ending the batch; broken framing or a silent client ends the response
        without its final chunk, which clients report as an incomplete response, and the
        access log says `aborted:<why>` instead of 200.
        """
        loop = asyncio.get_running_loop()
        config = self.config
        headers = [(b"content-type", b"application/x-ndjson"), *self._common(request)]
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31) if request.gzip else None
        if compressor is not None:
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"vary", b"Accept-Encoding"))
        # uvicorn frames the answer (chunked); the request is read while it goes out.
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        request.status = "aborted:unknown"
        start = loop.time()
        finished = False
        progress = [time.monotonic()]  # the last time bytes came in or went out

        async def next_block() -> bytes | None:
            nonlocal finished
            if finished:
                return None
            deadline = start + config.timeout + request.bytes_in / max(1, config.min_rate)
            body, more = await self._receive(receive, request, deadline)
            progress[0] = time.monotonic()
            finished = not more
            return body

        def pull() -> bytes | None:
            return asyncio.run_coroutine_threadsafe(next_block(), loop).result()

        def write(data: bytes) -> None:
            if request.exchange.gone:
                raise ConnectionError("the client is gone")
            future = asyncio.run_coroutine_threadsafe(self._body(send, data), loop)
            # A client may send its whole batch before it reads: waiting is fine while
            # its request still arrives; `timeout` without progress either way is not.
            while True:
                try:
                    future.result(min(1.0, config.timeout))
                    break
                except TimeoutError:
                    if request.exchange.gone or time.monotonic() - progress[0] > config.timeout:
                        future.cancel()
                        raise
            progress[0] = time.monotonic()
            request.bytes_out += len(data)

        done: asyncio.Future[str] = loop.create_future()

        def work() -> None:
            status = self._decide_batch(pull, write, compressor)
            loop.call_soon_threadsafe(done.set_result, status)

        threading.Thread(target=work, name="cleanclaim-batch", daemon=True).start()
        status = await done
        if status == "complete":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            request.status = 200
            return
        request.status = status
        request.exchange.abort()

    @staticmethod
    async def _body(send: Send, data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})

    def _decide_batch(
        self, pull: Callable[[], bytes | None], write: Callable[[bytes], None], compressor: Any
    ) -> str:
        """Runs in the batch's thread: decide every line, send the decisions; returns
        "complete" or the `aborted:<why>` status."""
        engine = self.engine
        limit = self.config.max_body
        output = BatchOutput(write, BATCH_OUTPUT_BUFFER, self.config.timeout)
        out: list[bytes] = []

        def send(data: bytes, final: bool = False) -> None:
            if compressor is not None:
                data = compressor.compress(data) + compressor.flush(
                    zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH
                )
            if data:
                output.put(data)

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
                problem = ReadProblem(
                    f"line {number + 1}", f"the line is over the limit of {limit} bytes"
                )
                return RawClaim(position, None, (problem,))

            for block in iter(pull, None):
                self.roll_today()
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

        status = "aborted:unknown"
        complete = False
        try:
            for decision in engine.check_many(claims()):
                out.append(ndjson_bytes(decision) + b"\n")
            flush()
            if compressor is not None:
                send(b"", final=True)
            complete = True
        except Refused as exc:
            status = f"aborted:{exc.key}"
        except ClientGone:
            status = "aborted:client-gone"
        except (TimeoutError, ConnectionError):
            status = "aborted:client-not-reading"
        except Exception as exc:  # an engine bug: the stream is cut, never faked complete
            ERROR_LOG.error("batch failed: %s", type(exc).__name__)
            status = "aborted:internal-error"
        finally:
            sent = output.close()
        if complete:
            return "complete" if sent else "aborted:client-gone"
        return status

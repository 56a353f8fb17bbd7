"""What every part of the server shares: its configuration, the problem types, the
token rule for listening beyond loopback, and one claim's decision."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
MAX_REQUEST_LINE = 65536
MAX_HEADER_LINE = 8192
MAX_HEADERS = 100
GZIP_MIN = 4096  # bytes: smaller answers go out as they are
PROBLEM_BASE = "urn:cleanclaim:problem:"

# Route -> methods allowed. HEAD is answered like GET, without a body.
ROUTES: dict[str, tuple[str, ...]] = {
    "/v1/check": ("POST",),
    "/v1/check/batch": ("POST",),
    "/v1/packs": ("GET", "HEAD"),
    "/v1/denials": ("POST",),
    "/health": ("GET", "HEAD"),
    "/ready": ("GET", "HEAD"),
    "/openapi.json": ("GET", "HEAD"),
}
# Routes that need the bearer token when one is configured; probes and the public
# contract stay open.
PROTECTED = frozenset({"/v1/check", "/v1/check/batch", "/v1/packs", "/v1/denials"})
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

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


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
    # `run` only: server processes forked after the engine is built, sharing the port
    # (one event loop, so one core, each); limits such as max_connections are per process.
    workers: int = 1
    # What `GET /v1/packs` lists as plugins; default: those the engine loaded.
    plugins: Callable[[Engine], list[dict[str, Any]]] | None = None


class BindRefused(Exception):
    """Listening beyond loopback without a (long enough) token."""


class Refused(Exception):
    """A request that gets a problem answer (which closes the connection)."""

    def __init__(self, key: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.key = key
        self.detail = detail
        self.headers = headers or {}


class ClientGone(Exception):
    """The client closed the connection (or its framing broke) mid-request."""


def die_with_parent() -> None:
    """In a forked or spawned child: on Linux, get SIGTERM when the parent dies, so that
    no server process outlives the one that started it."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def plugins_of(engine: Engine) -> list[dict[str, Any]]:
    """The plugins an engine loaded (name, version, distribution, hooks); [] for none."""
    host = getattr(engine, "plugins", None)
    return [
        {
            "name": str(getattr(info, "name", "")),
            "version": str(getattr(info, "version", "")),
            "distribution": str(getattr(info, "distribution", "")),
            "hooks": sorted(str(h) for h in getattr(info, "hooks", ())),
        }
        for info in getattr(host, "plugins", ())
    ]


def bind_problem(host: str, token: str | None) -> str | None:
    """Why the server must not listen on `host`, or None when it may."""
    if host in LOOPBACK_HOSTS:
        return None
    if not token:
        return (
            f"refusing to listen on {host!r} without a token: only 127.0.0.1, ::1 and "
            "localhost may be served without authentication. Set --token or the "
            "CLEANCLAIM_TOKEN environment variable."
        )
    if len(token) < MIN_TOKEN_LENGTH:
        return (
            f"refusing to listen on {host!r} with a token of {len(token)} characters: "
            f"beyond loopback the token must have at least {MIN_TOKEN_LENGTH} "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)."
        )
    return None


def json_bytes(value: Any) -> bytes:
    """JSON as `cleanclaim check` writes it (the same bytes for the same decision)."""
    return json.dumps(value, separators=(",", ":")).encode()


def problem_body(key: str, detail: str, request_id: str | None = None) -> bytes:
    """An RFC 9457 problem document (`application/problem+json`)."""
    status, title = PROBLEMS[key]
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + key,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request_id is not None:
        body["request_id"] = request_id
    return json_bytes(body)


def new_request_id() -> str:
    return os.urandom(8).hex()


def given_request_id(value: bytes | None) -> str | None:
    """The client's X-Request-Id when it is a safe token (echoed and logged), else None."""
    if value is None:
        return None
    text = value.decode("latin-1").strip()
    return text if _REQUEST_ID.fullmatch(text) else None


def log_access(
    request_id: str,
    method: str,
    route: str,
    status: int | str,
    elapsed_ms: float,
    bytes_in: int,
    bytes_out: int,
) -> None:
    """The one log line of a request. Status "-": the client went away or fell silent
    before an answer was sent; "aborted:<why>": a streamed answer that started 200 and
    was cut short. Never claim content, query strings, client paths or addresses."""
    shown = (
        method if method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS") else "-"
    )
    ACCESS_LOG.info(
        "%s %s %s %s %.1fms in=%d out=%d",
        request_id,
        shown,
        route,
        status or "-",
        elapsed_ms,
        bytes_in,
        bytes_out,
    )


def accepts_gzip(value: str) -> bool:
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


def gzip_bytes(body: bytes) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()


def _internal_failure(position: int | None, exc: BaseException) -> Decision:
    ERROR_LOG.error("engine failed on a claim: %s", type(exc).__name__)
    finding = Finding(
        "engine/internal-error",
        "submission",
        "review",
        None,
        "CO",
        "16",
        [],
        "submission",
        "billing",
        f"the engine failed on this claim ({type(exc).__name__}); a person must check it",
        None,
        None,
    )
    return Decision(None, "review", [finding], {}, position)


def raw_claim(text: bytes, position: int, number: int) -> RawClaim:
    """One claim's JSON bytes as `cleanclaim check` reads an NDJSON line (the same
    `ClaimLine.to_raw`), so the decisions match byte for byte (apart from `origin`: a
    request body is no file)."""
    try:
        return ClaimLine(position, number, text).to_raw()
    except RecursionError:
        return RawClaim(
            position, None, (ReadProblem(f"line {number}", "not valid JSON: nested too deeply"),)
        )


def decide(engine: Engine, body: bytes, position: int | None, where: str) -> Decision:
    """One decision for one claim's JSON bytes; never raises."""
    try:
        raw = raw_claim(body, position or 0, 1)
        if raw.problems:  # the message names the claim, not "line 1"
            raw = RawClaim(
                raw.position, None, tuple(ReadProblem(where, p.message) for p in raw.problems)
            )
        return engine.check_raw(raw)
    except Exception as exc:  # an engine bug must not cost the client its answer
        return _internal_failure(position, exc)

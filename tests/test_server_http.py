"""The HTTP server as a production integrator meets it (issues 17.3, 18.10-18.13, 19.10):
RFC 9112 framing (no request smuggling), slow clients, problem+json, request ids, gzip,
probes, byte-capped answer memos and token length. Loopback only; every loop is bounded."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cleanclaim.engine import runtime
from cleanclaim.engine.server import (
    MIN_TOKEN_LENGTH,
    PROBLEM_BASE,
    BindRefused,
    ServerConfig,
    bind_problem,
    make_server,
)
from tests.test_server import DENIED, Records, clean_claim, running


@pytest.fixture(scope="module")
def srv() -> Iterator[tuple[str, int, Records]]:
    with running(max_body=64 * 1024, timeout=2.0, header_timeout=1.0) as value:
        yield value


def exchange(srv: Any, data: bytes, wait: float = 3.0) -> bytes:
    """Send raw bytes, read until the server closes (or `wait` passes)."""
    host, port, _ = srv
    with socket.create_connection((host, port), timeout=wait) as sock:
        sock.sendall(data)
        parts: list[bytes] = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
    raise AssertionError(f"the server kept the connection open: {b''.join(parts)[:300]!r}")


def responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The HTTP responses in `raw` (Content-Length framed)."""
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        length = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:length]))
        raw = rest[length:]
    return out


def one_problem(raw: bytes, status: int, key: str) -> dict[str, str]:
    [(got, headers, body)] = responses(raw)  # exactly one answer: nothing smuggled
    assert got == status, raw[:300]
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    doc = json.loads(body)
    assert doc["type"] == PROBLEM_BASE + key and doc["status"] == status
    assert doc["request_id"] == headers["x-request-id"]
    return headers


CLAIM = json.dumps(clean_claim("SM-1")).encode()
SMUGGLED = b"GET /v1/packs HTTP/1.1\r\nHost: x\r\n\r\n"


# ---- framing (RFC 9112) ------------------------------------------------------------------


def test_content_length_with_transfer_encoding_is_refused_and_closes(srv: Any) -> None:
    raw = exchange(
        srv,
        b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    )
    one_problem(raw, 400, "conflicting-framing")


@pytest.mark.parametrize(
    ("header", "status", "key"),
    [
        (b"Transfer-Encoding: gzip\r\n", 501, "unsupported-transfer-coding"),
        (b"Transfer-Encoding: gzip, chunked\r\n", 501, "unsupported-transfer-coding"),
        (b"Transfer-Encoding: chunked, gzip\r\n", 400, "bad-chunked-body"),
        (b"Transfer-Encoding : chunked\r\n", 400, "malformed-request"),  # space before colon
        (b"Transfer-Encoding:\tchunked\r\n Content-Length: 3\r\n", 400, "malformed-request"),
        (b"Content-Length: 3\r\nContent-Length: 4\r\n", 400, "bad-content-length"),
        (b"Content-Length: -1\r\n", 400, "bad-content-length"),
        (b"Content-Length: 0x10\r\n", 400, "bad-content-length"),
        (b"X-Note: a\nContent-Length: 2\r\n", 400, "malformed-request"),  # bare LF
        (b"Content-Length: 1\r\n\x00Bad: 1\r\n", 400, "malformed-request"),
    ],
)
def test_bad_framing_is_refused_and_the_rest_is_never_run(
    srv: Any, header: bytes, status: int, key: str
) -> None:
    raw = exchange(
        srv, b"POST /v1/check HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n" + b"0\r\n\r\n" + SMUGGLED
    )
    one_problem(raw, status, key)


@pytest.mark.parametrize(
    "body",
    [
        b'5\n{"a":\r\n0\r\n\r\n',  # bare LF after the size
        b'5\r\n{"a":\n0\r\n\r\n',  # bare LF after the data
        b'5\r\n{"a":XX0\r\n\r\n',  # no CRLF after the data
        b'5 \r\n{"a":\r\n0\r\n\r\n',  # whitespace after the size
        # Whitespace before an extension: RFC 9112 7.1.1 allows it (BWS), llhttp refuses it,
        # and so does this server since it moved to uvicorn+httptools (docs/api.md "Stack").
        b'5 ;bare\r\n{"a":\r\n0\r\n\r\n',
        b'+5\r\n{"a":\r\n0\r\n\r\n',
        b'5;\r\n{"a":\r\n0\r\n\r\n',  # an empty extension
        b'5;a="open\r\n{"a":\r\n0\r\n\r\n',  # an unterminated quoted extension
        b"0\r\nBad Trailer: 1\r\n\r\n",  # a malformed trailer
        b"0\r\n\r",  # a cut final CRLF (then the deadline)
    ],
)
def test_chunked_framing_is_strict(srv: Any, body: bytes) -> None:
    raw = exchange(
        srv,
        b"POST /v1/check HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
        b"chunked\r\n\r\n" + body + SMUGGLED,
    )
    [(status, headers, _)] = responses(raw)
    assert status in (400, 408) and headers["connection"] == "close"


def test_chunk_extensions_and_trailers_are_understood(srv: Any) -> None:
    half = len(CLAIM) // 2
    body = (
        b'%x;name=value;q="a \\"quoted\\" ext"\r\n%b\r\n%x;bare\r\n%b\r\n'
        b"0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
        % (half, CLAIM[:half], len(CLAIM) - half, CLAIM[half:])
    )
    host, port, _ = srv
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/check HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"\r\n" + body + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        data = b""
        for _ in range(50):  # bounded: both answers on the kept-alive connection
            data += sock.recv(65536)
            if data.count(b"HTTP/1.1 200 ") == 2 and data.endswith(b"}"):
                break
    first, second = responses(data)
    assert json.loads(first[2])["claim_id"] == "SM-1" and second[0] == 200


def test_an_error_closes_the_connection_even_when_the_body_was_read(srv: Any) -> None:
    raw = exchange(srv, b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n" + SMUGGLED)
    one_problem(raw, 404, "not-found")


@pytest.mark.parametrize(
    "line",
    [
        b"hello\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"GET /health\r\n\r\n",
        b"GET /health HTTP/1.1\n\n",
        b"GET  /health HTTP/1.1\r\n\r\n",
        b"GET health HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
def test_garbage_request_lines_get_a_status_line_and_a_problem(srv: Any, line: bytes) -> None:
    raw = exchange(srv, line)
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    one_problem(raw, 400, "malformed-request")


def test_other_versions_and_missing_host(srv: Any) -> None:
    one_problem(exchange(srv, b"GET /health HTTP/2.0\r\n\r\n"), 505, "version-not-supported")
    one_problem(exchange(srv, b"GET /health HTTP/1.1\r\n\r\n"), 400, "missing-host")
    raw = exchange(srv, b"GET /health HTTP/1.0\r\n\r\n")  # 1.0: no Host needed, then closed
    assert responses(raw)[0][0] == 200


def test_obs_fold_is_refused(srv: Any) -> None:
    raw = exchange(srv, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n  b\r\n\r\n")
    one_problem(raw, 400, "malformed-request")


# ---- slow clients ------------------------------------------------------------------------


def test_trickling_clients_never_starve_health() -> None:
    with running(max_connections=4, reserve=4, timeout=5.0, header_timeout=1.0) as server:
        host, port, _ = server
        stop = threading.Event()
        sockets = [socket.create_connection((host, port), timeout=5) for _ in range(6)]

        def trickle(sock: socket.socket, text: bytes) -> None:
            for byte in text:  # bounded: one request's worth of bytes
                if stop.is_set():
                    return
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    return
                stop.wait(0.05)

        slow = b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n" + b"x" * 200
        threads = [threading.Thread(target=trickle, args=(s, slow), daemon=True) for s in sockets]
        for thread in threads:
            thread.start()
        try:
            worst = 0.0
            for _ in range(15):  # ~3 s of probing while six sockets trickle
                start = time.monotonic()
                connection = http.client.HTTPConnection(host, port, timeout=5)
                connection.request("GET", "/health")
                response = connection.getresponse()
                response.read()
                connection.close()
                worst = max(worst, time.monotonic() - start)
                assert response.status == 200
                time.sleep(0.2)
            assert worst < 2.0  # the tricklers hold their slots for 1 s each, or more
            # the tricklers were dropped at their header deadline (408, then closed)
            for sock in sockets:
                sock.settimeout(3)
                assert sock.recv(4096).startswith(b"HTTP/1.1 408 ")
        finally:
            stop.set()
            for sock in sockets:
                sock.close()


def test_a_body_trickled_past_its_deadline_is_408(srv: Any) -> None:
    host, port, _ = srv
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        start = time.monotonic()
        reply = b""
        for _ in range(40):  # a byte every 0.1 s: each read is quick, the total is not
            try:
                sock.sendall(b" ")
            except OSError:
                break
            time.sleep(0.1)
            sock.setblocking(False)
            try:
                reply += sock.recv(4096)
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
            if reply:
                break
        assert reply.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - start < 3.5  # the 2 s deadline, not 100 x the timeout


# ---- conventions -------------------------------------------------------------------------


def test_request_ids_are_echoed_or_made_and_logged(srv: Any) -> None:
    host, port, records = srv
    connection = http.client.HTTPConnection(host, port, timeout=5)
    connection.request("GET", "/health", headers={"X-Request-Id": "abc-123.x"})
    response = connection.getresponse()
    response.read()
    assert response.getheader("X-Request-Id") == "abc-123.x"
    connection.request("GET", "/health", headers={"X-Request-Id": "no spaces allowed"})
    response = connection.getresponse()
    response.read()
    made = response.getheader("X-Request-Id")
    assert made is not None and len(made) == 16 and made != "no spaces allowed"
    connection.close()
    time.sleep(0.05)
    assert any(line.startswith("abc-123.x GET /health 200 ") for line in records.lines)
    assert any(line.startswith(made + " GET /health 200 ") for line in records.lines)


def test_probes(srv: Any) -> None:
    host, port, _ = srv
    connection = http.client.HTTPConnection(host, port, timeout=5)
    connection.request("GET", "/health")
    assert json.loads(connection.getresponse().read()) == {"status": "ok"}
    connection.request("GET", "/ready")
    ready = json.loads(connection.getresponse().read())
    assert ready["status"] == "ready" and ready["packs"] >= 2
    connection.close()


def test_not_ready_without_packs(tmp_path: Any) -> None:
    from cleanclaim.engine import Engine

    # A policy folder without a pack is an error now (E506, issue 13.12): an engine whose
    # packs are gone stands for a server with nothing to check against.
    engine = Engine(plugins=())
    engine.programs.clear()
    with running(engine) as server:
        raw = exchange(server, b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
    one_problem(raw, 503, "not-ready")


def test_large_answers_are_gzipped_when_asked(srv: Any) -> None:
    host, port, _ = srv
    connection = http.client.HTTPConnection(host, port, timeout=5)
    connection.request("GET", "/openapi.json", headers={"Accept-Encoding": "gzip"})
    response = connection.getresponse()
    body = response.read()
    assert response.getheader("Content-Encoding") == "gzip"
    assert json.loads(gzip.decompress(body))["openapi"].startswith("3.1")
    connection.request("GET", "/openapi.json", headers={"Accept-Encoding": "gzip;q=0"})
    response = connection.getresponse()
    assert response.getheader("Content-Encoding") is None and json.loads(response.read())
    lines = b"".join(json.dumps(clean_claim(f"Z-{n}")).encode() + b"\n" for n in range(30))
    connection.request("POST", "/v1/check/batch", lines, {"Accept-Encoding": "gzip"})
    response = connection.getresponse()
    assert response.getheader("Content-Encoding") == "gzip"
    decisions = gzip.decompress(response.read()).splitlines()
    assert [json.loads(d)["position"] for d in decisions] == list(range(30))
    connection.close()


# ---- big batches: succeed or fail honestly ------------------------------------------------


def test_a_client_that_sends_everything_before_reading_gets_every_decision() -> None:
    from tests.test_server import plain_engine

    with running(plain_engine(), timeout=5.0) as server:
        host, port, records = server

        # Each claim its own id (a claim id twice in one batch rejects the second); all
        # lines of one length.
        def line(n: int) -> bytes:
            return json.dumps({**clean_claim(f"B-{n:06d}"), "payer": "plain"}).encode() + b"\n"

        count = 100_000
        with socket.create_connection((host, port), timeout=60) as sock:
            sock.sendall(
                b"POST /v1/check/batch HTTP/1.1\r\nHost: x\r\nContent-Length: "
                + str(len(line(0)) * count).encode()
                + b"\r\n\r\n"
            )
            for start in range(0, count, 1000):  # bounded: the whole body before reading
                sock.sendall(b"".join(line(n) for n in range(start, start + 1000)))
            sock.shutdown(socket.SHUT_WR)
            data = bytearray()
            for _ in range(100_000):  # bounded
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        assert data.endswith(b"0\r\n\r\n")
        assert data.count(b'"status":"clean"') == count
        time.sleep(0.1)
    assert any(" /v1/check/batch 200 " in line for line in records.lines)


def test_a_cut_stream_is_logged_as_aborted_not_200() -> None:
    from tests.test_server import plain_engine

    with running(plain_engine(), timeout=0.5) as server:
        host, port, records = server
        line = json.dumps({**clean_claim("B"), "payer": "plain"}).encode() + b"\n"
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/check/batch HTTP/1.1\r\nHost: x\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%b\r\n" % (len(line), line)
            )
            data = b""
            for _ in range(100):  # bounded: until the server gives up on the body
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        assert data.startswith(b"HTTP/1.1 200 ") and not data.endswith(b"0\r\n\r\n")
        time.sleep(0.1)
    [logged] = [ln for ln in records.lines if " /v1/check/batch " in ln]
    assert " aborted:request-timeout " in logged and " 200 " not in logged


# ---- memory and tokens (19.10) -----------------------------------------------------------


def test_big_requests_do_not_fill_the_answer_memos() -> None:
    before = runtime.cache_bytes()
    with running(max_body=2_000_000) as server:
        host, port, _ = server
        connection = http.client.HTTPConnection(host, port, timeout=30)
        for n in range(40):
            big = f"{n}".rjust(300_000, "9")
            claim = {
                **DENIED,
                "claim_id": f"BIG-{n}",
                "diagnoses": [big, "R07.9"],
                "billing_provider": {"npi": big},
                "lines": [{**DENIED["lines"][0], "code": big}],
            }
            connection.request("POST", "/v1/check", json.dumps(claim).encode())
            assert connection.getresponse().read()
        connection.close()
    assert runtime.cache_bytes() - before < 1_000_000
    for memo in (runtime._billable, runtime._procedure, runtime._npi):
        assert all(len(key) <= runtime.LONGEST_KEY for key in memo)


def test_the_memo_budget_is_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "CACHE_BYTES", 10_000)
    for n in range(1000):
        runtime.procedure_code(f"{n:05d}")
    assert runtime._held[id(runtime._procedure)] <= 10_000
    assert len(runtime._procedure) < 100


def test_a_short_token_is_refused_beyond_loopback() -> None:
    assert bind_problem("127.0.0.1", None) is None
    assert bind_problem("0.0.0.0", "x" * MIN_TOKEN_LENGTH) is None
    problem = bind_problem("0.0.0.0", "x")
    assert problem is not None and f"at least {MIN_TOKEN_LENGTH}" in problem
    from tests.policy_cases_plugin import shared_engine

    with pytest.raises(BindRefused, match="token of 15 characters"):
        make_server(shared_engine(), ServerConfig(host="0.0.0.0", port=0, token="y" * 15))


# ---- what uvicorn + llhttp alone would not do (the stack switch, 18.13 / 14) --------------


def test_a_batch_needs_http_1_1(srv: Any) -> None:
    raw = exchange(srv, b"POST /v1/check/batch HTTP/1.0\r\nContent-Length: 3\r\n\r\n{}\n")
    one_problem(raw, 505, "version-not-supported")


def test_a_silent_connection_is_closed_after_the_timeout(srv: Any) -> None:
    host, port, _ = srv
    with socket.create_connection((host, port), timeout=5) as sock:
        start = time.monotonic()
        assert sock.recv(4096) == b""  # no byte sent: closed, nothing answered
        assert time.monotonic() - start < 3.5  # the fixture's 2 s timeout


@pytest.mark.parametrize(
    ("head", "status", "key"),
    [
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "request-line-too-long"),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
            431,
            "headers-too-large",
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: 1\r\n" % n for n in range(101))
            + b"\r\n",
            431,
            "headers-too-large",
        ),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "missing-host"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nExpect: 101-wait\r\n\r\n", 417, "expectation-failed"),
        (
            b"POST /v1/check HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            "conflicting-framing",
        ),
    ],
)
def test_limits_llhttp_does_not_keep(srv: Any, head: bytes, status: int, key: str) -> None:
    one_problem(exchange(srv, head + SMUGGLED), status, key)


def test_an_endless_head_is_cut_at_its_size_limit(srv: Any) -> None:
    host, port, _ = srv
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        try:
            for _ in range(200):  # bounded: 1.6 MB of one header value, never ended
                sock.sendall(b"v" * 8192)
        except OSError:
            pass  # the server answered and closed
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 431 ")


def test_a_request_line_in_pieces_is_checked_whole(srv: Any) -> None:
    host, port, _ = srv
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"GET  /hea")  # two spaces: llhttp alone would take it
        time.sleep(0.1)
        sock.sendall(b"lth HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"malformed-request" in reply

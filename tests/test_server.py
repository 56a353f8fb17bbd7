"""The HTTP API (`cleanclaim serve`): the real server on a free loopback port, spoken to
over HTTP with the standard library."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cleanclaim.engine.cli import app
from cleanclaim.engine.loadtest import die_with_parent
from cleanclaim.engine.server import (
    ACCESS_LOG,
    ERROR_LOG,
    PROBLEM_BASE,
    BindRefused,
    ServerConfig,
    decide,
    make_server,
)
from tests.policy_cases_plugin import shared_engine

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = json.loads((REPO / "payer_policies/examples/claims.json").read_text())
DENIED = EXAMPLES[0]  # C-1001: 93010 billed with the global 93000 (CO-236, line 2)
MEMBER_ID = DENIED["member"]["id"]
TODAY = dt.date(2026, 11, 27)
TOKEN = "s3cret-token-for-tests"


def clean_claim(claim_id: str = "OK-1") -> dict[str, Any]:
    return {**DENIED, "claim_id": claim_id, "lines": [dict(DENIED["lines"][0], line=1)]}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def running(engine: Any = None, **options: Any) -> Iterator[tuple[str, int, Records]]:
    """A real server on 127.0.0.1 (free port) over the shared engine (or `engine`), and
    its access log."""
    records = Records()
    ACCESS_LOG.addHandler(records)
    ACCESS_LOG.setLevel(logging.INFO)
    config = ServerConfig(host="127.0.0.1", port=0, follow_today=False, **options)
    server = make_server(engine or shared_engine(), config)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield "127.0.0.1", server.server_port, records
    finally:
        server.shutdown()
        server.server_close()
        ACCESS_LOG.removeHandler(records)


@pytest.fixture(scope="module")
def srv() -> Iterator[tuple[str, int, Records]]:
    with running(max_body=4096, timeout=2.0) as value:
        yield value


def call(
    srv: tuple[str, int, Records],
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    host, port, _ = srv
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        # Header names are case-insensitive (RFC 9110 5.1; uvicorn writes them lowercase).
        return response.status, response.headers, response.read()  # type: ignore[return-value]
    finally:
        connection.close()


def eventually(test: Any, tries: int = 20) -> bool:
    for _ in range(tries):  # bounded
        if test():
            return True
        time.sleep(0.05)
    return False


def problem(body: bytes) -> str:
    """The key of an RFC 9457 problem answer (`urn:cleanclaim:problem:<key>`)."""
    doc = json.loads(body)
    assert doc["type"].startswith(PROBLEM_BASE) and isinstance(doc["status"], int)
    assert doc["title"] and doc["detail"]
    return str(doc["type"][len(PROBLEM_BASE) :])


def post_json(
    srv: tuple[str, int, Records], path: str, value: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    status, _, body = call(
        srv,
        "POST",
        path,
        json.dumps(value).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )
    return status, json.loads(body)


# ---- endpoints ---------------------------------------------------------------------------


def test_health_and_head(srv: Any) -> None:
    status, headers, body = call(srv, "GET", "/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert headers["Content-Type"] == "application/json"
    status, headers, body = call(srv, "HEAD", "/health")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_packs_lists_ids_digests_and_plugins(srv: Any) -> None:
    status, _, body = call(srv, "GET", "/v1/packs")
    data = json.loads(body)
    assert status == 200
    assert {p["id"]: p["digest"] for p in data["packs"]} == shared_engine().packs
    assert {"medicare", "acme-ppo"} <= {p["id"] for p in data["packs"]}
    assert data["plugins"] == []


def test_openapi_document(srv: Any) -> None:
    status, _, body = call(srv, "GET", "/openapi.json")
    doc = json.loads(body)
    assert status == 200 and doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/v1/check",
        "/v1/check/batch",
        "/v1/packs",
        "/health",
        "/ready",
        "/openapi.json",
        "/v1/denials",
    }
    assert doc["servers"] == [{"url": f"http://127.0.0.1:{srv[1]}"}]
    assert "post" in doc["paths"]["/v1/check"] and "get" in doc["paths"]["/v1/packs"]
    schemas = doc["components"]["schemas"]
    assert {"Claim", "Decision", "Finding", "Problem"} <= set(schemas)
    assert set(schemas["Claim"]["required"]) == {"claim_id", "payer", "lines"}
    assert schemas["Decision"]["properties"]["status"]["enum"] == [
        "reject",
        "deny",
        "review",
        "clean",
    ]

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas


def test_check_denied_claim_has_findings(srv: Any) -> None:
    status, decision = post_json(srv, "/v1/check", DENIED)
    assert status == 200
    assert decision["claim_id"] == "C-1001" and decision["status"] == "deny"
    [finding] = decision["findings"]
    assert (finding["line"], finding["group"], finding["carc"], finding["rarc"]) == (
        2,
        "CO",
        "236",
        [],
    )
    assert finding["root_cause"] == "coding" and finding["owner"] == "coding"
    assert decision["policy"]["packs"]["medicare"] == shared_engine().packs["medicare"]
    assert "position" not in decision


def test_check_clean_claim_and_keep_alive(srv: Any) -> None:
    host, port, _ = srv
    connection = http.client.HTTPConnection(host, port, timeout=5)
    for n in range(3):  # one connection, several requests
        connection.request("POST", "/v1/check", json.dumps(clean_claim(f"OK-{n}")).encode())
        response = connection.getresponse()
        decision = json.loads(response.read())
        assert response.status == 200
        assert (decision["claim_id"], decision["status"]) == (f"OK-{n}", "clean")
    connection.close()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"claim_id": "C-1", "payer": ', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe garbage", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (json.dumps({"claim_id": "C-9", "payer": "medicare"}).encode(), "lines"),
    ],
)
def test_malformed_claims_are_reject_decisions(body: bytes, message: str) -> None:
    with running(max_body=1_000_000) as server:
        status, _, raw = call(server, "POST", "/v1/check", body)
    decision = json.loads(raw)
    assert status == 200 and decision["status"] == "reject"
    assert decision["findings"][0]["rule"] == "engine/claim-format"
    assert any(message in f["message"] for f in decision["findings"])


def test_an_engine_failure_is_a_review_decision_not_a_500() -> None:
    class Broken:
        def check_raw(self, raw: Any) -> Any:
            raise KeyError(MEMBER_ID)

    records = Records()
    ERROR_LOG.addHandler(records)
    try:
        decision = decide(Broken(), json.dumps(DENIED).encode(), 3, "line 4")  # type: ignore[arg-type]
    finally:
        ERROR_LOG.removeHandler(records)
    assert (decision.status, decision.position) == ("review", 3)
    assert decision.findings[0].rule == "engine/internal-error"
    assert records.lines == ["engine failed on a claim: KeyError"]


def test_bad_content_length_is_400(srv: Any) -> None:
    host, port, _ = srv
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n{}")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")


def test_unknown_payer_is_rejected(srv: Any) -> None:
    status, decision = post_json(srv, "/v1/check", {**DENIED, "payer": "nobody"})
    assert status == 200 and decision["status"] == "reject"
    assert decision["findings"][0]["root_cause"] == "payer_setup"


def test_oversized_body_is_413(srv: Any) -> None:
    big = json.dumps({**DENIED, "documentation": {"note": "x" * 5000}}).encode()
    status, headers, body = call(srv, "POST", "/v1/check", big)
    assert status == 413 and problem(body) == "body-too-large"
    assert headers.get("Connection") == "close"
    # chunked, with no length announced
    host, port, _ = srv
    connection = http.client.HTTPConnection(host, port, timeout=5)
    connection.request("POST", "/v1/check", iter([big[:3000], big[3000:]]), encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413 and json.loads(response.read())["status"] == 413
    connection.close()


def test_expect_100_continue_oversized_is_refused_before_the_body(srv: Any) -> None:
    host, port, _ = srv
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413 ")


def test_404_and_405_are_json(srv: Any) -> None:
    status, _, body = call(srv, "GET", "/v2/nothing")
    assert status == 404 and problem(body) == "not-found"
    status, headers, body = call(srv, "GET", "/v1/check")
    assert status == 405 and headers["Allow"] == "POST"
    assert problem(body) == "method-not-allowed"
    status, headers, _ = call(srv, "DELETE", "/v1/packs")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    # an early answer to a request with an unread body closes the connection
    status, headers, _ = call(srv, "POST", "/nope", b'{"claim_id": "X"}')
    assert status == 404 and headers["Connection"] == "close"


# ---- batch -------------------------------------------------------------------------------


def test_batch_damaged_line_in_the_middle(srv: Any) -> None:
    lines = [
        json.dumps(DENIED),
        '{"claim_id": "broken", ',
        json.dumps(clean_claim("OK-2")),
        "",
        "[1, 2]",
        json.dumps(EXAMPLES[2]),
    ]
    status, headers, body = call(
        srv,
        "POST",
        "/v1/check/batch",
        ("\n".join(lines) + "\n").encode(),
        {"Content-Type": "application/x-ndjson"},
    )
    assert status == 200 and headers["Transfer-Encoding"] == "chunked"
    assert headers["Content-Type"] == "application/x-ndjson"
    decisions = [json.loads(line) for line in body.splitlines()]
    # one decision per non-blank line, in order
    assert [d["position"] for d in decisions] == [0, 1, 2, 3, 4]
    assert [d["claim_id"] for d in decisions] == ["C-1001", None, "OK-2", None, "C-2001"]
    # OK-2 repeats C-1001's first line: a `check` run of these lines counts it (history)
    assert [d["status"] for d in decisions] == ["deny", "reject", "deny", "reject", "reject"]
    assert "line 2: not valid JSON" in decisions[1]["findings"][0]["message"]
    assert "must be a JSON object" in decisions[3]["findings"][0]["message"]


def plain_engine() -> Any:
    """An engine whose packs count no history: batches stream (decisions as lines come)."""
    from cleanclaim.engine import Engine

    return Engine([REPO / "tests/plugins/packs"], today=TODAY, plugins=())


def test_batch_streams_decisions_as_lines_arrive() -> None:
    with running(plain_engine()) as server:
        stream_three(server)


def stream_three(server: Any) -> None:
    host, port, _ = server
    connection = http.client.HTTPConnection(host, port, timeout=5)
    connection.putrequest("POST", "/v1/check/batch")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    response = None
    for n in range(3):
        line = json.dumps({**clean_claim(f"S-{n}"), "payer": "plain"}).encode() + b"\n"
        connection.send(b"%x\r\n%b\r\n" % (len(line), line))
        if response is None:
            response = connection.getresponse()
        # each decision comes back before the next line is sent
        assert json.loads(response.readline())["position"] == n
    connection.send(b"0\r\n\r\n")
    assert response is not None and response.read() == b""
    connection.close()


def test_batch_line_over_the_limit_is_rejected_and_skipped(srv: Any) -> None:
    huge = json.dumps({**DENIED, "claim_id": "HUGE", "documentation": {"n": "x" * 9000}})
    other = {**clean_claim("B"), "member": {**DENIED["member"], "id": "OTHER-1"}}
    lines = [json.dumps(clean_claim("A")), huge, json.dumps(other)]
    status, _, body = call(srv, "POST", "/v1/check/batch", "\n".join(lines).encode())
    decisions = [json.loads(line) for line in body.splitlines()]
    assert status == 200 and [d["position"] for d in decisions] == [0, 1, 2]
    assert [d["status"] for d in decisions] == ["clean", "reject", "clean"]
    assert "line 2: the line is over the limit" in decisions[1]["findings"][0]["message"]
    assert decisions[2]["claim_id"] == "B"  # last line had no newline


# ---- auth and binding --------------------------------------------------------------------


def test_bearer_token() -> None:
    claim = json.dumps(DENIED).encode()
    with running(token=TOKEN) as server:
        status, headers, body = call(server, "POST", "/v1/check", claim)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        assert headers["Connection"] == "close"  # the body was not read
        assert problem(body) == "unauthorized"
        status, _, _ = call(server, "GET", "/v1/packs", None, {"Authorization": "Bearer wrong"})
        assert status == 401
        status, _, _ = call(
            server, "POST", "/v1/check/batch", claim, {"Authorization": f"Basic {TOKEN}"}
        )
        assert status == 401
        status, _, body = call(
            server, "POST", "/v1/check", claim, {"Authorization": f"Bearer {TOKEN}"}
        )
        assert status == 200 and json.loads(body)["status"] == "deny"
        assert call(server, "GET", "/health")[0] == 200  # probes need no token
        assert call(server, "GET", "/openapi.json")[0] == 200


def test_no_token_needed_without_one(srv: Any) -> None:
    assert call(srv, "GET", "/v1/packs")[0] == 200


def test_refuses_non_loopback_without_token() -> None:
    with pytest.raises(BindRefused, match="without a token"):
        make_server(shared_engine(), ServerConfig(host="0.0.0.0", port=0))
    result = CliRunner().invoke(
        app, ["serve", "--host", "0.0.0.0", "--port", "0"], env={"CLEANCLAIM_TOKEN": None}
    )
    assert result.exit_code == 2
    assert "refusing to listen on '0.0.0.0' without a token" in result.output


# ---- limits ------------------------------------------------------------------------------


def test_slow_clients_are_dropped() -> None:
    with running(timeout=0.3) as server:
        host, port, _ = server
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            reply = sock.recv(4096)  # body never completes: 408, then closed
            assert reply.startswith(b"HTTP/1.1 408 ")
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\n")  # headers never complete
            start = time.monotonic()
            assert sock.recv(4096).startswith(b"HTTP/1.1 408 ")
            assert sock.recv(4096) == b""  # and closed
            assert time.monotonic() - start < 3


def test_too_many_connections_get_503_but_probes_are_answered() -> None:
    with running(max_connections=1, reserve=1, timeout=1.0) as server:
        host, port, _ = server
        with socket.create_connection((host, port), timeout=5) as first:
            first.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert first.recv(4096).startswith(b"HTTP/1.1 200 ")  # holds its slot
            status, _, body = call(server, "GET", "/v1/packs")  # the reserve: probes only
            assert status == 503 and problem(body) == "busy"
            # (the reserve slot frees when the server has closed the previous connection)
            assert eventually(lambda: call(server, "GET", "/health")[0] == 200)
            assert eventually(lambda: call(server, "GET", "/ready")[0] == 200)
            time.sleep(0.1)
            with socket.create_connection((host, port), timeout=5) as second:
                second.sendall(b"GET /he")  # holds the reserve slot
                time.sleep(0.1)
                status, _, body = call(server, "GET", "/health")  # nothing left
                assert status == 503 and problem(body) == "busy"


# ---- privacy -----------------------------------------------------------------------------


def test_access_log_has_no_claim_content() -> None:
    with running(max_body=100_000) as server:
        _, _, records = server
        post_json(server, "/v1/check", DENIED)
        post_json(server, "/v1/check?member=" + MEMBER_ID, DENIED)
        call(server, "GET", f"/v1/members/{MEMBER_ID}")
        call(server, "POST", "/v1/check/batch", (json.dumps(DENIED) + "\n{bad\n").encode())
        call(server, "POST", "/v1/check", b'{"member": {"id": "' + MEMBER_ID.encode() + b'"')
    assert len(records.lines) == 5
    shape = re.compile(
        r"^[0-9a-f]{16} (GET|POST) (/v1/check|/v1/check/batch|-) \d{3} "
        r"\d+\.\d+ms in=\d+ out=\d+$"
    )
    for line in records.lines:
        assert shape.match(line), line
        for secret in (MEMBER_ID, "1951-04-12", "C-1001", "93000", "R07.9", "1234567893"):
            assert secret not in line


def test_cli_serve_starts_and_stops() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "cleanclaim.engine.cli", "serve", "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    )
    try:
        assert process.stderr is not None
        first = ""
        for _ in range(5):  # bounded: the address line (after any warning)
            first += process.stderr.readline()
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", first)
            if match:
                break
        assert match, first
        with urllib.request.urlopen(
            f"http://127.0.0.1:{match.group(1)}/health", timeout=5
        ) as response:
            assert json.loads(response.read())["status"] == "ok"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://127.0.0.1:{match.group(1)}/nope", timeout=5)
        assert info.value.code == 404
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0


def test_cli_serve_with_two_processes() -> None:
    """`--workers 2`: two forked processes answer on one port; SIGTERM stops all."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cleanclaim.engine.cli", "serve", "--port", "0", "--workers", "2"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    )
    try:
        assert process.stderr is not None
        first = ""
        for _ in range(5):  # bounded: the address line (after any warning)
            first += process.stderr.readline()
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+).*2 processes", first)
            if match:
                break
        assert match, first
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        if children.exists():
            assert eventually(lambda: len(children.read_text().split()) == 2)
        for _ in range(10):  # a new connection each: the kernel hands them to either
            with urllib.request.urlopen(
                f"http://127.0.0.1:{match.group(1)}/ready", timeout=5
            ) as response:
                assert json.loads(response.read())["status"] == "ready"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0


def test_a_failing_endpoint_is_logged_by_type_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from cleanclaim.engine.server.app import ClaimApp

    def broken(self: Any, *args: Any) -> Any:
        raise KeyError(MEMBER_ID)

    monkeypatch.setattr(ClaimApp, "_send", broken)
    records = Records()
    ERROR_LOG.addHandler(records)
    try:
        with running() as server:
            status, _, _ = call(server, "GET", "/health")
    finally:
        ERROR_LOG.removeHandler(records)
    assert status == 500
    assert "request failed: KeyError" in records.lines  # (the access log propagates here)
    assert not any(MEMBER_ID in line for line in records.lines)

"""Load test of the HTTP API, on loopback only.

    python -m cleanclaim.engine.loadtest --concurrency 8 --requests 2000

starts `cleanclaim serve` on 127.0.0.1 (a free port, a random bearer token) in a child
process, then:

1. `POST /v1/check`: `--warmup` requests of other claims (the server builds its line
   classes as codes come back), then `--requests` requests over `--concurrency`
   keep-alive connections (an asyncio client: `run_check` says why), each a synthetic
   claim (the seeded workload of `cleanclaim bench`); prints p50/p99/max latency,
   requests/s, the server's CPU time a request and the load average;
2. `POST /v1/check/batch`: `--batch-claims` claims as one chunked NDJSON stream, sent
   while the decisions are read (full duplex); prints claims/s and checks that every
   line got one decision, in order.

It stops by itself and stops the server it started. `--port N` measures a server already
listening on 127.0.0.1:N instead (with `--token` or CLEANCLAIM_TOKEN if it needs one); no
other host can be given. `--against DIR --rounds N` measures this checkout's server and
another checkout's (DIR: a folder with `cleanclaim/engine`, `cleanclaim/dsl`, ... linked
to that checkout's folders) in turn, N times each, and prints both side by side; each
row also gives the server's CPU time a request, which a loaded machine does not blur.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

from cleanclaim.engine.bench import synthetic_claim

HOST = "127.0.0.1"  # never anything else
DEFAULT_WARMUP = 3000


def _percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


def die_with_parent() -> None:
    """In a child process (`preexec_fn`): on Linux, get SIGTERM when the parent dies, so a
    server started for a test or a load test never outlives a killed parent."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def start_server(
    extra: list[str], token: str, log: Path, pythonpath: str | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """`cleanclaim serve` on a free loopback port; returns the process and its port."""
    env = {**os.environ, "CLEANCLAIM_TOKEN": token}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
    handle = log.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cleanclaim.engine.cli",
            "serve",
            "--host",
            HOST,
            "--port",
            "0",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=handle,
        env=env,
        preexec_fn=die_with_parent,
    )
    handle.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())
        if match:
            return process, int(match.group(1))
        if process.poll() is not None:
            raise SystemExit(f"the server exited ({process.returncode}):\n{log.read_text()}")
        time.sleep(0.05)
    process.kill()
    raise SystemExit("the server did not start within 60 s")


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far; None where /proc is not.
    Per request, it is the server's cost whatever else runs on the machine (latency on a
    loaded machine is mostly waiting for a core)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def tree_cpu_seconds(pid: int) -> float | None:
    """`cpu_seconds` of a process and its children (`serve --workers N`)."""
    total = cpu_seconds(pid)
    if total is None:
        return None
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(cpu_seconds(int(child)) or 0.0 for child in children)


def _headers(token: str | None, content_type: str) -> dict[str, str]:
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


class _Reader:
    """The response side of one keep-alive connection: status, headers, a body framed by
    Content-Length (RFC 9112 6.3; `/v1/check` answers carry one)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    async def response(self) -> tuple[int, bytes, bool]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].split(b"\r\n")
        version, status, _ = (status_line.decode("latin-1") + " ").split(" ", 2)
        if not version.startswith("HTTP/1."):
            raise RuntimeError(f"not an HTTP/1.x answer: {status_line[:80]!r}")
        length: int | None = None
        close = False
        for line in header_lines:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise RuntimeError("a chunked /v1/check answer")
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if length is None:
            raise RuntimeError("an answer without Content-Length")
        body = await self.reader.readexactly(length) if length else b""
        return int(status), body, close


def _request(port: int, token: str | None, payload: bytes) -> bytes:
    head = [
        f"POST /v1/check HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n"
    ]
    if token:
        head.append(f"Authorization: Bearer {token}\r\n")
    return "".join(head).encode("latin-1") + b"\r\n" + payload


def run_check(
    port: int, token: str | None, payloads: list[bytes], concurrency: int
) -> dict[str, Any]:
    """`len(payloads)` requests to /v1/check over `concurrency` keep-alive connections,
    each sending its next request as soon as the last answer is in (a closed loop).

    The client is one event loop (uvloop when installed) over raw keep-alive
    connections, not threads: threads of one process take turns on the GIL, so a thread
    whose answer has arrived waits for the others' turns and its wait is counted as the
    server's latency (against one server, 8,000 requests: http.client in 8 threads
    0.21-0.23 ms of client CPU a request, this client 0.09 ms, and a lower p99). The
    request bytes are built before the clock starts; each answer is read to its last
    byte (status, headers, Content-Length body) and its decision parsed after the
    latency is taken."""
    requests = [_request(port, token, p) for p in payloads]
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: list[str] = []
    next_index = iter(range(len(requests)))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        answers = _Reader(reader)
        bodies: list[bytes] = []
        try:
            for index in next_index:
                start = time.perf_counter()
                writer.write(requests[index])
                status, body, close = await answers.response()
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
                bodies.append(body)
                if close:
                    raise RuntimeError("the server closed a keep-alive connection")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        for body in bodies:
            status_of = json.loads(body)["status"]
            statuses[status_of] = statuses.get(status_of, 0) + 1

    async def all_connections() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(concurrency)))
        return time.perf_counter() - start

    elapsed = _run_loop(all_connections())
    latencies.sort()
    return {
        "requests": len(latencies),
        "concurrency": concurrency,
        "seconds": elapsed,
        "requests_per_s": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] * 1000) if latencies else float("nan"),
        "statuses": statuses,
        "errors": errors,
    }


def _run_loop(coroutine: Coroutine[Any, Any, float]) -> float:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with the server's stack
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _chunks(lines: list[bytes], size: int = 64 * 1024) -> Iterator[bytes]:
    buffer: list[bytes] = []
    held = 0
    for line in lines:
        buffer.append(line)
        held += len(line)
        if held >= size:
            yield b"".join(buffer)
            buffer, held = [], 0
    if buffer:
        yield b"".join(buffer)


def run_batch(port: int, token: str | None, payloads: list[bytes]) -> dict[str, Any]:
    """One chunked NDJSON stream of all payloads; decisions read while sending."""
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    connection.putrequest("POST", "/v1/check/batch")
    for name, value in _headers(token, "application/x-ndjson").items():
        connection.putheader(name, value)
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    lines = [p + b"\n" for p in payloads]
    send_error: list[str] = []

    def sender() -> None:
        try:
            for chunk in _chunks(lines):
                connection.send(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            connection.send(b"0\r\n\r\n")
        except OSError as exc:
            send_error.append(f"{type(exc).__name__}: {exc}")

    start = time.perf_counter()
    thread = threading.Thread(target=sender)
    thread.start()
    response = connection.getresponse()
    count = 0
    in_order = True
    first = None
    for raw in response:
        decision = json.loads(raw)
        if first is None:
            first = time.perf_counter() - start
        if decision.get("position") != count:
            in_order = False
        count += 1
    elapsed = time.perf_counter() - start
    thread.join()
    connection.close()
    return {
        "claims": len(payloads),
        "decisions": count,
        "in_order": in_order,
        "seconds": elapsed,
        "claims_per_s": count / elapsed if elapsed else 0.0,
        "first_decision_ms": (first or 0.0) * 1000,
        "http_status": response.status,
        "errors": send_error,
    }


def workload(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [json.dumps(synthetic_claim(rng, i)).encode() for i in range(count)]


def measure(
    args: argparse.Namespace, payloads: list[bytes], pythonpath: str | None = None
) -> dict[str, Any]:
    """One measurement: a server started for it (or the one at `--port`), the check
    phase, then the batch phase. `pythonpath`: put this folder first on the server's
    PYTHONPATH (a folder holding `cleanclaim/engine`, ... of another checkout)."""
    process = None
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        try:
            if args.port is None:
                token = secrets.token_urlsafe(24)
                extra = (
                    []
                    if pythonpath is not None or args.server_workers == 1
                    else ["--workers", str(args.server_workers)]
                )
                process, port = start_server(extra, token, log, pythonpath)
            else:
                token = args.token or os.environ.get("CLEANCLAIM_TOKEN") or ""
                port = args.port
            # Warm-up: other claims of the same shapes, at the measured concurrency. The
            # packs build their line classes (dsl/specialize.py) as codes come back, each
            # a recompilation of tens of milliseconds; the measured requests then meet
            # the server as it runs from then on. The warm-up's own figures are kept.
            warmup = (
                run_check(port, token, workload(args.warmup, args.seed + 1), args.concurrency)
                if args.warmup
                else None
            )
            before = tree_cpu_seconds(process.pid) if process is not None else None
            check = run_check(port, token, payloads[: args.requests], args.concurrency)
            after = tree_cpu_seconds(process.pid) if process is not None else None
            check["server_cpu_ms_per_request"] = (
                (after - before) * 1000 / max(1, check["requests"])
                if before is not None and after is not None
                else None
            )
            batch = (
                run_batch(port, token, payloads[: args.batch_claims]) if args.batch_claims else None
            )
            access_lines = (len(log.read_text().splitlines()) - 1) if process else None
        finally:
            if process is not None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
    return {
        "check": check,
        "warmup": warmup,
        "batch": batch,
        "server_access_log_lines": access_lines,
    }


def serve_figures(
    requests: int = 4000,
    concurrency: int = 8,
    warmup: int = DEFAULT_WARMUP,
    seed: int = 7,
    server_workers: int = 1,
) -> dict[str, float]:
    """`/v1/check` figures of a `cleanclaim serve` started for them (`cleanclaim bench`):
    latency p50/p99/max (ms) and requests/s after the warm-up, the server's CPU time a
    request (ms), the load average, and the warm-up's p99; failed requests raise."""
    args = argparse.Namespace(
        port=None,
        token=None,
        server_workers=server_workers,
        warmup=warmup,
        seed=seed,
        requests=requests,
        concurrency=concurrency,
        batch_claims=0,
    )
    results = measure(args, workload(requests, seed))
    check = results["check"]
    if check["errors"]:
        raise RuntimeError(
            f"serve: {len(check['errors'])} connections failed: {check['errors'][0]}"
        )
    figures = {
        f"serve_{key}": float(check[key])
        for key in ("requests", "concurrency", "p50_ms", "p99_ms", "max_ms", "requests_per_s")
    }
    figures["serve_server_cpu_ms_per_request"] = float(check["server_cpu_ms_per_request"] or "nan")
    figures["serve_warmup_p99_ms"] = (
        float(results["warmup"]["p99_ms"]) if results["warmup"] else float("nan")
    )
    figures["serve_load_average"] = os.getloadavg()[0]
    return figures


def _failed(results: dict[str, Any]) -> bool:
    check, batch = results["check"], results["batch"]
    return bool(
        check["errors"]
        or (
            batch is not None
            and (batch["errors"] or batch["decisions"] != batch["claims"] or not batch["in_order"])
        )
    )


def _print(results: dict[str, Any]) -> None:
    check, batch, warmup = results["check"], results["batch"], results.get("warmup")
    if warmup is not None:
        print(
            f"warm-up               {warmup['requests']} requests (other claims): p50 "
            f"{warmup['p50_ms']:.2f} ms, p99 {warmup['p99_ms']:.2f} ms, max "
            f"{warmup['max_ms']:.2f} ms"
        )
    print(
        f"POST /v1/check        {check['requests']} requests, concurrency "
        f"{check['concurrency']}: p50 {check['p50_ms']:.2f} ms, p99 "
        f"{check['p99_ms']:.2f} ms, max {check['max_ms']:.2f} ms, "
        f"{check['requests_per_s']:,.0f} requests/s"
    )
    if check["server_cpu_ms_per_request"] is not None:
        print(
            f"                      server CPU {check['server_cpu_ms_per_request']:.3f} ms "
            "a request"
        )
    print(
        f"                      decisions: {check['statuses']}; load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    if batch is not None:
        print(
            f"POST /v1/check/batch  {batch['claims']} claims in one stream: "
            f"{batch['claims_per_s']:,.0f} claims/s, first decision after "
            f"{batch['first_decision_ms']:.1f} ms, {batch['decisions']} decisions, "
            f"in order: {batch['in_order']}"
        )


def _row(name: str, runs: list[dict[str, Any]]) -> str:
    def median(key: str) -> float:
        values = sorted(r["check"][key] for r in runs if r["check"][key] is not None)
        return values[len(values) // 2] if values else float("nan")

    cells = [
        f"{median('p50_ms'):.2f} ms",
        f"{median('p99_ms'):.2f} ms",
        f"{median('requests_per_s'):,.0f}",
        f"{median('server_cpu_ms_per_request'):.3f} ms",
    ]
    p99s = ", ".join(f"{r['check']['p99_ms']:.1f}" for r in runs)
    return f"| {name} | {' | '.join(cells)} | {p99s} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cleanclaim.engine.loadtest",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--batch-claims", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP,
        metavar="N",
        help="requests (other claims) sent before the measured ones",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="measure a server already listening on 127.0.0.1:PORT",
    )
    parser.add_argument(
        "--token", default=None, help="bearer token of that server (default: CLEANCLAIM_TOKEN)"
    )
    parser.add_argument(
        "--against",
        default=None,
        metavar="DIR",
        help="also measure the server of another checkout, alternating "
        "with this one: DIR holds cleanclaim/engine, cleanclaim/dsl, ... "
        "(links to that checkout's folders); prints both side by side",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="with --against: measurements of each (medians shown)"
    )
    parser.add_argument(
        "--server-workers",
        type=int,
        default=1,
        metavar="N",
        help="start this checkout's server with --workers N",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if (
        args.concurrency < 1
        or args.requests < 1
        or args.batch_claims < 0
        or args.rounds < 1
        or args.warmup < 0
    ):
        parser.error("--concurrency, --requests and --rounds must be positive")
    if args.against is not None and args.port is not None:
        parser.error("--against starts both servers itself: no --port")

    payloads = workload(max(args.requests, args.batch_claims), args.seed)
    if args.against is None:
        results = measure(args, payloads)
        if args.json:
            print(json.dumps(results, indent=2))
        else:
            _print(results)
        failed = _failed(results)
    else:
        this: list[dict[str, Any]] = []
        other: list[dict[str, Any]] = []
        for _ in range(args.rounds):  # alternate, so that both meet the same load
            this.append(measure(args, payloads))
            other.append(measure(args, payloads, args.against))
        if args.json:
            print(json.dumps({"this": this, "against": other}, indent=2))
        else:
            print(
                f"POST /v1/check, {args.requests} requests, concurrency {args.concurrency}, "
                f"{args.rounds} round(s) each, alternating (medians):\n"
            )
            print(
                "| server | p50 | p99 | requests/s | server CPU a request | p99 of each "
                "round |\n|---|---|---|---|---|---|"
            )
            print(_row("this checkout", this))
            print(_row(args.against, other))
        failed = any(_failed(r) for r in this + other)
    if failed:
        print("errors: some requests failed (see --json)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

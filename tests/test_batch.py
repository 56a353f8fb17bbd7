"""Streaming batches (`engine/batch.py`, `engine/progress.py`, `cleanclaim check`):
one decision per claim in input order, constant memory, N workers giving the bytes one
worker gives, and no claim lost when a worker dies."""

from __future__ import annotations

import io
import itertools
import json
import multiprocessing
import os
import random
import select
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.engine.batch import (
    INTERNAL_ERROR_RULE,
    TEST_CRASH_ENV,
    ClaimLine,
    EngineOptions,
    InputReader,
    as_decision,
    check_batch,
    resolve_workers,
)
from cleanclaim.engine.bench import synthetic_claim
from cleanclaim.engine.cli import OutputFormat, _encode, _write
from cleanclaim.engine.inputs import InputFileError, RawClaim
from cleanclaim.engine.progress import Progress, wanted
from cleanclaim.engine.reading import iter_inputs
from tests.policy_cases_plugin import REPO, TODAY

N_DAMAGED = 10_000
# Damaged lines at known positions (0-based; the file has no blank lines, so the line
# number is position + 1), including the first and the last line.
BAD_JSON = {
    0: b'{"claim_id": "X-0", "payer": ',
    1234: b"not json at all",
    5000: b'{"claim_id": "X-5000",}',
    7777: b"\xff\xfe{}",
    9999: b'[{"claim_id": ',
}
NOT_OBJECTS = {3000: b"[1, 2]", 3001: b"42", 3002: b"null"}
WRONG_TYPES: dict[int, tuple[str, Any]] = {
    17: ("lines", "x"),
    2500: ("diagnoses", 5),
    4999: ("received_date", "2026-13-45"),
    8000: ("member", ["M1"]),
}
UNKNOWN_PAYER = {100, 6001, 9998}


def _claim_lines(n: int, seed: int = 11) -> Iterator[bytes]:
    rng = random.Random(seed)
    for i in range(n):
        yield json.dumps(synthetic_claim(rng, i), separators=(",", ":")).encode()


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,000 NDJSON lines, the bad ones at the positions above."""
    lines = []
    for position, line in enumerate(_claim_lines(N_DAMAGED)):
        if position in BAD_JSON:
            line = BAD_JSON[position]
        elif position in NOT_OBJECTS:
            line = NOT_OBJECTS[position]
        elif position in WRONG_TYPES or position in UNKNOWN_PAYER:
            claim = json.loads(line)
            field, value = WRONG_TYPES.get(position, ("payer", "nobody"))
            claim[field] = value
            line = json.dumps(claim).encode()
        lines.append(line + b"\n")
    path = tmp_path_factory.mktemp("batch") / "damaged.ndjson"
    path.write_bytes(b"".join(lines))
    return path


@pytest.fixture(scope="module")
def claims_1200(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("batch") / "claims.ndjson"
    path.write_bytes(b"".join(line + b"\n" for line in _claim_lines(1200, seed=5)))
    return path


def _check(
    *args: str, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[bytes]:
    command = [
        sys.executable,
        "-m",
        "cleanclaim.engine.cli",
        "check",
        "--today",
        TODAY.isoformat(),
        *args,
    ]
    return subprocess.run(
        command,
        capture_output=True,
        cwd=REPO,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
        **kwargs,
    )


@pytest.fixture(scope="module")
def one_worker_1200(claims_1200: Path) -> bytes:
    # The crash hook is set and must do nothing: it is only read in worker processes.
    run = _check(str(claims_1200), "--format", "ndjson", env={TEST_CRASH_ENV: "B-777"})
    assert run.returncode == 1, run.stderr.decode()
    return run.stdout


# ---- reading -------------------------------------------------------------------------------


def _as_raw(item: RawClaim | ClaimLine | InputFileError) -> RawClaim | str:
    if isinstance(item, InputFileError):
        return str(item)
    return item.to_raw() if isinstance(item, ClaimLine) else item


def test_reader_gives_what_iter_inputs_gives(damaged: Path, tmp_path: Path) -> None:
    array = tmp_path / "array.json"
    array.write_text(json.dumps([{"claim_id": "A-1"}, 7, {"claim_id": 8}]))
    blanks = tmp_path / "blanks.jsonl"
    blanks.write_bytes(b'\n{"claim_id": "L-1"}\n   \n{"claim_id": \n\n[]\n')
    paths = [blanks, array, tmp_path / "missing.json", damaged, blanks]
    reader = InputReader(paths)
    ours = [_as_raw(item) for item in reader]
    theirs = [_as_raw(item) for item in iter_inputs(paths)]
    assert len(ours) == 3 + 3 + 1 + N_DAMAGED + 3
    assert ours == theirs
    assert reader.bytes_read == reader.total_bytes


def test_an_ndjson_file_that_cannot_be_opened_is_a_file_error(tmp_path: Path) -> None:
    items = list(InputReader([tmp_path / "missing.ndjson", tmp_path]))
    assert [type(i) for i in items] == [InputFileError, InputFileError]
    assert "missing.ndjson: cannot read" in str(items[0])


# ---- damaged lines, one worker and two ----------------------------------------------------


def test_damaged_lines_give_one_decision_each_in_order_with_any_workers(damaged: Path) -> None:
    one = _check(str(damaged), "--format", "ndjson", "--workers", "1")
    two = _check(str(damaged), "--format", "ndjson", "--workers", "2")
    assert one.returncode == two.returncode == 1
    # Only the one warning of a run on the shipped NCCI sample tables (issue 11 section 1).
    assert one.stderr == two.stderr
    assert [line for line in one.stderr.splitlines() if b"NCCI sample tables" not in line] == []
    assert one.stdout == two.stdout
    decisions = [json.loads(line) for line in one.stdout.splitlines()]
    assert [d["position"] for d in decisions] == list(range(N_DAMAGED))
    for position, decision in enumerate(decisions):
        rules = [f["rule"] for f in decision["findings"]]
        if position in BAD_JSON:
            assert decision["status"] == "reject"
            assert rules == ["engine/claim-format"]
            assert decision["findings"][0]["message"].startswith(
                f"line {position + 1}: not valid JSON"
            )
        elif position in NOT_OBJECTS or position in WRONG_TYPES:
            assert decision["status"] == "reject", position
            assert rules == ["engine/claim-format"], position
        elif position in UNKNOWN_PAYER:
            assert decision["status"] == "reject"
            assert rules == ["engine/payer-setup"]
            assert decision["claim_id"] == f"B-{position}"
        else:
            assert decision["claim_id"] == f"B-{position}"
            assert "engine/claim-format" not in rules
    assert decisions[2500]["findings"][0]["message"].startswith("diagnoses: must be a list")


@pytest.mark.parametrize("output", [OutputFormat.json, OutputFormat.table])
def test_every_format_is_the_same_with_workers(
    engine: Any, damaged: Path, output: OutputFormat
) -> None:
    claims = list(itertools.islice(InputReader([damaged]), 700))

    def text(workers: int) -> str:
        out = io.StringIO()
        encoded = check_batch(
            claims, partial(_encode, output), engine=engine, workers=workers, chunk_size=64
        )
        assert len(list(_write(encoded, output, out))) == 700
        return out.getvalue()

    assert text(2) == text(1)
    if output is OutputFormat.json:
        assert len(json.loads(text(1))) == 700


# ---- workers that fail ---------------------------------------------------------------------


def test_a_worker_that_dies_once_loses_nothing(
    claims_1200: Path, one_worker_1200: bytes, tmp_path: Path
) -> None:
    marker = tmp_path / "crashed"
    run = _check(
        str(claims_1200),
        "--format",
        "ndjson",
        "--workers",
        "2",
        env={TEST_CRASH_ENV: f"B-777@{marker}"},
    )
    assert marker.exists()  # the worker did die on B-777
    assert run.stdout == one_worker_1200
    assert run.returncode == 1
    stderr = run.stderr.decode()
    assert (
        "warning: a worker process died (exit code 1) while checking the claims at "
        "positions 500-999; checking them again one at a time" in stderr
    )
    assert INTERNAL_ERROR_RULE not in stderr


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("", "a worker process died (exit code 1)"),
        (":raise", "RuntimeError in a worker: test hook: raise on B-777"),
    ],
)
def test_a_claim_that_always_fails_is_rejected_not_lost(
    claims_1200: Path, one_worker_1200: bytes, mode: str, reason: str
) -> None:
    run = _check(
        str(claims_1200),
        "--format",
        "ndjson",
        "--workers",
        "2",
        env={TEST_CRASH_ENV: f"B-777{mode}"},
    )
    assert run.returncode == 3  # the run failed for one claim (and it says so)
    got = run.stdout.splitlines()
    want = one_worker_1200.splitlines()
    assert len(got) == len(want) == 1200
    assert got[:777] == want[:777]
    assert got[778:] == want[778:]
    decision = json.loads(got[777])
    assert decision["claim_id"] == "B-777"
    assert decision["position"] == 777
    assert decision["status"] == "reject"
    [finding] = decision["findings"]
    assert finding["rule"] == INTERNAL_ERROR_RULE
    assert finding["severity"] == "reject"
    assert finding["root_cause"] == "submission"
    assert finding["message"] == (
        f"the claim could not be checked ({reason}, 2 times); nothing is known about it: "
        "check it again or have a person review it"
    )
    stderr = run.stderr.decode()
    assert (
        f"claim B-777 at position 777 failed 2 times ({reason}); it is rejected as "
        f"{INTERNAL_ERROR_RULE}" in stderr
    )


def test_an_engine_exception_on_one_claim_rejects_that_claim() -> None:
    class BrokenEngine:
        today = TODAY  # the date the fast decoder (engine/decoding.py) reads lines for

        def check_raw(self, raw: RawClaim) -> Any:
            raise KeyError("a bug")

    items = [RawClaim(3, {"claim_id": "K-3"}, (), "K-3"), ClaimLine(4, 5, b'{"claim_id":"K-4"}')]
    decisions = list(check_batch(items, as_decision, engine=BrokenEngine()))  # type: ignore[arg-type]
    assert [(d.position, d.claim_id, d.status) for d in decisions] == [
        (3, "K-3", "reject"),
        (4, "K-4", "reject"),
    ]
    for decision in decisions:
        [finding] = decision.findings
        assert finding.rule == INTERNAL_ERROR_RULE
        assert "(KeyError while checking it)" in finding.message


def test_workers_that_cannot_start_leave_the_claims_to_the_parent(engine: Any) -> None:
    warnings: list[str] = []
    broken = EngineOptions((REPO / "tests/policies/broken/bad-date",), (), TODAY)
    claims = [ClaimLine(i, i + 1, line) for i, line in enumerate(_claim_lines(30))]
    got = [
        d.to_json()
        for d in check_batch(
            claims,
            as_decision,
            engine=engine,
            options=broken,
            workers=2,
            chunk_size=10,
            on_warning=warnings.append,
        )
    ]
    want = [d.to_json() for d in check_batch(claims, as_decision, engine=engine)]
    assert got == want
    assert len(warnings) == 1
    assert warnings[0].startswith("worker processes could not start (PolicyCompileError")
    assert warnings[0].endswith("checking the remaining claims in this process")


# ---- constant memory -----------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_input_is_read_lazily_with_bounded_read_ahead(engine: Any, workers: int) -> None:
    pulled = 0

    def endless() -> Iterator[ClaimLine]:
        nonlocal pulled
        rng = random.Random(3)
        for i in itertools.count():
            pulled += 1
            line = json.dumps(synthetic_claim(rng, i)).encode()
            yield ClaimLine(i, i + 1, line)

    chunk = 50
    window = chunk * workers * 4
    decisions = check_batch(
        endless(), as_decision, engine=engine, workers=workers, chunk_size=chunk
    )
    for done, decision in enumerate(decisions, start=1):
        assert decision.position == done - 1
        if workers == 1:
            assert pulled == done
        else:
            assert pulled - done <= window + chunk + 1
        if done == 1500:
            break
    decisions.close()
    assert not multiprocessing.active_children()


# `cleanclaim check` with stdout replaced by a probe that discards the decisions and
# samples the process's resident memory (Linux /proc) every 1,000 decisions.
RSS_PROBE = """
import json, os, sys
from cleanclaim.engine.cli import main

class Probe:
    def __init__(self):
        self.lines, self.samples = 0, []
    def write(self, text):
        before, self.lines = self.lines, self.lines + text.count("\\n")
        if before // 1000 != self.lines // 1000:
            with open("/proc/self/statm") as statm:
                pages = int(statm.read().split()[1])
            self.samples.append((self.lines, pages * os.sysconf("SC_PAGE_SIZE")))
        return len(text)
    def flush(self):
        pass

if __name__ == "__main__":
    sys.stdout = probe = Probe()
    try:
        main()
    except SystemExit as exit:
        print(json.dumps({"code": exit.code, "lines": probe.lines,
                          "samples": probe.samples}), file=sys.stderr)
"""


@pytest.fixture(scope="module")
def claims_20000(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("batch") / "claims-20000.ndjson"
    path.write_bytes(b"".join(line + b"\n" for line in _claim_lines(20_000, seed=9)))
    return path


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="samples /proc/self/statm")
@pytest.mark.parametrize("workers", [1, 2])
def test_memory_stays_flat_over_20000_claims(
    claims_20000: Path, tmp_path: Path, workers: int
) -> None:
    """From the 2,000th decision to the 20,000th, the resident memory of `check` may not
    grow by 6 MB: keeping the 18,000 decisions, even as text (~470 bytes each), would take
    8.5 MB, as Decision objects several times that."""
    probe = tmp_path / "probe.py"
    probe.write_text(RSS_PROBE)
    run = subprocess.run(
        [
            sys.executable,
            str(probe),
            "check",
            str(claims_20000),
            "--format",
            "ndjson",
            "--workers",
            str(workers),
            "--today",
            TODAY.isoformat(),
        ],
        capture_output=True,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    report = json.loads(run.stderr.decode().splitlines()[-1])
    assert (report["code"], report["lines"]) == (1, 20_000)
    samples = dict(report["samples"])
    growth = max(rss for n, rss in samples.items() if n >= 2000) - samples[2000]
    assert growth < 6_000_000, f"resident memory grew by {growth:,} bytes"


# ---- the command line ----------------------------------------------------------------------


def test_workers_0_means_every_core_and_negative_is_a_usage_error(claims_1200: Path) -> None:
    assert resolve_workers(0) >= 1
    assert resolve_workers(3) == 3
    assert _check(str(claims_1200), "--workers", "-1").returncode == 2
    small = REPO / "payer_policies/examples/claims.json"
    run = _check(str(small), "--workers", "0", "--format", "ndjson")
    assert [json.loads(line)["position"] for line in run.stdout.splitlines()] == [0, 1, 2]


def test_forced_progress_prints_claims_and_rate() -> None:
    small = REPO / "payer_policies/examples/claims.json"
    run = _check(str(small), "--format", "ndjson", "--progress")
    lines = run.stderr.decode().splitlines()
    assert lines, "no progress line"
    assert lines[-1].startswith("[########################] 100%  3 claims  ")
    assert "claims/s" in lines[-1]
    assert "\r" not in run.stderr.decode()  # stderr is not a terminal: whole lines


def _run_with_terminal_stderr(args: list[str], stdout: Any) -> str:
    leader, follower = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "cleanclaim.engine.cli", "check", *args],
            cwd=REPO,
            stdout=stdout,
            stderr=follower,
        )
        os.close(follower)
        seen = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                break
            try:
                data = os.read(leader, 4096)
            except OSError:  # the process closed the terminal
                break
            if not data:
                break
            seen += data
        process.wait(timeout=60)
    finally:
        os.close(leader)
    return seen.decode()


def test_progress_shows_on_a_terminal_only_when_decisions_go_to_a_file(
    claims_1200: Path, tmp_path: Path
) -> None:
    args = [str(claims_1200), "--format", "ndjson"]
    with (tmp_path / "out.ndjson").open("wb") as out:
        shown = _run_with_terminal_stderr(args, out)
    assert "\r[" in shown
    assert "100%  1,200 claims  " in shown
    assert len((tmp_path / "out.ndjson").read_bytes().splitlines()) == 1200
    drain = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        # Decisions into a pipe: no progress, only the run's one NCCI-sample warning.
        shown = _run_with_terminal_stderr(args, drain.stdin)
        assert [line for line in shown.splitlines() if "NCCI sample tables" not in line] == []
    finally:
        assert drain.stdin is not None
        drain.stdin.close()
        drain.wait(timeout=60)


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_is_wanted_only_when_it_cannot_get_in_the_way(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    with open(write_end, "w") as pipe, (tmp_path / "f").open("w") as file:
        terminal, not_terminal = _Stream(True), _Stream(False)
        assert wanted(None, file, terminal)
        assert not wanted(None, pipe, terminal)
        assert not wanted(None, terminal, terminal)
        assert not wanted(None, file, not_terminal)
        assert wanted(True, pipe, not_terminal)
        assert not wanted(False, file, terminal)
    os.close(read_end)


def test_progress_line_redraws_at_most_ten_times_a_second() -> None:
    now = [100.0]
    stream = _Stream(True)
    progress = Progress(stream, total_bytes=1000, clock=lambda: now[0])
    for claims in range(1, 1001):
        now[0] += 0.001  # 1,000 claims/s for one second
        progress.update(claims, claims)
    progress.note("warning: something")
    progress.close()
    text = stream.getvalue()
    assert 9 <= text.count("\r[") <= 11
    assert "\r\x1b[Kwarning: something\n" in text
    assert text.endswith(
        "\r[########################] 100%  1,000 claims  1,000 claims/s  0:01\x1b[K\n"
    )

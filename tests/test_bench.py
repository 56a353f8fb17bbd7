"""`cleanclaim bench`: the workload it measures on, and the shape of its figures (never
their values: timing is for the bench to print, not for tests to assert)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cleanclaim.engine.cli import app


def test_write_workload_gives_the_issue_14_workload_the_same_every_time(tmp_path: Path) -> None:
    files = [tmp_path / "a.ndjson", tmp_path / "b.ndjson"]
    for path in files:
        run = CliRunner().invoke(
            app, ["bench", "--write-workload", str(path), "--claims", "400", "--seed", "14"]
        )
        assert run.exit_code == 0, run.output
    assert files[0].read_bytes() == files[1].read_bytes()
    claims = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert len(claims) == 400
    assert {c["payer"] for c in claims} == {"medicare", "acme-ppo"}
    assert {len(c["lines"]) for c in claims} == set(range(1, 7))
    assert {len(c["diagnoses"]) for c in claims} == set(range(1, 9))


def test_bench_reports_every_figure_of_one_run_side_by_side() -> None:
    # Structure only (the values are the machine's): every figure the issue asks for,
    # the ratios to the floor, and the table and --json built from the same figures.
    from cleanclaim.engine.bench import format_results, run_bench

    results = run_bench(
        60,
        rules=(20, 40),
        rounds=1,
        cold_start=False,
        prior_visits=3000,
        serve_requests=100,
        serve_warmup=50,
    )
    for key in (
        "floor_claims_per_s",
        "check_in_process_claims_per_s",
        "check_subprocess_claims_per_s",
        "evaluate_claims_per_s",
        "decode_claims_per_s",
        "check_in_process_vs_floor",
        "check_subprocess_vs_floor",
        "evaluate_vs_floor",
        "no_history_claims_per_s",
        "history_vs_no_history",
        "workers_1_claims_per_s",
        "workers_n_claims_per_s",
        "workers_n_vs_1",
        "us_per_claim_20_rules",
        "us_per_claim_40_rules",
        "rules_cost_ratio",
        "check_state_claims_per_s",
        "state_vs_no_state",
        "state_vs_no_history",
        "check_state_vs_floor",
        "state_fill_s",
        "serve_p50_ms",
        "serve_p99_ms",
        "serve_max_ms",
        "serve_requests_per_s",
        "serve_server_cpu_ms_per_request",
        "serve_vs_floor",
    ):
        assert results[key] > 0, key
    assert results["state_prior_visits"] == 3000
    assert results["serve_requests"] == 100 and results["serve_concurrency"] == 8
    assert results["serve_p50_ms"] <= results["serve_p99_ms"] <= results["serve_max_ms"]
    assert results["workers_same_bytes"] == 1.0
    assert results["check_in_process_vs_floor"] == pytest.approx(
        results["check_in_process_claims_per_s"] / results["floor_claims_per_s"]
    )
    table = format_results(results)
    for label in (
        "orjson decode + encode floor",
        "of floor",
        "--workers",
        "20 rules",
        "without history",
        "check --state, 3,000 prior visits",
        "serve /v1/check",
        "server CPU a request",
    ):
        assert label in table
    json.dumps(results)  # --json prints exactly these

"""`cleanclaim bench`: the workload it measures on, and the shape of its figures (never
their values: timing is for the bench to print, not for tests to assert)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cleanclaim.engine.cli import app


def test_write_workload_gives_the_issue_14_workload_the_same_every_time(tmp_path: Path) -> None:
    files = [tmp_path / "a.ndjson", tmp_path / "b.ndjson"]
    for path in files:
        run = CliRunner().invoke(app, ["bench", "--write-workload", str(path),
                                       "--claims", "400", "--seed", "14"])
        assert run.exit_code == 0, run.output
    assert files[0].read_bytes() == files[1].read_bytes()
    claims = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert len(claims) == 400
    assert {c["payer"] for c in claims} == {"medicare", "acme-ppo"}
    assert {len(c["lines"]) for c in claims} == set(range(1, 7))
    assert {len(c["diagnoses"]) for c in claims} == set(range(1, 9))

"""`cleanclaim test --run PATTERN` (a case's name or expected rule id: glob with * ? [,
else substring) and `--format json` (one object: cases, file errors, totals) - 13.18."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cleanclaim.engine.cli import app
from tests.test_testing_cmd import FAILING, PASSING, case_file


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["test", *args, "--today", "2026-03-02"])
    return result.exit_code, result.stdout


def test_run_selects_by_case_name_substring(tmp_path: Path) -> None:
    path = case_file(tmp_path, PASSING + FAILING)
    code, out = invoke(str(path), "--run", "alone", "-v")
    assert code == 0, out
    assert "1 passed, 0 failed" in out and "ok   the global ECG alone is clean" in out


def test_run_selects_by_rule_id_glob_and_by_several_patterns(tmp_path: Path) -> None:
    path = case_file(tmp_path, PASSING + FAILING)
    code, out = invoke(str(path), "--run", "medicare/ecg/*")
    assert code == 1 and "1 passed, 1 failed" in out  # both cases that list the ECG rule
    code, out = invoke(str(path), "--run", "medicare/ecg")  # no glob: not a whole-id match
    assert "1 passed, 1 failed" in out
    code, out = invoke(str(path), "--run", "ecg/*")  # a glob matches the whole id
    assert code == 2
    code, out = invoke(str(path), "--run", "alone", "--run", "wrong line")
    assert code == 1 and "1 passed, 1 failed" in out


def test_run_matching_nothing_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["test", str(case_file(tmp_path, PASSING)), "--run", "no such case"]
    )
    assert result.exit_code == 2
    assert "no case matches --run no such case" in result.stderr


def test_format_json_is_one_object(tmp_path: Path) -> None:
    path = case_file(tmp_path, PASSING + FAILING)
    broken = case_file(tmp_path, "  - name: no expect\n", "broken.yaml")
    code, out = invoke(str(path), str(broken), "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert data["totals"] == {"cases": 3, "passed": 2, "failed": 1, "file_errors": 1}
    first, second, failed = data["cases"]
    assert first == {
        "name": "the global ECG alone is clean",
        "file": str(path),
        "line": 16,
        "rule": None,
        "rules": [],
        "passed": True,
        "status": "clean",
        "message": None,
    }
    assert second["rule"] == "medicare/ecg/component-with-global" and second["passed"]
    assert failed["passed"] is False and failed["status"] == "deny"
    assert failed["rules"] == ["medicare/ecg/component-with-global", "medicare/ncci/ptp"]
    assert failed["message"].startswith("status: expected reject, got deny; missing finding")
    assert data["file_errors"][0]["file"] == str(broken)
    assert "coverage" not in data


def test_format_json_with_coverage(tmp_path: Path) -> None:
    code, out = invoke(str(case_file(tmp_path, PASSING)), "--format", "json", "--coverage")
    assert code == 0
    coverage = json.loads(out)["coverage"]
    rules = {r["rule"]: r for r in coverage["medicare"]["rules"]}
    assert rules["medicare/ecg/component-with-global"]["fired"] == 1


def test_the_help_documents_both() -> None:
    out = CliRunner().invoke(app, ["test", "--help"], terminal_width=200).stdout
    assert "--run" in out and "substring" in out and "--format" in out

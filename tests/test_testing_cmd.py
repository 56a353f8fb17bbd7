"""`cleanclaim test` (engine/testing/, engine/cases.py): cases run as pytest runs them,
failures side by side with the rules' positions (and their trace), rule coverage, JUnit
XML, exit codes."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cleanclaim.engine.cases import PolicyCase, load_cases, match_findings
from cleanclaim.engine.cli import app
from cleanclaim.engine.testing import (
    CaseRun,
    discover,
    exit_code,
    render_text,
    run_cases,
    write_junit,
)
from tests.policy_cases_plugin import TODAY, shared_engine

REPO = Path(__file__).resolve().parent.parent

BASE = """\
base:
  claim_id: MC-1
  payer: medicare
  received_date: "2026-03-02"
  member:
    id: 1EG4TE5MK73
    coverage: [{payer: medicare, plan: null, start: "2016-01-01", end: null}]
  billing_provider: {npi: "1234567893"}
  rendering_provider: {npi: "1234567893"}
  place_of_service: "11"
  diagnoses: [R07.9, I48.91]
  lines:
    - {line: 1, code: "93000", units: 1, service_date: "2026-02-10",
       diagnosis_pointers: [1, 2]}
"""
WITH_93010 = """\
    claim:
      lines:
        - {line: 1, code: "93000", units: 1, service_date: "2026-02-10",
           diagnosis_pointers: [1, 2]}
        - {line: 2, code: "93010", units: 1, service_date: "2026-02-10",
           diagnosis_pointers: [1]}
"""


def case_file(tmp_path: Path, cases: str, name: str = "ecg.yaml") -> Path:
    folder = tmp_path / "cases"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(BASE + "cases:\n" + cases, encoding="utf-8")
    return path


PASSING = (
    """\
  - name: the global ECG alone is clean
    expect: {status: clean, findings: []}
  - name: 93010 with 93000 is bundled
"""
    + WITH_93010
    + """\
    expect:
      status: deny
      findings:
        - {rule: medicare/ecg/component-with-global, line: 2, carc: "236"}
"""
)
FAILING = (
    """\
  - name: expected the wrong line and CARC
"""
    + WITH_93010
    + """\
    expect:
      status: reject
      findings:
        - {rule: medicare/ecg/component-with-global, line: 1, carc: "50", rarc: [M15]}
        - {rule: medicare/ncci/ptp, line: 2}
"""
)


def run(paths: list[Path], coverage: bool = False, trace: Any = None) -> CaseRun:
    return run_cases(shared_engine(), paths, coverage=coverage, trace=trace)


def test_passing_cases_pass(tmp_path: Path) -> None:
    result = run([case_file(tmp_path, PASSING)])
    assert [r.passed for r in result.results] == [True, True]
    assert exit_code(result, None) == 0
    text = render_text(result, coverage=False)
    assert text.startswith(f"{tmp_path}/cases/ecg.yaml: 2 passed\n")
    assert text.splitlines()[-1].startswith("2 passed, 0 failed in ")


def test_a_failure_shows_expected_and_actual_side_by_side(tmp_path: Path) -> None:
    path = case_file(tmp_path, FAILING)
    result = run([path])
    (failed,) = result.failed
    assert exit_code(result, None) == 1
    report = failed.report.splitlines()
    assert report[0] == "  status: expected reject, got deny"
    # The expected finding is paired with the actual one of its rule; ≠ marks what differs.
    rows = [line.split("|") for line in report if "|" in line]
    by_field = {r[0].split()[0]: (r[0].split()[1:], r[1].strip()) for r in rows[1:5]}
    assert by_field["rule"] == (
        ["medicare/ecg/component-with-global"],
        "medicare/ecg/component-with-global",
    )
    assert by_field["line"] == (["1", "≠"], "2")
    assert by_field["carc"] == (["50", "≠"], "236")
    assert by_field["rarc"] == (["[M15]", "≠"], "[]")
    # The expected PTP finding has no counterpart.
    assert any("(no such finding)" in line for line in report)
    assert (
        "  rule medicare/ecg/component-with-global: payer_policies/medicare/"
        "cardiology.policy:" in failed.report
    )
    assert "  rule medicare/ncci/ptp: payer_policies/medicare/ncci.policy:" in failed.report
    text = render_text(result, coverage=False)
    assert f"FAIL {path}:" in text and ": expected the wrong line and CARC" in text


def test_an_unexpected_finding_stands_alone(tmp_path: Path) -> None:
    result = run(
        [
            case_file(
                tmp_path,
                """\
  - name: nothing was expected
"""
                + WITH_93010
                + """\
    expect: {findings: []}
""",
            )
        ]
    )
    (failed,) = result.failed
    assert "(not expected)" in failed.report
    assert failed.problems == [
        "unexpected finding: rule=medicare/ecg/component-with-global, line=2, CO-236, "
        "root_cause=coding: 93010 is a component of the global ECG also billed for "
        "2026-02-10: bill the global code alone, or mark a separate encounter with XU/59"
    ]


def test_the_trace_hook_is_called_for_each_rule_involved(tmp_path: Path) -> None:
    seen: list[str] = []

    def trace(engine: Any, case: PolicyCase, rule_id: str) -> str:
        seen.append(rule_id)
        return f"trace of {rule_id}"

    (failed,) = run([case_file(tmp_path, FAILING)], trace=trace).failed
    assert seen == ["medicare/ecg/component-with-global", "medicare/ncci/ptp"]
    assert "    trace of medicare/ncci/ptp" in failed.report


def test_the_default_trace_is_explain(tmp_path: Path) -> None:
    from cleanclaim.engine.testing import explain_trace

    (failed,) = run([case_file(tmp_path, FAILING)], trace=explain_trace).failed
    assert "FIRED  medicare/ecg/component-with-global" in failed.report
    assert "passed medicare/ncci/ptp" in failed.report


def test_coverage_counts_fired_and_passed_targets(tmp_path: Path) -> None:
    result = run([case_file(tmp_path, PASSING)], coverage=True)
    medicare = result.coverage["medicare"]
    component = medicare["medicare/ecg/component-with-global"]
    # Case 1: 93000 alone (not in scope); case 2: line 2 fired. In force once, fired once.
    assert (component.fired, component.passed, component.status) == (1, 0, "never passed")
    timely = medicare["medicare/timely-filing/one-year"]
    assert (timely.fired, timely.passed, timely.status) == (0, 3, "never fired")
    untouched = medicare["medicare/necessity/tte-lcd-l33577"]
    assert (untouched.fired, untouched.passed, untouched.status) == (0, 0, "untouched")
    assert set(result.coverage) == {"medicare"}
    assert result.coverage_percent("medicare") == 0.0
    text = render_text(result, coverage=True, minimum=50)
    assert "coverage of medicare: 0 of " in text
    assert "coverage of medicare is 0%, below the minimum of 50%" in text
    assert exit_code(result, 50) == 1 and exit_code(result, None) == 0


def test_coverage_of_the_shipped_cases() -> None:
    result = run(discover([], shared_engine().roots), coverage=True)
    assert result.failed == [] and result.file_errors == []
    for pack in ("medicare", "acme-ppo"):
        rules = result.coverage[pack]
        assert all(r.status != "untouched" for r in rules.values()), pack
        # `when true` rules cannot pass; they count as covered once fired.
        assert (
            rules.get("acme-ppo/coverage/cosmetic") is None
            or rules["acme-ppo/coverage/cosmetic"].status == "covered"
        )


def test_an_included_librarys_rules_are_reported_apart_from_the_packs_own() -> None:
    # Issue 13.16: acme-ppo's coverage counted common's rules against it.
    import json

    from cleanclaim.engine.testing import render_json

    result = run(discover(["acme-ppo"], shared_engine().roots), coverage=True)
    own, common = result.rules_of("acme-ppo", "acme-ppo"), result.rules_of("acme-ppo", "common")
    assert own and all(r.rule.startswith("acme-ppo/") and not r.included for r in own)
    assert common and all(r.rule.startswith("common/") and r.included for r in common)
    assert len(own) + len(common) == len(result.coverage["acme-ppo"])
    covered = sum(r.status == "covered" for r in own)
    assert result.coverage_percent("acme-ppo") == 100.0 * covered / len(own)
    assert result.origins("acme-ppo") == ["acme-ppo", "common"]
    text = render_text(result, coverage=True)
    assert f"coverage of acme-ppo: {covered} of {len(own)} rules" in text
    assert (
        "coverage of common's rules included in acme-ppo (not counted in acme-ppo's): "
        f"{sum(r.status == 'covered' for r in common)} of {len(common)} rules" in text
    )
    data = json.loads(render_json(result, coverage=True))["coverage"]["acme-ppo"]
    assert {r["rule"] for r in data["rules"]} == {r.rule for r in own}
    assert {r["rule"] for r in data["included"]["common"]["rules"]} == {r.rule for r in common}


def test_dated_versions_are_counted_one_by_one() -> None:
    files = discover(["acme-ppo"], shared_engine().roots)
    result = run([f for f in files if f.name == "timely-filing.yaml"], coverage=True)
    entry = result.coverage["acme-ppo"]["acme-ppo/timely-filing/limit"]
    assert entry.version_labels == ("2026-01-01..", "..2025-12-31")
    assert all(fired and passed for fired, passed in entry.versions.values())
    assert "version ..2025-12-31" in render_text(result, coverage=True)


def test_junit_xml(tmp_path: Path) -> None:
    path = case_file(tmp_path, PASSING + FAILING)
    result = run([path], coverage=True)
    out = tmp_path / "junit.xml"
    with out.open("w", encoding="utf-8") as f:
        write_junit(result, f, minimum=90)
    root = ET.parse(out).getroot()
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "3", "1")
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == str(path)
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "the global ECG alone is clean",
        "93010 with 93000 is bundled",
        "expected the wrong line and CARC",
    ]
    failure = cases[2].find("failure")
    assert failure is not None and failure.get("message") == "status: expected reject, got deny"
    assert "≠" in (failure.text or "")
    coverage = [s for s in root.findall("testsuite") if s.get("name") == "coverage"]
    assert coverage and coverage[0].find("testcase/failure") is not None


def test_a_broken_case_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    broken = case_file(tmp_path, "  - name: no expect\n", "broken.yaml")
    result = run([broken, case_file(tmp_path, PASSING)])
    assert len(result.file_errors) == 1 and len(result.results) == 2
    assert exit_code(result, None) == 1
    assert f"ERROR {broken}: " in render_text(result, coverage=False)


def test_history_claims_are_checked_before_the_case_claim(tmp_path: Path) -> None:
    path = case_file(
        tmp_path,
        """\
  - name: the same service on an earlier claim
    history:
      - {claim_id: MC-0}
    expect: {status: deny}
  - name: alone
    expect: {status: clean}
""",
    )
    (with_history, alone) = load_cases(path)
    assert len(with_history.history) == 1 and with_history.history[0]["claim_id"] == "MC-0"
    assert with_history.history[0]["payer"] == "medicare"  # merged onto `base`
    assert alone.history == ()
    result = run([path])
    assert result.failed == []
    decision = result.results[0].decision
    assert decision is not None and decision.claim_id == "MC-1"
    assert any("duplicate" in f.rule for f in decision.findings)


def test_match_findings_pairs_one_to_one() -> None:
    from cleanclaim.engine.decision import Finding

    def finding(line: int) -> Finding:
        return Finding(
            "r", "coding", "deny", line, "CO", "4", [], "coding", "coding", "m", None, None
        )

    match = match_findings([{"rule": "r"}, {"rule": "r", "line": 3}], [finding(1), finding(2)])
    assert len(match.matched) == 1 and match.missing == [{"rule": "r", "line": 3}]
    assert [f.line for f in match.unexpected] == [2]


# ---- the command ------------------------------------------------------------------------


def test_the_command_on_the_shipped_packs() -> None:
    result = CliRunner().invoke(app, ["test", "--today", TODAY.isoformat()])
    assert result.exit_code == 0, result.output
    assert "payer_policies/medicare/cases/ecg.yaml: " in result.output
    assert " 0 failed in " in result.output


def test_the_command_with_coverage_and_junit(tmp_path: Path) -> None:
    out = tmp_path / "j.xml"
    result = CliRunner().invoke(
        app,
        ["test", "acme-ppo", "--coverage", "--junit-xml", str(out), "--today", TODAY.isoformat()],
    )
    assert result.exit_code == 0, result.output
    assert "coverage of acme-ppo: " in result.output
    assert ET.parse(out).getroot().get("failures") == "0"
    below = CliRunner().invoke(
        app, ["test", "acme-ppo", "--min-coverage", "101", "--today", TODAY.isoformat()]
    )
    assert below.exit_code == 1 and "below the minimum of 101%" in below.output


def test_the_command_fails_on_a_failing_case_and_on_nothing_to_run(tmp_path: Path) -> None:
    path = case_file(tmp_path, FAILING)
    result = CliRunner().invoke(app, ["test", str(path), "--no-trace"])
    assert result.exit_code == 1 and "FAIL " in result.output
    assert CliRunner().invoke(app, ["test", "no-such-pack"]).exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert CliRunner().invoke(app, ["test", str(empty)]).exit_code == 2


@pytest.mark.parametrize("today", [TODAY, dt.date(2027, 1, 1)])
def test_cases_with_their_own_today_do_not_depend_on_the_run_date(today: dt.date) -> None:
    files = [
        p for p in discover(["medicare"], shared_engine().roots) if p.name == "timely-filing.yaml"
    ]
    engine = shared_engine()
    saved = engine.today
    engine.today = today
    try:
        dated = [r for r in run(files).results if r.case.today is not None]
    finally:
        engine.today = saved
    assert dated and all(r.passed for r in dated)

"""`explain`: every rule considered for a claim, fired or not, with the values it saw."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from typer.testing import CliRunner

from cleanclaim.dsl.explain import render_text
from cleanclaim.engine.cli import app


def _claim(diagnosis: str, code: str = "93306", **extra: Any) -> dict[str, Any]:
    claim: dict[str, Any] = {
        "claim_id": "X-1",
        "payer": "medicare",
        "received_date": "2026-03-02",
        "member": {
            "id": "M",
            "coverage": [{"payer": "medicare", "start": "2016-04-01", "end": None}],
        },
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "place_of_service": "11",
        "diagnoses": [diagnosis],
        "lines": [
            {
                "line": 1,
                "code": code,
                "units": 1,
                "service_date": "2026-02-12",
                "diagnosis_pointers": [1],
            }
        ],
    }
    claim.update(extra)
    return claim


def _acme_vitamin_d(diagnosis: str) -> dict[str, Any]:
    # A rule that denies on a complete list. (The TTE rule's A56781 list is partial, so it
    # reviews: tests/test_partial_data.py; content helper, issue 11.)
    claim = _claim(diagnosis, code="82306", payer="acme-ppo", plan="silver")
    claim["member"]["coverage"][0]["payer"] = "acme-ppo"
    return claim


VITAMIN_D = "acme-ppo/necessity/vitamin-d"


def test_fired_rule_shows_the_values_it_saw_in_plain_words(engine: Any) -> None:
    decision, traces = engine.explain(_acme_vitamin_d("M54.50"), VITAMIN_D)
    assert decision.status == "deny"
    [trace] = traces
    assert trace.status == "fired"
    assert trace.target == "line 1"
    assert trace.file == "payer_policies/acme-ppo/coverage.policy"
    [condition] = trace.conditions
    assert condition.source == "no of line.pointed_diagnoses in vitamin_d_covered"
    assert condition.result is True
    texts = {v.label: v.text for v in condition.values}
    assert texts["line.pointed_diagnoses"] == "M54.50 (low back pain, unspecified)"
    assert texts["of line.pointed_diagnoses, in vitamin_d_covered"] == "(none)"
    text = render_text(decision.claim_id, traces)
    assert f"FIRED  {VITAMIN_D}" in text
    assert "deny CO-50" in text


def test_rule_that_passes_says_which_condition_was_false(engine: Any) -> None:
    _, traces = engine.explain(_acme_vitamin_d("E55.9"), VITAMIN_D)
    [trace] = traces
    assert trace.status == "passed"
    assert "is false" in trace.reason
    texts = {v.label: v.text for v in trace.conditions[0].values}
    assert texts["of line.pointed_diagnoses, in vitamin_d_covered"].startswith("E55.9 (")


def test_every_rule_considered_for_each_line_and_only_those(engine: Any) -> None:
    _, traces = engine.explain(_claim("R07.9", code="99213"))
    rules = {t.rule for t in traces if t.target == "line 1"}
    assert "medicare/timely-filing/one-year" in rules
    assert "medicare/necessity/tte-lcd-l33577" not in rules  # not indexed for 99213
    assert {t.target for t in traces} == {"claim", "diagnosis 1", "line 1"}
    # Nothing fires on this clean office visit; a rule whose filter the claim is outside
    # (the facility PC/TC rule: place of service 11) is considered and says why it skipped.
    assert {t.status for t in traces} == {"passed", "filtered out"}
    [skipped] = [t for t in traces if t.status == "filtered out"]
    assert skipped.rule == "medicare/pctc/global-or-tc-in-facility"
    assert "place of service is 11" in skipped.reason


def test_filters_and_dated_versions_are_explained(engine: Any) -> None:
    claim = _claim("R07.9", code="93306", payer="acme-ppo", plan="gold")
    claim["member"]["coverage"][0]["payer"] = "acme-ppo"
    _, traces = engine.explain(claim, "acme-ppo/timely-filing/limit")
    [trace] = traces
    assert trace.version == "effective 2026-01-01"
    assert trace.lets[0].label == "limit" and trace.lets[0].text == "90"


def test_cli_json_trace_and_unknown_rule(tmp_path: Any) -> None:
    path = tmp_path / "claim.json"
    path.write_text(json.dumps(_acme_vitamin_d("M54.50")))
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["explain", str(path), "--format", "json", "--rule", VITAMIN_D, "--today", "2026-03-02"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["decision"]["status"] == "deny"
    assert data["trace"][0]["status"] == "fired"
    result = runner.invoke(app, ["explain", str(path), "--rule", "medicare/nope"])
    assert result.exit_code == 2


def test_tracing_adds_nothing_to_the_evaluator(engine: Any) -> None:
    # The evaluator's generated code has no trace hooks; tracers are built on demand.
    for program in engine.programs.values():
        assert "seen" not in program.source and "trace" not in program.source


def test_plugin_pack_rules_are_traced_under_their_finding_names() -> None:
    from cleanclaim.engine import Engine

    engine = Engine(today=dt.date(2026, 3, 2), plugins=["cardiology"])
    ecg = _claim("R07.9", code="93000")
    decision, traces = engine.explain(ecg)
    plugin_findings = {f.rule for f in decision.findings if "@" in f.rule}
    assert plugin_findings  # no documentation: the cardiology plugin's rules fire
    fired = {t.rule for t in traces if t.status == "fired"}
    assert plugin_findings <= fired
    traced = [t for t in traces if t.rule.startswith("cardiology@")]
    assert traced and all(t.file.startswith("cardiology/") for t in traced)
    # One plugin rule by its finding name.
    name = sorted(plugin_findings)[0]
    _, only = engine.explain(ecg, name)
    assert {t.rule for t in only} == {name}
    assert render_text("X-1", only).count(name) == len(only)

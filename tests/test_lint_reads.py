"""lint W405 (a comparison of an optional field without `is present`) and W406 (a plan
name no claim of the pack's cases has), dsl/lint/reads.py: where they fire, where they do
not, and that W405 fires exactly where the engine gives its "needs ..." review."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cleanclaim.dsl.lint import LintReport, lint
from cleanclaim.engine.engine import Engine
from cleanclaim.engine.testing import lint_environment

TODAY = dt.date(2026, 3, 2)
ENV, LOADERS, _ROOTS = lint_environment(None)


def rule(name: str, condition: str, scope: str = "codes [88142]", extra: str = "") -> str:
    return (
        f'rule "demo/{name}"\n  applies to {scope}\n  root cause medical_necessity\n'
        f'{extra}  when {condition}\n  then deny CO-50 with N95\n  reference "r"\nend\n'
    )


def make(
    root: Path, text: str, manifest: str = "id: demo\n", cases: dict[str, str] | None = None
) -> Path:
    pack = root / "demo"
    pack.mkdir(parents=True, exist_ok=True)
    (pack / "pack.yaml").write_text(manifest, encoding="utf-8")
    (pack / "rules.policy").write_text("version 1\n" + text, encoding="utf-8")
    for name, body in (cases or {}).items():
        (pack / "cases").mkdir(exist_ok=True)
        (pack / "cases" / name).write_text(body, encoding="utf-8")
    return pack


def run(root: Path) -> LintReport:
    return lint([str(root / "demo")], ENV, roots=[root], today=TODAY, table_loaders=LOADERS)


def found(report: LintReport, code: str) -> list[tuple[int, str]]:
    return [(p.span.line, p.message) for p in report.problems if p.code == code]


def test_an_unguarded_sex_comparison_warns_at_the_comparison(tmp_path: Path) -> None:
    make(tmp_path, rule("pap", 'member.sex != "F"'))
    ((line, message),) = found(run(tmp_path), "W405")
    assert line == 5 and "member.sex" in message and "review CO-16" in message


def test_guarded_quantified_and_answered_reads_do_not_warn(tmp_path: Path) -> None:
    make(
        tmp_path,
        rule("a", 'member.sex is present and member.sex != "F"')
        + rule("b", 'member.sex is missing or member.sex == "M"')
        + rule("c", "any o in other_lines where o.units > 1")  # plain rule inside `any`
        + rule("d", 'claim.plan == "gold"')  # no plan is an answer
        + rule("e", 'line.code == "88142"')  # the scope's code is there
        + rule("f", "line.charge in [1]".replace("[1]", '["1"]')),
    )  # `in`: plain rule
    assert found(run(tmp_path), "W405") == []


def test_a_field_the_pack_rejects_when_missing_does_not_warn(tmp_path: Path) -> None:
    required = (
        'rule "demo/required/units"\n  applies to all lines\n  root cause submission\n'
        "  when line.units is missing or line.units <= 0\n"
        '  then reject CO-16 with M53\n  reference "r"\nend\n'
    )
    make(tmp_path, rule("units", "line.units > 2"))
    assert [m for _l, m in found(run(tmp_path), "W405")] != []
    make(tmp_path, rule("units", "line.units > 2") + required)
    assert found(run(tmp_path), "W405") == []


def test_a_table_row_warns_unless_its_key_is_tested_or_literal(tmp_path: Path) -> None:
    table = 'table limits = key "plan" columns "plan", "visits"\n  row "gold", 20\nend\n'
    make(
        tmp_path,
        table
        + rule("a", "count(claim.lines) > limits[claim.plan].visits", "claim")
        + rule(
            "b", "claim.plan in limits and count(claim.lines) > limits[claim.plan].visits", "claim"
        )
        + rule("c", 'count(claim.lines) > limits["gold"].visits', "claim"),
    )
    report = run(tmp_path)
    assert [m.split(" reads")[0] for _l, m in found(report, "W405")] == ["rule `demo/a`"]


CLAIM = {
    "claim_id": "P-1",
    "payer": "demo",
    "received_date": "2026-03-02",
    "member": {
        "id": "X",
        "birth_date": "1980-01-01",
        "coverage": [{"payer": "demo", "start": "2016-01-01", "end": None}],
    },
    "billing_provider": {"npi": "1234567893"},
    "rendering_provider": {"npi": "1234567893"},
    "place_of_service": "11",
    "diagnoses": ["Z12.4"],
    "lines": [
        {
            "line": 1,
            "code": "88142",
            "units": 1,
            "charge": "30.00",
            "service_date": "2026-02-10",
            "diagnosis_pointers": [1],
        }
    ],
}


def test_w405_marks_the_rules_the_engine_reviews_on_a_claim_without_the_field(
    tmp_path: Path,
) -> None:
    make(
        tmp_path,
        rule("warned", 'member.sex != "F"')
        + rule("guarded", 'member.sex is present and member.sex != "F"'),
    )
    warned = {m.split("`")[1] for _l, m in found(run(tmp_path), "W405")}
    decision = Engine([tmp_path], today=TODAY, plugins=[]).check(CLAIM)  # no sex
    reviewed = {f.rule for f in decision.findings if f.severity == "review"}
    assert warned == reviewed == {"demo/warned"}, decision.to_json()


CASES = """cases:
  - name: gold
    claim: {claim_id: G-1, payer: demo, plan: GOLD}
    expect: {status: clean}
  - name: a silver member
    claim:
      claim_id: S-1
      member: {id: S, coverage: [{payer: demo, plan: silver, start: "2016-01-01"}]}
    expect: {status: clean}
"""


def test_a_plan_no_case_has_warns_case_insensitively(tmp_path: Path) -> None:
    make(
        tmp_path,
        rule("a", "line.units > 0", "all lines", '  plan is "gold"\n')
        + rule("b", 'claim.plan == "Silver"', "all lines")
        + rule("c", 'claim.plan in ["platinum", "gold"]', "all lines")
        + rule("d", "line.units > 0", "all lines", '  plan is not "glod"\n'),
        cases={"plans.yaml": CASES},
    )
    report = run(tmp_path)
    assert [(line, m.split('"')[1]) for line, m in found(report, "W406")] == [
        (20, "platinum"),
        (27, "glod"),
    ], report.render()


def test_plans_of_a_roster_in_the_cases_count(tmp_path: Path) -> None:
    make(
        tmp_path,
        rule("a", "line.units > 0", "all lines", '  plan is "bronze"\n'),
        cases={"roster.csv": "member_id,payer,plan,start\nM1,demo,Bronze,2016-01-01\n"},
    )
    assert found(run(tmp_path), "W406") == []


def test_a_pack_without_cases_is_not_checked_for_plans(tmp_path: Path) -> None:
    make(tmp_path, rule("a", "line.units > 0", "all lines", '  plan is "bronze"\n'))
    assert found(run(tmp_path), "W406") == []

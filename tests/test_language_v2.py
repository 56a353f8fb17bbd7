"""The second edition of the policy language (issue 13): string lists, missing values,
calendar months, message expressions and the plan of a claim. Each test builds a small
pack and checks the decisions (or the located errors) its text gives."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cleanclaim.dsl.errors import PolicyCompileError
from cleanclaim.dsl.fmt import format_policy
from cleanclaim.engine import Engine
from cleanclaim.engine.decision import Decision

TODAY = dt.date(2026, 11, 27)
_COUNTER = itertools.count()


@pytest.fixture(scope="module")
def make(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Engine]]:
    base = tmp_path_factory.mktemp("lang2")

    def build(text: str) -> Engine:
        root = base / f"root{next(_COUNTER)}"
        (root / "t").mkdir(parents=True)
        (root / "t" / "pack.yaml").write_text("id: t\nname: test pack\n", encoding="utf-8")
        (root / "t" / "rules.policy").write_text(text, encoding="utf-8")
        return Engine(policy_roots=[root], today=TODAY, plugins=())

    yield build


def errors_of(make: Callable[[str], Engine], text: str) -> list[str]:
    with pytest.raises(PolicyCompileError) as info:
        make(text)
    return [f"{e.code} {e.message} | {e.hint}" for e in info.value.errors]


def claim(*lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "claim_id": "C-1",
        "payer": "t",
        "plan": "silver",
        "frequency": "original",
        "received_date": "2026-03-02",
        "member": {
            "id": "M1",
            "birth_date": "1951-04-12",
            "sex": "F",
            "coverage": [{"payer": "t", "start": "2016-04-01", "end": None}],
        },
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "place_of_service": "11",
        "diagnoses": ["R07.9"],
        "authorizations": [],
        "lines": list(lines) or [line()],
    }
    data.update(fields)
    return data


def line(code: str = "93000", number: int = 1, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "line": number,
        "code": code,
        "modifiers": [],
        "units": 1,
        "charge": "45.00",
        "service_date": "2026-02-10",
        "diagnosis_pointers": [1],
    }
    data.update(fields)
    return data


def rule(
    rule_id: str, when: str, scope: str = "all lines", extra: str = "", message: str | None = None
) -> str:
    return (
        f'rule "t/{rule_id}"\n  applies to {scope}\n  root cause coding\n{extra}'
        f'  when {when}\n  then deny CO-97\n  message "{message or rule_id}"\nend\n'
    )


def fired(decision: Decision) -> list[str]:
    failed = [f.rule for f in decision.findings if "could not be applied" in f.message]
    assert not failed, f"rules failed at run time: {failed}"
    return sorted({f.rule.removeprefix("t/") for f in decision.findings})


# ---- 13.7 string lists ----------------------------------------------------------------


def test_string_lists_in_and_not_in(make: Callable[[str], Engine]) -> None:
    engine = make(
        "version 1\n"
        + rule("inpatient", 'claim.place_of_service in ["21", "23"]')
        + rule("not-office", 'claim.place_of_service not in ["11", "22",]')
        + rule("star", 'claim.place_of_service in ["2*"]', "claim")
    )
    assert fired(engine.check(claim(place_of_service="21"))) == ["inpatient", "not-office"]
    assert fired(engine.check(claim(place_of_service="23"))) == ["inpatient", "not-office"]
    assert fired(engine.check(claim(place_of_service="11"))) == []
    assert fired(engine.check(claim(place_of_service="22"))) == []
    assert fired(engine.check(claim(place_of_service="2*"))) == ["not-office", "star"]


@pytest.mark.parametrize(
    ("when", "fragment"),
    [
        ('line.code in ["93000"]', "write the codes without quotes: [93000, 93005]"),
        ('any of line.pointed_diagnoses in ["R07.9"]', "write the codes without quotes: [R07.9"),
        ('line.units in ["1", "2"]', "a number is never in a list of strings"),
    ],
)
def test_a_string_list_of_the_wrong_type_is_a_located_error(
    make: Callable[[str], Engine], when: str, fragment: str
) -> None:
    found = errors_of(make, "version 1\n" + rule("a", when))
    assert any(fragment in e and e.startswith("E201") for e in found), found


def test_string_lists_format_and_keep_their_quotes() -> None:
    text = (
        'version 1\n\nrule "t/a"\n  applies to all lines\n  root cause coding\n'
        '  when claim.place_of_service in ["21","23" ,]\n  then deny CO-97\nend\n'
    )
    assert 'in ["21", "23"]' in format_policy(text)


# ---- 13.3 an absent referring provider is missing -------------------------------------


def test_an_absent_referring_provider_is_missing(make: Callable[[str], Engine]) -> None:
    engine = make(
        "version 1\n"
        + rule("no-ref", "claim.referring_provider is missing", "claim")
        + rule("ref", "claim.referring_provider is present", "claim")
        + rule("no-npi", "claim.referring_provider.npi is missing", "claim")
        + rule(
            "let-npi",
            'p is present and p.npi == "1245319599"',
            "claim",
            "  let p = claim.referring_provider\n",
        )
        + rule(
            "line",
            'claim.referring_provider.npi != "1"',
            "all lines",
            message="npi {claim.referring_provider.npi}",
        )
    )
    # (no referring provider is an answer: its NPI is missing, not unknown)
    assert fired(engine.check(claim(referring_provider=None))) == ["no-npi", "no-ref"]
    assert fired(engine.check(claim())) == ["no-npi", "no-ref"]
    assert fired(engine.check(claim(referring_provider={"npi": None}))) == ["no-npi", "ref"]
    decision = engine.check(claim(referring_provider={"npi": "1245319599"}))
    assert fired(decision) == ["let-npi", "line", "ref"]
    assert [f.message for f in decision.findings if f.rule == "t/line"] == ["npi 1245319599"]
    for data in (claim(), claim(referring_provider={"npi": "1245319599"})):
        decision, traces = engine.explain(data)
        assert not [t for t in traces if t.status == "error"]
        assert sorted({t.rule.removeprefix("t/") for t in traces if t.status == "fired"}) == (
            fired(decision)
        )


# ---- 13.2 missing values --------------------------------------------------------------


def _review_of(decision: Decision, rule_id: str) -> list[str]:
    return [
        f.message
        for f in decision.findings
        if f.rule == f"t/{rule_id}" and f.severity == "review" and f.carc == "16"
    ]


def test_comparisons_with_a_missing_value_are_unknown_and_not_agrees(
    make: Callable[[str], Engine],
) -> None:
    engine = make(
        "version 1\n"
        + rule("ne", 'member.sex != "F"', "claim")
        + rule("not-eq", 'not (member.sex == "F")', "claim")
        + rule("eq", 'member.sex == "F"', "claim")
        + rule("age", "years_between(member.birth_date, claim.first_service_date) < 18", "claim")
        + rule(
            "adult",
            "not adult",
            "claim",
            "  let adult = years_between(member.birth_date, claim.first_service_date) >= 18\n",
        )
        + rule("and-false", 'member.sex == "M" and claim.claim_id == "other"', "claim")
        + rule("or-true", 'member.sex == "M" or claim.claim_id == "C-1"', "claim")
    )
    known = engine.check(claim())
    assert fired(known) == ["eq", "or-true"]
    member = {"id": "M1", "coverage": [{"payer": "t", "start": "2016-04-01", "end": None}]}
    unknown = engine.check(claim(member=member))
    for rule_id in ("ne", "not-eq", "eq"):
        assert _review_of(unknown, rule_id) == [f"needs member.sex to decide: t/{rule_id}"]
    for rule_id in ("age", "adult"):
        assert _review_of(unknown, rule_id) == [f"needs member.birth_date to decide: t/{rule_id}"]
    assert not [f for f in unknown.findings if f.severity == "deny" and f.rule != "t/or-true"]
    assert _review_of(unknown, "and-false") == []  # unknown and false: false
    assert [f.severity for f in unknown.findings if f.rule == "t/or-true"] == ["deny"]
    assert unknown.status == "deny"


def test_a_rule_that_tests_the_field_keeps_the_plain_rule(make: Callable[[str], Engine]) -> None:
    engine = make(
        "version 1\n"
        + rule("guarded", 'member.sex is present and member.sex != "F"', "claim")
        + rule("either", 'member.sex is missing or member.sex == "M"', "claim")
        + rule(
            "other", '(member.sex is missing and claim.plan == "x") or member.sex == "M"', "claim"
        )
    )
    member = {"id": "M1", "coverage": [{"payer": "t", "start": "2016-04-01", "end": None}]}
    decision = engine.check(claim(member=member))
    assert fired(decision) == ["either"]
    assert [f.severity for f in decision.findings] == ["deny"]


def test_missing_values_on_lines_and_the_general_body_agree(make: Callable[[str], Engine]) -> None:
    engine = make("version 1\n" + rule("units", "line.units > 2"))
    decision = engine.check(
        claim(line(units=None), line(number=2, units=3), line(number=3, units=1))
    )
    assert [(f.line, f.severity) for f in decision.findings] == [(1, "review"), (2, "deny")]
    assert decision.findings[0].message == "needs line.units to decide: t/units"


# Which fields can be missing is checked against docs/language.md's field tables by
# tests/test_language_doc.py (this page was folded into it).


# ---- 13.5 calendar months ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "full"),
    [
        ("2025-03-15", "2026-02-28", 10),
        ("2025-03-15", "2026-03-01", 11),
        ("2025-03-31", "2026-03-01", 11),
        ("2025-03-15", "2025-03-31", 0),
        ("2025-03-15", "2025-04-01", 0),
        ("2025-03-15", "2025-05-01", 1),
        ("2025-12-31", "2026-02-01", 1),
    ],
)
def test_full_months_after_the_month_of_the_last_service(a: str, b: str, full: int) -> None:
    from cleanclaim.dsl.types import full_months_between

    assert full_months_between(dt.date.fromisoformat(a), dt.date.fromisoformat(b)) == full


def test_calendar_month_functions_in_a_policy(make: Callable[[str], Engine]) -> None:
    """AWV (G0439): covered once 11 full months have passed after the month of the last
    one (42 CFR 410.15; Medicare Claims Processing Manual ch. 18 section 140)."""
    engine = make(
        "version 1\n"
        + rule("awv-too-soon", "full_months_between(2025-03-15, line.service_date) < 11")
        + rule("month", "start_of_month(line.service_date) == 2026-02-01")
        + rule("year", "start_of_year(line.service_date) == 2026-01-01")
        + rule(
            "next",
            "start_of_next_month(2025-12-31) == 2026-01-01"
            " and start_of_next_month(line.service_date) == 2026-03-01",
        )
        + rule(
            "add",
            "add_months(2026-01-31, 1) == 2026-02-28"
            " and months_between(2026-01-31, 2026-02-28) == 1",
        )
    )
    assert fired(engine.check(claim(line(service_date="2026-02-27")))) == [
        "add",
        "awv-too-soon",
        "month",
        "next",
        "year",
    ]
    assert fired(engine.check(claim(line(service_date="2026-03-01")))) == ["add", "year"]


# ---- 13.10 message templates accept expressions -----------------------------------------


def test_message_templates_accept_expressions(make: Callable[[str], Engine]) -> None:
    engine = make(
        "version 1\n"
        + rule(
            "late",
            "days_between(line.service_date, claim.received_date) > 1",
            message="late by {days_between(line.service_date, claim.received_date)} days; "
            '{line.units + 1} units; sex F: {member.sex == \\"F\\"}; {line.code}',
        )
    )
    decision = engine.check(claim())
    assert [f.message for f in decision.findings] == [
        "late by 20 days; 2 units; sex F: True; 93000"
    ]
    _, traces = engine.explain(claim())
    assert [t.message for t in traces if t.status == "fired"] == [
        f.message for f in decision.findings
    ]


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{days_between(line.service_date)}", "E202"),
        ("{nope(line.code)}", "unknown function `nope`"),
        ("{line.units +}", "is not a field, a name or an expression"),
        ("{[93000]}", "which a message cannot show"),
    ],
)
def test_a_bad_expression_in_a_message_is_a_located_error(
    make: Callable[[str], Engine], template: str, fragment: str
) -> None:
    text = "version 1\n" + rule("a", "true", message=template)
    with pytest.raises(PolicyCompileError) as info:
        make(text)
    errors = [e for e in info.value.errors if fragment in f"{e.code} {e.message}"]
    assert errors, [e.message for e in info.value.errors]
    message_line = text.splitlines().index(f'  message "{template}"') + 1
    assert {(e.span.line, e.span.column >= 12) for e in errors} == {(message_line, True)}


# ---- 13.4 the plan of a claim ---------------------------------------------------------


def test_the_plan_is_the_claim_s_else_the_coverage_span_s_and_case_insensitive(
    make: Callable[[str], Engine],
) -> None:
    engine = make(
        "version 1\n"
        + rule("filter", "true", extra='  plan is "Gold"\n')
        + rule("eq", 'claim.plan == "GOLD"')
        + rule("list", 'claim.plan in ["gold", "platinum"]', "claim")
        + rule("shown", "claim.plan is present", "claim", message="{claim.plan}")
    )
    member = {
        "id": "M1",
        "birth_date": "1951-04-12",
        "sex": "F",
        "coverage": [
            {"payer": "t", "plan": "silver", "start": "2016-01-01", "end": "2026-01-31"},
            {"payer": "other", "plan": "bronze", "start": "2026-02-01", "end": None},
            {"payer": "t", "plan": "gold", "start": "2026-02-01", "end": None},
        ],
    }
    by_coverage = engine.check(
        claim(line(), line(number=2, service_date="2026-01-15"), plan=None, member=member)
    )
    assert sorted((f.rule.removeprefix("t/"), f.line) for f in by_coverage.findings) == [
        ("eq", 1),
        ("filter", 1),
        ("shown", None),
    ]
    # (a claim rule reads the plan on the claim's first date of service: silver)
    assert [f.message for f in by_coverage.findings if f.rule == "t/shown"] == ["silver"]
    own = engine.check(claim(plan="gold"))
    assert fired(own) == ["eq", "filter", "list", "shown"]
    assert fired(engine.check(claim(plan="silver", member=member))) == ["shown"]
    for data in (claim(plan=None, member=member), claim(plan="Gold")):
        decision, traces = engine.explain(data)
        assert sorted({t.rule.removeprefix("t/") for t in traces if t.status == "fired"}) == (
            fired(decision)
        )

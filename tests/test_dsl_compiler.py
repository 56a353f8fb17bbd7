"""The compiler (dsl/compiler.py): a checked pack becomes a Program; claims run through
`Engine` over a temporary policy root give the decisions the policy text says."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.dsl import types as T
from cleanclaim.dsl.checker import CheckEnv, check_pack
from cleanclaim.dsl.compiler import Program, compile_pack
from cleanclaim.dsl.pack import PackManifest, PackSources
from cleanclaim.engine import Engine
from cleanclaim.engine.decision import Decision
from cleanclaim.engine.runtime import ENGINE_FUNCTIONS

TODAY = dt.date(2026, 11, 27)
FUNCTIONS = {f.name: f for f in (*T.BUILTINS, *ENGINE_FUNCTIONS)}
_COUNTER = itertools.count()


# ---- helpers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Engine]]:
    """`make(policy_text, functions=())`: an Engine over a fresh root holding pack `t`."""
    base = tmp_path_factory.mktemp("roots")

    def make(text: str, functions: Sequence[T.FunctionSpec] = ()) -> Engine:
        root = base / f"root{next(_COUNTER)}"
        (root / "t").mkdir(parents=True)
        (root / "t" / "pack.yaml").write_text("id: t\nname: test pack\n", encoding="utf-8")
        (root / "t" / "rules.policy").write_text(text, encoding="utf-8")
        return Engine(policy_roots=[root], today=TODAY, functions=functions, plugins=())

    yield make


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
        "diagnoses": ["R07.9", "I48.91"],
        "authorizations": [],
        "lines": list(lines) or [line()],
    }
    data.update(fields)
    return data


def line(code: str | None = "93000", number: int = 1, **fields: Any) -> dict[str, Any]:
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


def rule(rule_id: str, when: str, scope: str = "all lines", extra: str = "") -> str:
    return (
        f'rule "t/{rule_id}"\n  applies to {scope}\n  root cause coding\n{extra}'
        f'  when {when}\n  then deny CO-97\n  message "{rule_id}"\nend\n'
    )


def fired(decision: Decision) -> list[str]:
    """The ids (without `t/`) of the rules that fired, in finding order; a rule that failed
    to evaluate is an error here, not a rule that fired."""
    failed = [f.rule for f in decision.findings if "could not be applied" in f.message]
    assert not failed, f"rules failed at run time: {failed}"
    return [f.rule.removeprefix("t/") for f in decision.findings]


def messages(decision: Decision) -> dict[str, str]:
    return {f.rule.removeprefix("t/"): f.message for f in decision.findings}


def program_of(text: str) -> Program:
    """Check and compile an in-memory pack `t` (no Engine)."""
    nowhere = Path("/nonexistent/t")
    manifest = PackManifest("t", "t", "1", False, (), (), nowhere, nowhere / "pack.yaml")
    sources = PackSources(manifest, [manifest], {"t/rules.policy": text}, {"t/rules.policy": "t"})
    checked = check_pack(sources, CheckEnv(FUNCTIONS), {})
    assert checked.errors == [], [e.message for e in checked.errors]
    return compile_pack(checked, FUNCTIONS, {}, sources.digest())


# ---- the program --------------------------------------------------------------------------

PROGRAM_TEXT = """version 1
valueset ecg = codes [93000, 93005-93007]
rule "t/ecg"
  title "ECG rule"
  applies to codes ecg
  root cause medical_necessity
  when true
  then deny CO-50 with N115
  reference "LCD"
end
rule "t/lines"
  applies to all lines
  root cause timely_filing
  owner provider
  kind duplicate
  when line.units > 1
  then review CO-151
end
rule "t/claim"
  applies to claim
  root cause eligibility
  when claim.plan is missing
  then reject CO-16 with MA130, M76
end
rule "t/dx"
  applies to each diagnosis
  root cause coding
  effective 2026-01-01
    when diagnosis.position > 3
    then deny CO-16
  effective until 2025-12-31
    when false
    then info CO-16
end
"""


def test_compile_pack_builds_rule_metadata_and_the_code_index() -> None:
    program = program_of(PROGRAM_TEXT)
    assert program.pack_id == "t"
    assert program.digest.startswith("sha256:")
    ecg, lines, claim_rule, dx = program.rules
    assert (ecg.index, ecg.id, ecg.pack, ecg.title, ecg.scope) == (
        0,
        "t/ecg",
        "t",
        "ECG rule",
        "codes",
    )
    assert (ecg.root_cause, ecg.owner, ecg.kind) == (
        "medical_necessity",
        "coding",
        "medical_necessity",
    )
    assert (ecg.file, ecg.line) == ("t/rules.policy", 3)
    assert ecg.codes == {"93000", "93005", "93006", "93007"}
    (version,) = ecg.versions
    assert (version.severity, version.group, version.carc, version.rarcs, version.reference) == (
        "deny",
        "CO",
        "50",
        ("N115",),
        "LCD",
    )
    assert (lines.scope, lines.owner, lines.kind) == ("all_lines", "provider", "duplicate")
    assert (claim_rule.scope, claim_rule.owner) == ("claim", "front_end")  # by root cause
    assert claim_rule.versions[0].rarcs == ("MA130", "M76")
    assert dx.scope == "diagnosis"
    assert [(v.start, v.end, v.severity) for v in dx.versions] == [
        (dt.date(2026, 1, 1), None, "deny"),
        (None, dt.date(2025, 12, 31), "info"),
    ]
    # the index: only the codes of the `codes` rule, each to a function applying that rule
    assert set(program.lines_by_code) == {"93000", "93005", "93006", "93007"}
    assert len(set(program.lines_by_code.values())) == 1
    assert program.lines_any is not None
    assert program.claim_fn is not None and program.diagnosis_fn is not None


def test_a_pack_without_line_rules_has_no_line_functions() -> None:
    program = program_of(
        'version 1\nrule "t/c"\n  applies to claim\n  root cause coding\n'
        "  when true\n  then deny CO-1\nend\n"
    )
    assert program.lines_any is None
    assert program.lines_by_code == {}
    assert program.diagnosis_fn is None
    assert program.claim_fn is not None


def test_rules_sharing_codes_share_one_indexed_function() -> None:
    program = program_of(
        "version 1\n"
        + rule("a", "true", "codes [93000, 93005]")
        + rule("b", "true", "codes [93005, 93010]")
    )
    by_code = program.lines_by_code
    assert set(by_code) == {"93000", "93005", "93010"}
    assert len({by_code["93000"], by_code["93005"], by_code["93010"]}) == 3


# ---- membership ---------------------------------------------------------------------------


def test_membership_with_icd10_prefixes(roots: Callable[..., Engine]) -> None:
    engine = roots(
        "version 1\nvalueset chest = icd10 [R07.*, I20.9]\n"
        + rule("any-chest", "any of line.pointed_diagnoses in chest")
        + rule("dx-chest", "diagnosis.code in chest", "each diagnosis")
        + rule("inline", "any d in claim.diagnoses where d in [R07.8*]", "claim")
        + rule("not-in", "line.code not in [93000]")
    )
    for dx, expected in [
        ("R07.9", ["any-chest", "dx-chest"]),
        ("R07.89", ["inline", "any-chest", "dx-chest"]),
        ("r07.89", ["inline", "any-chest", "dx-chest"]),
        ("R0789", ["inline", "any-chest", "dx-chest"]),
        ("I20.9", ["any-chest", "dx-chest"]),
        ("I20.0", []),
        ("R06.02", []),
    ]:
        decision = engine.check(claim(diagnoses=[dx]))
        assert sorted(fired(decision)) == sorted(expected), dx
    assert fired(engine.check(claim(line("93010"), diagnoses=["I10"]))) == ["not-in"]


def test_membership_of_value_set_unions_and_ranges(roots: Callable[..., Engine]) -> None:
    engine = roots(
        "version 1\nvalueset a = codes [93000]\nvalueset b = a + [11400-11446]\n"
        + rule("in-b", "line.code in b")
        + rule("in-union", "line.code in a + [93010]")
    )
    assert fired(engine.check(claim(line("93000")))) == ["in-b", "in-union"]
    assert fired(engine.check(claim(line("11423")))) == ["in-b"]
    assert fired(engine.check(claim(line("93010")))) == ["in-union"]
    assert fired(engine.check(claim(line("11447")))) == []


# ---- quantifiers --------------------------------------------------------------------------

QUANTIFIERS = "version 1\nvalueset chest = icd10 [R07.*]\n" + "".join(
    [
        rule("any-of", "any of line.pointed_diagnoses in chest"),
        rule("all-of", "all of line.pointed_diagnoses in chest"),
        rule("no-of", "no of line.pointed_diagnoses in chest"),
        rule("count-of", "count of line.pointed_diagnoses in chest >= 2"),
        rule("any-where", "any o in other_lines where o.code == line.code"),
        rule("no-where", "no o in other_lines where o.code == line.code"),
        rule("count-where", "count o in other_lines where o.service_date == line.service_date > 1"),
    ]
)


@pytest.mark.parametrize(
    ("pointers", "expected"),
    [
        ([1, 2], ["any-of", "all-of", "count-of"]),  # R07.9, R07.89
        ([1, 3], ["any-of"]),  # R07.9, I48.91
        ([3], ["no-of"]),  # I48.91
        ([], ["no-of"]),  # no diagnosis: `all of` is false
    ],
)
def test_quantified_membership(
    roots: Callable[..., Engine], pointers: list[int], expected: list[str]
) -> None:
    engine = roots(QUANTIFIERS)
    decision = engine.check(
        claim(line(diagnosis_pointers=pointers), diagnoses=["R07.9", "R07.89", "I48.91"])
    )
    assert fired(decision) == [*expected, "no-where"]


def test_quantifiers_over_other_lines(roots: Callable[..., Engine]) -> None:
    engine = roots(QUANTIFIERS)
    decision = engine.check(
        claim(
            line("93000", 1, diagnosis_pointers=[2]),
            line("93000", 2, diagnosis_pointers=[2]),
            line("93010", 3, diagnosis_pointers=[2]),
            line("93306", 4, diagnosis_pointers=[2], service_date="2026-01-05"),
            diagnoses=["R07.9", "I48.91"],
        )
    )
    per_line = {(f.line, f.rule.removeprefix("t/")) for f in decision.findings}
    assert per_line == {
        (1, "no-of"),
        (1, "any-where"),
        (1, "count-where"),
        (2, "no-of"),
        (2, "any-where"),
        (2, "count-where"),
        (3, "no-of"),
        (3, "no-where"),
        (3, "count-where"),
        (4, "no-of"),
        (4, "no-where"),
    }


def test_all_of_an_empty_list_is_false_and_no_of_it_is_true(roots: Callable[..., Engine]) -> None:
    engine = roots(
        "version 1\nvalueset routine = icd10 [Z00.00, Z00.01]\n"
        + rule("all-routine", "all of line.pointed_diagnoses in routine")
        + rule("all-routine-prefix", "all of line.pointed_diagnoses in [Z00.*]")
        + rule("no-mods", "no of line.modifiers in [26, TC]")
        + rule("any-mods", "any of line.modifiers in [26, TC]")
    )
    assert fired(engine.check(claim(line(diagnosis_pointers=[]), diagnoses=["Z00.00"]))) == [
        "no-mods"
    ]
    assert fired(engine.check(claim(line(diagnosis_pointers=[1]), diagnoses=["Z00.00"]))) == [
        "all-routine",
        "all-routine-prefix",
        "no-mods",
    ]
    assert fired(engine.check(claim(line(modifiers=["tc"])))) == ["any-mods"]


# ---- missing values -----------------------------------------------------------------------

MISSING = "version 1\n" + "".join(
    [
        rule("units-missing", "line.units is missing"),
        rule("units-present", "line.units is present"),
        rule("mods-missing", "line.modifiers is missing"),
        rule("plan-missing", "claim.plan is missing", "claim"),
        rule("birth-missing", "member.birth_date is missing", "claim"),
        rule("gt", "line.units > 1"),
        rule("le", "line.units <= 1"),
        rule("not-gt", "not (line.units > 1)"),
        rule("eq", "line.units == 1"),
        rule("arith", "line.units + 1 > 1"),
        rule("date-arith", "member.birth_date + 30 < line.service_date"),
        rule("age", "years_between(member.birth_date, line.service_date) >= 65"),
    ]
)


def undecided(decision: Decision) -> list[str]:
    """The rules a missing value left undecided (a CO-16 review "needs ...")."""
    return [
        f.rule.removeprefix("t/")
        for f in decision.findings
        if f.severity == "review" and f.message.startswith("needs ")
    ]


def test_missing_values_are_missing_and_comparisons_with_them_are_unknown(
    roots: Callable[..., Engine],
) -> None:
    """A comparison reading a missing optional field is unknown: the rule gives a review
    (dsl/missing.py); `is missing` / `is present` answer for sure."""
    engine = roots(MISSING)
    present = engine.check(claim(line(units=1, modifiers=["26"]), plan="gold"))
    assert sorted(fired(present)) == sorted(
        ["units-present", "le", "not-gt", "eq", "arith", "date-arith", "age"]
    )
    assert undecided(present) == []
    missing = engine.check(claim(line(units=None), plan=None, member={"id": "M1", "coverage": []}))
    unknown = ["gt", "le", "not-gt", "eq", "arith", "date-arith", "age"]
    assert sorted(undecided(missing)) == sorted(unknown)
    assert sorted(set(fired(missing)) - set(unknown)) == sorted(
        ["plan-missing", "birth-missing", "units-missing", "mods-missing"]
    )


def test_not_equal_with_a_missing_value_is_unknown(roots: Callable[..., Engine]) -> None:
    engine = roots(
        "version 1\n" + rule("ne", "line.units != 1") + rule("not-eq", "not (line.units == 1)")
    )
    assert fired(engine.check(claim(line(units=2)))) == ["ne", "not-eq"]
    assert fired(engine.check(claim(line(units=1)))) == []
    assert undecided(engine.check(claim(line(units=None)))) == ["ne", "not-eq"]


# ---- dates --------------------------------------------------------------------------------

TIMELY = """version 1
rule "t/one-year"
  applies to all lines
  root cause timely_filing
  let due = add_years(line.service_date, 1)
  let days = days_between(line.service_date, claim.received_date)
  when claim.received_date > due
  then deny CO-29
  message "due {due}; received after {days} days"
end
"""


@pytest.mark.parametrize(
    ("served", "received", "message"),
    [
        ("2024-02-29", "2025-02-28", None),
        ("2024-02-29", "2025-03-01", "due 2025-02-28; received after 366 days"),
        ("2025-03-01", "2026-03-01", None),
        ("2025-03-01", "2026-03-02", "due 2026-03-01; received after 366 days"),
        ("2023-12-31", "2025-01-01", "due 2024-12-31; received after 367 days"),
    ],
)
def test_add_years_on_february_29_and_days_between(
    roots: Callable[..., Engine], served: str, received: str, message: str | None
) -> None:
    engine = roots(TIMELY)
    decision = engine.check(claim(line(service_date=served), received_date=received))
    assert [f.message for f in decision.findings] == ([message] if message else [])


def test_date_arithmetic_in_days_months_and_years(roots: Callable[..., Engine]) -> None:
    engine = roots(
        "version 1\n"
        + rule("plus-30", "line.service_date + 30 == 2026-03-12")
        + rule("minus-dates", "claim.received_date - line.service_date == 20")
        + rule("months", "add_months(2024-01-31, 1) == 2024-02-29")
        + rule("age-65", "years_between(member.birth_date, line.service_date) == 65")
        + rule("between-months", "months_between(2026-01-31, 2026-02-28) == 1")
    )
    decision = engine.check(claim(line(service_date="2016-04-12"), received_date="2016-05-02"))
    assert fired(decision) == ["minus-dates", "months", "age-65", "between-months"]
    decision = engine.check(claim(line(service_date="2016-04-11"), received_date="2016-05-01"))
    assert fired(decision) == ["minus-dates", "months", "between-months"]
    decision = engine.check(claim(line(service_date="2026-02-10")))
    assert fired(decision) == ["plus-30", "minus-dates", "months", "between-months"]


def test_date_arithmetic_out_of_range_is_missing_not_a_failure(
    roots: Callable[..., Engine],
) -> None:
    engine = roots(TIMELY)
    decision = engine.check(claim(line(service_date="9999-06-01"), received_date="9999-07-01"))
    assert decision.findings == []


# ---- dated versions -----------------------------------------------------------------------

VERSIONS = """version 1
rule "t/limit"
  applies to all lines
  root cause timely_filing
  let days = days_between(line.service_date, claim.received_date)
  when days > limit
  then deny CO-29
  effective 2026-01-01
    let limit = 90
    message "{days} days, limit {limit}"
  effective 2025-01-01 until 2025-12-31
    let limit = 180
    then review CO-29
    message "{days} days, old limit {limit}"
end
rule "t/claim-version"
  applies to claim
  root cause coding
  effective 2026-01-01
    when true
    then info CO-1
    message "claim 2026"
  effective until 2025-12-31
    when true
    then info CO-1
    message "claim 2025"
end
"""


def test_the_version_in_force_on_each_line_s_date_applies(roots: Callable[..., Engine]) -> None:
    engine = roots(VERSIONS)
    decision = engine.check(
        claim(
            line(number=1, service_date="2025-12-31"),  # 241 days: old limit 180
            line(number=2, service_date="2026-01-01"),  # 240 days: limit 90
            line(number=3, service_date="2026-08-01"),  # within 90
            line(number=4, service_date="2024-12-31"),  # before every version of t/limit
            received_date="2026-08-29",
        )
    )
    assert [(f.rule, f.line, f.severity, f.message) for f in decision.findings] == [
        ("t/claim-version", None, "info", "claim 2025"),  # the claim's first date of service
        ("t/limit", 1, "review", "241 days, old limit 180"),
        ("t/limit", 2, "deny", "240 days, limit 90"),
    ]


# ---- plan and place of service ------------------------------------------------------------

FILTERS = """version 1
rule "t/gold"
  applies to all lines
  plan is "gold", "platinum"
  root cause coverage
  when true
  then deny CO-204
end
rule "t/not-office"
  applies to claim
  place of service is not "11"
  root cause coverage
  when true
  then deny CO-5
end
"""


@pytest.mark.parametrize(
    ("plan", "pos", "expected"),
    [
        ("gold", "11", ["gold"]),
        ("platinum", "22", ["not-office", "gold"]),
        ("silver", "11", []),
        (None, "11", []),
        ("silver", None, ["not-office"]),
    ],
)
def test_plan_and_place_of_service_filters(
    roots: Callable[..., Engine], plan: str | None, pos: str | None, expected: list[str]
) -> None:
    engine = roots(FILTERS)
    decision = engine.check(claim(plan=plan, place_of_service=pos))
    assert fired(decision) == expected


# ---- messages -----------------------------------------------------------------------------


def test_message_templates_show_values(roots: Callable[..., Engine]) -> None:
    template = (
        "{line.code} {line.modifiers} {line.units} {line.charge} {line.service_date}"
        " dx {line.pointed_diagnoses} all {claim.diagnoses} due {due}"
        " plan {claim.plan} birth {member.birth_date}"
    )
    engine = roots(
        """version 1
rule "t/show"
  applies to all lines
  root cause coding
  let due = add_days(line.service_date, 30)
  when true
  then info CO-1
  message "TEMPLATE"
end
rule "t/diagnosis"
  applies to each diagnosis
  root cause coding
  when diagnosis.position == 2
  then info CO-1
  message "diagnosis {diagnosis.position} ({diagnosis.code})"
end
rule "t/titled"
  title "The title is the default message"
  applies to claim
  root cause coding
  when true
  then info CO-1
end
rule "t/untitled"
  applies to claim
  root cause coding
  when true
  then info CO-1
end
""".replace("TEMPLATE", template)
    )
    decision = engine.check(
        claim(
            line(
                "93000", modifiers=["26", "TC"], units=2, charge="45.00", diagnosis_pointers=[2, 1]
            ),
            line("93010", number=2, modifiers=[], units=None, charge=None, diagnosis_pointers=[]),
            diagnoses=["R0789", "i48.91"],
            plan=None,
            member={"id": "M1", "birth_date": None, "coverage": []},
        )
    )
    assert decision.status == "clean"  # info findings only
    assert [f.message for f in decision.findings] == [
        "diagnosis 2 (I48.91)",
        "The title is the default message",
        "t/untitled",
        "93000 26, TC 2 45.00 2026-02-10 dx I48.91, R07.89 all R07.89, I48.91 due 2026-03-12 "
        "plan (missing) birth (missing)",
        "93010 (none) (missing) (missing) 2026-02-10 dx (none) all R07.89, I48.91 "
        "due 2026-03-12 plan (missing) birth (missing)",
    ]


# ---- the index ----------------------------------------------------------------------------


def test_a_line_outside_a_rule_s_codes_never_meets_the_rule(roots: Callable[..., Engine]) -> None:
    seen: list[str | None] = []

    def probe(claim: Any, line: Any) -> bool:
        seen.append(line.code)
        return True

    spec = T.FunctionSpec(
        "probe",
        (),
        T.BOOL,
        probe,
        "records the lines it sees",
        contextual=True,
        scopes=frozenset({"line"}),
    )
    engine = roots(
        "version 1\nvalueset ecg = codes [93000, 93005]\n"
        + rule("ecg", "probe()", "codes ecg")
        + rule("echo", "probe()", "codes [93306-93308]"),
        functions=[spec],
    )
    program = engine.programs["t"]
    assert set(program.lines_by_code) == {"93000", "93005", "93306", "93307", "93308"}
    decision = engine.check(
        claim(line("93000", 1), line("93010", 2), line(None, 3), line("93307", 4), line("93005", 5))
    )
    assert seen == ["93000", "93307", "93005"]
    assert [(f.rule, f.line) for f in decision.findings] == [
        ("t/ecg", 1),
        ("t/echo", 4),
        ("t/ecg", 5),
    ]


def test_a_failing_rule_is_reported_and_the_others_still_apply(
    roots: Callable[..., Engine],
) -> None:
    def boom(claim: Any, line: Any) -> bool:
        raise RuntimeError("plugin failed")

    spec = T.FunctionSpec("boom", (), T.BOOL, boom, "always fails", contextual=True)
    engine = roots(
        "version 1\n" + rule("fails", "boom()") + rule("units", "line.units > 1"), functions=[spec]
    )
    decision = engine.check(claim(line(units=2)))
    assert [(f.rule, f.severity) for f in decision.findings] == [
        ("t/fails", "review"),
        ("t/units", "deny"),
    ]
    assert "could not be applied" in decision.findings[0].message


# ---- findings -----------------------------------------------------------------------------


def test_findings_carry_the_outcome_and_the_source(roots: Callable[..., Engine]) -> None:
    engine = roots(
        'version 1\nrule "t/units"\n  applies to codes [93000]\n'
        "  root cause benefit_limit\n  when line.units > 1\n"
        '  then deny PR-119 with N640\n  reference "plan limits"\nend\n'
        + rule("info", "true", "claim").replace("deny", "info")
    )
    decision = engine.check(claim(line(units=2)))
    assert decision.status == "deny"
    info, units = sorted(decision.findings, key=lambda f: f.rule)
    assert (units.rule, units.kind, units.severity, units.line) == (
        "t/units",
        "benefit_limit",
        "deny",
        1,
    )
    assert (units.group, units.carc, units.rarc) == ("PR", "119", ["N640"])
    assert (units.root_cause, units.owner, units.reference) == (
        "benefit_limit",
        "front_end",
        "plan limits",
    )
    assert units.message == "t/units"  # no title, no message
    assert units.source is not None and units.source["line"] == 2
    assert units.source["file"].endswith("/t/rules.policy")
    assert (info.severity, info.line) == ("info", None)
    assert engine.check(claim(line(units=1))).status == "clean"


# ---- runtime failures the checker lets through ------------------------------------------


def test_a_let_bound_to_a_union_of_sets(roots: Callable[..., Engine]) -> None:
    engine = roots(
        "version 1\nvalueset ecg = codes [93000]\n"
        + rule("let-set", "line.code in s", extra="  let s = ecg + [93010]\n")
    )
    assert fired(engine.check(claim(line("93010")))) == ["let-set"]


def test_decimal_literals_with_fractional_units(roots: Callable[..., Engine]) -> None:
    engine = roots("version 1\n" + rule("half", "line.units + 0.5 > 2"))
    assert fired(engine.check(claim(line(units=1.5)))) == []
    assert fired(engine.check(claim(line(units=2.5)))) == ["half"]


# ---- the hot path: inline forms and memos -------------------------------------------------

PER_DATE = """version 1
rule "t/uncovered"
  applies to all lines
  root cause eligibility
  let due = add_years(line.service_date, 1)
  when not covered_on(line.service_date)
  then deny CO-27
  message "line {line.line} on {line.service_date} (due {due})"
end
"""


def test_answers_kept_per_date_of_service_are_recomputed_when_the_date_changes(
    roots: Callable[..., Engine],
) -> None:
    # Coverage ends 2026-02-10: lines alternate between a covered and an uncovered date, so
    # a memo kept past a change of date would repeat the previous line's answer.
    engine = roots(PER_DATE)
    coverage = {
        "id": "M1",
        "coverage": [{"payer": "t", "start": "2020-01-01", "end": "2026-02-10"}],
    }
    dates = ["2026-02-10", "2026-02-11", "2026-02-11", "2026-02-10", "2026-02-12"]
    lines = [line(number=n, service_date=d) for n, d in enumerate(dates, start=1)]
    decision = engine.check(claim(*lines, member=coverage, received_date="2026-03-01"))
    assert sorted(messages_by_line(decision).items()) == [
        (2, "line 2 on 2026-02-11 (due 2027-02-11)"),
        (3, "line 3 on 2026-02-11 (due 2027-02-11)"),
        (5, "line 5 on 2026-02-12 (due 2027-02-12)"),
    ]
    source = engine.programs["t"].source
    assert "_dprev" in source  # the per-date memo is what this test exercises


def messages_by_line(decision: Decision) -> dict[int | None, str]:
    return {f.line: f.message for f in decision.findings}


def test_comparisons_are_written_inline_without_helper_calls() -> None:
    program = program_of(
        "version 1\n"
        + rule("units", "line.units > 1")
        + rule("both", "line.units > line.minutes")
        + rule("count", "coverage_count() > 0")
    )
    body = program.source[program.source.index("def _evaluate") :]
    assert "line.units is not None and line.units > 1" in body
    assert "line.minutes is not None and line.units > line.minutes" in body
    assert "len(claim.payer_coverage) > 0" in body  # coverage_count's inline form
    assert "_gt(" not in body and "_lt(" not in body


@pytest.mark.parametrize(
    ("units", "minutes", "fires"),
    [
        (2, 1, True),
        (1, 2, False),
        (None, 1, False),
        (2, None, False),
        (None, None, False),
    ],
)
def test_a_comparison_of_two_values_that_can_be_missing(
    roots: Callable[..., Engine], units: int | None, minutes: int | None, fires: bool
) -> None:
    engine = roots("version 1\n" + rule("both", "line.units > line.minutes"))
    decision = engine.check(claim(line(units=units, minutes=minutes)))
    assert fired(decision) == (["both"] if fires or None in (units, minutes) else [])
    assert undecided(decision) == (["both"] if None in (units, minutes) else [])


@pytest.mark.parametrize(
    ("place", "valid"),
    [
        ("11", True),
        ("1", False),
        ("111", False),
        ("1a", False),
        ("\u0661\u0661", False),
        ("", False),
    ],
)
def test_digits_counts_ascii_digits_only(
    roots: Callable[..., Engine], place: str, valid: bool
) -> None:
    engine = roots(
        "version 1\n" + rule("pos", "not digits(claim.place_of_service, 2)", scope="claim")
    )
    assert fired(engine.check(claim(place_of_service=place))) == ([] if valid else ["pos"])


def test_an_inline_form_that_reads_a_computed_argument_twice_keeps_the_call() -> None:
    twice = T.FunctionSpec(
        "twice", (T.STR,), T.BOOL, lambda s: s is not None and s == s, "test", inline="({0} == {0})"
    )
    shout = T.FunctionSpec(
        "shout", (T.STR,), T.STR.maybe(), lambda s: s.upper() if s else None, "test"
    )
    functions = {**FUNCTIONS, "twice": twice, "shout": shout}
    text = (
        "version 1\n"
        + rule("plain", "twice(claim.payer)")
        + rule("computed", "twice(shout(claim.payer))")
    )
    nowhere = Path("/nonexistent/t")
    manifest = PackManifest("t", "t", "1", False, (), (), nowhere, nowhere / "pack.yaml")
    sources = PackSources(manifest, [manifest], {"t/rules.policy": text}, {"t/rules.policy": "t"})
    checked = check_pack(sources, CheckEnv(functions), {})
    assert checked.errors == []
    program = compile_pack(checked, functions, {}, sources.digest())
    body = program.source[program.source.index("def _evaluate") :]
    assert "claim.payer == claim.payer" in body
    computed = [ln for ln in body.splitlines() if "shout" in ln or "_f" in ln]
    assert any("(claim.payer))" in ln and "==" not in ln for ln in computed), body

"""Exceptions (issue 13.9): `except when COND` and `except rule "ID"` suppress a rule's
finding; mistakes are located errors; lint reports exceptions that can never apply."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.dsl.errors import PolicyCompileError
from cleanclaim.dsl.fmt import format_policy
from cleanclaim.engine.engine import Engine

TODAY = dt.date(2026, 11, 27)

POLICY = """version 1

valueset ecg_components = codes [93005, 93010]
valueset ecg_global = codes [93000]

rule "acme/ecg/component-with-global"
  applies to codes ecg_components
  root cause coding
  except when any of line.modifiers in [59, XU]
  except rule "acme/ecg/same-day-global"
  when any o in other_lines where o.code in ecg_global
  then deny CO-236
end

rule "acme/ecg/same-day-global"
  applies to codes ecg_components
  root cause coding
  when any o in other_lines where o.code in ecg_global and o.service_date == line.service_date
   and line.units > 1
  then deny CO-97
end

rule "acme/claim/too-many-lines"
  applies to claim
  root cause submission
  except rule "acme/ecg/same-day-global"
  when count(claim.lines) > 2
  then review CO-16
end
"""


def pack(tmp_path: Path, policy: str = POLICY) -> Path:
    folder = tmp_path / "packs" / "acme"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pack.yaml").write_text("id: acme\nname: acme\n", encoding="utf-8")
    (folder / "rules.policy").write_text(policy, encoding="utf-8")
    return tmp_path / "packs"


def engine(root: Path, specialize: bool = True) -> Engine:
    return Engine(policy_roots=[root], today=TODAY, plugins=(), tables={})


def claim(*lines: tuple[str, tuple[str, ...], int, str]) -> dict[str, Any]:
    return {
        "claim_id": "C1",
        "payer": "acme",
        "received_date": "2026-03-01",
        "member": {"id": "M-1", "birth_date": "1950-06-01", "sex": "F"},
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "place_of_service": "11",
        "diagnoses": ["R07.9"],
        "lines": [
            {
                "line": i + 1,
                "code": code,
                "modifiers": list(mods),
                "units": units,
                "charge": "10.00",
                "service_date": day,
                "diagnosis_pointers": [1],
            }
            for i, (code, mods, units, day) in enumerate(lines)
        ],
    }


def fired(e: Engine, data: dict[str, Any]) -> list[tuple[str, int | None]]:
    decision = e.check(data)
    found = sorted((f.rule, f.line) for f in decision.findings)
    _d, traces = e.explain(data)
    assert (
        sorted(
            (t.rule, int(t.target.split()[1]) if t.target.startswith("line") else None)
            for t in traces
            if t.status == "fired"
        )
        == found
    )
    return found


def test_except_when_suppresses_the_finding(tmp_path: Path) -> None:
    e = engine(pack(tmp_path))
    plain = claim(("93000", (), 1, "2026-02-01"), ("93010", (), 1, "2026-02-01"))
    assert fired(e, plain) == [("acme/ecg/component-with-global", 2)]
    with_59 = claim(("93000", (), 1, "2026-02-01"), ("93010", ("59",), 1, "2026-02-01"))
    assert fired(e, with_59) == []


def test_except_rule_suppresses_the_finding_where_the_other_rule_fires(tmp_path: Path) -> None:
    e = engine(pack(tmp_path))
    # Line 2 meets both rules: only the excepting rule's finding is left. Line 3 (another
    # date) meets only the first rule. The claim rule is suppressed by line 2's finding.
    data = claim(
        ("93000", (), 1, "2026-02-01"),
        ("93010", (), 2, "2026-02-01"),
        ("93005", (), 2, "2026-02-03"),
    )
    assert fired(e, data) == [
        ("acme/ecg/component-with-global", 3),
        ("acme/ecg/same-day-global", 2),
    ]
    _d, traces = e.explain(data, "acme/claim/too-many-lines")
    assert [(t.status, t.reason) for t in traces] == [
        ("excepted", "rule `acme/ecg/same-day-global` applies (except rule)")
    ]
    # Without a finding of the other rule, the claim rule stands.
    data = claim(
        ("93000", (), 1, "2026-02-01"),
        ("93010", (), 1, "2026-02-01"),
        ("93005", (), 1, "2026-02-03"),
    )
    assert ("acme/claim/too-many-lines", None) in fired(e, data)


def test_an_exception_reading_a_missing_value_leaves_the_rule_undecided(tmp_path: Path) -> None:
    policy = POLICY.replace(
        "except when any of line.modifiers in [59, XU]", 'except when member.sex == "M"'
    )
    e = engine(pack(tmp_path, policy))
    data = claim(("93000", (), 1, "2026-02-01"), ("93010", (), 1, "2026-02-01"))
    del data["member"]["sex"]
    (finding,) = [f for f in e.check(data).findings if f.rule == "acme/ecg/component-with-global"]
    assert finding.severity == "review" and finding.message.startswith("needs member.sex")


@pytest.mark.parametrize(
    ("old", "new", "code", "fragment"),
    [
        (
            'except rule "acme/ecg/same-day-global"\n  when',
            'except rule "acme/ecg/same-day-globl"\n  when',
            "E409",
            "`except rule` names `acme/ecg/same-day-globl`, which is no rule",
        ),
        (
            'except rule "acme/ecg/same-day-global"\n  when',
            'except rule "acme/ecg/component-with-global"\n  when',
            "E409",
            "cannot except itself",
        ),
        (
            "  when any o in other_lines where o.code in ecg_global and o.service_date",
            '  except rule "acme/ecg/component-with-global"\n'
            "  when any o in other_lines where o.code in ecg_global and o.service_date",
            "E409",
            "exceptions go round in a circle",
        ),
        ("  when count(claim.lines) > 2\n", "", "E403", "has no `when` condition"),
    ],
)
def test_exception_mistakes_are_located(
    tmp_path: Path, old: str, new: str, code: str, fragment: str
) -> None:
    assert old in POLICY
    with pytest.raises(PolicyCompileError) as info:
        engine(pack(tmp_path, POLICY.replace(old, new, 1)))
    found = [(e.code, e.message, e.span.line, e.span.column) for e in info.value.errors]
    assert any(c == code and fragment in m for c, m, _l, _c in found), found


def test_an_except_rule_after_effective_is_misplaced(tmp_path: Path) -> None:
    policy = POLICY.replace(
        "  when count(claim.lines) > 2\n",
        '  effective 2026-01-01\n  except rule "acme/ecg/component-with-'
        'global"\n  when count(claim.lines) > 2\n',
    )
    with pytest.raises(PolicyCompileError) as info:
        engine(pack(tmp_path, policy))
    assert [(e.code, e.message) for e in info.value.errors] == [
        ("E405", "`except rule` cannot stand here")
    ]


def test_exceptions_format_round_trip() -> None:
    out = format_policy(POLICY.replace("except when any", "except   when any"), "x.policy")
    assert "  except when any of line.modifiers in [59, XU]\n" in out
    assert '  except rule "acme/ecg/same-day-global"\n' in out
    assert format_policy(out, "x.policy") == out


LINT_POLICY = """version 1

rule "demo/component"
  applies to codes [93010]
  root cause coding
%s  when line.units > 1 and any o in other_lines where o.code in [93000]
  then deny CO-236
  reference "NCCI policy manual ch. I"
end

rule "demo/other-codes"
  applies to codes [93005]
  root cause coding
  when line.units > 2
  then deny CO-97
  reference "NCCI policy manual ch. XI"
end

rule "demo/old"
  applies to codes [93010]
  root cause coding
  effective until 2020-12-31
  when line.units > 3
  then deny CO-97
  reference "NCCI policy manual ch. XI"
end
"""


@pytest.mark.parametrize(
    ("clause", "fragment"),
    [
        ('  except rule "demo/other-codes"\n', "applies to none of the codes"),
        ('  except rule "demo/old"\n  effective 2021-01-01\n', "is in force on none of the dates"),
        ("  except when false\n", "its condition is `false`"),
        ("  except when line.code in [93000]\n", "asks for codes the rule does not apply to"),
        ("  except when not (line.units > 1)\n", "a `when` of the rule says the opposite"),
    ],
)
def test_lint_reports_exceptions_that_never_apply(
    tmp_path: Path, clause: str, fragment: str
) -> None:
    from cleanclaim.dsl.lint import lint
    from cleanclaim.engine.testing import lint_environment

    env, loaders, _roots = lint_environment(None)
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "pack.yaml").write_text("id: demo\nname: Demo\n", encoding="utf-8")
    (folder / "rules.policy").write_text(LINT_POLICY % clause, encoding="utf-8")
    report = lint([str(folder)], env, roots=[tmp_path], today=TODAY, table_loaders=loaders)
    found = [(p.code, p.message) for p in report.problems]
    assert any(code == "W207" and fragment in message for code, message in found), found


def test_lint_keeps_quiet_on_exceptions_that_can_apply(tmp_path: Path) -> None:
    from cleanclaim.dsl.lint import lint
    from cleanclaim.engine.testing import lint_environment

    env, loaders, _roots = lint_environment(None)
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "pack.yaml").write_text("id: demo\nname: Demo\n", encoding="utf-8")
    (folder / "rules.policy").write_text(
        LINT_POLICY % "  except when any of line.modifiers in [59]\n", encoding="utf-8"
    )
    report = lint([str(folder)], env, roots=[tmp_path], today=TODAY, table_loaders=loaders)
    assert [p.code for p in report.problems if p.code == "W207"] == []

"""`cleanclaim lint` (dsl/lint/): every code has a page in docs/lint.md whose bad example
produces it and whose good example is clean; the shipped packs lint clean; each quality
check on a small pack; the command's text and JSON output and exit codes."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cleanclaim.dsl.errors import ERROR_CODES
from cleanclaim.dsl.lint import LINT_CODES, LintReport, LintTargetError, all_codes, lint
from cleanclaim.engine.cli import app
from cleanclaim.engine.testing import lint_environment

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "lint.md"
TODAY = dt.date(2026, 11, 27)
ENV, LOADERS, ROOTS = lint_environment(None)

# Codes whose examples cannot be checked by linting text here, and why.
NOT_RUNNABLE = {
    "E503": "an unreadable file cannot be shown as text",
    "E506": "about a --policies folder, not a pack's text (tests/test_pack_loading.py)",
}
# Examples that need what this build does not have yet (strict: they fail once it does).
NOT_YET: dict[str, str] = {}


def run_lint(root: Path, *targets: str) -> LintReport:
    return lint(
        list(targets) or [str(root / "demo")], ENV, roots=[root], today=TODAY, table_loaders=LOADERS
    )


def write_pack(
    root: Path, policy: str | None, manifest: str | None = None, base: bool = True
) -> Path:
    pack = root / "demo"
    pack.mkdir(parents=True, exist_ok=True)
    (pack / "pack.yaml").write_text(manifest or "id: demo\nname: Demo\n", encoding="utf-8")
    if base:
        (pack / "example-base.policy").write_text(BASE_RULE, encoding="utf-8")
    if policy is not None:
        (pack / "rules.policy").write_text(policy, encoding="utf-8")
    return pack


def codes(report: LintReport) -> list[str]:
    return [p.code for p in report.problems]


# ---- docs/lint.md ---------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    kind: str  # policy | yaml | case
    text: str
    where: str = ""  # a case file's path in the pack


@dataclass(frozen=True)
class Section:
    code: str
    name: str
    bad: list[Example]
    good: list[Example]


_SECTION = re.compile(r"^## ([EW][0-9]{3}) ([a-z0-9-]+)\s*$", re.MULTILINE)
_FENCE = re.compile(r"^```(policy|yaml)([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _example(m: re.Match[str]) -> Example:
    # A `yaml cases/NAME.yaml` fence is a case file of the pack, a `yaml` fence its manifest.
    where = m.group(2).strip()
    kind = "case" if where.startswith("cases/") else m.group(1)
    return Example(kind, m.group(3), where if kind == "case" else "")


def sections() -> dict[str, Section]:
    text = DOCS.read_text(encoding="utf-8")
    found: dict[str, Section] = {}
    heads = list(_SECTION.finditer(text))
    for i, head in enumerate(heads):
        body = text[head.end() : heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        bad_part, _, good_part = body.partition("\nGood")
        found[head.group(1)] = Section(
            head.group(1),
            head.group(2),
            [_example(m) for m in _FENCE.finditer(bad_part)],
            [_example(m) for m in _FENCE.finditer(good_part)],
        )
    return found


SECTIONS = sections()


def test_every_code_has_a_section_with_its_name() -> None:
    missing = sorted(set(all_codes()) - set(SECTIONS))
    assert missing == [], f"docs/lint.md has no section for {missing}"
    for code, (name, _severity) in all_codes().items():
        assert SECTIONS[code].name == name, f"{code}: the section calls it {SECTIONS[code].name}"


def test_no_section_for_a_code_that_does_not_exist() -> None:
    assert sorted(set(SECTIONS) - set(all_codes())) == []


def test_every_section_has_a_bad_and_a_good_example() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for code in SECTIONS:
        body = text.split(f"## {code} ", 1)[1].split("\n## ", 1)[0]
        assert "\nBad" in body and "\nGood" in body, code


# Every example pack but E505's gets this rule beside it: a pack without a rule is E505,
# and a pack that rejects a line without units (as `common` does) may compare units
# without `is present` (W405). docs/lint.md says so.
BASE_RULE = """version 1

rule "demo/required/units"
  applies to all lines
  root cause submission
  when line.units is missing or line.units < 0
  then reject CO-16 with M53
  reference "r"
end
"""


def _lint_example(tmp_path: Path, examples: list[Example], code: str) -> LintReport:
    policy = next((e.text for e in examples if e.kind == "policy"), None)
    manifest = next((e.text for e in examples if e.kind == "yaml"), None)
    if policy is None:
        policy = "version 1\n"
    pack = write_pack(tmp_path, policy, manifest, base=code != "E505")
    for case in (e for e in examples if e.kind == "case"):
        (pack / case.where).parent.mkdir(parents=True, exist_ok=True)
        (pack / case.where).write_text(case.text, encoding="utf-8")
    return run_lint(tmp_path)


def _example_params() -> list[object]:
    params: list[object] = []
    for code in sorted(SECTIONS):
        marks = []
        if code in NOT_YET:
            marks.append(pytest.mark.xfail(reason=NOT_YET[code], strict=True))
        if code in NOT_RUNNABLE:
            marks.append(pytest.mark.skip(reason=NOT_RUNNABLE[code]))
        params.append(pytest.param(code, id=code, marks=marks))
    return params


@pytest.mark.parametrize("code", _example_params())
def test_the_bad_example_produces_the_code(tmp_path: Path, code: str) -> None:
    section = SECTIONS[code]
    assert section.bad, f"{code}: no runnable bad example"
    report = _lint_example(tmp_path, section.bad, code)
    assert code in codes(report), report.render()


@pytest.mark.parametrize("code", _example_params())
def test_the_good_example_is_clean(tmp_path: Path, code: str) -> None:
    section = SECTIONS[code]
    assert section.good, f"{code}: no runnable good example"
    report = _lint_example(tmp_path, section.good, code)
    if code == "E504":  # the good manifest names a table file the docs cannot ship
        assert codes(report) == ["E504"] and "ptp-practitioner.txt" in report.render()
        return
    assert report.problems == [], report.render()


# ---- the shipped packs -----------------------------------------------------------------


def test_the_shipped_packs_lint_clean() -> None:
    report = lint([], ENV, roots=ROOTS, today=TODAY, table_loaders=LOADERS)
    # W402 on the TTE rule is expected: test_lint_warns_on_deny_over_partial_data.
    assert [p for p in report.problems if p.code != "W402"] == [], report.render()
    assert {"acme-ppo", "common", "medicare"} <= set(report.checked)


def test_a_file_of_a_pack_is_linted_with_its_pack(tmp_path: Path) -> None:
    pack = write_pack(tmp_path, "version 1\nvalueset ecg = codes [93000]\n")
    (pack / "other.policy").write_text(
        'version 1\nrule "demo/r"\n  applies to codes ecg\n  root cause coding\n'
        "  when line.units > 1\n  then deny CO-151\nend\n",
        encoding="utf-8",
    )
    report = run_lint(tmp_path, str(pack / "other.policy"))
    # `ecg` comes from the pack's other file; only this file's problems are shown.
    assert codes(report) == ["W401"]
    assert {p.span.file for p in report.problems} == {str(pack / "other.policy")}


def test_a_file_outside_any_pack_is_a_pack_named_after_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "loose"
    folder.mkdir()
    (folder / "a.policy").write_text(
        'version 1\nrule "loose/r"\n  applies to all lines\n  root cause coding\n'
        "  when line.units is present and line.units > 1\n  then deny CO-151\n"
        '  reference "r"\nend\n',
        encoding="utf-8",
    )
    assert run_lint(tmp_path, str(folder / "a.policy")).problems == []
    assert codes(run_lint(tmp_path, str(folder))) == []


def test_a_target_that_is_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LintTargetError):
        run_lint(tmp_path, str(tmp_path / "nowhere"))
    with pytest.raises(LintTargetError):
        run_lint(tmp_path, "no-such-pack")


# ---- the quality checks on a small pack --------------------------------------------------

RULE = """rule "demo/{name}"
  applies to {scope}
  root cause coding
  when {condition}
  then {outcome}
  reference "r"
end
"""


def rule(
    name: str,
    scope: str = "all lines",
    condition: str = "line.units > 1",
    outcome: str = "deny CO-151",
) -> str:
    return RULE.format(name=name, scope=scope, condition=condition, outcome=outcome)


def lint_text(tmp_path: Path, text: str, today: dt.date = TODAY) -> LintReport:
    write_pack(tmp_path, "version 1\n" + text, base=True)
    return lint([str(tmp_path / "demo")], ENV, roots=[tmp_path], today=today)


def test_problems_are_sorted_and_rendered_with_line_and_caret(tmp_path: Path) -> None:
    report = lint_text(
        tmp_path, "valueset b = codes [93000]\nvalueset a = codes [93000]\n" + rule("r")
    )
    assert [(p.code, p.span.line) for p in report.problems] == [("W101", 2), ("W101", 3)]
    text = report.render()
    assert (
        "rules.policy:2:1: warning W101 unused-value-set: value set `b` is never used\n"
        "    valueset b = codes [93000]\n    ^^^^^^^^^^\n  hint: delete it"
    ) in text
    assert text.endswith("demo: 0 errors, 2 warnings\n")


def test_a_value_set_used_only_by_another_value_set_or_a_message_is_used(tmp_path: Path) -> None:
    text = "valueset a = codes [93000]\nvalueset b = a + codes [93005]\n" + rule("r", "codes b")
    assert codes(lint_text(tmp_path, text)) == []


def test_a_library_value_set_used_by_an_including_pack_is_used(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "pack.yaml").write_text("id: lib\nname: lib\nlibrary: true\n", encoding="utf-8")
    (lib / "sets.policy").write_text(
        "version 1\nvalueset shared = codes [93000]\nvalueset spare = codes [93005]\n",
        encoding="utf-8",
    )
    write_pack(
        tmp_path,
        "version 1\n" + rule("r", "codes shared"),
        "id: demo\nname: demo\ninclude: [lib]\n",
    )
    report = lint([str(lib)], ENV, roots=[tmp_path], today=TODAY)
    assert [(p.code, p.message) for p in report.problems] == [
        ("W101", "value set `spare` is never used")
    ]
    # Linting the including pack reports nothing of the library's.
    assert lint([str(tmp_path / "demo")], ENV, roots=[tmp_path], today=TODAY).problems == []


def test_duplicate_codes_name_what_already_holds_them(tmp_path: Path) -> None:
    text = (
        "valueset a = codes [93000, 93005, 93000, 11400-11446, 11401]\n"
        "valueset b = icd10 [R07.*, R07.89]\n"
        + rule("r", "codes a", "any of line.pointed_diagnoses in b")
    )
    found = [(p.code, p.message) for p in lint_text(tmp_path, text).problems]
    assert found == [
        ("W102", "`93000` is already in this value set"),
        ("W102", "`11401` is already in this value set (through `11400-11446`)"),
        ("W102", "`R07.89` is already in this value set (through `R07.*`)"),
    ]


def test_rules_that_can_never_fire(tmp_path: Path) -> None:
    text = (
        "valueset ecg = codes [93000, 93005]\nvalueset none = codes []\n"
        + rule("empty", "codes none")
        + rule("disjoint", "codes ecg", "line.code in [99213]")
        + rule("all-excluded", "codes ecg", "line.code not in [93000, 93005, 93010]")
        + rule("other-code", "codes ecg", 'line.units > 1 and line.code == "93010"')
        + rule("false", "all lines", "false")
        + rule("fine", "codes ecg", 'line.code == "93005" and line.code not in [93000]')
    )
    found = [(p.code, p.message.split(":")[0]) for p in lint_text(tmp_path, text).problems]
    assert found == [
        ("W103", "value set `none` holds no code"),
        ("W201", "rule `demo/empty` applies to codes, but its scope holds no code"),
        ("W202", "rule `demo/disjoint` never fires"),
        ("W202", "rule `demo/all-excluded` never fires"),
        ("W202", "rule `demo/other-code` never fires"),
        ("W202", "rule `demo/false` never fires"),
    ]


def test_filters_that_no_claim_passes(tmp_path: Path) -> None:
    text = (
        'rule "demo/plans"\n  applies to all lines\n  plan is "gold"\n'
        '  plan is not "gold", "silver"\n  place of service is "1", "11"\n'
        '  root cause coding\n  when true\n  then deny CO-4\n  reference "r"\nend\n'
    )
    found = [(p.code, p.message, p.hint) for p in lint_text(tmp_path, text).problems]
    assert found == [
        (
            "W202",
            "rule `demo/plans` never fires: no plan passes all of its `plan is` filters",
            "keep one `plan is` filter that lists the values it applies to",
        ),
        (
            "W202",
            'place of service "1" never matches: place of service codes are two digits',
            'write "01"',
        ),
    ]


def dated(*versions: str) -> str:
    body = "".join(f"  {v}\n    when line.units > 1\n" for v in versions)
    return (
        'rule "demo/dated"\n  applies to all lines\n  root cause coding\n'
        f'  then deny CO-151\n  reference "r"\n{body}end\n'
    )


def test_versions_overlapping_shadowed_and_with_gaps(tmp_path: Path) -> None:
    text = dated(
        "effective 2026-01-01",
        "effective 2026-03-01 until 2026-04-30",  # overlaps the first
        "effective 2026-03-01 until 2026-03-31",  # taken by the one before
        "effective until 2025-06-30",
    )  # a gap 2025-07-01 .. 2025-12-31
    found = [(p.code, p.span.line, p.message) for p in lint_text(tmp_path, text).problems]
    assert found == [
        ("W206", 7, "no version of rule `demo/dated` applies to services 2025-07-01 to 2025-12-31"),
        (
            "W205",
            9,
            "this version and the one at line 7 are both in force 2026-03-01 to "
            "2026-04-30; there the version at line 9 applies",
        ),
        # Starting the same day as the version before it, it loses: that one is written
        # first (the compiler's order).
        (
            "W204",
            11,
            "the version 2026-03-01 to 2026-03-31 never applies: versions that "
            "start later take every one of its dates",
        ),
    ]


def test_a_rule_whose_versions_all_ended_has_expired(tmp_path: Path) -> None:
    text = dated("effective 2024-01-01 until 2024-12-31", "effective until 2023-12-31")
    report = lint_text(tmp_path, text, today=dt.date(2025, 1, 1))
    assert [(p.code, p.message) for p in report.problems] == [
        (
            "W203",
            "every version of rule `demo/dated` ended by 2024-12-31: it only applies "
            "to services on or before that date",
        )
    ]
    assert lint_text(tmp_path, text, today=dt.date(2024, 12, 31)).problems == []


def test_conflicts_need_shared_lines_filters_dates_and_the_same_conditions(tmp_path: Path) -> None:
    text = (
        "valueset ecg = codes [93000, 93005]\nvalueset echo = codes [93306]\n"
        + rule("a", "codes ecg", "line.units > 1 and line.modifiers is missing")
        # the same conditions, in another order and through a `let`: W301
        + rule(
            "b",
            "codes [93000, 93005, 93010]",
            "line.modifiers is missing and n > 1",
            "review CO-151",
        ).replace("  when", "  let n = line.units\n  when")
        # other codes: never on the same line
        + rule("c", "codes echo", "line.units > 1 and line.modifiers is missing", "deny CO-4")
        # the same outcome: W302
        + rule("d", "codes [93005]", "line.modifiers is missing and line.units > 1")
    )
    found = [(p.code, p.message) for p in lint_text(tmp_path, text).problems]
    assert found == [
        (
            "W301",
            f"rules `demo/b` (review CO-151) and `demo/a` (deny CO-151, "
            f"{tmp_path}/demo/rules.policy:4) fire on the same conditions for code 93000, "
            "93005: a line gets both outcomes",
        ),
        (
            "W301",
            f"rules `demo/d` (deny CO-151) and `demo/b` (review CO-151, "
            f"{tmp_path}/demo/rules.policy:11) fire on the same conditions for code 93005: a "
            "line gets both outcomes",
        ),
        (
            "W302",
            f"rules `demo/d` and `demo/a` ({tmp_path}/demo/rules.policy:4) fire on the "
            "same conditions for code 93005 with the same outcome: the line gets the finding "
            "twice",
        ),
    ]


def test_rules_for_other_plans_or_dates_do_not_conflict(tmp_path: Path) -> None:
    gold = rule("gold", outcome="deny CO-4").replace(
        "  root cause", '  plan is "gold"\n  root cause'
    )
    silver = rule("silver", outcome="deny CO-50").replace(
        "  root cause", '  plan is "silver"\n  root cause'
    )
    assert codes(lint_text(tmp_path, gold + silver)) == []
    not_gold = rule("not-gold", outcome="deny CO-50").replace(
        "  root cause", '  plan is not "gold"\n  root cause'
    )
    assert codes(lint_text(tmp_path, gold + not_gold)) == []
    anyone = rule("anyone", outcome="deny CO-50")
    assert codes(lint_text(tmp_path, gold + anyone)) == ["W301"]


def test_missing_references_per_rule_and_per_version(tmp_path: Path) -> None:
    text = (
        rule("none").replace('  reference "r"\n', "")
        + 'rule "demo/some"\n  applies to all lines\n  root cause coding\n'
        '  then deny CO-4\n  effective 2026-01-01\n    when true\n    reference "r"\n'
        "  effective until 2025-12-31\n    when true\nend\n"
    )
    found = [(p.code, p.message) for p in lint_text(tmp_path, text).problems]
    assert found == [
        ("W401", "rule `demo/none` has no reference"),
        ("W401", "the version of rule `demo/some` up to 2025-12-31 has no reference"),
    ]


def test_invalid_codes_come_with_the_closest_valid_ones(tmp_path: Path) -> None:
    text = "valueset dx = icd10 [R07.99]\n" + rule(
        "r", condition="any of line.pointed_diagnoses in dx"
    )
    (problem,) = lint_text(tmp_path, text).problems
    assert (problem.code, problem.hint) == ("E301", "did you mean `R07.9` or `R07.89` or `R79.9`?")


# ---- the command -----------------------------------------------------------------------


def test_the_command_exits_1_on_errors_and_prints_json(tmp_path: Path) -> None:
    write_pack(tmp_path, "version 1\nvalueset x = codes [9300]\n" + rule("r", "codes x"))
    runner = CliRunner()
    result = runner.invoke(app, ["lint", str(tmp_path / "demo"), "--format", "json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert (data["errors"], data["warnings"]) == (1, 0)
    (problem,) = data["problems"]
    assert problem["code"] == "E302" and problem["severity"] == "error"
    assert problem["source_line"] == "valueset x = codes [9300]"
    assert (problem["line"], problem["column"]) == (2, 21)
    assert problem["docs"] == "docs/lint.md#e302-malformed-procedure-code"


def test_warnings_exit_0_unless_strict_and_can_be_ignored(tmp_path: Path) -> None:
    write_pack(tmp_path, "version 1\n" + rule("r").replace('  reference "r"\n', ""))
    runner = CliRunner()
    target = str(tmp_path / "demo")
    result = runner.invoke(app, ["lint", target])
    assert result.exit_code == 0 and "W401 missing-reference" in result.output
    assert runner.invoke(app, ["lint", target, "--strict"]).exit_code == 1
    ignored = runner.invoke(app, ["lint", target, "--strict", "--ignore", "w401"])
    assert ignored.exit_code == 0 and ignored.output == "demo: no problems\n"
    assert runner.invoke(app, ["lint", str(tmp_path / "nothing")]).exit_code == 2


def test_the_shipped_packs_through_the_command() -> None:
    # W402 is expected on the shipped TTE rule (its A56781 list is declared partial until
    # `cleanclaim data import mcd` completes it): test_lint_warns_on_deny_over_partial_data.
    result = CliRunner().invoke(app, ["lint", "--ignore", "W402"])
    assert result.exit_code == 0
    assert result.output.startswith("acme-ppo, common, ")
    assert result.output.endswith(": no problems\n")


def test_lint_warns_on_deny_over_partial_data() -> None:
    result = CliRunner().invoke(app, ["lint", "medicare", "--format", "json"])
    problems = [p for p in json.loads(result.output)["problems"] if p["code"] == "W402"]
    messages = {p["message"].split("`")[1]: p["message"] for p in problems}
    assert sorted(messages) == [
        "medicare/addon/g2212-wrong-primary",
        "medicare/echo/doppler-addon-without-primary",
        "medicare/necessity/tte-lcd-l33577",
    ]
    assert "Article A56781" in messages["medicare/necessity/tte-lcd-l33577"]


def test_every_lint_code_is_distinct_from_the_checker_codes() -> None:
    assert not set(LINT_CODES) & set(ERROR_CODES)
    assert all(re.fullmatch(r"W[0-9]{3}", c) for c in LINT_CODES)

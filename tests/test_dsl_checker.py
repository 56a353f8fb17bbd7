"""The checker (dsl/checker.py, check_valuesets.py, check_rules.py, check_types.py):
expression types, value-set kinds, dated versions, and the errors each stage reports."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from cleanclaim.dsl import ast
from cleanclaim.dsl import types as T
from cleanclaim.dsl.checker import STAGES, CheckedPack, CheckEnv, check_pack
from cleanclaim.dsl.pack import PackManifest, PackSources, load_sources, read_manifest
from cleanclaim.dsl.valuesets import CodeSet, infer_kind, read_csv_column
from cleanclaim.engine.runtime import ENGINE_FUNCTIONS

FUNCTIONS = {f.name: f for f in (*T.BUILTINS, *ENGINE_FUNCTIONS)}
ENV = CheckEnv(FUNCTIONS, frozenset({"ncci-ptp", "ncci-mue"}))
NOWHERE = Path("/nonexistent/p")

VALUE_SETS = """\
valueset ecg = codes [93000, 93005]
valueset chest = icd10 [R07.*, I20.9]
valueset split = modifiers [26, TC]
"""


def check(
    files: Mapping[str, str] | str, pack_id: str = "p", real_paths: Mapping[str, Path] | None = None
) -> CheckedPack:
    """Check an in-memory pack: {display name: policy text}."""
    if isinstance(files, str):
        files = {f"{pack_id}/rules.policy": files}
    manifest = PackManifest(pack_id, pack_id, "1", False, (), (), NOWHERE, NOWHERE / "pack.yaml")
    sources = PackSources(manifest, [manifest], dict(files), {name: pack_id for name in files})
    return check_pack(sources, ENV, real_paths or {})


def codes_of(checked: CheckedPack) -> list[tuple[str, int, int]]:
    return [(e.code, e.span.line, e.span.column) for e in checked.errors]


def rule_text(body: str, scope: str = "all lines", rule_id: str = "p/r") -> str:
    return (
        f'version 1\n{VALUE_SETS}rule "{rule_id}"\n  applies to {scope}\n'
        f"  root cause coding\n{body}\n  then deny CO-97\nend\n"
    )


def type_of(expression: str, scope: str = "all lines") -> T.Type:
    """The type the checker infers for `let v = <expression>`."""
    checked = check(rule_text(f"  let v = {expression}\n  when true", scope))
    assert checked.errors == [], [e.message for e in checked.errors]
    ((_pack, rule),) = checked.rules
    (let,) = rule.versions[0].lets
    return checked.types[id(let.value)]


def test_the_stages_run_in_order() -> None:
    assert [name for name, _stage in STAGES] == [
        "parse",
        "declarations",
        "value-sets",
        "tables",
        "counters",
        "rules",
        "counter-calls",
        "exceptions",
    ]


# ---- expression types -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "shown", "nullable"),
    [
        ("1", "number", False),
        ("2.5", "number", False),
        ('"gold"', "str", False),
        ("2026-01-01", "date", False),
        ("true", "bool", False),
        ("line.units", "number", True),
        ("line.code", "code", True),
        ("line.charge", "money", True),
        ("line.service_date", "date", False),
        ("line.modifiers", "list of modifier", False),
        ("line.pointed_diagnoses", "list of icd10", False),
        ("line.diagnosis_pointers", "list of number", False),
        ("other_lines", "list of Line", False),
        ("claim.lines", "list of Line", False),
        ("claim.plan", "str", True),
        ("claim.received_date", "date", False),
        ("claim.member.birth_date", "date", True),
        ("member.coverage", "list of Coverage", False),
        ("claim.rendering_provider.npi", "str", True),
        ("line.service_date + 30", "date", False),
        ("line.service_date - 30", "date", False),
        ("claim.received_date - line.service_date", "number", False),
        ("member.birth_date + 30", "date", True),
        ("line.units + 1", "number", True),
        ("line.charge + 1", "money", True),
        ("1 + 2 - 3", "number", False),
        ("days_between(line.service_date, claim.received_date)", "number", True),
        ("years_between(member.birth_date, line.service_date)", "number", True),
        ("add_years(line.service_date, 1)", "date", True),
        ("add_days(line.service_date, 30)", "date", True),
        ("count(claim.diagnoses)", "number", False),
        ("coverage_start()", "date", True),
        ("covered_on(line.service_date)", "bool", False),
        ("count o in other_lines where o.code == line.code", "number", False),
        ("any o in other_lines where o.code == line.code", "bool", False),
        ("all of line.pointed_diagnoses in chest", "bool", False),
        ("count of line.modifiers in split", "number", False),
        ("line.code in ecg", "bool", False),
        ("line.units is missing", "bool", False),
        ("not (line.units > 1)", "bool", False),
        ("ecg", "set:codes", False),
        ("chest", "set:icd10", False),
        ("[93000, 93010]", "set:codes", False),
        ("[R07.9]", "set:icd10", False),
        ("[26, TC]", "set:modifiers", False),
    ],
)
def test_expression_types(expression: str, shown: str, nullable: bool) -> None:
    found = type_of(expression)
    assert (_show(found), found.nullable) == (shown, nullable)


def _show(t: T.Type) -> str:
    # A value set's type carries its kind (codes, icd10, modifiers) as element name.
    if t.name == "set":
        assert t.elem is not None
        return f"set:{t.elem.name}"
    return str(t)


@pytest.mark.parametrize(
    ("scope", "expression", "shown"),
    [
        ("claim", "claim.first_service_date", "date"),
        ("claim", "member.sex", "str"),
        ("each diagnosis", "diagnosis.code", "icd10"),
        ("each diagnosis", "diagnosis.position", "number"),
        ("codes ecg", "line.code", "code"),
    ],
)
def test_names_by_scope(scope: str, expression: str, shown: str) -> None:
    assert str(type_of(expression, scope)) == shown


def test_a_quantifier_variable_has_the_element_type() -> None:
    checked = check(rule_text("  when any o in other_lines where o.service_date > 2026-01-01"))
    assert checked.errors == []
    ((_pack, rule),) = checked.rules
    (cond,) = rule.versions[0].conditions
    assert isinstance(cond, ast.Quantified)
    assert isinstance(cond.condition, ast.Compare)
    assert str(checked.types[id(cond.condition.left)]) == "date"


def test_a_let_carries_its_type_to_later_uses() -> None:
    checked = check(
        rule_text("  let due = add_years(line.service_date, 1)\n  when claim.received_date > due")
    )
    assert checked.errors == []
    ((_pack, rule),) = checked.rules
    (cond,) = rule.versions[0].conditions
    assert isinstance(cond, ast.Compare)
    due = checked.types[id(cond.right)]
    assert (str(due), due.nullable) == ("date", True)


@pytest.mark.parametrize(
    ("scope", "when", "error"),
    [
        ("claim", "line.units > 1", ("E104", 8, 8)),
        ("each diagnosis", "other_lines is missing", ("E104", 8, 8)),
        ("all lines", "diagnosis.code in chest", ("E104", 8, 8)),
        ("claim", "ptp_conflict(ptp) is present", ("E103", 8, 8)),
    ],
)
def test_names_and_functions_outside_their_scope(
    scope: str, when: str, error: tuple[str, int, int]
) -> None:
    checked = check(rule_text(f"  when {when}", scope))
    assert codes_of(checked)[0] == error


def test_line_in_a_claim_rule_says_the_rule_applies_to_the_claim() -> None:
    checked = check(rule_text("  when line.units > 1", "claim"))
    (error,) = checked.errors
    assert error.code == "E104"
    text = f"{error.message} {error.hint}"
    assert "applies to claim" in text or "claim rule" in text
    assert "names start with claim, line" not in text


# ---- kinds of code lists ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "kind"),
    [
        (["93000"], "codes"),
        (["93000", "93005-93010"], "codes"),
        (["J0100", "0001F", "A0425"], "codes"),
        (["R07.9"], "icd10"),
        (["R07.*"], "icd10"),
        (["I10"], "icd10"),
        (["r07.9", "Z00.00"], "icd10"),
        (["26", "TC"], "modifiers"),
        (["Z00", "26"], None),
        ([], None),
    ],
)
def test_kind_inference_of_unmarked_code_lists(items: list[str], kind: str | None) -> None:
    assert infer_kind(items) == kind


def test_value_sets_resolve_to_code_sets_of_one_kind() -> None:
    checked = check(
        "version 1\n"
        "valueset ecg = [93000, 93005-93007]\n"
        "valueset chest = [R07.*, I20.9, r06.02]\n"
        "valueset split = [26, tc]\n"
        "valueset all_ecg = ecg + codes [93010]\n"
    )
    assert checked.errors == []
    sets = checked.valuesets
    assert sets["ecg"] == CodeSet("codes", frozenset({"93000", "93005", "93006", "93007"}))
    assert sets["chest"] == CodeSet("icd10", frozenset({"I209", "R0602"}), ("R07",))
    assert sets["split"] == CodeSet("modifiers", frozenset({"26", "TC"}))
    assert sets["all_ecg"].exact == sets["ecg"].exact | {"93010"}
    assert "R0789" in sets["chest"] and "R06" not in sets["chest"]


@pytest.mark.parametrize(
    ("when", "shown"),
    [
        ("line.code in [93000]", "set:codes"),
        ("any of line.modifiers in [25, 59]", "set:modifiers"),
        ("any of line.pointed_diagnoses in [I10]", "set:icd10"),
        ("any of line.pointed_diagnoses in [Z00.00, R07.*]", "set:icd10"),
    ],
)
def test_an_inline_list_takes_the_kind_of_what_is_looked_up(when: str, shown: str) -> None:
    checked = check(rule_text(f"  when {when}"))
    assert checked.errors == []
    ((_pack, rule),) = checked.rules
    (cond,) = rule.versions[0].conditions
    assert isinstance(cond, ast.Membership | ast.QuantifiedIn)
    container = cond.container
    assert isinstance(container, ast.CodeList)
    assert _show(checked.types[id(container)]) == shown
    assert id(container) in checked.literal_sets


def test_an_unmarked_list_of_unclear_kind_is_E305() -> None:
    checked = check("version 1\nvalueset odd = [Z00, 26]\n")
    assert codes_of(checked) == [("E305", 2, 16)]
    assert checked.errors[0].hint == "mark it: `codes [...]`, `icd10 [...]` or `modifiers [...]`"


def test_scope_sets_are_recorded_for_code_scoped_rules() -> None:
    checked = check(rule_text("  when true", "codes ecg + [93010-93012]"))
    assert checked.errors == []
    assert checked.scope_sets["p/r"].exact == {"93000", "93005", "93010", "93011", "93012"}


def test_csv_value_sets_are_read_beside_the_policy_file(tmp_path: Path) -> None:
    (tmp_path / "lcd.csv").write_text(
        "icd10cm,description\nR07.9,Chest pain\nI48.91,AF\n\n", encoding="utf-8"
    )
    checked = check(
        {"p/rules.policy": 'version 1\nvalueset g = csv "lcd.csv" column "icd10cm"\n'},
        real_paths={"p/rules.policy": tmp_path / "rules.policy"},
    )
    assert checked.errors == []
    assert checked.valuesets["g"] == CodeSet("icd10", frozenset({"R079", "I4891"}))


# ---- dated versions -----------------------------------------------------------------------

TIMELY = """version 1
rule "p/timely"
  applies to all lines
  root cause timely_filing
  let days = days_between(line.service_date, claim.received_date)
  when days > limit
  then deny CO-29
  effective 2026-01-01
    let limit = 90
    message "{days} days; limit {limit}"
  effective until 2025-12-31
    let limit = 180
    let grace = 10
    when days > limit + grace
end
"""


def test_shared_clauses_are_checked_with_each_version_s_own_lets() -> None:
    checked = check(TIMELY)
    assert checked.errors == []
    ((_pack, rule),) = checked.rules
    new, old = rule.versions
    assert [let.name for let in new.lets] == ["days", "limit"]
    assert [let.name for let in old.lets] == ["days", "limit", "grace"]
    # the shared condition is one node, typed once; each version adds its own conditions
    assert new.conditions[0] is old.conditions[0]
    assert len(new.conditions) == 1 and len(old.conditions) == 2
    assert id(new.message) in checked.templates


def test_a_let_of_one_version_is_unknown_in_another() -> None:
    text = TIMELY.replace(
        'message "{days} days; limit {limit}"',
        'message "{days} days; limit {limit}, grace {grace}"',
    )
    checked = check(text)
    assert codes_of(checked) == [("E109", 10, 48)]
    assert checked.errors[0].message == "unknown name `grace`"


def test_each_version_needs_an_outcome_and_a_condition() -> None:
    checked = check(
        'version 1\nrule "p/r"\n  applies to all lines\n  root cause coding\n'
        "  effective 2026-01-01\n    when true\n    then deny CO-1\n"
        '  effective until 2025-12-31\n    message "old"\nend\n'
    )
    assert [(e.code, e.span.line, e.span.column) for e in checked.errors] == [
        ("E403", 8, 3),
        ("E403", 8, 3),
    ]
    assert {e.message for e in checked.errors} == {
        "rule `p/r` has no outcome",
        "rule `p/r` has no `when` condition",
    }


def test_reversed_dates_are_E406_at_the_effective_clause() -> None:
    checked = check(rule_text("  effective 2026-02-01 until 2026-01-31\n  when true"))
    assert codes_of(checked) == [("E406", 8, 3)]


# ---- errors: one pass, sorted -------------------------------------------------------------


def test_errors_of_every_stage_and_file_come_back_sorted() -> None:
    checked = check(
        {
            "p/b.policy": rule_text("  when line.unit > 1", rule_id="p/b"),
            "p/a.policy": 'version 1\nvalueset bad = icd10 [R07]\nrule "p/a"\n  when true\n'
            "  then deny CO-1\n  root cause codng\nend\n"
            'rule "p/c"\n  then deny 97\nend\n',
        }
    )
    assert [(e.span.file, e.code, e.span.line) for e in checked.errors] == [
        ("p/a.policy", "E301", 2),
        ("p/a.policy", "E404", 3),
        ("p/a.policy", "E401", 6),
        ("p/a.policy", "E001", 9),
        ("p/b.policy", "E102", 8),
    ]


def test_type_errors_name_both_sides() -> None:
    checked = check(rule_text('  when line.service_date > 30 and line.units == "1"'))
    assert [e.message for e in checked.errors] == [
        "cannot compare date with number",
        "cannot compare number with str",
    ]


@pytest.mark.parametrize(
    ("when", "scope", "bad"),
    [
        ("any of line.pointed_diagnoses in ecg", "all lines", ["a icd10", "codes codes"]),
        ("any of line.modifiers in ecg", "all lines", ["codes codes"]),
        ("ptp_conflict(ptp) is present", "each diagnosis", ["diagnosiss"]),
        ("true", "codes split", ["modifiers codes"]),
    ],
    ids=["icd10-in-codes", "modifier-in-codes", "function-scope", "modifier-scope"],
)
def test_messages_read_as_english(when: str, scope: str, bad: list[str]) -> None:
    checked = check(rule_text(f"  when {when}", scope))
    messages = " | ".join(e.message for e in checked.errors)
    assert checked.errors
    for fragment in bad:
        assert fragment not in messages


def test_joining_kinds_message_reads_as_english() -> None:
    checked = check("version 1\nvalueset m = codes [93000] + icd10 [R07.9]\n")
    (error,) = checked.errors
    assert error.code == "E305"
    assert "codes codes" not in error.message


def test_the_difference_of_two_code_sets_is_a_code_set() -> None:
    checked = check(rule_text("  when line.code in ecg - [93005]"))
    assert checked.errors == []


@pytest.mark.parametrize(
    ("kind", "shown"),
    [
        ("codes", "set of procedure codes"),
        ("icd10", "set of ICD-10-CM codes"),
        ("modifiers", "set of modifiers"),
    ],
)
def test_a_value_set_type_names_its_codes(kind: str, shown: str) -> None:
    assert str(T.set_of(kind)) == shown


@pytest.mark.parametrize(
    ("when", "scope", "message"),
    [
        (
            "any of line.pointed_diagnoses in ecg",
            "all lines",
            "an ICD-10-CM code is never in a set of procedure codes",
        ),
        (
            "line.code in chest",
            "all lines",
            "a procedure code is never in a set of ICD-10-CM codes",
        ),
        (
            "ptp_conflict(ptp) is present",
            "each diagnosis",
            "`ptp_conflict` cannot be used in a rule that applies to each diagnosis",
        ),
        ("true", "codes split", "a rule applies to procedure codes, not to modifiers"),
        (
            "line.code in ecg + chest",
            "all lines",
            "cannot join ICD-10-CM codes to a set of procedure codes",
        ),
        (
            "line.code in ecg - chest",
            "all lines",
            "cannot take ICD-10-CM codes out of a set of procedure codes",
        ),
    ],
)
def test_messages_name_kinds_of_codes_in_english(when: str, scope: str, message: str) -> None:
    checked = check(rule_text(f"  when {when}", scope))
    assert message in [e.message for e in checked.errors]


def test_a_difference_of_code_sets_is_resolved_with_prefixes_expanded() -> None:
    chest = CodeSet("icd10", frozenset({"I209"}), ("R07",))
    assert chest - CodeSet("icd10", frozenset({"R079"})) == CodeSet(
        "icd10", frozenset({"I209", "R070", "R071", "R072", "R0781", "R0782", "R0789"})
    )
    assert chest - CodeSet("icd10", frozenset(), ("R07",)) == CodeSet("icd10", frozenset({"I209"}))
    assert chest - CodeSet("icd10", frozenset({"I10"})) == chest
    assert "R0789" not in chest.difference(CodeSet("icd10", frozenset(), ("R078",)))


@pytest.mark.parametrize("expression", ["ecg - [93005]", "[R07.*] - chest", "split - [26]"])
def test_the_difference_of_two_code_sets_has_the_kind_of_the_first(expression: str) -> None:
    assert _show(type_of(expression)) == _show(type_of(expression.split(" - ")[0]))


@pytest.mark.parametrize(
    ("when", "column"),
    [
        ("1 is missing", 8),
        ('"x" is present', 8),
        ("(line.units > 1) is missing", 9),
        ("[93000] is missing", 8),
    ],
)
def test_only_a_value_read_from_the_claim_can_be_missing(when: str, column: int) -> None:
    checked = check(rule_text(f"  when {when}"))
    assert codes_of(checked) == [("E201", 8, column)]
    assert "`is " in checked.errors[0].message


@pytest.mark.parametrize(
    "when",
    [
        "line.units is missing",
        "coverage_start() is missing",
        "line.units + 1 is present",
        "line.modifiers is missing",
    ],
)
def test_fields_names_and_function_results_can_be_missing(when: str) -> None:
    assert check(rule_text(f"  when {when}")).errors == []


@pytest.mark.parametrize(
    ("shown", "message"),
    [
        ("{line}", "`{line}` is a Line record, which a message cannot show"),
        ("{other_lines}", "`{other_lines}` is a list of Line, which a message cannot show"),
        ("{ecg}", "`{ecg}` is a set of procedure codes, which a message cannot show"),
        ("{claim.member}", "`{claim.member}` is a Member record, which a message cannot show"),
    ],
)
def test_a_message_shows_only_scalars_and_lists_of_scalars(shown: str, message: str) -> None:
    checked = check(rule_text(f'  when true\n  message "x {shown}"'))
    assert [(e.code, e.message) for e in checked.errors] == [("E109", message)]
    assert (checked.errors[0].span.line, checked.errors[0].span.column) == (9, 14)


def test_a_message_may_show_lists_of_scalars() -> None:
    checked = check(rule_text('  when true\n  message "{line.modifiers} {line.pointed_diagnoses}"'))
    assert checked.errors == []


def test_template_columns_count_escapes_in_the_message_string() -> None:
    checked = check(rule_text('  when true\n  message "\\"a\\" \\\\ {line.unitz} {nope}"'))
    # `"\"a\" \\ {line.unitz}`: the quote is at column 11, the field at column 21
    assert codes_of(checked) == [("E102", 9, 21), ("E109", 9, 34)]
    assert [e.span.end_column for e in checked.errors] == [33, 40]


def test_users_of_a_value_set_with_a_syntax_error_are_not_reported() -> None:
    checked = check(
        "version 1\nvalueset ecg = codes [93000, 93005\n\n"
        'rule "p/r"\n  applies to codes ecg + [93010]\n  root cause coding\n'
        "  when line.code in ecg and any of other_lines in ecg\n"
        "  then deny CO-1\nend\n"
    )
    assert codes_of(checked) == [("E001", 4, 1)]


def test_a_value_set_of_a_file_with_no_version_line_is_not_reported_unknown() -> None:
    checked = check(
        {
            "p/a.policy": "valueset ecg = [93000]\n",
            "p/b.policy": rule_text("  when line.code in ecg"),
        }
    )
    assert codes_of(checked) == [("E004", 1, 1)]


def test_a_cycle_of_value_sets_is_reported_once() -> None:
    checked = check("version 1\nvalueset a = b + [93000]\nvalueset b = c\nvalueset c = a\n")
    assert codes_of(checked) == [("E108", 4, 14)]
    assert checked.errors[0].message == "value set `a` refers to itself: a -> b -> c -> a"


def test_a_misplaced_clause_is_named_as_written() -> None:
    checked = check(
        'version 1\nrule "p/r"\n  root cause coding\n  effective 2026-01-01\n'
        '    applies to all lines\n    place of service is "11"\n    when true\n'
        "    then deny CO-1\nend\n"
    )
    assert [e.message for e in checked.errors] == [
        "`applies to` cannot stand here",
        "`place of service` cannot stand here",
    ]


def test_an_unknown_name_lists_the_names_of_the_rule_s_scope() -> None:
    checked = check(rule_text("  when nothing_like_it > 1", "claim"))
    (error,) = checked.errors
    assert error.hint == "names start with claim, member, a `let` name or a value set"


# ---- manifests and CSV files: errors where they stand ------------------------------------


def _write_pack(root: Path, pack_id: str, manifest: str) -> Path:
    folder = root / pack_id
    folder.mkdir()
    (folder / "pack.yaml").write_text(manifest, encoding="utf-8")
    return folder


def test_manifest_errors_stand_at_the_key_or_value_they_are_about(tmp_path: Path) -> None:
    folder = _write_pack(
        tmp_path,
        "p",
        "id: p\nnmae: x\ninclude: common\ntables:\n"
        "  ptp: {format: ncci-ptp, file: ptp.txt}\n  bad: 3\n",
    )
    manifest, errors = read_manifest(folder)
    assert [(e.message, e.span.line, e.span.column, e.span.end_column) for e in errors] == [
        ("unknown manifest key `nmae`", 2, 1, 5),
        ("`include` must be a list of pack ids", 3, 10, 16),
        ("table `bad` needs `format` and `file`", 6, 3, 6),
    ]
    assert {e.span.file for e in errors} == {str(folder / "pack.yaml")}
    assert manifest is not None
    (ptp,) = manifest.tables
    assert ptp.format_span == ast.Span(str(folder / "pack.yaml"), 5, 17, 5, 25)
    assert ptp.file_span == ast.Span(str(folder / "pack.yaml"), 5, 33, 5, 40)


def test_a_manifest_that_is_not_yaml_is_located_at_the_problem(tmp_path: Path) -> None:
    folder = _write_pack(tmp_path, "p", "id: p\ninclude: [common\nname: x\n")
    manifest, (error,) = read_manifest(folder)
    assert manifest is None
    assert (error.code, error.span.line) == ("E501", 3)
    assert error.message.startswith("cannot read manifest: ")


def test_unknown_includes_stand_at_their_entry_and_manifests_are_sources(tmp_path: Path) -> None:
    _write_pack(tmp_path, "common", "id: common\nlibrary: true\n")
    _write_pack(tmp_path, "p", "id: p\ninclude:\n  - common\n  - comon2\n")
    sources = load_sources([tmp_path], "p")
    assert sources is not None
    (error,) = sources.errors
    assert (error.code, error.span.line, error.span.column) == ("E502", 4, 5)
    assert error.hint == "did you mean `common`?"
    assert sorted(sources.extra_sources) == [
        str(tmp_path / "common" / "pack.yaml"),
        str(tmp_path / "p" / "pack.yaml"),
    ]


def test_csv_values_come_with_their_line_and_column() -> None:
    text = (
        'seq,icd10cm,description\n1,R07.9,Chest pain\n\n"2, ""a""",  I10,x\n'
        '3,"Z00.00","two\nlines"\n"4\n4",R51.9\n5,,empty\n'
    )
    values, problem = read_csv_column(text, "icd10cm")
    assert problem is None
    assert values == [("R07.9", 2, 3), ("I10", 4, 14), ("Z00.00", 5, 4), ("R51.9", 8, 4)]


def test_csv_errors_stand_at_the_code_and_the_csv_text_is_a_source(tmp_path: Path) -> None:
    (tmp_path / "lcd.csv").write_text("seq,icd10cm\n1,R07.9\n2,  R07\n", encoding="utf-8")
    checked = check(
        {"p/rules.policy": 'version 1\nvalueset g = csv "lcd.csv" column "icd10cm"\n'},
        real_paths={"p/rules.policy": tmp_path / "rules.policy"},
    )
    (error,) = checked.errors
    assert (error.code, error.span.file, error.span.line, error.span.column) == (
        "E301",
        "p/lcd.csv",
        3,
        5,
    )
    assert error.span.end_column == 8
    assert checked.sources.extra_sources["p/lcd.csv"].startswith("seq,icd10cm\n")

"""The policy parser (dsl/parser.py, dsl/to_ast.py, dsl/syntax_errors.py): text to syntax
tree, spans, layout, syntax errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from cleanclaim.dsl import ast
from cleanclaim.dsl.errors import PolicyError
from cleanclaim.dsl.parser import parse_policy

FILE = "p/rules.policy"


def parse(text: str) -> ast.PolicyFile:
    tree, errors = parse_policy(text, FILE)
    assert errors == [], "\n".join(e.render(text) for e in errors)
    assert tree is not None
    return tree


def errors_of(text: str) -> list[PolicyError]:
    _tree, errors = parse_policy(text, FILE)
    return errors


def rule_with(clauses: str) -> ast.Rule:
    """The single rule of a file whose body is `clauses`."""
    tree = parse(f'version 1\nrule "p/r"\n{clauses}\nend\n')
    assert len(tree.rules) == 1
    return tree.rules[0]


def expr(text: str) -> ast.Expr:
    """The expression of `when <text>` in a one-rule file."""
    rule = rule_with(f"  when {text}")
    (condition,) = rule.versions[0].conditions
    return condition


def span(node: Any) -> tuple[int, int, int, int]:
    s = node.span
    assert s.file == FILE
    return (s.line, s.column, s.end_line, s.end_column)


def shape(node: Any) -> Any:
    """A node without its spans, to compare trees written with different layouts."""
    if isinstance(node, ast.Span):
        return None
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return (
            type(node).__name__,
            *(
                shape(getattr(node, f.name))
                for f in dataclasses.fields(node)
                if f.name not in ("span", "path")
            ),
        )
    if isinstance(node, tuple):
        return tuple(shape(n) for n in node)
    return node


# ---- the file ---------------------------------------------------------------------------


def test_a_file_is_a_version_line_then_value_sets_and_rules() -> None:
    tree = parse(
        'version 1\nvalueset a = [93000]\nrule "p/r"\n  when true\nend\nvalueset b = [93005]\n'
    )
    assert tree.language_version == 1
    assert tree.path == FILE
    assert [v.name for v in tree.valuesets] == ["a", "b"]
    assert [r.id for r in tree.rules] == ["p/r"]


def test_comments_and_blank_lines_may_precede_the_version_line() -> None:
    tree = parse("# Policy for ...\n\n   # indented comment\nversion 1 # trailing\n")
    assert tree.language_version == 1
    assert tree.valuesets == () and tree.rules == ()


# ---- value sets -------------------------------------------------------------------------


def test_value_set_literal_with_kind_and_spans() -> None:
    (vs,) = parse("version 1\nvalueset ecg = codes [93000, 93005-93010]\n").valuesets
    assert vs.name == "ecg"
    assert span(vs) == (2, 1, 2, 42)
    (term,) = vs.terms
    assert isinstance(term, ast.SetLiteral)
    assert term.kind == "codes"
    assert span(term) == (2, 16, 2, 42)
    assert span(term.codes) == (2, 22, 2, 42)
    assert [i.text for i in term.codes.items] == ["93000", "93005-93010"]
    assert [span(i) for i in term.codes.items] == [(2, 23, 2, 28), (2, 30, 2, 41)]


@pytest.mark.parametrize(
    ("marker", "kind"),
    [
        ("codes ", "codes"),
        ("icd10 ", "icd10"),
        ("modifiers ", "modifiers"),
        ("", None),
    ],
)
def test_value_set_kind_markers(marker: str, kind: str | None) -> None:
    (vs,) = parse(f"version 1\nvalueset v = {marker}[A1]\n").valuesets
    (term,) = vs.terms
    assert isinstance(term, ast.SetLiteral)
    assert term.kind == kind


def test_code_items_are_upper_cased_and_a_trailing_comma_is_allowed() -> None:
    (vs,) = parse("version 1\nvalueset v = icd10 [r07.*, z00.00, ]\n").valuesets
    term = vs.terms[0]
    assert isinstance(term, ast.SetLiteral)
    assert [i.text for i in term.codes.items] == ["R07.*", "Z00.00"]


def test_empty_code_list() -> None:
    (vs,) = parse("version 1\nvalueset v = codes []\n").valuesets
    term = vs.terms[0]
    assert isinstance(term, ast.SetLiteral)
    assert term.codes.items == ()


def test_value_set_from_a_csv_column() -> None:
    text = 'version 1\nvalueset g1 = icd10 csv "lcd \\"a\\".csv" column "icd10cm"\n'
    (vs,) = parse(text).valuesets
    (term,) = vs.terms
    assert isinstance(term, ast.SetCsv)
    assert (term.kind, term.file, term.column) == ("icd10", 'lcd "a".csv', "icd10cm")
    assert span(term) == (2, 15, 2, 57)


def test_value_set_union_of_references_literals_and_csv() -> None:
    (vs,) = parse(
        'version 1\nvalueset every = ecg + [93010] + codes csv "x.csv" column "c"\n'
    ).valuesets
    assert [type(t).__name__ for t in vs.terms] == ["SetRef", "SetLiteral", "SetCsv"]
    ref = vs.terms[0]
    assert isinstance(ref, ast.SetRef)
    assert ref.name == "ecg"
    assert span(ref) == (2, 18, 2, 21)


# ---- rule clauses -----------------------------------------------------------------------


def test_rule_header_clauses_and_their_spans() -> None:
    rule = rule_with(
        '  title "ECG component with global"\n'  # line 3
        "  applies to codes ecg_components\n"  # line 4
        '  plan is not "gold", "silver"\n'  # line 5
        '  place of service is "11"\n'  # line 6
        "  root cause coding\n"  # line 7
        "  owner billing\n"  # line 8
        "  kind duplicate\n"  # line 9
        "  when true\n"  # line 10
        "  then deny CO-97 with M15, N54\n"  # line 11
        '  message "m {line.code}"\n'  # line 12
        '  reference "NCCI ch. XI"'  # line 13
    )
    assert rule.id == "p/r"
    assert span(rule) == (2, 1, 14, 4)
    assert rule.title is not None and rule.title.value == "ECG component with global"
    assert span(rule.title) == (3, 9, 3, 36)
    assert rule.scope is not None and rule.scope.kind == "codes"
    assert span(rule.scope) == (4, 14, 4, 34)
    (ref,) = rule.scope.codes
    assert isinstance(ref, ast.SetRef) and ref.name == "ecg_components"
    plan, pos = rule.filters
    assert (plan.field, plan.negated, plan.values) == ("plan", True, ("gold", "silver"))
    assert span(plan) == (5, 3, 5, 31)
    assert (pos.field, pos.negated, pos.values) == ("place_of_service", False, ("11",))
    assert rule.root_cause is not None and rule.root_cause.value == "coding"
    assert span(rule.root_cause) == (7, 14, 7, 20)
    assert rule.owner is not None and rule.owner.value == "billing"
    assert span(rule.owner) == (8, 9, 8, 16)
    assert rule.kind is not None and rule.kind.value == "duplicate"
    (version,) = rule.versions
    assert version.start is None and version.end is None
    assert span(version) == span(rule)  # no `effective`: the version is the whole rule
    assert version.outcome == ast.Outcome(
        "deny", "CO", "97", ("M15", "N54"), ast.Span(FILE, 11, 3, 11, 32)
    )
    assert version.message is not None and version.message.value == "m {line.code}"
    assert span(version.message) == (12, 11, 12, 26)
    assert version.reference is not None and version.reference.value == "NCCI ch. XI"
    assert rule.misplaced == ()


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("applies to codes ecg", "codes"),
        ("applies to all lines", "all_lines"),
        ("applies to claim", "claim"),
        ("applies to each diagnosis", "diagnosis"),
    ],
)
def test_scopes(text: str, kind: str) -> None:
    rule = rule_with(f"  {text}\n  when true")
    assert rule.scope is not None
    assert rule.scope.kind == kind
    assert (rule.scope.codes != ()) == (kind == "codes")


def test_scope_codes_may_be_a_union_with_an_inline_list() -> None:
    rule = rule_with("  applies to codes ecg + [93010, 93306-93308]\n  when true")
    assert rule.scope is not None
    ref, literal = rule.scope.codes
    assert isinstance(ref, ast.SetRef) and isinstance(literal, ast.SetLiteral)
    assert literal.kind is None
    assert [i.text for i in literal.codes.items] == ["93010", "93306-93308"]


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        ("then reject CO-16 with MA130, M76", ("reject", "CO", "16", ("MA130", "M76"))),
        ("then deny PR-204", ("deny", "PR", "204", ())),
        ("then review OA-23", ("review", "OA", "23", ())),
        ("then info CO-97 with N54", ("info", "CO", "97", ("N54",))),
        ("then deny CO-P1", ("deny", "CO", "P1", ())),
    ],
)
def test_outcomes(text: str, outcome: tuple[Any, ...]) -> None:
    found = rule_with(f"  when true\n  {text}").versions[0].outcome
    assert found is not None
    assert (found.severity, found.group, found.carc, found.rarcs) == outcome


# ---- expressions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("365", 365),
        ("2.50", Decimal("2.50")),
        ('"gold"', "gold"),
        ('"say \\"hi\\""', 'say "hi"'),
        ("2024-02-29", dt.date(2024, 2, 29)),
        ("true", True),
        ("false", False),
    ],
)
def test_literals(text: str, value: object) -> None:
    node = expr(f"x == {text}")
    assert isinstance(node, ast.Compare)
    assert isinstance(node.right, ast.Literal_)
    assert node.right.value == value
    assert type(node.right.value) is type(value)


def test_paths_calls_and_code_lists() -> None:
    node = expr("days_between(line.service_date, claim.received_date) > [93000, R07.*]")
    assert isinstance(node, ast.Compare)
    call = node.left
    assert isinstance(call, ast.Call)
    assert call.name == "days_between"
    assert [a.parts for a in call.args if isinstance(a, ast.Path)] == [
        ("line", "service_date"),
        ("claim", "received_date"),
    ]
    assert isinstance(node.right, ast.CodeList)
    assert [i.text for i in node.right.items] == ["93000", "R07.*"]


def test_calls_with_no_arguments_and_count() -> None:
    node = expr("coverage_count() == count(claim.diagnoses)")
    assert isinstance(node, ast.Compare)
    assert isinstance(node.left, ast.Call) and node.left.args == ()
    assert isinstance(node.right, ast.Call)
    assert node.right.name == "count" and len(node.right.args) == 1


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_comparison_operators(op: str) -> None:
    node = expr(f"line.units {op} 2")
    assert isinstance(node, ast.Compare)
    assert node.op == op


def test_boolean_precedence_not_then_and_then_or() -> None:
    node = expr("not a or b and c")
    assert shape(node) == shape(
        ast.BoolOp(
            "or",
            ast.Not(ast.Path(("a",), _S), _S),
            ast.BoolOp("and", ast.Path(("b",), _S), ast.Path(("c",), _S), _S),
            _S,
        )
    )


def test_parentheses_group() -> None:
    node = expr("(a or b) and not (c)")
    assert isinstance(node, ast.BoolOp) and node.op == "and"
    assert isinstance(node.left, ast.BoolOp) and node.left.op == "or"
    assert isinstance(node.right, ast.Not)


def test_arithmetic_is_left_associative_and_binds_tighter_than_comparison() -> None:
    node = expr("a - b + 30 > c")
    assert isinstance(node, ast.Compare)
    outer = node.left
    assert isinstance(outer, ast.Arith) and outer.op == "+"
    assert isinstance(outer.left, ast.Arith) and outer.left.op == "-"
    assert isinstance(outer.right, ast.Literal_) and outer.right.value == 30


@pytest.mark.parametrize(
    ("text", "negated"), [("line.code in ecg", False), ("line.code not in ecg", True)]
)
def test_membership(text: str, negated: bool) -> None:
    node = expr(text)
    assert isinstance(node, ast.Membership)
    assert node.negated is negated
    assert isinstance(node.element, ast.Path) and node.element.parts == ("line", "code")
    assert isinstance(node.container, ast.Path) and node.container.parts == ("ecg",)


@pytest.mark.parametrize(
    ("text", "missing"), [("line.units is missing", True), ("line.units is present", False)]
)
def test_presence(text: str, missing: bool) -> None:
    node = expr(text)
    assert isinstance(node, ast.Presence)
    assert node.missing is missing


@pytest.mark.parametrize("quantifier", ["any", "all", "no", "count"])
def test_quantified_over_a_list(quantifier: str) -> None:
    node = expr(f"{quantifier} o in other_lines where o.code == line.code")
    assert isinstance(node, ast.Quantified)
    assert node.quantifier == quantifier
    assert node.var == "o"
    assert isinstance(node.collection, ast.Path) and node.collection.parts == ("other_lines",)
    assert isinstance(node.condition, ast.Compare)


@pytest.mark.parametrize("quantifier", ["any", "all", "no", "count"])
def test_quantified_membership(quantifier: str) -> None:
    node = expr(f"{quantifier} of line.pointed_diagnoses in routine_exam")
    assert isinstance(node, ast.QuantifiedIn)
    assert node.quantifier == quantifier
    assert isinstance(node.collection, ast.Path)
    assert node.collection.parts == ("line", "pointed_diagnoses")
    assert isinstance(node.container, ast.Path) and node.container.parts == ("routine_exam",)


def test_a_count_is_compared_like_a_number() -> None:
    node = expr("count of line.modifiers in [26, TC] > 1")
    assert isinstance(node, ast.Compare)
    assert isinstance(node.left, ast.QuantifiedIn)
    assert isinstance(node.right, ast.Literal_) and node.right.value == 1


def test_the_where_condition_extends_to_the_end_of_the_expression() -> None:
    node = expr("any o in other_lines where o.units > 1 and o.code == line.code")
    assert isinstance(node, ast.Quantified)
    assert isinstance(node.condition, ast.BoolOp) and node.condition.op == "and"


def test_expression_spans() -> None:
    rule = rule_with(
        "  applies to all lines\n  root cause coding\n"
        "  when line.units > 1 and line.code in [93000]"
    )
    (cond,) = rule.versions[0].conditions
    assert isinstance(cond, ast.BoolOp)
    assert span(cond) == (5, 8, 5, 47)
    compare = cond.left
    assert isinstance(compare, ast.Compare)
    assert span(compare) == (5, 8, 5, 22)
    assert span(compare.left) == (5, 8, 5, 18)
    assert span(compare.right) == (5, 21, 5, 22)
    member = cond.right
    assert isinstance(member, ast.Membership)
    assert span(member) == (5, 27, 5, 47)
    assert isinstance(member.container, ast.CodeList)
    assert span(member.container) == (5, 40, 5, 47)
    assert span(member.container.items[0]) == (5, 41, 5, 46)


def test_a_multi_line_expression_spans_its_lines() -> None:
    rule = rule_with("  when line.units > 1\n   and line.code in ecg")
    (cond,) = rule.versions[0].conditions
    assert span(cond) == (3, 8, 4, 24)


# ---- dated versions ---------------------------------------------------------------------


def test_dated_versions_merge_shared_and_own_clauses() -> None:
    rule = rule_with(
        "  applies to all lines\n"
        "  root cause timely_filing\n"
        "  let received = claim.received_date\n"  # shared let
        "  when line.units > 0\n"  # shared condition
        "  then deny CO-29\n"  # shared outcome
        '  reference "manual"\n'  # shared reference
        "  effective 2026-01-01\n"  # line 9
        "    let limit = 90\n"
        "    when days_between(line.service_date, received) > limit\n"
        '    message "new"\n'
        "  effective 2025-01-01 until 2025-12-31\n"  # line 13
        "    let limit = 180\n"
        "    when days_between(line.service_date, received) > limit\n"
        "    then review CO-29\n"
        '    reference "old manual"\n'
        "  effective until 2024-12-31\n"  # line 18
        "    when false"
    )
    new, old, oldest = rule.versions
    assert (new.start, new.end) == (dt.date(2026, 1, 1), None)
    assert (old.start, old.end) == (dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    assert (oldest.start, oldest.end) == (None, dt.date(2024, 12, 31))
    assert span(new) == (9, 3, 9, 23)
    assert span(old) == (13, 3, 13, 40)
    # shared lets and conditions come first, then the version's own
    assert [let.name for let in new.lets] == ["received", "limit"]
    assert [let.name for let in oldest.lets] == ["received"]
    assert len(new.conditions) == 2 and len(oldest.conditions) == 2
    assert new.conditions[0] is old.conditions[0] is oldest.conditions[0]
    # a version's own outcome / message / reference win over the shared ones
    assert new.outcome is not None and new.outcome.severity == "deny"
    assert old.outcome is not None and old.outcome.severity == "review"
    assert new.message is not None and new.message.value == "new"
    assert old.message is None
    assert new.reference is not None and new.reference.value == "manual"
    assert old.reference is not None and old.reference.value == "old manual"


def test_header_clauses_after_effective_are_recorded_as_misplaced() -> None:
    rule = rule_with(
        "  root cause coding\n  effective 2026-01-01\n    applies to all lines\n"
        '    title "late"\n    plan is "gold"\n    when true\n    then deny CO-1'
    )
    assert rule.misplaced == (
        ("applies to", ast.Span(FILE, 5, 5, 5, 25)),
        ("title", ast.Span(FILE, 6, 5, 6, 17)),
        ("plan", ast.Span(FILE, 7, 5, 7, 19)),
    )
    # the clause still takes effect, so later checks do not report it as absent
    assert rule.scope is not None and rule.title is not None


@pytest.mark.parametrize(
    ("clauses", "second"),
    [
        ("  when true\n  then deny CO-1\n  then deny CO-2", "then"),
        ('  when true\n  then deny CO-1\n  message "a"\n  message "b"', "message"),
        ('  when true\n  then deny CO-1\n  reference "a"\n  reference "b"', "reference"),
        ('  title "a"\n  when true\n  then deny CO-1\n  title "b"', "title"),
        ("  root cause coding\n  when true\n  then deny CO-1\n  root cause coverage", "root cause"),
        ("  applies to claim\n  when true\n  then deny CO-1\n  applies to all lines", "applies to"),
        ("  owner billing\n  when true\n  then deny CO-1\n  owner coding", "owner"),
        ("  kind coding\n  when true\n  then deny CO-1\n  kind duplicate", "kind"),
        ("  let a = 1\n  when true\n  then deny CO-1\n  let a = 2", "let a"),
        ("  effective 2026-01-01\n  when true\n  then deny CO-1\n  then deny CO-2", "then"),
    ],
)
def test_a_repeated_clause_is_E407_at_the_second_one(clauses: str, second: str) -> None:
    text = f'version 1\nrule "p/r"\n{clauses}\nend\n'
    tree, errors = parse_policy(text, FILE)
    (error,) = errors
    last = clauses.count("\n") + 3
    assert (error.code, error.span.line, error.span.column) == ("E407", last, 3)
    assert f"second `{second}`" in error.message
    assert tree is not None and tree.rules[0].misplaced == ()


def test_a_version_s_own_then_and_let_replace_the_shared_ones() -> None:
    rule = rule_with(
        "  let limit = 1\n  when line.units > limit\n  then deny CO-1\n"
        "  effective 2026-01-01\n    let limit = 2\n    then review CO-2"
    )
    (version,) = rule.versions
    assert [let.name for let in version.lets] == ["limit", "limit"]
    assert version.outcome is not None and version.outcome.severity == "review"


# ---- layout freedom and comments --------------------------------------------------------

POLICY = """version 1
valueset ecg = codes [93000, 93005]
rule "p/ecg"
  title "ECG"
  applies to codes ecg
  root cause coding
  let due = add_years(line.service_date, 1)
  when any o in other_lines where o.code in ecg and o.service_date == line.service_date
   and claim.received_date > due
  then deny CO-97 with M15
  message "{line.code} on {line.service_date}"
end
"""

ONE_LINE = (
    'version 1 valueset ecg = codes [93000, 93005] rule "p/ecg" title "ECG" applies to codes '
    "ecg root cause coding let due = add_years(line.service_date, 1) when any o in "
    "other_lines where o.code in ecg and o.service_date == line.service_date and "
    'claim.received_date > due then deny CO-97 with M15 message "{line.code} on '
    '{line.service_date}" end'
)

SPREAD = """version
  1

valueset
   ecg =
      codes [
        93000,
        93005
      ]

rule
"p/ecg" title
"ECG" applies
   to codes ecg root
   cause coding
let due
  = add_years( line.service_date ,
               1 )
when any o
  in other_lines where o.code in ecg and o.service_date == line.service_date and
  claim.received_date > due then deny
  CO-97 with M15 message "{line.code} on {line.service_date}"
end
"""

COMMENTED = """# leading comment
version 1 # the language
# between items
valueset ecg = codes [ # inside a code list
  93000, # global
  93005  # tracing
] # after the list
rule "p/ecg" # after the id
  title "ECG" # after a string
  applies # between keywords
    to codes ecg
  root # split
    cause coding
  let due = add_years(line.service_date, # between arguments
                      1)
  when any o in other_lines # inside a quantifier
       where o.code in ecg and # after an operator
       o.service_date == line.service_date
   and claim.received_date > due
  then deny CO-97 # before with
    with M15
  message "{line.code} on {line.service_date}" # a # inside a string is not a comment
end # after end
# at the end, with no newline"""


@pytest.mark.parametrize(
    "text",
    [ONE_LINE, SPREAD, COMMENTED, POLICY.replace("\n", "\r\n"), POLICY.replace("  ", "\t")],
    ids=["one-line", "spread", "commented", "crlf", "tabs"],
)
def test_layout_and_comments_do_not_change_the_tree(text: str) -> None:
    assert shape(parse(text)) == shape(parse(POLICY))


def test_a_hash_inside_a_string_is_text() -> None:
    rule = rule_with('  when true\n  message "claim #1 # not a comment"')
    message = rule.versions[0].message
    assert message is not None and message.value == "claim #1 # not a comment"


# ---- syntax errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["", "\n\n", "# only a comment\n", 'rule "p/r"\nend\n', "versions 1\n", "Version 1\n"]
)
def test_a_file_without_a_version_line_is_E004(text: str) -> None:
    (error,) = errors_of(text)
    assert (error.code, error.span.line, error.span.column) == ("E004", 1, 1)
    assert error.hint == "put `version 1` on the first line"


def test_an_unsupported_version_is_E005_on_its_line() -> None:
    tree, errors = parse_policy("# header\n\nversion 12\n", FILE)
    assert tree is None
    (error,) = errors
    assert (error.code, error.span.line) == ("E005", 3)
    assert error.message == "policy language version 12 is not supported"


def test_every_broken_item_is_reported_and_the_rest_still_parses() -> None:
    text = (
        "version 1\n"
        "valueset good = [93000]\n"
        "valueset bad = [93000\n"  # 3: unclosed list
        'rule "p/one"\n  when line.units >> 1\n  then deny CO-1\nend\n'  # 5: `>>`
        'rule "p/two"\n  when true\n  then deny CO-1\nend\n'
        'rule "p/three"\n  when true\n  then deny 12\nend\n'  # 14: bad CARC
    )
    tree, errors = parse_policy(text, FILE)
    assert [(e.code, e.span.line, e.span.column) for e in errors] == [
        ("E001", 4, 1),
        ("E001", 5, 20),
        ("E001", 14, 13),
    ]
    assert tree is not None
    assert [v.name for v in tree.valuesets] == ["good"]
    assert [r.id for r in tree.rules] == ["p/two"]


def test_a_stray_character_is_E003_at_its_position() -> None:
    (error,) = errors_of('version 1\nrule "p/r"\n  when line.units > 1 %\n  then deny CO-1\nend\n')
    assert (error.code, error.span.line, error.span.column) == ("E003", 3, 23)
    assert error.message == "unexpected character `%`"


@pytest.mark.parametrize("date", ["2025-02-29", "2026-00-10", "2026-04-31"])
def test_an_impossible_date_is_E006(date: str) -> None:
    (error,) = errors_of(
        f'version 1\nrule "p/r"\n  when line.service_date > {date}\n  then deny CO-1\nend\n'
    )
    assert (error.code, error.span.line, error.span.column) == ("E006", 3, 28)
    assert (error.span.end_line, error.span.end_column) == (3, 38)
    assert error.message == f"`{date}` is not a calendar date"


def test_syntax_errors_carry_a_one_character_span() -> None:
    (error,) = errors_of('version 1\nrule "p/r"\n  then deny 97\nend\n')
    assert error.span == ast.Span(FILE, 3, 13, 3, 14)
    assert error.message == "unexpected `97`; expected a CARC like CO-97"


def test_truncated_policies_give_errors_never_exceptions() -> None:
    text = (
        'version 1\nvalueset a = icd10 [R07.*]\nrule "p/r"\n  applies to codes [93000]\n'
        "  let d = add_days(line.service_date, 1)\n  when any of line.pointed_diagnoses in a\n"
        '  then deny CO-50 with N115\n  message "{line.code}"\nend\n'
    )
    for cut in range(10, len(text), 3):
        tree, errors = parse_policy(text[:cut], FILE)
        assert tree is not None or errors, f"no tree and no error for {text[:cut]!r}"
        for error in errors:
            assert 1 <= error.span.line <= text[:cut].count("\n") + 1


def test_a_byte_order_mark_before_the_version_line_is_ignored() -> None:
    tree = parse('\ufeffversion 1\nrule "p/r"\n  when true\nend\n')
    assert [r.id for r in tree.rules] == ["p/r"]


def test_unexpected_end_of_file_points_after_the_last_token() -> None:
    (error,) = errors_of('version 1\nrule "p/r"\n  when true\n  then deny CO-151\n')
    assert error.code == "E002"
    assert (error.span.line, error.span.column) == (4, 19)


def test_an_upper_case_name_gets_the_lower_case_hint() -> None:
    (error,) = errors_of("version 1\nvalueset ECG = [93000]\n")
    assert (error.code, error.span.line, error.span.column) == ("E001", 2, 10)
    assert error.hint is not None and "lower case" in error.hint


def test_a_dangling_plus_in_a_value_set_is_reported_before_the_next_rule() -> None:
    (error,) = errors_of(
        "version 1\nvalueset a = [93000]\nvalueset b = a +\n"
        'rule "p/r"\n  when true\n  then deny CO-1\nend\n'
    )
    assert error.code == "E001"
    assert (error.span.line, error.span.column) == (4, 1)


def test_a_byte_order_mark_does_not_shift_the_columns_of_the_first_line() -> None:
    (error,) = errors_of("\ufeffversion 1 rule p\n")
    assert (error.code, error.span.line, error.span.column) == ("E001", 1, 16)


def test_the_end_of_file_after_a_trailing_comment_points_after_the_last_token() -> None:
    (error,) = errors_of('version 1\nrule "p/r"\n  when true # done\n\n# more\n')
    assert (error.code, error.span.line, error.span.column) == ("E002", 3, 12)
    assert error.hint is not None and "missing `end`" in error.hint


@pytest.mark.parametrize(
    ("text", "where", "hint"),
    [
        # each mistake in the second item of the file: the hints do not depend on the position
        ("  when line.units > 1\n  deny CO-1\nend\n", (7, 3), "missing `then`"),
        (
            "  root cause coding\n  line.units > 1\n  then deny CO-1\nend\n",
            (7, 3),
            "missing `when`",
        ),
        ('  titel "t"\n  when true\n  then deny CO-1\nend\n', (6, 3), "did you mean `title`?"),
        (
            '  when true\n  then deny CO-1\nrule "p/s"\n  when true\n  then deny CO-1\nend\n',
            (8, 1),
            "missing `end`",
        ),
        ("  when true\n  then deny M15\nend\n", (7, 13), "group code and CARC"),
        ("  when true\n  then deny CO-1 with\nend\n", (8, 1), "RARCs such as M15"),
        (
            "  when line.units >\n  then deny CO-1\nend\n",
            (7, 3),
            "the expression is not finished: something must follow `>`",
        ),
        (
            "  let end = 1\n  when true\n  then deny CO-1\nend\n",
            (6, 7),
            "`end` is a keyword of the policy language",
        ),
        (
            "  when any then in other_lines where true\n  then deny CO-1\nend\n",
            (6, 12),
            "`then` is a keyword",
        ),
    ],
)
def test_common_mistakes_are_named_wherever_they_stand(
    text: str, where: tuple[int, int], hint: str
) -> None:
    errors = errors_of(
        'version 1\nvalueset a = [93000]\nrule "p/first"\n  when true\n'
        '  then deny CO-1\nend\nrule "p/r"\n' + text
    )
    (error,) = errors
    assert (error.span.line - 2, error.span.column) == where
    assert error.hint is not None and hint in error.hint


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("valueset b = [93000, 93005\nrule", "unclosed code list: a `]` is missing"),
        ("valueset b = [93000 93005]\n", "separate the codes of a list with `,`"),
        ("valueset b = a +\nvalueset c = [1]\n", "the value set is not finished"),
        ("valueset rule = [93000]\n", "`rule` is a keyword"),
        ("rule medicare\n  when true\nend\n", "a rule id must be a quoted string"),
        ("valueset b = [93000,\n", "unclosed code list"),
    ],
)
def test_common_mistakes_in_value_sets_and_rule_ids(text: str, hint: str) -> None:
    errors = errors_of("version 1\nvalueset a = [93000]\n" + text)
    assert errors, text
    assert errors[0].hint is not None and hint in errors[0].hint


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("  effective 2026-2-3\n  when true", 13),
        ("  effective 2026-02\n  when true", 13),
        ("  effective 20260203\n  when true", 13),
        ("  effective 2026-01-01 until 2026-1-31\n  when true", 30),
        ("  when line.service_date > 2026-2-03", 28),
    ],
)
def test_a_date_not_written_yyyy_mm_dd_is_E006(text: str, column: int) -> None:
    (error,) = errors_of(f'version 1\nrule "p/r"\n{text}\n  then deny CO-1\nend\n')
    assert (error.code, error.span.line, error.span.column) == ("E006", 3, column)
    assert "date must be YYYY-MM-DD" in error.message


@pytest.mark.parametrize("word", ["end", "then", "all", "codes", "plan", "is", "rule"])
def test_a_keyword_cannot_be_a_name(word: str) -> None:
    errors = errors_of(
        f'version 1\nrule "p/r"\n  let {word} = 1\n  when true\n  then deny CO-1\nend\n'
    )
    assert [(e.code, e.span.line, e.span.column) for e in errors] == [("E001", 3, 7)]


def test_a_name_may_start_with_a_keyword_and_a_field_may_be_spelt_like_one() -> None:
    node = expr("end_date == 1 and member.coverage.end > claim.plan")
    assert isinstance(node, ast.BoolOp)
    left, right = node.left, node.right
    assert isinstance(left, ast.Compare) and isinstance(right, ast.Compare)
    paths = [left.left, right.left, right.right]
    assert [p.parts for p in paths if isinstance(p, ast.Path)] == [
        ("end_date",),
        ("member", "coverage", "end"),
        ("claim", "plan"),
    ]


def test_claim_and_diagnosis_are_keywords_and_names() -> None:
    rule = rule_with("  applies to claim\n  when claim.plan is missing")
    assert rule.scope is not None and rule.scope.kind == "claim"
    rule = rule_with("  applies to each diagnosis\n  when diagnosis.position == 1")
    assert rule.scope is not None and rule.scope.kind == "diagnosis"


def test_the_reserved_words_are_the_grammar_s_keywords() -> None:
    from cleanclaim.dsl.parser import _parser, reserved_words

    keywords = {
        t.pattern.value
        for t in _parser(1).terminals
        if t.pattern.type == "str" and t.pattern.value.isalnum()
    }
    assert reserved_words(1) == keywords - {"claim", "diagnosis"}


def test_blanked_value_sets_are_named_so_their_users_are_not_reported() -> None:
    from cleanclaim.dsl.parser import parse_policy_file

    parsed = parse_policy_file(
        "version 1\nvalueset good = [93000]\nvalueset ecg = [93000\n"
        'rule "p/r"\n  applies to codes ecg\n  when true\n'
        "  then deny CO-1\nend\n",
        FILE,
    )
    assert parsed.broken_names == {"ecg"}
    assert parsed.tree is not None and [v.name for v in parsed.tree.valuesets] == ["good"]


def test_a_code_list_may_start_a_sum_in_a_condition() -> None:
    """`[93000] + ecg` failed: `+` after a code list was lexed for a value-set union."""
    node = expr("line.code in [93000] + ecg - [93005]")
    assert isinstance(node, ast.Membership)
    outer = node.container
    assert isinstance(outer, ast.Arith) and outer.op == "-"
    assert isinstance(outer.left, ast.Arith) and outer.left.op == "+"
    assert isinstance(outer.left.left, ast.CodeList)


_S = ast.Span(FILE, 0, 0, 0, 0)

"""The policy language's syntax tree: frozen dataclasses, each with its source span.

Lark trees never leave `dsl/`; the parser's transformer builds these nodes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Span:
    """Where a node stands in its source file (1-based lines and columns)."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int


# ---- expressions ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal_:
    """A number, string, date or boolean written in the policy."""

    value: Decimal | int | str | dt.date | bool
    span: Span


@dataclass(frozen=True, slots=True)
class CodeList:
    """An inline list of codes: `[93005, 93010]`, `[R07.*]`, `[26, TC]`; or, `quoted`, of
    text values compared exactly: `["IL", "MN"]` (no prefixes, ranges or case folding)."""

    items: tuple[CodeItem, ...]
    span: Span
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class CodeItem:
    """One element of a code list: a code, a prefix (`R07.*`) or a range (`11400-11446`)."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Path:
    """A name, optionally followed by fields: `line.service_date`, `due`, `ecg_components`."""

    parts: tuple[str, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    """A call of a built-in or plugin function: `days_between(a, b)`."""

    name: str
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: Literal["and", "or"]
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Compare:
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Arith:
    """`a + b` or `a - b`: numbers, dates and days, or the union / difference of two code
    sets of one kind (`ecg - [93005]`: the codes of `ecg` but 93005)."""

    op: Literal["+", "-"]
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Membership:
    """`x in s` / `x not in s`, where `s` is a value set, a code list or a list field."""

    element: Expr
    container: Expr
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Presence:
    """`x is missing` / `x is present`, where `x` is a field, a name or a function result
    (a literal or a condition is never missing: the checker rejects it)."""

    operand: Expr
    missing: bool
    span: Span


Quantifier = Literal["any", "all", "no", "count"]


@dataclass(frozen=True, slots=True)
class Quantified:
    """`any o in other_lines where ...`: a condition over the elements of a list.

    `all` requires a non-empty list, as `all of` does: "all other lines are ..." is false
    for a claim with no other line.
    """

    quantifier: Quantifier
    var: str
    collection: Expr
    condition: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class QuantifiedIn:
    """`all of line.pointed_diagnoses in routine_exam`: membership over a list.

    `all of` requires a non-empty list: "all pointed diagnoses are routine" is false for
    a line that points to no diagnosis.
    """

    quantifier: Quantifier
    collection: Expr
    container: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class TableRead:
    """`visit_limits[claim.plan].visits`: a column of the row of a lookup table, or of a
    data table of the manifest (`mpfs[line.code].global_days`), by its key values."""

    table: str
    keys: tuple[Expr, ...]
    column: str
    span: Span


Expr = (
    Literal_
    | CodeList
    | Path
    | Call
    | Not
    | BoolOp
    | Compare
    | Arith
    | Membership
    | Presence
    | Quantified
    | QuantifiedIn
    | TableRead
)


# ---- value sets ----------------------------------------------------------------------

SetKind = Literal["codes", "icd10", "modifiers"]


@dataclass(frozen=True, slots=True)
class SetLiteral:
    kind: SetKind | None
    codes: CodeList
    span: Span


@dataclass(frozen=True, slots=True)
class SetCsv:
    """Codes read from a column of a CSV file beside the policy file."""

    kind: SetKind | None
    file: str
    column: str
    span: Span


@dataclass(frozen=True, slots=True)
class SetRef:
    name: str
    span: Span


SetTerm = SetLiteral | SetCsv | SetRef


@dataclass(frozen=True, slots=True)
class ValueSet:
    """`valueset NAME = term + term ...`."""

    name: str
    terms: tuple[SetTerm, ...]
    span: Span


# ---- lookup tables ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableDef:
    """`table NAME = csv "FILE" key "code", ...` or an inline `table NAME = key ...
    columns ... row ... end`: `file` is set for a CSV table, `columns` and `rows` for an
    inline one (each cell a literal: text, number or date)."""

    name: str
    file: Text | None
    keys: tuple[Text, ...]
    columns: tuple[Text, ...]
    rows: tuple[tuple[Literal_, ...], ...]
    span: Span


# ---- rules ---------------------------------------------------------------------------

ScopeKind = Literal["codes", "all_lines", "claim", "diagnosis"]
Severity = Literal["reject", "deny", "review", "info"]


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind
    codes: tuple[SetTerm, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ValueFilter:
    """`plan is "gold"` / `place of service is not "23"`."""

    field: Literal["plan", "place_of_service"]
    negated: bool
    values: tuple[str, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Outcome:
    """`then deny CO-97 with M15`."""

    severity: Severity
    group: str
    carc: str
    rarcs: tuple[str, ...]
    span: Span
    # Where `GROUP-CARC` and each RARC stand (for located code errors); not compared.
    code_spans: tuple[Span, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class Let:
    name: str
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Text:
    """A string clause (title, message, reference) with the span of its string."""

    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class Word:
    """A name clause (root cause, owner, kind) with its span."""

    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class Except:
    """`except when COND`: the version's finding is suppressed when COND holds (the
    parser also adds `not COND`, spanning the clause, to the version's conditions)."""

    condition: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Version:
    """The clauses in force from `start` to `end` (inclusive; None = open)."""

    start: dt.date | None
    end: dt.date | None
    lets: tuple[Let, ...]
    conditions: tuple[Expr, ...]
    outcome: Outcome | None
    message: Text | None
    reference: Text | None
    span: Span
    exceptions: tuple[Except, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule: shared clauses plus one or more dated versions."""

    id: str
    title: Text | None
    scope: Scope | None
    filters: tuple[ValueFilter, ...]
    root_cause: Word | None
    owner: Word | None
    kind: Word | None
    versions: tuple[Version, ...]
    span: Span
    # Clauses that stand where they do not belong (e.g. `applies to` after `effective`),
    # kept so the checker can report them with their position.
    misplaced: tuple[tuple[str, Span], ...] = field(default=())
    # `except rule "ID"`: rules whose finding (on the same line, or on the claim)
    # suppresses this rule's.
    excepts: tuple[Text, ...] = ()


# ---- counters (claim history) ----------------------------------------------------------

WindowKind = Literal[
    "calendar_year", "benefit_year", "rolling", "full_months", "day", "lifetime", "authorization"
]


@dataclass(frozen=True, slots=True)
class Window:
    """`per calendar year`, `per benefit year starting july`, `per 12 months`, `per day`,
    `per lifetime`: the span of dates, ending on a line's date of service, a counter
    counts over."""

    kind: WindowKind
    amount: int | None  # rolling windows: how many `unit`s
    unit: Literal["days", "months", "years"] | None
    start_month: int | None  # benefit years: the month they start (1-12)
    span: Span


@dataclass(frozen=True, slots=True)
class Counter:
    """`counter NAME ... end`: what a member's claim history counts and over which window.

    `counts visits of lines where ...`: `measure` is visits, units, lines, charges or sum
    (`counts sum(AMOUNT)`: the total of `amount` over the counted lines); the
    lines counted are those of `codes`, those meeting `condition`, or every line (both
    None). `keys` (`by rendering provider, code`) count each provider/code apart.
    """

    name: str
    title: Text | None
    measure: Word | None
    codes: tuple[SetTerm, ...] | None
    condition: Expr | None
    window: Window | None
    keys: tuple[Word, ...]
    span: Span
    # Clauses present but misspelt (`counts`, `per`), reported by the parser: the checker
    # does not report them missing as well.
    broken: tuple[str, ...] = ()
    # `counts sum(AMOUNT)`: the amount each counted line adds.
    amount: Expr | None = None


@dataclass(frozen=True, slots=True)
class PolicyFile:
    """One parsed `.policy` file."""

    path: str
    language_version: int
    valuesets: tuple[ValueSet, ...]
    rules: tuple[Rule, ...]
    span: Span
    counters: tuple[Counter, ...] = ()
    tables: tuple[TableDef, ...] = ()


# ---- walking -------------------------------------------------------------------------


def children(node: Any) -> Iterator[Any]:
    """The syntax nodes directly under `node` (any node of this module)."""
    for f in dataclasses.fields(node):
        if f.name == "span":
            continue
        value = getattr(node, f.name)
        if isinstance(value, tuple):
            yield from (v for v in value if dataclasses.is_dataclass(v))
        elif dataclasses.is_dataclass(value):
            yield value


def nodes(node: Any) -> Iterator[Any]:
    """The node and every node below it (no order promised)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(children(current))

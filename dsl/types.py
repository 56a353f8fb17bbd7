"""The value types of the policy language, the claim vocabulary and built-in functions.

The claim vocabulary (which fields a policy can read, and their types) is part of the
language: the checker rejects unknown fields, and the engine's claim model implements
exactly these attribute names (a test keeps the two in step).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Type:
    """A value type. `name` is a scalar (bool, number, money, date, str, code, icd10,
    modifier), `list`, `set` (a value set of `elem` codes), `table`, or a record name."""

    name: str
    elem: Type | None = None
    nullable: bool = False
    table_format: str | None = None

    def __str__(self) -> str:
        if self.name == "list" and self.elem is not None:
            return f"list of {self.elem}"
        if self.name == "set" and self.elem is not None:
            return f"set of {KIND_WORDS.get(self.elem.name, self.elem.name)}"
        if self.name == "table":
            return f"{self.table_format} table"
        return self.name

    def maybe(self) -> Type:
        return Type(self.name, self.elem, True, self.table_format)

    def definite(self) -> Type:
        return Type(self.name, self.elem, False, self.table_format)


BOOL = Type("bool")
NUMBER = Type("number")
MONEY = Type("money")
DATE = Type("date")
STR = Type("str")
CODE = Type("code")  # a procedure code (CPT / HCPCS)
ICD10 = Type("icd10")  # a diagnosis code, stored without the dot
MODIFIER = Type("modifier")
ANY = Type("any")

# How messages name the codes of a value set, by its kind.
KIND_WORDS = {
    "codes": "procedure codes",
    "icd10": "ICD-10-CM codes",
    "modifiers": "modifiers",
    "str": "strings",
}
# How messages name one value of a scalar type, with its article.
_ONE = {
    "code": "a procedure code",
    "icd10": "an ICD-10-CM code",
    "modifier": "a modifier",
    "str": "a string",
    "number": "a number",
    "money": "an amount of money",
    "date": "a date",
    "bool": "a condition (true or false)",
    "any": "a value",
}


def one(t: Type) -> str:
    """A value of type `t`, as a message says it: "an ICD-10-CM code", "a list of ..."."""
    if t.name in _ONE:
        return _ONE[t.name]
    text = f"{t.name} record" if t.name in RECORDS else str(t)
    return ("an " if text[:1].lower() in "aeiou" else "a ") + text


CODE_LIKE = frozenset({"str", "code", "icd10", "modifier"})
NUMERIC = frozenset({"number", "money"})


def list_of(t: Type) -> Type:
    return Type("list", t)


def set_of(kind: str) -> Type:
    return Type("set", Type(kind))


def table(fmt: str) -> Type:
    return Type("table", table_format=fmt)


# record name -> field -> type
RECORDS: dict[str, dict[str, Type]] = {
    "Claim": {
        "claim_id": STR,
        "payer": STR,
        "plan": STR.maybe(),
        "frequency": STR,
        "replaces": STR.maybe(),
        "received_date": DATE,
        "member": Type("Member"),
        "billing_provider": Type("Provider"),
        "rendering_provider": Type("Provider"),
        "referring_provider": Type("Provider", nullable=True),
        # the ordering provider (837P 2420E); none: the claim names none
        "ordering_provider": Type("Provider", nullable=True),
        "place_of_service": STR.maybe(),
        "service_state": STR.maybe(),
        # the laboratory's CLIA certificate number; none: the claim carries none
        "clia_number": STR.maybe(),
        # the payers the claim itself names for its services, with type and order of
        # benefits (837P SBR, FHIR Claim.insurance); no dates, not eligibility data
        "insurance": list_of(Type("Coverage")),
        "diagnoses": list_of(ICD10),
        "authorizations": list_of(Type("Authorization")),
        "lines": list_of(Type("Line")),
        "first_service_date": DATE,
    },
    "Member": {
        "id": STR.maybe(),
        "birth_date": DATE.maybe(),
        "sex": STR.maybe(),
        "coverage": list_of(Type("Coverage")),
        # false when there is no coverage data at all (no `member.coverage`, no roster)
        "coverage_known": BOOL,
        # `member.therapy_ytd` (or the roster's): the amounts applied toward the Medicare
        # therapy (KX) thresholds in a calendar year as of a date
        "therapy_ytd_pt_slp": MONEY.maybe(),
        "therapy_ytd_ot": MONEY.maybe(),
        "therapy_ytd_as_of": DATE.maybe(),
        # the date of death when the member has died; none: alive as far as known
        "date_of_death": DATE.maybe(),
    },
    "Coverage": {
        "payer": STR.maybe(),
        "plan": STR.maybe(),
        "start": DATE.maybe(),
        "end": DATE.maybe(),
        # medicare_advantage, hospice, ... (engine/model.py COVERAGE_TYPES); none: not said
        "type": STR.maybe(),
        # primary, secondary, tertiary; none: not said
        "order": STR.maybe(),
    },
    "Provider": {
        "npi": STR.maybe(),
        "taxonomy": STR.maybe(),
        "specialty": STR.maybe(),
    },
    "Authorization": {
        "number": STR.maybe(),
        "codes": list_of(CODE),
        "start": DATE.maybe(),
        "end": DATE.maybe(),
        "units": NUMBER.maybe(),
        # the rendering provider (NPI) the authorization is for; none: any provider
        "provider_npi": STR.maybe(),
    },
    "Line": {
        "line": NUMBER,
        "code": CODE.maybe(),
        "modifiers": list_of(MODIFIER),
        "units": NUMBER.maybe(),
        "charge": MONEY.maybe(),
        "service_date": DATE,
        "diagnosis_pointers": list_of(NUMBER),
        "minutes": NUMBER.maybe(),
        "pointed_diagnoses": list_of(ICD10),
        # the amount the payer is expected to allow for the line (units included)
        "expected_allowed": MONEY.maybe(),
        # the CLIA number of the line's laboratory (837P 2400 REF*X4); none: the claim's
        "clia_number": STR.maybe(),
    },
    "Diagnosis": {
        "code": ICD10,
        "position": NUMBER,
    },
}

# Fields whose absence is itself an answer, not a value the claim lacks: a claim with no
# plan has none (the payer's base plan), one that replaces nothing has no `replaces`,
# one with no referring provider has none (nor its NPI: a path through an answered
# absence is answered), an open coverage span or authorization has no end. Every other
# field marked `maybe()` above is *optional*: a comparison that reads it while it is
# missing is unknown, and the rule asks for a review (dsl/missing.py; the language
# reference, "Missing values").
ABSENT_IS_AN_ANSWER: frozenset[tuple[str, str]] = frozenset(
    {
        ("Claim", "plan"),
        ("Claim", "replaces"),
        ("Claim", "referring_provider"),
        ("Claim", "clia_number"),
        ("Claim", "ordering_provider"),
        ("Line", "clia_number"),
        ("Coverage", "plan"),
        ("Coverage", "end"),
        ("Coverage", "type"),
        ("Coverage", "order"),
        ("Member", "date_of_death"),
        ("Authorization", "end"),
        ("Authorization", "provider_npi"),
        # no therapy year to date reported: the rules count the practice's own lines
        ("Member", "therapy_ytd_pt_slp"),
        ("Member", "therapy_ytd_ot"),
        ("Member", "therapy_ytd_as_of"),
    }
)


def optional(record: str, field_name: str) -> bool:
    """Whether a field of a record can be missing, its absence unknown (see above)."""
    t = RECORDS.get(record, {}).get(field_name)
    return t is not None and t.nullable and (record, field_name) not in ABSENT_IS_AN_ANSWER


# The names a rule can start a path with, by the rule's scope.
ROOTS: dict[str, dict[str, Type]] = {
    "line": {
        "claim": Type("Claim"),
        "member": Type("Member"),
        "line": Type("Line"),
        "other_lines": list_of(Type("Line")),
    },
    "claim": {"claim": Type("Claim"), "member": Type("Member")},
    "diagnosis": {
        "claim": Type("Claim"),
        "member": Type("Member"),
        "diagnosis": Type("Diagnosis"),
    },
}


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A function the policy language can call.

    `impl` receives `(claim, line, *args)` when `contextual` is true (functions that read
    the claim being checked, such as coverage look-ups), else just `*args`. Every
    function must accept None for a nullable argument and then return None or False:
    evaluation never raises on bad claim data.

    `inline` optionally gives the compiler a Python expression to use in place of the
    call, the same function made cheaper for the common case (the hot path of generated
    code). Placeholders: `{claim}` and `{line}` (contextual functions), `{0}`, `{1}`...
    the arguments as compiled, `{call}` the plain call, and the names of `consts`, values
    the expression reads (for example the function's memo of answers). An argument that
    the template uses twice must compile to a plain name or attribute path, else the
    compiler keeps the call.
    """

    name: str
    params: tuple[Type, ...]
    result: Type
    impl: Callable[..., Any]
    doc: str
    contextual: bool = False
    scopes: frozenset[str] = field(default=frozenset({"line", "claim", "diagnosis"}))
    inline: str | None = None
    # A contextual function that reads the claim but not the line it is handed (coverage
    # look-ups): with arguments that read at most the line's date of service, its answer
    # holds for every line of the claim on that date.
    line_free: bool = False
    consts: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    # The answer depends on the arguments alone (not the claim, a plugin's context or
    # claim history): the compiler may work it out ahead of time for arguments it knows,
    # such as a line's procedure code (`dsl/specialize.py`).
    constant: bool = False


# ---- date arithmetic (pure, the language's own built-ins) --------------------------------


def _add_months(d: dt.date, months: int) -> dt.date:
    """Add calendar months; a day past the end of the target month becomes its last day
    (so 2024-02-29 plus 12 months is 2025-02-28)."""
    total = d.year * 12 + (d.month - 1) + months
    year, month0 = divmod(total, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return dt.date(year, month0 + 1, min(d.day, last))


def add_days(d: dt.date | None, n: int | None) -> dt.date | None:
    if d is None or n is None:
        return None
    try:
        return d + dt.timedelta(days=int(n))
    except OverflowError:  # past year 9999 (or before year 1): no such date
        return None


def add_months(d: dt.date | None, n: int | None) -> dt.date | None:
    if d is None or n is None:
        return None
    try:
        return _add_months(d, int(n))
    except ValueError:  # past year 9999
        return None


def add_years(d: dt.date | None, n: int | None) -> dt.date | None:
    if d is None or n is None:
        return None
    key = (d, n)
    found = _YEARS_LATER.get(key)
    if found is None:
        if len(_YEARS_LATER) >= 100_000:
            _YEARS_LATER.clear()
        try:
            found = d.replace(year=d.year + int(n))
        except ValueError:  # Feb 29 in a year without one: the end of February
            found = add_months(d, 12 * int(n))
        _YEARS_LATER[key] = found
    return found


# Answers of `add_years` (timely-filing rules ask it for every date of service; claims
# share dates): read first by its inline form.
_YEARS_LATER: dict[tuple[dt.date, Any], dt.date | None] = {}


def days_between(a: dt.date | None, b: dt.date | None) -> int | None:
    """Days from `a` to `b` (positive when `b` is later)."""
    if a is None or b is None:
        return None
    return (b - a).days


def months_between(a: dt.date | None, b: dt.date | None) -> int | None:
    """Whole calendar months from `a` to `b` (a month counts once its day is reached)."""
    if a is None or b is None:
        return None
    months = (b.year - a.year) * 12 + (b.month - a.month)
    if b >= a and _add_months(a, months) > b:
        months -= 1
    elif b < a and _add_months(a, months) < b:
        months += 1
    return months


def years_between(a: dt.date | None, b: dt.date | None) -> int | None:
    """Whole years from `a` to `b` (an age: birthday reached or not)."""
    months = months_between(a, b)
    return None if months is None else int(months / 12)


def start_of_month(d: dt.date | None) -> dt.date | None:
    """The first day of the month of `d`."""
    return None if d is None else d.replace(day=1)


def start_of_year(d: dt.date | None) -> dt.date | None:
    """January 1 of the year of `d`."""
    return None if d is None else d.replace(month=1, day=1)


def start_of_next_month(d: dt.date | None) -> dt.date | None:
    """The first day of the month after the month of `d`."""
    if d is None:
        return None
    try:
        return _add_months(d.replace(day=1), 1)
    except ValueError:  # past year 9999
        return None


def full_months_between(a: dt.date | None, b: dt.date | None) -> int | None:
    """Whole calendar months strictly between the month of `a` and the month of `b`: the
    "11 full months after the month in which the last one was performed" of the annual
    wellness visit (a = 2025-03-15: from 2026-03-01 on, 11 full months have passed)."""
    if a is None or b is None:
        return None
    months = (b.year * 12 + b.month) - (a.year * 12 + a.month)
    return months - 1 if months > 0 else 0 if months == 0 else months + 1


def plan_of(claim: Any, day: dt.date | None) -> str | None:
    """The plan of a claim: the claim's own plan, else the plan of the member's coverage
    span (of the claim's payer) in force on `day`, the date of service. Plan ids compare
    case-insensitively: see `plan_key`."""
    if claim.plan:
        return str(claim.plan)
    for span in claim.member.coverage:
        if not span.plan or (
            span.payer and claim.payer and str(span.payer).casefold() != str(claim.payer).casefold()
        ):
            continue
        if day is not None and (
            (span.start is not None and day < span.start)
            or (span.end is not None and day > span.end)
        ):
            continue
        return str(span.plan)
    return None


def plan_key(plan: Any) -> Any:
    """A plan id as plans are compared: case-insensitively (`Gold` is `gold`)."""
    return plan.casefold() if isinstance(plan, str) else plan


def first_present(a: Any, b: Any) -> Any:
    """`a`, or `b` when `a` is missing: an amount with its fallback."""
    return b if a is None else a


def count(items: Any) -> int:
    return 0 if items is None else len(items)


BUILTINS: tuple[FunctionSpec, ...] = (
    FunctionSpec("add_days", (DATE, NUMBER), DATE.maybe(), add_days, "date plus N days"),
    FunctionSpec(
        "add_months",
        (DATE, NUMBER),
        DATE.maybe(),
        add_months,
        "date plus N calendar months (end of month clamps: Jan 31 + 1 = Feb 28/29)",
    ),
    FunctionSpec(
        "add_years",
        (DATE, NUMBER),
        DATE.maybe(),
        add_years,
        "date plus N years (Feb 29 + 1 year = Feb 28)",
        inline="({memo}.get(({0}, {1})) or {call})",
        consts={"memo": _YEARS_LATER},
    ),
    FunctionSpec(
        "days_between",
        (DATE, DATE),
        NUMBER.maybe(),
        days_between,
        "days from the first date to the second",
    ),
    FunctionSpec(
        "months_between",
        (DATE, DATE),
        NUMBER.maybe(),
        months_between,
        "whole calendar months from the first date to the second",
    ),
    FunctionSpec(
        "years_between",
        (DATE, DATE),
        NUMBER.maybe(),
        years_between,
        "whole years from the first date to the second (e.g. age)",
    ),
    FunctionSpec("count", (list_of(ANY),), NUMBER, count, "number of items in a list"),
    FunctionSpec(
        "first_present",
        (NUMBER, NUMBER),
        NUMBER.maybe(),
        first_present,
        "the first amount when it is present, else the second (a fee schedule "
        "amount, else the charge)",
        constant=True,
    ),
    FunctionSpec(
        "start_of_month", (DATE,), DATE.maybe(), start_of_month, "the first day of the date's month"
    ),
    FunctionSpec(
        "start_of_year", (DATE,), DATE.maybe(), start_of_year, "January 1 of the date's year"
    ),
    FunctionSpec(
        "start_of_next_month",
        (DATE,),
        DATE.maybe(),
        start_of_next_month,
        "the first day of the month after the date's month",
    ),
    FunctionSpec(
        "full_months_between",
        (DATE, DATE),
        NUMBER.maybe(),
        full_months_between,
        "whole calendar months strictly between the month of the first date and "
        'the month of the second ("11 full months after the month of the last")',
    ),
)

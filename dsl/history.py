"""Counters: what a policy counts in a member's claim history, checked and compiled.

```
counter therapy_visits
  title "PT and OT visits"
  counts visits of lines where any of line.modifiers in [GP, GO]
  per calendar year
end
```
A counter counts a member's service lines (per payer) on the claim being checked and on
the claims ordered before it: by date of service, then received date, then claim id, then
line. It says

- what it counts (`counts ...`): `visits` (distinct dates of service with a counted line),
  `units`, `lines` or `charges`;
- which lines (`of ...`): `codes <value set>`, `lines where <condition on line>` or
  `all lines`;
- over which dates (`per ...`), a window that ends on the line's date of service:
  `calendar year`, `benefit year starting <month>`, `<N> days|months|years` (rolling),
  `<N> full months` (the month of the date of service and the N calendar months before
  it: CMS's "N full months have passed following the month of the last"), `day` (the
  date of service itself) or `lifetime`;
- optionally, what it keeps apart (`by ...`): `rendering provider` (or `provider`),
  `billing provider`, `code`, `modifiers`.

Rules read a counter through the engine's history functions (`visit_number(c)`,
`total_to_date(c)`, `total_before(c)`, `total_on_other_claims(c)`); a function whose
parameter is a `counter of visits` takes only a counter that counts visits.

This module builds the `ast.Counter` node from the parser's tree, checks counters (a
checker stage) and the calls that read them (a stage after the rules), and generates the
counters' line filters with the compiler's code generator. The counting itself is the
engine's (`engine/history.py`).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from cleanclaim.dsl import ast
from cleanclaim.dsl import types as T
from cleanclaim.dsl.errors import PolicyError, did_you_mean
from cleanclaim.dsl.valuesets import CodeSet

if TYPE_CHECKING:
    from lark import Tree

    from cleanclaim.dsl.checker import CheckedPack, CheckEnv

MEASURES = ("visits", "units", "lines", "charges", "sum")
# The fields of a line that claim history records (engine/history.py `Entry`): all that a
# counter's condition or amount may read of a line, since it is applied to the lines of
# earlier claims too. (`diagnosis_pointers` is not recorded; `pointed_diagnoses` is.)
RECORDED_LINE_FIELDS = frozenset(
    {
        "line",
        "code",
        "modifiers",
        "units",
        "charge",
        "service_date",
        "minutes",
        "pointed_diagnoses",
        "expected_allowed",
    }
)
KEYS = {
    "rendering provider": "rendering_provider",
    "provider": "rendering_provider",
    "billing provider": "billing_provider",
    "code": "code",
    "modifiers": "modifiers",
}
MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_UNITS = {
    "day": "days",
    "days": "days",
    "month": "months",
    "months": "months",
    "year": "years",
    "years": "years",
}
_WINDOW_PHRASES = (
    "calendar year",
    "benefit year starting january",
    "12 months",
    "30 days",
    "5 years",
    "11 full months",
    "day",
    "lifetime",
    "authorization",
)

# The type of a counter's name in a rule; a function parameter `counter_of(measure)` only
# takes counters that count `measure`.
COUNTER = T.Type("counter")


def counter_of(measure: str) -> T.Type:
    """The parameter type of a function that needs a counter counting `measure`."""
    return T.Type("counter", T.Type(measure))


# ---- the counter at run time -------------------------------------------------------------


def _never(line: Any) -> bool:
    return False


def _never_member(line: Any, member: Any) -> bool:
    return False


def _nothing(line: Any, member: Any) -> Any:
    return None


def _decimal(value: Any) -> Decimal:
    if value is None or isinstance(value, bool):
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    return Decimal(0)


class Counter:
    """A checked counter, as the engine uses it: what it counts, its window, its keys and
    `matches(line)`, the compiled filter (bound once the pack is compiled)."""

    __slots__ = (
        "_last",
        "amount",
        "amount_of",
        "codes",
        "condition",
        "file",
        "filter",
        "index",
        "keys",
        "line",
        "matches",
        "measure",
        "name",
        "reads_member",
        "title",
        "window",
    )

    def __init__(
        self,
        name: str,
        measure: str,
        window: ast.Window,
        keys: tuple[str, ...],
        title: str | None,
        file: str,
        line: int,
        index: int,
        codes: CodeSet | None,
        condition: ast.Expr | None,
        amount: ast.Expr | None = None,
        reads_member: bool = False,
    ) -> None:
        self.name = name
        self.measure = measure
        self.window = window
        self.keys = keys
        self.title = title
        self.file = file
        self.line = line
        self.index = index
        self.codes = codes
        self.condition = condition
        self.amount = amount
        # The condition or amount reads `member` (the member whose history it is: the
        # same on every counted line): the engine asks `matcher(member)` for the filter.
        self.reads_member = reads_member
        self.matches: Callable[[Any], bool] = _never
        self.filter: Callable[[Any, Any], bool] = _never_member
        self.amount_of: Callable[[Any, Any], Any] = _nothing
        self._last: tuple[Any, Callable[[Any], bool]] | None = None

    def matcher(self, member: Any) -> Callable[[Any], bool]:
        """The line filter for the lines of `member`'s history (`matches` itself when the
        counter reads nothing of the member)."""
        if not self.reads_member:
            return self.matches
        last = self._last
        if last is not None and last[0] is member:
            return last[1]
        fn = self.filter

        def matches(line: Any) -> bool:
            return fn(line, member)

        self._last = (member, matches)
        return matches

    def span_for(
        self, claim: Any, line: Any
    ) -> tuple[dt.date, Callable[[Any, Any], bool] | None] | None:
        """Where the count of `line` (of `claim`) starts, and which lines of that window
        count (by code and rendering provider NPI; None: all the filter passes), or None
        when the line is not counted at all: a `per authorization` counter counts a line
        that an authorization of its claim covers (`covering_authorization`), from the
        authorization's start, only the lines of the codes it lists (and of its rendering
        provider, when it names one)."""
        if self.window.kind != "authorization":
            return self.window_start(line.service_date), None
        auth = covering_authorization(claim, line)
        if auth is None:
            return None
        codes, npi = frozenset(auth.codes), getattr(auth, "provider_npi", None)

        def covered(code: Any, rendering: Any) -> bool:
            return code in codes and (npi is None or rendering == npi)

        return auth.start, covered

    def value(self, line: Any, member: Any = None) -> Decimal:
        """What a counted line adds to a `counts sum(AMOUNT)` counter: its amount (missing:
        nothing), in Decimal."""
        return _decimal(self.amount_of(line, member))

    def __repr__(self) -> str:
        return f"<counter {self.name}: {self.measure} {describe_window(self.window)}>"

    def window_start(self, day: dt.date) -> dt.date:
        """The first date of the window that ends on `day` (a line's date of service)."""
        return window_start(self.window, day)


def covering_authorization(claim: Any, line: Any) -> Any:
    """The first authorization of the claim that lists the line's code, covers its date
    of service and, when it names a rendering provider (`provider_npi`), is for the
    claim's rendering provider; None when there is none."""
    if line is None or line.code is None:
        return None
    rendering = claim.rendering_provider.npi
    for auth in claim.authorizations:
        npi = getattr(auth, "provider_npi", None)
        if (
            line.code in auth.codes
            and auth.covers(line.service_date)
            and (npi is None or npi == rendering)
        ):
            return auth
    return None


def window_start(window: ast.Window, day: dt.date) -> dt.date:
    kind = window.kind
    if kind == "authorization":  # each line's own authorization: see `Counter.span_for`
        return dt.date.min
    if kind == "calendar_year":
        return dt.date(day.year, 1, 1)
    if kind == "benefit_year":
        month = window.start_month or 1
        return dt.date(day.year if day.month >= month else day.year - 1, month, 1)
    if kind == "day":
        return day
    if kind == "lifetime":
        return dt.date.min
    amount = window.amount or 1
    if kind == "full_months":
        # "N full months have passed following the month of the last" (MCPM 100-04
        # ch.18): a line counts against this one when it falls in this month or in the
        # N months before it. After an AWV on 2025-03-15 the 11 full months are April
        # 2025 - February 2026, so 2026-02-28 still counts it and 2026-03-01 does not.
        back = T.add_months(dt.date(day.year, day.month, 1), -amount)
        return back or dt.date.min
    # A rolling window of N units ends on the date of service and starts the day after
    # the same date N units earlier: "once per 12 months" lets 2025-03-10 count against
    # 2026-03-09 but not against 2026-03-10.
    if window.unit == "days":
        start = day - dt.timedelta(days=amount - 1)
    else:
        months = amount * (12 if window.unit == "years" else 1)
        back = T.add_months(day, -months)
        start = (back or dt.date.min) + dt.timedelta(days=1)
    return max(start, dt.date.min)


def describe_window(window: ast.Window) -> str:
    if window.kind == "calendar_year":
        return "per calendar year"
    if window.kind == "benefit_year":
        return f"per benefit year starting {calendar.month_name[window.start_month or 1]}"
    if window.kind == "rolling":
        return f"per {window.amount} {window.unit}"
    if window.kind == "full_months":
        return f"per {window.amount} full months"
    if window.kind == "authorization":
        return "per authorization"
    return f"per {window.kind}"


# ---- the syntax tree (called by the parser's transformer) -------------------------------


def counter_from_tree(
    span_of: Callable[[Any], ast.Span], meta: Any, children: list[Any], errors: list[PolicyError]
) -> ast.Counter:
    """Build the `ast.Counter` of `counter NAME ... end` from its parsed clauses; a
    misspelt measure, window or key becomes a located error with a suggestion."""
    from lark import Tree  # parsing only: a run from the parse cache never imports Lark

    name_token = children[0]
    span = span_of(meta)
    title: ast.Text | None = None
    measure: ast.Word | None = None
    codes: tuple[ast.SetTerm, ...] | None = None
    condition: ast.Expr | None = None
    window: ast.Window | None = None
    keys: list[ast.Word] = []
    seen: dict[str, ast.Span] = {}
    broken: list[str] = []
    amount: ast.Expr | None = None

    def once(written: str, clause_span: ast.Span) -> bool:
        first = seen.get(written)
        if first is not None:
            errors.append(
                PolicyError(
                    "E407",
                    f"second `{written}` in this counter; the first is at line {first.line}",
                    clause_span,
                    f"a counter has one `{written}`; keep one",
                )
            )
            return False
        seen[written] = clause_span
        return True

    for clause in children[1:]:
        if isinstance(clause, tuple):  # ("title", Text, span) from the rule transformer
            if once("title", clause[2]):
                title = clause[1]
            continue
        assert isinstance(clause, Tree)
        clause_span = span_of(clause.meta)
        if clause.data == "counter_counts":
            if not once("counts", clause_span):
                continue
            measure_tree, counted = clause.children
            assert isinstance(measure_tree, Tree) and isinstance(counted, Tree)
            measure = _measure(span_of, measure_tree, errors)
            if measure is not None and measure.value == "sum":
                amount = cast(ast.Expr, measure_tree.children[1])
            if measure is None:
                broken.append("counts")
            if counted.data == "counted_codes":
                codes = cast(tuple[ast.SetTerm, ...], counted.children[0])
            elif counted.data == "counted_where":
                condition = cast(ast.Expr, counted.children[0])
        elif clause.data == "counter_window" and once("per", clause_span):
            window = _window(span_of, clause, errors)
            if window is None:
                broken.append("per")
        elif clause.data == "counter_keys" and once("by", clause_span):
            keys = _keys(span_of, clause, errors)
    return ast.Counter(
        str(name_token),
        title,
        measure,
        codes,
        condition,
        window,
        tuple(keys),
        span,
        tuple(broken),
        amount,
    )


def _measure(
    span_of: Callable[[Any], ast.Span], tree: Tree[Any], errors: list[PolicyError]
) -> ast.Word | None:
    span = span_of(tree.meta)
    word = "lines" if tree.data == "measure_lines" else str(tree.children[0])
    if tree.data == "measure_sum" and word != "sum":
        errors.append(
            PolicyError(
                "E411",
                f"a counter cannot count `{word}(...)`",
                span,
                did_you_mean(word, ["sum"])
                or "it counts `sum(AMOUNT)` of the lines, e.g. "
                "`counts sum(line.charge) of lines where ...`",
            )
        )
        return None
    if word == "sum" and tree.data != "measure_sum":
        errors.append(
            PolicyError(
                "E411",
                "`counts sum` needs the amount each line adds",
                span,
                "e.g. `counts sum(first_present(mpfs[line.code].nonfac_amount, line.charge))`",
            )
        )
        return None
    if word not in MEASURES:
        errors.append(
            PolicyError(
                "E411",
                f"a counter cannot count `{word}`",
                span,
                did_you_mean(word, MEASURES)
                or "it counts visits, units, lines, charges or sum(AMOUNT)",
            )
        )
        return None
    return ast.Word(word, span)


def _window(
    span_of: Callable[[Any], ast.Span], tree: Tree[Any], errors: list[PolicyError]
) -> ast.Window | None:
    span = span_of(tree.meta)
    words = [str(t).lower() for t in tree.children]
    text = " ".join(words)

    def fail(message: str, hint: str | None = None, at: Any = None) -> None:
        errors.append(
            PolicyError(
                "E411",
                message,
                span if at is None else span_of(at),
                hint
                or did_you_mean(text, _WINDOW_PHRASES)
                or "a window reads `per calendar year`, `per benefit year starting july`, "
                "`per 12 months` (or days, years), `per day`, `per lifetime` or "
                "`per authorization`",
            )
        )

    if words == ["calendar", "year"]:
        return ast.Window("calendar_year", None, None, None, span)
    if words == ["day"]:
        return ast.Window("day", None, None, None, span)
    if words == ["lifetime"]:
        return ast.Window("lifetime", None, None, None, span)
    if words == ["authorization"]:
        return ast.Window("authorization", None, None, None, span)
    if words[:2] == ["benefit", "year"]:
        if len(words) == 4 and words[2] == "starting":
            month = MONTHS.get(words[3])
            if month is None:
                fail(
                    f"`{words[3]}` is not a month",
                    did_you_mean(words[3], [m for m in MONTHS if len(m) > 3])
                    or "name the month: january ... december",
                    tree.children[3],
                )
                return None
            return ast.Window("benefit_year", None, None, month, span)
        fail("say when the benefit year starts", "e.g. `per benefit year starting july`")
        return None
    if len(words) == 3 and words[0].isdigit() and words[1:] == ["full", "months"]:
        if int(words[0]) < 1:
            fail("a window is at least 1 full month long", "e.g. `per 11 full months`")
            return None
        return ast.Window("full_months", int(words[0]), "months", None, span)
    rolling = words[1:] if words[:1] == ["rolling"] else words
    if len(rolling) == 2 and rolling[0].isdigit():
        amount, unit = int(rolling[0]), _UNITS.get(rolling[1])
        if unit is None:
            fail(
                f"`{rolling[1]}` is not a unit of time",
                did_you_mean(rolling[1], _UNITS) or "count days, months or years",
                tree.children[-1],
            )
            return None
        if amount < 1:
            fail("a window is at least 1 day long", "e.g. `per 12 months`")
            return None
        return ast.Window("rolling", amount, unit, None, span)  # type: ignore[arg-type]
    if words == ["year"]:
        fail(
            "`per year` does not say which year",
            "say `per calendar year`, `per benefit year starting july` or `per 12 months`",
        )
        return None
    fail(f"`per {text}` is not a window")
    return None


def _keys(
    span_of: Callable[[Any], ast.Span], tree: Tree[Any], errors: list[PolicyError]
) -> list[ast.Word]:
    from lark import Token, Tree

    keys: list[ast.Word] = []
    for key in tree.children:
        assert isinstance(key, Tree)
        span = span_of(key.meta)
        text = (
            "modifiers"
            if key.data == "key_modifiers"
            else " ".join(str(t).lower() for t in key.children if isinstance(t, Token))
        )
        if text not in KEYS:
            errors.append(
                PolicyError(
                    "E411",
                    f"a counter cannot count by `{text}`",
                    span,
                    did_you_mean(text, KEYS)
                    or "it counts by rendering provider, billing provider, code or modifiers",
                )
            )
            continue
        if any(KEYS[k.value] == KEYS[text] for k in keys):
            errors.append(PolicyError("E407", f"`{text}` is named twice after `by`", span))
            continue
        keys.append(ast.Word(text, span))
    return keys


# ---- checking ----------------------------------------------------------------------------


def check_counters(checked: CheckedPack, env: CheckEnv) -> None:
    """Checker stage (after value sets): every counter is complete, its codes resolve and
    its condition is a condition on the line alone. Fills `checked.counters`."""
    from cleanclaim.dsl.check_types import infer_type
    from cleanclaim.dsl.check_valuesets import resolve_terms

    declared: dict[str, ast.Counter] = {}
    for tree in checked.files:
        for decl in tree.counters:
            first = declared.get(decl.name)
            clash = (
                "counter"
                if first is not None
                else "value set"
                if decl.name in checked.valueset_decls
                else "table"
                if decl.name in checked.tables or decl.name in checked.lookup_decls
                else None
            )
            if clash is not None:
                where = f" at {first.span.file}:{first.span.line}" if first is not None else ""
                checked.errors.append(
                    PolicyError(
                        "E110",
                        f"`{decl.name}` is already the name of a {clash}{where}",
                        decl.span,
                        "give the counter another name",
                    )
                )
                continue
            declared[decl.name] = decl
            ok = True
            if decl.measure is None and "counts" not in decl.broken:
                ok = False
                checked.errors.append(
                    PolicyError(
                        "E410",
                        f"counter `{decl.name}` says nothing about what it counts",
                        decl.span,
                        "add e.g. `counts visits of lines where any of line.modifiers in [GP, GO]`",
                    )
                )
            if decl.window is None and "per" not in decl.broken:
                ok = False
                checked.errors.append(
                    PolicyError(
                        "E410",
                        f"counter `{decl.name}` has no window",
                        decl.span,
                        "add e.g. `per calendar year`, `per 12 months` or `per lifetime`",
                    )
                )
            codes: CodeSet | None = None
            if decl.codes is not None:
                codes = resolve_terms(
                    checked, decl.codes, "codes", lambda n, s: checked.valuesets.get(n)
                )
                if codes is not None and codes.kind != "codes":
                    checked.errors.append(
                        PolicyError(
                            "E201",
                            "a counter counts lines of procedure codes, not of "
                            f"{T.KIND_WORDS.get(codes.kind, codes.kind)}",
                            decl.span,
                            "use a `codes` value set, or `lines where ...`",
                        )
                    )
                    codes = None
                ok = ok and codes is not None
            reads_member = False
            if decl.condition is not None:
                fine, member = _reads_only_the_line(checked, env, decl.condition, "condition")
                reads_member = reads_member or member
                if fine:
                    found = infer_type(checked, env, decl.condition, _COUNTER_SCOPE, "line")
                    if found.name not in ("bool", "any"):
                        checked.errors.append(
                            PolicyError(
                                "E203",
                                f"the lines a counter counts are chosen by a condition "
                                f"(true or false), not by {T.one(found)}",
                                decl.condition.span,
                                "e.g. `lines where any of line.modifiers in [GP, GO]`",
                            )
                        )
                        ok = False
                else:
                    ok = False
            if decl.amount is not None:
                fine, member = _reads_only_the_line(checked, env, decl.amount, "amount")
                reads_member = reads_member or member
                if fine:
                    found = infer_type(checked, env, decl.amount, _COUNTER_SCOPE, "line")
                    if found.name not in (*T.NUMERIC, "any"):
                        checked.errors.append(
                            PolicyError(
                                "E203",
                                f"a counter sums amounts (numbers), not {T.one(found)}",
                                decl.amount.span,
                                "e.g. `counts sum(first_present("
                                "mpfs[line.code].nonfac_amount, line.charge))`",
                            )
                        )
                        ok = False
                else:
                    ok = False
            if not ok or decl.measure is None or decl.window is None:
                # Still known (so rules naming it are not reported as unknown); the pack
                # does not compile anyway.
                checked.counters[decl.name] = _counter(
                    decl,
                    "lines",
                    ast.Window("lifetime", None, None, None, decl.span),
                    codes,
                    len(checked.counters),
                    reads_member,
                )
                continue
            checked.counters[decl.name] = _counter(
                decl, decl.measure.value, decl.window, codes, len(checked.counters), reads_member
            )


# What a counter's condition and amount see: the line (of this claim or an earlier one)
# and the member whose history it is.
_COUNTER_SCOPE: dict[str, T.Type] = {"line": T.Type("Line"), "member": T.Type("Member")}


def _counter(
    decl: ast.Counter,
    measure: str,
    window: ast.Window,
    codes: CodeSet | None,
    index: int,
    reads_member: bool = False,
) -> Counter:
    return Counter(
        decl.name,
        measure,
        window,
        tuple(KEYS[k.value] for k in decl.keys),
        decl.title.value if decl.title else None,
        decl.span.file,
        decl.span.line,
        index,
        codes,
        decl.condition,
        decl.amount,
        reads_member,
    )


def _reads_only_the_line(
    checked: CheckedPack, env: CheckEnv, expr: ast.Expr, what: str
) -> tuple[bool, bool]:
    """A counter's condition (or amount) is applied to lines of earlier claims too, where
    only the recorded line and the member are known: it may read `line` (its recorded
    fields), `member`, value sets, tables and functions that need no claim. Returns
    (fine, reads the member)."""
    ok, member = True, False
    hint = (
        "counters count lines of earlier claims as well: the " + what + " reads only "
        "`line` (its code, modifiers, units, charge, date, minutes, pointed diagnoses) "
        "and `member`"
    )
    for node, bound in walk(expr):
        if isinstance(node, ast.Path):
            head = node.parts[0]
            if head in bound or head in checked.valueset_decls or head in checked.lookup_decls:
                continue
            if head == "member":
                member = True
                continue
            if head == "line":
                if (
                    len(node.parts) > 1
                    and node.parts[1] not in RECORDED_LINE_FIELDS
                    and node.parts[1] in T.RECORDS["Line"]
                ):
                    checked.errors.append(
                        PolicyError(
                            "E412",
                            f"a counter's {what} cannot read `line.{node.parts[1]}`: "
                            "claim history does not record it",
                            node.span,
                            hint,
                        )
                    )
                    ok = False
                continue
            if head in T.ROOTS["line"]:
                checked.errors.append(
                    PolicyError("E412", f"a counter's {what} cannot read `{head}`", node.span, hint)
                )
                ok = False
        elif isinstance(node, ast.Call):
            spec = env.functions.get(node.name)
            if spec is not None and spec.contextual:
                checked.errors.append(
                    PolicyError(
                        "E412",
                        f"`{node.name}` reads the claim being checked; a counter's "
                        f"{what} cannot use it",
                        node.span,
                        hint,
                    )
                )
                ok = False
    return ok, member


def check_counter_calls(checked: CheckedPack, env: CheckEnv) -> None:
    """Checker stage (after the rules): a function that needs a counter of visits gets
    one (`visit_number(therapy_charges)` is an error), and counters are named, not
    computed."""
    for _pack, rule in checked.rules:
        for version in rule.versions:
            exprs = [let.value for let in version.lets] + list(version.conditions)
            for expr in exprs:
                for node, _bound in walk(expr):
                    if isinstance(node, ast.Call):
                        _check_call(checked, env, node)


def _check_call(checked: CheckedPack, env: CheckEnv, call: ast.Call) -> None:
    spec = env.functions.get(call.name)
    if spec is None:
        return
    for arg, param in zip(call.args, spec.params, strict=False):
        if param.name != "counter":
            continue
        if not (
            isinstance(arg, ast.Path) and len(arg.parts) == 1 and arg.parts[0] in checked.counters
        ):
            # An argument that is no counter at all is a type error the rules stage
            # reported; one that is a counter's name but spelt wrong is E104 there too.
            continue
        counter = checked.counters[arg.parts[0]]
        wanted = param.elem.name if param.elem is not None else None
        if wanted is not None and counter.measure != wanted:
            checked.errors.append(
                PolicyError(
                    "E413",
                    f"`{call.name}` needs a counter of {wanted}; `{counter.name}` "
                    f"counts {counter.measure}",
                    arg.span,
                    "use total_to_date(...) for units, lines or charges"
                    if wanted == "visits"
                    else spec.doc,
                )
            )


def walk(
    expr: ast.Expr, bound: frozenset[str] = frozenset()
) -> Iterator[tuple[ast.Expr, frozenset[str]]]:
    """Every node of an expression, with the quantifier variables bound where it stands."""
    yield expr, bound
    if isinstance(expr, ast.Call):
        for arg in expr.args:
            yield from walk(arg, bound)
    elif isinstance(expr, ast.Not):
        yield from walk(expr.operand, bound)
    elif isinstance(expr, (ast.BoolOp, ast.Compare, ast.Arith)):
        yield from walk(expr.left, bound)
        yield from walk(expr.right, bound)
    elif isinstance(expr, ast.Membership):
        yield from walk(expr.element, bound)
        yield from walk(expr.container, bound)
    elif isinstance(expr, ast.Presence):
        yield from walk(expr.operand, bound)
    elif isinstance(expr, ast.Quantified):
        yield from walk(expr.collection, bound)
        yield from walk(expr.condition, bound | {expr.var})
    elif isinstance(expr, ast.QuantifiedIn):
        yield from walk(expr.collection, bound)
        yield from walk(expr.container, bound)
    elif isinstance(expr, ast.TableRead):
        for key in expr.keys:
            yield from walk(key, bound)


# ---- compiling ---------------------------------------------------------------------------


def counter_source(gen: Any, checked: CheckedPack) -> str:
    """Python source of each counter's line filter `_counter_<i>(line) -> bool`, built with
    the compiler's code generator `gen` (the same code a rule's condition becomes)."""
    parts: list[str] = []
    for counter in checked.counters.values():
        test = gen.counter_test(counter, "line", "member")
        parts.append(f"def _counter_{counter.index}(line, member=None):\n    return bool({test})\n")
        if counter.amount is not None:
            amount = gen.expr(counter.amount, {"line": "line", "member": "member"})
            parts.append(
                f"def _counter_amount_{counter.index}(line, member=None):\n    return {amount}\n"
            )
    return "\n".join(parts)


def bind_counters(checked: CheckedPack, namespace: dict[str, Any]) -> None:
    """Give each counter its compiled filter once the pack's source has run."""
    for counter in checked.counters.values():
        fn = namespace.get(f"_counter_{counter.index}")
        if fn is not None:
            counter.matches = fn
            counter.filter = fn
        amount = namespace.get(f"_counter_amount_{counter.index}")
        if amount is not None:
            counter.amount_of = amount

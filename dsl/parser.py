"""Policy text to syntax tree.

The version line selects the grammar (`grammar/policy_v<N>.lark`). Lark's exceptions are
turned into `PolicyError`s here, and a syntax error does not stop the file: the broken
value set or rule is blanked out and parsing resumes at the next one, so every broken
item of a file is reported in one pass. The names of value sets blanked that way are
kept (`ParsedPolicy.broken_names`) so that their users are not reported as unknown too.

Common mistakes ("missing `then`", "unclosed code list", "date must be YYYY-MM-DD") are
named in the error's hint from the failing token, what the parser expected there and the
words before it (`_hint`).

The checker parses through `parsed.parse_policy_file_cached`, which keeps the trees of
error-free files on disk (dsl/cache.py) and imports this module only for the others.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.tree import Meta

from cleanclaim.dsl import ast
from cleanclaim.dsl.errors import PolicyError, did_you_mean
from cleanclaim.dsl.parsed import ParsedPolicy
from cleanclaim.dsl.vocabulary import SEVERITIES

SUPPORTED_VERSIONS = (1,)

_VERSION_LINE = re.compile(r"\A(?:\s|#[^\n]*)*version\s+([0-9]+)\b")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ITEM_START = re.compile(r"^[ \t]*(rule|valueset|counter|table)\b", re.MULTILINE)


@cache
def _parser(version: int) -> Lark:
    grammar = resources.files("cleanclaim.dsl").joinpath(f"grammar/policy_v{version}.lark")
    return Lark(
        grammar.read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
        cache=True,
    )


@cache
def _expression_parser(version: int) -> Lark:
    """The same grammar started at `expr` (message templates: `{days_between(a, b)}`)."""
    grammar = resources.files("cleanclaim.dsl").joinpath(f"grammar/policy_v{version}.lark")
    return Lark(
        grammar.read_text(encoding="utf-8"),
        parser="lalr",
        start="expr",
        propagate_positions=True,
        maybe_placeholders=False,
        cache=True,
    )


def parse_expression(text: str, file: str, line: int, column: int,
                     version: int = 1) -> tuple[ast.Expr | None, list[PolicyError]]:
    """Parse an expression that stands at `line`:`column` of `file` (inside a message's
    braces), with spans and errors located there."""
    padded = "\n" * (line - 1) + " " * (column - 1) + text
    try:
        tree = _expression_parser(version).parse(padded)
    except UnexpectedInput as err:
        return None, [_syntax_error(file, padded, err, reserved_words(version))]
    builder = _ToAst(file)
    node = builder.transform(tree)
    return (node if not isinstance(node, Token) else None), builder.errors


@cache
def reserved_words(version: int) -> frozenset[str]:
    """The keywords of a language version that cannot be names (its NAME terminal's
    negative lookahead)."""
    pattern = _parser(version).get_terminal("NAME").pattern.value
    match = re.match(r"\(\?!\(\?:([a-z0-9_|]+)\)", pattern)
    return frozenset(match.group(1).split("|")) if match else frozenset()


# How the analyst writes each clause (the transformer's clause names are internal).
_WRITTEN = {"scope": "applies to", "root_cause": "root cause", "filter": "plan"}


def _span(file: str, meta: Meta | Token) -> ast.Span:
    line = getattr(meta, "line", None) or 1
    column = getattr(meta, "column", None) or 1
    end_line = getattr(meta, "end_line", None) or line
    end_column = getattr(meta, "end_column", None) or column + 1
    return ast.Span(file, line, column, end_line, end_column)


def _unquote(token: Token) -> str:
    text = str(token)[1:-1]
    return re.sub(r"\\(.)", r"\1", text)


class _ToAst(Transformer[Token, Any]):
    """Builds `ast` nodes from the Lark tree of one file."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file
        self.errors: list[PolicyError] = []

    def _s(self, meta: Meta | Token) -> ast.Span:
        return _span(self.file, meta)

    def _date(self, token: Token) -> dt.date | None:
        if not _ISO_DATE.fullmatch(str(token)):
            self.errors.append(
                PolicyError("E006", f"`{token}` is not a date: date must be YYYY-MM-DD",
                            self._s(token), "dates are written YYYY-MM-DD, e.g. 2026-01-01")
            )
            return None
        try:
            return dt.date.fromisoformat(str(token))
        except ValueError:
            self.errors.append(
                PolicyError("E006", f"`{token}` is not a calendar date", self._s(token),
                            "dates are written YYYY-MM-DD, e.g. 2026-01-01")
            )
            return None

    # ---- file ------------------------------------------------------------------------
    @v_args(meta=True)
    def start(self, meta: Meta, children: list[Any]) -> ast.PolicyFile:
        version = children[0]
        valuesets = tuple(c for c in children[1:] if isinstance(c, ast.ValueSet))
        rules = tuple(c for c in children[1:] if isinstance(c, ast.Rule))
        counters = tuple(c for c in children[1:] if isinstance(c, ast.Counter))
        tables = tuple(c for c in children[1:] if isinstance(c, ast.TableDef))
        return ast.PolicyFile(self.file, version, valuesets, rules, self._s(meta), counters,
                              tables)

    def version_decl(self, children: list[Token]) -> int:
        return int(children[0])

    # ---- counters (claim history): built in dsl/history.py ---------------------------
    @v_args(meta=True)
    def counter(self, meta: Meta, children: list[Any]) -> ast.Counter:
        from cleanclaim.dsl.history import counter_from_tree

        return counter_from_tree(self._s, meta, children, self.errors)

    # ---- lookup tables ---------------------------------------------------------------
    @v_args(meta=True)
    def table(self, meta: Meta, children: list[Any]) -> ast.TableDef:
        name, (file, keys, columns, rows) = children
        return ast.TableDef(str(name), file, keys, columns, rows, self._s(meta))

    def table_csv(self, c: list[Any]) -> tuple[Any, ...]:
        return (ast.Text(_unquote(c[0]), self._s(c[0])), c[1], (), ())

    def table_inline(self, c: list[Any]) -> tuple[Any, ...]:
        return (None, c[0], c[1], tuple(c[2:]))

    def table_keys(self, c: list[Token]) -> tuple[ast.Text, ...]:
        return tuple(ast.Text(_unquote(t), self._s(t)) for t in c)

    def table_columns(self, c: list[Token]) -> tuple[ast.Text, ...]:
        return tuple(ast.Text(_unquote(t), self._s(t)) for t in c)

    def table_row(self, c: list[ast.Literal_]) -> tuple[ast.Literal_, ...]:
        return tuple(c)

    def table_cell(self, c: list[Token]) -> ast.Literal_:
        token = c[0]
        if token.type == "STRING":
            return ast.Literal_(_unquote(token), self._s(token))
        if token.type == "DATE":
            return ast.Literal_(self._date(token) or dt.date.min, self._s(token))
        text = str(token)
        return ast.Literal_(Decimal(text) if "." in text else int(text), self._s(token))

    # ---- value sets ------------------------------------------------------------------
    @v_args(meta=True)
    def valueset(self, meta: Meta, children: list[Any]) -> ast.ValueSet:
        name, terms = children
        return ast.ValueSet(str(name), terms, self._s(meta))

    def set_union(self, children: list[ast.SetTerm]) -> tuple[ast.SetTerm, ...]:
        return tuple(children)

    def kind_codes(self, _: list[Any]) -> ast.SetKind:
        return "codes"

    def kind_icd10(self, _: list[Any]) -> ast.SetKind:
        return "icd10"

    def kind_modifiers(self, _: list[Any]) -> ast.SetKind:
        return "modifiers"

    @v_args(meta=True)
    def set_literal(self, meta: Meta, children: list[Any]) -> ast.SetLiteral:
        kind = children[0] if len(children) == 2 else None
        return ast.SetLiteral(kind, children[-1], self._s(meta))

    @v_args(meta=True)
    def set_csv(self, meta: Meta, children: list[Any]) -> ast.SetCsv:
        kind = children[0] if len(children) == 3 else None
        return ast.SetCsv(kind, _unquote(children[-2]), _unquote(children[-1]), self._s(meta))

    @v_args(meta=True)
    def set_ref(self, meta: Meta, children: list[Token]) -> ast.SetRef:
        return ast.SetRef(str(children[0]), self._s(meta))

    @v_args(meta=True)
    def code_list(self, meta: Meta, children: list[Token]) -> ast.CodeList:
        items = tuple(ast.CodeItem(str(t).upper(), self._s(t)) for t in children)
        return ast.CodeList(items, self._s(meta))

    @v_args(meta=True)
    def string_list(self, meta: Meta, children: list[Token]) -> ast.CodeList:
        items = tuple(ast.CodeItem(_unquote(t), self._s(t)) for t in children)
        return ast.CodeList(items, self._s(meta), quoted=True)

    # ---- rules -----------------------------------------------------------------------
    def _duplicate(self, written: str, where: str, first: ast.Span, span: ast.Span,
                   hint: str) -> None:
        self.errors.append(PolicyError(
            "E407", f"second `{written}` in this {where}; the first is at line {first.line}",
            span, hint))

    @v_args(meta=True)
    def rule(self, meta: Meta, children: list[Any]) -> ast.Rule:
        rule_id = _unquote(children[0])
        span = self._s(meta)
        shared: dict[str, Any] = {"lets": [], "conditions": [], "spans": {}, "exceptions": []}
        versions: list[tuple[tuple[dt.date | None, dt.date | None, ast.Span], dict[str, Any]]] = []
        current = shared
        header: dict[str, Any] = {"title": None, "scope": None, "root_cause": None,
                                  "owner": None, "kind": None, "filters": []}
        header_spans: dict[str, ast.Span] = {}
        misplaced: list[tuple[str, ast.Span]] = []
        excepts: list[ast.Text] = []
        for clause_name, value, clause_span in children[1:]:
            written = _WRITTEN.get(clause_name, clause_name)
            if clause_name == "effective":
                current = {"lets": [], "conditions": [], "spans": {}, "exceptions": []}
                versions.append(((value[0], value[1], clause_span), current))
            elif clause_name == "except_when":
                # `except when C` is `when not C` (spanning the clause, so a trace shows it
                # as written), and is kept as an exception for lint.
                current["conditions"].append(ast.Not(value, clause_span))
                current["exceptions"].append(ast.Except(value, clause_span))
            elif clause_name == "except_rule":
                if current is not shared:
                    misplaced.append(("except rule", clause_span))
                excepts.append(value)
            elif clause_name == "let":
                first = current["spans"].get(f"let {value.name}")
                if first is not None:
                    self._duplicate(f"let {value.name}", "version" if current is not shared
                                    else "rule", first, clause_span,
                                    "a `let` name is given once per version; rename one")
                current["spans"].setdefault(f"let {value.name}", clause_span)
                current["lets"].append(value)
            elif clause_name == "when":
                current["conditions"].append(value)
            elif clause_name in ("then", "message", "reference"):
                # A version's own `then` / `message` / `reference` replaces the shared one;
                # two in the same place is a mistake.
                first = current["spans"].get(clause_name)
                if first is not None:
                    self._duplicate(written, "version" if current is not shared else "rule",
                                    first, clause_span, f"keep one `{written}`; a version that "
                                    "needs another one starts with its own `effective`")
                else:
                    current["spans"][clause_name] = clause_span
                    current[clause_name] = value
            elif clause_name == "filter":
                if current is not shared:
                    field = "plan" if value.field == "plan" else "place of service"
                    misplaced.append((field, clause_span))
                header["filters"].append(value)
            else:  # title, scope, root_cause, owner, kind: shared only
                if current is not shared:
                    misplaced.append((written, clause_span))
                    if header[clause_name] is not None:
                        continue
                elif clause_name in header_spans:
                    self._duplicate(written, "rule", header_spans[clause_name], clause_span,
                                    f"a rule has one `{written}`; keep one")
                    continue
                header_spans.setdefault(clause_name, clause_span)
                header[clause_name] = value
        if not versions:
            versions.append(((None, None, span), {"lets": [], "conditions": [],
                                                  "exceptions": []}))
        built = []
        for (start, end, vspan), own in versions:
            built.append(
                ast.Version(
                    start=start,
                    end=end,
                    lets=tuple(shared["lets"]) + tuple(own["lets"]),
                    conditions=tuple(shared["conditions"]) + tuple(own["conditions"]),
                    outcome=own.get("then", shared.get("then")),
                    message=own.get("message", shared.get("message")),
                    reference=own.get("reference", shared.get("reference")),
                    span=vspan,
                    exceptions=tuple(shared["exceptions"]) + tuple(own["exceptions"]),
                )
            )
        return ast.Rule(
            id=rule_id,
            title=header["title"],
            scope=header["scope"],
            filters=tuple(header["filters"]),
            root_cause=header["root_cause"],
            owner=header["owner"],
            kind=header["kind"],
            versions=tuple(built),
            span=span,
            misplaced=tuple(misplaced),
            excepts=tuple(excepts),
        )

    @v_args(meta=True)
    def title(self, meta: Meta, c: list[Token]) -> tuple[str, ast.Text, ast.Span]:
        return ("title", ast.Text(_unquote(c[0]), self._s(c[0])), self._s(meta))

    @v_args(meta=True)
    def message(self, meta: Meta, c: list[Token]) -> tuple[str, ast.Text, ast.Span]:
        return ("message", ast.Text(_unquote(c[0]), self._s(c[0])), self._s(meta))

    @v_args(meta=True)
    def reference(self, meta: Meta, c: list[Token]) -> tuple[str, ast.Text, ast.Span]:
        return ("reference", ast.Text(_unquote(c[0]), self._s(c[0])), self._s(meta))

    @v_args(meta=True)
    def root_cause(self, meta: Meta, c: list[Token]) -> tuple[str, ast.Word, ast.Span]:
        return ("root_cause", ast.Word(str(c[0]), self._s(c[0])), self._s(meta))

    @v_args(meta=True)
    def owner(self, meta: Meta, c: list[Token]) -> tuple[str, ast.Word, ast.Span]:
        return ("owner", ast.Word(str(c[0]), self._s(c[0])), self._s(meta))

    @v_args(meta=True)
    def kind(self, meta: Meta, c: list[Token]) -> tuple[str, ast.Word, ast.Span]:
        return ("kind", ast.Word(str(c[0]), self._s(c[0])), self._s(meta))

    @v_args(meta=True)
    def applies(self, meta: Meta, c: list[ast.Scope]) -> tuple[str, ast.Scope, ast.Span]:
        return ("scope", c[0], self._s(meta))

    @v_args(meta=True)
    def scope_codes(self, meta: Meta, c: list[Any]) -> ast.Scope:
        return ast.Scope("codes", c[0], self._s(meta))

    @v_args(meta=True)
    def scope_all_lines(self, meta: Meta, _: list[Any]) -> ast.Scope:
        return ast.Scope("all_lines", (), self._s(meta))

    @v_args(meta=True)
    def scope_claim(self, meta: Meta, _: list[Any]) -> ast.Scope:
        return ast.Scope("claim", (), self._s(meta))

    @v_args(meta=True)
    def scope_diagnosis(self, meta: Meta, _: list[Any]) -> ast.Scope:
        return ast.Scope("diagnosis", (), self._s(meta))

    def is_in(self, _: list[Any]) -> bool:
        return False

    def is_not_in(self, _: list[Any]) -> bool:
        return True

    def _filter(
        self, meta: Meta, field: str, c: list[Any]
    ) -> tuple[str, ast.ValueFilter, ast.Span]:
        negated, *values = c
        span = self._s(meta)
        vf = ast.ValueFilter(field, negated, tuple(_unquote(v) for v in values), span)  # type: ignore[arg-type]
        return ("filter", vf, span)

    @v_args(meta=True)
    def plan_scope(self, meta: Meta, c: list[Any]) -> tuple[str, ast.ValueFilter, ast.Span]:
        return self._filter(meta, "plan", c)

    @v_args(meta=True)
    def pos_scope(self, meta: Meta, c: list[Any]) -> tuple[str, ast.ValueFilter, ast.Span]:
        return self._filter(meta, "place_of_service", c)

    @v_args(meta=True)
    def effective(self, meta: Meta, c: list[Token]) -> tuple[str, tuple[Any, Any], ast.Span]:
        start = self._date(c[0])
        end = self._date(c[1]) if len(c) > 1 else None
        return ("effective", (start, end), self._s(meta))

    @v_args(meta=True)
    def effective_until(self, meta: Meta, c: list[Token]) -> tuple[str, tuple[Any, Any], ast.Span]:
        return ("effective", (None, self._date(c[0])), self._s(meta))

    @v_args(meta=True)
    def let(self, meta: Meta, c: list[Any]) -> tuple[str, ast.Let, ast.Span]:
        span = self._s(meta)
        return ("let", ast.Let(str(c[0]), c[1], span), span)

    @v_args(meta=True)
    def when(self, meta: Meta, c: list[Any]) -> tuple[str, ast.Expr, ast.Span]:
        return ("when", c[0], self._s(meta))

    @v_args(meta=True)
    def except_when(self, meta: Meta, c: list[Any]) -> tuple[str, ast.Expr, ast.Span]:
        return ("except_when", c[0], self._s(meta))

    @v_args(meta=True)
    def except_rule(self, meta: Meta, c: list[Token]) -> tuple[str, ast.Text, ast.Span]:
        return ("except_rule", ast.Text(_unquote(c[0]), self._s(c[0])), self._s(meta))

    @v_args(meta=True)
    def then(self, meta: Meta, c: list[Any]) -> tuple[str, ast.Outcome, ast.Span]:
        severity, carc, *rarcs = c
        group, code = str(carc).split("-", 1)
        span = self._s(meta)
        outcome = ast.Outcome(severity, group, code, tuple(str(r) for r in rarcs), span,
                              tuple(self._s(t) for t in (carc, *rarcs)))
        return ("then", outcome, span)

    def reject(self, _: list[Any]) -> ast.Severity:
        return "reject"

    def deny(self, _: list[Any]) -> ast.Severity:
        return "deny"

    def review(self, _: list[Any]) -> ast.Severity:
        return "review"

    def info(self, _: list[Any]) -> ast.Severity:
        return "info"

    # ---- expressions -----------------------------------------------------------------
    @v_args(meta=True)
    def or_(self, meta: Meta, c: list[Any]) -> ast.BoolOp:
        return ast.BoolOp("or", c[0], c[1], self._s(meta))

    @v_args(meta=True)
    def and_(self, meta: Meta, c: list[Any]) -> ast.BoolOp:
        return ast.BoolOp("and", c[0], c[1], self._s(meta))

    @v_args(meta=True)
    def not_(self, meta: Meta, c: list[Any]) -> ast.Not:
        return ast.Not(c[0], self._s(meta))

    @v_args(meta=True)
    def compare(self, meta: Meta, c: list[Any]) -> ast.Compare:
        return ast.Compare(str(c[1]), c[0], c[2], self._s(meta))  # type: ignore[arg-type]

    @v_args(meta=True)
    def in_(self, meta: Meta, c: list[Any]) -> ast.Membership:
        return ast.Membership(c[0], c[1], False, self._s(meta))

    @v_args(meta=True)
    def not_in(self, meta: Meta, c: list[Any]) -> ast.Membership:
        return ast.Membership(c[0], c[1], True, self._s(meta))

    @v_args(meta=True)
    def is_missing(self, meta: Meta, c: list[Any]) -> ast.Presence:
        return ast.Presence(c[0], True, self._s(meta))

    @v_args(meta=True)
    def is_present(self, meta: Meta, c: list[Any]) -> ast.Presence:
        return ast.Presence(c[0], False, self._s(meta))

    @v_args(meta=True)
    def arith(self, meta: Meta, c: list[Any]) -> ast.Arith:
        return ast.Arith(str(c[1]), c[0], c[2], self._s(meta))  # type: ignore[arg-type]

    @v_args(meta=True)
    def number(self, meta: Meta, c: list[Token]) -> ast.Literal_:
        text = str(c[0])
        value: Decimal | int = Decimal(text) if "." in text else int(text)
        return ast.Literal_(value, self._s(meta))

    @v_args(meta=True)
    def string(self, meta: Meta, c: list[Token]) -> ast.Literal_:
        return ast.Literal_(_unquote(c[0]), self._s(meta))

    @v_args(meta=True)
    def date(self, meta: Meta, c: list[Token]) -> ast.Literal_:
        value = self._date(c[0]) or dt.date.min
        return ast.Literal_(value, self._s(meta))

    @v_args(meta=True)
    def true(self, meta: Meta, _: list[Any]) -> ast.Literal_:
        return ast.Literal_(True, self._s(meta))

    @v_args(meta=True)
    def false(self, meta: Meta, _: list[Any]) -> ast.Literal_:
        return ast.Literal_(False, self._s(meta))

    @v_args(meta=True)
    def table_read(self, meta: Meta, c: list[Any]) -> ast.TableRead:
        return ast.TableRead(str(c[0]), tuple(c[1:-1]), str(c[-1]), self._s(meta))

    def codes(self, c: list[ast.CodeList]) -> ast.CodeList:
        return c[0]

    @v_args(meta=True)
    def path(self, meta: Meta, c: list[Token]) -> ast.Path:
        return ast.Path(tuple(str(t) for t in c), self._s(meta))

    @v_args(meta=True)
    def call(self, meta: Meta, c: list[Any]) -> ast.Call:
        return ast.Call(str(c[0]), tuple(c[1:]), self._s(meta))

    @v_args(meta=True)
    def count_call(self, meta: Meta, c: list[Any]) -> ast.Call:
        return ast.Call("count", (c[0],), self._s(meta))

    def q_any(self, _: list[Any]) -> ast.Quantifier:
        return "any"

    def q_all(self, _: list[Any]) -> ast.Quantifier:
        return "all"

    def q_no(self, _: list[Any]) -> ast.Quantifier:
        return "no"

    def q_count(self, _: list[Any]) -> ast.Quantifier:
        return "count"

    @v_args(meta=True)
    def quantified(self, meta: Meta, c: list[Any]) -> ast.Quantified:
        return ast.Quantified(c[0], str(c[1]), c[2], c[3], self._s(meta))

    @v_args(meta=True)
    def quantified_of(self, meta: Meta, c: list[Any]) -> ast.QuantifiedIn:
        return ast.QuantifiedIn(c[0], c[1], c[2], self._s(meta))


_TERMINAL_WORDS = {
    "NAME": "a name", "FIELD": "a field name", "STRING": "a quoted string", "DATE": "a date",
    "NUMBER": "a number", "CODE_ITEM": "a code", "CARC": "a CARC like CO-97",
    "RARC": "a RARC like M15", "INT": "a number", "COMP_OP": "a comparison",
    "MINUS": "`-`", "RSQB": "`]`", "LSQB": "`[`", "LPAR": "`(`", "RPAR": "`)`",
    "COMMA": "`,`", "EQUAL": "`=`", "DOT": "`.`", "PLUS": "`+`", "$END": "the end of the file",
}


def _describe_expected(expected: set[str]) -> str:
    names = sorted(expected)
    pretty = []
    for name in names[:8]:
        if name.isupper() and not name.startswith("__"):
            pretty.append(_TERMINAL_WORDS.get(name, f"`{name.lower()}`"))
        else:
            pretty.append(name)
    more = ", ..." if len(names) > 8 else ""
    return ", ".join(pretty) + more


# ---- named syntax hints ----------------------------------------------------------------
#
# The common mistakes are named from the failing token, what the parser expected there and
# the words before it. (lark's `match_examples` compares whole parser states, stack depth
# included, so an example written for the first item of a file never matches a later one.)


@dataclass(frozen=True, slots=True)
class _Failure:
    """Where the parser stopped: the token it met, what it expected, the words before."""

    kind: str  # the token's terminal, `$END` at the end of the file
    token: str
    expected: frozenset[str]
    before: tuple[str, ...]
    is_keyword: bool = False

    @property
    def previous(self) -> str:
        return self.before[-1] if self.before else ""

    @property
    def at_clause(self) -> bool:
        """The parser is between two clauses of a rule."""
        return {"WHEN", "THEN", "END"} <= self.expected

    @property
    def wants_operand(self) -> bool:
        """The parser needs the operand of an expression."""
        return {"NAME", "NUMBER"} <= self.expected


# Words after which a name is being given (not used): a keyword there is a bad name.
_NAMING_WORDS = frozenset({"let", "valueset", "any", "all", "no", "count", "cause", "owner",
                           "kind"})
_SEVERITIES = frozenset(SEVERITIES)
_CLAUSES = ("title", "applies", "plan", "place", "root", "owner", "kind", "effective", "let",
            "except",
            "when", "then", "message", "reference", "end")
_OPERAND_START = frozenset({"NAME", "FIELD", "NUMBER", "INT", "STRING", "DATE", "LPAR", "LSQB",
                            "NOT", "ANY", "ALL", "NO", "COUNT", "TRUE", "FALSE", "CLAIM",
                            "DIAGNOSIS"})
_CODE_LIKE = frozenset({"CODE_ITEM", "NUMBER", "INT", "NAME", "FIELD", "DATE", "RARC"})
_NAME_SHAPE = re.compile(r"[a-z_][a-z0-9_]*")
_WORDS = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[A-Za-z0-9_.*-]+|\S')


def _words_before(text: str, pos: int, count: int = 3) -> tuple[str, ...]:
    """The last `count` words and symbols of `text[:pos]`, comments left out."""
    words = [w for w in _WORDS.findall(text, 0, pos) if not w.startswith("#")]
    return tuple(words[-count:])


def _after_last_word(text: str) -> tuple[int, int]:
    """The line and column just after the last word of `text` (comments left out)."""
    end = 0
    for match in _WORDS.finditer(text):
        if not match.group(0).startswith("#"):
            end = match.end()
    line_start = text.rfind("\n", 0, end) + 1
    return text.count("\n", 0, end) + 1, end - line_start + 1


def _hint(f: _Failure) -> str | None:
    """The name of a common mistake, judged from where the parser stopped."""
    if f.kind == "$END":
        # (`]` also follows an expression, which may be a table read's key: a rule's
        # clause expected too means the rule, not a list, is unfinished)
        if "RSQB" in f.expected and "END" not in f.expected:
            return "unclosed code list: a `]` is missing"
        if "END" in f.expected:
            return "missing `end` after the rule (each rule runs from `rule` to `end`)"
        return "the file ends in the middle of a value set or rule"
    if f.token in _SEVERITIES and "THEN" in f.expected:
        return f"missing `then` before `{f.token}`: an outcome reads `then deny CO-97`"
    if f.kind in ("RULE", "VALUESET", "COUNTER") and "END" in f.expected:
        return "missing `end` after the rule (each rule runs from `rule` to `end`)"
    if "NAME" in f.expected and f.is_keyword:
        if f.previous in _NAMING_WORDS:
            return f"`{f.token}` is a keyword of the policy language; choose another name"
        what = "expression" if f.wants_operand else "value set"
        return f"the {what} is not finished: something must follow `{f.previous}`"
    if "RSQB" in f.expected and not f.at_clause and "END" not in f.expected:
        if f.kind in _CODE_LIKE:
            return "separate the codes of a list with `,`"
        return "unclosed code list: a `]` is missing"
    if f.expected == {"STRING"} and f.previous == "rule":
        return 'a rule id must be a quoted string, e.g. rule "medicare/ecg/bundling"'
    if "CARC" in f.expected:
        return "the outcome needs a group code and CARC, e.g. `then deny CO-97 with M15`"
    if "RARC" in f.expected:
        return "`with` is followed by RARCs such as M15; leave `with` out when there is none"
    lower = f.token.lower()
    if "NAME" in f.expected and lower != f.token and _NAME_SHAPE.fullmatch(lower):
        return (f"names of value sets, fields and functions are lower case: `{lower}`; "
                "codes go in a code list such as [R07.9]")
    if f.at_clause and f.kind in _OPERAND_START | _CODE_LIKE:
        close = did_you_mean(lower, _CLAUSES)
        if close is not None and lower not in ("claim", "diagnosis"):
            return close
        if "AND" in f.expected:
            return "two conditions are joined with `and` or `or` (or each gets its `when`)"
        return "missing `when` before the condition? A condition reads `when <condition>`"
    if f.kind == "END" and {"RULE", "VALUESET"} <= f.expected:
        return "this `end` closes no rule: is an `end` above it too early, or a `rule` missing?"
    return None


_DATE_ATTEMPT = re.compile(r"[0-9]+(-[0-9]*)*")


def _syntax_error(file: str, text: str, err: UnexpectedInput,
                  reserved: frozenset[str]) -> PolicyError:
    line = getattr(err, "line", 1) or 1
    column = getattr(err, "column", 1) or 1
    hint: str | None = None
    if isinstance(err, UnexpectedEOF):
        code, message = "E002", "unexpected end of file"
        before = _words_before(text, len(text))
        hint = _hint(_Failure("$END", "", frozenset(err.expected), before))
        line, column = _after_last_word(text)
    elif isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream or 0
        char = text[pos] if pos < len(text) else ""
        code, message = "E003", f"unexpected character `{char}`"
        if char == "'":
            hint = 'strings are written in double quotes: "..."'
        elif char.isupper():
            hint = ("names of value sets, fields and functions are lower case; codes go in a "
                    "code list such as [R07.9]")
        else:
            hint = _hint(_Failure("", char, frozenset(err.allowed or ()),
                                  _words_before(text, pos)))
    else:
        assert isinstance(err, UnexpectedToken)
        token = err.token
        expected = frozenset(err.expected)
        failure = _Failure(token.type, str(token), expected,
                           _words_before(text, token.start_pos or 0), str(token) in reserved)
        if token.type == "$END":
            # The end-of-file token borrows the position of the last token: point after it.
            line = token.end_line or line
            column = token.end_column or column
            code = "E002"
            message = f"unexpected end of file; expected {_describe_expected(set(expected))}"
        elif "DATE" in expected and _DATE_ATTEMPT.fullmatch(str(token)):
            return PolicyError("E006", f"`{token}` is not a date: date must be YYYY-MM-DD",
                               ast.Span(file, line, column, line, column + len(str(token))),
                               "dates are written YYYY-MM-DD, e.g. 2026-01-01")
        else:
            code = "E001"
            message = f"unexpected `{token}`; expected {_describe_expected(set(expected))}"
        hint = _hint(failure)
    return PolicyError(code, message, ast.Span(file, line, column, line, column + 1), hint)


_VALUESET_NAME = re.compile(r"^[ \t]*valueset\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)


def _valueset_names(text: str) -> frozenset[str]:
    return frozenset(m.group(1).lower() for m in _VALUESET_NAME.finditer(text))


def parse_policy(text: str, file: str) -> tuple[ast.PolicyFile | None, list[PolicyError]]:
    """Parse one policy file; returns the tree (None if unusable) and every error found."""
    parsed = parse_policy_file(text, file)
    return parsed.tree, parsed.errors


# How deep the tree of one value set or rule may nest. The transformer, the checker and
# the compiler walk expressions recursively, and Python's own parser takes at most 200
# nested parentheses in the generated code: deeper policies are refused here, located,
# instead of failing later with a RecursionError.
MAX_DEPTH = 64


def _too_deep(file: str, tree: Tree[Token]) -> list[tuple[Meta, PolicyError]]:
    """The items of a parsed file that nest deeper than `MAX_DEPTH`, each with its error
    (at the clause that holds the deepest part)."""
    found: list[tuple[Meta, PolicyError]] = []
    for item in tree.children:
        if not isinstance(item, Tree):
            continue
        stack: list[tuple[Tree[Token], int, Tree[Token]]] = [(item, 1, item)]
        while stack:
            node, depth, clause = stack.pop()
            if depth > MAX_DEPTH:
                span = _span(file, clause.meta)
                found.append((item.meta, PolicyError(
                    "E007", f"this clause nests more than {MAX_DEPTH} levels deep",
                    ast.Span(file, span.line, span.column, span.line, span.column + 1),
                    "split the condition with `let` names; put many codes in a value set")))
                break
            stack.extend((child, depth + 1, child if depth == 1 else clause)
                         for child in node.children if isinstance(child, Tree))
    return found


def parse_policy_file(text: str, file: str) -> ParsedPolicy:
    """Parse one policy file, every syntax error of it in one pass."""
    # A byte order mark is invisible in an editor: columns count from after it.
    text = text.removeprefix("\ufeff")
    match = _VERSION_LINE.match(text)
    if match is None:
        return ParsedPolicy(None, [
            PolicyError("E004", "a policy file must start with a version line",
                        ast.Span(file, 1, 1, 1, 2), "put `version 1` on the first line")
        ], _valueset_names(text))
    version = int(match.group(1))
    if version not in SUPPORTED_VERSIONS:
        line = text.count("\n", 0, match.start(1)) + 1
        return ParsedPolicy(None, [
            PolicyError("E005", f"policy language version {version} is not supported",
                        ast.Span(file, line, 1, line, 2),
                        f"supported versions: {', '.join(map(str, SUPPORTED_VERSIONS))}")
        ], _valueset_names(text))
    parser = _parser(version)
    errors: list[PolicyError] = []
    broken: set[str] = set()
    work = text
    for _attempt in range(200):
        try:
            tree = parser.parse(work)
            break
        except UnexpectedInput as err:
            errors.append(_syntax_error(file, text, err, reserved_words(version)))
            blanked = _blank_broken_item(work, err)
            if blanked is None:
                return ParsedPolicy(None, errors, _valueset_names(text))
            work, chunk = blanked
            broken |= _valueset_names(chunk)
    else:  # pragma: no cover - a file with more than 200 broken items
        return ParsedPolicy(None, errors, _valueset_names(text))
    for meta, error in _too_deep(file, tree):
        errors.append(error)
        tree.children = [c for c in tree.children
                         if not (isinstance(c, Tree) and c.meta is meta)]
    transformer = _ToAst(file)
    policy: ast.PolicyFile = transformer.transform(tree)
    return ParsedPolicy(policy, errors + transformer.errors, frozenset(broken))


def _blank_broken_item(text: str, err: UnexpectedInput) -> tuple[str, str] | None:
    """Blank out the value set or rule that holds a syntax error, keeping positions;
    returns the new text and the text blanked."""
    pos = getattr(err, "pos_in_stream", None)
    if pos is None:
        token = getattr(err, "token", None)
        pos = getattr(token, "start_pos", None)
    if pos is None or isinstance(err, UnexpectedEOF):
        pos = len(text)
    starts = [m.start() for m in _ITEM_START.finditer(text)]
    before = [s for s in starts if s <= pos]
    after = [s for s in starts if s > pos]
    if not before:
        return None
    begin = before[-1]
    if begin == pos:
        # The failing token starts the next item (a missing `end` or `]`): blank the item
        # before it, up to the failing token.
        earlier = [s for s in starts if s < begin]
        end = begin
        begin = earlier[-1] if earlier else begin
    else:
        end = after[0] if after else len(text)
    if end <= begin:
        return None
    chunk = text[begin:end]
    return text[:begin] + re.sub(r"[^\n]", " ", chunk) + text[end:], chunk

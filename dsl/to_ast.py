"""The Lark tree of one policy file to `ast` nodes, each with its span (the transformer
that dsl/parser.py runs over a tree it parsed). Errors the grammar cannot see (a date that
is not a calendar date, a clause written twice) are collected in `ToAst.errors`."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from lark import Token, Transformer, v_args
from lark.tree import Meta

from cleanclaim.dsl import ast
from cleanclaim.dsl.errors import PolicyError

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# How the analyst writes each clause (the transformer's clause names are internal).
_WRITTEN = {"scope": "applies to", "root_cause": "root cause", "filter": "plan"}


def span_of(file: str, meta: Meta | Token) -> ast.Span:
    line = getattr(meta, "line", None) or 1
    column = getattr(meta, "column", None) or 1
    end_line = getattr(meta, "end_line", None) or line
    end_column = getattr(meta, "end_column", None) or column + 1
    return ast.Span(file, line, column, end_line, end_column)


def _unquote(token: Token) -> str:
    text = str(token)[1:-1]
    return re.sub(r"\\(.)", r"\1", text)


class ToAst(Transformer[Token, Any]):
    """Builds `ast` nodes from the Lark tree of one file."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file
        self.errors: list[PolicyError] = []

    def _s(self, meta: Meta | Token) -> ast.Span:
        return span_of(self.file, meta)

    def _date(self, token: Token) -> dt.date | None:
        if not _ISO_DATE.fullmatch(str(token)):
            self.errors.append(
                PolicyError(
                    "E006",
                    f"`{token}` is not a date: date must be YYYY-MM-DD",
                    self._s(token),
                    "dates are written YYYY-MM-DD, e.g. 2026-01-01",
                )
            )
            return None
        try:
            return dt.date.fromisoformat(str(token))
        except ValueError:
            self.errors.append(
                PolicyError(
                    "E006",
                    f"`{token}` is not a calendar date",
                    self._s(token),
                    "dates are written YYYY-MM-DD, e.g. 2026-01-01",
                )
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
        return ast.PolicyFile(self.file, version, valuesets, rules, self._s(meta), counters, tables)

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
    def _duplicate(
        self, written: str, where: str, first: ast.Span, span: ast.Span, hint: str
    ) -> None:
        self.errors.append(
            PolicyError(
                "E407",
                f"second `{written}` in this {where}; the first is at line {first.line}",
                span,
                hint,
            )
        )

    @v_args(meta=True)
    def rule(self, meta: Meta, children: list[Any]) -> ast.Rule:
        rule_id = _unquote(children[0])
        span = self._s(meta)
        shared: dict[str, Any] = {"lets": [], "conditions": [], "spans": {}, "exceptions": []}
        versions: list[tuple[tuple[dt.date | None, dt.date | None, ast.Span], dict[str, Any]]] = []
        current = shared
        header: dict[str, Any] = {
            "title": None,
            "scope": None,
            "root_cause": None,
            "owner": None,
            "kind": None,
            "filters": [],
        }
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
                    self._duplicate(
                        f"let {value.name}",
                        "version" if current is not shared else "rule",
                        first,
                        clause_span,
                        "a `let` name is given once per version; rename one",
                    )
                current["spans"].setdefault(f"let {value.name}", clause_span)
                current["lets"].append(value)
            elif clause_name == "when":
                current["conditions"].append(value)
            elif clause_name in ("then", "message", "reference"):
                # A version's own `then` / `message` / `reference` replaces the shared one;
                # two in the same place is a mistake.
                first = current["spans"].get(clause_name)
                if first is not None:
                    self._duplicate(
                        written,
                        "version" if current is not shared else "rule",
                        first,
                        clause_span,
                        f"keep one `{written}`; a version that "
                        "needs another one starts with its own `effective`",
                    )
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
                    self._duplicate(
                        written,
                        "rule",
                        header_spans[clause_name],
                        clause_span,
                        f"a rule has one `{written}`; keep one",
                    )
                    continue
                header_spans.setdefault(clause_name, clause_span)
                header[clause_name] = value
        if not versions:
            versions.append(((None, None, span), {"lets": [], "conditions": [], "exceptions": []}))
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
        outcome = ast.Outcome(
            severity,
            group,
            code,
            tuple(str(r) for r in rarcs),
            span,
            tuple(self._s(t) for t in (carc, *rarcs)),
        )
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

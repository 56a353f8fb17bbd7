"""What every lint stage works on (the checked pack, where to warn) and the small helpers
the stages share: short spans, the names a pack uses, dated ranges, filter values."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cleanclaim.dsl import ast
from cleanclaim.dsl.checker import CheckedPack
from cleanclaim.dsl.lint.problems import LintProblem


@dataclass(slots=True)
class LintContext:
    """One pack under lint: what the checker learnt, and where warnings go."""

    checked: CheckedPack
    own_files: frozenset[str]  # quality warnings are reported for these files only
    today: dt.date
    used_elsewhere: frozenset[str]  # value set names that packs including this one use
    problems: list[LintProblem] = field(default_factory=list)

    def warn(self, code: str, message: str, span: ast.Span, hint: str | None = None) -> None:
        if span.file in self.own_files:
            self.problems.append(LintProblem(code, message, span, hint))


Stage = Callable[[LintContext], None]

_TEMPLATE_NAME = re.compile(r"\{\s*([a-z_][a-z0-9_]*)")


def used_names(files: Iterable[ast.PolicyFile]) -> set[str]:
    """Names that value sets, scopes, conditions and messages refer to."""
    names: set[str] = set()
    for tree in files:
        for node in ast.nodes(tree):
            if isinstance(node, ast.SetRef):
                names.add(node.name)
            elif isinstance(node, ast.Path):
                names.add(node.parts[0])
            elif isinstance(node, ast.Text):
                names.update(_TEMPLATE_NAME.findall(node.value))
    return names


def name_span(span: ast.Span, keyword: str, name: str) -> ast.Span:
    """The span of `keyword name` at the start of an item (for a short caret)."""
    width = len(keyword) + 1 + len(name)
    return ast.Span(span.file, span.line, span.column, span.line, span.column + width)


def rule_span(rule: ast.Rule) -> ast.Span:
    return name_span(rule.span, "rule", f'"{rule.id}"')


def bad_codes(ctx: LintContext) -> bool:
    """Whether the checker dropped codes it could not read: a set may then be empty only
    because of them, and saying so again would be noise."""
    return any(e.code.startswith("E30") for e in ctx.checked.errors)


# ---- dated versions ----------------------------------------------------------------------

BEGIN, END = dt.date.min, dt.date.max


def date_range(version: ast.Version) -> tuple[dt.date, dt.date]:
    return (version.start or BEGIN, version.end or END)


def show_dates(start: dt.date, end: dt.date) -> str:
    if start == BEGIN and end == END:
        return "every date"
    if start == BEGIN:
        return f"up to {end}"
    if end == END:
        return f"from {start}"
    return f"{start} to {end}" if start != end else str(start)


# ---- plan and place-of-service filters ----------------------------------------------------


def passing_values(filters: Iterable[ast.ValueFilter]) -> tuple[set[str] | None, set[str]]:
    """What filters of one field let through: the values every `is` filter names (None when
    there is no `is` filter) and the values the `is not` filters exclude."""
    included: set[str] | None = None
    excluded: set[str] = set()
    for vf in filters:
        if vf.negated:
            excluded.update(vf.values)
        else:
            included = set(vf.values) if included is None else included & set(vf.values)
    return included, excluded

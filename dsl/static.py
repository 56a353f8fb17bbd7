"""What a policy expression means before any claim is seen, and date arithmetic: one
implementation for the compiler, lint, `explain` and the exception checks, so that they
cannot disagree (issue 17.10: lint read `a - b` of two value sets as nothing while the
compiler took the codes of b out of a).

- `static_set`: the codes of a value set name, an inline code list, or `a + b` (union) /
  `a - b` (difference) of them; None for anything that needs a claim.
- `conjuncts`: the conditions `and`-ed together at the top of an expression.
- `date_plus` / `date_minus`: `d + n` and `d - n` (days), `a - b` of two dates (the days
  from b to a), missing when an operand is missing or the date would be past year 9999.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from cleanclaim.dsl import ast
from cleanclaim.dsl.types import add_days, days_between
from cleanclaim.dsl.valuesets import CodeSet


def static_set(
    expr: ast.Expr, valuesets: Mapping[str, CodeSet], literal_sets: Mapping[int, CodeSet]
) -> CodeSet | None:
    """The codes `expr` stands for, when it stands for codes whatever the claim.
    `valuesets`: the pack's value sets by name; `literal_sets`: the checker's sets of the
    inline code lists, by `id()` of the list node. (The checker has refused `a + b` / `a - b`
    of two kinds of code.)"""
    if isinstance(expr, ast.CodeList):
        return literal_sets.get(id(expr))
    if isinstance(expr, ast.Path) and len(expr.parts) == 1:
        return valuesets.get(expr.parts[0])
    if isinstance(expr, ast.Arith):
        left = static_set(expr.left, valuesets, literal_sets)
        right = static_set(expr.right, valuesets, literal_sets)
        if left is not None and right is not None:
            return left.union(right) if expr.op == "+" else left.difference(right)
    return None


def conjuncts(expr: ast.Expr) -> list[ast.Expr]:
    """`a and b and c` as [a, b, c], in source order (any other expression: itself)."""
    if isinstance(expr, ast.BoolOp) and expr.op == "and":
        return [*conjuncts(expr.left), *conjuncts(expr.right)]
    return [expr]


def date_plus(d: dt.date | None, n: Any) -> dt.date | None:
    """`d + n`: n days after d."""
    return add_days(d, n)


def date_minus(d: dt.date | None, x: Any) -> Any:
    """`d - x`: the days from date x to d when x is a date, else the date x days before d."""
    if isinstance(x, dt.date):
        return days_between(x, d)
    if d is None or x is None:
        return None
    return add_days(d, -int(x))

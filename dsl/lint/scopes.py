"""Lint stages W201-W202 (rules that can never fire: an empty scope, or a scope that a
top-level condition or filter rules out) and W207 (exceptions that can never apply)."""

from __future__ import annotations

import re

from cleanclaim.dsl import ast
from cleanclaim.dsl.lint.context import LintContext, bad_codes, passing_values
from cleanclaim.dsl.static import conjuncts, static_set
from cleanclaim.dsl.valuesets import CodeSet


def _static_set(ctx: LintContext, expr: ast.Expr) -> CodeSet | None:
    """The codes of a value set name, a code list, or a union/difference of them (as the
    compiler reads them: dsl/static.py)."""
    return static_set(expr, ctx.checked.valuesets, ctx.checked.literal_sets)


def _is_line_code(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.Path) and expr.parts == ("line", "code")


def scopes(ctx: LintContext) -> None:
    for _pack, rule in ctx.checked.rules:
        scope_codes: frozenset[str] | None = None
        if rule.scope is not None and rule.scope.kind == "codes":
            resolved = ctx.checked.scope_sets.get(rule.id)
            if resolved is None:
                continue  # the checker reported why
            if not resolved.exact and not bad_codes(ctx):
                ctx.warn(
                    "W201",
                    f"rule `{rule.id}` applies to codes, but its scope holds "
                    "no code: it never fires",
                    rule.scope.span,
                    "list the codes it is about, or delete the rule",
                )
                continue
            scope_codes = resolved.exact
        _filters(ctx, rule)
        for version in rule.versions:
            for condition in version.conditions:
                for part in conjuncts(condition):
                    reason = _never(ctx, part, scope_codes, rule)
                    if reason is not None:
                        ctx.warn(
                            "W202",
                            f"rule `{rule.id}` never fires: {reason}",
                            part.span,
                            "check the condition against the rule's `applies to`",
                        )


def _never(
    ctx: LintContext, part: ast.Expr, scope: frozenset[str] | None, rule: ast.Rule
) -> str | None:
    """Why a top-level condition can never hold for a line in scope, or None."""
    if isinstance(part, ast.Literal_) and part.value is False:
        return "its condition is `false`"
    line_scoped = rule.scope is None or rule.scope.kind in ("codes", "all_lines")
    if isinstance(part, ast.Membership) and line_scoped and _is_line_code(part.element):
        found = _static_set(ctx, part.container)
        if found is None or found.kind != "codes" or found.prefixes:
            return None
        if not part.negated:
            if not found.exact:
                return "`line.code` is never in an empty set"
            if scope is not None and not (scope & found.exact):
                return "no code of its `applies to` is in this set"
        elif scope is not None and scope <= found.exact:
            return "every code of its `applies to` is in this set"
        return None
    if isinstance(part, ast.Compare) and part.op == "==" and line_scoped and scope is not None:
        sides = (part.left, part.right)
        for this, other in (sides, sides[::-1]):
            if (
                _is_line_code(this)
                and isinstance(other, ast.Literal_)
                and isinstance(other.value, str)
                and other.value.upper() not in scope
            ):
                return f"`{other.value}` is not one of the codes it applies to"
    return None


_POS = re.compile(r"[0-9]{2}")


def _filters(ctx: LintContext, rule: ast.Rule) -> None:
    by_field: dict[str, list[ast.ValueFilter]] = {}
    for vf in rule.filters:
        by_field.setdefault(vf.field, []).append(vf)
        if vf.field == "place_of_service":
            for value in vf.values:
                if not _POS.fullmatch(value):
                    ctx.warn(
                        "W202",
                        f'place of service "{value}" never matches: place of '
                        "service codes are two digits",
                        vf.span,
                        f'write "{value.zfill(2)}"'
                        if value.isdigit() and len(value) < 2
                        else 'use a CMS place of service code such as "11"',
                    )
    for name, filters in by_field.items():
        included, excluded = passing_values(filters)
        if included is not None and not (included - excluded):
            label = "plan" if name == "plan" else "place of service"
            ctx.warn(
                "W202",
                f"rule `{rule.id}` never fires: no {label} passes all of its `{label} is` filters",
                filters[-1].span,
                f"keep one `{label} is` filter that lists the values it applies to",
            )


def exceptions(ctx: LintContext) -> None:
    """W207 (issue 13.9, lang): exceptions that can never apply (dsl/exceptions.py)."""
    from cleanclaim.dsl.exceptions import never_apply

    for span, message in never_apply(ctx.checked):
        ctx.warn("W207", message, span, "drop the exception, or name what it should be")

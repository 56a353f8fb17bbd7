"""Lint stage W301-W302: two rules that fire on the same lines under the same conditions,
with a different outcome (W301) or the same one (W302)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cleanclaim.dsl import ast
from cleanclaim.dsl.lint.context import LintContext, date_range, passing_values, rule_span
from cleanclaim.dsl.static import conjuncts


def normalize(expr: Any, lets: Mapping[str, Any]) -> Any:
    """An expression as a hashable value without positions, `let` names replaced by what
    they stand for."""
    if isinstance(expr, ast.Path) and expr.parts[0] in lets:
        head = lets[expr.parts[0]]
        return head if len(expr.parts) == 1 else ("field", head, expr.parts[1:])
    if isinstance(expr, ast.Quantified):
        inner = {k: v for k, v in lets.items() if k != expr.var}
        return (
            "Quantified",
            expr.quantifier,
            expr.var,
            normalize(expr.collection, lets),
            normalize(expr.condition, inner),
        )
    if dataclasses.is_dataclass(expr) and not isinstance(expr, type):
        return (
            type(expr).__name__,
            *(
                normalize(getattr(expr, f.name), lets)
                for f in dataclasses.fields(expr)
                if f.name != "span"
            ),
        )
    if isinstance(expr, tuple):
        return tuple(normalize(x, lets) for x in expr)
    return expr


def condition_key(version: ast.Version) -> frozenset[Any]:
    """The `and`-ed conditions of a version, normalized: equal keys, same conditions."""
    lets: dict[str, Any] = {}
    for let in version.lets:
        lets[let.name] = normalize(let.value, lets)
    return frozenset(
        normalize(part, lets) for condition in version.conditions for part in conjuncts(condition)
    )


@dataclass(frozen=True, slots=True)
class _Firing:
    """When and where one version of a rule can fire: what two rules must share to
    fire on the same line."""

    rule: ast.Rule
    version: ast.Version
    target: str  # line | claim | diagnosis
    codes: frozenset[str] | None  # None: any code
    filters: tuple[tuple[str, frozenset[str] | None, frozenset[str]], ...]


def _filter_sets(rule: ast.Rule) -> tuple[tuple[str, frozenset[str] | None, frozenset[str]], ...]:
    out = []
    for name in ("plan", "place_of_service"):
        included, excluded = passing_values(vf for vf in rule.filters if vf.field == name)
        out.append((name, None if included is None else frozenset(included), frozenset(excluded)))
    return tuple(out)


def _meet(a: _Firing, b: _Firing) -> str | None:
    """What two firings share (a description), or None when they can never meet."""
    if a.target != b.target:
        return None
    shared = "every line"
    if a.target == "line":
        if a.codes is not None and b.codes is not None:
            common = a.codes & b.codes
            if not common:
                return None
            shown = sorted(common)
            shared = "code " + ", ".join(shown[:4]) + (" ..." if len(shown) > 4 else "")
        elif a.codes is not None or b.codes is not None:
            codes = a.codes if a.codes is not None else b.codes
            assert codes is not None
            shown = sorted(codes)
            shared = "code " + ", ".join(shown[:4]) + (" ..." if len(shown) > 4 else "")
    else:
        shared = "the claim" if a.target == "claim" else "every diagnosis"
    for (_n, inc_a, exc_a), (_m, inc_b, exc_b) in zip(a.filters, b.filters, strict=True):
        excluded = exc_a | exc_b
        if inc_a is not None and inc_b is not None and not ((inc_a & inc_b) - excluded):
            return None
        if (inc_a is not None) != (inc_b is not None):
            inc = inc_a if inc_a is not None else inc_b
            assert inc is not None
            if not inc - excluded:
                return None
    ra, rb = date_range(a.version), date_range(b.version)
    if max(ra[0], rb[0]) > min(ra[1], rb[1]):
        return None
    return shared


def _outcome(version: ast.Version) -> tuple[str, str, str, tuple[str, ...]] | None:
    o = version.outcome
    return None if o is None else (o.severity, o.group, o.carc, o.rarcs)


def _show_outcome(version: ast.Version) -> str:
    o = version.outcome
    if o is None:
        return "no outcome"
    return f"{o.severity} {o.group}-{o.carc}" + (f" with {', '.join(o.rarcs)}" if o.rarcs else "")


def conflicts(ctx: LintContext) -> None:
    groups: dict[frozenset[Any], list[_Firing]] = {}
    for _pack, rule in ctx.checked.rules:
        if rule.scope is None:
            continue
        target = {"codes": "line", "all_lines": "line"}.get(rule.scope.kind, rule.scope.kind)
        codes = None
        if rule.scope.kind == "codes":
            resolved = ctx.checked.scope_sets.get(rule.id)
            if resolved is None:
                continue
            codes = resolved.exact
        for version in rule.versions:
            if not version.conditions:
                continue
            firing = _Firing(rule, version, target, codes, _filter_sets(rule))
            groups.setdefault(condition_key(version), []).append(firing)
    reported: set[tuple[str, str]] = set()
    for firings in groups.values():
        for i, first in enumerate(firings):
            for second in firings[i + 1 :]:
                pair = (first.rule.id, second.rule.id)
                if first.rule is second.rule or pair in reported:
                    continue
                shared = _meet(first, second)
                if shared is None:
                    continue
                reported.add(pair)
                _report_pair(ctx, first, second, shared)


def _report_pair(ctx: LintContext, first: _Firing, second: _Firing, shared: str) -> None:
    # Reported at the rule written later, or at the one in this pack's own files.
    here, there = second, first
    if here.rule.span.file not in ctx.own_files:
        here, there = first, second
    where = f"{there.rule.span.file}:{there.rule.span.line}"
    if _outcome(first.version) != _outcome(second.version):
        ctx.warn(
            "W301",
            f"rules `{here.rule.id}` ({_show_outcome(here.version)}) and "
            f"`{there.rule.id}` ({_show_outcome(there.version)}, {where}) fire on the "
            f"same conditions for {shared}: a line gets both outcomes",
            rule_span(here.rule),
            "decide which outcome the policy means and delete or narrow the other rule",
        )
    else:
        ctx.warn(
            "W302",
            f"rules `{here.rule.id}` and `{there.rule.id}` ({where}) fire on "
            f"the same conditions for {shared} with the same outcome: the line gets "
            "the finding twice",
            rule_span(here.rule),
            "delete one of them",
        )

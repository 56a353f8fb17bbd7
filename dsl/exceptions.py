"""Exceptions: what suppresses a rule's finding, instead of negating each exemption in
`when` by hand.

```
rule "medicare/ecg/component-with-global"
  applies to codes ecg_components
  except when any of line.modifiers in [59, XU]
  except rule "medicare/ncci/ptp"
  ...
end
```
- `except when COND`: the finding is suppressed when COND holds. It is the condition
  `not COND` of the version it stands in (shared when it stands before the first
  `effective`), with the same missing-value rule: an exception that reads a missing value
  leaves the rule undecided (a review), unless the rule tests the field with `is present`.
- `except rule "ID"`: the finding is suppressed where rule ID of the pack (or of a pack it
  includes) gives a finding of its own - on the same line, or on the claim (a claim- or
  diagnosis-level finding of ID suppresses every finding of this rule; a finding of this
  rule on the claim is suppressed by any finding of ID). ID's own "needs ..." review (a
  missing value left it undecided) suppresses nothing. A rule cannot except itself, and
  exceptions cannot go round in a circle (E409).

This module checks `except rule` (a checker stage), applies it to a claim's findings
(`apply_exceptions`, called at the end of the compiled `_evaluate`) and finds exceptions
that can never apply (`never_apply`, lint W207).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cleanclaim.dsl import ast
from cleanclaim.dsl.errors import PolicyError, did_you_mean
from cleanclaim.dsl.static import conjuncts, static_set

if TYPE_CHECKING:
    from cleanclaim.dsl.checker import CheckedPack, CheckEnv


def check_exceptions(checked: CheckedPack, env: CheckEnv) -> None:
    """Checker stage (after the rules): every `except rule` names another rule of the pack,
    and no rule excepts itself through others. Fills `checked.excepts` (rule index ->
    the indices of the rules whose findings suppress its own)."""
    index = {rule.id: i for i, (_pack, rule) in enumerate(checked.rules)}
    for i, (_pack, rule) in enumerate(checked.rules):
        found: list[int] = []
        for named in rule.excepts:
            j = index.get(named.value)
            if j is None:
                checked.errors.append(
                    PolicyError(
                        "E409",
                        f"`except rule` names `{named.value}`, which is no rule of the "
                        "pack or of the packs it includes",
                        named.span,
                        did_you_mean(named.value, index) or "name a rule id as it is declared",
                    )
                )
            elif j == i:
                checked.errors.append(
                    PolicyError(
                        "E409",
                        f"rule `{rule.id}` cannot except itself",
                        named.span,
                        "`except rule` names another rule whose finding makes this one moot",
                    )
                )
            elif j not in found:
                found.append(j)
        if found:
            checked.excepts[i] = tuple(found)
    for i, (_pack, rule) in enumerate(checked.rules):
        cycle = _cycle(checked.excepts, i)
        if cycle is not None and cycle[0] == i and min(cycle) == i:
            names = " -> ".join(checked.rules[k][1].id for k in [*cycle, i])
            checked.errors.append(
                PolicyError(
                    "E409",
                    f"exceptions go round in a circle: {names}",
                    rule.span,
                    "two rules that except each other would both be suppressed; keep one direction",
                )
            )


def _cycle(graph: Mapping[int, Sequence[int]], start: int) -> list[int] | None:
    """A path from `start` back to it through `graph`, if any."""
    stack: list[tuple[int, list[int]]] = [(start, [start])]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        for nxt in graph.get(node, ()):
            if nxt == start:
                return path
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def apply_exceptions(
    out: list[Any], excepts: Mapping[int, Sequence[int]], needs: Mapping[int, int]
) -> None:
    """Take out of `out` (`(rule index, version index, line, message)` items) the findings
    that an `except rule` suppresses. `needs`: rule index -> the version index of its
    "needs ..." review, which suppresses nothing."""
    fired: dict[int, set[Any]] = {}
    for rule, version, line, _message in out:
        if version != needs.get(rule):
            fired.setdefault(rule, set()).add(line)
    if not any(other in fired for others in excepts.values() for other in others):
        return
    kept = []
    for item in out:
        others = excepts.get(item[0])
        if others is not None and any(
            other in fired and (item[2] is None or item[2] in fired[other] or None in fired[other])
            for other in others
        ):
            continue
        kept.append(item)
    out[:] = kept


# ---- lint: exceptions that can never apply ----------------------------------------------


def never_apply(checked: CheckedPack) -> list[tuple[ast.Span, str]]:
    """Exceptions that can never suppress anything, each with why: an `except rule` whose
    rule applies to none of this rule's codes, or is in force on none of its dates; an
    `except when` that is `false`, asks for codes the rule does not apply to, or
    contradicts a `when` of the rule."""
    from cleanclaim.dsl.fmt import strip_spans

    found: list[tuple[ast.Span, str]] = []
    rules = checked.rules
    for i, (_pack, rule) in enumerate(rules):
        mine = checked.scope_sets.get(rule.id)
        for j in checked.excepts.get(i, ()):
            other = rules[j][1]
            theirs = checked.scope_sets.get(other.id)
            span = next((t.span for t in rule.excepts if t.value == other.id), rule.span)
            if (
                mine is not None
                and theirs is not None
                and not mine.prefixes
                and not theirs.prefixes
                and mine.exact.isdisjoint(theirs.exact)
            ):
                found.append(
                    (
                        span,
                        f"rule `{other.id}` applies to none of the codes rule "
                        f"`{rule.id}` applies to: it never gives a finding on the "
                        "same line",
                    )
                )
            elif not _dates_meet(rule, other):
                found.append(
                    (
                        span,
                        f"rule `{other.id}` is in force on none of the dates rule `{rule.id}` is",
                    )
                )
        for version in rule.versions:
            whens = [
                strip_spans(part)
                for c in version.conditions
                if not any(c.span == x.span for x in version.exceptions)
                for part in conjuncts(c)
            ]
            for exception in version.exceptions:
                cond = exception.condition
                why = None
                if isinstance(cond, ast.Literal_) and cond.value is False:
                    why = "its condition is `false`"
                elif (
                    mine is not None
                    and isinstance(cond, ast.Membership)
                    and not cond.negated
                    and isinstance(cond.element, ast.Path)
                    and cond.element.parts == ("line", "code")
                ):
                    codes = static_set(cond.container, checked.valuesets, checked.literal_sets)
                    if (
                        codes is not None
                        and not mine.prefixes
                        and not codes.prefixes
                        and mine.exact.isdisjoint(codes.exact)
                    ):
                        why = "it asks for codes the rule does not apply to"
                elif strip_spans(ast.Not(cond, cond.span)) in whens or (
                    isinstance(cond, ast.Not) and strip_spans(cond.operand) in whens
                ):
                    why = "a `when` of the rule says the opposite"
                if why is not None:
                    found.append((exception.span, f"this exception never applies: {why}"))
    return found


def _dates_meet(a: ast.Rule, b: ast.Rule) -> bool:
    import datetime as dt

    def span(v: ast.Version) -> tuple[dt.date, dt.date]:
        return (v.start or dt.date.min, v.end or dt.date.max)

    return any(
        span(x)[0] <= span(y)[1] and span(y)[0] <= span(x)[1]
        for x in a.versions
        for y in b.versions
    )

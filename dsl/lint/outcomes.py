"""Lint stages over a rule's outcome and sources: W401 no reference, W402 a deny resting on
partial data, W403-W404 X12 usage of the outcome's codes."""

from __future__ import annotations

from cleanclaim.dsl.codesets import adjustment
from cleanclaim.dsl.lint.context import LintContext, date_range, rule_span, show_dates


def references(ctx: LintContext) -> None:
    hint = (
        'add `reference "..."` naming the policy text the rule encodes (manual '
        "chapter, LCD, contract section)"
    )
    for _pack, rule in ctx.checked.rules:
        missing = [v for v in rule.versions if v.reference is None]
        if not missing:
            continue
        if len(missing) == len(rule.versions):
            ctx.warn("W401", f"rule `{rule.id}` has no reference", rule_span(rule), hint)
        else:
            for version in missing:
                ctx.warn(
                    "W401",
                    f"the version of rule `{rule.id}` "
                    f"{show_dates(*date_range(version))} has no reference",
                    version.span,
                    hint,
                )


def partial_data(ctx: LintContext) -> None:
    """W402 (content helper, issue 11 section 1): deny/reject resting on a partial list."""
    from cleanclaim.dsl.valuesets import partial_notes

    for _pack, rule in ctx.checked.rules:
        for version in rule.versions:
            if version.outcome is None or version.outcome.severity not in ("deny", "reject"):
                continue
            notes = partial_notes(
                version.conditions,
                version.lets,
                ctx.checked.valuesets,
                ctx.checked.literal_sets,
                {},
            )
            if notes:
                ctx.warn(
                    "W402",
                    f"rule `{rule.id}` {version.outcome.severity}s when a code is "
                    f"not found in partial data: {'; '.join(notes)}",
                    rule_span(rule),
                    "its findings are reviews until the list is complete; complete the "
                    "list (e.g. `cleanclaim data import`), or write the outcome as "
                    "`review`",
                )


def adjustment_usage(ctx: LintContext) -> None:
    """W403/W404 (issue 13.14): X12 usage notes of the outcome's codes (unknown or retired
    codes are the checker's E306/E307)."""
    for _pack, rule in ctx.checked.rules:
        for version in rule.versions:
            outcome = version.outcome
            if outcome is None:
                continue
            for problem in adjustment.check_outcome(
                outcome.group,
                outcome.carc,
                outcome.rarcs,
                severity=outcome.severity,
                in_force_until=version.end,
            ):
                if problem.level == "warning":
                    spans = outcome.code_spans
                    span = spans[problem.index] if problem.index < len(spans) else outcome.span
                    ctx.warn(problem.code, problem.message, span, problem.hint)

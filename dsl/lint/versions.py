"""Lint stage W203-W206: dated versions all ended, shadowed by later ones, overlapping, or
leaving gaps."""

from __future__ import annotations

import datetime as dt

from cleanclaim.dsl.lint.context import BEGIN, END, LintContext, date_range, rule_span, show_dates


def _subtract(
    ranges: list[tuple[dt.date, dt.date]], cut: tuple[dt.date, dt.date]
) -> list[tuple[dt.date, dt.date]]:
    out = []
    one = dt.timedelta(days=1)
    for start, end in ranges:
        if cut[1] < start or end < cut[0]:
            out.append((start, end))
            continue
        if start < cut[0]:
            out.append((start, cut[0] - one))
        if cut[1] < end:
            out.append((cut[1] + one, end))
    return out


def versions(ctx: LintContext) -> None:
    for _pack, rule in ctx.checked.rules:
        dated = [v for v in rule.versions if v.start is not None or v.end is not None]
        valid = [v for v in dated if not (v.start and v.end and v.end < v.start)]
        if not dated:
            continue
        if all(v.end is not None and v.end < ctx.today for v in dated):
            last = max(v.end for v in dated if v.end is not None)
            ctx.warn(
                "W203",
                f"every version of rule `{rule.id}` ended by {last}: it only "
                "applies to services on or before that date",
                rule_span(rule),
                "if the policy continues, add a version `effective <date>`; if it is "
                "retired, delete the rule once such claims can no longer be filed",
            )
        # The version that applies on a date is the one that starts latest (the first
        # written of those that start on the same day): the compiler's order.
        order = sorted(valid, key=lambda v: v.start or BEGIN, reverse=True)
        shadowed: set[int] = set()
        for position, version in enumerate(order):
            left = [date_range(version)]
            for winner in order[:position]:
                left = _subtract(left, date_range(winner))
            if not left:
                shadowed.add(id(version))
                ctx.warn(
                    "W204",
                    f"the version {show_dates(*date_range(version))} never applies: "
                    "versions that start later take every one of its dates",
                    version.span,
                    "delete it, or correct its dates",
                )
        for i, first in enumerate(valid):
            for second in valid[i + 1 :]:
                if id(first) in shadowed or id(second) in shadowed:
                    continue
                a, b = date_range(first), date_range(second)
                start, end = max(a[0], b[0]), min(a[1], b[1])
                if start <= end:
                    winner = max((first, second), key=lambda v: v.start or BEGIN)
                    ctx.warn(
                        "W205",
                        f"this version and the one at line {first.span.line} "
                        f"are both in force {show_dates(start, end)}; there the version "
                        f"at line {winner.span.line} applies",
                        second.span,
                        "make the earlier version end the day before the later starts",
                    )
        covered = sorted((date_range(v), v) for v in valid if id(v) not in shadowed)
        reach: dt.date | None = None
        for (start, end), version in covered:
            if reach is not None and reach != END and start > reach + dt.timedelta(days=1):
                gap = (reach + dt.timedelta(days=1), start - dt.timedelta(days=1))
                ctx.warn(
                    "W206",
                    f"no version of rule `{rule.id}` applies to services {show_dates(*gap)}",
                    version.span,
                    f"start this version on {gap[0]}, or end the one before on "
                    f"{gap[1]}, unless the gap is meant",
                )
            reach = end if reach is None else max(reach, end)

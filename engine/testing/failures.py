"""A failing case's report: expected and actual findings side by side, the rules' source
positions and, when asked, their `explain` traces."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cleanclaim.engine.cases import (
    FINDING_FIELDS,
    PolicyCase,
    invalid_claim,
    match_findings,
)
from cleanclaim.engine.decision import Decision, Finding
from cleanclaim.engine.testing.results import RuleTrace

_SHOWN_FIELDS = (
    "rule",
    "line",
    "severity",
    "group",
    "carc",
    "rarc",
    "root_cause",
    "owner",
    "message",
)
_COLUMN = 46


def _value(finding: Finding, name: str) -> str:
    value = getattr(finding, name)
    if name == "rarc":
        return "[" + ", ".join(value) + "]"
    return "-" if value is None else str(value)


def _expected_value(expected: Mapping[str, Any], name: str) -> str:
    value = expected[name]
    if name == "rarc":
        items = [value] if isinstance(value, str) else list(value)
        return "[" + ", ".join(str(v) for v in items) + "]"
    return str(value)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _pair_rows(expected: Mapping[str, Any] | None, actual: Finding | None) -> list[str]:
    """Rows `field  expected | actual`, `≠` marking a field that differs."""
    # The fields the case lists; an actual finding nobody expected shows the usual ones.
    names = [n for n in FINDING_FIELDS if expected is not None and n in expected]
    if not names:
        names = list(_SHOWN_FIELDS)
    rows = []
    for name in names:
        left = _expected_value(expected, name) if expected is not None and name in expected else ""
        right = _value(actual, name) if actual is not None else ""
        differs = (
            expected is not None
            and actual is not None
            and name in expected
            and (not match_findings([{name: expected[name]}], [actual]).matched)
        )
        mark = "≠" if differs else " "
        rows.append(
            f"    {name:<11}{_clip(left, _COLUMN):<{_COLUMN}} {mark} | "
            f"{_clip(right, _COLUMN)}".rstrip()
        )
    if expected is None:
        rows.insert(0, f"    {'':<11}{'(not expected)':<{_COLUMN}}   |")
    if actual is None:
        rows.insert(0, f"    {'':<11}{'':<{_COLUMN}}   | (no such finding)")
    return rows


def _pairs(
    missing: list[dict[str, Any]], unexpected: list[Finding]
) -> list[tuple[dict[str, Any] | None, Finding | None]]:
    """Missing and unexpected findings paired by rule (and line), so that the fields that
    differ stand side by side; the rest alone."""
    left = list(unexpected)
    pairs: list[tuple[dict[str, Any] | None, Finding | None]] = []
    for wanted in missing:
        candidates = [f for f in left if "rule" not in wanted or f.rule == str(wanted["rule"])]
        same_line = [f for f in candidates if "line" in wanted and f.line == wanted["line"]]
        chosen = (same_line or candidates)[0] if (same_line or candidates) else None
        if chosen is not None:
            left.remove(chosen)
        pairs.append((wanted, chosen))
    pairs.extend((None, f) for f in left)
    return pairs


def rule_positions(engine: Any) -> dict[str, str]:
    """Rule id -> `file:line` over the engine's packs."""
    positions: dict[str, str] = {}
    for program in getattr(engine, "programs", {}).values():
        for rule in program.rules:
            positions.setdefault(rule.id, f"{rule.file}:{rule.line}")
    return positions


def failure_report(
    engine: Any, case: PolicyCase, decision: Decision, trace: RuleTrace | None = None
) -> str:
    """A failed case: status, expected and actual findings side by side, where the rules
    involved stand, and (given a `trace`) the trace of each."""
    lines = [f"  {problem}" for problem in invalid_claim(case, decision)]
    if case.expect_status is not None and decision.status != case.expect_status:
        lines.append(f"  status: expected {case.expect_status}, got {decision.status}")
    involved: list[str] = []
    if case.expect_findings is not None:
        match = match_findings(case.expect_findings, decision.findings)
        pairs = _pairs(match.missing, match.unexpected)
        if pairs:
            lines.append(f"  findings   {'expected':<{_COLUMN}}     | actual")
            for wanted, found in pairs:
                lines.extend(_pair_rows(wanted, found))
                lines.append("    " + "-" * (11 + _COLUMN + 3) + "+" + "-" * 20)
            for wanted, found in pairs:
                for rule_id in (
                    str(wanted["rule"]) if wanted and "rule" in wanted else None,
                    found.rule if found else None,
                ):
                    if rule_id and rule_id not in involved:
                        involved.append(rule_id)
        if match.matched:
            lines.append(
                f"  ({len(match.matched)} expected finding"
                f"{'s' if len(match.matched) != 1 else ''} found as listed)"
            )
    positions = rule_positions(engine)
    for rule_id in involved:
        lines.append(f"  rule {rule_id}: {positions.get(rule_id, 'not in any loaded pack')}")
        if trace is not None:
            text = trace(engine, case, rule_id)
            if text:
                lines.extend("    " + t for t in text.splitlines())
    return "\n".join(lines)

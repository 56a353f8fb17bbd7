"""What a run of policy cases found: each case's result, each rule's coverage, the run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cleanclaim.engine.cases import (
    PolicyCase,
)
from cleanclaim.engine.decision import Decision

# Called for a failing case with the engine, the case and a rule involved; returns the
# rule's trace as text (`explain`), or None. `run_cases(trace=...)` takes one.
RuleTrace = Callable[[Any, PolicyCase, str], str | None]


@dataclass(slots=True)
class CaseResult:
    """One case run: its decision and what differed from the expectation."""

    case: PolicyCase
    decision: Decision | None
    problems: list[str]
    report: str = ""  # the failure, side by side (empty when the case passed)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class RuleCoverage:
    """How the cases exercised one rule of one pack."""

    pack: str
    rule: str
    file: str
    line: int
    fired: int = 0  # targets the rule fired on
    passed: int = 0  # targets the rule was in force for and did not fire on
    versions: dict[int, list[int]] = field(default_factory=dict)  # index -> [fired, passed]
    version_labels: tuple[str, ...] = ()  # "2026-01-01..", "..2025-12-31" per version

    @property
    def dated(self) -> bool:
        return any(label != ".." for label in self.version_labels)

    unconditional: bool = False  # `when true`: in force means fired, it cannot pass
    # The pack the rule is written in: `pack` itself, or a library it includes (`common`),
    # whose rules coverage reports apart from the pack's own.
    origin: str = ""

    @property
    def included(self) -> bool:
        return bool(self.origin) and self.origin != self.pack

    @property
    def status(self) -> str:
        if self.fired and (self.passed or self.unconditional):
            return "covered"
        if self.fired:
            return "never passed"
        if self.passed:
            return "never fired"
        return "untouched"


@dataclass(slots=True)
class CaseRun:
    """Everything `cleanclaim test` found."""

    results: list[CaseResult] = field(default_factory=list)
    file_errors: list[tuple[Path, str]] = field(default_factory=list)
    coverage: dict[str, dict[str, RuleCoverage]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    def coverage_percent(self, pack: str, origin: str | None = None) -> float:
        """The share of the pack's own rules the cases covered (`origin`: of the rules of
        that included library instead). A minimum coverage applies to the own rules."""
        rules = self.rules_of(pack, origin or pack)
        if not rules:
            return 100.0
        return 100.0 * sum(1 for r in rules if r.status == "covered") / len(rules)

    def rules_of(self, pack: str, origin: str) -> list[RuleCoverage]:
        """The pack's rules written in `origin` (the pack itself or a library it includes)."""
        return [r for r in self.coverage.get(pack, {}).values() if (r.origin or pack) == origin]

    def origins(self, pack: str) -> list[str]:
        """The pack itself, then the libraries its rules come from, sorted."""
        found = {r.origin for r in self.coverage.get(pack, {}).values() if r.included}
        return [pack, *sorted(found)]

    def below(self, minimum: float) -> list[str]:
        """Packs whose coverage is below `minimum` percent."""
        return [p for p in sorted(self.coverage) if self.coverage_percent(p) < minimum]

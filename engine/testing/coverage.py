"""Rule coverage: for each target a case's claim offers (lines, the claim, diagnoses),
which rules were in force there (scope, filters, a version on the date), worked out from
the claim and the rule, so coverage costs the engine nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from cleanclaim.dsl import ast
from cleanclaim.dsl.compiler import CompiledRule
from cleanclaim.dsl.pack import load_sources
from cleanclaim.dsl.parser import parse_policy
from cleanclaim.dsl.types import plan_key, plan_of
from cleanclaim.engine.cases import (
    PolicyCase,
)
from cleanclaim.engine.decision import Decision
from cleanclaim.engine.decoding import decode_claim
from cleanclaim.engine.model import Claim
from cleanclaim.engine.testing.results import RuleCoverage


class RuleIndex:
    """The rules of the engine's packs with what coverage needs: scope, codes, versions
    (from the compiled rules) and plan / place of service filters (from the syntax tree)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.programs: Mapping[str, Any] = getattr(engine, "programs", {})
        self.filters: dict[str, tuple[ast.ValueFilter, ...]] = {}
        self.unconditional: set[str] = set()
        self.origin: dict[str, str] = {}  # file -> the pack it is of
        roots = getattr(engine, "roots", [])
        for pack_id in self.programs:
            sources = load_sources(roots, pack_id)
            if sources is None:
                continue
            self.origin.update(sources.file_pack)
            for name, text in sources.files.items():
                tree, _errors = parse_policy(text, name)
                for rule in tree.rules if tree is not None else ():
                    self.filters.setdefault(rule.id, rule.filters)
                    if all(
                        isinstance(c, ast.Literal_) and c.value is True
                        for v in rule.versions
                        for c in v.conditions
                    ):
                        self.unconditional.add(rule.id)

    def _entry(
        self, coverage: dict[str, dict[str, RuleCoverage]], pack: str, rule: CompiledRule
    ) -> RuleCoverage:
        rules = coverage.setdefault(pack, {})
        entry = rules.get(rule.id)
        if entry is None:
            labels = tuple(f"{v.start or ''}..{v.end or ''}" for v in rule.versions)
            entry = RuleCoverage(
                pack,
                rule.id,
                rule.file,
                rule.line,
                version_labels=labels,
                unconditional=rule.id in self.unconditional,
                origin=self.origin.get(rule.file, pack),
            )
            rules[rule.id] = entry
        return entry

    def record(
        self, case: PolicyCase, decision: Decision, coverage: dict[str, dict[str, RuleCoverage]]
    ) -> None:
        claim = self._decode(case)
        if claim is None:
            return
        program = self.programs.get(claim.payer)
        if program is None:
            return
        fired_lines: dict[str, list[int | None]] = {}
        for finding in decision.findings:
            fired_lines.setdefault(finding.rule, []).append(finding.line)
        for rule in program.rules:
            entry = self._entry(coverage, claim.payer, rule)
            if not self._filters_pass(rule, claim):
                continue
            fired = fired_lines.get(rule.id, [])
            for target_line, day in _targets(rule, claim):
                version = version_in_force(rule, day)
                if version is None:
                    continue
                counts = entry.versions.setdefault(version, [0, 0])
                if target_line in fired:
                    fired.remove(target_line)
                    entry.fired += 1
                    counts[0] += 1
                else:
                    entry.passed += 1
                    counts[1] += 1

    def _decode(self, case: PolicyCase) -> Claim | None:
        today = case.today or getattr(self.engine, "today", None) or dt.date.today()
        claim, _problems = decode_claim(case.claim, today)
        return claim

    def _filters_pass(self, rule: CompiledRule, claim: Claim) -> bool:
        for vf in self.filters.get(rule.id, ()):
            if vf.field == "plan":  # the plan of the claim, case-insensitively (as rules)
                plan = plan_key(plan_of(claim, claim.first_service_date))
                inside = plan in {plan_key(v) for v in vf.values}
            else:
                inside = claim.place_of_service in vf.values
            if inside == vf.negated:
                return False
        return True

    def add_untouched(self, coverage: dict[str, dict[str, RuleCoverage]]) -> None:
        """Every rule of a pack some case ran against gets an entry, touched or not."""
        for pack in list(coverage):
            program = self.programs.get(pack)
            for rule in program.rules if program is not None else ():
                self._entry(coverage, pack, rule)


def _targets(rule: CompiledRule, claim: Claim) -> list[tuple[int | None, dt.date]]:
    """What a rule is applied to on a claim (line number, None for claim and diagnosis
    rules) with the date of service that picks its version."""
    if rule.scope == "codes":
        return [(ln.line, ln.service_date) for ln in claim.lines if ln.code in rule.codes]
    if rule.scope == "all_lines":
        return [(ln.line, ln.service_date) for ln in claim.lines]
    if rule.scope == "diagnosis":
        return [(None, claim.first_service_date) for _ in claim.diagnosis_items]
    return [(None, claim.first_service_date)]


def version_in_force(rule: CompiledRule, day: dt.date) -> int | None:
    """The index of the version that applies on `day` (the latest start wins, as the
    compiler orders them), or None when no version covers it."""
    order = sorted(
        range(len(rule.versions)), key=lambda i: rule.versions[i].start or dt.date.min, reverse=True
    )
    for index in order:
        version = rule.versions[index]
        if (version.start is None or version.start <= day) and (
            version.end is None or day <= version.end
        ):
            return index
    return None

"""The therapy plugin: outpatient PT/OT/SLP coding and documentation rules.

- `therapy/discipline-modifier` (language rule, packs/therapy): each "always therapy" code
  carries exactly one of GP/GO/GN, else CO-4.
- `eight-minute-rule`: a day's timed units above what its total timed minutes support
  (8-22 minutes = 1 unit, 23-37 = 2, ...; under 8 = 0) are denied CO-151; minutes come
  from each line's `minutes`, else from `documentation.therapy.minutes`
  (`timed-minutes`: neither says, review).
- `evaluation-once-per-episode`: 97161-97163 (and OT 97165-97167) are untimed, one unit,
  once per episode.
- `plan-of-care-certification` (within 30 days of the first treatment),
  `plan-of-care-recertification` (at least every 90 days), `progress-report` (at least
  every 10 treatment days): review, documentation.

It also ships the library pack `therapy-codes` (value sets other packs may include).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cleanclaim.engine.hookspecs import (
    Claim,
    ClaimContext,
    Date,
    DocumentationSection,
    Finding,
    ListOf,
    Number,
    Record,
    RuleInfo,
    Text,
    hookimpl,
)
from cleanclaim.plugins.therapy import rules

__version__ = "0.1.0"

PACKS = Path(__file__).resolve().parent / "packs"

THERAPY_SECTION = DocumentationSection(
    "therapy",
    Record({
        "discipline": Text(("PT", "OT", "SLP")),
        "plan_of_care": Record({
            "start": Date(),          # first treatment day of the episode (evaluation counts)
            "end": Date(),            # end of the plan's duration, if shorter than 90 days
            "certified": Date(),      # physician/NPP signature of the initial certification
            "recertified": ListOf(Date()),
        }),
        "progress_reports": ListOf(Date()),
        "treatment_days": ListOf(Date()),
        "evaluations": ListOf(Date()),  # evaluations already billed in this episode
        "minutes": ListOf(Record({"code": Text(), "date": Date(), "minutes": Number(0)},
                                 required=("code", "minutes"))),
    }),
    "Outpatient therapy episode: discipline, plan-of-care dates (start, end, certification, "
    "recertifications), progress-report dates, treatment days, earlier evaluations, and "
    "minutes per timed code and date.")


@hookimpl
def cleanclaim_policy_packs() -> Sequence[Path]:
    return [PACKS / "therapy", PACKS / "therapy-codes"]


@hookimpl
def cleanclaim_documentation_sections() -> Sequence[DocumentationSection]:
    return [THERAPY_SECTION]


@hookimpl
def cleanclaim_rules() -> Sequence[RuleInfo]:
    return rules.RULES


@hookimpl
def cleanclaim_derive_facts(claim: Claim, context: ClaimContext) -> Mapping[str, Any] | None:
    if not any(line.code in rules.TIMED for line in claim.lines):
        return None
    return rules.derive_minutes(claim, context)


@hookimpl
def cleanclaim_check_claim(claim: Claim, context: ClaimContext) -> Iterable[Finding] | None:
    if not any(line.code in rules.ALWAYS_THERAPY for line in claim.lines):
        return None
    therapy = context.documentation.get("therapy")
    findings = rules.check_minutes(claim, context.facts.get("therapy", {}))
    findings.extend(rules.check_evaluations(claim, therapy or {}))
    findings.extend(rules.check_plan_of_care(claim, therapy))
    return findings

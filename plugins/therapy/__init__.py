"""The therapy plugin: outpatient PT/OT/SLP coding and documentation rules.

- `therapy/discipline-modifier` (language rule, packs/therapy): each "always therapy" code
  (timed and supervised modalities, therapeutic procedures, evaluations, the SLP codes
  92507-92610) carries exactly one of GP/GO/GN, else CO-4 (CR 10176);
  `therapy/discipline-specific-code`: 97161-97164 GP only, 97165-97168 GO only,
  92521-92524/92597/92607 GN only (CR 10176); `therapy/not-by-slp`: 97110, 97112, 97150,
  97530 never with GN (NCCI XI.H.2);
- `eight-minute-rule` (Medicare, or packs that opt in): a discipline's timed units of a
  day above what its timed minutes support (8-22 minutes = 1 unit, 23-37 = 2, ...;
  under 8 = 0) are denied CO-151; minutes come from each line's `minutes`, else from
  `documentation.therapy.minutes` (`timed-minutes`: neither says, review);
- `evaluation-once-per-episode`: 97161-97163 (and OT 97165-97167) are one unit, once per
  episode; `reevaluation-units`: 97164/97168 at most one unit a date;
  `one-evaluation-per-day`: a discipline's evaluation and re-evaluation on one date;
- `plan-of-care-certification` (within 30 days of the first treatment),
  `plan-of-care-recertification` (at least every 90 days), `progress-report` (at least
  every 10 treatment days): review, documentation; Medicare, or packs that opt in.

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
    Record(
        {
            "discipline": Text(("PT", "OT", "SLP")),
            "plan_of_care": Record(
                {
                    "start": Date(),  # first treatment day of the episode (evaluation counts)
                    "end": Date(),  # end of the plan's duration, if shorter than 90 days
                    "certified": Date(),  # physician/NPP signature of the initial certification
                    "recertified": ListOf(Date()),
                }
            ),
            "progress_reports": ListOf(Date()),
            "treatment_days": ListOf(Date()),
            "evaluations": ListOf(Date()),  # evaluations already billed in this episode
            "minutes": ListOf(
                Record(
                    {"code": Text(), "date": Date(), "minutes": Number(0)},
                    required=("code", "minutes"),
                )
            ),
        }
    ),
    "Outpatient therapy episode: discipline, plan-of-care dates (start, end, certification, "
    "recertifications), progress-report dates, treatment days, earlier evaluations, and "
    "minutes per timed code and date.",
)


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
    findings = rules.check_minutes(claim, context.facts.get("therapy", {}), context)
    findings.extend(rules.check_evaluations(claim, therapy or {}))
    findings.extend(rules.check_plan_of_care(claim, therapy, context))
    return findings

"""Outpatient therapy rules in Python: the 8-minute rule, evaluations and re-evaluations,
plan-of-care certification and recertification, progress reports.

Sources: MCPM 100-04 ch.5 section 20.2 (8-minute rule; PAYER_RULES.md T4); Medicare
Benefit Policy Manual ch.15 section 220.1.3 (certification within 30 days, T5), 42 CFR
424.24(c)(4) (recertification at least every 90 days, T6), section 220.3.D (progress
report at least once every 10 treatment days, T7); NCCI Policy Manual 2025 ch. XI
section V #21 (evaluations once per episode, re-evaluations one unit per date of
service, T8) and section P #1 (one evaluation or re-evaluation per discipline per date).

Scope: the 8-minute rule and the plan-of-care rules are Medicare Part B rules; they apply
to the `medicare` pack and to packs that opt in (`cleanclaim.plugins.scope`). A
commercial plan that pays by the CPT per-code rule is not judged by them (audit 2026-12,
probes acme_8x8.json, acme_plugins.json).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from cleanclaim.engine.hookspecs import (
    Claim,
    ClaimContext,
    Finding,
    RuleInfo,
    ServiceLine,
    finding,
)
from cleanclaim.plugins import scope

# The therapy-codes library pack (packs/therapy-codes/codes.policy) holds the same sets
# for the language; a test keeps the two in step.
# Timed (15-minute) codes: the constant-attendance modalities 97032-97036, therapeutic
# procedures 97110-97140, 97129/97130, 97530-97542, tests and orthotic/prosthetic
# training 97750-97763 (MCPM 100-04 ch.5 section 20.2; CMS CR 10176 list).
TIMED = frozenset(
    {
        "97032",
        "97033",
        "97034",
        "97035",
        "97036",
        "97110",
        "97112",
        "97113",
        "97116",
        "97124",
        "97129",
        "97130",
        "97140",
        "97530",
        "97533",
        "97535",
        "97537",
        "97542",
        "97750",
        "97755",
        "97760",
        "97761",
        "97763",
    }
)
# Supervised (untimed) modalities; 97014 is billed to Medicare as G0283.
SUPERVISED_MODALITIES = frozenset(
    {"97012", "97014", "97016", "97018", "97022", "97024", "97026", "97028", "97039", "G0283"}
)
SLP_CODES = frozenset(
    {
        "92507",
        "92508",
        "92521",
        "92522",
        "92523",
        "92524",
        "92526",
        "92597",
        "92607",
        "92608",
        "92609",
        "92610",
    }
)
PT_EVALUATIONS = frozenset({"97161", "97162", "97163"})
OT_EVALUATIONS = frozenset({"97165", "97166", "97167"})
EVALUATIONS = PT_EVALUATIONS | OT_EVALUATIONS
REEVALUATIONS = frozenset({"97164", "97168"})
UNTIMED = EVALUATIONS | REEVALUATIONS | {"97150"}
# "Always therapy" (CR 10176): billed only under a therapy plan of care, with GP/GO/GN.
# 97129/97130 are "sometimes therapy" [K]: their minutes count, the list leaves them out.
ALWAYS_THERAPY = (TIMED - {"97129", "97130"}) | UNTIMED | SLP_CODES | SUPERVISED_MODALITIES
# Evaluation families: a discipline's evaluations and its re-evaluation (NCCI XI.P.1).
PT_FAMILY = PT_EVALUATIONS | {"97164"}
OT_FAMILY = OT_EVALUATIONS | {"97168"}
DISCIPLINES = ("GP", "GO", "GN")

CERTIFY_WITHIN_DAYS = 30
RECERTIFY_EVERY_DAYS = 90
PROGRESS_EVERY_TREATMENT_DAYS = 10

T4 = (
    "MCPM 100-04 ch.5 section 20.2 (8-minute rule, timed minutes per discipline); PAYER_RULES.md T4"
)
V21 = "NCCI Policy Manual 2025 ch. XI section V #21; PAYER_RULES.md T8"
P1 = "NCCI Policy Manual 2025 ch. XI section P #1"
RULES = (
    RuleInfo(
        "eight-minute-rule",
        "Timed units above what a discipline's timed minutes of the day support",
        T4,
        "coding",
    ),
    RuleInfo(
        "eight-minute-distribution",
        "A timed code billed more units than its own minutes can earn",
        T4 + "; units go to the codes with the most minutes",
        "coding",
    ),
    RuleInfo(
        "timed-minutes", "Minutes of a timed therapy code not documented", T4, "documentation"
    ),
    RuleInfo(
        "evaluation-once-per-episode",
        "Therapy evaluation billed more than once in an episode",
        V21,
        "coding",
    ),
    RuleInfo("reevaluation-units", "Therapy re-evaluation above one unit on a date", V21, "coding"),
    RuleInfo(
        "one-evaluation-per-day",
        "A discipline's evaluation and re-evaluation on the same date",
        P1,
        "coding",
    ),
    RuleInfo(
        "plan-of-care-certification",
        "Plan of care not certified within 30 days of the first treatment",
        "Medicare Benefit Policy Manual ch.15 section 220.1.3; PAYER_RULES.md T5",
        "documentation",
    ),
    RuleInfo(
        "plan-of-care-recertification",
        "Plan of care not recertified within 90 days",
        "42 CFR 424.24(c)(4); MBPM ch.15 section 220.1.3; PAYER_RULES.md T6",
        "documentation",
    ),
    RuleInfo(
        "progress-report",
        "No progress report within 10 treatment days",
        "Medicare Benefit Policy Manual ch.15 section 220.3.D; PAYER_RULES.md T7",
        "documentation",
    ),
)
_REFERENCE = {r.id: r.reference for r in RULES}
# The Medicare-only rules and the opt-in names that bring each to another pack.
MEDICARE_ONLY = {
    "eight-minute-rule": ("therapy/eight-minute-rule",),
    "eight-minute-distribution": ("therapy/eight-minute-distribution", "therapy/eight-minute-rule"),
    "timed-minutes": ("therapy/timed-minutes", "therapy/eight-minute-rule"),
    "plan-of-care-certification": ("therapy/plan-of-care-certification",),
    "plan-of-care-recertification": ("therapy/plan-of-care-recertification",),
    "progress-report": ("therapy/progress-report",),
}


def in_scope(claim: Claim, context: ClaimContext, rule: str) -> bool:
    """Whether the plugin rule `rule` applies to this claim's payer."""
    names = MEDICARE_ONLY.get(rule)
    return names is None or any(scope.applies(claim, context, n, scope.MEDICARE) for n in names)


def discipline_of(line: ServiceLine) -> str:
    """The line's discipline modifier (GP, GO, GN), or "" when it has none."""
    return next((m for m in line.modifiers if m in DISCIPLINES), "")


def units_for_minutes(minutes: float) -> int:
    """Units the 8-minute rule allows for a day's total timed minutes (CMS table):
    under 8 minutes none; 8-22 one; 23-37 two; 38-52 three; and so on, 15 minutes a unit."""
    if minutes < 8:
        return 0
    return int((minutes - 8) // 15) + 1


def _fmt(n: float) -> str:
    return f"{n:g}"


# ---- derived facts ----------------------------------------------------------------------


def derive_minutes(claim: Claim, context: ClaimContext) -> dict[str, Any]:
    """Timed minutes per date of service and discipline. Each discipline bills under its
    own plan of care, so its timed minutes are totalled apart (MCPM 100-04 ch.5 section
    20.2; audit 2026-12 FD14). Minutes come from each line's `minutes`, else from
    `documentation.therapy.minutes` (the minutes of that code on that date); a line left
    empty is filled from the documentation when it is the only one of its code that day.
    Returns {"timed": {(date, discipline): {"minutes": total or None, "units": billed,
    "missing": [codes without minutes], "first_line": line number,
    "codes": {code: (minutes or None, units, first line)}}}}."""
    therapy = context.documentation.get("therapy") or {}
    documented: dict[tuple[str, dt.date | None], float] = {}
    for entry in therapy.get("minutes", ()):
        if "code" in entry and "minutes" in entry:
            key = (str(entry["code"]).upper(), entry.get("date"))
            documented[key] = documented.get(key, 0) + entry["minutes"]
    groups: dict[tuple[dt.date, str], dict[str, list[ServiceLine]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for line in claim.lines:
        if line.code in TIMED:
            groups[(line.service_date, discipline_of(line))][line.code].append(line)
    timed: dict[tuple[dt.date, str], dict[str, Any]] = {}
    for (day, discipline), by_code in groups.items():
        total: float = 0
        missing: list[str] = []
        units: float = 0
        codes: dict[str, tuple[float | None, float, int]] = {}
        for code, lines in by_code.items():
            code_units = sum(ln.units or 0 for ln in lines)
            units += code_units
            first = min(ln.line for ln in lines)
            if all(ln.minutes is not None for ln in lines):
                code_minutes = sum(ln.minutes or 0 for ln in lines)
                total += code_minutes
                codes[code] = (code_minutes, code_units, first)
                continue
            doc = documented.get((code, day), documented.get((code, None)))
            if doc is None:
                missing.append(code)
                codes[code] = (None, code_units, first)
                continue
            total += doc
            codes[code] = (doc, code_units, first)
            if len(lines) == 1:
                lines[0].minutes = doc  # every pack now sees the documented minutes
        timed[(day, discipline)] = {
            "minutes": None if missing else total,
            "units": units,
            "missing": missing,
            "first_line": min(ln.line for ls in by_code.values() for ln in ls),
            "codes": codes,
        }
    return {"timed": timed}


# ---- checks -----------------------------------------------------------------------------


def check_minutes(
    claim: Claim, facts: Mapping[str, Any], context: ClaimContext | None = None
) -> list[Finding]:
    context = context or ClaimContext(claim)
    out = []
    timed = sorted(facts.get("timed", {}).items())
    if timed and in_scope(claim, context, "timed-minutes"):
        for (day, discipline), day_facts in timed:
            for code in day_facts["missing"]:
                line = min(
                    ln.line
                    for ln in claim.lines
                    if ln.code == code
                    and ln.service_date == day
                    and discipline_of(ln) == discipline
                )
                out.append(
                    finding(
                        "timed-minutes",
                        f"minutes of timed code {code} on {day} are not documented (the line's "
                        "`minutes` or documentation.therapy.minutes): the 8-minute rule cannot "
                        "be checked",
                        severity="review",
                        carc="16",
                        rarc=["N443"],
                        root_cause="documentation",
                        line=line,
                        reference=_REFERENCE["timed-minutes"],
                    )
                )
    if not timed or not in_scope(claim, context, "eight-minute-rule"):
        return out
    distribution = in_scope(claim, context, "eight-minute-distribution")
    for (day, discipline), day_facts in timed:
        minutes = day_facts["minutes"]
        if minutes is None:
            continue
        supported = units_for_minutes(minutes)
        if day_facts["units"] <= supported and distribution:
            out.extend(_distribution(day, day_facts))
        if day_facts["units"] > supported:
            apart = (
                f" ({discipline} minutes, counted apart from the other disciplines)"
                if discipline
                else ""
            )
            out.append(
                finding(
                    "eight-minute-rule",
                    f"timed therapy on {day}: {_fmt(minutes)} minutes support {supported} "
                    f"unit{'s' if supported != 1 else ''} under the 8-minute rule; "
                    f"{_fmt(day_facts['units'])} billed{apart}",
                    severity="deny",
                    carc="151",
                    root_cause="coding",
                    line=day_facts["first_line"],
                    reference=_REFERENCE["eight-minute-rule"],
                )
            )
    return out


def _distribution(day: dt.date, day_facts: Mapping[str, Any]) -> list[Finding]:
    """The units of the day, once the total is right, go to the codes by their minutes:
    each code first earns a unit for every full 15 minutes, and the units left over go to
    the codes with the most minutes left (MCPM 100-04 ch.5 section 20.2: "bill one unit
    for the service performed for the most minutes"). So no code can earn more units than
    ceil(its minutes / 15): billing more moves another code's minutes onto it."""
    out = []
    for code, (minutes, units, line) in sorted(day_facts.get("codes", {}).items()):
        if minutes is None:
            continue
        most = math.ceil(minutes / 15)
        if units > most:
            out.append(
                finding(
                    "eight-minute-distribution",
                    f"{code} on {day}: {_fmt(minutes)} minutes earn at most {most} "
                    f"unit{'s' if most != 1 else ''} of it, {_fmt(units)} billed: the day's "
                    "units go to the codes by their own minutes (the most minutes first), not "
                    "all to one code",
                    severity="deny",
                    carc="151",
                    root_cause="coding",
                    line=line,
                    reference=_REFERENCE["eight-minute-distribution"],
                )
            )
    return out


def check_evaluations(claim: Claim, therapy: Mapping[str, Any]) -> list[Finding]:
    """An evaluation is one unit, once per episode (per discipline): a second evaluation
    on the claim, or one after an evaluation the documentation records, is denied
    (NCCI XI.V.21). A re-evaluation is at most one unit on a date (XI.V.21), and a
    discipline reports one evaluation or re-evaluation on a date (XI.P.1): a re-evaluation
    the same day as that discipline's evaluation is denied."""
    out = []
    earlier: list[dt.date] = list(therapy.get("evaluations", ()))
    start = (therapy.get("plan_of_care") or {}).get("start")
    seen: dict[frozenset[str], ServiceLine] = {}
    by_day: dict[tuple[frozenset[str], dt.date], ServiceLine] = {}
    reevaluation_units: dict[tuple[str, dt.date], float] = defaultdict(float)
    for line in sorted(claim.lines, key=lambda ln: (ln.service_date, ln.line)):
        if line.code in REEVALUATIONS:
            reevaluation_units[(line.code, line.service_date)] += line.units or 0
            if reevaluation_units[(line.code, line.service_date)] > 1:
                out.append(
                    finding(
                        "reevaluation-units",
                        f"{line.code} is reported with at most one unit on a date of service; "
                        f"{_fmt(reevaluation_units[(line.code, line.service_date)])} billed for "
                        f"{line.service_date}",
                        severity="deny",
                        carc="151",
                        rarc=["N362"],
                        root_cause="coding",
                        line=line.line,
                        reference=_REFERENCE["reevaluation-units"],
                    )
                )
        if line.code in PT_FAMILY | OT_FAMILY:
            family_of_day = PT_FAMILY if line.code in PT_FAMILY else OT_FAMILY
            first_today = by_day.setdefault((family_of_day, line.service_date), line)
            if (
                first_today is not line
                and REEVALUATIONS & {line.code, first_today.code}
                and first_today.code != line.code
            ):
                out.append(
                    finding(
                        "one-evaluation-per-day",
                        f"{line.code}: a "
                        f"{'physical' if family_of_day is PT_FAMILY else 'occupational'}"
                        f" therapist reports one evaluation or re-evaluation on a date; line "
                        f"{first_today.line} already bills {first_today.code} for "
                        f"{line.service_date}",
                        severity="deny",
                        carc="151",
                        rarc=["N640"],
                        root_cause="coding",
                        line=line.line,
                        reference=_REFERENCE["one-evaluation-per-day"],
                    )
                )
        if line.code not in EVALUATIONS:
            continue
        family = PT_EVALUATIONS if line.code in PT_EVALUATIONS else OT_EVALUATIONS
        reason = None
        if (line.units or 0) > 1:
            reason = f"{_fmt(line.units or 0)} units billed; an evaluation is one unit"
        elif family in seen:
            first = seen[family]
            reason = (
                f"line {first.line} already bills evaluation {first.code} ({first.service_date})"
            )
        else:
            before = [d for d in earlier if d < line.service_date and (start is None or d >= start)]
            if before:
                reason = f"the documentation records an evaluation on {max(before)}"
        seen.setdefault(family, line)
        if reason:
            out.append(
                finding(
                    "evaluation-once-per-episode",
                    f"{line.code} is reported once per episode of care: {reason}",
                    severity="deny",
                    carc="151",
                    rarc=["N640"],
                    root_cause="coding",
                    line=line.line,
                    reference=_REFERENCE["evaluation-once-per-episode"],
                )
            )
    return out


def check_plan_of_care(
    claim: Claim, therapy: Mapping[str, Any] | None, context: ClaimContext | None = None
) -> list[Finding]:
    """Certification within 30 days of the first treatment, recertification at least
    every 90 days, a progress report at least every 10 treatment days. An evaluation
    establishes the plan and is not held to it: a claim of evaluations alone is not
    checked (the evaluation day still counts as a treatment day)."""
    context = context or ClaimContext(claim)
    certify, recertify, progress = (
        in_scope(claim, context, r)
        for r in ("plan-of-care-certification", "plan-of-care-recertification", "progress-report")
    )
    lines = [ln for ln in claim.lines if ln.code in ALWAYS_THERAPY and ln.code not in EVALUATIONS]
    if not lines or not (certify or recertify or progress):
        return []
    therapy = therapy or {}
    plan = therapy.get("plan_of_care") or {}
    start: dt.date | None = plan.get("start")
    certified: dt.date | None = plan.get("certified")
    out = []
    if not certify:
        pass
    elif start is None or certified is None:
        missing = " and ".join(
            w
            for w, v in (
                ("the first treatment day (plan_of_care.start)", start),
                ("the certification date (plan_of_care.certified)", certified),
            )
            if v is None
        )
        out.append(
            finding(
                "plan-of-care-certification",
                f"therapy without a certified plan of care: {missing} not documented "
                "(documentation.therapy)",
                severity="review",
                carc="50",
                rarc=["M141"],
                root_cause="documentation",
                reference=_REFERENCE["plan-of-care-certification"],
            )
        )
    elif (certified - start).days > CERTIFY_WITHIN_DAYS:
        out.append(
            finding(
                "plan-of-care-certification",
                f"plan of care certified on {certified}, {(certified - start).days} days after the "
                f"first treatment on {start} (due within {CERTIFY_WITHIN_DAYS} days)",
                severity="review",
                carc="50",
                rarc=["N238"],
                root_cause="documentation",
                reference=_REFERENCE["plan-of-care-certification"],
            )
        )
    if start is None:
        return out
    first_lines: dict[dt.date, int] = {}
    for ln in lines:
        first_lines[ln.service_date] = min(first_lines.get(ln.service_date, ln.line), ln.line)
    if recertify:
        out.extend(_recertification(start, plan, first_lines))
    if progress:
        out.extend(_progress_reports(start, therapy, first_lines))
    return out


def _recertification(
    start: dt.date, plan: Mapping[str, Any], first_lines: Mapping[dt.date, int]
) -> list[Finding]:
    out = []
    recertified = sorted(plan.get("recertified", ()))
    end: dt.date | None = plan.get("end")
    for day, line in sorted(first_lines.items()):
        recerts = [r for r in recertified if r <= day]
        began = recerts[-1] if recerts else start
        due = began + dt.timedelta(days=RECERTIFY_EVERY_DAYS)
        if not recerts and end is not None and end < due:
            due = end  # the certified plan is shorter than 90 days
        if day > due:
            since = (
                f"the last recertification on {began}"
                if recerts
                else f"the first treatment on {start}"
            )
            out.append(
                finding(
                    "plan-of-care-recertification",
                    f"service on {day} is {(day - began).days} days after {since}; the plan of "
                    f"care needed recertification by {due} (at least every "
                    f"{RECERTIFY_EVERY_DAYS} days)",
                    severity="review",
                    carc="50",
                    rarc=["N238"],
                    root_cause="documentation",
                    line=line,
                    reference=_REFERENCE["plan-of-care-recertification"],
                )
            )
    return out


def _progress_reports(
    start: dt.date, therapy: Mapping[str, Any], first_lines: Mapping[dt.date, int]
) -> list[Finding]:
    out = []
    reports = sorted(therapy.get("progress_reports", ()))
    days = sorted({start, *therapy.get("treatment_days", ()), *first_lines})
    days = [d for d in days if d >= start]
    for day, line in sorted(first_lines.items()):
        previous = [r for r in reports if r < day]
        since = previous[-1] if previous else None
        # The reporting period runs from the day after the last report (or from the first
        # treatment day) up to this day; a report dated this day closes it.
        count = sum(1 for d in days if (since is None or d > since) and d <= day)
        if count > PROGRESS_EVERY_TREATMENT_DAYS:
            after = (
                f"the progress report of {since}" if since else f"the first treatment on {start}"
            )
            out.append(
                finding(
                    "progress-report",
                    f"service on {day} is treatment day {count} since {after} with no progress "
                    f"report (due at least every {PROGRESS_EVERY_TREATMENT_DAYS} treatment days)",
                    severity="review",
                    carc="50",
                    rarc=["N393"],
                    root_cause="documentation",
                    line=line,
                    reference=_REFERENCE["progress-report"],
                )
            )
    return out

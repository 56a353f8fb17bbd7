"""The denial report: every adjustment of every remittance classified, summed the ways a
revenue-cycle manager asks, joined with our own pre-submission decisions, and turned into
a worklist per owner.

Definitions (docs/denials.md):
- A *denial* is an adjustment whose class is `denial` (adjustments.csv); contractual,
  patient-responsibility, coordination-of-benefits and correction adjustments are
  reported as adjusted amounts, never as denials; `unclassified` ones are listed apart.
- A claim is *damaged* when the remittance could not be read as sent (engine/formats/
  x835.py): it is listed with its problems and left out of every figure and rate.
- A reversal (CLP02 = 22) is a correction of an earlier payment: its adjustments are
  corrections, not denials.
- *Denial rate*: claims with at least one denial over the claims whose every adjustment
  is classified or that hold a denial (`claims_unknown` says how many were left out).
  *Clean-claim rate*: claims sent first (CLP09 not 7 or 8), processed (CLP02 1-3, 19-21)
  and paid without any denial or unclassified adjustment, over the same claims.
- With decisions: each denial is *predicted* when the checker had a finding (deny,
  reject or review) on the same line (or on the claim) with the same CARC or root cause
  (from the history store, which keeps no findings: any denial of that line), else
  *missed*; each deny/reject finding on a line the payer paid without a denial or an
  unclassified adjustment is *over-flagged*; denials of claims the decisions do not hold
  are *not checked*.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from cleanclaim.dsl.codesets.adjustment import rarc as rarc_code
from cleanclaim.engine.denials.decisions import DENYING, PREDICTING, Checked, CheckedClaim
from cleanclaim.engine.denials.mapping import AdjustmentMap, Classification, load_mapping
from cleanclaim.engine.formats.x835_records import (
    Adjustment,
    ClaimPayment,
    RemittanceFile,
    ServicePayment,
)

__all__ = ["REPORT_VERSION", "AdjustmentFact", "build_report", "classify_claim"]

REPORT_VERSION: Final = "cleanclaim-denials/1"
_ZERO: Final = Decimal(0)
_PROCESSED: Final = frozenset({"1", "2", "3", "19", "20", "21"})
_RESENT: Final = frozenset({"7", "8"})
_REVERSAL: Final = Classification(
    "correction",
    None,
    None,
    "none",
    "reversal of an earlier payment",
    "match it to the claim it reverses",
    None,
    None,
    None,
)
BREAKDOWNS: Final = (
    "root_cause",
    "owner",
    "payer",
    "carc",
    "rarc",
    "procedure",
    "rendering_provider",
    "month",
)
TOP_REASONS: Final = 10


@dataclass(frozen=True, slots=True)
class AdjustmentFact:
    """One CAS adjustment with what it means."""

    claim: ClaimPayment
    service: ServicePayment | None  # None: a claim-level adjustment
    adjustment: Adjustment
    classification: Classification

    @property
    def line(self) -> int | None:
        return self.service.line_number() if self.service is not None else None

    def month(self) -> str:
        day = (
            self.service.service_date
            if self.service and self.service.service_date
            else self.claim.first_date() or self.claim.payment_date
        )
        return day[:7] if day else "unknown"


def classify_claim(claim: ClaimPayment, mapping: AdjustmentMap) -> list[AdjustmentFact]:
    """Every adjustment of the claim, claim-level first, each with its class."""
    facts: list[AdjustmentFact] = []
    reversal = claim.status == "22"
    remarks = tuple(claim.remarks)
    for adj in claim.adjustments:
        facts.append(
            AdjustmentFact(
                claim,
                None,
                adj,
                _REVERSAL if reversal else mapping.classify(adj.group, adj.carc, remarks),
            )
        )
    for service in claim.services:
        sent = (*service.remarks, *remarks)
        for adj in service.adjustments:
            facts.append(
                AdjustmentFact(
                    claim,
                    service,
                    adj,
                    _REVERSAL if reversal else mapping.classify(adj.group, adj.carc, sent),
                )
            )
    return facts


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


class _Bucket:
    __slots__ = ("amount", "claims", "count")

    def __init__(self) -> None:
        self.count = 0
        self.amount = _ZERO
        self.claims: set[int] = set()

    def add(self, fact: AdjustmentFact) -> None:
        self.count += 1
        self.amount += fact.adjustment.amount
        self.claims.add(id(fact.claim))

    def json(self, **key: Any) -> dict[str, Any]:
        return {
            **key,
            "count": self.count,
            "claims": len(self.claims),
            "amount": _money(self.amount),
        }


def _rows(buckets: dict[Any, _Bucket], name: str) -> list[dict[str, Any]]:
    ordered = sorted(buckets.items(), key=lambda kv: (-kv[1].amount, -kv[1].count, str(kv[0])))
    return [bucket.json(**{name: key}) for key, bucket in ordered]


def _keys(fact: AdjustmentFact) -> dict[str, list[str]]:
    claim, cls = fact.claim, fact.classification
    return {
        "root_cause": [cls.root_cause or "unclassified"],
        "owner": [cls.owner or "unclassified"],
        "payer": [(claim.payer.name if claim.payer and claim.payer.name else "unknown")],
        "carc": [f"{fact.adjustment.group}-{fact.adjustment.carc}"],
        "rarc": [cls.rarc or "none"],
        "procedure": [(fact.service.code or "unknown") if fact.service else "(claim)"],
        "rendering_provider": [claim.rendering_npi or "unknown"],
        "month": [fact.month()],
    }


def reason_words(fact: AdjustmentFact) -> str:
    """The reason in plain words: our label, the remark that decided it, or why it is not
    classified."""
    cls = fact.classification
    code = f"{fact.adjustment.group}-{fact.adjustment.carc}"
    if cls.category == "unclassified":
        return f"not classified: {cls.why}"
    text = f"{cls.label} ({code}"
    if cls.rarc:
        found = rarc_code(cls.rarc)
        text += f", {cls.rarc}" + (f": {found.label}" if found and found.label else "")
    return text + ")"


def build_report(
    files: Sequence[RemittanceFile],
    mapping: AdjustmentMap | None = None,
    checked: Checked | None = None,
    *,
    show_ids: bool = False,
) -> dict[str, Any]:
    """The report as JSON-ready data (REPORT_VERSION; docs/denials.md "JSON")."""
    mapping = mapping or load_mapping()
    return _Builder(mapping, checked, show_ids).build(files)


class _Builder:
    def __init__(self, mapping: AdjustmentMap, checked: Checked | None, show_ids: bool) -> None:
        self.mapping = mapping
        self.checked = checked
        self.show_ids = show_ids

    def build(self, files: Sequence[RemittanceFile]) -> dict[str, Any]:
        claims = [c for f in files for c in f.claims()]
        good = [c for c in claims if not c.damaged]
        facts_by_claim = {id(c): classify_claim(c, self.mapping) for c in good}
        facts = [fact for c in good for fact in facts_by_claim[id(c)]]
        denials = [f for f in facts if f.classification.is_denial]
        unclassified = [f for f in facts if f.classification.category == "unclassified"]
        by: dict[str, dict[str, _Bucket]] = {name: defaultdict(_Bucket) for name in BREAKDOWNS}
        over_time: dict[tuple[str, str], _Bucket] = defaultdict(_Bucket)
        reasons: dict[tuple[str, str, str], _Bucket] = defaultdict(_Bucket)
        for fact in denials:
            for name, keys in _keys(fact).items():
                for key in keys:
                    by[name][key].add(fact)
            cls = fact.classification
            over_time[(fact.month(), cls.root_cause or "")].add(fact)
            adj = fact.adjustment
            reasons[(f"{adj.group}-{adj.carc}", cls.rarc or "", cls.root_cause or "")].add(fact)
        adjusted: dict[str, _Bucket] = defaultdict(_Bucket)
        for fact in facts:
            adjusted[fact.classification.category].add(fact)
        verdicts = self.join(good, facts_by_claim) if self.checked is not None else None
        return {
            "report": REPORT_VERSION,
            "files": [self.file_json(f) for f in files],
            "totals": self.totals(good, claims, facts_by_claim, denials, unclassified),
            "adjusted": _rows(adjusted, "category"),
            "denials_by": {name: _rows(by[name], name) for name in BREAKDOWNS},
            "denials_over_time": [
                bucket.json(month=month, root_cause=cause)
                for (month, cause), bucket in sorted(over_time.items())
            ],
            "top_reasons": [
                {
                    **bucket.json(code=code, rarc=remark or None, root_cause=cause),
                    "label": next(
                        f.classification.label
                        for f in denials
                        if f"{f.adjustment.group}-{f.adjustment.carc}" == code
                        and (f.classification.rarc or "") == remark
                    ),
                }
                for (code, remark, cause), bucket in sorted(
                    reasons.items(), key=lambda kv: (-kv[1].count, -kv[1].amount, kv[0])
                )[:TOP_REASONS]
            ],
            "unclassified": _rows(self.group_unclassified(unclassified), "reason"),
            "checker": verdicts.json() if verdicts else None,
            "damaged": [self.damaged_json(c) for c in claims if c.damaged],
            "worklist": self.worklist(facts, claims, verdicts),
        }

    # ----------------------------------------------------------------- parts

    def file_json(self, found: RemittanceFile) -> dict[str, Any]:
        return {
            "file": found.source,
            "transactions": [
                {
                    "transaction": r.transaction,
                    "segment": r.segment,
                    "payer": r.payer.name if r.payer else None,
                    "payment": _money(r.payment) if r.payment is not None else None,
                    "payment_date": r.payment_date,
                    "trace": r.trace,
                    "claims": len(r.claims),
                    "provider_adjustments": [
                        {"reason": p.reason, "amount": _money(p.amount), "where": p.where}
                        for p in r.provider_adjustments
                    ],
                    "problems": [{"where": p.where, "message": p.message} for p in r.problems],
                }
                for r in found.remittances
            ],
            "problems": [{"where": p.where, "message": p.message} for p in found.problems],
        }

    def totals(
        self,
        good: list[ClaimPayment],
        claims: list[ClaimPayment],
        facts_by_claim: dict[int, list[AdjustmentFact]],
        denials: list[AdjustmentFact],
        unclassified: list[AdjustmentFact],
    ) -> dict[str, Any]:
        denied_claims = {id(f.claim) for f in denials}
        unknown_claims = {id(f.claim) for f in unclassified} - denied_claims
        counted = [c for c in good if c.status != "22" and id(c) not in unknown_claims]
        known = [c for c in counted if c.status != "25"]
        clean = [
            c
            for c in known
            if c.status in _PROCESSED and c.frequency not in _RESENT and id(c) not in denied_claims
        ]
        denied_lines = {(id(f.claim), f.line) for f in denials if f.service is not None}
        return {
            "claims": len(claims),
            "claims_read": len(good),
            "claims_damaged": len(claims) - len(good),
            "service_lines": sum(len(c.services) for c in good),
            "charged": _money(sum((c.charge or _ZERO for c in good), _ZERO)),
            "paid": _money(sum((c.paid or _ZERO for c in good), _ZERO)),
            "denied_amount": _money(sum((f.adjustment.amount for f in denials), _ZERO)),
            "denials": len(denials),
            "denied_claims": len(denied_claims),
            "denied_lines": len(denied_lines),
            "unclassified_amount": _money(sum((f.adjustment.amount for f in unclassified), _ZERO)),
            "claims_unknown": len(unknown_claims),
            "reversals": sum(1 for c in good if c.status == "22"),
            "denial_rate": _rate(sum(1 for c in known if id(c) in denied_claims), len(known)),
            "clean_claim_rate": _rate(len(clean), len(known)),
            "rate_claims": len(known),
        }

    def group_unclassified(self, facts: list[AdjustmentFact]) -> dict[str, _Bucket]:
        buckets: dict[str, _Bucket] = defaultdict(_Bucket)
        for fact in facts:
            buckets[fact.classification.why or "not classified"].add(fact)
        return buckets

    def damaged_json(self, claim: ClaimPayment) -> dict[str, Any]:
        out: dict[str, Any] = {
            "claim_id": claim.claim_id,
            "transaction": claim.transaction,
            "segment": claim.segment,
            "problems": [{"where": p.where, "message": p.message} for p in claim.all_problems()],
        }
        if self.show_ids:
            out["patient_id"], out["patient_name"] = claim.patient_id, claim.patient_name
        return out

    # ----------------------------------------------------------------- the checker

    def join(
        self, good: list[ClaimPayment], facts_by_claim: dict[int, list[AdjustmentFact]]
    ) -> _Verdicts:
        assert self.checked is not None
        verdicts = _Verdicts(self.checked)
        for claim in good:
            facts = facts_by_claim[id(claim)]
            checked = self.checked.claims.get(claim.claim_id or "")
            for fact in facts:
                if fact.classification.is_denial:
                    verdicts.denial(fact, checked)
            if checked is not None:
                verdicts.over_flagged(claim, facts, checked)
        return verdicts

    # ----------------------------------------------------------------- worklist

    def worklist(
        self, facts: list[AdjustmentFact], claims: list[ClaimPayment], verdicts: _Verdicts | None
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for fact in facts:
            cls = fact.classification
            if cls.category not in ("denial", "unclassified"):
                continue
            claim, adj = fact.claim, fact.adjustment
            row: dict[str, Any] = {
                # Unclassified adjustments go to billing to read: triage, not a root cause.
                "owner": cls.owner or "billing",
                "claim_id": claim.claim_id,
                "line": fact.line,
                "procedure": fact.service.code if fact.service else None,
                "payer": claim.payer.name if claim.payer else None,
                "payer_claim_number": claim.payer_claim_number,
                "code": f"{adj.group}-{adj.carc}",
                "rarc": [*(fact.service.remarks if fact.service else ()), *claim.remarks],
                "amount": _money(adj.amount),
                "category": cls.category,
                "root_cause": cls.root_cause or "unclassified",
                "reason": reason_words(fact),
                "next_step": cls.next_step
                or "read the remark codes and classify it by hand; add a row to the mapping",
                "route": cls.route or "none",
                "checker": verdicts.of(fact) if verdicts else None,
                "where": adj.where,
            }
            rows.append(self.ids(row, claim))
        for claim in claims:
            if claim.damaged:
                problem = claim.all_problems()[0]
                row = {
                    "owner": "billing",
                    "claim_id": claim.claim_id,
                    "line": None,
                    "procedure": None,
                    "payer": claim.payer.name if claim.payer else None,
                    "payer_claim_number": claim.payer_claim_number,
                    "code": None,
                    "rarc": [],
                    "amount": None,
                    "category": "damaged",
                    "root_cause": "unclassified",
                    "reason": f"the remittance could not be read: {problem.message}",
                    "next_step": "ask the payer for a corrected 835 or read the paper remittance",
                    "route": "none",
                    "checker": None,
                    "where": problem.where,
                }
                rows.append(self.ids(row, claim))
        rows.sort(
            key=lambda r: (
                r["owner"],
                -Decimal(r["amount"] or 0),
                r["claim_id"] or "",
                r["line"] or 0,
            )
        )
        return rows

    def ids(self, row: dict[str, Any], claim: ClaimPayment) -> dict[str, Any]:
        if self.show_ids:
            row["patient_id"], row["patient_name"] = claim.patient_id, claim.patient_name
        return row


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class _Verdicts:
    """Predicted / missed / over-flagged / not checked, with amounts and rules."""

    def __init__(self, checked: Checked) -> None:
        self.checked = checked
        self.totals: dict[str, _Bucket] = defaultdict(_Bucket)
        self.by_fact: dict[int, str] = {}
        self.rules: dict[str, dict[str, _Bucket]] = defaultdict(lambda: defaultdict(_Bucket))
        self.missed: dict[tuple[str, str, str], _Bucket] = defaultdict(_Bucket)
        self.over: list[dict[str, Any]] = []
        self.over_amount = _ZERO

    def of(self, fact: AdjustmentFact) -> str | None:
        return self.by_fact.get(id(fact))

    def denial(self, fact: AdjustmentFact, checked: CheckedClaim | None) -> None:
        if checked is None:
            verdict, rules = "not_checked", []
        else:
            findings = checked.on_line(fact.line, PREDICTING)
            if self.checked.basis == "findings":
                cls = fact.classification
                findings = [
                    f
                    for f in findings
                    if f.carc == fact.adjustment.carc
                    or (f.root_cause is not None and f.root_cause == cls.root_cause)
                ]
            rules = sorted({f.rule for f in findings})
            verdict = "predicted" if findings else "missed"
        self.by_fact[id(fact)] = verdict
        self.totals[verdict].add(fact)
        for rule in rules:
            self.rules[rule]["predicted"].add(fact)
        if verdict == "missed":
            cls, adj = fact.classification, fact.adjustment
            self.missed[(f"{adj.group}-{adj.carc}", cls.rarc or "", cls.root_cause or "")].add(fact)

    def over_flagged(
        self, claim: ClaimPayment, facts: list[AdjustmentFact], checked: CheckedClaim
    ) -> None:
        troubled = {
            f.line for f in facts if f.classification.category in ("denial", "unclassified")
        }
        if claim.status == "22":
            return
        if claim.status == "4":  # denied whole, whatever its adjustments say
            troubled.add(None)
        lines = {s.line_number(): s for s in claim.services}
        flagged: dict[int | None, list[str]] = {}
        paid: dict[int | None, Decimal] = {}
        for finding in checked.findings:
            if finding.severity not in DENYING:
                continue
            if finding.line is None or not lines:
                if troubled:
                    continue
                amount, line = claim.paid or _ZERO, None
            else:
                service = lines.get(finding.line)
                if service is None or finding.line in troubled or None in troubled:
                    continue  # not on this remittance, or the payer did deny it
                amount, line = service.paid or _ZERO, finding.line
            rules = flagged.setdefault(line, [])
            if finding.rule in rules:
                continue
            rules.append(finding.rule)
            paid[line] = amount
            bucket = self.rules[finding.rule]["over_flagged"]
            bucket.count += 1
            bucket.amount += amount
            bucket.claims.add(id(claim))
        if None in flagged:  # the whole claim was flagged: its lines are not counted apart
            flagged = {None: sorted({r for rules in flagged.values() for r in rules})}
            paid = {None: claim.paid or _ZERO}
        for line, rules in flagged.items():
            self.over_amount += paid[line]
            self.over.append(
                {
                    "claim_id": claim.claim_id,
                    "line": line,
                    "rules": sorted(rules),
                    "paid": _money(paid[line]),
                }
            )

    def json(self) -> dict[str, Any]:
        split = {
            name: self.totals[name].json()
            if name in self.totals
            else {"count": 0, "claims": 0, "amount": "0.00"}
            for name in ("predicted", "missed", "not_checked")
        }
        split["over_flagged"] = {
            "count": len(self.over),
            "claims": len({o["claim_id"] for o in self.over}),
            "amount": _money(self.over_amount),
        }
        return {
            "decisions": self.checked.source,
            "basis": self.checked.basis,
            "problems": self.checked.problems,
            **split,
            "rules": [
                {
                    "rule": rule,
                    **{
                        name: kinds[name].json()
                        if name in kinds
                        else {"count": 0, "claims": 0, "amount": "0.00"}
                        for name in ("predicted", "over_flagged")
                    },
                }
                for rule, kinds in sorted(self.rules.items())
            ],
            "missed_reasons": [
                bucket.json(code=code, rarc=remark or None, root_cause=cause)
                for (code, remark, cause), bucket in sorted(
                    self.missed.items(), key=lambda kv: (-kv[1].count, -kv[1].amount, kv[0])
                )
            ],
            "over_flagged_lines": self.over,
        }

"""What an X12 835 (005010X221A1) remittance says, as read by engine/formats/x835.py.

Amounts are `Decimal` exactly as the payer wrote them (never floats); dates are ISO
`YYYY-MM-DD` strings. `where` fields locate a record in its file the way every reader of
this project does: `CAS segment 17, element CAS03`. Patient names and ids are kept only on
`ClaimPayment.patient_*` (for `--show-ids`); nothing else here holds them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from cleanclaim.engine.inputs import ReadProblem

__all__ = [
    "Adjustment",
    "ClaimPayment",
    "Party",
    "ProviderAdjustment",
    "Remittance",
    "RemittanceFile",
    "ServicePayment",
]

# CLP02 claim status codes (005010X221A1 loop 2100): our own short labels.
CLAIM_STATUS: dict[str, str] = {
    "1": "processed as primary",
    "2": "processed as secondary",
    "3": "processed as tertiary",
    "4": "denied",
    "19": "processed as primary, forwarded to another payer",
    "20": "processed as secondary, forwarded to another payer",
    "21": "processed as tertiary, forwarded to another payer",
    "22": "reversal of a previous payment",
    "23": "not our claim, forwarded to another payer",
    "25": "predetermination only, no payment",
}


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One CAS triple: group code, CARC, amount and (optional) quantity."""

    group: str
    carc: str
    amount: Decimal
    quantity: Decimal | None
    where: str  # the triple's reason element, e.g. "CAS segment 17, element CAS05"


@dataclass(frozen=True, slots=True)
class Party:
    """A payer (N1*PR, loop 1000A) or payee (N1*PE, loop 1000B)."""

    name: str | None
    id_qualifier: str | None  # N103 (XX = NPI, FI = tax id, ...), or REF*2U for a payer
    id: str | None


@dataclass(slots=True)
class ServicePayment:
    """Loop 2110: how one service line was paid."""

    segment: int  # the SVC's segment number
    position: int  # 1-based among the claim's SVCs
    qualifier: str | None  # SVC01-1: HC (CPT/HCPCS), AD, ER, HP, IV, N4, NU, WK
    code: str | None
    modifiers: list[str] = field(default_factory=list)
    charge: Decimal | None = None
    paid: Decimal | None = None
    revenue_code: str | None = None  # SVC04
    units: Decimal | None = None  # SVC05; the TR3 says 1 when absent
    billed_code: str | None = None  # SVC06-2: the code billed, when the payer changed it
    service_date: str | None = None  # DTM*472, or DTM*150
    service_end_date: str | None = None  # DTM*151
    line_control: str | None = None  # REF*6R: the 837's line item control number
    allowed: Decimal | None = None  # AMT*B6
    adjustments: list[Adjustment] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)  # LQ*HE (RARC)
    problems: list[ReadProblem] = field(default_factory=list)

    def line_number(self) -> int:
        """Our claim line this service answers: REF*6R when it is a line number (what
        cleanclaim's 837 writes), else the SVC's position in the claim."""
        ref = self.line_control
        if ref is not None and ref.isdigit() and 0 < int(ref) < 10_000:
            return int(ref)
        return self.position


@dataclass(slots=True)
class ClaimPayment:
    """Loop 2100: how one claim was adjudicated (one CLP and what follows it)."""

    segment: int  # the CLP's segment number
    transaction: str  # ST02 of its transaction set
    payer: Party | None
    payee: Party | None
    payment_date: str | None  # BPR16 of its transaction
    claim_id: str | None = None  # CLP01: the patient control number = our claim id
    status: str | None = None  # CLP02
    charge: Decimal | None = None  # CLP03
    paid: Decimal | None = None  # CLP04
    patient_responsibility: Decimal | None = None  # CLP05
    filing_indicator: str | None = None  # CLP06
    payer_claim_number: str | None = None  # CLP07
    frequency: str | None = None  # CLP09
    patient_id: str | None = None  # NM1*QC NM109: patient data, shown only on request
    patient_name: str | None = None  # NM1*QC NM103, NM104: patient data
    rendering_npi: str | None = None  # NM1*82 NM109 when NM108 is XX
    statement_start: str | None = None  # DTM*232
    statement_end: str | None = None  # DTM*233
    received_date: str | None = None  # DTM*050
    adjustments: list[Adjustment] = field(default_factory=list)  # claim-level CAS
    remarks: list[str] = field(default_factory=list)  # MOA / MIA remark codes
    services: list[ServicePayment] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)

    @property
    def damaged(self) -> bool:
        """True when the claim, one of its services, or its transaction's envelope could
        not be read as sent: its amounts are not to be trusted."""
        return bool(self.problems) or any(s.problems for s in self.services)

    def all_problems(self) -> list[ReadProblem]:
        return [*self.problems, *(p for s in self.services for p in s.problems)]

    def first_date(self) -> str | None:
        """The earliest date of service the remittance gives for the claim."""
        dates = [s.service_date for s in self.services if s.service_date]
        if self.statement_start:
            dates.append(self.statement_start)
        return min(dates) if dates else None


@dataclass(frozen=True, slots=True)
class ProviderAdjustment:
    """One PLB reason/amount pair: money moved outside any claim (interest, recoupment,
    forward balance, ...). A positive amount reduces the payment."""

    provider_id: str | None  # PLB01
    fiscal_period_end: str | None  # PLB02
    reason: str  # PLB03-1 (e.g. L6 interest, WO overpayment recovery, CV capital)
    reference: str | None  # PLB03-2
    amount: Decimal
    where: str


@dataclass(slots=True)
class Remittance:
    """One 835 transaction set (ST/SE): one payment (BPR) and the claims it pays."""

    segment: int  # the ST's segment number
    transaction: str  # ST02
    payment: Decimal | None = None  # BPR02
    payment_segment: int | None = None  # the BPR's segment number
    credit_debit: str | None = None  # BPR03: C credit, D debit
    method: str | None = None  # BPR04: ACH, CHK, NON, BOP, FWT
    payment_date: str | None = None  # BPR16
    trace: str | None = None  # TRN02: check or EFT trace number
    payer: Party | None = None
    payee: Party | None = None
    claims: list[ClaimPayment] = field(default_factory=list)
    provider_adjustments: list[ProviderAdjustment] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)


@dataclass(slots=True)
class RemittanceFile:
    """Everything one 835 file holds; `problems` are those of no transaction set (an ST
    that is not an 835, a CLP outside any transaction set, a file cut between claims)."""

    source: str
    remittances: list[Remittance] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)

    def claims(self) -> Iterator[ClaimPayment]:
        for remittance in self.remittances:
            yield from remittance.claims

    def service_count(self) -> int:
        return sum(len(c.services) for c in self.claims())

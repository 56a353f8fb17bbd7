"""The state of the 837P loops being read (2000A-C, 2010, 2300, 2320, 2400) and the code
lists of the elements read (005010X222A1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

from cleanclaim.engine.inputs import ReadProblem

_FREQUENCIES: Final = {"1": "original", "7": "replacement", "8": "void"}
# HI qualifiers of diagnoses: ICD-10-CM (ABK principal, ABF other) and ICD-9-CM (BK, BF),
# kept as they are: the engine's diagnosis rule rejects ICD-9 codes. Other HI qualifiers
# (BG condition codes, BP/BO anesthesia procedures) are not diagnoses and are skipped.
_DIAGNOSIS_QUALIFIERS: Final = frozenset({"ABK", "ABF", "BK", "BF"})
_UNIT_QUALIFIERS: Final = frozenset({"UN", "MJ"})
_SEXES: Final = frozenset({"F", "M", "U"})
# SBR01, payer responsibility sequence number code (005010X222A1 2000B and 2320): P, S, T
# give the order of benefits; A-H (fourth to eleventh payer) and U (unknown) are valid and
# give none (claim format v1 names three orders).
_ORDERS: Final = {"P": "primary", "S": "secondary", "T": "tertiary"}
_OTHER_SEQUENCES: Final = frozenset("ABCDEFGHU")
# SBR09, claim filing indicator code (005010X222A1 code list) -> coverage type. Codes with
# no claim-format type (TRICARE CH, VA, other federal OF, FEP FI, Title V TV, disability DS,
# other non-federal 11, mutually defined ZZ) give none. 16 "HMO Medicare Risk" is a Medicare
# Advantage plan; auto medical (no-fault) is counted as liability: both are non-group
# health plan insurance primary to Medicare (MSP Manual, Pub. 100-05 ch.1 s.10).
_FILING_TYPES: Final = {
    "MA": "medicare",
    "MB": "medicare",
    "16": "medicare_advantage",
    "MC": "medicaid",
    "WC": "workers_compensation",
    "LM": "liability",
    "AM": "liability",
    "CI": "commercial",
    "BL": "commercial",
    "HM": "commercial",
    "12": "commercial",
    "13": "commercial",
    "14": "commercial",
    "15": "commercial",
    "17": "commercial",
}
_FILING_CODES: Final = frozenset({*_FILING_TYPES, "11", "CH", "DS", "FI", "OF", "TV", "VA", "ZZ"})


# --------------------------------------------------------------------------- loop state


@dataclass(slots=True)
class _Billing:
    """Loop 2000A (HL 20) with 2010AA."""

    hl: int
    npi: str | None = None
    taxonomy: str | None = None
    state: str | None = None  # 2010AA N4-02
    problems: list[ReadProblem] = field(default_factory=list)


@dataclass(slots=True)
class _Person:
    """Loop 2000B/2010BA (subscriber) or 2000C/2010CA (patient)."""

    hl: int
    id: str | None = None
    birth_date: str | None = None
    sex: str | None = None
    death_date: str | None = None  # PAT05 D8 / PAT06 of loop 2000B or 2000C
    sbr: _Sbr | None = None  # loop 2000B SBR (the subscriber only)
    problems: list[ReadProblem] = field(default_factory=list)


@dataclass(slots=True)
class _Sbr:
    """An SBR segment (2000B: the payer the claim is sent to; 2320: another payer) with
    the payer 2330B names for it."""

    order: str | None  # SBR01 as an order of benefits
    type: str | None  # SBR09 as a coverage type
    payer: _Payer | None = None  # 2330B NM1*PR (2320 only)


@dataclass(slots=True)
class _Payer:
    """Loop 2010BB."""

    id: str | None
    name: str | None


@dataclass(slots=True)
class _Line:
    """Loop 2400."""

    lx: int
    number: int | None
    sub: str = "line"  # "line" while in 2400 itself, "sub" in 2410/2420/2430/2440
    has_sv1: bool = False
    code: str | None = None
    modifiers: list[str] = field(default_factory=list)
    charge: str | None = None
    unit_qualifier: str | None = None
    units: int | float | None = None
    place_of_service: str | None = None
    pointers: list[int] = field(default_factory=list)
    has_date: bool = False
    service_date: str | None = None
    service_end_date: str | None = None
    authorizations: list[str] = field(default_factory=list)
    clia_number: str | None = None  # 2400 REF*X4
    has_ordering: bool = False  # loop 2420E NM1*DK
    ordering_npi: str | None = None


@dataclass(slots=True)
class _Claim:
    """Loop 2300 and what it inherits from the hierarchical loops above it."""

    clm: int
    transaction: str
    st: int | None  # segment number of the claim's ST
    billing: _Billing | None
    subscriber: _Person | None
    payer: _Payer | None
    patient: _Person | None
    problems: list[ReadProblem] = field(default_factory=list)
    claim_id: str | None = None
    place_of_service: str | None = None
    frequency: str | None = None
    replaces: str | None = None
    diagnoses: list[str] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    referring_npi: str | None = None
    has_referring: bool = False
    rendering_npi: str | None = None
    rendering_taxonomy: str | None = None
    has_rendering: bool = False
    facility_state: str | None = None  # 2310C N4-02
    clia_number: str | None = None  # 2300 REF*X4
    other_payers: list[_Sbr] = field(default_factory=list)  # loops 2320/2330B
    sub: str = "claim"  # "claim", "2310A", "2310B", "2310", "2320"
    lines: list[_Line] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Out:
    """One result of the walk: a claim, a truncated claim, or a problem of no claim."""

    kind: Literal["claim", "partial", "lost", "file"]  # "lost": a CLM that was not read
    data: dict[str, Any] | None
    problems: tuple[ReadProblem, ...]
    claim_id: str | None = None
    origin: dict[str, Any] | None = None

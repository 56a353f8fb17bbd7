"""X12 835 5010 (005010X221A1) reader: every claim payment of a remittance file.

`read_x835(text, source)` returns a `RemittanceFile` (engine/formats/x835_records.py):
each 835 transaction set (ST/SE) of each functional group and interchange as a
`Remittance` (BPR payment, TRN trace, N1*PR payer and N1*PE payee, PLB provider-level
adjustments) with its `ClaimPayment`s (CLP, loop 2100) and their `ServicePayment`s (SVC,
loop 2110), in file order.

The tokenizer, the ISA delimiter handling and the envelope checks (SE/GE/IEA counts and
control numbers, missing trailers) are the 837P reader's (engine/formats/x12/).

Decisions (see tests/test_x835.py):
- Every CLP gives exactly one `ClaimPayment`, readable or not. Damage is a located
  `ReadProblem` ("CAS segment 17, element CAS03: ...") on the claim (or its service); the
  claim keeps what could be read, and the other claims are read normally. A claim with a
  problem is `damaged`: the report never counts its amounts as a confident denial.
- Envelope damage (a wrong SE01/GE01/IEA01 count, a control number that does not match,
  a missing SE/GE/IEA) rejects the whole transaction set under X12 (999/TA1): its problem
  is put on every claim inside, and on the `Remittance` when it has no claim.
- CAS: CAS01 must be a group code (CO, CR, OA, PI, PR); up to six reason/amount/quantity
  triples; a triple with a reason and no amount, an amount and no reason, or a value that
  is not a number is a problem of that element; the valid triples of the CAS are kept.
- Balancing (TR3 section 1.10.2.1): for a service SVC02 - SVC03 = its CAS amounts; for a
  claim CLP03 - CLP04 = its claim-level plus service-level CAS amounts; for a transaction
  BPR02 = the CLP04s less the PLB amounts. An unbalanced claim or service is a problem of
  it; an unbalanced transaction is a problem of the `Remittance` only.
- Composite separators are tolerated as in the 837P reader (a file that declares ':' and
  uses '>').
- Patient names and ids (NM1*QC) are kept on the claim for `--show-ids`; no message of
  this module contains them, and this module logs nothing.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final

from cleanclaim.dsl.codesets.adjustment import GROUPS
from cleanclaim.engine.formats.x12.envelope import _EnvelopeCheck
from cleanclaim.engine.formats.x12.syntax import (
    _NUMBER,
    Tokens,
    _ccyymmdd,
    _components,
    _get,
    _where,
)
from cleanclaim.engine.formats.x835_records import (
    CLAIM_STATUS,
    Adjustment,
    ClaimPayment,
    Party,
    ProviderAdjustment,
    Remittance,
    RemittanceFile,
    ServicePayment,
)
from cleanclaim.engine.inputs import InputFileError, ReadProblem

__all__ = ["read_x835", "read_x835_file"]

_ZERO: Final = Decimal(0)
_MAX_CAS_ELEMENTS: Final = 19  # CAS01 and six triples
_MOA_REMARKS: Final = (3, 4, 5, 6, 7)  # MOA03-MOA07
_MIA_REMARKS: Final = (5, 20, 21, 22, 23)  # MIA05, MIA20-MIA23


def read_x835_file(path: Path) -> RemittanceFile:
    """Read an 835 file; bytes that are not UTF-8 become U+FFFD and each segment holding
    one is a located problem (the file is not refused whole)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputFileError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    try:
        return read_x835(raw.decode("utf-8"), str(path))
    except UnicodeDecodeError:
        return read_x835(raw.decode("utf-8", errors="replace"), str(path), undecodable=True)


def read_x835(text: str, source: str, *, undecodable: bool = False) -> RemittanceFile:
    """Every remittance of an 835 file. Raises `InputFileError` only for a file that is
    not X12 at all or that holds no 835 transaction set; all other damage is located on
    the claim, transaction or file it belongs to."""
    walker = _Walker(text, source, undecodable)
    walker.walk()
    if not walker.file.remittances:
        reasons = "; ".join(f"{p.where}: {p.message}" for p in walker.file.problems)
        raise InputFileError(
            source,
            (reasons + "; " if reasons else "") + "no 835 005010X221 transaction set in the file",
        )
    return walker.file


def _decimal(value: str) -> Decimal | None:
    if not _NUMBER.match(value):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        return None


class _Walker(Tokens):
    """Walks the envelopes and loops of an 835, one segment at a time."""

    def __init__(self, text: str, source: str, undecodable: bool) -> None:
        super().__init__(text, source)
        self.undecodable = undecodable
        check = _EnvelopeCheck()
        for no, els in self.segments():
            check.segment(no, els)
        self.envelope_problems = check.end()
        self.file = RemittanceFile(source)
        self.isa: int | None = None
        self.gs: int | None = None
        self.gs_version = ""
        self.remittance: Remittance | None = None  # the open 835 transaction set
        self.other_st: int | None = None  # an open transaction set that is not an 835
        self.part = ""  # "1000A", "1000B" or "" in the header
        self.claim: ClaimPayment | None = None

    # ----------------------------------------------------------------- walk

    def walk(self) -> None:
        last_no, last_id = 0, ""
        for no, els in self.segments():
            self.segment(no, els)
            if self.undecodable and any("\ufffd" in e for e in els):
                self.problem(
                    ReadProblem(
                        _where(els[0], no), "holds bytes that are not UTF-8 text (read as U+FFFD)"
                    )
                )
            last_no, last_id = no, els[0]
        self.end(last_no, last_id)

    def end(self, last_no: int, last_id: str) -> None:
        missing = [
            name
            for name, open_no in (
                ("SE", self.remittance.segment if self.remittance else self.other_st),
                ("GE", self.gs),
                ("IEA", self.isa),
            )
            if open_no is not None
        ]
        if missing or self.cut is not None:
            at = (
                f"it ends in the middle of segment {last_no + 1} ({self.cut})"
                if self.cut is not None
                else f"it ends after segment {last_no} ({last_id})"
            )
            trailer = f" with no {', '.join(missing)}" if missing else ""
            where = _where(last_id or "ISA", last_no)
            if self.claim is not None:
                self.claim.problems.append(
                    ReadProblem(
                        where,
                        f"the file is truncated: {at}{trailer}, inside the claim begun at"
                        f" CLP segment {self.claim.segment}; the claim may be incomplete",
                    )
                )
            else:
                self.file.problems.append(
                    ReadProblem(
                        where, f"the file is truncated: {at}{trailer}; what came after is missing"
                    )
                )
        self.close_st()

    def problem(self, problem: ReadProblem) -> None:
        """A problem of whatever is open: the service, the claim, the transaction, the file."""
        claim = self.claim
        if claim is not None:
            (claim.services[-1].problems if claim.services else claim.problems).append(problem)
        elif self.remittance is not None:
            self.remittance.problems.append(problem)
        else:
            self.file.problems.append(problem)

    def segment(self, no: int, els: list[str]) -> None:
        sid = els[0]
        if sid in ("ISA", "IEA", "GS", "GE", "ST"):
            self.close_st(no, sid)
            if sid == "ISA":
                self.isa = no
            elif sid == "IEA":
                self.isa = None
            elif sid == "GS":
                self.gs, self.gs_version = no, _get(els, 8)
            elif sid == "GE":
                self.gs = None
            else:
                self.open_st(no, els)
        elif sid == "SE":
            self.close_st()
        elif self.remittance is None:
            if sid == "CLP":
                why = (
                    "it is in a transaction set that is not an 835 005010X221"
                    if self.other_st is not None
                    else "it is outside any transaction set"
                )
                self.file.problems.append(
                    ReadProblem(_where("CLP", no), f"claim payment not read: {why}")
                )
        elif sid == "CLP":
            self.close_claim()
            self.clp(no, els)
        elif sid == "LX":
            self.close_claim()
            self.part = ""
        elif sid == "PLB":
            self.close_claim()
            self.plb(no, els)
        elif self.claim is not None:
            self.in_claim(no, sid, els, self.claim)
        else:
            self.in_header(no, sid, els, self.remittance)

    # ----------------------------------------------------------------- envelopes

    def open_st(self, no: int, els: list[str]) -> None:
        kind, control = _get(els, 1), _get(els, 2)
        version = _get(els, 3) or self.gs_version
        if kind == "835" and version.startswith("005010X221"):
            self.remittance = Remittance(no, control)
            self.part = ""
        else:
            self.other_st = no
            self.file.problems.append(
                ReadProblem(
                    _where("ST", no),
                    f"transaction set {control or '(no ST02)'} is"
                    f" {kind or '?'} {version or '?'}, not an 835 005010X221; it was not read",
                )
            )

    def close_st(self, no: int | None = None, sid: str = "") -> None:
        """Close the open transaction set (at its SE, or at an envelope segment that comes
        before its SE: the envelope checks report that) and its last claim."""
        self.close_claim()
        remittance = self.remittance
        self.remittance, self.other_st = None, None
        if remittance is None:
            return
        self.balance_transaction(remittance)
        found = self.envelope_problems.get(remittance.segment, [])
        for claim in remittance.claims:
            claim.problems.extend(found)
        if not remittance.claims:
            remittance.problems.extend(found)
        self.file.remittances.append(remittance)

    # ----------------------------------------------------------------- header (table 1)

    def in_header(self, no: int, sid: str, els: list[str], remittance: Remittance) -> None:
        if sid == "BPR":
            problems = remittance.problems
            remittance.payment = self.amount(els, "BPR", no, 2, problems, "total payment")
            remittance.payment_segment = no
            remittance.credit_debit = _get(els, 3) or None
            remittance.method = _get(els, 4) or None
            remittance.payment_date = self.date(els, "BPR", no, 16, problems)
        elif sid == "TRN":
            remittance.trace = _get(els, 2) or None
        elif sid == "N1":
            entity = _get(els, 1)
            party = Party(_get(els, 2) or None, _get(els, 3) or None, _get(els, 4) or None)
            if entity == "PR":
                self.part, remittance.payer = "1000A", party
            elif entity == "PE":
                self.part, remittance.payee = "1000B", party
            else:
                self.part = ""
        elif sid == "REF" and self.part == "1000A" and _get(els, 1) == "2U":
            payer = remittance.payer
            if payer is not None and payer.id is None:
                remittance.payer = Party(payer.name, "2U", _get(els, 2) or None)

    def plb(self, no: int, els: list[str]) -> None:
        remittance = self.remittance
        assert remittance is not None
        provider = _get(els, 1) or None
        period = self.date(els, "PLB", no, 2, remittance.problems)
        for pos in range(3, 15, 2):
            reason_ref, amount = _get(els, pos), _get(els, pos + 1)
            if not reason_ref and not amount:
                continue
            parts = _components(reason_ref, self.component)
            value = self.amount(els, "PLB", no, pos + 1, remittance.problems, "adjustment amount")
            if not parts[0]:
                remittance.problems.append(
                    ReadProblem(_where("PLB", no, pos, 1), "adjustment reason code is missing")
                )
            elif value is not None:
                remittance.provider_adjustments.append(
                    ProviderAdjustment(
                        provider,
                        period,
                        parts[0],
                        parts[1] if len(parts) > 1 else None,
                        value,
                        _where("PLB", no, pos),
                    )
                )

    # ----------------------------------------------------------------- claim (2100)

    def clp(self, no: int, els: list[str]) -> None:
        remittance = self.remittance
        assert remittance is not None
        claim = ClaimPayment(
            no, remittance.transaction, remittance.payer, remittance.payee, remittance.payment_date
        )
        self.claim = claim
        problems = claim.problems
        claim.claim_id = _get(els, 1) or None
        if claim.claim_id is None:
            problems.append(
                ReadProblem(
                    _where("CLP", no, 1), "patient control number (our claim id) is missing"
                )
            )
        status = _get(els, 2)
        if status in CLAIM_STATUS:
            claim.status = status
        else:
            problems.append(
                ReadProblem(
                    _where("CLP", no, 2),
                    f'claim status "{status}" is not a CLP02 code'
                    if status
                    else "claim status is missing",
                )
            )
        claim.charge = self.amount(els, "CLP", no, 3, problems, "total claim charge")
        claim.paid = self.amount(els, "CLP", no, 4, problems, "claim payment")
        if _get(els, 5):
            claim.patient_responsibility = self.amount(
                els, "CLP", no, 5, problems, "patient responsibility"
            )
        claim.filing_indicator = _get(els, 6) or None
        claim.payer_claim_number = _get(els, 7) or None
        claim.frequency = _get(els, 9) or None

    def in_claim(self, no: int, sid: str, els: list[str], claim: ClaimPayment) -> None:
        service = claim.services[-1] if claim.services else None
        if sid == "SVC":
            self.svc(no, els, claim)
        elif sid == "CAS":
            target = service.adjustments if service else claim.adjustments
            self.cas(no, els, target, service.problems if service else claim.problems)
        elif service is not None:
            self.in_service(no, sid, els, service)
        elif sid == "NM1":
            entity = _get(els, 1)
            if entity == "QC":
                claim.patient_id = _get(els, 9) or None
                name = " ".join(p for p in (_get(els, 4), _get(els, 3)) if p)
                claim.patient_name = name or None
            elif entity == "82" and _get(els, 8) == "XX":
                claim.rendering_npi = _get(els, 9) or None
        elif sid in ("MOA", "MIA"):
            for pos in _MOA_REMARKS if sid == "MOA" else _MIA_REMARKS:
                code = _get(els, pos)
                if code:
                    claim.remarks.append(code)
        elif sid == "DTM":
            qualifier = _get(els, 1)
            if qualifier in ("232", "233", "050"):
                value = self.date(els, "DTM", no, 2, claim.problems)
                if qualifier == "232":
                    claim.statement_start = value
                elif qualifier == "233":
                    claim.statement_end = value
                else:
                    claim.received_date = value

    def svc(self, no: int, els: list[str], claim: ClaimPayment) -> None:
        service = ServicePayment(no, len(claim.services) + 1, None, None)
        claim.services.append(service)
        problems = service.problems
        procedure = _components(_get(els, 1), self.component)
        service.qualifier = procedure[0].strip() or None
        service.code = procedure[1].strip() if len(procedure) > 1 and procedure[1] else None
        service.modifiers = [m.strip() for m in procedure[2:6] if m.strip()]
        if service.qualifier is None or service.code is None:
            problems.append(
                ReadProblem(
                    _where("SVC", no, 1, 1 if service.qualifier is None else 2),
                    "procedure "
                    + ("qualifier" if service.qualifier is None else "code")
                    + " is missing",
                )
            )
        service.charge = self.amount(els, "SVC", no, 2, problems, "line charge")
        service.paid = self.amount(els, "SVC", no, 3, problems, "line payment")
        service.revenue_code = _get(els, 4) or None
        service.units = (
            self.amount(els, "SVC", no, 5, problems, "units paid") if _get(els, 5) else Decimal(1)
        )
        billed = _components(_get(els, 6), self.component)
        if len(billed) > 1 and billed[1]:
            service.billed_code = billed[1].strip()

    def in_service(self, no: int, sid: str, els: list[str], service: ServicePayment) -> None:
        if sid == "DTM":
            qualifier = _get(els, 1)
            if qualifier in ("472", "150", "151"):
                value = self.date(els, "DTM", no, 2, service.problems)
                if qualifier == "151":
                    service.service_end_date = value
                else:
                    service.service_date = value
        elif sid == "REF" and _get(els, 1) == "6R":
            service.line_control = _get(els, 2) or None
        elif sid == "AMT" and _get(els, 1) == "B6":
            service.allowed = self.amount(els, "AMT", no, 2, service.problems, "allowed amount")
        elif sid == "LQ" and _get(els, 1) == "HE":
            code = _get(els, 2)
            if code:
                service.remarks.append(code)
            else:
                service.problems.append(ReadProblem(_where("LQ", no, 2), "remark code is missing"))

    def cas(
        self, no: int, els: list[str], into: list[Adjustment], problems: list[ReadProblem]
    ) -> None:
        group = _get(els, 1)
        if group not in GROUPS:
            problems.append(
                ReadProblem(
                    _where("CAS", no, 1),
                    f'group code "{group}" is not one of ' + ", ".join(GROUPS)
                    if group
                    else "group code is missing",
                )
            )
            return
        if len(els) > _MAX_CAS_ELEMENTS + 1 and any(e.strip() for e in els[20:]):
            problems.append(
                ReadProblem(
                    _where("CAS", no, 20), "a CAS holds at most six adjustments (19 elements)"
                )
            )
        found = 0
        size = len(els)
        for pos in range(2, min(size, _MAX_CAS_ELEMENTS + 1), 3):  # only the elements sent
            reason = els[pos].strip()
            amount = els[pos + 1].strip() if pos + 1 < size else ""
            quantity = els[pos + 2].strip() if pos + 2 < size else ""
            if not (reason or amount or quantity):
                continue
            found += 1
            if not reason:
                problems.append(
                    ReadProblem(_where("CAS", no, pos), "adjustment reason code (CARC) is missing")
                )
                continue
            value = self.amount(els, "CAS", no, pos + 1, problems, f"amount of CARC {reason}")
            count = (
                self.amount(els, "CAS", no, pos + 2, problems, "adjustment quantity")
                if quantity
                else None
            )
            if value is not None and (count is not None or not quantity):
                into.append(Adjustment(group, reason, value, count, _where("CAS", no, pos)))
        if not found:
            problems.append(
                ReadProblem(_where("CAS", no, 2), "the CAS has no adjustment (CAS02-CAS04)")
            )

    def close_claim(self) -> None:
        claim = self.claim
        if claim is None:
            return
        self.claim = None
        self.balance_claim(claim)
        if self.remittance is not None:
            self.remittance.claims.append(claim)

    # ----------------------------------------------------------------- balancing

    def balance_claim(self, claim: ClaimPayment) -> None:
        service_total = _ZERO
        for service in claim.services:
            adjusted = sum((a.amount for a in service.adjustments), _ZERO)
            service_total += adjusted
            if service.charge is not None and service.paid is not None and not service.problems:
                gap = service.charge - service.paid - adjusted
                if gap:
                    service.problems.append(
                        ReadProblem(
                            _where("SVC", service.segment, 3),
                            f"the service does not balance: charge {service.charge} - paid"
                            f" {service.paid} - adjustments {adjusted} = {gap}",
                        )
                    )
        if claim.charge is None or claim.paid is None or claim.damaged:
            return
        adjusted = sum((a.amount for a in claim.adjustments), _ZERO) + service_total
        gap = claim.charge - claim.paid - adjusted
        if gap:
            claim.problems.append(
                ReadProblem(
                    _where("CLP", claim.segment, 4),
                    f"the claim does not balance: charge {claim.charge} - paid {claim.paid}"
                    f" - adjustments {adjusted} = {gap}",
                )
            )

    def balance_transaction(self, remittance: Remittance) -> None:
        if remittance.payment is None or any(c.paid is None for c in remittance.claims):
            return
        paid = sum((c.paid for c in remittance.claims if c.paid is not None), _ZERO)
        provider = sum((p.amount for p in remittance.provider_adjustments), _ZERO)
        if paid - provider != remittance.payment:
            remittance.problems.append(
                ReadProblem(
                    _where("BPR", remittance.payment_segment or remittance.segment, 2),
                    f"the payment {remittance.payment} is not the claim payments"
                    f" {paid} less the provider adjustments {provider}",
                )
            )

    # ----------------------------------------------------------------- values

    def amount(
        self, els: list[str], sid: str, no: int, pos: int, problems: list[ReadProblem], what: str
    ) -> Decimal | None:
        value = _get(els, pos)
        if not value:
            problems.append(ReadProblem(_where(sid, no, pos), f"{what} is missing"))
            return None
        number = _decimal(value)
        if number is None:
            problems.append(
                ReadProblem(_where(sid, no, pos), f'{what} "{value[:20]}" is not a number')
            )
        return number

    def date(
        self, els: list[str], sid: str, no: int, pos: int, problems: list[ReadProblem]
    ) -> str | None:
        value = _get(els, pos)
        if not value:
            return None
        found = _ccyymmdd(value)
        if found is None:
            # Never quoted: a date of service is patient data.
            problems.append(
                ReadProblem(_where(sid, no, pos), "date is not a valid date (CCYYMMDD)")
            )
        return found

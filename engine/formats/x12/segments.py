"""The segments of a claim: loop 2300 (CLM, REF, HI, the 2310 providers, the 2320 other
payers) and its 2400 service lines (LX, SV1, DTP*472, REF, the 2420 providers)."""

from __future__ import annotations

from cleanclaim.engine.formats.x12.loops import (
    _DIAGNOSIS_QUALIFIERS,
    _FILING_CODES,
    _FILING_TYPES,
    _FREQUENCIES,
    _ORDERS,
    _OTHER_SEQUENCES,
    _UNIT_QUALIFIERS,
    _Billing,
    _Claim,
    _Line,
    _Payer,
    _Person,
    _Sbr,
)
from cleanclaim.engine.formats.x12.syntax import (
    _INTEGER,
    _ccyymmdd,
    _components,
    _get,
    _number,
    _state,
    _where,
)
from cleanclaim.engine.inputs import ReadProblem


class _ClaimSegments:
    """The 2300/2400 segment handlers of `_Walker` (a mixin: the walker holds the state)."""

    # set by _Walker (and Tokens)
    component: str
    level: str
    st: int | None
    st_control: str
    billing: _Billing | None
    subscriber: _Person | None
    payer: _Payer | None
    patient: _Person | None
    claim: _Claim | None

    @staticmethod
    def sbr(no: int, els: list[str], problems: list[ReadProblem]) -> _Sbr:
        """SBR01 (payer responsibility sequence) and SBR09 (claim filing indicator)."""
        sequence, filing = _get(els, 1), _get(els, 9)
        if sequence not in _ORDERS and sequence not in _OTHER_SEQUENCES:
            problems.append(
                ReadProblem(
                    _where("SBR", no, 1),
                    f'payer responsibility sequence "{sequence}" is not P, S, T, A-H or U'
                    if sequence and len(sequence) <= 2
                    else "payer responsibility sequence (SBR01) is missing"
                    if not sequence
                    else "payer responsibility sequence is not P, S, T, A-H or U",
                )
            )
        if filing and filing not in _FILING_CODES:
            problems.append(
                ReadProblem(
                    _where("SBR", no, 9),
                    f'claim filing indicator "{filing}" is not an 837P code'
                    if len(filing) <= 2
                    else "claim filing indicator is not an 837P code",
                )
            )
        return _Sbr(_ORDERS.get(sequence), _FILING_TYPES.get(filing))

    def clm(self, no: int, els: list[str]) -> None:
        level = self.level
        claim = _Claim(
            no,
            self.st_control,
            self.st,
            self.billing,
            self.subscriber,
            self.payer,
            self.patient if level == "23" else None,
        )
        self.claim = claim
        problems = claim.problems
        if level not in ("22", "23") or self.subscriber is None:
            problems.append(
                ReadProblem(
                    _where("CLM", no),
                    "the claim is not inside a subscriber (HL*22) or patient (HL*23) loop",
                )
            )
        claim.claim_id = _get(els, 1) or None
        if claim.claim_id is None:
            problems.append(
                ReadProblem(_where("CLM", no, 1), "patient control number (claim id) is missing")
            )
        charge = _get(els, 2)
        if not charge:
            problems.append(ReadProblem(_where("CLM", no, 2), "total claim charge is missing"))
        elif _number(charge) is None:
            problems.append(
                ReadProblem(_where("CLM", no, 2), f'total claim charge "{charge}" is not a number')
            )
        location = _get(els, 5)
        if not location:
            problems.append(
                ReadProblem(
                    _where("CLM", no, 5),
                    "place of service / frequency composite (CLM05) is missing",
                )
            )
            return
        parts = _components(location, self.component)
        pos = parts[0].strip()
        if pos:
            claim.place_of_service = pos
        else:
            problems.append(
                ReadProblem(_where("CLM", no, 5, 1), "place of service code is missing")
            )
        code = parts[2].strip() if len(parts) > 2 else ""
        if code in _FREQUENCIES:
            claim.frequency = _FREQUENCIES[code]
        elif code:
            problems.append(
                ReadProblem(
                    _where("CLM", no, 5, 3),
                    f'claim frequency code "{code}" is not 1 (original), 7 (replacement)'
                    " or 8 (void)",
                )
            )
        else:
            problems.append(ReadProblem(_where("CLM", no, 5, 3), "claim frequency code is missing"))

    def in_claim(self, no: int, sid: str, els: list[str]) -> None:
        claim = self.claim
        assert claim is not None
        if sid == "NM1":
            if claim.sub in ("2320", "2330"):
                claim.sub = "2330"  # other subscriber / other payer names (2330A-G)
                other = claim.other_payers[-1] if claim.other_payers else None
                if _get(els, 1) == "PR" and other is not None and other.payer is None:
                    other.payer = _Payer(_get(els, 9) or None, _get(els, 3) or None)  # 2330B
                return
            entity = _get(els, 1)
            if entity == "DN" and not claim.has_referring:
                claim.sub, claim.has_referring = "2310A", True
                if _get(els, 8) == "XX":
                    claim.referring_npi = _get(els, 9) or None
            elif entity == "82" and not claim.has_rendering:
                claim.sub, claim.has_rendering = "2310B", True
                if _get(els, 8) == "XX":
                    claim.rendering_npi = _get(els, 9) or None
            elif entity == "77":
                claim.sub = "2310C"  # service facility location
            else:
                claim.sub = "2310"
        elif sid == "SBR":
            claim.sub = "2320"  # other subscriber information: another payer
            claim.other_payers.append(self.sbr(no, els, claim.problems))
        elif sid == "PRV":
            if claim.sub == "2310B" and _get(els, 1) == "PE":
                claim.rendering_taxonomy = _get(els, 3) or None
        elif sid == "N4":
            if claim.sub == "2310C":
                claim.facility_state = _state(no, els, claim.problems)
        elif claim.sub != "claim":
            return
        elif sid == "REF":
            qualifier, value = _get(els, 1), _get(els, 2)
            if qualifier == "F8":
                if value:
                    claim.replaces = value
                else:
                    claim.problems.append(
                        ReadProblem(
                            _where("REF", no, 2), "payer claim control number (F8) is empty"
                        )
                    )
            elif qualifier == "X4":
                if value:
                    claim.clia_number = value
                else:
                    claim.problems.append(
                        ReadProblem(_where("REF", no, 2), "CLIA number (X4) is empty")
                    )
            elif qualifier == "G1":
                if value:
                    claim.authorizations.append(value)
                else:
                    claim.problems.append(
                        ReadProblem(
                            _where("REF", no, 2), "prior authorization number (G1) is empty"
                        )
                    )
        elif sid == "HI":
            self.hi(no, els, claim)

    def hi(self, no: int, els: list[str], claim: _Claim) -> None:
        for pos in range(1, len(els)):
            value = els[pos].strip()
            if not value:
                continue
            parts = _components(value, self.component)
            qualifier = parts[0].strip()
            if qualifier not in _DIAGNOSIS_QUALIFIERS:
                if len(parts) < 2:
                    claim.problems.append(
                        ReadProblem(
                            _where("HI", no, pos),
                            f'"{value}" is not a composite qualifier{self.component}code',
                        )
                    )
                continue
            code = parts[1].strip() if len(parts) > 1 else ""
            if code:
                claim.diagnoses.append(code)
            else:
                claim.problems.append(
                    ReadProblem(_where("HI", no, pos, 2), f"{qualifier} diagnosis code is missing")
                )

    # ----------------------------------------------------------------- lines (2400)

    def lx(self, no: int, els: list[str]) -> None:
        claim = self.claim
        assert claim is not None
        value = _get(els, 1)
        number = int(value) if _INTEGER.match(value) else None
        if number is None:
            claim.problems.append(
                ReadProblem(
                    _where("LX", no, 1),
                    f'line number "{value}" is not a whole number'
                    if value
                    else "line number is missing",
                )
            )
        claim.lines.append(_Line(no, number))

    def in_line(self, no: int, sid: str, els: list[str]) -> None:
        claim = self.claim
        assert claim is not None
        line = claim.lines[-1]
        if sid == "SV1":
            if line.has_sv1:
                claim.problems.append(
                    ReadProblem(
                        _where("SV1", no),
                        f"a second SV1 in the line begun at LX segment {line.lx}"
                        " (is an LX missing?)",
                    )
                )
            else:
                self.sv1(no, els, line, claim.problems)
        elif sid == "DTP":
            if _get(els, 1) == "472" and not line.has_date:
                self.dtp472(no, els, line, claim.problems)
        elif sid in ("NM1", "LIN", "SVD", "LQ"):
            line.sub = "sub"  # 2420A-H, 2410, 2430, 2440
            if sid == "NM1" and _get(els, 1) == "DK" and not line.has_ordering:
                line.has_ordering = True  # 2420E ordering provider
                if _get(els, 8) == "XX":
                    line.ordering_npi = _get(els, 9) or None
        elif sid == "REF" and line.sub == "line" and _get(els, 1) == "G1":
            value = _get(els, 2)
            if value:
                line.authorizations.append(value)
            else:
                claim.problems.append(
                    ReadProblem(_where("REF", no, 2), "prior authorization number (G1) is empty")
                )
        elif sid == "REF" and line.sub == "line" and _get(els, 1) == "X4":
            # The line's laboratory when it is not the claim's (2400 REF*X4: the IG's
            # usage note asks for it when it differs from 2300 REF*X4).
            value = _get(els, 2)
            if value:
                line.clia_number = value
            else:
                claim.problems.append(
                    ReadProblem(_where("REF", no, 2), "CLIA number (X4) is empty")
                )

    def sv1(self, no: int, els: list[str], line: _Line, problems: list[ReadProblem]) -> None:
        line.has_sv1 = True
        service = _get(els, 1)
        if not service:
            problems.append(ReadProblem(_where("SV1", no, 1), "procedure code is missing"))
        else:
            parts = [p.strip() for p in _components(service, self.component)]
            if len(parts) < 2:
                problems.append(
                    ReadProblem(
                        _where("SV1", no, 1),
                        f'"{service}" is not a composite qualifier{self.component}code',
                    )
                )
            elif not parts[1]:
                problems.append(ReadProblem(_where("SV1", no, 1, 2), "procedure code is missing"))
            else:
                line.code = parts[1]
                line.modifiers = [m for m in parts[2:6] if m]
        charge = _get(els, 2)
        if not charge:
            problems.append(ReadProblem(_where("SV1", no, 2), "line charge is missing"))
        elif _number(charge) is None:
            problems.append(ReadProblem(_where("SV1", no, 2), f'charge "{charge}" is not a number'))
        else:
            line.charge = charge
        unit = _get(els, 3)
        if unit in _UNIT_QUALIFIERS:
            line.unit_qualifier = unit
        else:
            problems.append(
                ReadProblem(
                    _where("SV1", no, 3),
                    f'unit qualifier "{unit}" is not UN (units) or MJ (minutes)'
                    if unit
                    else "unit qualifier is missing",
                )
            )
        units = _get(els, 4)
        if not units:
            problems.append(ReadProblem(_where("SV1", no, 4), "units are missing"))
        else:
            line.units = _number(units)
            if line.units is None:
                problems.append(
                    ReadProblem(_where("SV1", no, 4), f'units "{units}" is not a number')
                )
        line.place_of_service = _get(els, 5) or None
        pointers = _get(els, 7)
        if pointers:
            for i, pointer in enumerate(_components(pointers, self.component), start=1):
                pointer = pointer.strip()
                if not pointer:
                    continue
                if _INTEGER.match(pointer):
                    line.pointers.append(int(pointer))
                else:
                    problems.append(
                        ReadProblem(
                            _where("SV1", no, 7, i),
                            f'diagnosis pointer "{pointer}" is not a whole number',
                        )
                    )

    def dtp472(self, no: int, els: list[str], line: _Line, problems: list[ReadProblem]) -> None:
        line.has_date = True
        fmt, value = _get(els, 2), _get(els, 3)
        if fmt == "D8":
            line.service_date = _ccyymmdd(value)
        elif fmt == "RD8":
            start, _, end = value.partition("-")
            line.service_date = _ccyymmdd(start)
            last = _ccyymmdd(end)
            if line.service_date is not None and (last is None or last < line.service_date):
                line.service_date = None
            line.service_end_date = last
        else:
            problems.append(
                ReadProblem(
                    _where("DTP", no, 2),
                    f'date format "{fmt}" is not D8 (CCYYMMDD) or RD8 (CCYYMMDD-CCYYMMDD)'
                    if fmt
                    else "date format is missing",
                )
            )
            return
        if line.service_date is None:
            problems.append(
                ReadProblem(
                    _where("DTP", no, 3),
                    f"service date is not a valid {'date range' if fmt == 'RD8' else 'date'}"
                    f" ({'CCYYMMDD-CCYYMMDD' if fmt == 'RD8' else 'CCYYMMDD'})",
                )
            )

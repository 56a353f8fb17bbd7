"""Claim building: a walked claim (loop 2300 with what it inherits) as claim format v1,
with its problems and origin; problems of no claim."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cleanclaim.engine.formats.x12.loops import (
    _Billing,
    _Claim,
    _Out,
    _Payer,
    _Person,
)
from cleanclaim.engine.formats.x12.syntax import (
    _get,
    _norm,
    _where,
)
from cleanclaim.engine.inputs import ReadProblem


class _ClaimBuilder:
    """The output side of `_Walker` (a mixin: the walker holds the state)."""

    # set by _Walker (and Tokens)
    source: str
    level: str
    payer_map: Mapping[str, str]
    _payer_names: dict[str, str] | None
    envelope_problems: dict[int, list[ReadProblem]]
    out: list[_Out]
    st: int | None
    st_control: str
    billing: _Billing | None
    subscriber: _Person | None
    patient: _Person | None
    claim: _Claim | None

    def file_problem(self, where: str, message: str) -> None:
        """A problem of the file: on the open claim if there is one, else on its own."""
        problem = ReadProblem(where, message)
        if self.claim is not None:
            self.claim.problems.append(problem)
            self.close_claim()
        else:
            self.out.append(_Out("file", None, (problem,), None, self.origin(None)))

    def close_claim(self) -> None:
        claim = self.claim
        if claim is None:
            return
        self.claim = None
        data = self.build(claim)
        self.out.append(
            _Out("claim", data, tuple(claim.problems), claim.claim_id, self.origin(claim))
        )

    def origin(self, claim: _Claim | None) -> dict[str, Any]:
        """Where a claim (or a problem of no claim) is in the input: decisions carry it."""
        if claim is None:
            return {"file": self.source, "format": "x12"}
        return {
            "file": self.source,
            "format": "x12",
            "transaction": claim.transaction,
            "segment": claim.clm,
        }

    def lost(self, no: int, els: list[str]) -> None:
        """A CLM outside an 837P transaction set: not read, but never dropped silently."""
        if self.st is not None:
            why = f"it is in transaction set {self.st_control}, which is not an 837P 005010X222"
        else:
            why = "it is outside any transaction set (no ST opens the envelope it is in)"
        claim_id = _get(els, 1) or None
        problem = ReadProblem(_where("CLM", no), f"the claim was not read: {why}")
        origin = {"file": self.source, "format": "x12", "transaction": None, "segment": no}
        self.out.append(_Out("lost", None, (problem,), claim_id, origin))

    def bad_text(self, no: int, sid: str) -> None:
        """A segment that held bytes that are not UTF-8: a problem of what it belongs to."""
        problem = ReadProblem(
            _where(sid, no),
            "holds bytes that are not UTF-8 text (read as U+FFFD); the file must be"
            " re-sent in its declared character set",
        )
        if self.claim is not None:
            self.claim.problems.append(problem)
        elif self.level == "23" and self.patient is not None:
            self.patient.problems.append(problem)
        elif self.level == "22" and self.subscriber is not None:
            self.subscriber.problems.append(problem)
        elif self.level == "20" and self.billing is not None:
            self.billing.problems.append(problem)
        else:
            self.file_problem(_where(sid, no), problem.message)

    def build(self, claim: _Claim) -> dict[str, Any]:
        """The claim as claim format v1, and its inherited and line problems."""
        problems = claim.problems
        inherited: list[ReadProblem] = []
        subscriber, patient = claim.subscriber, claim.patient
        if claim.billing is not None:
            inherited.extend(claim.billing.problems)
        for person in (subscriber, patient):
            if person is not None:
                inherited.extend(person.problems)
        payer = claim.payer
        if payer is None and subscriber is not None:
            inherited.append(
                ReadProblem(
                    _where("HL", subscriber.hl),
                    "the subscriber loop has no payer name (NM1*PR, loop 2010BB)",
                )
            )
        problems[:0] = inherited
        if claim.st is not None:
            problems.extend(self.envelope_problems.get(claim.st, ()))
        if not claim.lines:
            problems.append(
                ReadProblem(_where("CLM", claim.clm), "the claim has no service line (LX/SV1)")
            )
        for line in claim.lines:
            label = f"line {line.number}" if line.number is not None else "the line"
            if not line.has_sv1:
                problems.append(
                    ReadProblem(
                        _where("LX", line.lx),
                        f"{label} has no SV1 segment (professional service)",
                    )
                )
            if not line.has_date:
                problems.append(
                    ReadProblem(_where("LX", line.lx), f"{label} has no service date (DTP*472)")
                )

        person = patient or subscriber
        member_id = (patient.id if patient is not None else None) or (
            subscriber.id if subscriber is not None else None
        )
        billing = claim.billing
        billing_npi = billing.npi if billing is not None else None
        billing_taxonomy = billing.taxonomy if billing is not None else None
        if claim.has_rendering:
            rendering = {
                "npi": claim.rendering_npi,
                "taxonomy": claim.rendering_taxonomy,
                "specialty": None,
            }
        else:
            rendering = {"npi": billing_npi, "taxonomy": billing_taxonomy, "specialty": None}

        # An 837 prior authorization number (REF*G1) names no codes, dates or units: it is
        # the provider's statement that the services it is attached to are authorized. So
        # a claim-level REF*G1 (2300) lists the codes of all the claim's lines, from the
        # first to the last date of service; a line-level one (2400) that line's code and
        # dates. Units stay null: the 837 does not carry the authorized units.
        authorizations = self.authorizations(claim)
        lines: list[dict[str, Any]] = []
        for line in claim.lines:
            entry: dict[str, Any] = {
                "line": line.number,
                "code": line.code,
                "modifiers": line.modifiers,
                "units": line.units,
                "charge": line.charge,
                "service_date": line.service_date,
                "diagnosis_pointers": line.pointers,
                "minutes": line.units if line.unit_qualifier == "MJ" else None,
                "place_of_service": line.place_of_service or claim.place_of_service,
            }
            if line.service_end_date is not None:
                entry["service_end_date"] = line.service_end_date
            if line.clia_number is not None:
                entry["clia_number"] = line.clia_number
            lines.append(entry)
        return {
            "claim_id": claim.claim_id,
            "payer": self.payer_key(payer),
            "plan": None,
            "frequency": claim.frequency,
            "replaces": claim.replaces,
            "member": {
                "id": member_id,
                "birth_date": person.birth_date if person is not None else None,
                "sex": person.sex if person is not None else None,
                # PAT06, only when the file says so
                **(
                    {"date_of_death": person.death_date}
                    if person is not None and person.death_date
                    else {}
                ),
            },
            "billing_provider": {"npi": billing_npi, "taxonomy": billing_taxonomy},
            "rendering_provider": rendering,
            "referring_provider": ({"npi": claim.referring_npi} if claim.has_referring else None),
            # 2420E of the first line that names one (a claim-level simplification)
            "ordering_provider": next(
                ({"npi": ln.ordering_npi} for ln in claim.lines if ln.has_ordering), None
            ),
            "place_of_service": claim.place_of_service,
            "service_state": claim.facility_state or (billing.state if billing else None),
            "clia_number": claim.clia_number,
            "insurance": self.insurance(claim, payer),
            "diagnoses": claim.diagnoses,
            "authorizations": authorizations,
            "lines": lines,
            "documentation": {},
            "source": {
                "format": "x12",
                "file": self.source,
                "segment": claim.clm,
                "transaction": claim.transaction,
            },
        }

    def insurance(self, claim: _Claim, payer: _Payer | None) -> list[dict[str, Any]]:
        """The claim's payer (2000B SBR, 2010BB) and the other payers (2320 SBR, 2330B),
        each with its type (SBR09) and order of benefits (SBR01), in file order. They are
        what the claim states, not eligibility data (`member.coverage` stays absent)."""
        out: list[dict[str, Any]] = []
        subscriber = claim.subscriber
        if subscriber is not None and subscriber.sbr is not None:
            out.append(
                {
                    "payer": self.payer_key(payer),
                    "type": subscriber.sbr.type,
                    "order": subscriber.sbr.order,
                }
            )
        for other in claim.other_payers:
            out.append(
                {"payer": self.payer_key(other.payer), "type": other.type, "order": other.order}
            )
        return out

    @staticmethod
    def authorizations(claim: _Claim) -> list[dict[str, Any]]:
        """REF*G1 of the claim (2300) and of its lines (2400) as claim-format authorizations."""
        out: list[dict[str, Any]] = []
        if claim.authorizations:
            codes = list(dict.fromkeys(ln.code for ln in claim.lines if ln.code))
            starts = [ln.service_date for ln in claim.lines if ln.service_date]
            ends = [ln.service_end_date or ln.service_date for ln in claim.lines if ln.service_date]
            for number in claim.authorizations:
                out.append(
                    {
                        "number": number,
                        "codes": codes,
                        "start": min(starts, default=None),
                        "end": max(ends, default=None),
                        "units": None,
                    }
                )
        for line in claim.lines:
            for number in line.authorizations:
                out.append(
                    {
                        "number": number,
                        "codes": [line.code] if line.code else [],
                        "start": line.service_date,
                        "end": line.service_end_date or line.service_date,
                        "units": None,
                    }
                )
        return out

    def payer_key(self, payer: _Payer | None) -> str | None:
        """The policy pack for the 2010BB payer: by id, then by name; else `x12:<id>`."""
        if payer is None:
            return None
        for key in (payer.id, payer.name):
            if key and key in self.payer_map:
                return self.payer_map[key]
        if self._payer_names is None:
            self._payer_names = {_norm(k): v for k, v in self.payer_map.items()}
        for key in (payer.id, payer.name):
            if key and _norm(key) in self._payer_names:
                return self._payer_names[_norm(key)]
        return f"x12:{payer.id or payer.name}"

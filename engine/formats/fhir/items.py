"""The items of a Claim: diagnoses, service lines (Claim.item), prior authorizations and
documentation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cleanclaim.engine.formats.fhir.base import _ReaderBase
from cleanclaim.engine.formats.fhir.terms import (
    _MODIFIER_RE,
    ICD10_SYSTEMS,
    ICD10CM_SYSTEMS,
    PROCEDURE_SYSTEMS,
    Json,
    _code_in,
    _codings,
    _decimal_str,
    _describe_system,
    _first_code,
    _int,
    _json_number,
    _number,
    _obj,
    _objs,
    _str,
)


class _ItemsReader(_ReaderBase):
    """Diagnoses, lines, authorizations and documentation of one Claim."""

    # ---- diagnoses and lines

    def diagnoses(self) -> tuple[list[str], dict[int, int]]:
        """ICD-10-CM codes in sequence order, and sequence number -> 1-based position."""
        entries: list[tuple[int, int, Json]] = []
        seen: set[int] = set()
        for i, diag in enumerate(_objs(self.claim.get("diagnosis"))):
            seq = _int(diag.get("sequence"))
            if seq is None:
                self.problem(f"Claim.diagnosis[{i}].sequence", "not an integer")
                continue
            if seq in seen:
                self.problem(f"Claim.diagnosis[{i}].sequence", f"sequence {seq} repeats")
                continue
            seen.add(seq)
            entries.append((seq, i, diag))
        codes: list[str] = []
        positions: dict[int, int] = {}
        for seq, i, diag in sorted(entries, key=lambda e: e[0]):
            code = self.diagnosis_code(diag, f"Claim.diagnosis[{i}]")
            if code is not None:
                codes.append(code)
                positions[seq] = len(codes)
        return codes, positions

    def diagnosis_code(self, diag: Json, where: str) -> str | None:
        concept = diag.get("diagnosisCodeableConcept")
        if concept is not None:
            return self.icd10(concept, f"{where}.diagnosisCodeableConcept", None)
        ref = _obj(diag.get("diagnosisReference"))
        if ref is None:
            self.problem(where, "neither diagnosisCodeableConcept nor diagnosisReference")
            return None
        where = f"{where}.diagnosisReference"
        condition = self.resolve(ref, where, ("Condition",))
        if condition is None:
            if not any(p.where == where for p in self.problems):
                self.problem(
                    where,
                    "the Condition it refers to is not in the input: its code cannot be read",
                )
            return None
        return self.icd10(condition.data.get("code"), where, condition.path)

    def icd10(self, concept: object, where: str, condition_path: str | None) -> str | None:
        code = _code_in(concept, ICD10CM_SYSTEMS) or _code_in(concept, ICD10_SYSTEMS)
        if code is not None:
            return code
        what = f"the Condition it refers to ({condition_path})" if condition_path else "it"
        codings = _codings(concept)
        if not codings:
            self.problem(where, f"{what} has no coding, only text: not ICD-10-CM")
        else:
            system = _str(codings[0].get("system"))
            self.problem(
                where,
                f"{what} is coded in {_describe_system(system)}, not ICD-10-CM: "
                "professional claim policy cannot check it",
            )
        return None

    def lines(self, positions: dict[int, int]) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        seen: set[int] = set()
        billable = _obj(self.claim.get("billablePeriod"))
        for i, item in enumerate(_objs(self.claim.get("item"))):
            where = f"Claim.item[{i}]"
            seq = _int(item.get("sequence"))
            if seq is None:
                self.problem(f"{where}.sequence", "not an integer")
            elif seq in seen:
                self.problem(f"{where}.sequence", f"line {seq} repeats")
            else:
                seen.add(seq)
            if item.get("detail") is not None:
                self.problem(
                    f"{where}.detail",
                    "item details cannot be represented on a professional claim line",
                )
            units: int | float = 1  # FHIR leaves quantity optional; no quantity = one unit
            quantity = _obj(item.get("quantity"))
            if quantity is not None and quantity.get("value") is not None:
                value = _number(quantity.get("value"))
                if value is None:
                    self.problem(f"{where}.quantity.value", "not a JSON number")
                else:
                    units = _json_number(value)
            charge = self.money(item.get("net"), f"{where}.net")
            if charge is None:
                # unitPrice is per unit; the claim line charge is for all units.
                price = self.money(item.get("unitPrice"), f"{where}.unitPrice")
                factor = _number(item.get("factor")) or Decimal(1)
                charge = price * Decimal(str(units)) * factor if price is not None else None
            lines.append(
                {
                    "line": seq,
                    "code": self.procedure_code(
                        item.get("productOrService"), f"{where}.productOrService"
                    ),
                    "modifiers": self.modifiers(item.get("modifier"), f"{where}.modifier"),
                    "units": units,
                    "charge": _decimal_str(charge) if charge is not None else None,
                    "service_date": self.service_date(item, where, billable),
                    "diagnosis_pointers": self.pointers(item, where, positions),
                    "minutes": None,
                }
            )
        if not lines:
            self.problem("Claim.item", "the Claim has no items: nothing to check")
        return lines

    def procedure_code(self, concept: object, where: str) -> str | None:
        code = _code_in(concept, PROCEDURE_SYSTEMS)
        if code is not None:
            return code
        codings = _codings(concept)
        if not codings:
            self.problem(where, "no coding, only text: not CPT/HCPCS")
        else:
            system = _str(codings[0].get("system"))
            self.problem(where, f"coded in {_describe_system(system)}, not CPT/HCPCS")
        return None

    def modifiers(self, value: object, where: str) -> list[str]:
        out: list[str] = []
        for j, concept in enumerate(_objs(value)):
            code = _code_in(concept, PROCEDURE_SYSTEMS)
            if code is None:
                # A modifier coding without a system is taken when it has the shape of one.
                for coding in _codings(concept):
                    plain = _str(coding.get("code"))
                    if coding.get("system") is None and plain and _MODIFIER_RE.match(plain):
                        code = plain
                        break
            if code is None:
                systems = [_str(c.get("system")) for c in _codings(concept)]
                self.problem(
                    f"{where}[{j}]",
                    f"coded in {_describe_system(systems[0] if systems else None)}, "
                    "not a CPT/HCPCS modifier",
                )
                continue
            out.append(code.upper())
        return out

    def service_date(self, item: Json, where: str, billable: Json | None) -> str | None:
        if item.get("servicedDate") is not None:
            return self.date(item.get("servicedDate"), f"{where}.servicedDate")
        period = _obj(item.get("servicedPeriod"))
        if period is not None and period.get("start") is not None:
            return self.date(period.get("start"), f"{where}.servicedPeriod.start")
        # No serviced[x] on the item (Synthea writes none): the claim's billable period.
        if billable is not None and billable.get("start") is not None:
            return self.date(billable.get("start"), "Claim.billablePeriod.start")
        return None

    def pointers(self, item: Json, where: str, positions: dict[int, int]) -> list[int]:
        out: list[int] = []
        known = {_int(d.get("sequence")) for d in _objs(self.claim.get("diagnosis"))}
        sequences = item.get("diagnosisSequence")
        for j, seq_value in enumerate(sequences if isinstance(sequences, list) else []):
            seq = _int(seq_value)
            if seq is None:
                self.problem(f"{where}.diagnosisSequence[{j}]", "not an integer")
            elif seq in positions:
                out.append(positions[seq])
            elif seq not in known:
                self.problem(
                    f"{where}.diagnosisSequence[{j}]",
                    f"points to diagnosis sequence {seq}, which the Claim does not have",
                )
            # else: that diagnosis could not be read, and has its own problem
        return out

    # ---- authorizations and documentation

    def authorizations(
        self, insurances: list[Json], focal_index: int, lines: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Claim.insurance[focal].preAuthRef as authorizations. Like an 837 REF*G1, a
        preAuthRef is only a number: it is taken to cover the codes of all the Claim's
        items, from the first to the last date of service; units stay null. (R4 has no
        item-level preAuthRef: Claim.item carries none.)"""
        if focal_index >= len(insurances):
            return []
        refs = insurances[focal_index].get("preAuthRef")
        numbers = [
            ref.strip()
            for ref in (refs if isinstance(refs, list) else [])
            if isinstance(ref, str) and ref.strip()
        ]
        if not numbers:
            return []
        codes = list(dict.fromkeys(ln["code"] for ln in lines if ln.get("code")))
        starts = [ln["service_date"] for ln in lines if ln.get("service_date")]
        ends = [
            ln.get("service_end_date") or ln["service_date"]
            for ln in lines
            if ln.get("service_date")
        ]
        return [
            {
                "number": number,
                "codes": codes,
                "start": min(starts, default=None),
                "end": max(ends, default=None),
                "units": None,
            }
            for number in numbers
        ]

    def documentation(self) -> dict[str, Any]:
        infos = _objs(self.claim.get("supportingInfo"))
        if not infos:
            return {}
        out: list[dict[str, Any]] = []
        for info in infos:
            value: object = None
            if "valueBoolean" in info:
                value = info.get("valueBoolean")
            elif "valueString" in info:
                value = info.get("valueString")
            elif "valueQuantity" in info:
                q = _obj(info.get("valueQuantity")) or {}
                number = _number(q.get("value"))
                value = {
                    "value": _json_number(number) if number is not None else None,
                    "unit": _str(q.get("unit")) or _str(q.get("code")),
                }
            elif "valueReference" in info:
                ref = _obj(info.get("valueReference")) or {}
                value = _str(ref.get("reference")) or _str(ref.get("display"))
            elif "valueAttachment" in info:
                att = _obj(info.get("valueAttachment")) or {}
                value = {k: att.get(k) for k in ("contentType", "title", "url") if _str(att.get(k))}
            timing: object = None
            if _str(info.get("timingDate")):
                timing = info.get("timingDate")
            elif _obj(info.get("timingPeriod")) is not None:
                period = _obj(info.get("timingPeriod")) or {}
                timing = {"start": _str(period.get("start")), "end": _str(period.get("end"))}
            entry: dict[str, Any] = {
                "sequence": _int(info.get("sequence")),
                "category": _first_code(info.get("category")),
                "code": _first_code(info.get("code")),
                "value": value,
            }
            if timing is not None:
                entry["timing"] = timing
            out.append(entry)
        return {"fhir_supporting_info": out}

"""The parties of a Claim: payer and coverage (Claim.insurance, Coverage), the member
(Patient) and the providers (billing, rendering, referring, facility, CLIA)."""

from __future__ import annotations

from typing import Any

from cleanclaim.engine.formats.fhir.base import _ReaderBase, _Resolved
from cleanclaim.engine.formats.fhir.terms import (
    _ORDERS,
    CLIA_SYSTEMS,
    COVERAGE_CLASS_SYSTEMS,
    NUCC_SYSTEMS,
    POS_SYSTEMS,
    SSN_SYSTEMS,
    V2_0203_SYSTEMS,
    Json,
    _code_in,
    _codings,
    _coverage_type,
    _describe_system,
    _first_code,
    _identifier_in,
    _int,
    _norm_system,
    _obj,
    _objs,
    _str,
)


class _PartiesReader(_ReaderBase):
    """Payer, coverage, member and providers of one Claim."""

    # ---- payer and coverage

    def payer_and_coverage(
        self, insurances: list[Json], focal_index: int
    ) -> tuple[str, str | None, list[dict[str, Any]], list[dict[str, Any]]]:
        """(payer, plan, member.coverage spans, the claim's `insurance`). A Coverage with a
        period gives a coverage span (eligibility data); every Claim.insurance gives an
        `insurance` entry: its payer, Coverage.type (SOPT) and Claim.insurance.sequence as
        the order of benefits (1 primary, 2 secondary, 3 tertiary)."""
        payer: str | None = None
        plan: str | None = None
        found: list[str] = []
        spans: list[dict[str, Any]] = []
        stated: dict[int, dict[str, Any]] = {}
        order = [focal_index] + [i for i in range(len(insurances)) if i != focal_index]
        for i in order:
            if i >= len(insurances):
                continue
            where = f"Claim.insurance[{i}].coverage"
            ins_payer, ins_plan, period, names, cov = self.insurance(insurances[i], where)
            if i == focal_index:
                found.extend(names)
                payer, plan = ins_payer, ins_plan
                if payer is None:
                    # Claim.insurer names the payer the claim is sent to.
                    payer, insurer_names = self.insurer()
                    found.extend(insurer_names)
                if payer is None:
                    payer = f"fhir:{found[0]}" if found else "fhir:unknown"
                ins_payer = payer
            elif ins_payer is None:
                ins_payer = f"fhir:{names[0]}" if names else None
            kind = _coverage_type(cov.get("type")) if cov is not None else None
            # Claim.insurance.sequence: the order of benefits the claim states
            sequence = _ORDERS.get(_int(insurances[i].get("sequence")) or 0)
            stated[i] = {"payer": ins_payer, "type": kind, "order": sequence}
            if period is not None and ins_payer is not None:
                span, at = period
                entry: dict[str, Any] = {
                    "payer": ins_payer,
                    "plan": ins_plan,
                    "start": self.date(span.get("start"), f"{at}.start"),
                    "end": self.date(span.get("end"), f"{at}.end"),
                }
                if kind is not None:
                    entry["type"] = kind
                # Coverage.order (its order among the member's coverages in force), else
                # Claim.insurance.sequence when the claim has several insurances
                rank = _ORDERS.get((_int(cov.get("order")) if cov is not None else None) or 0)
                if rank is None and len(insurances) > 1:
                    rank = sequence
                if rank is not None:
                    entry["order"] = rank
                spans.append(entry)
        if not insurances:
            payer, names = self.insurer()
            if payer is None:
                payer = f"fhir:{names[0]}" if names else "fhir:unknown"
        assert payer is not None
        return payer, plan, spans, [stated[i] for i in sorted(stated)]

    def insurance(
        self, insurance: Json, where: str
    ) -> tuple[str | None, str | None, tuple[Json, str] | None, list[str], Json | None]:
        """(mapped payer, plan, (Coverage.period, its path), payer names found, the
        Coverage) of one insurance."""
        ref = _obj(insurance.get("coverage"))
        names: list[str] = []
        cov = self.resolve(ref, where, ("Coverage",)) if ref is not None else None
        if cov is not None:
            plan = None
            span = _obj(cov.data.get("period"))
            period = (span, f"{cov.path}.period") if span is not None else None
            for cls in _objs(cov.data.get("class")):
                if _code_in(cls.get("type"), COVERAGE_CLASS_SYSTEMS) == "plan" or (
                    _first_code(cls.get("type")) == "plan"
                ):
                    plan = _str(cls.get("value"))
                    break
            for j, payor in enumerate(_objs(cov.data.get("payor"))):
                payer, payor_names = self.organization_payer(payor, f"{cov.path}.payor[{j}]")
                if payer is not None:
                    return payer, plan, period, payor_names, cov.data
                names.extend(payor_names)
            return None, plan, period, names, cov.data
        # The Coverage is not in the input: its reference's display may name the payer
        # (Synthea writes it so). The reference's identifier is the policy's, not the
        # payer's (and may be the member's number): it is not used.
        display = _str(ref.get("display")) if ref is not None else None
        if display is not None:
            return self.lookup_payer([display]), None, None, [display], None
        return None, None, None, names, None

    def insurer(self) -> tuple[str | None, list[str]]:
        ref = _obj(self.claim.get("insurer"))
        if ref is None:
            return None, []
        return self.organization_payer(ref, "Claim.insurer")

    def lookup_payer(self, keys: list[str]) -> str | None:
        """The first key payer_map knows, exactly or else ignoring case."""
        for key in keys:
            hit = self.payer_map.get(key)
            if hit is None:
                hit = self.payer_map_folded.get(key.casefold())
            if hit is not None:
                return hit
        return None

    def organization_payer(self, ref: Json, where: str) -> tuple[str | None, list[str]]:
        """Look an Organization reference up in payer_map: identifiers first
        (`system|value`, then value), then the name or display. Also returns the names
        found, for `fhir:<name>` when nothing maps."""
        keys: list[str] = []
        names: list[str] = []
        org = self.resolve(ref, where, ("Organization",))
        identifiers = _objs(org.data.get("identifier")) if org is not None else []
        logical = _obj(ref.get("identifier"))
        if logical is not None:
            identifiers.append(logical)
        for ident in identifiers:
            value = _str(ident.get("value"))
            if value is None:
                continue
            system = _str(ident.get("system"))
            if system is not None:
                keys.append(f"{system}|{value}")
            keys.append(value)
        for name in (
            _str(org.data.get("name")) if org is not None else None,
            _str(ref.get("display")),
        ):
            if name is not None:
                keys.append(name)
                names.append(name)
        for ident in identifiers:
            value = _str(ident.get("value"))
            if value is not None:
                names.append(value)
        return self.lookup_payer(keys), names

    # ---- member and providers

    def member(self, spans: list[dict[str, Any]]) -> dict[str, Any]:
        ref = _obj(self.claim.get("patient"))
        member: dict[str, Any] = {"id": None, "birth_date": None, "sex": "U"}
        patient = self.resolve(ref, "Claim.patient", ("Patient",)) if ref is not None else None
        if patient is not None:
            member["id"] = _member_id(_objs(patient.data.get("identifier")))
            member["birth_date"] = self.date(
                patient.data.get("birthDate"), f"{patient.path}.birthDate"
            )
            member["sex"] = {"female": "F", "male": "M"}.get(
                _str(patient.data.get("gender")) or "", "U"
            )
            died = _str(patient.data.get("deceasedDateTime"))
            if died is not None:
                # a dateTime: its date part is the date of death
                member["date_of_death"] = self.date(died, f"{patient.path}.deceasedDateTime")
        else:
            logical = _obj(ref.get("identifier")) if ref is not None else None
            member["id"] = _str(logical.get("value")) if logical is not None else None
            if member["id"] is None and not any(p.where == "Claim.patient" for p in self.problems):
                self.problem(
                    "Claim.patient",
                    "the Patient is not in the input and the reference has no identifier: "
                    "the member cannot be read",
                )
        if member["id"] is None and patient is not None:
            self.problem(
                f"{patient.path}.identifier",
                "the Patient has no identifier usable as member id (an SSN is never used)",
            )
        if spans:
            member["coverage"] = spans
        return member

    def rendering(self, billing_npi: str | None) -> dict[str, Any]:
        team = _objs(self.claim.get("careTeam"))
        if not team:
            return {"npi": billing_npi, "specialty": None}
        index = next((i for i, m in enumerate(team) if _first_code(m.get("role")) == "primary"), 0)
        member = team[index]
        npi, taxonomy = self.npi_of(member.get("provider"), f"Claim.careTeam[{index}].provider")
        taxonomy = _code_in(member.get("qualification"), NUCC_SYSTEMS) or taxonomy
        out: dict[str, Any] = {"npi": npi, "specialty": None}
        if taxonomy is not None:
            out["taxonomy"] = taxonomy
        return out

    def referring(self) -> dict[str, Any] | None:
        ref = _obj(self.claim.get("referral"))
        if ref is None:
            return None
        request = self.resolve(ref, "Claim.referral", ("ServiceRequest",))
        if request is None:
            return None
        npi, _ = self.npi_of(request.data.get("requester"), f"{request.path}.requester")
        return {"npi": npi} if npi is not None else None

    def place_of_service(self) -> str | None:
        items = _objs(self.claim.get("item"))
        if items:
            item = items[0]
            concept = item.get("locationCodeableConcept")
            if concept is not None:
                code = _code_in(concept, POS_SYSTEMS)
                if code is None:
                    systems = [_str(c.get("system")) for c in _codings(concept)]
                    self.problem(
                        "Claim.item[0].locationCodeableConcept",
                        f"coded in {_describe_system(systems[0] if systems else None)}, "
                        "not the CMS place-of-service code set",
                    )
                return code
            loc = self.resolve(
                item.get("locationReference"), "Claim.item[0].locationReference", ("Location",)
            )
            code = self.location_pos(loc)
            if code is not None:
                return code
        facility = self.resolve(self.claim.get("facility"), "Claim.facility", ("Location",))
        return self.location_pos(facility)

    def clia_number(self) -> str | None:
        """The CLIA number: an identifier of the CLIA naming system on the billing
        provider (`Claim.provider`, the reference's own identifier or the resource's)."""
        ref = _obj(self.claim.get("provider"))
        if ref is None:
            return None
        logical = _identifier_in(ref.get("identifier"), CLIA_SYSTEMS)
        # Claim.provider's problems (a wrong type, invalid FHIR) are reported once, by
        # npi_of; this second look must not repeat them.
        mark = len(self.problems)
        res = self.resolve(
            ref, "Claim.provider", ("Practitioner", "PractitionerRole", "Organization")
        )
        del self.problems[mark:]
        found = _identifier_in(res.data.get("identifier"), CLIA_SYSTEMS) if res else None
        return found or logical

    def service_state(self) -> str | None:
        """The state where the service was rendered: Claim.facility (a Location), else
        the billing provider (Organization, Practitioner, or a PractitionerRole's
        location/organization). Address.state must be a two-letter USPS code."""
        facility = self.resolve(self.claim.get("facility"), "Claim.facility", ("Location",))
        if facility is not None:
            found = self.address_state(facility)
            if found is not None:
                return found or None
        provider = self.resolve(
            self.claim.get("provider"),
            "Claim.provider",
            ("Practitioner", "PractitionerRole", "Organization"),
        )
        if provider is None:
            return None
        if provider.resource_type != "PractitionerRole":
            return self.address_state(provider) or None
        refs: list[tuple[str, object, str]] = [
            (f"location[{i}]", ref, "Location")
            for i, ref in enumerate(_objs(provider.data.get("location")))
        ]
        refs.append(("organization", provider.data.get("organization"), "Organization"))
        for key, ref, kind in refs:
            inner = self.resolve(ref, f"{provider.path}.{key}", (kind,))
            found = self.address_state(inner) if inner is not None else None
            if found is not None:
                return found or None
        return None

    def address_state(self, res: _Resolved) -> str | None:
        """The resource's address state ("" when it has a state that is not usable, so
        the caller stops looking), or None when it has none. A Location has one address,
        an Organization or Practitioner a list: the first with a state, work first."""
        value = res.data.get("address")
        single = _obj(value)
        addresses = [single] if single is not None else _objs(value)
        addresses.sort(key=lambda a: _str(a.get("use")) != "work")
        for address in addresses:
            state = _str(address.get("state"))
            if state is None:
                continue
            code = state.strip().upper()
            if len(code) == 2 and code.isascii() and code.isalpha():
                return code
            # The value is not quoted: an address is patient-adjacent data.
            self.problem(f"{res.path}.address.state", "not a two-letter USPS state code")
            return ""
        return None

    @staticmethod
    def location_pos(location: _Resolved | None) -> str | None:
        if location is None:
            return None
        for concept in _objs(location.data.get("type")):
            code = _code_in(concept, POS_SYSTEMS)
            if code is not None:
                return code
        return None


def _member_id(identifiers: list[Json]) -> str | None:
    """The member identifier (v2-0203 type MB) if typed, else the first identifier value.
    A Social Security number is never taken as a member id."""
    usable = [
        i
        for i in identifiers
        if _str(i.get("value")) is not None
        and _norm_system(_str(i.get("system")) or "") not in SSN_SYSTEMS
    ]
    for ident in usable:
        if _code_in(ident.get("type"), V2_0203_SYSTEMS) == "MB":
            return _str(ident.get("value"))
    return _str(usable[0].get("value")) if usable else None

"""The base of the Claim mapping: values (dates, money) and references resolved in the
Claim, its contained resources and the Bundle."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from cleanclaim.engine.formats.fhir.documents import _Document, _Entry
from cleanclaim.engine.formats.fhir.terms import (
    _DATE_RE,
    _FULL_DATE_RE,
    NPI_SYSTEMS,
    NUCC_SYSTEMS,
    Json,
    _code_in,
    _identifier_in,
    _number,
    _obj,
    _objs,
    _str,
)
from cleanclaim.engine.formats.fhir.validation import _Validator
from cleanclaim.engine.inputs import ReadProblem

# --------------------------------------------------------------------------- mapping


@dataclass(slots=True)
class _Resolved:
    resource_type: str
    data: Json
    path: str  # e.g. "Bundle.entry[7].resource" or "Claim.contained[0]"


class _ReaderBase:
    """What every part of the Claim mapping shares: the Claim, its document, problems, values
    and references."""

    def __init__(
        self,
        claim: Json,
        entry: _Entry,
        doc: _Document,
        validator: _Validator,
        payer_map: Mapping[str, str],
        payer_map_folded: Mapping[str, str],
    ) -> None:
        self.claim = claim
        self.entry = entry
        self.doc = doc
        self.validator = validator
        self.payer_map = payer_map
        self.payer_map_folded = payer_map_folded
        self.problems: list[ReadProblem] = []
        self.contained: dict[str, Json] = {}
        for res in _objs(claim.get("contained")):
            rid = _str(res.get("id"))
            if rid is not None:
                self.contained[rid] = res

    def problem(self, where: str, message: str) -> None:
        self.problems.append(ReadProblem(where, message))

    # ---- values

    def date(self, value: object, where: str) -> str | None:
        """The date part (YYYY-MM-DD) of a FHIR date or dateTime."""
        if value is None:
            return None
        text = _str(value)
        if text is None:
            self.problem(where, "not a FHIR date (a JSON string YYYY-MM-DD)")
            return None
        if _FULL_DATE_RE.match(text):
            return text[:10]
        if _DATE_RE.match(text):
            self.problem(where, "a partial date; the claim needs a full date YYYY-MM-DD")
        else:
            self.problem(where, "not a FHIR date")
        return None

    def money(self, value: object, where: str) -> Decimal | None:
        money = _obj(value)
        if money is None:
            return None
        amount = money.get("value")
        number = _number(amount)
        if number is None:
            if amount is not None:
                self.problem(f"{where}.value", "not a JSON number")
            return None
        currency = _str(money.get("currency"))
        if currency is not None and currency != "USD":
            self.problem(f"{where}.currency", f"{currency}: a US claim is charged in USD")
        return number

    # ---- references

    def resolve(self, reference: object, where: str, kinds: tuple[str, ...]) -> _Resolved | None:
        """The resource a Reference points to, if the input holds it and R4B accepts it."""
        ref = _obj(reference)
        target = _str(ref.get("reference")) if ref is not None else None
        if target is None:
            return None
        if target.startswith("#"):
            res = self.contained.get(target[1:])
            rtype = _str(res.get("resourceType")) if res is not None else None
            if res is None or rtype is None:
                return None
            if rtype not in kinds:
                self.problem(where, f"refers to a {rtype}, expected {' or '.join(kinds)}")
                return None
            index = next(
                i
                for i, r in enumerate(_objs(self.claim.get("contained")))
                if _str(r.get("id")) == target[1:]
            )
            return _Resolved(rtype, res, f"Claim.contained[{index}]")
        found = self.doc.find(target)
        if found is None:
            return None
        if found.resource_type not in kinds:
            self.problem(where, f"refers to a {found.resource_type}, expected {' or '.join(kinds)}")
            return None
        data, errors = self.validator.check(found)
        if data is None:
            loc, msg = errors[0]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            at = f"{found.resource_type}.{loc}" if loc else found.resource_type
            self.problem(
                where,
                f"the {found.resource_type} it refers to ({found.path}) is not valid "
                f"FHIR R4: {at}: {msg}{more}",
            )
            return None
        return _Resolved(found.resource_type, data, found.path)

    def npi_of(self, reference: object, where: str) -> tuple[str | None, str | None]:
        """(NPI, NUCC taxonomy) of a Practitioner, PractitionerRole or Organization."""
        ref = _obj(reference)
        if ref is None:
            return None, None
        logical = _identifier_in(ref.get("identifier"), NPI_SYSTEMS)
        res = self.resolve(ref, where, ("Practitioner", "PractitionerRole", "Organization"))
        if res is None:
            return logical, None
        npi = _identifier_in(res.data.get("identifier"), NPI_SYSTEMS)
        taxonomy: str | None = None
        if res.resource_type == "PractitionerRole":
            for specialty in _objs(res.data.get("specialty")):
                taxonomy = taxonomy or _code_in(specialty, NUCC_SYSTEMS)
            for key in ("practitioner", "organization"):
                if npi is not None and taxonomy is not None:
                    break
                inner_npi, inner_tax = self.npi_of(res.data.get(key), f"{res.path}.{key}")
                npi = npi or inner_npi
                taxonomy = taxonomy or inner_tax
        elif res.resource_type == "Practitioner":
            for qual in _objs(res.data.get("qualification")):
                taxonomy = taxonomy or _code_in(qual.get("code"), NUCC_SYSTEMS)
        return npi or logical, taxonomy


def claim_id_of(claim: Json) -> str | None:
    """Claim.id, else the first identifier value."""
    rid = _str(claim.get("id"))
    if rid is not None:
        return rid
    for ident in _objs(claim.get("identifier")):
        value = _str(ident.get("value"))
        if value is not None:
            return value
    return None

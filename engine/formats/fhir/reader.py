"""The Claim mapping put together, and the entry point `read_fhir`."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from cleanclaim.engine.formats.fhir.base import claim_id_of
from cleanclaim.engine.formats.fhir.documents import (
    _Document,
    _Entry,
    _load_json,
    _load_xml,
    _lxml,
    _xml_parser,
)
from cleanclaim.engine.formats.fhir.items import _ItemsReader
from cleanclaim.engine.formats.fhir.parties import _PartiesReader
from cleanclaim.engine.formats.fhir.terms import (
    _CLAIM_USES,
    _TYPE_ID_RE,
    CLAIM_TYPE_SYSTEMS,
    Json,
    _code_in,
    _first_code,
    _obj,
    _objs,
    _str,
)
from cleanclaim.engine.formats.fhir.validation import _Validator
from cleanclaim.engine.inputs import InputFileError, RawClaim, ReadProblem


class _ClaimReader(_PartiesReader, _ItemsReader):
    """Maps one validated Claim to claim format v1, collecting problems as it goes."""

    # ---- the claim

    def read(self) -> dict[str, Any]:
        c = self.claim
        self.check_use_and_type()
        claim_id = claim_id_of(c)
        if claim_id is None:
            self.problem("Claim.id", "the Claim has neither an id nor an identifier value")

        insurances = _objs(c.get("insurance"))
        focal_index = next((i for i, ins in enumerate(insurances) if ins.get("focal") is True), 0)
        payer, plan, spans, stated = self.payer_and_coverage(insurances, focal_index)

        frequency, replaces = self.frequency()
        billing_npi, billing_taxonomy = self.npi_of(c.get("provider"), "Claim.provider")
        diagnoses, positions = self.diagnoses()
        lines = self.lines(positions)
        data: dict[str, Any] = {
            "claim_id": claim_id,
            "payer": payer,
            "plan": plan,
            "frequency": frequency,
            "replaces": replaces,
            # Claim.created is when the provider created the claim; FHIR has no "received
            # by payer" date, and a claim checked before submission is received about when
            # it is created, so its date part stands in for received_date (timely filing).
            # Without it, null: the engine then uses today.
            "received_date": self.date(c.get("created"), "Claim.created"),
            "member": self.member(spans),
            "billing_provider": {"npi": billing_npi, "taxonomy": billing_taxonomy},
            "rendering_provider": self.rendering(billing_npi),
            "referring_provider": self.referring(),
            "place_of_service": self.place_of_service(),
            "service_state": self.service_state(),
            "clia_number": self.clia_number(),
            "insurance": stated,
            "diagnoses": diagnoses,
            "authorizations": self.authorizations(insurances, focal_index, lines),
            "lines": lines,
            "documentation": self.documentation(),
            "source": {"format": "fhir", "file": self.doc.source, "path": self.entry.path},
        }
        return data

    def check_use_and_type(self) -> None:
        c = self.claim
        use = _str(c.get("use"))
        if use is None:
            self.problem("Claim.use", "required element is missing")
        elif use not in _CLAIM_USES:
            self.problem("Claim.use", f"'{use}' is not claim, preauthorization or predetermination")
        elif use != "claim":
            what = (
                "a prior-authorization request"
                if use == "preauthorization"
                else ("a predetermination (estimate) request")
            )
            self.problem(
                "Claim.use",
                f"use is '{use}': {what}, not a claim for payment; cleanclaim checks "
                "claims for payment (use = 'claim')",
            )
        status = _str(c.get("status"))
        if status == "entered-in-error":
            self.problem("Claim.status", "the Claim is marked entered-in-error")
        claim_type = _code_in(c.get("type"), CLAIM_TYPE_SYSTEMS)
        if claim_type is not None and claim_type != "professional":
            self.problem(
                "Claim.type",
                f"type '{claim_type}': not a professional claim; cleanclaim checks "
                "professional (CMS-1500 / 837P) claims",
            )

    def frequency(self) -> tuple[str, str | None]:
        replaces: str | None = None
        prior = False
        for i, related in enumerate(_objs(self.claim.get("related"))):
            if _first_code(related.get("relationship")) != "prior":
                continue
            prior = True
            where = f"Claim.related[{i}]"
            replaces = self.related_claim_id(related, where)
            if replaces is None:
                self.problem(where, "relationship 'prior' without the id of the prior claim")
            break
        if _str(self.claim.get("status")) == "cancelled":
            # A cancelled Claim withdraws an earlier submission: a void of the prior
            # claim when one is named, else of this claim id itself.
            return "void", replaces or claim_id_of(self.claim)
        return ("replacement", replaces) if prior else ("original", None)

    def related_claim_id(self, related: Json, where: str) -> str | None:
        ref = _obj(related.get("claim"))
        if ref is not None:
            res = self.resolve(ref, f"{where}.claim", ("Claim",))
            if res is not None:
                return claim_id_of(res.data)
            target = _str(ref.get("reference"))
            if target is not None:
                m = _TYPE_ID_RE.search(target)
                if m is not None and m.group(1) == "Claim":
                    return m.group(2)
            ident = _obj(ref.get("identifier"))
            if ident is not None and _str(ident.get("value")):
                return _str(ident.get("value"))
        ident = _obj(related.get("reference"))
        return _str(ident.get("value")) if ident is not None else None


# --------------------------------------------------------------------------- entry point


def read_fhir(text: str, source: str, payer_map: Mapping[str, str]) -> Iterator[RawClaim]:
    """Read FHIR R4 `Claim`s, alone or in a `Bundle`, JSON or XML, as claim format v1.

    text: the file's content. source: its name, for messages and `data["source"]`.
    payer_map: FHIR payer names or identifiers (`system|value`, value, Organization name
        or display) to cleanclaim payer ids; matched exactly, then ignoring case. A payer
        that nothing maps becomes `fhir:<what the Claim names>`, which the engine rejects
        with root cause `payer_setup`.

    Yields one `RawClaim` per Claim, in input order. Raises `InputFileError` (on the first
    `next`) when the input is not FHIR JSON/XML, is a resource other than Claim or Bundle,
    or is a Bundle without a Claim.
    """
    body = text.lstrip("\ufeff \t\r\n")
    if not body:
        raise InputFileError(source, "empty file: no FHIR resource")
    xml_parser: Any = None
    if body.startswith("<"):
        doc = _load_xml(body, source)
        xml_parser = _xml_parser(_lxml())
    else:
        doc = _load_json(body, source)
    claims = [e for e in doc.entries if e.resource_type == "Claim"]
    if not claims:
        kinds = sorted({e.resource_type for e in doc.entries})
        holds = f"it holds {', '.join(kinds)}" if kinds else "it is empty"
        raise InputFileError(source, f"the Bundle holds no Claim resource ({holds})")
    validator = _Validator(xml_parser)
    folded = {k.casefold(): v for k, v in payer_map.items()}
    for position, entry in enumerate(claims):
        yield _read_one(position, entry, doc, validator, payer_map, folded)


_ENTRY_RE: Final = re.compile(r"^Bundle\.entry\[(\d+)\]")


def _origin(doc: _Document, entry: _Entry) -> dict[str, Any]:
    """Where a Claim is in the input, for its decision (docs/formats.md "Origin"): the
    file, the Claim's resource id and its Bundle entry index (None for a lone Claim)."""
    m = _ENTRY_RE.match(entry.path)
    return {
        "file": doc.source,
        "format": "fhir",
        "resource_id": entry.resource_id,
        "entry": int(m.group(1)) if m else None,
    }


def _read_one(
    position: int,
    entry: _Entry,
    doc: _Document,
    validator: _Validator,
    payer_map: Mapping[str, str],
    folded: Mapping[str, str],
) -> RawClaim:
    claim_id = entry.resource_id
    if claim_id is None and entry.raw is not None:
        claim_id = claim_id_of(entry.raw)
    data, errors = validator.check(entry)
    if data is None:
        at = f" ({entry.path})" if entry.path != "Claim" else ""
        xml = doc.encoding == "xml"
        problems = tuple(
            ReadProblem(
                "Claim" if xml or not loc else f"Claim.{loc}",
                f"not valid FHIR R4{at}: "
                + (f"element '{loc.rsplit('.', 1)[-1]}': " if xml and loc else "")
                + msg,
            )
            for loc, msg in errors
        )
        return RawClaim(
            position=position,
            data=None,
            problems=problems,
            claim_id=claim_id,
            origin=_origin(doc, entry),
        )
    reader = _ClaimReader(data, entry, doc, validator, payer_map, folded)
    claim_id = claim_id_of(data) or claim_id
    try:
        mapped: dict[str, Any] | None = reader.read()
    except Exception as exc:  # a reader bug must not lose the other claims of the file
        reader.problem("Claim", f"internal error while reading this Claim ({type(exc).__name__})")
        mapped = None
    return RawClaim(
        position=position,
        data=mapped,
        problems=tuple(reader.problems),
        claim_id=claim_id,
        origin=_origin(doc, entry),
    )

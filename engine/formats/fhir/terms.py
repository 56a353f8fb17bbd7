"""FHIR code systems the reader knows (procedure, place of service, NPI, SOPT, CLIA, ...)
and typed access to JSON values, codings and identifiers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import cast

Json = Mapping[str, object]

FHIR_NS = "http://hl7.org/fhir"

# --------------------------------------------------------------------------- code systems


def _norm_system(system: str) -> str:
    """A code-system URI in a comparable form: no scheme, no `www.`, no trailing `/` or
    `.html`, lower case (publishers and implementers spell the CMS URLs many ways)."""
    s = system.strip().lower()
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix) :]
            break
    if s.startswith("www."):
        s = s[4:]
    s = s.removesuffix("/").removesuffix(".html").removesuffix(".htm").removesuffix("/")
    return s


def _systems(*uris: str) -> frozenset[str]:
    return frozenset(_norm_system(u) for u in uris)


CPT_SYSTEMS = _systems("http://www.ama-assn.org/go/cpt", "urn:oid:2.16.840.1.113883.6.12")
HCPCS_SYSTEMS = _systems(
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets/Alpha-Numeric-HCPCS",
    "http://terminology.hl7.org/CodeSystem/HCPCS",
    "http://terminology.hl7.org/CodeSystem/hcpcs-all-codes",
    "urn:oid:2.16.840.1.113883.6.285",
    "urn:oid:2.16.840.1.113883.6.14",
)
PROCEDURE_SYSTEMS = CPT_SYSTEMS | HCPCS_SYSTEMS
ICD10CM_SYSTEMS = _systems("http://hl7.org/fhir/sid/icd-10-cm", "urn:oid:2.16.840.1.113883.6.90")
# WHO ICD-10 is accepted as a fallback, as the brief asks: US senders sometimes label
# ICD-10-CM codes with it. ICD-10-CM is preferred when a concept carries both.
ICD10_SYSTEMS = _systems("http://hl7.org/fhir/sid/icd-10", "urn:oid:2.16.840.1.113883.6.3")
POS_SYSTEMS = _systems(
    "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set",
    "urn:oid:2.16.840.1.113883.6.50",
    # The FHIR example value set for Claim.item.location[x] copies the CMS codes.
    "http://terminology.hl7.org/CodeSystem/ex-serviceplace",
)
NPI_SYSTEMS = _systems("http://hl7.org/fhir/sid/us-npi", "urn:oid:2.16.840.1.113883.4.6")
NUCC_SYSTEMS = _systems("http://nucc.org/provider-taxonomy", "urn:oid:2.16.840.1.113883.6.101")
_ORDERS = {1: "primary", 2: "secondary", 3: "tertiary"}
# Coverage.type in the Source of Payment Typology (PHDSC/NAHDO SOPT, the US Core and CARIN
# coverage type value set): hierarchical codes, read by prefix. 11x Medicare managed care
# (Medicare Advantage), 13 Medicare hospice, other 1x Medicare (14, dual-eligible
# organizations, gives none), 2x Medicaid, 5x private insurance and 6x BCBS (commercial),
# 95x workers' compensation, 96x auto (no-fault) and 97x liability insurance (liability).
# Another system or code gives no type.
SOPT_SYSTEMS = _systems("https://nahdo.org/sopt", "urn:oid:2.16.840.1.113883.3.221.5")
_SOPT_PREFIXES = (
    ("11", "medicare_advantage"),
    ("13", "hospice"),
    ("14", None),
    ("1", "medicare"),
    ("2", "medicaid"),
    ("5", "commercial"),
    ("6", "commercial"),
    ("95", "workers_compensation"),
    ("96", "liability"),
    ("97", "liability"),
)


def _coverage_type(concept: object) -> str | None:
    """A claim-format coverage type from a Coverage.type in SOPT, or None."""
    code = _code_in(concept, SOPT_SYSTEMS)
    if code is None or not code.isdigit():
        return None
    return next((kind for prefix, kind in _SOPT_PREFIXES if code.startswith(prefix)), None)


# HL7 NamingSystem CLIA (terminology.hl7.org): the laboratory's CLIA certificate number.
CLIA_SYSTEMS = _systems(
    "http://terminology.hl7.org/NamingSystem/CLIA", "urn:oid:2.16.840.1.113883.4.7"
)
SSN_SYSTEMS = _systems("http://hl7.org/fhir/sid/us-ssn", "urn:oid:2.16.840.1.113883.4.1")
CLAIM_TYPE_SYSTEMS = _systems("http://terminology.hl7.org/CodeSystem/claim-type")
COVERAGE_CLASS_SYSTEMS = _systems("http://terminology.hl7.org/CodeSystem/coverage-class")
V2_0203_SYSTEMS = _systems("http://terminology.hl7.org/CodeSystem/v2-0203")

_SYSTEM_NAMES: dict[str, str] = {
    _norm_system(uri): name
    for uri, name in (
        ("http://snomed.info/sct", "SNOMED CT"),
        ("http://hl7.org/fhir/sid/cvx", "CVX"),
        ("http://loinc.org", "LOINC"),
        ("http://www.nlm.nih.gov/research/umls/rxnorm", "RxNorm"),
        ("http://hl7.org/fhir/sid/ndc", "NDC"),
        ("http://hl7.org/fhir/sid/icd-9-cm", "ICD-9-CM"),
        ("http://hl7.org/fhir/sid/icd-9", "ICD-9"),
        ("http://www.cms.gov/Medicare/Coding/ICD10", "ICD-10-PCS"),
        ("http://hl7.org/fhir/sid/icd-10-cm", "ICD-10-CM"),
        ("http://hl7.org/fhir/sid/icd-10", "ICD-10"),
        ("http://www.ama-assn.org/go/cpt", "CPT"),
        ("https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "HCPCS"),
        ("http://www.nubc.org/patient-discharge", "NUBC"),
        ("https://www.nubc.org/CodeSystem/RevenueCodes", "NUBC revenue codes"),
    )
}

_CLAIM_USES = {"claim", "preauthorization", "predetermination"}
_DATE_RE = re.compile(r"^(\d{4})(-(\d{2})(-(\d{2}))?)?")
_FULL_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_MODIFIER_RE = re.compile(r"^[A-Za-z0-9]{2}$")
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TYPE_ID_RE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def _describe_system(system: str | None) -> str:
    if not system:
        return "a coding with no system"
    name = _SYSTEM_NAMES.get(_norm_system(system))
    return f"{name} ({system})" if name else system


# --------------------------------------------------------------------------- JSON access
# The mapping reads plain JSON values (dicts from `json.loads`, or the JSON form of a model
# validated from XML). These helpers give typed access to them.


def _obj(value: object) -> Json | None:
    return cast(Json, value) if isinstance(value, Mapping) else None


def _objs(value: object) -> list[Json]:
    if not isinstance(value, list):
        return []
    return [cast(Json, v) for v in value if isinstance(v, Mapping)]


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):  # only from a caller that parsed without parse_float
        return Decimal(repr(value))
    return None


def _json_number(value: Decimal) -> int | float:
    """A Decimal as a plain JSON number: int when integral."""
    return int(value) if value == value.to_integral_value() else float(value)


def _codings(concept: object) -> list[Json]:
    c = _obj(concept)
    return _objs(c.get("coding")) if c is not None else []


def _coding_in(concept: object, systems: frozenset[str]) -> Json | None:
    for coding in _codings(concept):
        system = _str(coding.get("system"))
        if system is not None and _norm_system(system) in systems and _str(coding.get("code")):
            return coding
    return None


def _code_in(concept: object, systems: frozenset[str]) -> str | None:
    coding = _coding_in(concept, systems)
    code = _str(coding.get("code")) if coding is not None else None
    return code.strip() if code is not None else None


def _first_code(concept: object) -> str | None:
    for coding in _codings(concept):
        code = _str(coding.get("code"))
        if code is not None:
            return code
    return None


def _identifier_in(identifiers: object, systems: frozenset[str]) -> str | None:
    """The value of the first Identifier (one, or a list) in one of `systems`."""
    for ident in _objs(identifiers if isinstance(identifiers, list) else [identifiers]):
        system = _str(ident.get("system"))
        value = _str(ident.get("value"))
        if system is not None and value is not None and _norm_system(system) in systems:
            return value.strip()
    return None


def _decimal_str(value: Decimal) -> str:
    """Money as claim format v1 writes it: two decimals unless it has more."""
    try:
        cents = value.quantize(Decimal("0.01"))
    except InvalidOperation:
        return str(value)
    return f"{cents:.2f}" if cents == value else str(value)

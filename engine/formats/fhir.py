"""FHIR R4 reader: `Claim` resources (alone or in a `Bundle`) to claim format v1.

`read_fhir(text, source, payer_map)` yields one `RawClaim` per `Claim` in the input, in
input order. JSON and XML encodings are read; every resource the mapping touches is
validated with the FHIR R4B models of `fhir.resources` (`fhir.resources.R4B`), never
with the package's default R5 models, which accept some invalid R4.

Errors follow `cleanclaim.engine.inputs`: a Claim that cannot be read, or that cannot be
checked by professional-claim policy as it is coded (procedures in SNOMED CT or CVX,
diagnoses in SNOMED CT or ICD-9, a prior-authorization request instead of a claim for
payment, ...), becomes a `RawClaim` whose `problems` name the FHIR path, e.g.
`Claim.item[0].productOrService`. Only a file that holds no Claim at all, is not JSON or
XML, or holds a resource other than Claim/Bundle raises `InputFileError`.

`fhir.resources` (and pydantic behind it) costs a few hundred milliseconds to import: it is
imported on first use, inside `read_fhir`, never at module import. This module logs
nothing, and its messages never quote patient names, identifiers or birth dates.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

from cleanclaim.engine.inputs import InputFileError, RawClaim, ReadProblem

if TYPE_CHECKING:
    from fhir_core.fhirabstractmodel import FHIRAbstractModel

__all__ = ["read_fhir"]

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
_SOPT_PREFIXES = (("11", "medicare_advantage"), ("13", "hospice"), ("14", None),
                  ("1", "medicare"), ("2", "medicaid"), ("5", "commercial"),
                  ("6", "commercial"), ("95", "workers_compensation"), ("96", "liability"),
                  ("97", "liability"))


def _coverage_type(concept: object) -> str | None:
    """A claim-format coverage type from a Coverage.type in SOPT, or None."""
    code = _code_in(concept, SOPT_SYSTEMS)
    if code is None or not code.isdigit():
        return None
    return next((kind for prefix, kind in _SOPT_PREFIXES if code.startswith(prefix)), None)
# HL7 NamingSystem CLIA (terminology.hl7.org): the laboratory's CLIA certificate number.
CLIA_SYSTEMS = _systems("http://terminology.hl7.org/NamingSystem/CLIA",
                        "urn:oid:2.16.840.1.113883.4.7")
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


# --------------------------------------------------------------------------- documents


class _XmlElement(Protocol):
    """The part of `lxml.etree._Element` this module uses (lxml ships no type hints)."""

    @property
    def tag(self) -> object: ...

    def get(self, key: str) -> str | None: ...

    def __iter__(self) -> Iterator[_XmlElement]: ...


@dataclass(slots=True)
class _Entry:
    """One resource of the input: a Bundle entry, or the file's only resource."""

    path: str  # FHIRPath of the resource in the input, e.g. "Bundle.entry[3].resource"
    resource_type: str
    resource_id: str | None
    full_url: str | None
    raw: Json | None = None  # JSON input
    xml: bytes | None = None  # XML input: the resource element, serialized
    checked: tuple[Json | None, tuple[tuple[str, str], ...]] | None = None


@dataclass(slots=True)
class _Document:
    source: str
    encoding: str  # "json" | "xml"
    entries: list[_Entry] = field(default_factory=list)
    by_url: dict[str, _Entry] = field(default_factory=dict)
    by_type_id: dict[tuple[str, str], _Entry] = field(default_factory=dict)

    def add(self, entry: _Entry) -> None:
        self.entries.append(entry)
        if entry.full_url is not None:
            self.by_url.setdefault(entry.full_url, entry)
        if entry.resource_id is not None:
            self.by_type_id.setdefault((entry.resource_type, entry.resource_id), entry)

    def find(self, reference: str) -> _Entry | None:
        hit = self.by_url.get(reference)
        if hit is not None:
            return hit
        m = _TYPE_ID_RE.search(reference)
        if m is not None and not reference.startswith(("urn:", "#")):
            return self.by_type_id.get((m.group(1), m.group(2)))
        return None


_TOO_DEEP: Final = "elements nested too deeply to be a claim"


def _load_json(text: str, source: str) -> _Document:
    try:
        data: object = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise InputFileError(
            source, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise InputFileError(source, "not readable JSON: nested too deeply") from None
    root = _obj(data)
    if root is None:
        raise InputFileError(
            source,
            f"a FHIR JSON file holds one resource (a JSON object), not a {type(data).__name__}",
        )
    doc = _Document(source=source, encoding="json")
    rtype = _str(root.get("resourceType"))
    _check_root_type(source, rtype)
    if rtype == "Claim":
        doc.add(_Entry("Claim", "Claim", _str(root.get("id")), None, raw=root))
        return doc
    entries = root.get("entry", [])
    if not isinstance(entries, list):
        raise InputFileError(source, "Bundle.entry is not a list")
    for i, raw_entry in enumerate(entries):
        entry = _obj(raw_entry)
        resource = _obj(entry.get("resource")) if entry is not None else None
        if entry is None or resource is None:
            continue
        etype = _str(resource.get("resourceType"))
        if etype is None:
            continue
        doc.add(
            _Entry(
                f"Bundle.entry[{i}].resource",
                etype,
                _str(resource.get("id")),
                _str(entry.get("fullUrl")),
                raw=resource,
            )
        )
    return doc


def _check_root_type(source: str, rtype: str | None) -> None:
    if rtype is None:
        raise InputFileError(source, "no resourceType: not a FHIR resource")
    if rtype not in ("Claim", "Bundle"):
        raise InputFileError(
            source,
            f"a FHIR {rtype} resource: cleanclaim reads a Claim, or a Bundle that holds Claims",
        )


def _lxml() -> Any:
    """`lxml.etree`, or None when lxml is not installed (it is untyped: callers cast)."""
    try:
        return importlib.import_module("lxml.etree")
    except ImportError:
        return None


def _xml_parser(etree: Any) -> Any:
    # No DTD entity expansion, no network: input files come from outside.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True
    )


def _local_name(tag: object) -> str | None:
    if not isinstance(tag, str):  # comments, entities, processing instructions
        return None
    if tag.startswith("{" + FHIR_NS + "}"):
        return tag[len(FHIR_NS) + 2 :]
    return None


def _xml_children(element: _XmlElement, name: str | None = None) -> list[_XmlElement]:
    out: list[_XmlElement] = []
    for child in element:
        local = _local_name(child.tag)
        if local is not None and (name is None or local == name):
            out.append(child)
    return out


def _xml_value(element: _XmlElement, name: str) -> str | None:
    for child in _xml_children(element, name):
        return _str(child.get("value"))
    return None


def _load_xml(text: str, source: str) -> _Document:
    etree = _lxml()
    if etree is None:
        raise InputFileError(
            source,
            "FHIR XML needs the lxml package (pip install 'fhir.resources[xml]'); "
            "JSON needs nothing more",
        )
    syntax_error = cast(type[Exception], etree.XMLSyntaxError)
    try:
        root = cast(_XmlElement, etree.fromstring(text.encode("utf-8"), _xml_parser(etree)))
    except syntax_error as exc:
        if "Excessive depth" in str(exc):  # libxml2 stops at 256 levels (issue 19.1)
            line, column = getattr(exc, "position", (None, None))
            raise InputFileError(
                source, f"not readable XML: {_TOO_DEEP}, line {line}, column {column}"
            ) from None
        raise InputFileError(source, f"not well-formed XML: {exc}") from None
    tostring = cast(Callable[[_XmlElement], bytes], etree.tostring)
    rtype = _local_name(root.tag)
    if rtype is None:
        raise InputFileError(source, f"XML root element is not in the FHIR namespace {FHIR_NS}")
    _check_root_type(source, rtype)
    doc = _Document(source=source, encoding="xml")
    if rtype == "Claim":
        doc.add(_Entry("Claim", "Claim", _xml_value(root, "id"), None, xml=tostring(root)))
        return doc
    for i, entry in enumerate(_xml_children(root, "entry")):
        for holder in _xml_children(entry, "resource"):
            for resource in _xml_children(holder)[:1]:
                etype = _local_name(resource.tag)
                assert etype is not None
                doc.add(
                    _Entry(
                        f"Bundle.entry[{i}].resource",
                        etype,
                        _xml_value(resource, "id"),
                        _xml_value(entry, "fullUrl"),
                        xml=tostring(resource),
                    )
                )
    return doc


# --------------------------------------------------------------------------- validation


class _Validator:
    """R4B validation of single resources; the only code that touches fhir.resources."""

    def __init__(self, xml_parser: Any) -> None:
        # Imported here, not at module level: pydantic and the FHIR models take a few
        # hundred milliseconds to import, which other formats must not pay.
        from fhir.resources.R4B import get_fhir_model_class
        from pydantic import ValidationError

        self._model_class = get_fhir_model_class
        self._validation_error = ValidationError
        self._xml_parser = xml_parser

    def check(self, entry: _Entry) -> tuple[Json | None, tuple[tuple[str, str], ...]]:
        """The resource as JSON if R4B accepts it, else None and (where, message) pairs.

        `where` is relative to the resource (e.g. `item[0].quantity.value`); XML errors
        name only the innermost element (the XML loader builds models bottom-up)."""
        if entry.checked is None:
            entry.checked = self._check(entry)
        return entry.checked

    def _check(self, entry: _Entry) -> tuple[Json | None, tuple[tuple[str, str], ...]]:
        try:
            model_class: type[FHIRAbstractModel] = self._model_class(entry.resource_type)
        except ValueError:
            return None, (("", f"{entry.resource_type} is not an R4 resource type"),)
        try:
            if entry.raw is not None:
                model_class.model_validate(entry.raw)
                return entry.raw, ()
            assert entry.xml is not None
            model = model_class.model_validate_xml(entry.xml, xmlparser=self._xml_parser)
            data = _obj(json.loads(model.model_dump_json(), parse_float=Decimal))
            return data, ()
        except self._validation_error as exc:
            errors: list[tuple[str, str]] = []
            for err in exc.errors(include_url=False, include_input=False):
                errors.append((_loc_path(err["loc"]), _clean_message(err["msg"], err["type"])))
            return None, tuple(errors) or (("", "rejected by the FHIR R4 model"),)
        except KeyError as exc:  # fhir.resources' XML loader on an unknown element
            return None, (("", f"unknown element {exc}: not FHIR R4"),)
        except RecursionError:  # fhir.resources validates nested elements recursively
            return None, (("", _TOO_DEEP),)
        except (TypeError, ValueError, AttributeError) as exc:
            if "recursion" in str(exc).lower():  # pydantic's serializer on deep XML
                return None, (("", _TOO_DEEP),)
            return None, (("", f"not valid FHIR R4 ({type(exc).__name__})"),)


def _loc_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER_RE.match(part) and part != "root":  # "root": a pydantic wrapper
            name = f"_{part[: -len('__ext')]}" if part.endswith("__ext") else part
            out += f".{name}" if out else name
    return out


_ONE_OF_RE = re.compile(r"expected from this list \[([^\]]*)\], but got multiple")
_INSTANCE_RE = re.compile(r"expected from the instance of (\w+), but got type <class '(\w+)'>")


def _clean_message(msg: str, kind: str) -> str:
    """pydantic's message for one validation error, in FHIR terms."""
    if kind == "missing":
        return "required element is missing"
    if kind == "extra_forbidden":
        return "unknown element (not in FHIR R4)"
    if kind in ("json_invalid", "model_type", "model_attributes_type", "dict_type"):
        return "wrong type: expected a JSON object"
    if kind == "list_type":
        return "wrong type: expected a JSON array"
    msg = msg.removeprefix("Value error, ").strip()
    m = _ONE_OF_RE.search(msg)
    if m is not None:
        names = ", ".join(n.strip(" '") for n in m.group(1).split(","))
        return f"only one of {names} may be given"
    m = _INSTANCE_RE.search(msg)
    if m is not None:
        return f"wrong type: expected a {m.group(1)}, not a JSON {m.group(2)}"
    return msg[:300]


# --------------------------------------------------------------------------- mapping


@dataclass(slots=True)
class _Resolved:
    resource_type: str
    data: Json
    path: str  # e.g. "Bundle.entry[7].resource" or "Claim.contained[0]"


class _ClaimReader:
    """Maps one validated Claim to claim format v1, collecting problems as it goes."""

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
        res = self.resolve(ref, "Claim.provider",
                           ("Practitioner", "PractitionerRole", "Organization"))
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
        refs: list[tuple[str, object, str]] = [(f"location[{i}]", ref, "Location")
                for i, ref in enumerate(_objs(provider.data.get("location")))]
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
        ends = [ln.get("service_end_date") or ln["service_date"] for ln in lines
                if ln.get("service_date")]
        return [
            {"number": number, "codes": codes, "start": min(starts, default=None),
             "end": max(ends, default=None), "units": None}
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
    return {"file": doc.source, "format": "fhir", "resource_id": entry.resource_id,
            "entry": int(m.group(1)) if m else None}


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
        return RawClaim(position=position, data=None, problems=problems, claim_id=claim_id,
                        origin=_origin(doc, entry))
    reader = _ClaimReader(data, entry, doc, validator, payer_map, folded)
    claim_id = claim_id_of(data) or claim_id
    try:
        mapped: dict[str, Any] | None = reader.read()
    except Exception as exc:  # a reader bug must not lose the other claims of the file
        reader.problem("Claim", f"internal error while reading this Claim ({type(exc).__name__})")
        mapped = None
    return RawClaim(
        position=position, data=mapped, problems=tuple(reader.problems), claim_id=claim_id,
        origin=_origin(doc, entry),
    )

"""FHIR documents: a Claim or Bundle, JSON or XML, loaded as entries with their paths and
resolvable references."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Protocol, cast

from cleanclaim.engine.formats.fhir.terms import _TYPE_ID_RE, FHIR_NS, Json, _obj, _str
from cleanclaim.engine.inputs import InputFileError

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

"""Validation of the resources the mapping touches against the FHIR R4B models of
`fhir.resources` (imported on first use), with messages that name paths, not values."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cleanclaim.engine.formats.fhir.documents import _TOO_DEEP, _Entry
from cleanclaim.engine.formats.fhir.terms import _IDENTIFIER_RE, Json, _obj

if TYPE_CHECKING:
    from fhir_core.fhirabstractmodel import FHIRAbstractModel

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

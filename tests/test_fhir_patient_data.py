"""Damaged FHIR files never quote patient values (issue 18.9): every error path of the FHIR
reader, through `cleanclaim check`, is scanned for the patient values of its input, on
stderr and in the decisions (the X12 twin is in tests/test_x12_envelope.py)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cleanclaim.engine.cli import app

DATA = Path(__file__).parent / "data" / "fhir"
_BUNDLE: dict[str, Any] = json.loads((DATA / "professional-claim-bundle.json").read_text())

# The Patient of the bundle, with an address and telecom added (the sample has none).
PATIENT: dict[str, Any] = {
    **_BUNDLE["entry"][0]["resource"],
    "name": [{"family": "Testperson", "given": ["Ada"]}],
    "address": [
        {
            "line": ["742 Evergreen Terrace"],
            "city": "Springfield",
            "state": "IL",
            "postalCode": "62704",
        }
    ],
    "telecom": [{"system": "phone", "value": "555-867-5309"}],
}
PATIENT_VALUES = [
    "Testperson",
    "Ada",
    "1EG4TE5MK73",
    "999-00-1234",
    "1951",
    "Evergreen",
    "Springfield",
    "62704",
    "867-5309",
    "femal",
]

Damage = Callable[[dict[str, Any]], None]


def _set(key: str, value: object) -> Damage:
    def damage(patient: dict[str, Any]) -> None:
        patient[key] = value

    return damage


def _ident(value: object) -> Damage:
    def damage(patient: dict[str, Any]) -> None:
        patient["identifier"][1]["value"] = value

    return damage


DAMAGES: dict[str, Damage] = {
    "birthDate impossible": _set("birthDate", "1951-13-45"),
    "birthDate partial": _set("birthDate", "1951-04"),
    "birthDate free text": _set("birthDate", "April 12th 1951 Testperson"),
    "birthDate number": _set("birthDate", 19510412),
    "birthDate with time": _set("birthDate", "1951-04-12T10:00:00Z"),
    "gender unknown code": _set("gender", "femalex"),
    "gender number": _set("gender", 1951),
    "name a string": _set("name", "Ada Testperson"),
    "name family a list": _set("name", [{"family": ["Testperson"], "given": "Ada"}]),
    "identifier value a number": _ident(19510412),
    "identifier value an object": _ident({"v": "1EG4TE5MK73"}),
    "identifier a string": _set("identifier", "1EG4TE5MK73"),
    "address a string": _set("address", "742 Evergreen Terrace, Springfield 62704"),
    "address postalCode a number": _set("address", [{"city": "Springfield", "postalCode": 62704}]),
    "address unknown element": _set("address", [{"city": "Springfield", "zip": "62704"}]),
    "telecom bad system": _set("telecom", [{"system": "fone", "value": "555-867-5309"}]),
    "telecom value a number": _set("telecom", [{"system": "phone", "value": 5558675309}]),
    "unknown element": _set("nickname", "Ada Testperson"),
}


def bundle(damage: Damage | None) -> dict[str, Any]:
    data = copy.deepcopy(_BUNDLE)
    patient = copy.deepcopy(PATIENT)
    if damage is not None:
        damage(patient)
    data["entry"][0]["resource"] = patient
    return data


def check(path: Path) -> tuple[str, str]:
    result = CliRunner().invoke(
        app,
        ["check", str(path), "--format", "ndjson", "--today", "2026-03-02"],
        env={"CLEANCLAIM_PLUGINS": "none"},
    )
    assert result.exit_code in (0, 1, 2, 3), result.output
    return result.stdout, result.stderr


def assert_no_patient_value(stdout: str, stderr: str) -> None:
    for value in PATIENT_VALUES:
        assert value not in stderr, f"stderr quotes {value!r}: {stderr}"
        assert value not in stdout, f"the decisions quote {value!r}: {stdout}"


def test_the_undamaged_bundle_is_read_and_the_scan_can_fail(tmp_path: Path) -> None:
    path = tmp_path / "claim.json"
    path.write_text(json.dumps(bundle(None)))
    stdout, stderr = check(path)
    assert json.loads(stdout.splitlines()[0])["claim_id"] == "C-1001"
    assert_no_patient_value(stdout, stderr)
    with pytest.raises(AssertionError):  # the scan finds a value when one is there
        assert_no_patient_value(stdout + " Testperson", stderr)


@pytest.mark.parametrize("name", sorted(DAMAGES))
def test_damaged_patient_fields_are_never_quoted(tmp_path: Path, name: str) -> None:
    path = tmp_path / "claim.json"
    path.write_text(json.dumps(bundle(DAMAGES[name])))
    stdout, stderr = check(path)
    assert json.loads(stdout.splitlines()[0])["claim_id"] == "C-1001"  # one decision
    assert_no_patient_value(stdout, stderr)


@pytest.mark.parametrize(
    "name",
    [
        "birthDate impossible",
        "gender unknown code",
        "name a string",
        "address postalCode a number",
        "unknown element",
    ],
)
def test_damaged_patient_fields_in_xml_are_never_quoted(tmp_path: Path, name: str) -> None:
    from fhir.resources.R4B.bundle import Bundle

    good = Bundle.model_validate(bundle(None)).model_dump_xml()
    text = good if isinstance(good, str) else good.decode()
    xml_damage = {
        "birthDate impossible": (
            '<birthDate value="1951-04-12"/>',
            '<birthDate value="1951-13-45"/>',
        ),
        "gender unknown code": ('<gender value="female"/>', '<gender value="femalex"/>'),
        "name a string": (
            '<family value="Testperson"/>',
            '<family value="Testperson"><given value="Ada"/></family>',
        ),
        "address postalCode a number": (
            '<postalCode value="62704"/>',
            '<postalCode value="62704"><x value="1"/></postalCode>',
        ),
        "unknown element": (
            '<gender value="female"/>',
            '<gender value="female"/><nickname value="Ada Testperson"/>',
        ),
    }[name]
    assert xml_damage[0] in text
    path = tmp_path / "claim.xml"
    path.write_text(text.replace(*xml_damage))
    stdout, stderr = check(path)
    assert_no_patient_value(stdout, stderr)


@pytest.mark.parametrize("reference", ["Patient/missing", "urn:uuid:nowhere", "#pat"])
def test_missing_patient_reference_is_never_quoted(tmp_path: Path, reference: str) -> None:
    data = bundle(None)
    data["entry"][4]["resource"]["patient"] = {"reference": reference, "display": "Ada Testperson"}
    path = tmp_path / "claim.json"
    path.write_text(json.dumps(data))
    stdout, stderr = check(path)
    assert json.loads(stdout.splitlines()[0])["status"] == "reject"
    assert_no_patient_value(stdout, stderr)


def test_malformed_file_error_never_quotes_patient_values(tmp_path: Path) -> None:
    text = json.dumps(bundle(None))
    path = tmp_path / "claim.json"
    path.write_text(text.replace('"Testperson"', '"Testperson" "Ada"'))  # not JSON any more
    stdout, stderr = check(path)
    assert_no_patient_value(stdout, stderr)
    xml = tmp_path / "claim.xml"
    xml.write_text(
        '<Bundle xmlns="http://hl7.org/fhir"><entry><resource><Patient>'
        '<name><family value="Testperson"></name></Patient></resource></entry>'
        "</Bundle>"
    )
    stdout, stderr = check(xml)
    assert_no_patient_value(stdout, stderr)

"""The CLIA number (issue 12.11): read from X12 2300 REF*X4 and FHIR (a CLIA identifier of
the billing provider), decoded alike by both claim decoders, checked by `valid_clia`."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from cleanclaim.engine import decoding, model
from cleanclaim.engine.engine import Engine
from cleanclaim.engine.formats.fhir import read_fhir
from cleanclaim.engine.formats.x12 import read_x12
from cleanclaim.engine.runtime import valid_clia
from tests.test_fhir import PAYERS as FHIR_PAYERS
from tests.test_fhir import claim_of, professional
from tests.test_x12 import MULTI, PAYERS, TODAY, join, segments, text_of

TODAY_DATE = dt.date(2026, 3, 2)


def _x12_with(ref: str | None) -> list[Any]:
    """The multi sample with `ref` inserted after the first claim's CLM (loop 2300)."""
    segs = segments(text_of(MULTI))
    i = next(n for n, s in enumerate(segs) if s.startswith("CLM*C-1001*"))
    if ref is not None:
        segs.insert(i + 1, ref)
    return list(read_x12(join(segs), "t.837", PAYERS, today=TODAY))


def test_x12_2300_ref_x4_is_the_clia_number() -> None:
    first = _x12_with("REF*X4*05D0123456")[0]
    assert first.data is not None and first.problems == ()
    assert first.data["clia_number"] == "05D0123456"


def test_x12_without_ref_x4_has_no_clia_number() -> None:
    first = _x12_with(None)[0]
    assert first.data is not None and first.data["clia_number"] is None


def test_x12_empty_ref_x4_is_a_located_problem() -> None:
    first = _x12_with("REF*X4*")[0]
    assert any(
        "CLIA number (X4) is empty" in p.message and p.where.startswith("REF")
        for p in first.problems
    )


def test_x12_ref_x4_in_a_line_loop_is_not_the_claims() -> None:
    segs = segments(text_of(MULTI))
    i = next(n for n, s in enumerate(segs) if s.startswith("SV1*")) + 1
    segs.insert(i, "REF*X4*05D0123456")
    first = next(iter(read_x12(join(segs), "t.837", PAYERS, today=TODAY)))
    assert first.data is not None and first.data["clia_number"] is None


def _fhir_clia(bundle: dict[str, Any]) -> Any:
    raw = list(read_fhir(json.dumps(bundle), "t.json", FHIR_PAYERS))
    assert len(raw) == 1 and raw[0].data is not None
    return raw[0].data["clia_number"]


def test_fhir_clia_identifier_of_the_billing_provider() -> None:
    bundle = professional()
    prac = bundle["entry"][3]["resource"]
    prac.setdefault("identifier", []).append(
        {"system": "http://terminology.hl7.org/NamingSystem/CLIA", "value": " 05D0123456 "}
    )
    assert _fhir_clia(bundle) == "05D0123456"


def test_fhir_clia_oid_on_the_reference_itself() -> None:
    bundle = professional()
    claim_of(bundle)["provider"]["identifier"] = {
        "system": "urn:oid:2.16.840.1.113883.4.7",
        "value": "05D0123456",
    }
    assert _fhir_clia(bundle) == "05D0123456"


def test_fhir_without_clia_identifier_has_none() -> None:
    assert _fhir_clia(professional()) is None


CLAIM: dict[str, Any] = {
    "claim_id": "L-1",
    "payer": "medicare",
    "received_date": "2026-03-02",
    "member": {
        "id": "M1",
        "birth_date": "1951-04-12",
        "sex": "F",
        "coverage": [{"payer": "medicare", "start": "2016-01-01"}],
    },
    "billing_provider": {"npi": "1234567893"},
    "rendering_provider": {"npi": "1234567893"},
    "referring_provider": {"npi": "1234567893"},  # an ordered test (provider-data.policy)
    "place_of_service": "11",
    "diagnoses": ["E11.9"],
    "lines": [
        {
            "line": 1,
            "code": "82962",
            "units": 1,
            "charge": "12.00",
            "service_date": "2026-02-10",
            "diagnosis_pointers": [1],
        }
    ],
}


@pytest.mark.parametrize(
    "value, expected", [(" 05D0123456 ", "05D0123456"), ("", None), (None, None), (12345, "12345")]
)
def test_both_decoders_read_clia_number_alike(value: Any, expected: str | None) -> None:
    data = {**CLAIM, "clia_number": value}
    slow, problems = model.decode_claim(data, TODAY_DATE)
    fast, fast_problems = decoding.decode_claim(data, TODAY_DATE)
    assert problems == fast_problems == []
    assert slow is not None and fast is not None
    assert slow.clia_number == fast.clia_number == expected
    from_bytes = decoding.decode_json(json.dumps(data).encode(), TODAY_DATE)
    if isinstance(value, str) or value is None:
        assert from_bytes is not None and from_bytes.clia_number == expected


@pytest.mark.parametrize(
    "value, ok",
    [
        ("05D0123456", True),
        ("99D9999999", True),
        ("0512345678", False),  # no D in the third position
        ("05d0123456", False),  # the letter is an upper-case D
        ("05D012345", False),
        ("05D01234567", False),  # 9 or 11 characters
        ("AAD0123456", False),
        ("05D012345X", False),
        ("\uff105D0123456", False),
        (None, False),
    ],
)
def test_valid_clia_is_two_digits_d_seven_digits(value: str | None, ok: bool) -> None:
    assert valid_clia(value) is ok


def test_engine_rejects_a_lab_line_without_clia_and_passes_it_with_one() -> None:
    engine = Engine()
    without = engine.check(CLAIM, today=TODAY_DATE).to_json()
    assert [(f["rule"], f["carc"], f["rarc"]) for f in without["findings"]] == [
        ("medicare/clia/number-missing", "16", ["MA120"])
    ]
    with_clia = engine.check({**CLAIM, "clia_number": "05D0123456"}, today=TODAY_DATE)
    assert with_clia.to_json()["status"] == "clean"

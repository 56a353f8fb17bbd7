"""Coverage span `type`/`order` and `member.date_of_death` (issue 12.6): read alike by
both claim decoders, unknown values located, read from X12 PAT06 and FHIR."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from cleanclaim.engine import decoding, model
from cleanclaim.engine.formats.fhir import read_fhir
from cleanclaim.engine.formats.x12 import read_x12
from tests.test_fhir import PAYERS as FHIR_PAYERS
from tests.test_fhir import claim_of, professional
from tests.test_x12 import MULTI, PAYERS, TODAY, join, segments, text_of

DAY = dt.date(2026, 3, 2)
CLAIM: dict[str, Any] = {
    "claim_id": "COB-1",
    "payer": "medicare",
    "received_date": "2026-03-02",
    "member": {
        "id": "M1",
        "birth_date": "1951-04-12",
        "sex": "F",
        "date_of_death": "2026-03-01",
        "coverage": [
            {
                "payer": "medicare",
                "start": "2016-01-01",
                "type": " Medicare ",
                "order": "SECONDARY",
            },
            {"payer": "acme-ppo", "start": "2020-01-01", "type": "commercial", "order": "primary"},
        ],
    },
    "billing_provider": {"npi": "1234567893"},
    "rendering_provider": {"npi": "1234567893"},
    "place_of_service": "11",
    "diagnoses": ["I10"],
    "lines": [
        {
            "line": 1,
            "code": "99213",
            "units": 1,
            "charge": "90.00",
            "service_date": "2026-02-10",
            "diagnosis_pointers": [1],
        }
    ],
}


def _spans(claim: model.Claim) -> list[tuple[Any, ...]]:
    return [(s.payer, s.type, s.order) for s in claim.member.coverage]


def test_both_decoders_read_type_order_and_date_of_death_alike() -> None:
    slow, problems = model.decode_claim(copy.deepcopy(CLAIM), DAY)
    fast = decoding.decode_json(json.dumps(CLAIM).encode(), DAY)
    assert problems == [] and slow is not None and fast is not None
    assert (
        _spans(slow)
        == _spans(fast)
        == [("medicare", "medicare", "secondary"), ("acme-ppo", "commercial", "primary")]
    )
    assert slow.member.date_of_death == fast.member.date_of_death == dt.date(2026, 3, 1)


@pytest.mark.parametrize(("key", "value"), [("type", "medicare-advantage"), ("order", "first")])
def test_an_unknown_type_or_order_is_a_located_problem(key: str, value: str) -> None:
    data = copy.deepcopy(CLAIM)
    data["member"]["coverage"][1][key] = value
    for decode in (model.decode_claim, decoding.decode_claim):
        claim, problems = decode(copy.deepcopy(data), DAY)
        assert claim is None
        assert [p.where for p in problems] == [f"member.coverage[1].{key}"]
        assert value in problems[0].message and "one of" in problems[0].message


def test_a_bad_date_of_death_is_a_problem_without_its_value() -> None:
    data = copy.deepcopy(CLAIM)
    data["member"]["date_of_death"] = "2026-02-30"
    claim, problems = decoding.decode_claim(data, DAY)
    assert claim is None and [p.where for p in problems] == ["member.date_of_death"]
    assert "2026-02-30" not in problems[0].message


def _x12(pat: str | None, before: str = "NM1*QC") -> Any:
    """The multi sample with the patient loop's PAT segment replaced by `pat`."""
    segs = segments(text_of(MULTI))
    i = next(n for n, s in enumerate(segs) if s.startswith("PAT*19"))
    if pat is None:
        del segs[i]
    else:
        segs[i] = pat
    return [
        c
        for c in read_x12(join(segs), "t.837", PAYERS, today=TODAY)
        if c.data is not None and c.data["member"].get("birth_date") == "2015-06-07"
    ]


def test_x12_pat06_is_the_date_of_death() -> None:
    [claim] = _x12("PAT*19****D8*20260101")
    assert claim.problems == ()
    assert claim.data is not None and claim.data["member"]["date_of_death"] == "2026-01-01"


def test_x12_without_pat06_has_no_date_of_death() -> None:
    [claim] = _x12("PAT*19")
    assert claim.data is not None and "date_of_death" not in claim.data["member"]


@pytest.mark.parametrize(
    ("pat", "where", "fragment"),
    [
        ("PAT*19****D8*20260230", "PAT06", "not a valid date"),
        ("PAT*19****RD8*20260101", "PAT05", "is not D8"),
    ],
)
def test_x12_bad_pat_dates_are_located_and_not_quoted(pat: str, where: str, fragment: str) -> None:
    [claim] = _x12(pat)
    found = [p for p in claim.problems if fragment in p.message]
    assert found and found[0].where.endswith(where) and "2026" not in found[0].message


def test_fhir_deceased_datetime_is_the_date_of_death() -> None:
    bundle = professional()
    bundle["entry"][0]["resource"]["deceasedDateTime"] = "2026-01-05T10:00:00Z"
    [raw] = list(read_fhir(json.dumps(bundle), "t.json", FHIR_PAYERS))
    assert raw.data is not None and raw.data["member"]["date_of_death"] == "2026-01-05"


def test_fhir_insurance_sequence_gives_the_order_of_several_coverages() -> None:
    bundle = professional()
    second = copy.deepcopy(bundle["entry"][2])
    second["fullUrl"] = "http://example.org/fhir/Coverage/cov-2"
    second["resource"]["id"] = "cov-2"
    bundle["entry"].append(second)
    claim = claim_of(bundle)
    claim["insurance"][0]["sequence"] = 2
    claim["insurance"].append(
        {"sequence": 1, "focal": False, "coverage": {"reference": "Coverage/cov-2"}}
    )
    [raw] = list(read_fhir(json.dumps(bundle), "t.json", FHIR_PAYERS))
    assert raw.data is not None
    assert [s.get("order") for s in raw.data["member"]["coverage"]] == ["secondary", "primary"]


def test_fhir_one_insurance_says_no_order() -> None:
    [raw] = list(read_fhir(json.dumps(professional()), "t.json", FHIR_PAYERS))
    assert raw.data is not None
    assert all("order" not in s for s in raw.data["member"]["coverage"])

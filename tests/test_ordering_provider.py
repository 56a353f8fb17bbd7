"""The ordering provider (issue 12.5): JSON `ordering_provider`, X12 2420E NM1*DK, read
alike by both decoders."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from cleanclaim.engine import decoding, model
from cleanclaim.engine.formats.x12 import read_x12
from tests.test_x12 import MULTI, PAYERS, TODAY, join, segments, text_of


def _first_claim(extra: list[tuple[str, str]]) -> dict[str, Any]:
    """The multi sample's first claim, each (after, segment) inserted after the first
    segment starting with `after`."""
    segs = segments(text_of(MULTI))
    for after, seg in extra:
        i = next(n for n, s in enumerate(segs) if s.startswith(after))
        segs.insert(i + 1, seg)
    first = next(iter(read_x12(join(segs), "t.837", PAYERS, today=TODAY)))
    assert first.data is not None and first.problems == ()
    return first.data


def test_x12_2420e_dk_of_a_line_is_the_ordering_provider() -> None:
    data = _first_claim([("DTP*472*D8*20260210", "NM1*DK*1*ORDER*OLGA****XX*1245319599")])
    assert data["ordering_provider"] == {"npi": "1245319599"}
    assert data["referring_provider"] == {"npi": "1555444334"}  # 2310A stays its own


def test_x12_without_2420e_has_no_ordering_provider() -> None:
    assert _first_claim([])["ordering_provider"] is None


def test_x12_2420e_without_an_npi_names_an_ordering_provider_without_one() -> None:
    data = _first_claim([("DTP*472*D8*20260210", "NM1*DK*1*ORDER*OLGA")])
    assert data["ordering_provider"] == {"npi": None}


def test_x12_nm1_dk_in_the_claim_loop_is_not_taken() -> None:
    # NM1*DK belongs to 2420E (line); the claim loop 2310 has no ordering provider
    data = _first_claim([("NM1*82*1*CARDIO", "NM1*DK*1*ORDER*OLGA****XX*1245319599")])
    assert data["ordering_provider"] is None


def test_both_decoders_read_the_ordering_provider_alike() -> None:
    claim = {
        "claim_id": "O-1",
        "payer": "medicare",
        "received_date": "2026-03-02",
        "ordering_provider": {"npi": " 1245319599 "},
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "diagnoses": ["I10"],
        "lines": [
            {"code": "72148", "service_date": "2026-02-10", "units": 1, "diagnosis_pointers": [1]}
        ],
    }
    day = dt.date(2026, 3, 2)
    slow, problems = model.decode_claim(claim, day)
    fast = decoding.decode_json(json.dumps(claim).encode(), day)
    assert problems == [] and slow is not None and fast is not None
    assert slow.ordering_provider is not None and fast.ordering_provider is not None
    assert slow.ordering_provider.npi == fast.ordering_provider.npi == "1245319599"
    none, _ = model.decode_claim({**claim, "ordering_provider": None}, day)
    assert none is not None and none.ordering_provider is None

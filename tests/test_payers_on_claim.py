"""The payers a claim itself names (`insurance`: 837P SBR of 2000B and 2320, FHIR
Claim.insurance with Coverage.type), the roster's span type/order, and the line's own CLIA
number (837P 2400 REF*X4): issues 12.6 and 12.11."""

from __future__ import annotations

import copy
import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.engine import decoding, model
from cleanclaim.engine.formats.fhir import read_fhir
from cleanclaim.engine.formats.x12 import read_x12
from cleanclaim.engine.history import SCHEMA_VERSION, HistoryStore
from cleanclaim.engine.roster import RosterError, import_roster, read_roster, roster_coverage
from tests.conftest import shared_engine
from tests.test_fhir import PAYERS as FHIR_PAYERS
from tests.test_fhir import claim_of, professional
from tests.test_x12 import MULTI, PAYERS, TODAY, join, read_file, segments, text_of

DAY = dt.date(2026, 3, 2)


def _findings(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    decision = shared_engine().check(data, today=DAY)
    return [(f.rule, f.severity, f"{f.group}-{f.carc}") for f in decision.findings]


def _first_claim(segs: list[str]) -> dict[str, Any]:
    """The first claim (C-1001, Medicare) of an edited copy of the multi sample."""
    [first, *_] = list(read_x12(join(segs), "t.837", PAYERS, today=TODAY))
    assert first.data is not None
    return first.data


def _multi_with(after: str, *added: str, replace: bool = False) -> list[str]:
    segs = segments(text_of(MULTI))
    i = next(n for n, s in enumerate(segs) if s.startswith(after))
    start = i if replace else i + 1
    segs[start : i + 1] = list(added)
    return segs


# ---- X12 837P: SBR of 2000B and 2320 ----------------------------------------------------


def test_a_real_msp_secondary_claim_names_medicare_secondary_and_the_ppo_primary() -> None:
    # The X12 COB example 4: 2000B SBR*S ... MB (Medicare secondary), 2320 SBR*P ... 12
    # (a PPO primary, 2330B NM1*PR ... PI*59999) with the primary's payment (AMT*D).
    [raw] = read_file("demo.cob.example4.837")
    assert raw.problems == () and raw.data is not None
    assert raw.data["insurance"] == [
        {"payer": "x12:10234", "type": "medicare", "order": "secondary"},
        {"payer": "x12:59999", "type": "commercial", "order": "primary"},
    ]
    assert "coverage" not in raw.data["member"]  # not eligibility data


def test_a_2320_medicare_advantage_plan_denies_co24_and_flags_msp() -> None:
    segs = _multi_with(
        "PRV*PE",
        "SBR*P*18*******16",
        "NM1*IL*1*DOE*ALEX****MI*MA0001",
        "NM1*PR*2*SOME MA PLAN*****PI*MA777",
    )
    data = _first_claim(segs)
    assert data["insurance"] == [
        {"payer": "medicare", "type": "medicare", "order": "primary"},
        {"payer": "x12:MA777", "type": "medicare_advantage", "order": "primary"},
    ]
    found = _findings(data)
    assert ("medicare/coverage/medicare-advantage", "deny", "CO-24") in found
    assert ("medicare/coverage/other-payer-primary", "review", "CO-22") in found


def test_medicare_secondary_on_its_own_claim_is_an_msp_review() -> None:
    segs = _multi_with("SBR*P*18*******MB", "SBR*S*18****12***MB", replace=True)
    data = _first_claim(segs)
    assert data["insurance"] == [{"payer": "medicare", "type": "medicare", "order": "secondary"}]
    found = _findings(data)
    assert ("medicare/coverage/other-payer-primary", "review", "CO-22") in found
    assert not any(f[1] == "deny" for f in found)


def test_medicare_primary_alone_names_no_other_payer() -> None:
    data = _first_claim(segments(text_of(MULTI)))
    assert not any(rule.startswith("medicare/coverage/") for rule, _, _ in _findings(data))


@pytest.mark.parametrize(
    ("sbr", "where", "fragment"),
    [
        ("SBR*X*18*******MB", "SBR01", 'payer responsibility sequence "X"'),
        ("SBR**18*******MB", "SBR01", "is missing"),
        ("SBR*P*18*******QQ", "SBR09", 'claim filing indicator "QQ"'),
    ],
)
def test_bad_sbr_codes_are_located_problems(sbr: str, where: str, fragment: str) -> None:
    segs = _multi_with("SBR*P*18*******MB", sbr, replace=True)
    [first, *_] = list(read_x12(join(segs), "t.837", PAYERS, today=TODAY))
    found = [p for p in first.problems if fragment in p.message]
    assert found and found[0].where.endswith(where)


def test_a_fourth_payer_sequence_is_valid_and_gives_no_order() -> None:
    segs = _multi_with("SBR*P*18*******MB", "SBR*A*18*******MB", replace=True)
    [first, *_] = list(read_x12(join(segs), "t.837", PAYERS, today=TODAY))
    assert first.problems == () and first.data is not None
    assert first.data["insurance"] == [{"payer": "medicare", "type": "medicare", "order": None}]


# ---- X12 837P: the line's CLIA number (2400 REF*X4) --------------------------------------


def _lab_claim(*line_refs: str, claim_ref: str | None = None) -> list[str]:
    segs = segments(text_of(MULTI))
    i = next(n for n, s in enumerate(segs) if s.startswith("SV1*HC:93000"))
    segs[i] = "SV1*HC:82962*12.00*UN*1***1"
    segs[i + 2 : i + 2] = list(line_refs)  # after DTP*472
    if claim_ref is not None:
        j = next(n for n, s in enumerate(segs) if s.startswith("REF*G1*PA-77812"))
        segs.insert(j, claim_ref)
    return segs


def test_a_line_clia_number_is_read_for_its_line() -> None:
    data = _first_claim(_lab_claim("REF*X4*05D0654321"))
    assert data["clia_number"] is None
    assert data["lines"][0]["clia_number"] == "05D0654321"
    assert "clia_number" not in data["lines"][1]
    assert not any(rule.startswith("medicare/clia/") for rule, _, _ in _findings(data))


def test_a_lab_line_without_any_clia_number_is_rejected_ma120() -> None:
    data = _first_claim(_lab_claim())
    found = _findings(data)
    assert ("medicare/clia/number-missing", "reject", "CO-16") in found


def test_the_line_number_counts_over_a_malformed_claim_number() -> None:
    good_line = _findings(
        _first_claim(_lab_claim("REF*X4*05D0654321", claim_ref="REF*X4*0512345678"))
    )
    assert not any(rule.startswith("medicare/clia/number") for rule, _, _ in good_line)
    bad_line = _findings(
        _first_claim(_lab_claim("REF*X4*0565432100", claim_ref="REF*X4*05D0123456"))
    )
    assert ("medicare/clia/number-malformed", "reject", "CO-16") in bad_line


def test_an_empty_line_clia_number_is_located() -> None:
    [first, *_] = list(read_x12(join(_lab_claim("REF*X4*")), "t.837", PAYERS, today=TODAY))
    found = [p for p in first.problems if "CLIA number (X4) is empty" in p.message]
    assert found and found[0].where.startswith("REF")


def test_both_decoders_read_the_line_clia_number_and_insurance_alike() -> None:
    data = _first_claim(_lab_claim("REF*X4*05D0654321"))
    slow, problems = model.decode_claim(copy.deepcopy(data), DAY)
    fast = decoding.decode_json(json.dumps(data).encode(), DAY)
    assert problems == [] and slow is not None and fast is not None
    assert (
        [ln.clia_number for ln in slow.lines]
        == [ln.clia_number for ln in fast.lines]
        == ["05D0654321", None]
    )
    assert (
        [(s.payer, s.type, s.order) for s in slow.insurance]
        == [(s.payer, s.type, s.order) for s in fast.insurance]
        == [("medicare", "medicare", "primary")]
    )
    assert slow.member.coverage_known is fast.member.coverage_known is False


def test_an_unknown_insurance_type_is_a_located_problem() -> None:
    data = _first_claim(segments(text_of(MULTI)))
    data["insurance"][0]["type"] = "medicare-part-b"
    for decode in (model.decode_claim, decoding.decode_claim):
        claim, problems = decode(copy.deepcopy(data), DAY)
        assert claim is None and [p.where for p in problems] == ["insurance[0].type"]


# ---- FHIR R4: Claim.insurance, Coverage.type (SOPT), Coverage.order ----------------------


def _fhir(sopt: str | None, order: int | None = None) -> dict[str, Any]:
    bundle = professional()
    coverage = bundle["entry"][2]["resource"]
    assert coverage["resourceType"] == "Coverage"
    if sopt is not None:
        coverage["type"] = {"coding": [{"system": "https://nahdo.org/sopt", "code": sopt}]}
    if order is not None:
        coverage["order"] = order
    [raw] = list(read_fhir(json.dumps(bundle), "t.json", FHIR_PAYERS))
    assert raw.problems == () and raw.data is not None
    return raw.data


@pytest.mark.parametrize(
    ("sopt", "kind"),
    [
        ("111", "medicare_advantage"),
        ("11", "medicare_advantage"),
        ("121", "medicare"),
        ("13", "hospice"),
        ("14", None),
        ("21", "medicaid"),
        ("95", "workers_compensation"),
        ("X1", None),
    ],
)
def test_fhir_coverage_type_in_sopt(sopt: str, kind: str | None) -> None:
    data = _fhir(sopt)
    assert data["insurance"] == [{"payer": "medicare", "type": kind, "order": "primary"}]
    assert data["member"]["coverage"][0].get("type") == kind


def test_fhir_medicare_advantage_coverage_denies_co24() -> None:
    found = _findings(_fhir("112"))
    assert ("medicare/coverage/medicare-advantage", "deny", "CO-24") in found


def test_fhir_coverage_order_gives_the_span_order() -> None:
    data = _fhir(None, order=2)
    assert data["member"]["coverage"][0]["order"] == "secondary"
    assert data["insurance"][0]["order"] == "primary"  # Claim.insurance.sequence 1


def test_fhir_several_insurances_keep_their_claim_order() -> None:
    bundle = professional()
    second = copy.deepcopy(bundle["entry"][2])
    second["fullUrl"] = "http://example.org/fhir/Coverage/cov-2"
    second["resource"]["id"] = "cov-2"
    second["resource"]["type"] = {
        "coding": [{"system": "urn:oid:2.16.840.1.113883.3.221.5", "code": "5"}]
    }
    bundle["entry"].append(second)
    claim = claim_of(bundle)
    claim["insurance"][0]["sequence"] = 2
    claim["insurance"].append(
        {"sequence": 1, "focal": False, "coverage": {"reference": "Coverage/cov-2"}}
    )
    [raw] = list(read_fhir(json.dumps(bundle), "t.json", FHIR_PAYERS))
    assert raw.data is not None
    assert [(i["type"], i["order"]) for i in raw.data["insurance"]] == [
        (None, "secondary"),
        ("commercial", "primary"),
    ]


# ---- the roster: span type and order ------------------------------------------------------


ROSTER = """member_id,payer,plan,start,end,type,order
1EG4TE5MK73,medicare,,2016-04-01,,medicare,
1EG4TE5MK73,humana-ma,,2026-01-01,,medicare_advantage,primary
7KQ2MN4RT61,medicare,,2016-04-01,,,
7KQ2MN4RT61,medicare,,2026-02-01,,Hospice,
"""


def _claim(member: str) -> dict[str, Any]:
    return {
        "claim_id": f"R-{member}",
        "payer": "medicare",
        "received_date": "2026-03-02",
        "member": {"id": member, "birth_date": "1951-04-12", "sex": "F"},
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "place_of_service": "11",
        "diagnoses": ["M54.50"],
        "lines": [
            {
                "line": 1,
                "code": "99213",
                "units": 1,
                "charge": "95.00",
                "service_date": "2026-02-10",
                "diagnosis_pointers": [1],
            }
        ],
    }


def test_roster_spans_carry_type_and_order_to_the_rules(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER)
    with HistoryStore(tmp_path / "state.sqlite") as store:
        import_roster(store, read_roster(path))
        spans = roster_coverage(store, "1EG4TE5MK73")
        assert [(s.payer, s.type, s.order) for s in spans] == [
            ("medicare", "medicare", None),
            ("humana-ma", "medicare_advantage", "primary"),
        ]
        decisions = shared_engine().check_many(
            [_claim("1EG4TE5MK73"), _claim("7KQ2MN4RT61")], history=store
        )
        found = [[(f.rule, f"{f.group}-{f.carc}") for f in d.findings] for d in decisions]
    assert ("medicare/coverage/medicare-advantage", "CO-24") in found[0]
    assert ("medicare/coverage/other-payer-primary", "CO-22") in found[0]
    assert found[1] == [("medicare/coverage/hospice", "PR-B9")]


@pytest.mark.parametrize(("column", "value"), [("type", "ma"), ("order", "first")])
def test_a_bad_roster_type_or_order_names_the_row(tmp_path: Path, column: str, value: str) -> None:
    path = tmp_path / "roster.csv"
    row = {"type": "", "order": ""} | {column: value}
    path.write_text(
        f"member_id,payer,plan,start,end,type,order\n"
        f"M1,medicare,,2016-04-01,,{row['type']},{row['order']}\n"
    )
    with pytest.raises(RosterError) as failed:
        read_roster(path)
    assert failed.value.problems == [
        f"{path}:2: `{column}` is `{value}`, not one of "
        + ", ".join(model.COVERAGE_TYPES if column == "type" else model.COVERAGE_ORDERS)
    ]


def test_a_json_roster_member_gives_type_and_order(tmp_path: Path) -> None:
    path = tmp_path / "roster.json"
    path.write_text(
        json.dumps(
            [
                {
                    "id": "M2",
                    "coverage": [
                        {
                            "payer": "acme-ppo",
                            "start": "2020-01-01",
                            "type": "commercial",
                            "order": "primary",
                        }
                    ],
                }
            ]
        )
    )
    [span] = read_roster(path)
    assert (getattr(span, "type", None), getattr(span, "order", None)) == ("commercial", "primary")


def test_a_schema_5_store_gains_the_columns_and_keeps_its_spans(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with HistoryStore(path) as store, store.transaction():
        store.db.execute(
            "INSERT INTO coverage (member_key, payer, plan, start_date, "
            "end_date) VALUES (?, 'medicare', NULL, '2016-01-01', NULL)",
            (store.roster_key("M3"),),
        )
    db = sqlite3.connect(path)  # back to schema 5: without the new columns
    db.execute("ALTER TABLE coverage DROP COLUMN coverage_type")
    db.execute("ALTER TABLE coverage DROP COLUMN benefit_order")
    db.execute("PRAGMA user_version = 5")
    db.commit()
    db.close()
    with HistoryStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 6
        [span] = roster_coverage(store, "M3")
        assert (span.payer, span.type, span.order) == ("medicare", None, None)

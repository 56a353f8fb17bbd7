"""The KX threshold on allowed amounts (issue 11; audit AUDIT-2026-12 rules 20-21, FD3).

SSA section 1833(g) (BBA 2018 section 50202) and MCPM 100-04 ch.5 section 10.3: the
threshold accrues the ALLOWED amounts of the year's therapy, every provider's. The pack
adds, per line, the integrator's `expected_allowed`, else the imported MPFS national
amount times the units (an estimate: review), else the charge (review, "the basis is
charges"); other providers' amounts come in `member.therapy_ytd`, on the claim or from
the eligibility roster. The fee schedule here is tests/data/kx/PPRRVU26_JAN.csv, in the
CMS PPRRVU layout with illustrative amounts (97110: 0.87 RVU x 33.4009 = $29.06 a unit).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.engine import decoding, model
from cleanclaim.engine.history import HistoryStore
from cleanclaim.engine.refdata.allowed import amount_times_units
from cleanclaim.engine.roster import (
    RosterError,
    RosterSpan,
    RosterTherapy,
    import_roster,
    read_roster,
    roster_coverage,
    roster_therapy_ytd,
)
from tests.conftest import cli

HERE = Path(__file__).parent
PPRRVU = HERE / "data" / "kx" / "PPRRVU26_JAN.csv"
PROBE = HERE / "data" / "audit-probes" / "kx_charges.json"
TODAY = "2026-11-27"
PT_RULES = (
    "medicare/therapy/kx-threshold-pt-slp",
    "medicare/therapy/kx-threshold-pt-slp-fee-schedule",
    "medicare/therapy/kx-threshold-pt-slp-charges",
)


def pt_claim(
    claim_id: str, lines: list[dict[str, Any]], member: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "claim_id": claim_id,
        "payer": "medicare",
        "received_date": "2026-06-01",
        "member": member
        or {
            "id": "KX-M1",
            "birth_date": "1948-09-30",
            "sex": "F",
            "coverage": [{"payer": "medicare", "start": "2013-09-01"}],
        },
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "place_of_service": "11",
        "diagnoses": ["M54.50"],
        "lines": [
            {
                "line": i + 1,
                "code": "97110",
                "modifiers": ["GP"],
                "units": 4,
                "charge": "520.00",
                "diagnosis_pointers": [1],
                **ln,
            }
            for i, ln in enumerate(lines)
        ],
    }


def check(tmp_path: Path, claims: Any, *extra: str) -> dict[str, dict[str, Any]]:
    path = tmp_path / f"claims-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(claims), encoding="utf-8")
    result = cli("check", str(path), "--today", TODAY, "--no-plugin", "therapy", *extra)
    assert result.exit_code in (0, 1), result.output
    return {d["claim_id"]: d for d in json.loads(result.stdout)}


def kx(decision: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in decision["findings"] if f["rule"] in PT_RULES]


def test_amount_times_units() -> None:
    assert amount_times_units(29.06, 4) == Decimal("116.24")
    assert amount_times_units(29.06, None) == Decimal("29.06")
    assert amount_times_units(None, 4) is None


def test_fd3_probe_on_the_fee_schedule_is_clean(data_dir: Path, tmp_path: Path) -> None:
    """kx_charges.json: 20 units of 97110, $2,600 of charges. On charges it is a review;
    on the fee schedule (20 x $29.06 = $581.17) it is far below $2,480: no finding."""
    claims = json.loads(PROBE.read_text(encoding="utf-8"))
    before = check(tmp_path, claims)["KX-CHARGES"]
    assert [f["rule"] for f in kx(before)] == ["medicare/therapy/kx-threshold-pt-slp-charges"]
    assert cli("data", "import", "mpfs", str(PPRRVU)).exit_code == 0
    after = check(tmp_path, claims)["KX-CHARGES"]
    assert kx(after) == []


def test_past_the_threshold_on_the_fee_schedule_is_a_review(data_dir: Path, tmp_path: Path) -> None:
    assert cli("data", "import", "mpfs", str(PPRRVU)).exit_code == 0
    # 22 dates x 4 units x $29.06 = $2,557.17 > $2,480 (units within the sample MUE).
    lines = [
        {"service_date": (dt.date(2026, 1, 5) + dt.timedelta(days=7 * i)).isoformat()}
        for i in range(22)
    ]
    decision = check(tmp_path, pt_claim("KX-FEE", lines))["KX-FEE"]
    found = kx(decision)
    assert found and {f["rule"] for f in found} == {
        "medicare/therapy/kx-threshold-pt-slp-fee-schedule"
    }
    assert all(
        f["severity"] == "review"
        and f["group"] == "PR"
        and f["carc"] == "119"
        and f["owner"] == "billing"
        and "national fee schedule" in f["message"]
        for f in found
    )
    assert found[0]["line"] == 22  # 21 x 116.24 = 2,441.04; the 22nd line crosses


def test_expected_allowed_beats_the_fee_schedule(data_dir: Path, tmp_path: Path) -> None:
    assert cli("data", "import", "mpfs", str(PPRRVU)).exit_code == 0
    lines = [
        {"service_date": "2026-03-03", "expected_allowed": "2400.00"},
        {"service_date": "2026-03-10", "expected_allowed": "80.01"},
    ]
    decision = check(tmp_path, pt_claim("KX-SENT", lines))["KX-SENT"]
    assert [(f["rule"], f["line"], f["severity"]) for f in kx(decision)] == [
        ("medicare/therapy/kx-threshold-pt-slp", 2, "deny")
    ]


def test_history_keeps_the_expected_allowed_amount(tmp_path: Path) -> None:
    """An earlier claim, checked in another run, counts with its expected allowed amount
    (claim history records it), so a later claim is judged on allowed amounts."""
    state = str(tmp_path / "state.sqlite")
    first = pt_claim("KX-EARLY", [{"service_date": "2026-03-03", "expected_allowed": "2450.00"}])
    assert kx(check(tmp_path, first, "--state", state)["KX-EARLY"]) == []
    later = pt_claim("KX-LATE", [{"service_date": "2026-04-07", "expected_allowed": "40.00"}])
    found = kx(check(tmp_path, later, "--state", state)["KX-LATE"])
    assert [(f["rule"], f["severity"]) for f in found] == [
        ("medicare/therapy/kx-threshold-pt-slp", "deny")
    ]
    assert "2490.00" in found[0]["message"]


def test_roster_therapy_ytd_reaches_the_claim(tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "member_id,payer,plan,start,end,therapy_ytd_pt_slp,therapy_ytd_ot,therapy_ytd_as_of\n"
        "KX-M1,medicare,,2013-09-01,,,,\n"
        "KX-M1,,,,,2420.00,300.00,2026-05-01\n",
        encoding="utf-8",
    )
    state = str(tmp_path / "state.sqlite")
    result = cli("members", "import", str(roster), "--state", state)
    assert result.exit_code == 0, result.output
    assert "therapy year to date of 1 member" in result.output
    claim = pt_claim("KX-ROSTER", [{"service_date": "2026-05-12", "expected_allowed": "87.00"}])
    del claim["member"]["coverage"]  # the roster's spans and year to date apply
    found = kx(check(tmp_path, claim, "--state", state)["KX-ROSTER"])
    assert [(f["rule"], f["severity"]) for f in found] == [
        ("medicare/therapy/kx-threshold-pt-slp", "deny")
    ]
    assert "applied 2420.00 as of 2026-05-01" in found[0]["message"]
    # A claim that sends its own year to date keeps it.
    own = copy.deepcopy(claim)
    own["claim_id"] = "KX-OWN"
    own["member"]["therapy_ytd"] = {"pt_slp": "100.00", "as_of": "2026-05-01"}
    assert kx(check(tmp_path, own, "--state", state)["KX-OWN"]) == []


def test_roster_reading(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "member_id,payer,start,therapy_ytd_pt_slp,therapy_ytd_as_of\n"
        "A,medicare,2016-01-01,,\n"
        "A,,,1200.50,2026-03-01\n"
        "B,medicare,2016-01-01,10,2026-03-01\n",
        encoding="utf-8",
    )
    entries = read_roster(path)
    assert RosterSpan("A", "medicare", None, dt.date(2016, 1, 1), None) in entries
    assert RosterTherapy("A", Decimal("1200.50"), None, dt.date(2026, 3, 1)) in entries
    # a row with a span and a year to date gives both
    assert sum(1 for e in entries if e.member_id == "B") == 2
    with HistoryStore(tmp_path / "s.sqlite") as store:
        assert import_roster(store, entries) == (2, 2)
        ytd = roster_therapy_ytd(store, "A")
        assert ytd is not None and (ytd.pt_slp, ytd.ot, ytd.as_of) == (
            Decimal("1200.50"),
            None,
            dt.date(2026, 3, 1),
        )
        assert roster_therapy_ytd(store, "C") is None
        # a therapy-only import leaves the member's spans as they were
        only = tmp_path / "only.json"
        only.write_text(
            json.dumps([{"id": "A", "therapy_ytd": {"pt_slp": "5", "as_of": "2026-04-01"}}])
        )
        import_roster(store, read_roster(only))
        assert len(roster_coverage(store, "A")) == 1
        again = roster_therapy_ytd(store, "A")
        assert again is not None and again.pt_slp == Decimal(5)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("A,,,1200,", "`therapy_ytd_as_of` is required"),
        ("A,,,12x,2026-03-01", "`therapy_ytd_pt_slp` is not an amount"),
        ("A,,,-5,2026-03-01", "must be between 0"),
        ("A,,,5,2026-13-01", "is not a date"),
    ],
)
def test_roster_therapy_errors_name_the_row(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        f"member_id,payer,start,therapy_ytd_pt_slp,therapy_ytd_as_of\n{row}\n", encoding="utf-8"
    )
    with pytest.raises(RosterError) as caught:
        read_roster(path)
    assert any(p.startswith(f"{path}:2:") and message in p for p in caught.value.problems)


def _both(data: dict[str, Any]) -> tuple[Any, Any]:
    today = dt.date(2026, 11, 27)
    return model.decode_claim(data, today), decoding.decode_json(json.dumps(data).encode(), today)


def test_both_decoders_read_the_new_fields_alike() -> None:
    data = pt_claim(
        "KX-D",
        [{"service_date": "2026-03-03", "expected_allowed": 87}],
        {"id": "X", "therapy_ytd": {"pt_slp": "12.50", "ot": 3, "as_of": "2026-02-01"}},
    )
    (slow, problems), fast = _both(data)
    assert problems == [] and fast is not None and slow is not None
    for claim in (slow, fast):
        assert claim.lines[0].expected_allowed == Decimal(87)
        ytd = claim.member.therapy_ytd
        assert (ytd.pt_slp, ytd.ot, ytd.as_of) == (
            Decimal("12.50"),
            Decimal(3),
            dt.date(2026, 2, 1),
        )
        assert claim.member.therapy_ytd_as_of == dt.date(2026, 2, 1)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            {
                "lines": [
                    {
                        "line": 1,
                        "code": "97110",
                        "service_date": "2026-03-03",
                        "expected_allowed": "-1",
                    }
                ]
            },
            "lines[0].expected_allowed",
        ),
        (
            {
                "lines": [
                    {
                        "line": 1,
                        "code": "97110",
                        "service_date": "2026-03-03",
                        "expected_allowed": "lots",
                    }
                ]
            },
            "lines[0].expected_allowed",
        ),
        ({"member": {"id": "X", "therapy_ytd": {"pt_slp": "5"}}}, "member.therapy_ytd.as_of"),
        (
            {"member": {"id": "X", "therapy_ytd": {"pt_slp": "-5", "as_of": "2026-01-01"}}},
            "member.therapy_ytd.pt_slp",
        ),
    ],
)
def test_bad_new_fields_are_named(change: dict[str, Any], where: str) -> None:
    data = {**pt_claim("KX-BAD", [{"service_date": "2026-03-03"}]), **change}
    (slow, problems), fast = _both(data)
    assert slow is None and fast is None
    assert where in [p.where for p in problems]

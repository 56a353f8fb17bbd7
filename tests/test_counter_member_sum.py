"""Counters (issue 13.8): a counter's `where` reads the member (age at the date of
service) and the line's modifiers; `counts sum(AMOUNT)` totals an amount per counted line
(the fee schedule's allowed amount, else the charge) with the same counting rules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.dsl.errors import PolicyCompileError
from cleanclaim.dsl.fmt import format_policy
from cleanclaim.engine.engine import Engine

TODAY = dt.date(2026, 11, 27)

POLICY = """version 1

table fees = key "code" columns "code", "allowed"
  row "97110", 30.50
  row "97112", 40
end

counter senior_visits
  counts visits of lines where years_between(member.birth_date, line.service_date) >= 65
    and any of line.modifiers in [GP]
  per calendar year
end

counter allowed_to_date
  counts sum(first_present(fees[line.code].allowed, line.charge)) of lines
    where any of line.modifiers in [GP, GN]
  per calendar year
end

rule "acme/senior-visit-limit"
  applies to all lines
  root cause benefit_limit
  when visit_number(senior_visits) > 2
  then deny CO-119
  message "visit {visit_number(senior_visits)}"
end

rule "acme/allowed-threshold"
  applies to all lines
  root cause benefit_limit
  when total_to_date(allowed_to_date) > 100
  then review PR-119
  message "{total_to_date(allowed_to_date)} before: {total_before(allowed_to_date)}"
end
"""


def pack(tmp_path: Path, policy: str = POLICY) -> Path:
    folder = tmp_path / "packs" / "acme"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pack.yaml").write_text("id: acme\nname: acme\n", encoding="utf-8")
    (folder / "rules.policy").write_text(policy, encoding="utf-8")
    return tmp_path / "packs"


def engine(root: Path) -> Engine:
    return Engine(policy_roots=[root], today=TODAY, plugins=(), tables={})


def claim(
    claim_id: str,
    day: str,
    code: str = "97110",
    modifiers: tuple[str, ...] = ("GP",),
    birth: str = "1950-06-01",
    charge: str = "100.00",
) -> dict[str, Any]:
    return {
        "claim_id": claim_id,
        "payer": "acme",
        "received_date": day,
        "member": {"id": "M-1", "birth_date": birth, "sex": "F"},
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "place_of_service": "11",
        "diagnoses": ["M54.50"],
        "lines": [
            {
                "line": 1,
                "code": code,
                "modifiers": list(modifiers),
                "units": 1,
                "charge": charge,
                "service_date": day,
                "diagnosis_pointers": [1],
            }
        ],
    }


def messages(decisions: Any, rule: str) -> dict[str, list[str]]:
    return {d.claim_id: [f.message for f in d.findings if f.rule == rule] for d in decisions}


def test_a_counter_where_reads_the_member_age_at_the_date_of_service(tmp_path: Path) -> None:
    e = engine(pack(tmp_path))
    # Born 1950-06-01: 65 from 2015-06-01. Only visits at 65 or older count.
    batch = [
        claim("A", "2015-05-20"),
        claim("B", "2015-06-02"),
        claim("C", "2015-07-01"),
        claim("D", "2015-08-01"),
        claim("E", "2015-09-01", modifiers=("GO",)),
    ]
    found = messages(e.check_many(batch), "acme/senior-visit-limit")
    assert found == {"A": [], "B": [], "C": [], "D": ["visit 3"], "E": []}


def test_a_sum_counter_totals_the_amount_of_each_counted_line(tmp_path: Path) -> None:
    e = engine(pack(tmp_path))
    # 97110 is allowed 30.50 (not its 100.00 charge); 99999 is not in the table: its
    # charge counts; a GO line is not counted.
    batch = [
        claim("A", "2026-01-05"),
        claim("B", "2026-01-06"),
        claim("C", "2026-01-07", code="99999", modifiers=("GN",), charge="45.00"),
        claim("D", "2026-01-08", modifiers=("GO",)),
        claim("E", "2026-01-09", code="97112"),
    ]
    found = messages(e.check_many(batch), "acme/allowed-threshold")
    assert found == {
        "A": [],
        "B": [],
        "C": ["106.00 before: 61.00"],
        "D": [],
        "E": ["146.00 before: 106.00"],
    }


def test_a_denied_line_adds_nothing_to_a_sum(tmp_path: Path) -> None:
    policy = (
        POLICY
        + """
rule "acme/deny-99999"
  applies to all lines
  root cause coding
  when line.code in [99999]
  then deny CO-16
end
"""
    )
    e = engine(pack(tmp_path, policy))
    batch = [
        claim("A", "2026-01-05"),
        claim("B", "2026-01-06"),
        claim("C", "2026-01-07", code="99999", modifiers=("GN",), charge="45.00"),
        claim("E", "2026-01-09", code="97112"),
    ]
    found = messages(e.check_many(batch), "acme/allowed-threshold")
    # C is denied (CO-16): its 45.00 never counts for E.
    assert found["E"] == ["101.00 before: 61.00"]


@pytest.mark.parametrize(
    ("old", "new", "code", "fragment"),
    [
        (
            "years_between(member.birth_date, line.service_date) >= 65",
            "line.diagnosis_pointers is present",
            "E412",
            "cannot read `line.diagnosis_pointers`: claim history does not record it",
        ),
        (
            "years_between(member.birth_date, line.service_date) >= 65",
            'claim.place_of_service == "11"',
            "E412",
            "cannot read `claim`",
        ),
        (
            "counts sum(first_present",
            "counts total(first_present",
            "E411",
            "a counter cannot count `total(...)`",
        ),
        (
            "sum(first_present(fees[line.code].allowed, line.charge))",
            "sum(line.service_date)",
            "E203",
            "a counter sums amounts (numbers), not a date",
        ),
        (
            "counts sum(first_present(fees[line.code].allowed, line.charge)) of lines",
            "counts sum of lines",
            "E411",
            "`counts sum` needs the amount each line adds",
        ),
    ],
)
def test_counter_mistakes_are_located(
    tmp_path: Path, old: str, new: str, code: str, fragment: str
) -> None:
    assert old in POLICY
    with pytest.raises(PolicyCompileError) as info:
        engine(pack(tmp_path, POLICY.replace(old, new, 1)))
    found = [(e.code, e.message, e.span.line) for e in info.value.errors]
    assert any(c == code and fragment in m for c, m, _line in found), found


def test_counters_with_sums_format_round_trip() -> None:
    out = format_policy(POLICY.replace("counts sum(first", "counts  sum( first"), "x.policy")
    assert "counts sum(first_present(fees[line.code].allowed," in out
    assert format_policy(out, "x.policy") == out


FEE_POLICY = """version 1

counter allowed_to_date
  counts sum(first_present(mpfs[line.code].nonfac_amount, line.charge)) of lines
    where any of line.modifiers in [GP, GN]
  per calendar year
end

rule "acme/allowed"
  applies to all lines
  root cause benefit_limit
  when total_to_date(allowed_to_date) > 0
  then info PR-119
  message "{total_to_date(allowed_to_date)}"
end
"""


def test_a_sum_reads_the_fee_schedule_as_of_each_line_s_date(tmp_path: Path) -> None:
    import shutil

    repo = Path(__file__).resolve().parent.parent
    root = pack(tmp_path, FEE_POLICY)
    (root / "acme" / "pack.yaml").write_text(
        "id: acme\nname: acme\ntables:\n  mpfs: {format: cms-mpfs, file: mpfs.csv}\n",
        encoding="utf-8",
    )
    shutil.copyfile(
        repo / "payer_policies" / "medicare" / "tables" / "mpfs-not-shipped.csv",
        root / "acme" / "mpfs.csv",
    )
    pprrvu = repo / "tests" / "data" / "refdata" / "PPRRVU26_JAN.csv"
    e = Engine(policy_roots=[root], today=TODAY, plugins=(), tables={"cms-mpfs": pprrvu})
    # 93306 is in the fixture schedule (5.54 RVU x 33.4009) from 2026-01-01; before that
    # the charge counts.
    amount = round(5.54 * 33.4009, 2)
    batch = [
        claim("A", "2025-12-30", code="93306"),
        claim("B", "2026-01-05", code="93306"),
        claim("C", "2026-01-06", code="93306"),
    ]
    found = messages(e.check_many(batch), "acme/allowed")
    assert found == {"A": ["100.00"], "B": [f"{amount:.2f}"], "C": [f"{2 * amount:.2f}"]}

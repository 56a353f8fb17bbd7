"""Lookup tables (issue 13.6): `table NAME = csv ... key ...` and inline tables, read as
`NAME[key, ...].column`; the imported fee schedule read the same way (`mpfs[code].col`)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.dsl.errors import PolicyCompileError
from cleanclaim.dsl.fmt import format_policy
from cleanclaim.engine.engine import Engine

TODAY = dt.date(2026, 11, 27)
REPO = Path(__file__).resolve().parent.parent
PPRRVU = Path(__file__).parent / "data" / "refdata" / "PPRRVU26_JAN.csv"

LIMITS_CSV = """code,modifier,max_units,label,since
93000,,2,ecg,2020-01-01
93000,26,1,,2021-01-01
 99213 ,,4,visit,
"""

POLICY = """version 1

table limits = csv "limits.csv" key "code", "modifier"
table plans = key "plan" columns "plan", "visits", "review_from"
  row "gold", 20, 2026-01-01
  row "silver", 12, 2026-06-01
end

rule "acme/units"
  applies to all lines
  root cause submission
  when limits[line.code, ""].max_units is present
    and line.units > limits[line.code, ""].max_units
  then deny CO-151
  message "{line.units} units; at most {limits[line.code, \\"\\"].max_units}"
end

rule "acme/plan-visits"
  applies to claim
  root cause benefit_limit
  when claim.plan in plans and plans[claim.plan].visits < 15
  then review CO-119
  message "plan allows {plans[claim.plan].visits} visits"
end

rule "acme/unguarded"
  applies to all lines
  root cause coding
  when limits[line.code, "26"].max_units == 1
  then info CO-16
end
"""


def pack(
    tmp_path: Path,
    policy: str = POLICY,
    csv: str = LIMITS_CSV,
    manifest: str = "id: acme\nname: acme\n",
) -> Path:
    root = tmp_path / "packs"
    folder = root / "acme"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pack.yaml").write_text(manifest, encoding="utf-8")
    (folder / "rules.policy").write_text(policy, encoding="utf-8")
    (folder / "limits.csv").write_text(csv, encoding="utf-8")
    return root


def engine(root: Path, tables: dict[str, Any] | None = None) -> Engine:
    return Engine(
        policy_roots=[root], today=TODAY, plugins=(), tables={} if tables is None else tables
    )


def claim(plan: str | None = "Silver", lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "claim_id": "C1",
        "payer": "acme",
        "plan": plan,
        "received_date": "2026-03-01",
        "member": {"id": "M1", "birth_date": "1950-01-01", "sex": "F"},
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "place_of_service": "11",
        "diagnoses": ["R07.9"],
        "lines": lines
        or [
            {
                "line": 1,
                "code": "93000",
                "units": 3,
                "charge": "10",
                "service_date": "2026-02-01",
                "diagnosis_pointers": [1],
            },
            {
                "line": 2,
                "code": "99213",
                "modifiers": ["26"],
                "units": 3,
                "charge": "10",
                "service_date": "2026-02-01",
                "diagnosis_pointers": [1],
            },
        ],
    }


def findings(e: Engine, data: dict[str, Any]) -> list[tuple[str, str, int | None, str]]:
    return sorted((f.rule, f.severity, f.line, f.message) for f in e.check(data).findings)


Located = tuple[str, str, int, int, str, str | None]


def errors_of(root: Path, tables: dict[str, Any] | None = None) -> list[Located]:
    with pytest.raises(PolicyCompileError) as info:
        engine(root, tables)
    return [
        (Path(e.span.file).name, e.code, e.span.line, e.span.column, e.message, e.hint)
        for e in info.value.errors
    ]


def test_a_csv_table_and_an_inline_table_are_read_by_key(tmp_path: Path) -> None:
    e = engine(pack(tmp_path))
    unguarded = [
        ("acme/unguarded", "info", 1, "acme/unguarded"),
        (
            "acme/unguarded",
            "review",
            2,
            'needs limits[line.code, "26"].max_units to decide: acme/unguarded',
        ),
    ]
    assert findings(e, claim()) == sorted(
        [
            ("acme/plan-visits", "review", None, "plan allows 12 visits"),
            ("acme/units", "deny", 1, "3 units; at most 2"),
            *unguarded,
        ]
    )
    # Keys are trimmed and upper-cased: " 99213 " is 99213, "Silver" is SILVER.
    data = claim(plan="GOLD")
    data["lines"][1]["units"] = 5
    assert findings(e, data) == sorted(
        [
            ("acme/units", "deny", 1, "3 units; at most 2"),
            ("acme/units", "deny", 2, "5 units; at most 4"),
            *unguarded,
        ]
    )


def test_a_key_the_table_lacks_is_missing(tmp_path: Path) -> None:
    e = engine(pack(tmp_path))
    data = claim(
        plan="bronze",
        lines=[{"line": 1, "code": "11111", "units": 9, "service_date": "2026-02-01"}],
    )
    # Guarded with `is present`: the rule passes. Unguarded: unknown, so a review.
    assert findings(e, data) == [
        (
            "acme/unguarded",
            "review",
            1,
            'needs limits[line.code, "26"].max_units to decide: acme/unguarded',
        )
    ]
    assert findings(
        e,
        claim(
            plan=None,
            lines=[
                {
                    "line": 1,
                    "code": "93000",
                    "units": 1,
                    "service_date": "2026-02-01",
                    "modifiers": ["26"],
                }
            ],
        ),
    ) == [("acme/unguarded", "info", 1, "acme/unguarded")]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            (
                'limits[line.code, ""].max_units is present',
                'limits[line.code, "25"].max_units is present',
            ),
            ("rules.policy", "E112", 12, 26, "table `limits` has no modifier `25`"),
        ),
        (
            ("plans[claim.plan].visits < 15", "plans[claim.plan].visit < 15"),
            ("rules.policy", "E113", 21, 32, "table `plans` has no column `visit`"),
        ),
        (
            ("plans[claim.plan].visits < 15", 'plans["platnum"].visits < 15'),
            ("rules.policy", "E112", 21, 38, "table `plans` has no plan `platnum`"),
        ),
        (
            ("plans[claim.plan].visits < 15", 'plans[claim.plan, "x"].visits < 15'),
            ("rules.policy", "E202", 21, 32, "table `plans` is keyed by 1 value(s) (plan), got 2"),
        ),
        (
            ("plans[claim.plan].visits < 15", "plan_s[claim.plan].visits < 15"),
            ("rules.policy", "E107", 21, 32, "unknown table `plan_s`"),
        ),
        (
            ("claim.plan in plans", "claim.plan in limits"),
            (
                "rules.policy",
                "E202",
                21,
                22,
                "`in limits` asks for one key; the table is keyed by 2 (code, modifier)",
            ),
        ),
        (
            ('row "silver", 12, 2026-06-01', 'row "GOLD", 12, 2026-06-01'),
            (
                "rules.policy",
                "E308",
                6,
                7,
                "table `plans`: key GOLD is in the table twice (first at line 5)",
            ),
        ),
        (
            ('row "silver", 12, 2026-06-01', 'row "silver", "12", 2026-06-01'),
            (
                "rules.policy",
                "E308",
                4,
                42,
                "table `plans`: column `visits` mixes number and str values",
            ),
        ),
        (
            ('row "silver", 12, 2026-06-01', 'row "silver", 12'),
            (
                "rules.policy",
                "E308",
                6,
                7,
                "table `plans`: this row has 2 cells, the table 3 columns",
            ),
        ),
        (
            ('key "code", "modifier"', 'key "code", "modifer"'),
            ("rules.policy", "E308", 3, 45, "table `limits` has no column `modifer` to key by"),
        ),
    ],
)
def test_table_mistakes_are_located_errors(
    tmp_path: Path, change: tuple[str, str], expected: tuple[Any, ...]
) -> None:
    old, new = change
    assert old in POLICY
    found = errors_of(pack(tmp_path, POLICY.replace(old, new)))
    assert [f[:5] for f in found] == [expected], found


def test_a_table_named_twice(tmp_path: Path) -> None:
    found = errors_of(pack(tmp_path, POLICY.replace("table plans =", "table limits =")))
    assert found[0][:4] == ("rules.policy", "E111", 4, 1)
    assert found[0][4].startswith("`limits` is already the name of a table at ")
    assert found[0][4].endswith("acme/rules.policy:3")


def test_did_you_mean_for_columns_and_keys(tmp_path: Path) -> None:
    found = errors_of(
        pack(tmp_path, POLICY.replace("plans[claim.plan].visits <", 'plans["silvr"].visit <'))
    )
    hints = {code: hint for _f, code, _l, _c, _m, hint in found}
    assert "visits" in (hints["E113"] or "") and "SILVER" in (hints["E112"] or "")


def test_a_csv_table_duplicate_key_is_located_in_the_csv(tmp_path: Path) -> None:
    found = errors_of(pack(tmp_path, csv=LIMITS_CSV + "93000 , 26,5,,\n"))
    assert [f[:4] for f in found] == [("limits.csv", "E308", 5, 1)]
    assert "key 93000, 26 is in the table twice (first at line 3)" in found[0][4]


def test_a_csv_column_that_is_not_a_name(tmp_path: Path) -> None:
    found = errors_of(pack(tmp_path, csv=LIMITS_CSV.replace("max_units", "Max Units")))
    assert ("limits.csv", "E308", 1, 15) in {f[:4] for f in found}  # at the cell


def test_tables_format_round_trip(tmp_path: Path) -> None:
    text = POLICY.replace("table plans = key", "table   plans =  key")
    out = format_policy(text, "rules.policy")
    assert "table plans = key" in out
    assert '\n  row "gold", 20, 2026-01-01\n  row "silver", 12, 2026-06-01\nend\n' in out
    assert format_policy(out, "rules.policy") == out


FEE_POLICY = """version 1

rule "acme/fee"
  applies to all lines
  root cause coding
  when mpfs[line.code].global_days is present
  then info CO-45
  let tc = mpfs[line.code, "TC"].nonfac_amount
  message "{mpfs[line.code].global_days} {mpfs[line.code].pctc} {tc}"
end
"""


def fee_pack(tmp_path: Path, policy: str = FEE_POLICY) -> Path:
    root = pack(
        tmp_path,
        policy,
        manifest="id: acme\nname: acme\ntables:\n  mpfs: {format: cms-mpfs, file: mpfs.csv}\n",
    )
    shutil.copyfile(
        REPO / "payer_policies" / "medicare" / "tables" / "mpfs-not-shipped.csv",
        root / "acme" / "mpfs.csv",
    )
    return root


def test_the_fee_schedule_is_read_by_code_as_of_the_date_of_service(tmp_path: Path) -> None:
    root = fee_pack(tmp_path)
    data = claim(lines=[{"line": 1, "code": "93306", "units": 1, "service_date": "2026-02-12"}])
    assert findings(engine(root), data) == []  # the placeholder: no rows
    e = engine(root, {"cms-mpfs": PPRRVU})
    assert findings(e, data) == [("acme/fee", "info", 1, f"XXX 1 {round(3.5 * 33.4009, 2)}")]
    data["lines"][0]["service_date"] = "2025-12-31"  # before the first version
    assert findings(e, data) == []


def test_fee_schedule_columns_are_checked(tmp_path: Path) -> None:
    found = errors_of(fee_pack(tmp_path, FEE_POLICY.replace(".global_days is", ".global_day is")))
    assert [f[1:5] for f in found] == [("E113", 6, 8, "table `mpfs` has no column `global_day`")]
    assert "global_days" in (found[0][5] or "")


def test_tables_that_have_no_rows_by_key_say_so(tmp_path: Path) -> None:
    root = pack(
        tmp_path,
        POLICY.replace("plans[claim.plan].visits", "ptp[claim.plan].visits"),
        manifest="id: acme\nname: acme\ntables:\n  ptp: {format: ncci-ptp, file: p.txt}\n",
    )
    shutil.copyfile(
        REPO / "payer_policies" / "medicare" / "tables" / "ptp-practitioner-sample.txt",
        root / "acme" / "p.txt",
    )
    found = errors_of(root)
    assert {f[1] for f in found} == {"E107"}
    assert "ncci-ptp table, which has no rows to read by key" in found[0][4]


def test_explain_shows_the_value_read_from_a_table(tmp_path: Path) -> None:
    e = engine(pack(tmp_path))
    _decision, traces = e.explain(claim())
    (trace,) = [t for t in traces if t.rule == "acme/plan-visits"]
    shown = {v.label: v.value for c in trace.conditions for v in c.values}
    assert shown["plans[claim.plan].visits"] == 12

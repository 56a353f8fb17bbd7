"""A case file's `tables:` (issue 11): the cases run with a named reference table fixture
in place of the pack's own table of that format, so the KX threshold rules that price
lines from the fee schedule (`-fee-schedule`) have cases where they fire."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cleanclaim.engine.cases import CaseFileError, decide, load_cases, run_case
from tests.policy_cases_plugin import REPO, shared_engine

FEE_SCHEDULE_CASES = (
    REPO / "payer_policies" / "medicare" / "cases" / "therapy-threshold-fee-schedule.yaml"
)


def test_the_fixture_fee_schedule_prices_the_line_and_the_estimate_rule_fires() -> None:
    cases = {c.name: c for c in load_cases(FEE_SCHEDULE_CASES)}
    case = cases[
        "PT priced from the fee schedule past $2,480 without KX is a review "
        "PR-119 naming the estimate"
    ]
    assert case.tables == (
        ("cms-mpfs", (FEE_SCHEDULE_CASES.parent / "fixtures" / "PPRRVU26_JAN.csv").resolve()),
    )
    assert run_case(shared_engine(), case).passed
    # Without the fixture the shipped sample has no amounts: the line is counted on its
    # charge ($260 for 2 units), another rule and another total.
    without = decide(shared_engine(), dataclasses.replace(case, tables=()))
    rules = {f.rule for f in without.findings}
    assert "medicare/therapy/kx-threshold-pt-slp-fee-schedule" not in rules
    assert "medicare/therapy/kx-threshold-pt-slp-charges" in rules


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ("{cms-mpfs: no-such.csv}", "tables.cms-mpfs: no such file no-such.csv"),
        ("[cms-mpfs]", "`tables` maps a table format to a file"),
    ],
)
def test_a_bad_tables_entry_is_an_error_naming_the_file(
    tmp_path: Path, tables: str, message: str
) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text(
        f"tables: {tables}\ncases:\n  - name: x\n    expect: {{status: clean}}\n", encoding="utf-8"
    )
    with pytest.raises(
        CaseFileError, match=message.replace(".", r"\.").replace("[", r"\[")
    ) as info:
        load_cases(path)
    assert str(path) in str(info.value)

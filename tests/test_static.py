"""One static evaluation for the compiler and lint (dsl/static.py, issue 17.10): they
agree on `a - b` of value sets (lint read it as nothing, the compiler as a difference),
and date arithmetic is one implementation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cleanclaim.dsl import compiler, static
from cleanclaim.dsl.lint import lint
from cleanclaim.engine.engine import Engine
from cleanclaim.engine.testing import lint_environment

TODAY = dt.date(2026, 3, 2)
ENV, LOADERS, _ROOTS = lint_environment(None)
CODES = ("93000", "93005", "93010")


def claim(code: str, received: str = "2026-03-02") -> dict[str, object]:
    return {
        "claim_id": f"S-{code}",
        "payer": "demo",
        "received_date": received,
        "member": {
            "id": "X",
            "birth_date": "1980-01-01",
            "sex": "F",
            "coverage": [{"payer": "demo", "start": "2016-01-01", "end": None}],
        },
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "place_of_service": "11",
        "diagnoses": ["R07.9"],
        "lines": [
            {
                "line": 1,
                "code": code,
                "units": 1,
                "charge": "45.00",
                "service_date": "2026-02-10",
                "diagnosis_pointers": [1],
            }
        ],
    }


def write(root: Path, condition: str) -> None:
    pack = root / "demo"
    pack.mkdir(parents=True, exist_ok=True)
    (pack / "pack.yaml").write_text("id: demo\n", encoding="utf-8")
    (pack / "rules.policy").write_text(
        "version 1\nvalueset ecg = codes [93000, 93005, 93010]\n"
        "valueset tracing = codes [93005]\n"
        'rule "demo/r"\n  applies to codes ecg\n  root cause coding\n'
        f'  when {condition}\n  then deny CO-4 with N519\n  reference "r"\nend\n',
        encoding="utf-8",
    )


@pytest.mark.parametrize(
    "condition",
    [
        "line.code in ecg - [93000, 93005, 93010]",  # nothing left: never fires
        "line.code in ecg - tracing",  # fires on 93000 and 93010
        "line.code in ecg - tracing - [93000, 93010]",  # nothing left
        "line.code in tracing + [93010] - [93010]",  # only 93005
        "line.code not in ecg - tracing",  # only 93005
    ],
)
def test_lint_and_the_compiler_agree_on_set_differences(tmp_path: Path, condition: str) -> None:
    write(tmp_path, condition)
    report = lint(
        [str(tmp_path / "demo")], ENV, roots=[tmp_path], today=TODAY, table_loaders=LOADERS
    )
    never = any(p.code == "W202" for p in report.problems)
    engine = Engine([tmp_path], today=TODAY, plugins=[])
    fired = [
        code
        for code in CODES
        if any(f.rule == "demo/r" for f in engine.check(claim(code)).findings)
    ]
    assert never == (fired == []), (report.render(), fired)


def test_the_compiler_subtracts_dates_with_the_shared_implementation(tmp_path: Path) -> None:
    write(tmp_path, "claim.received_date - line.service_date > 20")
    engine = Engine([tmp_path], today=TODAY, plugins=[])
    for received in ("2026-03-02", "2026-03-01", "2026-02-28"):
        days = static.date_minus(dt.date.fromisoformat(received), dt.date(2026, 2, 10))
        fired = any(f.rule == "demo/r" for f in engine.check(claim("93000", received)).findings)
        assert fired == (days > 20), received
    assert compiler._HELPERS["_date_sub"] is static.date_minus  # no copy of its own


def test_date_arithmetic() -> None:
    d = dt.date(2024, 2, 29)
    assert static.date_minus(dt.date(2024, 3, 1), d) == 1
    assert static.date_minus(d, dt.date(2024, 3, 1)) == -1
    assert static.date_minus(d, 29) == dt.date(2024, 1, 31)
    assert static.date_plus(d, 366) == dt.date(2025, 3, 1)
    assert static.date_plus(None, 1) is None and static.date_minus(d, None) is None
    assert static.date_minus(None, d) is None
    assert static.date_plus(dt.date(9999, 12, 31), 1) is None  # no such date
    for n in range(-40, 41):
        assert static.date_minus(static.date_plus(d, n), d) == n

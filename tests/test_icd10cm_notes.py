"""ICD-10-CM Excludes1 pairs and manifestation codes (issue 12.8), read from the shipped
notes file and descriptions; each expectation is the CDC FY 2026 tabular list's text."""

from __future__ import annotations

import datetime as dt

import pytest

from cleanclaim.dsl.codesets import icd10cm, icd10cm_notes
from cleanclaim.engine import model
from cleanclaim.engine.runtime import icd10_excludes1_on_claim


@pytest.mark.parametrize(
    ("code", "other", "expected"),
    [
        ("E11.9", "E10.9", True),  # E11 Excludes1: type 1 diabetes mellitus (E10.-)
        ("I10", "O10.011", True),  # I10 Excludes1: O10-O11, O13-O16 (a range)
        ("I10", "O13.1", True),
        ("I10", "O12.00", False),  # O12 is outside O10-O11, O13-O16
        ("J45.909", "R06.2", True),  # J45 Excludes1: wheezing NOS (R06.2)
        ("A04.0", "A05.1", True),  # A04 Excludes1: bacterial foodborne intoxications (A05.-)
        ("E11.9", "I10", False),
        ("E11.9", "E11.9", False),  # a code with itself
        ("E11.9", "E11.65", False),  # the same category
    ],
)
def test_excludes1_pairs_follow_the_tabular_list(code: str, other: str, expected: bool) -> None:
    assert icd10cm_notes.excluded_pair(code, other) is expected


def test_a_block_note_covers_the_codes_of_the_block() -> None:
    # A15-A19 (tuberculosis) Excludes1: congenital tuberculosis (P37.0)
    assert icd10cm_notes.excluded_pair("A15.0", "P37.0")
    assert not icd10cm_notes.excluded_pair("A20.0", "P37.0")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("G63", True),  # Polyneuropathy in diseases classified elsewhere
        ("F02.80", True),  # Dementia in other diseases classified elsewhere
        ("E11.42", False),
        ("I10", False),
        ("R06.2", False),
    ],
)
def test_manifestation_codes_are_in_diseases_classified_elsewhere(
    code: str, expected: bool
) -> None:
    assert icd10cm_notes.is_manifestation(code) is expected


def test_the_notes_file_names_its_release_and_holds_only_codes() -> None:
    lines = (icd10cm.DATA_DIR / icd10cm_notes.EXCLUDES1_FILE).read_text().splitlines()
    assert lines[0].startswith("# title=cleanclaim ICD-10-CM Excludes1 notes")
    assert icd10cm.release() in lines[0]
    for line in lines[1:]:
        owner, _, targets = line.partition("\t")
        for part in [owner, *targets.split(",")]:
            for end in part.split("-"):
                assert icd10cm.is_code(end) or len(end) == 3, line


def test_each_pair_is_reported_once_on_the_first_code() -> None:
    claim, problems = model.decode_claim(
        {
            "claim_id": "X-1",
            "payer": "medicare",
            "diagnoses": ["E10.9", "I10", "E11.9"],
            "lines": [
                {
                    "code": "99213",
                    "service_date": "2026-02-10",
                    "units": 1,
                    "diagnosis_pointers": [1],
                }
            ],
        },
        dt.date(2026, 3, 2),
    )
    assert problems == [] and claim is not None
    assert icd10_excludes1_on_claim(claim, None, "E109") == "E119"
    assert icd10_excludes1_on_claim(claim, None, "E119") is None  # reported on E10.9
    assert icd10_excludes1_on_claim(claim, None, "I10") is None

"""A cold `cleanclaim check` of one claim (issue 14): what a run from the second on must
not import or build again. Measured by `cleanclaim bench` (docs/performance.md); here only
what makes it cheap is checked: the modules that are not imported and the cached values
being the same as the computed ones."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import holidays
import pytest

from cleanclaim.engine import runtime
from cleanclaim.engine.bench import workload_claim

# (pydantic is not among them: typer 0.29 builds its parameter converters with it)
HEAVY = ("holidays", "fhir", "simple_icd_10_cm", "uvicorn", "psycopg", "lark", "multiprocessing")

_PROBE = """
import atexit, sys
heavy = {heavy!r}
def report():
    print("IMPORTED", *sorted(m for m in heavy if m in sys.modules), file=sys.stderr)
    from cleanclaim.dsl.codesets import icd10cm
    print("DESCRIPTIONS", icd10cm._descriptions.cache_info().currsize, file=sys.stderr)
atexit.register(report)
sys.argv = ["cleanclaim", "check", {path!r}, "--format", "ndjson", "--today", "2026-06-01"]
from cleanclaim.engine.cli import main
main()
"""


def _cold_check(path: Path, cache: Path) -> tuple[bytes, set[str], int]:
    env = {**os.environ, "CLEANCLAIM_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY, path=str(path))],
        capture_output=True,
        env=env,
        check=False,
        timeout=120,
    )
    lines = done.stderr.decode().splitlines()
    line = [x for x in lines if x.startswith("IMPORTED")][-1]
    read = [x for x in lines if x.startswith("DESCRIPTIONS")][-1]
    return done.stdout, set(line.split()[1:]), int(read.split()[1])


def test_a_second_cold_check_imports_no_heavy_module(tmp_path: Path) -> None:
    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps(workload_claim(random.Random(1), 0)))
    first, _, read_first = _cold_check(claim, tmp_path / "cache")
    second, imported, read_second = _cold_check(claim, tmp_path / "cache")
    assert b'"claim_id":"W-0"' in first
    assert second == first
    assert imported == set(), imported
    # The manifestation codes come from the cache: the ~98,000 ICD-10-CM descriptions
    # are read by the first run only (the claim's diagnoses are looked up in both).
    assert (read_first, read_second) == (1, 0)


def test_the_cached_manifestation_codes_are_those_the_descriptions_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cleanclaim.dsl.codesets import icd10cm, icd10cm_notes

    monkeypatch.setenv("CLEANCLAIM_CACHE_DIR", str(tmp_path))
    icd10cm_notes._manifestation_keys.cache_clear()
    computed = icd10cm_notes._manifestation_keys()
    icd10cm_notes._manifestation_keys.cache_clear()
    cached = icd10cm_notes._manifestation_keys()
    icd10cm_notes._manifestation_keys.cache_clear()
    expected = frozenset(
        code
        for code, title in icd10cm._descriptions().items()
        if "diseases classified elsewhere" in title.lower()
    )
    assert computed == cached == expected
    assert len(expected) > 100 and any((tmp_path / "icd10cm-manifestations").iterdir())
    assert icd10cm_notes.is_manifestation("F02.80")  # dementia in other diseases ...
    assert not icd10cm_notes.is_manifestation("I10")


def test_the_cached_federal_calendar_is_the_library_calendar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEANCLAIM_CACHE_DIR", str(tmp_path))
    computed = runtime._federal_calendar(2019, 2031)
    cached = runtime._federal_calendar(2019, 2031)
    library = holidays.country_holidays("US", years=range(2019, 2032))
    expected = {y: frozenset(d for d in library if d.year == y) for y in range(2019, 2032)}
    assert computed == cached == expected
    assert any((tmp_path / "holidays").iterdir())
    # Other years are another entry, never a part of this one taken for the whole.
    assert runtime._federal_calendar(2030, 2032)[2032] == frozenset(
        d for d in holidays.country_holidays("US", years=[2032])
    )

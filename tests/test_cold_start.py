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
HEAVY = ("holidays", "fhir", "simple_icd_10_cm", "uvicorn", "psycopg", "lark",
         "multiprocessing")

_PROBE = """
import atexit, sys
heavy = {heavy!r}
atexit.register(lambda: print("IMPORTED", *sorted(m for m in heavy if m in sys.modules),
                              file=sys.stderr))
sys.argv = ["cleanclaim", "check", {path!r}, "--format", "ndjson", "--today", "2026-06-01"]
from cleanclaim.engine.cli import main
main()
"""


def _cold_check(path: Path, cache: Path) -> tuple[bytes, set[str]]:
    env = {**os.environ, "CLEANCLAIM_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY, path=str(path))],
                          capture_output=True, env=env, check=False, timeout=120)
    line = [x for x in done.stderr.decode().splitlines() if x.startswith("IMPORTED")][-1]
    return done.stdout, set(line.split()[1:])


def test_a_second_cold_check_imports_no_heavy_module(tmp_path: Path) -> None:
    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps(workload_claim(random.Random(1), 0)))
    first, _ = _cold_check(claim, tmp_path / "cache")
    second, imported = _cold_check(claim, tmp_path / "cache")
    assert b'"claim_id":"W-0"' in first
    assert second == first
    assert imported == set(), imported


def test_the_cached_federal_calendar_is_the_library_calendar(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANCLAIM_CACHE_DIR", str(tmp_path))
    computed = runtime._federal_calendar(2019, 2031)
    cached = runtime._federal_calendar(2019, 2031)
    library = holidays.country_holidays("US", years=range(2019, 2032))
    expected = {y: frozenset(d for d in library if d.year == y) for y in range(2019, 2032)}
    assert computed == cached == expected
    assert any((tmp_path / "holidays").iterdir())
    # Other years are another entry, never a part of this one taken for the whole.
    assert runtime._federal_calendar(2030, 2032)[2032] == frozenset(
        d for d in holidays.country_holidays("US", years=[2032]))

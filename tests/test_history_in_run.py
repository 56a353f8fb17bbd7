"""Within one run, a claim denied or rejected in that run counts as its decision allows
(docs/history.md, "What counts"): a denied line and a rejected claim count for no later
claim of the same run, whatever the input order, the number of workers or `--state`."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.engine import Engine
from cleanclaim.engine.engine import shipped_policies
from cleanclaim.engine.history import HistoryStore

REPO = Path(__file__).resolve().parent.parent
PSA = REPO / "tests" / "policies" / "inrun"
TODAY = dt.date(2026, 11, 27)


def claim(
    claim_id: str,
    code: str,
    dos: str,
    received: str,
    payer: str = "psa",
    pos: str = "11",
    modifiers: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "claim_id": claim_id,
        "payer": payer,
        "plan": None,
        "received_date": received,
        "member": {
            "id": "M-1",
            "birth_date": "1950-01-01",
            "sex": "M",
            "coverage": [{"payer": payer, "start": "2010-01-01"}],
        },
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "place_of_service": pos,
        "diagnoses": ["Z12.5"],
        "lines": [
            {
                "line": 1,
                "code": code,
                "modifiers": list(modifiers),
                "units": 1,
                "charge": "95.00",
                "service_date": dos,
                "diagnosis_pointers": [1],
            }
        ],
    }


# A PSA denied for late filing (received 15 months after the service), then next year's
# PSA, 11 months after the first: the first was never paid, so the second is the first
# of its 12 months.
LATE = claim("PSA-1", "G0103", "2025-03-03", "2026-06-01")
NEXT = claim("PSA-2", "G0103", "2026-02-02", "2026-02-09")
# A claim rejected for a place of service that is not a CMS code, and its corrected
# resubmission under a new id: not a duplicate of a claim that was never on file.
BAD_POS = claim("R-1", "99213", "2026-03-02", "2026-03-04", payer="medicare", pos="1")
FIXED = claim("R-2", "99213", "2026-03-02", "2026-03-09", payer="medicare")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine([shipped_policies(), PSA], today=TODAY, plugins=())


def statuses(
    engine: Engine, claims: list[dict[str, Any]], store: HistoryStore | None = None
) -> dict[str | None, tuple[str, list[str]]]:
    kwargs: dict[str, Any] = {} if store is None else {"history": store}
    return {
        d.claim_id: (d.status, [f.rule for f in d.findings if f.severity != "info"])
        for d in engine.check_many(claims, **kwargs)
    }


@pytest.mark.parametrize("order", [(LATE, NEXT), (NEXT, LATE)])
def test_a_psa_denied_for_late_filing_does_not_use_up_next_years(
    engine: Engine, order: tuple[dict[str, Any], ...]
) -> None:
    got = statuses(engine, list(order))
    assert got["PSA-1"] == ("deny", ["psa/timely-filing"])
    assert got["PSA-2"] == ("clean", [])


def test_a_paid_psa_still_uses_up_the_year(engine: Engine) -> None:
    paid = claim("PSA-1", "G0103", "2025-03-03", "2025-03-10")
    got = statuses(engine, [NEXT, paid])
    assert got["PSA-1"] == ("clean", []) and got["PSA-2"][0] == "deny"
    assert got["PSA-2"][1] == ["psa/once-in-12-months"]


@pytest.mark.parametrize("order", [(BAD_POS, FIXED), (FIXED, BAD_POS)])
def test_a_corrected_resubmission_in_the_same_run_is_no_duplicate(
    engine: Engine, order: tuple[dict[str, Any], ...]
) -> None:
    got = statuses(engine, list(order))
    assert got["R-1"][0] == "reject"
    assert got["R-2"][0] == "clean", got["R-2"]


def test_the_same_with_a_store_and_on_the_next_run(engine: Engine, tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "state.sqlite") as store:
        got = statuses(engine, [NEXT, LATE, FIXED, BAD_POS], store)
        assert got["PSA-2"] == ("clean", []) and got["R-2"][0] == "clean"
        # In the store, the denied and rejected claims count nothing, the others count.
        again = statuses(engine, [claim("PSA-3", "G0103", "2026-02-03", "2026-02-10")], store)
        assert again["PSA-3"] == ("deny", ["psa/once-in-12-months"])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cleanclaim.engine.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
        env={**os.environ, "CLEANCLAIM_PLUGINS": "none"},
    )


def test_check_decides_the_same_with_workers_and_with_state(tmp_path: Path) -> None:
    path = tmp_path / "claims.ndjson"
    path.write_text("".join(json.dumps(c) + "\n" for c in (NEXT, FIXED, LATE, BAD_POS)))
    common = [
        "check",
        str(path),
        "--policies",
        str(REPO / "payer_policies"),
        "--policies",
        str(PSA),
        "--today",
        TODAY.isoformat(),
        "--format",
        "ndjson",
    ]
    outputs = [
        _cli(*common).stdout,
        _cli(*common, "--workers", "2").stdout,
        _cli(*common, "--state", str(tmp_path / "s.sqlite")).stdout,
    ]
    assert outputs[0] == outputs[1] == outputs[2]
    got = {d["claim_id"]: d["status"] for d in map(json.loads, outputs[0].splitlines())}
    assert got == {"PSA-2": "clean", "R-2": "clean", "PSA-1": "deny", "R-1": "reject"}


# A replacement that is itself rejected (a place of service that is no CMS code) is not
# on file: it supersedes nothing, in its own run or after it. ORIGINAL is a paid office
# visit; DUPLICATE bills the same service again, a duplicate of ORIGINAL while it counts;
# the replacement changes the code, so once it is accepted the duplicate is no longer
# one (the control).
ORIGINAL = claim("O-1", "99213", "2026-03-02", "2026-03-04", payer="medicare")
DUPLICATE = claim("D-1", "99213", "2026-03-02", "2026-03-12", payer="medicare")


def _replacement(pos: str) -> dict[str, Any]:
    return {
        **claim("O-1R", "99214", "2026-03-02", "2026-03-08", payer="medicare", pos=pos),
        "frequency": "replacement",
        "replaces": "O-1",
    }


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_a_rejected_replacement_supersedes_nothing_in_its_run(
    engine: Engine, order: tuple[int, ...]
) -> None:
    claims = [ORIGINAL, _replacement("1"), DUPLICATE]
    got = statuses(engine, [claims[i] for i in order])
    assert got["O-1R"][0] == "reject"
    assert got["D-1"] == ("deny", ["common/duplicate/same-service"]), got["D-1"]
    # The control: an accepted replacement does supersede the original in the run.
    good = statuses(engine, [claims[i] if i != 1 else _replacement("11") for i in order])
    assert good["O-1R"][0] == "clean" and good["D-1"] == ("clean", []), good


def test_a_rejected_replacement_supersedes_nothing_on_file(engine: Engine, tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "state.sqlite") as store:
        assert statuses(engine, [ORIGINAL], store)["O-1"] == ("clean", [])
        got = statuses(engine, [_replacement("1"), DUPLICATE], store)
        assert got["O-1R"][0] == "reject"
        assert got["D-1"] == ("deny", ["common/duplicate/same-service"]), got["D-1"]
        # And after the run: the original still counts.
        later = {**DUPLICATE, "claim_id": "D-2", "received_date": "2026-03-20"}
        assert statuses(engine, [later], store)["D-2"][0] == "deny"


def test_a_rejected_replacement_with_workers_and_state(tmp_path: Path) -> None:
    path = tmp_path / "claims.ndjson"
    path.write_text("".join(json.dumps(c) + "\n" for c in (DUPLICATE, _replacement("1"), ORIGINAL)))
    common = [
        "check",
        str(path),
        "--policies",
        str(REPO / "payer_policies"),
        "--today",
        TODAY.isoformat(),
        "--format",
        "ndjson",
    ]
    outputs = [
        _cli(*common).stdout,
        _cli(*common, "--workers", "2").stdout,
        _cli(*common, "--state", str(tmp_path / "s.sqlite")).stdout,
    ]
    assert outputs[0] == outputs[1] == outputs[2]
    got = {d["claim_id"]: d["status"] for d in map(json.loads, outputs[0].splitlines())}
    assert got == {"D-1": "deny", "O-1R": "reject", "O-1": "clean"}

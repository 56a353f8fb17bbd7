"""Decisions of FHIR claims carry their origin (issue 18.7): the file, format "fhir", the
Claim resource's id and its Bundle entry index, on every CLI path (plain, --workers 2,
--state), for readable and unreadable claims, JSON and XML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cleanclaim.engine.cli import app
from cleanclaim.engine.formats.fhir import read_fhir

DATA = Path(__file__).parent / "data" / "fhir"
BUNDLE = json.loads((DATA / "professional-claim-bundle.json").read_text())


def check(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(
        app,
        ["check", *args, "--format", "ndjson", "--today", "2026-03-02"],
        env={"CLEANCLAIM_PLUGINS": "none"},
    )
    assert result.exit_code in (0, 1), result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def two_claims(tmp_path: Path) -> Path:
    """The sample bundle with a second Claim (C-1002) whose quantity is not a number,
    so that it cannot be read (entry 5)."""
    data = json.loads(json.dumps(BUNDLE))
    second = json.loads(json.dumps(data["entry"][4]))
    second["resource"]["id"] = "C-1002"
    second["fullUrl"] = "http://example.org/fhir/Claim/C-1002"
    second["resource"]["item"][0]["quantity"] = {"value": "many"}
    data["entry"].append(second)
    path = tmp_path / "two.json"
    path.write_text(json.dumps(data))
    return path


def origin(path: Path, resource_id: str, entry: int | None) -> dict[str, Any]:
    return {"file": str(path), "format": "fhir", "resource_id": resource_id, "entry": entry}


def test_fhir_decisions_carry_their_origin_on_every_path(tmp_path: Path) -> None:
    path = two_claims(tmp_path)
    want = [origin(path, "C-1001", 4), origin(path, "C-1002", 5)]
    plain = check(str(path))
    assert [d["status"] for d in plain][1] == "reject"  # the unreadable claim has one too
    workers = check(str(path), "--workers", "2")
    history = check(str(path), "--state", str(tmp_path / "s.sqlite"))
    for decisions in (plain, workers, history):
        assert [d.get("origin") for d in decisions] == want


@pytest.mark.parametrize(
    "name", ["professional-claim-bundle.json", "professional-claim-bundle.xml"]
)
def test_the_sample_bundle_in_json_and_xml(name: str) -> None:
    path = DATA / name
    [decision] = check(str(path))
    assert decision["origin"] == origin(path, "C-1001", 4)


def test_a_lone_claim_has_no_entry_index(tmp_path: Path) -> None:
    claim = dict(BUNDLE["entry"][4]["resource"])
    claim["patient"] = {"identifier": {"value": "M-1"}}
    path = tmp_path / "claim.json"
    path.write_text(json.dumps(claim))
    [raw] = read_fhir(path.read_text(), str(path), {})
    assert raw.origin == origin(path, "C-1001", None)
    [decision] = check(str(path))
    assert decision["origin"] == origin(path, "C-1001", None)

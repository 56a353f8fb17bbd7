"""What the readers give the rules, end to end through `cleanclaim check`: prior
authorization from X12 REF*G1 (issue 18.2) and no eligibility denial without eligibility
data (issue 18.3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cleanclaim.engine.cli import app
from tests.conftest import shared_engine

DATA = Path(__file__).parent / "data"
AUTH_837 = DATA / "x12" / "cleanclaim.acme-auth.837"


def check(*args: str) -> tuple[int, list[dict[str, Any]]]:
    result = CliRunner().invoke(
        app,
        ["check", *args, "--format", "ndjson", "--today", "2026-03-02"],
        env={"CLEANCLAIM_PLUGINS": "none"},
    )
    return result.exit_code, [
        json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")
    ]


def rules(decision: dict[str, Any]) -> list[str]:
    return [f"{f['rule']} {f['severity']} {f['group']}-{f['carc']}" for f in decision["findings"]]


def test_x12_prior_authorization_satisfies_the_acme_rules() -> None:
    # AP-1: REF*G1 in 2300 (claim level); AP-2: REF*G1 in 2400 (line level); AP-3: none.
    # Before: AP-1 was denied CO-197 and AP-2 CO-15 N54 although both are authorized.
    code, decisions = check(str(AUTH_837))
    assert [d["claim_id"] for d in decisions] == ["AP-1", "AP-2", "AP-3"]
    not_verified = "common/eligibility/not-verified info CO-31"
    assert rules(decisions[0]) == [not_verified]
    assert rules(decisions[1]) == [not_verified]
    assert rules(decisions[2]) == [not_verified, "acme-ppo/auth/missing deny CO-197"]
    assert [d["status"] for d in decisions] == ["clean", "clean", "deny"]
    assert code == 1


def test_an_837_without_a_roster_is_never_denied_for_eligibility() -> None:
    _, decisions = check(
        str(DATA / "x12" / "cleanclaim.multi.837"), str(DATA / "x12" / "demo.example1.837")
    )
    assert decisions
    for decision in decisions:
        carcs = {
            f"{f['group']}-{f['carc']}"
            for f in decision["findings"]
            if f["root_cause"] == "eligibility" and f["severity"] != "info"
        }
        assert not carcs, decision["claim_id"]


def _claim(**member: Any) -> dict[str, Any]:
    return {
        "claim_id": "E-1",
        "payer": "medicare",
        "received_date": "2026-03-02",
        "member": {"id": "1EG4TE5MK73", "birth_date": "1951-04-12", "sex": "F", **member},
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "place_of_service": "11",
        "diagnoses": ["M54.50"],
        "lines": [
            {
                "line": 1,
                "code": "99213",
                "units": 1,
                "charge": "95.00",
                "service_date": "2026-02-10",
                "diagnosis_pointers": [1],
            }
        ],
    }


def test_json_claim_omitting_coverage_differs_from_stating_none() -> None:
    engine = shared_engine()
    omitted = engine.check(_claim())
    stated = engine.check(_claim(coverage=[]))
    assert (omitted.status, [f.rule for f in omitted.findings]) == (
        "clean",
        ["common/eligibility/not-verified"],
    )
    assert (stated.status, [f.rule for f in stated.findings]) == (
        "deny",
        ["common/eligibility/not-enrolled"],
    )


def test_x12_decisions_carry_their_origin_on_every_path(tmp_path: Path) -> None:
    # Issue 18.7: a reject can be tied back to the submission (file, ST02, CLM segment).
    want = [
        {"file": str(AUTH_837), "format": "x12", "transaction": "0001", "segment": n}
        for n in (19, 25, 31)
    ]
    _, plain = check(str(AUTH_837))
    _, workers = check(str(AUTH_837), "--workers", "2")
    _, history = check(str(AUTH_837), "--state", str(tmp_path / "s.sqlite"))
    for decisions in (plain, workers, history):
        assert [d.get("origin") for d in decisions] == want

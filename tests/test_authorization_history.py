"""Authorization matching (issue 13.11): an authorization may name the rendering provider
it is for (`provider_npi`), and a `per authorization` counter counts the units already
billed under it on the member's earlier claims (from history) against the authorized
units."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from cleanclaim.engine.engine import Engine

TODAY = dt.date(2026, 11, 27)
NPI_A, NPI_B = "1234567893", "1245319599"

POLICY = """version 1

counter units_under_authorization
  title "units billed under the line's authorization"
  counts units of all lines
  per authorization
end

rule "acme/auth/missing"
  applies to codes [97110]
  root cause authorization
  when not authorized()
  then deny CO-197
end

rule "acme/auth/units-exceeded"
  applies to codes [97110]
  root cause authorization
  when authorized() and total_to_date(units_under_authorization) > authorized_units()
  then deny CO-198
  message "{total_to_date(units_under_authorization)} units of {authorized_units()} authorized"
end
"""


def pack(tmp_path: Path) -> Path:
    folder = tmp_path / "packs" / "acme"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pack.yaml").write_text("id: acme\nname: acme\n", encoding="utf-8")
    (folder / "rules.policy").write_text(POLICY, encoding="utf-8")
    return tmp_path / "packs"


def claim(
    claim_id: str,
    day: str,
    units: int = 2,
    npi: str = NPI_A,
    auth_npi: str | None = NPI_A,
    code: str = "97110",
) -> dict[str, Any]:
    auth: dict[str, Any] = {
        "number": "PA-1",
        "codes": ["97110"],
        "start": "2026-02-01",
        "end": "2026-04-30",
        "units": 6,
    }
    if auth_npi is not None:
        auth["provider_npi"] = auth_npi
    return {
        "claim_id": claim_id,
        "payer": "acme",
        "received_date": day,
        "member": {"id": "M-1", "birth_date": "1950-06-01", "sex": "F"},
        "billing_provider": {"npi": NPI_A},
        "rendering_provider": {"npi": npi},
        "place_of_service": "11",
        "diagnoses": ["M54.50"],
        "authorizations": [auth],
        "lines": [
            {
                "line": 1,
                "code": code,
                "modifiers": ["GP"],
                "units": units,
                "charge": "100.00",
                "service_date": day,
                "diagnosis_pointers": [1],
            }
        ],
    }


def outcome(decisions: Any) -> dict[str, list[tuple[str, str]]]:
    return {
        d.claim_id: [(f.rule.rsplit("/", 1)[1], f.message) for f in d.findings] for d in decisions
    }


def test_units_billed_on_earlier_claims_count_against_the_authorization(tmp_path: Path) -> None:
    e = Engine(policy_roots=[pack(tmp_path)], today=TODAY, plugins=(), tables={})
    batch = [
        claim("A", "2026-01-20"),  # before the authorization: not under it
        claim("B", "2026-02-05"),
        claim("C", "2026-02-12"),
        claim("D", "2026-02-19"),
        claim("E", "2026-02-26"),
    ]
    assert outcome(e.check_many(batch)) == {
        "A": [("missing", "acme/auth/missing")],
        "B": [],
        "C": [],
        "D": [],
        "E": [("units-exceeded", "8 units of 6 authorized")],
    }


def test_an_authorization_for_another_provider_does_not_cover_the_line(tmp_path: Path) -> None:
    e = Engine(policy_roots=[pack(tmp_path)], today=TODAY, plugins=(), tables={})
    (decision,) = e.check_many([claim("B", "2026-02-05", npi=NPI_B)])
    assert outcome([decision]) == {"B": [("missing", "acme/auth/missing")]}
    # An authorization that names no provider covers any provider.
    (decision,) = e.check_many([claim("B", "2026-02-05", npi=NPI_B, auth_npi=None)])
    assert outcome([decision]) == {"B": []}


def test_another_provider_s_units_do_not_use_up_this_provider_s_authorization(
    tmp_path: Path,
) -> None:
    e = Engine(policy_roots=[pack(tmp_path)], today=TODAY, plugins=(), tables={})
    others = [claim(f"X{i}", f"2026-02-0{i}", npi=NPI_B, auth_npi=NPI_B) for i in (2, 3, 4)]
    found = outcome(e.check_many([*others, claim("B", "2026-02-05", units=4)]))
    assert found["B"] == []  # NPI_B's 6 units were under its own authorization


def test_both_claim_decoders_read_the_authorization_provider() -> None:
    import json

    from cleanclaim.engine.decoding import decode_json
    from cleanclaim.engine.model import decode_claim

    data = claim("B", "2026-02-05", auth_npi=f" {NPI_B} ")
    fast = decode_json(json.dumps(data).encode(), TODAY)
    plain, problems = decode_claim(data, TODAY)
    assert fast is not None and plain is not None and not problems
    assert fast.authorizations[0].provider_npi == plain.authorizations[0].provider_npi == NPI_B

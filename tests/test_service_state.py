"""The claim's service state (INTERFACES.md): JSON, X12 2310C/2010AA N4-02, FHIR facility or
provider address, and `claim.service_state` in the policy language."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

from cleanclaim.engine import Engine
from cleanclaim.engine.formats.fhir import read_fhir
from cleanclaim.engine.formats.x12 import read_x12
from cleanclaim.engine.model import decode_claim

DATA = Path(__file__).parent / "data"
TODAY = dt.date(2026, 3, 2)
CLAIM: dict[str, Any] = {
    "claim_id": "S-1",
    "payer": "state-test",
    "member": {"id": "M1"},
    "lines": [
        {"line": 1, "code": "99213", "units": 1, "charge": "80.00", "service_date": "2026-02-10"}
    ],
}


def state_of(data: dict[str, Any]) -> str | None:
    claim, problems = decode_claim(data, TODAY)
    assert claim is not None, problems
    return claim.service_state


def test_json_service_state_field_wins_over_addresses() -> None:
    data = {
        **CLAIM,
        "service_state": "ma",
        "service_facility": {"address": {"state": "NY"}},
        "billing_provider": {"npi": "1234567893", "address": {"state": "IL"}},
    }
    assert state_of(data) == "MA"


def test_json_facility_then_billing_address() -> None:
    assert (
        state_of(
            {
                **CLAIM,
                "service_facility": {"address": {"state": "NY"}},
                "billing_provider": {"address": {"state": "IL"}},
            }
        )
        == "NY"
    )
    assert state_of({**CLAIM, "billing_provider": {"address": {"state": "IL"}}}) == "IL"
    assert state_of(CLAIM) is None


def test_json_bad_state_is_a_located_problem() -> None:
    claim, problems = decode_claim({**CLAIM, "service_state": "Massachusetts"}, TODAY)
    assert claim is None
    assert [p.where for p in problems] == ["service_state"]
    assert "Massachusetts" not in problems[0].message


def x12(name: str) -> list[dict[str, Any]]:
    text = (DATA / "x12" / name).read_text()
    return [r.data for r in read_x12(text, name, {}, today=TODAY) if r.data is not None]


def test_x12_service_facility_2310c_n4_wins() -> None:
    # demo.autoaccident: billing provider N4 in CA (99997), 2310C N4 LOMA LINDA CA;
    # demo.example11: billing FORT WAYNE IN, facility WASHINGTON IN.
    assert [c["service_state"] for c in x12("demo.autoaccident.837")] == ["CA"]
    text = (DATA / "x12" / "demo.example11.837").read_text()
    moved = text.replace("N4*WASHINGTON*IN*", "N4*WASHINGTON*DC*")
    assert [r.data["service_state"] for r in read_x12(moved, "x", {}, today=TODAY) if r.data] == [
        "DC"
    ]


def test_x12_billing_provider_2010aa_n4_else() -> None:
    assert {c["service_state"] for c in x12("demo.example1.837")} == {"FL"}
    assert {c["service_state"] for c in x12("cleanclaim.multi.837")} == {"IL"}


def test_x12_bad_state_is_located_and_not_quoted() -> None:
    text = (DATA / "x12" / "cleanclaim.multi.837").read_text()
    text = text.replace("N4*SPRINGFIELD*IL*627010000", "N4*SPRINGFIELD*ILL*627010000", 1)
    raws = list(read_x12(text, "x", {}, today=TODAY))
    messages = [f"{p.where}: {p.message}" for p in raws[0].problems]
    assert messages == ["N4 segment 12, element N4-02: state code is not two letters"]
    assert not any("ILL" in m or "SPRINGFIELD" in m for m in messages)


def fhir_bundle() -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(
        (DATA / "fhir" / "professional-claim-bundle.json").read_text()
    )
    return copy.deepcopy(bundle)


def fhir_state(bundle: dict[str, Any]) -> tuple[str | None, list[str]]:
    (raw,) = read_fhir(json.dumps(bundle), "b.json", {})
    assert raw.data is not None
    return raw.data["service_state"], [p.where for p in raw.problems]


def test_fhir_facility_location_then_provider_address() -> None:
    bundle = fhir_bundle()
    entries = bundle["entry"]
    assert fhir_state(bundle) == (None, [])
    practitioner = next(
        e["resource"] for e in entries if e["resource"]["resourceType"] == "Practitioner"
    )
    practitioner["address"] = [{"use": "home", "state": "NJ"}, {"use": "work", "state": "ny"}]
    assert fhir_state(bundle) == ("NY", [])
    entries.append(
        {
            "fullUrl": "urn:uuid:loc-1",
            "resource": {"resourceType": "Location", "id": "loc-1", "address": {"state": "MA"}},
        }
    )
    claim = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Claim")
    claim["facility"] = {"reference": "Location/loc-1"}
    assert fhir_state(bundle) == ("MA", [])
    entries[-1]["resource"]["address"] = {"state": "Massachusetts"}
    state, wheres = fhir_state(bundle)
    assert state is None
    assert wheres == [f"Bundle.entry[{len(entries) - 1}].resource.address.state"]


def test_policy_language_reads_claim_service_state(tmp_path: Path) -> None:
    pack = tmp_path / "state-test"
    pack.mkdir()
    (pack / "pack.yaml").write_text("id: state-test\nname: service state\n")
    (pack / "rules.policy").write_text(
        'version 1\n\nrule "state-test/no-state"\n  title "No service state"\n'
        "  applies to claim\n  root cause submission\n"
        "  when claim.service_state is missing\n  then review CO-16\n"
        '  message "no state"\nend\n\n'
        'rule "state-test/ny"\n  title "Service in New York"\n  applies to claim\n'
        "  root cause coverage\n"
        '  when claim.service_state is present and claim.service_state == "NY"\n'
        "  then info CO-16\n"
        '  message "in {claim.service_state}"\nend\n'
    )
    engine = Engine([tmp_path], today=TODAY)
    assert [f.rule for f in engine.check(CLAIM).findings] == ["state-test/no-state"]
    ny = engine.check({**CLAIM, "service_state": "NY"})
    assert [(f.rule, f.message) for f in ny.findings] == [("state-test/ny", "in NY")]

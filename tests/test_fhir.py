"""FHIR R4 reader (cleanclaim.engine.formats.fhir).

Fixtures in tests/data/fhir/: the Synthea and Da Vinci PAS samples (see NOTICE there) and
a hand-written professional claim bundle (professional-claim-bundle.json, and the same
bundle as XML, written by fhir.resources' R4B models).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.engine.formats.fhir import documents as fhir_documents
from cleanclaim.engine.formats.fhir import read_fhir
from cleanclaim.engine.inputs import InputFileError, RawClaim

DATA = Path(__file__).parent / "data" / "fhir"
PAYERS = {"http://example.org/payer-id|MCR-00001": "medicare", "Anthem": "anthem"}
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"


def text_of(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


_PROFESSIONAL: dict[str, Any] = json.loads(text_of("professional-claim-bundle.json"))


def professional() -> dict[str, Any]:
    """A fresh copy of the hand-written bundle (entry[4] is the Claim)."""
    return copy.deepcopy(_PROFESSIONAL)


def claim_of(bundle: dict[str, Any]) -> dict[str, Any]:
    claim: dict[str, Any] = bundle["entry"][4]["resource"]
    assert claim["resourceType"] == "Claim"
    return claim


def read(doc: dict[str, Any] | str, payers: dict[str, str] | None = None) -> list[RawClaim]:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    return list(read_fhir(text, "test.json", PAYERS if payers is None else payers))


def read_one(doc: dict[str, Any] | str, payers: dict[str, str] | None = None) -> RawClaim:
    out = read(doc, payers)
    assert len(out) == 1
    return out[0]


def wheres(raw: RawClaim) -> list[str]:
    return [p.where for p in raw.problems]


def message_at(raw: RawClaim, where: str) -> str:
    found = [p.message for p in raw.problems if p.where == where]
    assert found, f"no problem at {where}: {raw.problems}"
    return found[0]


EXPECTED_PROFESSIONAL: dict[str, Any] = {
    "claim_id": "C-1001",
    "payer": "medicare",
    "plan": "PART-B",
    "frequency": "original",
    "replaces": None,
    "received_date": "2026-03-02",
    "member": {
        "id": "1EG4TE5MK73",
        "birth_date": "1951-04-12",
        "sex": "F",
        "coverage": [{"payer": "medicare", "plan": "PART-B", "start": "2016-04-01", "end": None}],
    },
    "billing_provider": {"npi": "1234567893", "taxonomy": None},
    "rendering_provider": {"npi": "1234567893", "specialty": None, "taxonomy": "207RC0000X"},
    "referring_provider": None,
    "place_of_service": "11",
    "service_state": None,
    "clia_number": None,
    # Claim.insurance[0]: sequence 1, its Coverage has no SOPT type
    "insurance": [{"payer": "medicare", "type": None, "order": "primary"}],
    "diagnoses": ["R07.9", "R06.02"],
    "authorizations": [
        # insurance-level preAuthRef: every item's code, first to last date of service
        {
            "number": "PA-77812",
            "codes": ["93000", "93306", "J1100"],
            "start": "2026-02-10",
            "end": "2026-02-10",
            "units": None,
        }
    ],
    "lines": [
        {
            "line": 1,
            "code": "93000",
            "modifiers": [],
            "units": 1,
            "charge": "45.00",
            "service_date": "2026-02-10",
            "diagnosis_pointers": [1, 2],
            "minutes": None,
        },
        {
            "line": 2,
            "code": "93306",
            "modifiers": ["26"],
            "units": 1,
            "charge": "212.50",
            "service_date": "2026-02-10",
            "diagnosis_pointers": [2],
            "minutes": None,
        },
        {
            "line": 3,
            "code": "J1100",
            "modifiers": [],
            "units": 2,
            "charge": "6.20",
            "service_date": "2026-02-10",
            "diagnosis_pointers": [1],
            "minutes": None,
        },
    ],
    "documentation": {
        "fhir_supporting_info": [
            {
                "sequence": 1,
                "category": "info",
                "code": "8867-4",
                "value": {"value": 92, "unit": "/min"},
            }
        ]
    },
    "source": {"format": "fhir", "file": "test.json", "path": "Bundle.entry[4].resource"},
}


# --------------------------------------------------------------------------- valid claims


def test_professional_bundle_maps_to_a_complete_claim() -> None:
    raw = read_one(professional())
    assert raw.problems == ()
    assert raw.position == 0
    assert raw.claim_id == "C-1001"
    assert raw.data == EXPECTED_PROFESSIONAL
    json.dumps(raw.data)  # plain JSON values only (no Decimal)


def test_professional_bundle_as_xml_maps_like_json() -> None:
    out = list(read_fhir(text_of("professional-claim-bundle.xml"), "test.json", PAYERS))
    assert len(out) == 1
    assert out[0].problems == ()
    assert out[0].data == EXPECTED_PROFESSIONAL


def test_diagnosis_reference_to_condition_with_icd10cm() -> None:
    bundle = professional()
    bundle["entry"].append(
        {
            "fullUrl": "urn:uuid:4f1b2c3d-0000-4000-8000-000000000001",
            "resource": {
                "resourceType": "Condition",
                "id": "cond-1",
                "subject": {"reference": "Patient/pat-1"},
                "code": {
                    "coding": [
                        {"system": SNOMED, "code": "267036007"},
                        {"system": ICD10CM, "code": "R06.02"},
                    ]
                },
            },
        }
    )
    claim_of(bundle)["diagnosis"][0] = {
        "sequence": 2,
        "diagnosisReference": {"reference": "urn:uuid:4f1b2c3d-0000-4000-8000-000000000001"},
    }
    raw = read_one(bundle)
    assert raw.problems == ()
    assert raw.data is not None
    assert raw.data["diagnoses"] == ["R07.9", "R06.02"]
    assert [line["diagnosis_pointers"] for line in raw.data["lines"]] == [[1, 2], [2], [1]]


def test_diagnosis_pointers_map_sequence_numbers_to_positions() -> None:
    bundle = professional()
    claim = claim_of(bundle)
    claim["diagnosis"][0]["sequence"] = 7  # R06.02
    claim["diagnosis"][1]["sequence"] = 3  # R07.9
    claim["item"][0]["diagnosisSequence"] = [7, 3]
    claim["item"][1]["diagnosisSequence"] = [7]
    claim["item"][2]["diagnosisSequence"] = [3, 4]
    raw = read_one(bundle)
    assert raw.data is not None
    assert raw.data["diagnoses"] == ["R07.9", "R06.02"]
    assert [line["diagnosis_pointers"] for line in raw.data["lines"]] == [[2, 1], [2], [1]]
    assert wheres(raw) == ["Claim.item[2].diagnosisSequence[1]"]
    assert "sequence 4" in raw.problems[0].message


def test_payer_found_by_organization_name_and_case() -> None:
    raw = read_one(professional(), {"example medicare part b contractor": "medicare"})
    assert raw.data is not None
    assert raw.data["payer"] == "medicare"


def test_unmapped_payer_is_named_for_payer_setup() -> None:
    raw = read_one(professional(), {})
    assert raw.data is not None
    assert raw.data["payer"] == "fhir:Example Medicare Part B Contractor"
    assert raw.data["member"]["coverage"][0]["payer"] == raw.data["payer"]
    assert raw.problems == ()  # the engine rejects it (payer_setup), not the reader


def test_payer_from_insurer_when_coverage_is_not_in_bundle() -> None:
    bundle = professional()
    del bundle["entry"][2]  # the Coverage; the Claim is now entry[3]
    raw = read_one(bundle)
    assert raw.data is not None
    assert raw.data["payer"] == "medicare"  # Claim.insurer -> Organization identifier
    assert raw.data["plan"] is None
    assert "coverage" not in raw.data["member"]
    assert raw.data["source"]["path"] == "Bundle.entry[3].resource"


def test_coverage_reference_identifier_is_not_taken_for_the_payer() -> None:
    bundle = professional()
    claim = claim_of(bundle)
    claim["insurance"][0]["coverage"] = {
        "reference": "Coverage/elsewhere",
        "identifier": {"system": "http://example.org/policy", "value": "POLICY-123"},
    }
    del claim["insurer"]
    raw = read_one(bundle, {"POLICY-123": "medicare"})
    assert raw.data is not None
    assert raw.data["payer"] == "fhir:unknown"


def test_rendering_provider_is_the_primary_care_team_member() -> None:
    bundle = professional()
    claim = claim_of(bundle)
    claim["careTeam"][0]["role"]["coding"][0]["code"] = "assist"
    claim["careTeam"][0]["sequence"] = 2
    claim["careTeam"].insert(
        0,
        {
            "sequence": 1,
            "provider": {
                "identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1497758544"}
            },
            "role": {"coding": [{"code": "primary"}]},
        },
    )
    raw = read_one(bundle)
    assert raw.data is not None
    assert raw.data["rendering_provider"] == {"npi": "1497758544", "specialty": None}
    assert raw.data["billing_provider"]["npi"] == "1234567893"


def test_related_prior_claim_makes_a_replacement() -> None:
    bundle = professional()
    claim_of(bundle)["related"] = [
        {
            "claim": {"reference": "Claim/C-0999"},
            "relationship": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship",
                        "code": "prior",
                    }
                ]
            },
        }
    ]
    raw = read_one(bundle)
    assert raw.data is not None
    assert (raw.data["frequency"], raw.data["replaces"]) == ("replacement", "C-0999")


def test_cancelled_claim_is_a_void() -> None:
    bundle = professional()
    claim_of(bundle)["status"] = "cancelled"
    raw = read_one(bundle)
    assert raw.data is not None
    assert (raw.data["frequency"], raw.data["replaces"]) == ("void", "C-1001")


def test_charge_from_unit_price_and_units() -> None:
    bundle = professional()
    item = claim_of(bundle)["item"][2]
    item["quantity"] = {"value": 2.5}
    item["unitPrice"] = {"value": 10.01, "currency": "USD"}
    del claim_of(bundle)["item"][0]["quantity"]
    raw = read_one(bundle)
    assert raw.data is not None
    assert raw.data["lines"][2]["units"] == 2.5
    assert raw.data["lines"][2]["charge"] == "25.025"  # not rounded: no cents invented
    assert raw.data["lines"][0]["units"] == 1  # no quantity: one unit


def test_other_currency_is_a_problem() -> None:
    bundle = professional()
    claim_of(bundle)["item"][0]["net"]["currency"] = "EUR"
    raw = read_one(bundle)
    assert wheres(raw) == ["Claim.item[0].net.currency"]


def test_providers_through_practitioner_role_and_referral() -> None:
    bundle = professional()
    bundle["entry"] += [
        {
            "fullUrl": "http://example.org/fhir/PractitionerRole/role-1",
            "resource": {
                "resourceType": "PractitionerRole",
                "id": "role-1",
                "practitioner": {"reference": "Practitioner/prac-1"},
                "specialty": [
                    {
                        "coding": [
                            {"system": "http://nucc.org/provider-taxonomy", "code": "207Q00000X"}
                        ]
                    }
                ],
            },
        },
        {
            "fullUrl": "http://example.org/fhir/ServiceRequest/ref-1",
            "resource": {
                "resourceType": "ServiceRequest",
                "id": "ref-1",
                "status": "active",
                "intent": "order",
                "subject": {"reference": "Patient/pat-1"},
                "requester": {
                    "identifier": {
                        "system": "http://hl7.org/fhir/sid/us-npi",
                        "value": "1245319599",
                    }
                },
            },
        },
    ]
    claim = claim_of(bundle)
    claim["provider"] = {"reference": "PractitionerRole/role-1"}
    claim["referral"] = {"reference": "ServiceRequest/ref-1"}
    del claim["careTeam"]
    raw = read_one(bundle)
    assert raw.problems == ()
    assert raw.data is not None
    assert raw.data["billing_provider"] == {"npi": "1234567893", "taxonomy": "207Q00000X"}
    assert raw.data["rendering_provider"] == {"npi": "1234567893", "specialty": None}
    assert raw.data["referring_provider"] == {"npi": "1245319599"}


def test_place_of_service_from_facility_location() -> None:
    bundle = professional()
    bundle["entry"].append(
        {
            "fullUrl": "http://example.org/fhir/Location/loc-1",
            "resource": {
                "resourceType": "Location",
                "id": "loc-1",
                "type": [
                    {
                        "coding": [
                            {
                                "system": "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set.html",
                                "code": "22",
                            }
                        ]
                    }
                ],
            },
        }
    )
    claim = claim_of(bundle)
    del claim["item"][0]["locationCodeableConcept"]
    claim["facility"] = {"reference": "Location/loc-1"}
    raw = read_one(bundle)
    assert raw.data is not None
    assert raw.data["place_of_service"] == "22"


def test_bare_claim_with_contained_patient() -> None:
    claim = claim_of(professional())
    patient = copy.deepcopy(_PROFESSIONAL["entry"][0]["resource"])
    patient["id"] = "p"
    claim["contained"] = [patient]
    claim["patient"] = {"reference": "#p"}
    claim["provider"] = {
        "identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}
    }
    del claim["careTeam"]
    raw = read_one(claim, {"Medicare": "medicare"})
    assert raw.data is not None
    assert raw.data["source"] == {"format": "fhir", "file": "test.json", "path": "Claim"}
    assert raw.data["member"] == {"id": "1EG4TE5MK73", "birth_date": "1951-04-12", "sex": "F"}
    assert raw.data["billing_provider"]["npi"] == "1234567893"
    assert raw.data["rendering_provider"]["npi"] == "1234567893"
    assert raw.data["payer"] == "fhir:unknown"  # Coverage and insurer are not in the input
    assert raw.problems == ()


def test_bare_claim_with_unresolvable_patient_is_a_problem() -> None:
    claim = claim_of(professional())
    raw = read_one(claim)
    assert "Claim.patient" in wheres(raw)
    assert raw.data is not None
    assert raw.data["member"]["id"] is None


# --------------------------------------------------------------------------- problems


def test_invalid_r4_claim_gives_located_problems() -> None:
    bundle = professional()
    claim = claim_of(bundle)
    claim["item"][0]["quantity"] = "one"
    claim["item"][1]["sequence"] = "two"
    claim["colour"] = "blue"
    raw = read_one(bundle)
    assert raw.data is None
    assert raw.claim_id == "C-1001"
    assert wheres(raw) == ["Claim.item[0].quantity", "Claim.item[1].sequence", "Claim.colour"]
    assert "expected a JSON object" in raw.problems[0].message
    assert "integer" in raw.problems[1].message
    assert "unknown element" in raw.problems[2].message
    assert all("Bundle.entry[4].resource" in p.message for p in raw.problems)


def test_missing_required_element_is_located() -> None:
    bundle = professional()
    del claim_of(bundle)["status"]
    raw = read_one(bundle)
    assert raw.data is None
    assert wheres(raw) == ["Claim.status"]


def test_choice_with_two_values_is_located() -> None:
    bundle = professional()
    claim_of(bundle)["diagnosis"][0]["diagnosisReference"] = {"reference": "Condition/x"}
    raw = read_one(bundle)
    assert raw.data is None
    assert wheres(raw) == ["Claim.diagnosis[0]"]
    assert "diagnosisCodeableConcept" in raw.problems[0].message


def test_invalid_xml_claim_gives_a_problem() -> None:
    xml = text_of("professional-claim-bundle.xml").replace(
        '<sequence value="3"/>', '<sequence value="three"/>'
    )
    out = list(read_fhir(xml, "test.xml", PAYERS))
    assert len(out) == 1
    assert out[0].data is None
    assert out[0].claim_id == "C-1001"
    assert "'sequence'" in out[0].problems[0].message


def test_unknown_xml_element_gives_a_problem() -> None:
    xml = text_of("professional-claim-bundle.xml").replace(
        '<use value="claim"/>', '<use value="claim"/><colour value="blue"/>'
    )
    out = list(read_fhir(xml, "test.xml", PAYERS))
    assert out[0].data is None
    assert "unknown element 'colour'" in out[0].problems[0].message


def test_invalid_claim_does_not_hide_the_next_one() -> None:
    bundle = professional()
    bad = copy.deepcopy(claim_of(bundle))
    bad["id"] = "C-BAD"
    bad["created"] = "yesterday"
    bundle["entry"].insert(4, {"resource": bad})
    out = read(bundle)
    assert [(r.position, r.claim_id) for r in out] == [(0, "C-BAD"), (1, "C-1001")]
    assert out[0].data is None
    assert wheres(out[0]) == ["Claim.created"]
    assert out[1].problems == ()
    assert out[1].data is not None


def test_invalid_referenced_patient_is_a_problem_without_phi() -> None:
    bundle = professional()
    bundle["entry"][0]["resource"]["birthDate"] = "12/04/1951"
    raw = read_one(bundle)
    assert raw.data is not None
    message = message_at(raw, "Claim.patient")
    assert "Bundle.entry[0].resource" in message
    assert "birthDate" in message
    for phi in ("1951", "Testperson", "1EG4TE5MK73"):
        assert all(phi not in p.message for p in raw.problems)


def test_partial_birth_date_is_a_problem() -> None:
    bundle = professional()
    bundle["entry"][0]["resource"]["birthDate"] = "1951"
    raw = read_one(bundle)
    assert wheres(raw) == ["Bundle.entry[0].resource.birthDate"]
    assert raw.data is not None
    assert raw.data["member"]["birth_date"] is None


@pytest.mark.parametrize("use", ["preauthorization", "predetermination"])
def test_requests_that_are_not_claims_for_payment(use: str) -> None:
    bundle = professional()
    claim_of(bundle)["use"] = use
    raw = read_one(bundle)
    assert wheres(raw) == ["Claim.use"]
    assert "not a claim for payment" in raw.problems[0].message
    assert raw.data is not None


def test_products_and_modifiers_in_other_systems() -> None:
    bundle = professional()
    items = claim_of(bundle)["item"]
    items[0]["productOrService"] = {"coding": [{"system": SNOMED, "code": "29303009"}]}
    items[1]["productOrService"] = {"text": "echo"}
    items[1]["modifier"] = [{"coding": [{"system": "http://example.org/mods", "code": "X"}]}]
    items[2]["productOrService"]["coding"].insert(
        0, {"system": "http://hl7.org/fhir/sid/ndc", "code": "0409-4888-02"}
    )
    raw = read_one(bundle)
    assert message_at(raw, "Claim.item[0].productOrService") == (
        "coded in SNOMED CT (http://snomed.info/sct), not CPT/HCPCS"
    )
    assert "only text" in message_at(raw, "Claim.item[1].productOrService")
    assert "modifier" in message_at(raw, "Claim.item[1].modifier[0]")
    assert len(raw.problems) == 3  # item 3 has a HCPCS coding beside the NDC
    assert raw.data is not None
    assert [line["code"] for line in raw.data["lines"]] == [None, None, "J1100"]


def test_diagnosis_in_other_system_is_a_problem() -> None:
    bundle = professional()
    claim_of(bundle)["diagnosis"][0]["diagnosisCodeableConcept"] = {
        "coding": [{"system": "http://hl7.org/fhir/sid/icd-9-cm", "code": "786.05"}]
    }
    raw = read_one(bundle)
    assert wheres(raw) == ["Claim.diagnosis[0].diagnosisCodeableConcept"]
    assert "ICD-9-CM" in raw.problems[0].message
    assert raw.data is not None
    assert raw.data["diagnoses"] == ["R07.9"]
    # Pointers to the unreadable diagnosis are dropped (it has its own problem).
    assert [line["diagnosis_pointers"] for line in raw.data["lines"]] == [[1], [], [1]]


def test_dangling_diagnosis_reference_is_a_problem() -> None:
    bundle = professional()
    claim_of(bundle)["diagnosis"][0] = {
        "sequence": 2,
        "diagnosisReference": {"reference": "Condition/missing"},
    }
    raw = read_one(bundle)
    assert wheres(raw) == ["Claim.diagnosis[0].diagnosisReference"]


def test_claim_without_items_is_a_problem() -> None:
    bundle = professional()
    del claim_of(bundle)["item"]
    raw = read_one(bundle)
    assert wheres(raw) == ["Claim.item"]


# --------------------------------------------------------------------------- samples

SYNTHEA = [("synthea-Bibi254_Scho.json", 13), ("synthea-Cris921_Rath.json", 11)]


@pytest.mark.parametrize(("name", "count"), SYNTHEA)
def test_synthea_claims_all_come_out_with_problems(name: str, count: int) -> None:
    text = text_of(name)
    bundle = json.loads(text)
    ids = [e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim"]
    out = list(read_fhir(text, name, PAYERS))
    assert len(out) == count == len(ids)
    assert [r.position for r in out] == list(range(count))
    assert [r.claim_id for r in out] == ids
    for raw in out:
        assert raw.data is not None
        assert raw.data["claim_id"] == raw.claim_id
        assert "Claim.type" in wheres(raw)  # Synthea writes institutional claims
        assert message_at(raw, "Claim.item[0].productOrService") == (
            "coded in SNOMED CT (http://snomed.info/sct), not CPT/HCPCS"
        )
        assert not any("internal error" in p.message for p in raw.problems)
        # Every item is reported: SNOMED CT procedures, CVX vaccines.
        items = [w for w in wheres(raw) if w.endswith(".productOrService")]
        assert len(items) == len(raw.data["lines"])


@pytest.mark.parametrize(
    ("name", "conditions"), [(n, c) for (n, _), c in zip(SYNTHEA, (9, 4), strict=True)]
)
def test_synthea_snomed_conditions_are_reported(name: str, conditions: int) -> None:
    out = list(read_fhir(text_of(name), name, PAYERS))
    with_dx = [r for r in out if any(".diagnosisReference" in w for w in wheres(r))]
    assert len(with_dx) == 1
    raw = with_dx[0]
    dx = [p for p in raw.problems if p.where.endswith(".diagnosisReference")]
    assert [p.where for p in dx] == [
        f"Claim.diagnosis[{i}].diagnosisReference" for i in range(conditions)
    ]
    assert all("SNOMED CT" in p.message and "Condition" in p.message for p in dx)
    assert raw.data is not None
    assert raw.data["diagnoses"] == []
    assert not any("diagnosisSequence" in w for w in wheres(raw))


def test_synthea_payers() -> None:
    cris = list(read_fhir(text_of("synthea-Cris921_Rath.json"), "c", PAYERS))
    assert {r.data["payer"] for r in cris if r.data} == {"anthem", "fhir:NO_INSURANCE"}
    cris = list(read_fhir(text_of("synthea-Cris921_Rath.json"), "c", {}))
    assert {r.data["payer"] for r in cris if r.data} == {"fhir:Anthem", "fhir:NO_INSURANCE"}
    bibi = list(read_fhir(text_of("synthea-Bibi254_Scho.json"), "b", PAYERS))
    assert {r.data["payer"] for r in bibi if r.data} == {"fhir:NO_INSURANCE"}


@pytest.mark.parametrize("name", [n for n, _ in SYNTHEA])
def test_synthea_problems_name_no_patient(name: str) -> None:
    bundle = json.loads(text_of(name))
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    phi = [patient["birthDate"], patient["id"], patient["name"][0]["family"]]
    phi += patient["name"][0]["given"] + [i["value"] for i in patient["identifier"]]
    for raw in read_fhir(text_of(name), name, PAYERS):
        for p in raw.problems:
            assert not any(value in p.message or value in p.where for value in phi)


@pytest.mark.parametrize(
    ("name", "codes", "conditions"),
    [
        ("bundle-pa-request-example-referral.xml", [], 1),
        ("bundle-pa-request-example-homehealthcare.xml", ["G0154", "B4184"], 2),
    ],
)
def test_davinci_pas_xml_bundles(name: str, codes: list[str], conditions: int) -> None:
    out = list(read_fhir(text_of(name), name, {}))
    assert len(out) == 1
    raw = out[0]
    assert raw.claim_id == "1"
    assert "preauthorization" in message_at(raw, "Claim.use")
    dx = [p for p in raw.problems if p.where.endswith("diagnosisReference")]
    assert len(dx) == conditions
    assert all("ICD-9" in p.message for p in dx)
    assert raw.data is not None
    assert [line["code"] for line in raw.data["lines"]] == codes
    assert raw.data["payer"] == "fhir:MARYLAND CAPITAL INSURANCE COMPANY"
    assert raw.data["member"]["id"] == "12345678901"
    assert raw.data["received_date"] == "2019-07-20"
    assert raw.data["source"]["path"] == "Bundle.entry[0].resource"


def test_xml_without_lxml_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fhir_documents, "_lxml", lambda: None)
    with pytest.raises(InputFileError, match="XML needs the lxml package"):
        list(read_fhir(text_of("bundle-pa-request-example-referral.xml"), "pa.xml", {}))


# --------------------------------------------------------------------------- file errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("   \n", "empty file"),
        ('{"resourceType": "Claim",', "not valid JSON"),
        ("[1, 2]", "not a list"),
        ('{"id": "x"}', "no resourceType"),
        ('{"resourceType": "Patient", "id": "p"}', "a FHIR Patient resource"),
        ('{"resourceType": "Bundle", "type": "collection"}', "holds no Claim"),
        (
            '{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient"}}]}',
            r"holds no Claim resource \(it holds Patient\)",
        ),
        ('{"resourceType": "Bundle", "entry": {}}', "Bundle.entry is not a list"),
        ("<Claim/>", "not in the FHIR namespace"),
        ('<Bundle xmlns="http://hl7.org/fhir"><entry>', "not well-formed XML"),
        ('<Patient xmlns="http://hl7.org/fhir"/>', "a FHIR Patient resource"),
    ],
)
def test_unreadable_files_raise(text: str, message: str) -> None:
    with pytest.raises(InputFileError, match=message) as info:
        list(read_fhir(text, "bad.json", {}))
    assert info.value.source == "bad.json"


def test_bundle_of_explanations_of_benefit_has_no_claim() -> None:
    bundle = json.loads(text_of("synthea-Cris921_Rath.json"))
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Claim"]
    with pytest.raises(InputFileError, match=r"no Claim.*ExplanationOfBenefit"):
        read(bundle)


def test_module_import_does_not_load_fhir_resources() -> None:
    code = (
        "import sys, cleanclaim.engine.formats.fhir\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('fhir', 'fhir_core', 'pydantic')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

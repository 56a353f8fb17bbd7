"""Deeply nested FHIR JSON and XML give a located reject or error record, never a crash
(issue 19.1): through `cleanclaim check`, and over mutated samples of tests/data/fhir."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cleanclaim.engine.cli import app
from cleanclaim.engine.formats.fhir import read_fhir
from cleanclaim.engine.inputs import InputFileError

DATA = Path(__file__).parent / "data" / "fhir"
BUNDLE_JSON = (DATA / "professional-claim-bundle.json").read_text()
BUNDLE_XML = (DATA / "professional-claim-bundle.xml").read_text()
TOO_DEEP = "nested too deeply"


def check(path: Path) -> tuple[int, list[dict[str, Any]], str]:
    result = CliRunner().invoke(
        app,
        ["check", str(path), "--format", "ndjson", "--today", "2026-03-02"],
        env={"CLEANCLAIM_PLUGINS": "none"},
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return (
        result.exit_code,
        [json.loads(line) for line in result.stdout.splitlines()],
        result.stderr,
    )


def messages(decision: dict[str, Any]) -> str:
    return " ".join(f["message"] for f in decision["findings"])


def json_extension_chain(depth: int) -> str:
    return (
        '{"url": "http://x", "extension": [' * depth
        + '{"url": "http://x", "valueString": "a"}'
        + "]}" * depth
    )


def xml_extension_chain(depth: int) -> str:
    return (
        '<extension url="http://x">' * depth + '<valueString value="a"/>' + "</extension>" * depth
    )


def two_claims_one_deep(depth: int) -> str:
    """The sample bundle with a second, undamaged Claim after the first, whose
    extension is `depth` levels deep."""
    data = json.loads(BUNDLE_JSON)
    second = json.loads(json.dumps(data["entry"][4]))
    second["resource"]["id"] = "C-1002"
    second["fullUrl"] = "http://example.org/fhir/Claim/C-1002"
    data["entry"].append(second)
    data["entry"][4]["resource"]["extension"] = ["DEEP"]
    return json.dumps(data).replace('"DEEP"', json_extension_chain(depth))


def test_5000_deep_xml_is_a_located_file_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.xml"
    path.write_text(
        '<Bundle xmlns="http://hl7.org/fhir">' + "<entry>" * 5000 + "</entry>" * 5000 + "</Bundle>"
    )
    code, decisions, stderr = check(path)
    assert code == 3
    [record] = decisions
    assert record["status"] == "reject"
    assert TOO_DEEP in record["error"]["reason"] and "line 1, column" in record["error"]["reason"]
    assert TOO_DEEP in stderr


def test_5000_deep_claim_extension_in_xml_is_a_located_file_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.xml"
    path.write_text(
        BUNDLE_XML.replace(
            '<id value="C-1001"/>', '<id value="C-1001"/>' + xml_extension_chain(5000)
        )
    )
    code, decisions, _ = check(path)
    assert code == 3 and TOO_DEEP in decisions[0]["error"]["reason"]


@pytest.mark.parametrize("depth", [200, 250])
def test_deep_xml_within_the_parser_limit_rejects_the_claim(tmp_path: Path, depth: int) -> None:
    # Before: a PydanticSerializationError ("not valid FHIR R4 (PydanticSerializationError)").
    path = tmp_path / "deep.xml"
    text = BUNDLE_XML.replace(
        '<id value="C-1001"/>', '<id value="C-1001"/>' + xml_extension_chain(depth)
    )
    assert text != BUNDLE_XML
    path.write_text(text)
    code, decisions, _ = check(path)
    assert code == 1  # a claim was rejected; the run itself went through
    [decision] = decisions
    assert (decision["claim_id"], decision["status"]) == ("C-1001", "reject")
    assert "Claim: not valid FHIR R4 (Bundle.entry[4].resource)" in messages(decision)
    assert TOO_DEEP in messages(decision)


def test_one_deep_claim_in_json_rejects_that_claim_only(tmp_path: Path) -> None:
    # Before: RecursionError in validation; the file gave no decision for either claim
    # ("cannot be read: RecursionError after 0 claim(s)").
    path = tmp_path / "deep.json"
    path.write_text(two_claims_one_deep(300))
    code, decisions, _ = check(path)
    assert code == 1
    assert [d["claim_id"] for d in decisions] == ["C-1001", "C-1002"]
    assert decisions[0]["status"] == "reject" and TOO_DEEP in messages(decisions[0])
    assert TOO_DEEP not in messages(decisions[1])
    assert "error" not in decisions[0]


def test_a_deep_patient_rejects_the_claim_that_refers_to_it(tmp_path: Path) -> None:
    data = json.loads(BUNDLE_JSON)
    data["entry"][0]["resource"]["extension"] = ["DEEP"]
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(data).replace('"DEEP"', json_extension_chain(300)))
    _, [decision], _ = check(path)
    assert decision["status"] == "reject"
    assert (
        "Claim.patient: the Patient it refers to (Bundle.entry[0].resource) is not valid "
        f"FHIR R4: Patient: elements {TOO_DEEP}"
    ) in messages(decision)


def test_5000_deep_json_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text(two_claims_one_deep(5000))
    code, [record], _ = check(path)
    assert code == 3 and TOO_DEEP in record["error"]["reason"]


def _mutate(text: str, rng: random.Random, xml: bool) -> str:
    """Insert a nested chain (arrays, objects or elements) at a random place of a sample."""
    depth = rng.choice([50, 150, 240, 300, 600, 990, 1500, 5000])
    if xml:
        cuts = [i + 1 for i, ch in enumerate(text) if ch == ">" and text[i - 1] != "?"]
        cut = rng.choice(cuts[1:-1])
        return text[:cut] + xml_extension_chain(depth) + text[cut:]
    cuts = [i + 1 for i, ch in enumerate(text) if ch in "[:"]
    cut = rng.choice(cuts)
    chain = rng.choice(
        [
            "[" * depth + "1" + "]" * depth,
            json_extension_chain(depth),
            '{"a": ' * depth + "1" + "}" * depth,
        ]
    )
    return text[:cut] + chain + ("," if text[cut:].lstrip()[:1] not in "]}," else "") + text[cut:]


@pytest.mark.parametrize(
    "name", sorted(p.name for p in DATA.iterdir() if p.suffix in (".json", ".xml"))
)
def test_mutated_samples_never_crash(name: str) -> None:
    text = (DATA / name).read_text()
    rng = random.Random(f"19.1 {name}")
    for _ in range(12):
        mutated = _mutate(text, rng, name.endswith(".xml"))
        try:
            claims = list(read_fhir(mutated, name, {}))
        except InputFileError as exc:  # a located file error, never a crash
            assert exc.message
            continue
        assert claims
        for claim in claims:
            assert claim.data is not None or claim.problems
            assert all("RecursionError" not in p.message for p in claim.problems)

"""Case files are strict (13.15): a case claim is validated like a real claim (a reject of
the case's own claim is shown as such), and a key a case file does not know - at the case
level or inside a claim or history claim - is a located error, not silently ignored."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cleanclaim.engine.cases import CaseFileError, load_cases
from cleanclaim.engine.testing import render_text, run_cases
from tests.policy_cases_plugin import shared_engine
from tests.test_testing_cmd import case_file


def test_a_typo_in_a_line_field_is_a_located_error(tmp_path: Path) -> None:
    path = case_file(
        tmp_path,
        """\
  - name: a typo in the service date
    claim:
      lines:
        - {line: 1, code: "93000", units: 1, servce_date: "2026-02-10",
           diagnosis_pointers: [1, 2]}
    expect: {status: clean}
""",
    )
    with pytest.raises(CaseFileError) as excinfo:
        load_cases(path)
    message = str(excinfo.value)
    assert f"{path}:19: unknown key `cases[0].claim.lines[0].servce_date`" in message
    assert "did you mean `service_date`?" in message


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        (
            "  - name: a case-level typo\n    expct: {status: clean}\n"
            "    expect: {status: clean}\n",
            17,
            "cases[0].expct",
        ),
        (
            "  - name: a member typo\n    claim: {member: {sexx: F}}\n"
            "    expect: {status: clean}\n",
            17,
            "cases[0].claim.member.sexx",
        ),
        (
            "  - name: a history typo\n"
            "    history: [{claim_id: MC-0, recieved_date: '2026-01-01'}]\n"
            "    expect: {status: deny}\n",
            17,
            "cases[0].history[0].recieved_date",
        ),
        (
            "  - name: a batch typo\n    claims:\n      - claim: {claim_id: B-1}\n"
            "        expekt: {status: clean}\n",
            19,
            "cases[0].claims[0].expekt",
        ),
    ],
)
def test_unknown_keys_anywhere_are_errors(tmp_path: Path, text: str, line: int, key: str) -> None:
    path = case_file(tmp_path, text)
    with pytest.raises(CaseFileError, match=re.escape(f"ecg.yaml:{line}: unknown key `{key}`")):
        load_cases(path)


def test_a_typo_in_base_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cases" / "t.yaml"
    path.parent.mkdir()
    path.write_text("base: {claim_id: X, payr: medicare}\ncases: []\n", encoding="utf-8")
    with pytest.raises(CaseFileError, match=r"t.yaml:1: unknown key `base.payr` \(did you mean"):
        load_cases(path)


def test_free_form_sections_stay_free(tmp_path: Path) -> None:
    path = case_file(
        tmp_path,
        """\
  - name: documentation and addresses are free-form
    claim:
      documentation: {ecg: {anything: 1}}
      billing_provider: {npi: "1234567893", address: {state: TX, city: Austin}}
    expect: {status: clean}
""",
    )
    assert len(load_cases(path)) == 1


def test_a_case_claim_the_engine_rejects_says_so(tmp_path: Path) -> None:
    path = case_file(
        tmp_path,
        """\
  - name: a date that is no date
    claim: {received_date: "2026-13-45"}
    expect: {status: clean, findings: []}
  - name: status only
    claim: {received_date: "2026-13-45"}
    expect: {status: clean}
  - name: a reject the case means
    claim: {received_date: "2026-13-45"}
    expect:
      status: reject
      findings: [{rule: engine/claim-format}]
""",
    )
    run = run_cases(shared_engine(), [path])
    first, second, meant = run.results
    assert meant.passed
    for result in (first, second):
        assert result.problems[0].startswith("the case's claim is not valid: received_date: ")
        assert not any(p.startswith("unexpected finding") for p in result.problems)
    text = render_text(run, coverage=False)
    assert "  the case's claim is not valid: received_date: " in text


def test_a_pack_below_a_folder_named_cases_finds_only_its_case_files(tmp_path: Path) -> None:
    from cleanclaim.engine.cases import case_files

    pack = tmp_path / "cases" / "payer_policies" / "acme"
    (pack / "cases").mkdir(parents=True)
    (pack / "pack.yaml").write_text("id: acme\n", encoding="utf-8")
    (pack / "cases" / "a.yaml").write_text("cases: []\n", encoding="utf-8")
    assert case_files(pack) == [pack / "cases" / "a.yaml"]

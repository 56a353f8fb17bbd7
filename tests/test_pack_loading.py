"""Pack loading never gives an empty engine in silence (issue 13.12, 13.13): policy files
in subfolders load, a folder that is a pack loads, a pack without rules and a folder
without packs are errors, and library packs (`common`) stay available with --policies."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cleanclaim.dsl.errors import PolicyCompileError
from cleanclaim.engine.cli import app
from cleanclaim.engine.engine import Engine, shipped_policies

TODAY = dt.date(2026, 3, 2)
RULE = """version 1
valueset mri = codes [72148]
rule "demo/auth/mri"
  applies to codes mri
  root cause authorization
  when not authorized()
  then deny CO-197
  message "no authorization for {line.code}"
end
"""
CLAIM: dict[str, Any] = {
    "claim_id": "D-1",
    "payer": "demo",
    "received_date": "2026-03-02",
    "member": {
        "id": "X",
        "birth_date": "1980-01-01",
        "sex": "M",
        "coverage": [{"payer": "demo", "start": "2016-01-01", "end": None}],
    },
    "billing_provider": {"npi": "1234567893"},
    "rendering_provider": {"npi": "1234567893"},
    "place_of_service": "11",
    "diagnoses": ["M54.50"],
    "lines": [
        {
            "line": 1,
            "code": "72148",
            "units": 1,
            "charge": "900.00",
            "service_date": "2026-02-10",
            "diagnosis_pointers": [1],
        }
    ],
}


def make_pack(
    root: Path, manifest: str = "id: demo\nname: Demo\n", files: dict[str, str] | None = None
) -> Path:
    pack = root / "demo"
    pack.mkdir(parents=True)
    (pack / "pack.yaml").write_text(manifest, encoding="utf-8")
    for name, text in (files or {}).items():
        (pack / name).parent.mkdir(parents=True, exist_ok=True)
        (pack / name).write_text(text, encoding="utf-8")
    return pack


def test_policy_files_in_a_subfolder_are_loaded(tmp_path: Path) -> None:
    make_pack(tmp_path, files={"auth/mri.policy": RULE})
    decision = Engine([tmp_path], today=TODAY).check(CLAIM)
    assert decision.status == "deny"
    assert [f.carc for f in decision.findings] == ["197"]


def test_a_subfolder_that_is_a_pack_of_its_own_is_not_part_of_the_pack(tmp_path: Path) -> None:
    pack = make_pack(tmp_path, files={"mri.policy": RULE})
    inner = pack / "nested"
    inner.mkdir()
    (inner / "pack.yaml").write_text("id: nested\n", encoding="utf-8")
    (inner / "x.policy").write_text(RULE.replace("demo/", "nested/"), encoding="utf-8")
    assert Engine([tmp_path], today=TODAY).check(CLAIM).status == "deny"


def test_a_folder_that_is_a_pack_loads_that_pack(tmp_path: Path) -> None:
    pack = make_pack(tmp_path, files={"mri.policy": RULE})
    engine = Engine([pack], today=TODAY)
    assert list(engine.programs) == ["demo"]
    assert engine.check(CLAIM).status == "deny"


def test_check_with_a_shipped_pack_folder_as_policies_works() -> None:
    claims = Path(__file__).parent / "data"
    claim = dict(CLAIM, payer="acme-ppo", claim_id="A-1")
    claim["member"] = dict(
        CLAIM["member"], coverage=[{"payer": "acme-ppo", "start": "2016-01-01", "end": None}]
    )
    engine = Engine([shipped_policies() / "acme-ppo"], today=TODAY)
    assert list(engine.programs) == ["acme-ppo"]  # and `include: [common]` resolved
    decision = engine.check(claim)
    assert "197" in [f.carc for f in decision.findings], decision.to_json()
    assert claims.is_dir()


def test_a_pack_without_rules_is_an_error(tmp_path: Path) -> None:
    make_pack(tmp_path, files={"sets.policy": "version 1\nvalueset x = codes [93000]\n"})
    with pytest.raises(PolicyCompileError) as info:
        Engine([tmp_path], today=TODAY, plugins=[])  # no plugin pack applies either
    assert [e.code for e in info.value.errors] == ["E505"]
    assert "has no rules" in info.value.errors[0].message


def test_a_pack_without_any_policy_file_is_an_error_even_with_plugins(tmp_path: Path) -> None:
    # The lost-work regression: an empty pack passed every claim in silence, with or
    # without plugins, and lint said "no problems".
    make_pack(tmp_path)
    choices: tuple[list[str] | None, ...] = ([], None)
    for plugins in choices:
        with pytest.raises(PolicyCompileError) as info:
            Engine([tmp_path], today=TODAY, plugins=plugins)
        error = next(e for e in info.value.errors if e.code == "E505")
        assert "no .policy file" in error.message
        assert error.span.file.endswith("demo/pack.yaml") and error.span.line == 1
        assert "rules_from_plugins: true" in (error.hint or "")
    result = CliRunner().invoke(app, ["lint", "--policies", str(tmp_path)])
    assert result.exit_code == 1 and "E505" in result.output, result.output


def test_a_pack_whose_rules_come_from_plugins_may_have_none(tmp_path: Path) -> None:
    make_pack(tmp_path, "id: demo\nrules_from_plugins: true\n")
    engine = Engine([tmp_path], today=TODAY, plugins=[])
    assert list(engine.programs) == ["demo"]
    result = CliRunner().invoke(app, ["lint", "--policies", str(tmp_path)])
    assert "E505" not in result.output, result.output


def test_rules_from_plugins_must_be_a_bool(tmp_path: Path) -> None:
    make_pack(tmp_path, "id: demo\nrules_from_plugins: yes please\n", {"mri.policy": RULE})
    with pytest.raises(PolicyCompileError) as info:
        Engine([tmp_path], today=TODAY, plugins=[])
    error = info.value.errors[0]
    assert error.code == "E501" and "`rules_from_plugins` must be true or false" in error.message
    assert error.span.line == 2


def test_a_policies_folder_without_a_pack_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "rules.policy").write_text(RULE, encoding="utf-8")
    with pytest.raises(PolicyCompileError) as info:
        Engine([tmp_path], today=TODAY)
    error = info.value.errors[0]
    assert error.code == "E506" and "no policy pack" in error.message
    assert "pack.yaml" in (error.hint or "")


def test_cli_check_with_an_empty_policies_folder_exits_2(tmp_path: Path) -> None:
    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps(CLAIM), encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["check", str(claim), "--policies", str(empty)])
    assert result.exit_code == 2
    assert "E506" in result.output


def test_lint_of_a_folder_without_packs_is_not_no_problems(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["lint", "--policies", str(tmp_path)])
    assert result.exit_code == 2
    assert "no policy pack" in result.output


def test_library_packs_stay_available_with_policies(tmp_path: Path) -> None:
    make_pack(tmp_path, "id: demo\ninclude: [common]\n", {"mri.policy": RULE})
    engine = Engine([tmp_path], today=TODAY)
    assert list(engine.programs) == ["demo"]
    # common's rules apply: a claim without diagnoses is rejected by them
    decision = engine.check(dict(CLAIM, diagnoses=[]))
    assert any(f.rule.startswith("common/") for f in decision.findings)


def test_a_library_of_the_same_id_replaces_the_shipped_one(tmp_path: Path) -> None:
    make_pack(tmp_path, "id: demo\ninclude: [common]\n", {"mri.policy": RULE})
    common = tmp_path / "common"
    shutil.copytree(shipped_policies() / "common", common)
    for policy in common.glob("*.policy"):
        policy.unlink()
    (common / "own.policy").write_text(
        "version 1\nvalueset own = codes [99213]\n", encoding="utf-8"
    )
    engine = Engine([tmp_path], today=TODAY)
    decision = engine.check(dict(CLAIM, diagnoses=[]))
    assert not any(f.rule.startswith("common/") for f in decision.findings)


def test_unknown_include_says_where_packs_are_looked_up(tmp_path: Path) -> None:
    make_pack(tmp_path, "id: demo\ninclude: [comon]\n", {"mri.policy": RULE})
    with pytest.raises(PolicyCompileError) as info:
        Engine([tmp_path], today=TODAY)
    error = next(e for e in info.value.errors if e.code == "E502")
    assert str(tmp_path) in error.message and "looked up in" in error.message
    assert "common" in (error.hint or "")

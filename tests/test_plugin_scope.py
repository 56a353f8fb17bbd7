"""Plugin rule scope: Medicare-only plugin rules, pack opt-in, and the audit probes.

The probes are copies of the audit's probe claims (audit 2026-12 §5; shared reference
audit-probes/, copied into tests/plugins/probes/), run against the shipped packs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.dsl.errors import PolicyCompileError
from cleanclaim.engine import Engine
from tests.policy_cases_plugin import TODAY

PROBES = Path(__file__).resolve().parent / "plugins" / "probes"


def probe(name: str) -> dict[str, dict[str, Any]]:
    data = json.loads((PROBES / name).read_text(encoding="utf-8"))
    return {c["claim_id"]: c for c in (data if isinstance(data, list) else [data])}


@pytest.fixture(scope="module")
def shipped() -> Engine:
    return Engine(today=TODAY, plugins=["cardiology", "dermatology", "therapy"])


def rules_of(engine: Engine, claim: dict[str, Any]) -> list[str]:
    return [f.rule.split("/", 1)[-1] for f in engine.check(claim).findings]


def test_acme_is_not_judged_by_the_medicare_8_minute_rule(shipped: Engine) -> None:
    # FD15: 97110 8 min + 97140 8 min on ACME, paid under the CPT per-code rule.
    assert "eight-minute-rule" not in rules_of(shipped, probe("acme_8x8.json")["ACME-PT-8x8"])


def test_acme_gets_no_medicare_plan_of_care_review(shipped: Engine) -> None:
    # FD16: the plan-of-care rules are Medicare Part B conditions of payment.
    found = rules_of(shipped, probe("acme_plugins.json")["ACME-PT"])
    assert not {"plan-of-care-certification", "eight-minute-rule"} & set(found)


def test_medicare_still_gets_the_8_minute_rule(shipped: Engine) -> None:
    claim = probe("acme_8x8.json")["ACME-PT-8x8"] | {"payer": "medicare"}
    claim["member"] = dict(
        claim["member"], coverage=[{"payer": "medicare", "start": "2016-01-01", "end": None}]
    )
    assert "eight-minute-rule" in rules_of(shipped, claim)


def test_pt_and_ot_minutes_are_counted_apart(shipped: Engine) -> None:
    # FD14: 97110-GP 10 min + 97530-GO 10 min bill one unit each.
    assert "eight-minute-rule" not in rules_of(shipped, probe("eight_min_disc.json")["8MIN-PTOT"])


def write_pack(root: Path, manifest: str) -> Path:
    folder = root / "opted"
    folder.mkdir(parents=True)
    # A pack whose rules all come from the plugins (E505 otherwise).
    (folder / "pack.yaml").write_text(manifest + "rules_from_plugins: true\n", encoding="utf-8")
    return root


def test_an_opt_in_to_a_rule_the_plugin_lacks_is_a_located_error(tmp_path: Path) -> None:
    root = write_pack(tmp_path, 'id: opted\nversion: "1"\nopt_in: [therapy/eight-minute-rul]\n')
    with pytest.raises(PolicyCompileError) as raised:
        Engine([root], today=TODAY, plugins=["therapy"])
    error = next(e for e in raised.value.errors if e.code == "E505")
    assert "therapy/eight-minute-rul" in error.message and "eight-minute-rule" in (error.hint or "")
    assert error.span.file.endswith("opted/pack.yaml") and error.span.line == 3


def test_an_opt_in_to_a_plugin_not_loaded_is_not_an_error(tmp_path: Path) -> None:
    root = write_pack(tmp_path, 'id: opted\nversion: "1"\nopt_in: [therapy/eight-minute-rule]\n')
    Engine([root], today=TODAY, plugins=["dermatology"])


def test_an_opt_in_must_name_plugin_rules(tmp_path: Path) -> None:
    root = write_pack(tmp_path, 'id: opted\nversion: "1"\nopt_in: eight-minute-rule\n')
    with pytest.raises(PolicyCompileError) as raised:
        Engine([root], today=TODAY)
    assert any("`opt_in` must be a list of plugin rules" in e.message for e in raised.value.errors)


def test_an_opted_in_pack_gets_the_rule(tmp_path: Path) -> None:
    root = write_pack(tmp_path, 'id: opted\nversion: "1"\nopt_in: [therapy/eight-minute-rule]\n')
    engine = Engine([root], today=TODAY, plugins=["therapy"])
    claim = probe("acme_8x8.json")["ACME-PT-8x8"] | {"payer": "opted"}
    assert "eight-minute-rule" in rules_of(engine, claim)


PTP_HEADER = (
    "cleanclaim TEST TABLE - NOT CMS DATA.\n\n"
    "Column 1\tColumn 2\t* = in existence prior to 1996\tEffective Date\t"
    "Deletion Date\tModifier\tPTP Edit Rationale\n"
    "\t\t\t(YYYYMMDD)\t(YYYYMMDD) *=no data\t0=not allowed 1=allowed 9=not "
    "applicable\t\n"
)


def test_a_pair_the_ptp_table_carries_yields_one_finding(tmp_path: Path) -> None:
    # The medicare pack's PTP edit and the cardiology plugin's stress-test rule name the
    # same pair: the payer's CO-236 stands alone (INTERFACES.md, NCCI-style pair rules).
    table = tmp_path / "ptp.txt"
    table.write_text(
        PTP_HEADER + "93015\t93000\t\t20100101\t*\t1\tStandards of medical practice\n",
        encoding="utf-8",
    )
    engine = Engine(today=TODAY, plugins=["cardiology"], tables={"ncci-ptp": table})
    claim = probe("stress_ecg.json")["STRESS-XU"]
    claim["lines"][1]["modifiers"] = []
    on_ecg = [f.rule for f in engine.check(claim).findings if f.line == 2]
    assert on_ecg == ["medicare/ncci/ptp"]
    # Without the table row the plugin's rule speaks.
    plain = Engine(today=TODAY, plugins=["cardiology"])
    on_ecg = [f.rule for f in plain.check(claim).findings if f.line == 2]
    assert on_ecg == ["cardiology@0.1.0/stress-test-includes-ecg"]


def test_units_the_mue_already_denies_yield_one_finding(shipped: Engine) -> None:
    # Audit 2026-12 rule 37: dermatology's 17003-units and the medicare MUE edit (sample
    # table: 17003 = 13, MAI 2) both denied 14 units of 17003; the payer's MUE speaks alone.
    claim = probe("derm_17004.json")["DERM-17004"]
    claim["lines"][1] = dict(claim["lines"][1], code="17003", units=14)
    on_line = [f.rule for f in shipped.check(claim).findings if f.line == 2]
    assert on_line == ["medicare/ncci/mue"]
    claim["payer"] = "acme-ppo"  # no MUE table: the plugin's rule speaks
    claim["member"] = dict(
        claim["member"], coverage=[{"payer": "acme-ppo", "start": "2016-01-01", "end": None}]
    )
    on_line = [f.rule for f in shipped.check(claim).findings if f.line == 2]
    assert on_line == ["dermatology@0.1.0/17003-units"]

"""Partial value sets and sample NCCI tables never give a confident denial (issue 11 section 1).

Sources: AUDIT-2026-12 section 3 (the shipped A56781 Group 1 CSV stops at I08.2, so C-1002,
93306 + I48.91, was a false denial) and rules 18-19 (the illustrative NCCI samples were
loaded by default with no warning; probe ecg_serial.json). With real CMS-layout files the
NCCI rules deny exactly as before.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from cleanclaim.dsl import ast
from cleanclaim.dsl.valuesets import CodeSet, partial_notes
from cleanclaim.engine import runtime
from cleanclaim.engine.cli import app
from cleanclaim.engine.engine import Engine
from cleanclaim.engine.ncci import SAMPLE_MARKER, load_mue, load_ptp, sample_warning

ROOT = Path(__file__).resolve().parent.parent
TABLES = ROOT / "payer_policies" / "medicare" / "tables"
PROBES = Path(__file__).parent / "data" / "audit-probes"
TODAY = dt.date(2026, 3, 2)


def _real_copy(tmp_path: Path, name: str) -> Path:
    """The shipped sample without its sample line: rows in the CMS layout, as a CMS file."""
    raw = (TABLES / name).read_bytes()
    lines = [line for line in raw.splitlines(keepends=True) if SAMPLE_MARKER not in line]
    out = tmp_path / name
    out.write_bytes(b"".join(lines))
    return out


def _probe(name: str) -> list[dict[str, Any]]:
    data = json.loads((PROBES / f"{name}.json").read_text(encoding="utf-8"))
    return data if isinstance(data, list) else [data]


def _findings(decision: Any, rule: str) -> list[Any]:
    return [f for f in decision.findings if f.rule == rule]


# ---- the tables know they are samples ---------------------------------------------------


def test_the_shipped_tables_are_samples_and_cms_layout_copies_are_not(tmp_path: Path) -> None:
    assert load_ptp(TABLES / "ptp-practitioner-sample.txt").sample == "ptp-practitioner-sample.txt"
    assert load_mue(TABLES / "mue-practitioner-sample.csv").sample == "mue-practitioner-sample.csv"
    assert load_ptp(_real_copy(tmp_path, "ptp-practitioner-sample.txt")).sample is None
    assert load_mue(_real_copy(tmp_path, "mue-practitioner-sample.csv")).sample is None


def test_one_warning_names_every_sample_and_the_fix() -> None:
    tables = [
        load_ptp(TABLES / "ptp-practitioner-sample.txt"),
        load_mue(TABLES / "mue-practitioner-sample.csv"),
    ]
    warning = sample_warning(tables)
    assert warning is not None and "load the CMS quarterly files with --ptp/--mue" in warning
    assert "ptp-practitioner-sample.txt" in warning and "mue-practitioner-sample.csv" in warning
    assert sample_warning([]) is None


# ---- findings on sample tables are reviews; on real files, denials as before -------------


def test_mue_on_the_sample_is_a_review_saying_so_with_the_mai() -> None:
    # probe ECG-SERIAL: 93000 + 93000-76; sample MUE 93000 = 1, indicator 3 (FD8).
    decision = Engine(today=TODAY).check(_probe("ecg_serial")[0])
    mue = _findings(decision, "medicare/ncci/mue")
    assert [f.severity for f in mue] == ["review", "review"]
    assert "sample table" in mue[0].message and "--ptp/--mue" in mue[0].message
    assert "(MAI 3" in mue[0].message
    assert decision.status == "review"


def test_with_real_files_the_ncci_rules_deny_as_before(tmp_path: Path) -> None:
    engine = Engine(
        today=TODAY,
        tables={
            "ncci-ptp": _real_copy(tmp_path, "ptp-practitioner-sample.txt"),
            "ncci-mue": _real_copy(tmp_path, "mue-practitioner-sample.csv"),
        },
    )
    decision = engine.check(_probe("ecg_serial")[0])
    mue = _findings(decision, "medicare/ncci/mue")
    assert [f.severity for f in mue] == ["deny", "deny"]
    assert "sample" not in mue[0].message and "(MAI 3" in mue[0].message
    claim = _probe("ecg_serial")[0]
    claim["lines"] = [
        {
            "line": 1,
            "code": "11042",
            "units": 1,
            "service_date": "2026-02-10",
            "diagnosis_pointers": [1],
        },
        {
            "line": 2,
            "code": "97597",
            "units": 1,
            "service_date": "2026-02-10",
            "diagnosis_pointers": [1],
        },
    ]
    ptp = _findings(engine.check(claim), "medicare/ncci/ptp")
    assert [(f.line, f.severity, f.carc) for f in ptp] == [(2, "deny", "236")]
    sample_ptp = _findings(Engine(today=TODAY).check(claim), "medicare/ncci/ptp")
    assert [(f.line, f.severity) for f in sample_ptp] == [(2, "review")]


def test_check_warns_once_per_run_with_sample_tables_and_not_with_real_files(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    probe = str(PROBES / "ecg_serial.json")
    result = runner.invoke(app, ["check", probe, probe, "--today", "2026-03-02"])
    warnings = [line for line in result.stderr.splitlines() if "sample tables" in line]
    assert len(warnings) == 1 and "--ptp/--mue" in warnings[0]
    real = runner.invoke(
        app,
        [
            "check",
            probe,
            "--today",
            "2026-03-02",
            "--ptp",
            str(_real_copy(tmp_path, "ptp-practitioner-sample.txt")),
            "--mue",
            str(_real_copy(tmp_path, "mue-practitioner-sample.csv")),
        ],
    )
    assert "NCCI sample" not in real.stderr
    # The medicare pack's fee schedule is still the shipped MPFS sample: said once, with
    # the file to import in its place.
    mpfs = [line for line in real.stderr.splitlines() if "mpfs-sample" in line]
    assert len(mpfs) == 1 and "cleanclaim data import mpfs" in mpfs[0]
    assert real.exit_code == 1  # the MUE denies on a real file


# ---- partial value sets ---------------------------------------------------------------------


def test_c1002_is_no_longer_denied() -> None:
    # README example C-1002: 93306 with I48.91 (AUDIT-2026-12 section 3, FD1).
    claims = json.loads((ROOT / "payer_policies" / "examples" / "claims.json").read_text())
    c1002 = next(c for c in claims if c["claim_id"] == "C-1002")
    for claim in (c1002, _probe("c1002")[0]):
        decision = Engine(today=TODAY).check(claim)
        assert decision.status != "deny"
        tte = [f for f in decision.findings if f.rule.startswith("medicare/necessity/tte")]
        assert tte and all(f.severity == "review" for f in tte)
        assert "the shipped list is partial" in tte[0].message
        assert "A56781" in tte[0].message


def test_a_code_found_in_a_partial_list_is_as_good_as_ever() -> None:
    claim = _probe("c1002")[0]
    claim["diagnoses"] = ["I08.2"]  # in the shipped part of Group 1
    decision = Engine(today=TODAY).check(claim)
    assert not [f for f in decision.findings if f.rule.startswith("medicare/necessity/tte")]


def _span() -> ast.Span:
    return ast.Span("t.policy", 1, 1, 1, 2)


def _name(name: str) -> ast.Path:
    return ast.Path((name,), _span())


@pytest.mark.parametrize(
    ("make", "rests"),
    [
        (lambda: ast.QuantifiedIn("no", _name("dx"), _name("part"), _span()), True),
        (lambda: ast.QuantifiedIn("any", _name("dx"), _name("part"), _span()), False),
        (lambda: ast.QuantifiedIn("all", _name("dx"), _name("part"), _span()), False),
        (lambda: ast.Membership(_name("code"), _name("part"), True, _span()), True),
        (lambda: ast.Membership(_name("code"), _name("part"), False, _span()), False),
        (
            lambda: ast.Not(ast.Membership(_name("code"), _name("part"), False, _span()), _span()),
            True,
        ),
        (lambda: ast.QuantifiedIn("any", _name("dx"), _name("whole"), _span()), False),
    ],
)
def test_only_a_code_not_found_in_a_partial_set_is_unsound(make: Any, rests: bool) -> None:
    sets = {
        "part": CodeSet("icd10", frozenset({"I082"})).declared_partial("the article"),
        "whole": CodeSet("icd10", frozenset({"I082"})),
    }
    notes = partial_notes([make()], [], sets, {}, {})
    assert bool(notes) is rests
    if rests:
        assert notes == ["the shipped list is partial; check the article"]


def test_partial_flows_through_unions_and_differences() -> None:
    part = CodeSet("icd10", frozenset({"I082"})).declared_partial("A56781")
    whole = CodeSet("icd10", frozenset({"Z08"}))
    assert part.union(whole).partial == "A56781"
    assert whole.union(part).partial == "A56781"
    assert (whole - part).partial == "A56781"
    assert whole.partial is None


def test_partial_naming_an_unknown_value_set_is_a_located_error(tmp_path: Path) -> None:
    pack = tmp_path / "demo"
    pack.mkdir()
    (pack / "pack.yaml").write_text("id: demo\nname: Demo\npartial:\n  nope: somewhere\n")
    (pack / "rules.policy").write_text(
        'version 1\nvalueset covered = icd10 [I10]\nrule "demo/r"\n  applies to codes [93306]\n'
        "  root cause medical_necessity\n  when no of line.pointed_diagnoses in covered\n"
        '  then deny CO-50\n  reference "x"\nend\n'
    )
    from cleanclaim.dsl.errors import PolicyCompileError

    with pytest.raises(PolicyCompileError) as raised:
        Engine([tmp_path], today=TODAY)
    assert any(e.code == "E101" and "`nope`" in e.message for e in raised.value.errors)


# ---- jurisdiction and business days ----------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "jurisdiction"),
    [
        ("IL", "J6"),
        ("mn", "J6"),
        ("WI", "J6"),
        ("NY", "JK"),
        ("VT", "JK"),
        ("TX", "JH"),
        ("CA", "JE"),
        ("FL", "JN"),
        (None, None),
        ("", None),
        ("ZZ", None),
    ],
)
def test_mac_jurisdiction_of_the_state_of_service(
    state: str | None, jurisdiction: str | None
) -> None:
    claim: Any = SimpleNamespace(service_state=state)
    assert runtime.mac_jurisdiction(claim, None) == jurisdiction


def test_every_state_has_one_jurisdiction() -> None:
    states = [s for group in runtime.AB_MAC_JURISDICTIONS.values() for s in group]
    assert len(states) == len(set(states))
    assert {"IL", "MN", "WI"} == set(runtime.AB_MAC_JURISDICTIONS["J6"])
    assert {"CT", "NY", "ME", "MA", "NH", "RI", "VT"} == set(runtime.AB_MAC_JURISDICTIONS["JK"])


@pytest.mark.parametrize(
    ("day", "due"),
    [
        ("2026-03-01", "2026-03-02"),  # Sunday -> Monday (probe tf_weekend.json)
        ("2026-02-28", "2026-03-02"),  # Saturday -> Monday
        ("2025-07-04", "2025-07-07"),  # Independence Day (Friday) -> Monday
        ("2026-01-19", "2026-01-20"),  # Martin Luther King Jr. Day
        ("2026-12-25", "2026-12-28"),  # Christmas (Friday) -> Monday
        ("2026-03-03", "2026-03-03"),  # an ordinary Tuesday
    ],
)
def test_business_day_on_or_after(day: str, due: str) -> None:
    assert runtime.business_day_on_or_after(dt.date.fromisoformat(day)) == dt.date.fromisoformat(
        due
    )
    assert runtime.business_day_on_or_after(None) is None


# ---- the generated table of rules -------------------------------------------------------------


def test_rules_lists_every_rule_with_its_source() -> None:
    result = CliRunner().invoke(app, ["rules", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    ids = {r["rule"] for r in rows}
    engine = Engine()
    shipped = {rule.id for program in engine.programs.values() for rule in program.rules}
    assert shipped <= ids
    assert all(r["source"] != "(no reference)" for r in rows if r["rule"] in shipped)
    tte = next(r for r in rows if r["rule"] == "medicare/necessity/tte-lcd-l33577")
    assert tte["outcome"] == "review CO-50 N115" and "A56781" in tte["source"]
    md = CliRunner().invoke(app, ["rules"]).stdout
    assert md.startswith("# Shipped rules and their sources")
    assert "| `common/duplicate/same-service` |" in md


# ---- one finding per pair: the pack's ECG rule stands down for a table that carries it ----


def _ptp_file(tmp_path: Path, rows: list[str]) -> Path:
    """A PTP file in the CMS ccipra layout (tab-delimited, preamble and header lines)."""
    head = (
        "CPT codes and descriptions only are copyright American Medical Association.\n"
        "Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\tDeletion Date"
        "\tModifier\tPTP Edit Rationale\n"
    )
    path = tmp_path / "ccipra-v321r0-f1.TXT"
    path.write_text(head + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


def _ecg_claim(*lines: tuple[str, list[str]]) -> dict[str, Any]:
    claim = _probe("c1002")[0]
    claim["diagnoses"] = ["R07.9"]
    claim["lines"] = [
        {
            "line": i,
            "code": code,
            "modifiers": mods,
            "units": 1,
            "service_date": "2026-02-10",
            "diagnosis_pointers": [1],
        }
        for i, (code, mods) in enumerate(lines, 1)
    ]
    return claim


def test_an_ecg_pair_the_ptp_table_carries_is_one_finding(tmp_path: Path) -> None:
    # AUDIT-2026-12 rule 12: with real PTP files the ECG pair fired twice.
    ptp = _ptp_file(
        tmp_path, ["93000\t93010\t\t20100101\t*\t1\tCPT Manual or CMS manual coding instructions"]
    )
    engine = Engine(today=TODAY, tables={"ncci-ptp": ptp})
    pair = engine.check(_ecg_claim(("93000", []), ("93010", [])))
    found = [(f.rule, f.line, f.severity, f.carc) for f in pair.findings if f.carc in ("236", "97")]
    assert found == [("medicare/ncci/ptp", 2, "deny", "236")]
    bypassed = engine.check(_ecg_claim(("93000", ["XU"]), ("93010", [])))
    assert [f for f in bypassed.findings if f.carc in ("236", "97")] == []
    # Without the pair in the table the pack's own rule (CPT code structure) reports it.
    alone = Engine(today=TODAY).check(_ecg_claim(("93000", []), ("93010", [])))
    assert [(f.rule, f.line, f.severity) for f in alone.findings if f.carc == "236"] == [
        ("medicare/ecg/component-with-global", 2, "deny")
    ]


# ---- the MPFS sample ------------------------------------------------------------------------


def test_the_shipped_fee_schedule_is_a_sample_of_indicators_without_amounts(tmp_path: Path) -> None:
    from datetime import date

    from cleanclaim.engine.refdata.mpfs import open_fee_schedule

    shipped = ROOT / "payer_policies" / "medicare" / "tables" / "mpfs-sample-PPRRVU26_JAN.csv"
    schedule = open_fee_schedule(shipped)
    assert schedule.sample == shipped.name
    assert "cleanclaim data import mpfs" in schedule.import_hint
    row = schedule.row("17000", date(2026, 3, 9))
    assert row is not None and row["global_days"] == "010"
    assert row["nonfac_amount"] is None and row["fac_amount"] is None
    # The same rows without the sample line are read as a CMS file.
    text = shipped.read_text(encoding="utf-8").replace(
        '"cleanclaim SAMPLE TABLE - NOT CMS DATA."\n', "", 1
    )
    real = tmp_path / "PPRRVU26_JAN.csv"
    real.write_text(text, encoding="utf-8")
    assert open_fee_schedule(real).sample is None


def test_a_rule_resting_on_the_mpfs_sample_is_a_review_naming_the_import() -> None:
    claim = {
        "claim_id": "S-1",
        "payer": "medicare",
        "received_date": "2026-03-16",
        "member": {
            "id": "1EG4TE5MK73",
            "birth_date": "1951-04-12",
            "sex": "F",
            "coverage": [{"payer": "medicare", "start": "2016-01-01"}],
        },
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "place_of_service": "11",
        "diagnoses": ["M54.16"],
        "lines": [
            {
                "line": 1,
                "code": "64484",
                "units": 1,
                "charge": "150.00",
                "service_date": "2026-03-09",
                "diagnosis_pointers": [1],
            }
        ],
    }
    decision = Engine(today=TODAY, tables={}).check(claim)
    found = [f for f in decision.findings if f.rule == "medicare/addon/without-any-primary"]
    assert [f.severity for f in found] == ["review"]
    assert "sample table `mpfs`" in found[0].message
    assert "cleanclaim data import mpfs" in found[0].message


def test_global_surgery_denies_on_a_cms_fee_schedule_and_reviews_on_the_sample(
    tmp_path: Path,
) -> None:
    # NCCI Policy Manual 2025 ch. I section D: an E/M on the day of a minor (010)
    # procedure without modifier 25 is included in the procedure (CO-97 + M144).
    shipped = ROOT / "payer_policies" / "medicare" / "tables" / "mpfs-sample-PPRRVU26_JAN.csv"
    real = tmp_path / "PPRRVU26_JAN.csv"
    real.write_text(
        shipped.read_text(encoding="utf-8").replace(
            '"cleanclaim SAMPLE TABLE - NOT CMS DATA."\n', "", 1
        ),
        encoding="utf-8",
    )
    claim = {
        "claim_id": "GS-1",
        "payer": "medicare",
        "received_date": "2026-03-16",
        "member": {
            "id": "1EG4TE5MK73",
            "birth_date": "1951-04-12",
            "sex": "F",
            "coverage": [{"payer": "medicare", "start": "2016-01-01"}],
        },
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "place_of_service": "11",
        "diagnoses": ["L57.0"],
        "lines": [
            {
                "line": 1,
                "code": "99213",
                "units": 1,
                "charge": "95.00",
                "service_date": "2026-03-09",
                "diagnosis_pointers": [1],
            },
            {
                "line": 2,
                "code": "17000",
                "units": 1,
                "charge": "80.00",
                "service_date": "2026-03-09",
                "diagnosis_pointers": [1],
            },
        ],
    }
    rule = "medicare/global/em-same-day-minor-without-25"
    for tables, severity in (({}, "review"), ({"cms-mpfs": real}, "deny")):
        found = [
            f for f in Engine(today=TODAY, tables=tables).check(claim).findings if f.rule == rule
        ]
        assert [(f.severity, f.carc, list(f.rarc)) for f in found] == [
            (severity, "97", ["M144"])
        ], tables

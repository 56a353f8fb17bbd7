"""The denial report: the adjustment mapping, the classifier, the report and its join with
our own decisions (made here by `cleanclaim check` on tests/data/x835/claims.json), and
`cleanclaim denials`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cleanclaim.dsl.vocabulary import OWNERS, ROOT_CAUSES
from cleanclaim.engine.cli import app
from cleanclaim.engine.denials import (
    MappingError,
    build_report,
    load_mapping,
    parse_decisions,
    read_remittance,
)
from cleanclaim.engine.denials.mapping import CATEGORIES, parse_mapping

DATA = Path(__file__).parent / "data" / "x835"
REMIT = DATA / "denials.835"
TODAY = "2026-03-01"
HEADER = "group,carc,rarc,category,root_cause,owner,route,label,next_step,source\n"


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def decisions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our decisions on the claims the remittance pays, as `cleanclaim check` writes them."""
    out = tmp_path_factory.mktemp("decisions") / "decisions.ndjson"
    result = _cli("check", str(DATA / "claims.json"), "--today", TODAY, "--format", "ndjson")
    assert result.exit_code == 1, result.output  # C-1001 denied, C-2001 rejected
    out.write_text(result.stdout)
    return out


# --------------------------------------------------------------------------- mapping


def test_the_shipped_mapping_uses_the_engines_vocabulary_and_has_a_source_per_row() -> None:
    mapping = load_mapping()
    assert len(mapping.rows) > 80
    for row in mapping.rows:
        assert row.source and row.label and row.next_step
        assert row.category in (*CATEGORIES, "ambiguous")
        if row.category == "denial":
            assert row.root_cause in ROOT_CAUSES and row.owner in OWNERS
    assert {r.root_cause for r in mapping.rows if r.root_cause} <= set(ROOT_CAUSES)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "*,50,,denial,medical_necessity,frontdesk,appeal,x,y,z",
            "2: column owner: `frontdesk` is not allowed (did you mean `front_end`?)",
        ),
        (
            "*,999,,denial,coding,coding,appeal,x,y,z",
            "2: column carc: `999` is not a CARC X12 defines",
        ),
        (
            "*,50,N99999,denial,coding,coding,appeal,x,y,z",
            "2: column rarc: `N99999` is not a RARC X12 defines",
        ),
        (
            "CO,45,,contractual,coding,,none,x,y,z",
            "2: columns root_cause/owner are only for a denial (this row is contractual)",
        ),
        (
            "*,50,,denial,submission_data,billing,appeal,x,y,z",
            "2: column root_cause: `submission_data` is not allowed (did you mean `submission`?)",
        ),
        ("*,50,,denial,coding,coding,appeal,x,y", "2: 9 cells, expected 10"),
        ("*,50,,denial,coding,coding,appeal,x,y,", "2: column source is empty"),
    ],
)
def test_a_bad_mapping_row_is_a_located_error(row: str, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_mapping(HEADER + row + "\n", "my.csv")
    problems = caught.value.problems
    assert any(p.startswith(f"my.csv:{message}") for p in problems), problems


def test_a_duplicate_row_and_a_bad_header_are_errors() -> None:
    row = "*,50,,denial,coding,coding,appeal,x,y,z\n"
    with pytest.raises(MappingError) as caught:
        parse_mapping(HEADER + row + row, "dup.csv")
    assert caught.value.problems == ["dup.csv:3: *-50 is already mapped at line 2"]
    with pytest.raises(MappingError, match="the header must be"):
        parse_mapping("group,carc\n", "header.csv")


# --------------------------------------------------------------------------- classifier


def test_the_rarc_decides_an_ambiguous_carc_and_never_a_guess() -> None:
    m = load_mapping()
    decided = m.classify("CO", "16", ("MA130", "M51"))
    assert (decided.category, decided.root_cause, decided.owner, decided.rarc) == (
        "denial",
        "submission",
        "billing",
        "M51",
    )
    alone = m.classify("CO", "16", ())
    assert alone.category == "unclassified" and "needs a remark code" in (alone.why or "")
    both = m.classify("CO", "16", ("M76",))  # M76: missing (billing) or invalid (coding)
    assert both.category == "unclassified" and "M76: ambiguous too" in (both.why or "")
    disagree = m.classify("CO", "151", ("N362", "N640"))
    assert disagree.category == "unclassified"
    assert "N362 says coding, N640 says benefit_limit" in (disagree.why or "")
    # A remark that refines a CARC that is clear alone: the remark's row wins.
    assert m.classify("CO", "50", ("N706",)).root_cause == "documentation"
    assert m.classify("CO", "50", ("MA01",)).root_cause == "medical_necessity"


def test_non_denials_are_classified_as_such() -> None:
    m = load_mapping()
    assert m.classify("CO", "45").category == "contractual"
    assert m.classify("PR", "45").category == "patient_responsibility"
    assert [m.classify("PR", c).label for c in ("1", "2", "3")] == [
        "deductible",
        "coinsurance",
        "copay",
    ]
    assert m.classify("OA", "23").category == "coordination_of_benefits"
    assert m.classify("CR", "50").category == "correction"  # the group decides alone
    assert "not a CARC X12 defines" in (m.classify("CO", "999").why or "")
    assert "not in the mapping" in (m.classify("CO", "300").why or "")


# --------------------------------------------------------------------------- the report


def test_report_of_the_samples_has_no_denial_and_every_adjustment_classified() -> None:
    files = [read_remittance(p) for p in sorted(DATA.glob("*.835")) if p != REMIT]
    report = build_report(files)
    assert report["totals"]["denials"] == 0 and report["unclassified"] == []
    assert {r["category"]: r["amount"] for r in report["adjusted"]} == {
        "contractual": "76608.24",
        "coordination_of_benefits": "9548.14",
        "patient_responsibility": "1120.00",
    }
    assert report["totals"]["clean_claim_rate"] == 1.0


def _report(decisions: Path | None = None) -> dict[str, Any]:
    checked = parse_decisions(decisions.read_text(), str(decisions)) if decisions else None
    return build_report([read_remittance(REMIT)], checked=checked)


def test_denials_by_root_cause_owner_code_procedure_and_month() -> None:
    report = _report()
    totals = report["totals"]
    assert (
        totals["claims"],
        totals["claims_damaged"],
        totals["denials"],
        totals["denied_amount"],
        totals["denied_claims"],
    ) == (6, 1, 5, "413.00", 4)
    by = report["denials_by"]
    assert {r["root_cause"]: r["amount"] for r in by["root_cause"]} == {
        "medical_necessity": "250.00",
        "coding": "163.00",
    }
    assert {r["carc"] for r in by["carc"]} == {"CO-4", "CO-236", "CO-50", "CO-97"}
    assert {r["procedure"]: r["count"] for r in by["procedure"]} == {
        "93000": 2,
        "93010": 1,
        "93306": 1,
        "82306": 1,
    }
    assert by["month"] == [{"month": "2026-02", "count": 5, "claims": 4, "amount": "413.00"}]
    assert by["rendering_provider"][0]["rendering_provider"] in ("1234567893", "unknown")
    assert report["top_reasons"][0]["code"] == "CO-50"
    assert report["top_reasons"][0]["rarc"] == "N115"
    # C-3002's CO-16 has no remark code: not counted as a denial, listed as unclassified.
    assert report["unclassified"][0]["amount"] == "120.00"
    assert totals["claims_unknown"] == 1 and totals["rate_claims"] == 4
    assert [d["claim_id"] for d in report["damaged"]] == ["C-3003"]
    assert report["damaged"][0]["problems"][0]["where"] == "CAS segment 55, element CAS03"


def test_what_the_checker_caught_with_our_decisions(decisions: Path) -> None:
    checker = _report(decisions)["checker"]
    assert checker["basis"] == "findings"
    counts = {
        k: (checker[k]["count"], checker[k]["amount"])
        for k in ("predicted", "missed", "over_flagged", "not_checked")
    }
    assert counts == {
        "predicted": (3, "268.00"),
        "missed": (1, "45.00"),
        "over_flagged": (1, "600.00"),
        "not_checked": (1, "100.00"),
    }
    rules = {
        r["rule"]: (r["predicted"]["count"], r["over_flagged"]["count"]) for r in checker["rules"]
    }
    assert rules["medicare/ecg/component-with-global"] == (1, 0)  # CO-236 on line 2
    assert rules["medicare/necessity/tte-lcd-l33577-no-state"] == (1, 0)  # a review
    assert rules["acme-ppo/auth/missing"] == (0, 1)  # line 1 paid: too strict here
    assert checker["missed_reasons"][0]["code"] == "CO-4"
    assert checker["over_flagged_lines"] == [
        {
            "claim_id": "C-2001",
            "line": 1,
            "paid": "600.00",
            "rules": ["acme-ppo/auth/missing", "acme-ppo/timely-filing/limit"],
        }
    ]


def test_what_the_checker_caught_from_the_history_store(tmp_path: Path) -> None:
    store = tmp_path / "history.sqlite"
    result = _cli(
        "check",
        str(DATA / "claims.json"),
        "--today",
        TODAY,
        "--format",
        "ndjson",
        "--state",
        str(store),
    )
    assert result.exit_code == 1, result.output
    result = _cli("denials", str(REMIT), "--state", str(store), "--format", "json")
    assert result.exit_code == 3  # C-3003 is damaged
    checker = json.loads(result.stdout)["checker"]
    assert checker["basis"] == "status"
    # The store keeps which lines were denied, not the rules: C-1001 line 2 (denied) and
    # C-2001 (rejected whole) and C-1002 (review) predicted; C-1001 line 1 missed.
    assert (
        checker["predicted"]["count"],
        checker["missed"]["count"],
        checker["not_checked"]["count"],
    ) == (3, 1, 1)
    assert checker["missed_reasons"][0]["code"] == "CO-4"


def test_a_bad_decisions_line_is_located_and_the_others_are_read(decisions: Path) -> None:
    lines = decisions.read_text().splitlines()
    checked = parse_decisions("\n".join([lines[0], "{not json", *lines[1:]]), "d.ndjson")
    assert checked.problems[0]["where"].startswith("d.ndjson:2:")
    assert sorted(checked.claims) == ["C-1001", "C-1002", "C-2001"]


# --------------------------------------------------------------------------- the CLI


def test_cli_worklist_csv_per_owner_without_patient_ids(decisions: Path) -> None:
    result = _cli("denials", str(REMIT), "--decisions", str(decisions), "--format", "csv")
    assert result.exit_code == 3
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["owner"] for r in rows] == sorted(r["owner"] for r in rows)
    missed = next(r for r in rows if r["code"] == "CO-4")
    assert (
        missed["claim_id"],
        missed["line"],
        missed["owner"],
        missed["route"],
        missed["checker"],
    ) == ("C-1001", "1", "coding", "corrected_claim", "missed")
    assert missed["reason"].startswith("modifier missing or does not fit the procedure")
    assert any(r["category"] == "damaged" and r["claim_id"] == "C-3003" for r in rows)
    assert "DOE" not in result.stdout and "1EG4TE5MK73" not in result.stdout
    only = _cli("denials", str(REMIT), "--format", "ndjson", "--owner", "billing")
    assert {json.loads(line)["owner"] for line in only.stdout.splitlines()} == {"billing"}


def test_show_ids_brings_patient_data_in_and_only_then(tmp_path: Path) -> None:
    hidden = _cli("denials", str(REMIT), "--format", "json").stdout
    assert "1EG4TE5MK73" not in hidden and "JANE" not in hidden
    shown = _cli("denials", str(REMIT), "--format", "json", "--show-ids").stdout
    row = next(r for r in json.loads(shown)["worklist"] if r["claim_id"] == "C-1001")
    assert (row["patient_id"], row["patient_name"]) == ("1EG4TE5MK73", "JANE DOE")


def test_cli_table_and_usage_errors(tmp_path: Path, decisions: Path) -> None:
    result = _cli("denials", str(REMIT), "--decisions", str(decisions))
    assert "What the checker caught" in result.stdout and "over_flagged" in result.stdout
    assert "CAS segment 55, element CAS03" in result.stdout
    assert _cli("denials", str(tmp_path / "none.835")).exit_code == 2
    assert (
        _cli("denials", str(REMIT), "--decisions", str(decisions), "--state", "x.sqlite").exit_code
        == 2
    )
    assert _cli("denials", str(REMIT), "--owner", "frontdesk").exit_code == 2
    bad = tmp_path / "map.csv"
    bad.write_text(HEADER + "*,50,,denial,coding,coderz,appeal,x,y,z\n")
    result = _cli("denials", str(REMIT), "--mapping", str(bad))
    assert result.exit_code == 2 and "map.csv:2: column owner" in result.output


def test_a_file_that_is_not_an_835_is_reported_and_the_others_are_read(tmp_path: Path) -> None:
    other = tmp_path / "claims.json"
    other.write_text('{"claim_id": "C-1"}')
    clean = DATA / "managed-care.835"
    result = _cli("denials", str(other), str(clean), "--format", "json")
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    assert report["files"][0]["problems"][0]["message"].startswith("not an X12 file")
    assert report["totals"]["claims"] == 2
    out = tmp_path / "report.json"
    assert _cli("denials", str(clean), "--format", "json", "--out", str(out)).exit_code == 0
    assert json.loads(out.read_text())["report"] == "cleanclaim-denials/1"


def test_a_missing_history_store_is_a_usage_error_and_is_not_created(tmp_path: Path) -> None:
    store = tmp_path / "none.sqlite"
    result = _cli("denials", str(REMIT), "--state", str(store))
    assert result.exit_code == 2 and "no such history store" in result.output
    assert not store.exists()


def test_a_reversal_is_a_correction_never_a_denial() -> None:
    segments = [s.strip() for s in REMIT.read_text().split("~") if s.strip()]
    at = next(i for i, s in enumerate(segments) if s.startswith("CLP*C-1002*"))
    segments[at] = "CLP*C-1002*22*-210.00*0.00**MB*PCN1002"
    segments[at + 2] = "SVC*HC:93306*-210.00*0.00**1"
    segments[at + 4] = "CAS*CO*50*-210.00"
    from cleanclaim.engine.formats.x835 import read_x835

    found = read_x835("~\n".join(segments) + "~\n", "reversal.835")
    report = build_report([found])
    assert report["totals"]["reversals"] == 1
    assert "C-1002" not in {r["claim_id"] for r in report["worklist"]}
    assert {r["category"]: r["count"] for r in report["adjusted"]}["correction"] == 1
    assert report["totals"]["denials"] == 4


def test_the_html_report_holds_patient_data_only_with_show_ids() -> None:
    from cleanclaim.engine.denials.html import CHART_IDS, render_html

    plain = render_html(build_report([read_remittance(REMIT)]))
    assert all(f'id="{chart}"' in plain for chart in CHART_IDS)
    assert "1EG4TE5MK73" not in plain and "JANE DOE" not in plain
    shown = render_html(build_report([read_remittance(REMIT)], show_ids=True))
    assert "1EG4TE5MK73" in shown and "JANE DOE" in shown

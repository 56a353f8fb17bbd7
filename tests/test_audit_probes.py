"""The audit's probe claims (AUDIT-2026-12 section 5) get what the cited sources say.

Each probe is run as the audit ran it (`cleanclaim check FILE --today 2026-03-02`); the
files are copied unchanged into tests/data/audit-probes/. The expected outcome of each is
the audit's "should be" column, with its source:
- FD1 tte.json / c1002.json: A56781 Group 1 (partial shipped list: review, never deny;
  Z01.818/Z51.81/Z08 covered per the Group 1 paragraph, each reviewed for the companion
  code the paragraph or the ICD-10-CM tabular asks for).
- FD3 kx_charges.json: SSA 1833(g), MCPM 100-04 ch.5 s.10.3 (allowed amounts, not charges).
- FD4 tf_weekend.json: MCPM 100-04 ch.1 s.70.7 (next business day).
- FD6 dup_after_reject2.json: MA130 (a rejected claim is not on file; new claim).
- FD7 ecg_two_claims.json: MCPM 100-04 ch.13 s.100.1 (ER only; 76 separate tracing).
- FD8 ecg_serial.json: sample MUE, review only.
- FP1 tte_addon.json: 93306 includes complete Doppler (CO-97 on the add-ons).
- FP2 ecg_routine.json: SSA 1862(a)(7), PR-49 for Z13.6 too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cleanclaim.engine.cli import app

PROBES = Path(__file__).parent / "data" / "audit-probes"


def check(*args: str) -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(
        app,
        [
            "check",
            *args,
            "--today",
            "2026-03-02",
            "--no-plugin",
            "cardiology",
            "--no-plugin",
            "dermatology",
            "--no-plugin",
            "therapy",
        ],
    )
    assert result.exit_code in (0, 1), result.output
    return {d["claim_id"]: d for d in json.loads(result.stdout)}


def rules(decision: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["rule"]: f for f in decision["findings"]}


def test_fd1_no_tte_indication_is_denied_on_the_partial_list() -> None:
    decisions = check(str(PROBES / "tte.json"), str(PROBES / "c1002.json"))
    assert all(d["status"] in ("clean", "review") for d in decisions.values())
    assert decisions["TTE-I08.2"]["status"] == "clean"
    assert decisions["C-1002"]["status"] == "review"
    # The Group 1 paragraph names Z01.818, Z51.81 and Z08, so none is a necessity finding
    # of the LCD rule; each alone lacks the companion code the paragraph (pre-operative:
    # mitral valve prolapse) or the ICD-10-CM tabular (Z51.81: Z79.-; Z08: Z85.-) asks
    # for, a coding review, never a denial.
    companion = {
        "TTE-Z01.818": "medicare/necessity/tte-a56781-preop-second-diagnosis",
        "TTE-Z51.81": "medicare/necessity/tte-a56781-z5181-drug-therapy",
        "TTE-Z08": "medicare/necessity/tte-a56781-z08-history",
    }
    for claim_id, rule in companion.items():
        found = rules(decisions[claim_id])
        assert set(found) == {rule}, claim_id
        assert found[rule]["severity"] == "review" and found[rule]["root_cause"] == "coding"


def test_fd3_kx_on_charges_is_never_a_denial() -> None:
    decision = check(str(PROBES / "kx_charges.json"))["KX-CHARGES"]
    assert decision["status"] != "deny"
    kx = [f for f in decision["findings"] if f["carc"] == "119"]
    assert kx and all(f["severity"] == "review" and "basis is charges" in f["message"] for f in kx)


def test_fd4_weekend_deadline_is_met_on_monday() -> None:
    assert check(str(PROBES / "tf_weekend.json"))["TF-WEEKEND"]["status"] == "clean"


def test_fd6_the_corrected_copy_of_a_rejected_claim_is_no_duplicate(tmp_path: Path) -> None:
    claims = json.loads((PROBES / "dup_after_reject2.json").read_text(encoding="utf-8"))
    state = tmp_path / "history.sqlite"
    for claim in claims:  # sent one after the other, as a practice does
        path = tmp_path / f"{claim['claim_id']}.json"
        path.write_text(json.dumps(claim), encoding="utf-8")
        decision = check(str(path), "--state", str(state))[claim["claim_id"]]
        if claim["claim_id"] == "RUC-2":
            assert decision["status"] == "reject"
            assert "send a new claim" in decision["findings"][0]["message"]
        else:
            assert "common/duplicate/same-service" not in rules(decision)
            assert decision["status"] == "clean"


def test_fd7_a_repeat_tracing_read_by_another_physician_is_payable() -> None:
    decisions = check(str(PROBES / "ecg_two_claims.json"))
    assert decisions["ECG-B"]["status"] == "clean"


def test_fd8_serial_ecgs_over_the_sample_mue_are_a_review() -> None:
    decision = check(str(PROBES / "ecg_serial.json"))["ECG-SERIAL"]
    assert decision["status"] == "review"


def test_fp1_doppler_add_ons_with_93306_are_denied() -> None:
    decision = check(str(PROBES / "tte_addon.json"))["TTE-ADDON"]
    assert decision["status"] == "deny"
    denied = [
        (f["line"], f["carc"])
        for f in decision["findings"]
        if f["rule"] == "medicare/echo/doppler-with-complete-tte"
    ]
    assert denied == [(2, "97"), (3, "97")]


def test_fp2_a_screening_ecg_is_a_statutory_exclusion() -> None:
    decisions = check(str(PROBES / "ecg_routine.json"))
    for claim_id in ("ECG-Z0000", "ECG-Z136"):
        finding = rules(decisions[claim_id])["medicare/ecg/routine-exam"]
        assert (finding["group"], finding["carc"], finding["rarc"]) == ("PR", "49", ["N429"])
        assert finding["root_cause"] == "coverage"
    assert decisions["ECG-Z01810"]["status"] == "clean"

"""`cleanclaim explain` of decisions that rest on history (issue 13.17): a claim explained
as checked inside an input file (`--claim ID`) and against a `--state` store shows the
earlier services its counters counted; `cleanclaim test` traces use the case's history;
the short default, `--only-fired`, `--fails`, `--full`; references and code labels."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cleanclaim.dsl.explain import render_text
from cleanclaim.engine.cli import app
from cleanclaim.engine.engine import Engine

TODAY = "2026-03-02"
POLICY = """version 1

counter pt_visits
  counts visits of codes [97110]
  per calendar year
end

rule "demo/pt/limit"
  title "More than two PT visits in the year"
  applies to codes [97110]
  root cause benefit_limit
  let visit = visit_number(pt_visits)
  when visit > 2
  then deny PR-119 with N640
  message "PT visit {visit} of the year; the plan covers 2"
  reference "demo plan benefit summary, PT"
end
"""


def pack(root: Path) -> Path:
    folder = root / "packs" / "demo"
    folder.mkdir(parents=True)
    (folder / "pack.yaml").write_text("id: demo\n", encoding="utf-8")
    (folder / "pt.policy").write_text(POLICY, encoding="utf-8")
    return root / "packs"


def claim(claim_id: str, day: str, *lines: str) -> dict[str, Any]:
    return {
        "claim_id": claim_id,
        "payer": "demo",
        "received_date": "2026-03-01",
        "member": {
            "id": "M-1",
            "birth_date": "1980-01-01",
            "sex": "F",
            "coverage": [{"payer": "demo", "start": "2016-01-01", "end": None}],
        },
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "place_of_service": "11",
        "diagnoses": ["M54.50"],
        "lines": [
            {
                "line": i + 1,
                "code": code,
                "modifiers": ["GP"],
                "units": 1,
                "charge": "90.00",
                "service_date": day,
                "diagnosis_pointers": [1],
            }
            for i, code in enumerate(lines or ("97110",))
        ],
    }


def write(path: Path, claims: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(claims), encoding="utf-8")
    return path


def explain(*args: str) -> Any:
    return CliRunner().invoke(app, ["explain", *args, "--today", TODAY])


def test_a_claim_explained_inside_its_file_shows_the_counted_earlier_visits(tmp_path: Path) -> None:
    policies = pack(tmp_path)
    claims = write(
        tmp_path / "claims.json",
        [claim("V-1", "2026-01-05"), claim("V-2", "2026-01-12"), claim("V-3", "2026-01-19")],
    )
    result = explain(str(claims), "--claim", "V-3", "--policies", str(policies))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "FIRED  demo/pt/limit" in out and "visit = 3" in out
    assert (
        "counted by pt_visits: claim V-1 line 1 97110 on 2026-01-05; claim V-2 line 1 "
        "97110 on 2026-01-12"
    ) in out
    assert "PR-119: patient responsibility" in out and "N640:" in out
    assert "reference: demo plan benefit summary, PT" in out
    assert "Decision: deny" in out
    # V-1 is the first visit: nothing counted before it, nothing fired.
    first = explain(str(claims), "--claim", "V-1", "--policies", str(policies), "--full")
    assert "counted by pt_visits: no earlier service" in first.output
    assert "Decision: clean" in first.output


def test_explained_alone_the_file_claim_would_not_fire(tmp_path: Path) -> None:
    # The same claim in a file of its own: its decision and trace differ (no history),
    # which is why --claim explains it among the others.
    policies = pack(tmp_path)
    alone = write(tmp_path / "alone.json", [claim("V-3", "2026-01-19")])
    result = explain(str(alone), "--policies", str(policies), "--fails")
    assert "Decision: clean" in result.output
    assert "`visit > 2` is false (visit = 1)" in result.output


def test_a_claim_is_explained_against_the_state_store_which_is_not_changed(tmp_path: Path) -> None:
    policies = pack(tmp_path)
    state = tmp_path / "state.sqlite"
    earlier = write(
        tmp_path / "earlier.json", [claim("V-1", "2026-01-05"), claim("V-2", "2026-01-12")]
    )
    checked = CliRunner().invoke(
        app,
        [
            "check",
            str(earlier),
            "--state",
            str(state),
            "--policies",
            str(policies),
            "--today",
            TODAY,
        ],
    )
    assert checked.exit_code == 0, checked.output
    before = state.read_bytes()
    later = write(tmp_path / "later.json", [claim("V-3", "2026-01-19")])
    result = explain(str(later), "--state", str(state), "--policies", str(policies))
    assert result.exit_code == 0, result.output
    assert "claim V-1 line 1 97110 on 2026-01-05; claim V-2" in result.output
    assert "Decision: deny" in result.output
    assert state.read_bytes() == before


def test_claim_selection_errors(tmp_path: Path) -> None:
    policies = pack(tmp_path)
    claims = write(
        tmp_path / "claims.json", [claim("V-1", "2026-01-05"), claim("V-2", "2026-01-12")]
    )
    many = explain(str(claims), "--policies", str(policies))
    assert many.exit_code == 2 and "--claim ID" in many.output and "V-1" in many.output
    wrong = explain(str(claims), "--claim", "V-9", "--policies", str(policies))
    assert wrong.exit_code == 2 and "no claim `V-9`" in wrong.output
    both = explain(str(claims), "--claim", "V-1", "--full", "--fails", "--policies", str(policies))
    assert both.exit_code == 2


def test_the_default_is_short_enough_for_a_biller(tmp_path: Path) -> None:
    # The 3-line claim of the issue: the full trace of every rule considered ran to 220+
    # lines; the default shows what fired (with its values, labels and reference).
    three = dict(claim("T-3", "2026-02-10"), payer="medicare", diagnoses=["R07.9", "R06.02"])
    three["member"]["coverage"][0]["payer"] = "medicare"
    for i, code in enumerate(("93000", "93306", "93010")):
        line = dict(three["lines"][0], line=i + 1, code=code)
        three["lines"] = [*three["lines"][:i], line] if i else [line]
    path = write(tmp_path / "three.json", [three])
    counts = {}
    for mode in ("", "--only-fired", "--fails", "--full"):
        result = explain(str(path), *([mode] if mode else []))
        assert result.exit_code in (0, 1), result.output
        counts[mode] = len(result.output.splitlines())
    assert counts[""] <= 60 < counts["--full"]
    assert counts["--only-fired"] <= counts[""] < counts["--fails"] < counts["--full"]


@pytest.fixture()
def engine(tmp_path: Path) -> Engine:
    return Engine([pack(tmp_path)], today=dt.date(2026, 3, 2), plugins=[])


def test_the_traces_of_cleanclaim_test_use_the_cases_history(engine: Engine) -> None:
    from cleanclaim.engine.cases import PolicyCase
    from cleanclaim.engine.testing import explain_trace

    case = PolicyCase(
        "third visit",
        Path("cases/pt.yaml"),
        claim("V-3", "2026-01-19"),
        "clean",
        None,
        dt.date(2026, 3, 2),
        history=(claim("V-1", "2026-01-05"), claim("V-2", "2026-01-12")),
    )
    text = explain_trace(engine, case, "demo/pt/limit")
    assert text is not None and "FIRED  demo/pt/limit" in text, text
    assert "counted by pt_visits: claim V-1 line 1 97110 on 2026-01-05" in text


def test_render_modes_and_json(engine: Engine) -> None:
    items = [
        claim("V-1", "2026-01-05"),
        claim("V-2", "2026-01-12"),
        claim("V-3", "2026-01-19", "97110", "97140"),
    ]
    found = engine.explain_in_run(items, "V-3")
    assert found is not None
    decision, traces = found
    assert decision.status == "deny"
    (fired,) = [t for t in traces if t.status == "fired"]
    data = fired.to_json()
    assert data["reference"] == "demo plan benefit summary, PT"
    assert data["labels"][0].startswith("PR-119: patient responsibility")
    assert data["counted"][0].startswith("pt_visits: claim V-1")
    assert "line 2" not in render_text("V-3", traces, "only-fired")
    assert "line 2: nothing found" not in render_text("V-3", traces, "full")
    assert engine.explain_in_run(items, "nope") is None

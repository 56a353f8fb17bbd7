"""Decisions of plain JSON and NDJSON claims carry their origin (issue 18.7): the file,
format "ndjson" and the 1-based line, or format "json" and the 0-based array index (None
for a file that is one claim), on every CLI path (plain, --workers 2, --state, a run
without history, standard input), for readable, unreadable and refused claims alike.
A claim handed over as a value (Python API, HTTP) has no file and so no origin."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cleanclaim.engine.cli import app
from cleanclaim.engine.reading import read_claims

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = json.loads((REPO / "payer_policies/examples/claims.json").read_text())
PLAIN_PACKS = REPO / "tests/plugins/packs"


def check(*args: str, stdin: str | None = None) -> list[dict[str, Any]]:
    result = CliRunner().invoke(
        app,
        ["check", *args, "--format", "ndjson", "--today", "2026-03-02"],
        env={"CLEANCLAIM_PLUGINS": "none"},
        input=stdin,
    )
    assert result.exit_code in (0, 1), result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def ndjson_lines() -> list[str]:
    """A readable claim, a blank line, broken JSON, a claim of the wrong shape, the first
    claim's id again (refused: engine/duplicate-claim-id), another readable claim."""
    first, other = EXAMPLES[0], EXAMPLES[2]
    return [
        json.dumps(first),
        "",
        '{"claim_id": "broken", ',
        json.dumps({"claim_id": "S"}),
        json.dumps(first),
        json.dumps(other),
    ]


def ndjson_file(tmp_path: Path) -> Path:
    path = tmp_path / "claims.ndjson"
    path.write_text("\n".join(ndjson_lines()) + "\n")
    return path


def ndjson(file: str, line: int) -> dict[str, Any]:
    return {"file": file, "format": "ndjson", "line": line}


def test_ndjson_decisions_carry_file_and_line_on_every_path(tmp_path: Path) -> None:
    path = ndjson_file(tmp_path)
    want = [ndjson(str(path), n) for n in (1, 3, 4, 5, 6)]  # line 2 is blank: no claim
    plain = check(str(path))
    assert [d["status"] for d in plain][1:4] == ["reject", "reject", "reject"]
    assert plain[3]["findings"][0]["rule"] == "engine/duplicate-claim-id"
    workers = check(str(path), "--workers", "2")
    history = check(str(path), "--state", str(tmp_path / "s.sqlite"))
    for decisions in (plain, workers, history):
        assert [d.get("origin") for d in decisions] == want


def test_a_run_without_history_keeps_the_origin_of_a_refused_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "plain.ndjson"
    claim = {**EXAMPLES[0], "payer": "plain"}
    path.write_text(json.dumps(claim) + "\n" + json.dumps(claim) + "\n")
    decisions = check(str(path), "--policies", str(PLAIN_PACKS))
    assert decisions[1]["findings"][0]["rule"] == "engine/duplicate-claim-id"
    assert [d["origin"] for d in decisions] == [ndjson(str(path), 1), ndjson(str(path), 2)]


def test_json_arrays_give_the_index_and_one_claim_none(tmp_path: Path) -> None:
    array = tmp_path / "claims.json"
    array.write_text(json.dumps([EXAMPLES[0], {"claim_id": "S"}, EXAMPLES[2]]))
    assert [d["origin"] for d in check(str(array))] == [
        {"file": str(array), "format": "json", "index": i} for i in range(3)
    ]
    one = tmp_path / "one.json"
    one.write_text(json.dumps(EXAMPLES[0]))
    [decision] = check(str(one))
    assert decision["origin"] == {"file": str(one), "format": "json", "index": None}
    broken = tmp_path / "broken.json"
    broken.write_text('[{"claim_id": "A"')
    [decision] = check(str(broken))
    assert decision["status"] == "reject"
    assert decision["origin"] == {"file": str(broken), "format": "json", "index": None}


def test_standard_input_is_named_as_given(tmp_path: Path) -> None:
    [decision] = check("-", stdin=json.dumps(EXAMPLES[0]))
    assert decision["origin"] == {"file": "-", "format": "json", "index": None}


def test_the_readers_set_it_and_values_have_none(tmp_path: Path) -> None:
    from cleanclaim.engine import Engine

    path = ndjson_file(tmp_path)
    raws = list(read_claims(path))
    assert [r.origin for r in raws] == [ndjson(str(path), n) for n in (1, 3, 4, 5, 6)]
    engine = Engine(plugins=(), today=dt.date(2026, 3, 2))
    from_file = [d.origin for d in engine.check_many(raws)]
    assert from_file == [r.origin for r in raws]
    assert all(d.origin is None for d in engine.check_many(EXAMPLES))

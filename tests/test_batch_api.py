"""`check_batch` fed an `InputReader` as it is (its docstring's promise): a file that cannot
be read keeps its place as a located file-error record; no claim is lost."""

from __future__ import annotations

import datetime as dt
import json
from functools import partial
from pathlib import Path

from cleanclaim.engine.batch import InputReader, as_decision, check_batch
from cleanclaim.engine.engine import Engine

CLAIM = {
    "claim_id": "B-1",
    "payer": "medicare",
    "member": {"id": "M1", "sex": "F", "birth_date": "1950-01-01"},
    "billing_provider": {"npi": "1234567893"},
    "diagnoses": ["I10"],
    "lines": [
        {
            "line": 1,
            "code": "99213",
            "units": 1,
            "charge": 100,
            "service_date": "2026-10-01",
            "diagnosis_pointers": [1],
        }
    ],
}


def test_an_unreadable_file_keeps_its_place(tmp_path: Path) -> None:
    good = tmp_path / "good.ndjson"
    good.write_text(json.dumps(CLAIM) + "\n", encoding="utf-8")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe not utf-8")
    engine = Engine(today=dt.date(2026, 11, 1), plugins=())
    decisions = list(check_batch(InputReader([good, bad]), partial(as_decision), engine=engine))
    assert [d.claim_id for d in decisions] == ["B-1", None]
    record = decisions[1].to_json()
    assert record["status"] == "reject"
    assert record["findings"][0]["rule"] == "engine/input-file"
    assert record["error"]["file"] == str(bad)

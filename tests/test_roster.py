"""The eligibility roster: `cleanclaim members import` and claims without `member.coverage`."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.engine import Engine
from cleanclaim.engine.history import HistoryStore
from cleanclaim.engine.roster import (
    RosterError,
    RosterSpan,
    import_roster,
    read_roster,
    roster_coverage,
)
from tests.conftest import shared_engine

REPO = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 11, 27)
CSV = """member_id,payer,plan,start,end
1EG4TE5MK73,medicare,,2016-04-01,
7KQ2MN4RT61,medicare,,2019-01-01,2025-12-31
ACM-1,acme-ppo,gold,2024-01-01,
"""


_ids = iter(range(1_000_000))


def claim(
    member: str, day: str = "2026-02-10", coverage: Any = None, payer: str = "medicare"
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "claim_id": f"R-{member}-{day}-{next(_ids)}",
        "payer": payer,
        "received_date": "2026-03-02",
        "member": {"id": member, "birth_date": "1951-04-12", "sex": "F"},
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "place_of_service": "11",
        "diagnoses": ["M54.50"],
        "lines": [
            {
                "line": 1,
                "code": "99213",
                "units": 1,
                "charge": "95.00",
                "service_date": day,
                "diagnosis_pointers": [1],
            }
        ],
    }
    if coverage is not None:
        data["member"]["coverage"] = coverage
    return data


@pytest.fixture()
def store(tmp_path: Path) -> Any:
    path = tmp_path / "roster.csv"
    path.write_text(CSV)
    with HistoryStore(tmp_path / "state.sqlite") as opened:
        assert import_roster(opened, read_roster(path)) == (3, 3)
        yield opened


def carcs(engine: Engine, store: HistoryStore, *claims: dict[str, Any]) -> list[list[str]]:
    return [
        [f"{f.group}-{f.carc}" for f in d.findings]
        for d in engine.check_many(list(claims), history=store)
    ]


def test_a_claim_without_coverage_is_checked_against_the_roster(store: HistoryStore) -> None:
    engine = shared_engine()
    assert carcs(
        engine,
        store,
        claim("1EG4TE5MK73"),  # covered since 2016
        claim("7KQ2MN4RT61"),  # coverage ended 2025-12-31
        claim("NOT-ON-ROSTER"),  # no coverage anywhere
        claim("ACM-1"),
    ) == [[], ["PR-27"], ["CO-31"], ["CO-31"]]  # acme, not medicare


def test_a_claim_that_carries_coverage_keeps_its_own(store: HistoryStore) -> None:
    engine = shared_engine()
    own = [{"payer": "medicare", "start": "2026-06-01", "end": None}]
    # (Two dates of service: claims of one run count against each other as submitted,
    # so the same service twice would also be a duplicate - docs/history.md.)
    assert carcs(
        engine,
        store,
        claim("1EG4TE5MK73", coverage=own),
        claim("1EG4TE5MK73", "2026-02-11", coverage=[]),
    ) == [["PR-26"], ["CO-31"]]


def test_without_a_store_there_is_no_roster() -> None:
    assert [f.carc for f in shared_engine().check(claim("1EG4TE5MK73")).findings] == ["31"]


def test_importing_a_member_again_replaces_their_spans(store: HistoryStore) -> None:
    import_roster(store, [RosterSpan("7KQ2MN4RT61", "medicare", None, dt.date(2019, 1, 1), None)])
    (span,) = roster_coverage(store, "7KQ2MN4RT61")
    assert (span.payer, span.start, span.end) == ("medicare", dt.date(2019, 1, 1), None)
    assert len(roster_coverage(store, "1EG4TE5MK73")) == 1  # others untouched
    assert carcs(shared_engine(), store, claim("7KQ2MN4RT61")) == [[]]


def test_a_json_roster_takes_spans_or_members_with_coverage(tmp_path: Path) -> None:
    path = tmp_path / "roster.json"
    path.write_text(
        json.dumps(
            {
                "members": [
                    {"member_id": "A", "payer": "medicare", "start": "2020-01-01"},
                    {
                        "id": "B",
                        "coverage": [
                            {
                                "payer": "medicare",
                                "plan": None,
                                "start": "2021-01-01",
                                "end": "2022-12-31",
                            },
                            {"payer": "acme-ppo", "start": "2023-01-01"},
                        ],
                    },
                ]
            }
        )
    )
    read = read_roster(path)
    spans = [s for s in read if isinstance(s, RosterSpan)]
    assert len(spans) == len(read)  # no therapy amounts in this roster
    assert [(s.member_id, s.payer, s.start, s.end) for s in spans] == [
        ("A", "medicare", dt.date(2020, 1, 1), None),
        ("B", "medicare", dt.date(2021, 1, 1), dt.date(2022, 12, 31)),
        ("B", "acme-ppo", dt.date(2023, 1, 1), None),
    ]


@pytest.mark.parametrize(
    ("name", "text", "problems"),
    [
        (
            "bad.csv",
            "member_id,payer,start,end\nA,medicare,2020-1-1,\n,medicare,2020-01-01,\n"
            "C,medicare,2021-01-01,2020-01-01\n",
            [
                "bad.csv:2: `start` is `2020-1-1`, not a date YYYY-MM-DD",
                "bad.csv:3: `member_id` is required",
                "bad.csv:4: coverage ends (2020-01-01) before it starts (2021-01-01)",
            ],
        ),
        ("cols.csv", "member,payer\nA,medicare\n", ["cols.csv:1: the header needs a `member_id`"]),
        (
            "extra.csv",
            "member_id,payer,group\nA,medicare,7\n",
            ["extra.csv:1: unknown column(s) group"],
        ),
        (
            "bad.json",
            '[{"member_id": "A", "start": 20200101}, 7]',
            [
                "bad.json: [0]: `start` is `20200101`, not a date",
                "bad.json: [1]: must be an object",
            ],
        ),
        ("broken.json", "[{", ["broken.json: not valid JSON"]),
    ],
)
def test_every_bad_row_is_named_and_nothing_is_imported(
    tmp_path: Path, name: str, text: str, problems: list[str]
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(RosterError) as caught:
        read_roster(path)
    assert len(caught.value.problems) == len(problems)
    for got, want in zip(caught.value.problems, problems, strict=True):
        assert want in got


def test_members_import_and_check_on_the_command_line(tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(CSV)
    state = tmp_path / "state.sqlite"
    env = {**os.environ, "CLEANCLAIM_PLUGINS": "none"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cleanclaim.engine.cli", *args],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            timeout=300,
            check=False,
        )

    done = cli("members", "import", str(roster), "--state", str(state))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"imported 3 coverage span(s) of 3 member(s) into {state}"
    assert b"1EG4TE5MK73" not in state.read_bytes()
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps([claim("1EG4TE5MK73"), claim("NOT-ON-ROSTER")]))
    run = cli(
        "check",
        str(claims),
        "--state",
        str(state),
        "--format",
        "ndjson",
        "--today",
        TODAY.isoformat(),
    )
    assert [json.loads(line)["status"] for line in run.stdout.splitlines()] == ["clean", "deny"]
    bad = tmp_path / "bad.csv"
    bad.write_text("member_id,payer,start\nA,medicare,yesterday\n")
    refused = cli("members", "import", str(bad), "--state", str(state))
    assert refused.returncode == 2 and "bad.csv:2: `start` is `yesterday`" in refused.stderr

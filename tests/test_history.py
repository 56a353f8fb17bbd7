"""Claim history: counters in the language, the two-phase run, the SQLite store, the CLI.

The shipped rules built on history (acme-ppo visit limits, Medicare KX threshold,
duplicates, ECG interpretations) are policy cases in payer_policies/*/cases/; this file
tests the machinery, with the small pack tests/policies/history/hist (one rule for each
kind of window and measure).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.dsl import ast
from cleanclaim.dsl.history import window_start
from cleanclaim.dsl.parser import parse_policy
from cleanclaim.engine import Engine
from cleanclaim.engine import history as H
from cleanclaim.engine.decision import Decision
from cleanclaim.engine.history import HistoryStore, claim_facts
from cleanclaim.engine.inputs import RawClaim
from cleanclaim.engine.model import decode_claim

REPO = Path(__file__).resolve().parent.parent
HIST = REPO / "tests" / "policies" / "history"
TODAY = dt.date(2026, 11, 27)
NPI_A, NPI_B = "1234567893", "1245319599"


@pytest.fixture(scope="module")
def hist() -> Engine:
    return Engine([HIST], today=TODAY, plugins=())


def claim(
    claim_id: str,
    *lines: tuple[str, str],
    payer: str = "hist",
    member: str = "M-1",
    received: str | None = None,
    npi: str = NPI_A,
    plan: str | None = None,
    units: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """A claim of `(code, date of service)` lines, received a day after the last date."""
    last = max(day for _code, day in lines)
    received = received or (dt.date.fromisoformat(last) + dt.timedelta(days=1)).isoformat()
    data = {
        "claim_id": claim_id,
        "payer": payer,
        "plan": plan,
        "received_date": received,
        "member": {
            "id": member,
            "birth_date": "1950-01-01",
            "sex": "F",
            "coverage": [{"payer": payer, "start": "2010-01-01"}],
        },
        "billing_provider": {"npi": NPI_A},
        "rendering_provider": {"npi": npi},
        "place_of_service": "11",
        "diagnoses": ["M54.50"],
        "lines": [
            {
                "line": i + 1,
                "code": code,
                "modifiers": [],
                "units": units,
                "charge": "100.00",
                "service_date": day,
                "diagnosis_pointers": [1],
            }
            for i, (code, day) in enumerate(lines)
        ],
    }
    data.update(extra)
    return data


def rules(decision: Decision) -> list[tuple[int | None, str]]:
    return [(f.line, f.rule) for f in decision.findings]


def by_id(decisions: Any) -> dict[str | None, Decision]:
    return {d.claim_id: d for d in decisions}


# ---- the language ------------------------------------------------------------------------


def test_a_counter_declaration_becomes_a_node_with_every_clause() -> None:
    text = (
        'version 1\ncounter c\n  title "T"\n  counts units of codes [97110, 97140]\n'
        "  per benefit year starting oct\n  by rendering provider, code\nend\n"
    )
    tree, errors = parse_policy(text, "f.policy")
    assert errors == [] and tree is not None
    (counter,) = tree.counters
    assert counter.name == "c" and counter.title is not None and counter.title.value == "T"
    assert counter.measure is not None and counter.measure.value == "units"
    assert counter.codes is not None and counter.condition is None
    assert counter.window is not None and counter.window.kind == "benefit_year"
    assert counter.window.start_month == 10
    assert [k.value for k in counter.keys] == ["rendering provider", "code"]
    assert (counter.span.line, counter.span.end_line) == (2, 7)


@pytest.mark.parametrize(
    ("words", "kind", "amount", "unit"),
    [
        ("calendar year", "calendar_year", None, None),
        ("12 months", "rolling", 12, "months"),
        ("rolling 30 days", "rolling", 30, "days"),
        ("1 year", "rolling", 1, "years"),
        ("11 full months", "full_months", 11, "months"),
        ("day", "day", None, None),
        ("lifetime", "lifetime", None, None),
    ],
)
def test_the_windows_a_counter_can_count_over(
    words: str, kind: str, amount: int | None, unit: str | None
) -> None:
    tree, errors = parse_policy(
        f"version 1\ncounter c\n  counts lines of all lines\n  per {words}\nend\n", "f.policy"
    )
    assert errors == [] and tree is not None
    window = tree.counters[0].window
    assert window is not None and (window.kind, window.amount, window.unit) == (kind, amount, unit)


def test_counter_words_stay_usable_as_names_and_fields() -> None:
    tree, errors = parse_policy(
        'version 1\nvalueset visits = [97110]\nrule "p/r"\n  applies to all lines\n'
        "  let units = line.units\n  let calendar = 1\n  when units > calendar and "
        "line.code in visits\n  then deny CO-1\nend\n",
        "f.policy",
    )
    assert errors == [] and tree is not None


def _window(
    kind: str, amount: int | None = None, unit: str | None = None, month: int | None = None
) -> ast.Window:
    return ast.Window(kind, amount, unit, month, ast.Span("f", 1, 1, 1, 1))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("window", "day", "start"),
    [
        (_window("calendar_year"), "2026-03-10", "2026-01-01"),
        (_window("benefit_year", month=7), "2026-03-10", "2025-07-01"),
        (_window("benefit_year", month=7), "2026-07-01", "2026-07-01"),
        (_window("benefit_year", month=1), "2026-01-01", "2026-01-01"),
        # a rolling window ends on the date of service and starts the day after the same date
        # N units before: once per 12 months lets 2025-03-10 count against 2026-03-09 only
        (_window("rolling", 12, "months"), "2026-03-10", "2025-03-11"),
        # N full months (MCPM 100-04 ch.18 "11 full months have passed following the month of
        # the last"): this month and the 11 before it; an AWV on 2025-03-15 still counts on
        # 2026-02-28 and no longer on 2026-03-01
        (_window("full_months", 11, "months"), "2026-02-28", "2025-03-01"),
        (_window("full_months", 11, "months"), "2026-03-01", "2025-04-01"),
        (_window("full_months", 11, "months"), "2026-03-31", "2025-04-01"),
        (_window("full_months", 119, "months"), "2026-03-01", "2016-04-01"),
        (_window("rolling", 12, "months"), "2025-02-28", "2024-02-29"),  # 2024-02-28 + 1 day
        (_window("rolling", 1, "years"), "2024-02-29", "2023-03-01"),
        (_window("rolling", 30, "days"), "2026-03-10", "2026-02-09"),
        (_window("rolling", 1, "days"), "2026-03-10", "2026-03-10"),
        (_window("day"), "2026-03-10", "2026-03-10"),
        (_window("lifetime"), "2026-03-10", "0001-01-01"),
    ],
)
def test_a_window_ends_on_the_date_of_service(window: ast.Window, day: str, start: str) -> None:
    assert window_start(window, dt.date.fromisoformat(day)).isoformat() == start


def test_every_history_function_is_documented_and_line_scoped(hist: Engine) -> None:
    for spec in H.HISTORY_FUNCTIONS:
        assert spec.contextual and spec.scopes == frozenset({"line"}), spec.name
        assert spec.doc.startswith(spec.name + "("), spec.name


# ---- counting ----------------------------------------------------------------------------


def test_a_benefit_year_starting_in_july_counts_visits_from_july(hist: Engine) -> None:
    batch = [
        claim("A", ("97110", "2025-06-30")),  # the benefit year before
        claim("B", ("97110", "2025-07-01"), ("97110", "2025-07-01")),  # one visit
        claim("C", ("97110", "2025-09-01")),
        claim("D", ("97110", "2026-01-05")),
        claim("E", ("97110", "2026-06-30")),
        claim("F", ("97110", "2026-07-01")),
    ]  # a new benefit year
    decisions = by_id(hist.check_many(batch))
    assert [d.status for d in decisions.values()] == ["clean"] * 4 + ["deny", "clean"]
    (finding,) = decisions["E"].findings
    assert finding.message == "visit 4 of the benefit year (3 before this line)"


def test_a_plan_of_its_own_has_a_limit_of_its_own(hist: Engine) -> None:
    days = ["2025-08-04", "2025-08-05", "2025-08-06", "2025-08-07", "2025-08-08", "2025-08-11"]
    for plan, denied in ((None, [4, 5, 6]), ("gold", [6])):
        (decision,) = hist.check_many([claim("G", *(("97110", d) for d in days), plan=plan)])
        assert [line for line, _rule in rules(decision)] == denied, plan


def test_a_rolling_window_keeps_each_rendering_provider_apart(hist: Engine) -> None:
    batch = [
        claim("E1", ("93306", "2025-03-10")),
        claim("E2", ("93306", "2026-03-09")),  # 12 months less a day: denied
        claim("E3", ("93306", "2026-03-09"), npi=NPI_B),  # another provider: clean
        claim("E4", ("93306", "2027-03-10")),
    ]  # E2 was 2026-03-09: outside 12 months
    decisions = by_id(hist.check_many(batch))
    assert {k: d.status for k, d in decisions.items()} == {
        "E1": "clean",
        "E2": "deny",
        "E3": "clean",
        "E4": "clean",
    }


def test_a_lifetime_counter_never_forgets(hist: Engine) -> None:
    batch = [claim("W1", ("G0402", "2016-05-01")), claim("W2", ("G0402", "2026-05-01"))]
    assert [d.status for d in hist.check_many(batch)] == ["clean", "deny"]


def test_units_per_30_days_include_this_claim_and_the_claims_before(hist: Engine) -> None:
    batch = [
        claim("J1", ("J1100", "2026-04-01"), units=2),
        claim("J2", ("J1100", "2026-04-20"), units=2),  # 4 units: clean
        claim("J3", ("J1100", "2026-04-30"), units=1),  # 5 in 30 days (04-01 .. 04-30)
        claim("J4", ("J1100", "2026-05-01"), units=1),
    ]  # 04-01 has left the window
    decisions = by_id(hist.check_many(batch))
    assert [d.status for d in decisions.values()] == ["clean", "clean", "deny", "clean"]
    assert decisions["J3"].findings[0].message == "J1100: 5 units in 30 days"


def test_a_claim_checked_alone_counts_its_own_lines(hist: Engine) -> None:
    decision = hist.check(claim("S", *(("97110", f"2025-08-0{d}") for d in range(1, 6))))
    assert [line for line, _rule in rules(decision)] == [4, 5]


# ---- the store ---------------------------------------------------------------------------


def test_a_new_store_is_migrated_to_the_current_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with HistoryStore(path) as store:
        assert store.schema_version == H.SCHEMA_VERSION == len(H.MIGRATIONS)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"meta", "claims", "coverage"} <= tables
    db.close()
    with HistoryStore(path) as again:  # opening again migrates nothing and keeps the salt
        assert again.schema_version == H.SCHEMA_VERSION


def test_a_store_from_an_older_schema_is_migrated_forward(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    for statement in H.MIGRATIONS[0]:
        db.execute(statement)
    db.execute("INSERT INTO meta VALUES ('salt', '00112233445566778899aabbccddeeff')")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with HistoryStore(path) as store:
        assert store.schema_version == H.SCHEMA_VERSION
        assert store.salt.hex() == "00112233445566778899aabbccddeeff"
        assert store.counts()["coverage_spans"] == 0


def test_a_store_newer_than_this_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    HistoryStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {H.SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(H.StoreError, match="newer"):
        HistoryStore(path)


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "claims.json"
    path.write_text("[1, 2, 3]\n" * 100)
    with pytest.raises(H.StoreError, match="not a cleanclaim history store"):
        HistoryStore(path)


def test_member_ids_are_stored_only_as_keyed_hashes(tmp_path: Path, hist: Engine) -> None:
    path = tmp_path / "state.sqlite"
    with HistoryStore(path) as store:
        list(
            hist.check_many(
                [claim("K1", ("97110", "2025-08-04"), member="MBI-SECRET-77")], history=store
            )
        )
        key = store.member_key("hist", "MBI-SECRET-77")
        assert "MBI-SECRET-77" not in key and len(key) == 32
        assert key != HistoryStore.memory().member_key("hist", "MBI-SECRET-77")  # salted
    for file in tmp_path.iterdir():
        assert b"MBI-SECRET-77" not in file.read_bytes(), file.name


def _record(store: HistoryStore, *claims: dict[str, Any]) -> None:
    facts = []
    for data in claims:
        decoded, problems = decode_claim(data, TODAY)
        assert decoded is not None, problems
        facts.append(claim_facts(decoded, store.member_key(decoded.payer, "M-1")))
    store.record(facts)


def _lines(store: HistoryStore) -> dict[str, int]:
    key = store.member_key("hist", "M-1")
    return {c["claim_id"]: c["lines"] for c in store.member_claims(key)}


def test_recording_a_claim_again_replaces_it() -> None:
    store = HistoryStore.memory()
    _record(store, claim("R1", ("97110", "2025-08-04"), ("97110", "2025-08-05")))
    _record(store, claim("R1", ("97110", "2025-08-06")))
    assert _lines(store) == {"R1": 1}
    assert store.counts() == {"claims": 1, "lines": 1, "coverage_spans": 0}


def test_a_replacement_removes_the_lines_of_the_claim_it_names() -> None:
    store = HistoryStore.memory()
    _record(store, claim("X", ("97110", "2025-08-04")))
    _record(store, claim("X2", ("97110", "2025-08-04"), frequency="replacement", replaces="X"))
    assert _lines(store) == {"X": 0, "X2": 1}
    _record(store, claim("X", ("97110", "2025-08-04")))  # the replaced claim re-sent
    assert _lines(store) == {"X": 0, "X2": 1}


def test_a_claim_arriving_after_its_void_never_counts() -> None:
    store = HistoryStore.memory()
    _record(store, claim("V", ("97110", "2025-08-04"), frequency="void", replaces="X"))
    _record(store, claim("X", ("97110", "2025-08-04")))
    assert _lines(store) == {"V": 0, "X": 0}


def test_in_one_batch_the_first_copy_of_a_claim_id_is_the_claim() -> None:
    store = HistoryStore.memory()
    refused: dict[int, H.Refusal] = {}
    first = decode_claim(claim("D", ("97110", "2025-08-04")), TODAY)[0]
    later = decode_claim(claim("D", ("97110", "2025-08-05"), ("97110", "2025-08-06")), TODAY)[0]
    assert first is not None and later is not None
    key = store.member_key("hist", "M-1")
    store.record([claim_facts(first, key, 0), claim_facts(later, key, 1)], refused)
    assert _lines(store) == {"D": 1}
    assert refused[1].rule == "engine/duplicate-claim-id"


def test_a_claim_id_recorded_under_another_member_moves(tmp_path: Path) -> None:
    store = HistoryStore.memory()
    first = decode_claim(claim("MV", ("97110", "2025-08-04"), member="WRONG"), TODAY)[0]
    again = decode_claim(claim("MV", ("97110", "2025-08-04"), member="RIGHT"), TODAY)[0]
    assert first is not None and again is not None
    store.record([claim_facts(first, store.member_key("hist", "WRONG"))])
    store.record([claim_facts(again, store.member_key("hist", "RIGHT"))])
    assert store.member_claims(store.member_key("hist", "WRONG")) == []
    assert len(store.member_claims(store.member_key("hist", "RIGHT"))) == 1


def test_a_line_with_tabs_in_its_code_is_stored_without_them() -> None:
    store = HistoryStore.memory()
    _record(store, claim("T", ("97\t110", "2025-08-04")))
    (recorded,) = store.member_claims(store.member_key("hist", "M-1"))
    assert recorded["service_lines"][0]["code"] == "97 110"


# ---- runs --------------------------------------------------------------------------------


def test_runs_against_one_store_count_the_claims_of_earlier_runs(
    tmp_path: Path, hist: Engine
) -> None:
    path = tmp_path / "state.sqlite"
    days = ["2025-08-04", "2025-08-05", "2025-08-06", "2025-08-07"]
    for i, day in enumerate(days):
        with HistoryStore(path) as store:
            (decision,) = hist.check_many([claim(f"P{i}", ("97110", day))], history=store)
        assert decision.status == ("deny" if i == 3 else "clean")
    with HistoryStore(path) as store:  # checking P3 again: it does not count itself twice
        (decision,) = hist.check_many([claim("P3", ("97110", days[3]))], history=store)
        assert rules(decision) == [(1, "hist/pt-limit")]
        assert decision.findings[0].message.startswith("visit 4 ")


def test_a_run_keeps_input_order_and_rejects_unreadable_claims_in_place(hist: Engine) -> None:
    items: list[Any] = [
        claim("U1", ("97110", "2025-08-04")),
        b"{not json",
        RawClaim(2, {"claim_id": "U3"}),
        claim("U4", ("97110", "2025-08-05")),
    ]
    decisions = list(hist.check_many(items))
    assert [(d.claim_id, d.status) for d in decisions] == [
        ("U1", "clean"),
        (None, "reject"),
        ("U3", "reject"),
        ("U4", "clean"),
    ]
    assert [d.position for d in decisions] == [0, 1, 2, 3]


def test_claims_spooled_to_disk_get_the_same_decisions(
    hist: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = [claim(f"Q{i}", ("97110", f"2025-08-{i + 1:02d}")) for i in range(9)]
    in_memory = [d.to_json() for d in hist.check_many(batch)]
    monkeypatch.setattr(H, "SPOOL_IN_MEMORY", 2)
    monkeypatch.setattr(H, "PREFETCH", 3)
    assert [d.to_json() for d in hist.check_many(batch)] == in_memory
    assert sum(d["status"] == "deny" for d in in_memory) == 6


def test_a_run_makes_no_reference_cycles(hist: Engine) -> None:
    """What lets a run pause the cyclic garbage collector in phase 1 (and what frees a
    claim and its history as soon as it is decided): nothing a run makes is garbage only
    the collector can find."""
    batch = [
        claim(f"Y{i}", ("97110", f"2025-08-{i + 1:02d}"), ("93306", "2025-08-20")) for i in range(6)
    ]
    gc.collect()
    gc.disable()
    try:
        decisions = [d.to_json() for d in hist.check_many(batch)]
        decisions += [hist.check(claim("Y9", ("97110", "2025-08-09"))).to_json()]
        assert gc.collect() == 0
    finally:
        gc.enable()
    assert [d["status"] for d in decisions] == ["clean"] + ["deny"] * 5 + ["clean"]


def test_a_run_leaves_the_garbage_collector_as_it_found_it(hist: Engine) -> None:
    batch = [claim(f"Z{i}", ("97110", f"2025-08-{i + 1:02d}")) for i in range(3)]
    run = hist.check_many(batch)
    next(run)  # phase 2: what phase 1 kept is frozen, the collector runs
    assert gc.isenabled() and gc.get_freeze_count() > 0
    list(run)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        list(hist.check_many(batch))
        assert not gc.isenabled()
    finally:
        gc.enable()
    gc.freeze()  # something else froze objects: a run leaves them frozen
    try:
        frozen = gc.get_freeze_count()
        list(hist.check_many(batch))
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("one_member", [True, False])
def test_check_decodes_each_claim_once_with_history(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, one_member: bool
) -> None:
    """`cleanclaim check` with history reads its input twice; phase 2 takes the claims
    phase 1 decoded instead of decoding them again - the same decisions either way. The
    claims of a member with several in the run are decided while phase 1 settles them:
    phase 2 takes those decisions and decodes none of them again (issue 14.2)."""
    from functools import partial

    from cleanclaim.engine import engine as engine_module
    from cleanclaim.engine.batch import InputReader, as_decision, check_batch

    days = ["2025-08-05", "2025-08-01", "2025-08-03", "2025-08-02", "2025-08-04"]
    path = _write(
        tmp_path / "c.ndjson",
        [
            claim(f"K{i}", ("97110", day), member="M-1" if one_member else f"M-{i}")
            for i, day in enumerate(days)
        ],
    )
    decoded: list[str] = []

    def counting(data: Any, today: dt.date) -> Any:
        decoded.append(data["claim_id"])
        return decode_claim(data, today)

    monkeypatch.setattr(H, "decode_claim", counting)
    monkeypatch.setattr(engine_module, "decode_claim", counting)
    # NDJSON lines are decoded from their bytes (engine/decoding.py `decode_json`).
    from cleanclaim.engine import batch as batch_module
    from cleanclaim.engine.decoding import decode_json

    def counting_json(text: Any, today: dt.date) -> Any:
        decoded.append(json.loads(text)["claim_id"])
        return decode_json(text, today)

    monkeypatch.setattr(H, "decode_json", counting_json)
    monkeypatch.setattr(batch_module, "decode_json", counting_json)

    def check(keep: int) -> list[Any]:
        monkeypatch.setattr(H, "KEEP_DECODED", keep)
        decoded.clear()
        engine = Engine([HIST], today=TODAY, plugins=())
        batch = H.HistoryBatch(engine, None)
        try:
            batch.record(InputReader([path]))
            return [
                d.to_json()
                for d in check_batch(InputReader([path]), partial(as_decision), engine=engine)
            ]
        finally:
            batch.close()

    once = check(H.KEEP_DECODED)
    assert sorted(decoded) == [f"K{i}" for i in range(5)]
    # Settled decisions need no claim at all; otherwise only the first two are kept.
    assert check(2) == once and len(decoded) == (5 if one_member else 5 + 3)
    if one_member:
        assert [d["status"] for d in once] == ["deny", "clean", "clean", "clean", "deny"]


def test_history_logs_name_members_by_key_only(
    hist: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cleanclaim.history")
    with HistoryStore(tmp_path / "s.sqlite") as store:
        list(
            hist.check_many(
                [claim("L", ("97110", "2025-08-04"), member="MBI-LOGGED")], history=store
            )
        )
        store.clear_member(store.member_key("hist", "MBI-LOGGED"))
    assert caplog.records and "MBI-LOGGED" not in caplog.text


# ---- the command line --------------------------------------------------------------------


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """`cleanclaim ...` in a fresh process, without the specialty plugins (their rules
    would judge the test pack's claims too)."""
    return subprocess.run(
        [sys.executable, "-m", "cleanclaim.engine.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
        env={**os.environ, "CLEANCLAIM_PLUGINS": "none"},
    )


def _write(path: Path, claims: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(c) + "\n" for c in claims))
    return path


def test_check_with_state_counts_across_runs_and_history_shows_and_clears(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    first = _write(
        tmp_path / "first.ndjson",
        [
            claim("C1", ("97110", "2025-08-04")),
            claim("C2", ("97110", "2025-08-05")),
            claim("C3", ("97110", "2025-08-06")),
        ],
    )
    second = _write(tmp_path / "second.ndjson", [claim("C4", ("97110", "2025-08-07"))])
    common = [
        "--policies",
        str(HIST),
        "--today",
        TODAY.isoformat(),
        "--format",
        "ndjson",
        "--state",
        str(state),
    ]
    run = _cli("check", str(first), *common)
    assert run.returncode == 0, run.stderr
    run = _cli("check", str(second), *common)
    assert run.returncode == 1 and json.loads(run.stdout)["status"] == "deny"
    shown = _cli("history", "show", "--member", "M-1", "--state", str(state))
    assert shown.returncode == 0 and "M-1" not in shown.stdout
    # C4 was denied (visit 4 over the limit of 3): on file, but it counts nothing.
    assert "4 claim(s), 3 counted" in shown.stdout and "C4" in shown.stdout
    as_json = json.loads(
        _cli("history", "show", "--member", "M-1", "--state", str(state), "--format", "json").stdout
    )
    assert [c["claim_id"] for c in as_json[0]["claims"]] == ["C1", "C2", "C3", "C4"]
    cleared = _cli("history", "clear", "--member", "M-1", "--state", str(state))
    assert cleared.returncode == 0 and "cleared 4 claim(s)" in cleared.stdout
    assert "M-1" not in cleared.stdout + cleared.stderr
    assert _cli("history", "show", "--member", "M-1", "--state", str(state)).returncode == 1
    run = _cli("check", str(second), *common)  # history forgotten: C4 is visit 1 again
    assert run.returncode == 0


def test_history_commands_need_an_existing_store(tmp_path: Path) -> None:
    run = _cli("history", "show", "--member", "M-1", "--state", str(tmp_path / "none.sqlite"))
    assert run.returncode == 2 and "no such history store" in run.stderr


def test_check_refuses_a_state_file_that_is_not_a_store(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not sqlite\n" * 200)
    claims = _write(tmp_path / "c.ndjson", [claim("C1", ("97110", "2025-08-04"))])
    run = _cli("check", str(claims), "--policies", str(HIST), "--state", str(bad))
    assert run.returncode == 2 and "not a cleanclaim history store" in run.stderr


def test_without_state_the_claims_of_one_input_count_against_each_other(tmp_path: Path) -> None:
    claims = _write(
        tmp_path / "c.ndjson", [claim(f"C{i}", ("97110", f"2025-08-0{i}")) for i in (5, 1, 3, 2, 4)]
    )
    run = _cli(
        "check",
        str(claims),
        "--policies",
        str(HIST),
        "--today",
        TODAY.isoformat(),
        "--format",
        "ndjson",
    )
    statuses = {
        json.loads(line)["claim_id"]: json.loads(line)["status"] for line in run.stdout.splitlines()
    }
    assert statuses == {"C1": "clean", "C2": "clean", "C3": "clean", "C4": "deny", "C5": "deny"}


def test_workers_read_the_history_the_parent_recorded(tmp_path: Path) -> None:
    """More claims than a chunk, so that two worker processes check them."""
    claims = [
        claim(
            f"W{i}",
            ("97110", (dt.date(2025, 7, 1) + dt.timedelta(weeks=i // 150)).isoformat()),
            member=f"M-{i % 150}",
        )
        for i in range(1200)
    ]
    claims.reverse()  # the latest first: order must not matter
    path = _write(tmp_path / "many.ndjson", claims)
    common = ["--policies", str(HIST), "--today", TODAY.isoformat(), "--format", "ndjson"]
    one = _cli("check", str(path), *common, "--workers", "1")
    two = _cli("check", str(path), *common, "--workers", "2")
    assert one.returncode == two.returncode == 1, two.stderr
    assert one.stdout == two.stdout
    assert sum('"status":"deny"' in line for line in one.stdout.splitlines()) == 1200 - 150 * 3


def test_a_claim_is_never_the_duplicate_of_its_own_replacement() -> None:
    """Found by the permutation property: a replacement standing before the claim it
    replaces (same dates, lower claim id) made the replaced claim its duplicate."""
    from tests.conftest import shared_engine

    base = claim("DUP-B", ("99213", "2026-01-06"), payer="medicare", received="2026-01-07")
    replacement = dict(base, claim_id="DUP-A", frequency="replacement", replaces="DUP-B")
    decisions = by_id(shared_engine().check_many([base, replacement]))
    assert [d.status for d in decisions.values()] == ["clean", "clean"]


@pytest.mark.parametrize(
    ("words", "fragment"),
    [
        ("0 full months", "at least 1 full month"),
        ("11 full weeks", "is not a window"),
    ],
)
def test_a_bad_full_months_window_is_e411(words: str, fragment: str) -> None:
    _tree, errors = parse_policy(
        f"version 1\ncounter c\n  counts lines of all lines\n  per {words}\nend\n", "f.policy"
    )
    assert [e.code for e in errors] == ["E411"] and fragment in errors[0].message

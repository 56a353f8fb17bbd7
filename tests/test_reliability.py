"""Nothing lost, nothing double-counted (issue 19, 13.1, 18.4, 18.5, 18.8).

Each test is named after what broke, with the input that broke it."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleanclaim.engine import Engine
from cleanclaim.engine import history as H
from cleanclaim.engine.history import HistoryStore
from tests.test_history import HIST, NPI_B, TODAY, _cli, _write, claim

DEEP = '{"claim_id":"DEEP","x":' + "[" * 990 + "]" * 990 + "}"
SURROGATE = (
    '{"claim_id":"SUR","payer":"hist","member":{"id":"\\ud800"},"lines":[{"code":'
    '"97110","service_date":"2025-08-04"}]}'
)


@pytest.fixture(scope="module")
def hist() -> Engine:
    return Engine([HIST], today=TODAY, plugins=())


def _damaged_input(tmp_path: Path) -> Path:
    lines = [
        json.dumps(claim("G1", ("97110", "2025-08-04"))),
        DEEP,
        SURROGATE,
        json.dumps(claim("G2", ("97110", "2025-08-05"))),
    ]
    path = tmp_path / "damaged.ndjson"
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- 19.1: one line never loses the run --------------------------------------------------


@pytest.mark.parametrize("extra", [[], ["--state", "STATE"], ["--workers", "2"]])
def test_a_deeply_nested_line_or_a_lone_surrogate_rejects_only_that_claim(
    tmp_path: Path, extra: list[str]
) -> None:
    path = _damaged_input(tmp_path)
    extra = [str(tmp_path / "s.sqlite") if a == "STATE" else a for a in extra]
    run = _cli(
        "check",
        str(path),
        "--policies",
        str(HIST),
        "--today",
        TODAY.isoformat(),
        "--format",
        "ndjson",
        *extra,
    )
    decisions = [json.loads(line) for line in run.stdout.splitlines()]
    assert [d["status"] for d in decisions] == ["clean", "reject", "reject", "clean"], run.stderr
    assert [d["claim_id"] for d in decisions] == ["G1", None, "SUR", "G2"]
    assert "nested too deeply" in decisions[1]["findings"][0]["message"]
    assert "surrogate" in decisions[2]["findings"][0]["message"]
    assert "Traceback" not in run.stderr
    assert run.returncode == 1  # rejected claims; the run itself did not fail


def test_check_many_gives_one_decision_per_item_whatever_it_is(hist: Engine) -> None:
    items: list[Any] = [DEEP, SURROGATE, None, [1], 7, "x", claim("OK", ("97110", "2025-08-04"))]
    for store in (None, HistoryStore.memory()):
        decisions = list(hist.check_many(items, history=store))
        assert [d.status for d in decisions] == ["reject"] * 6 + ["clean"]
        assert [d.position for d in decisions] == list(range(7))


@pytest.mark.parametrize("thing", [None, [1], "x", 3, b"\xff", "[]", "null"])
def test_check_of_what_is_no_claim_is_a_reject_not_an_exception(hist: Engine, thing: Any) -> None:
    decision = hist.check(thing)
    assert decision.status == "reject"
    assert decision.findings[0].rule == "engine/claim-format"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        json_values
        | st.builds(
            lambda c, k, v: {**c, k: v},
            st.just(claim("F", ("97110", "2025-08-04"))),
            st.sampled_from(["claim_id", "member", "lines", "frequency", "replaces", "payer"]),
            json_values,
        ),
        max_size=6,
    )
)
def test_check_many_never_raises_on_fuzzed_batches(hist: Engine, batch: list[Any]) -> None:
    decisions = list(hist.check_many(batch, history=HistoryStore.memory()))
    assert len(decisions) == len(batch)
    assert [d.position for d in decisions] == list(range(len(batch)))


# ---- 19.4, 18.8, 19.8: identifiers, ranges, no patient data ------------------------------


@pytest.mark.parametrize("claim_id", [" ", "", "\t", "C\n1", "x" * 81])
def test_blank_or_unwritable_claim_ids_are_rejected(hist: Engine, claim_id: str) -> None:
    decision = hist.check(claim(claim_id, ("97110", "2025-08-04")))
    assert decision.status == "reject"
    assert "claim_id" in decision.findings[0].message


def test_claim_ids_are_trimmed(hist: Engine) -> None:
    assert hist.check(claim(" C-1 ", ("97110", "2025-08-04"))).claim_id == "C-1"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("units", 1e308),
        ("units", 1e30),
        ("units", "1e30"),
        ("units", 10**20),
        ("units", -1e30),
        ("minutes", 1e9),
        ("charge", "1e30"),
        ("charge", 10**20),
    ],
)
def test_absurd_numbers_are_bad_data(hist: Engine, field: str, value: Any) -> None:
    data = claim("ABS", ("97110", "2025-08-04"))
    data["lines"][0][field] = value
    decision = hist.check(data)
    assert decision.status == "reject"
    assert f"lines[0].{field}" in decision.findings[0].message


def test_a_bad_birth_date_or_member_id_is_never_quoted(hist: Engine) -> None:
    data = claim("PHI", ("97110", "2025-08-04"))
    data["member"]["birth_date"] = "1951-13-45"
    data["member"]["id"] = 123456789.5
    decision = hist.check(data)
    text = json.dumps(decision.to_json())
    assert decision.status == "reject"
    assert "1951-13-45" not in text and "123456789" not in text


# ---- 19.9 / 18.7: voids, duplicate ids --------------------------------------------------


def test_a_void_is_not_checked_as_a_service_claim(hist: Engine) -> None:
    visits = [claim(f"V{d}", ("97110", f"2025-08-0{d}")) for d in range(1, 5)]
    void = claim("VOID", ("97110", "2025-08-09"), frequency="void", replaces="V1")
    decisions = list(hist.check_many([*visits, void]))
    assert decisions[-1].status == "clean"
    assert [f.rule for f in decisions[-1].findings] == ["engine/void"]
    assert [d.status for d in decisions[:4]] == ["clean"] * 4  # V1 voided: V4 is visit 3


@pytest.mark.parametrize("store", [False, True])
def test_a_claim_id_twice_in_one_batch_rejects_the_second(hist: Engine, store: bool) -> None:
    first = claim("DUP", ("97110", "2025-08-04"))
    second = claim("DUP", ("97110", "2025-09-04"))
    decisions = list(
        hist.check_many([first, second], history=HistoryStore.memory() if store else None)
    )
    assert [d.status for d in decisions] == ["clean", "reject"]
    assert decisions[1].findings[0].rule == "engine/duplicate-claim-id"


# ---- 19.2 / 13.1: what counts ------------------------------------------------------------


def _run(engine: Engine, store: HistoryStore, *claims: dict[str, Any]) -> list[str]:
    return [d.status for d in engine.check_many(list(claims), history=store)]


def test_a_denied_visit_uses_up_no_benefit_in_later_runs(hist: Engine, tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "s.sqlite") as store:
        assert (
            _run(hist, store, *(claim(f"A{d}", ("97110", f"2025-08-0{d}")) for d in range(1, 6)))
            == ["clean"] * 3 + ["deny"] * 2
        )
        # Visits 4 and 5 were denied: they are on file but count nothing, so a later run's
        # visit is visit 4, not 6 (and is denied as visit 4).
        decision = next(hist.check_many([claim("A9", ("97110", "2025-08-09"))], history=store))
        assert "visit 4" in decision.findings[0].message


def test_a_rejected_claim_is_not_on_file_and_its_correction_is_no_duplicate(
    hist: Engine, tmp_path: Path
) -> None:
    with HistoryStore(tmp_path / "s.sqlite") as store:
        store.begin_run()
        store.record([_facts(store, claim(f"R{d}", ("97110", f"2025-08-0{d}")), d) for d in (1, 2)])
        store.decide([("hist", "R1", "reject", frozenset()), ("hist", "R2", "reject", None)])
        store.end_run()
    with HistoryStore(tmp_path / "s.sqlite") as store:
        # Before the fix the rejected claims counted: B2 and B3 were visits 4 and 5.
        assert (
            _run(hist, store, *(claim(f"B{d}", ("97110", f"2025-08-0{d}")) for d in range(1, 4)))
            == ["clean"] * 3
        )


def test_a_rejected_replacement_restores_what_it_replaced(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "s.sqlite") as store:
        facts = _facts(store, claim("O1", ("97110", "2025-08-04")), 0)
        store.record([facts])
        store.decide([("hist", "O1", "clean", frozenset())])
        repl = _facts(
            store, claim("O2", ("97110", "2025-08-05"), frequency="replacement", replaces="O1"), 0
        )
        store.record([repl])
        assert _counted(store) == {"O1": 0, "O2": 1}
        store.decide([("hist", "O2", "reject", frozenset())])
        assert _counted(store) == {"O1": 1, "O2": 0}  # the soft state came back


def test_a_killed_run_leaves_nothing_that_counts(tmp_path: Path, hist: Engine) -> None:
    path = tmp_path / "s.sqlite"
    with HistoryStore(path) as killed:  # recorded, never decided (the run was killed)
        killed.begin_run()
        killed.record(
            [_facts(killed, claim(f"K{d}", ("97110", f"2025-08-0{d}")), d) for d in range(1, 4)]
        )
    with HistoryStore(path) as store:
        # A rerun of the same services: the killed run's claims do not count (before the
        # fix: denied 11 of 11 on a rerun); replaying the run is idempotent.
        for _ in range(2):
            assert (
                _run(
                    hist, store, *(claim(f"K{d}", ("97110", f"2025-08-0{d}")) for d in range(1, 4))
                )
                == ["clean"] * 3
            )
        assert _counted(store) == {"K1": 1, "K2": 1, "K3": 1}
        assert [r[2] is not None for r in store.runs()] == [False, True, True]


def _facts(store: HistoryStore, data: dict[str, Any], position: int) -> H.ClaimFacts:
    from cleanclaim.engine.model import decode_claim

    decoded, problems = decode_claim(data, TODAY)
    assert decoded is not None, problems
    return H.claim_facts(decoded, store.member_key("hist", decoded.member.id or ""), position)


def _counted(store: HistoryStore, member: str = "M-1") -> dict[str, int]:
    return {
        c["claim_id"]: c["lines"] for c in store.member_claims(store.member_key("hist", member))
    }


# ---- 19.3: replacements and voids of someone else's claim --------------------------------


def test_a_void_naming_another_members_claim_is_refused(hist: Engine, tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "s.sqlite") as store:
        assert _run(hist, store, claim("A-1", ("97110", "2025-08-04"), member="A")) == ["clean"]
        void = claim("B-V", ("97110", "2025-08-04"), member="B", frequency="void", replaces="A-1")
        decisions = list(hist.check_many([void], history=store))
        assert decisions[0].status == "reject"
        assert decisions[0].findings[0].rule == "engine/replaces-other-claim"
        assert _counted(store, "A") == {"A-1": 1}
        other = claim("A-1", ("97110", "2025-08-09"), member="B")  # the id, another member
        assert (
            next(hist.check_many([other], history=store)).findings[0].rule
            == "engine/claim-id-taken"
        )
        moved = claim("R-1", ("97110", "2025-08-04"), member="A", npi=NPI_B)
        assert _run(hist, store, moved) == ["clean"]


# ---- 19.8: the key outside the store -----------------------------------------------------


def test_member_ids_cannot_be_recovered_from_the_store(tmp_path: Path, hist: Engine) -> None:
    path = tmp_path / "s.sqlite"
    ids = [f"1EG4TE5MK{n:02d}" for n in range(50)]
    with HistoryStore(path) as store:
        list(
            hist.check_many(
                [claim(f"P{n}", ("97110", "2025-08-04"), member=m) for n, m in enumerate(ids)],
                history=store,
            )
        )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key_file = H.key_path(str(path))
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    db = sqlite3.connect(path)
    meta = dict(db.execute("SELECT key, value FROM meta"))
    assert "salt" not in meta
    keys = {r[0] for r in db.execute("SELECT member_key FROM claims")}
    # What an attacker holding only the store can try: every value in it as the key.
    candidates = [v.encode() for v in meta.values()] + [bytes.fromhex(v) for v in meta.values()]
    import hashlib

    found = sum(
        1
        for m in ids
        for k in candidates
        if hashlib.blake2b(f"hist\0{m}".encode(), key=k[:64], digest_size=16).hexdigest() in keys
    )
    assert found == 0
    db.close()


def test_the_key_may_come_from_the_environment_and_must_match(
    tmp_path: Path, monkeypatch: Any
) -> None:
    path = tmp_path / "s.sqlite"
    monkeypatch.setenv(H.KEY_ENV, "ab" * 16)
    with HistoryStore(path) as store:
        key = store.member_key("hist", "M-1")
    assert not H.key_path(str(path)).exists()
    monkeypatch.setenv(H.KEY_ENV, "cd" * 16)
    with pytest.raises(H.StoreError, match="not this store's"):
        HistoryStore(path)
    monkeypatch.setenv(H.KEY_ENV, "ab" * 16)
    with HistoryStore(path) as again:
        assert again.member_key("hist", "M-1") == key


# ---- 19.5 / 18.5: read once; every file has its record -----------------------------------


def test_a_json_array_on_a_pipe_gives_one_decision_per_claim(tmp_path: Path) -> None:
    claims = [claim(f"P{d}", ("97110", f"2025-08-0{d}")) for d in range(1, 10)] * 1
    text = json.dumps(claims)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cleanclaim.engine.cli",
            "check",
            "-",
            "--policies",
            str(HIST),
            "--today",
            TODAY.isoformat(),
            "--format",
            "ndjson",
        ],
        input=text,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "CLEANCLAIM_PLUGINS": "none"},
    )
    decisions = [json.loads(line) for line in run.stdout.splitlines()]
    assert [d["claim_id"] for d in decisions] == [f"P{d}" for d in range(1, 10)], run.stderr


def test_a_fifo_is_read_once(tmp_path: Path) -> None:
    fifo = tmp_path / "claims.ndjson"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"cat > {fifo}"], stdin=subprocess.PIPE)
    assert writer.stdin is not None
    writer.stdin.write(
        "".join(
            json.dumps(claim(f"F{d}", ("97110", f"2025-08-0{d}"))) + "\n" for d in range(1, 6)
        ).encode()
    )
    writer.stdin.close()
    run = _cli(
        "check",
        str(fifo),
        "--policies",
        str(HIST),
        "--today",
        TODAY.isoformat(),
        "--format",
        "ndjson",
    )
    writer.wait(timeout=60)
    statuses = [json.loads(line)["status"] for line in run.stdout.splitlines()]
    assert statuses == ["clean"] * 3 + ["deny"] * 2, run.stderr


@pytest.mark.parametrize("output", ["json", "ndjson"])
def test_a_file_that_cannot_be_read_has_a_located_record_in_the_output(
    tmp_path: Path, output: str
) -> None:
    good = _write(tmp_path / "good.ndjson", [claim("G", ("97110", "2025-08-04"))])
    broken = tmp_path / "broken.837"
    broken.write_text("ISA*00*BLOGGS")
    run = _cli(
        "check",
        str(broken),
        str(good),
        "--policies",
        str(HIST),
        "--today",
        TODAY.isoformat(),
        "--format",
        output,
    )
    records = (
        json.loads(run.stdout)
        if output == "json"
        else [json.loads(line) for line in run.stdout.splitlines()]
    )
    assert run.returncode == 3, run.stderr
    assert [r["claim_id"] for r in records] == [None, "G"]
    error = records[0]["error"]
    assert error["file"] == str(broken) and error["reason"]
    assert records[0]["findings"][0]["rule"] == "engine/input-file"
    assert "BLOGGS" not in run.stdout


def test_lines_appended_during_a_run_are_left_for_the_next(tmp_path: Path) -> None:
    from cleanclaim.engine.batch import InputReader

    path = _write(tmp_path / "c.ndjson", [claim("A", ("97110", "2025-08-04"))])
    size = path.stat().st_size
    with path.open("a") as more:
        more.write(json.dumps(claim("B", ("97110", "2025-08-05"))) + "\n")
    assert len(list(InputReader([path], limits={path: size}))) == 1


def test_a_reader_that_fails_gives_the_file_a_record_not_a_crash(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from cleanclaim.engine import batch
    from cleanclaim.engine.inputs import InputFileError

    def broken(path: Path, payer_map: Any = None) -> Any:
        raise RecursionError("maximum recursion depth exceeded")
        yield

    monkeypatch.setattr(batch, "read_claims", broken)
    [item] = list(batch.InputReader([tmp_path / "deep.json"]))
    assert isinstance(item, InputFileError) and "RecursionError" in item.message


# ---- 19.7: concurrent runs ---------------------------------------------------------------


def _concurrent_run(
    path: str, index: int, share: list[dict[str, Any]], start: Any, out: Any
) -> None:
    engine = Engine([HIST], today=TODAY, plugins=())
    start.wait()
    with HistoryStore(path) as store:
        decisions = [json.dumps(d.to_json()) for d in engine.check_many(share, history=store)]
        run = store.run
    out.put((run, index, decisions))


def _visit_shares(processes: int, members: int, visits: int) -> list[list[dict[str, Any]]]:
    """Disjoint batches of the same members' visits (dates spread over all batches)."""
    shares: list[list[dict[str, Any]]] = [[] for _ in range(processes)]
    for m in range(members):
        for v in range(visits):
            day = f"2025-{7 + v // 28:02d}-{1 + v % 28:02d}"
            shares[(m + v) % processes].append(claim(f"C-{m}-{v}", ("97110", day), member=f"M-{m}"))
    return shares


def test_concurrent_runs_decide_as_the_same_runs_one_after_another(tmp_path: Path) -> None:
    """Before the fix, four runs on disjoint batches of the same members denied 765-1,600
    visits against 1,600 expected, by timing. Now the runs take turns: the decisions are
    those of the same runs made one after another in the order they held the store."""
    import multiprocessing

    shares = _visit_shares(4, 6, 12)
    path = str(tmp_path / "shared.sqlite")
    HistoryStore(path).close()
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(4), context.Queue()
    workers = [
        context.Process(target=_concurrent_run, args=(path, i, share, start, out))
        for i, share in enumerate(shares)
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    by_run = {run: decisions for run, _index, decisions in results}
    share_of = {run: shares[index] for run, index, _decisions in results}
    with HistoryStore(path) as store:
        order = [run for run, _started, finished in store.runs() if finished]
    assert sorted(order) == sorted(by_run)
    # The same batches, one after another in that order, into a new store.
    engine = Engine([HIST], today=TODAY, plugins=())
    with HistoryStore(tmp_path / "replay.sqlite") as replay:
        spread = 0
        for run in order:
            again = [
                json.dumps(d.to_json()) for d in engine.check_many(share_of[run], history=replay)
            ]
            spread += sum(a != b for a, b in zip(again, by_run[run], strict=True))
    assert spread == 0


def test_a_repeated_claim_id_is_rejected_on_every_path(tmp_path: Path) -> None:
    """A pack without counters and no --state: the CLI checks without a history run, and
    still rejects the second claim of an id, as Engine.check_many does."""
    pack = tmp_path / "packs" / "plain"
    pack.mkdir(parents=True)
    (pack / "pack.yaml").write_text("id: plain\nname: plain\n")
    (pack / "rules.policy").write_text(
        'version 1\nrule "plain/units"\n  applies to all lines\n  root cause coding\n'
        "  when line.units > 50\n  then deny CO-151\nend\n"
    )
    claims = [
        {**claim("SAME", ("97110", "2025-08-04")), "payer": "plain"},
        {**claim("SAME", ("97110", "2025-08-05")), "payer": "plain"},
    ]
    path = _write(tmp_path / "c.ndjson", claims)
    run = _cli(
        "check",
        str(path),
        "--policies",
        str(tmp_path / "packs"),
        "--today",
        TODAY.isoformat(),
        "--format",
        "ndjson",
    )
    cli = [json.loads(line) for line in run.stdout.splitlines()]
    api = [
        d.to_json()
        for d in Engine([tmp_path / "packs"], today=TODAY, plugins=()).check_many(claims)
    ]
    assert [d["status"] for d in cli] == ["clean", "reject"], run.stderr
    assert cli[1]["findings"] == api[1]["findings"]
    assert cli[1]["position"] == api[1]["position"] == 1

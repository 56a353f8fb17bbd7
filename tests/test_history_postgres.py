"""The PostgreSQL history store (`--state postgresql://...`) keeps the SQLite store's
semantics: the same decisions through the CLI (one worker and two), idempotent re-checks,
replacements and voids, a killed run's provisional claims that never count, migrations,
the key outside the store. The store properties and the multi-process writers test run
against both stores (tests/test_history_properties.py, tests/test_history_concurrency.py).
A real server: tests/postgres_server.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.engine import Engine
from cleanclaim.engine.history import MIGRATIONS, StoreError, claim_facts, open_store
from cleanclaim.engine.history.postgres import PostgresStore, redacted
from cleanclaim.engine.model import decode_claim
from tests.postgres_server import BACKENDS, Backends, new_database
from tests.test_history import HIST, REPO, TODAY, claim


@pytest.fixture(scope="module")
def hist() -> Engine:
    return Engine([HIST], today=TODAY, plugins=())


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cleanclaim.engine.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
        env={**os.environ, "CLEANCLAIM_PLUGINS": "none"},
    )


def _visits() -> list[dict[str, Any]]:
    claims = [claim(f"V-{n}", ("97110", f"2025-08-{n + 1:02d}")) for n in range(6)]
    claims.append(claim("V-2R", ("97110", "2025-09-20"), frequency="replacement", replaces="V-2"))
    claims.append(claim("V-4X", ("97110", "2025-08-05"), frequency="void", replaces="V-4"))
    claims.append(claim("V-9", ("97110", "2025-08-09")))
    return claims


def test_check_decides_the_same_on_both_stores_and_across_runs(
    tmp_path: Path, backends: Backends
) -> None:
    """`cleanclaim check --state`: SQLite, PostgreSQL, PostgreSQL with --workers 2 - the
    same bytes; and the next run on each store sees what the first decided."""
    first, second = tmp_path / "first.ndjson", tmp_path / "second.ndjson"
    first.write_text("".join(json.dumps(c) + "\n" for c in _visits()))
    second.write_text(json.dumps(claim("V-10", ("97110", "2025-08-10"))) + "\n")
    common = ["check", "--policies", str(HIST), "--today", TODAY.isoformat(), "--format", "ndjson"]
    outputs = []
    for state, extra in (
        (str(tmp_path / "s.sqlite"), []),
        (backends.state("postgresql", tmp_path), []),
        (backends.state("postgresql", tmp_path), ["--workers", "2"]),
    ):
        runs = [_cli(*common, str(path), "--state", state, *extra) for path in (first, second)]
        assert all(r.returncode in (0, 1) for r in runs), runs[0].stderr
        outputs.append([r.stdout for r in runs])
    assert outputs[0] == outputs[1] == outputs[2]
    later = json.loads(outputs[0][1])
    assert [f["rule"] for f in later["findings"]] == ["hist/pt-limit"]


def test_rechecking_the_same_claims_is_idempotent(backends: Backends, hist: Engine) -> None:
    with backends.store("postgresql") as store:
        first = [d.to_json() for d in hist.check_many(_visits(), history=store)]
        counts = store.counts()
        assert [d.to_json() for d in hist.check_many(_visits(), history=store)] == first
        assert store.counts() == counts
        recorded = {
            c["claim_id"]: (c["lines"], c["superseded_by"], c["decision"])
            for c in store.member_claims(store.member_key("hist", "M-1"))
        }
    assert recorded["V-2"] == (0, "V-2R", "clean")  # replaced: soft state, kept
    assert recorded["V-4"][:2] == (0, "V-4X")  # voided
    assert recorded["V-9"] == (0, None, "deny")  # denied: its line does not count


def test_a_killed_run_leaves_nothing_that_counts(backends: Backends, hist: Engine) -> None:
    with backends.store("postgresql") as killed:  # recorded, never decided
        killed.begin_run()
        facts = []
        for d in range(1, 4):
            decoded, _ = decode_claim(claim(f"K{d}", ("97110", f"2025-08-0{d}")), TODAY)
            assert decoded is not None
            facts.append(claim_facts(decoded, killed.member_key("hist", "M-1"), d))
        assert killed.record(facts) == 3
        url = killed.path
    with open_store(url) as store:
        for _ in range(2):  # the killed run's claims do not count; a replay is idempotent
            decisions = list(
                hist.check_many(
                    [claim(f"K{d}", ("97110", f"2025-08-0{d}")) for d in range(1, 4)], history=store
                )
            )
            assert [d.status for d in decisions] == ["clean"] * 3
        assert [r[2] is not None for r in store.runs()] == [False, True, True]


def test_a_store_of_an_older_schema_is_migrated(backends: Backends, hist: Engine) -> None:
    import psycopg

    from cleanclaim.engine.history.postgres import _translate

    url = new_database(backends.server())
    with psycopg.connect(url, autocommit=True) as db:  # a schema-3 store, one claim
        for step in MIGRATIONS[:3]:
            for statement in step:
                db.execute(_translate(statement))
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (3)")
    with open_store(url) as store:
        assert store.schema_version == len(MIGRATIONS)
        decoded, _ = decode_claim(claim("OLD", ("97110", "2025-08-01")), TODAY)
        assert decoded is not None
        with psycopg.connect(url, autocommit=True) as db:
            f = claim_facts(decoded, store.member_key("hist", "M-1"))
            db.execute(
                "INSERT INTO claims (member_key, claim_id, payer, received, "
                "first_dos, last_dos, line_count, recorded_at, lines, decision, "
                "submitted) VALUES (%s, %s, %s, %s, %s, %s, 1, 'x', %s, 'recorded', "
                "%s)",
                (
                    f.member_key,
                    f.claim_id,
                    f.payer,
                    f.received,
                    f.first_dos,
                    f.last_dos,
                    f.lines,
                    f.lines,
                ),
            )
        decisions = list(
            hist.check_many(
                [claim(f"N{d}", ("97110", f"2025-08-0{d}")) for d in range(2, 5)], history=store
            )
        )
    assert [d.status for d in decisions] == ["clean", "clean", "deny"]  # OLD counts


def test_the_key_is_not_in_the_store_and_a_wrong_key_is_refused(
    backends: Backends, hist: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    url = new_database(backends.server())
    with open_store(url) as store:
        list(hist.check_many([claim("P1", ("97110", "2025-08-04"))], history=store))
        salt = store.salt
    with psycopg.connect(url) as db:
        meta: dict[str, str] = dict(db.execute("SELECT key, value FROM meta").fetchall())
    assert set(meta) == {"key_check"} and salt.hex() not in meta["key_check"]
    monkeypatch.setenv("CLEANCLAIM_HISTORY_KEY", "11" * 32)
    with pytest.raises(StoreError, match="not this store's"):
        open_store(url)


def test_a_password_never_shows_in_messages(postgres_url: str) -> None:
    url = (
        postgres_url.replace("postgres@", "postgres:s3cret@").rsplit("/", 1)[0]
        + "/no_such_database"
    )
    assert "s3cret" not in redacted(url)
    with pytest.raises(StoreError) as caught:
        PostgresStore(url)
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_history_show_and_members_import_take_either_store(
    tmp_path: Path, backends: Backends, backend: str
) -> None:
    state = backends.state(backend, tmp_path)
    path = tmp_path / "c.ndjson"
    path.write_text(json.dumps(claim("S1", ("97110", "2025-08-04"))) + "\n")
    assert (
        _cli(
            "check",
            str(path),
            "--policies",
            str(HIST),
            "--today",
            TODAY.isoformat(),
            "--state",
            state,
        ).returncode
        == 0
    )
    shown = _cli("history", "show", "--member", "M-1", "--state", state, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert [c["claim_id"] for c in json.loads(shown.stdout)[0]["claims"]] == ["S1"]
    roster = tmp_path / "roster.csv"
    roster.write_text("member_id,payer,plan,start,end\nM-1,hist,,2020-01-01,\n")
    imported = _cli("members", "import", str(roster), "--state", state)
    assert imported.returncode == 0 and "1 coverage span(s)" in imported.stdout

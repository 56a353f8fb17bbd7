"""Several processes writing one history store at once lose no visit and count none twice.

Four processes check overlapping shares of one set of claims against one store (a SQLite
file, and a PostgreSQL database), in small runs so that their write transactions
interleave; some claims are sent by two processes (a re-send), some replace or void a
claim another process sends. Afterwards the
store must hold each claim exactly once (replaced and voided ones without lines), and a
run of every claim against it must decide as one self-contained run of them all.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.engine import Engine
from cleanclaim.engine.history import open_store
from tests.postgres_server import BACKENDS, Backends

TODAY = dt.date(2026, 11, 27)
HIST = Path(__file__).resolve().parent / "policies" / "history"
MEMBERS = 12
PROCESSES = 4


def _claim(claim_id: str, member: int, day: int, **extra: Any) -> dict[str, Any]:
    dos = dt.date(2025, 7, 1) + dt.timedelta(days=day)
    data = {
        "claim_id": claim_id,
        "payer": "hist",
        "received_date": (dos + dt.timedelta(days=2)).isoformat(),
        "member": {"id": f"M-{member}", "coverage": [{"payer": "hist"}]},
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": "1234567893"},
        "diagnoses": ["M54.50"],
        "lines": [
            {
                "line": 1,
                "code": "97110",
                "units": 1,
                "charge": "100.00",
                "service_date": dos.isoformat(),
                "diagnosis_pointers": [1],
            }
        ],
    }
    data.update(extra)
    return data


def _claims() -> list[dict[str, Any]]:
    claims = [_claim(f"C-{m}-{d}", m, d * 3) for m in range(MEMBERS) for d in range(10)]
    for m in range(0, MEMBERS, 3):  # a replacement moves a visit; a void removes one
        claims.append(_claim(f"R-{m}", m, 100, frequency="replacement", replaces=f"C-{m}-0"))
        claims.append(_claim(f"V-{m}", m, 3, frequency="void", replaces=f"C-{m}-1"))
    return claims


def _shares(claims: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Each claim to one process, every fifth claim to the next process as well."""
    shares: list[list[dict[str, Any]]] = [[] for _ in range(PROCESSES)]
    for i, claim in enumerate(claims):
        shares[i % PROCESSES].append(claim)
        if i % 5 == 0:
            shares[(i + 1) % PROCESSES].append(claim)
    return shares


def _writer(path: str, share: list[dict[str, Any]], start: Any, key_file: str) -> None:
    from cleanclaim.engine.history.postgres import KEY_FILE_ENV

    os.environ[KEY_FILE_ENV] = key_file
    engine = Engine([HIST], today=TODAY, plugins=())
    start.wait()
    for first in range(0, len(share), 4):  # small runs: many interleaved transactions
        with open_store(path) as store:
            for _decision in engine.check_many(share[first : first + 4], history=store):
                pass


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_writers_lose_no_visit_and_count_none_twice(
    tmp_path: Path, backends: Backends, backend: str
) -> None:
    """Against one SQLite file, and against one PostgreSQL database."""
    from cleanclaim.engine.history.postgres import KEY_FILE_ENV

    path = backends.state(backend, tmp_path)
    open_store(path).close()
    claims = _claims()
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    key_file = os.environ.get(KEY_FILE_ENV, "")
    workers = [
        context.Process(target=_writer, args=(path, share, start, key_file))
        for share in _shares(claims)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [w.exitcode for w in workers] == [0] * PROCESSES

    replaced = {c["replaces"] for c in claims if c.get("replaces")}
    with open_store(path) as store:
        assert store.counts()["claims"] == len(claims)
        for m in range(MEMBERS):
            recorded = {
                c["claim_id"]: (c["lines"], c["decision"])
                for c in store.member_claims(store.member_key("hist", f"M-{m}"))
            }
            mine = [c for c in claims if c["member"]["id"] == f"M-{m}"]
            assert set(recorded) == {c["claim_id"] for c in mine}, m
            for c in mine:  # each decided; it counts unless replaced, void or denied
                lines, decision = recorded[c["claim_id"]]
                assert decision is not None, c["claim_id"]
                assert lines == (
                    0
                    if (
                        c["claim_id"] in replaced
                        or c.get("frequency") == "void"
                        or decision in ("deny", "reject")
                    )
                    else 1
                ), c["claim_id"]
        engine = Engine([HIST], today=TODAY, plugins=())
        against_store = [d.to_json() for d in engine.check_many(claims, history=store)]
    assert against_store == [d.to_json() for d in engine.check_many(claims)]

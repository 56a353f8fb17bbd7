"""Reliability trials of claim history (issue 19): figures anyone can rerun.

    python -m cleanclaim.engine.trials settle      # settling a run at scale (not quadratic)
    python -m cleanclaim.engine.trials damaged     # claims in = decisions out, damaged input
    python -m cleanclaim.engine.trials fuzz        # fuzzed batches through Engine.check_many
    python -m cleanclaim.engine.trials concurrent  # concurrent --state runs: spread (target 0)
    python -m cleanclaim.engine.trials ids         # member ids recoverable from a store (0)
    python -m cleanclaim.engine.trials all         # each of them, at smaller sizes

Each prints one JSON object of figures (`--json`) or a few lines for people. These are
trials, not tests: they take minutes at their default sizes and measure time; the tests
(tests/test_history*.py, tests/test_reliability.py) assert the same properties on small
inputs. The workload is the shipped acme-ppo pack's therapy benefit (20 PT/OT visits a
calendar year, authorization after 12) with the common duplicate and required-data rules,
so that claims are denied, rejected, replaced and counted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

TODAY = dt.date(2026, 1, 20)
NPI = "1234567893"
YEAR = dt.date(2025, 1, 2)


def therapy_claim(
    claim_id: str,
    member: str,
    dos: dt.date,
    *,
    received: dt.date | None = None,
    pos: str = "11",
    **extra: Any,
) -> dict[str, Any]:
    """An acme-ppo PT visit (97110 GP) of `member`, with an authorization for the year."""
    data: dict[str, Any] = {
        "claim_id": claim_id,
        "payer": "acme-ppo",
        "plan": None,
        "frequency": "original",
        "received_date": (received or dos + dt.timedelta(days=2)).isoformat(),
        "member": {
            "id": member,
            "birth_date": "1950-01-01",
            "sex": "F",
            "coverage": [{"payer": "acme-ppo", "start": "2020-01-01"}],
        },
        "billing_provider": {"npi": NPI},
        "rendering_provider": {"npi": NPI},
        "place_of_service": pos,
        "diagnoses": ["M54.50"],
        "authorizations": [
            {
                "number": "PA-1",
                "codes": ["97110"],
                "start": "2025-01-01",
                "end": "2025-12-31",
                "units": 400,
            }
        ],
        "lines": [
            {
                "line": 1,
                "code": "97110",
                "modifiers": ["GP"],
                "units": 1,
                "charge": "100.00",
                "service_date": dos.isoformat(),
                "diagnosis_pointers": [1],
            }
        ],
    }
    data.update(extra)
    return data


def settle_workload(claims: int, members: int, seed: int = 19) -> list[dict[str, Any]]:
    """`claims` visits of `members` members (one in five has three times the visits of
    the others, past the visit limit), with about 8% filed late (denied), 5% with a bad
    place of service (rejected), 5% replacements of an earlier claim of the member (a
    third of them rejected) and 3% the same service billed again (a duplicate)."""
    rng = random.Random(seed)
    weights = [3 if m % 5 == 0 else 1 for m in range(members)]
    owners = rng.choices(range(members), weights, k=claims)
    days: dict[int, int] = {}
    sent: dict[int, list[tuple[str, dt.date]]] = {}
    out = []
    for n, m in enumerate(owners):
        member = f"T{m:06d}"
        day = days.get(m, 0)
        days[m] = day + 1
        dos = YEAR + dt.timedelta(days=(day * 5 + m) % 360)
        roll = rng.random()
        earlier = sent.get(m)
        if roll < 0.08:
            c = therapy_claim(f"S-{n}", member, dos, received=dos + dt.timedelta(days=400))
        elif roll < 0.13:
            c = therapy_claim(f"S-{n}", member, dos, pos="1")
        elif roll < 0.18 and earlier:
            original, when = rng.choice(earlier)
            c = therapy_claim(
                f"S-{n}",
                member,
                when,
                frequency="replacement",
                replaces=original,
                pos="1" if rng.random() < 0.33 else "11",
                received=when + dt.timedelta(days=20),
            )
        elif roll < 0.21 and earlier:
            c = therapy_claim(
                f"S-{n}", member, earlier[-1][1], received=earlier[-1][1] + dt.timedelta(days=9)
            )
        else:
            c = therapy_claim(f"S-{n}", member, dos)
        sent.setdefault(m, []).append((c["claim_id"], dos))
        out.append(c)
    return out


def _engine() -> Any:
    from cleanclaim.engine import Engine

    return Engine(today=TODAY, plugins=(), tables={})


def trial_settle(claims: int = 100_000, members: int = 5_000) -> dict[str, Any]:
    """Settling at scale: the same density (claims per member) at a quarter, half and all
    of `claims`, and the same claims over a fifth of the members (chains five times
    longer). Per-claim cost must stay flat with the run's size and the rounds few."""
    from cleanclaim.engine.history import HistoryRun

    engine = _engine()
    rows = []
    shapes = [
        (claims // 4, members // 4),
        (claims // 2, members // 2),
        (claims, members),
        (claims, max(1, members // 5)),
    ]
    for n, m in shapes:
        workload = settle_workload(n, m)
        run = HistoryRun(engine)
        started = time.perf_counter()
        statuses: dict[str, int] = {}
        for decision in run.check_many(workload):
            statuses[decision.status] = statuses.get(decision.status, 0) + 1
        whole = time.perf_counter() - started
        s = run.settled
        rows.append(
            {
                "claims": n,
                "members": m,
                "claims_per_member": round(n / m, 1),
                "run_s": round(whole, 2),
                "settle_s": round(s.seconds, 2),
                "settle_us_per_claim": round(s.seconds / n * 1e6, 1),
                "members_settled": s.members,
                "decisions_in_settle": s.evaluations,
                "decisions_per_claim": round(s.evaluations / n, 2),
                "most_rounds": s.most_rounds,
                "mean_rounds": round(s.rounds / max(1, s.members), 2),
                "unsettled": s.unsettled,
                "statuses": statuses,
            }
        )
    return {"trial": "settle", "shapes": rows}


# ---- damaged input -----------------------------------------------------------------------


def _damages() -> list[Callable[[dict[str, Any], random.Random], str]]:
    """Ways to damage one NDJSON line (the claim as a dict in, the line's text out)."""

    def dumped(
        change: Callable[[dict[str, Any]], Any],
    ) -> Callable[[dict[str, Any], random.Random], str]:
        def damage(c: dict[str, Any], _rng: random.Random) -> str:
            changed = change(json.loads(json.dumps(c)))
            return json.dumps(c if changed is None else changed)

        return damage

    def set_path(*path: Any, value: Any) -> Callable[[dict[str, Any]], None]:
        def change(c: dict[str, Any]) -> None:
            target: Any = c
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value

        return change

    def line(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
        return set_path("lines", 0, key, value=value)

    text = [
        lambda c, rng: json.dumps(c)[: rng.randint(1, 80)],  # truncated
        lambda c, _r: '{"claim_id":"DEEP","x":' + "[" * 990 + "]" * 990 + "}",
        lambda c, _r: json.dumps(c).replace('"member": {"id": "', '"member": {"id": "\\ud800'),
        lambda c, _r: json.dumps(c).replace(
            "M54.50", "M54.5\udcff".encode("utf-8", "surrogateescape").decode("latin-1")
        ),  # a non-UTF-8 byte
        lambda c, _r: "null",
        lambda c, _r: "3",
        lambda c, _r: '"x"',
        lambda c, _r: "{}",
        lambda c, _r: "[" + json.dumps(c) + "]",
        lambda c, _r: json.dumps(c).replace('"units": 1', '"units": NaN'),
    ]
    fields = [
        set_path("claim_id", value=" "),
        set_path("claim_id", value="C\n1"),
        set_path("claim_id", value="x" * 100),
        line("units", 1e308),
        line("units", "abc"),
        line("charge", "-5"),
        line("service_date", "2025-13-45"),
        set_path("lines", value=[]),
        set_path("lines", value=None),
        lambda c: c.pop("member"),
        set_path("payer", value="nobody"),
        set_path("payer", value=None),
        set_path("diagnoses", value=5),
        line("diagnosis_pointers", [99]),
        line("modifiers", "GP"),
        set_path("frequency", value="bogus"),
        set_path("received_date", value="1999-01-01"),
        line("code", 97110),
        set_path("member", "coverage", value="all"),
        set_path("member", "birth_date", value="yesterday"),
        set_path(
            "lines",
            value=[{"line": n, "code": "97110", "service_date": "2025-03-03"} for n in range(500)],
        ),
        set_path("extra_field", value={"deep": [1, 2, 3]}),
        set_path("claim_id", value=" S-1 "),  # collides with claim S-1 once trimmed
        lambda c: c.update(frequency="void", replaces="S-2", member={"id": "OTHER"}),
    ]
    return text + [dumped(f) for f in fields]


def damaged_input(path: Path, claims: int, rate: float = 0.01, seed: int = 19) -> int:
    """An NDJSON file of `claims` lines, `rate` of them damaged (each way in turn)."""
    rng = random.Random(seed)
    damages = _damages()
    good = settle_workload(claims, max(1, claims // 20), seed)
    damaged = 0
    with path.open("w", encoding="utf-8", errors="surrogateescape") as out:
        for c in good:
            if rng.random() < rate:
                out.write(damages[damaged % len(damages)](c, rng) + "\n")
                damaged += 1
            else:
                out.write(json.dumps(c) + "\n")
    return damaged


def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "cleanclaim.engine.cli", *args],
        capture_output=True,
        check=False,
        env={**os.environ, "CLEANCLAIM_PLUGINS": "none"},
    )


def trial_damaged(claims: int = 100_000) -> dict[str, Any]:
    """`cleanclaim check` of an NDJSON file with 1% of its lines damaged (in 34 ways):
    claims in and decisions out, alone, with --state and with --workers 2."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "damaged.ndjson"
        damaged = damaged_input(path, claims)
        base = ["check", str(path), "--format", "ndjson", "--today", TODAY.isoformat()]
        outputs = {}
        for name, extra in (
            ("alone", []),
            ("state", ["--state", f"{tmp}/s.sqlite"]),
            ("workers 2", ["--workers", "2"]),
        ):
            started = time.perf_counter()
            run = _cli(*base, *extra)
            out = run.stdout.splitlines()
            outputs[name] = run.stdout
            decisions = [json.loads(line) for line in out]
            rows.append(
                {
                    "run": name,
                    "claims_in": claims,
                    "damaged": damaged,
                    "decisions_out": len(decisions),
                    "internal_errors": sum(
                        1
                        for d in decisions
                        for f in d["findings"]
                        if f["rule"] == "engine/internal-error"
                    ),
                    "rejected": sum(1 for d in decisions if d["status"] == "reject"),
                    "exit": run.returncode,
                    "traceback": b"Traceback" in run.stderr,
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
        same = outputs["alone"] == outputs["state"] == outputs["workers 2"]
    return {"trial": "damaged", "runs": rows, "identical_outputs": same}


# ---- fuzzed batches ----------------------------------------------------------------------


_VALUES: list[Any] = [
    None,
    "",
    " ",
    -1,
    0,
    1e308,
    -1e308,
    [],
    {},
    "x" * 1000,
    True,
    [[[[]]]],
    {"a": {"b": None}},
    "2025-02-30",
    "\ud800",
    2**70,
]


def _mutate(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        return {**value, key: _mutate(value[key], rng)}
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        return [*value[:i], _mutate(value[i], rng), *value[i + 1 :]]
    return rng.choice(_VALUES)


def trial_fuzz(batches: int = 2_000, seed: int = 19) -> dict[str, Any]:
    """Batches of 1-20 items, each a claim with one value replaced at random (or no claim
    at all), through `Engine.check_many` (a history run): batches that raised, and items
    in against decisions out."""
    rng = random.Random(seed)
    engine = _engine()
    raised = items = out = 0
    pool = settle_workload(400, 20, seed)
    for _ in range(batches):
        batch = [
            _mutate(rng.choice(pool), rng) if rng.random() < 0.9 else rng.choice(_VALUES)
            for _ in range(rng.randint(1, 20))
        ]
        items += len(batch)
        try:
            out += sum(1 for _d in engine.check_many(batch))
        except Exception:
            raised += 1
    return {
        "trial": "fuzz",
        "batches": batches,
        "batches_raised": raised,
        "items_in": items,
        "decisions_out": out,
    }


# ---- concurrent runs ---------------------------------------------------------------------


def _visit_shares(runs: int, members: int, visits: int) -> list[list[dict[str, Any]]]:
    """Disjoint batches of the same members' visits, dates spread over all batches."""
    shares: list[list[dict[str, Any]]] = [[] for _ in range(runs)]
    for m in range(members):
        for v in range(visits):
            shares[(m + v) % runs].append(
                therapy_claim(f"C-{m}-{v}", f"M-{m}", YEAR + dt.timedelta(days=v * 7))
            )
    return shares


def trial_concurrent(
    runs: int = 4, members: int = 40, visits: int = 40, repeat: int = 3, state: str | None = None
) -> dict[str, Any]:
    """`runs` concurrent `cleanclaim check --state` processes on disjoint batches of the
    same members' visits (the issue's trial), `repeat` times on a new store: the visits
    denied for the limit (expected: members x (visits - 20) every time), and the spread -
    decisions that differ from the same batches run one after another in the order the
    runs held the store (target 0). `state`: a PostgreSQL URL instead of SQLite files."""
    expected = members * max(0, visits - 20)
    rows: list[dict[str, Any]] = []
    denials: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeat):
            shares = _visit_shares(runs, members, visits)
            files = []
            for i, share in enumerate(shares):
                files.append(Path(tmp) / f"r{r}-share{i}.ndjson")
                files[-1].write_text("".join(json.dumps(c) + "\n" for c in share))
            store = state or f"{tmp}/r{r}.sqlite"
            if state is not None:
                _clear_postgres(state)
            base = [
                "-m",
                "cleanclaim.engine.cli",
                "check",
                "--format",
                "ndjson",
                "--today",
                TODAY.isoformat(),
                "--state",
                store,
            ]
            env = {**os.environ, "CLEANCLAIM_PLUGINS": "none"}
            procs = [
                subprocess.Popen(
                    [sys.executable, *base, str(f)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=env,
                )
                for f in files
            ]
            outputs = [p.communicate()[0] for p in procs]
            denied = sum(
                1
                for out in outputs
                for line in out.splitlines()
                if b"acme-ppo/therapy/visit-limit" in line
            )
            order = _run_order(store, [share[0]["claim_id"] for share in shares])
            replay = state or f"{tmp}/r{r}-replay.sqlite"
            if state is not None:
                _clear_postgres(state)
            spread = 0
            for i in order:
                again = subprocess.run(
                    [sys.executable, *base[:-1], replay, str(files[i])],
                    capture_output=True,
                    env=env,
                    check=False,
                ).stdout
                spread += sum(
                    a != b for a, b in zip(again.splitlines(), outputs[i].splitlines(), strict=True)
                )
            denials.append(denied)
            rows.append(
                {
                    "repeat": r,
                    "visit_limit_denials": denied,
                    "expected": expected,
                    "spread": spread,
                    "order": order,
                }
            )
    return {
        "trial": "concurrent",
        "runs": runs,
        "members": members,
        "visits": visits,
        "store": "postgresql" if state else "sqlite",
        "denials_range": [min(denials), max(denials)],
        "expected": expected,
        "spread": sum(x["spread"] for x in rows),
        "repeats": rows,
    }


def _run_order(store: str, first_ids: list[str]) -> list[int]:
    """The shares in the order their runs held the store (the `runs` table)."""
    from cleanclaim.engine.history import open_store

    with open_store(store) as s:
        order = [run for run, _started, _finished in s.runs()]
        run_of = {i: s.run_of("acme-ppo", claim_id) or "" for i, claim_id in enumerate(first_ids)}
    return sorted(run_of, key=lambda i: order.index(run_of[i]))


def _clear_postgres(url: str) -> None:
    from cleanclaim.engine.history import open_store

    with open_store(url) as s:
        s.clear_all()


# ---- member ids in a store ---------------------------------------------------------------


def trial_ids(members: int = 50) -> dict[str, Any]:
    """Claims of `members` member ids checked into a new store with `cleanclaim check
    --state`; then what someone holding the store file alone can try: every value in it
    as the key of the member-key hash, over the true ids. Ids recovered (target 0), ids
    or birth dates in the output, and the files' modes."""
    ids = [f"1EG4TE5MK{n:02d}" for n in range(members)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.sqlite"
        claims = Path(tmp) / "claims.ndjson"
        claims.write_text(
            "".join(json.dumps(therapy_claim(f"I-{n}", m, YEAR)) + "\n" for n, m in enumerate(ids))
        )
        run = _cli(
            "check",
            str(claims),
            "--state",
            str(path),
            "--format",
            "ndjson",
            "--today",
            TODAY.isoformat(),
        )
        leaked = sum(1 for m in ids if m.encode() in run.stdout + run.stderr)
        db = sqlite3.connect(path)
        values: set[str] = set()
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for row in db.execute(f"SELECT * FROM {table}"):
                values.update(str(v) for v in row if v is not None)
        keys = {r[0] for r in db.execute("SELECT member_key FROM claims")}
        db.close()
        candidates = [v.encode()[:64] for v in values]
        for v in values:
            with contextlib.suppress(ValueError):
                candidates.append(bytes.fromhex(v)[:64])
        candidates.append(path.read_bytes()[:64])
        started = time.perf_counter()
        found = sum(
            1
            for m in ids
            if any(
                hashlib.blake2b(f"acme-ppo\0{m}".encode(), key=k, digest_size=16).hexdigest()
                in keys
                for k in candidates
                if k
            )
        )
        seconds = time.perf_counter() - started
        modes = {
            p.name: oct(p.stat().st_mode & 0o777)
            for p in Path(tmp).iterdir()
            if p.name.startswith("store")
        }
    return {
        "trial": "ids",
        "members": members,
        "ids_recovered": found,
        "keys_tried": len(candidates),
        "search_s": round(seconds, 1),
        "ids_in_output": leaked,
        "modes": modes,
    }


# ---- the command -------------------------------------------------------------------------


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    print(f"== {result['trial']}")
    for key, value in result.items():
        if key == "trial":
            continue
        if isinstance(value, list) and value and isinstance(value[0], dict):
            for row in value:
                print("   ", ", ".join(f"{k} {v}" for k, v in row.items()))
        else:
            print(f"  {key}: {value}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cleanclaim.engine.trials", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("trial", choices=["settle", "damaged", "fuzz", "concurrent", "ids", "all"])
    parser.add_argument("--claims", type=int, help="settle/damaged: claims in the run")
    parser.add_argument("--members", type=int, help="settle/concurrent/ids: members")
    parser.add_argument("--batches", type=int, help="fuzz: batches")
    parser.add_argument("--repeat", type=int, help="concurrent: trials")
    parser.add_argument("--state", help="concurrent: a postgresql:// URL (else SQLite)")
    parser.add_argument("--json", action="store_true", help="one JSON object a trial")
    args = parser.parse_args(argv)
    small = args.trial == "all"

    def given(value: int | None, default: int, quick: int) -> int:
        return value if value is not None else (quick if small else default)

    trials: dict[str, Callable[[], dict[str, Any]]] = {
        "settle": lambda: trial_settle(
            given(args.claims, 100_000, 20_000), given(args.members, 5_000, 1_000)
        ),
        "damaged": lambda: trial_damaged(given(args.claims, 100_000, 20_000)),
        "fuzz": lambda: trial_fuzz(given(args.batches, 2_000, 500)),
        "concurrent": lambda: trial_concurrent(
            members=given(args.members, 40, 20), repeat=given(args.repeat, 3, 2), state=args.state
        ),
        "ids": lambda: trial_ids(given(args.members, 50, 50)),
    }
    names: Iterator[str] = iter(trials) if small else iter([args.trial])
    for name in names:
        _print(trials[name](), args.json)
    return 0


if __name__ == "__main__":
    multiprocessing.freeze_support()
    raise SystemExit(main())

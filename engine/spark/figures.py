"""The figures of docs/scale.md, from one command each (issue 16.1 and 16.3).

    python -m cleanclaim.spark.figures throughput [--claims 20000]
    python -m cleanclaim.spark.figures stores --pg-url postgresql://... [--prior-visits N]

`throughput`: the bench workload (`cleanclaim bench --write-workload`) checked by
`cleanclaim check --workers 1`, `--workers 2` (subprocesses) and by `cleanclaim.spark` in
local[2] (in this process: Spark's start-up timed apart), wall time in one run, the
decisions compared byte for byte. `stores`: `cleanclaim check --state` against a SQLite
and a PostgreSQL store each filled with the same `--prior-visits` decided visits
(`cleanclaim bench --history`'s store), on the same claims of members in the store, wall
and CPU time of the command, decisions compared. Both print the load average before and
after: on a shared machine, read the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TODAY = "2026-12-01"


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _cli(args: list[str], out: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (the child's user + system) and the exit code of
    `cleanclaim ARGS`, its stdout to `out`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with out.open("wb") as handle:
        done = subprocess.run(
            [sys.executable, "-m", "cleanclaim.engine.cli", *args],
            stdout=handle,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def throughput(claims: int, partitions: int) -> dict[str, Any]:
    from cleanclaim.engine.bench import write_workload
    from cleanclaim.engine.engine import EngineRecipe
    from cleanclaim.spark import session
    from cleanclaim.spark.job import run_job

    results: dict[str, Any] = {"claims": claims, "load_before": _load()}
    with tempfile.TemporaryDirectory(prefix="cleanclaim-figures-") as tmp:
        folder = Path(tmp)
        os.environ["CLEANCLAIM_DATA_DIR"] = str(folder / "data")  # no imported CMS data
        workload = write_workload(folder / "workload.ndjson", claims, 14)
        common = ["check", str(workload), "--format", "ndjson", "--today", TODAY]
        for workers in (1, 2):
            wall, cpu, code = _cli(
                [*common, "--workers", str(workers)], folder / f"workers{workers}.ndjson"
            )
            results[f"workers_{workers}"] = {
                "wall_s": wall,
                "cpu_s": cpu,
                "exit": code,
                "claims_per_s": claims / wall,
            }
        started = time.perf_counter()
        spark = session("local[2]", partitions, "cleanclaim-figures")
        spark.sparkContext.setLogLevel("ERROR")
        spark.range(4).rdd.map(lambda x: x).count()  # a first Python worker started
        start_up = time.perf_counter() - started
        recipe = EngineRecipe.of(EngineRecipe(today=dt.date.fromisoformat(TODAY)).build())
        out = folder / "spark.ndjson"
        started = time.perf_counter()
        with out.open("w", encoding="utf-8") as handle:
            code = run_job([str(workload)], recipe, partitions=partitions, stdout=handle)
        wall = time.perf_counter() - started
        results["spark_local_2"] = {
            "start_up_s": start_up,
            "wall_s": wall,
            "exit": code,
            "claims_per_s": claims / wall,
            "partitions": partitions,
        }
        spark.stop()
        expected = (folder / "workers2.ndjson").read_bytes()
        results["same_bytes"] = (
            out.read_bytes() == expected == (folder / "workers1.ndjson").read_bytes()
        )
    results["load_after"] = _load()
    w2 = results["workers_2"]["wall_s"]
    results["ratio_spark_to_workers_2"] = results["spark_local_2"]["wall_s"] / w2
    return results


def stores(pg_url: str, claims: int, prior_visits: int, members: int) -> dict[str, Any]:
    from cleanclaim.engine.bench import _fill_store, synthetic_claim
    from cleanclaim.engine.history import open_store

    results: dict[str, Any] = {
        "claims": claims,
        "prior_visits": prior_visits,
        "members": members,
        "load_before": _load(),
    }
    with tempfile.TemporaryDirectory(prefix="cleanclaim-figures-") as tmp:
        folder = Path(tmp)
        os.environ["CLEANCLAIM_DATA_DIR"] = str(folder / "data")
        os.environ.setdefault("CLEANCLAIM_HISTORY_KEY", os.urandom(16).hex())
        targets = {"sqlite": str(folder / "history.sqlite"), "postgresql": pg_url}
        for name, state in targets.items():
            started = time.perf_counter()
            store = open_store(state)
            store.clear_all()
            _fill_store(store, prior_visits, members, random.Random(7))
            lines = store.counts()["lines"]
            store.close()
            results[f"{name}_fill_s"] = time.perf_counter() - started
            results[f"{name}_lines"] = lines
        rng = random.Random(8)
        workload = folder / "claims.ndjson"
        with workload.open("w", encoding="utf-8") as out:
            for i in range(claims):
                out.write(json.dumps(synthetic_claim(rng, i), separators=(",", ":")) + "\n")
        for name, state in targets.items():
            wall, cpu, code = _cli(
                ["check", str(workload), "--format", "ndjson", "--today", TODAY, "--state", state],
                folder / f"{name}.ndjson",
            )
            results[name] = {
                "wall_s": wall,
                "cpu_s": cpu,
                "exit": code,
                "claims_per_s": claims / wall,
            }
        results["same_bytes"] = (folder / "sqlite.ndjson").read_bytes() == (
            folder / "postgresql.ndjson"
        ).read_bytes()
        flagged = sum(
            '"medicare/therapy' in line or "visit" in line
            for line in (folder / "sqlite.ndjson").read_text().splitlines()
        )
        results["decisions_naming_history_rules"] = flagged
    results["load_after"] = _load()
    results["ratio_postgresql_to_sqlite_wall"] = (
        results["postgresql"]["wall_s"] / results["sqlite"]["wall_s"]
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cleanclaim.spark.figures")
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("throughput", help="local[2] against --workers 2")
    one.add_argument("--claims", type=int, default=20_000)
    one.add_argument("--partitions", type=int, default=4)
    two = sub.add_parser("stores", help="check --state: PostgreSQL against SQLite")
    two.add_argument("--pg-url", required=True)
    two.add_argument("--claims", type=int, default=20_000)
    two.add_argument("--prior-visits", type=int, default=1_000_000)
    two.add_argument("--members", type=int, default=50_000)
    args = parser.parse_args(argv)
    if args.what == "throughput":
        results = throughput(args.claims, args.partitions)
    else:
        results = stores(args.pg_url, args.claims, args.prior_visits, args.members)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

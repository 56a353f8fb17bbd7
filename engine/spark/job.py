"""One checking job on Spark: what `cleanclaim check --engine spark` and
`python -m cleanclaim.spark` (spark-submit) run (docs/scale.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from cleanclaim.spark import check, exit_code, read_ndjson, read_parquet, session, write_decisions

if TYPE_CHECKING:
    from cleanclaim.engine.engine import EngineRecipe

INPUT_FORMATS = ("ndjson", "parquet")
OUTPUT_FORMATS = ("ndjson", "json", "parquet")


class JobError(Exception):
    """The job cannot run as asked (a usage error: exit code 2)."""


def run_job(
    paths: Sequence[str],
    recipe: EngineRecipe,
    *,
    state: str | None = None,
    input_format: str = "ndjson",
    output: str = "ndjson",
    out: str | None = None,
    partitions: int | None = None,
    master: str | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Check the claims at `paths` on Spark; returns `cleanclaim check`'s exit code.

    out: a folder for the decisions (`ndjson` part files in input order, or `parquet`);
    None: the decisions on `stdout` in input order, as `cleanclaim check` prints them
    (`ndjson` or `json`)."""
    if input_format not in INPUT_FORMATS:
        raise JobError(f"input format {input_format!r}: one of {', '.join(INPUT_FORMATS)}")
    if output not in OUTPUT_FORMATS or (out is None) == (output == "parquet"):
        raise JobError(
            "the spark engine prints ndjson or json, and writes ndjson or "
            f"parquet files to --out; not {output!r}" + (f" to {out}" if out else "")
        )
    spark = session(master, partitions)
    claims = (
        read_ndjson(spark, list(paths))
        if input_format == "ndjson"
        else read_parquet(spark, list(paths))
    )
    decisions = check(claims, recipe, state=state, partitions=partitions)  # (computed)
    if out is not None:
        write_decisions(decisions, Path(out), output)
    else:
        _print(decisions, output, stdout)
    return exit_code(decisions)


def _print(decisions: object, output: str, stdout: TextIO | None) -> None:
    import sys

    from pyspark.sql import DataFrame

    assert isinstance(decisions, DataFrame)
    out = stdout if stdout is not None else sys.stdout
    rows = decisions.orderBy("position").select("decision").toLocalIterator()
    if output == "ndjson":
        for row in rows:
            out.write(row[0] + "\n")
    else:  # as `cleanclaim check --format json` writes its array
        first = True
        out.write("[")
        for row in rows:
            text = json.dumps(json.loads(row[0]), indent=2)
            out.write(("\n" if first else ",\n") + text)
            first = False
        out.write("\n]\n" if not first else "]\n")
    out.flush()

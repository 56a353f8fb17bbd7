"""`python -m cleanclaim.spark PATH...` - a checking job for spark-submit (docs/scale.md).

    spark-submit --master yarn .../cleanclaim/spark/__main__.py claims/ --out decisions/

Exit codes as `cleanclaim check`: 0 nothing denied or rejected, 1 something was, 2 usage
error or a pack that does not compile, 3 the engine could not check a claim.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cleanclaim.spark",
        description="Check claims on Apache Spark: one decision per claim, the bytes "
        "`cleanclaim check --format ndjson` writes.",
    )
    parser.add_argument(
        "paths",
        nargs="+",
        help="NDJSON files or folders (or Parquet with "
        "--input-format parquet), any path Spark reads",
    )
    parser.add_argument("--input-format", default="ndjson", choices=["ndjson", "parquet"])
    parser.add_argument(
        "--format",
        dest="output",
        default="ndjson",
        choices=["ndjson", "json", "parquet"],
        help="ndjson/json on stdout; ndjson/parquet files with --out",
    )
    parser.add_argument("--out", help="a folder for the decisions (default: stdout)")
    parser.add_argument("--state", help="the history store: postgresql://... on a cluster")
    parser.add_argument(
        "--policies",
        action="append",
        type=Path,
        help="a folder of policy packs (repeatable; default: the shipped)",
    )
    parser.add_argument("--ptp", type=Path, help="CMS NCCI practitioner PTP file")
    parser.add_argument("--mue", type=Path, help="CMS practitioner MUE file")
    parser.add_argument("--today", help="the date taken as today (YYYY-MM-DD)")
    parser.add_argument("--partitions", type=int, help="partitions of the check")
    parser.add_argument("--master", help="Spark master (default: spark-submit's)")
    args = parser.parse_args(argv)

    import typer

    from cleanclaim.engine.cli import _plugin_selection, build_engine
    from cleanclaim.engine.engine import EngineRecipe
    from cleanclaim.engine.history import StoreError
    from cleanclaim.spark.job import JobError, run_job

    try:
        today = dt.date.fromisoformat(args.today) if args.today else None
    except ValueError:
        parser.error(f"--today {args.today}: not a date YYYY-MM-DD")
    try:
        engine = build_engine(
            args.policies, args.ptp, args.mue, today, plugins=_plugin_selection(None, None)
        )
        recipe = EngineRecipe.of(engine)
        return run_job(
            args.paths,
            recipe,
            state=args.state,
            input_format=args.input_format,
            output=args.output,
            out=args.out,
            partitions=args.partitions,
            master=args.master,
        )
    except typer.Exit as exc:  # build_engine has named the problem on stderr
        return int(exc.exit_code)
    except (JobError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""`cleanclaim denials`: the denial report of X12 835 remittances (docs/denials.md).

Exit codes: 0 the report was written; 2 usage error (a file that does not exist, both
--decisions and --state, a mapping file with errors, a history store that cannot be
opened); 3 part of the input could not be read (a file that is not an 835, a damaged
claim): the report says where and why, and holds everything else.
"""

# No `from __future__ import annotations`: typer reads the annotations (engine/cli.py).

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    html = "html"
    csv = "csv"
    ndjson = "ndjson"


def denials(
    remits: Annotated[
        list[Path],
        typer.Argument(help="X12 835 (005010X221A1) remittance files.", show_default=False),
    ],
    decisions: Annotated[
        Path | None,
        typer.Option(
            "--decisions",
            help="Our decisions for the same claims: the NDJSON or JSON that "
            "`cleanclaim check` wrote.",
        ),
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            help="Or: the claim-history store the claims were checked with (a "
            "SQLite file or a postgresql:// URL); it keeps statuses, not rules.",
        ),
    ] = None,
    output: Annotated[
        ReportFormat,
        typer.Option(
            "--format", help="table, json or html: the report; csv or ndjson: the worklist."
        ),
    ] = ReportFormat.table,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of standard output.")
    ] = None,
    owner: Annotated[
        list[str] | None,
        typer.Option("--owner", help="Worklist rows of this owner only (repeatable)."),
    ] = None,
    show_ids: Annotated[
        bool, typer.Option("--show-ids", help="Show patient names and ids (left out by default).")
    ] = False,
    mapping_file: Annotated[
        Path | None,
        typer.Option("--mapping", help="An adjustment mapping CSV instead of the shipped one."),
    ] = None,
) -> None:
    """Trace every denial of X12 835 remittances to its root cause and owner, and say
    what our pre-submission check caught, missed and over-flagged."""
    from cleanclaim.dsl.vocabulary import OWNERS
    from cleanclaim.engine.denials import MappingError, denial_report, load_mapping

    if decisions is not None and state is not None:
        _usage("give --decisions or --state, not both")
    for path in [*remits, *([decisions] if decisions else [])]:
        if not path.is_file():
            _usage(f"{path}: no such file")
    for name in owner or ():
        if name not in OWNERS:
            _usage(f"--owner {name}: not one of {', '.join(OWNERS)}")
    try:
        mapping = load_mapping(mapping_file)
    except MappingError as exc:
        _usage(str(exc))
    from cleanclaim.engine.history import StoreError, is_url

    if state is not None and not is_url(state) and not Path(state).is_file():
        _usage(f"{state}: no such history store")  # never create an empty one

    try:
        report = denial_report(
            remits, decisions=decisions, state=state, mapping=mapping, show_ids=show_ids
        )
    except StoreError as exc:
        _usage(str(exc))
    if owner:
        report["worklist"] = [r for r in report["worklist"] if r["owner"] in owner]
    _emit(_render(report, output), out)
    partial = report["totals"]["claims_damaged"] or any(
        not f["transactions"] for f in report["files"]
    )
    raise typer.Exit(3 if partial else 0)


def _render(report: dict[str, Any], output: ReportFormat) -> str:
    import json

    from cleanclaim.engine.denials import render

    if output is ReportFormat.json:
        return json.dumps(report, indent=2) + "\n"
    if output is ReportFormat.csv:
        return render.worklist_csv(report["worklist"])
    if output is ReportFormat.ndjson:
        return render.worklist_ndjson(report["worklist"])
    if output is ReportFormat.html:
        from cleanclaim.engine.denials.html import render_html

        return render_html(report)
    return render.render_table(report)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        out.write_text(text, encoding="utf-8")


def _usage(message: str) -> Any:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)

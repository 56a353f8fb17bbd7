"""`cleanclaim data import KIND FILE...` and `cleanclaim data list` (docs/data.md)."""

# No `from __future__ import annotations`: typer reads the annotations at run time.

import json
import re
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

data_app = typer.Typer(
    help="Import the CMS files a billing office downloads (NCCI PTP and MUE, MCD article "
    "lists, MPFS relative values, the Order and Referring file) into the local data "
    "folder that check, serve and test read by default; list what is loaded.",
    no_args_is_help=True,
)


class Kind(StrEnum):
    ptp = "ptp"
    mue = "mue"
    mcd = "mcd"
    mpfs = "mpfs"
    order_referring = "order-referring"


_PART = re.compile(r"-f\d\.txt$", re.IGNORECASE)
DATA_DIR_HELP = (
    "The data folder; default $CLEANCLAIM_DATA_DIR, else "
    "$XDG_DATA_HOME/cleanclaim, else ~/.local/share/cleanclaim."
)
DataDir = Annotated[Path | None, typer.Option("--data-dir", help=DATA_DIR_HELP)]


@data_app.command("import")
def data_import(
    kind: Annotated[
        Kind,
        typer.Argument(
            help="ptp: NCCI practitioner PTP (ccipra-*.TXT, zip, folder; all files of a "
            "quarter together); mue: practitioner MUE csv or zip; mcd: MCD "
            "article_x_icd10_covered.csv, article_x_icd10_noncovered.csv, "
            "article_x_hcpc_code.csv (or the download's zip/folder); mpfs: PPRRVU csv or "
            "RVU zip; order-referring: the CMS Order and Referring csv (or its zip)."
        ),
    ],
    files: Annotated[list[Path], typer.Argument(help="The CMS files as downloaded.")],
    data_dir: DataDir = None,
    effective: Annotated[
        str | None,
        typer.Option(
            "--effective",
            help="Effective date (YYYY-MM-DD) when the file name does not "
            "tell it (mue, mpfs); for order-referring, the day the file was published.",
        ),
    ] = None,
) -> None:
    """Import CMS files into the data folder (atomic, idempotent, versioned).

    The same file again is a no-op. Exit 2 on a damaged file, with file:line; nothing is
    imported then."""
    from cleanclaim.engine.ncci import TableError
    from cleanclaim.engine.refdata.store import DataStore, ImportRecord

    when = None
    if effective is not None:
        try:
            when = date.fromisoformat(effective)
        except ValueError as exc:
            raise typer.BadParameter(f"`{effective}` is not a date YYYY-MM-DD") from exc
    for path in files:
        if not path.exists():
            typer.echo(f"error: {path}: no such file or directory", err=True)
            raise typer.Exit(2)
    store = DataStore(data_dir)
    imported: list[ImportRecord] = []
    unchanged: list[str] = []
    try:
        if kind is Kind.ptp:
            from cleanclaim.engine.refdata.tables import import_ptp

            record = import_ptp(store, files)
            imported, unchanged = ([record], []) if record else ([], ["ptp"])
        elif kind is Kind.mue:
            from cleanclaim.engine.refdata.tables import import_mue

            record = import_mue(store, files, when)
            imported, unchanged = ([record], []) if record else ([], ["mue"])
        elif kind is Kind.mcd:
            from cleanclaim.engine.refdata.mcd import import_mcd

            imported, unchanged = import_mcd(store, files)
        elif kind is Kind.order_referring:
            from cleanclaim.engine.refdata.ordering import import_order_referring

            record = import_order_referring(store, files, when)
            imported, unchanged = ([record], []) if record else ([], ["order-referring"])
        else:
            from cleanclaim.engine.refdata.mpfs import import_mpfs

            record = import_mpfs(store, files, when)
            imported, unchanged = ([record], []) if record else ([], ["mpfs"])
    except (TableError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        typer.echo("nothing was imported", err=True)
        raise typer.Exit(2) from exc
    if imported:
        store.log(imported)
    for record in imported:
        typer.echo(
            f"imported {record.table}: {record.rows} rows from "
            f"{', '.join(record.files)} (sha256 {record.sha256[:12]}) into {store.root}"
        )
        if record.table == "ptp" and len(record.files) == 1 and _PART.search(record.files[0]):
            typer.echo(
                "note: the practitioner PTP table comes in several files (-f1 to "
                "-f4); this import replaced the PTP table with this one file: import "
                "all of a quarter's files in one command",
                err=True,
            )
    for table in unchanged:
        typer.echo(f"{table}: already imported (same sha256); nothing to do")


@data_app.command("list")
def data_list(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    history: Annotated[
        bool, typer.Option("--history", help="Every import ever made, not only what is in use.")
    ] = False,
) -> None:
    """What is loaded: per table the files, sha256, rows, effective dates.

    Exit 1 when nothing is imported, 2 when a table cannot be read."""
    from cleanclaim.engine.refdata.store import DataStore

    store = DataStore(data_dir)
    problems: list[str] = []
    records = store.history() if history else store.current(problems)
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    if as_json:
        typer.echo(
            json.dumps(
                {"data_dir": str(store.root), "imports": [r.to_json() for r in records]}, indent=2
            )
        )
    elif not records:
        typer.echo(
            f"no CMS data imported in {store.root} (the packs use their shipped "
            "samples); see `cleanclaim data import --help`"
        )
    else:
        typer.echo(f"data folder: {store.root}")
        head = ("TABLE", "ROWS", "EFFECTIVE", "FILES", "SHA256", "IMPORTED")
        lines = [head] + [
            (
                r.table,
                str(r.rows),
                (r.effective_from or "?") + (f"..{r.effective_to}" if r.effective_to else ""),
                ", ".join(r.files),
                r.sha256[:12],
                r.imported_at,
            )
            for r in records
        ]
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        for line in lines:
            typer.echo(
                "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            )
        for r in records:
            if r.detail:
                typer.echo(f"  {r.table}: {r.detail}")
    raise typer.Exit(2 if problems else 0 if records else 1)

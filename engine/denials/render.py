"""The denial report for people (a terminal table, with rich) and the worklist as CSV or
NDJSON for the owners who work it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any, Final

__all__ = ["WORKLIST_COLUMNS", "render_table", "worklist_csv", "worklist_ndjson"]

WORKLIST_COLUMNS: Final = (
    "owner",
    "claim_id",
    "line",
    "procedure",
    "payer",
    "payer_claim_number",
    "code",
    "rarc",
    "amount",
    "category",
    "root_cause",
    "reason",
    "next_step",
    "route",
    "checker",
    "where",
)
_ID_COLUMNS: Final = ("patient_id", "patient_name")


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def render_table(report: dict[str, Any], width: int = 120) -> str:
    """The report as text tables: totals, denials by root cause and owner, top reasons,
    what the checker caught, unclassified and damaged claims."""
    from rich.console import Console
    from rich.table import Table

    out = io.StringIO()
    console = Console(
        file=out, width=width, color_system=None, highlight=False, emoji=False, markup=False
    )
    t = report["totals"]
    console.print(
        f"Remittances: {t['claims']} claims ({t['claims_damaged']} damaged),"
        f" {t['service_lines']} service lines; charged {t['charged']}, paid {t['paid']}"
    )
    console.print(
        f"Denied: {t['denied_amount']} in {t['denials']} denials on {t['denied_claims']}"
        f" claims; denial rate {_pct(t['denial_rate'])}, clean-claim rate"
        f" {_pct(t['clean_claim_rate'])} (of {t['rate_claims']} claims;"
        f" {t['claims_unknown']} left out: unclassified)"
    )

    def table(title: str, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
        grid = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
        for column in columns:
            grid.add_column(
                column,
                justify="right" if column in ("count", "claims", "amount", "lines") else "left",
            )
        for row in rows:
            grid.add_row(*("-" if cell is None else str(cell) for cell in row))
        console.print(grid)

    table(
        "Adjusted by category",
        ("category", "count", "claims", "amount"),
        ((r["category"], r["count"], r["claims"], r["amount"]) for r in report["adjusted"]),
    )
    for name in ("root_cause", "owner", "payer", "month"):
        rows = report["denials_by"][name]
        if rows:
            table(
                f"Denials by {name.replace('_', ' ')}",
                (name, "count", "claims", "amount"),
                ((r[name], r["count"], r["claims"], r["amount"]) for r in rows),
            )
    if report["top_reasons"]:
        table(
            "Top denial reasons",
            ("code", "rarc", "root cause", "count", "amount", "label"),
            (
                (r["code"], r["rarc"], r["root_cause"], r["count"], r["amount"], r["label"])
                for r in report["top_reasons"]
            ),
        )
    checker = report["checker"]
    if checker is not None:
        table(
            f"What the checker caught ({checker['basis']} from {checker['decisions']})",
            ("verdict", "count", "claims", "amount"),
            (
                (name, checker[name]["count"], checker[name]["claims"], checker[name]["amount"])
                for name in ("predicted", "missed", "over_flagged", "not_checked")
            ),
        )
        if checker["rules"]:
            table(
                "Rules",
                ("rule", "predicted", "amount", "over-flagged", "paid"),
                (
                    (
                        r["rule"],
                        r["predicted"]["count"],
                        r["predicted"]["amount"],
                        r["over_flagged"]["count"],
                        r["over_flagged"]["amount"],
                    )
                    for r in checker["rules"]
                ),
            )
        if checker["missed_reasons"]:
            table(
                "Missed: rules to write next",
                ("code", "rarc", "root cause", "count", "amount"),
                (
                    (r["code"], r["rarc"], r["root_cause"], r["count"], r["amount"])
                    for r in checker["missed_reasons"]
                ),
            )
        for problem in checker["problems"]:
            console.print(f"decisions: {problem['where']}: {problem['message']}")
    if report["unclassified"]:
        table(
            "Unclassified (never guessed)",
            ("reason", "count", "amount"),
            ((r["reason"], r["count"], r["amount"]) for r in report["unclassified"]),
        )
    if report["damaged"]:
        table(
            "Damaged claims (left out of every figure)",
            ("claim", "where", "problem"),
            (
                (d["claim_id"], p["where"], p["message"])
                for d in report["damaged"]
                for p in d["problems"]
            ),
        )
    for found in report["files"]:
        for problem in found.get("problems", ()):
            console.print(f"{found['file']}: {problem['where']}: {problem['message']}")
        for remittance in found.get("transactions", ()):
            for problem in remittance["problems"]:
                console.print(
                    f"{found['file']}: transaction {remittance['transaction']}:"
                    f" {problem['where']}: {problem['message']}"
                )
        if found.get("error"):
            console.print(f"{found['file']}: {found['error']}")
    counts: dict[str, int] = {}
    for row in report["worklist"]:
        counts[row["owner"]] = counts.get(row["owner"], 0) + 1
    if counts:
        console.print(
            "Worklist: "
            + ", ".join(f"{o} {n}" for o, n in sorted(counts.items()))
            + " (--format csv or ndjson)"
        )
    return out.getvalue()


def _columns(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    shown = rows and any(c in rows[0] for c in _ID_COLUMNS)
    return (*WORKLIST_COLUMNS, *_ID_COLUMNS) if shown else WORKLIST_COLUMNS


def worklist_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = _columns(rows)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [
                ""
                if row.get(c) is None
                else " ".join(row[c])
                if isinstance(row.get(c), list)
                else row[c]
                for c in columns
            ]
        )
    return out.getvalue()


def worklist_ndjson(rows: list[dict[str, Any]]) -> str:
    columns = _columns(rows)
    return "".join(
        json.dumps({c: row.get(c) for c in columns}, separators=(",", ":")) + "\n" for row in rows
    )

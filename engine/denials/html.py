"""The denial report as one self-contained HTML file: plotly charts with plotly.js embedded
(the file opens offline, from a mail attachment or a shared drive) and the summary
tables. Patient names and ids appear only when the report holds them (`--show-ids`)."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any, Final

__all__ = ["CHART_IDS", "render_html"]

# The charts' element ids (the browser test looks for each).
CHART_IDS: Final = ("chart-root-cause-month", "chart-owner", "chart-checker", "chart-reasons")
_WORKLIST_ROWS: Final = 500  # the page shows the largest; the CSV has every row


def _figure(traces: list[Any], title: str, **layout: Any) -> Any:
    import plotly.graph_objects as go

    figure = go.Figure(data=traces)
    figure.update_layout(
        title=title,
        template="plotly_white",
        height=380,
        margin={"l": 60, "r": 20, "t": 60, "b": 60},
        **layout,
    )
    return figure


def _charts(report: dict[str, Any]) -> list[tuple[str, Any]]:
    import plotly.graph_objects as go

    over_time = report["denials_over_time"]
    months = sorted({r["month"] for r in over_time})
    causes = sorted({r["root_cause"] for r in over_time})
    amount = {(r["month"], r["root_cause"]): float(r["amount"]) for r in over_time}
    time_traces = [
        go.Bar(name=cause, x=months, y=[amount.get((m, cause), 0.0) for m in months])
        for cause in causes
    ]
    owners = report["denials_by"]["owner"]
    checker = report["checker"]
    verdicts = ("predicted", "missed", "over_flagged", "not_checked")
    checker_traces = (
        [
            go.Bar(
                x=list(verdicts),
                y=[checker[v]["count"] for v in verdicts],
                text=[checker[v]["amount"] for v in verdicts],
                marker_color=["#2e7d32", "#c62828", "#ef6c00", "#9e9e9e"],
            )
        ]
        if checker
        else []
    )
    reasons = list(reversed(report["top_reasons"]))
    return [
        (
            CHART_IDS[0],
            _figure(
                time_traces,
                "Denied amount by root cause and month of service",
                barmode="stack",
                xaxis_title="month",
                yaxis_title="amount",
                xaxis_type="category",
                showlegend=True,
            ),
        ),
        (
            CHART_IDS[1],
            _figure(
                [
                    go.Bar(
                        x=[r["owner"] for r in owners],
                        y=[float(r["amount"]) for r in owners],
                        text=[r["count"] for r in owners],
                    )
                ],
                "Denied amount by owner",
                yaxis_title="amount",
            ),
        ),
        (
            CHART_IDS[2],
            _figure(
                checker_traces,
                "What the checker caught (denials; over-flagged lines)"
                if checker
                else "What the checker caught: no decisions given (--decisions or --state)",
                yaxis_title="count",
            ),
        ),
        (
            CHART_IDS[3],
            _figure(
                [
                    go.Bar(
                        orientation="h",
                        y=[f"{r['code']} {r['rarc'] or ''}".strip() for r in reasons],
                        x=[r["count"] for r in reasons],
                        text=[r["label"] for r in reasons],
                    )
                ],
                "Top denial reasons",
                xaxis_title="denials",
            ),
        ),
    ]


def _table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('-' if v is None else str(v))}</td>" for v in row)
        + "</tr>"
        for row in rows
    )
    return (
        f"<h2>{html.escape(title)}</h2><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def render_html(report: dict[str, Any]) -> str:
    """The report page (one file, no network)."""
    import plotly.io as pio

    parts: list[str] = []
    for number, (div_id, figure) in enumerate(_charts(report)):
        parts.append(
            pio.to_html(
                figure,
                full_html=False,
                include_plotlyjs=number == 0,
                div_id=div_id,
                default_height="380px",
                config={"displaylogo": False, "responsive": True},
            )
        )
    t = report["totals"]
    summary = (
        f"<p>{t['claims']} claims ({t['claims_damaged']} damaged), {t['service_lines']}"
        f" service lines; charged {t['charged']}, paid {t['paid']}.<br>Denied"
        f" {t['denied_amount']} in {t['denials']} denials on {t['denied_claims']} claims;"
        f" denial rate {_pct(t['denial_rate'])}, clean-claim rate"
        f" {_pct(t['clean_claim_rate'])} (of {t['rate_claims']} claims; {t['claims_unknown']}"
        " left out as unclassified).</p>"
    )
    tables = [
        _table(
            "Adjusted by category",
            ("category", "count", "claims", "amount"),
            ((r["category"], r["count"], r["claims"], r["amount"]) for r in report["adjusted"]),
        ),
        _table(
            "Top denial reasons",
            ("code", "rarc", "root cause", "count", "amount", "label"),
            (
                (r["code"], r["rarc"], r["root_cause"], r["count"], r["amount"], r["label"])
                for r in report["top_reasons"]
            ),
        ),
    ]
    for name in ("root_cause", "payer", "procedure", "rendering_provider", "carc", "rarc"):
        tables.append(
            _table(
                f"Denials by {name.replace('_', ' ')}",
                (name, "count", "claims", "amount"),
                (
                    (r[name], r["count"], r["claims"], r["amount"])
                    for r in report["denials_by"][name]
                ),
            )
        )
    checker = report["checker"]
    if checker:
        tables.append(
            _table(
                "Rules: predicted and over-flagged",
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
        )
        tables.append(
            _table(
                "Missed: rules to write next",
                ("code", "rarc", "root cause", "count", "amount"),
                (
                    (r["code"], r["rarc"], r["root_cause"], r["count"], r["amount"])
                    for r in checker["missed_reasons"]
                ),
            )
        )
    tables.append(
        _table(
            "Unclassified (never guessed)",
            ("reason", "count", "amount"),
            ((r["reason"], r["count"], r["amount"]) for r in report["unclassified"]),
        )
    )
    tables.append(
        _table(
            "Damaged claims (left out of every figure)",
            ("claim", "where", "problem"),
            (
                (d["claim_id"], p["where"], p["message"])
                for d in report["damaged"]
                for p in d["problems"]
            ),
        )
    )
    worklist = report["worklist"]
    ids = bool(worklist) and "patient_id" in worklist[0]
    columns = [
        "owner",
        "claim_id",
        "line",
        "code",
        "amount",
        "reason",
        "next_step",
        "route",
        "checker",
        *(["patient_id", "patient_name"] if ids else []),
    ]
    shown = sorted(worklist, key=lambda r: -float(r["amount"] or 0))[:_WORKLIST_ROWS]
    tables.append(
        _table(
            f"Worklist ({len(shown)} of {len(worklist)} rows, largest first)",
            columns,
            ([r.get(c) for c in columns] for r in shown),
        )
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>cleanclaim denial report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }}
th {{ background: #f3f3f3; }}
.charts {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); }}
</style></head>
<body>
<h1>Denial report</h1>
{summary}
<div class="charts">
{"".join(f'<div class="chart">{p}</div>' for p in parts)}
</div>
{"".join(tables)}
</body></html>
"""

"""The `cleanclaim` command line (typer).

Exit codes of `check`: 0 nothing denied or rejected; 1 at least one claim denied or
rejected; 2 usage error, unreadable input file, or a policy pack that does not compile
(located errors on stderr).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from cleanclaim.dsl.errors import PolicyCompileError
from cleanclaim.engine.decision import Decision

app = typer.Typer(
    name="cleanclaim",
    help="Check US professional claims against payer policy before they are submitted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Check US professional claims against payer policy before they are submitted."""


class OutputFormat(StrEnum):
    json = "json"
    ndjson = "ndjson"
    table = "table"


def _date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"`{value}` is not a date YYYY-MM-DD") from exc


def _payer_map(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path}: the payer map must be a mapping of id to pack")
    return {str(k): str(v) for k, v in data.items()}


def build_engine(policies: list[Path] | None, ptp: Path | None, mue: Path | None,
                 today: dt.date | None) -> Any:
    """An Engine for the CLI's options; exits 2 with located errors if a pack is broken."""
    from cleanclaim.engine.engine import Engine

    tables = {}
    if ptp is not None:
        tables["ncci-ptp"] = ptp
    if mue is not None:
        tables["ncci-mue"] = mue
    for path in (ptp, mue):
        if path is not None and not path.exists():
            typer.echo(f"error: {path}: no such file", err=True)
            raise typer.Exit(2)
    try:
        return Engine(policies or None, tables=tables, today=today)
    except PolicyCompileError as exc:
        typer.echo(exc.render(), err=True)
        raise typer.Exit(2) from exc


@app.command()
def check(
    paths: Annotated[list[Path], typer.Argument(
        help="Claim files: JSON, NDJSON, X12 837P, FHIR R4.")],
    policies: Annotated[list[Path] | None, typer.Option(
        "--policies",
        help="A folder of policy packs (repeatable); default: the shipped packs.")] = None,
    output: Annotated[OutputFormat, typer.Option(
        "--format", help="json: an array; ndjson: one decision a line; table: for people.")
    ] = OutputFormat.json,
    state: Annotated[Path | None, typer.Option(
        "--state", help="Claim-history store (SQLite).")] = None,
    ptp: Annotated[Path | None, typer.Option(
        "--ptp", help="CMS NCCI practitioner PTP file, replacing the packs' sample table.")] = None,
    mue: Annotated[Path | None, typer.Option(
        "--mue", help="CMS practitioner MUE file, replacing the packs' sample table.")] = None,
    today: Annotated[str | None, typer.Option(
        "--today", help="The date taken as today (YYYY-MM-DD): received date of claims "
        "that carry none.")] = None,
    payer_map: Annotated[Path | None, typer.Option(
        "--payer-map", help="YAML/JSON mapping of X12/FHIR payer ids to pack ids.")] = None,
) -> None:
    """Check claims and print one decision per claim."""
    from cleanclaim.engine.inputs import InputFileError, RawClaim
    from cleanclaim.engine.reading import iter_inputs

    if state is not None:
        typer.echo("note: --state (claim history) is not implemented yet; "
                   "checking without history", err=True)
    engine = build_engine(policies, ptp, mue, _date(today))
    for path in paths:
        if not path.exists():
            typer.echo(f"error: {path}: no such file", err=True)
            raise typer.Exit(2)
    file_errors = 0
    worst = 0

    def decisions() -> Iterable[Decision]:
        nonlocal file_errors
        for item in iter_inputs(paths, _payer_map(payer_map)):
            if isinstance(item, InputFileError):
                file_errors += 1
                typer.echo(f"error: {item}", err=True)
                continue
            assert isinstance(item, RawClaim)
            yield engine.check_raw(item)

    out = sys.stdout
    for decision in _write(decisions(), output, out):
        if decision.status in ("deny", "reject"):
            worst = 1
    out.flush()
    if file_errors:
        raise typer.Exit(2)
    raise typer.Exit(worst)


@app.command()
def bench(
    claims: Annotated[int, typer.Option(help="Synthetic claims in the workload.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed of the workload.")] = 7,
    cold_start: Annotated[bool, typer.Option(help="Also time a cold `check`.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Measure throughput on a seeded synthetic workload (one core)."""
    from cleanclaim.engine.bench import format_results, run_bench

    results = run_bench(claims, seed, cold_start)
    typer.echo(json.dumps(results, indent=2) if as_json else format_results(results))


@app.command()
def explain(
    claim: Annotated[Path, typer.Argument(help="A file holding one claim (JSON).")],
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule id.")] = None,
    output: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
    policies: Annotated[list[Path] | None, typer.Option(
        "--policies", help="A folder of policy packs (repeatable).")] = None,
    today: Annotated[str | None, typer.Option("--today", help="Today (YYYY-MM-DD).")] = None,
) -> None:
    """Explain a claim's decision: every rule considered, fired or not, and why."""
    from cleanclaim.dsl.explain import render_text

    engine = build_engine(policies, None, None, _date(today))
    try:
        data = json.loads(claim.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {claim}: {exc}", err=True)
        raise typer.Exit(2) from exc
    if isinstance(data, list):
        if len(data) != 1:
            typer.echo(f"error: {claim}: explain takes one claim; the file has {len(data)}",
                       err=True)
            raise typer.Exit(2)
        data = data[0]
    decision, traces = engine.explain(data, rule)
    if rule is not None and not traces:
        known = {r.id for p in engine.programs.values() for r in p.rules}
        if rule not in known:
            typer.echo(f"error: no rule `{rule}` in the loaded packs", err=True)
            raise typer.Exit(2)
    if output == "json":
        typer.echo(json.dumps({"decision": decision.to_json(),
                               "trace": [t.to_json() for t in traces]}, indent=2))
    else:
        typer.echo(render_text(decision.claim_id, traces), nl=False)
        typer.echo(f"Decision: {decision.status}")
        for f in decision.findings:
            where = f"line {f.line}" if f.line is not None else "claim"
            typer.echo(f"  {where}: {f.group}-{f.carc} {' '.join(f.rarc)} "
                       f"({f.root_cause}, {f.owner}) {f.message}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on; beyond loopback "
                                      "(127.0.0.1, ::1, localhost) a token is required.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8080,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="CLEANCLAIM_TOKEN", show_envvar=True,
        help="Bearer token required on /v1/* (prefer the environment variable).")] = None,
    policies: Annotated[list[Path] | None, typer.Option(
        "--policies",
        help="A folder of policy packs (repeatable); default: the shipped packs.")] = None,
    max_body: Annotated[int, typer.Option(
        "--max-body", help="Largest /v1/check body and batch line, in bytes.")
    ] = 10 * 1024 * 1024,
    timeout: Annotated[float, typer.Option(
        help="Seconds a client may stay silent before it is dropped.")] = 30.0,
    max_connections: Annotated[int, typer.Option(
        "--max-connections", help="Connections served at once; more get 503.")] = 128,
    ptp: Annotated[Path | None, typer.Option(
        "--ptp", help="CMS NCCI practitioner PTP file, replacing the packs' sample table.")] = None,
    mue: Annotated[Path | None, typer.Option(
        "--mue", help="CMS practitioner MUE file, replacing the packs' sample table.")] = None,
) -> None:
    """Serve the HTTP API (docs/api.md) until interrupted."""
    from cleanclaim.engine.server import ServerConfig, bind_problem, run

    problem = bind_problem(host, token or None)
    if problem is not None:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2)
    if max_body < 1 or timeout <= 0 or max_connections < 1:
        typer.echo("error: --max-body, --timeout and --max-connections must be positive",
                   err=True)
        raise typer.Exit(2)
    engine = build_engine(policies, ptp, mue, None)
    config = ServerConfig(host=host, port=port, token=token or None, max_body=max_body,
                          timeout=timeout, max_connections=max_connections)
    try:
        run(engine, config)
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from exc


def _write(decisions: Iterable[Decision], output: OutputFormat, out: TextIO
           ) -> Iterable[Decision]:
    if output is OutputFormat.ndjson:
        for d in decisions:
            out.write(json.dumps(d.to_json(), separators=(",", ":")) + "\n")
            yield d
    elif output is OutputFormat.json:
        out.write("[")
        first = True
        for d in decisions:
            out.write(("\n" if first else ",\n") + json.dumps(d.to_json(), indent=2))
            first = False
            yield d
        out.write("\n]\n" if not first else "]\n")
    else:
        for d in decisions:
            out.write(render_table(d))
            yield d


def render_table(d: Decision) -> str:
    """One claim as a small table: status, then each finding's line, codes, root cause,
    owner and message."""
    lines = [f"{d.claim_id or '(no claim id)'}  {d.status.upper()}"]
    if not d.findings:
        lines.append("  no findings")
    rows = [("line", "codes", "root cause", "owner", "message")]
    for f in d.findings:
        codes = f"{f.group}-{f.carc}" + ("".join(f" {r}" for r in f.rarc))
        rows.append((str(f.line) if f.line is not None else "-", codes, f.root_cause, f.owner,
                     f.message))
    if d.findings:
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            cells = [row[i].ljust(widths[i]) for i in range(4)]
            lines.append("  " + "  ".join(cells) + "  " + row[4])
    return "\n".join(lines) + "\n\n"


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

"""The `cleanclaim` command line (typer).

Exit codes of `check`: 0 nothing denied or rejected; 1 at least one claim denied or
rejected; 2 usage error (an input that does not exist, a bad option or history store) or
a policy pack that does not compile (located errors on stderr); 3 the run failed for
part of its input: an input file could not be read, or the engine could not check a
claim (`engine/internal-error`) - each has its record in the output, and every other
claim its decision.
"""

# No `from __future__ import annotations` here: typer reads every command's annotations
# on each run, and string annotations would be compiled and evaluated one by one (about
# 30 ms of a cold start).

import contextlib
import datetime as dt
import json
import sys
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from cleanclaim.dsl.errors import PolicyCompileError
from cleanclaim.engine.cli_startup import defer_missing_values
from cleanclaim.engine.decision import Decision, ndjson_bytes
from cleanclaim.engine.refdata.cli import DataDir, data_app

defer_missing_values()  # typer's coercion of options not given: engine/cli_startup.py
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


def build_engine(
    policies: list[Path] | None,
    ptp: Path | None,
    mue: Path | None,
    today: dt.date | None,
    plugins: Any = None,
    data_dir: Path | None = None,
) -> Any:
    """The Engine for the CLI's options, built from one `EngineRecipe` (the same recipe
    `Engine()`, the server and the workers build from); exits 2 with located errors if a
    pack is broken. `plugins`: a `plugins.PluginSelection` to load (default: no plugin);
    a plugin that cannot be loaded exits 2 naming it. The CMS data imported into the data
    folder (`data_dir`, default: engine/refdata's) is used; --ptp/--mue win over it."""
    from cleanclaim.engine.engine import EngineRecipe
    from cleanclaim.engine.refdata.store import DataStore

    host = _load_plugins(plugins) if plugins is not None else None
    overrides = DataStore(data_dir).table_overrides()
    if ptp is not None:
        overrides["ncci-ptp"] = ptp
    if mue is not None:
        overrides["ncci-mue"] = mue
    tables = sorted(overrides.items())
    for path in (ptp, mue):
        if path is not None and not path.exists():
            typer.echo(f"error: {path}: no such file", err=True)
            raise typer.Exit(2)
    names = tuple(p.name for p in host.plugins) if host is not None else ()
    recipe = EngineRecipe(tuple(policies or ()), tuple(tables), today, names)
    try:
        return recipe.build(host)
    except PolicyCompileError as exc:
        typer.echo(exc.render(), err=True)
        raise typer.Exit(2) from exc


def _warn_sample_tables(engine: Any) -> None:
    """One warning per run when a pack checks against a shipped NCCI sample table."""
    from cleanclaim.engine.ncci import sample_warning

    warning = sample_warning(
        table for program in engine.programs.values() for table in program.tables.values()
    )
    if warning is not None:
        typer.echo(f"warning: {warning}", err=True)


def _load_plugins(selection: Any) -> Any:
    """The selected plugins loaded, or exit 2 naming each one that cannot be."""
    from cleanclaim.engine.plugins import PluginError, load_plugins

    try:
        return load_plugins(selection)
    except PluginError as exc:
        for name, message in exc.problems:
            typer.echo(f"error: plugin `{name}` {message}", err=True)
        typer.echo(
            "(run without a plugin: --no-plugin NAME, CLEANCLAIM_PLUGINS or "
            "cleanclaim.toml [plugins]; `cleanclaim plugins` lists them)",
            err=True,
        )
        raise typer.Exit(2) from exc


def _worker_options(engine: Any) -> Any:
    """How --workers processes rebuild the engine: its recipe (same packs, tables, today
    and plugins)."""
    from cleanclaim.engine.engine import EngineRecipe

    return EngineRecipe.of(engine)


def _history_run(
    engine: Any,
    state: str | None,
    paths: list[Path],
    payer_map: dict[str, str],
    workers: int,
    limits: dict[Path, int] | None = None,
) -> Any:
    """Phase 1 of a check with claim history (a store at `--state`, or packs that count
    history): every readable claim of the input recorded. None when no history is used."""
    from cleanclaim.engine.batch import InputReader
    from cleanclaim.engine.history import HistoryBatch, StoreError, counts_history
    from cleanclaim.engine.inputs import InputFileError

    if state is None and not counts_history(engine):
        return None
    try:
        run = HistoryBatch(engine, state, workers)
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    # Phase 1 in a pass of its own, so that memory stays flat however large the input:
    # the second pass (check_batch) reads the input again and checks against the store.
    try:
        run.record(
            item
            for item in InputReader(paths, payer_map, limits)
            if not isinstance(item, InputFileError)
        )
    except BaseException:
        run.close()
        raise
    return run


def _history_options(history: Any, engine: Any) -> Any:
    """How workers build their engine: reading the run's history store when there is one."""
    options = _worker_options(engine)
    return options if history is None else history.builder(options)


def _plugin_selection(enable: list[str] | None, disable: list[str] | None) -> Any:
    """The configured plugin selection (cleanclaim.toml, CLEANCLAIM_PLUGINS) with the
    command line's --plugin / --no-plugin on top."""
    from cleanclaim.engine.plugins import PluginError, PluginSelection

    try:
        return PluginSelection.from_config().narrowed(enable, disable or ())
    except PluginError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def check(
    paths: Annotated[
        list[Path], typer.Argument(help="Claim files: JSON, NDJSON, X12 837P, FHIR R4.")
    ],
    policies: Annotated[
        list[Path] | None,
        typer.Option(
            "--policies", help="A folder of policy packs (repeatable); default: the shipped packs."
        ),
    ] = None,
    output: Annotated[
        OutputFormat,
        typer.Option(
            "--format", help="json: an array; ndjson: one decision a line; table: for people."
        ),
    ] = OutputFormat.json,
    # (a str, not a Path: a Path folds the `//` of a postgresql:// URL)
    state: Annotated[
        str | None,
        typer.Option("--state", help="Claim-history store: a SQLite file, or a postgresql:// URL."),
    ] = None,
    ptp: Annotated[
        Path | None,
        typer.Option(
            "--ptp", help="CMS NCCI practitioner PTP file, replacing the packs' sample table."
        ),
    ] = None,
    mue: Annotated[
        Path | None,
        typer.Option("--mue", help="CMS practitioner MUE file, replacing the packs' sample table."),
    ] = None,
    today: Annotated[
        str | None,
        typer.Option(
            "--today",
            help="The date taken as today (YYYY-MM-DD): received date of claims that carry none.",
        ),
    ] = None,
    payer_map: Annotated[
        Path | None,
        typer.Option("--payer-map", help="YAML/JSON mapping of X12/FHIR payer ids to pack ids."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=0,
            help="Processes that check claims: 1 checks in this process; "
            "0 = one per core. Same decisions in the same order whatever the number.",
        ),
    ] = 1,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Show claims done and claims/s on stderr; default: "
            "when stderr is a terminal and the decisions go to a file.",
        ),
    ] = None,
    plugin: Annotated[
        list[str] | None,
        typer.Option(
            "--plugin",
            help="Run only these plugins (repeatable); default: every installed "
            "plugin, or what cleanclaim.toml / CLEANCLAIM_PLUGINS select.",
        ),
    ] = None,
    no_plugin: Annotated[
        list[str] | None, typer.Option("--no-plugin", help="Do not run this plugin (repeatable).")
    ] = None,
    data_dir: DataDir = None,
    on: Annotated[
        str,
        typer.Option(
            "--engine",
            help="local: check on this machine (--workers); spark: on Apache "
            "Spark (NDJSON input; pip install 'cleanclaim[spark]'; docs/scale.md).",
        ),
    ] = "local",
) -> None:
    """Check claims and print one decision per claim.

    Exit 0: nothing denied or rejected; 1: a claim denied or rejected; 2: usage error or
    a policy that does not compile; 3: the run failed for part of its input (a file that
    cannot be read, a claim the engine could not check): its record is in the output."""
    import tempfile

    from cleanclaim.engine.batch import InputReader, resolve_workers

    engine = build_engine(
        policies,
        ptp,
        mue,
        _date(today),
        plugins=_plugin_selection(plugin, no_plugin),
        data_dir=data_dir,
    )
    _warn_sample_tables(engine)
    for path in paths:
        if str(path) != "-" and not path.exists():
            typer.echo(f"error: {path}: no such file", err=True)
            raise typer.Exit(2)
        if str(path) != "-" and path.is_dir():
            # (an empty argument reaches here as `.`: typer makes Path("") of it)
            typer.echo(f"error: {path}: a folder, not a claim file", err=True)
            raise typer.Exit(2)
    if on != "local":
        raise typer.Exit(_check_on_spark(engine, paths, state, output, workers, on))
    with tempfile.TemporaryDirectory(prefix="cleanclaim-input-") as spool_dir:
        # Standard input, pipes and FIFOs can be read only once: they are copied to a
        # file first, since a run reads its input twice (phase 1, then the checking).
        names: dict[str, str] = {}
        files = [_spooled(path, Path(spool_dir), i, names) for i, path in enumerate(paths)]
        # Each file is read up to its size now: lines appended during the run are left
        # for the next run, never checked without being recorded.
        limits = _sizes(files)
        history = _history_run(
            engine, state, files, _payer_map(payer_map), resolve_workers(workers), limits
        )
        reader = InputReader(files, _payer_map(payer_map), limits)
        worst = _check_files(engine, reader, history, output, workers, progress, names)
    raise typer.Exit(worst)


def _check_on_spark(
    engine: Any, paths: list[Path], state: str | None, output: "OutputFormat", workers: int, on: str
) -> int:
    """`check --engine spark`: the same decisions, checked by `cleanclaim.spark` (NDJSON
    files; Spark's master from spark-submit or its configuration, else local[*]).
    Returns the exit code."""
    from cleanclaim.engine.reading import NDJSON_SUFFIXES

    problem = None
    if on != "spark":
        problem = f"--engine {on}: local or spark"
    elif output is OutputFormat.table:
        problem = "--engine spark prints ndjson or json"
    elif workers != 1:
        problem = "--engine spark: Spark's executors are the workers (no --workers)"
    elif any(str(p) == "-" or p.suffix.lower() not in NDJSON_SUFFIXES for p in paths):
        problem = "--engine spark reads NDJSON files (.ndjson, .jsonl)"
    if problem is not None:
        typer.echo(f"error: {problem}", err=True)
        return 2
    try:
        from cleanclaim.spark.job import run_job
    except ImportError as exc:  # pyspark is an extra
        typer.echo(
            f"error: --engine spark needs pyspark (pip install 'cleanclaim[spark]'): {exc}",
            err=True,
        )
        return 2
    from cleanclaim.engine.engine import EngineRecipe
    from cleanclaim.engine.history import StoreError
    from cleanclaim.spark.job import JobError

    try:
        return run_job(
            [str(p) for p in paths], EngineRecipe.of(engine), state=state, output=output.value
        )
    except (JobError, StoreError) as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2


def _check_files(
    engine: Any,
    reader: Any,
    history: Any,
    output: "OutputFormat",
    workers: int,
    progress: bool | None,
    names: dict[str, str],
) -> int:
    """Phase 2 of `check`: every claim's decision, and every unreadable file's record, in
    input order; returns the exit code."""
    from functools import partial

    from cleanclaim.engine import progress as progress_line
    from cleanclaim.engine.batch import ClaimSource, FileProblem, check_batch, resolve_workers
    from cleanclaim.engine.inputs import InputFileError

    out = sys.stdout
    bar = (
        progress_line.Progress(sys.stderr, total_bytes=reader.total_bytes)
        if progress_line.wanted(progress, out, sys.stderr)
        else None
    )
    worst = 0

    def say(message: str) -> None:
        if bar is not None:
            bar.note(message)
        else:
            typer.echo(message, err=True)

    def claims() -> Iterator[ClaimSource]:
        for item in reader:
            if isinstance(item, InputFileError):
                say(f"error: {_shown(str(item), names)}")
                yield FileProblem(
                    -1,
                    _shown(item.source, names),
                    getattr(item, "where", None),
                    _shown(item.message, names),
                )
                continue
            yield _named(item, names) if names else item

    # Decisions are encoded where they are checked (in the workers, with --workers N),
    # so that the parent only moves text.
    encoded: Iterable[tuple[str, str, Any, bool]] = check_batch(
        claims(),
        partial(_encode, output),
        engine=engine,
        options=_history_options(history, engine),
        workers=resolve_workers(workers),
        on_warning=lambda message: say(f"warning: {message}"),
    )
    if history is None:  # (a history run refuses repeated claim ids in its phase 1)
        encoded = _first_ids_only(encoded, output)
    try:
        for done, (status, outcome, failed) in enumerate(_write(encoded, output, out), start=1):
            if failed:
                worst = 3
            elif status in ("deny", "reject") and worst < 1:
                worst = 1
            if history is not None and outcome is not None:
                history.decide(outcome)
            if bar is not None:
                bar.update(done, reader.bytes_read)
    finally:
        if bar is not None:
            bar.close()
        if history is not None:
            history.close()
    out.flush()
    return worst


def _first_ids_only(
    encoded: Iterable[tuple[str, str, Any, bool]], output: "OutputFormat"
) -> Iterator[tuple[str, str, Any, bool]]:
    """A run without history: a claim id that came earlier in the run rejects the later
    claim (`engine/duplicate-claim-id`), as `Engine.check_many` and history runs do."""
    from cleanclaim.engine.history import DUPLICATE_ID, refusal_decision

    seen: set[str] = set()
    for status, text, outcome, failed in encoded:
        if outcome is not None:
            key = f"{outcome[0]}\0{outcome[1]}"
            if key in seen:
                given = {} if output is OutputFormat.table else json.loads(text)
                refused = refusal_decision(outcome[1], DUPLICATE_ID, given.get("position"))
                refused.origin = given.get("origin")  # still the claim's place in its file
                yield _encode(output, refused)
                continue
            seen.add(key)
        yield status, text, outcome, failed


def _named(item: Any, names: dict[str, str]) -> Any:
    """A claim read from a spooled copy (standard input, a pipe) with the name given on
    the command line in its origin (`-` for standard input), not the copy's path."""
    import dataclasses

    origin = getattr(item, "origin", None)
    if origin is None or origin.get("file") not in names:
        return item
    if isinstance(getattr(type(item), "origin", None), property):  # a ClaimLine
        return dataclasses.replace(item, file=names[origin["file"]])
    return dataclasses.replace(item, origin={**origin, "file": names[origin["file"]]})


def _shown(text: str, names: dict[str, str]) -> str:
    for spooled, original in names.items():
        text = text.replace(spooled, original)
    return text


def _spooled(path: Path, folder: Path, index: int, names: dict[str, str]) -> Path:
    """`path`, or - for standard input (`-`), a pipe, a FIFO or a device - a copy of what
    it holds in `folder` (under the same name, so that its format is known by suffix)."""
    import shutil

    if str(path) != "-" and path.is_file():
        return path
    name = "stdin" if str(path) == "-" else path.name or "input"
    copy = folder / str(index) / name
    copy.parent.mkdir()
    with copy.open("wb") as out:
        if str(path) == "-":
            shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
        else:
            with path.open("rb") as source:
                shutil.copyfileobj(source, out, 1 << 20)
    names[str(copy)] = str(path)
    return copy


def _sizes(paths: list[Path]) -> dict[Path, int]:
    sizes = {}
    for path in paths:
        with contextlib.suppress(OSError):
            sizes[path] = path.stat().st_size
    return sizes


@app.command()
def bench(
    claims: Annotated[int, typer.Option(help="Synthetic claims in the workload.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed of the workload.")] = 14,
    cold_start: Annotated[bool, typer.Option(help="Also time a cold `check`.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    history: Annotated[
        bool,
        typer.Option(
            "--history",
            help="Instead: throughput with claim history (1,000,000 prior visits "
            "in a store) against throughput without it.",
        ),
    ] = False,
    prior_visits: Annotated[
        int,
        typer.Option(
            "--prior-visits",
            help="Visits in the store of the --state row (with --history: "
            "of its store); 0 leaves the row out.",
        ),
    ] = 1_000_000,
    serve: Annotated[
        bool, typer.Option(help="Also measure `serve` (/v1/check p99 at concurrency 8).")
    ] = True,
    write_workload: Annotated[
        Path | None,
        typer.Option(
            "--write-workload",
            help="Instead: write the issue-14 workload (--claims claims, "
            "--seed) as an NDJSON file (docs/performance.md).",
        ),
    ] = None,
) -> None:
    """Measure throughput on a seeded synthetic workload (one core)."""
    from cleanclaim.engine.bench import format_results, run_bench

    if write_workload is not None:
        from cleanclaim.engine.bench import write_workload as write

        write(write_workload, claims, seed)
        typer.echo(f"wrote {claims:,} claims to {write_workload}")
        return

    if history:
        from cleanclaim.engine.bench import format_history_results, run_history_bench

        figures = run_history_bench(
            claims, seed, prior_visits=prior_visits, members=max(1, prior_visits // 20)
        )
        typer.echo(json.dumps(figures, indent=2) if as_json else format_history_results(figures))
        return
    results = run_bench(claims, seed, cold_start, prior_visits=prior_visits, serve=serve)
    typer.echo(json.dumps(results, indent=2) if as_json else format_results(results))


@app.command()
def explain(
    claim: Annotated[
        Path,
        typer.Argument(
            help="A claim file: one claim, or several (JSON array, NDJSON, X12, FHIR) with --claim."
        ),
    ],
    claim_id: Annotated[
        str | None,
        typer.Option(
            "--claim",
            help="The claim of the file to explain, checked among the file's "
            "other claims (they count as in `check`).",
        ),
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            help="A claim-history store (SQLite) to explain the claim against; "
            "read, never changed.",
        ),
    ] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule id.")] = None,
    only_fired: Annotated[
        bool, typer.Option("--only-fired", help="Only the rules that fired.")
    ] = False,
    fails: Annotated[
        bool,
        typer.Option(
            "--fails",
            help="Also one line per rule that did not fire: the condition that was "
            "false (as opa eval --explain=fails).",
        ),
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Every rule considered, each condition with the values it read."
        ),
    ] = False,
    output: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
    policies: Annotated[
        list[Path] | None, typer.Option("--policies", help="A folder of policy packs (repeatable).")
    ] = None,
    today: Annotated[str | None, typer.Option("--today", help="Today (YYYY-MM-DD).")] = None,
) -> None:
    """Explain a claim's decision: the rules that fired, with the values they read, the
    services their counters counted, the codes' labels and the policy reference."""
    from cleanclaim.dsl.explain import render_text

    if sum((only_fired, fails, full)) > 1:
        typer.echo("error: --only-fired, --fails and --full exclude each other", err=True)
        raise typer.Exit(2)
    mode = "only-fired" if only_fired else "fails" if fails else "full" if full else "short"
    # The engine `check` builds (plugins included), so the decision explained is check's.
    engine = build_engine(policies, None, None, _date(today), plugins=_plugin_selection(None, None))
    decision, traces = _explained(engine, claim, claim_id, state, rule)
    if rule is not None and not traces:
        known = {r.id for p in engine.programs.values() for r in p.rules}
        if rule not in known:
            typer.echo(f"error: no rule `{rule}` in the loaded packs", err=True)
            raise typer.Exit(2)
    if output == "json":
        typer.echo(
            json.dumps(
                {"decision": decision.to_json(), "trace": [t.to_json() for t in traces]}, indent=2
            )
        )
    else:
        typer.echo(render_text(decision.claim_id, traces, mode), nl=False)
        typer.echo(f"Decision: {decision.status}")
        for f in decision.findings:
            where = f"line {f.line}" if f.line is not None else "claim"
            typer.echo(
                f"  {where}: {f.group}-{f.carc} {' '.join(f.rarc)} "
                f"({f.root_cause}, {f.owner}) {f.message}"
            )


def _explained(
    engine: Any, path: Path, claim_id: str | None, state: str | None, rule: str | None
) -> tuple[Any, list[Any]]:
    """The decision and trace of the claim `explain` was asked about: the file's only
    claim, or `claim_id` among the file's claims; in a run with history (the file's
    claims, and a copy of the `--state` store) when there is more than one claim, a
    store, or a pack that counts history."""
    import shutil
    import tempfile

    from cleanclaim.engine.history import StoreError, counts_history, open_store
    from cleanclaim.engine.reading import read_claims

    if not path.is_file():
        typer.echo(f"error: {path}: no such file", err=True)
        raise typer.Exit(2)
    try:
        items = list(read_claims(path, {}))
    except Exception as exc:  # InputFileError and readers' failures: a usage error here
        typer.echo(f"error: {path}: {exc}", err=True)
        raise typer.Exit(2) from exc
    ids = [
        raw.claim_id or (raw.data.get("claim_id") if isinstance(raw.data, dict) else None)
        for raw in items
    ]
    if claim_id is None:
        if len(items) != 1:
            typer.echo(
                f"error: {path}: the file has {len(items)} claims: name one with "
                f"--claim ID ({', '.join(str(i) for i in ids[:10] if i)})",
                err=True,
            )
            raise typer.Exit(2)
        position = 0
    elif claim_id in ids:
        position = ids.index(claim_id)
    else:
        typer.echo(
            f"error: {path}: no claim `{claim_id}`"
            + (f" (did you mean `{near}`?)" if (near := did_you_mean_id(claim_id, ids)) else ""),
            err=True,
        )
        raise typer.Exit(2)
    if len(items) == 1 and state is None and not counts_history(engine):
        raw = items[0]
        if raw.data is None or raw.problems:
            return engine.unreadable(raw), []
        return engine.explain(raw.data, rule)  # type: ignore[no-any-return]
    with tempfile.TemporaryDirectory(prefix="cleanclaim-explain-") as folder:
        store = None
        if state is not None:
            if "://" in state or not Path(state).is_file():
                typer.echo(
                    f"error: {state}: explain reads a SQLite history store that exists", err=True
                )
                raise typer.Exit(2)
            copy = Path(folder) / "state.sqlite"  # explaining never changes the store
            shutil.copyfile(state, copy)
            if Path(state + ".key").is_file():  # the store's key file goes with it
                shutil.copyfile(state + ".key", str(copy) + ".key")
            try:
                store = open_store(copy)
            except StoreError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from exc
        try:
            found = engine.explain_in_run(
                items, rule=rule, history=store, position=items[position].position
            )
        finally:
            if store is not None:
                store.close()
    if found is None:  # the claim could not be read: its reject, without a trace
        raw = items[position]
        return (
            engine.unreadable(raw) if raw.data is None or raw.problems else engine.check(raw.data)
        ), []
    decision, traces = found
    return decision, traces


def did_you_mean_id(wanted: str, ids: list[Any]) -> str | None:
    import difflib

    close = difflib.get_close_matches(wanted, [str(i) for i in ids if i], n=1)
    return close[0] if close else None


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on; beyond loopback "
            "(127.0.0.1, ::1, localhost) a token is required."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8080,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="CLEANCLAIM_TOKEN",
            show_envvar=True,
            help="Bearer token required on /v1/* (prefer the environment variable).",
        ),
    ] = None,
    policies: Annotated[
        list[Path] | None,
        typer.Option(
            "--policies", help="A folder of policy packs (repeatable); default: the shipped packs."
        ),
    ] = None,
    max_body: Annotated[
        int, typer.Option("--max-body", help="Largest /v1/check body and batch line, in bytes.")
    ] = 10 * 1024 * 1024,
    timeout: Annotated[
        float, typer.Option(help="Seconds a client may stay silent before it is dropped.")
    ] = 30.0,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections", help="Connections served at once (per process); more get 503."
        ),
    ] = 128,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Server processes sharing the port, one event loop (one core) "
            "each; the engine is built once, before they start.",
        ),
    ] = 1,
    ptp: Annotated[
        Path | None,
        typer.Option(
            "--ptp", help="CMS NCCI practitioner PTP file, replacing the packs' sample table."
        ),
    ] = None,
    mue: Annotated[
        Path | None,
        typer.Option("--mue", help="CMS practitioner MUE file, replacing the packs' sample table."),
    ] = None,
    data_dir: DataDir = None,
    plugin: Annotated[
        list[str] | None,
        typer.Option("--plugin", help="Run only these plugins (repeatable), as for `check`."),
    ] = None,
    no_plugin: Annotated[
        list[str] | None, typer.Option("--no-plugin", help="Do not run this plugin (repeatable).")
    ] = None,
) -> None:
    """Serve the HTTP API (docs/api.md) until interrupted: the same engine as `check`."""
    from cleanclaim.engine.server import ServerConfig, bind_problem, run

    problem = bind_problem(host, token or None)
    if problem is not None:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2)
    if max_body < 1 or timeout <= 0 or max_connections < 1 or workers < 1:
        typer.echo(
            "error: --max-body, --timeout, --max-connections and --workers must be positive",
            err=True,
        )
        raise typer.Exit(2)
    if workers > 1 and sys.platform == "win32":
        typer.echo("error: --workers needs a system with fork (Linux, macOS)", err=True)
        raise typer.Exit(2)
    engine = build_engine(
        policies, ptp, mue, None, data_dir=data_dir, plugins=_plugin_selection(plugin, no_plugin)
    )
    config = ServerConfig(
        host=host,
        port=port,
        token=token or None,
        max_body=max_body,
        timeout=timeout,
        max_connections=max_connections,
        workers=workers,
    )
    try:
        run(engine, config)
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from exc


class ReportFormat(StrEnum):
    text = "text"
    json = "json"


@app.command()
def lint(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="Pack ids, pack folders, folders of packs or .policy files; default: every pack."
        ),
    ] = None,
    policies: Annotated[
        list[Path] | None,
        typer.Option(
            "--policies",
            help="A folder of policy packs (repeatable), where pack ids are "
            "looked up; default: the shipped packs.",
        ),
    ] = None,
    output: Annotated[
        ReportFormat, typer.Option("--format", help="text or json.")
    ] = ReportFormat.text,
    today: Annotated[
        str | None,
        typer.Option("--today", help="The date expired rules are judged against (YYYY-MM-DD)."),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too (exit 1).")] = False,
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore", help="A warning code not to report, e.g. W401 (repeatable)."),
    ] = None,
) -> None:
    """Find errors and policy-quality problems in packs and policy files (docs/lint.md).

    Exit 0: no errors; 1: errors (with --strict: errors or warnings); 2: usage error."""
    from cleanclaim.dsl.lint import LintTargetError
    from cleanclaim.dsl.lint import lint as run_lint
    from cleanclaim.engine.testing import lint_environment

    env, loaders, roots = lint_environment(policies)
    try:
        report = run_lint(
            targets or [],
            env,
            roots=roots,
            today=_date(today) or dt.date.today(),
            table_loaders=loaders,
        )
    except LintTargetError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    skipped = {code.upper() for code in ignore or []}
    report.problems = [p for p in report.problems if p.code not in skipped or p.severity == "error"]
    if output is ReportFormat.json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        typer.echo(report.render(), nl=False)
    raise typer.Exit(1 if report.errors or (strict and report.warnings) else 0)


class RulesFormat(StrEnum):
    md = "md"
    json = "json"


@app.command()
def rules(
    policies: Annotated[
        list[Path] | None,
        typer.Option(
            "--policies", help="A folder of policy packs (repeatable); default: the shipped packs."
        ),
    ] = None,
    output: Annotated[RulesFormat, typer.Option("--format", help="md or json.")] = RulesFormat.md,
) -> None:
    """List every rule with what it checks, its outcome and its source (docs/rules.md)."""
    from cleanclaim.engine.rules_table import render_json, render_markdown, rule_rows

    engine = build_engine(policies, None, None, None, plugins=_plugin_selection(None, None))
    programs = [
        *engine.programs.values(),
        *(run.program for run in getattr(engine, "_plugin_packs", [])),
    ]
    rows = rule_rows(programs)
    typer.echo(render_markdown(rows) if output is RulesFormat.md else render_json(rows), nl=False)


@app.command("compile")
def compile_code(
    pack: Annotated[str, typer.Argument(help="The pack id (a payer, e.g. medicare).")],
    policies: Annotated[
        list[Path] | None,
        typer.Option(
            "--policies", help="A folder of policy packs (repeatable); default: the shipped packs."
        ),
    ] = None,
    rule: Annotated[
        str | None,
        typer.Option(
            "--rule", help="Only the function of this rule id (as a failing rule is re-run alone)."
        ),
    ] = None,
) -> None:
    """Print the Python a pack compiles to (its general line body, before any
    specialisation); each rule line ends with `# rule N, line L`, its policy line."""
    engine = build_engine(policies, None, None, None, plugins=_plugin_selection(None, None))
    programs = {
        p.pack_id: p
        for p in [
            *engine.programs.values(),
            *(run.program for run in getattr(engine, "_plugin_packs", [])),
        ]
    }
    program = programs.get(pack)
    if program is None:
        typer.echo(f"error: no pack `{pack}` (loaded: {', '.join(sorted(programs))})", err=True)
        raise typer.Exit(2)
    if rule is None:
        typer.echo(program.source, nl=not program.source.endswith("\n"))
        return
    index = next((r.index for r in program.rules if r.id == rule), None)
    if index is None:
        typer.echo(f"error: no rule `{rule}` in pack `{pack}`", err=True)
        raise typer.Exit(2)
    typer.echo(program.rule_source(index), nl=False)


class CaseOutputFormat(StrEnum):
    text = "text"
    json = "json"


@app.command("test")
def test_cases(
    targets: Annotated[
        list[str] | None,
        typer.Argument(help="Pack ids, folders or case files; default: the cases of every pack."),
    ] = None,
    run_patterns: Annotated[
        list[str] | None,
        typer.Option(
            "--run",
            help="Run only the cases whose name or expected rule id matches "
            "(repeatable): a glob when it has * ? or [ (whole name, case-sensitive), else a "
            "substring.",
        ),
    ] = None,
    output: Annotated[
        CaseOutputFormat,
        typer.Option(
            "--format",
            help="text, or json: one object with each case (name, file, rule, "
            "passed, message) and the totals.",
        ),
    ] = CaseOutputFormat.text,
    policies: Annotated[
        list[Path] | None,
        typer.Option(
            "--policies", help="A folder of policy packs (repeatable); default: the shipped packs."
        ),
    ] = None,
    coverage: Annotated[
        bool,
        typer.Option("--coverage", help="Report, per rule, whether cases made it fire and pass."),
    ] = False,
    min_coverage: Annotated[
        float | None,
        typer.Option(
            "--min-coverage",
            help="Fail when a pack's rule coverage is below N percent (implies --coverage).",
        ),
    ] = None,
    junit_xml: Annotated[
        Path | None,
        typer.Option("--junit-xml", help="Also write the results as JUnit XML to this file."),
    ] = None,
    today: Annotated[
        str | None,
        typer.Option("--today", help="The date a case without `today` runs on (YYYY-MM-DD)."),
    ] = None,
    trace: Annotated[
        bool,
        typer.Option("--trace/--no-trace", help="Show the trace of the rules of a failing case."),
    ] = True,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="List passing cases.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Run YAML policy cases: failures side by side, rule coverage, JUnit XML.

    Exit 0: every case passed; 1: a case failed, a case file is broken or coverage is
    below --min-coverage; 2: usage error or a pack that does not compile."""
    from cleanclaim.engine.cases import CaseFileError
    from cleanclaim.engine.testing import (
        case_selector,
        discover,
        exit_code,
        explain_trace,
        render_json,
        render_text,
        run_cases,
        write_junit,
    )

    engine = build_engine(policies, None, None, _date(today), data_dir=data_dir)
    try:
        files = discover(targets or [], engine.roots)
    except CaseFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if not files:
        typer.echo("error: no case files found", err=True)
        raise typer.Exit(2)
    with_coverage = coverage or min_coverage is not None
    as_json = output is CaseOutputFormat.json
    run = run_cases(
        engine,
        files,
        coverage=with_coverage,
        trace=explain_trace if trace and not as_json else None,
        select=case_selector(run_patterns) if run_patterns else None,
    )
    if run_patterns and not run.results and not run.file_errors:
        typer.echo(f"error: no case matches --run {' '.join(run_patterns)}", err=True)
        raise typer.Exit(2)
    typer.echo(
        render_json(run, coverage=with_coverage, minimum=min_coverage)
        if as_json
        else render_text(run, coverage=with_coverage, verbose=verbose, minimum=min_coverage),
        nl=False,
    )
    if junit_xml is not None:
        with junit_xml.open("w", encoding="utf-8") as out:
            write_junit(run, out, minimum=min_coverage)
    raise typer.Exit(exit_code(run, min_coverage))


@app.command()
def fmt(
    paths: Annotated[list[Path], typer.Argument(help=".policy files or folders of them.")],
    check_only: Annotated[
        bool,
        typer.Option("--check", help="Change nothing; list the files that would change (exit 1)."),
    ] = False,
    diff: Annotated[
        bool,
        typer.Option("--diff", help="Change nothing; print what would change as a unified diff."),
    ] = False,
) -> None:
    """Lay out policy files the one canonical way, keeping every comment.

    Exit 0: done (or, with --check, nothing to change); 1: with --check/--diff, files
    would change; 2: a file that does not parse (left as is) or no such file."""
    from cleanclaim.dsl.fmt import format_paths

    outcome = format_paths(paths, write=not (check_only or diff), diff=diff)
    for line in outcome.errors:
        typer.echo(line, err=True)
    if outcome.diff:
        typer.echo(outcome.diff, nl=False)
    for path in outcome.changed:
        typer.echo(f"would reformat {path}" if check_only or diff else f"reformatted {path}")
    if check_only and not outcome.changed and not outcome.errors:
        typer.echo(f"{outcome.checked} file{'s' if outcome.checked != 1 else ''} already formatted")
    if outcome.errors:
        raise typer.Exit(2)
    raise typer.Exit(1 if (check_only or diff) and outcome.changed else 0)


# ---- claim history and the eligibility roster (engine/history.py, engine/roster.py) -------

history_app = typer.Typer(
    help="Show or clear a member's recorded claim history in a --state store. Member ids "
    "are never printed: the store keys them by a keyed hash, which is what is shown.",
    no_args_is_help=True,
)
members_app = typer.Typer(
    help="The eligibility roster: coverage spans for claims that carry no member.coverage.",
    no_args_is_help=True,
)
app.add_typer(history_app, name="history")
app.add_typer(data_app, name="data")
app.add_typer(members_app, name="members")

# `cleanclaim denials` (engine/denials/cli.py): the 835 denial report.
from cleanclaim.engine.denials.cli import denials as _denials  # noqa: E402

app.command("denials")(_denials)

_STATE = Annotated[
    str,
    typer.Option("--state", help="The claim-history store: a SQLite file, or a postgresql:// URL."),
]
_MEMBER = Annotated[str, typer.Option("--member", help="The member id, as on the claims.")]
_PAYERS = Annotated[
    list[str] | None,
    typer.Option(
        "--payer", help="Only this payer (repeatable); default: every payer in the store."
    ),
]


def _existing_store(state: str) -> Any:
    from cleanclaim.engine.history import StoreError, is_url, open_store

    if not is_url(state) and not Path(state).is_file():
        typer.echo(f"error: {state}: no such history store", err=True)
        raise typer.Exit(2)
    try:
        return open_store(state)
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@history_app.command("show")
def history_show(
    member: _MEMBER,
    state: _STATE,
    payer: _PAYERS = None,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """The member's recorded claims and lines, per payer (exit 1: none recorded)."""
    from cleanclaim.engine.history import member_report, render_report

    with _existing_store(state) as store:
        report = member_report(store, member, payer)
    if output == "json":
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(render_report(report), nl=False)
    raise typer.Exit(0 if report else 1)


@history_app.command("clear")
def history_clear(member: _MEMBER, state: _STATE, payer: _PAYERS = None) -> None:
    """Forget the member's recorded claims (every payer, or those named)."""
    with _existing_store(state) as store:
        for one_payer in payer or store.payers():
            key = store.member_key(one_payer, member)
            removed = store.clear_member(key)
            if removed:
                typer.echo(f"cleared {removed} claim(s) of member {key} (payer {one_payer})")


@members_app.command("import")
def members_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="The roster: CSV (member_id, payer, plan, "
            "start, end; optionally therapy_ytd_pt_slp, "
            "therapy_ytd_ot, therapy_ytd_as_of) or JSON."
        ),
    ],
    state: _STATE,
) -> None:
    """Load coverage spans into the store; each member in the file gets exactly its spans
    in the file (a file with a bad row imports nothing: exit 2)."""
    from cleanclaim.engine.history import StoreError, open_store
    from cleanclaim.engine.roster import RosterError, RosterTherapy, import_roster, read_roster

    try:
        spans = read_roster(file)
    except RosterError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from exc
    try:
        store = open_store(state)
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    with store:
        members, count = import_roster(store, spans)
    therapy = len({e.member_id for e in spans if isinstance(e, RosterTherapy)})
    typer.echo(
        f"imported {count} coverage span(s) of {members} member(s) into "
        f"{store.label}" + (f"; the therapy year to date of {therapy} member(s)" if therapy else "")
    )


def _encode(output: OutputFormat, d: Decision) -> tuple[str, str, Any, bool]:
    """One decision as (status, its text in the output format, what the history store
    keeps of it, whether the engine failed on the claim). Runs in worker processes with
    `--workers N`, so it stays a module-level function."""
    from cleanclaim.engine.history import outcome_of

    failed = any(f.rule in ("engine/internal-error", "engine/input-file") for f in d.findings)
    outcome = outcome_of(d)
    if output is OutputFormat.ndjson:
        return d.status, ndjson_bytes(d).decode() + "\n", outcome, failed
    if output is OutputFormat.json:
        return d.status, json.dumps(d.to_json(), indent=2), outcome, failed
    # Text from the input (a claim id) may hold what UTF-8 cannot write: escaped.
    text = render_table(d)
    return d.status, text.encode("utf-8", "backslashreplace").decode("utf-8"), outcome, failed


@app.command("plugins")
def list_plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List installed plugins: name, version, whether they run, hooks and rule count.
    Exit 1 when one cannot be loaded (its error is shown)."""
    from cleanclaim.engine.plugins import PluginError, PluginSelection, describe_plugins

    try:
        selection = PluginSelection.from_config()
    except PluginError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    listing = describe_plugins(selection)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "name": p.name,
                        "version": p.version,
                        "distribution": p.distribution,
                        "enabled": p.enabled,
                        "hooks": list(p.hooks),
                        "rules": p.rules,
                        "error": p.error,
                    }
                    for p in listing
                ],
                indent=2,
            )
        )
    elif not listing:
        typer.echo("no plugins installed (entry-point group cleanclaim.plugins)")
    else:
        rows = [("name", "version", "runs", "rules", "hooks")]
        for p in listing:
            hooks = ", ".join(h.removeprefix("cleanclaim_") for h in p.hooks)
            rows.append(
                (
                    p.name,
                    p.version,
                    "yes" if p.enabled else "no",
                    "-" if p.error else str(p.rules),
                    f"ERROR: {p.error}" if p.error else hooks,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            typer.echo("  ".join(row[i].ljust(widths[i]) for i in range(4)) + "  " + row[4])
    if any(p.error for p in listing):
        raise typer.Exit(1)


def _write(
    encoded: Iterable[tuple[str, str, Any, bool]], output: OutputFormat, out: TextIO
) -> Iterator[tuple[str, Any, bool]]:
    """Write decisions encoded by `_encode`, in order; yield each one's status, outcome
    and whether it records a failure."""
    if output is OutputFormat.json:
        out.write("[")
        first = True
        for status, text, outcome, failed in encoded:
            out.write(("\n" if first else ",\n") + text)
            first = False
            yield status, outcome, failed
        out.write("\n]\n" if not first else "]\n")
    else:
        for status, text, outcome, failed in encoded:
            out.write(text)
            yield status, outcome, failed


def render_table(d: Decision) -> str:
    """One claim as a small table: status, then each finding's line, codes, root cause,
    owner and message."""
    lines = [f"{d.claim_id or '(no claim id)'}  {d.status.upper()}"]
    if not d.findings:
        lines.append("  no findings")
    rows = [("line", "codes", "root cause", "owner", "message")]
    for f in d.findings:
        codes = f"{f.group}-{f.carc}" + ("".join(f" {r}" for r in f.rarc))
        rows.append(
            (str(f.line) if f.line is not None else "-", codes, f.root_cause, f.owner, f.message)
        )
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

"""The engine: load policy packs once, then check claims against them.

```python
from cleanclaim.engine import Engine

engine = Engine()                       # what `cleanclaim check` runs: shipped packs, plugins
decision = engine.check({"claim_id": "C-1", "payer": "medicare", ...})
for decision in engine.check_many(claims):   # any iterable, evaluated lazily
    ...
```

**One way to build an engine.** `EngineRecipe` is everything an engine is made from:
policy roots, table overrides, the date taken as today, the plugins (by name) and extra
language functions. The CLI (`check`, `serve`), `Engine()` itself, the HTTP server and
the `--workers` processes all build from a recipe, so they decide alike: `Engine()` with
no argument is `cleanclaim check` with no option (the shipped packs and the configured
plugins: every installed one unless `cleanclaim.toml` or `CLEANCLAIM_PLUGINS` say
otherwise); `EngineRecipe.of(engine)` is what another process needs to build the same
engine again (tests/test_same_decisions.py compares the four paths byte for byte).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cleanclaim.dsl import types as T
from cleanclaim.dsl.checker import CheckEnv, check_pack
from cleanclaim.dsl.compiler import NEEDS_VERSION, CompiledRule, Program, compile_pack
from cleanclaim.dsl.errors import PolicyCompileError, PolicyError, did_you_mean
from cleanclaim.dsl.pack import (
    PackSources,
    all_tables,
    check_not_empty,
    display_path,
    list_packs,
    load_sources,
    pack_policy_files,
    root_problems,
    with_libraries,
)
from cleanclaim.engine.decision import Decision, Finding, new_decision, status_of
from cleanclaim.engine.decoding import decode_claim, decode_json
from cleanclaim.engine.inputs import RawClaim, ReadProblem
from cleanclaim.engine.model import Claim, json_type, loads, readable_id
from cleanclaim.engine.ncci import TableError

# Format -> loader; each reads a CMS file or a table of the data folder that
# `cleanclaim data import` fills (engine/refdata/).
from cleanclaim.engine.refdata.store import data_versions
from cleanclaim.engine.refdata.tables import TABLE_LOADERS as TABLE_LOADERS
from cleanclaim.engine.refdata.tables import TABLE_SCHEMAS
from cleanclaim.engine.runtime import standard_functions

if TYPE_CHECKING:  # the plugin machinery is imported only when plugins are asked for
    from cleanclaim.engine.history import HistoryReader, HistoryStore
    from cleanclaim.engine.plugins import PluginHost, PluginInfo, PluginSelection


def shipped_policies() -> Path:
    """The folder of the packs that ship with cleanclaim."""
    return Path(str(resources.files("cleanclaim.payer_policies")))


def _engine_finding(
    rule: str,
    kind: str,
    message: str,
    *,
    line: int | None = None,
    severity: str = "reject",
    group: str = "CO",
    carc: str = "16",
    rarc: Sequence[str] = ("MA130",),
    root_cause: str = "submission",
    owner: str = "billing",
    reference: str | None = None,
) -> Finding:
    return Finding(
        rule,
        kind,
        severity,
        line,
        group,
        carc,
        list(rarc),
        root_cause,
        owner,
        message,
        reference,
        None,
    )


def _void_finding(claim: Claim) -> Finding:
    """A void is not checked like a service claim: it takes back the claim it names
    (`replaces`, or the claim of its own id), which no longer counts in history."""
    original = claim.replaces or claim.claim_id
    return _engine_finding(
        "engine/void",
        "submission",
        f"void of claim {original}: not checked as a service claim; claim {original} no "
        "longer counts in the member's history",
        severity="info",
        group="",
        carc="",
        rarc=(),
        root_cause="submission",
        owner="billing",
    )


class Engine:
    """Compiled policy packs, ready to check claims.

    policy_roots: folders holding pack folders; default: the shipped packs.
    tables: table format -> file, replacing the table of that format in every pack
        (e.g. {"ncci-ptp": Path("ccipra-v321r0-f1.TXT")}); default (None): the CMS data
        imported with `cleanclaim data import`, as `check` uses it; {} for none.
    today: the date a claim without `received_date` is taken to be received.
    plugins: a `PluginHost` (`plugins.load_plugins(...)`), a `PluginSelection`, or plugin
        names to load (`()`: none); default (None): the configured selection, as
        `cleanclaim check` runs it (`PluginSelection.from_config()`: every installed
        plugin unless cleanclaim.toml / CLEANCLAIM_PLUGINS say otherwise). Their packs
        apply to every claim after the payer pack, and their hooks run around the packs
        (`engine/hookspecs.py`); raises `plugins.PluginError` when one cannot be loaded.
    Raises `PolicyCompileError` with every located error when a pack does not compile.
    """

    def __init__(
        self,
        policy_roots: Sequence[Path] | None = None,
        *,
        tables: Mapping[str, Path] | None = None,
        today: dt.date | None = None,
        functions: Sequence[T.FunctionSpec] = (),
        plugins: PluginHost | PluginSelection | Sequence[str] | None = None,
    ) -> None:
        self.roots = list(policy_roots) if policy_roots else [shipped_policies()]
        self.today = today or dt.date.today()
        if tables is None:  # as `cleanclaim check`: the CMS data imported (engine/refdata/)
            from cleanclaim.engine.refdata.store import DataStore

            tables = DataStore().table_overrides()
        self.table_overrides = dict(tables)
        self.extra_functions = tuple(functions)
        self.plugins = _plugin_host(plugins)
        self.functions: dict[str, T.FunctionSpec] = {
            f.name: f
            for f in (
                *standard_functions(),
                *functions,
                *(self.plugins.functions if self.plugins else ()),
            )
        }
        self._table_cache: dict[Path, Any] = {}
        self._data_versions = data_versions(self.table_overrides) if self.table_overrides else {}
        self.programs: dict[str, Program] = {}
        self._policy: dict[str, dict[str, Any]] = {}
        self._templates: dict[str, list[list[tuple[Any, ...]]]] = {}
        self._tracers: dict[str, Any] = {}
        # The recorded claim history claims are checked against (engine/history.py), set
        # for phase 2 of a history run; None: each claim counts alone.
        self.history: HistoryReader | None = None
        self._plugin_packs: list[_PluginPack] = []
        self._plugin_policy: dict[str, dict[str, Any]] = {}
        # Per payer pack: the plugin rules its pack.yaml (or an include's) opts in to.
        self._opt_in: dict[str, frozenset[str]] = {}
        self._opt_in_at: dict[str, list[tuple[str, Any]]] = {}
        errors: list[PolicyError] = []
        sources_text: dict[str, str] = {}
        # Payer packs may include the plugins' library packs (value sets).
        # A folder of --policies without a pack is an error; library packs (`common`) stay
        # available from the shipped packs unless a given folder has a pack of that id.
        errors.extend(root_problems(self.roots))
        search = with_libraries(self.roots)
        if self.plugins:
            search = [*search, *self.plugins.library_roots]
        for pack_id in list_packs(self.roots):
            sources = load_sources(search, pack_id)
            if sources is None or sources.manifest.library:
                if sources is not None:
                    # A library is checked on its own too, so its errors surface once.
                    self._compile(sources, errors, sources_text, keep=False)
                continue
            self._compile(sources, errors, sources_text, keep=True)
        if self.plugins is not None:
            self._compile_plugin_packs(self.plugins, errors, sources_text)
        # With no plugin, `evaluate` takes the plain path (one attribute test per claim).
        self._plugin_evaluate = self._evaluate_with_plugins if self.plugins else None
        if errors:
            unique = {(e.code, e.span, e.message): e for e in errors}
            raise PolicyCompileError(list(unique.values()), sources_text)

    # ---- loading -----------------------------------------------------------------------

    def _compile(
        self,
        sources: PackSources,
        errors: list[PolicyError],
        sources_text: dict[str, str],
        keep: bool,
        plugin: PluginInfo | None = None,
    ) -> None:
        sources_text.update(sources.files)
        real_paths = {
            display_path(p): p for pack in sources.packs for p in pack_policy_files(pack.root)
        }
        refdata = any(pack.refdata for pack in sources.packs)
        given: dict[str, Any] = {}
        unreadable: list[PolicyError] = []
        if refdata:  # value sets that imported CMS data fills (engine/refdata/)
            from cleanclaim.engine.refdata.valuesets import check_refdata_names, imported_sets

            given, unreadable = imported_sets(sources, self.table_overrides.get("cms-data"))
        env = CheckEnv(self.functions, frozenset(TABLE_LOADERS), given, TABLE_SCHEMAS)
        checked = check_pack(sources, env, real_paths)
        if refdata:
            check_refdata_names(checked, sources)
            checked.errors.extend(unreadable)
        sources_text.update(sources.extra_sources)  # manifests and CSVs, for rendering
        tables: dict[str, Any] = {}
        for decl in all_tables(sources).values():
            path = self.table_overrides.get(decl.format, decl.file)
            loader = TABLE_LOADERS.get(decl.format)
            if loader is None:
                continue
            try:
                if path not in self._table_cache:
                    self._table_cache[path] = loader(path)
                tables[decl.name] = self._table_cache[path]
            except (TableError, OSError) as exc:
                checked.errors.append(
                    PolicyError(
                        "E504",
                        f"table `{decl.name}` ({decl.format}): {exc}",
                        checked_span(sources, decl.file),
                    )
                )
        if keep and plugin is None:
            check_not_empty(checked)  # unless its manifest says `rules_from_plugins: true`
        if checked.errors:
            errors.extend(checked.errors)
            return
        if not keep:
            return
        digest = sources.digest()
        program = compile_pack(checked, self.functions, tables, digest)
        pack_id = sources.manifest.id
        if plugin is not None:
            self._plugin_packs.append(_PluginPack(plugin, program, _templates(program, plugin)))
            return
        self.programs[pack_id] = program
        self._policy[pack_id] = {"packs": {pack_id: digest}}
        if self._data_versions:  # the imported CMS data the decisions rest on
            self._policy[pack_id]["data"] = self._data_versions
        self._opt_in[pack_id] = frozenset(r for p in sources.packs for r in p.opt_in)
        self._opt_in_at[pack_id] = [
            (r, _opt_in_span(p, i)) for p in sources.packs for i, r in enumerate(p.opt_in)
        ]
        self._templates[pack_id] = _templates(program)

    def _compile_plugin_packs(
        self, host: PluginHost, errors: list[PolicyError], sources_text: dict[str, str]
    ) -> None:
        """Compile each plugin's own pack (its includes: the plugins' libraries) and check
        the libraries on their own; then note, per payer pack, what ran."""
        libraries = host.library_roots
        for info in host.plugins:
            for folder in info.libraries:
                sources = load_sources(libraries, folder.name)
                if sources is not None:
                    self._compile(sources, errors, sources_text, keep=False)
            for folder in info.packs:
                sources = load_sources([folder.parent, *libraries], folder.name)
                if sources is not None:
                    self._compile(sources, errors, sources_text, keep=True, plugin=info)
        errors.extend(self._unknown_opt_ins(host))
        ran = {
            info.name: {
                "version": info.version,
                "packs": {
                    run.program.pack_id: run.program.digest
                    for run in self._plugin_packs
                    if run.plugin is info
                },
            }
            for info in host.plugins
        }
        self._plugin_policy = {
            pack_id: {**policy, "plugins": ran} for pack_id, policy in self._policy.items()
        }

    def _unknown_opt_ins(self, host: PluginHost) -> list[PolicyError]:
        """An `opt_in` naming a rule a loaded plugin does not have would be ignored: E505.
        (A plugin that is not loaded is not an error: a run may leave it out.)"""
        errors = []
        for entries in self._opt_in_at.values():
            for rule, span in entries:
                plugin, _, local = rule.partition("/")
                info = host.get(plugin)
                if info is None:
                    continue
                known = {r.id for r in info.rules} | {
                    r.id.partition("/")[2]
                    for run in self._plugin_packs
                    if run.plugin is info
                    for r in run.program.rules
                }
                if local not in known:
                    errors.append(
                        PolicyError(
                            "E505",
                            f"`opt_in` names `{rule}`, which plugin {info.tag} does not have",
                            span,
                            did_you_mean(local, sorted(known)),
                        )
                    )
        return errors

    @property
    def packs(self) -> dict[str, str]:
        """Pack id -> digest of every payer pack loaded."""
        return {pack_id: p.digest for pack_id, p in self.programs.items()}

    # ---- checking ----------------------------------------------------------------------

    def check(
        self, claim: Mapping[str, Any] | bytes | str | Claim, today: dt.date | None = None
    ) -> Decision:
        """Check one claim given as a dict, JSON text/bytes or a decoded `Claim`.

        `today` overrides the engine's date for this claim (a claim without
        `received_date` is taken as received today). Never raises: anything that is no
        claim object (None, a list, a number) is rejected, and a failure inside the
        engine rejects the claim as `engine/internal-error`."""
        try:
            if isinstance(claim, Claim):
                return self.evaluate(claim)
            if isinstance(claim, (bytes, str)):
                fast = decode_json(claim, today or self.today)
                if fast is not None:
                    return self.check_decoded(fast, 0)
                try:
                    data = loads(claim)
                except ValueError as exc:
                    return self.unreadable(
                        RawClaim(0, None, (ReadProblem("claim", f"not valid JSON: {exc}"),))
                    )
                return self.check_raw(RawClaim(0, data), today)
            if not isinstance(claim, Mapping):
                return self.unreadable(
                    RawClaim(
                        0,
                        None,
                        (ReadProblem("claim", f"must be a JSON object, not {json_type(claim)}"),),
                    )
                )
            return self.check_raw(RawClaim(0, dict(claim)), today)
        except Exception as exc:  # an engine bug: this claim is rejected, callers go on
            from cleanclaim.engine.batch import internal_error

            return internal_error(RawClaim(0, None), f"{type(exc).__name__} while checking it")

    def check_many(
        self,
        claims: Iterable[Mapping[str, Any] | bytes | str | Claim | RawClaim],
        history: HistoryStore | None = None,
    ) -> Iterator[Decision]:
        """Check claims lazily, one decision per claim, in input order; never raises for
        one claim (see `check`).

        When a pack counts claim history (a `counter`), or `history` names a store (the
        CLI's `--state`), the batch is checked in two phases (engine/history.py): every
        claim is recorded first, so claims count against each other whatever their order,
        and the store's roster supplies coverage a claim lacks."""
        if history is not None or any(p.counters for p in self.programs.values()):
            from cleanclaim.engine.history import HistoryRun

            # A reader's claims keep their origin (docs/formats.md): one decision per
            # item, in order, so the n-th decision is the n-th item's.
            origins: dict[int, dict[str, Any]] = {}

            def noted() -> Iterator[Any]:
                for index, claim in enumerate(claims):
                    if isinstance(claim, RawClaim) and claim.origin is not None:
                        origins[index] = claim.origin
                    yield claim

            for index, decision in enumerate(HistoryRun(self, history).check_many(noted())):
                origin = origins.pop(index, None)
                if origin is not None:
                    decision.origin = origin
                yield decision
            return
        from cleanclaim.engine.history import BatchIds

        ids = BatchIds()
        for position, claim in enumerate(claims):
            if isinstance(claim, RawClaim):
                try:
                    decision = self.check_raw(claim)
                except Exception as exc:
                    from cleanclaim.engine.batch import internal_error

                    decision = internal_error(claim, f"{type(exc).__name__} while checking it")
            else:
                decision = self.check(claim)
                decision.position = position
            yield ids.screen(decision, claim)

    def check_raw(self, raw: RawClaim, today: dt.date | None = None) -> Decision:
        """Check a claim as a reader produced it; unreadable claims are rejected.
        `today` (default: the engine's) is the received date of a claim without one;
        passing it instead of changing the engine keeps a shared engine thread-safe."""
        if raw.data is None or raw.problems:
            return self.unreadable(raw)
        claim, problems = decode_claim(raw.data, today or self.today)
        if claim is None:
            claim_id = raw.data.get("claim_id") if isinstance(raw.data, dict) else None
            return self.unreadable(
                RawClaim(raw.position, None, tuple(problems), readable_id(claim_id), raw.origin)
            )
        return self.check_decoded(claim, raw.position, raw.origin)

    def check_decoded(
        self, claim: Claim, position: int | None = None, origin: dict[str, Any] | None = None
    ) -> Decision:
        """`check_raw` of a claim already decoded (engine/decoding.py): the recorded
        history attached in a history run, evaluated, placed in the input."""
        if self.history is not None:  # phase 2 of a history run: the recorded history
            self.history.prepare(claim)
        decision = self.evaluate(claim)
        decision.position = position
        decision.origin = origin
        return decision

    def unreadable(self, raw: RawClaim) -> Decision:
        findings = [
            _engine_finding("engine/claim-format", "submission", f"{p.where}: {p.message}")
            for p in raw.problems
        ]
        if not findings:
            findings.append(
                _engine_finding("engine/claim-format", "submission", "the claim could not be read")
            )
        decision = Decision(raw.claim_id, "reject", findings, {}, raw.position)
        decision.origin = raw.origin
        return decision

    def evaluate(self, claim: Claim) -> Decision:
        """Apply the claim's payer pack to a decoded claim."""
        program = self.programs.get(claim.payer)
        if program is None:
            known = ", ".join(sorted(self.programs)) or "none"
            finding = _engine_finding(
                "engine/payer-setup",
                "payer_setup",
                f"no policy pack for payer `{claim.payer}` (packs: {known})",
                root_cause="payer_setup",
                owner="billing",
            )
            return Decision(claim.claim_id, "reject", [finding], {})
        if claim.frequency == "void":  # not a service claim: nothing to check (history.md)
            policy = (self._plugin_policy if self._plugin_evaluate is not None else self._policy)[
                program.pack_id
            ]
            return Decision(claim.claim_id, "clean", [_void_finding(claim)], policy)
        if self._plugin_evaluate is not None:
            return self._plugin_evaluate(program, claim)
        # The plain path, `_pack_findings` written out: most claims are clean, and a clean
        # claim then costs one call into the pack and one Decision.
        out: list[tuple[int, int, int | None, str]] = []
        try:
            program.evaluate_fn(claim, out)
        except Exception:
            findings = self._pack_findings(program, self._templates[program.pack_id], claim)
        else:
            if not out:
                return new_decision(claim.claim_id, "clean", [], self._policy[program.pack_id])
            findings = _findings(self._templates[program.pack_id], out)
        return new_decision(
            claim.claim_id, status_of(findings), findings, self._policy[program.pack_id]
        )

    def explain(
        self, claim: Mapping[str, Any] | bytes | str | Claim, rule: str | None = None
    ) -> tuple[Decision, list[Any]]:
        """The decision and a trace of every rule considered (`dsl.explain.RuleTrace`),
        or only of `rule`. Tracing code is built on first use, never on the hot path."""

        decision = self.check(claim)
        if isinstance(claim, Claim):
            decoded: Claim | None = claim
        else:
            data = json.loads(claim) if isinstance(claim, (bytes, str)) else dict(claim)
            decoded, _ = decode_claim(data, self.today)
        if decoded is None or decoded.payer not in self.programs:
            return decision, []
        return decision, self._trace(decoded, rule)

    def _trace(self, claim: Claim, rule: str | None) -> list[Any]:
        from cleanclaim.dsl.explain import Tracer

        tracer = self._tracers.get(claim.payer)
        if tracer is None:
            tracer = self._tracers[claim.payer] = Tracer(self.programs[claim.payer])
        traces = tracer.trace_claim(claim, rule)
        if self._plugin_packs:
            traces.extend(self._trace_plugin_packs(claim, rule))
        return traces

    def explain_in_run(
        self,
        items: Iterable[Any],
        claim_id: str | None = None,
        rule: str | None = None,
        history: HistoryStore | None = None,
        position: int | None = None,
    ) -> tuple[Decision, list[Any]] | None:
        """The decision and trace of one claim as checked among `items` (the claims of an
        input, in a run with claim history: the others count against it, as in `check`),
        and against the recorded history `history` (the `--state` store) if given. The
        claim is the first of id `claim_id`, or the one at `position`; None when there is
        none. A line trace of a rule that reads a counter lists the services it counted
        (`RuleTrace.counted`)."""
        from cleanclaim.dsl.explain import counted_services
        from cleanclaim.engine.history import HistoryRun

        found: list[tuple[Decision, list[Any]]] = []

        def observe(claim: Claim, decision: Decision, at: int) -> None:
            if found or (claim.claim_id != claim_id if position is None else at != position):
                return
            if claim.payer not in self.programs:
                found.append((decision, []))
                return
            view = getattr(claim, "history", None)
            if view is None:  # no line is counted: count the claim alone, to show it
                from cleanclaim.engine.history import ClaimHistory

                view = claim.history = ClaimHistory(claim)
            view.recording()
            traces = self._trace(claim, rule)
            counted_services(self._tracers[claim.payer], claim, traces, view.shown or {})
            found.append((decision, traces))

        for _decision in HistoryRun(self, history, observe).check_many(items):
            pass
        return found[0] if found else None

    def _trace_plugin_packs(self, claim: Claim, rule: str | None) -> list[Any]:
        """Traces of the plugin packs' rules, under the plugin context as in `evaluate`,
        named and located as their findings are (`name@version/rule`, `pack/file`)."""
        from cleanclaim.dsl.explain import Tracer

        host = self.plugins
        assert host is not None
        context, _ = host.prepare(claim, self._opt_in.get(claim.payer, frozenset()))
        token = host.activate(context)
        traces: list[Any] = []
        try:
            for run in self._plugin_packs:
                local = rule
                if rule is not None:
                    local = next(
                        (
                            r.id
                            for r in run.program.rules
                            if rule in (r.id, run.plugin.rule_id(r.id))
                        ),
                        None,
                    )
                    if local is None:
                        continue
                key = f"plugin {run.plugin.tag}"
                tracer = self._tracers.get(key)
                if tracer is None:
                    tracer = self._tracers[key] = Tracer(run.program)
                for trace in tracer.trace_claim(claim, local):
                    trace.rule = run.plugin.rule_id(trace.rule)
                    trace.file = "/".join(Path(trace.file).parts[-2:])
                    traces.append(trace)
        finally:
            host.deactivate(token)
        return traces

    def _evaluate_with_plugins(self, program: Program, claim: Claim) -> Decision:
        """Documentation checks and derived facts, the payer pack, the plugin packs, then
        the plugins' Python checks; every finding is kept (`engine/hookspecs.py`)."""
        host = self.plugins
        assert host is not None
        context, found = host.prepare(claim, self._opt_in.get(program.pack_id, frozenset()))
        token = host.activate(context)
        try:
            findings = self._pack_findings(program, self._templates[program.pack_id], claim)
            # Lines the payer pack already denies under an NCCI PTP edit (CO-236): a plugin
            # pack's pair rule on the same line (CO-236, or CO-97 bundling) says it again,
            # with less to go on (the table knows the edit's modifier indicator), so the
            # payer's finding stands alone: one finding per pair (INTERFACES.md).
            # Likewise a line the payer's MUE already denies (CO-151 N362) needs no plugin
            # units rule saying it again (dermatology's 17003 units).
            ptp_lines = {
                f.line
                for f in findings
                if f.carc == "236" and f.group == "CO" and f.line is not None
            }
            mue_lines = {
                f.line
                for f in findings
                if f.carc == "151" and "N362" in f.rarc and f.line is not None
            }
            findings.extend(found)
            for run in self._plugin_packs:
                extra = self._pack_findings(run.program, run.templates, claim, run.plugin)
                if (ptp_lines or mue_lines) and extra:
                    extra = [f for f in extra if not _said_by_payer(f, ptp_lines, mue_lines)]
                findings.extend(extra)
            host.check(claim, context, findings)
        finally:
            host.deactivate(token)
        return Decision(
            claim.claim_id, status_of(findings), findings, self._plugin_policy[program.pack_id]
        )

    def _pack_findings(
        self,
        program: Program,
        templates: list[list[tuple[Any, ...]]],
        claim: Claim,
        plugin: PluginInfo | None = None,
    ) -> list[Finding]:
        out: list[tuple[int, int, int | None, str]] = []
        try:
            program.evaluate_fn(claim, out)
        except Exception:
            out = []
            failures = self._rule_by_rule(program, claim, out)
            program.apply_exceptions(out)  # `except rule`, as `_evaluate` applies it
            for failure in failures:
                if plugin is not None:
                    failure.rule = plugin.rule_id(failure.rule)
            return failures + _findings(templates, out)
        return _findings(templates, out) if out else []

    def _rule_by_rule(
        self, program: Program, claim: Claim, out: list[tuple[int, int, int | None, str]]
    ) -> list[Finding]:
        """Slow path: apply rules one at a time to report the one that raised."""
        failures: list[Finding] = []
        for rule in program.rules:
            targets: list[Any] = [None]
            if rule.scope == "all_lines":
                targets = list(claim.lines)
            elif rule.scope == "codes":
                targets = [ln for ln in claim.lines if ln.code in rule.codes]
            for line in targets:
                try:
                    program.run_rule(rule.index, claim, line, out)
                except Exception as exc:  # a rule or plugin function failed on this claim
                    failures.append(_rule_failure(rule, line, exc))
        return failures


def _rule_failure(rule: CompiledRule, line: Any, exc: Exception) -> Finding:
    # A plugin's function that raised says which plugin it belongs to.
    detail = getattr(exc, "plugin_message", None) or type(exc).__name__
    return Finding(
        rule.id,
        "submission",
        "review",
        getattr(line, "line", None),
        "CO",
        "16",
        [],
        "submission",
        "billing",
        f"rule could not be applied to this claim ({detail}); a person must check it",
        None,
        {"file": rule.file, "line": rule.line},
    )


# The CARCs of NCCI-style pair findings a plugin pack may give (PTP, bundling).
_PAIR_CARCS = frozenset({"236", "97"})


def _said_by_payer(found: Finding, ptp_lines: set[int], mue_lines: set[int]) -> bool:
    """Whether a plugin pack's finding repeats the payer pack's NCCI finding on its line:
    a pair rule (CO-236 / CO-97) where the PTP edit denies, a units rule (CO-151 N362)
    where the MUE denies."""
    if found.group != "CO":
        return False
    if found.carc in _PAIR_CARCS:
        return found.line in ptp_lines
    return found.carc == "151" and "N362" in found.rarc and found.line in mue_lines


class _PluginPack:
    """A plugin's compiled pack and its finding templates (rule ids `name@version/...`)."""

    __slots__ = ("plugin", "program", "templates")

    def __init__(
        self, plugin: PluginInfo, program: Program, templates: list[list[tuple[Any, ...]]]
    ) -> None:
        self.plugin = plugin
        self.program = program
        self.templates = templates


def _plugin_host(plugins: PluginHost | PluginSelection | Sequence[str] | None) -> PluginHost | None:
    if isinstance(plugins, (list, tuple)) and not plugins:
        return None  # none asked for: the plugin machinery is not even imported
    from cleanclaim.engine.plugins import PluginHost, PluginSelection, load_plugins

    if plugins is None:
        plugins = PluginSelection.from_config()
    if isinstance(plugins, PluginHost):
        host = plugins
    elif isinstance(plugins, PluginSelection):
        host = load_plugins(plugins)
    else:
        host = load_plugins(list(plugins))
    return host if host.plugins else None  # no plugin: the plain path


@dataclass(frozen=True, slots=True)
class EngineRecipe:
    """Everything an `Engine` is built from - the one way to build one (module docstring).
    Picklable: a `--workers` process receives it and calls `build()`.

    policy_roots: folders of packs; () the shipped packs.
    tables: (table format, file) pairs replacing the packs' tables (`--ptp`, `--mue`, the
        imported CMS data); None: the imported CMS data, as `cleanclaim check` uses it.
    today: the date a claim without `received_date` is taken to be received; None: the
        day `build()` runs. `of` fixes it, so that workers started after midnight agree.
    plugins: plugin names, in the order loaded; () none; None the configured selection
        (`PluginSelection.from_config()`, what `cleanclaim check` runs by default).
    functions: extra language functions (module-level callables, to stay picklable).
    """

    policy_roots: tuple[Path, ...] = ()
    tables: tuple[tuple[str, Path], ...] | None = None
    today: dt.date | None = None
    plugins: tuple[str, ...] | None = None
    functions: tuple[T.FunctionSpec, ...] = ()

    @classmethod
    def of(cls, engine: Engine) -> EngineRecipe:
        """The recipe of a built engine: its roots, tables, date and loaded plugins, so
        that another process builds an engine that decides exactly as this one."""
        host = engine.plugins
        return cls(
            tuple(engine.roots),
            tuple(sorted(engine.table_overrides.items())),
            engine.today,
            tuple(p.name for p in host.plugins) if host else (),
            tuple(getattr(engine, "extra_functions", ())),
        )

    def build(self, loaded: PluginHost | None = None) -> Engine:
        """The engine. `loaded`: the plugins of `self.plugins` already loaded (the CLI
        loads them first to name each one that fails). Raises `PolicyCompileError` (a
        pack does not compile), `plugins.PluginError` (a plugin cannot be loaded) or
        `OSError` (a table file)."""
        tables = dict(self.tables) if self.tables is not None else None
        return Engine(
            list(self.policy_roots) or None,
            tables=tables,
            today=self.today,
            functions=self.functions,
            plugins=loaded if loaded is not None else self.plugins,
        )


def _templates(program: Program, plugin: PluginInfo | None = None) -> list[list[tuple[Any, ...]]]:
    """Per rule and version, what a finding of it says besides its line and message."""

    def source(rule: CompiledRule) -> dict[str, Any]:
        if plugin is None:
            return {"file": rule.file, "line": rule.line}
        # A plugin's files are named from its pack folder, not by where it is installed.
        parts = Path(rule.file).parts
        return {"file": "/".join(parts[-2:]), "line": rule.line}

    # After the versions, the rule's finding when a missing value leaves it undecided
    # (dsl/missing.py): a review of the data the claim lacks (CO-16).
    return [
        [
            (
                plugin.rule_id(rule.id) if plugin else rule.id,
                rule.kind,
                v.severity,
                v.group,
                v.carc,
                v.rarcs,
                rule.root_cause,
                rule.owner,
                v.reference,
                source(rule),
            )
            for v in (*rule.versions, NEEDS_VERSION)
        ]
        for rule in program.rules
    ]


def _finding_order(found: tuple[int, int, int | None, str]) -> tuple[int, int]:
    return found[2] or 0, found[0]  # by line (claim-level first), then rule order


def _findings(
    templates: list[list[tuple[Any, ...]]], out: list[tuple[int, int, int | None, str]]
) -> list[Finding]:
    if len(out) > 1:
        out.sort(key=_finding_order)
    findings = []
    for index, vindex, line, message in out:
        # `Finding(...)` without running `__init__` (as `new_decision`); the template holds
        # the other fields in this order (`_templates`); tests/test_specialize.py checks
        # that none is missed.
        finding = _new(Finding)
        (
            finding.rule,
            finding.kind,
            finding.severity,
            finding.group,
            finding.carc,
            rarcs,
            finding.root_cause,
            finding.owner,
            finding.reference,
            finding.source,
        ) = templates[index][vindex]
        finding.rarc = list(rarcs)
        finding.line = line
        finding.message = message
        findings.append(finding)
    return findings


_new = object.__new__


def _opt_in_span(manifest: Any, index: int) -> Any:
    """Where the `opt_in` entry `index` of a manifest is written (else its first line)."""
    from cleanclaim.dsl.ast import Span

    spans = manifest.opt_in_spans
    return (
        spans[index]
        if index < len(spans)
        else Span(display_path(manifest.manifest_file), 1, 1, 1, 2)
    )


def checked_span(sources: PackSources, file: Path) -> Any:
    from cleanclaim.dsl.ast import Span

    return Span(display_path(sources.manifest.manifest_file), 1, 1, 1, 2)

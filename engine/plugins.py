"""Plugin discovery, selection and the typed facade the engine calls hooks through.

```python
from cleanclaim.engine import Engine
from cleanclaim.engine.plugins import PluginSelection, load_plugins

engine = Engine(plugins=load_plugins())                        # every installed plugin
engine = Engine(plugins=["therapy"])                           # just these
engine = Engine(plugins=load_plugins(PluginSelection.from_config()))  # cleanclaim.toml / env
```
`Engine()` runs what `cleanclaim check` runs: the plugins the configuration selects
(default: every installed one); `Engine(plugins=())` runs none.

Plugins are found through the entry-point group `cleanclaim.plugins` (the shipped
cardiology, dermatology and therapy plugins register the same way). A plugin that cannot
be loaded (import error, a hook with a bad signature, a misspelt or unmarked hook, a bad
contribution) raises `PluginError` naming it; nothing is skipped silently. At check time
an exception in a plugin becomes a `review` finding naming the plugin for that claim.

Nothing outside this module touches `pm.hook`: the facade calls each implementation
itself, so that a failure is attributed to its plugin and the other plugins still run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from cleanclaim.dsl import types as T
from cleanclaim.dsl.errors import did_you_mean
from cleanclaim.dsl.pack import read_manifest
from cleanclaim.dsl.vocabulary import OWNERS, ROOT_CAUSES
from cleanclaim.engine import hookspecs
from cleanclaim.engine.decision import SEVERITY_RANK, Finding
from cleanclaim.engine.hookspecs import (
    _CURRENT,
    ENTRY_POINT_GROUP,
    HOOK_NAMES,
    ClaimContext,
    DocumentationProblem,
    DocumentationSection,
    RuleInfo,
)
from cleanclaim.engine.model import Claim, ServiceLine

if TYPE_CHECKING:
    pass

CONFIG_FILE = "cleanclaim.toml"
ENV_VAR = "CLEANCLAIM_PLUGINS"


class PluginError(Exception):
    """Plugins could not be loaded; `problems` holds (plugin name, what is wrong)."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(f"plugin `{name}`: {message}" for name, message in problems))


class PluginFunctionError(Exception):
    """A language function contributed by a plugin raised; names the plugin."""

    def __init__(self, plugin: str, function: str, exc: Exception) -> None:
        self.plugin_message = (
            f"function `{function}` of plugin {plugin} failed: {type(exc).__name__}: {exc}"
        )
        super().__init__(self.plugin_message)


# ---- discovery and selection ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstalledPlugin:
    """An entry point of the group `cleanclaim.plugins` (found without importing it)."""

    name: str
    value: str  # the module the entry point names
    distribution: str
    version: str


def installed_plugins() -> tuple[dict[str, InstalledPlugin], list[tuple[str, str]]]:
    """Entry points of the group by name, and conflicts (two distributions, one name)."""
    found: dict[str, InstalledPlugin] = {}
    conflicts: list[tuple[str, str]] = []
    # `entry_points` takes the same distribution found twice on sys.path once (first
    # wins) by its folder name, and reads the metadata of no distribution: only those
    # that register a plugin are read below, which keeps a cold start short.
    described: dict[int, tuple[str, str]] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        if id(dist) not in described:
            metadata = dist.metadata if dist is not None else None
            described[id(dist)] = (
                (metadata["Name"] or "?", metadata["Version"] or "?")
                if metadata is not None
                else ("?", "?")
            )
        dist_name, version = described[id(dist)]
        if ep.name in found:
            conflicts.append(
                (
                    ep.name,
                    f"is registered by two distributions, "
                    f"{found[ep.name].distribution} and {dist_name}; "
                    "uninstall one",
                )
            )
            continue
        found[ep.name] = InstalledPlugin(ep.name, ep.value, dist_name, version)
    return found, conflicts


@dataclass(frozen=True, slots=True)
class PluginSelection:
    """Which installed plugins run: `enable` (None: all of them) minus `disable`."""

    enable: tuple[str, ...] | None = None
    disable: tuple[str, ...] = ()

    @classmethod
    def from_config(
        cls, directory: Path | None = None, environ: Mapping[str, str] | None = None
    ) -> PluginSelection:
        """The selection configured for a run, weakest first: every installed plugin;
        `[plugins] enable = [...]` / `disable = [...]` in `./cleanclaim.toml`; the
        environment variable CLEANCLAIM_PLUGINS (`none`, `all`, or names, a name with a
        leading `-` disabled: `all,-dermatology`), which replaces the file's setting."""
        environ = os.environ if environ is None else environ
        selection = cls()
        path = (directory or Path.cwd()) / CONFIG_FILE
        if path.is_file():
            selection = _from_toml(path)
        setting = environ.get(ENV_VAR)
        if setting is not None and setting.strip():
            selection = _from_env(setting)
        return selection

    def narrowed(
        self, enable: Sequence[str] | None = None, disable: Sequence[str] = ()
    ) -> PluginSelection:
        """This selection with command-line choices on top: `enable` replaces the list of
        plugins to run, `disable` adds to the ones not to run."""
        return PluginSelection(tuple(enable) if enable else self.enable, (*self.disable, *disable))

    def chosen(self, installed: Iterable[str]) -> tuple[list[str], list[str]]:
        """(plugin names to run, in name order; names asked for that are not installed)."""
        names = sorted(set(installed))
        unknown = [n for n in (*(self.enable or ()), *self.disable) if n not in names]
        wanted = names if self.enable is None else [n for n in names if n in self.enable]
        return [n for n in wanted if n not in self.disable], unknown


def _from_toml(path: Path) -> PluginSelection:
    import tomllib  # only when there is a cleanclaim.toml: a cold start skips it

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PluginError([("(config)", f"{path}: {exc}")]) from exc
    section = data.get("plugins", {})
    if not isinstance(section, dict):
        raise PluginError([("(config)", f"{path}: [plugins] must be a table")])

    def names(key: str) -> tuple[str, ...] | None:
        value = section.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise PluginError([("(config)", f"{path}: plugins.{key} must be a list of names")])
        return tuple(value)

    unknown = set(section) - {"enable", "disable"}
    if unknown:
        raise PluginError(
            [
                (
                    "(config)",
                    f"{path}: unknown setting(s) plugins."
                    + ", plugins.".join(sorted(unknown))
                    + " (known: enable, disable)",
                )
            ]
        )
    return PluginSelection(names("enable"), names("disable") or ())


def _from_env(setting: str) -> PluginSelection:
    tokens = [t.strip() for t in setting.split(",") if t.strip()]
    if tokens == ["none"]:
        return PluginSelection(enable=())
    enable = [t for t in tokens if not t.startswith("-") and t != "all"]
    disable = tuple(t[1:] for t in tokens if t.startswith("-"))
    return PluginSelection(tuple(enable) if enable else None, disable)


# ---- loading ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """A loaded plugin and what it contributes."""

    name: str
    version: str
    distribution: str
    module: str
    hooks: tuple[str, ...]
    packs: tuple[Path, ...] = ()  # the plugin's own pack (at most one)
    libraries: tuple[Path, ...] = ()
    functions: tuple[T.FunctionSpec, ...] = ()
    sections: tuple[DocumentationSection, ...] = ()
    rules: tuple[RuleInfo, ...] = ()

    @property
    def tag(self) -> str:
        """`name@version`, the prefix of the plugin's rule ids in findings."""
        return f"{self.name}@{self.version}"

    def rule_id(self, rule: str) -> str:
        """`<plugin>@<version>/<rule>` for a plugin-local or `<plugin>/`-prefixed rule."""
        local = rule[len(self.name) + 1 :] if rule.startswith(self.name + "/") else rule
        return f"{self.tag}/{local}"


def build_manager() -> pluggy.PluginManager:
    """A plugin manager that knows cleanclaim's hookspecs (and no plugin yet)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(selection: PluginSelection | Sequence[str] | None = None) -> PluginHost:
    """Load the selected installed plugins (default: all) and collect what they
    contribute. Raises `PluginError` listing every plugin that cannot be used."""
    if selection is None:
        selection = PluginSelection()
    elif not isinstance(selection, PluginSelection):
        selection = PluginSelection(enable=tuple(selection))
    installed, problems = installed_plugins()
    names, unknown = selection.chosen(installed)
    for name in unknown:
        hint = did_you_mean(name, installed)
        problems.append(
            (
                name,
                "is not installed"
                + (f" ({hint})" if hint else "")
                + f"; installed: {', '.join(sorted(installed)) or 'none'}",
            )
        )
    pm = build_manager()
    for name in installed:
        if name not in names:
            pm.set_blocked(name)  # never imported
    modules: dict[str, Any] = {}
    # One pass over the installed distributions when every plugin loads; on a failure the
    # rest are loaded one at a time below, to name the plugin that failed.
    with contextlib.suppress(Exception):
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for name in names:
        if pm.has_plugin(name):
            modules[name] = pm.get_plugin(name)
            continue
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
        except pluggy.PluginValidationError as exc:
            problems.append((name, f"has a hook that does not fit its specification: {exc}"))
            continue
        except Exception as exc:  # any import-time failure of third-party code
            problems.append(
                (
                    name,
                    f"cannot be imported from `{installed[name].value}`: "
                    f"{type(exc).__name__}: {exc}",
                )
            )
            continue
        plugin = pm.get_plugin(name)
        if plugin is not None:
            modules[name] = plugin
    problems.extend(_unmarked_hooks(pm, modules))
    problems.extend(_pending_hooks(pm))
    infos: list[PluginInfo] = []
    for name in sorted(modules):
        if not pm.is_registered(modules[name]):
            continue
        info, found = _collect(pm, name, modules[name], installed[name])
        problems.extend(found)
        infos.append(info)
    problems.extend(_clashes(infos))
    if problems:
        raise PluginError(problems)
    return PluginHost(pm, tuple(infos))


def _unmarked_hooks(pm: pluggy.PluginManager, modules: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A `cleanclaim_*` function without `@hookimpl` would never run: say so."""
    problems = []
    for name, plugin in modules.items():
        for attr in dir(plugin):
            if (
                attr.startswith("cleanclaim_")
                and callable(getattr(plugin, attr, None))
                and pm.parse_hookimpl_opts(plugin, attr) is None
            ):
                problems.append(
                    (
                        name,
                        f"`{attr}` is not marked with @hookimpl "
                        "(from cleanclaim.engine.hookspecs import hookimpl)",
                    )
                )
                pm.unregister(plugin)
                break
    return problems


def _pending_hooks(pm: pluggy.PluginManager) -> list[tuple[str, str]]:
    """Hook implementations that match no hookspec (a misspelt hook name)."""
    problems: list[tuple[str, str]] = []
    while True:
        try:
            pm.check_pending()
            return problems
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin) or "?"
            bad = [
                n
                for n in dir(exc.plugin)
                if n.startswith("cleanclaim_")
                and pm.parse_hookimpl_opts(exc.plugin, n) is not None
                and n not in HOOK_NAMES
            ]
            hints = "; ".join(
                f"`{b}` is not a cleanclaim hook"
                + (f" ({h})" if (h := did_you_mean(b, HOOK_NAMES)) else "")
                for b in bad
            ) or str(exc)
            problems.append((name, hints))
            pm.unregister(exc.plugin)


def _impls(pm: pluggy.PluginManager, hook: str, plugin: object) -> list[Callable[..., Any]]:
    caller = getattr(pm.hook, hook)
    return [impl.function for impl in caller.get_hookimpls() if impl.plugin is plugin]


def _collect(
    pm: pluggy.PluginManager, name: str, plugin: Any, installed: InstalledPlugin
) -> tuple[PluginInfo, list[tuple[str, str]]]:
    """Call the plugin's load-time hooks and check what they return."""
    problems: list[tuple[str, str]] = []
    version = getattr(plugin, "__version__", None)
    hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))

    def gather(hook: str, kind: type) -> list[Any]:
        items: list[Any] = []
        for fn in _impls(pm, hook, plugin):
            try:
                result = fn()
            except Exception as exc:
                problems.append((name, f"`{hook}` raised {type(exc).__name__}: {exc}"))
                continue
            for item in result or ():
                if isinstance(item, kind):
                    items.append(item)
                else:
                    problems.append((name, f"`{hook}` returned {item!r}, not a {kind.__name__}"))
        return items

    packs: list[Path] = []
    libraries: list[Path] = []
    for folder in gather("cleanclaim_policy_packs", Path):
        manifest, _errors = read_manifest(folder)
        if manifest is None or not (folder / "pack.yaml").is_file():
            problems.append((name, f"pack folder {folder} has no readable pack.yaml"))
        elif manifest.library:
            if manifest.id != name and not manifest.id.startswith(name + "-"):
                problems.append(
                    (
                        name,
                        f"library pack `{manifest.id}` ({folder}) must be "
                        f"named `{name}-<something>`",
                    )
                )
            else:
                libraries.append(folder)
        elif manifest.id != name or packs:
            problems.append(
                (
                    name,
                    f"pack `{manifest.id}` ({folder}): a plugin's own pack "
                    f"must have the plugin's name `{name}` (one per plugin), or "
                    "say `library: true`",
                )
            )
        else:
            packs.append(folder)
    functions = [
        _attributed(f"{name}@{version or installed.version}", spec)
        for spec in gather("cleanclaim_functions", T.FunctionSpec)
    ]
    info = PluginInfo(
        name=name,
        version=str(version or installed.version),
        distribution=installed.distribution,
        module=getattr(plugin, "__name__", str(plugin)),
        hooks=hooks,
        packs=tuple(packs),
        libraries=tuple(libraries),
        functions=tuple(functions),
        sections=tuple(gather("cleanclaim_documentation_sections", DocumentationSection)),
        rules=tuple(gather("cleanclaim_rules", RuleInfo)),
    )
    return info, problems


def _attributed(tag: str, spec: T.FunctionSpec) -> T.FunctionSpec:
    """The function, re-raising any exception as one that names the plugin."""
    impl = spec.impl

    def call(*args: Any) -> Any:
        try:
            return impl(*args)
        except Exception as exc:
            raise PluginFunctionError(tag, spec.name, exc) from exc

    return dataclasses.replace(spec, impl=call)


def _clashes(infos: Sequence[PluginInfo]) -> list[tuple[str, str]]:
    from cleanclaim.engine.runtime import standard_functions

    problems = []
    functions = {f.name: "cleanclaim (built-in)" for f in standard_functions()}
    sections: dict[str, str] = {}
    for info in infos:
        for spec in info.functions:
            if spec.name in functions:
                problems.append(
                    (
                        info.name,
                        f"function `{spec.name}` is already defined by {functions[spec.name]}",
                    )
                )
            functions.setdefault(spec.name, f"plugin `{info.name}`")
        for section in info.sections:
            if section.name in sections:
                problems.append(
                    (
                        info.name,
                        f"documentation section `{section.name}` is "
                        f"already declared by plugin `{sections[section.name]}`",
                    )
                )
            sections.setdefault(section.name, info.name)
    return problems


# ---- the facade -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Impl:
    info: PluginInfo
    hook: str
    # (claim, line, context) -> the implementation called with the arguments it takes
    call: Callable[[Claim, ServiceLine | None, ClaimContext], Any]
    source: dict[str, Any]
    rule_ids: dict[str, str]  # plugin-local rule -> `name@version/rule`, filled as met


@dataclass(slots=True)
class PluginHost:
    """The loaded plugins, called through typed methods (the only caller of the hooks).

    Each check-time stage keeps the implementations it has: a stage no plugin implements
    costs nothing per claim."""

    pm: pluggy.PluginManager
    plugins: tuple[PluginInfo, ...]
    _sections: tuple[tuple[PluginInfo, DocumentationSection], ...] = ()
    _derive: tuple[_Impl, ...] = ()
    _check_line: tuple[_Impl, ...] = ()
    _check_claim: tuple[_Impl, ...] = ()
    _by_name: dict[str, PluginInfo] = field(default_factory=dict)
    _functions: bool = False

    def __post_init__(self) -> None:
        self._by_name = {p.name: p for p in self.plugins}
        self._functions = any(p.functions for p in self.plugins)
        self._sections = tuple((p, s) for p in self.plugins for s in p.sections)
        self._derive = self._stage("cleanclaim_derive_facts")
        self._check_line = self._stage("cleanclaim_check_line")
        self._check_claim = self._stage("cleanclaim_check_claim")

    def _stage(self, hook: str) -> tuple[_Impl, ...]:
        impls = []
        for info in self.plugins:
            plugin = self.pm.get_plugin(info.name)
            for impl in getattr(self.pm.hook, hook).get_hookimpls():
                if impl.plugin is plugin:
                    impls.append(
                        _Impl(
                            info,
                            hook,
                            _caller(impl.function, impl.argnames),
                            _source_of(impl.function, info.module),
                            {},
                        )
                    )
        return tuple(impls)

    # -- load time ------------------------------------------------------------------------

    @property
    def functions(self) -> list[T.FunctionSpec]:
        """Every language function the plugins contribute."""
        return [f for p in self.plugins for f in p.functions]

    @property
    def library_roots(self) -> list[Path]:
        """Folders holding the plugins' library packs (for `include`)."""
        roots: dict[Path, None] = {}
        for p in self.plugins:
            for folder in p.libraries:
                roots.setdefault(folder.parent, None)
        return list(roots)

    def get(self, name: str) -> PluginInfo | None:
        return self._by_name.get(name)

    # -- check time -----------------------------------------------------------------------

    def prepare(
        self, claim: Claim, opt_in: frozenset[str] = frozenset()
    ) -> tuple[ClaimContext, list[Finding]]:
        """Validate the claim's documentation sections and derive facts (stages 1-2).
        `opt_in`: the plugin rules the claim's payer pack opts in to."""
        context = ClaimContext(claim, opt_in=opt_in)
        findings: list[Finding] = []
        raw = claim.documentation
        if raw and self._sections:
            for info, section in self._sections:
                value = raw.get(section.name)
                if value is None:
                    continue
                problems: list[DocumentationProblem] = []
                try:
                    parsed = section.schema.check(value, f"documentation.{section.name}", problems)
                except Exception as exc:
                    findings.append(self._failure(info, "documentation validation", exc))
                    continue
                if parsed is not None:
                    context.documentation[section.name] = parsed
                findings.extend(_documentation_finding(info, p) for p in problems)
        for impl in self._derive:
            try:
                facts = impl.call(claim, None, context)
            except Exception as exc:
                findings.append(self._failure(impl.info, impl.hook, exc))
                continue
            if facts is not None:
                context.facts[impl.info.name] = facts
        return context, findings

    def activate(self, context: ClaimContext) -> Any:
        """Make `context_of(claim)` find this context while the packs run (only the
        plugins' language functions need it)."""
        return _CURRENT.set(context) if self._functions else None

    @staticmethod
    def deactivate(token: Any) -> None:
        if token is not None:
            _CURRENT.reset(token)

    def check(self, claim: Claim, context: ClaimContext, out: list[Finding]) -> None:
        """Run the line and claim hooks (stage 4), appending their findings to `out`."""
        if self._check_line:
            for line in claim.lines:
                for impl in self._check_line:
                    self._run(impl, claim, line, context, out)
        for impl in self._check_claim:
            self._run(impl, claim, None, context, out)

    def _run(
        self,
        impl: _Impl,
        claim: Claim,
        line: ServiceLine | None,
        context: ClaimContext,
        out: list[Finding],
    ) -> None:
        """One check hook on one line (or the claim): its findings, or one about its
        failure."""
        try:
            result = impl.call(claim, line, context)
            if result is None:
                return
            produced = list(result)
        except Exception as exc:
            out.append(self._failure(impl.info, impl.hook, exc, line))
            return
        for item in produced:
            out.append(self._accept(impl, item, line))

    def _accept(self, impl: _Impl, item: Any, line: ServiceLine | None) -> Finding:
        """A plugin's finding, stamped with the plugin (a new object: a plugin may return
        the same one twice); a malformed one becomes a finding about the plugin."""
        info = impl.info
        if not isinstance(item, Finding):
            return self._failure(
                info, impl.hook, TypeError(f"returned {type(item).__name__}, not a Finding"), line
            )
        problem = _malformed(item)
        if problem is not None:
            return self._failure(info, impl.hook, ValueError(problem), line)
        rule = impl.rule_ids.get(item.rule)
        if rule is None:
            rule = impl.rule_ids[item.rule] = info.rule_id(item.rule)
        return Finding(
            rule,
            item.kind,
            item.severity,
            item.line if item.line is not None else (line.line if line else None),
            item.group,
            item.carc,
            list(item.rarc),
            item.root_cause,
            item.owner,
            item.message,
            item.reference,
            item.source or dict(impl.source),
        )

    @staticmethod
    def _failure(
        info: PluginInfo, hook: str, exc: Exception, line: ServiceLine | None = None
    ) -> Finding:
        return Finding(
            info.rule_id("plugin-error"),
            "submission",
            "review",
            line.line if line is not None else None,
            "CO",
            "16",
            [],
            "submission",
            "billing",
            f"plugin {info.tag} failed in {hook} ({type(exc).__name__}: {exc}); its checks "
            "of this claim are incomplete: a person must check it",
            None,
            None,
        )


def _source_of(function: Callable[..., Any], default_module: str) -> dict[str, Any]:
    """Where a hook implementation is written, named by its module (not by where the
    plugin is installed): `cleanclaim/plugins/therapy/__init__.py` and its line."""
    module = getattr(function, "__module__", None) or default_module
    loaded = sys.modules.get(module)
    is_package = Path(getattr(loaded, "__file__", None) or "").name == "__init__.py"
    code = getattr(function, "__code__", None)
    return {
        "file": module.replace(".", "/") + ("/__init__.py" if is_package else ".py"),
        "line": code.co_firstlineno if code is not None else None,
    }


def _caller(
    function: Callable[..., Any], argnames: Sequence[str]
) -> Callable[[Claim, ServiceLine | None, ClaimContext], Any]:
    """`function` called as (claim, line, context), passing only the arguments it takes
    (pluggy lets an implementation take a subset, in any order)."""
    order = tuple({"claim": 0, "line": 1, "context": 2}[name] for name in argnames)
    if order == (0, 1, 2):
        return function
    if order == (0, 2):
        return lambda claim, line, context: function(claim, context)
    return lambda claim, line, context: function(*[(claim, line, context)[i] for i in order])


def _malformed(f: Finding) -> str | None:
    if not isinstance(f.rule, str) or not f.rule:
        return "a finding needs a rule name"
    if f.severity not in SEVERITY_RANK:
        return f"severity `{f.severity}` is not one of {', '.join(SEVERITY_RANK)}"
    if f.root_cause not in ROOT_CAUSES:
        return f"root cause `{f.root_cause}` is not one of {', '.join(ROOT_CAUSES)}"
    if f.owner not in OWNERS:
        return f"owner `{f.owner}` is not one of {', '.join(OWNERS)}"
    if f.line is not None and (isinstance(f.line, bool) or not isinstance(f.line, int)):
        return f"line must be a claim line number, not {f.line!r}"
    if not isinstance(f.message, str):
        return "message must be text"
    return None


def _documentation_finding(info: PluginInfo, problem: DocumentationProblem) -> Finding:
    return Finding(
        info.rule_id("documentation-data"),
        "documentation",
        "review",
        None,
        "CO",
        "16",
        ["N705"],
        "documentation",
        "billing",
        f"{problem.where} {problem.message}",
        f"documentation section declared by plugin {info.tag}",
        None,
    )


# ---- other processes --------------------------------------------------------------------


def __getattr__(name: str) -> Any:
    # `EngineRecipe` lives with the engine (engine/engine.py: the one way to build one);
    # it is named here too for the code that imported it from this module.
    if name == "EngineRecipe":
        from cleanclaim.engine.engine import EngineRecipe

        return EngineRecipe
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---- listing ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PluginListing:
    """One installed plugin as `cleanclaim plugins` shows it."""

    name: str
    version: str
    distribution: str
    enabled: bool
    hooks: tuple[str, ...] = ()
    rules: int = 0
    error: str | None = None


def describe_plugins(selection: PluginSelection | None = None) -> list[PluginListing]:
    """Every installed plugin (each loaded on its own, so one broken plugin does not hide
    the others) with its hooks and rule count (language rules + declared Python rules)."""
    installed, conflicts = installed_plugins()
    enabled, _unknown = (selection or PluginSelection()).chosen(installed)
    clashes = dict(conflicts)
    listing = []
    for name in sorted(installed):
        entry = installed[name]
        try:
            if name in clashes:
                raise PluginError([(name, clashes[name])])
            host = _load_one(name)
            info = host.plugins[0]
            listing.append(
                PluginListing(
                    name,
                    info.version,
                    entry.distribution,
                    name in enabled,
                    info.hooks,
                    rule_count(info),
                )
            )
        except PluginError as exc:
            message = "; ".join(m for _n, m in exc.problems)
            listing.append(
                PluginListing(
                    name, entry.version, entry.distribution, name in enabled, error=message
                )
            )
    return listing


def _load_one(name: str) -> PluginHost:
    return load_plugins(PluginSelection(enable=(name,)))


def rule_count(info: PluginInfo) -> int:
    """Rules in the plugin's own pack plus the Python rules it declares."""
    from cleanclaim.dsl.pack import load_sources
    from cleanclaim.dsl.parser import parse_policy

    count = len(info.rules)
    for folder in info.packs:
        sources = load_sources([folder.parent], folder.name)
        for file, text in sources.files.items() if sources else ():
            if sources is not None and sources.file_pack.get(file) != folder.name:
                continue
            tree, _errors = parse_policy(text, file)
            count += len(tree.rules) if tree is not None else 0
    return count

"""Policy packs on disk: a folder with a `pack.yaml` manifest and `.policy` files.

```
payer_policies/medicare/
  pack.yaml          id, name, version, include (library packs), tables, opt_in (plugin
                     rules scoped to other payers that this pack applies too)
  *.policy           policy files, each starting with `version 1`
  tables/, *.csv     data the pack reads (NCCI tables, code lists)
  cases/*.yaml       policy cases (claim in, expected decision out)
```
A pack may `include` library packs (`library: true`, e.g. `common`): their value sets
and rules become part of the including pack, so shared rules are written once.

A manifest without errors is kept in the on-disk cache (dsl/cache.py) once read, so that
a cold start neither imports a YAML parser nor parses the manifests again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cleanclaim.dsl.ast import Span
from cleanclaim.dsl.cache import PickleCache, module_source
from cleanclaim.dsl.errors import PolicyError, did_you_mean

if TYPE_CHECKING:  # yaml is imported when a manifest is not in the cache
    import yaml

    from cleanclaim.dsl.checker import CheckedPack


@dataclass(frozen=True, slots=True)
class TableDecl:
    """A data table named in a manifest (`tables: {ptp: {format: ncci-ptp, file: ...}}`)."""

    name: str
    format: str
    file: Path
    # Where the manifest writes the table's format and file (for errors about them).
    format_span: Span | None = None
    file_span: Span | None = None


@dataclass(frozen=True, slots=True)
class PackManifest:
    id: str
    name: str
    version: str
    library: bool
    include: tuple[str, ...]
    tables: tuple[TableDecl, ...]
    root: Path
    manifest_file: Path
    # Where each `include` entry is written in the manifest, in order.
    include_spans: tuple[Span, ...] = ()
    # `refdata: {value set: {mcd_article: 56781, group: 1, list: covered}}`: value sets
    # that imported CMS data fills (engine/refdata/valuesets.py), as (name, article,
    # group, list, span); without the import the set stays as its policy declares it.
    refdata: tuple[tuple[str, int, int, str, Span | None], ...] = ()
    # Plugin rules scoped to other payers that this pack applies too (`<plugin>/<rule>`).
    opt_in: tuple[str, ...] = ()
    opt_in_spans: tuple[Span, ...] = ()
    # `partial: {value set: where the complete list is}`: value sets of this pack whose
    # shipped copy is incomplete (dsl/valuesets.py says what that changes).
    partial: tuple[tuple[str, str, Span | None], ...] = ()
    # `rules_from_plugins: true`: a payer pack whose rules all come from plugins' packs, so
    # that having no rule of its own (or its includes') is no E505.
    rules_from_plugins: bool = False


@dataclass(slots=True)
class PackSources:
    """A pack and every pack it includes, with the text of their policy files."""

    manifest: PackManifest
    packs: list[PackManifest] = field(default_factory=list)  # included first, then this
    files: dict[str, str] = field(default_factory=dict)  # display path -> text
    file_pack: dict[str, str] = field(default_factory=dict)  # display path -> pack id
    errors: list[PolicyError] = field(default_factory=list)
    # Other texts errors can point into (manifests; the checker adds the CSV files it
    # reads): display path -> text, so that a rendered error shows their line too.
    extra_sources: dict[str, str] = field(default_factory=dict)

    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode())
            h.update(b"\0")
            h.update(self.files[name].encode())
            h.update(b"\0")
        for pack in self.packs:
            for table in pack.tables:
                if table.file.is_file():
                    h.update(table.file.read_bytes())
        return "sha256:" + h.hexdigest()


def display_path(path: Path) -> str:
    """How a source file is named in errors and findings: `payer_policies/<pack>/<file>`
    for shipped packs, else the path as found."""
    parts = path.parts
    if "payer_policies" in parts:
        return "/".join(parts[parts.index("payer_policies") :])
    return str(path)


def find_pack(roots: Sequence[Path], pack_id: str) -> Path | None:
    """The folder of `pack_id` in the first root that has it (later roots shadow none).
    A root that is itself a pack folder (has a `pack.yaml`) holds that one pack."""
    for root in roots:
        if root.name == pack_id and (root / "pack.yaml").is_file():
            return root
        candidate = root / pack_id
        if (candidate / "pack.yaml").is_file():
            return candidate
    return None


def list_packs(roots: Sequence[Path]) -> list[str]:
    """Every pack id found under the roots, first root wins on duplicates; a root that is
    a pack folder itself lists that pack."""
    seen: dict[str, None] = {}
    for root in roots:
        if (root / "pack.yaml").is_file():
            seen.setdefault(root.name, None)
        elif root.is_dir():
            for manifest in sorted(root.glob("*/pack.yaml")):
                seen.setdefault(manifest.parent.name, None)
    return list(seen)


def shipped_library_root() -> Path:
    """The folder of the packs that ship with cleanclaim, where library packs (`common`)
    are found when the `--policies` folders do not have a pack of that id."""
    from importlib import resources

    return Path(str(resources.files("cleanclaim.payer_policies")))


def with_libraries(roots: Sequence[Path]) -> list[Path]:
    """The roots where includes are looked up: the given ones, then the shipped packs (so
    `include: [common]` works with `--policies`; a pack of the same id in a given root
    replaces the shipped one, since the first root wins)."""
    shipped = shipped_library_root()
    return [*roots, shipped] if shipped not in roots else list(roots)


def root_problems(roots: Sequence[Path]) -> list[PolicyError]:
    """A policy folder that holds no pack is an error, never an empty engine."""
    problems: list[PolicyError] = []
    for root in roots:
        if list_packs([root]):
            continue
        span = Span(str(root), 1, 1, 1, 2)
        if not root.is_dir():
            problems.append(
                PolicyError(
                    "E506",
                    f"policy folder `{root}` does not exist",
                    span,
                    "--policies names a folder of pack folders or one pack folder",
                )
            )
            continue
        deeper = sorted(root.rglob("pack.yaml"))[:3]
        loose = sorted(root.glob("*.policy"))[:1]
        hint = (
            "packs found deeper: "
            + ", ".join(str(m.parent) for m in deeper)
            + " (name that folder)"
            if deeper
            else f"`{loose[0].name}` has no pack: add a pack.yaml (id: {root.name}) to `{root}`"
            if loose
            else "a pack is a folder with a pack.yaml and .policy files"
        )
        problems.append(PolicyError("E506", f"no policy pack in `{root}`", span, hint))
    return problems


def pack_policy_files(folder: Path) -> list[Path]:
    """The policy files of a pack: in its folder and its subfolders, except subfolders
    that are packs of their own (have a pack.yaml)."""
    found: list[Path] = []
    for path in sorted(folder.rglob("*.policy")):
        parents = path.relative_to(folder).parents
        if any((folder / sub / "pack.yaml").is_file() for sub in parents if str(sub) != "."):
            continue
        found.append(path)
    return found


def _manifest_error(
    path: Path, message: str, hint: str | None = None, span: Span | None = None
) -> PolicyError:
    return PolicyError("E501", message, span or Span(display_path(path), 1, 1, 1, 2), hint)


def _node_span(file: str, node: yaml.Node) -> Span:
    """The span of a YAML node: its first line, to the node's end if that is on the line."""
    start, end = node.start_mark, node.end_mark
    line, column = start.line + 1, start.column + 1
    end_column = (
        end.column + 1 if end.line == start.line and end.column > start.column else column + 1
    )
    return Span(file, line, column, line, end_column)


class _ManifestNodes:
    """Where the keys and values of a manifest stand, to locate errors about them."""

    def __init__(self, file: str, root: yaml.Node | None) -> None:
        import yaml

        self.file = file
        self.keys: dict[str, Span] = {}
        self.values: dict[str, yaml.Node] = {}
        if isinstance(root, yaml.MappingNode):
            for key, value in root.value:
                if isinstance(key, yaml.ScalarNode):
                    self.keys.setdefault(str(key.value), _node_span(file, key))
                    self.values.setdefault(str(key.value), value)

    def key(self, name: str) -> Span | None:
        return self.keys.get(name)

    def value(self, name: str) -> Span | None:
        node = self.values.get(name)
        return _node_span(self.file, node) if node is not None else self.key(name)

    def items(self, name: str) -> list[Span]:
        """The spans of the entries of a list value."""
        import yaml

        node = self.values.get(name)
        if isinstance(node, yaml.SequenceNode):
            return [_node_span(self.file, item) for item in node.value]
        return []

    def entry(self, mapping: str, key: str, sub: str | None = None) -> Span | None:
        """The span of `key` in the mapping value of `mapping`, or of its `sub` value."""
        import yaml

        node = self.values.get(mapping)
        if not isinstance(node, yaml.MappingNode):
            return None
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and str(k.value) == key:
                if sub is None:
                    return _node_span(self.file, k)
                if isinstance(v, yaml.MappingNode):
                    for k2, v2 in v.value:
                        if isinstance(k2, yaml.ScalarNode) and k2.value == sub:
                            return _node_span(self.file, v2)
                return _node_span(self.file, k)
        return None


def _load_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return data, node


# Manifests read before (dsl/cache.py): what shapes one is its text, its folder's path,
# the code here and the YAML parser's release.
_MANIFESTS = PickleCache(
    "manifests",
    sources=("pack.py", "ast.py", "errors.py"),
    salt=lambda: module_source("yaml"),
    allowed={
        "cleanclaim.dsl.pack": frozenset({"PackManifest", "TableDecl"}),
        "cleanclaim.dsl.ast": frozenset({"Span"}),
        "pathlib": frozenset({"PosixPath", "WindowsPath"}),
    },
)


def read_manifest(folder: Path) -> tuple[PackManifest | None, list[PolicyError]]:
    manifest, errors, _text = _read_manifest(folder)
    return manifest, errors


def _read_manifest(folder: Path) -> tuple[PackManifest | None, list[PolicyError], str | None]:
    """The manifest of a pack folder, the errors in it (located at the key or value they
    are about) and its text."""
    path = folder / "pack.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [_manifest_error(path, f"cannot read manifest: {exc}")], None
    # A manifest's reading depends on its text and the folder's path as given only.
    entry = _MANIFESTS.entry(str(folder), text)
    if entry is not None:
        cached = _MANIFESTS.load(entry)
        if isinstance(cached, PackManifest) and cached.root == folder:
            return cached, [], text
    manifest, errors = _parse_manifest(folder, text)
    if entry is not None and manifest is not None and not errors:
        _MANIFESTS.store(entry, manifest)
    return manifest, errors, text


def _parse_manifest(folder: Path, text: str) -> tuple[PackManifest | None, list[PolicyError]]:
    """The manifest text of a pack folder read, with the errors in it."""
    import yaml

    path = folder / "pack.yaml"
    file = display_path(path)
    try:
        data, root = _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        span = (
            Span(file, mark.line + 1, mark.column + 1, mark.line + 1, mark.column + 2)
            if mark is not None
            else None
        )
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [_manifest_error(path, f"cannot read manifest: {problem}", span=span)]
    if not isinstance(data, dict):
        return None, [_manifest_error(path, "the manifest must be a mapping")]
    nodes = _ManifestNodes(file, root)
    errors: list[PolicyError] = []
    known = {
        "id",
        "name",
        "version",
        "library",
        "include",
        "tables",
        "description",
        "refdata",
        "opt_in",
        "partial",
        "rules_from_plugins",
    }
    for key in data:
        if key not in known:
            errors.append(
                _manifest_error(
                    path,
                    f"unknown manifest key `{key}`",
                    did_you_mean(str(key), known),
                    nodes.key(str(key)),
                )
            )
    pack_id = data.get("id", folder.name)
    if pack_id != folder.name:
        errors.append(
            _manifest_error(
                path,
                f"pack id `{pack_id}` differs from its folder name `{folder.name}`",
                span=nodes.value("id"),
            )
        )
    include = data.get("include") or []
    include_spans = nodes.items("include")
    if not isinstance(include, list) or not all(isinstance(i, str) for i in include):
        errors.append(
            _manifest_error(
                path,
                "`include` must be a list of pack ids",
                "e.g. include: [common]",
                nodes.value("include"),
            )
        )
        include, include_spans = [], []
    opt_in = data.get("opt_in") or []
    opt_in_spans = nodes.items("opt_in")
    if not isinstance(opt_in, list) or not all(
        isinstance(i, str) and i.count("/") == 1 for i in opt_in
    ):
        errors.append(
            _manifest_error(
                path,
                "`opt_in` must be a list of plugin rules `<plugin>/<rule>`",
                "e.g. opt_in: [therapy/eight-minute-rule]",
                nodes.value("opt_in"),
            )
        )
        opt_in, opt_in_spans = [], []
    tables: list[TableDecl] = []
    raw_tables = data.get("tables") or {}
    if not isinstance(raw_tables, dict):
        errors.append(
            _manifest_error(
                path, "`tables` must map a name to {format, file}", span=nodes.value("tables")
            )
        )
        raw_tables = {}
    for name, spec in raw_tables.items():
        if not isinstance(spec, dict) or "format" not in spec or "file" not in spec:
            errors.append(
                _manifest_error(
                    path,
                    f"table `{name}` needs `format` and `file`",
                    span=nodes.entry("tables", str(name)),
                )
            )
            continue
        tables.append(
            TableDecl(
                str(name),
                str(spec["format"]),
                folder / str(spec["file"]),
                nodes.entry("tables", str(name), "format"),
                nodes.entry("tables", str(name), "file"),
            )
        )
    refdata = _refdata_sources(path, data.get("refdata"), nodes, errors)
    partial: list[tuple[str, str, Span | None]] = []
    raw_partial = data.get("partial") or {}
    if not isinstance(raw_partial, dict):
        errors.append(
            _manifest_error(
                path,
                "`partial` must map a value set to the source of its complete list",
                span=nodes.value("partial"),
            )
        )
        raw_partial = {}
    for name, where in raw_partial.items():
        if not isinstance(where, str) or not where.strip():
            errors.append(
                _manifest_error(
                    path,
                    f"partial value set `{name}` must name where its complete list is",
                    'e.g. partial: {tte_group1: "CMS MCD article A56781, Group 1"}',
                    nodes.entry("partial", str(name)),
                )
            )
            continue
        partial.append((str(name), where.strip(), nodes.entry("partial", str(name))))
    rules_from_plugins = data.get("rules_from_plugins", False)
    if not isinstance(rules_from_plugins, bool):
        errors.append(
            _manifest_error(
                path,
                "`rules_from_plugins` must be true or false",
                "rules_from_plugins: true for a pack whose rules all come from plugins",
                nodes.value("rules_from_plugins"),
            )
        )
        rules_from_plugins = False
    manifest = PackManifest(
        id=str(pack_id),
        name=str(data.get("name", pack_id)),
        version=str(data.get("version", "0")),
        library=bool(data.get("library", False)),
        include=tuple(include),
        tables=tuple(tables),
        root=folder,
        manifest_file=path,
        include_spans=tuple(include_spans) if len(include_spans) == len(include) else (),
        refdata=refdata,
        opt_in=tuple(opt_in),
        opt_in_spans=tuple(opt_in_spans) if len(opt_in_spans) == len(opt_in) else (),
        partial=tuple(partial),
        rules_from_plugins=rules_from_plugins,
    )
    return manifest, errors


_REFDATA_LISTS = ("covered", "noncovered", "hcpc")


def _refdata_sources(
    path: Path, raw: Any, nodes: _ManifestNodes, errors: list[PolicyError]
) -> tuple[tuple[str, int, int, str, Span | None], ...]:
    """The manifest's `refdata:` entries, each checked (cmsdata helper, issue 11 §2)."""
    if raw is None:
        return ()
    example = "e.g. refdata: {tte_group1: {mcd_article: 56781, group: 1, list: covered}}"
    if not isinstance(raw, dict):
        errors.append(
            _manifest_error(
                path,
                "`refdata` must map a value set to its CMS source",
                example,
                nodes.value("refdata"),
            )
        )
        return ()
    out: list[tuple[str, int, int, str, Span | None]] = []
    for name, spec in raw.items():
        span = nodes.entry("refdata", str(name))
        article = (
            str(spec.get("mcd_article", "")).upper().removeprefix("A")
            if isinstance(spec, dict)
            else ""
        )
        group = spec.get("group") if isinstance(spec, dict) else None
        kind = spec.get("list", "covered") if isinstance(spec, dict) else None
        unknown = (
            sorted(set(spec) - {"mcd_article", "group", "list"}) if isinstance(spec, dict) else []
        )
        if (
            not article.isdigit()
            or not isinstance(group, int)
            or isinstance(group, bool)
            or kind not in _REFDATA_LISTS
            or unknown
        ):
            errors.append(
                _manifest_error(
                    path,
                    f"refdata `{name}` needs mcd_article (e.g. 56781), group (a number) "
                    f"and list ({', '.join(_REFDATA_LISTS)})"
                    + (f"; unknown key(s) {', '.join(map(str, unknown))}" if unknown else ""),
                    example,
                    span,
                )
            )
            continue
        out.append((str(name), int(article), group, str(kind), span))
    return tuple(out)


def load_sources(roots: Sequence[Path], pack_id: str) -> PackSources | None:
    """Read a pack and its includes (depth first, each once). None if there is no such pack."""
    folder = find_pack(roots, pack_id)
    if folder is None:
        return None
    manifest, errors, text = _read_manifest(folder)
    if manifest is None:
        placeholder = PackManifest(
            pack_id, pack_id, "0", False, (), (), folder, folder / "pack.yaml"
        )
        sources = PackSources(placeholder, [], {}, {}, errors)
        if text is not None:
            sources.extra_sources[display_path(placeholder.manifest_file)] = text
        return sources
    sources = PackSources(manifest)
    sources.errors.extend(errors)
    if text is not None:
        sources.extra_sources[display_path(manifest.manifest_file)] = text
    _collect(roots, manifest, sources, visiting=[])
    return sources


def _collect(
    roots: Sequence[Path], manifest: PackManifest, sources: PackSources, visiting: list[str]
) -> None:
    if any(p.id == manifest.id for p in sources.packs):
        return
    visiting = [*visiting, manifest.id]
    lookup = with_libraries(roots)
    for index, included in enumerate(manifest.include):
        span = (
            manifest.include_spans[index]
            if index < len(manifest.include_spans)
            else Span(display_path(manifest.manifest_file), 1, 1, 1, 2)
        )
        if included in visiting:
            sources.errors.append(
                _manifest_error(
                    manifest.manifest_file,
                    f"include cycle: {' -> '.join([*visiting, included])}",
                    span=span,
                )
            )
            continue
        folder = find_pack(lookup, included)
        if folder is None:
            where = ", ".join(str(r) for r in lookup)
            sources.errors.append(
                PolicyError(
                    "E502",
                    f"pack `{manifest.id}` includes unknown pack `{included}` (packs are "
                    f"looked up in: {where})",
                    span,
                    did_you_mean(included, list_packs(lookup))
                    or "put the pack in one of these folders, or add its folder with --policies",
                )
            )
            continue
        sub, errors, text = _read_manifest(folder)
        sources.errors.extend(errors)
        if text is not None:
            sources.extra_sources.setdefault(display_path(folder / "pack.yaml"), text)
        if sub is not None:
            _collect(lookup, sub, sources, visiting)
    sources.packs.append(manifest)
    for policy in pack_policy_files(manifest.root):
        name = display_path(policy)
        try:
            sources.files[name] = policy.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            sources.errors.append(
                PolicyError("E503", f"cannot read policy file: {exc}", Span(name, 1, 1, 1, 2))
            )
            continue
        sources.file_pack[name] = manifest.id


def check_not_empty(checked: CheckedPack) -> None:
    """A payer pack without a single rule (its own or its includes') is an error (E505),
    never an engine that passes every claim, unless its manifest says its rules come from
    plugins (`rules_from_plugins: true`). Both the engine and `lint` ask it. Not asked of
    a pack that has errors already: a file that does not parse has no rules to count."""
    sources = checked.sources
    if (
        sources.manifest.library
        or sources.manifest.rules_from_plugins
        or checked.rules
        or checked.errors
    ):
        return
    own = [name for name, pack in sources.file_pack.items() if pack == sources.manifest.id]
    checked.errors.append(
        PolicyError(
            "E505",
            f"pack `{sources.manifest.id}` has no rules"
            + ("" if own else " (no .policy file in its folder or its subfolders)"),
            Span(display_path(sources.manifest.manifest_file), 1, 1, 1, 2),
            "write rules in .policy files of the pack folder (or its subfolders); mark a pack "
            "that only shares value sets `library: true`, and a payer pack whose rules all "
            "come from plugins `rules_from_plugins: true`",
        )
    )


def all_tables(sources: PackSources) -> dict[str, TableDecl]:
    """Tables visible to the pack: its own and its includes' (its own win)."""
    tables: dict[str, TableDecl] = {}
    for pack in sources.packs:
        for table in pack.tables:
            tables[table.name] = table
    return tables


def policy_files(paths: Iterable[Path]) -> list[Path]:
    """Expand folders to the `.policy` files below them, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.rglob("*.policy")))
        else:
            found.append(path)
    return found

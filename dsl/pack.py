"""Policy packs on disk: a folder with a `pack.yaml` manifest and `.policy` files.

```
payer_policies/medicare/
  pack.yaml          id, name, version, include (library packs), tables
  *.policy           policy files, each starting with `version 1`
  tables/, *.csv     data the pack reads (NCCI tables, code lists)
  cases/*.yaml       policy cases (claim in, expected decision out)
```
A pack may `include` library packs (`library: true`, e.g. `common`): their value sets
and rules become part of the including pack, so shared rules are written once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cleanclaim.dsl.ast import Span
from cleanclaim.dsl.errors import PolicyError, did_you_mean


@dataclass(frozen=True, slots=True)
class TableDecl:
    """A data table named in a manifest (`tables: {ptp: {format: ncci-ptp, file: ...}}`)."""

    name: str
    format: str
    file: Path


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


@dataclass(slots=True)
class PackSources:
    """A pack and every pack it includes, with the text of their policy files."""

    manifest: PackManifest
    packs: list[PackManifest] = field(default_factory=list)  # included first, then this
    files: dict[str, str] = field(default_factory=dict)  # display path -> text
    file_pack: dict[str, str] = field(default_factory=dict)  # display path -> pack id
    errors: list[PolicyError] = field(default_factory=list)

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
        return "/".join(parts[parts.index("payer_policies"):])
    return str(path)


def find_pack(roots: Sequence[Path], pack_id: str) -> Path | None:
    """The folder of `pack_id` in the first root that has it (later roots shadow none)."""
    for root in roots:
        candidate = root / pack_id
        if (candidate / "pack.yaml").is_file():
            return candidate
    return None


def list_packs(roots: Sequence[Path]) -> list[str]:
    """Every pack id found under the roots, first root wins on duplicates."""
    seen: dict[str, None] = {}
    for root in roots:
        if root.is_dir():
            for manifest in sorted(root.glob("*/pack.yaml")):
                seen.setdefault(manifest.parent.name, None)
    return list(seen)


def _manifest_error(path: Path, message: str, hint: str | None = None) -> PolicyError:
    return PolicyError("E501", message, Span(display_path(path), 1, 1, 1, 2), hint)


def read_manifest(folder: Path) -> tuple[PackManifest | None, list[PolicyError]]:
    path = folder / "pack.yaml"
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return None, [_manifest_error(path, f"cannot read manifest: {exc}")]
    if not isinstance(data, dict):
        return None, [_manifest_error(path, "the manifest must be a mapping")]
    errors: list[PolicyError] = []
    known = {"id", "name", "version", "library", "include", "tables", "description"}
    for key in data:
        if key not in known:
            errors.append(_manifest_error(path, f"unknown manifest key `{key}`",
                                          did_you_mean(str(key), known)))
    pack_id = data.get("id", folder.name)
    if pack_id != folder.name:
        errors.append(_manifest_error(path, f"pack id `{pack_id}` differs from its folder "
                                      f"name `{folder.name}`"))
    include = data.get("include") or []
    if not isinstance(include, list) or not all(isinstance(i, str) for i in include):
        errors.append(_manifest_error(path, "`include` must be a list of pack ids"))
        include = []
    tables: list[TableDecl] = []
    raw_tables = data.get("tables") or {}
    if not isinstance(raw_tables, dict):
        errors.append(_manifest_error(path, "`tables` must map a name to {format, file}"))
        raw_tables = {}
    for name, spec in raw_tables.items():
        if not isinstance(spec, dict) or "format" not in spec or "file" not in spec:
            errors.append(_manifest_error(path, f"table `{name}` needs `format` and `file`"))
            continue
        tables.append(TableDecl(str(name), str(spec["format"]), folder / str(spec["file"])))
    manifest = PackManifest(
        id=str(pack_id),
        name=str(data.get("name", pack_id)),
        version=str(data.get("version", "0")),
        library=bool(data.get("library", False)),
        include=tuple(include),
        tables=tuple(tables),
        root=folder,
        manifest_file=path,
    )
    return manifest, errors


def load_sources(roots: Sequence[Path], pack_id: str) -> PackSources | None:
    """Read a pack and its includes (depth first, each once). None if there is no such pack."""
    folder = find_pack(roots, pack_id)
    if folder is None:
        return None
    manifest, errors = read_manifest(folder)
    if manifest is None:
        placeholder = PackManifest(pack_id, pack_id, "0", False, (), (), folder,
                                   folder / "pack.yaml")
        return PackSources(placeholder, [], {}, {}, errors)
    sources = PackSources(manifest)
    sources.errors.extend(errors)
    _collect(roots, manifest, sources, visiting=[])
    return sources


def _collect(roots: Sequence[Path], manifest: PackManifest, sources: PackSources,
             visiting: list[str]) -> None:
    if any(p.id == manifest.id for p in sources.packs):
        return
    visiting = [*visiting, manifest.id]
    for included in manifest.include:
        if included in visiting:
            sources.errors.append(_manifest_error(
                manifest.manifest_file, f"include cycle: {' -> '.join([*visiting, included])}"))
            continue
        folder = find_pack(roots, included)
        if folder is None:
            sources.errors.append(PolicyError(
                "E502", f"pack `{manifest.id}` includes unknown pack `{included}`",
                Span(display_path(manifest.manifest_file), 1, 1, 1, 2),
                did_you_mean(included, list_packs(roots))))
            continue
        sub, errors = read_manifest(folder)
        sources.errors.extend(errors)
        if sub is not None:
            _collect(roots, sub, sources, visiting)
    sources.packs.append(manifest)
    for policy in sorted(manifest.root.glob("*.policy")):
        name = display_path(policy)
        try:
            sources.files[name] = policy.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            sources.errors.append(PolicyError("E503", f"cannot read policy file: {exc}",
                                              Span(name, 1, 1, 1, 2)))
            continue
        sources.file_pack[name] = manifest.id


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

"""Running lint: the ordered table of stages over one pack, and the targets a user names
(pack ids, pack folders, folders of packs, policy files)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from cleanclaim.dsl import ast
from cleanclaim.dsl.checker import CheckEnv, check_pack
from cleanclaim.dsl.errors import PolicyError
from cleanclaim.dsl.lint import conflicts, outcomes, reads, scopes, valuesets, versions
from cleanclaim.dsl.lint.context import LintContext, Stage, used_names
from cleanclaim.dsl.lint.problems import LintProblem, LintReport
from cleanclaim.dsl.pack import (
    PackManifest,
    PackSources,
    all_tables,
    check_not_empty,
    display_path,
    list_packs,
    load_sources,
    pack_policy_files,
)
from cleanclaim.dsl.parser import parse_policy

TableLoader = Callable[[Path], object]


def lint_pack(
    sources: PackSources,
    env: CheckEnv,
    real_paths: Mapping[str, Path],
    *,
    today: dt.date,
    own_files: Iterable[str] | None = None,
    used_elsewhere: Iterable[str] = (),
    table_loaders: Mapping[str, TableLoader] | None = None,
) -> list[LintProblem]:
    """Check a pack and run the quality stages; every problem found, sorted.

    own_files: the files quality warnings are reported for (default: the files of the pack
    itself, not of the packs it includes; their errors are reported all the same, since
    they stop this pack from compiling).
    used_elsewhere: value set names used by packs that include this one.
    table_loaders: table format -> loader; a table that does not load is an E504 error.
    """
    checked = check_pack(sources, env, real_paths)
    if sources.manifest.manifest_file.is_file():  # a pack, not a loose policy file
        check_not_empty(checked)
    problems = [LintProblem.from_error(e) for e in checked.errors]
    problems.extend(_table_problems(sources, table_loaders or {}))
    if own_files is None:
        own_files = [
            name for name, pack in sources.file_pack.items() if pack == sources.manifest.id
        ]
    context = LintContext(checked, frozenset(own_files), today, frozenset(used_elsewhere))
    for _name, stage in STAGES:
        try:
            stage(context)
        except RecursionError:  # an expression nested hundreds deep: skip the stage
            continue
    problems.extend(context.problems)
    return sorted(problems, key=LintProblem.sort_key)


def _table_problems(sources: PackSources, loaders: Mapping[str, TableLoader]) -> list[LintProblem]:
    problems = []
    for table in all_tables(sources).values():
        loader = loaders.get(table.format)
        if loader is None:
            continue
        try:
            loader(table.file)
        except Exception as exc:  # any loader failure is a problem of the table, not of lint
            manifest = next(
                (p.manifest_file for p in sources.packs if table in p.tables),
                sources.manifest.manifest_file,
            )
            problems.append(
                LintProblem(
                    "E504",
                    f"table `{table.name}` ({table.format}): {exc}",
                    ast.Span(display_path(manifest), 1, 1, 1, 2),
                    "check the `file` of the table in pack.yaml",
                )
            )
    return problems


STAGES: tuple[tuple[str, Stage], ...] = (
    ("value-sets", valuesets.value_sets),
    ("scopes", scopes.scopes),
    ("versions", versions.versions),
    ("exceptions", scopes.exceptions),
    ("conflicts", conflicts.conflicts),
    ("references", outcomes.references),
    ("partial-data", outcomes.partial_data),
    ("adjustment-codes", outcomes.adjustment_usage),
    ("optional-reads", lambda ctx: reads.unguarded_reads(ctx.checked, ctx.warn)),
    ("plans", lambda ctx: reads.unused_plans(ctx.checked, ctx.warn)),
)

# ---- what to lint: packs, folders, files --------------------------------------------------


class LintTargetError(Exception):
    """A lint target that is neither a pack, a folder of packs nor a policy file."""


def _real_paths(sources: PackSources) -> dict[str, Path]:
    return {display_path(p): p for pack in sources.packs for p in pack_policy_files(pack.root)}


def _read_sources(report: LintReport, sources: PackSources) -> None:
    report.sources.update(sources.files)
    for pack in sources.packs:
        for csv in pack.root.glob("*.csv"):
            try:
                report.sources[display_path(csv)] = csv.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError):
                continue


def _includers_use(roots: Sequence[Path], library: str) -> set[str]:
    """Names used by the packs (under `roots`) that include the library `library`."""
    names: set[str] = set()
    for pack_id in list_packs(roots):
        if pack_id == library:
            continue
        sources = load_sources(roots, pack_id)
        if sources is None or library not in {p.id for p in sources.packs}:
            continue
        trees = []
        for name, text in sources.files.items():
            if sources.file_pack.get(name) != library:
                tree, _errors = parse_policy(text, name)
                if tree is not None:
                    trees.append(tree)
        names |= used_names(trees)
    return names


def lint(
    targets: Sequence[Path | str],
    env: CheckEnv,
    *,
    roots: Sequence[Path],
    today: dt.date,
    table_loaders: Mapping[str, TableLoader] | None = None,
) -> LintReport:
    """Lint packs and policy files.

    A target is a pack id (looked up in `roots`), a pack folder (with pack.yaml), a folder
    of pack folders, or a `.policy` file: a file in a pack folder is linted with its pack
    and only its own problems are shown; a file outside any pack is linted alone, as a
    pack named after its folder. No target: every pack under `roots`.
    Raises `LintTargetError` for a target that is none of these.
    """
    report = LintReport()
    jobs: list[tuple[Sequence[Path], str, str | None]] = []  # (roots, pack id, only file)
    loose: list[Path] = []
    for target in targets:
        jobs_for, files = _resolve(target, roots)
        jobs.extend(jobs_for)
        loose.extend(files)
    if not targets:
        jobs = [(roots, pack_id, None) for pack_id in list_packs(roots)]
        if not jobs:  # never "no problems" for folders that hold no pack
            raise LintTargetError("no policy pack in " + ", ".join(map(str, roots)))
    for pack_roots, pack_id, only in jobs:
        sources = load_sources(pack_roots, pack_id)
        if sources is None:
            raise LintTargetError(f"no pack `{pack_id}`")
        used = _includers_use(pack_roots, pack_id) if sources.manifest.library else set()
        problems = lint_pack(
            sources,
            env,
            _real_paths(sources),
            today=today,
            used_elsewhere=used,
            table_loaders=table_loaders,
        )
        if only is not None:
            problems = [p for p in problems if p.span.file == only]
        _read_sources(report, sources)
        report.add(problems)
        report.checked.append(only or pack_id)
    for path in loose:
        sources = _loose_file(path)
        problems = lint_pack(
            sources, env, {display_path(path): path}, today=today, table_loaders=table_loaders
        )
        report.sources.update(sources.files)
        report.add(problems)
        report.checked.append(display_path(path))
    return report


def _resolve(
    target: Path | str, roots: Sequence[Path]
) -> tuple[list[tuple[Sequence[Path], str, str | None]], list[Path]]:
    path = Path(target)
    if path.is_file():
        if path.suffix != ".policy":
            raise LintTargetError(f"{path}: not a .policy file")
        folder = _named(path.parent)
        if (folder / "pack.yaml").is_file():
            return [([folder.parent], folder.name, display_path(folder / path.name))], []
        return [], [path]
    if path.is_dir():
        folder = _named(path)
        if (folder / "pack.yaml").is_file():
            return [([folder.parent], folder.name, None)], []
        packs = list_packs([folder])
        if packs:
            return [([folder], pack_id, None) for pack_id in packs], []
        files = sorted(path.rglob("*.policy"))
        if files:
            return [], files
        raise LintTargetError(f"{path}: no pack, pack folder or .policy file here")
    if isinstance(target, str) and "/" not in target and target in list_packs(roots):
        return [(roots, target, None)], []
    raise LintTargetError(f"{target}: no such pack, folder or file")


def _named(folder: Path) -> Path:
    """A folder as given when it has a name (paths in messages stay as the user wrote
    them), else resolved (`.` has no name, and a pack is named after its folder)."""
    return folder if folder.name else folder.resolve()


def _loose_file(path: Path) -> PackSources:
    """A policy file outside any pack, as a pack of one file named after its folder."""
    folder = path.resolve().parent
    pack_id = folder.name
    manifest = PackManifest(pack_id, pack_id, "0", False, (), (), folder, folder / "pack.yaml")
    name = display_path(path)
    sources = PackSources(manifest, [manifest])
    try:
        sources.files[name] = path.read_text(encoding="utf-8")
        sources.file_pack[name] = pack_id
    except (OSError, UnicodeDecodeError) as exc:
        sources.errors.append(
            PolicyError("E503", f"cannot read policy file: {exc}", ast.Span(name, 1, 1, 1, 2))
        )
    return sources

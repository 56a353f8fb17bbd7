"""Semantic checks over a pack's syntax trees, as an ordered table of named stages.

Every stage records errors and goes on, so one run reports every problem of a pack,
sorted by position. What the checks learn (the type of each expression, the resolved
value sets) is kept in a `CheckedPack` for the compiler.

This module holds the two parse stages and the table; the stages of value sets
(dsl/check_valuesets.py), tables (dsl/tables.py), counters (dsl/history.py), rules
(dsl/check_rules.py, with expression types in dsl/check_types.py) and exceptions
(dsl/exceptions.py) have modules of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cleanclaim.dsl import ast
from cleanclaim.dsl import types as T
from cleanclaim.dsl.check_rules import check_rules
from cleanclaim.dsl.check_valuesets import check_value_sets
from cleanclaim.dsl.errors import PolicyError, did_you_mean
from cleanclaim.dsl.exceptions import check_exceptions
from cleanclaim.dsl.history import Counter, check_counter_calls, check_counters
from cleanclaim.dsl.pack import (
    PackSources,
    TableDecl,
    all_tables,
    display_path,
)
from cleanclaim.dsl.parsed import parse_policy_file_cached
from cleanclaim.dsl.tables import DataTableSchema, LookupTable, check_tables
from cleanclaim.dsl.valuesets import CodeSet


@dataclass(slots=True)
class CheckEnv:
    """What the language can see beyond its own text: functions and table formats, and
    value sets given from outside (the engine's imported CMS lists, engine/refdata/),
    which stand for the pack's declaration of the same name and everything built on it."""

    functions: Mapping[str, T.FunctionSpec]
    table_formats: frozenset[str] = frozenset()
    valuesets: Mapping[str, CodeSet] = field(default_factory=dict)
    # Data table formats whose rows rules read by key (`mpfs[line.code].global_days`):
    # format -> keys and columns (dsl/tables.py).
    table_schemas: Mapping[str, DataTableSchema] = field(default_factory=dict)


@dataclass(slots=True)
class CheckedPack:
    sources: PackSources
    files: list[ast.PolicyFile] = field(default_factory=list)
    valuesets: dict[str, CodeSet] = field(default_factory=dict)
    valueset_decls: dict[str, ast.ValueSet] = field(default_factory=dict)
    rules: list[tuple[str, ast.Rule]] = field(default_factory=list)  # (pack id, rule)
    types: dict[int, T.Type] = field(default_factory=dict)  # id(expr) -> type
    literal_sets: dict[int, CodeSet] = field(default_factory=dict)  # id(CodeList) -> set
    # id(message Text) -> the `{field}` places of its template: (start, end, path, type)
    templates: dict[int, list[tuple[int, int, ast.Expr, T.Type]]] = field(default_factory=dict)
    scope_sets: dict[str, CodeSet] = field(default_factory=dict)  # rule id -> codes
    tables: dict[str, TableDecl] = field(default_factory=dict)
    errors: list[PolicyError] = field(default_factory=list)
    real_paths: dict[str, Path] = field(default_factory=dict)
    # Value sets a syntax error blanked out: their users are not reported as unknown too.
    broken_names: set[str] = field(default_factory=set)
    # Claim-history counters by name (dsl/history.py).
    counters: dict[str, Counter] = field(default_factory=dict)
    # Lookup tables the policy files declare (`table NAME = ...`, dsl/tables.py): the
    # declarations, and the tables read without errors.
    lookup_decls: dict[str, ast.TableDef] = field(default_factory=dict)
    lookups: dict[str, LookupTable] = field(default_factory=dict)
    # `except rule`: rule index -> the indices of the rules whose findings suppress its
    # own (dsl/exceptions.py).
    excepts: dict[int, tuple[int, ...]] = field(default_factory=dict)


Stage = Callable[[CheckedPack, CheckEnv], None]


def check_pack(sources: PackSources, env: CheckEnv, real_paths: Mapping[str, Path]) -> CheckedPack:
    """Run every stage over the pack; `errors` of the result holds all problems found."""
    checked = CheckedPack(sources, real_paths=dict(real_paths))
    checked.errors.extend(sources.errors)
    for _name, stage in STAGES:
        stage(checked, env)
    checked.errors.sort(key=PolicyError.sort_key)
    return checked


# ---- stage: parse --------------------------------------------------------------------


def _parse(checked: CheckedPack, env: CheckEnv) -> None:
    for name, text in checked.sources.files.items():
        parsed = parse_policy_file_cached(text, name)
        checked.errors.extend(parsed.errors)
        checked.broken_names |= parsed.broken_names
        if parsed.tree is not None:
            checked.files.append(parsed.tree)


# ---- stage: declarations -------------------------------------------------------------


def _declarations(checked: CheckedPack, env: CheckEnv) -> None:
    checked.tables = all_tables(checked.sources)
    manifest = display_path(checked.sources.manifest.manifest_file)
    for table in checked.tables.values():
        if env.table_formats and table.format not in env.table_formats:
            checked.errors.append(
                PolicyError(
                    "E501",
                    f"table `{table.name}` has unknown format `{table.format}`",
                    table.format_span or ast.Span(manifest, 1, 1, 1, 2),
                    did_you_mean(table.format, env.table_formats)
                    or "formats: " + ", ".join(sorted(env.table_formats)),
                )
            )
    seen_rules: dict[str, ast.Rule] = {}
    for tree in checked.files:
        pack_id = checked.sources.file_pack.get(tree.path, checked.sources.manifest.id)
        for vs in tree.valuesets:
            if vs.name in checked.valueset_decls:
                first = checked.valueset_decls[vs.name].span
                checked.errors.append(
                    PolicyError(
                        "E105",
                        f"value set `{vs.name}` is already defined at {first.file}:{first.line}",
                        vs.span,
                        "give one of them another name",
                    )
                )
                continue
            checked.valueset_decls[vs.name] = vs
        for rule in tree.rules:
            if rule.id in seen_rules:
                first = seen_rules[rule.id].span
                checked.errors.append(
                    PolicyError(
                        "E106",
                        f"rule `{rule.id}` is already defined at {first.file}:{first.line}",
                        rule.span,
                        "rule ids must be unique within a pack and its includes",
                    )
                )
                continue
            seen_rules[rule.id] = rule
            checked.rules.append((pack_id, rule))


STAGES: tuple[tuple[str, Stage], ...] = (
    ("parse", _parse),
    ("declarations", _declarations),
    ("value-sets", check_value_sets),
    ("tables", check_tables),
    ("counters", check_counters),
    ("rules", check_rules),
    ("counter-calls", check_counter_calls),
    ("exceptions", check_exceptions),
)

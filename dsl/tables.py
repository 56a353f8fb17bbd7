"""Lookup tables: rows of a pack's data keyed by one or more values, read by rules.

```
table fee_schedule = csv "fee_schedule.csv" key "code", "modifier"
table visit_limits = key "plan" columns "plan", "visits"
  row "gold", 20
  row "silver", 12
end
```
A rule reads a column of a row as `visit_limits[claim.plan].visits`. A key the table
does not hold gives a missing value (so `is present` / `is missing` test it, and a
comparison with it is unknown: the rule asks for a review). A literal key the table does
not hold (`visit_limits["platinum"].visits`), an unknown column or a wrong number of
keys is a located compile error. `claim.plan in visit_limits` (one-key tables) asks
whether the table holds the key.

Keys compare trimmed and upper-cased (`" gold"` is `GOLD`); a number key is written as
its digits (`20`, `1.5`). A column whose cells (empty ones aside) are all numbers holds
numbers, all `YYYY-MM-DD` dates, else text; an empty cell is missing.

*Data tables* are a manifest's tables of a format with rows (engine/refdata, today
`cms-mpfs`, the fee schedule): read the same way, `mpfs[line.code].global_days` or
`mpfs[line.code, "26"].pctc`, as of the line's date of service (the claim's first date of
service in claim rules). The engine gives the formats' keys and columns to the checker
(`CheckEnv.table_schemas`).

This module holds the table at run time (`LookupTable`), the checker stage that reads the
declarations (`check_tables`) and the typing of reads (`infer_read`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cleanclaim.dsl import ast
from cleanclaim.dsl import types as T
from cleanclaim.dsl.errors import PolicyError, did_you_mean

if TYPE_CHECKING:
    from cleanclaim.dsl.checker import CheckedPack, CheckEnv

_COLUMN_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
COLUMN_TYPES: dict[str, T.Type] = {"number": T.NUMBER, "date": T.DATE, "str": T.STR}


@dataclass(frozen=True, slots=True)
class DataTableSchema:
    """What a data table format (a manifest table with rows) offers: its key names (the
    first `required` must be given) and its columns (name -> "number" | "str" | "date").
    The table object answers `row(*keys, on=date)`-style look-ups: `row(k1, on, k2)`."""

    keys: tuple[str, ...]
    required: int
    columns: Mapping[str, str]


def normalize_key(value: Any) -> str | None:
    """A key value as tables compare keys: text trimmed and upper-cased, a number as its
    digits, a date as YYYY-MM-DD; None (or blank text) is no key."""
    if value is None or isinstance(value, bool):
        return None if value is None else str(value).upper()
    if isinstance(value, str):
        text = value.strip().upper()
        return text or None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (int, float, Decimal)):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return None
        if number == number.to_integral_value():
            return str(int(number))
        return format(number.normalize(), "f")
    return str(value).strip().upper() or None


class LookupTable:
    """A declared table at run time: rows by key, each a mapping of column to value."""

    __slots__ = ("columns", "file", "keys", "line", "name", "rows")

    def __init__(
        self,
        name: str,
        keys: tuple[str, ...],
        columns: dict[str, str],
        rows: dict[tuple[str, ...], dict[str, Any]],
        file: str,
        line: int,
    ) -> None:
        self.name = name
        self.keys = keys
        self.columns = columns
        self.rows = rows
        self.file = file
        self.line = line

    def __repr__(self) -> str:
        return f"<table {self.name}: {len(self.rows)} rows>"

    def __contains__(self, key: object) -> bool:
        """Whether the table holds the key (one-key tables: `x in t`)."""
        return key is not None and (normalize_key(key) or "",) in self.rows

    def key_values(self, position: int) -> frozenset[str]:
        return frozenset(k[position] for k in self.rows)

    def value(self, column: str, *keys: Any) -> Any:
        """The column of the row of `keys`; None when a key is missing (None) or the
        table has no such row. `""` asks for the row whose key cell is empty."""
        wanted = []
        for k in keys:
            if k is None:
                return None
            wanted.append(normalize_key(k) or "")
        row = self.rows.get(tuple(wanted))
        return None if row is None else row.get(column)


def table_value(table: LookupTable, column: str, *keys: Any) -> Any:
    """`t[k, ...].column`: the value, or None when the table has no such row."""
    return table.value(column, *keys)


def data_value(table: Any, column: str, on: dt.date | None, *keys: Any) -> Any:
    """`mpfs[code].column` of a data table as of `on`; None when the table (not loaded,
    or without rows) or the row is missing."""
    row_of = getattr(table, "row", None)
    if row_of is None or on is None or not keys or keys[0] is None:
        return None
    first = str(keys[0]).strip().upper()
    rest = [None if k is None else str(k).strip().upper() for k in keys[1:]]
    try:
        row = row_of(first, on, *rest)
    except (TypeError, ValueError, LookupError):
        return None
    return None if row is None else row.get(column)


# ---- reading declarations ------------------------------------------------------------------


@dataclass(slots=True)
class _Reading:
    """One table being read: its problems go to `errors`, located."""

    name: str
    errors: list[PolicyError] = field(default_factory=list)


def _cell_value(text: str, kind: str) -> Any:
    if not text:
        return None
    if kind == "number":
        return Decimal(text) if "." in text else int(text)
    if kind == "date":
        return dt.date.fromisoformat(text)
    return text


def _kind_of(cells: list[str]) -> str:
    filled = [c for c in cells if c]
    if filled and all(_NUMBER.fullmatch(c) for c in filled):
        return "number"
    if filled and all(_DATE.fullmatch(c) for c in filled):
        try:
            for c in filled:
                dt.date.fromisoformat(c)
        except ValueError:
            return "str"
        return "date"
    return "str"


def _build(
    decl: ast.TableDef,
    header: list[tuple[str, ast.Span]],
    rows: list[tuple[list[str], list[ast.Span], int]],
    errors: list[PolicyError],
    kinds: dict[str, str] | None = None,
) -> LookupTable | None:
    """The table of `header` and `rows` (text cells with their spans and line), keyed by
    the declaration's keys; None (and located errors) when it cannot be built."""
    ok = True
    names = [name for name, _ in header]
    for name, span in header:
        if not _COLUMN_NAME.fullmatch(name):
            errors.append(
                PolicyError(
                    "E308",
                    f"table `{decl.name}`: column name `{name}` is not a lower-case name",
                    span,
                    "columns are read as fields (`t[key].name`): use lower-case letters, "
                    "digits and `_`, starting with a letter",
                )
            )
            ok = False
        elif names.count(name) > 1:
            errors.append(
                PolicyError("E308", f"table `{decl.name}`: column `{name}` is named twice", span)
            )
            ok = False
    positions: list[int] = []
    for key in decl.keys:
        if key.value not in names:
            errors.append(
                PolicyError(
                    "E308",
                    f"table `{decl.name}` has no column `{key.value}` to key by",
                    key.span,
                    did_you_mean(key.value, names) or f"columns: {', '.join(names)}",
                )
            )
            ok = False
        elif names.index(key.value) in positions:
            errors.append(PolicyError("E308", f"key column `{key.value}` is named twice", key.span))
            ok = False
        else:
            positions.append(names.index(key.value))
    if not ok:
        return None
    width = len(names)
    good_rows: list[tuple[list[str], list[ast.Span], int]] = []
    for cells, spans, line in rows:
        if len(cells) != width:
            errors.append(
                PolicyError(
                    "E308",
                    f"table `{decl.name}`: this row has {len(cells)} cells, the table "
                    f"{width} columns",
                    spans[0] if spans else decl.span,
                    f"columns: {', '.join(names)}",
                )
            )
            ok = False
            continue
        good_rows.append((cells, spans, line))
    kinds = kinds or {n: _kind_of([r[0][i] for r in good_rows]) for i, n in enumerate(names)}
    table_rows: dict[tuple[str, ...], dict[str, Any]] = {}
    first_at: dict[tuple[str, ...], int] = {}
    for cells, spans, line in good_rows:
        # An empty key cell is the empty key (a code's row without a modifier); a row
        # whose keys are all empty keys nothing.
        row_key = tuple(normalize_key(cells[i]) or "" for i in positions)
        if not any(row_key):
            errors.append(
                PolicyError(
                    "E308",
                    f"table `{decl.name}`: a row without a key "
                    f"({', '.join(names[i] for i in positions)})",
                    spans[positions[0]],
                    "every row gives its key columns a value",
                )
            )
            ok = False
            continue
        if row_key in table_rows:
            errors.append(
                PolicyError(
                    "E308",
                    f"table `{decl.name}`: key {', '.join(row_key)} is in the table twice "
                    f"(first at line {first_at[row_key]})",
                    spans[positions[0]],
                    "a key names one row: remove or merge one of them",
                )
            )
            ok = False
            continue
        first_at[row_key] = line
        table_rows[row_key] = {
            n: _cell_value(cells[i].strip(), kinds[n]) for i, n in enumerate(names)
        }
    if not ok:
        return None
    return LookupTable(
        decl.name,
        tuple(k.value for k in decl.keys),
        kinds,
        table_rows,
        decl.span.file,
        decl.span.line,
    )


def _inline(decl: ast.TableDef, errors: list[PolicyError]) -> LookupTable | None:
    header = [(c.value, c.span) for c in decl.columns]
    rows: list[tuple[list[str], list[ast.Span], int]] = []
    kinds: dict[str, str] = {}
    for row in decl.rows:
        rows.append(
            (
                [_literal_text(cell.value) for cell in row],
                [c.span for c in row],
                row[0].span.line if row else decl.span.line,
            )
        )
    for i, (name, span) in enumerate(header):
        seen = {
            _literal_kind(row[i].value)
            for row in decl.rows
            if len(row) == len(header) and row[i].value != ""
        }
        if len(seen) > 1:
            errors.append(
                PolicyError(
                    "E308",
                    f"table `{decl.name}`: column `{name}` mixes "
                    f"{' and '.join(sorted(seen))} values",
                    span,
                    "a column holds one kind of value: numbers, dates or quoted text",
                )
            )
            return None
        kinds[name] = seen.pop() if seen else "str"
    return _build(decl, header, rows, errors, kinds)


def _literal_text(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _literal_kind(value: Any) -> str:
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, (int, Decimal)):
        return "number"
    return "str"


def _csv(
    decl: ast.TableDef, base: Path, errors: list[PolicyError], extra_sources: dict[str, str]
) -> LookupTable | None:
    assert decl.file is not None
    path = base / decl.file.value
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        reason = getattr(exc, "strerror", None) or str(exc)
        errors.append(
            PolicyError("E304", f"cannot read `{decl.file.value}`: {reason}", decl.file.span)
        )
        return None
    folder = decl.span.file.rsplit("/", 1)[0] + "/" if "/" in decl.span.file else ""
    csv_name = folder + decl.file.value
    extra_sources[csv_name] = text
    records = list(_records(text, csv_name))
    if not records:
        errors.append(
            PolicyError("E304", f"`{decl.file.value}`: the file is empty", decl.file.span)
        )
        return None
    (head, head_spans, _line), *body = records
    header = [(cell.strip(), span) for cell, span in zip(head, head_spans, strict=True)]
    rows = [
        ([c.strip() for c in cells], spans, line)
        for cells, spans, line in body
        if any(c.strip() for c in cells)
    ]
    return _build(decl, header, rows, errors)


def _records(text: str, name: str) -> Iterator[tuple[list[str], list[ast.Span], int]]:
    """The CSV's records: cells, the span of each cell (its line and column) and the
    record's first line."""
    from cleanclaim.dsl.valuesets import _field_offset

    lines = io.StringIO(text).readlines()
    reader = csv.reader(io.StringIO(text))
    first = 1
    for cells in reader:
        record = "".join(lines[first - 1 : reader.line_num])
        spans = []
        for index, cell in enumerate(cells):
            offset = _field_offset(record, index)
            line = first + record.count("\n", 0, offset)
            column = offset - (record.rfind("\n", 0, offset) + 1) + 1
            spans.append(ast.Span(name, line, column, line, column + max(len(cell), 1)))
        yield cells, spans or [ast.Span(name, first, 1, first, 2)], first
        first = reader.line_num + 1


# ---- the checker stage ---------------------------------------------------------------------


def check_tables(checked: CheckedPack, env: CheckEnv) -> None:
    """Checker stage (after value sets): read every table a policy file declares, located
    errors for bad ones; fills `checked.lookups`."""
    taken: dict[str, ast.Span] = {}
    for tree in checked.files:
        for decl in tree.tables:
            clash = (
                "table"
                if decl.name in checked.lookup_decls or decl.name in checked.tables
                else "value set"
                if decl.name in checked.valueset_decls
                else None
            )
            if clash is not None:
                first = taken.get(decl.name)
                where = (
                    f" at {first.file}:{first.line}"
                    if first is not None
                    else " in the pack manifest"
                    if clash == "table"
                    else ""
                )
                checked.errors.append(
                    PolicyError(
                        "E111",
                        f"`{decl.name}` is already the name of a {clash}{where}",
                        decl.span,
                        "give the table another name",
                    )
                )
                continue
            taken[decl.name] = decl.span
            checked.lookup_decls[decl.name] = decl
            if decl.file is not None:
                real = checked.real_paths.get(decl.span.file)
                base = real.parent if real is not None else Path(decl.span.file).parent
                table = _csv(decl, base, checked.errors, checked.sources.extra_sources)
            else:
                table = _inline(decl, checked.errors)
            if table is not None:
                checked.lookups[decl.name] = table


# ---- reads ---------------------------------------------------------------------------------


def infer_read(
    checked: CheckedPack, env: CheckEnv, read: ast.TableRead, infer: Callable[[ast.Expr], T.Type]
) -> T.Type:
    """The type of `t[k, ...].column` (the column's, maybe missing), with located errors
    for an unknown table, key or column."""
    errors = checked.errors
    key_types = [infer(k) for k in read.keys]
    for key, found in zip(read.keys, key_types, strict=True):
        if found.name not in (*T.CODE_LIKE, *T.NUMERIC, "date", "any"):
            errors.append(
                PolicyError(
                    "E201",
                    f"a table key is a code, text, number or date, not {T.one(found)}",
                    key.span,
                )
            )
    lookup = checked.lookups.get(read.table)
    if lookup is not None:
        return _read_lookup(checked, read, lookup)
    if read.table in checked.lookup_decls:
        return T.ANY  # a table with errors, reported at its declaration
    manifest = checked.tables.get(read.table)
    if manifest is not None:
        schema = env.table_schemas.get(manifest.format)
        if schema is None:
            errors.append(
                PolicyError(
                    "E107",
                    f"table `{read.table}` is a {manifest.format} table, which has no "
                    "rows to read by key",
                    read.span,
                    "read it with its functions; `t[key].column` reads tables declared with "
                    "`table` in a policy file and data tables such as cms-mpfs",
                )
            )
            return T.ANY
        return _read_data(checked, read, schema)
    errors.append(
        PolicyError(
            "E107",
            f"unknown table `{read.table}`",
            read.span,
            did_you_mean(read.table, [*checked.lookup_decls, *checked.tables])
            or 'declare it: table NAME = csv "FILE" key "COLUMN"',
        )
    )
    return T.ANY


def _read_lookup(checked: CheckedPack, read: ast.TableRead, lookup: LookupTable) -> T.Type:
    errors = checked.errors
    if len(read.keys) != len(lookup.keys):
        errors.append(
            PolicyError(
                "E202",
                f"table `{lookup.name}` is keyed by {len(lookup.keys)} value(s) "
                f"({', '.join(lookup.keys)}), got {len(read.keys)}",
                read.span,
            )
        )
    for position, key in enumerate(read.keys[: len(lookup.keys)]):
        if isinstance(key, ast.Literal_) and not isinstance(key.value, bool):
            wanted = normalize_key(key.value) or ""
            held = lookup.key_values(position)
            if wanted not in held:
                errors.append(
                    PolicyError(
                        "E112",
                        f"table `{lookup.name}` has no {lookup.keys[position]} `{key.value}`",
                        key.span,
                        did_you_mean(str(wanted), sorted(held))
                        or f"its {lookup.keys[position]} values: {_some(held)}",
                    )
                )
    kind = lookup.columns.get(read.column)
    if kind is None:
        errors.append(
            PolicyError(
                "E113",
                f"table `{lookup.name}` has no column `{read.column}`",
                read.span,
                did_you_mean(read.column, lookup.columns)
                or f"columns: {', '.join(lookup.columns)}",
            )
        )
        return T.ANY
    return COLUMN_TYPES[kind].maybe()


def _read_data(checked: CheckedPack, read: ast.TableRead, schema: DataTableSchema) -> T.Type:
    if not schema.required <= len(read.keys) <= len(schema.keys):
        count = (
            str(schema.required)
            if schema.required == len(schema.keys)
            else f"{schema.required} to {len(schema.keys)}"
        )
        checked.errors.append(
            PolicyError(
                "E202",
                f"table `{read.table}` is read by {count} key(s) "
                f"({', '.join(schema.keys)}), got {len(read.keys)}",
                read.span,
            )
        )
    kind = schema.columns.get(read.column)
    if kind is None:
        checked.errors.append(
            PolicyError(
                "E113",
                f"table `{read.table}` has no column `{read.column}`",
                read.span,
                did_you_mean(read.column, schema.columns)
                or f"columns: {', '.join(schema.columns)}",
            )
        )
        return T.ANY
    return COLUMN_TYPES.get(kind, T.STR).maybe()


def _some(values: frozenset[str]) -> str:
    shown = sorted(values)[:8]
    return ", ".join(shown) + (", ..." if len(values) > 8 else "") if shown else "(none)"

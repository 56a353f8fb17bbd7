"""The NCCI tables imported into the data folder, read back for the engine.

Import (``import_ptp``, ``import_mue``) reads the CMS files with the readers of
engine/ncci.py (same validation, same located errors) and writes every row to SQLite.
Reading back is built for a cold start: a PTP table of a million rows opens with one
query (the list of column-2 codes, a few milliseconds); the edits of a column-2 code are
read when a claim line first bills it and kept. The object returned is an
``ncci.PtpTable`` whose index fills itself this way, so the engine's NCCI functions work
unchanged. The MUE table (some 15,000 codes) is read whole into an ``ncci.MueTable``,
keeping each code's adjudication indicator (1 line, 2 date of service policy, 3 date of
service clinical) and rationale.

``TABLE_LOADERS`` are the engine's loaders per table format: each takes a path that is
either a store file (``ptp.sqlite``) or a CMS file as downloaded.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Final

from cleanclaim.dsl.tables import DataTableSchema
from cleanclaim.engine import ncci
from cleanclaim.engine.ncci import MueEdit, MueTable, PtpTable, load_mue, load_ptp
from cleanclaim.engine.refdata.mpfs import COLUMNS as MPFS_COLUMNS
from cleanclaim.engine.refdata.store import (
    DataStore,
    ImportRecord,
    connect_ro,
    is_store_file,
    now_utc,
    sha256_of,
    write_record,
)

# The tail of one PTP row as engine/ncci.py keeps it (dates, indicator, rationale).
_PtpRow = ncci._PtpRow
_Rows = tuple[Any, ...]

_NCCI_VERSION = re.compile(r"v(\d\d)(\d)r(\d)", re.IGNORECASE)
_MUE_EFFECTIVE = re.compile(r"Eff_(\d\d)-(\d\d)-(\d{4})", re.IGNORECASE)


def _yyyymmdd(day: date | None) -> int | None:
    return None if day is None else day.year * 10000 + day.month * 100 + day.day


# --------------------------------------------------------------------------- import


def import_ptp(store: DataStore, paths: Sequence[Path]) -> ImportRecord | None:
    """Import the practitioner PTP files (``ccipra-*.TXT``, CMS zips, a folder of them:
    all files of one quarter together). Returns the new record, or None when these files
    are already the current PTP table. Raises ``ncci.TableError`` (file:line) for a
    damaged file; nothing is written then."""
    sha = sha256_of(_files(paths))
    if store.is_current("ptp", sha) is not None:
        return None
    table = load_ptp(*paths)
    rationales: dict[str, int] = {}
    rows: list[tuple[str, str, int, int | None, int, int]] = []
    first: date | None = None
    last: date | None = None
    for column2 in sorted(table.column2):
        for hit in table.edits(column2):
            rid = rationales.setdefault(hit.rationale, len(rationales))
            rows.append(
                (
                    column2,
                    hit.column1,
                    _yyyymmdd(hit.effective) or 0,
                    _yyyymmdd(hit.deletion),
                    hit.indicator,
                    rid,
                )
            )
            first = hit.effective if first is None or hit.effective < first else first
            last = hit.effective if last is None or hit.effective > last else last
    names = tuple(p.name for p in _files(paths))
    versions = sorted({f"{m[1]}.{m[2]}r{m[3]}" for n in names if (m := _NCCI_VERSION.search(n))})
    record = ImportRecord(
        "ptp",
        names,
        sha,
        len(rows),
        first.isoformat() if first else None,
        last.isoformat() if last else None,
        f"{len(table.column2)} column-2 codes; edit effective dates span the range shown"
        + (f"; NCCI version {', '.join(versions)}" if versions else ""),
        now_utc(),
    )
    with store.writing("ptp") as conn:
        conn.execute("CREATE TABLE rationale (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        conn.execute(
            "CREATE TABLE ptp (seq INTEGER PRIMARY KEY, column2 TEXT NOT NULL, "
            "column1 TEXT NOT NULL, effective INTEGER NOT NULL, deletion INTEGER, "
            "indicator INTEGER NOT NULL, rationale INTEGER NOT NULL)"
        )
        conn.executemany(
            "INSERT INTO rationale VALUES (?, ?)", [(i, text) for text, i in rationales.items()]
        )
        conn.executemany(
            "INSERT INTO ptp (column2, column1, effective, deletion, indicator, "
            "rationale) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("CREATE INDEX ptp_by_column2 ON ptp (column2)")
        conn.execute("CREATE TABLE codes (kind TEXT PRIMARY KEY, list TEXT)")
        conn.execute("INSERT INTO codes VALUES ('column2', ?)", (" ".join(sorted(table.column2)),))
        write_record(conn, record)
    return record


def import_mue(
    store: DataStore, paths: Sequence[Path], effective: date | None = None
) -> ImportRecord | None:
    """Import the practitioner MUE file (``MCR_MUE_PractitionerServices_Eff_*.csv`` or its
    zip). The effective date is ``effective`` or read from the file name (``Eff_MM-DD-
    YYYY``). Returns None when the file is already the current MUE table."""
    sha = sha256_of(_files(paths))
    if store.is_current("mue", sha) is not None:
        return None
    table = load_mue(*paths)
    names = tuple(p.name for p in _files(paths))
    if effective is None:
        for name in names:
            if m := _MUE_EFFECTIVE.search(name):
                effective = date(int(m[3]), int(m[1]), int(m[2]))
    edits = [e for code in sorted(table.values) if (e := table.get(code)) is not None]
    counts = {i: sum(1 for e in edits if e.indicator == i) for i in (1, 2, 3)}
    record = ImportRecord(
        "mue",
        names,
        sha,
        len(edits),
        effective.isoformat() if effective else None,
        None,
        f"adjudication indicator 1: {counts[1]}, 2: {counts[2]}, 3: {counts[3]}",
        now_utc(),
    )
    with store.writing("mue") as conn:
        conn.execute(
            "CREATE TABLE mue (code TEXT PRIMARY KEY, value INTEGER NOT NULL, "
            "indicator INTEGER NOT NULL, rationale TEXT NOT NULL)"
        )
        rows = [(e.code, e.value, e.indicator, e.rationale) for e in edits]
        conn.executemany("INSERT INTO mue VALUES (?, ?, ?, ?)", rows)
        # The same rows as one JSON text: read back in one fetch at start-up (a third of
        # the time of 15,000 row fetches).
        conn.execute("CREATE TABLE packed (rows TEXT NOT NULL)")
        conn.execute("INSERT INTO packed VALUES (?)", (json.dumps(rows),))
        write_record(conn, record)
    return record


def _files(paths: Sequence[Path]) -> list[Path]:
    """The files a list of paths stands for (a folder: its files), for hashing."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                sorted(
                    p
                    for p in path.iterdir()
                    if p.is_file() and p.suffix.lower() in (".txt", ".csv", ".zip")
                )
            )
        else:
            out.append(path)
    return out


# --------------------------------------------------------------------------- read back


class StoreReader:
    """A read-only connection per process (forked workers open their own), shared by
    threads behind a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pid = -1
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """The rows of a query; a damaged or foreign file is a `TableError` naming it."""
        with self._lock:
            try:
                if self._conn is None or self._pid != os.getpid():
                    self._conn = connect_ro(self.path)
                    self._pid = os.getpid()
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise ncci.TableError(
                    str(self.path),
                    None,
                    f"cannot read the imported table "
                    f"({exc}); import the CMS file again with `cleanclaim "
                    "data import`",
                ) from None


class _StoredIndex(dict[str, dict[str, _Rows]]):
    """The PTP index of engine/ncci.py (column 2 -> column 1 -> rows), read from the
    store on first use of each column-2 code. Membership is answered from the list of
    column-2 codes without a query."""

    def __init__(self, reader: StoreReader, codes: frozenset[str]) -> None:
        super().__init__()
        self._reader = reader
        self._codes = codes
        self._dates: dict[int, date] = {}
        self._rationales: dict[int, str] = {}

    def __contains__(self, code: object) -> bool:
        return code in self._codes

    def __len__(self) -> int:
        return len(self._codes)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._codes))

    def __getitem__(self, code: str) -> dict[str, _Rows]:
        found: dict[str, _Rows] | None = self.get(code)
        if found is None:
            raise KeyError(code)
        return found

    def get(self, code: str, default: Any = None) -> Any:
        try:
            return dict.__getitem__(self, code)
        except KeyError:
            if code not in self._codes:
                return default
        by_column1: dict[str, _Rows] = {}
        for column1, effective, deletion, indicator, rid in self._reader.query(
            "SELECT column1, effective, deletion, indicator, rationale FROM ptp "
            "WHERE column2 = ? ORDER BY seq",
            (code,),
        ):
            row = _PtpRow(
                self._date(effective),
                None if deletion is None else self._date(deletion),
                indicator,
                self._rationale(rid),
            )
            by_column1[column1] = (*by_column1.get(column1, ()), row)
        dict.__setitem__(self, code, by_column1)
        return by_column1

    def _date(self, value: int) -> date:
        day = self._dates.get(value)
        if day is None:
            day = self._dates[value] = date(value // 10000, value // 100 % 100, value % 100)
        return day

    def _rationale(self, rid: int) -> str:
        text = self._rationales.get(rid)
        if text is None:
            rows = self._reader.query("SELECT text FROM rationale WHERE id = ?", (rid,))
            text = self._rationales[rid] = rows[0][0] if rows else ""
        return text


def open_ptp(path: Path) -> PtpTable:
    """The PTP table of a store file, opened with one query."""
    reader = StoreReader(path)
    codes = reader.query("SELECT list FROM codes WHERE kind = 'column2'")
    rows = reader.query("SELECT MAX(seq) FROM ptp")
    index = _StoredIndex(reader, frozenset(codes[0][0].split()) if codes else frozenset())
    return PtpTable(index, int(rows[0][0] or 0), f"{path} (imported)")


def open_mue(path: Path) -> MueTable:
    """The MUE table of a store file."""
    reader = StoreReader(path)
    try:
        rows = json.loads(reader.query("SELECT rows FROM packed")[0][0])
    except (ncci.TableError, IndexError, ValueError, TypeError):
        # A table imported before the packed copy existed, or a damaged one (reading the
        # rows then raises the located error).
        rows = reader.query("SELECT code, value, indicator, rationale FROM mue")
    edits = {
        code: MueEdit(code, value, indicator, rationale)
        for code, value, indicator, rationale in rows
    }
    return MueTable(edits, f"{path} (imported)")


def ptp_table(path: Path) -> PtpTable:
    """The engine's loader of the `ncci-ptp` format: a store file or the CMS files."""
    return open_ptp(path) if is_store_file(path) else load_ptp(path)


def mue_table(path: Path) -> MueTable:
    """The engine's loader of the `ncci-mue` format: a store file or the CMS file."""
    return open_mue(path) if is_store_file(path) else load_mue(path)


def mpfs_table(path: Path) -> Any:
    """The engine's loader of the `cms-mpfs` format (the fee schedule)."""
    from cleanclaim.engine.refdata.mpfs import open_fee_schedule

    return open_fee_schedule(path)


def order_referring_table(path: Path) -> Any:
    """The engine's loader of the `cms-order-referring` format (who may order/refer)."""
    from cleanclaim.engine.refdata.ordering import open_order_referring

    return open_order_referring(path)


TABLE_LOADERS: Final[dict[str, Callable[[Path], Any]]] = {
    "ncci-ptp": ptp_table,
    "ncci-mue": mue_table,
    "cms-mpfs": mpfs_table,
    "cms-order-referring": order_referring_table,
}

# Formats whose rows policies read by key (dsl/tables.py): `mpfs[line.code].global_days`,
# `mpfs[line.code, "26"].pctc` reads `FeeSchedule.row(code, date of service, modifier)`.
TABLE_SCHEMAS: Final[dict[str, DataTableSchema]] = {
    "cms-mpfs": DataTableSchema(("code", "modifier"), 1, MPFS_COLUMNS)
}

"""The Medicare Physician Fee Schedule relative value file (PPRRVU), per code and date.

CMS publishes it quarterly on the "PFS Relative Value Files" page as ``RVUyyX.zip``
(X: A January, B April, C July, D October), holding ``PPRRVUyy_MON.csv``: preamble
lines, then one row per code and modifier. The columns are positional (CMS's header is
spread over several lines and repeats words), in the order of the file's layout:

    0 HCPCS  1 MOD  2 DESCRIPTION  3 STATUS CODE  4 NOT USED FOR MEDICARE PAYMENT
    5 WORK RVU  6 NON-FAC PE RVU  7 NON-FAC NA INDICATOR  8 FACILITY PE RVU
    9 FACILITY NA INDICATOR  10 MP RVU  11 NON-FACILITY TOTAL  12 FACILITY TOTAL
    13 PCTC IND  14 GLOB DAYS  15 PRE OP  16 INTRA OP  17 POST OP  18 MULT PROC
    19 BILAT SURG  20 ASST SURG  21 CO-SURG  22 TEAM SURG  23 ENDO BASE  24 CONV FACTOR
    25 PHYSICIAN SUPERVISION OF DIAGNOSTIC PROCEDURES  26 CALCULATION FLAG
    27 DIAGNOSTIC IMAGING FAMILY INDICATOR  28-30 PE/MP USED FOR OPPS PAYMENT AMOUNT

A line is a data row when its first field is a procedure code. Global days are 000, 010,
090, XXX, YYY, ZZZ or MMM; the indicators are single digits. The amounts are the
national ones, total RVUs times the conversion factor (no GPCI): ``nonfac_amount``,
``fac_amount`` (None where the NA indicator says the setting does not apply).
Descriptions are not stored (CPT descriptors are AMA property).

Each import is the version for its effective date (from ``--effective`` or the file
name); every version is kept, and ``FeeSchedule.row(code, on)`` reads the one in force
on the date of service.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Final

from cleanclaim.engine.ncci import SAMPLE_MARKER, TableError, is_procedure_code
from cleanclaim.engine.refdata.store import (
    DataStore,
    ImportRecord,
    is_store_file,
    now_utc,
    sha256_of,
    write_record,
)

GLOBAL_DAYS: Final = frozenset({"000", "010", "090", "XXX", "YYY", "ZZZ", "MMM"})
# Column name (as rules read it) -> type, for lookup tables (`mpfs[line.code].global_days`).
COLUMNS: Final[Mapping[str, str]] = {
    "status": "str",
    "global_days": "str",
    "pctc": "str",
    "mult_proc": "str",
    "bilat": "str",
    "asst_surg": "str",
    "co_surg": "str",
    "team_surg": "str",
    "nonfac_na": "str",
    "fac_na": "str",
    "work_rvu": "number",
    "nonfac_pe_rvu": "number",
    "fac_pe_rvu": "number",
    "mp_rvu": "number",
    "nonfac_total": "number",
    "fac_total": "number",
    "conv_factor": "number",
    "nonfac_amount": "number",
    "fac_amount": "number",
}
_TEXT: Final = {
    "status": 3,
    "global_days": 14,
    "pctc": 13,
    "mult_proc": 18,
    "bilat": 19,
    "asst_surg": 20,
    "co_surg": 21,
    "team_surg": 22,
    "nonfac_na": 7,
    "fac_na": 9,
}
_NUMBER: Final = {
    "work_rvu": 5,
    "nonfac_pe_rvu": 6,
    "fac_pe_rvu": 8,
    "mp_rvu": 10,
    "nonfac_total": 11,
    "fac_total": 12,
    "conv_factor": 24,
}
_STORED: Final = (*_TEXT, *_NUMBER)
_MONTHS: Final = {"JAN": 1, "APR": 4, "JUL": 7, "OCT": 10}
_FILE_DATE = re.compile(r"PPRRVU(\d{2}|\d{4})_?(JAN|APR|JUL|OCT)", re.IGNORECASE)
_ZIP_DATE = re.compile(r"RVU(\d{2})([ABCD])", re.IGNORECASE)


def effective_from_name(name: str) -> date | None:
    """The first day of the quarter a PPRRVU file name (or RVUyyX.zip) names."""
    if m := _FILE_DATE.search(name):
        year = int(m[1]) if len(m[1]) == 4 else 2000 + int(m[1])
        return date(year, _MONTHS[m[2].upper()], 1)
    if m := _ZIP_DATE.search(name):
        return date(2000 + int(m[1]), 1 + 3 * "ABCD".index(m[2].upper()), 1)
    return None


def _csv_source(path: Path) -> tuple[str, str, bytes]:
    """(label, file name, bytes) of the one PPRRVU CSV that ``path`` is or holds."""
    if path.suffix.lower() != ".zip":
        return str(path), path.name, path.read_bytes()
    try:
        with zipfile.ZipFile(path) as archive:
            names = [
                n
                for n in archive.namelist()
                if n.upper().rsplit("/", 1)[-1].startswith("PPRRVU") and n.lower().endswith(".csv")
            ]
            if len(names) != 1:
                raise TableError(
                    str(path),
                    None,
                    (
                        "holds no PPRRVU*.csv"
                        if not names
                        else f"holds {len(names)} PPRRVU CSVs ({', '.join(names)}): extract the "
                        "one to import and import that file"
                    ),
                )
            return f"{path}!{names[0]}", names[0].rsplit("/", 1)[-1], archive.read(names[0])
    except zipfile.BadZipFile as exc:
        raise TableError(str(path), None, f"not a readable zip archive ({exc})") from None


def read_pprrvu(label: str, data: bytes) -> list[tuple[Any, ...]]:
    """The rows (code, modifier, *stored columns) of a PPRRVU CSV; ``TableError``
    (file:line) for a damaged row, a repeated code and modifier, or no row at all."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[Any, ...]] = []
    seen: dict[tuple[str, str], int] = {}
    for record in reader:
        line = reader.line_num
        code = record[0].strip().upper() if record else ""
        if not is_procedure_code(code):
            continue  # preamble, header lines, blank lines
        if len(record) < 25:
            raise TableError(
                label,
                line,
                f"PPRRVU row has {len(record)} fields, expected at least 25 (through CONV FACTOR)",
            )
        modifier = record[1].strip().upper()
        values: list[Any] = [code, modifier]
        for name, col in _TEXT.items():
            value = record[col].strip().upper()
            if name == "global_days" and value not in GLOBAL_DAYS:
                raise TableError(
                    label,
                    line,
                    f"GLOB DAYS {value!r} is not one of " + ", ".join(sorted(GLOBAL_DAYS)),
                )
            if name in ("nonfac_na", "fac_na"):
                if value not in ("", "NA"):
                    raise TableError(
                        label,
                        line,
                        f"{name.upper().replace('_', ' ')} {value!r} is neither NA nor blank",
                    )
            elif (
                name != "status"
                and name != "global_days"
                and not (value.isdigit() and len(value) == 1)
            ):
                raise TableError(
                    label,
                    line,
                    f"{name.upper().replace('_', ' ')} {value!r} is not a one-digit indicator",
                )
            values.append(value)
        for name, col in _NUMBER.items():
            value = record[col].strip()
            try:
                values.append(float(value) if value else 0.0)
            except ValueError:
                raise TableError(
                    label, line, f"{name.upper().replace('_', ' ')} {value!r} is not a number"
                ) from None
        key = (code, modifier)
        if key in seen:
            raise TableError(
                label,
                line,
                f"{code}{' ' + modifier if modifier else ''} "
                f"listed twice (first at line {seen[key]})",
            )
        seen[key] = line
        rows.append(tuple(values))
    if not rows:
        raise TableError(label, None, "no PPRRVU rows found (not a PPRRVU file?)")
    return rows


def import_mpfs(
    store: DataStore, paths: Sequence[Path], effective: date | None = None
) -> ImportRecord | None:
    """Import one PPRRVU file as the version for its effective date (``effective`` or
    the file name). None when that file is already imported."""
    if len(paths) != 1:
        raise TableError(
            ", ".join(map(str, paths)), None, "import one PPRRVU file (one quarter) at a time"
        )
    path = paths[0]
    if not path.is_file():
        raise TableError(str(path), None, "no such file")
    sha = sha256_of([path])
    if store.is_current("mpfs", sha) is not None:
        return None
    label, name, data = _csv_source(path)
    when = effective or effective_from_name(name) or effective_from_name(path.name)
    if when is None:
        raise TableError(
            label,
            None,
            "cannot tell the effective date from the file name: give --effective YYYY-MM-DD",
        )
    rows = read_pprrvu(label, data)
    factors = sorted(
        {row[2 + len(_TEXT) + list(_NUMBER).index("conv_factor")] for row in rows} - {0.0}
    )
    record = ImportRecord(
        "mpfs",
        (name,),
        sha,
        len(rows),
        when.isoformat(),
        None,
        "conversion factor " + ", ".join(f"{f:.4f}" for f in factors),
        now_utc(),
    )
    with store.writing("mpfs", keep=True) as conn:
        cols = ", ".join(f"{c} {'REAL' if c in _NUMBER else 'TEXT'}" for c in _STORED)
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS fees (effective TEXT NOT NULL, code TEXT "
            f"NOT NULL, modifier TEXT NOT NULL, {cols}, "
            "PRIMARY KEY (code, modifier, effective))"
        )
        conn.execute("DELETE FROM fees WHERE effective = ?", (when.isoformat(),))
        marks = ", ".join("?" * (3 + len(_STORED)))
        conn.executemany(
            f"INSERT INTO fees VALUES ({marks})", [(when.isoformat(), *row) for row in rows]
        )
        write_record(conn, record, key=f"version {when.isoformat()}")
    return record


class FeeSchedule:
    """The fee schedule read per code and date of service (the `cms-mpfs` table)."""

    columns: Mapping[str, str] = COLUMNS
    # Set (to the file name) when the table is a shipped sample, not CMS data: findings
    # resting on it are reviews (dsl/valuesets.py `partial_notes`), naming `import_hint`.
    sample: str | None = None
    import_hint: Final = (
        "import the CMS PFS relative value file of the quarter: "
        "`cleanclaim data import mpfs PPRRVUyy_MON.csv` (docs/data.md)"
    )

    def __init__(
        self,
        rows: dict[str, dict[tuple[str, str], dict[str, Any]]] | None,
        path: Path | None,
        source: str,
    ) -> None:
        # rows: effective date (ISO) -> (code, modifier) -> row, for a CSV read whole;
        # or None and `path`, a store file read on demand.
        self._rows = rows
        self._path = path
        self._cache: dict[tuple[str, str, str], dict[str, Any] | None] = {}
        self.source = source
        if rows is not None:
            self.versions = sorted(rows)
        else:
            assert path is not None
            from cleanclaim.engine.refdata.tables import StoreReader

            self._reader = StoreReader(path)
            self.versions = [
                v
                for (v,) in self._reader.query(
                    "SELECT DISTINCT effective FROM fees ORDER BY effective"
                )
            ]

    def __repr__(self) -> str:
        return f"FeeSchedule({self.source!r}, versions={self.versions})"

    def version_on(self, on: date) -> str | None:
        """The effective date (ISO) of the version in force on ``on``."""
        iso = on.isoformat()
        best = None
        for version in self.versions:
            if version <= iso:
                best = version
        return best

    def row(self, code: str, on: date, modifier: str | None = None) -> dict[str, Any] | None:
        """The row of ``code`` with ``modifier`` (26, TC, 53; else the code's own row) in
        force on ``on``, with the amounts; None when the code is not in that version."""
        version = self.version_on(on)
        if version is None:
            return None
        mod = (modifier or "").upper()
        found = self._get(version, code, mod)
        if found is None and mod:
            found = self._get(version, code, "")
        return found

    def _get(self, version: str, code: str, modifier: str) -> dict[str, Any] | None:
        key = (version, code, modifier)
        if key in self._cache:
            return self._cache[key]
        if self._rows is not None:
            found = self._rows[version].get((code, modifier))
        else:
            found_rows = self._reader.query(
                f"SELECT {', '.join(_STORED)} FROM fees WHERE code = ? AND modifier = ? "
                "AND effective = ?",
                (code, modifier, version),
            )
            found = _row(version, code, modifier, found_rows[0]) if found_rows else None
        self._cache[key] = found
        return found


def _row(version: str, code: str, modifier: str, values: Sequence[Any]) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(_STORED, values, strict=True))
    # An NA indicator: the setting's PE RVU does not apply (CMS pays the service in the
    # other setting only), so there is no amount for it.
    row.update(
        code=code,
        modifier=modifier,
        effective=version,
        nonfac_amount=None
        if row["nonfac_na"] == "NA"
        else round(row["nonfac_total"] * row["conv_factor"], 2),
        fac_amount=None
        if row["fac_na"] == "NA"
        else round(row["fac_total"] * row["conv_factor"], 2),
    )
    return row


# The first line of the placeholder a pack declares its fee schedule table over: a table
# with no version (every look-up None) until `cleanclaim data import mpfs`.
PLACEHOLDER: Final = b"cleanclaim PLACEHOLDER - NO FEE SCHEDULE SHIPS"


def open_fee_schedule(path: Path, effective: date | None = None) -> FeeSchedule:
    """A store file, a PPRRVU CSV/zip read whole (its date from the name or
    ``effective``), or the pack's placeholder (an empty schedule)."""
    if is_store_file(path):
        return FeeSchedule(None, path, f"{path} (imported)")
    if path.is_file() and path.read_bytes().startswith(PLACEHOLDER):
        return FeeSchedule({}, None, f"{path} (placeholder: no MPFS data imported)")
    label, name, data = _csv_source(path)
    when = effective or effective_from_name(name) or effective_from_name(path.name)
    if when is None:
        raise TableError(label, None, "cannot tell the effective date from the file name")
    rows = {
        (r[0], r[1]): _row(when.isoformat(), r[0], r[1], r[2:]) for r in read_pprrvu(label, data)
    }
    sample = SAMPLE_MARKER in data[:512]
    if sample:
        # A shipped sample holds payment-policy indicators only: no amounts.
        for row in rows.values():
            row.update(nonfac_amount=None, fac_amount=None)
    schedule = FeeSchedule({when.isoformat(): rows}, None, label)
    if sample:
        schedule.sample = name
    return schedule

"""The CMS "Order and Referring" file: who may order and refer in Medicare, per NPI.

CMS publishes it weekly (data.cms.gov, "Order and Referring"; formerly the
"OrderingReferringReport" of the provider enrollment pages) as one CSV whose header line is

    NPI,LAST_NAME,FIRST_NAME,PARTB,DME,HHA,PMD,HOSPICE

one row per physician or non-physician practitioner who has a current enrollment record in
PECOS and is of a type or specialty eligible to order or refer, with a Y/N flag per benefit:
PARTB (clinical laboratory and imaging services ordered under Part B), DME (DMEPOS), HHA
(home health), PMD (power mobility devices), HOSPICE (older releases lack HOSPICE). Names
may be quoted (`"SMITH, JR"`). The layout was checked against several public loaders of
the file found with the project's `search` tool (code corpus, `find_string`
`LAST_NAME,FIRST_NAME,PARTB,DME,HHA,PMD`: index file ids 54580372887, 67403413846,
70628690219, 54765780975, 67107305857), which agree on the header and the Y/N flags.

Columns are found by name, so a reordering does not break the import; NPI and PARTB are
required. Only the NPI and the flags are stored: the claim model carries no
ordering/referring provider name, so the name match of the phase 2 edits (N264/N575) is
not checked, and names are not kept.

The phase 2 ordering/referring edits (CMS CR 6417 and CR 6421; denials since 2014-01-06)
look the claim's ordering/referring NPI up in this file: an NPI that is not on it, or not
eligible for the benefit billed, fails the edit. `OrderReferringFile.part_b_status`
answers that for Part B; policy functions in engine/refdata/functions.py call it.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Final

from cleanclaim.dsl.codesets.npi import is_valid_npi
from cleanclaim.engine.ncci import SAMPLE_MARKER, TableError
from cleanclaim.engine.refdata.store import (
    DataStore,
    ImportRecord,
    is_store_file,
    now_utc,
    sha256_of,
    write_record,
)

TABLE: Final = "order-referring"
FLAGS: Final = ("partb", "dme", "hha", "pmd", "hospice")
_REQUIRED: Final = ("npi", "partb")
# What part_b_status answers (None: not judged).
ELIGIBLE: Final = "eligible"
NOT_ON_FILE: Final = "not_on_file"
NOT_PART_B: Final = "not_part_b"


def _source(path: Path) -> tuple[str, str, bytes]:
    """(label, file name, bytes) of the one CSV that ``path`` is or holds."""
    if path.suffix.lower() != ".zip":
        return str(path), path.name, path.read_bytes()
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if len(names) != 1:
                raise TableError(
                    str(path),
                    None,
                    (
                        "holds no CSV"
                        if not names
                        else f"holds {len(names)} CSVs "
                        f"({', '.join(names)}): extract the Order and Referring file"
                    ),
                )
            return f"{path}!{names[0]}", names[0].rsplit("/", 1)[-1], archive.read(names[0])
    except zipfile.BadZipFile as exc:
        raise TableError(str(path), None, f"not a readable zip archive ({exc})") from None


def read_order_referring(label: str, data: bytes) -> tuple[dict[str, str], bool]:
    """NPI -> its flags (one Y/N letter per `FLAGS`, "N" for a column the file lacks) of
    an Order and Referring CSV, and whether it is a cleanclaim sample (`SAMPLE_MARKER`
    in its first lines, which come before the CMS header). ``TableError`` (file:line)
    for a missing column, an NPI that is not a valid NPI, a flag other than Y/N, an NPI
    listed twice, or no row at all."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    sample = SAMPLE_MARKER in data[:512]
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    at: dict[str, int] = {}
    rows: dict[str, str] = {}
    first_at: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if not any(field.strip() for field in record):
            continue
        if header is None:
            names = [h.strip().lower() for h in record]
            if sample and "npi" not in names:
                continue  # the sample's marker and notes, before the CMS header
            missing = [c.upper() for c in (*_REQUIRED, "last_name", "first_name") if c not in names]
            if missing:
                raise TableError(
                    label,
                    line,
                    f"header lacks {', '.join(missing)} (not the "
                    "CMS Order and Referring file? its header is NPI,LAST_NAME,"
                    "FIRST_NAME,PARTB,DME,HHA,PMD,HOSPICE)",
                )
            header = names
            at = {name: names.index(name) for name in names}
            continue
        if len(record) < len(header):
            raise TableError(label, line, f"row has {len(record)} fields, the header {len(header)}")
        npi = record[at["npi"]].strip()
        if not is_valid_npi(npi):
            raise TableError(label, line, f"NPI {npi!r} is not a valid NPI")
        flags = ""
        for flag in FLAGS:
            value = record[at[flag]].strip().upper() if flag in at else "N"
            if value not in ("Y", "N"):
                raise TableError(label, line, f"{flag.upper()} {value!r} is neither Y nor N")
            flags += value
        if npi in rows:
            raise TableError(label, line, f"NPI {npi} listed twice (first at line {first_at[npi]})")
        rows[npi] = flags
        first_at[npi] = line
    if header is None:
        raise TableError(label, None, "the file is empty")
    if not rows and not sample:
        raise TableError(label, None, "no data rows")
    return rows, sample


def import_order_referring(
    store: DataStore, paths: Sequence[Path], effective: date | None = None
) -> ImportRecord | None:
    """Import one Order and Referring file (it replaces the one in use). ``effective``:
    the day the file was published (the file is a snapshot; shown by `data list`). None
    when that file is already the one in use."""
    if len(paths) != 1:
        raise TableError(
            ", ".join(map(str, paths)), None, "import one Order and Referring file at a time"
        )
    path = paths[0]
    if not path.is_file():
        raise TableError(str(path), None, "no such file")
    sha = sha256_of([path])
    if store.is_current(TABLE, sha) is not None:
        return None
    label, name, data = _source(path)
    rows, sample = read_order_referring(label, data)
    if sample:
        raise TableError(
            label,
            1,
            "a cleanclaim sample, not the CMS file: import the "
            "Order and Referring file from data.cms.gov",
        )
    part_b = sum(1 for flags in rows.values() if flags[0] == "Y")
    record = ImportRecord(
        TABLE,
        (name,),
        sha,
        len(rows),
        effective.isoformat() if effective else None,
        None,
        f"{part_b} NPIs eligible to order/refer Part B services",
        now_utc(),
    )
    with store.writing(TABLE) as conn:
        conn.execute(
            "CREATE TABLE orderers (npi TEXT PRIMARY KEY, flags TEXT NOT NULL) WITHOUT ROWID"
        )
        conn.executemany("INSERT INTO orderers VALUES (?, ?)", sorted(rows.items()))
        write_record(conn, record)
    return record


class OrderReferringFile:
    """The Order and Referring file as rules read it (the `cms-order-referring` table):
    an imported store file, a CSV read whole, or the pack's sample.

    A sample lists a few made-up NPIs for the pack's cases: an NPI it does not list is
    not judged (None), and findings resting on it are reviews (`sample`, `import_hint`)."""

    sample: str | None = None
    import_hint: Final = (
        "import the CMS Order and Referring file: `cleanclaim data import "
        "order-referring FILE.csv` (docs/data.md)"
    )

    def __init__(self, rows: Mapping[str, str] | None, path: Path | None, source: str) -> None:
        self._rows = rows
        self.source = source
        self._cache: dict[str, str | None] = {}
        if rows is None:
            assert path is not None
            from cleanclaim.engine.refdata.tables import StoreReader

            self._reader = StoreReader(path)

    def __repr__(self) -> str:
        return f"OrderReferringFile({self.source!r})"

    def flags(self, npi: str) -> str | None:
        """The Y/N flags (`FLAGS` order) of ``npi``; None when the file does not list it."""
        if self._rows is not None:
            return self._rows.get(npi)
        if npi not in self._cache:
            found = self._reader.query("SELECT flags FROM orderers WHERE npi = ?", (npi,))
            self._cache[npi] = str(found[0][0]) if found else None
        return self._cache[npi]

    def part_b_status(self, npi: str | None) -> str | None:
        """Whether ``npi`` may order or refer Part B services: `ELIGIBLE`, `NOT_PART_B`
        (listed, PARTB N), `NOT_ON_FILE`; None when not judged (no valid NPI, or a sample
        that does not list it)."""
        if npi is None or not is_valid_npi(npi):
            return None
        flags = self.flags(npi)
        if flags is None:
            return None if self.sample else NOT_ON_FILE
        return ELIGIBLE if flags[0] == "Y" else NOT_PART_B


def open_order_referring(path: Path) -> OrderReferringFile:
    """A store file, or an Order and Referring CSV (or a cleanclaim sample) read whole."""
    if is_store_file(path):
        return OrderReferringFile(None, path, f"{path} (imported)")
    label, name, data = _source(path)
    rows, sample = read_order_referring(label, data)
    table = OrderReferringFile(rows, None, label)
    if sample:
        table.sample = name
    return table

"""The local data folder that holds the imported CMS files, one SQLite file per table.

Layout of the folder (``default_data_dir()``):

    ptp.sqlite              NCCI practitioner PTP edits (the current import)
    mue.sqlite              NCCI practitioner MUE values (the current import)
    mcd-covered.sqlite      MCD article_x_icd10_covered rows (the current import)
    mcd-noncovered.sqlite   MCD article_x_icd10_noncovered rows
    mcd-hcpc.sqlite         MCD article_x_hcpc_code rows
    mcd-article.sqlite      MCD article.csv: each article version's effective/end dates
    mpfs.sqlite             MPFS PPRRVU rows, one version per effective date (all kept)
    order-referring.sqlite  the CMS Order and Referring file (the current import)
    catalog.sqlite          every import ever made (history; `data list --history`)

Versions: a PTP, MUE or MCD import **replaces** the current table of its kind (the
catalog keeps the record of the earlier ones); an MPFS import adds the version for its
effective date (replacing only an earlier import for the same date), so the fee schedule
can be read for any date of service it covers.

Every import is atomic: the new table is written to a temporary file in the folder and
renamed over the old one, so a reader sees the old table or the new one, never half.
Re-importing a file whose sha256 is already the current version is a no-op. Each data
file carries its own import record (table ``meta``), so what `data list` shows is what
the engine reads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

DATA_ENV: Final = "CLEANCLAIM_DATA_DIR"
# What `cleanclaim data import KIND` accepts, and the tables each kind fills.
KINDS: Final = ("ptp", "mue", "mcd", "mpfs", "order-referring")
TABLES: Final = (
    "ptp",
    "mue",
    "mcd-covered",
    "mcd-noncovered",
    "mcd-hcpc",
    "mcd-article",
    "mpfs",
    "order-referring",
)
SQLITE_MAGIC: Final = b"SQLite format 3\x00"


def default_data_dir() -> Path:
    """``$CLEANCLAIM_DATA_DIR``, else ``$XDG_DATA_HOME/cleanclaim``, else
    ``~/.local/share/cleanclaim``."""
    given = os.environ.get(DATA_ENV)
    if given:
        return Path(given).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "cleanclaim"


def is_store_file(path: Path) -> bool:
    """True when ``path`` is one of the data folder's SQLite tables (not a CMS file)."""
    if path.suffix != ".sqlite" or not path.is_file():
        return False
    with open(path, "rb") as fh:
        return fh.read(16) == SQLITE_MAGIC


@dataclass(frozen=True, slots=True)
class ImportRecord:
    """One import: which table, from which files, and what it held."""

    table: str
    files: tuple[str, ...]
    sha256: str
    rows: int
    effective_from: str | None
    effective_to: str | None
    detail: str
    imported_at: str

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["files"] = list(self.files)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportRecord:
        return cls(
            str(data["table"]),
            tuple(data["files"]),
            str(data["sha256"]),
            int(data["rows"]),
            data.get("effective_from"),
            data.get("effective_to"),
            str(data.get("detail", "")),
            str(data["imported_at"]),
        )


@dataclass(slots=True)
class ImportResult:
    """What one `data import` did: tables written, and tables already current (no-op)."""

    imported: list[ImportRecord] = field(default_factory=list)
    unchanged: list[ImportRecord] = field(default_factory=list)


def sha256_of(paths: Iterable[Path]) -> str:
    """The sha256 of one file; of several, the sha256 of their sorted digests."""
    import hashlib

    digests = []
    for path in paths:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        digests.append(h.hexdigest())
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class DataStore:
    """The data folder at ``root`` (created on the first import)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_data_dir()).expanduser()

    def __repr__(self) -> str:
        return f"DataStore({str(self.root)!r})"

    def path(self, table: str) -> Path:
        """The SQLite file of one table (it may not exist yet)."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; one of {', '.join(TABLES)}")
        return self.root / f"{table}.sqlite"

    def has(self, table: str) -> bool:
        return is_store_file(self.path(table))

    # ---- what is loaded -----------------------------------------------------------------

    def current(self, problems: list[str] | None = None) -> list[ImportRecord]:
        """The import record of every table the engine reads now (MPFS: every version).
        A table that cannot be read raises `TableError`, or with ``problems`` is left out
        and its error added there."""
        from cleanclaim.engine.ncci import TableError

        out: list[ImportRecord] = []
        for table in TABLES:
            if self.has(table):
                try:
                    out.extend(_records_in(self.path(table)))
                except TableError as exc:
                    if problems is None:
                        raise
                    problems.append(str(exc))
        return out

    def history(self) -> list[ImportRecord]:
        """Every import recorded in the catalog, oldest first."""
        catalog = self.root / "catalog.sqlite"
        if not is_store_file(catalog):
            return []
        with contextlib.closing(_connect_ro(catalog)) as conn:
            return [
                ImportRecord.from_json(json.loads(text))
                for (text,) in conn.execute("SELECT record FROM imports ORDER BY id")
            ]

    def table_overrides(self) -> dict[str, Path]:
        """The engine's table overrides (`Engine(tables=...)`) for what is imported: the
        NCCI formats read the store's tables; `cms-data` names the folder itself, from
        which MCD value sets and the fee schedule are read."""
        out: dict[str, Path] = {}
        if self.has("ptp"):
            out["ncci-ptp"] = self.path("ptp")
        if self.has("mue"):
            out["ncci-mue"] = self.path("mue")
        if self.has("mpfs"):
            out["cms-mpfs"] = self.path("mpfs")
        if self.has("order-referring"):
            out["cms-order-referring"] = self.path("order-referring")
        if any(self.has(t) for t in ("mcd-covered", "mcd-noncovered", "mcd-hcpc")):
            out["cms-data"] = self.root
        return out

    # ---- lookups ------------------------------------------------------------------------

    def article_codes(
        self, article: int | str, group: int, kind: str = "covered", on_date: dt.date | None = None
    ) -> frozenset[str] | None:
        """The codes of an MCD article's group list (`covered`, `noncovered` ICD-10-CM,
        without dots; `hcpc` procedure codes), of the highest article version imported;
        with ``on_date`` and article.csv imported, of the highest version in force that
        day. None when that article and group are not imported (or, with ``on_date``, no
        imported version of it is in force that day)."""
        from cleanclaim.engine.refdata.mcd import article_codes

        return article_codes(self, article, group, kind, on_date)

    def fee_schedule(
        self, code: str, on_date: dt.date, modifier: str | None = None
    ) -> dict[str, Any] | None:
        """The PPRRVU row of ``code`` (and modifier) in the version in force on
        ``on_date``, with the amounts; None when no imported version covers the code."""
        if not self.has("mpfs"):
            return None
        from cleanclaim.engine.refdata.mpfs import open_fee_schedule

        return open_fee_schedule(self.path("mpfs")).row(code, on_date, modifier)

    # ---- writing ------------------------------------------------------------------------

    def is_current(self, table: str, sha256: str) -> ImportRecord | None:
        """The current record of ``table`` with this sha256, if the file is already in."""
        if not self.has(table):
            return None
        from cleanclaim.engine.ncci import TableError

        try:
            records = _records_in(self.path(table))
        except TableError:
            return None  # a damaged table: the import writes it anew
        for record in records:
            if record.sha256 == sha256:
                return record
        return None

    @contextlib.contextmanager
    def writing(self, table: str, *, keep: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection to a temporary copy of ``table`` (empty, or the current one with
        ``keep``), renamed into place when the block ends without an exception."""
        import shutil
        import tempfile

        self.root.mkdir(parents=True, exist_ok=True)
        final = self.path(table)
        fd, name = tempfile.mkstemp(prefix=f".{table}.", suffix=".tmp", dir=self.root)
        os.close(fd)
        tmp = Path(name)
        if keep and self.has(table):
            shutil.copyfile(final, tmp)
        else:
            tmp.unlink()
        conn = sqlite3.connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, record TEXT)")
            yield conn
            conn.commit()
            conn.close()
            os.replace(tmp, final)
        except BaseException:
            conn.close()
            tmp.unlink(missing_ok=True)
            raise

    def log(self, records: Iterable[ImportRecord]) -> None:
        """Append imports to the catalog (the history `data list --history` shows)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(self.root / "catalog.sqlite")) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS imports (id INTEGER PRIMARY KEY, tbl TEXT, record TEXT)"
            )
            conn.executemany(
                "INSERT INTO imports (tbl, record) VALUES (?, ?)",
                [(r.table, json.dumps(r.to_json())) for r in records],
            )
            conn.commit()


def data_versions(overrides: Mapping[str, Path]) -> dict[str, str]:
    """Table -> "sha256:..." of the imported tables among an engine's table overrides
    (the decisions' `policy.data`); MPFS versions oldest first, comma-joined. CMS files
    given for one run (--ptp FILE) are not imports and are left out."""
    paths = [p for p in overrides.values() if is_store_file(p)]
    root = overrides.get("cms-data")
    if root is not None:
        paths += [
            p for t in TABLES if t.startswith("mcd-") and is_store_file(p := root / f"{t}.sqlite")
        ]
    out: dict[str, str] = {}
    for path in paths:
        with contextlib.suppress(ValueError):  # unreadable: its loader reports it
            out[path.stem] = ",".join(f"sha256:{r.sha256}" for r in _records_in(path))
    return dict(sorted(out.items()))


def write_record(conn: sqlite3.Connection, record: ImportRecord, key: str = "import") -> None:
    """Store the import record inside the data file (``key``: one per MPFS version)."""
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, record) VALUES (?, ?)",
        (key, json.dumps(record.to_json())),
    )


def _connect_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)


def connect_ro(path: Path) -> sqlite3.Connection:
    """A read-only connection to a data file, usable from any thread (reads only)."""
    return _connect_ro(path)


def _records_in(path: Path) -> list[ImportRecord]:
    try:
        with contextlib.closing(_connect_ro(path)) as conn:
            return [
                ImportRecord.from_json(json.loads(text))
                for (text,) in conn.execute("SELECT record FROM meta ORDER BY key")
            ]
    except (sqlite3.Error, ValueError, KeyError) as exc:
        from cleanclaim.engine.ncci import TableError

        raise TableError(
            str(path),
            None,
            f"cannot read the imported table ({exc}); "
            "import the CMS file again with `cleanclaim data import`",
        ) from None

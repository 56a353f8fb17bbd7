"""The Medicare Coverage Database (MCD) article code lists, as CMS publishes them.

The MCD downloads page (www.cms.gov/medicare-coverage-database/downloads) offers the
articles as ``current_article_csv.zip`` (inside: ``current_article_csv.zip`` again, or the
CSVs). Three of its CSVs carry the code lists a billing article sets out; their header
lines, as the download has them:

    article_x_icd10_covered.csv     "article_id","article_version","icd10_code_id",
        "icd10_code_version","icd10_covered_group","range","last_updated","sort_order",
        "description","asterisk"
    article_x_icd10_noncovered.csv  "article_id","article_version","icd10_code_id",
        "icd10_code_version","icd10_noncovered_group","range","last_updated","sort_order",
        "description"
    article_x_hcpc_code.csv         "article_id","article_version","hcpc_code_id",
        "hcpc_code_version","hcpc_code_group","range","last_updated","long_description",
        "short_description"

and ``article.csv`` (optional: the dates of each article version) ``"article_id",
"article_version","article_type","title","article_pub_date","article_eff_date",
"article_end_date",...`` (27 columns; the dates are read, as MM/DD/YYYY or YYYY-MM-DD).

``article_id`` is the number of the article (56781 for A56781), ``article_version`` its
version; a group is the numbered group of the article's coding section (Group 1, ...).
Columns are found by name, so the order may change; a file that lacks a needed column is
refused. Descriptions are not stored (CPT descriptors are AMA property).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

from cleanclaim.engine.ncci import TableError, is_procedure_code
from cleanclaim.engine.refdata.store import (
    DataStore,
    ImportRecord,
    now_utc,
    write_record,
)

# List name -> (file name, table, the code column, the group column).
LISTS: Final = {
    "covered": (
        "article_x_icd10_covered.csv",
        "mcd-covered",
        "icd10_code_id",
        "icd10_covered_group",
    ),
    "noncovered": (
        "article_x_icd10_noncovered.csv",
        "mcd-noncovered",
        "icd10_code_id",
        "icd10_noncovered_group",
    ),
    "hcpc": ("article_x_hcpc_code.csv", "mcd-hcpc", "hcpc_code_id", "hcpc_code_group"),
}
ARTICLE_FILE: Final = "article.csv"
_ICD10 = re.compile(r"[A-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?")


@dataclass(frozen=True, slots=True)
class McdSource:
    """One of the three CSVs: a file, or a member of a zip."""

    label: str
    name: str
    data: bytes


@dataclass(slots=True)
class McdList:
    """The rows of one CSV: (article, version, group, code, code version, range)."""

    list_name: str
    source: McdSource
    rows: list[tuple[int, int, int, str, str, str]]


def sources(paths: Sequence[Path]) -> list[McdSource]:
    """The MCD CSVs among ``paths`` (files, zips, nested zips, folders). Other members of
    a download (article.csv and the rest) are skipped; a single named file that is none
    of the three is an error."""
    out: list[McdSource] = []
    for path in paths:
        if path.is_dir():
            found = [
                s
                for p in sorted(path.iterdir())
                if p.is_file() and p.suffix.lower() in (".csv", ".zip")
                for s in _from_file(p, True)
            ]
        elif path.is_file():
            found = _from_file(path, False)
        else:
            raise TableError(str(path), None, "no such file or directory")
        if not found:
            raise TableError(
                str(path), None, "holds none of " + ", ".join(spec[0] for spec in LISTS.values())
            )
        out.extend(found)
    return out


def _from_file(path: Path, quiet: bool) -> list[McdSource]:
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                return _from_zip(archive, str(path))
        except zipfile.BadZipFile as exc:
            raise TableError(str(path), None, f"not a readable zip archive ({exc})") from None
    if _list_of(path.name) is None and not quiet:
        data = path.read_bytes()
        if _list_of_header(data) is None:
            raise TableError(
                str(path),
                1,
                "not an MCD article_x_icd10_covered, "
                "article_x_icd10_noncovered or article_x_hcpc_code file",
            )
        return [McdSource(str(path), path.name, data)]
    if _list_of(path.name) is None:
        return []
    return [McdSource(str(path), path.name, path.read_bytes())]


def _from_zip(archive: zipfile.ZipFile, label: str) -> list[McdSource]:
    out: list[McdSource] = []
    for name in sorted(archive.namelist()):
        base = name.rsplit("/", 1)[-1]
        if base.lower().endswith(".zip"):
            with archive.open(name) as inner, zipfile.ZipFile(io.BytesIO(inner.read())) as z:
                out.extend(_from_zip(z, f"{label}!{name}"))
        elif _list_of(base) is not None:
            out.append(McdSource(f"{label}!{name}", base, archive.read(name)))
    return out


def _list_of(file_name: str) -> str | None:
    lower = file_name.lower()
    if lower == ARTICLE_FILE:
        return "article"
    for list_name, (name, *_rest) in LISTS.items():
        if lower == name:
            return list_name
    return None


def _list_of_header(data: bytes) -> str | None:
    first = _text(data).split("\n", 1)[0].replace('"', "").lower()
    if "article_eff_date" in first and "article_id" in first:
        return "article"
    for list_name, (_name, _table, code, group) in LISTS.items():
        if code in first and group in first:
            return list_name
    return None


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _csv_records(
    source: McdSource, need: Sequence[str], *, show_columns: bool = False
) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The lower-cased header of an MCD CSV and its non-blank rows with their line numbers.

    Raises ``TableError`` (file:line) for an empty file, a header without a needed column,
    and (while the rows are read) a row with fewer fields than the header.
    """
    reader = csv.reader(io.StringIO(_text(source.data), newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise TableError(source.label, None, "the file is empty") from None
    missing = [c for c in need if c not in header]
    if missing:
        columns = f" (columns: {', '.join(header)})" if show_columns else ""
        raise TableError(source.label, 1, f"header lacks {', '.join(missing)}{columns}")

    def records() -> Iterator[tuple[int, list[str]]]:
        for record in reader:
            if not any(field.strip() for field in record):
                continue
            if len(record) < len(header):
                raise TableError(
                    source.label,
                    reader.line_num,
                    f"row has {len(record)} fields, the header {len(header)}",
                )
            yield reader.line_num, record

    return header, records()


def read(source: McdSource) -> McdList:
    """The rows of one MCD CSV; raises ``TableError`` (file:line) for a damaged row."""
    list_name = _list_of(source.name) or _list_of_header(source.data)
    if list_name is None:
        raise TableError(source.label, 1, "not an MCD article code list")
    _name, _table, code_col, group_col = LISTS[list_name]
    header, records = _csv_records(
        source, ["article_id", "article_version", code_col, group_col], show_columns=True
    )
    at = {name: header.index(name) for name in header}
    version_col = code_col.replace("_id", "_version")
    rows: list[tuple[int, int, int, str, str, str]] = []
    for line, record in records:
        numbers = []
        for col in ("article_id", "article_version", group_col):
            text = record[at[col]].strip()
            if not text.isdigit():
                raise TableError(source.label, line, f"{col} {text!r} is not a number")
            numbers.append(int(text))
        code = record[at[code_col]].strip().upper()
        if list_name == "hcpc":
            if not is_procedure_code(code):
                raise TableError(
                    source.label, line, f"hcpc_code_id {code!r} is not a CPT or HCPCS code"
                )
        else:
            if not _ICD10.fullmatch(code):
                raise TableError(
                    source.label, line, f"icd10_code_id {code!r} is not an ICD-10-CM code"
                )
            code = code.replace(".", "")
        rows.append(
            (
                numbers[0],
                numbers[1],
                numbers[2],
                code,
                record[at[version_col]].strip() if version_col in at else "",
                record[at["range"]].strip() if "range" in at else "",
            )
        )
    if not rows:
        raise TableError(source.label, None, "no data rows")
    return McdList(list_name, source, rows)


def import_mcd(store: DataStore, paths: Sequence[Path]) -> tuple[list[ImportRecord], list[str]]:
    """Import the MCD lists found in ``paths``. Every file is read and checked before
    any is written. Returns the new records and the tables already current."""
    import hashlib

    found = sources(paths)
    seen: dict[str, str] = {}
    for source in found:
        list_name = _list_of(source.name) or _list_of_header(source.data) or "?"
        if list_name in seen:
            what = ARTICLE_FILE if list_name == "article" else LISTS[list_name][0]
            raise TableError(source.label, None, f"a second {what} (first: {seen[list_name]})")
        seen[list_name] = source.label
    unchanged: list[str] = []
    todo: list[tuple[McdList, str]] = []
    dated: tuple[list[tuple[int, int, str | None, str | None]], str, str] | None = None
    for source in found:
        sha = hashlib.sha256(source.data).hexdigest()
        list_name = _list_of(source.name) or _list_of_header(source.data) or ""
        table = (
            "mcd-article"
            if list_name == "article"
            else LISTS[list_name][1]
            if list_name in LISTS
            else ""
        )
        if table and store.is_current(table, sha) is not None:
            unchanged.append(table)
            continue
        if list_name == "article":
            dated = (read_articles(source), sha, source.name)
        else:
            todo.append((read(source), sha))
    records: list[ImportRecord] = []
    if dated is not None:
        rows, sha, name = dated
        starts = sorted(r[2] for r in rows if r[2])
        ends = sorted(r[3] for r in rows if r[3])
        record = ImportRecord(
            "mcd-article",
            (name,),
            sha,
            len(rows),
            starts[0] if starts else None,
            ends[-1] if ends else None,
            f"{len({r[0] for r in rows})} article(s); the "
            "dates are the earliest effective and latest end date of their versions",
            now_utc(),
        )
        with store.writing("mcd-article") as conn:
            conn.execute(
                "CREATE TABLE articles (article INTEGER NOT NULL, version INTEGER "
                "NOT NULL, effective TEXT, ending TEXT, PRIMARY KEY (article, "
                "version))"
            )
            conn.executemany("INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?)", rows)
            write_record(conn, record)
        records.append(record)
    for parsed, sha in todo:
        table = LISTS[parsed.list_name][1]
        articles = sorted({(a, v) for a, v, *_ in parsed.rows})
        shown = ", ".join(f"A{a} v{v}" for a, v in articles[:4])
        record = ImportRecord(
            table,
            (parsed.source.name,),
            sha,
            len(parsed.rows),
            None,
            None,
            f"{len(articles)} article version(s): {shown}" + (" ..." if len(articles) > 4 else ""),
            now_utc(),
        )
        with store.writing(table) as conn:
            conn.execute(
                "CREATE TABLE codes (article INTEGER NOT NULL, version INTEGER "
                "NOT NULL, grp INTEGER NOT NULL, code TEXT NOT NULL, code_version "
                "TEXT, range TEXT)"
            )
            conn.executemany("INSERT INTO codes VALUES (?, ?, ?, ?, ?, ?)", parsed.rows)
            conn.execute("CREATE INDEX codes_by_article ON codes (article, grp)")
            write_record(conn, record)
        records.append(record)
    return records, unchanged


def _date_text(text: str) -> str | None:
    """An MCD date (MM/DD/YYYY or YYYY-MM-DD, maybe with a time) as ISO; "" as None."""
    import datetime as dt

    text = text.strip()
    if not text:
        return None
    head = text.split(" ", 1)[0].split("T", 1)[0]
    for form in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(head, form).date().isoformat()
        except ValueError:
            continue
    raise ValueError(text)


def read_articles(source: McdSource) -> list[tuple[int, int, str | None, str | None]]:
    """(article, version, effective, end) of each row of article.csv."""
    need = ["article_id", "article_version", "article_eff_date", "article_end_date"]
    header, records = _csv_records(source, need)
    at = [header.index(c) for c in need]
    rows: list[tuple[int, int, str | None, str | None]] = []
    for line, record in records:
        article, version, start, end = (record[i].strip() for i in at)
        if not (article.isdigit() and version.isdigit()):
            raise TableError(
                source.label,
                line,
                f"article_id {article!r} / article_version {version!r} is not a number",
            )
        try:
            rows.append((int(article), int(version), _date_text(start), _date_text(end)))
        except ValueError as exc:
            raise TableError(
                source.label, line, f"date {exc.args[0]!r} is not MM/DD/YYYY or YYYY-MM-DD"
            ) from None
    if not rows:
        raise TableError(source.label, None, "no data rows")
    return rows


def article_number(article: int | str) -> int:
    """56781 for 56781, "56781" or "A56781"."""
    text = str(article).strip().upper().removeprefix("A")
    if not text.isdigit():
        raise ValueError(f"{article!r} is not an MCD article id (e.g. A56781)")
    return int(text)


def article_codes(
    store: DataStore, article: int | str, group: int, list_name: str, on_date: date | None = None
) -> frozenset[str] | None:
    """The codes of one article group list, highest imported article version (with
    ``on_date`` and article.csv imported: highest version in force that day); None when
    that article and group are not in the imported list, or no version is in force."""
    if list_name not in LISTS:
        raise ValueError(f"unknown MCD list {list_name!r}: covered, noncovered or hcpc")
    table = LISTS[list_name][1]
    if not store.has(table):
        return None
    from cleanclaim.engine.refdata.tables import StoreReader

    number = article_number(article)
    reader = StoreReader(store.path(table))
    versions = [
        v
        for (v,) in reader.query(
            "SELECT DISTINCT version FROM codes WHERE article = ? AND grp = ?", (number, group)
        )
    ]
    if on_date is not None and store.has("mcd-article"):
        day = on_date.isoformat()
        in_force = {
            v
            for (v,) in StoreReader(store.path("mcd-article")).query(
                "SELECT version FROM articles WHERE article = ? AND (effective IS NULL OR "
                "effective <= ?) AND (ending IS NULL OR ? <= ending)",
                (number, day, day),
            )
        }
        versions = [v for v in versions if v in in_force]
    if not versions:
        return None
    version = max(versions)
    return frozenset(
        code
        for (code,) in reader.query(
            "SELECT code FROM codes WHERE article = ? AND grp = ? AND version = ?",
            (number, group, version),
        )
    )

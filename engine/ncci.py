"""Readers and fast lookups for the CMS NCCI practitioner PTP and MUE files.

The CMS publishes both tables quarterly (reference/README.md has the layouts). The loaders
read the files exactly as CMS distributes them:

* ``load_ptp`` reads the practitioner procedure-to-procedure file ``ccipra-vNNNrN-fN.TXT``:
  tab-delimited, a copyright preamble and a one- or two-line header before the data, columns
  ``Column 1 | Column 2 | * = in existence prior to 1996 | Effective Date | Deletion Date |
  Modifier Indicator | PTP Edit Rationale``.
* ``load_mue`` reads the practitioner MUE file ``MCR_MUE_PractitionerServices_Eff_*.csv``:
  comma-separated (fields may be quoted), preamble lines before the header, columns
  ``HCPCS/CPT Code, Practitioner Services MUE Values, MUE Adjudication Indicator,
  MUE Rationale``.

Either loader also takes a ``.zip`` as downloaded from CMS (its ``.txt``/``.csv`` members), a
directory (its table files), or several paths (the PTP practitioner table comes in four
files). Preamble and header lines are recognised by content, not by count: a PTP line is a
data row when its first two fields are procedure codes (or its fourth field is an 8-digit
date), an MUE line when its first field is a procedure code. A data row that is malformed
raises ``TableError`` naming file and line; nothing is silently dropped.

Loading is built for the real sizes (about 2 million PTP rows): lines are split as bytes,
codes are validated and interned once per distinct value, and the tail of a PTP row
(dates, indicator, rationale) is parsed once per distinct tail and shared, so one row costs
a few dict operations and one dict slot in memory.
"""

from __future__ import annotations

import csv
import re
import sys
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Final

__all__ = [
    "NCCI_PTP_MODIFIERS",
    "SAMPLE_MARKER",
    "MueEdit",
    "MueTable",
    "PtpHit",
    "PtpTable",
    "TableError",
    "is_procedure_code",
    "load_mue",
    "load_ptp",
    "sample_warning",
]

# NCCI Policy Manual ch. I §E: the NCCI PTP-associated modifiers. 22, 76 and 77 are
# deliberately absent: they never bypass a PTP edit.
_ANATOMIC_MODIFIERS: Final = frozenset(
    ["E1", "E2", "E3", "E4", "FA", "TA", "LT", "RT", "LC", "LD", "RC", "LM", "RI"]
    + [f"F{i}" for i in range(1, 10)]
    + [f"T{i}" for i in range(1, 10)]
)
_GLOBAL_SURGERY_MODIFIERS: Final = frozenset(["24", "25", "57", "58", "78", "79"])
_OTHER_MODIFIERS: Final = frozenset(["27", "59", "91", "XE", "XS", "XP", "XU"])
NCCI_PTP_MODIFIERS: Final[frozenset[str]] = (
    _ANATOMIC_MODIFIERS | _GLOBAL_SURGERY_MODIFIERS | _OTHER_MODIFIERS
)

_CODE_RE: Final = re.compile(r"[0-9]{4}[0-9FTU]|[A-Z][0-9]{4}")

# The first line of the hand-made samples the packs ship (never of a CMS file): a table
# read from such a file is a sample, and findings resting on it are reviews, not denials.
SAMPLE_MARKER: Final = b"cleanclaim SAMPLE TABLE - NOT CMS DATA"

_UTF8_BOM: Final = "\ufeff"


class TableError(ValueError):
    """A reference table cannot be read; the message starts with ``file:line:``."""

    def __init__(self, file: str, line: int | None, reason: str) -> None:
        where = file if line is None else f"{file}:{line}"
        super().__init__(f"{where}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason


def is_procedure_code(text: str) -> bool:
    """True for a 5-character HCPCS/CPT code: 5 digits, 4 digits + F/T/U, or letter + 4 digits."""
    return _CODE_RE.fullmatch(text) is not None


def _canonical_code(raw: str) -> str | None:
    text = raw.strip().lstrip(_UTF8_BOM).strip().upper()
    return sys.intern(text) if _CODE_RE.fullmatch(text) else None


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _parse_yyyymmdd(text: str) -> date | None:
    if len(text) != 8 or not text.isascii() or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True, slots=True)
class _Source:
    """One table file: a plain file, or a member of a zip archive."""

    label: str
    path: Path
    member: str | None = None

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        if self.member is None:
            with open(self.path, "rb") as fh:
                yield fh
        else:
            with zipfile.ZipFile(self.path) as archive, archive.open(self.member) as fh:
                yield fh


def _is_sample(source: _Source) -> bool:
    with source.open() as fh:
        return SAMPLE_MARKER in fh.read(512)


def sample_warning(tables: Iterable[object]) -> str | None:
    """The one warning a run prints when any of its NCCI tables is a shipped sample."""
    samples: set[str] = set()
    hints: set[str] = set()
    for table in tables:
        sample = getattr(table, "sample", None)
        if not sample:
            continue
        hint = getattr(table, "import_hint", None)
        if isinstance(hint, str):  # another kind of table (the MPFS sample)
            hints.add(f"{sample}: {hint}")
        else:
            samples.add(str(sample))
    if not samples and not hints:
        return None
    parts = []
    if samples:
        parts.append(f"NCCI sample tables in use ({', '.join(sorted(samples))}): their "
                     "edits are illustrative, findings on them are reviews; load the CMS "
                     "quarterly files with --ptp/--mue")
    parts.extend(f"sample table in use, findings on it are reviews ({h})"
                 for h in sorted(hints))
    return "; ".join(parts)


def _sources(paths: Sequence[Path | str], suffix: str, kind: str) -> list[_Source]:
    """Expand files, zip archives and directories into the table files to read, in order."""
    if not paths:
        raise TypeError(f"load_{kind} needs at least one path")
    out: list[_Source] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file())
            tables = [p for p in inside if p.suffix.lower() == suffix]
            if not tables:  # the downloads as they come, still zipped
                tables = [p for p in inside if p.suffix.lower() == ".zip"]
            if not tables:
                raise TableError(str(path), None, f"no {suffix} or .zip files in directory")
            for table in tables:
                out.extend(_file_sources(table, suffix))
        elif path.is_file():
            out.extend(_file_sources(path, suffix))
        else:
            raise TableError(str(path), None, "no such file or directory")
    return out


def _file_sources(path: Path, suffix: str) -> list[_Source]:
    if path.suffix.lower() != ".zip":
        return [_Source(str(path), path)]
    try:
        with zipfile.ZipFile(path) as archive:
            members = sorted(
                name
                for name in archive.namelist()
                if name.lower().endswith(suffix) and not name.endswith("/")
            )
    except zipfile.BadZipFile as exc:
        raise TableError(str(path), None, f"not a readable zip archive ({exc})") from None
    if not members:
        raise TableError(str(path), None, f"zip archive holds no {suffix} file")
    return [_Source(f"{path}!{name}", path, name) for name in members]


def _no_rows(source: _Source, what: str) -> TableError:
    """The error for a file without a single data row, with a hint when it is UTF-16."""
    with source.open() as fh:
        head = fh.read(2)
    if head in (b"\xff\xfe", b"\xfe\xff"):
        return TableError(
            source.label, None, f"no {what} rows found: the file is UTF-16, not the CMS text"
        )
    return TableError(source.label, None, f"no {what} rows found (not a {what} file?)")


# --------------------------------------------------------------------------- PTP


@dataclass(frozen=True, slots=True)
class PtpHit:
    """One PTP edit row: ``column2`` is denied when billed with ``column1`` on the same day.

    ``indicator`` is the modifier indicator (0: no modifier bypasses, 1: an NCCI-associated
    modifier bypasses, 9: not applicable); ``deletion`` is None while the edit has no
    deletion date.
    """

    column1: str
    column2: str
    indicator: int
    effective: date
    deletion: date | None
    rationale: str

    @property
    def modifier_allowed(self) -> bool:
        """True when an NCCI-associated modifier may bypass the edit (indicator 1)."""
        return self.indicator == 1

    def in_force(self, on: date) -> bool:
        """Effective date <= ``on`` and (no deletion date or ``on`` < deletion date)."""
        return self.effective <= on and (self.deletion is None or on < self.deletion)


@dataclass(frozen=True, slots=True)
class _PtpRow:
    """The part of a PTP row after the code pair; one object shared by equal tails."""

    effective: date
    deletion: date | None
    indicator: int
    rationale: str


_Rows = tuple[_PtpRow, ...]


def _in_force(rows: _Rows, on: date) -> _PtpRow | None:
    """The row of one code pair in force on ``on``: the latest effective date wins, and among
    rows with the same effective date the one later in the file."""
    best: _PtpRow | None = None
    for row in rows:
        if (
            row.effective <= on
            and (row.deletion is None or on < row.deletion)
            and (best is None or row.effective >= best.effective)
        ):
            best = row
    return best


def _has_ncci_modifier(modifiers: Iterable[str]) -> bool:
    for modifier in modifiers:
        if modifier in NCCI_PTP_MODIFIERS or modifier.strip().upper() in NCCI_PTP_MODIFIERS:
            return True
    return False


class PtpTable:
    """The NCCI PTP edits, indexed by column-2 code, then column-1 code.

    Every row of the file is kept, including rows with the same code pair and different
    date ranges; ``len()`` counts them all.
    """

    __slots__ = ("_index", "_rows", "column2", "sample", "source")

    def __init__(self, index: dict[str, dict[str, _Rows]], rows: int, source: str,
                 sample: str | None = None) -> None:
        self._index = index
        # Set (to the file) when the table is a shipped sample, not CMS data.
        self.sample = sample
        # Column-2 codes of any edit: a line whose code is not one is never bundled.
        self.column2: Mapping[str, object] = index
        self._rows = rows
        self.source = source

    def __len__(self) -> int:
        return self._rows

    def __repr__(self) -> str:
        return f"PtpTable({self.source!r}, rows={self._rows})"

    def has_column2(self, code: str) -> bool:
        """True when ``code`` is the column-2 code of at least one edit (any dates)."""
        return code in self._index

    def edits(self, column2: str) -> list[PtpHit]:
        """All rows whose column 2 is ``column2`` (any dates), by column-1 code, file order."""
        by_column1 = self._index.get(column2)
        if by_column1 is None:
            return []
        return [
            _hit(column1, column2, row)
            for column1 in sorted(by_column1)
            for row in by_column1[column1]
        ]

    def edit_in_force(self, column1: str, column2: str, on: date) -> PtpHit | None:
        """The row for this code pair in force on ``on`` (whatever its indicator), if any."""
        by_column1 = self._index.get(column2)
        if by_column1 is None:
            return None
        rows = by_column1.get(column1)
        row = None if rows is None else _in_force(rows, on)
        return None if row is None else _hit(column1, column2, row)

    def column1_conflict(
        self,
        code: str,
        modifiers: Sequence[str],
        service_date: date,
        others: Iterable[tuple[str, Sequence[str], date]],
    ) -> PtpHit | None:
        """The edit that denies the line billing ``code`` as a column-2 code, or None.

        ``others`` are the other lines of the claim as (code, modifiers, date of service).
        An edit applies when another line on the same date of service bills the column-1
        code of an edit in force that day whose column 2 is ``code``. Indicator 9 never
        fires; indicator 0 is never bypassed; indicator 1 is bypassed by an NCCI-associated
        modifier on either line. The first applicable edit, in the order of ``others``, is
        returned.
        """
        by_column1 = self._index.get(code)
        if by_column1 is None:
            return None
        own_bypass: bool | None = None  # computed on first need
        for other_code, other_modifiers, other_date in others:
            if other_date != service_date:
                continue
            rows = by_column1.get(other_code)
            if rows is None:
                continue
            row = _in_force(rows, service_date)
            if row is None or row.indicator == 9:
                continue
            if row.indicator == 1:
                if own_bypass is None:
                    own_bypass = _has_ncci_modifier(modifiers)
                if own_bypass or _has_ncci_modifier(other_modifiers):
                    continue
            return _hit(other_code, code, row)
        return None


def _hit(column1: str, column2: str, row: _PtpRow) -> PtpHit:
    return PtpHit(column1, column2, row.indicator, row.effective, row.deletion, row.rationale)


class _PtpReader:
    """Parses PTP files into one index; caches are shared across the files of a table."""

    def __init__(self) -> None:
        self.index: dict[str, dict[str, _Rows]] = {}
        self.rows = 0
        self._codes: dict[bytes, str] = {}
        self._tails: dict[bytes, _Rows] = {}
        self._dates: dict[str, date | None] = {}
        self._rationales: dict[str, str] = {}

    def read(self, source: _Source) -> int:
        """Add the data rows of one file; returns how many it held."""
        index = self.index
        codes = self._codes
        tails = self._tails
        before = self.rows
        count = 0
        with source.open() as fh:
            # The hot loop: plain subscripts on caches, exceptions only on cache misses
            # (first sight of a code or a tail) and on preamble/header lines.
            for lineno, line in enumerate(fh, 1):
                try:
                    raw1, raw2, _, tail = line.split(b"\t", 3)
                    column1 = codes[raw1]
                    column2 = codes[raw2]
                    rows = tails[tail]
                except (ValueError, KeyError):
                    parsed = self._slow_row(line, source.label, lineno)
                    if parsed is None:
                        continue
                    column1, column2, rows = parsed
                try:
                    by_column1 = index[column2]
                except KeyError:
                    by_column1 = index[column2] = {}
                if column1 in by_column1:  # duplicate key: keep every row, file order
                    by_column1[column1] += rows
                else:
                    by_column1[column1] = rows
                count += 1
        self.rows = before + count
        return count

    def _code(self, raw: bytes) -> str | None:
        code = self._codes.get(raw)
        if code is None:
            code = _canonical_code(_decode(raw))
            if code is not None:
                self._codes[raw] = code
        return code

    def _looks_like_data(self, parts: list[bytes]) -> bool:
        if len(parts) >= 2 and self._code(parts[0]) and self._code(parts[1]):
            return True
        if len(parts) == 4:
            effective = parts[3].split(b"\t", 1)[0].strip()
            return len(effective) == 8 and effective.isdigit()
        return False

    def _slow_row(self, line: bytes, label: str, lineno: int) -> tuple[str, str, _Rows] | None:
        """A line not made of cached parts: skip it (preamble, header), parse it or raise."""
        parts = line.split(b"\t", 3)
        if not self._looks_like_data(parts):
            return None
        if len(parts) < 4:
            raise TableError(
                label, lineno, f"PTP row has {len(parts)} tab-separated fields, expected 7"
            )
        column1 = self._code(parts[0])
        if column1 is None:
            raise TableError(label, lineno, f"column 1 {_show(parts[0])} is not a procedure code")
        column2 = self._code(parts[1])
        if column2 is None:
            raise TableError(label, lineno, f"column 2 {_show(parts[1])} is not a procedure code")
        tail = parts[3]
        rows = self._tails.get(tail)
        if rows is None:
            rows = (self._parse_tail(tail, label, lineno),)
            self._tails[tail] = rows
        return column1, column2, rows

    def _date(self, text: str) -> date | None:
        try:
            return self._dates[text]
        except KeyError:
            value = self._dates[text] = _parse_yyyymmdd(text)
            return value

    def _parse_tail(self, tail: bytes, label: str, lineno: int) -> _PtpRow:
        fields = [f.strip() for f in _decode(tail).rstrip("\r\n").split("\t")]
        while len(fields) > 4 and not fields[-1]:
            fields.pop()
        if not 3 <= len(fields) <= 4:
            raise TableError(
                label, lineno, f"PTP row has {len(fields) + 3} tab-separated fields, expected 7"
            )
        effective_text, deletion_text, indicator_text = fields[:3]
        effective = self._date(effective_text)
        if effective is None:
            raise TableError(
                label, lineno, f"effective date {effective_text!r} is not a YYYYMMDD date"
            )
        deletion: date | None = None
        if deletion_text not in ("*", ""):
            deletion = self._date(deletion_text)
            if deletion is None:
                raise TableError(
                    label,
                    lineno,
                    f"deletion date {deletion_text!r} is not a YYYYMMDD date or '*'",
                )
        if indicator_text not in ("0", "1", "9"):
            raise TableError(
                label, lineno, f"modifier indicator {indicator_text!r} is not 0, 1 or 9"
            )
        rationale = fields[3] if len(fields) > 3 else ""
        rationale = self._rationales.setdefault(rationale, rationale)
        return _PtpRow(effective, deletion, int(indicator_text), rationale)


def _show(raw: bytes) -> str:
    return repr(_decode(raw).strip())


def load_ptp(path: Path | str, *more: Path | str) -> PtpTable:
    """Load the CMS NCCI practitioner PTP table.

    ``path`` (and ``more``) may each be a ``ccipra-*.TXT`` file, a CMS ``.zip`` holding
    such files, or a directory of them; the practitioner table comes in several files,
    which load into one table. Raises ``TableError`` (``file:line: reason``) for a
    malformed data row, and for a file that holds no PTP rows at all.
    """
    paths = (path, *more)
    reader = _PtpReader()
    samples = []
    for source in _sources(paths, ".txt", "ptp"):
        if reader.read(source) == 0:
            raise _no_rows(source, "PTP")
        if _is_sample(source):
            samples.append(Path(source.label).name)
    return PtpTable(reader.index, reader.rows, ", ".join(str(p) for p in paths),
                    ", ".join(samples) or None)


# --------------------------------------------------------------------------- MUE


@dataclass(frozen=True, slots=True)
class MueEdit:
    """One MUE row: at most ``value`` units of ``code``.

    ``indicator`` is the MUE adjudication indicator: 1 line edit (units of one claim line);
    2 date-of-service edit, policy (units summed over the lines of the same date of
    service, absolute); 3 date-of-service edit, clinical (same sum, appealable).
    """

    code: str
    value: int
    indicator: int
    rationale: str

    @property
    def per_line(self) -> bool:
        """True for a line edit (indicator 1); False for a date-of-service edit (2, 3)."""
        return self.indicator == 1


class MueTable:
    """The MUE values, by procedure code."""

    __slots__ = ("_edits", "indicators", "per_line", "sample", "source", "values")

    def __init__(self, edits: dict[str, MueEdit], source: str,
                 sample: str | None = None) -> None:
        self._edits = edits
        # Set (to the file) when the table is a shipped sample, not CMS data.
        self.sample = sample
        # The MUE adjudication indicator (1, 2, 3) of each code.
        self.indicators: dict[str, int] = {code: e.indicator for code, e in edits.items()}
        # The MUE value of each code (what `mue_limit` answers, as one dict look-up), and
        # the codes whose edit counts each line alone (indicator 1).
        self.values: dict[str, int] = {code: edit.value for code, edit in edits.items()}
        self.per_line = frozenset(code for code, edit in edits.items() if edit.indicator == 1)
        self.source = source

    def __len__(self) -> int:
        return len(self._edits)

    def __contains__(self, code: object) -> bool:
        return code in self._edits

    def __repr__(self) -> str:
        return f"MueTable({self.source!r}, codes={len(self._edits)})"

    def get(self, code: str) -> MueEdit | None:
        """The MUE for ``code``, or None when the code has none."""
        return self._edits.get(code)

    def excess(self, code: str, line_units: float, same_day_units: float) -> MueEdit | None:
        """The MUE that the units exceed, or None.

        Indicator 1 compares ``line_units`` (the line's own units); indicators 2 and 3
        compare ``same_day_units`` (the units of ``code`` summed over all lines of the
        claim on the line's date of service). Fires when units > value.
        """
        edit = self._edits.get(code)
        if edit is None:
            return None
        units = line_units if edit.indicator == 1 else same_day_units
        return edit if units > edit.value else None


def _csv_fields(line: str) -> list[str]:
    if '"' not in line:
        return line.rstrip("\r\n").split(",")
    return next(csv.reader([line.rstrip("\r\n")]), [])


def _read_mue(source: _Source, edits: dict[str, MueEdit], seen: dict[str, str]) -> int:
    count = 0
    rationales: dict[str, str] = {}
    with source.open() as fh:
        for lineno, raw in enumerate(fh, 1):
            fields = _csv_fields(_decode(raw))
            code = _canonical_code(fields[0]) if fields else None
            if code is None:
                continue  # preamble, header, blank line
            where = f"{source.label}:{lineno}"
            if len(fields) < 3:
                raise TableError(
                    source.label,
                    lineno,
                    f"MUE row has {len(fields)} comma-separated fields, expected 4",
                )
            value_text = fields[1].strip()
            if not (value_text.isascii() and value_text.isdigit()):
                raise TableError(
                    source.label, lineno, f"MUE value {value_text!r} is not a whole number"
                )
            indicator_text = fields[2].strip()
            indicator = indicator_text[:1]
            if indicator not in ("1", "2", "3") or indicator_text[1:2].isdigit():
                raise TableError(
                    source.label,
                    lineno,
                    f"MUE adjudication indicator {indicator_text!r} does not start with 1, 2 or 3",
                )
            rationale = ",".join(fields[3:]).strip()
            rationale = rationales.setdefault(rationale, rationale)
            if code in edits:
                raise TableError(
                    source.label, lineno, f"duplicate MUE row for {code} (first at {seen[code]})"
                )
            edits[code] = MueEdit(code, int(value_text), int(indicator), rationale)
            seen[code] = where
            count += 1
    return count


def load_mue(path: Path | str, *more: Path | str) -> MueTable:
    """Load the CMS practitioner MUE table.

    ``path`` (and ``more``) may each be an ``MCR_MUE_PractitionerServices_*.csv`` file, a
    CMS ``.zip`` holding it, or a directory. Raises ``TableError`` (``file:line: reason``)
    for a malformed data row or a code listed twice, and for a file with no MUE rows.
    """
    paths = (path, *more)
    edits: dict[str, MueEdit] = {}
    seen: dict[str, str] = {}
    samples = []
    for source in _sources(paths, ".csv", "mue"):
        if _read_mue(source, edits, seen) == 0:
            raise _no_rows(source, "MUE")
        if _is_sample(source):
            samples.append(Path(source.label).name)
    return MueTable(edits, ", ".join(str(p) for p in paths), ", ".join(samples) or None)

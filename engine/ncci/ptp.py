"""The practitioner PTP table: its reader (about 2 million rows, split as bytes, tails shared)
and `PtpTable`, the edits of a code pair in force on a date."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

from cleanclaim.engine.ncci.sources import (
    Source,
    TableError,
    canonical_code,
    decode,
    is_sample,
    no_rows,
    parse_yyyymmdd,
    sources,
)

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

    def __init__(
        self, index: dict[str, dict[str, _Rows]], rows: int, source: str, sample: str | None = None
    ) -> None:
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

    def read(self, source: Source) -> int:
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
            code = canonical_code(decode(raw))
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
            value = self._dates[text] = parse_yyyymmdd(text)
            return value

    def _parse_tail(self, tail: bytes, label: str, lineno: int) -> _PtpRow:
        fields = [f.strip() for f in decode(tail).rstrip("\r\n").split("\t")]
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
    return repr(decode(raw).strip())


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
    for source in sources(paths, ".txt", "ptp"):
        if reader.read(source) == 0:
            raise no_rows(source, "PTP")
        if is_sample(source):
            samples.append(Path(source.label).name)
    return PtpTable(
        reader.index, reader.rows, ", ".join(str(p) for p in paths), ", ".join(samples) or None
    )

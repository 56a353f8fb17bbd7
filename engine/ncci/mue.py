"""The practitioner MUE table: its reader and `MueTable`, each code's units a day and
adjudication indicator."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from cleanclaim.engine.ncci.sources import (
    Source,
    TableError,
    canonical_code,
    decode,
    is_sample,
    no_rows,
    sources,
)

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

    def __init__(self, edits: dict[str, MueEdit], source: str, sample: str | None = None) -> None:
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


def _read_mue(source: Source, edits: dict[str, MueEdit], seen: dict[str, str]) -> int:
    count = 0
    rationales: dict[str, str] = {}
    with source.open() as fh:
        for lineno, raw in enumerate(fh, 1):
            fields = _csv_fields(decode(raw))
            code = canonical_code(fields[0]) if fields else None
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
    for source in sources(paths, ".csv", "mue"):
        if _read_mue(source, edits, seen) == 0:
            raise no_rows(source, "MUE")
        if is_sample(source):
            samples.append(Path(source.label).name)
    return MueTable(edits, ", ".join(str(p) for p in paths), ", ".join(samples) or None)

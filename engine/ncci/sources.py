"""What the PTP and MUE readers share: where a table's lines come from (a file, a `.zip`, a
folder, several paths), the sample marker, codes and dates as CMS writes them, and
`TableError`."""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Final

from cleanclaim.dsl.codesets.procedure import UPPER_CASE_CODE

# The first line of the hand-made samples the packs ship (never of a CMS file): a table
# read from such a file is a sample, and findings resting on it are reviews, not denials.
SAMPLE_MARKER: Final = b"cleanclaim SAMPLE TABLE - NOT CMS DATA"

UTF8_BOM: Final = "\ufeff"


class TableError(ValueError):
    """A reference table cannot be read; the message starts with ``file:line:``."""

    def __init__(self, file: str, line: int | None, reason: str) -> None:
        where = file if line is None else f"{file}:{line}"
        super().__init__(f"{where}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason


def is_procedure_code(text: str) -> bool:
    """True for an upper-case CPT or HCPCS Level II code (the shapes of
    dsl/codesets/procedure.py; the readers of CMS files upper-case first)."""
    return UPPER_CASE_CODE.fullmatch(text) is not None


def canonical_code(raw: str) -> str | None:
    text = raw.strip().lstrip(UTF8_BOM).strip().upper()
    return sys.intern(text) if UPPER_CASE_CODE.fullmatch(text) else None


def decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def parse_yyyymmdd(text: str) -> date | None:
    if len(text) != 8 or not text.isascii() or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True, slots=True)
class Source:
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


def is_sample(source: Source) -> bool:
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
        parts.append(
            f"NCCI sample tables in use ({', '.join(sorted(samples))}): their "
            "edits are illustrative, findings on them are reviews; load the CMS "
            "quarterly files with --ptp/--mue"
        )
    parts.extend(f"sample table in use, findings on it are reviews ({h})" for h in sorted(hints))
    return "; ".join(parts)


def sources(paths: Sequence[Path | str], suffix: str, kind: str) -> list[Source]:
    """Expand files, zip archives and directories into the table files to read, in order."""
    if not paths:
        raise TypeError(f"load_{kind} needs at least one path")
    out: list[Source] = []
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


def _file_sources(path: Path, suffix: str) -> list[Source]:
    if path.suffix.lower() != ".zip":
        return [Source(str(path), path)]
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
    return [Source(f"{path}!{name}", path, name) for name in members]


def no_rows(source: Source, what: str) -> TableError:
    """The error for a file without a single data row, with a hint when it is UTF-16."""
    with source.open() as fh:
        head = fh.read(2)
    if head in (b"\xff\xfe", b"\xfe\xff"):
        return TableError(
            source.label, None, f"no {what} rows found: the file is UTF-16, not the CMS text"
        )
    return TableError(source.label, None, f"no {what} rows found (not a {what} file?)")

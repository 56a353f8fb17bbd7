"""The eligibility roster: members' coverage spans, loaded into the history store.

`cleanclaim members import FILE --state STORE` reads a CSV or JSON roster and stores
each member's coverage spans (keyed by an HMAC of the member id, like the history). A
claim that carries no `member.coverage` at all is then checked against the member's
roster spans; a claim that carries coverage (even an empty list) keeps its own.

CSV: a header line with `member_id`, `payer`, `plan`, `start`, `end` (`plan`, `start` and
`end` may be empty; an empty `end` is open). JSON: a list (or `{"members": [...]}`) of
span objects with the same keys, or of members as in a claim,
`{"id": "...", "coverage": [{"payer": ..., "plan": ..., "start": ..., "end": ...}]}`.

Importing replaces the spans of every member named in the file and leaves the others;
a file with any bad row imports nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleanclaim.engine.history import HistoryStore
from cleanclaim.engine.model import Coverage

_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
COLUMNS = ("member_id", "payer", "plan", "start", "end")


class RosterError(Exception):
    """A roster file cannot be imported; every message names the file and the row."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class RosterSpan:
    """One coverage span of one member."""

    member_id: str
    payer: str | None
    plan: str | None
    start: dt.date | None
    end: dt.date | None


def read_roster(path: Path) -> list[RosterSpan]:
    """The spans of a CSV or JSON roster; raises `RosterError` listing every bad row."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError([f"{path}: cannot read the roster: {exc}"]) from exc
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        return _read_json(path, text)
    return _read_csv(path, text)


def _read_csv(path: Path, text: str) -> list[RosterSpan]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "member_id" not in header:
        raise RosterError([f"{path}:1: the header needs a `member_id` column "
                           f"(columns: {', '.join(COLUMNS)})"])
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise RosterError([f"{path}:1: unknown column(s) {', '.join(unknown)} "
                           f"(columns: {', '.join(COLUMNS)})"])
    spans: list[RosterSpan] = []
    problems: list[str] = []
    for number, row in enumerate(reader, start=2):
        clean = {str(k).strip().lower(): (v or "").strip() for k, v in row.items()
                 if k is not None}
        span = _span(clean, f"{path}:{number}", problems)
        if span is not None:
            spans.append(span)
    if problems:
        raise RosterError(problems)
    return spans


def _read_json(path: Path, text: str) -> list[RosterSpan]:
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise RosterError([f"{path}: not valid JSON: {exc}"]) from exc
    if isinstance(data, dict):
        data = data.get("members")
    if not isinstance(data, list):
        raise RosterError([f"{path}: a JSON roster is a list of members or coverage spans"])
    spans: list[RosterSpan] = []
    problems: list[str] = []
    for i, item in enumerate(data):
        where = f"{path}: [{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object")
            continue
        if "coverage" in item:
            member_id = item.get("id", item.get("member_id"))
            coverage = item["coverage"]
            if not isinstance(coverage, list):
                problems.append(f"{where}.coverage: must be a list")
                continue
            for j, span in enumerate(coverage):
                if not isinstance(span, dict):
                    problems.append(f"{where}.coverage[{j}]: must be an object")
                    continue
                found = _span({**span, "member_id": member_id}, f"{where}.coverage[{j}]",
                              problems)
                if found is not None:
                    spans.append(found)
        else:
            found = _span(item, where, problems)
            if found is not None:
                spans.append(found)
    if problems:
        raise RosterError(problems)
    return spans


def _span(row: dict[str, Any], where: str, problems: list[str]) -> RosterSpan | None:
    def text(key: str) -> str | None:
        value = row.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value).strip()
        problems.append(f"{where}: `{key}` must be text")
        return None

    def date(key: str) -> dt.date | None:
        value = text(key)
        if value is None:
            return None
        try:
            if not _ISO_DATE.match(value):
                raise ValueError
            return dt.date.fromisoformat(value)
        except ValueError:
            problems.append(f"{where}: `{key}` is `{value}`, not a date YYYY-MM-DD")
            return None

    before = len(problems)
    member_id = text("member_id")
    if member_id is None:
        problems.append(f"{where}: `member_id` is required")
    span = RosterSpan(member_id or "", text("payer"), text("plan"), date("start"), date("end"))
    if span.start and span.end and span.end < span.start:
        problems.append(f"{where}: coverage ends ({span.end}) before it starts ({span.start})")
    return span if len(problems) == before else None


def import_roster(store: HistoryStore, spans: Iterable[RosterSpan]) -> tuple[int, int]:
    """Store the spans, replacing each named member's; returns (members, spans)."""
    by_member: dict[str, list[RosterSpan]] = {}
    for span in spans:
        by_member.setdefault(store.roster_key(span.member_id), []).append(span)
    count = 0
    with store.transaction():
        store._lock_members(by_member)  # (PostgreSQL: no other writer of these members)
        for key, member_spans in by_member.items():
            store.db.execute("DELETE FROM coverage WHERE member_key = ?", (key,))
            store.db.executemany(
                "INSERT INTO coverage VALUES (?, ?, ?, ?, ?)",
                [(key, s.payer, s.plan, s.start.isoformat() if s.start else None,
                  s.end.isoformat() if s.end else None) for s in member_spans])
            count += len(member_spans)
    store._roster = True
    return len(by_member), count


def roster_coverage(store: HistoryStore, member_id: str) -> tuple[Coverage, ...]:
    """The member's coverage spans on the roster (empty when the roster has none)."""
    rows = store.db.execute(
        "SELECT payer, plan, start_date, end_date FROM coverage WHERE member_key = ? "
        "ORDER BY start_date", (store.roster_key(member_id),)).fetchall()
    return tuple(Coverage(payer, plan, dt.date.fromisoformat(start) if start else None,
                          dt.date.fromisoformat(end) if end else None)
                 for payer, plan, start, end in rows)

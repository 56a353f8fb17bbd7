"""The eligibility roster: members' coverage spans and therapy year to date, loaded into
the history store.

`cleanclaim members import FILE --state STORE` reads a CSV or JSON roster and stores
each member's coverage spans (keyed by an HMAC of the member id, like the history). A
claim that carries no `member.coverage` at all is then checked against the member's
roster spans; a claim that carries coverage (even an empty list) keeps its own.

The roster may also give a member's therapy year to date: the amounts applied toward the
Medicare therapy (KX) thresholds in a calendar year as of a date, as the MAC's
eligibility answer (HETS 271, the MAC portal) shows them, other providers' services
included. A claim without `member.therapy_ytd` gets the roster's (the KX threshold rules,
medicare/therapy-threshold.policy, add it to the practice's own lines).

CSV: a header line with `member_id`, `payer`, `plan`, `start`, `end` (`plan`, `start` and
`end` may be empty; an empty `end` is open), optionally `type` and `order` (what the span
is: medicare, medicare_advantage, hospice, ...; its order of benefits: primary, secondary,
tertiary; as in a claim's `member.coverage`, docs/language.md Coverage), and optionally
`therapy_ytd_pt_slp`, `therapy_ytd_ot`, `therapy_ytd_as_of` (amounts in dollars; the as-of
date is required with either amount). A row with a therapy year to date and none of
payer, plan, start, end gives only the therapy year to date; any other row is a coverage
span. JSON: a list
(or `{"members": [...]}`) of span objects with the same keys, or of members as in a
claim, `{"id": "...", "coverage": [{"payer": ..., "plan": ..., "start": ..., "end": ...,
"type": ..., "order": ...}],
"therapy_ytd": {"pt_slp": "1200.00", "ot": null, "as_of": "2026-03-01"}}`.

Importing replaces the spans of every member the file gives spans for, and the therapy
year to date of every member it gives one for, and leaves the others; a file with any
bad row imports nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from cleanclaim.engine.history import HistoryStore
from cleanclaim.engine.model import (
    CHARGE_MAX,
    COVERAGE_ORDERS,
    COVERAGE_TYPES,
    Coverage,
    TherapyYearToDate,
)

_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
SPAN_COLUMNS = ("member_id", "payer", "plan", "start", "end", "type", "order")
THERAPY_COLUMNS = ("therapy_ytd_pt_slp", "therapy_ytd_ot", "therapy_ytd_as_of")
COLUMNS = (*SPAN_COLUMNS, *THERAPY_COLUMNS)


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
    type: str | None = None  # one of COVERAGE_TYPES, or None (not said)
    order: str | None = None  # one of COVERAGE_ORDERS, or None (not said)


@dataclass(frozen=True, slots=True)
class RosterTherapy:
    """One member's therapy year to date (amounts applied toward the KX thresholds)."""

    member_id: str
    pt_slp: Decimal | None
    ot: Decimal | None
    as_of: dt.date


RosterEntry = RosterSpan | RosterTherapy


def read_roster(path: Path) -> list[RosterEntry]:
    """The spans and therapy years to date of a CSV or JSON roster; raises `RosterError`
    listing every bad row."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError([f"{path}: cannot read the roster: {exc}"]) from exc
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        return _read_json(path, text)
    return _read_csv(path, text)


def _read_csv(path: Path, text: str) -> list[RosterEntry]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "member_id" not in header:
        raise RosterError(
            [f"{path}:1: the header needs a `member_id` column (columns: {', '.join(COLUMNS)})"]
        )
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise RosterError(
            [f"{path}:1: unknown column(s) {', '.join(unknown)} (columns: {', '.join(COLUMNS)})"]
        )
    entries: list[RosterEntry] = []
    problems: list[str] = []
    for number, row in enumerate(reader, start=2):
        clean = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        where = f"{path}:{number}"
        therapy_given = any(clean.get(c) for c in THERAPY_COLUMNS)
        if therapy_given:
            found = _therapy(
                clean.get("member_id"),
                {
                    "pt_slp": clean.get("therapy_ytd_pt_slp"),
                    "ot": clean.get("therapy_ytd_ot"),
                    "as_of": clean.get("therapy_ytd_as_of"),
                },
                where,
                "therapy_ytd_",
                problems,
            )
            if found is not None:
                entries.append(found)
            if not any(clean.get(c) for c in SPAN_COLUMNS[1:]):
                continue  # a therapy year to date only
        span = _span(clean, where, problems)
        if span is not None:
            entries.append(span)
    if problems:
        raise RosterError(problems)
    return entries


def _read_json(path: Path, text: str) -> list[RosterEntry]:
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise RosterError([f"{path}: not valid JSON: {exc}"]) from exc
    if isinstance(data, dict):
        data = data.get("members")
    if not isinstance(data, list):
        raise RosterError([f"{path}: a JSON roster is a list of members or coverage spans"])
    spans: list[RosterEntry] = []
    problems: list[str] = []
    for i, item in enumerate(data):
        where = f"{path}: [{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object")
            continue
        if item.get("therapy_ytd") is not None:
            ytd = item["therapy_ytd"]
            if isinstance(ytd, dict):
                found_ytd = _therapy(
                    item.get("id", item.get("member_id")), ytd, f"{where}.therapy_ytd", "", problems
                )
                if found_ytd is not None:
                    spans.append(found_ytd)
            else:
                problems.append(f"{where}.therapy_ytd: must be an object")
            if "coverage" not in item:
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
                found = _span({**span, "member_id": member_id}, f"{where}.coverage[{j}]", problems)
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

    def word(key: str, allowed: tuple[str, ...]) -> str | None:
        value = text(key)
        if value is None:
            return None
        if value.lower() not in allowed:
            shown = f"`{value}`" if len(value) <= 40 and value.isprintable() else "the value"
            problems.append(f"{where}: `{key}` is {shown}, not one of {', '.join(allowed)}")
            return None
        return value.lower()

    before = len(problems)
    member_id = text("member_id")
    if member_id is None:
        problems.append(f"{where}: `member_id` is required")
    span = RosterSpan(
        member_id or "",
        text("payer"),
        text("plan"),
        date("start"),
        date("end"),
        word("type", COVERAGE_TYPES),
        word("order", COVERAGE_ORDERS),
    )
    if span.start and span.end and span.end < span.start:
        problems.append(f"{where}: coverage ends ({span.end}) before it starts ({span.start})")
    return span if len(problems) == before else None


def _therapy(
    member_id: Any, values: dict[str, Any], where: str, prefix: str, problems: list[str]
) -> RosterTherapy | None:
    """A therapy year to date from `values` (pt_slp, ot, as_of); problems name the
    field as the file writes it (`prefix` + name)."""
    before = len(problems)
    if (
        member_id is None
        or member_id == ""
        or not isinstance(member_id, (str, int))
        or isinstance(member_id, bool)
    ):
        problems.append(f"{where}: `member_id` is required")
        member_id = ""

    def amount(key: str) -> Decimal | None:
        value = values.get(key)
        if value is None or value == "":
            return None
        try:
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise InvalidOperation
            found = Decimal(str(value).strip())
            if not found.is_finite():
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            problems.append(f"{where}: `{prefix}{key}` is not an amount")
            return None
        if not Decimal(0) <= found <= CHARGE_MAX:
            problems.append(f"{where}: `{prefix}{key}` must be between 0 and {CHARGE_MAX:,}")
            return None
        return found

    pt_slp, ot = amount("pt_slp"), amount("ot")
    raw_date = values.get("as_of")
    as_of: dt.date | None = None
    if raw_date is None or raw_date == "":
        problems.append(
            f"{where}: `{prefix}as_of` is required with a therapy year to date "
            "(the date the amounts are as of)"
        )
    elif not isinstance(raw_date, str) or not _ISO_DATE.match(raw_date.strip()):
        problems.append(f"{where}: `{prefix}as_of` is not a date YYYY-MM-DD")
    else:
        try:
            as_of = dt.date.fromisoformat(raw_date.strip())
        except ValueError:
            problems.append(f"{where}: `{prefix}as_of` is not a date YYYY-MM-DD")
    if len(problems) != before or as_of is None:
        return None
    return RosterTherapy(str(member_id).strip(), pt_slp, ot, as_of)


def import_roster(store: HistoryStore, entries: Iterable[RosterEntry]) -> tuple[int, int]:
    """Store the spans and therapy years to date, replacing each named member's; returns
    (members, spans)."""
    by_member: dict[str, list[RosterSpan]] = {}
    therapy: dict[str, RosterTherapy] = {}
    for entry in entries:
        if isinstance(entry, RosterTherapy):
            therapy[store.roster_key(entry.member_id)] = entry
        else:
            by_member.setdefault(store.roster_key(entry.member_id), []).append(entry)
    count = 0
    with store.transaction():
        # (PostgreSQL: no other writer of these members)
        store._lock_members(by_member.keys() | therapy.keys())
        for key, ytd in therapy.items():
            store.db.execute("DELETE FROM therapy_ytd WHERE member_key = ?", (key,))
            store.db.execute(
                "INSERT INTO therapy_ytd VALUES (?, ?, ?, ?)",
                (
                    key,
                    None if ytd.pt_slp is None else str(ytd.pt_slp),
                    None if ytd.ot is None else str(ytd.ot),
                    ytd.as_of.isoformat(),
                ),
            )
        for key, member_spans in by_member.items():
            store.db.execute("DELETE FROM coverage WHERE member_key = ?", (key,))
            store.db.executemany(
                "INSERT INTO coverage (member_key, payer, plan, start_date, end_date, "
                "coverage_type, benefit_order) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        key,
                        s.payer,
                        s.plan,
                        s.start.isoformat() if s.start else None,
                        s.end.isoformat() if s.end else None,
                        s.type,
                        s.order,
                    )
                    for s in member_spans
                ],
            )
            count += len(member_spans)
    if by_member:
        store._roster = True
    if therapy:
        store._therapy_ytd = True
    return len(by_member.keys() | therapy.keys()), count


def roster_therapy_ytd(store: HistoryStore, member_id: str) -> TherapyYearToDate | None:
    """The member's therapy year to date on the roster, or None."""
    row = store.db.execute(
        "SELECT pt_slp, ot, as_of FROM therapy_ytd WHERE member_key = ?",
        (store.roster_key(member_id),),
    ).fetchone()
    if row is None:
        return None
    pt_slp, ot, as_of = row
    return TherapyYearToDate(
        None if pt_slp is None else Decimal(pt_slp),
        None if ot is None else Decimal(ot),
        dt.date.fromisoformat(as_of),
    )


def roster_coverage(store: HistoryStore, member_id: str) -> tuple[Coverage, ...]:
    """The member's coverage spans on the roster (empty when the roster has none)."""
    rows = store.db.execute(
        "SELECT payer, plan, start_date, end_date, coverage_type, benefit_order FROM coverage "
        "WHERE member_key = ? ORDER BY start_date",
        (store.roster_key(member_id),),
    ).fetchall()
    return tuple(
        Coverage(
            payer,
            plan,
            dt.date.fromisoformat(start) if start else None,
            dt.date.fromisoformat(end) if end else None,
            kind,
            order,
        )
        for payer, plan, start, end, kind, order in rows
    )

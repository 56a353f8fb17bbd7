"""Claim history: the store, the two-phase run, and the functions rules count with.

**The store.** SQLite (stdlib) at the `--state` path, or in memory for a self-contained
run. One row per recorded claim, its service lines packed as text, clustered by *member
key* (a member's history is one range read): a keyed BLAKE2b hash of payer and member id
under a random salt kept in the store, so member ids are never stored, logged or printed
in plain text. The schema is versioned (`PRAGMA user_version`) and migrated forward in
one transaction; the file runs in WAL mode, so readers never wait for the writer, and
writers take turns (`BEGIN IMMEDIATE`, a generous busy timeout).

**The run.** A batch is checked in two phases:
1. *record*: every claim's facts are written to the store. Re-checking a claim id
   replaces it; `frequency: replacement` removes the lines of the claim named in
   `replaces` and `void` removes them (a tombstone keeps a claim that arrives after its
   replacement or void from counting);
2. *evaluate*: each claim is checked, in input order, against the member's lines of
   *other* claims that stand before each of its lines in the counting order - date of
   service, then received date, then claim id, then line - and against its own earlier
   lines. Decisions therefore do not depend on the order of the input, and replaying a
   run gives the same decisions.

`HistoryRun` runs both over one iterable (`Engine.check_many`), keeping the decoded claims
between the phases; `HistoryBatch` is `cleanclaim check`'s: phase 1 over a first pass of
the input files, phase 2 in the second pass, in this process or in `--workers` that read
the store (`HistoryEngineBuilder`). Without a store, a run records into an in-memory (or,
for workers, temporary) store: claims of the same input count against each other. A claim
checked outside a run (`Engine.check`) counts itself alone.

**The functions.** A rule reads a counter (`dsl/history.py`) through `visit_number(c)`,
`total_to_date(c)`, `total_before(c)` and `total_on_other_claims(c)`; each is missing (so
a comparison with it is false) when the counter does not count the line. See
docs/history.md.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
import logging
import os
import pickle
import sqlite3
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from cleanclaim.dsl import types as T
from cleanclaim.dsl.history import COUNTER, Counter, counter_of
from cleanclaim.engine.decision import Decision
from cleanclaim.engine.inputs import RawClaim
from cleanclaim.engine.model import Claim, ServiceLine, decode_claim

if TYPE_CHECKING:
    from cleanclaim.engine.engine import Engine

log = logging.getLogger("cleanclaim.history")

# ---- the store ---------------------------------------------------------------------------

# Each entry migrates the schema from version i to i + 1 (PRAGMA user_version).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: recorded claims, one row each, clustered by member
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        # `lines`: the claim's service lines, one a line of text (see `pack_line`). One
        # row a claim (not a line) is what keeps recording cheap: two B-tree writes a
        # claim, this table's and the index by claim id.
        """CREATE TABLE claims (
             member_key TEXT NOT NULL,
             claim_id TEXT NOT NULL,
             payer TEXT NOT NULL,
             received TEXT,
             frequency TEXT,
             replaces TEXT,
             first_dos TEXT,
             last_dos TEXT,
             line_count INTEGER NOT NULL DEFAULT 0,
             superseded_by TEXT,
             rendering TEXT,
             billing TEXT,
             recorded_at TEXT NOT NULL,
             lines TEXT NOT NULL DEFAULT '',
             PRIMARY KEY (member_key, claim_id)
           ) WITHOUT ROWID""",
        "CREATE UNIQUE INDEX claims_by_id ON claims (payer, claim_id)",
    ),
    (  # 2: the eligibility roster (`cleanclaim members import`)
        """CREATE TABLE coverage (
             member_key TEXT NOT NULL,
             payer TEXT,
             plan TEXT,
             start_date TEXT,
             end_date TEXT
           )""",
        "CREATE INDEX coverage_by_member ON coverage (member_key)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT_MS = 120_000
MMAP_BYTES = 1 << 30  # address space only: the OS pages the file in as it is read
CACHE_KIB = 65_536  # the page cache, per connection


class StoreError(Exception):
    """The history store cannot be opened or is of a newer schema than this program."""


class HistoryStore:
    """A claim-history store: SQLite at `path`, or in memory (`HistoryStore.memory()`)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None,
                                      timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if self.path != ":memory:":
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("PRAGMA synchronous = NORMAL")
                # A store of millions of lines is read and written at random (by member):
                # map it into memory and keep a large cache instead of a read per page.
                self.db.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
                # Checkpoint the WAL into the file every 40 MB, not every 4 MB: a run
                # writes claims of members all over the file.
                self.db.execute("PRAGMA wal_autocheckpoint = 10000")
            self.db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            self._migrate()
            row = self.db.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a cleanclaim history store ({exc})") from exc
        self.salt = bytes.fromhex(row[0])
        self._roster: bool | None = None
        self._keys: dict[tuple[str, str], str] = {}

    @classmethod
    def memory(cls) -> HistoryStore:
        """A store that lives as long as the object: a self-contained run."""
        return cls(":memory:")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            # Read again under the write lock: another process may have migrated.
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: history store schema {version} is newer "
                                 f"than this cleanclaim (schema {SCHEMA_VERSION})")
            for step in MIGRATIONS[version:]:
                for statement in step:
                    self.db.execute(statement)
            if version == 0:
                self.db.execute("INSERT INTO meta VALUES ('salt', ?)", (os.urandom(16).hex(),))
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        log.info("history store %s migrated from schema %d to %d", self.path, version,
                 SCHEMA_VERSION)

    def transaction(self) -> _Transaction:
        """`with store.transaction():` - one write transaction (BEGIN IMMEDIATE)."""
        return _Transaction(self.db)

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    # ---- keys --------------------------------------------------------------------------

    def member_key(self, payer: str, member_id: str) -> str:
        """The key a member's history is stored under: a keyed hash, never the id."""
        key = self._keys.get((payer, member_id))
        if key is None:
            digest = hashlib.blake2b(f"{payer}\0{member_id}".encode(), key=self.salt,
                                     digest_size=16)
            key = digest.hexdigest()
            if len(self._keys) >= 8_192:  # a run meets a member's claims close together
                self._keys.clear()
            self._keys[(payer, member_id)] = key
        return key

    def roster_key(self, member_id: str) -> str:
        """The key of a member's roster coverage (all payers)."""
        return hashlib.blake2b(f"roster\0{member_id}".encode(), key=self.salt,
                               digest_size=16).hexdigest()

    # ---- recording ---------------------------------------------------------------------

    def record(self, facts: Sequence[ClaimFacts]) -> int:
        """Record claims in one transaction; returns how many.

        Re-recording a claim id replaces it (under its new member, should that have
        changed); a replacement or void removes the lines of the claim it names and
        leaves a tombstone (`superseded_by`), so that the named claim does not count even
        when it arrives later. The outcome is that of recording the claims one by one, in
        order; it is computed per batch, with one statement per kind of change, because
        that is what keeps recording fast."""
        latest: dict[tuple[str, str], ClaimFacts] = {}
        for fact in facts:  # a claim id twice in a batch: the later one is the claim
            latest.pop((fact.payer, fact.claim_id), None)
            latest[(fact.payer, fact.claim_id)] = fact
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self.transaction():
            superseded = self._superseded(list(latest))
            rows = []
            for (payer, claim_id), f in latest.items():
                by = superseded.get((payer, claim_id))
                counted = f.frequency != "void" and by is None
                rows.append((f.member_key, claim_id, payer, f.received, f.frequency,
                             f.replaces, f.first_dos, f.last_dos,
                             f.line_count if counted else 0, by, f.rendering, f.billing, now,
                             f.lines if counted else ""))
            rows.sort(key=itemgetter(0))  # in key order: the B-tree is written page by page
            # OR REPLACE also drops the row of a claim id recorded under another member.
            self.db.executemany("INSERT OR REPLACE INTO claims VALUES "
                                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            for f in latest.values():  # replacements and voids, in order
                target = f.replaces or (f.claim_id if f.frequency == "void" else None)
                if f.frequency in ("replacement", "void") and target is not None and (
                        target != f.claim_id or f.frequency == "void"):
                    self._supersede(f.payer, target, f.claim_id, f.member_key, now)
        return len(latest)

    def _superseded(self, ids: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The claims among `ids` that a replacement or void has superseded, and by what."""
        by_payer: dict[str, list[str]] = {}
        for payer, claim_id in ids:
            by_payer.setdefault(payer, []).append(claim_id)
        found: dict[tuple[str, str], str] = {}
        for payer, claim_ids in by_payer.items():
            for start in range(0, len(claim_ids), 500):  # parameters a statement, at most
                chunk = claim_ids[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                for claim_id, by in self.db.execute(
                        "SELECT claim_id, superseded_by FROM claims WHERE payer = ? AND "
                        f"claim_id IN ({marks}) AND superseded_by IS NOT NULL",
                        [payer, *chunk]):
                    found[(payer, claim_id)] = by
        return found

    def _supersede(self, payer: str, claim_id: str, by: str, member_key: str,
                   now: str) -> None:
        cursor = self.db.execute(
            "UPDATE claims SET superseded_by = ?, line_count = 0, lines = '' "
            "WHERE payer = ? AND claim_id = ?", (by, payer, claim_id))
        if cursor.rowcount == 0:
            # Not seen yet: a tombstone, so that the claim does not count when it comes.
            self.db.execute("INSERT INTO claims (member_key, claim_id, payer, superseded_by, "
                            "recorded_at) VALUES (?, ?, ?, ?, ?)",
                            (member_key, claim_id, payer, by, now))

    # ---- reading -----------------------------------------------------------------------

    def member_rows(self, member_key: str, first: str, last: str) -> list[ClaimRow]:
        """The member's recorded claims with lines dated in [first, last]."""
        return self.db.execute(
            "SELECT first_dos, last_dos, claim_id, received, rendering, billing, lines, "
            "replaces FROM claims WHERE member_key = ? AND last_dos >= ? AND first_dos <= ? "
            "AND line_count > 0", (member_key, first, last)).fetchall()

    def members_rows(self, spans: Mapping[str, Sequence[str]]) -> dict[str, list[ClaimRow]]:
        """`member_rows` of many members at once: member key -> (first, last)."""
        found: dict[str, list[ClaimRow]] = {key: [] for key in spans}
        items = [(key, span[0], span[1]) for key, span in spans.items()]
        for start in range(0, len(items), 300):  # 900 parameters a statement, at most
            chunk = items[start:start + 300]
            values = ", ".join("(?, ?, ?)" for _ in chunk)
            for key, *row in self.db.execute(
                    f"WITH wanted(k, f, l) AS (VALUES {values}) "
                    "SELECT member_key, first_dos, last_dos, claim_id, received, rendering, "
                    "billing, lines, replaces FROM wanted JOIN claims ON member_key = k "
                    "AND last_dos >= f AND first_dos <= l AND line_count > 0",
                    [part for item in chunk for part in item]):
                found[key].append(cast(ClaimRow, tuple(row)))
        return found

    def member_claims(self, member_key: str) -> list[dict[str, Any]]:
        """The member's recorded claims with their lines (for `cleanclaim history`)."""
        claims = []
        for row in self.db.execute(
                "SELECT payer, claim_id, received, frequency, replaces, first_dos, last_dos, "
                "line_count, superseded_by, recorded_at, rendering, billing, lines FROM claims "
                "WHERE member_key = ? ORDER BY first_dos, received, claim_id", (member_key,)):
            claim = dict(zip(("payer", "claim_id", "received", "frequency", "replaces",
                              "first_dos", "last_dos", "lines", "superseded_by",
                              "recorded_at"), row[:10], strict=True))
            entries = [Entry(row[1], row[2], row[10], row[11], *text.split("\t"))
                       for text in row[12].split("\n") if row[12]]
            claim["service_lines"] = [
                {"line": e.line, "service_date": e.dos, "code": e.code,
                 "modifiers": list(e.modifiers), "units": e.units,
                 "charge": e._charge or None, "rendering_npi": e.rendering}
                for e in entries]
            claims.append(claim)
        return claims

    def clear_member(self, member_key: str) -> int:
        """Forget the member's recorded claims; returns how many claims were removed."""
        with self.transaction():
            removed = self.db.execute("DELETE FROM claims WHERE member_key = ?",
                                      (member_key,)).rowcount
        log.info("cleared %d claim(s) of member %s", removed, member_key)
        return removed

    def payers(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT payer FROM claims ORDER BY 1")]

    def counts(self) -> dict[str, int]:
        """How much the store holds: claims, lines, roster spans."""
        return {
            "claims": self.db.execute("SELECT count(*) FROM claims").fetchone()[0],
            "lines": self.db.execute("SELECT coalesce(sum(line_count), 0) FROM claims"
                                     ).fetchone()[0],
            "coverage_spans": self.db.execute("SELECT count(*) FROM coverage").fetchone()[0],
        }

    def has_roster(self) -> bool:
        if self._roster is None:
            self._roster = self.db.execute("SELECT 1 FROM coverage LIMIT 1").fetchone() is not None
        return self._roster


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


# ---- facts -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimFacts:
    """What the store keeps of one claim: identity, dates, providers, and its service
    lines packed as text (`pack_line`)."""

    payer: str
    claim_id: str
    member_key: str
    received: str
    frequency: str
    replaces: str | None
    first_dos: str | None
    last_dos: str | None
    rendering: str | None
    billing: str | None
    line_count: int
    lines: str


_UNSAFE = str.maketrans({"\t": " ", "\n": " ", "\r": " "})


def _text(value: Any) -> str:
    return "" if value is None else str(value).translate(_UNSAFE)


def pack_line(idx: int, line: ServiceLine) -> str:
    """One service line as the store keeps it: tab-separated position in the claim,
    line number, date of service, code, modifiers, units, charge, minutes and pointed
    diagnoses (lists space-separated)."""
    units, charge, minutes = line.units, line.charge, line.minutes
    text = (f"{idx}\t{line.line}\t{line.service_date.isoformat()}\t{line.code or ''}\t"
            f"{' '.join(line.modifiers)}\t{'' if units is None else units}\t"
            f"{'' if charge is None else charge}\t{'' if minutes is None else minutes}\t"
            f"{' '.join(line.pointed_diagnoses)}")
    if text.count("\t") == 8 and "\n" not in text and "\r" not in text:
        return text
    # A code or modifier with a tab or line break in it (bad data): blank those out.
    return "\t".join((str(idx), str(line.line), line.service_date.isoformat(),
                      _text(line.code), _text(" ".join(line.modifiers)), _text(units),
                      _text(charge), _text(minutes), _text(" ".join(line.pointed_diagnoses))))


def claim_facts(claim: Claim, member_key: str) -> ClaimFacts:
    dates = [line.service_date for line in claim.lines]
    return ClaimFacts(
        claim.payer, claim.claim_id, member_key, claim.received_date.isoformat(),
        claim.frequency, claim.replaces,
        min(dates).isoformat() if dates else None, max(dates).isoformat() if dates else None,
        claim.rendering_provider.npi, claim.billing_provider.npi, len(claim.lines),
        "\n".join(pack_line(i, line) for i, line in enumerate(claim.lines)))


def _number(text: str) -> int | float | None:
    if text.isdigit():
        return int(text)
    if not text:
        return None
    value = float(text)
    return int(value) if value.is_integer() else value


class Entry:
    """A recorded service line of another claim. It has the attribute names of a claim's
    `ServiceLine`, so a counter's compiled filter reads both alike; what filters seldom
    read is converted from the stored text when read."""

    __slots__ = ("_charge", "_diagnoses", "_line", "_minutes", "_units", "billing",
                 "claim_id", "code", "dos", "modifiers", "order", "received", "rendering")

    def __init__(self, claim_id: str, received: str, rendering: str | None,
                 billing: str | None, idx: str, line: str, dos: str, code: str,
                 modifiers: str, units: str, charge: str, minutes: str,
                 diagnoses: str) -> None:
        self.claim_id = claim_id
        self.received = received
        self.rendering = rendering
        self.billing = billing
        self.dos = dos
        self.order = (dos, received, claim_id, int(idx))
        self.code = code or None
        self.modifiers = tuple(modifiers.split())
        self._line = line
        self._units = units
        self._charge = charge
        self._minutes = minutes
        self._diagnoses = diagnoses

    @property
    def line(self) -> int | None:
        return int(self._line) if self._line else None

    @property
    def units(self) -> int | float | None:
        return _number(self._units)

    @property
    def minutes(self) -> int | float | None:
        return _number(self._minutes)

    @property
    def service_date(self) -> dt.date:
        return dt.date.fromisoformat(self.dos)

    @property
    def charge(self) -> Decimal | None:
        return Decimal(self._charge) if self._charge else None

    @property
    def pointed_diagnoses(self) -> tuple[str, ...]:
        return tuple(self._diagnoses.split())

    @property
    def diagnosis_pointers(self) -> tuple[int, ...]:
        return ()

    @property
    def modifier_key(self) -> tuple[str, ...]:
        return tuple(sorted(self.modifiers))


# ---- what a claim sees of the history ----------------------------------------------------

THROUGH, BEFORE, OTHERS = 0, 1, 2


# A recorded claim as phase 2 reads it: first and last date of service, claim id,
# received date, rendering and billing NPI, packed lines, the claim it replaces.
ClaimRow = tuple[str, str, str, str, Any, Any, str, Any]


class MemberHistory:
    """A member's recorded claims (other claims and, in a run, this run's). A claim's
    lines are unpacked when a count first needs them: a lookup of one date of service
    unpacks only the claims that span it; a window count unpacks them all, in counting
    order, and keeps each counter's matching lines."""

    __slots__ = ("_all", "_matched", "_on", "_unpacked", "rows")

    def __init__(self, rows: list[ClaimRow]) -> None:
        self.rows = rows
        self._unpacked: dict[int, list[Entry]] = {}
        self._on: dict[str, list[Entry]] = {}
        self._all: list[Entry] | None = None
        self._matched: dict[int, tuple[list[tuple[str, str, str, int]], list[Entry]]] = {}

    def _lines(self, i: int) -> list[Entry]:
        found = self._unpacked.get(i)
        if found is None:
            _first, _last, claim_id, received, rendering, billing, lines, _ = self.rows[i]
            found = self._unpacked[i] = [
                Entry(claim_id, received, rendering, billing, *text.split("\t"))
                for text in lines.split("\n")]
        return found

    @property
    def entries(self) -> list[Entry]:
        """Every recorded line, in counting order."""
        if self._all is None:
            self._all = [e for i in range(len(self.rows)) for e in self._lines(i)]
            self._all.sort(key=_order)
        return self._all

    def matched(self, counter: Counter) -> tuple[list[tuple[str, str, str, int]], list[Entry]]:
        """The lines `counter` counts, and their places in the counting order."""
        found = self._matched.get(counter.index)
        if found is None:
            matches = counter.matches
            entries = [e for e in self.entries if matches(e)]
            found = self._matched[counter.index] = ([e.order for e in entries], entries)
        return found

    def replacing(self, claim_id: str) -> set[str]:
        """The claims that replace `claim_id`: never counted against it."""
        return {row[2] for row in self.rows if row[7] == claim_id}

    def on(self, dos: str) -> list[Entry]:
        """The lines with date of service `dos` (the lines of a claim mostly share one)."""
        found = self._on.get(dos)
        if found is None:
            found = self._on[dos] = [e for i, row in enumerate(self.rows)
                                     if row[0] <= dos <= row[1]
                                     for e in self._lines(i) if e.dos == dos]
        return found


_order = attrgetter("order")
_NO_MEMBER = MemberHistory([])


class ClaimHistory:
    """The history one claim is checked against: the member's lines of other claims
    and the claim's own lines, each counted when it stands before the line asking."""

    __slots__ = ("_cache", "claim", "excluded", "member")

    def __init__(self, claim: Claim, member: MemberHistory | None = None,
                 excluded: frozenset[str] = frozenset()) -> None:
        self.claim = claim
        self.member = member or _NO_MEMBER
        # Lines of these claims are this claim's own (recorded under its id) or of the
        # claim it replaces: never counted as another claim's.
        self.excluded = excluded or frozenset({claim.claim_id})
        self._cache: dict[tuple[int, int, int], Any] = {}

    def total(self, counter: Counter, line: ServiceLine, mode: int) -> Any:
        """What `counter` counts up to `line` (a line it counts): THROUGH it, BEFORE it,
        or on OTHERS claims only."""
        idx = next((i for i, own in enumerate(self.claim.lines) if own is line), None)
        if idx is None:
            return None
        key = (counter.index, idx, mode)
        cached = self._cache.get(key, _MISSING)
        if cached is not _MISSING:
            return cached
        value = self._total(counter, line, idx, mode)
        self._cache[key] = value
        return value

    def _total(self, counter: Counter, line: ServiceLine, idx: int, mode: int) -> Any:
        claim = self.claim
        day = line.service_date
        start = counter.window_start(day)
        dos = day.isoformat()
        order = (dos, claim.received_date.isoformat(), claim.claim_id, idx)
        keys = counter.keys
        want = _key_values(keys, claim, line) if keys else None
        excluded = self.excluded
        others: list[Entry] = []
        if self.member.rows:
            if counter.window.kind == "day":
                matches = counter.matches
                candidates: Sequence[Entry] = [e for e in self.member.on(dos)
                                               if e.order < order and matches(e)]
            else:
                orders, entries = self.member.matched(counter)
                first = bisect.bisect_left(orders, (start.isoformat(),))
                candidates = entries[first:bisect.bisect_left(orders, order, first)]
            for e in candidates:
                if e.claim_id in excluded:
                    continue
                if want is not None and _entry_key_values(keys, e) != want:
                    continue
                others.append(e)
        own: list[ServiceLine] = []
        if mode != OTHERS:
            matches = counter.matches
            for j, other in enumerate(claim.lines):
                other_day = other.service_date
                if other_day < start or (other_day, j) >= (day, idx) or not matches(other):
                    continue
                if want is not None and _key_values(keys, claim, other) != want:
                    continue
                own.append(other)
            if mode == THROUGH:
                own.append(line)
        return _measure(counter.measure, others, own)


_MISSING = object()


def _key_values(keys: tuple[str, ...], claim: Claim, line: ServiceLine) -> tuple[Any, ...]:
    out: list[Any] = []
    for key in keys:
        if key == "rendering_provider":
            out.append(claim.rendering_provider.npi)
        elif key == "billing_provider":
            out.append(claim.billing_provider.npi)
        elif key == "code":
            out.append(line.code)
        else:
            out.append(tuple(sorted(line.modifiers)))
    return tuple(out)


def _entry_key_values(keys: tuple[str, ...], e: Entry) -> tuple[Any, ...]:
    out: list[Any] = []
    for key in keys:
        if key == "rendering_provider":
            out.append(e.rendering)
        elif key == "billing_provider":
            out.append(e.billing)
        elif key == "code":
            out.append(e.code)
        else:
            out.append(e.modifier_key)
    return tuple(out)


def _measure(measure: str, others: list[Entry], own: list[ServiceLine]) -> Any:
    """Visits (distinct dates), lines, units (a line without units is one) or charges."""
    if measure == "visits":
        days = {e.dos for e in others}
        days.update(line.service_date.isoformat() for line in own)
        return len(days)
    if measure == "lines":
        return len(others) + len(own)
    if measure == "units":
        return (sum(e.units if e.units is not None else 1 for e in others)
                + sum(line.units if line.units is not None else 1 for line in own))
    total = sum((Decimal(e._charge) for e in others if e._charge), Decimal(0))
    return total + sum((line.charge for line in own if line.charge is not None), Decimal(0))


# ---- the functions rules call -------------------------------------------------------------


def _view(claim: Claim) -> ClaimHistory:
    view: ClaimHistory | None = getattr(claim, "history", None)
    if view is None:
        view = ClaimHistory(claim)  # outside a run: the claim alone
        claim.history = view
    return view


# Each function first asks the counter whether it counts the line at all (most lines are
# not counted by most counters: the common case costs one call of the compiled filter).


def visit_number(claim: Claim, line: ServiceLine | None, counter: Counter) -> int | None:
    """Which visit of the counter's window this line's date of service is."""
    if line is None or not counter.matches(line):
        return None
    return _view(claim).total(counter, line, THROUGH)  # type: ignore[no-any-return]


def total_to_date(claim: Claim, line: ServiceLine | None, counter: Counter) -> Any:
    """The counter's total in the window up to and including this line."""
    if line is None or not counter.matches(line):
        return None
    return _view(claim).total(counter, line, THROUGH)


def total_before(claim: Claim, line: ServiceLine | None, counter: Counter) -> Any:
    """The counter's total in the window before this line."""
    if line is None or not counter.matches(line):
        return None
    return _view(claim).total(counter, line, BEFORE)


def total_on_other_claims(claim: Claim, line: ServiceLine | None, counter: Counter) -> Any:
    """The counter's total in the window on the member's other claims before this line."""
    if line is None or not counter.matches(line):
        return None
    view = getattr(claim, "history", None)
    if view is None or not view.member.rows:  # the claim alone: no other claims
        return Decimal(0) if counter.measure == "charges" else 0
    return view.total(counter, line, OTHERS)


_LINE = frozenset({"line"})
HISTORY_FUNCTIONS: tuple[T.FunctionSpec, ...] = (
    T.FunctionSpec(
        "visit_number", (counter_of("visits"),), T.NUMBER.maybe(), visit_number,
        "visit_number(c): which visit of c's window this line's date of service is, counting "
        "the member's visits on earlier claims and on this claim up to this date (missing "
        "when c does not count the line)", contextual=True, scopes=_LINE),
    T.FunctionSpec(
        "total_to_date", (COUNTER,), T.NUMBER.maybe(), total_to_date,
        "total_to_date(c): what c counts in its window up to and including this line "
        "(visits, units, lines or charges)", contextual=True, scopes=_LINE),
    T.FunctionSpec(
        "total_before", (COUNTER,), T.NUMBER.maybe(), total_before,
        "total_before(c): what c counts in its window before this line",
        contextual=True, scopes=_LINE),
    T.FunctionSpec(
        "total_on_other_claims", (COUNTER,), T.NUMBER.maybe(), total_on_other_claims,
        "total_on_other_claims(c): what c counts in its window on the member's other claims "
        "that stand before this line (e.g. the same service billed already)",
        contextual=True, scopes=_LINE),
)


# ---- the run -----------------------------------------------------------------------------

SPOOL_IN_MEMORY = 200_000  # claims kept in memory between the phases; more go to disk
RECORD_BATCH = 5_000  # claims per write transaction
MEMBER_CACHE = 256  # members whose claims phase 2 keeps loaded (memory stays flat)
PREFETCH = 200  # claims whose members' histories phase 2 loads at once (< MEMBER_CACHE)
PLAN_LIMIT = 1_000_000  # claims of a `cleanclaim check` run whose reads phase 1 plans


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def counts_history(engine: Engine) -> bool:
    """Whether any loaded pack declares a counter (its claims need a two-phase run)."""
    return any(program.counters for program in engine.programs.values())


def _counters(engine: Engine) -> dict[str, tuple[Counter, ...]]:
    return {pack_id: program.counters for pack_id, program in engine.programs.items()
            if program.counters}


def _earliest(counters: Sequence[Counter], day: dt.date) -> dt.date:
    """The first date any of the counters looks back to from `day`."""
    return min(c.window_start(day) for c in counters)


class HistoryRecorder:
    """Phase 1: the facts of each claim, written to the store in batches."""

    def __init__(self, engine: Engine, store: HistoryStore) -> None:
        self.engine = engine
        self.store = store
        self.counters = _counters(engine)
        self.batch: list[ClaimFacts] = []
        self.recorded = 0

    def add(self, claim: Claim) -> None:
        """Record `claim` if its pack counts history (written on `flush` or when the batch
        is full)."""
        if claim.payer not in self.counters or not claim.member.id or not claim.lines:
            return
        self.batch.append(claim_facts(claim, self.store.member_key(claim.payer,
                                                                   claim.member.id)))
        if len(self.batch) >= RECORD_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            self.recorded += self.store.record(self.batch)
            self.batch = []


def _decode(engine: Engine, item: Any) -> Claim | None:
    if isinstance(item, Claim):
        return item
    if hasattr(item, "to_raw"):  # an NDJSON line of engine/batch.py, not parsed yet
        item = item.to_raw()
    if isinstance(item, RawClaim):
        data: Any = item.data if not item.problems else None
    elif isinstance(item, (bytes, str)):
        try:
            data = json.loads(item)
        except ValueError:
            return None
    else:
        data = item
    if not isinstance(data, Mapping):
        return None
    claim, _problems = decode_claim(dict(data), engine.today)
    return claim


class HistoryReader:
    """Phase 2: what a claim is checked against. `prepare(claim)` gives a claim without
    coverage the member's roster coverage and attaches the member's recorded lines
    (`claim.history`); the engine calls it for every claim it reads (`Engine.history`)."""

    def __init__(self, engine: Engine, store: HistoryStore) -> None:
        self.store = store
        self.counters = _counters(engine)
        self.roster = store.has_roster()
        # member key -> (first date loaded, last date loaded, the lines)
        self._members: OrderedDict[str, tuple[str, str, MemberHistory]] = OrderedDict()
        self._needs: dict[int, tuple[str, str, str] | None] = {}  # id(claim), prefetched
        # What the claims of a run will need, in input order, when phase 1 ran in this
        # process (`HistoryBatch`): phase 2 then loads members ahead, many a statement.
        self.plan: list[tuple[str, str, str]] = []
        self._planned = 0

    def prepare(self, claim: Claim) -> None:
        member_id = claim.member.id
        if not member_id:
            return
        if self.roster and not claim.member.coverage_given:
            from cleanclaim.engine.roster import roster_coverage

            spans = roster_coverage(self.store, member_id)
            if spans:
                claim.set_coverage(spans)
        need = (self._needs.pop(id(claim)) if id(claim) in self._needs
                else self._need(claim))
        if need is not None:
            key, first, last = need
            if self.plan:
                self._follow_plan(key, first, last)
            member = self._member(key, first, last)
            # Never counted against this claim: its own lines (recorded under its id), the
            # claim it replaces, and a claim that replaces it.
            excluded = {claim.claim_id, *member.replacing(claim.claim_id)}
            if claim.replaces:
                excluded.add(claim.replaces)
            claim.history = ClaimHistory(claim, member, frozenset(excluded))

    def prefetch(self, claims: Iterable[Claim]) -> None:
        """Load the histories `prepare` will need for `claims`, several members a
        statement (a run knows its next claims; one claim at a time costs a statement
        each)."""
        needs: dict[str, list[str]] = {}
        self._needs.clear()
        for claim in claims:
            need = self._needs[id(claim)] = self._need(claim)
            if need is None:
                continue
            key, first, last = need
            cached = self._members.get(key)
            if cached is not None and cached[0] <= first and last <= cached[1]:
                continue
            if cached is not None:
                first, last = min(first, cached[0]), max(last, cached[1])
            span = needs.setdefault(key, [first, last])
            span[0], span[1] = min(span[0], first), max(span[1], last)
        if not needs:
            return
        for key, rows in self.store.members_rows(needs).items():
            first, last = needs[key]
            self._remember(key, first, last, MemberHistory(rows))

    def _follow_plan(self, key: str, first: str, last: str) -> None:
        """Phase 2 has come to the next claim of the plan: on a miss, load the members
        of the next PREFETCH planned claims at once."""
        position = self._planned
        self._planned += 1
        cached = self._members.get(key)
        if cached is not None and cached[0] <= first and last <= cached[1]:
            return
        needs: dict[str, list[str]] = {}
        for k, f, t in self.plan[position:position + PREFETCH]:
            held = self._members.get(k)
            if held is not None and held[0] <= f and t <= held[1]:
                continue
            if held is not None:
                f, t = min(f, held[0]), max(t, held[1])
            span = needs.setdefault(k, [f, t])
            span[0], span[1] = min(span[0], f), max(span[1], t)
        for k, rows in self.store.members_rows(needs).items():
            self._remember(k, needs[k][0], needs[k][1], MemberHistory(rows))

    def _need(self, claim: Claim) -> tuple[str, str, str] | None:
        """The member key and dates of service the claim's counts look at, if any: only
        counters that count a line of the claim look back, and only as far as their
        windows reach."""
        counters = self.counters.get(claim.payer)
        lines = claim.lines
        if counters is None or not lines or not claim.member.id:
            return None
        wanted = [c for c in counters if any(c.matches(line) for line in lines)]
        if not wanted:
            return None
        key = self.store.member_key(claim.payer, claim.member.id)
        first = _earliest(wanted, claim.first_service_date).isoformat()
        last = max(line.service_date for line in lines).isoformat()
        return key, first, last

    def _member(self, key: str, first: str, last: str) -> MemberHistory:
        cached = self._members.get(key)
        if cached is not None:
            if cached[0] <= first and last <= cached[1]:
                self._members.move_to_end(key)
                return cached[2]
            first, last = min(first, cached[0]), max(last, cached[1])
        return self._remember(key, first, last,
                              MemberHistory(self.store.member_rows(key, first, last)))

    def _remember(self, key: str, first: str, last: str, member: MemberHistory
                  ) -> MemberHistory:
        self._members[key] = (first, last, member)
        self._members.move_to_end(key)
        if len(self._members) > MEMBER_CACHE:
            self._members.popitem(last=False)
        return member


class HistoryRun:
    """`Engine.check_many` with claim history: both phases over one iterable, the claims
    kept between them (in memory, then in a temporary file)."""

    def __init__(self, engine: Engine, store: HistoryStore | None = None) -> None:
        self.engine = engine
        self.store = store if store is not None else HistoryStore.memory()
        self._own_store = store is None

    def check_many(self, items: Iterable[Any]) -> Iterator[Decision]:
        """Decisions for `items` (dicts, JSON text, `Claim`s or `RawClaim`s), in input
        order: every claim is recorded first, then each is evaluated."""
        try:
            spool = _Spool()
            recorder = HistoryRecorder(self.engine, self.store)
            for position, item in enumerate(items):
                entry = self._read(position, item)
                if isinstance(entry[0], Claim):
                    recorder.add(entry[0])
                spool.add(entry)
            recorder.flush()
            if recorder.recorded:
                log.info("recorded %d claim(s) in %s", recorder.recorded, self.store.path)
            reader = HistoryReader(self.engine, self.store)
            for chunk in _chunks(spool, PREFETCH):
                reader.prefetch(thing for thing, _ in chunk if isinstance(thing, Claim))
                for thing, position in chunk:
                    if isinstance(thing, Decision):
                        yield thing
                        continue
                    try:
                        reader.prepare(thing)
                        decision = self.engine.evaluate(thing)
                    except Exception as exc:  # an engine bug: reject the claim, go on
                        decision = _internal_error(thing, exc)
                    decision.position = position
                    yield decision
        finally:
            if self._own_store:
                self.store.close()

    def _read(self, position: int, item: Any) -> tuple[Claim | Decision, int | None]:
        """Phase 1's reading of one item: the claim, or the decision that rejects it."""
        engine = self.engine
        if isinstance(item, Claim):
            return item, position
        if hasattr(item, "to_raw"):  # an NDJSON line of engine/batch.py, not parsed yet
            item = item.to_raw()
        if isinstance(item, RawClaim):
            raw = item
        elif isinstance(item, (bytes, str)):
            try:
                data = json.loads(item)
            except ValueError:
                decision = engine.check(item)  # the engine's own unreadable-JSON decision
                decision.position = position
                return decision, position
            raw = RawClaim(position, data)
        else:
            raw = RawClaim(position, dict(item))
        if raw.data is None or raw.problems:
            return engine.unreadable(raw), raw.position
        claim, problems = decode_claim(raw.data, engine.today)
        if claim is None:
            claim_id = raw.data.get("claim_id") if isinstance(raw.data, dict) else None
            decision = engine.unreadable(RawClaim(
                raw.position, None, tuple(problems),
                claim_id if isinstance(claim_id, str) else None))
            decision.position = raw.position
            return decision, raw.position
        return claim, raw.position


def _internal_error(claim: Claim, exc: Exception) -> Decision:
    """The decision of a claim the run could not check (as engine/batch.py's)."""
    from cleanclaim.engine.decision import Finding

    finding = Finding(
        "engine/internal-error", "submission", "reject", None, "CO", "16", [], "submission",
        "billing", f"the claim could not be checked ({type(exc).__name__} while checking "
        "it against its history); check it again or have a person review it", None, None)
    return Decision(claim.claim_id, "reject", [finding], {})


class _Spool:
    """Phase 1's claims, kept for phase 2 in input order: in memory, then on disk."""

    def __init__(self) -> None:
        self.memory: list[tuple[Any, int | None]] = []
        self.file: IO[bytes] | None = None
        self.spilled = 0

    def add(self, entry: tuple[Any, int | None]) -> None:
        if len(self.memory) < SPOOL_IN_MEMORY and self.file is None:
            self.memory.append(entry)
            return
        if self.file is None:
            # Lives as long as the spool: closed when phase 2 has read it back.
            self.file = tempfile.TemporaryFile(prefix="cleanclaim-run-")  # noqa: SIM115
        pickle.dump(entry, self.file, protocol=pickle.HIGHEST_PROTOCOL)
        self.spilled += 1

    def __iter__(self) -> Iterator[tuple[Any, int | None]]:
        yield from self.memory
        self.memory = []
        if self.file is not None:
            self.file.seek(0)
            for _ in range(self.spilled):
                yield pickle.load(self.file)  # our own temporary file
            self.file.close()


@dataclass(frozen=True, slots=True)
class HistoryEngineBuilder:
    """Builds a worker's engine (engine/batch.py `EngineBuilder`) that reads the store
    the parent recorded: `inner` builds the engine, the store at `store_path` is opened
    once in the worker for phase 2 (only the parent writes)."""

    inner: Any
    store_path: str

    def build(self) -> Engine:
        engine: Engine = self.inner.build()
        engine.history = HistoryReader(engine, HistoryStore(self.store_path))
        return engine


class HistoryBatch:
    """Claim history for `cleanclaim check`: the store (`--state`, or a temporary one for
    a self-contained run), phase 1 over a first pass of the input (`record`); then the
    engine - and the workers, built by `builder` - read the store in the second pass
    (only this process writes). Two passes over the input keep memory flat whatever its
    size; each claim is decoded once in each."""

    def __init__(self, engine: Engine, state: Path | None, workers: int = 1) -> None:
        self.engine = engine
        self._temp: Path | None = None
        if state is not None:
            path = str(state)
        elif workers > 1:  # workers open the store: a file, removed at the end
            handle, name = tempfile.mkstemp(prefix="cleanclaim-history-", suffix=".sqlite")
            os.close(handle)
            self._temp = Path(name)
            path = name
        else:
            path = ":memory:"
        self.store = HistoryStore(path)

    def record(self, items: Iterable[Any]) -> int:
        """Phase 1: record every readable claim of `items`; returns how many. Also plans
        phase 2's reads for the first PLAN_LIMIT claims (this process checks them)."""
        recorder = HistoryRecorder(self.engine, self.store)
        reader = HistoryReader(self.engine, self.store)
        for item in items:
            claim = _decode(self.engine, item)
            if claim is None:
                continue
            recorder.add(claim)
            if len(reader.plan) < PLAN_LIMIT:
                need = reader._need(claim)
                if need is not None:
                    reader.plan.append(need)
        recorder.flush()
        if recorder.recorded:
            log.info("recorded %d claim(s) in %s", recorder.recorded, self.store.path)
        reader.roster = self.store.has_roster()
        self.engine.history = reader
        return recorder.recorded

    def builder(self, inner: Any) -> HistoryEngineBuilder:
        return HistoryEngineBuilder(inner, self.store.path)

    def close(self) -> None:
        self.engine.history = None
        self.store.close()
        if self._temp is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self._temp}{suffix}").unlink(missing_ok=True)


# ---- records for `cleanclaim history` ----------------------------------------------------


def member_report(store: HistoryStore, member_id: str,
                  payers: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The member's recorded claims per payer, keyed by member key (never the id)."""
    out = []
    for payer in payers or store.payers():
        key = store.member_key(payer, member_id)
        claims = store.member_claims(key)
        if claims:
            out.append({"payer": payer, "member_key": key, "claims": claims})
    return out


def render_report(report: Sequence[Mapping[str, Any]]) -> str:
    """`cleanclaim history show` for people."""
    if not report:
        return "no recorded claims for this member\n"
    lines = []
    for part in report:
        claims = part["claims"]
        counted = sum(1 for c in claims if c["superseded_by"] is None and c["lines"])
        lines.append(f"member {part['member_key']} (payer {part['payer']}): "
                     f"{len(claims)} claim(s), {counted} counted")
        for c in claims:
            state = (f"replaced by {c['superseded_by']}" if c["superseded_by"] else
                     "void" if c["frequency"] == "void" else "counted")
            lines.append(f"  {c['claim_id']}  received {c['received'] or '-'}  "
                         f"{c['frequency'] or '-'}  {state}")
            for ln in c["service_lines"]:
                mods = ",".join(ln["modifiers"]) or "-"
                lines.append(f"    {ln['service_date']}  line {ln['line']}  {ln['code']}  "
                             f"modifiers {mods}  units {ln['units']}  "
                             f"charge {ln['charge'] or '-'}")
    return "\n".join(lines) + "\n"


__all__ = [
    "HISTORY_FUNCTIONS",
    "ClaimFacts",
    "ClaimHistory",
    "HistoryBatch",
    "HistoryEngineBuilder",
    "HistoryReader",
    "HistoryRecorder",
    "HistoryRun",
    "HistoryStore",
    "StoreError",
    "counts_history",
    "member_report",
    "render_report",
]

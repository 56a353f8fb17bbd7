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

Between them, the run is *settled* (`settle`): the claims of each member with more than
one claim in the run are decided, the lines their decisions take out (a rejected claim, a
denied line) are taken out of the run's records, and so on until nothing changes - so a
claim denied or rejected in the run counts for its later claims only as its decision
allows, as it does for later runs.

`HistoryRun` runs both over one iterable (`Engine.check_many`), keeping the decoded claims
between the phases; `HistoryBatch` is `cleanclaim check`'s: phase 1 over a first pass of
the input files (keeping the first claims decoded), phase 2 in the second pass, in this
process or in `--workers` that read the store (`HistoryEngineBuilder`). Without a store, a
run records into an in-memory (or, for workers, temporary) store: claims of the same input
count against each other. A claim checked outside a run (`Engine.check`) counts itself
alone.

**Speed.** Phase 1 plans phase 2's reads (`HistoryReader.plan_claim`): the members whose
claims a counter counts, and the dates they look at. Phase 2 reads each member once, ahead
of its claims and many members a statement, and keeps members' histories for the run; a
claim none of whose lines is counted reads nothing. Recorded lines are unpacked when a
count needs them (`Entry`, one tuple a line), once a run. Python's cyclic garbage
collector is kept away from the claims a run keeps (`_QuietCollector`).

**The functions.** A rule reads a counter (`dsl/history.py`) through `visit_number(c)`,
`total_to_date(c)`, `total_before(c)` and `total_on_other_claims(c)`; each is missing (so
a comparison with it is false) when the counter does not count the line. See
docs/history.md.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import gc
import hashlib
import logging
import os
import pickle
import sqlite3
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple, Protocol

from cleanclaim.dsl import types as T
from cleanclaim.dsl.history import COUNTER, Counter, counter_of
from cleanclaim.engine.decision import Decision
from cleanclaim.engine.decoding import decode_claim, decode_json
from cleanclaim.engine.inputs import RawClaim
from cleanclaim.engine.model import Claim, ServiceLine, loads, readable_id

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
    (  # 3: the replaced and voided claims (and tombstones), which recording looks up for
        # every claim it writes: a small index instead of a read of each claim's row
        "CREATE INDEX claims_superseded ON claims (payer, claim_id) "
        "WHERE superseded_by IS NOT NULL",
    ),
    (  # 4: each claim's decision with it (docs/history.md, "What counts"). `decision`:
        # the claim's status, NULL while the run that recorded it (`run`) has not decided
        # it (provisional: it counts only in that run); `submitted`: the lines as sent
        # (`lines` keeps the lines that count); `superseded_run`: the run whose
        # replacement or void superseded the claim (soft state: the row and its lines
        # stay, and come back if the replacing claim is rejected or never decided).
        "ALTER TABLE claims ADD COLUMN decision TEXT",
        "ALTER TABLE claims ADD COLUMN run TEXT",
        "ALTER TABLE claims ADD COLUMN submitted TEXT",
        "ALTER TABLE claims ADD COLUMN superseded_run TEXT",
        # Claims recorded before decisions were kept count as they did.
        "UPDATE claims SET decision = 'recorded', submitted = lines",
        "CREATE INDEX claims_provisional ON claims (run) WHERE decision IS NULL",
        # The runs that recorded claims, in the order they held the store (`run_lock`).
        "CREATE TABLE runs (seq INTEGER PRIMARY KEY, run TEXT NOT NULL, started TEXT NOT "
        "NULL, finished TEXT)",
    ),
    (  # 5: the eligibility roster's therapy year to date (`cleanclaim members import`,
        # engine/roster.py): amounts applied toward the KX thresholds as of a date
        """CREATE TABLE therapy_ytd (
             member_key TEXT PRIMARY KEY,
             pt_slp TEXT,
             ot TEXT,
             as_of TEXT NOT NULL
           )""",
    ),
    (  # 6: what each roster span is and its order of benefits (engine/roster.py; the
        # medicare/coverage-other-payer rules); NULL: not said, as for spans stored before
        "ALTER TABLE coverage ADD COLUMN coverage_type TEXT",
        "ALTER TABLE coverage ADD COLUMN benefit_order TEXT",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT_MS = 120_000
MMAP_BYTES = 1 << 30  # address space only: the OS pages the file in as it is read
CACHE_KIB = 65_536  # the page cache, per connection


# The key of the member-key hash lives outside the store: in this environment variable
# (hex, at least 16 bytes), else in a file beside the store (`<store>.key`, mode 0600).
KEY_ENV = "CLEANCLAIM_HISTORY_KEY"
_KEY_CHECK = b"cleanclaim history key check"


class StoreError(Exception):
    """The history store cannot be opened or is of a newer schema than this program."""


def _create_private(path: str) -> None:
    """Create `path` empty, readable by its owner only, unless it exists."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def key_path(store_path: str) -> Path:
    return Path(f"{store_path}.key")


class Rows(Protocol):
    """A statement's result (a DB-API cursor)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Database(Protocol):
    """What the store needs of a database connection: sqlite3's, or the PostgreSQL
    adapter's (engine/history/postgres.py), which takes the same SQL."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Rows: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...

    def close(self) -> None: ...


class Refusal(NamedTuple):
    """Why phase 1 did not record a claim, and the reject it gets in phase 2."""

    rule: str
    where: str
    message: str


class HistoryStore:
    """A claim-history store: SQLite at `path`, or in memory (`HistoryStore.memory()`)."""

    # Errors of the store itself (locked, disk full, connection lost): the run stops.
    FATAL: tuple[type[Exception], ...] = (sqlite3.OperationalError,)

    def __init__(self, path: Path | str, run: str | None = None) -> None:
        self.path = self.label = str(path)  # (label: the store as messages name it)
        # The run this connection records for: its provisional claims count for it.
        self.run = run or os.urandom(8).hex()
        if self.path != ":memory:":
            _create_private(self.path)
        try:
            self.db: Database = sqlite3.connect(
                self.path,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
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
            self.salt = self._key()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a cleanclaim history store ({exc})") from exc
        self._state()

    def _state(self) -> None:
        """What a store keeps besides its connection."""
        self._roster: bool | None = None
        self._therapy_ytd: bool | None = None
        self._keys: dict[tuple[str, str], str] = {}
        # Claims of this run whose counted lines `settle` has set (payer, claim id).
        self._settled: set[tuple[str, str]] = set()
        # Replacements and voids of this run that `settle` found rejected: for the run
        # they supersede nothing.
        self._unsuperseded: set[tuple[str, str]] = set()

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
                raise StoreError(
                    f"{self.label}: history store schema {version} is newer "
                    f"than this cleanclaim (schema {SCHEMA_VERSION})"
                )
            for step in MIGRATIONS[version:]:
                for statement in step:
                    self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        log.info(
            "history store %s migrated from schema %d to %d", self.label, version, SCHEMA_VERSION
        )

    def _key(self) -> bytes:
        """The key of the member-key hash: from KEY_ENV, else the key file beside the
        store (created 0600 with a new store; a store of an older cleanclaim has its key
        in the store, which moves out to the file). A key that does not match the store's
        check value is refused: it would file claims under other members' keys."""
        if self.path == ":memory:":
            return os.urandom(16)
        row = self.db.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
        given = os.environ.get(KEY_ENV)
        if given:
            try:
                key = bytes.fromhex(given.strip())
            except ValueError:
                key = b""
            if len(key) < 16:
                raise StoreError(f"{KEY_ENV} must be at least 16 bytes in hex (32 hex digits)")
        else:
            key = self._key_file(row[0] if row else None)
        check = hashlib.blake2b(_KEY_CHECK, key=key[:64], digest_size=16).hexdigest()
        found = self.db.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
        if found is not None and found[0] == check and row is None:
            return key[:64]  # (no write: workers open the store while the parent writes)
        with self.transaction():
            found = self.db.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
            if found is None:
                self.db.execute("INSERT INTO meta VALUES ('key_check', ?)", (check,))
            elif found[0] != check:
                raise StoreError(
                    f"{self.label}: the history key ({KEY_ENV} or "
                    f"{self._key_location().name}) is not this store's"
                )
            self.db.execute("DELETE FROM meta WHERE key = 'salt'")
        return key[:64]

    def _key_location(self) -> Path:
        """The key file when KEY_ENV is not set: beside the store."""
        return key_path(self.path)

    def _key_file(self, legacy: str | None) -> bytes:
        path = self._key_location()
        try:
            handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            text = path.read_text(encoding="ascii").strip()
            if path.stat().st_mode & 0o077:
                log.warning(
                    "%s can be read by others: the member keys are only as safe "
                    "as this file (chmod 600)",
                    path,
                )
            try:
                return bytes.fromhex(text)
            except ValueError as exc:
                raise StoreError(f"{path}: not a history key") from exc
        key = bytes.fromhex(legacy) if legacy else os.urandom(32)
        with os.fdopen(handle, "w", encoding="ascii") as out:
            out.write(key.hex() + "\n")
        return key

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
            digest = hashlib.blake2b(
                f"{payer}\0{member_id}".encode(), key=self.salt, digest_size=16
            )
            key = digest.hexdigest()
            if len(self._keys) >= 8_192:  # a run meets a member's claims close together
                self._keys.clear()
            self._keys[(payer, member_id)] = key
        return key

    def roster_key(self, member_id: str) -> str:
        """The key of a member's roster coverage (all payers)."""
        return hashlib.blake2b(
            f"roster\0{member_id}".encode(), key=self.salt, digest_size=16
        ).hexdigest()

    # ---- recording ---------------------------------------------------------------------

    def record(self, facts: Sequence[ClaimFacts], refused: dict[int, Refusal] | None = None) -> int:
        """Record claims in one transaction, as this store's run (`run`); returns how many.

        A claim is recorded provisionally: it counts in its own run, and for others once
        its decision is written (`decide`). Re-recording a claim id replaces it. A claim id
        twice in one run: the first is the claim and the later ones are refused. Also
        refused (never recorded; `refused` gets position -> why): a claim whose id is on
        file for another member, and a replacement or void naming a claim of another
        member or billing provider. A replacement or void supersedes the claim it names:
        that claim's row stays, marked `superseded_by` (a tombstone when it has not been
        seen yet, so that it does not count when it comes) and no longer counts.

        The outcome is that of recording the claims one by one, in order; it is computed
        per batch, with one statement per kind of change, because that is what keeps
        recording fast."""
        refusals: dict[int, Refusal] = refused if refused is not None else {}
        latest: dict[tuple[str, str], ClaimFacts] = {}
        for fact in facts:
            key = (fact.payer, fact.claim_id)
            if key in latest:
                refusals[fact.position] = _duplicate(fact)
                continue
            latest[key] = fact
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        run = self.run
        with self.transaction():
            self._lock_members({f.member_key for f in latest.values()})
            existing = self._existing(list(latest))
            rows = []
            recorded: list[ClaimFacts] = []
            for key, f in latest.items():
                old = existing.get(key)
                by = by_run = None
                if old is not None:
                    old_member, _billing, decision, _run, by, by_run = old
                    if old_member != f.member_key:
                        if decision not in ("reject", "tombstone", None):
                            refusals[f.position] = Refusal(
                                "engine/claim-id-taken",
                                "claim_id",
                                "this claim id is on file for another member: a claim id "
                                "names one claim of one member (send a void of the other "
                                "claim, or use a new claim id)",
                            )
                            continue
                        by = by_run = None  # another member's tombstone: not this claim
                counted = f.frequency != "void"
                rows.append(
                    (
                        f.member_key,
                        f.claim_id,
                        f.payer,
                        f.received,
                        f.frequency,
                        f.replaces,
                        f.first_dos,
                        f.last_dos,
                        f.line_count if counted else 0,
                        by,
                        f.rendering,
                        f.billing,
                        now,
                        f.lines if counted else "",
                        None,
                        run,
                        f.lines,
                        by_run,
                    )
                )
                recorded.append(f)
            self._replace_rows(rows)
            count = len(rows)
            for f in recorded:  # replacements and voids, in order
                target = f.replaces or (f.claim_id if f.frequency == "void" else None)
                if (
                    f.frequency in ("replacement", "void")
                    and target is not None
                    and (target != f.claim_id or f.frequency == "void")
                    and not self._supersede(f, target, now)
                ):
                    refusals[f.position] = Refusal(
                        "engine/replaces-other-claim",
                        "replaces",
                        f"the claim this {f.frequency} names is on file for another "
                        "member or billing provider: a replacement or void must name a "
                        "claim of the same member and billing provider",
                    )
                    self.db.execute(
                        "DELETE FROM claims WHERE payer = ? AND claim_id = ? AND run = ?",
                        (f.payer, f.claim_id, run),
                    )
                    count -= 1
        return count

    def put_decided(self, facts: Iterable[ClaimFacts], decision: str = "clean") -> int:
        """Load claims already decided (`decision`; every line counts), as they are: no
        refusal, no replacement, in transactions of RECORD_BATCH claims - a store filled
        for a benchmark or from another system. Returns how many."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        done = 0
        batch: list[tuple[Any, ...]] = []
        for f in facts:
            batch.append(
                (
                    f.member_key,
                    f.claim_id,
                    f.payer,
                    f.received,
                    f.frequency,
                    f.replaces,
                    f.first_dos,
                    f.last_dos,
                    f.line_count,
                    None,
                    f.rendering,
                    f.billing,
                    now,
                    f.lines,
                    decision,
                    self.run,
                    f.lines,
                    None,
                )
            )
            if len(batch) >= RECORD_BATCH:
                done += self._put_rows(batch)
                batch = []
        return done + self._put_rows(batch)

    def _put_rows(self, rows: list[tuple[Any, ...]]) -> int:
        if rows:
            with self.transaction():
                self._lock_members({row[0] for row in rows})
                self._replace_rows(rows)
        return len(rows)

    def _replace_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Write whole `claims` rows, each replacing the row of its (member key, claim
        id) and the row of its (payer, claim id), if any (inside a transaction)."""
        rows.sort(key=itemgetter(0))  # in key order: the B-tree is written page by page
        # OR REPLACE also drops the row of a claim id recorded under another member.
        self.db.executemany(
            "INSERT OR REPLACE INTO claims VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def _lock_members(self, member_keys: Iterable[str]) -> None:
        """Inside a write transaction: no other writer changes these members' rows until
        it ends. SQLite's write transaction is the whole store's already; PostgreSQL
        takes advisory locks (engine/history/postgres.py)."""

    def _existing(self, ids: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[Any, ...]]:
        """The rows on file among `ids`: (member key, billing NPI, decision, run,
        superseded by, superseded in run)."""
        by_payer: dict[str, list[str]] = {}
        for payer, claim_id in ids:
            by_payer.setdefault(payer, []).append(claim_id)
        found: dict[tuple[str, str], tuple[Any, ...]] = {}
        for payer, claim_ids in by_payer.items():
            for start in range(0, len(claim_ids), 500):  # parameters a statement, at most
                chunk = claim_ids[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                for row in self.db.execute(
                    "SELECT claim_id, member_key, billing, decision, run, superseded_by, "
                    "superseded_run FROM claims INDEXED BY claims_by_id WHERE payer = ? "
                    f"AND claim_id IN ({marks})",
                    [payer, *chunk],
                ):
                    found[(payer, row[0])] = row[1:]
        return found

    def _supersede(self, f: ClaimFacts, claim_id: str, now: str) -> bool:
        """`f` replaces or voids `claim_id`: mark it (soft state), or leave a tombstone
        when it is not on file yet. False when it belongs to another member or billing
        provider (nothing is changed)."""
        row = self.db.execute(
            "SELECT member_key, billing, decision FROM claims WHERE payer = ? AND claim_id = ?",
            (f.payer, claim_id),
        ).fetchone()
        if row is not None and row[2] not in ("reject", "tombstone"):
            member_key, billing, _decision = row
            if member_key != f.member_key or (billing and f.billing and billing != f.billing):
                return False
            self.db.execute(
                "UPDATE claims SET superseded_by = ?, superseded_run = ? "
                "WHERE payer = ? AND claim_id = ?",
                (f.claim_id, self.run, f.payer, claim_id),
            )
            return True
        if claim_id == f.claim_id:  # a void of itself, not seen before: nothing to mark
            return True
        if row is not None:
            self.db.execute(
                "DELETE FROM claims WHERE payer = ? AND claim_id = ?", (f.payer, claim_id)
            )
        # Not seen yet: a tombstone, so that the claim does not count when it comes.
        self.db.execute(
            "INSERT INTO claims (member_key, claim_id, payer, superseded_by, "
            "billing, recorded_at, decision, run, superseded_run) "
            "VALUES (?, ?, ?, ?, ?, ?, 'tombstone', ?, ?)",
            (f.member_key, claim_id, f.payer, f.claim_id, f.billing, now, self.run, self.run),
        )
        return True

    # ---- decisions ---------------------------------------------------------------------

    def decide(self, outcomes: Iterable[Outcome]) -> int:
        """Write the decisions of claims this run recorded, in one transaction: from now
        on each counts for every run, with only its lines that count (`Outcome`); a
        rejected claim counts nothing and what it replaced or voided counts again.
        Returns how many claims were decided."""
        done = 0
        with self.transaction():
            for payer, claim_id, status, denied in outcomes:
                row = self.db.execute(
                    "SELECT submitted FROM claims WHERE payer = ? AND claim_id = ? AND "
                    "run = ? AND decision IS NULL",
                    (payer, claim_id, self.run),
                ).fetchone()
                if row is None:
                    continue
                done += 1
                lines = _counted_lines(row[0], status, denied)
                if lines is None and (payer, claim_id) in self._settled:
                    lines = row[0] or ""  # what the run took out while settling counts
                if lines is None:
                    self.db.execute(
                        "UPDATE claims SET decision = ? WHERE payer = ? AND claim_id = ?",
                        (status, payer, claim_id),
                    )
                else:
                    self.db.execute(
                        "UPDATE claims SET decision = ?, lines = ?, line_count = ? WHERE "
                        "payer = ? AND claim_id = ?",
                        (status, lines, lines.count("\n") + 1 if lines else 0, payer, claim_id),
                    )
                if status == "reject":
                    self._restore(payer, claim_id, self.run)
        return done

    def settle(self, outcomes: Iterable[Outcome]) -> None:
        """Within the run: the lines that count of claims it recorded and has decided
        for the time being (`_settle`), the claims staying provisional. A replacement or
        void decided `reject` supersedes nothing for the run (what it names counts
        again); decided otherwise in a later round, it supersedes again."""
        with self.transaction():
            for payer, claim_id, status, denied in outcomes:
                row = self.db.execute(
                    "SELECT submitted, frequency, member_key, billing, replaces FROM claims "
                    "WHERE payer = ? AND claim_id = ? AND run = ? AND decision IS NULL",
                    (payer, claim_id, self.run),
                ).fetchone()
                if row is None:
                    continue
                self._lock_members([row[2]])
                if row[1] in ("replacement", "void"):
                    self._settle_supersede(payer, claim_id, status, row)
                if row[1] == "void":  # a void counts nothing anyway
                    continue
                self._settled.add((payer, claim_id))
                lines = _counted_lines(row[0], status, denied)
                if lines is None:
                    lines = row[0] or ""
                self.db.execute(
                    "UPDATE claims SET lines = ?, line_count = ? WHERE payer = ? AND "
                    "claim_id = ? AND run = ?",
                    (lines, lines.count("\n") + 1 if lines else 0, payer, claim_id, self.run),
                )

    def _settle_supersede(
        self, payer: str, claim_id: str, status: str, row: tuple[Any, ...]
    ) -> None:
        """`settle` of a replacement or void: rejected, it supersedes nothing."""
        key = (payer, claim_id)
        if status == "reject":
            self._restore(payer, claim_id, self.run)
            self._unsuperseded.add(key)
            return
        if key not in self._unsuperseded:
            return
        self._unsuperseded.discard(key)
        _submitted, frequency, member_key, billing, replaces = row
        target = replaces or (claim_id if frequency == "void" else None)
        if target is not None and (target != claim_id or frequency == "void"):
            now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            self._supersede(
                ClaimFacts(
                    payer,
                    claim_id,
                    member_key,
                    "",
                    frequency,
                    replaces,
                    None,
                    None,
                    None,
                    billing,
                    0,
                    "",
                ),
                target,
                now,
            )

    def _restore(self, payer: str, claim_id: str, run: str) -> None:
        """What `claim_id` (recorded in `run`) replaced or voided counts again."""
        self.db.execute(
            "DELETE FROM claims WHERE payer = ? AND superseded_by = ? AND "
            "superseded_run = ? AND decision = 'tombstone'",
            (payer, claim_id, run),
        )
        self.db.execute(
            "UPDATE claims SET superseded_by = NULL, superseded_run = NULL "
            "WHERE payer = ? AND superseded_by = ? AND superseded_run = ?",
            (payer, claim_id, run),
        )

    def begin_run(self) -> None:
        """This run begins (holding `run_lock`): what interrupted runs left provisional is
        forgotten (`sweep`) and the run is written down, in the order runs hold the store.
        Each run records under a run id of its own."""
        self.run = os.urandom(8).hex()
        self.sweep()
        with self.transaction():
            self.db.execute(
                "INSERT INTO runs (run, started) VALUES (?, ?)",
                (self.run, dt.datetime.now(dt.UTC).isoformat()),
            )

    def end_run(self) -> None:
        """This run has written its decisions."""
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET finished = ? WHERE run = ?",
                (dt.datetime.now(dt.UTC).isoformat(), self.run),
            )

    def runs(self) -> list[tuple[str, str, str | None]]:
        """The runs that held the store, in order: (run, started, finished or None)."""
        return self.db.execute("SELECT run, started, finished FROM runs ORDER BY seq").fetchall()

    def run_of(self, payer: str, claim_id: str) -> str | None:
        """The run that recorded the claim (None: not on file)."""
        row = self.db.execute(
            "SELECT run FROM claims WHERE payer = ? AND claim_id = ?", (payer, claim_id)
        ).fetchone()
        return None if row is None else str(row[0])

    def clear_all(self) -> None:
        """Forget every claim, run and roster span (the key stays): a new store."""
        with self.transaction():
            for table in ("claims", "runs", "coverage"):
                self.db.execute(f"DELETE FROM {table}")

    def sweep(self) -> int:
        """Forget the provisional claims of runs that ended without deciding them (killed):
        they never count, and what they replaced or voided counts again. Call it holding
        the run lock (`run_lock`): then no other run is under way. Returns how many."""
        with self.transaction():
            rows = self.db.execute(
                "SELECT payer, claim_id, run FROM claims INDEXED BY claims_provisional "
                "WHERE decision IS NULL AND run != ?",
                (self.run,),
            ).fetchall()
            for payer, claim_id, run in rows:
                self._restore(payer, claim_id, run)
                self.db.execute(
                    "DELETE FROM claims WHERE payer = ? AND claim_id = ? AND "
                    "run = ? AND decision IS NULL",
                    (payer, claim_id, run),
                )
        if rows:
            log.info("forgot %d provisional claim(s) of interrupted runs", len(rows))
        return len(rows)

    def run_lock(self) -> RunLock:
        """`with store.run_lock():` - this process's run is the only one on the store
        (an exclusive lock on `<store>.lock`, held until the run has written its
        decisions): concurrent runs take turns, each seeing every claim decided before
        it began."""
        return RunLock(None if self.path == ":memory:" else f"{self.path}.lock")

    # ---- reading -----------------------------------------------------------------------

    # What phase 2 reads of a claim (a `ClaimRow`): the primary key leads the row, so a
    # member's claims are one range of the table; no other column is read.
    _ROW = (
        "first_dos, last_dos, claim_id, received, rendering, billing, lines, replaces, member_key"
    )
    # What counts (docs/history.md): not superseded, and decided, or provisional in this
    # run (a rejected claim, or one whose lines were all denied, has line_count 0).
    _COUNTS = "superseded_by IS NULL AND (decision IS NOT NULL OR run = ?)"

    def member_rows(self, member_key: str, first: str, last: str) -> list[ClaimRow]:
        """The member's recorded claims with lines dated in [first, last]."""
        return self.db.execute(
            f"SELECT {self._ROW} FROM claims WHERE member_key = ? AND last_dos >= ? "
            f"AND first_dos <= ? AND line_count > 0 AND {self._COUNTS}",
            (member_key, first, last, self.run),
        ).fetchall()

    def members_rows(self, spans: Mapping[str, Sequence[str]]) -> dict[str, list[ClaimRow]]:
        """`member_rows` of many members at once (one statement for up to 300 members):
        member key -> (first, last)."""
        found: dict[str, list[ClaimRow]] = {key: [] for key in spans}
        items = [(key, span[0], span[1]) for key, span in spans.items()]
        for start in range(0, len(items), 300):  # 900 parameters a statement, at most
            chunk = items[start : start + 300]
            values = ", ".join(["(?, ?, ?)"] * len(chunk))
            for row in self.db.execute(
                f"WITH wanted(k, f, l) AS (VALUES {values}) SELECT {self._ROW} "
                "FROM wanted JOIN claims ON member_key = k AND last_dos >= f "
                f"AND first_dos <= l AND line_count > 0 AND {self._COUNTS}",
                [*(part for item in chunk for part in item), self.run],
            ):
                found[row[8]].append(row)
        return found

    def member_claims(self, member_key: str) -> list[dict[str, Any]]:
        """The member's recorded claims with their lines (for `cleanclaim history`):
        `lines` is how many count, `service_lines` the lines as submitted, `decision` the
        claim's status (None while provisional), `counted` which of them count."""
        claims = []
        for row in self.db.execute(
            "SELECT payer, claim_id, received, frequency, replaces, first_dos, last_dos, "
            "line_count, superseded_by, recorded_at, rendering, billing, submitted, "
            "decision, lines, run FROM claims "
            "WHERE member_key = ? ORDER BY first_dos, received, claim_id",
            (member_key,),
        ):
            claim = dict(
                zip(
                    (
                        "payer",
                        "claim_id",
                        "received",
                        "frequency",
                        "replaces",
                        "first_dos",
                        "last_dos",
                        "lines",
                        "superseded_by",
                        "recorded_at",
                    ),
                    row[:10],
                    strict=True,
                )
            )
            decision, counted_text, run = row[13], row[14] or "", row[15]
            counts = row[8] is None and (decision is not None or run == self.run)
            if not counts:
                claim["lines"] = 0
            claim["decision"] = decision
            counted = (
                {text.split("\t", 2)[1] for text in counted_text.split("\n") if text}
                if counts
                else set()
            )
            submitted = row[12] if row[12] is not None else counted_text
            entries = unpack_lines(row[1], row[2], row[10], row[11], submitted) if submitted else []
            claim["service_lines"] = [
                {
                    "line": e.line,
                    "service_date": e.dos,
                    "code": e.code,
                    "modifiers": list(e.modifiers),
                    "units": e.units,
                    "charge": e.stored_charge or None,
                    "rendering_npi": e.rendering,
                    "counted": e.stored_line in counted,
                }
                for e in entries
            ]
            claims.append(claim)
        return claims

    def clear_member(self, member_key: str) -> int:
        """Forget the member's recorded claims; returns how many claims were removed."""
        with self.transaction():
            self._lock_members([member_key])
            removed = self.db.execute(
                "DELETE FROM claims WHERE member_key = ?", (member_key,)
            ).rowcount
        log.info("cleared %d claim(s) of member %s", removed, member_key)
        return removed

    def payers(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT payer FROM claims ORDER BY 1")]

    def counts(self) -> dict[str, int]:
        """How much the store holds: claims, lines, roster spans."""
        return {
            "claims": self.db.execute("SELECT count(*) FROM claims").fetchone()[0],
            "lines": self.db.execute("SELECT coalesce(sum(line_count), 0) FROM claims").fetchone()[
                0
            ],
            "coverage_spans": self.db.execute("SELECT count(*) FROM coverage").fetchone()[0],
        }

    def has_roster(self) -> bool:
        if self._roster is None:
            self._roster = self.db.execute("SELECT 1 FROM coverage LIMIT 1").fetchone() is not None
        return self._roster

    def decided(self, claim_ids: Sequence[str]) -> list[StoredDecision]:
        """The decisions the store keeps for these claim ids (for `cleanclaim denials
        --state`, engine/denials/): one per recorded, decided claim (provisional claims
        and tombstones have none), oldest recorded first."""
        found: list[StoredDecision] = []
        ids = list(dict.fromkeys(claim_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for payer, claim_id, decision, submitted, lines in self.db.execute(
                "SELECT payer, claim_id, decision, submitted, lines FROM claims WHERE "
                f"claim_id IN ({', '.join('?' * len(chunk))}) AND decision IN "
                "('clean', 'review', 'deny', 'reject') ORDER BY recorded_at",
                chunk,
            ):
                numbers = [_line_number(t) for t in (submitted or "").split("\n") if t]
                counted = {_line_number(t) for t in (lines or "").split("\n") if t}
                denied = (
                    None
                    if decision == "reject" or (decision == "deny" and not counted)
                    else frozenset(n for n in numbers if n not in counted)
                )
                found.append(StoredDecision(payer, claim_id, decision, tuple(numbers), denied))
        return found

    def has_therapy_ytd(self) -> bool:
        """Whether a roster import gave any member a therapy year to date."""
        if self._therapy_ytd is None:
            self._therapy_ytd = (
                self.db.execute("SELECT 1 FROM therapy_ytd LIMIT 1").fetchone() is not None
            )
        return self._therapy_ytd


# A claim's decision as the store keeps it: payer, claim id, status, and the numbers of
# its lines denied or rejected on their own (None: every line, e.g. a claim-level deny).
Outcome = tuple[str, str, str, "frozenset[str] | None"]


class StoredDecision(NamedTuple):
    """A decided claim as the store keeps it (`HistoryStore.decided`): its status, the
    numbers of its submitted lines, and those denied or rejected (None: every line)."""

    payer: str
    claim_id: str
    status: str
    lines: tuple[int | None, ...]
    denied: frozenset[int | None] | None


def _line_number(packed: str) -> int | None:
    """The claim line number of a packed line (`pack_line`)."""
    parts = packed.split("\t", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def is_url(state: str | Path) -> bool:
    """Whether `--state` names a PostgreSQL database (else a SQLite file)."""
    return str(state).startswith(("postgresql://", "postgres://"))


def open_store(state: str | Path, run: str | None = None) -> HistoryStore:
    """The history store at `state`: a SQLite file, or a PostgreSQL database when `state`
    is a `postgresql://` URL (engine/history/postgres.py)."""
    text = str(state)
    if is_url(text):
        from cleanclaim.engine.history.postgres import PostgresStore

        return PostgresStore(text, run)
    return HistoryStore(text, run)


def outcome_of(decision: Decision, payer: str | None = None) -> Outcome | None:
    """What the store keeps of a decision (None for a claim that was never read)."""
    if payer is None:
        packs = decision.policy.get("packs") if decision.policy else None
        if not packs or decision.claim_id is None:
            return None
        payer = next(iter(packs))
    denied: set[str] | None = set()
    for f in decision.findings:
        if f.severity in ("deny", "reject"):
            if f.line is None:
                denied = None
                break
            assert denied is not None
            denied.add(str(f.line))
    return (
        payer,
        decision.claim_id or "",
        decision.status,
        None if denied is None else frozenset(denied),
    )


def _counted_lines(submitted: str | None, status: str, denied: frozenset[str] | None) -> str | None:
    """The packed lines of a claim that count after its decision (None: all of them)."""
    if status == "reject" or denied is None:
        return ""
    if denied:
        return "\n".join(
            text for text in (submitted or "").split("\n") if text.split("\t", 2)[1] not in denied
        )
    return None


def _duplicate(f: ClaimFacts) -> Refusal:
    return DUPLICATE_ID


class RunLock:
    """An exclusive lock on a file (fcntl.flock) for the length of a run; nothing where
    the platform has no flock or the store is in memory."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.handle: int | None = None

    def __enter__(self) -> RunLock:
        if self.path is None:
            return self
        try:
            import fcntl
        except ImportError:  # not on a POSIX system
            return self
        self.handle = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    def release(self) -> None:
        if self.handle is not None:
            os.close(self.handle)  # closing releases the lock
            self.handle = None


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


# ---- facts -------------------------------------------------------------------------------


class ClaimFacts(NamedTuple):
    """What the store keeps of one claim: identity, dates, providers, and its service
    lines packed as text (`pack_line`). (A named tuple: phase 1 makes one a claim.)"""

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
    position: int = -1  # the claim's place in its run's input (for a refusal)


_UNSAFE = str.maketrans({"\t": " ", "\n": " ", "\r": " "})


def _text(value: Any) -> str:
    return "" if value is None else str(value).translate(_UNSAFE)


def pack_line(idx: int, line: ServiceLine) -> str:
    """One service line as the store keeps it: tab-separated position in the claim,
    line number, date of service, code, modifiers, units, charge, minutes, pointed
    diagnoses (lists space-separated) and, when the claim sends one, the expected allowed
    amount (lines recorded before it was kept have nine fields)."""
    units, charge, minutes = line.units, line.charge, line.minutes
    allowed = line.expected_allowed
    text = (
        f"{idx}\t{line.line}\t{line.service_date.isoformat()}\t{line.code or ''}\t"
        f"{' '.join(line.modifiers)}\t{'' if units is None else units}\t"
        f"{'' if charge is None else charge}\t{'' if minutes is None else minutes}\t"
        f"{' '.join(line.pointed_diagnoses)}"
    )
    if allowed is not None:
        text += f"\t{allowed}"
    if text.count("\t") == (8 if allowed is None else 9) and "\n" not in text and "\r" not in text:
        return text
    # A code or modifier with a tab or line break in it (bad data): blank those out.
    return "\t".join(
        (
            str(idx),
            str(line.line),
            line.service_date.isoformat(),
            _text(line.code),
            _text(" ".join(line.modifiers)),
            _text(units),
            _text(charge),
            _text(minutes),
            _text(" ".join(line.pointed_diagnoses)),
            *(() if allowed is None else (_text(allowed),)),
        )
    )


def claim_facts(claim: Claim, member_key: str, position: int = -1) -> ClaimFacts:
    lines = claim.lines
    if lines:
        first = last = lines[0].service_date
        for line in lines:
            day = line.service_date
            if day < first:
                first = day
            elif day > last:
                last = day
        first_dos: str | None = first.isoformat()
        last_dos: str | None = last.isoformat()
    else:
        first_dos = last_dos = None
    return ClaimFacts(
        claim.payer,
        claim.claim_id,
        member_key,
        claim.received_date.isoformat(),
        claim.frequency,
        claim.replaces,
        first_dos,
        last_dos,
        claim.rendering_provider.npi,
        claim.billing_provider.npi,
        len(lines),
        "\n".join([pack_line(i, line) for i, line in enumerate(lines)]),
        position,
    )


def _number(text: str) -> int | float | None:
    if text.isdigit():
        return int(text)
    if not text:
        return None
    value = float(text)
    return int(value) if value.is_integer() else value


class Entry(NamedTuple):
    """A recorded service line of another claim. It has the attribute names of a claim's
    `ServiceLine`, so a counter's compiled filter reads both alike; they are converted
    from the stored text when read.

    One tuple a line, and nothing in it the garbage collector needs to track: reading a
    member's history means unpacking many lines, which stay cached for the run. Its
    first four items are the line's place in the counting order (date of service,
    received date, claim id, place in its claim), so entries sort in counting order."""

    dos: str
    received: str
    claim_id: str
    # The place in its claim, as stored (text): only lines of one claim tie on the
    # three before, and those are never counted against each other.
    place: str
    stored_line: str
    stored_code: str
    stored_modifiers: str
    stored_units: str
    stored_charge: str
    stored_minutes: str
    stored_diagnoses: str
    rendering: str | None
    billing: str | None
    stored_allowed: str = ""

    @property
    def order(self) -> tuple[str, str, str, str]:
        return (self.dos, self.received, self.claim_id, self.place)

    @property
    def code(self) -> str | None:
        return self.stored_code or None

    @property
    def modifiers(self) -> tuple[str, ...]:
        return tuple(self.stored_modifiers.split())

    @property
    def line(self) -> int | None:
        return int(self.stored_line) if self.stored_line else None

    @property
    def units(self) -> int | float | None:
        return _number(self.stored_units)

    @property
    def minutes(self) -> int | float | None:
        return _number(self.stored_minutes)

    @property
    def service_date(self) -> dt.date:
        return dt.date.fromisoformat(self.dos)

    @property
    def charge(self) -> Decimal | None:
        return Decimal(self.stored_charge) if self.stored_charge else None

    @property
    def pointed_diagnoses(self) -> tuple[str, ...]:
        return tuple(self.stored_diagnoses.split())

    @property
    def expected_allowed(self) -> Decimal | None:
        return Decimal(self.stored_allowed) if self.stored_allowed else None

    @property
    def diagnosis_pointers(self) -> tuple[int, ...]:
        return ()

    @property
    def modifier_key(self) -> tuple[str, ...]:
        return tuple(sorted(self.stored_modifiers.split()))


_new_entry: Any = tuple.__new__  # an `Entry` without `Entry.__new__`'s Python frame


def unpack_lines(
    claim_id: str, received: str, rendering: str | None, billing: str | None, lines: str
) -> list[Entry]:
    """The stored lines of one recorded claim (`ClaimFacts.lines`)."""
    return [
        _new_entry(
            Entry,
            (
                f[2],
                received,
                claim_id,
                f[0],
                f[1],
                f[3],
                f[4],
                f[5],
                f[6],
                f[7],
                f[8],
                rendering,
                billing,
                f[9] if len(f) > 9 else "",
            ),
        )
        for f in [text.split("\t") for text in lines.split("\n")]
    ]


# ---- what a claim sees of the history ----------------------------------------------------

THROUGH, BEFORE, OTHERS = 0, 1, 2


# A recorded claim as phase 2 reads it: first and last date of service, claim id,
# received date, rendering and billing NPI, packed lines, the claim it replaces, and the
# member key it is recorded under.
ClaimRow = tuple[str, str, str, str, Any, Any, str, Any, str]


class MemberHistory:
    """A member's recorded claims (other claims and, in a run, this run's) with lines in
    the dates loaded. A claim's lines are unpacked when a count first needs them, once
    for all the counters and all the claims of the member that the run checks while the
    member is cached: a count over one date of service (`per day`) unpacks only the
    claims with a line that day, other than the claim asking; a count over a longer
    window unpacks them all and keeps each counter's lines in counting order."""

    __slots__ = ("_counted", "_replacing", "_unpacked", "rows")

    def __init__(self, rows: list[ClaimRow]) -> None:
        self.rows = rows
        self._unpacked: list[list[Entry] | None] = [None] * len(rows)
        self._counted: dict[int, dict[Any, list[Entry]]] = {}
        self._replacing: dict[str, set[str]] | None = None

    def _lines(self, i: int) -> list[Entry]:
        found = self._unpacked[i]
        if found is None:
            row = self.rows[i]
            found = self._unpacked[i] = unpack_lines(row[2], row[3], row[4], row[5], row[6])
        return found

    def counted(self, counter: Counter, matches: Any = None) -> dict[Any, list[Entry]]:
        """The loaded lines `counter` counts, in counting order, grouped by what the
        counter keeps apart (`by`; one group, None, when it keeps nothing apart)."""
        found = self._counted.get(counter.index)
        if found is None:
            matches = matches or counter.matches
            lines = [e for i in range(len(self.rows)) for e in self._lines(i) if matches(e)]
            found = self._counted[counter.index] = _grouped(counter, lines)
        return found

    def on_day(
        self, counter: Counter, dos: str, excluded: frozenset[str], matches: Any = None
    ) -> dict[Any, list[Entry]]:
        """The lines `counter` counts with date of service `dos`, of claims other than
        `excluded`, grouped as `counted` groups them. Only the claims with a line on that
        date are unpacked (most claims have none: the claim being checked, recorded
        under its id, is one of the excluded)."""
        matches = matches or counter.matches
        lines = [
            e
            for i, row in enumerate(self.rows)
            if row[0] <= dos <= row[1] and row[2] not in excluded and dos in row[6]
            for e in self._lines(i)
            if e.dos == dos and matches(e)
        ]
        return _grouped(counter, lines) if lines else {}

    def replacing(self, claim_id: str) -> set[str]:
        """The claims that replace `claim_id`: never counted against it."""
        if self._replacing is None:
            self._replacing = {}
            for row in self.rows:
                if row[7] is not None:
                    self._replacing.setdefault(row[7], set()).add(row[2])
        return self._replacing.get(claim_id) or set()


def _grouped(counter: Counter, lines: list[Entry]) -> dict[Any, list[Entry]]:
    lines.sort()  # entries compare as their places in the counting order
    keys = counter.keys
    if not keys:
        return {None: lines} if lines else {}
    groups: dict[Any, list[Entry]] = {}
    for e in lines:
        groups.setdefault(_entry_key_values(keys, e), []).append(e)
    return groups


_NO_MEMBER = MemberHistory([])
# A count of each measure when nothing is counted.
_NOTHING: dict[str, Any] = {
    "visits": 0,
    "lines": 0,
    "units": 0,
    "charges": Decimal(0),
    "sum": Decimal(0),
}


class ClaimHistory:
    """The history one claim is checked against: the member's lines of other claims
    and the claim's own lines, each counted when it stands before the line asking.

    A counter's values for the claim are computed when a rule first reads the counter:
    for every line it counts, at once (a rule reads a counter on each line, and several
    rules read the same counter)."""

    # It holds no reference to the claim (which holds it): no reference cycle, so a
    # claim and its history are freed as soon as the claim is done with, not by the
    # garbage collector.
    __slots__ = ("_values", "excluded", "member", "shown")

    def __init__(
        self,
        claim: Claim,
        member: MemberHistory | None = None,
        excluded: frozenset[str] = frozenset(),
    ) -> None:
        self.member = member or _NO_MEMBER
        # Lines of these claims are this claim's own (recorded under its id) or of the
        # claim it replaces: never counted as another claim's.
        self.excluded = excluded or frozenset({claim.claim_id})
        # counter index -> id(line) -> (THROUGH, BEFORE, OTHERS)
        self._values: dict[int, dict[int, tuple[Any, Any, Any]]] = {}
        # `explain` (`recording`): (counter index, id(line)) -> the other claims' lines and
        # this claim's earlier lines each count counted; None: not kept (the hot path).
        self.shown: dict[tuple[int, int], tuple[list[Entry], list[ServiceLine]]] | None = None

    def recording(self) -> None:
        """Count again from here on, keeping what each count counted (`shown`): for
        `cleanclaim explain`, which lists the earlier services a rule counted."""
        self._values = {}
        self.shown = {}

    def total(self, claim: Claim, counter: Counter, line: ServiceLine, mode: int) -> Any:
        """What `counter` counts up to `line` of `claim` (the claim this history is
        of): THROUGH it, BEFORE it, or on OTHERS claims only; None when the counter does
        not count the line."""
        values = self._values.get(counter.index)
        if values is None:
            values = self._values[counter.index] = self._count(claim, counter)
        found = values.get(id(line))
        return None if found is None else found[mode]

    def _count(self, claim: Claim, counter: Counter) -> dict[int, tuple[Any, Any, Any]]:
        person = claim.member
        # (a counter whose condition reads the member filters by this claim's member, the
        # member whose history it is: dsl/history.py `Counter.matcher`)
        matches = counter.matcher(person)
        # The lines the counter counts, in counting order: (date, place in the claim).
        counted = sorted(
            (line.service_date, j, line) for j, line in enumerate(claim.lines) if matches(line)
        )
        if not counted:
            return {}
        keys = counter.keys
        member = self.member if self.member.rows else None
        received, claim_id = claim.received_date.isoformat(), claim.claim_id
        excluded = self.excluded
        per_day = counter.window.kind == "day"
        measure = counter.measure
        days: dict[str, dict[Any, list[Entry]]] = {}  # per day: the other claims' lines
        own_before: dict[Any, list[ServiceLine]] = {}  # per key: this claim's lines so far
        values: dict[int, tuple[Any, Any, Any]] = {}
        # `per authorization` (dsl/history.py `Counter.span_for`): each line's own window,
        # from its authorization's start, over the codes (and provider) it authorizes.
        by_authorization = counter.window.kind == "authorization"
        rendering = claim.rendering_provider.npi
        for day, idx, line in counted:
            start = day if per_day else counter.window_start(day)
            want = _key_values(keys, claim, line) if keys else None
            accept: Any = None
            if by_authorization:
                span = counter.span_for(claim, line)
                if span is None:  # no authorization covers the line: not counted
                    own_before.setdefault(want, []).append(line)
                    continue
                start, accept = span
            others: list[Entry] = []
            if member is not None:
                dos = day.isoformat()
                here = (dos, received, claim_id, str(idx))
                if per_day:
                    on_day = days.get(dos)
                    if on_day is None:
                        on_day = days[dos] = member.on_day(counter, dos, excluded, matches)
                    group = on_day.get(want)
                    if group is not None:  # entries compare as their places in the order
                        others = group[: bisect.bisect_left(group, here)]
                else:
                    group = member.counted(counter, matches).get(want)
                    if group is not None:
                        first = bisect.bisect_left(group, (start.isoformat(),))
                        others = [
                            e
                            for e in group[first : bisect.bisect_left(group, here, first)]
                            if e.claim_id not in excluded
                            and (accept is None or accept(e.code, e.rendering))
                        ]
            earlier = own_before.get(want)
            if earlier is None:
                own_before[want] = [line]
                own: list[ServiceLine] = []
            else:
                own = [
                    o
                    for o in earlier
                    if o.service_date >= start and (accept is None or accept(o.code, rendering))
                ]
                earlier.append(line)
            values[id(line)] = (
                _sum(counter, person, others, own, line)
                if measure == "sum"
                else _measure(measure, others, own, line)
            )
            if self.shown is not None:
                self.shown[(counter.index, id(line))] = (others, own)
        return values


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


def _measure(
    measure: str, others: list[Entry], own: list[ServiceLine], line: ServiceLine
) -> tuple[Any, Any, Any]:
    """(THROUGH, BEFORE, OTHERS): visits (distinct dates), lines, units (a line without
    units is one) or charges of the other claims' lines, then with the claim's own lines
    before `line`, then with `line` as well."""
    if not others and not own:  # the common case: nothing before this line
        if measure == "visits" or measure == "lines":
            return 1, 0, 0
        if measure == "units":
            return (line.units if line.units is not None else 1), 0, 0
        return (line.charge if line.charge is not None else Decimal(0)), Decimal(0), Decimal(0)
    if measure == "visits":
        days = {e.dos for e in others}
        on_others = len(days)
        days.update(other.service_date.isoformat() for other in own)
        before = len(days)
        days.add(line.service_date.isoformat())
        return len(days), before, on_others
    if measure == "lines":
        return len(others) + len(own) + 1, len(others) + len(own), len(others)
    if measure == "units":
        units: Any = sum(e.units if e.units is not None else 1 for e in others)
        own_units: Any = units + sum(o.units if o.units is not None else 1 for o in own)
        return own_units + (line.units if line.units is not None else 1), own_units, units
    charges = sum((Decimal(e.stored_charge) for e in others if e.stored_charge), Decimal(0))
    own_charges = charges + sum((o.charge for o in own if o.charge is not None), Decimal(0))
    return (
        own_charges + (line.charge if line.charge is not None else Decimal(0)),
        own_charges,
        charges,
    )


def _sum(
    counter: Counter, person: Any, others: list[Entry], own: list[ServiceLine], line: ServiceLine
) -> tuple[Any, Any, Any]:
    """(THROUGH, BEFORE, OTHERS) of a `counts sum(AMOUNT)` counter: the amounts of the
    lines, as `_measure` counts charges (a line whose amount is missing adds nothing)."""
    value = counter.value
    on_others = sum((value(e, person) for e in others), Decimal(0))
    before = on_others + sum((value(o, person) for o in own), Decimal(0))
    return before + value(line, person), before, on_others


# ---- the functions rules call -------------------------------------------------------------


def _view(claim: Claim) -> ClaimHistory:
    view: ClaimHistory | None = getattr(claim, "history", None)
    if view is None:
        view = ClaimHistory(claim)  # outside a run: the claim alone
        claim.history = view
    return view


# Each function is missing when the counter does not count the line. Compiled rules test
# that inline before calling (`inline`, the counter's filter: most lines are counted by
# no counter); the functions answer it as well, for other callers (explain).
_COUNTED = "({call} if {counts} else None)"
# Outside a run (no history for the claim, or only the claim's own view of itself) there
# is no other claim: nothing, no call.
_ON_OTHERS = (
    "(({call} if {claim}.history is not None and {claim}.history.member.rows "
    "else {nothing}[{0}.measure]) if {counts} else None)"
)


def visit_number(claim: Claim, line: ServiceLine | None, counter: Counter) -> int | None:
    """Which visit of the counter's window this line's date of service is."""
    if line is None:
        return None
    return _view(claim).total(claim, counter, line, THROUGH)  # type: ignore[no-any-return]


def total_to_date(claim: Claim, line: ServiceLine | None, counter: Counter) -> Any:
    """The counter's total in the window up to and including this line."""
    if line is None:
        return None
    return _view(claim).total(claim, counter, line, THROUGH)


def total_before(claim: Claim, line: ServiceLine | None, counter: Counter) -> Any:
    """The counter's total in the window before this line."""
    if line is None:
        return None
    return _view(claim).total(claim, counter, line, BEFORE)


def total_on_other_claims(claim: Claim, line: ServiceLine | None, counter: Counter) -> Any:
    """The counter's total in the window on the member's other claims before this line."""
    if line is None:
        return None
    view: ClaimHistory | None = getattr(claim, "history", None)
    if view is None or not view.member.rows:  # the claim alone: no other claims
        return _NOTHING[counter.measure] if counter.matcher(claim.member)(line) else None
    return view.total(claim, counter, line, OTHERS)


_LINE = frozenset({"line"})
HISTORY_FUNCTIONS: tuple[T.FunctionSpec, ...] = (
    T.FunctionSpec(
        "visit_number",
        (counter_of("visits"),),
        T.NUMBER.maybe(),
        visit_number,
        "visit_number(c): which visit of c's window this line's date of service is, counting "
        "the member's visits on earlier claims and on this claim up to this date (missing "
        "when c does not count the line)",
        contextual=True,
        scopes=_LINE,
        inline=_COUNTED,
    ),
    T.FunctionSpec(
        "total_to_date",
        (COUNTER,),
        T.NUMBER.maybe(),
        total_to_date,
        "total_to_date(c): what c counts in its window up to and including this line "
        "(visits, units, lines or charges)",
        contextual=True,
        scopes=_LINE,
        inline=_COUNTED,
    ),
    T.FunctionSpec(
        "total_before",
        (COUNTER,),
        T.NUMBER.maybe(),
        total_before,
        "total_before(c): what c counts in its window before this line",
        contextual=True,
        scopes=_LINE,
        inline=_COUNTED,
    ),
    T.FunctionSpec(
        "total_on_other_claims",
        (COUNTER,),
        T.NUMBER.maybe(),
        total_on_other_claims,
        "total_on_other_claims(c): what c counts in its window on the member's other claims "
        "that stand before this line (e.g. the same service billed already)",
        contextual=True,
        scopes=_LINE,
        inline=_ON_OTHERS,
        consts={"nothing": _NOTHING},
    ),
)


# ---- the run -----------------------------------------------------------------------------

SPOOL_IN_MEMORY = 200_000  # claims kept in memory between the phases; more go to disk
# Claims a write transaction records (~30 MB of facts, about a second of writing): a
# member's page of the store is written once a transaction, however many of its claims.
RECORD_BATCH = 50_000
CACHE_ROWS = 50_000  # recorded claims phase 2 keeps loaded, all members (~2 kB each)
PREFETCH = 200  # claims whose members' histories phase 2 loads at once
PLAN_LIMIT = 200_000  # claims of a run whose reads phase 1 plans (~200 bytes each)
PLAN_MEMBERS = 100_000  # members of a run whose dates phase 1 plans (~300 bytes each)
# Claims `cleanclaim check` decodes once instead of in both passes (~3 kB each).
KEEP_DECODED = 32_768
DECIDE_BATCH = 20_000  # decisions written to the store a transaction


def counts_history(engine: Engine) -> bool:
    """Whether any loaded pack declares a counter (its claims need a two-phase run)."""
    return any(program.counters for program in engine.programs.values())


def _counters(engine: Engine) -> dict[str, tuple[Counter, ...]]:
    return {
        pack_id: program.counters
        for pack_id, program in engine.programs.items()
        if program.counters
    }


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
        # Claims phase 1 did not record, by input position, and why (rejected in phase 2).
        self.refused: dict[int, Refusal] = {}
        self._ids: set[str] = set()  # payer and claim id of every claim of the run

    def add(self, claim: Claim, position: int = -1) -> bool:
        """Record `claim` if its pack counts history (written on `flush` or when the batch
        is full). False when the claim is refused (`refused`): a claim id seen earlier in
        the run, or a failure while reading its facts."""
        seen = f"{claim.payer}\0{claim.claim_id}"
        if seen in self._ids:
            self.refused[position] = DUPLICATE_ID
            return False
        self._ids.add(seen)
        if claim.payer not in self.counters or not claim.member.id or not claim.lines:
            return True
        try:
            facts = claim_facts(
                claim, self.store.member_key(claim.payer, claim.member.id), position
            )
        except Exception as exc:  # bad data the model let through: this claim only
            self.refused[position] = _failure(exc, "recording it")
            return False
        self.batch.append(facts)
        if len(self.batch) >= RECORD_BATCH:
            self.flush()
        return True

    def flush(self) -> None:
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        try:
            self.recorded += self.store.record(batch, self.refused)
        except self.store.FATAL:
            raise  # the store itself (locked, disk full): the run cannot go on
        except Exception:
            for facts in batch:  # one at a time: only the claim that fails is refused
                try:
                    self.recorded += self.store.record([facts], self.refused)
                except self.store.FATAL:
                    raise
                except Exception as exc:
                    self.refused[facts.position] = _failure(exc, "recording it")


def _failure(exc: Exception, doing: str) -> Refusal:
    return Refusal(
        "engine/internal-error",
        "claim",
        f"the claim could not be checked ({type(exc).__name__} while {doing}); "
        "check it again or have a person review it",
    )


DUPLICATE_ID = Refusal(
    "engine/duplicate-claim-id",
    "claim_id",
    "this claim id came earlier in the same run: the first claim with an id is checked, "
    "a later one is rejected (give each claim its own id)",
)


def refusal_decision(claim_id: str | None, refusal: Refusal, position: int | None) -> Decision:
    """The reject of a claim phase 1 refused."""
    from cleanclaim.engine.decision import Finding

    message = (
        refusal.message
        if refusal.rule == "engine/internal-error"
        else f"{refusal.where}: {refusal.message}"
    )
    finding = Finding(
        refusal.rule,
        "submission",
        "reject",
        None,
        "CO",
        "16",
        ["MA130"],
        "submission",
        "billing",
        message,
        None,
        None,
    )
    return Decision(claim_id, "reject", [finding], {}, position)


class BatchIds:
    """Claim ids of one batch checked without a history run: the first claim with an id
    is the claim, a later one is rejected (`engine/duplicate-claim-id`)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def screen(self, decision: Decision, _item: Any = None) -> Decision:
        packs = decision.policy.get("packs") if decision.policy else None
        if not packs or decision.claim_id is None:
            return decision  # never read (or no pack): it takes no id
        seen = f"{next(iter(packs))}\0{decision.claim_id}"
        if seen not in self._seen:
            self._seen.add(seen)
            return decision
        return refusal_decision(decision.claim_id, DUPLICATE_ID, decision.position)


def _decode(engine: Engine, item: Any) -> Claim | None:
    if isinstance(item, Claim):
        return item
    if hasattr(item, "to_raw"):  # an NDJSON line of engine/batch.py, not parsed yet
        fast = decode_json(item.text, engine.today)  # engine/decoding.py
        if fast is not None:
            return fast
        item = item.to_raw()
    if isinstance(item, RawClaim):
        data: Any = item.data if not item.problems else None
    elif isinstance(item, (bytes, str)):
        try:
            data = loads(item)
        except ValueError:
            return None
    else:
        data = item
    if not isinstance(data, Mapping):
        return None
    claim, _problems = decode_claim(dict(data), engine.today)
    return claim


# What a claim's counts read: the member key, and the first and last date of service.
_Need = tuple[str, str, str]


class HistoryReader:
    """Phase 2: what a claim is checked against. `prepare(claim)` gives a claim without
    coverage the member's roster coverage and attaches the member's recorded lines
    (`claim.history`); the engine calls it for every claim it reads (`Engine.history`).

    A claim none of whose lines a counter counts reads nothing. Members' histories are
    cached for the run (the store does not change in phase 2), up to CACHE_ROWS recorded
    claims. When phase 1 ran in this process, it planned phase 2's reads (`plan_claim`):
    each member is then loaded with the dates all the run's claims of the member look
    at - once, while it stays cached - many members a statement, ahead of the claims
    that need them."""

    def __init__(self, engine: Engine, store: HistoryStore) -> None:
        self.store = store
        self.counters = _counters(engine)
        self.roster = store.has_roster()
        self.therapy_ytd = store.has_therapy_ytd()
        # member key -> (first date loaded, last date loaded, the claims), least recently
        # used first; at most CACHE_ROWS recorded claims in all.
        self._members: OrderedDict[str, tuple[str, str, MemberHistory]] = OrderedDict()
        self._cached_rows = 0
        # From phase 1: member key -> [first, last] dates the run's claims of the member
        # look at; and the member of each claim that counts, in input order.
        self.spans: dict[str, list[str]] = {}
        self.plan: list[_Need] = []
        self._plan_positions: list[int] = []  # the input position of each planned claim
        self._planned = 0
        self._dropped = False  # whether the cache has had to drop a member
        # From phase 1 of `cleanclaim check`: decoded claims by input position, so that
        # phase 2 does not decode them again (`take`).
        self.kept: dict[int, tuple[Claim, _Need | None]] = {}
        # Claims phase 1 refused, by input position (`refusal`).
        self.refused: dict[int, Refusal] = {}
        # Decisions `settle` reached, by input position (`decision`).
        self.settled: SettledDecisions | None = None

    def refusal(self, position: int, claim_id: str | None) -> Decision | None:
        """The reject of the claim at `position` when phase 1 refused it."""
        if not self.refused:
            return None
        found = self.refused.get(position)
        return None if found is None else refusal_decision(claim_id, found, position)

    def plan_claim(self, claim: Claim, position: int = -1) -> _Need | None:
        """Phase 1 saw `claim` (at `position` of the input): phase 2 will check it, in
        this order. Returns what the claim's counts look at (`_prepare` takes it, so as
        not to work it out again)."""
        need = self._need(claim)
        if need is None:
            return None
        key, first, last = need
        if len(self.plan) < PLAN_LIMIT:
            self.plan.append(need)
            self._plan_positions.append(position)
        span = self.spans.get(key)
        if span is not None:
            if first < span[0]:
                span[0] = first
            if last > span[1]:
                span[1] = last
        elif len(self.spans) < PLAN_MEMBERS:
            self.spans[key] = [first, last]
        return need

    def use_settled(self, settled: SettledDecisions) -> None:
        """Phase 2 takes `settled`'s decisions (`decision`): the claims they decide read
        nothing, so they leave the read plan (phase 2 would load their members in vain)."""
        self.settled = settled
        if not settled or not self.plan:
            return
        # (refused claims read nothing either; a member's span may stay wider than its
        # remaining claims need: a wider read, never a wrong one)
        kept = [
            (need, at)
            for need, at in zip(self.plan, self._plan_positions, strict=True)
            if at not in settled and at not in self.refused
        ]
        self.plan = [need for need, _ in kept]
        self._plan_positions = [at for _, at in kept]

    def decision(self, position: int) -> Decision | None:
        """The decision `settle` reached for the claim at `position` of the input (once),
        if it reached one; phase 2 then neither decodes nor evaluates the claim."""
        if self.settled is None or not self.settled:
            return None
        found = self.settled.take(position)
        if found is None:
            return None
        self.kept.pop(position, None)
        return found[0]

    def keep(self, position: int, claim: Claim, need: _Need | None) -> None:
        """Keep the claim at `position` of the input, as phase 1 decoded it, for phase 2."""
        self.kept[position] = (claim, need)

    def take(self, position: int) -> Claim | None:
        """The claim at `position` of the input as phase 1 decoded it (if it was kept),
        prepared as `prepare` does."""
        if not self.kept:
            return None
        kept = self.kept.pop(position, None)
        if kept is None:
            return None
        self._prepare(*kept)
        return kept[0]

    def prepare(self, claim: Claim) -> None:
        self._prepare(claim, self._need(claim))

    def _prepare(self, claim: Claim, need: _Need | None) -> None:
        member_id = claim.member.id
        if not member_id:
            return
        if self.roster and not claim.member.coverage_given:
            from cleanclaim.engine.roster import roster_coverage

            # With a roster loaded, its spans are the eligibility data, even none.
            claim.set_coverage(roster_coverage(self.store, member_id))
        if self.therapy_ytd and claim.member.therapy_ytd is None:
            from cleanclaim.engine.roster import roster_therapy_ytd

            claim.member.therapy_ytd = roster_therapy_ytd(self.store, member_id)
        if need is None:
            claim.history = None  # no line is counted: nothing to read
            return
        key, first, last = need
        if self.plan:
            self._follow_plan(key)
        member = self._member(key, first, last)
        # Never counted against this claim: its own lines (recorded under its id), the
        # claim it replaces, and a claim that replaces it.
        excluded = {claim.claim_id, *member.replacing(claim.claim_id)}
        if claim.replaces:
            excluded.add(claim.replaces)
        claim.history = ClaimHistory(claim, member, frozenset(excluded))

    def _follow_plan(self, key: str) -> None:
        """Phase 2 has come to the next claim of the plan: when its member is not loaded,
        load the members of the next PREFETCH planned claims at once - with the dates all
        the run's claims of each member look at, until the cache has had to drop a
        member (it cannot hold the run's members); from then on with the dates those
        PREFETCH claims look at."""
        position = self._planned
        self._planned += 1
        if key in self._members:
            return
        needs: dict[str, list[str]] = {}
        for k, first, last in self.plan[position : position + PREFETCH]:
            if k in self._members:
                continue
            span = needs.get(k)
            if span is None:
                whole = None if self._dropped else self.spans.get(k)
                needs[k] = list(whole) if whole is not None else [first, last]
            elif self._dropped:
                span[0], span[1] = min(span[0], first), max(span[1], last)
        for k, rows in self.store.members_rows(needs).items():
            self._remember(k, needs[k][0], needs[k][1], MemberHistory(rows))

    def _need(self, claim: Claim) -> _Need | None:
        """The member key and dates of service the claim's counts look at, if any: only
        counters that count a line of the claim look back, and only as far as their
        windows reach."""
        counters = self.counters.get(claim.payer)
        lines = claim.lines
        if counters is None or not lines or not claim.member.id:
            return None
        earliest: dt.date | None = None
        for counter in counters:
            matches = counter.matcher(claim.member)
            for line in lines:
                if matches(line):
                    start = counter.window_start(claim.first_service_date)
                    if earliest is None or start < earliest:
                        earliest = start
                    break
        if earliest is None:
            return None
        last = max(line.service_date for line in lines) if len(lines) > 1 else lines[0].service_date
        return (
            self.store.member_key(claim.payer, claim.member.id),
            earliest.isoformat(),
            last.isoformat(),
        )

    def _member(self, key: str, first: str, last: str) -> MemberHistory:
        cached = self._members.get(key)
        if cached is not None:
            if cached[0] <= first and last <= cached[1]:
                self._members.move_to_end(key)
                return cached[2]
            first, last = min(first, cached[0]), max(last, cached[1])
        span = None if self._dropped else self.spans.get(key)
        if span is not None:  # what the run's other claims of the member will want
            first, last = min(first, span[0]), max(last, span[1])
        return self._remember(
            key, first, last, MemberHistory(self.store.member_rows(key, first, last))
        )

    def forget(self, key: str) -> None:
        """The member's recorded claims have changed (`settle`): read them again."""
        old = self._members.pop(key, None)
        if old is not None:
            self._cached_rows -= len(old[2].rows)

    def _remember(self, key: str, first: str, last: str, member: MemberHistory) -> MemberHistory:
        old = self._members.pop(key, None)
        if old is not None:
            self._cached_rows -= len(old[2].rows)
        self._members[key] = (first, last, member)
        self._cached_rows += len(member.rows)
        while self._cached_rows > CACHE_ROWS and len(self._members) > 1:
            _key, (_first, _last, dropped) = self._members.popitem(last=False)
            self._cached_rows -= len(dropped.rows)
            # The run's members do not all fit: loading a member with the dates of all
            # its claims would read, for each claim, what later ones want, in vain.
            self._dropped = True
        return member


SETTLE_ROUNDS = 32  # rounds of deciding a member's claims of a run, at most
# Claims `settle` keeps as they are (~3 kB each; phase 2 holds many of them anyway); more
# are kept in a temporary file.
CHAINS_IN_MEMORY = 20_000


class _Chains:
    """Phase 1's claims that count or are counted, by member, for `settle`: kept in a
    temporary file (a run of millions of claims must not hold them all), with each
    member's offsets in it."""

    def __init__(self, recorder: HistoryRecorder) -> None:
        self.recorder = recorder
        self.file: IO[bytes] | None = None
        # key -> [(position, offset in the file, or the claim itself while few are kept)]
        self.members: dict[str, list[tuple[int, int | Claim]]] = {}
        self.in_memory = 0

    def add(self, need: _Need | None, position: int, claim: Claim) -> None:
        """A claim phase 1 recorded (`need`: what its counts read). A replacement or void
        is kept even when no line of it is counted: its decision decides whether what it
        names counts for the run's other claims."""
        if need is not None:
            key = need[0]
        elif (
            claim.frequency in ("replacement", "void")
            and claim.member.id
            and claim.lines
            and claim.payer in self.recorder.counters
        ):
            key = self.recorder.store.member_key(claim.payer, claim.member.id)
        else:
            return
        if self.in_memory < CHAINS_IN_MEMORY:  # the claim itself (phase 2 keeps it too)
            self.in_memory += 1
            self.members.setdefault(key, []).append((position, claim))
            return
        if self.file is None:
            # Lives as long as the chains: closed by `claims`.
            self.file = tempfile.TemporaryFile(prefix="cleanclaim-chains-")  # noqa: SIM115
        self.members.setdefault(key, []).append((position, self.file.tell()))
        pickle.dump(claim, self.file, protocol=pickle.HIGHEST_PROTOCOL)

    def claims(self, refused: Mapping[int, Refusal]) -> Iterator[list[tuple[int, Claim]]]:
        """The recorded claims of each member with more than one, read back, with their
        input positions."""
        file, self.file = self.file, None
        try:
            for entries in self.members.values():
                kept = [(position, where) for position, where in entries if position not in refused]
                if len(kept) < 2:
                    continue
                chain = []
                for position, where in kept:
                    if isinstance(where, Claim):
                        chain.append((position, where))
                        continue
                    assert file is not None
                    file.seek(where)
                    chain.append((position, pickle.load(file)))  # our own temporary file
                yield chain
        finally:
            if file is not None:
                file.close()
            self.members = {}
            self.in_memory = 0


def _effect(outcome: Outcome | None) -> frozenset[str] | None:
    """Which lines of a decided claim do not count (None: none of them counts)."""
    if outcome is None:
        return frozenset()
    return None if outcome[2] == "reject" else outcome[3]


SETTLED_IN_MEMORY = 20_000  # settled decisions kept as objects; more go to a temporary file


class SettledDecisions:
    """The decisions `settle` reached, by input position, until phase 2 takes them: in
    memory, then (a run of millions of claims must not hold them all) pickled in a
    temporary file. Each is taken once (`take`)."""

    def __init__(self) -> None:
        # position -> (the decision, or its offset in the file; whether the claim's
        # counts read history, so that phase 2's read plan stays in step)
        self._at: dict[int, tuple[Decision | int, bool]] = {}
        self._file: IO[bytes] | None = None
        self._in_memory = 0

    def __len__(self) -> int:
        return len(self._at)

    def __contains__(self, position: int) -> bool:
        return position in self._at

    def add(self, position: int, decision: Decision, reads_history: bool) -> None:
        decision.position = position
        if self._in_memory < SETTLED_IN_MEMORY:
            self._in_memory += 1
            self._at[position] = (decision, reads_history)
            return
        if self._file is None:
            # Lives as long as this object: closed by `close`.
            self._file = tempfile.TemporaryFile(prefix="cleanclaim-settled-")  # noqa: SIM115
        self._file.seek(0, os.SEEK_END)
        self._at[position] = (self._file.tell(), reads_history)
        pickle.dump(decision, self._file, protocol=pickle.HIGHEST_PROTOCOL)

    def take(self, position: int) -> tuple[Decision, bool] | None:
        """The settled decision of the claim at `position` (once), and whether the claim
        reads history; None when `settle` did not decide it."""
        found = self._at.pop(position, None)
        if found is None:
            return None
        where, reads_history = found
        if isinstance(where, Decision):
            return where, reads_history
        assert self._file is not None
        self._file.seek(where)
        return pickle.load(self._file), reads_history  # our own temporary file

    def close(self) -> None:
        self._at = {}
        if self._file is not None:
            self._file.close()
            self._file = None


class SettleStats(NamedTuple):
    """What `settle` did: members settled, claims decided (over all rounds), the rounds
    of the longest chain, rounds in all, members that did not settle, and CPU seconds."""

    members: int = 0
    evaluations: int = 0
    most_rounds: int = 0
    rounds: int = 0
    unsettled: int = 0
    seconds: float = 0.0


def settle(
    engine: Engine,
    store: HistoryStore,
    chains: _Chains,
    refused: Mapping[int, Refusal],
    keep: SettledDecisions | None = None,
) -> SettleStats:
    """Between the phases: the run's claims count against each other with their
    decisions in the run (docs/history.md, "What counts"). A member's claims of the run
    are decided against the store, their lines that do not count (a rejected claim, a
    denied line) are taken out of the store for the run (`HistoryStore.settle`), and
    they are decided again, until no claim's counted lines change. A claim counts only
    claims before it in the counting order, so each round settles at least the next
    claim of the chain; the outcome does not depend on the input order.

    keep: gets the decisions of the round that changed nothing, by input position: they
    are the decisions phase 2 would make (the store does not change after that round for
    the member: a replacement or void only ever names a claim of its own member), so
    phase 2 takes them instead of evaluating the claims again (`HistoryReader.decision`).
    """
    import time

    started = time.process_time()
    reader = HistoryReader(engine, store)
    most = members = evaluations = total = unsettled = 0
    for chain in chains.claims(refused):
        members += 1
        effects: dict[str, frozenset[str] | None] = {c.claim_id: frozenset() for _, c in chain}
        key = ""
        # The member is read once a round, with the dates all its claims look at (not
        # again for each claim whose window reaches further).
        reader.spans = {}
        needs: list[bool] = []
        for _position, claim in chain:
            need = reader._need(claim)
            needs.append(need is not None)
            if need is not None:
                span = reader.spans.setdefault(need[0], [need[1], need[2]])
                span[0], span[1] = min(span[0], need[1]), max(span[1], need[2])
        for rounds in range(1, SETTLE_ROUNDS + 1):
            changed: list[Outcome] = []
            decisions: list[Decision] = []
            for _position, claim in chain:
                try:
                    reader.prepare(claim)
                    decision = engine.evaluate(claim)
                except Exception as exc:  # an engine bug: a reject, as in phase 2
                    decision = _internal_error(claim, exc)
                decisions.append(decision)
                outcome = outcome_of(decision, claim.payer)
                effect = _effect(outcome)
                if effect != effects[claim.claim_id]:
                    effects[claim.claim_id] = effect
                    if outcome is not None:
                        changed.append(outcome)
                if claim.member.id:
                    key = store.member_key(claim.payer, claim.member.id)
                claim.history = None
            evaluations += len(chain)
            most = max(most, rounds)
            total += 1
            if not changed:
                if keep is not None:
                    for (position, _claim), decision, needed in zip(
                        chain, decisions, needs, strict=True
                    ):
                        keep.add(position, decision, needed)
                break
            store.settle(changed)
            reader.forget(key)
        else:
            unsettled += 1
            log.warning("a member's claims of the run did not settle in %d rounds", SETTLE_ROUNDS)
        reader.forget(key)  # done with the member: the cache holds one member at a time
    stats = SettleStats(members, evaluations, most, total, unsettled, time.process_time() - started)
    if members:
        log.info(
            "settled %d member(s): %d claim decisions in %d round(s), at most %d "
            "for a member, %.2f s",
            members,
            evaluations,
            total,
            most,
            stats.seconds,
        )
    return stats


class HistoryRun:
    """`Engine.check_many` with claim history: both phases over one iterable, the claims
    kept between them (in memory, then in a temporary file)."""

    def __init__(
        self,
        engine: Engine,
        store: HistoryStore | None = None,
        observe: Callable[[Claim, Decision, int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.store = store if store is not None else HistoryStore.memory()
        self._own_store = store is None
        # Called with each claim phase 2 has just evaluated (its decision, its place in
        # the input), its history still in place: `cleanclaim explain` traces it there.
        self.observe = observe
        self.settled = SettleStats()  # what phase 1's `settle` did

    def check_many(self, items: Iterable[Any]) -> Iterator[Decision]:
        """Decisions for `items` (dicts, JSON text, `Claim`s or `RawClaim`s), in input
        order: every claim is recorded first, then each is evaluated, and the decisions
        are written to the store (`HistoryStore.decide`). One claim that fails anywhere is
        that claim's reject; the others go on. A store on disk is held for the run
        (`HistoryStore.run_lock`): concurrent runs take turns."""
        collector = _QuietCollector()
        lock = self.store.run_lock()
        try:
            lock.__enter__()
            self.store.begin_run()
            spool = _Spool()
            recorder = HistoryRecorder(self.engine, self.store)
            chains = _Chains(recorder)
            reader = HistoryReader(self.engine, self.store)
            with collector:
                for position, item in enumerate(items):
                    need = None
                    try:
                        thing, at = self._read(position, item)
                        if isinstance(thing, Claim) and recorder.add(thing, at):
                            need = reader.plan_claim(thing)
                            chains.add(need, at, thing)
                    except Exception as exc:  # this claim only: the run goes on
                        thing, at = _internal_error_at(position, item, exc, "reading it"), position
                    spool.add((thing, at, need))
                recorder.flush()
            if recorder.recorded:
                log.info("recorded %d claim(s) in %s", recorder.recorded, self.store.label)
            refused = recorder.refused
            self.settled = settle(self.engine, self.store, chains, refused)
            # A store of the run's own dies with it: nothing to write. A store that outlives
            # the run (in memory too: policy cases' history) keeps the decisions.
            decided = _Decided(self.store, not self._own_store)
            for thing, at, need in spool:
                if isinstance(thing, Decision):
                    yield thing
                    continue
                refusal = refused.get(at)
                if refusal is not None:
                    yield refusal_decision(thing.claim_id, refusal, at)
                    continue
                try:
                    reader._prepare(thing, need)
                    decision = self.engine.evaluate(thing)
                    if self.observe is not None:
                        self.observe(thing, decision, at)
                except Exception as exc:  # an engine bug: reject the claim, go on
                    decision = _internal_error(thing, exc)
                decision.position = at
                decided.add(decision, thing.payer)
                yield decision
            decided.flush()
            self.store.end_run()
        finally:
            lock.release()
            collector.release()
            if self._own_store:
                self.store.close()

    def _read(self, position: int, item: Any) -> tuple[Claim | Decision, int]:
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
                data = loads(item)
            except ValueError:
                decision = engine.check(item)  # the engine's own unreadable-JSON decision
                decision.position = position
                return decision, position
            raw = RawClaim(position, data)
        elif isinstance(item, Mapping):
            raw = RawClaim(position, dict(item))
        else:  # None, a list, a number: the engine's own reject of what is no claim
            decision = engine.check(item)
            decision.position = position
            return decision, position
        if raw.data is None or raw.problems:
            return engine.unreadable(raw), raw.position
        claim, problems = decode_claim(raw.data, engine.today)
        if claim is None:
            claim_id = raw.data.get("claim_id") if isinstance(raw.data, dict) else None
            decision = engine.unreadable(
                RawClaim(raw.position, None, tuple(problems), readable_id(claim_id))
            )
            decision.position = raw.position
            return decision, raw.position
        return claim, raw.position


def put_on_file(engine: Engine, store: HistoryStore, items: Iterable[Any]) -> int:
    """Record claims as on file with the payer, as given (paid: every line counts),
    without checking them: the `history` of a policy case, which states what the payer
    has on file. Returns how many were recorded."""
    store.begin_run()
    recorder = HistoryRecorder(engine, store)
    outcomes: list[Outcome] = []
    for position, item in enumerate(items):
        claim = _decode(engine, item)
        if claim is not None and recorder.add(claim, position):
            outcomes.append((claim.payer, claim.claim_id, "clean", frozenset()))
    recorder.flush()
    store.decide(outcomes)
    store.end_run()
    return recorder.recorded


class _QuietCollector:
    """Python's cyclic garbage collector kept out of the way of a run's phases.

    Phase 1 keeps the claims it reads for phase 2 and makes no reference cycles (a test
    checks it): the collector would find nothing in them, yet each of its passes walks
    every claim kept so far, and on a batch of 20,000 claims those passes cost more than
    recording the claims. So the collector is paused during phase 1 (as `timeit` pauses
    it: memory is still freed by reference counting), and what is alive at its end - the
    kept claims above all - is frozen (`gc.freeze`) until the run ends (`release`), out of
    the collector's passes in phase 2; unless something else has frozen objects, which
    are then left as they are."""

    def __init__(self) -> None:
        self.frozen = False
        self._enabled = False

    def __enter__(self) -> _QuietCollector:
        self._enabled = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None and not gc.get_freeze_count():
            gc.freeze()
            self.frozen = True
        if self._enabled:
            gc.enable()

    def release(self) -> None:
        """The end of the run: the objects frozen at the end of phase 1 thaw."""
        if self.frozen:
            gc.unfreeze()
            self.frozen = False


class _Decided:
    """Decisions of a run on its way to the store, written in batches (unless `keep` is
    false: a store that lives for one run only)."""

    def __init__(self, store: HistoryStore, keep: bool = True) -> None:
        self.store = store
        self.on_disk = keep
        self.batch: list[Outcome] = []

    def add(self, decision: Decision, payer: str | None = None) -> None:
        if not self.on_disk:
            return
        outcome = outcome_of(decision, payer)
        if outcome is not None:
            self.batch.append(outcome)
            if len(self.batch) >= DECIDE_BATCH:
                self.flush()

    def add_outcome(self, outcome: Outcome | None) -> None:
        if self.on_disk and outcome is not None:
            self.batch.append(outcome)
            if len(self.batch) >= DECIDE_BATCH:
                self.flush()

    def flush(self) -> None:
        if self.batch:
            self.store.decide(self.batch)
            self.batch = []


def _internal_error_at(position: int, item: Any, exc: Exception, doing: str) -> Decision:
    """The reject of an input item phase 1 could not read at all."""
    claim_id = (
        readable_id(item.get("claim_id"))
        if isinstance(item, Mapping)
        else readable_id(getattr(item, "claim_id", None))
    )
    return refusal_decision(claim_id, _failure(exc, doing), position)


def _internal_error(claim: Claim, exc: Exception) -> Decision:
    """The decision of a claim the run could not check (as engine/batch.py's)."""
    from cleanclaim.engine.decision import Finding

    finding = Finding(
        "engine/internal-error",
        "submission",
        "reject",
        None,
        "CO",
        "16",
        [],
        "submission",
        "billing",
        f"the claim could not be checked ({type(exc).__name__} while checking "
        "it against its history); check it again or have a person review it",
        None,
        None,
    )
    return Decision(claim.claim_id, "reject", [finding], {})


# A claim (or the decision rejecting it), its position, and what its counts read.
_SpoolEntry = tuple[Claim | Decision, int, _Need | None]


class _Spool:
    """Phase 1's claims, kept for phase 2 in input order: in memory, then on disk."""

    def __init__(self) -> None:
        self.memory: list[_SpoolEntry] = []
        self.file: IO[bytes] | None = None
        self.spilled = 0

    def add(self, entry: _SpoolEntry) -> None:
        if len(self.memory) < SPOOL_IN_MEMORY and self.file is None:
            self.memory.append(entry)
            return
        if self.file is None:
            # Lives as long as the spool: closed when phase 2 has read it back.
            self.file = tempfile.TemporaryFile(prefix="cleanclaim-run-")  # noqa: SIM115
        pickle.dump(entry, self.file, protocol=pickle.HIGHEST_PROTOCOL)
        self.spilled += 1

    def __iter__(self) -> Iterator[_SpoolEntry]:
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
    once in the worker for phase 2 as the parent's run `run` (only the parent writes);
    `refused` are the claims phase 1 refused, by position."""

    inner: Any
    store_path: str
    run: str = ""
    refused: tuple[tuple[int, Refusal], ...] = ()

    def build(self) -> Engine:
        engine: Engine = self.inner.build()
        reader = HistoryReader(engine, open_store(self.store_path, self.run or None))
        reader.refused = dict(self.refused)
        engine.history = reader
        return engine


class HistoryBatch:
    """Claim history for `cleanclaim check`: the store (`--state`, or a temporary one for
    a self-contained run), phase 1 over a first pass of the input (`record`); then the
    engine - and the workers, built by `builder` - read the store in the second pass
    (only this process writes), and the decisions go to the store (`decide`). A store at
    `--state` is held for the run (`HistoryStore.run_lock`, from `record` to `close`).
    Two passes over the input keep memory flat whatever its size; each claim is decoded
    once in each."""

    def __init__(
        self, engine: Engine, state: Path | str | None, workers: int = 1, run: str | None = None
    ) -> None:
        self.engine = engine
        self.workers = workers
        # `run`: a run another process holds (`cleanclaim.spark`'s driver: it takes the
        # run lock, begins and ends the run); this batch records and decides as part of
        # it, for members no other part of the run has (the caller's to ensure).
        self._joined = run is not None
        self._collector = _QuietCollector()
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
        self.store = open_store(path, run)
        self.refused: dict[int, Refusal] = {}
        self.settled = SettleStats()  # what phase 1's `settle` did
        self._lock = RunLock(None) if self._joined else self.store.run_lock()
        self._decided = _Decided(self.store) if state is not None else None
        self._settled_decisions: SettledDecisions | None = None

    def record(self, items: Iterable[Any]) -> int:
        """Phase 1: record every readable claim of `items`; returns how many. Also plans
        phase 2's reads, and keeps the first KEEP_DECODED claims decoded for phase 2 when
        this process checks them (one worker). A claim that fails here is refused (its
        reject comes in phase 2); the others go on."""
        self._lock.__enter__()
        if not self._joined:
            self.store.begin_run()
        recorder = HistoryRecorder(self.engine, self.store)
        reader = HistoryReader(self.engine, self.store)
        keep = KEEP_DECODED if self.workers == 1 else 0
        chains = _Chains(recorder)
        with self._collector:
            for item in items:
                position = getattr(item, "position", -1)
                try:
                    claim = _decode(self.engine, item)
                    if claim is None or not recorder.add(claim, position):
                        continue
                    need = reader.plan_claim(claim, position)
                    chains.add(need, position, claim)
                except Exception as exc:  # this claim only: phase 2 rejects it
                    recorder.refused[position] = _failure(exc, "reading it")
                    continue
                if keep and isinstance(position, int):
                    reader.keep(position, claim, need)
                    keep -= 1
            recorder.flush()
        if recorder.recorded:
            log.info("recorded %d claim(s) in %s", recorder.recorded, self.store.label)
        # With one worker, phase 2 takes the decisions settle reached (workers, which
        # read the store themselves, decide those claims again).
        settled = self._settled_decisions = SettledDecisions() if self.workers == 1 else None
        self.settled = settle(self.engine, self.store, chains, recorder.refused, settled)
        reader.roster = self.store.has_roster()
        reader.therapy_ytd = self.store.has_therapy_ytd()
        reader.refused = self.refused = recorder.refused
        if settled is not None:
            reader.use_settled(settled)
        self.engine.history = reader
        return recorder.recorded

    def builder(self, inner: Any) -> HistoryEngineBuilder:
        return HistoryEngineBuilder(
            inner, self.store.path, self.store.run, tuple(sorted(self.refused.items()))
        )

    def decide(self, outcome: Outcome | None) -> None:
        """A decision of the run (`outcome_of`), for the store at `--state`."""
        if self._decided is not None:
            self._decided.add_outcome(outcome)

    def close(self) -> None:
        """The end of the run: the decisions written (those the run made), the lock let go."""
        try:
            if self._decided is not None:
                self._decided.flush()
                if not self._joined:
                    self.store.end_run()
        finally:
            self.engine.history = None
            if self._settled_decisions is not None:
                self._settled_decisions.close()
            self._collector.release()
            self._lock.release()
            self.store.close()
            if self._temp is not None:
                for suffix in ("", "-wal", "-shm", ".key", ".lock"):
                    Path(f"{self._temp}{suffix}").unlink(missing_ok=True)


# ---- records for `cleanclaim history` ----------------------------------------------------


def member_report(
    store: HistoryStore, member_id: str, payers: Sequence[str] | None = None
) -> list[dict[str, Any]]:
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
        counted = sum(1 for c in claims if c["lines"])
        lines.append(
            f"member {part['member_key']} (payer {part['payer']}): "
            f"{len(claims)} claim(s), {counted} counted"
        )
        for c in claims:
            state = (
                f"replaced by {c['superseded_by']}"
                if c["superseded_by"]
                else "void"
                if c["frequency"] == "void"
                else "provisional (its run has not decided it)"
                if c["decision"] is None
                else "rejected: not on file"
                if c["decision"] == "reject"
                else f"{c['decision']}, {c['lines']} line(s) counted"
            )
            lines.append(
                f"  {c['claim_id']}  received {c['received'] or '-'}  "
                f"{c['frequency'] or '-'}  {state}"
            )
            for ln in c["service_lines"]:
                mods = ",".join(ln["modifiers"]) or "-"
                lines.append(
                    f"    {ln['service_date']}  line {ln['line']}  {ln['code']}  "
                    f"modifiers {mods}  units {ln['units']}  "
                    f"charge {ln['charge'] or '-'}" + ("" if ln["counted"] else "  (not counted)")
                )
    return "\n".join(lines) + "\n"


__all__ = [
    "DUPLICATE_ID",
    "HISTORY_FUNCTIONS",
    "ClaimFacts",
    "ClaimHistory",
    "HistoryBatch",
    "HistoryEngineBuilder",
    "HistoryReader",
    "HistoryRecorder",
    "HistoryRun",
    "HistoryStore",
    "SettleStats",
    "StoreError",
    "counts_history",
    "is_url",
    "member_report",
    "open_store",
    "put_on_file",
    "render_report",
]

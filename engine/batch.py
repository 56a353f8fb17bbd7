"""Batches of claims of any size: streamed in constant memory, optionally on all cores.

```python
from cleanclaim.engine.batch import InputReader, as_decision, check_batch
from cleanclaim.engine.inputs import InputFileError

reader = InputReader([Path("claims.ndjson")])
claims = (item for item in reader if not isinstance(item, InputFileError))
for decision in check_batch(claims, as_decision, engine=engine, workers=4):
    ...                                   # one decision per claim, in input order
```

**Reading.** `InputReader` yields the claims of the input files in order, exactly as
`reading.iter_inputs` does (same positions, same file errors), except that an NDJSON line
is handed on unparsed (`ClaimLine`): JSON decoding is the costliest step of a check, so it
runs in the workers, and the parent only splits lines. `ClaimLine.to_raw` gives the
`RawClaim` that `iter_inputs` gives for that line (tests/test_batch.py holds them equal).

**One worker** (the default) checks in the calling process, one claim at a time: nothing
is read ahead, nothing is kept.

**N workers.** Each worker is a process (`spawn`: no state is inherited, and the same code
runs on every platform) that builds its own `Engine` once from `EngineOptions` (policy
roots, table overrides and the date taken as today, fixed by the parent so that every
worker decides as the parent would) and then answers tasks: a chunk of `chunk_size`
claims with the ordinal of its first claim. The parent

- reads the input a chunk at a time and gives each idle worker one chunk (a worker holds
  at most one, so a failure is always pinned on the chunk that caused it, and the parent
  never blocks writing to a worker that is busy);
- stops reading while the claims read but not yet written reach `window` (4 chunks per
  worker): memory is bounded however large the input and however slow one chunk is;
- keeps finished chunks in a reorder buffer keyed by ordinal and yields results strictly
  in input order; every claim read yields exactly one result.

**Failures.** A worker that dies (killed, crashed, `os._exit`) or whose chunk raises
outside the per-claim guard loses nothing: its chunk is split into single claims and
checked again by the other workers and a fresh replacement worker. A single claim that
fails `MAX_ATTEMPTS` times on its own gets a reject decision with the rule
`engine/internal-error` instead of being lost. An exception raised while checking one
claim (a bug in the engine) never reaches the loop: `check_item` turns it into the same
internal-error decision, in the parent and in workers alike, so one worker and N workers
give the same bytes. If workers cannot start at all (`MAX_START_FAILURES` in a row), the
remaining claims are checked in the calling process.

**Claim history (issue 3).** Decisions that count earlier claims must not depend on
which worker saw which claim. The rule that keeps one worker and N workers identical:
*history is read-only while claims are evaluated, and only the parent writes it, in input
order.* With the two-phase run that `engine/history.py` is growing (record every claim,
then evaluate each against the recorded history, in a counting order that does not depend
on the input order), that maps onto this module as:
1. *record* in the parent, streaming: read the input once, write each claim's facts to
   the store (SQLite on disk, WAL; a temporary file instead of `:memory:` when there is no
   `--state`, so that workers can open it) - the only writer;
2. *evaluate* on the workers: each opens the store read-only once, next to its `Engine`
   (`EngineOptions` gains the store's path), and answers chunks exactly as here; the
   parent re-reads the input (a second pass over the files, not a spool in memory) to
   make the chunks, and writes results in input order through the reorder buffer.
A crashed chunk is then re-run against the same, unchanged store, so a re-run gives the
same decision. Anything a claim would add to history while it is evaluated must go back
to the parent with its result and be applied in input order, never by a worker.
With one worker, phase 1 keeps the first claims it decoded (`HistoryReader.take`, a
bounded number): `check_item` evaluates those instead of decoding them a second time.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from cleanclaim.engine.decision import Decision, Finding
from cleanclaim.engine.decoding import decode_json
from cleanclaim.engine.engine import EngineRecipe
from cleanclaim.engine.inputs import InputFileError, RawClaim, ReadProblem
from cleanclaim.engine.model import loads, readable_id
from cleanclaim.engine.reading import NDJSON_SUFFIXES, _claim_id, ndjson_origin, read_claims

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from cleanclaim.engine.engine import Engine

T = TypeVar("T")

CHUNK_SIZE = 500
# Chunks read ahead of the output, per worker: enough to keep every worker busy while
# one chunk is slow, small enough that memory does not depend on the input size.
WINDOW_CHUNKS_PER_WORKER = 4
# Times a single claim may fail on its own before it is rejected as uncheckable.
MAX_ATTEMPTS = 2
# Worker start-ups that may fail in a row before the parent checks the claims itself.
MAX_START_FAILURES = 3
INTERNAL_ERROR_RULE = "engine/internal-error"
INPUT_FILE_RULE = "engine/input-file"
# Test-only hook, read once per worker process (never in the parent): see `_test_hook`.
TEST_CRASH_ENV = "CLEANCLAIM_TEST_CRASH_ON"


# ---- input --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimLine:
    """One NDJSON line, not parsed yet.

    position: 0-based index of the claim in the input (as `RawClaim.position`).
    number: 1-based line number in its file (named when the line is not valid JSON).
    text: the line's bytes.
    file: the file it was read from, for the decision's `origin` (None: not from a file,
        e.g. a line of an HTTP batch; the decision then has no origin).
    """

    position: int
    number: int
    text: bytes
    file: str | None = None

    @property
    def origin(self) -> dict[str, Any] | None:
        """Where the line is (docs/formats.md "Origin"), as `reading` gives it."""
        return None if self.file is None else ndjson_origin(self.file, self.number)

    def to_raw(self) -> RawClaim:
        """The `RawClaim` `reading.iter_inputs` gives for this line."""
        try:
            data = loads(self.text)
        except ValueError as exc:
            return RawClaim(
                self.position,
                None,
                (ReadProblem(f"line {self.number}", f"not valid JSON: {exc}"),),
                None,
                self.origin,
            )
        return RawClaim(self.position, data, (), _claim_id(data), self.origin)

    def __reduce__(self) -> tuple[type[ClaimLine], tuple[int, int, bytes, str | None]]:
        # A plain tuple pickles ~5x faster than a slotted dataclass's state; the parent
        # pickles every line it sends to a worker.
        return ClaimLine, (self.position, self.number, self.text, self.file)


@dataclass(frozen=True, slots=True)
class FileProblem:
    """An input file that cannot be read, in the stream of claims (`cleanclaim check`):
    it gets a located error record in the output (`file_error`), in its place.

    file: the file as named on the command line; where: where in it (segment, line,
    offset) when known; reason: why (never patient values)."""

    position: int
    file: str
    where: str | None
    reason: str


ClaimSource = RawClaim | ClaimLine | FileProblem


class InputReader:
    """Claims of several input files in order, for `check_batch`.

    Yields what `reading.iter_inputs` yields (a file that cannot be read yields its
    `InputFileError` in place, and the next file is read), with NDJSON lines as
    `ClaimLine`s. `bytes_read` and `total_bytes` measure how far the reading has got,
    for a progress bar.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        payer_map: Mapping[str, str] | None = None,
        limits: Mapping[Path, int] | None = None,
    ) -> None:
        self.paths = list(paths)
        self.payer_map = dict(payer_map or {})
        # NDJSON files are read up to these sizes (`cleanclaim check` takes them before
        # its first pass, so that both passes see the same lines).
        self.limits = dict(limits or {})
        self.bytes_read = 0
        self.total_bytes = 0
        for path in self.paths:
            with contextlib.suppress(OSError):
                self.total_bytes += path.stat().st_size

    def __iter__(self) -> Iterator[RawClaim | ClaimLine | InputFileError]:
        offset = 0
        for path in self.paths:
            count = 0
            start = self.bytes_read
            try:
                if path.suffix.lower() in NDJSON_SUFFIXES:
                    for line in self._ndjson(path, offset):
                        count += 1
                        yield line
                else:
                    for raw in read_claims(path, self.payer_map):
                        count += 1
                        yield RawClaim(
                            offset + raw.position, raw.data, raw.problems, raw.claim_id, raw.origin
                        )
            except InputFileError as exc:
                yield exc
            except Exception as exc:  # a reader's failure (deep nesting...): this file only
                yield InputFileError(
                    str(path), f"cannot be read: {type(exc).__name__} after {count} claim(s)"
                )
            offset += count
            with contextlib.suppress(OSError):
                self.bytes_read = start + path.stat().st_size

    def _ndjson(self, path: Path, offset: int) -> Iterator[ClaimLine]:
        position = offset
        file = str(path)
        left = self.limits.get(path)
        try:
            with path.open("rb") as handle:
                for number, text in enumerate(handle, start=1):
                    if left is not None:
                        if len(text) > left:  # appended after the run began
                            break
                        left -= len(text)
                    self.bytes_read += len(text)
                    if not text.strip():
                        continue
                    yield ClaimLine(position, number, text, file)
                    position += 1
        except OSError as exc:
            raise InputFileError(str(path), f"cannot read: {exc.strerror or exc}") from exc


# ---- checking one claim -------------------------------------------------------------------


def check_item(engine: Engine, item: ClaimSource) -> Decision:
    """The decision for one claim; never raises (an engine bug rejects the claim with
    `engine/internal-error` instead of stopping the batch). A claim read from X12 keeps
    its reader's `origin` on every path (history run or not, workers or not)."""
    decision = _check_item(engine, item)
    if not isinstance(item, FileProblem):
        origin = item.origin
        if origin is not None:
            decision.origin = origin
    return decision


def _check_item(engine: Engine, item: ClaimSource) -> Decision:
    """The decision for one claim; never raises (an engine bug rejects the claim with
    `engine/internal-error` instead of stopping the batch)."""
    if isinstance(item, FileProblem):
        return file_error(item)
    try:
        history = getattr(engine, "history", None)
        if history is not None:  # a history run: phase 1 may have refused or decoded it
            refused: Decision | None = history.refusal(item.position, None)
            if refused is not None:
                refused.claim_id = _known_claim_id(item)
                return refused
            settled: Decision | None = history.decision(item.position)
            if settled is not None:  # decided while phase 1 settled the member's claims
                return settled
            claim = history.take(item.position)
            if claim is not None:
                decision = engine.evaluate(claim)
                decision.position = item.position
                return decision
        if isinstance(item, ClaimLine):
            # The fast decoder (engine/decoding.py) reads the bytes; a line it does not
            # accept is read by the reference reader, which names each problem.
            claim = decode_json(item.text, engine.today)
            if claim is not None:
                return engine.check_decoded(claim, item.position)
            return engine.check_raw(item.to_raw())
        return engine.check_raw(item)
    except Exception as exc:
        return internal_error(item, f"{type(exc).__name__} while checking it")


def file_error(problem: FileProblem) -> Decision:
    """The record of an input file that cannot be read: shaped like a rejected decision
    (no claim id, the finding `engine/input-file`) with an `error` object naming the file,
    where in it, and why."""
    located = (
        problem.file + (f" ({problem.where})" if problem.where else "") + f": {problem.reason}"
    )
    finding = Finding(
        INPUT_FILE_RULE,
        "submission",
        "reject",
        None,
        "CO",
        "16",
        ["MA130"],
        "submission",
        "billing",
        located,
        None,
        None,
    )
    decision = Decision(None, "reject", [finding], {})
    decision.error = {"file": problem.file, "where": problem.where, "reason": problem.reason}
    return decision


def internal_error(item: ClaimSource, reason: str) -> Decision:
    """The reject decision of a claim that could not be checked at all."""
    finding = Finding(
        INTERNAL_ERROR_RULE,
        "submission",
        "reject",
        None,
        "CO",
        "16",
        [],
        "submission",
        "billing",
        f"the claim could not be checked ({reason}); nothing is known about it: "
        "check it again or have a person review it",
        None,
        None,
    )
    return Decision(_known_claim_id(item), "reject", [finding], {}, item.position)


def _known_claim_id(item: ClaimSource) -> str | None:
    if isinstance(item, FileProblem):
        return None
    if isinstance(item, RawClaim):
        return readable_id(item.claim_id) if item.claim_id is not None else _claim_id(item.data)
    try:
        return _claim_id(loads(item.text))
    except Exception:  # the line is what failed: take no chances with it
        return None


def as_decision(decision: Decision) -> Decision:
    """The `encode` that keeps `Decision` objects (module-level, so workers can use it)."""
    return decision


def _check_encoded(engine: Engine, item: ClaimSource, encode: Callable[[Decision], T]) -> T:
    decision = check_item(engine, item)
    try:
        return encode(decision)
    except Exception as exc:
        return encode(internal_error(item, f"{type(exc).__name__} while writing its decision"))


# ---- the batch ----------------------------------------------------------------------------


class EngineBuilder(Protocol):
    """Builds, in a worker process, an engine that decides as the parent's does.
    Must be picklable (it is sent to each worker)."""

    def build(self) -> Engine: ...


# What a worker builds its engine from: the one recipe every path builds from
# (engine/engine.py `EngineRecipe`: roots, tables, today, plugins by name, functions).
EngineOptions = EngineRecipe


def resolve_workers(workers: int) -> int:
    """`--workers`: 0 means one per core this process may use."""
    if workers < 0:
        raise ValueError("workers must be 0 (all cores) or more")
    if workers > 0:
        return workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_batch(
    items: Iterable[ClaimSource | InputFileError],
    encode: Callable[[Decision], T],
    *,
    engine: Engine | None = None,
    options: EngineBuilder | None = None,
    workers: int = 1,
    chunk_size: int = CHUNK_SIZE,
    on_warning: Callable[[str], None] | None = None,
) -> Generator[T, None, None]:
    """`encode(decision)` for every claim of `items`, lazily and in input order.

    engine: the engine to check with in this process (one worker, small inputs, or when
        workers cannot start); built from `options` when not given.
    options: how workers build their engines (`EngineBuilder`); default
        `EngineOptions.of(engine)`, which covers policy roots, tables, today and plugins.
    encode: runs where the claim is checked, so with workers it must be picklable (a
        module-level function or a `functools.partial` of one); `as_decision` keeps the
        `Decision`s. Encoding in the workers (e.g. to JSON text) is what lets N workers
        scale: the parent then only moves bytes.
    workers: processes to check in; 1 checks in this process. An input that fits in one
        chunk is checked in this process whatever `workers` says. Workers are started
        with `spawn`, which imports the calling program's main module again: a script
        that calls this with workers > 1 needs the `if __name__ == "__main__":` guard
        (the `cleanclaim` command has it).
    on_warning: told about worker failures and re-runs (default: silent).
    items may be an `InputReader` as it is: a file it cannot read (`InputFileError`) gets
    its located file-error record in its place, as `cleanclaim check` gives it.
    """
    if engine is None and options is None:
        raise ValueError("check_batch needs an engine or engine options")
    if workers < 1:
        raise ValueError("workers must be at least 1 (see resolve_workers)")
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    return _batch(
        _sources(items), encode, engine, options, workers, chunk_size, on_warning or _ignore
    )


def _sources(items: Iterable[ClaimSource | InputFileError]) -> Iterator[ClaimSource]:
    """The items, with a file that could not be read as its `FileProblem` (never lost)."""
    for item in items:
        if isinstance(item, InputFileError):
            yield FileProblem(-1, item.source, getattr(item, "where", None), item.message)
        else:
            yield item


def _batch(
    source: Iterator[ClaimSource],
    encode: Callable[[Decision], T],
    engine: Engine | None,
    options: EngineBuilder | None,
    workers: int,
    chunk_size: int,
    warn: Callable[[str], None],
) -> Generator[T, None, None]:
    if workers > 1:
        first = list(islice(source, chunk_size + 1))
        if len(first) > chunk_size:
            run = _ParallelRun(
                chain(first, source),
                encode,
                options or EngineOptions.of(_must(engine)),
                engine,
                workers,
                chunk_size,
                warn,
            )
            yield from run.run()
            return
        source = iter(first)
    local = engine if engine is not None else _must(options).build()
    for item in source:
        yield _check_encoded(local, item, encode)


def _must(value: T | None) -> T:
    assert value is not None
    return value


def _ignore(message: str) -> None:
    return None


# ---- workers ------------------------------------------------------------------------------


def _test_hook() -> Callable[[ClaimSource], None] | None:
    """Test-only: `CLEANCLAIM_TEST_CRASH_ON=<claim id>[:raise][@<marker file>]` makes a
    worker process die (`os._exit(1)`) or raise when it reaches that claim; with a marker
    file, only the first time in the run (the file records that it happened). Read once
    per worker; when unset (always, outside tests) the check is a single `is None`."""
    spec = os.environ.get(TEST_CRASH_ENV)
    if not spec:
        return None
    spec, _, marker = spec.partition("@")
    claim_id, _, mode = spec.partition(":")

    def hook(item: ClaimSource) -> None:
        if _known_claim_id(item) != claim_id:
            return
        if marker:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
        if mode == "raise":
            raise RuntimeError(f"test hook: raise on {claim_id}")
        os._exit(1)

    return hook


def _worker_main(
    conn: Connection, options: EngineBuilder, encode: Callable[[Decision], Any]
) -> None:
    """A worker process: build the engine once, then check the chunks the parent sends.

    Replies: ("ready", -1, None) once; then per task ("done", start, results) or
    ("failed", start, reason); ("start-failed", -1, reason) if the engine cannot be built.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        engine = options.build()
    except BaseException as exc:
        conn.send(("start-failed", -1, f"{type(exc).__name__}: {exc}"))
        return
    hook = _test_hook()
    conn.send(("ready", -1, None))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the parent has gone
            return
        if task is None:
            return
        start, items = task
        try:
            results = []
            for item in items:
                if hook is not None:
                    hook(item)
                results.append(_check_encoded(engine, item, encode))
            conn.send(("done", start, results))
        except Exception as exc:
            conn.send(("failed", start, f"{type(exc).__name__} in a worker: {exc}"))


@dataclass(slots=True)
class _Task:
    start: int  # ordinal (0-based index in this batch) of the first claim
    items: list[ClaimSource]
    attempts: int = 0  # failures of this task on its own (single claims only)


@dataclass(eq=False, slots=True)
class _Worker:
    process: BaseProcess
    conn: Connection
    ready: bool = False
    task: _Task | None = None
    alive: bool = True


class _ParallelRun(Generic[T]):
    """One batch on worker processes (see the module docstring)."""

    def __init__(
        self,
        items: Iterator[ClaimSource],
        encode: Callable[[Decision], T],
        options: EngineBuilder,
        engine: Engine | None,
        n_workers: int,
        chunk_size: int,
        warn: Callable[[str], None],
    ) -> None:
        self.items = items
        self.encode = encode
        self.options = options
        self.engine = engine
        self.n_workers = n_workers
        self.chunk_size = chunk_size
        self.warn = warn
        # spawn: a worker inherits nothing (no threads, locks or half-built state of the
        # parent) and behaves the same on every platform; it costs ~0.5 s per worker.
        from multiprocessing import get_context  # (~60 ms to import: only for workers)

        self.ctx = get_context("spawn")
        self.window = chunk_size * n_workers * WINDOW_CHUNKS_PER_WORKER
        self.workers: list[_Worker] = []
        self.pending: deque[_Task] = deque()  # to (re)send, before reading more input
        self.finished: dict[int, list[T]] = {}  # the reorder buffer, by first ordinal
        self.next_out = 0  # ordinal of the next result to yield
        self.read = 0  # claims read from the input so far
        self.exhausted = False
        self.start_failures = 0
        self.in_parent = False

    def run(self) -> Iterator[T]:
        completed = False
        try:
            for _ in range(self.n_workers):
                self._spawn()
            while not self.in_parent:
                self._assign()
                yield from self._flush()
                if self._done():
                    completed = True
                    return
                self._wait()
            yield from self._finish_in_parent()
            completed = True
        finally:
            self._shutdown(polite=completed)

    # -- the loop --

    def _assign(self) -> None:
        for worker in list(self.workers):
            if not (worker.alive and worker.ready and worker.task is None):
                continue
            task = self._next_task()
            if task is None:
                return
            try:
                worker.conn.send((task.start, task.items))
            except (OSError, ValueError):  # it died before taking the task: not its fault
                self.pending.appendleft(task)
                self._lost(worker)
                continue
            worker.task = task

    def _next_task(self) -> _Task | None:
        if self.pending:
            return self.pending.popleft()
        if self.exhausted or self.read - self.next_out >= self.window:
            return None
        items = list(islice(self.items, self.chunk_size))
        if len(items) < self.chunk_size:
            self.exhausted = True
        if not items:
            return None
        task = _Task(self.read, items)
        self.read += len(items)
        return task

    def _flush(self) -> Iterator[T]:
        while self.next_out in self.finished:
            results = self.finished.pop(self.next_out)
            self.next_out += len(results)
            yield from results

    def _done(self) -> bool:
        return (
            self.exhausted
            and not self.pending
            and self.next_out == self.read
            and all(w.task is None for w in self.workers)
        )

    def _wait(self) -> None:
        if not self.workers:  # cannot happen (a lost worker is replaced), but never hang
            self._give_up_on_workers()
            return
        if all(w.ready and w.task is None for w in self.workers):
            # Nothing in flight: the last replies filled the window and `_flush` has just
            # made room, so the loop can assign again (waiting here would never end).
            return
        owners: dict[Any, _Worker] = {}
        for worker in self.workers:
            owners[worker.conn] = worker
            owners[worker.process.sentinel] = worker
        from multiprocessing.connection import wait

        ready = wait(list(owners))
        # Replies first: a worker may have answered just before it exited.
        for obj in ready:
            worker = owners[obj]
            if obj is worker.conn:
                while worker.alive and worker.conn.poll():
                    self._receive(worker)
        for obj in ready:
            worker = owners[obj]
            if obj is not worker.conn and worker.alive:
                self._lost(worker)

    def _receive(self, worker: _Worker) -> None:
        try:
            kind, start, payload = worker.conn.recv()
        except Exception:  # EOF, or a reply cut short by the worker's death
            self._lost(worker)
            return
        if kind == "ready":
            worker.ready = True
            self.start_failures = 0
            return
        if kind == "start-failed":
            self._lost(worker, str(payload))
            return
        task, worker.task = worker.task, None
        if task is None or task.start != start:  # cannot happen: one task per worker
            raise RuntimeError(f"worker replied for claim {start}, not for its task")
        if kind == "done" and len(payload) == len(task.items):
            self.finished[start] = payload
        else:
            self._failed(task, str(payload) if kind == "failed" else "a malformed reply")

    # -- failures --

    def _lost(self, worker: _Worker, why: str | None = None) -> None:
        """A worker that died or cannot work: re-run its task elsewhere, replace it."""
        worker.alive = False
        self.workers.remove(worker)
        worker.conn.close()
        worker.process.join(timeout=5)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        reason = why or f"a worker process died (exit code {worker.process.exitcode})"
        if worker.task is not None:
            task, worker.task = worker.task, None
            self._failed(task, reason)
        if not worker.ready:
            self.start_failures += 1
            if self.start_failures >= MAX_START_FAILURES:
                self.warn(
                    f"worker processes could not start ({reason}); checking the "
                    "remaining claims in this process"
                )
                self._give_up_on_workers()
                return
        self._spawn()

    def _failed(self, task: _Task, reason: str) -> None:
        first = task.items[0]
        if len(task.items) > 1:
            self.warn(
                f"{reason} while checking the claims at positions {first.position}-"
                f"{task.items[-1].position}; checking them again one at a time"
            )
            self.pending.extendleft(
                reversed([_Task(task.start + i, [item]) for i, item in enumerate(task.items)])
            )
            return
        attempts = task.attempts + 1
        if attempts < MAX_ATTEMPTS:
            self.pending.appendleft(_Task(task.start, task.items, attempts))
            return
        claim_id = _known_claim_id(first) or "(no claim id)"
        self.warn(
            f"claim {claim_id} at position {first.position} failed {attempts} times "
            f"({reason}); it is rejected as {INTERNAL_ERROR_RULE}"
        )
        self.finished[task.start] = [
            self.encode(internal_error(first, f"{reason}, {attempts} times"))
        ]

    def _spawn(self) -> None:
        if self.in_parent:
            return
        parent_end, child_end = self.ctx.Pipe(duplex=True)
        process = self.ctx.Process(
            target=_worker_main,
            name="cleanclaim-worker",
            args=(child_end, self.options, self.encode),
            daemon=True,
        )
        try:
            process.start()
        except Exception as exc:
            parent_end.close()
            child_end.close()
            self.start_failures = MAX_START_FAILURES
            self.warn(
                f"cannot start worker processes ({type(exc).__name__}: {exc}); "
                "checking the remaining claims in this process"
            )
            self._give_up_on_workers()
            return
        child_end.close()
        self.workers.append(_Worker(process, parent_end))

    def _give_up_on_workers(self) -> None:
        held = sorted(
            (w.task for w in self.workers if w.task is not None),
            key=lambda t: t.start,
            reverse=True,
        )
        for task in held:
            self.pending.appendleft(task)
        self._shutdown(polite=False)
        self.in_parent = True

    def _finish_in_parent(self) -> Iterator[T]:
        engine = self.engine if self.engine is not None else self.options.build()
        while self.pending:
            task = self.pending.popleft()
            self.finished[task.start] = [
                _check_encoded(engine, item, self.encode) for item in task.items
            ]
        yield from self._flush()
        for item in self.items:
            yield _check_encoded(engine, item, self.encode)

    def _shutdown(self, polite: bool) -> None:
        workers, self.workers = self.workers, []
        for worker in workers:
            worker.alive = False
            if polite:
                with contextlib.suppress(OSError, ValueError):
                    worker.conn.send(None)
        for worker in workers:
            if polite:
                worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()

"""The executor side of `cleanclaim.spark`: plain Python over plain tuples, no Spark.

Every function here runs inside a Spark task (a Python worker process) over one
partition's rows, and goes through the engine's own paths: the phase-1 decoding of a
history run (`history._decode`), `HistoryBatch` (record, settle, the store read per
member), `batch.check_item` (the fast msgspec decoder, the reference reader for what it
does not take, the internal-error guard) and `decision.ndjson_bytes`. Nothing here
decides a claim any other way than `cleanclaim check` does.

The compiled packs are built once per Python worker process (`engine_for`, a cache keyed
by the pickled `EngineRecipe`): with Spark's worker reuse (the default) every later task
of that process finds them built.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from cleanclaim.engine.batch import ClaimLine, _known_claim_id, check_item
from cleanclaim.engine.decision import Decision, ndjson_bytes
from cleanclaim.engine.history import (
    DUPLICATE_ID,
    HistoryBatch,
    _decode,
    counts_history,
    outcome_of,
    refusal_decision,
)

if TYPE_CHECKING:
    from cleanclaim.engine.engine import Engine, EngineRecipe

# Claims checked in one history batch of a partition: whole groups (members) only, so a
# batch never splits a member; bounds a task's memory whatever the partition's size.
GROUP_BATCH = 5_000
# Rules whose findings mean the engine failed on the claim (exit code 3 of `check`).
FAILURE_RULES = frozenset({"engine/internal-error", "engine/input-file"})

_ENGINES: dict[bytes, Engine] = {}


def engine_for(recipe: bytes) -> Engine:
    """The engine of a pickled `EngineRecipe`, built once in this process."""
    key = hashlib.sha256(recipe).digest()
    engine = _ENGINES.get(key)
    if engine is None:
        built: EngineRecipe = pickle.loads(recipe)  # the driver's own recipe
        engine = _ENGINES[key] = built.build()
    return engine


# ---- keys: which claims must be checked together -----------------------------------------

# A keyed row: (position, file, line, text, group, id key, target key). `group`: payer and
# member id (history is kept per member), or a key of the claim's own when it has no
# member; `id key`: payer and claim id (a claim id twice in a run: the first is the claim);
# `target key`: payer and the claim a replacement or void names.
KeyedRow = tuple[int, str | None, int | None, bytes, str, str | None, str | None]


def key_rows(
    recipe: bytes, rows: Iterable[tuple[int, str | None, int | None, bytes]]
) -> Iterator[KeyedRow]:
    """Each claim row with its keys, decoded as phase 1 of a history run decodes it."""
    engine = engine_for(recipe)
    for position, file, number, text in rows:
        group = f"\x01{position}"  # no member: a group of its own
        id_key = target = None
        try:
            claim = _decode(engine, ClaimLine(position, number or 0, bytes(text), file))
        except Exception:  # phase 1 refuses it (and names why): no key
            claim = None
        if claim is not None:
            id_key = f"{claim.payer}\0{claim.claim_id}"
            if claim.member.id:
                group = f"{claim.payer}\0{claim.member.id}"
            if claim.frequency in ("replacement", "void"):
                named = claim.replaces or (claim.claim_id if claim.frequency == "void" else None)
                if named:
                    target = f"{claim.payer}\0{named}"
        yield position, file, number, bytes(text), group, id_key, target


# ---- checking ----------------------------------------------------------------------------

# A decided row: (position, claim id, status, findings, decision NDJSON text, failed,
# id key of the decision as `cleanclaim check` screens repeated ids without history).
Finding = tuple[
    str,
    str,
    str,
    int | None,
    str,
    str,
    list[str],
    str,
    str,
    str,
    str | None,
    tuple[str | None, int | None] | None,
]
DecidedRow = tuple[int, str | None, str, list[Finding], str, bool, str | None]

# A grouped row: (group, position, file, line, text, repeated): sorted by group, then
# position, within the partition; `repeated`: a later claim with an id seen before.
GroupedRow = tuple[str, int, str | None, int | None, bytes, bool]


def check_partition(
    recipe: bytes, state: str | None, run: str | None, rows: Iterable[GroupedRow]
) -> Iterator[DecidedRow]:
    """The decisions of one partition's claims: whole groups at a time (`GROUP_BATCH`),
    each batch a history run of the engine's own (`HistoryBatch`, as `cleanclaim check`
    with one worker), against the store at `state` as part of the driver's run `run`, or
    in memory (claims of the batch count against each other; no other batch has any of
    their members)."""
    engine = engine_for(recipe)
    history = state is not None or counts_history(engine)
    batch: list[GroupedRow] = []
    for row in rows:
        if len(batch) >= GROUP_BATCH and row[0] != batch[-1][0]:
            yield from _check_batch(engine, history, state, run, batch)
            batch = []
        batch.append(row)
    if batch:
        yield from _check_batch(engine, history, state, run, batch)


def _check_batch(
    engine: Engine, history: bool, state: str | None, run: str | None, rows: list[GroupedRow]
) -> Iterator[DecidedRow]:
    lines = [
        ClaimLine(position, number or 0, bytes(text), file)
        for _group, position, file, number, text, _repeated in rows
    ]
    repeated = {row[1] for row in rows if row[5]}
    if not history:
        for line in lines:
            yield decided(check_item(engine, line))
        return
    run_batch = HistoryBatch(engine, state, 1, run)
    try:
        run_batch.record(line for line in lines if line.position not in repeated)
        for line in lines:
            if line.position in repeated:
                decision = refusal_decision(_known_claim_id(line), DUPLICATE_ID, line.position)
                decision.origin = line.origin
            else:
                decision = check_item(engine, line)
                run_batch.decide(outcome_of(decision))
            yield decided(decision)
    finally:
        run_batch.close()


def decided(decision: Decision) -> DecidedRow:
    """A decision as a row of the decisions DataFrame (`DECISION_SCHEMA`)."""
    findings: list[Finding] = []
    failed = False
    for f in decision.findings:
        failed = failed or f.rule in FAILURE_RULES
        source = (
            None if f.source is None else (_text(f.source.get("file")), _int(f.source.get("line")))
        )
        findings.append(
            (
                f.rule,
                f.kind,
                f.severity,
                f.line,
                f.group,
                f.carc,
                list(f.rarc),
                f.root_cause,
                f.owner,
                f.message,
                f.reference,
                source,
            )
        )
    outcome = outcome_of(decision)
    id_key = None if outcome is None else f"{outcome[0]}\0{outcome[1]}"
    return (
        _position(decision),
        decision.claim_id,
        decision.status,
        findings,
        ndjson_bytes(decision).decode(),
        failed,
        id_key,
    )


def repeated_id(row: DecidedRow) -> DecidedRow:
    """The row of a claim whose id came earlier in a run without history (as
    `cleanclaim check` screens it: `engine/duplicate-claim-id`, at the claim's place)."""
    import json

    given = json.loads(row[4])
    decision = refusal_decision(row[1], DUPLICATE_ID, given.get("position"))
    decision.origin = given.get("origin")
    return decided(decision)


def _position(decision: Decision) -> int:
    assert decision.position is not None  # every claim of a partition has its place
    return decision.position


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None

"""Phase 2 of `cleanclaim check` takes the decisions `settle` reached for the members with
more than one claim in the run (issue 14.2) instead of evaluating those claims again: the
bytes out must be those of `Engine.check_many`, which evaluates every claim in phase 2,
including when the settled decisions spill to their temporary file."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.engine import history as history_module
from cleanclaim.engine.batch import InputReader, check_item
from cleanclaim.engine.bench import workload_claim
from cleanclaim.engine.decision import ndjson_bytes
from cleanclaim.engine.engine import Engine
from cleanclaim.engine.history import HistoryBatch
from cleanclaim.engine.inputs import InputFileError

TODAY = dt.date(2026, 6, 1)


def _claims(count: int, members: int, seed: int) -> list[dict[str, Any]]:
    """The bench workload with few members (their visits add up), some claims sent twice,
    replaced or voided."""
    rng = random.Random(seed)
    claims = []
    for i in range(count):
        claim = workload_claim(rng, i)
        claim["member"]["id"] = f"M{rng.randrange(members):04d}"
        claims.append(claim)
    for _ in range(count // 20):
        original = rng.choice(claims[: len(claims) // 2])
        again = json.loads(json.dumps(original))
        kind = rng.choice(["same id", "replacement", "void"])
        if kind == "same id":
            claims.append(again)
            continue
        again["claim_id"] = f"{original['claim_id']}-{kind[0]}"
        again["frequency"] = kind
        again["replaces"] = original["claim_id"]
        claims.append(again)
    return claims


def _phase_two(engine: Engine, path: Path) -> tuple[list[bytes], int, int]:
    run = HistoryBatch(engine, None, 1)
    try:
        run.record(InputReader([path]))
        reader = engine.history
        assert reader is not None
        settled = reader.settled
        assert settled is not None
        before = len(settled)
        out = []
        for item in InputReader([path]):
            assert not isinstance(item, InputFileError)
            decision = check_item(engine, item)
            decision.origin = None
            out.append(ndjson_bytes(decision))
        return out, before, len(settled)
    finally:
        run.close()


@pytest.mark.parametrize("in_memory", [100_000, 7])
def test_settled_decisions_are_the_decisions_phase_two_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_memory: int
) -> None:
    monkeypatch.setattr(history_module, "SETTLED_IN_MEMORY", in_memory)
    claims = _claims(600, 60, seed=in_memory)
    path = tmp_path / "claims.ndjson"
    path.write_text("".join(json.dumps(c) + "\n" for c in claims))
    engine = Engine(today=TODAY)
    expected = [ndjson_bytes(d) for d in Engine(today=TODAY).check_many(claims)]
    got, settled, left = _phase_two(engine, path)
    assert settled > len(claims) // 2  # most claims were decided while settling
    assert left == 0  # and phase 2 took every one of them
    assert got == expected
    statuses = {json.loads(line)["status"] for line in got}
    assert {"clean", "deny", "reject"} <= statuses

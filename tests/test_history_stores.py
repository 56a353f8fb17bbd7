"""What every history store backend does alike (SQLite here; PostgreSQL in
tests/test_history_postgres.py runs the same checks)."""

from __future__ import annotations

import pytest

from cleanclaim.engine import Engine
from cleanclaim.engine.history import claim_facts
from cleanclaim.engine.model import decode_claim
from tests.postgres_server import BACKENDS, Backends
from tests.test_history import HIST, TODAY, claim


@pytest.mark.parametrize("backend", BACKENDS)
def test_put_decided_loads_claims_that_count(backends: Backends, backend: str) -> None:
    """`put_decided` (the bench's fill of prior visits) writes rows of the current
    schema: three decided PT visits on file make the next visit the fourth (hist/pt-limit
    denies visits after the third of the benefit year)."""
    engine = Engine([HIST], today=TODAY, plugins=())
    with backends.store(backend) as store:
        facts = []
        for n, day in enumerate(("2025-08-04", "2025-08-05", "2025-08-06")):
            decoded, _ = decode_claim(claim(f"P-{n}", ("97110", day)), TODAY)
            assert decoded is not None
            facts.append(claim_facts(decoded, store.member_key("hist", "M-1")))
        assert store.put_decided(facts) == 3
        assert store.counts()["lines"] == 3
        decision = next(
            iter(engine.check_many([claim("N-1", ("97110", "2025-08-07"))], history=store))
        )
    assert [f.rule for f in decision.findings] == ["hist/pt-limit"]

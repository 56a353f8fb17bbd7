"""Properties of history runs (hypothesis, derandomized and bounded to a few seconds).

- any permutation of the same claims gives the same decisions;
- splitting a batch into several runs against one store gives the decisions of one run;
- replaying a run against the same store is idempotent (decisions and store alike);

the store properties against both stores, SQLite and PostgreSQL (tests/postgres_server.py).

The claims are drawn so that the history rules fire often: a few members, a few weeks of
dates, the shipped packs' therapy, duplicate, ECG and KX rules and the test pack `hist`'s
tight limits (3 visits a benefit year, one echo a year per provider, ...), replacements
and voids among them, and claims denied (late filing) or rejected (place of service) in
their own run, which count for no later claim of it.
"""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cleanclaim.engine import Engine
from cleanclaim.engine.engine import shipped_policies
from cleanclaim.engine.history import HistoryStore
from tests.postgres_server import BACKENDS, Backends

TODAY = dt.date(2026, 11, 27)
HIST = Path(__file__).resolve().parent / "policies" / "history"
START = dt.date(2026, 1, 5)
PAYERS = ("medicare", "acme-ppo", "hist")
LINES: dict[str, list[tuple[str, list[str], str]]] = {
    "medicare": [
        ("97110", ["GP"], "900.00"),
        ("92507", ["GN"], "700.00"),
        ("97530", ["GO"], "1300.00"),
        ("93010", [], "18.00"),
        ("93000", [], "45.00"),
        ("99213", [], "95.00"),
        ("97110", ["GP", "KX"], "900.00"),
    ],
    "acme-ppo": [
        ("97110", ["GP"], "100.00"),
        ("97530", ["GO"], "100.00"),
        ("97140", ["GP"], "80.00"),
        ("99213", [], "95.00"),
    ],
    "hist": [
        ("97110", [], "100.00"),
        ("93306", [], "400.00"),
        ("J1100", [], "30.00"),
        ("G0402", [], "150.00"),
    ],
}
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_ENGINE: list[Engine] = []


def engine() -> Engine:
    if not _ENGINE:
        _ENGINE.append(Engine([shipped_policies(), HIST], today=TODAY, plugins=()))
    return _ENGINE[0]


@st.composite
def claim_data(draw: st.DrawFn, index: int, one_date: bool) -> dict[str, Any]:
    payer = draw(st.sampled_from(PAYERS))
    member = draw(st.sampled_from(["A", "B"]))
    first = START + dt.timedelta(days=draw(st.integers(0, 20)))
    lines: list[dict[str, Any]] = []
    for n in range(draw(st.integers(1, 1 if one_date else 4))):
        code, modifiers, charge = draw(st.sampled_from(LINES[payer]))
        day = first if one_date else first + dt.timedelta(days=draw(st.integers(0, 6)))
        lines.append(
            {
                "line": n + 1,
                "code": code,
                "modifiers": modifiers,
                "units": draw(st.integers(1, 2)),
                "charge": charge,
                "service_date": day.isoformat(),
                "diagnosis_pointers": [1],
            }
        )
    last = max(dt.date.fromisoformat(line["service_date"]) for line in lines)
    received = last + dt.timedelta(days=draw(st.integers(1, 3)))
    # Some claims are denied or rejected in the run (docs/history.md, "What counts"):
    # filed late (medicare and acme-ppo deny every line) or with a place of service that
    # is no CMS code (rejected).
    damage = draw(st.sampled_from(["", "", "", "", "late", "pos"]))
    if damage == "late":
        received += dt.timedelta(days=400)
    data: dict[str, Any] = {
        "claim_id": f"P-{index:02d}",
        "payer": payer,
        "plan": None,
        "received_date": received.isoformat(),
        "member": {
            "id": f"{payer}-{member}",
            "birth_date": "1950-03-03",
            "sex": "F",
            "coverage": [{"payer": payer, "start": "2015-01-01"}],
        },
        "billing_provider": {"npi": "1234567893"},
        "rendering_provider": {"npi": draw(st.sampled_from(["1234567893", "1245319599"]))},
        "place_of_service": "1" if damage == "pos" else "11",
        "diagnoses": ["M54.50"],
        "lines": lines,
        "authorizations": draw(
            st.sampled_from(
                [
                    [],
                    [
                        {
                            "number": "PA-1",
                            "codes": ["97110", "97530"],
                            "start": "2026-01-01",
                            "end": "2026-12-31",
                            "units": 99,
                        }
                    ],
                ]
            )
        ),
    }
    return data


@st.composite
def batches(draw: st.DrawFn, one_date: bool = False, amend: bool = True) -> list[dict[str, Any]]:
    claims = [draw(claim_data(i, one_date)) for i in range(draw(st.integers(2, 12)))]
    if amend:  # some claims replace or void an earlier one of the same payer and member
        for later in claims:
            earlier = [
                c
                for c in claims
                if c is not later
                and c["payer"] == later["payer"]
                and c["member"]["id"] == later["member"]["id"]
            ]
            if earlier and draw(st.integers(0, 5)) == 0:
                later["frequency"] = draw(st.sampled_from(["replacement", "void"]))
                later["replaces"] = draw(st.sampled_from(earlier))["claim_id"]
    return claims


def decide(claims: list[dict[str, Any]], store: HistoryStore | None = None) -> dict[str, Any]:
    """Decision JSON by claim id (the position says only where a claim stood)."""
    out = {}
    for decision in engine().check_many(claims, history=store):
        data = decision.to_json()
        data.pop("position", None)
        out[data["claim_id"]] = data
    return out


@PROPERTY
@given(batches(), st.randoms(use_true_random=False))
def test_any_permutation_of_a_batch_gets_the_same_decisions(
    claims: list[dict[str, Any]], rng: Any
) -> None:
    shuffled = list(claims)
    rng.shuffle(shuffled)
    assert decide(shuffled) == decide(claims)


def _order(claim: dict[str, Any]) -> tuple[str, str, str]:
    return (claim["lines"][0]["service_date"], claim["received_date"], claim["claim_id"])


@pytest.mark.parametrize("backend", BACKENDS)
@PROPERTY
@given(batches(one_date=True, amend=False), st.lists(st.integers(1, 11), max_size=3))
def test_a_batch_split_into_runs_against_one_store_gets_the_decisions_of_one_run(
    backends: Backends, backend: str, claims: list[dict[str, Any]], cuts: list[int]
) -> None:
    """Runs in counting order, as claims arrive over time (each claim has one date of
    service, so the runs do not overlap in the counting order). Against SQLite and
    PostgreSQL alike."""
    ordered = sorted(claims, key=_order)
    bounds = sorted({0, len(ordered), *(c for c in cuts if c < len(ordered))})
    split: dict[str, Any] = {}
    with backends.store(backend) as store:
        for start, end in pairwise(bounds):
            split.update(decide(ordered[start:end], store))
    assert split == decide(claims)


@pytest.mark.parametrize("backend", BACKENDS)
@PROPERTY
@given(batches())
def test_replaying_a_run_against_its_store_changes_nothing(
    backends: Backends, backend: str, claims: list[dict[str, Any]]
) -> None:
    with backends.store(backend) as store:
        first = decide(claims, store)
        counts = store.counts()
        assert decide(claims, store) == first
        assert store.counts() == counts
    assert decide(claims) == first  # and a self-contained run agrees


@PROPERTY
@given(batches())
def test_the_member_cache_and_the_read_plan_change_no_decision(
    claims: list[dict[str, Any]],
) -> None:
    """Phase 2 reads each member once and ahead of its claims (a plan made in phase 1,
    a cache of members). With a cache too small for the run's members (the plan then
    reads ahead only the dates the next claims look at), and with neither cache nor
    plan (members read one claim at a time), every decision is the same."""
    from unittest import mock

    from cleanclaim.engine import history as H

    planned = decide(claims)
    with mock.patch.multiple(H, CACHE_ROWS=1, PREFETCH=3):
        assert decide(claims) == planned
    with mock.patch.multiple(H, CACHE_ROWS=1, PREFETCH=1, PLAN_LIMIT=0, PLAN_MEMBERS=0):
        assert decide(claims) == planned

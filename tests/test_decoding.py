"""The fast claim decoder (engine/decoding.py) against the reference reader
(engine/model.py `decode_claim`): the same `Claim` for every claim, the same problems for
every damaged one, and the fast path really taken for well-formed claims."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from decimal import Decimal
from typing import Any

import pytest

from cleanclaim.engine import decoding
from cleanclaim.engine.bench import synthetic_claim, workload_claim
from cleanclaim.engine.model import Claim
from cleanclaim.engine.model import decode_claim as reference

TODAY = dt.date(2026, 6, 1)


def shape(value: Any) -> Any:
    """A model object as plain nested tuples of its slots (with the type of each number
    and amount: 1 and 1.0 are different claims to a rule that prints them)."""
    slots = getattr(type(value), "__slots__", None)
    if slots is not None and not isinstance(value, (str, bytes)):
        return (
            type(value).__name__,
            tuple((name, shape(getattr(value, name))) for name in sorted(slots)),
        )
    if isinstance(value, (list, tuple)):
        return tuple(shape(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, shape(v)) for k, v in value.items())
    if isinstance(value, (int, float, Decimal)):
        return (type(value).__name__, str(value))
    return value


def assert_same(data: Any) -> None:
    want_claim, want_problems = reference(copy.deepcopy(data), TODAY)
    got_claim, got_problems = decoding.decode_claim(copy.deepcopy(data), TODAY)
    assert got_problems == want_problems
    assert shape(got_claim) == shape(want_claim)
    try:
        text = json.dumps(data).encode()
    except (TypeError, ValueError):
        return
    fast = decoding.decode_json(text, TODAY)
    if fast is not None:  # the fast path decided: it must be the reference's claim
        assert want_claim is not None, want_problems
        assert shape(fast) == shape(want_claim)


def test_well_formed_claims_take_the_fast_path_and_decode_alike() -> None:
    rng = random.Random(3)
    for i in range(300):
        data = workload_claim(rng, i) if i % 2 else synthetic_claim(rng, i)
        claim = decoding.decode_json(json.dumps(data).encode(), TODAY)
        assert isinstance(claim, Claim), data
        assert shape(claim) == shape(reference(data, TODAY)[0])
        assert_same(data)


def test_every_slot_of_the_claim_is_set_by_the_fast_path() -> None:
    # A field added to the reference reader and not to the fast one fails here (and in
    # the comparison above): both readers must build every slot.
    claim = decoding.decode_json(json.dumps(workload_claim(random.Random(1), 0)), TODAY)
    assert claim is not None
    for name in Claim.__slots__:
        getattr(claim, name)


ODD_VALUES: list[Any] = [
    None,
    "",
    " ",
    "x",
    " ab ",
    "IL",
    "il",
    "I",
    "2026-02-30",
    "2026-01-05",
    "2026-W07-2",
    " 2026-01-05",
    0,
    1,
    -1,
    2,
    1.5,
    1e20,
    10**25,
    True,
    False,
    [],
    [1],
    ["x"],
    {},
    {"a": 1},
    "12.50",
    "NaN",
    "1e3",
    "1_000",
    "9999999999",
    "x" * 81,
    "tab\there",
    "é",
    "25",
    "original",
    "void",
    "replacement",
    "\ud800",
    " \udfff ",
    "a\ud83d",
    99_999,
    100_000,
    10_001,
    9_999,
    10_000,
    "20260105",
    "2026-01-05T00:00:00",
    "2026-01-05Z",
    "+2026-01-05",
    "0000-01-01",
    "9999-12-31",
    "2026-1-5",
    "2026-01-05\n",
    "\uff12\uff10\uff12\uff16-01-05",
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


EXTRA_KEYS = [
    "service_state",
    "service_facility",
    "referring_provider",
    "authorizations",
    "documentation",
    "frequency",
    "replaces",
    "line",
    "address",
]


def test_damaged_claims_get_the_reference_readers_decision_and_problems() -> None:
    rng = random.Random(11)
    for i in range(3000):
        data = workload_claim(rng, i)
        if i % 3 == 0:
            data["authorizations"] = [
                {
                    "number": "PA-1",
                    "codes": ["93306"],
                    "start": "2026-01-01",
                    "end": None,
                    "units": 2,
                }
            ]
            data["service_facility"] = {"address": {"state": "oh"}}
            data["billing_provider"]["address"] = {"state": " wi "}
            data["referring_provider"] = {"npi": npi_of(rng)}
        for _ in range(rng.randint(1, 3)):
            paths = _paths(data)
            path = rng.choice(paths)
            if rng.random() < 0.2 and isinstance(_get(data, path[:-1]), dict):
                path = (*path[:-1], rng.choice(EXTRA_KEYS))
            _set(data, path, copy.deepcopy(rng.choice(ODD_VALUES)))
        assert_same(data)


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def npi_of(rng: random.Random) -> str:
    return rng.choice(["1234567893", " 1234567893 ", ""])


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"{",
        b"[1]",
        b"null",
        b'{"claim_id": "\\ud800"}',
        b'{"claim_id": NaN}',
        b'{"a": 1} trailing',
        '{"claim_id": "C-1"}'.encode("utf-16"),
    ],
)
def test_text_the_fast_path_does_not_read_goes_to_the_reference_reader(text: bytes) -> None:
    assert decoding.decode_json(text, TODAY) is None


def test_lone_surrogates_and_deep_nesting_go_to_the_reference_reader() -> None:
    # regression: msgspec reads `\\ud800` followed by more text as a lone surrogate, and
    # raises RecursionError (not DecodeError) on deep nesting when the stack is deep
    data = workload_claim(random.Random(2), 0)
    data["member"]["id"] = "\ud800"
    assert decoding.decode_json(json.dumps(data), TODAY) is None
    assert decoding.decode_claim(data, TODAY)[1] == reference(data, TODAY)[1] != []
    deep = '{"claim_id":"DEEP","x":' + "[" * 990 + "]" * 990 + "}"

    def nested(depth: int) -> Any:
        return nested(depth - 1) if depth else decoding.decode_json(deep, TODAY)

    import sys

    assert nested(sys.getrecursionlimit() - 60) is None


def test_not_an_object_is_rejected_as_before() -> None:
    values: tuple[object, ...] = (None, [], 5, "claim")
    for value in values:
        assert decoding.decode_claim(value, TODAY) == reference(value, TODAY)

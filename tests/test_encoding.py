"""Decisions encoded with msgspec (engine/decision.py `ndjson_bytes`) are byte for byte
what the json module wrote before (`json.dumps(to_json(), separators=(",", ":"))`)."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from cleanclaim.engine.bench import workload_claim
from cleanclaim.engine.decision import Decision, Finding, ndjson_bytes
from cleanclaim.engine.engine import Engine


def before(decision: Decision) -> bytes:
    return json.dumps(decision.to_json(), separators=(",", ":")).encode()


def test_decisions_of_the_workload_encode_as_before() -> None:
    engine = Engine(today=dt.date(2026, 6, 1))
    rng = random.Random(5)
    decisions = [engine.check(workload_claim(rng, i)) for i in range(400)]
    assert any(d.findings for d in decisions)
    for decision in decisions:
        assert ndjson_bytes(decision) == before(decision)


def _finding(message: str, **extra: object) -> Finding:
    finding = Finding(
        "x/y",
        "coding",
        "deny",
        2,
        "CO",
        "4",
        ["N54"],
        "coding",
        "coding",
        message,
        None,
        {"file": "a.policy", "line": 3},
    )
    for key, value in extra.items():
        setattr(finding, key, value)
    return finding


@pytest.mark.parametrize(
    "message",
    [
        "plain",
        "é accents",
        "≥ 2 units",
        "tab\there",
        "new\nline",
        "del\x7fete",
        "nul\x00",
        'quote " and \\ backslash',
        "</script>",
        "1e16 units",
        "B12E5",
        "emoji 😀",
    ],
)
def test_text_the_encoders_write_differently_still_gives_the_old_bytes(message: str) -> None:
    decision = Decision(message, "deny", [_finding(message)], {"packs": {"p": "sha256:0"}}, 7)
    decision.origin = {"file": message, "segment": 12, "ratio": 1e16, "small": 1e-7}
    decision.error = {"file": "f", "where": None, "reason": message}
    assert ndjson_bytes(decision) == before(decision)


def test_a_decision_without_optional_parts_leaves_them_out() -> None:
    decision = Decision("C-1", "clean", [], {})
    assert (
        ndjson_bytes(decision) == b'{"claim_id":"C-1","status":"clean","findings":[],"policy":{}}'
    )


@pytest.mark.parametrize(
    "number",
    [
        1e16,
        1.5e-7,
        1e-5,
        0.00001,
        0.5,
        1.0,
        -2.5e-10,
        1e300,
        123456789012345678.0,
        2.0**60,
    ],
)
def test_every_float_the_encoders_write_differently_still_gives_the_old_bytes(
    number: float,
) -> None:
    for where in ("origin", "error"):
        decision = Decision("C-1", "clean", [], {"packs": {"p": "sha256:3e5"}})
        setattr(decision, where, {"a": number, "b": [number, -number], "c": {"d": number}})
        assert ndjson_bytes(decision) == before(decision)


def test_pack_digests_do_not_send_decisions_to_the_json_module() -> None:
    # Regression: every sha256 digest holds a digit followed by "e", which the float
    # check took for an exponent, so every decision was written by the json module
    # (~5x slower). The check must see no float in an ordinary decision.
    from cleanclaim.engine.decision import _FLOAT, _encoder

    engine = Engine(today=dt.date(2026, 6, 1))
    rng = random.Random(9)
    decisions = [engine.check(workload_claim(rng, i)) for i in range(200)]
    digests = [digest for d in decisions for digest in d.policy["packs"].values()]
    assert any("e" in digest.split(":")[1][:64] for digest in digests)
    for decision in decisions:
        data = _encoder.encode(decision.to_json())
        assert _FLOAT.search(data) is None
        assert ndjson_bytes(decision) == data == before(decision)

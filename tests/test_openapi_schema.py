"""The OpenAPI document tells the truth (issue 18.13): every status the server answers is
listed, with the real server URL, and the claim schema is as strict as the engine - a
body generated from the schema is never rejected for its shape."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cleanclaim.engine.openapi import EXAMPLE_CLAIM, claim_schemas, openapi_document
from cleanclaim.engine.server import PROBLEM_BASE, PROBLEMS
from tests.policy_cases_plugin import shared_engine

TODAY = dt.date(2026, 11, 27)


def standalone_claim_schema() -> dict[str, Any]:
    """The Claim schema with ServiceLine inlined, as a generator needs it."""
    found = claim_schemas(sorted(shared_engine().packs))
    claim: dict[str, Any] = json.loads(json.dumps(found["Claim"]))
    claim["properties"]["lines"]["items"] = found["ServiceLine"]
    claim.pop("examples")
    return claim


CLAIM_SCHEMA = standalone_claim_schema()
VALIDATOR = jsonschema.Draft202012Validator(CLAIM_SCHEMA, format_checker=jsonschema.FormatChecker())


def strategy(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the JSON Schema subset the claim schema uses (hypothesis-jsonschema
    does not run on the hypothesis this project uses); `valid` filters the rest."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    if "oneOf" in schema:
        return st.one_of([strategy(s) for s in schema["oneOf"]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([strategy({**schema, "type": k}) for k in kind])
    if kind == "null":
        return st.none()
    if kind == "string":
        if schema.get("format") == "date":
            return st.dates(dt.date(1, 1, 1)).map(dt.date.isoformat)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda t: len(t) <= schema.get("maxLength", 10**9)
            )
        return st.text(max_size=min(schema.get("maxLength", 30), 30))
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        low, high = schema.get("minimum"), schema.get("maximum")
        return st.one_of(
            st.integers(None if low is None else int(low), None if high is None else int(high)),
            st.floats(low, high, allow_nan=False, allow_infinity=False),
        )
    if kind == "array":
        return st.lists(
            strategy(schema.get("items", {})), min_size=schema.get("minItems", 0), max_size=4
        )
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        extra = st.dictionaries(
            st.text(min_size=1, max_size=8).filter(lambda k: k not in props),
            JSON_VALUES,
            max_size=2,
        )
        return st.fixed_dictionaries(
            {k: strategy(v) for k, v in props.items() if k in required},
            optional={k: strategy(v) for k, v in props.items() if k not in required},
        ).flatmap(lambda d: extra.map(lambda e: {**e, **d}))
    return JSON_VALUES


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def shape_problems(body: dict[str, Any]) -> list[str]:
    [decision] = shared_engine().check_many([json.dumps(body)])
    return [f.message for f in decision.findings if f.rule == "engine/claim-format"]


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(strategy(CLAIM_SCHEMA).filter(VALIDATOR.is_valid))
def test_schema_valid_bodies_are_never_rejected_for_their_shape(body: dict[str, Any]) -> None:
    assert shape_problems(body) == [], json.dumps(body)[:2000]


@pytest.mark.parametrize(
    "field", ["received_date", "lines", "charge", "line", "service_date", "diagnoses", "member"]
)
def test_what_the_engine_refuses_the_schema_refuses(field: str) -> None:
    body = json.loads(json.dumps(EXAMPLE_CLAIM))
    line = body["lines"][0]
    broken = {
        "received_date": lambda: body.update(received_date="2026-02-30"),
        "lines": lambda: body.update(lines=[]),
        "charge": lambda: line.update(charge="12,00"),
        "line": lambda: line.update(line=True),
        "service_date": lambda: line.update(service_date="2026-W07-2"),
        "diagnoses": lambda: body.update(diagnoses=[""]),
        "member": lambda: body.update(member=[1]),
    }
    broken[field]()
    assert not VALIDATOR.is_valid(body)
    assert shape_problems(body), field


def test_the_example_claim_is_valid() -> None:
    VALIDATOR.validate(EXAMPLE_CLAIM)
    assert shape_problems(EXAMPLE_CLAIM) == []


def test_every_status_and_problem_type_is_documented() -> None:
    doc = openapi_document(4096, "http://127.0.0.1:5555", ["medicare"])
    assert doc["servers"] == [{"url": "http://127.0.0.1:5555"}]
    documented = {
        int(code) for op in doc["paths"].values() for o in op.values() for code in o["responses"]
    }
    assert {status for status, _ in PROBLEMS.values()} | {200} == documented
    assert {400, 408, 413, 501, 503} <= documented
    types = doc["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
    assert types == [PROBLEM_BASE + key for key in PROBLEMS]
    check = doc["paths"]["/v1/check"]["post"]["responses"]
    assert "body-too-large" in check["413"]["description"]
    assert "not-ready" in doc["paths"]["/ready"]["get"]["responses"]["503"]["description"]
    payer = doc["components"]["schemas"]["Claim"]["properties"]["payer"]
    assert payer["enum"] == ["medicare"]


# ---- the schema lists exactly the fields the engine reads (18.13: service_state) ----------


class _Recording(dict):  # type: ignore[type-arg]
    """A claim object that records every key the decoder looks up, as a dotted path."""

    def __init__(self, data: dict[str, Any], path: str, seen: set[str]) -> None:
        super().__init__({k: _record(v, f"{path}{k}", seen) for k, v in data.items()})
        self._path = path
        self._seen = seen

    def get(self, key: Any, default: Any = None) -> Any:
        self._seen.add(f"{self._path}{key}")
        return super().get(key, default)

    def __getitem__(self, key: Any) -> Any:
        self._seen.add(f"{self._path}{key}")
        return super().__getitem__(key)

    def __contains__(self, key: Any) -> bool:
        self._seen.add(f"{self._path}{key}")
        return super().__contains__(key)


def _record(value: Any, path: str, seen: set[str]) -> Any:
    if isinstance(value, dict):
        return _Recording(value, f"{path}." if path else "", seen)
    if isinstance(value, list):
        return [_record(item, path + "[]", seen) for item in value]
    return value


def fields_the_engine_reads() -> set[str]:
    """Every field path `decode_claim` looks up, over claims that carry every section
    (the state is read from the first of three places that has one, so three claims)."""
    from cleanclaim.engine.model import decode_claim

    full = json.loads(json.dumps(EXAMPLE_CLAIM))
    full.update(
        referring_provider={"npi": "1234567893", "taxonomy": "207Q00000X", "specialty": "family"},
        ordering_provider={"npi": "1234567893", "taxonomy": "207Q00000X", "specialty": "family"},
        authorizations=[
            {
                "number": "PA-1",
                "codes": ["93306"],
                "start": "2026-01-01",
                "end": "2026-12-31",
                "units": 1,
            }
        ],
        service_facility={"address": {"state": "IL"}},
        documentation={"ecg": {}},
        insurance=[
            {
                "payer": "medicare",
                "plan": "part-b",
                "start": "2026-01-01",
                "end": "2026-12-31",
                "type": "medicare",
                "order": "primary",
            }
        ],
    )
    full["billing_provider"]["address"] = {"state": "WI"}
    full["lines"][0]["minutes"] = 10
    full["member"]["therapy_ytd"] = {"pt_slp": "100.00", "ot": "0", "as_of": "2026-01-31"}
    seen: set[str] = set()
    for drop in ((), ("service_state",), ("service_state", "service_facility")):
        claim = {k: v for k, v in {**full, "service_state": "MN"}.items() if k not in drop}
        decoded, problems = decode_claim(_record(claim, "", seen), TODAY)
        assert decoded is not None and problems == []
    return seen


def schema_fields(schema: dict[str, Any], schemas: dict[str, Any], path: str = "") -> set[str]:
    """Every property path of a schema, `[]` for array items (`oneOf` null unwrapped)."""
    if "$ref" in schema:
        return schema_fields(schemas[schema["$ref"].rsplit("/", 1)[1]], schemas, path)
    found: set[str] = set()
    for option in schema.get("oneOf", ()):
        found |= schema_fields(option, schemas, path)
    if schema.get("type") == "array":
        found |= schema_fields(schema.get("items", {}), schemas, path + "[]")
    for name, sub in schema.get("properties", {}).items():
        found.add(f"{path}{'.' if path else ''}{name}")
        found |= schema_fields(sub, schemas, f"{path}{'.' if path else ''}{name}")
    return found


def test_the_schema_lists_every_field_the_engine_reads_and_no_other() -> None:
    found = claim_schemas(["medicare"])
    listed = schema_fields(found["Claim"], found)
    read = fields_the_engine_reads()
    assert "service_state" in read and "lines[].code" in read  # the recording works
    assert read - listed == set(), "fields the engine reads that the schema lacks"
    assert listed - read == set(), "fields the schema lists that the engine ignores"


def test_a_bad_service_state_is_refused_by_both() -> None:
    body = {**json.loads(json.dumps(EXAMPLE_CLAIM)), "service_state": "Illinois"}
    assert not VALIDATOR.is_valid(body)
    assert shape_problems(body)
    body["service_state"] = " il "
    VALIDATOR.validate(body)
    assert shape_problems(body) == []

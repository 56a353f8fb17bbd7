"""The OpenAPI 3.1 document of the HTTP API (`GET /openapi.json`).

The claim and decision schemas follow claim format v1 and decision format v1 of
DESIGN.md (JSON Schema 2020-12, as OpenAPI 3.1 uses). The claim schema is as strict as
the engine's reading of a claim (engine/model.py): a body the schema accepts is never
rejected for its shape (`engine/claim-format`) - tests/test_openapi_schema.py generates
bodies from the schema and checks. Claims may carry more fields than listed
(`additionalProperties` stays open), as the format allows additions; the engine ignores
them. Every status the server answers is listed, errors as RFC 9457 problem documents
(`Problem`, with the stable `type`s of engine/server/common.py `PROBLEMS`).

`python -m cleanclaim.engine.openapi` prints the document.
"""

from __future__ import annotations

import json
from typing import Any

from cleanclaim.dsl import vocabulary
from cleanclaim.engine.model import COVERAGE_ORDERS, COVERAGE_TYPES
from cleanclaim.engine.server import PROBLEM_BASE, PROBLEMS

ROOT_CAUSES = list(vocabulary.ROOT_CAUSES)
OWNERS = list(vocabulary.OWNERS)
# A calendar date YYYY-MM-DD (year 0001-9999); `format: date` rules out 2026-02-30.
DATE = {
    "type": "string",
    "format": "date",
    "pattern": "^(?!0000)[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
    "description": "YYYY-MM-DD",
}
# The engine's ranges (engine/model.py, docs/claims.md): beyond them a value is bad data.
UNITS_MAX = 99_999
MINUTES_MAX = 10_000
CHARGE_MAX = 9_999_999.99
LINE_NUMBER_MAX = 9_999
ID_MAX = 80
_VISIBLE = "[^\\u0000-\\u001f\\u007f-\\u009f]"
# An id: trimmed, not blank, at most ID_MAX characters, no control characters.
ID = {
    "type": "string",
    "maxLength": ID_MAX,
    "pattern": f"^{_VISIBLE}*[^\\s\\u0000-\\u001f\\u007f-\\u009f]{_VISIBLE}*$",
}
# Text the engine reads as given (trimmed); null or "" is the same as absent.
TEXT = {"type": "string", "maxLength": 200}
CODE = {"type": "string", "maxLength": 40, "pattern": "^\\s*\\S"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


EXAMPLE_CLAIM: dict[str, Any] = {
    "claim_id": "C-1001",
    "payer": "medicare",
    "plan": None,
    "frequency": "original",
    "replaces": None,
    "received_date": "2026-03-02",
    "member": {
        "id": "1EG4TE5MK73",
        "birth_date": "1951-04-12",
        "sex": "F",
        "coverage": [{"payer": "medicare", "plan": None, "start": "2016-04-01", "end": None}],
    },
    "billing_provider": {"npi": "1234567893", "taxonomy": "207RC0000X"},
    "rendering_provider": {"npi": "1234567893", "specialty": "cardiology"},
    "referring_provider": None,
    "place_of_service": "11",
    "diagnoses": ["R07.9", "R06.02"],
    "authorizations": [],
    "lines": [
        {
            "line": 1,
            "code": "93000",
            "modifiers": [],
            "units": 1,
            "charge": "45.00",
            "service_date": "2026-02-10",
            "diagnosis_pointers": [1, 2],
            "minutes": None,
        },
        {
            "line": 2,
            "code": "93010",
            "modifiers": [],
            "units": 1,
            "charge": "18.00",
            "service_date": "2026-02-10",
            "diagnosis_pointers": [1],
            "minutes": None,
        },
    ],
    "documentation": {},
}
EXAMPLE_DECISION: dict[str, Any] = {
    "claim_id": "C-1001",
    "status": "deny",
    "findings": [
        {
            "rule": "medicare/ecg/component-with-global",
            "kind": "coding",
            "severity": "deny",
            "line": 2,
            "group": "CO",
            "carc": "97",
            "rarc": ["M15"],
            "root_cause": "coding",
            "owner": "coding",
            "message": "93010 is a component of 93000, also billed for 2026-02-10",
            "reference": "NCCI Policy Manual 2025 ch. XI; PAYER_RULES.md C1",
            "source": {"file": "payer_policies/medicare/cardiology.policy", "line": 19},
        }
    ],
    "policy": {"packs": {"medicare": "sha256:..."}},
}


def _number(largest: float) -> dict[str, Any]:
    return _nullable({"type": "number", "minimum": -largest, "maximum": largest})


def _list(items: dict[str, Any]) -> dict[str, Any]:
    return _nullable({"type": "array", "items": items})


def claim_schemas(payers: list[str] | None = None) -> dict[str, Any]:
    """Claim and ServiceLine: claim format v1 as the engine reads it. `payers`: the pack
    ids a server has loaded (another payer is a `reject` for setup, not for shape)."""
    provider = _nullable(
        {
            "type": "object",
            "properties": {
                "npi": _nullable({**TEXT, "description": "10-digit NPI"}),
                "taxonomy": _nullable(TEXT),
                "specialty": _nullable(TEXT),
            },
        }
    )
    # Read trimmed and upper-cased (engine/model.py `_service_state`).
    state = _nullable(
        {
            "type": "string",
            "pattern": "^\\s*[A-Za-z]{2}\\s*$",
            "description": "two-letter USPS state code",
        }
    )
    address = _nullable({"type": "object", "properties": {"state": state}})
    billing = _nullable(
        {
            "type": "object",
            "properties": {
                "npi": _nullable({**TEXT, "description": "10-digit NPI"}),
                "taxonomy": _nullable(TEXT),
                "specialty": _nullable(TEXT),
                "address": address,
            },
        }
    )
    payer: dict[str, Any] = {**ID, "description": "selects the policy pack"}
    if payers:
        payer = {"enum": sorted(payers), "description": "selects the policy pack"}
    span: dict[str, Any] = {
        "type": "object",
        "properties": {
            "payer": _nullable(TEXT),
            "plan": _nullable(TEXT),
            "start": _nullable(DATE),
            "end": _nullable(DATE),
            "type": _nullable({"enum": list(COVERAGE_TYPES), "description": "what the span is"}),
            "order": _nullable({"enum": list(COVERAGE_ORDERS), "description": "order of benefits"}),
        },
    }
    return {
        "Claim": {
            "type": "object",
            "description": "Claim format v1 (DESIGN.md). Fields may be added, not renamed.",
            "required": ["claim_id", "payer", "lines"],
            "properties": {
                "claim_id": ID,
                "payer": payer,
                "plan": _nullable(TEXT),
                "frequency": _nullable(
                    {"enum": ["original", "replacement", "void"], "default": "original"}
                ),
                "replaces": _nullable(ID),
                "received_date": _nullable(
                    {**DATE, "description": "day the payer receives it; default: today"}
                ),
                "member": _nullable(
                    {
                        "type": "object",
                        "properties": {
                            "id": _nullable(TEXT),
                            "birth_date": _nullable(DATE),
                            "sex": _nullable(TEXT),
                            "date_of_death": _nullable(DATE),
                            "coverage": _list(span),
                            "therapy_ytd": _nullable(
                                {
                                    "type": "object",
                                    "required": ["as_of"],
                                    "description": "amounts applied toward the Medicare therapy "
                                    "(KX) thresholds in the calendar year as of a date, all "
                                    "providers (MAC eligibility)",
                                    "properties": {
                                        "pt_slp": _nullable(AMOUNT),
                                        "ot": _nullable(AMOUNT),
                                        "as_of": DATE,
                                    },
                                }
                            ),
                        },
                    }
                ),
                "billing_provider": billing,
                "rendering_provider": provider,
                "referring_provider": provider,
                "ordering_provider": provider,
                "place_of_service": _nullable(TEXT),
                "service_state": {
                    **state,
                    "description": "two-letter USPS code of the "
                    "state where the service was rendered; else "
                    "service_facility.address.state, else "
                    "billing_provider.address.state",
                },
                "clia_number": _nullable(
                    {
                        **TEXT,
                        "description": "the laboratory's CLIA "
                        "certificate number (837P 2300 REF*X4)",
                    }
                ),
                "insurance": _list(
                    {
                        **span,
                        "description": "the payers the claim itself "
                        "names, with type and order of benefits (837P SBR of "
                        "2000B and 2320, FHIR Claim.insurance); not "
                        "eligibility data",
                    }
                ),
                "service_facility": _nullable(
                    {"type": "object", "properties": {"address": address}}
                ),
                "diagnoses": _nullable(
                    {"type": "array", "items": CODE, "description": "ICD-10-CM, dotted or not"}
                ),
                "authorizations": _list(
                    {
                        "type": "object",
                        "properties": {
                            "number": _nullable(TEXT),
                            "codes": _list(CODE),
                            "start": _nullable(DATE),
                            "end": _nullable(DATE),
                            "units": _number(UNITS_MAX),
                            "provider_npi": _nullable(TEXT),
                        },
                    }
                ),
                "lines": {"type": "array", "minItems": 1, "items": _ref("ServiceLine")},
                "documentation": _nullable(
                    {
                        "type": "object",
                        "description": "structured facts from the clinical "
                        "note, one section per specialty",
                    }
                ),
            },
            "examples": [EXAMPLE_CLAIM],
        },
        "ServiceLine": {
            "type": "object",
            "required": ["service_date"],
            "properties": {
                "line": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": LINE_NUMBER_MAX,
                    "description": "default: the position in `lines`, from 1",
                },
                "code": _nullable({**TEXT, "description": "CPT/HCPCS procedure code"}),
                "modifiers": _list(CODE),
                "units": _number(UNITS_MAX),
                "charge": _nullable(
                    {
                        "oneOf": [
                            {"type": "number", "minimum": -CHARGE_MAX, "maximum": CHARGE_MAX},
                            {"type": "string", "pattern": "^-?[0-9]{1,7}(\\.[0-9]{1,2})?$"},
                        ]
                    }
                ),
                "service_date": DATE,
                "diagnosis_pointers": _list({"type": "integer", "minimum": 1, "maximum": 12}),
                "minutes": _number(MINUTES_MAX),
                "expected_allowed": _nullable(
                    {
                        **AMOUNT,
                        "description": "the amount the "
                        "payer is expected to allow for the line, "
                        "its units included",
                    }
                ),
                "clia_number": _nullable(
                    {
                        **TEXT,
                        "description": "the CLIA number of the "
                        "laboratory that performed the line's test, when "
                        "not the claim's (837P 2400 REF*X4)",
                    }
                ),
            },
        },
    }


# An amount of money that is not negative (an allowed amount).
AMOUNT: dict[str, Any] = {
    "oneOf": [
        {"type": "number", "minimum": 0, "maximum": CHARGE_MAX},
        {"type": "string", "pattern": "^[0-9]{1,7}(\\.[0-9]{1,2})?$"},
    ]
}


def schemas(payers: list[str] | None = None) -> dict[str, Any]:
    return {
        **claim_schemas(payers),
        "Finding": {
            "type": "object",
            "required": [
                "rule",
                "kind",
                "severity",
                "line",
                "group",
                "carc",
                "rarc",
                "root_cause",
                "owner",
                "message",
                "reference",
                "source",
            ],
            "properties": {
                "rule": {"type": "string"},
                "kind": {"type": "string"},
                "severity": {"enum": list(vocabulary.SEVERITIES)},
                "line": _nullable({"type": "integer"}),
                "group": {"type": "string", "description": "claim adjustment group code"},
                "carc": {"type": "string"},
                "rarc": {"type": "array", "items": {"type": "string"}},
                "root_cause": {"enum": ROOT_CAUSES},
                "owner": {"enum": OWNERS},
                "message": {"type": "string"},
                "reference": _nullable({"type": "string"}),
                "source": _nullable(
                    {
                        "type": "object",
                        "properties": {"file": {"type": "string"}, "line": {"type": "integer"}},
                    }
                ),
            },
        },
        "Decision": {
            "type": "object",
            "description": "Decision format v1 (DESIGN.md): the status is the worst finding.",
            "required": ["claim_id", "status", "findings", "policy"],
            "properties": {
                "claim_id": _nullable({"type": "string"}),
                "status": {"enum": list(vocabulary.STATUSES)},
                "findings": {"type": "array", "items": _ref("Finding")},
                "policy": {
                    "type": "object",
                    "properties": {
                        "packs": {"type": "object", "additionalProperties": {"type": "string"}},
                        "data": {
                            "type": "object",
                            "description": "imported CMS tables the "
                            "decision read (docs/data.md): table -> sha256",
                            "additionalProperties": {"type": "string"},
                        },
                    },
                },
                "position": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "batch only: 0-based index of the claim among "
                    "the non-blank input lines",
                },
            },
            "examples": [EXAMPLE_DECISION],
        },
        "Packs": {
            "type": "object",
            "required": ["packs", "plugins"],
            "properties": {
                "packs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "digest"],
                        "properties": {
                            "id": {"type": "string"},
                            "digest": {
                                "type": "string",
                                "description": "sha256:<hex> of the pack sources",
                            },
                        },
                    },
                },
                "plugins": {
                    "type": "array",
                    "items": {"type": "object"},
                    "description": "plugins loaded (empty until plugins ship)",
                },
            },
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "ok"}},
        },
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {
                    "type": "string",
                    "format": "uri",
                    "enum": [PROBLEM_BASE + key for key in PROBLEMS],
                },
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "request_id": {"type": "string", "description": "as X-Request-Id"},
            },
        },
        "Ready": {
            "type": "object",
            "required": ["status", "packs"],
            "properties": {
                "status": {"const": "ready"},
                "packs": {"type": "integer", "minimum": 1},
                "plugins": {"type": "integer"},
            },
        },
    }


# Answers any request may get before it reaches its endpoint (framing, limits, load).
ANY_REQUEST = (
    "malformed-request",
    "missing-host",
    "bad-content-length",
    "conflicting-framing",
    "bad-chunked-body",
    "not-found",
    "request-timeout",
    "request-line-too-long",
    "expectation-failed",
    "headers-too-large",
    "unsupported-transfer-coding",
    "busy",
    "version-not-supported",
)


# `POST /v1/denials` (engine/denials/upload.py; the report: engine/denials/report.py).
DENIAL_SCHEMAS: dict[str, Any] = {
    "DenialUpload": {
        "type": "object",
        "required": ["remittance"],
        "properties": {
            "remittance": {"type": "string", "description": "the X12 835 text"},
            "decisions": {
                "oneOf": [
                    {"type": "string", "description": "NDJSON, as `cleanclaim check` writes"},
                    {"type": "array", "items": _ref("Decision")},
                ]
            },
            "show_ids": {
                "type": "boolean",
                "default": False,
                "description": "put patient names and ids in the report",
            },
        },
    },
    "DenialReport": {
        "type": "object",
        "required": [
            "report",
            "files",
            "totals",
            "adjusted",
            "denials_by",
            "denials_over_time",
            "top_reasons",
            "unclassified",
            "checker",
            "damaged",
            "worklist",
        ],
        "properties": {
            "report": {"const": "cleanclaim-denials/1"},
            "files": {"type": "array", "items": {"type": "object"}},
            "totals": {"type": "object"},
            "adjusted": {"type": "array", "items": {"type": "object"}},
            "denials_by": {"type": "object"},
            "denials_over_time": {"type": "array", "items": {"type": "object"}},
            "top_reasons": {"type": "array", "items": {"type": "object"}},
            "unclassified": {"type": "array", "items": {"type": "object"}},
            "checker": {"oneOf": [{"type": "object"}, {"type": "null"}]},
            "damaged": {"type": "array", "items": {"type": "object"}},
            "worklist": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "owner": {"enum": OWNERS},
                        "root_cause": {"enum": [*ROOT_CAUSES, "unclassified"]},
                    },
                },
            },
        },
    },
}


def _problems(*keys: str) -> dict[str, Any]:
    """Responses for these problem types, one per status, each naming its types."""
    by_status: dict[int, list[str]] = {}
    for key in (*ANY_REQUEST, *keys):
        by_status.setdefault(PROBLEMS[key][0], []).append(key)
    return {
        str(status): {
            "description": "; ".join(f"`{PROBLEM_BASE}{k}`: {PROBLEMS[k][1]}" for k in found),
            "content": {"application/problem+json": {"schema": _ref("Problem")}},
        }
        for status, found in sorted(by_status.items())
    }


def openapi_document(
    max_body: int = 10 * 1024 * 1024,
    url: str = "http://127.0.0.1:8080",
    payers: list[str] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document; `max_body` is the server's configured limit, `url` the
    address it listens on, `payers` the pack ids it has loaded."""
    common = _problems("unauthorized", "method-not-allowed")
    json_ok = {"description": "", "content": {"application/json": {"schema": {}}}}
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "cleanclaim",
            "version": "1",
            "summary": "Check US professional claims against payer policy before submission.",
            "description": "Every claim gets exactly one decision; a claim that cannot be "
            "read is a `reject` decision, not an HTTP error.",
        },
        "servers": [{"url": url}],
        "security": [{"bearer": []}],
        "components": {
            "schemas": {**schemas(payers), **DENIAL_SCHEMAS},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Required on /v1/* when the server runs with --token "
                    "(or CLEANCLAIM_TOKEN).",
                }
            },
        },
        "paths": {
            "/v1/check": {
                "post": {
                    "operationId": "check",
                    "summary": "Check one claim",
                    "description": f"The body is one claim object (at most {max_body} bytes). "
                    "Malformed JSON, a non-object or an unreadable claim is "
                    "answered 200 with a `reject` decision naming each problem.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Claim")}},
                    },
                    "responses": {
                        "200": {
                            "description": "the decision (for every status)",
                            "content": {"application/json": {"schema": _ref("Decision")}},
                        },
                        **_problems("unauthorized", "method-not-allowed", "body-too-large"),
                    },
                }
            },
            "/v1/check/batch": {
                "post": {
                    "operationId": "checkBatch",
                    "summary": "Check claims as NDJSON, streamed",
                    "description": "One claim JSON per line (blank lines are skipped). The "
                    "response streams one decision per non-blank line, in input "
                    "order, each with `position`, chunked: the decisions of a "
                    "`cleanclaim check` run of the same lines (with packs that "
                    "count history, after the whole body is read). A "
                    "damaged line (bad JSON, not an object, over "
                    f"{max_body} bytes) gets a `reject` decision; later lines are "
                    "checked normally. Clients should read while they send.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-ndjson": {
                                "schema": {"type": "string"},
                                "x-itemSchema": _ref("Claim"),
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "NDJSON: one Decision per line",
                            "content": {
                                "application/x-ndjson": {
                                    "schema": {"type": "string"},
                                    "x-itemSchema": _ref("Decision"),
                                }
                            },
                        },
                        **common,
                    },
                }
            },
            "/v1/denials": {
                "post": {
                    "operationId": "denials",
                    "summary": "Denial report of an X12 835 remittance",
                    "description": "The body is an 835 005010X221A1 (any content type but JSON) "
                    "or a JSON `DenialUpload` (the 835 and our decisions); at "
                    f"most {max_body} bytes. Answered 200 with the report of "
                    "`cleanclaim denials --format json` (docs/denials.md); a "
                    "body that cannot be read is answered in the report, "
                    "located (`files[].problems`).",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/edi-x12": {"schema": {"type": "string"}},
                            "application/json": {"schema": _ref("DenialUpload")},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "the denial report",
                            "content": {"application/json": {"schema": _ref("DenialReport")}},
                        },
                        **_problems("unauthorized", "method-not-allowed", "body-too-large"),
                    },
                }
            },
            "/v1/packs": {
                "get": {
                    "operationId": "packs",
                    "summary": "Policy packs (id, digest) and plugins loaded",
                    "responses": {
                        "200": {
                            **json_ok,
                            "description": "packs and plugins",
                            "content": {"application/json": {"schema": _ref("Packs")}},
                        },
                        **common,
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness",
                    "security": [],
                    "description": "Answered even when every connection slot is taken (a "
                    "reserve of connections serves /health and /ready only).",
                    "responses": {
                        "200": {
                            **json_ok,
                            "description": "the server is up",
                            "content": {"application/json": {"schema": _ref("Health")}},
                        },
                        **_problems("method-not-allowed"),
                    },
                }
            },
            "/ready": {
                "get": {
                    "operationId": "ready",
                    "summary": "Readiness: policy packs are loaded",
                    "security": [],
                    "responses": {
                        "200": {
                            **json_ok,
                            "description": "ready to check claims",
                            "content": {"application/json": {"schema": _ref("Ready")}},
                        },
                        **_problems("method-not-allowed", "not-ready"),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            **json_ok,
                            "description": "OpenAPI 3.1 document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **_problems("method-not-allowed"),
                    },
                }
            },
        },
    }


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(openapi_document(), indent=2))

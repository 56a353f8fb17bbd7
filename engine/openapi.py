"""The OpenAPI 3.1 document of the HTTP API (`GET /openapi.json`).

The claim and decision schemas follow claim format v1 and decision format v1 of
DESIGN.md (JSON Schema 2020-12, as OpenAPI 3.1 uses). Claims may carry more fields than
listed (`additionalProperties` stays open), as the format allows additions.

`python -m cleanclaim.engine.openapi` prints the document.
"""

from __future__ import annotations

import json
from typing import Any

ROOT_CAUSES = ["documentation", "coding", "medical_necessity", "eligibility", "authorization",
               "benefit_limit", "timely_filing", "submission", "duplicate", "coverage",
               "payer_setup"]
OWNERS = ["provider", "coding", "front_end", "billing"]
DATE = {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        "description": "YYYY-MM-DD"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


EXAMPLE_CLAIM: dict[str, Any] = {
    "claim_id": "C-1001", "payer": "medicare", "plan": None, "frequency": "original",
    "replaces": None, "received_date": "2026-03-02",
    "member": {"id": "1EG4TE5MK73", "birth_date": "1951-04-12", "sex": "F",
               "coverage": [{"payer": "medicare", "plan": None, "start": "2016-04-01",
                             "end": None}]},
    "billing_provider": {"npi": "1234567893", "taxonomy": "207RC0000X"},
    "rendering_provider": {"npi": "1234567893", "specialty": "cardiology"},
    "referring_provider": None, "place_of_service": "11", "diagnoses": ["R07.9", "R06.02"],
    "authorizations": [],
    "lines": [{"line": 1, "code": "93000", "modifiers": [], "units": 1, "charge": "45.00",
               "service_date": "2026-02-10", "diagnosis_pointers": [1, 2], "minutes": None},
              {"line": 2, "code": "93010", "modifiers": [], "units": 1, "charge": "18.00",
               "service_date": "2026-02-10", "diagnosis_pointers": [1], "minutes": None}],
    "documentation": {},
}
EXAMPLE_DECISION: dict[str, Any] = {
    "claim_id": "C-1001", "status": "deny",
    "findings": [{
        "rule": "medicare/ecg/component-with-global", "kind": "coding", "severity": "deny",
        "line": 2, "group": "CO", "carc": "97", "rarc": ["M15"], "root_cause": "coding",
        "owner": "coding", "message": "93010 is a component of 93000, also billed for 2026-02-10",
        "reference": "NCCI Policy Manual 2025 ch. XI; PAYER_RULES.md C1",
        "source": {"file": "payer_policies/medicare/cardiology.policy", "line": 19}}],
    "policy": {"packs": {"medicare": "sha256:..."}},
}


def schemas() -> dict[str, Any]:
    provider = {
        "type": "object",
        "properties": {"npi": {"type": "string", "description": "10-digit NPI"},
                       "taxonomy": _nullable({"type": "string"}),
                       "specialty": _nullable({"type": "string"})},
    }
    return {
        "Claim": {
            "type": "object",
            "description": "Claim format v1 (DESIGN.md). Fields may be added, not renamed.",
            "required": ["claim_id", "payer", "lines"],
            "properties": {
                "claim_id": {"type": "string"},
                "payer": {"type": "string", "description": "selects the policy pack"},
                "plan": _nullable({"type": "string"}),
                "frequency": {"enum": ["original", "replacement", "void"],
                              "default": "original"},
                "replaces": _nullable({"type": "string"}),
                "received_date": {**DATE, "description": "day the payer receives it; "
                                  "default: today"},
                "member": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "birth_date": DATE,
                        "sex": {"type": "string"},
                        "coverage": {"type": "array", "items": {
                            "type": "object",
                            "properties": {"payer": _nullable({"type": "string"}),
                                           "plan": _nullable({"type": "string"}),
                                           "start": _nullable(DATE),
                                           "end": _nullable(DATE)}}},
                    },
                },
                "billing_provider": provider,
                "rendering_provider": provider,
                "referring_provider": _nullable(provider),
                "place_of_service": _nullable({"type": "string"}),
                "diagnoses": {"type": "array", "items": {"type": "string"},
                              "description": "ICD-10-CM, dotted or not"},
                "authorizations": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"number": {"type": "string"},
                                   "codes": {"type": "array", "items": {"type": "string"}},
                                   "start": DATE, "end": _nullable(DATE),
                                   "units": _nullable({"type": "number"})}}},
                "lines": {"type": "array", "minItems": 1, "items": _ref("ServiceLine")},
                "documentation": {"type": "object",
                                  "description": "structured facts from the clinical note, "
                                  "one section per specialty"},
            },
            "examples": [EXAMPLE_CLAIM],
        },
        "ServiceLine": {
            "type": "object",
            "required": ["service_date"],
            "properties": {
                "line": {"type": "integer"},
                "code": {"type": "string", "description": "CPT/HCPCS procedure code"},
                "modifiers": {"type": "array", "items": {"type": "string"}},
                "units": _nullable({"type": "number"}),
                "charge": _nullable({"type": ["string", "number"]}),
                "service_date": DATE,
                "diagnosis_pointers": {"type": "array", "items": {"type": "integer",
                                                                  "minimum": 1},
                                       "description": "1-based into `diagnoses`"},
                "minutes": _nullable({"type": "number"}),
            },
        },
        "Finding": {
            "type": "object",
            "required": ["rule", "kind", "severity", "line", "group", "carc", "rarc",
                         "root_cause", "owner", "message", "reference", "source"],
            "properties": {
                "rule": {"type": "string"},
                "kind": {"type": "string"},
                "severity": {"enum": ["reject", "deny", "review", "info"]},
                "line": _nullable({"type": "integer"}),
                "group": {"type": "string", "description": "claim adjustment group code"},
                "carc": {"type": "string"},
                "rarc": {"type": "array", "items": {"type": "string"}},
                "root_cause": {"enum": ROOT_CAUSES},
                "owner": {"enum": OWNERS},
                "message": {"type": "string"},
                "reference": _nullable({"type": "string"}),
                "source": _nullable({"type": "object",
                                     "properties": {"file": {"type": "string"},
                                                    "line": {"type": "integer"}}}),
            },
        },
        "Decision": {
            "type": "object",
            "description": "Decision format v1 (DESIGN.md): the status is the worst finding.",
            "required": ["claim_id", "status", "findings", "policy"],
            "properties": {
                "claim_id": _nullable({"type": "string"}),
                "status": {"enum": ["reject", "deny", "review", "clean"]},
                "findings": {"type": "array", "items": _ref("Finding")},
                "policy": {"type": "object", "properties": {
                    "packs": {"type": "object",
                              "additionalProperties": {"type": "string"}},
                    "data": {"type": "object", "description": "imported CMS tables the "
                             "decision read (docs/data.md): table -> sha256",
                             "additionalProperties": {"type": "string"}}}},
                "position": {"type": "integer", "minimum": 0,
                             "description": "batch only: 0-based index of the claim among "
                             "the non-blank input lines"},
            },
            "examples": [EXAMPLE_DECISION],
        },
        "Packs": {
            "type": "object",
            "required": ["packs", "plugins"],
            "properties": {
                "packs": {"type": "array", "items": {
                    "type": "object", "required": ["id", "digest"],
                    "properties": {"id": {"type": "string"},
                                   "digest": {"type": "string",
                                              "description": "sha256:<hex> of the pack "
                                              "sources"}}}},
                "plugins": {"type": "array", "items": {"type": "object"},
                            "description": "plugins loaded (empty until plugins ship)"},
            },
        },
        "Health": {"type": "object", "required": ["status"],
                   "properties": {"status": {"const": "ok"},
                                  "packs": {"type": "integer"}}},
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["status", "code", "message"],
                "properties": {"status": {"type": "integer"}, "code": {"type": "string"},
                               "message": {"type": "string"}}}},
        },
    }


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": _ref("Error")}}}


def openapi_document(max_body: int = 10 * 1024 * 1024,
                     url: str = "http://127.0.0.1:8080") -> dict[str, Any]:
    """The OpenAPI 3.1 document; `max_body` is the server's configured limit, `url` the
    address it listens on."""
    common = {"401": _error("bearer token missing or wrong (when the server has one)"),
              "404": _error("no such endpoint"),
              "405": _error("method not allowed (see the Allow header)")}
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
            "schemas": schemas(),
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "Required on /v1/* when the server runs with --token "
                               "(or CLEANCLAIM_TOKEN)."}},
        },
        "paths": {
            "/v1/check": {"post": {
                "operationId": "check",
                "summary": "Check one claim",
                "description": f"The body is one claim object (at most {max_body} bytes). "
                               "Malformed JSON, a non-object or an unreadable claim is "
                               "answered 200 with a `reject` decision naming each problem.",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _ref("Claim")}}},
                "responses": {
                    "200": {"description": "the decision (for every status)",
                            "content": {"application/json": {"schema": _ref("Decision")}}},
                    "408": _error("the body did not arrive in time"),
                    "413": _error(f"the body is over {max_body} bytes"),
                    **common,
                },
            }},
            "/v1/check/batch": {"post": {
                "operationId": "checkBatch",
                "summary": "Check claims as NDJSON, streamed",
                "description": "One claim JSON per line (blank lines are skipped). The "
                               "response streams one decision per non-blank line, in input "
                               "order, each with `position`, chunked, as lines arrive. A "
                               "damaged line (bad JSON, not an object, over "
                               f"{max_body} bytes) gets a `reject` decision; later lines are "
                               "checked normally. Clients should read while they send.",
                "requestBody": {"required": True, "content": {
                    "application/x-ndjson": {"schema": {"type": "string"},
                                             "x-itemSchema": _ref("Claim")}}},
                "responses": {
                    "200": {"description": "NDJSON: one Decision per line",
                            "content": {"application/x-ndjson": {
                                "schema": {"type": "string"},
                                "x-itemSchema": _ref("Decision")}}},
                    **common,
                },
            }},
            "/v1/packs": {"get": {
                "operationId": "packs",
                "summary": "Policy packs (id, digest) and plugins loaded",
                "responses": {"200": {**json_ok, "description": "packs and plugins",
                                      "content": {"application/json": {
                                          "schema": _ref("Packs")}}},
                              **common},
            }},
            "/health": {"get": {
                "operationId": "health", "summary": "Liveness", "security": [],
                "responses": {"200": {**json_ok, "description": "the server is up",
                                      "content": {"application/json": {
                                          "schema": _ref("Health")}}}},
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document", "security": [],
                "responses": {"200": {**json_ok, "description": "OpenAPI 3.1 document",
                                      "content": {"application/json": {
                                          "schema": {"type": "object"}}}}},
            }},
        },
    }


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(openapi_document(), indent=2))

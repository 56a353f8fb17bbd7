"""Findings and decisions: decision format v1 (DESIGN.md)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from cleanclaim.dsl.vocabulary import SEVERITY_RANK as SEVERITY_RANK
from cleanclaim.dsl.vocabulary import STATUS_BY_RANK as STATUS_BY_RANK

# Worst first. `info` findings leave a claim clean.


@dataclass(slots=True)
class Finding:
    """One problem on a claim: what a payer would do, why, where and who fixes it."""

    rule: str
    kind: str
    severity: str
    line: int | None
    group: str
    carc: str
    rarc: list[str]
    root_cause: str
    owner: str
    message: str
    reference: str | None
    source: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "severity": self.severity,
            "line": self.line,
            "group": self.group,
            "carc": self.carc,
            "rarc": self.rarc,
            "root_cause": self.root_cause,
            "owner": self.owner,
            "message": self.message,
            "reference": self.reference,
            "source": self.source,
        }


@dataclass(slots=True)
class Decision:
    """The decision for one input claim (every input claim gets exactly one)."""

    claim_id: str | None
    status: str
    findings: list[Finding]
    policy: dict[str, Any] = field(default_factory=dict)
    position: int | None = None
    # Only on the record of an input file that cannot be read (engine/batch.py
    # `file_error`): {"file", "where", "reason"}.
    error: dict[str, Any] | None = None
    # Where the claim came from, when its reader says (docs/formats.md "Origin"): {"file",
    # "format", for X12 "transaction" (ST02) and "segment" (the CLM's number), for FHIR
    # "resource_id" and "entry" (Bundle entry index)}.
    origin: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "claim_id": self.claim_id,
            "status": self.status,
            "findings": [f.to_json() for f in self.findings],
            "policy": self.policy,
        }
        if self.position is not None:
            out["position"] = self.position
        if self.error is not None:
            out["error"] = self.error
        if self.origin is not None:
            out["origin"] = self.origin
        return out


_new = object.__new__
_encoder = msgspec.json.Encoder()
# A float, which the two encoders may write differently (1e16 / 1e+16, 0.00001 / 1e-05):
# a number with a fraction or an exponent between JSON delimiters (the output is compact:
# no spaces). Text that looks like one ("ratio:1.5,") sends the decision to the json
# module too: same bytes, only slower. A pack digest ("sha256:3e5...") never matches, so
# decisions no longer all take the slow way (every digest held a digit then an "e").
_FLOAT = re.compile(rb"[:,\[]-?[0-9]+(?:\.[0-9]+(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)[,\]}]")


def ndjson_bytes(decision: Decision) -> bytes:
    """The decision as one compact JSON text (no line break): byte for byte what
    `json.dumps(decision.to_json(), separators=(",", ":"))` writes, ~4x faster.

    msgspec encodes the findings (slotted dataclasses, fields in `to_json`'s order)
    without building a dict per finding. The json module escapes every non-ASCII
    character and DEL (`ensure_ascii`) and writes floats as `repr` does; msgspec writes
    UTF-8 and its own exponent form: such a decision (rare: a message quoting non-ASCII
    text) is written by the json module instead, so the bytes never depend on the
    encoder. (Decisions carry no non-finite float: both would differ there.)"""
    out: dict[str, Any] = {
        "claim_id": decision.claim_id,
        "status": decision.status,
        "findings": decision.findings,
        "policy": decision.policy,
    }
    if decision.position is not None:
        out["position"] = decision.position
    if decision.error is not None:
        out["error"] = decision.error
    if decision.origin is not None:
        out["origin"] = decision.origin
    try:
        data = _encoder.encode(out)
    except (TypeError, ValueError, OverflowError):  # a value msgspec does not write
        data = b"\x7f"
    if data.isascii() and b"\x7f" not in data and _FLOAT.search(data) is None:
        return data
    return json.dumps(decision.to_json(), separators=(",", ":")).encode()


def new_decision(
    claim_id: str | None, status: str, findings: list[Finding], policy: dict[str, Any]
) -> Decision:
    """`Decision(claim_id, status, findings, policy)`, built without running `__init__`:
    checking makes one per claim, and this way costs ~1,600 machine instructions instead
    of ~2,200 (valgrind, `cleanclaim bench` workload; a claim costs ~39,000)."""
    decision: Decision = _new(Decision)
    decision.claim_id = claim_id
    decision.status = status
    decision.findings = findings
    decision.policy = policy
    decision.position = None
    decision.error = None
    decision.origin = None
    return decision


def status_of(findings: list[Finding]) -> str:
    rank = 0
    for finding in findings:
        r = SEVERITY_RANK[finding.severity]
        if r > rank:
            rank = r
    return STATUS_BY_RANK[rank]

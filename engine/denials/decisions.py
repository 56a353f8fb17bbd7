"""Our own pre-submission decisions for the claims a remittance pays, to measure what the
checker caught: from a decisions file (`cleanclaim check --format ndjson` or `json`) or
from the claim-history store (`--state`), which keeps each claim's status and its denied
lines but not its findings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "Checked",
    "CheckedClaim",
    "CheckedFinding",
    "decisions_from_store",
    "parse_decisions",
    "read_decisions",
]

# Findings that say the payer would not pay (or must not yet): a `review` asks a person
# to look, so it counts as a prediction of a denial but never as over-flagging.
PREDICTING: frozenset[str] = frozenset({"deny", "reject", "review"})
DENYING: frozenset[str] = frozenset({"deny", "reject"})


@dataclass(frozen=True, slots=True)
class CheckedFinding:
    rule: str
    severity: str
    line: int | None  # None: the whole claim
    carc: str | None
    root_cause: str | None


@dataclass(slots=True)
class CheckedClaim:
    """What the checker said about one claim before it was sent."""

    claim_id: str
    status: str
    findings: list[CheckedFinding] = field(default_factory=list)

    def on_line(self, line: int | None, severities: frozenset[str]) -> list[CheckedFinding]:
        """The findings of these severities that apply to `line` (None: the claim): a
        claim-level finding applies to every line, and any finding to the claim."""
        return [
            f
            for f in self.findings
            if f.severity in severities and (line is None or f.line is None or f.line == line)
        ]


@dataclass(slots=True)
class Checked:
    """The decisions found, by claim id; `basis` says what they hold: `findings` (a
    decisions file: rules, CARCs, root causes) or `status` (the store: which lines were
    denied, without the rules)."""

    source: str
    basis: Literal["findings", "status"]
    claims: dict[str, CheckedClaim] = field(default_factory=dict)
    problems: list[dict[str, str]] = field(default_factory=list)


def read_decisions(path: Path) -> Checked:
    """The decisions of a file: NDJSON (one decision a line) or a JSON array. A line that
    cannot be read is a located problem; the others are read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        checked = Checked(str(path), "findings")
        checked.problems.append({"where": str(path), "message": f"cannot read: {exc}"})
        return checked
    return parse_decisions(text, str(path))


def parse_decisions(text: str, source: str) -> Checked:
    checked = Checked(source, "findings")
    stripped = text.lstrip()
    items: Iterable[tuple[str, Any]]
    if stripped.startswith("["):
        try:
            array = json.loads(text)
        except json.JSONDecodeError as exc:
            checked.problems.append(
                {
                    "where": f"{source}:{exc.lineno}:{exc.colno}",
                    "message": f"not valid JSON: {exc.msg}",
                }
            )
            return checked
        items = ((f"{source}, item {i}", item) for i, item in enumerate(array))
    else:
        items = _ndjson(text, source, checked)
    seen: dict[str, str] = {}
    for where, item in items:
        claim = _decision(item, where, checked)
        if claim is None:
            continue
        if claim.claim_id in seen:
            checked.problems.append(
                {
                    "where": where,
                    "message": (
                        f"claim {claim.claim_id} was decided before ({seen[claim.claim_id]}):"
                        " the later decision is used"
                    ),
                }
            )
        seen[claim.claim_id] = where
        checked.claims[claim.claim_id] = claim
    return checked


def _ndjson(text: str, source: str, checked: Checked) -> Iterable[tuple[str, Any]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield f"{source}:{number}", json.loads(line)
        except json.JSONDecodeError as exc:
            checked.problems.append(
                {"where": f"{source}:{number}:{exc.colno}", "message": f"not valid JSON: {exc.msg}"}
            )


def _decision(item: Any, where: str, checked: Checked) -> CheckedClaim | None:
    if not isinstance(item, dict):
        checked.problems.append({"where": where, "message": "not a decision object"})
        return None
    claim_id, status = item.get("claim_id"), item.get("status")
    if not isinstance(claim_id, str) or not claim_id:
        # A claim that could not be read has no id: nothing to join it with.
        if item.get("error") is None and status != "reject":
            checked.problems.append({"where": where, "message": "decision has no claim_id"})
        return None
    if status not in ("clean", "review", "deny", "reject"):
        checked.problems.append(
            {"where": f"{where}, status", "message": f"status {status!r} is not a decision status"}
        )
        return None
    findings: list[CheckedFinding] = []
    raw = item.get("findings")
    for i, f in enumerate(raw if isinstance(raw, list) else []):
        line = f.get("line") if isinstance(f, dict) else None
        if (
            not isinstance(f, dict)
            or not isinstance(f.get("rule"), str)
            or not (line is None or (isinstance(line, int) and not isinstance(line, bool)))
        ):
            checked.problems.append(
                {
                    "where": f"{where}, findings[{i}]",
                    "message": "not a finding (rule, severity, line)",
                }
            )
            continue
        findings.append(
            CheckedFinding(
                f["rule"],
                str(f.get("severity") or ""),
                line,
                _text(f.get("carc")),
                _text(f.get("root_cause")),
            )
        )
    return CheckedClaim(claim_id, status, findings)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def decisions_from_store(state: str, claim_ids: Sequence[str]) -> Checked:
    """The decisions the history store at `state` (a SQLite path or a postgresql:// URL)
    keeps for `claim_ids`. The store keeps statuses and denied lines, not findings: each
    denied line becomes one finding `(stored decision)` with no CARC or root cause."""
    from cleanclaim.engine.history import open_store

    store = open_store(state)
    try:
        stored = store.decided(claim_ids)
    finally:
        store.close()
    label = state.split("@")[-1] if "://" in state else state  # never a password
    checked = Checked(label, "status")
    for decision in stored:  # oldest first: a later record of the same id wins
        findings: list[CheckedFinding] = []
        severity = "reject" if decision.status == "reject" else "deny"
        if decision.status == "review":
            findings.append(CheckedFinding("(stored decision)", "review", None, None, None))
        elif decision.denied is None:
            findings.append(CheckedFinding("(stored decision)", severity, None, None, None))
        else:
            findings.extend(
                CheckedFinding("(stored decision)", severity, n, None, None)
                for n in sorted(x for x in decision.denied if x is not None)
            )
        checked.claims[decision.claim_id] = CheckedClaim(
            decision.claim_id, decision.status, findings
        )
    return checked

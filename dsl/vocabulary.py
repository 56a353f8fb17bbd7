"""The vocabulary of a finding: severities, decision statuses, root causes and owners
(decision format v1, docs/design.md). One module, imported by the language, the engine,
the HTTP schema and the plugin API, and cheap to import (the standard library only), so
that the plugin API does not pay for the checker.

The members are `StrEnum`s: each compares equal to, hashes as, and serialises as its
string, so a plugin may pass `RootCause.CODING` or `"coding"` alike.
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    """How bad one finding is; the worst decides the claim's status."""

    REJECT = "reject"  # would bounce before adjudication (unprocessable data)
    DENY = "deny"  # a payer would deny
    REVIEW = "review"  # a person must look
    INFO = "info"  # said, changes nothing


class Status(StrEnum):
    """A decision's status: its worst finding (`info` findings leave a claim clean)."""

    REJECT = "reject"
    DENY = "deny"
    REVIEW = "review"
    CLEAN = "clean"


class RootCause(StrEnum):
    """Where the claim broke."""

    DOCUMENTATION = "documentation"
    CODING = "coding"
    MEDICAL_NECESSITY = "medical_necessity"
    ELIGIBILITY = "eligibility"
    AUTHORIZATION = "authorization"
    BENEFIT_LIMIT = "benefit_limit"
    TIMELY_FILING = "timely_filing"
    SUBMISSION = "submission"
    DUPLICATE = "duplicate"
    COVERAGE = "coverage"
    PAYER_SETUP = "payer_setup"


class Owner(StrEnum):
    """Who must fix it."""

    PROVIDER = "provider"  # fix the note
    CODING = "coding"  # fix the codes
    FRONT_END = "front_end"  # eligibility, authorization, registration, counselling
    BILLING = "billing"  # claim data, payer, deadlines, duplicates


SEVERITIES: tuple[str, ...] = tuple(s.value for s in Severity)
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
ROOT_CAUSES: tuple[str, ...] = tuple(r.value for r in RootCause)
OWNERS: tuple[str, ...] = tuple(o.value for o in Owner)

# A severity's weight; a decision's status is the status of its heaviest finding. (Plain
# strings below, not members: these values reach generated code and JSON as text.)
SEVERITY_RANK: dict[str, int] = {"reject": 3, "deny": 2, "review": 1, "info": 0}
STATUS_BY_RANK: dict[int, str] = {3: "reject", 2: "deny", 1: "review", 0: "clean"}

# The owner a finding gets when its rule names none: it follows the root cause (design.md).
DEFAULT_OWNER: dict[str, str] = {
    "documentation": "provider",
    "coding": "coding",
    "medical_necessity": "coding",
    "eligibility": "front_end",
    "authorization": "front_end",
    "benefit_limit": "front_end",
    "coverage": "front_end",
    "timely_filing": "billing",
    "submission": "billing",
    "duplicate": "billing",
    "payer_setup": "billing",
}

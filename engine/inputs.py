"""Claims as read from input files, before the claim model validates them.

Every reader (JSON/NDJSON, X12 837P, FHIR R4) yields one `RawClaim` per claim it finds,
in input order, and never raises for one bad claim: a claim it cannot read becomes a
`RawClaim` with `data=None` and the `ReadProblem`s that say where and why. Only a file
that cannot be read at all (not X12, truncated before the first claim, unreadable bytes)
raises `InputFileError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class InputFileError(Exception):
    """A whole input file cannot be read; the message says where and why."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


@dataclass(frozen=True, slots=True)
class ReadProblem:
    """Why (part of) a claim could not be read.

    `where` locates the problem in the input: for JSON a field path such as
    `lines[2].service_date`; for X12 a segment and position such as
    `CLM segment 14, element CLM05-1`; for FHIR a path such as `Claim.item[0].servicedDate`.
    """

    where: str
    message: str


@dataclass(frozen=True, slots=True)
class RawClaim:
    """One claim from an input stream, in claim format v1 (DESIGN.md) when readable.

    position: 0-based index of the claim in its input stream (decisions keep this order).
    data: the claim as a claim-format-v1 dict, or None when it could not be read at all.
    problems: why it could not be read (empty when `data` is usable as it is). A reader may
        return both `data` and `problems` when it mapped what it could; the engine then
        rejects the claim and reports the problems.
    claim_id: the claim's id where it is known even though the claim is unreadable.
    origin: where the claim is in its input (docs/formats.md): {"file", "format", and for
        X12 "transaction" (ST02) and "segment" (the CLM's segment number), for FHIR
        "resource_id" (Claim.id) and "entry" (its Bundle entry index)}; None when the
        reader does not say.
    """

    position: int
    data: dict[str, Any] | None
    problems: tuple[ReadProblem, ...] = field(default=())
    claim_id: str | None = None
    origin: dict[str, Any] | None = None

"""An example outside plugin: one language rule, one language function, one documentation
section and one Python check (tests only)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from cleanclaim.dsl import types as T
from cleanclaim.engine.hookspecs import (
    Claim,
    ClaimContext,
    DocumentationSection,
    Finding,
    Flag,
    Record,
    RuleInfo,
    ServiceLine,
    context_of,
    finding,
    hookimpl,
)

__version__ = "1.2.0"


def telehealth_documented(claim: Claim, line: ServiceLine | None) -> bool:
    visit = context_of(claim).documentation.get("visit") or {}
    return visit.get("telehealth") is True


@hookimpl
def cleanclaim_policy_packs() -> Sequence[Path]:
    return [Path(__file__).resolve().parent / "packs" / "example"]


@hookimpl
def cleanclaim_functions() -> Sequence[T.FunctionSpec]:
    return [
        T.FunctionSpec(
            "telehealth_documented",
            (),
            T.BOOL,
            telehealth_documented,
            "true when the visit is documented as telehealth",
            contextual=True,
            scopes=frozenset({"line"}),
        )
    ]


@hookimpl
def cleanclaim_documentation_sections() -> Sequence[DocumentationSection]:
    return [DocumentationSection("visit", Record({"telehealth": Flag()}), "the visit")]


@hookimpl
def cleanclaim_rules() -> Sequence[RuleInfo]:
    return [RuleInfo("too-many-lines", "More than 3 lines", "tests only", "submission")]


@hookimpl
def cleanclaim_check_claim(claim: Claim, context: ClaimContext) -> Iterable[Finding] | None:
    if len(claim.lines) <= 3:
        return None
    return [
        finding(
            "too-many-lines",
            f"{len(claim.lines)} lines (at most 3 here)",
            severity="info",
            carc="16",
            root_cause="submission",
        )
    ]
